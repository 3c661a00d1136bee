"""Label and field selectors on list and watch.

Label selectors: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
(=, ==, !=, in, notin, exists, !key; != and notin also match objects without the key).
Field selectors: https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/
("Supported fields vary by Kubernetes resource type ... Using unsupported fields produces
an error"); Events support involvedObject.*, reason, source, type, reportingComponent.
"""

from __future__ import annotations

import pytest

from aliasip_lab.apiserver.errors import ApiError
from aliasip_lab.apiserver.registry import BUILTIN_TYPES
from aliasip_lab.apiserver.selectors import parse_field_selector, parse_label_selector
from tests.api.support import WIDGETS, ApiLab, install_crd, node, widget, widget_crd

LABELS = {"role": "edge", "zone": "a", "tier": "1"}
EVENTS_TYPE = next(t for t in BUILTIN_TYPES if t.plural == "events")


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("role=edge", True),
        ("role==edge", True),
        ("role!=edge", False),
        ("missing!=x", True),
        ("role in (edge, core)", True),
        ("role notin (edge)", False),
        ("missing notin (edge)", True),
        ("zone", True),
        ("!zone", False),
        ("!missing", True),
        ("role=edge,zone=b", False),
        ("tier>0", True),
        ("tier<1", False),
        ("example.com/owner", False),
    ],
)
def test_label_selector_semantics(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize(
    "selector", ["role in (", "role in ()", "=x", "role=a b", "a,", "bad key!=1", "k=" + "v" * 64]
)
def test_malformed_label_selectors_are_400(selector: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_label_selector(selector)
    assert caught.value.code == 400


def test_field_selector_escapes_and_unsupported_labels() -> None:
    selector = parse_field_selector(r"involvedObject.name=a\,b\=c,type!=Normal", EVENTS_TYPE)
    assert selector.matches({"involvedObject.name": "a,b=c", "type": "Warning"})
    assert not selector.matches({"involvedObject.name": "a,b=c", "type": "Normal"})
    with pytest.raises(ApiError) as caught:
        parse_field_selector("spec.nothing=x", EVENTS_TYPE)
    assert (caught.value.code, caught.value.message) == (
        400,
        "field label not supported: spec.nothing",
    )


def test_label_selectors_on_list(lab: ApiLab) -> None:
    lab.client.post("/api/v1/nodes", node("n1", role="edge", zone="a"))
    lab.client.post("/api/v1/nodes", node("n2", role="core"))
    lab.client.post("/api/v1/nodes", node("n3"))

    def names(selector: str) -> list[str]:
        reply = lab.client.get("/api/v1/nodes", labelSelector=selector)
        assert reply.status == 200, reply.body
        return [n["metadata"]["name"] for n in reply.json["items"]]

    assert names("role=edge") == ["n1"]
    assert names("role!=edge") == ["n2", "n3"]
    assert names("role in (edge,core)") == ["n1", "n2"]
    assert names("role notin (edge)") == ["n2", "n3"]
    assert names("zone") == ["n1"]
    assert names("!role") == ["n3"]
    assert lab.client.get("/api/v1/nodes", labelSelector="role in (").status == 400


def test_field_selectors_on_list(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    lab.client.post(WIDGETS, widget("a", color="blue"))
    lab.client.post(WIDGETS, widget("b"))  # color defaults to red

    def names(selector: str) -> list[str]:
        reply = lab.client.get(WIDGETS, fieldSelector=selector)
        assert reply.status == 200, reply.body
        return [n["metadata"]["name"] for n in reply.json["items"]]

    assert names("metadata.name=b") == ["b"]
    assert names("metadata.name!=b") == ["a"]
    assert names("spec.color=red") == ["b"]  # the CRD's selectableFields
    assert lab.client.get(WIDGETS, fieldSelector="spec.size=3").json["message"] == (
        "field label not supported: spec.size"
    )


def test_a_watch_sees_objects_enter_and_leave_its_selection(lab: ApiLab) -> None:
    # cacheWatcher: an object that stops matching is DELETED for the watcher, one that
    # starts matching is ADDED; non-matching changes are not sent at all.
    lab.client.post("/api/v1/nodes", node("n1", role="edge"))
    lab.client.post("/api/v1/nodes", node("n2", role="core"))
    with lab.client.watch("/api/v1/nodes", labelSelector="role=edge") as watch:
        assert (watch.next()["type"], 1) == ("ADDED", 1)
        lab.client.patch("/api/v1/nodes/n2", {"metadata": {"labels": {"x": "y"}}})
        lab.client.patch("/api/v1/nodes/n1", {"metadata": {"labels": {"role": "core"}}})
        left = watch.next()
        assert (left["type"], left["object"]["metadata"]["name"]) == ("DELETED", "n1")
        lab.client.patch("/api/v1/nodes/n2", {"metadata": {"labels": {"role": "edge"}}})
        joined = watch.next()
        assert (joined["type"], joined["object"]["metadata"]["name"]) == ("ADDED", "n2")
        assert watch.quiet(0.1) == []
    with lab.client.watch("/api/v1/nodes", fieldSelector="metadata.name=n2") as watch:
        assert watch.next()["object"]["metadata"]["name"] == "n2"
        assert watch.quiet(0.1) == []
