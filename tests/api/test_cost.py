"""A long-running server: the cost of a request must not grow with the requests served.

Asserted structurally, never with timings: everything the server keeps is sized by what
clients stored (objects), bounded (the change history per resource, a watcher's
backlog), or released when the request ends (watch subscriptions, handler tasks). So
the state after 5,000 more requests is the same as before them, and the history stays at
its bound however many writes go through; so does the state journal, when there is one.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from pathlib import Path

from aliasip_lab.apiserver import Settings
from aliasip_lab.apiserver.journal import COMPACT_SLACK
from aliasip_lab.nsenter import netns
from tests.api.support import WIDGETS, ApiLab, api_lab, eventually, install_crd, widget, widget_crd

HISTORY = 50


def _burst(lab: ApiLab, count: int) -> None:
    """``count`` mixed requests on one keep-alive connection (GET, LIST, PATCH, 404s)."""
    conn = http.client.HTTPConnection(lab.client.host, lab.client.port, timeout=10)
    with netns(lab.namespace):
        conn.connect()
    try:
        for i in range(count):
            kind = i % 4
            if kind == 0:
                conn.request("GET", f"{WIDGETS}/w{i % 10}")
            elif kind == 1:
                conn.request("GET", f"{WIDGETS}?labelSelector=team%3Dx")
            elif kind == 2:
                body = json.dumps({"spec": {"size": 1 + i % 90}}).encode()
                conn.request(
                    "PATCH",
                    f"{WIDGETS}/w{i % 10}",
                    body,
                    {"Content-Type": "application/merge-patch+json"},
                )
            else:
                conn.request("GET", f"{WIDGETS}/missing")
            response = conn.getresponse()
            response.read()
            assert response.status in (200, 404)
    finally:
        conn.close()


def _watches(lab: ApiLab, count: int) -> None:
    for _ in range(count):
        with lab.client.watch(WIDGETS, resourceVersion="0") as watch:
            watch.events(10)


def _settled(lab: ApiLab) -> dict[str, int] | None:
    """The server's state once no watch is subscribed and it holds still for 0.3 s: a
    baseline taken while a closed connection's handler task was still finishing counted
    that task, and no later state could equal it (seen once in a loaded CI run)."""
    first = _state(lab)
    if first["subscribers"] != 0:
        return None
    time.sleep(0.3)
    return first if _state(lab) == first else None


def _state(lab: ApiLab) -> dict[str, int]:
    def snapshot(api: object) -> dict[str, int]:
        sizes = api.sizes()  # type: ignore[attr-defined]
        sizes["tasks"] = len(asyncio.all_tasks())
        return dict(sizes)

    return lab.server.call(snapshot)


def test_requests_leave_nothing_behind_and_history_stays_bounded(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    with api_lab(Settings(history=HISTORY, state=state)) as lab:
        install_crd(lab, widget_crd())
        for i in range(10):
            body = widget(f"w{i}")
            body["metadata"]["labels"] = {"team": "x" if i % 2 else "y"}
            lab.client.post(WIDGETS, body)
        _burst(lab, 400)  # warm up: every history is full from here on
        _watches(lab, 5)
        baseline = eventually(lambda: _settled(lab))
        for _ in range(2):
            _burst(lab, 5_000)
            _watches(lab, 25)
            after = eventually(lambda: (s := _state(lab)) == baseline and s, timeout=10)
            assert after == baseline
        assert baseline["history_max"] == HISTORY
        assert baseline["objects"] == 10 + 4 + 1  # widgets, initial namespaces, the CRD
        assert baseline["subscribers"] == 0
        # the state journal is compacted: its size follows the objects, not the writes
        lines = len(state.read_bytes().splitlines())
        assert lines <= 2 * baseline["objects"] + COMPACT_SLACK + 1
