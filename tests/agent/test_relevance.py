"""Which AliasIPs concern a node (relevance.concerns), and that skipping the others is safe.

The property that matters: for an AliasIP that does not concern the node, planning and
reporting would do nothing anyway (no hold, no release, no view), so an agent that never
looks at it loses nothing.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aliasip_nodeagent.reconcile import observe, plan
from aliasip_nodeagent.relevance import concerns, held_texts
from aliasip_nodeagent.report import Outcome, view_for
from tests.agent.test_reconcile import held, obj

IP = ipaddress.ip_address
NOW = datetime(2026, 11, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "holding", "expected"),
    [
        pytest.param(obj(nodes=("node1", "node2")), (), True, id="listed"),
        pytest.param(obj(nodes=("node2", "node3")), (), False, id="not-listed"),
        pytest.param(obj(nodes=("node2",), active="node1"), (), True, id="named-active"),
        pytest.param(
            obj(nodes=("node2",), status={"activeNode": "node2", "nodes": {"node1": {}}}),
            (),
            True,
            id="has-a-view",
        ),
        pytest.param(obj(nodes=("node2",), active="node2"), ("198.18.0.50",), True, id="held"),
        pytest.param(obj(nodes=("node2",), active="node2"), ("198.18.0.51",), False, id="other"),
        pytest.param(
            obj("v6", "2001:db8::0:1/64", nodes=("node2",)), ("2001:db8::1",), True, id="v6-form"
        ),
        pytest.param(obj(nodes=("node2",), status=None), (), False, id="no-status"),
        pytest.param({"metadata": {"name": "x"}}, (), True, id="no-spec: parse says why"),
        pytest.param(obj(nodes=("node2",), status="broken"), (), True, id="status-not-object"),
        pytest.param(
            {"metadata": {"name": "x"}, "spec": {"addresses": ["nonsense"], "nodes": []}},
            ("198.18.0.50",),
            False,
            id="unreadable-address-is-none-held-here",
        ),
        pytest.param(None, (), False, id="absent"),
    ],
)
def test_concerns(body: dict[str, Any] | None, holding: tuple[str, ...], expected: bool) -> None:
    assert concerns("node1", body, held_texts({IP(a) for a in holding})) is expected


def _body(listed: bool, active: str | None, view: bool, epoch: int, address: str) -> dict[str, Any]:
    body = obj("web", address, nodes=("node1", "node2") if listed else ("node2", "node3"))
    status: dict[str, Any] = {"activeNode": active, "epoch": epoch}
    if view:
        status["nodes"] = {"node1": {"state": "Standby", "epoch": epoch}}
    body["status"] = status
    return body


@settings(max_examples=300, deadline=None)
@given(
    listed=st.booleans(),
    active=st.sampled_from([None, "node1", "node2", "node3"]),
    view=st.booleans(),
    epoch=st.integers(0, 5),
    address=st.sampled_from(["198.18.0.50/24", "198.18.0.51/24"]),
    holding=st.sets(st.sampled_from(["198.18.0.50/24", "198.18.0.52/24"]), max_size=2),
)
def test_an_aliasip_that_does_not_concern_the_node_needs_nothing_from_it(
    listed: bool,
    active: str | None,
    view: bool,
    epoch: int,
    address: str,
    holding: set[str],
) -> None:
    body = _body(listed, active, view, epoch, address)
    kernel = [held(a) for a in sorted(holding)]
    if concerns("node1", body, held_texts([h.address.ip for h in kernel])):
        return
    observed = observe(body)
    with_it = plan("node1", [observed], kernel, {})
    without = plan("node1", [], kernel, {})
    assert with_it.holds == ()
    assert [r.held for r in with_it.releases] == [r.held for r in without.releases]
    assert view_for("node1", observed, Outcome(), NOW) is None
