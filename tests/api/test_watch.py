"""List + watch with resourceVersion, as kube-apiserver serves them.

https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes :
a watch from a list's resourceVersion delivers every later change exactly once; a
resourceVersion older than the server keeps gives "410 Gone" (for a watch: HTTP 200 and
one ERROR event whose Status has code 410, reason Expired); BOOKMARK events carry only a
resourceVersion, and only with allowWatchBookmarks=true; timeoutSeconds ends the watch.
"""

from __future__ import annotations

import threading
from typing import Any

from aliasip_lab.apiserver import Settings
from tests.api.support import (
    TABLE,
    WIDGETS,
    ApiLab,
    api_lab,
    install_crd,
    widget,
    widget_crd,
)


def _rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def test_watch_from_a_list_resource_version_sees_exactly_the_later_changes(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    for name in ("a", "b"):
        lab.client.post(WIDGETS, widget(name))
    listed = lab.client.get(WIDGETS).json
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "b"]
    list_rv = listed["metadata"]["resourceVersion"]
    modified = lab.client.patch(f"{WIDGETS}/a", {"spec": {"size": 9}}).json
    added = lab.client.post(WIDGETS, widget("c")).json
    with lab.client.watch(WIDGETS, resourceVersion=list_rv) as watch:
        assert watch.status == 200
        events = watch.events(2)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("MODIFIED", "a"),
            ("ADDED", "c"),
        ]
        assert [_rv(e["object"]) for e in events] == [_rv(modified), _rv(added)]
        deleted = lab.client.delete(f"{WIDGETS}/b").json
        gone = watch.next()
        assert (gone["type"], gone["object"]["metadata"]["name"]) == ("DELETED", "b")
        assert _rv(gone["object"]) == _rv(deleted)  # the deletion's own resourceVersion
        assert watch.quiet(0.2) == []


def test_watch_without_resource_version_starts_with_the_current_state(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    lab.client.post(WIDGETS, widget("a"))
    for flag in ("1", "true"):  # ``watch`` is a Go bool: 1, t, true, True, TRUE ...
        with lab.client.watch(WIDGETS, watch=flag) as watch:
            first = watch.next()
            assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "a")
            lab.client.patch(f"{WIDGETS}/a", {"spec": {"size": int(_rv(first["object"]) % 50) + 2}})
            assert watch.next()["type"] == "MODIFIED"
    assert lab.client.get(WIDGETS, watch="yes").status == 400


def test_a_resumed_watch_has_no_duplicates_and_misses_nothing(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    start = lab.client.get(WIDGETS).json["metadata"]["resourceVersion"]
    seen: list[int] = []
    with lab.client.watch(WIDGETS, resourceVersion=start) as watch:
        for i in range(3):
            lab.client.post(WIDGETS, widget(f"w{i}"))
        seen += [_rv(e["object"]) for e in watch.events(3)]
    for i in range(3, 6):  # while nobody watches
        lab.client.post(WIDGETS, widget(f"w{i}"))
    with lab.client.watch(WIDGETS, resourceVersion=str(seen[-1])) as watch:
        resumed = watch.events(3)
        assert watch.quiet(0.2) == []
    seen += [_rv(e["object"]) for e in resumed]
    assert [e["object"]["metadata"]["name"] for e in resumed] == ["w3", "w4", "w5"]
    assert seen == sorted(set(seen)) and len(seen) == 6


def test_a_resource_version_older_than_the_history_is_410_gone() -> None:
    with api_lab(Settings(history=5)) as lab:
        install_crd(lab, widget_crd())
        first = lab.client.post(WIDGETS, widget("w", size=1)).json
        for size in range(2, 12):
            lab.client.patch(f"{WIDGETS}/w", {"spec": {"size": size}})
        with lab.client.watch(WIDGETS, resourceVersion=str(_rv(first))) as watch:
            assert watch.status == 200  # the cacher answers 200, then one ERROR event
            error = watch.next()
            assert error["type"] == "ERROR"
            status = error["object"]
            assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
            assert status["message"].startswith(f"too old resource version: {_rv(first)} (")
            assert watch.wait_closed(5)
        recent = lab.client.get(f"{WIDGETS}/w").json
        with lab.client.watch(WIDGETS, resourceVersion=str(_rv(recent) - 2)) as watch:
            assert [e["object"]["spec"]["size"] for e in watch.events(2)] == [10, 11]
        assert lab.sizes()["history_max"] <= 5


def test_bookmarks_only_when_allowed() -> None:
    with api_lab(Settings(bookmark_interval_s=0.1)) as lab:
        install_crd(lab, widget_crd())
        lab.client.post(WIDGETS, widget("w"))
        lab.client.post(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}},
        )
        current = lab.client.get("/api/v1/namespaces").json["metadata"]["resourceVersion"]
        with lab.client.watch(
            WIDGETS, resourceVersion=current, allowWatchBookmarks="true"
        ) as watch:
            bookmark = watch.next()
            assert bookmark == {
                "type": "BOOKMARK",
                "object": {
                    "kind": "Widget",
                    "apiVersion": "example.io/v1",
                    "metadata": {"resourceVersion": current},
                },
            }
        with lab.client.watch(WIDGETS, resourceVersion=current) as watch:
            assert watch.quiet(0.4) == []


def test_send_initial_events_ends_with_an_annotated_bookmark(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    lab.client.post(WIDGETS, widget("w"))
    params = {
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
    }
    with lab.client.watch(WIDGETS, **params) as watch:
        added, bookmark = watch.events(2)
        assert added["type"] == "ADDED"
        assert bookmark["type"] == "BOOKMARK"
        assert bookmark["object"]["metadata"]["annotations"] == {
            "k8s.io/initial-events-end": "true"
        }
    assert lab.client.get(WIDGETS, watch="1", sendInitialEvents="true").status == 422


def test_timeout_seconds_ends_the_stream(lab: ApiLab) -> None:
    with lab.client.watch("/api/v1/namespaces", timeoutSeconds="1") as watch:
        assert len(watch.events(4)) == 4  # the four initial namespaces
        assert watch.wait_closed(5)


def test_a_watch_of_one_named_object(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    lab.client.post(WIDGETS, widget("a"))
    lab.client.post(WIDGETS, widget("b"))
    with lab.client.watch(f"{WIDGETS}/b") as watch:
        assert watch.next()["object"]["metadata"]["name"] == "b"
        lab.client.patch(f"{WIDGETS}/a", {"spec": {"size": 7}})
        lab.client.patch(f"{WIDGETS}/b", {"spec": {"size": 7}})
        event = watch.next()
        assert (event["type"], event["object"]["metadata"]["name"]) == ("MODIFIED", "b")


def test_snapshot_and_live_changes_lose_nothing_under_concurrent_writes(lab: ApiLab) -> None:
    # The watch subscribes in the same step as it takes its snapshot: replaying its events
    # must give exactly the final state, whatever was written while it started.
    install_crd(lab, widget_crd())
    for i in range(5):
        lab.client.post(WIDGETS, widget(f"w{i}"))
    done = threading.Event()

    def writer() -> None:
        for round_ in range(40):
            lab.client.patch(f"{WIDGETS}/w{round_ % 5}", {"spec": {"size": round_ + 1}})
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    state: dict[str, int] = {}
    last_rv = 0
    with lab.client.watch(WIDGETS) as watch:
        try:
            for _ in range(500):  # 5 initial + 40 changes, with room to spare
                final = {
                    o["metadata"]["name"]: _rv(o) for o in lab.client.get(WIDGETS).json["items"]
                }
                if done.is_set() and state == final:
                    break
                event = watch.next(5)
                rv = _rv(event["object"])
                if event["type"] != "ADDED":
                    assert rv > last_rv
                last_rv = max(last_rv, rv)
                state[event["object"]["metadata"]["name"]] = rv
            else:
                raise AssertionError("the watch never caught up with the final state")
        finally:
            thread.join(30)
    assert len(state) == 5


def test_deleting_a_crd_deletes_its_objects_and_ends_its_watches(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    lab.client.post(WIDGETS, widget("a"))
    with lab.client.watch(WIDGETS) as watch:
        assert watch.next()["type"] == "ADDED"
        lab.client.delete(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.io"
        )
        gone = watch.next()
        assert (gone["type"], gone["object"]["metadata"]["name"]) == ("DELETED", "a")
        assert watch.wait_closed(5)
    assert lab.client.get(WIDGETS).status == 404


def test_watch_as_table_sends_column_definitions_once(lab: ApiLab) -> None:
    # ``kubectl get -w`` watches in Table form; later events carry rows only.
    install_crd(lab, widget_crd())
    lab.client.post(WIDGETS, widget("a"))
    with lab.client.watch(WIDGETS, accept=TABLE) as watch:
        first = watch.next()
        assert first["object"]["kind"] == "Table"
        assert first["object"]["columnDefinitions"][0]["name"] == "Name"
        lab.client.patch(f"{WIDGETS}/a", {"spec": {"size": 4}})
        second = watch.next()
        assert second["object"]["columnDefinitions"] is None
        assert second["object"]["rows"][0]["cells"][:2] == ["a", 4]
