"""Which AliasIPs a Node or Lease change re-queues (relations), and when a Lease is news."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aliasip_api.lease import AgentLease
from aliasip_operator.relations import (
    Involvement,
    LeaseState,
    changed_findings,
    involves,
    nodes_to_requeue,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=3)


def body(listed: list[str] | None = None, **status: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"addresses": ["198.18.0.50/24"], "nodes": listed or ["a", "b"]}
    return {"metadata": {"name": "web"}, "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("obj", "node", "expected"),
    [
        pytest.param(body(), "a", True, id="candidate"),
        pytest.param(body(), "c", False, id="unrelated"),
        pytest.param(body(activeNode="c"), "c", True, id="holder-not-listed"),
        pytest.param(body(nodes={"c": {"state": "Released"}}), "c", True, id="has-a-view"),
        pytest.param(body(lastTransition={"from": "c", "to": "a"}), "c", True, id="moved-from"),
        pytest.param(
            {"spec": {"addresses": [], "nodeSelector": {"matchLabels": {}}}, "status": {}},
            "z",
            True,
            id="selector-may-match-any",
        ),
        pytest.param({"spec": "broken"}, "z", True, id="unreadable"),
        pytest.param({"spec": {"nodes": "a"}}, "z", True, id="nodes-not-a-list"),
    ],
)
def test_involves(obj: dict[str, Any], node: str, expected: bool) -> None:
    assert involves(obj, node) is expected


def involving(bodies: dict[str, dict[str, Any]], node: str) -> list[str]:
    """The reference ``Involvement`` must agree with: a scan of every body."""
    return sorted(name for name, body in bodies.items() if involves(body, node))


def test_involving_lists_names_sorted() -> None:
    bodies = {"z": body(["c"]), "y": body(), "x": body(activeNode="c")}
    kept = Involvement()
    for name, obj in bodies.items():
        kept.update(name, obj)
    assert kept.involving("c") == involving(bodies, "c") == ["x", "z"]
    assert kept.involving("q") == []


def lease(holder: str | None, renewed: datetime, duration: int = 3) -> AgentLease:
    return AgentLease(holder, renewed, duration)


def test_a_renewal_on_time_is_no_news_but_an_expiry_is() -> None:
    first = LeaseState.of(lease("a", NOW), "a", NOW)
    renewed = LeaseState.of(lease("a", NOW + timedelta(seconds=1)), "a", NOW + timedelta(seconds=1))
    assert first == renewed == LeaseState("a", True, None)
    lapsed = LeaseState.of(lease("a", NOW), "a", NOW + timedelta(seconds=3))
    assert lapsed == LeaseState("a", False, NOW + timedelta(seconds=3))
    assert lapsed != first


def test_a_lease_that_lapses_again_later_is_news() -> None:
    once = LeaseState.of(lease("a", NOW), "a", NOW + timedelta(seconds=5))
    again = LeaseState.of(lease("a", NOW + timedelta(seconds=10)), "a", NOW + timedelta(seconds=20))
    assert once != again


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(None, LeaseState(None, False, None), id="no-lease"),
        pytest.param(lease("", NOW), LeaseState("", False, LATER), id="given-up"),
        pytest.param(lease("b", NOW), LeaseState("b", False, LATER), id="other"),
    ],
)
def test_leases_that_vouch_for_nobody(given: AgentLease | None, expected: LeaseState) -> None:
    assert LeaseState.of(given, "a", NOW) == expected


def test_changed_findings_compares_per_name() -> None:
    before = {"a": ("x",), "b": ()}
    after = {"a": ("x",), "c": ("y",)}
    assert changed_findings(before, after) == ["c"]
    assert changed_findings(after, before) == ["c"]
    assert changed_findings({"a": ("x",)}, {"a": ("z",)}) == ["a"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["x", "y", "z"]),
            st.one_of(
                st.none(),
                st.builds(
                    lambda listed, active, selector: {
                        "spec": {"nodes": listed, **({"nodeSelector": {}} if selector else {})},
                        "status": {"activeNode": active},
                    },
                    st.lists(st.sampled_from(["a", "b", "c"]), max_size=2),
                    st.sampled_from([None, "a", "d"]),
                    st.booleans(),
                ),
            ),
        ),
        max_size=12,
    )
)
def test_involvement_kept_up_to_date_agrees_with_a_scan(
    changes: list[tuple[str, dict[str, Any] | None]],
) -> None:
    kept = Involvement()
    bodies: dict[str, dict[str, Any]] = {}
    for name, body in changes:
        kept.update(name, body)
        if body is None:
            bodies.pop(name, None)
        else:
            bodies[name] = body
        for node in ["a", "b", "c", "d", "e"]:
            assert kept.involving(node) == involving(bodies, node)


def test_a_new_claim_requeues_the_claimed_node_not_the_claimer() -> None:
    """Evidence per node: node2's claim that node1 is silent matters to node1's AliasIPs
    only; what node2 vouches for is unchanged (its own AliasIPs are not decided again)."""
    quiet = LeaseState("node2", True, None)
    claiming = LeaseState("node2", True, None, (("node1", NOW),))
    assert nodes_to_requeue("node2", quiet, claiming) == ["node1"]
    assert nodes_to_requeue("node2", claiming, claiming) == []
    moved = LeaseState("node2", True, None, (("node1", LATER), ("node3", NOW)))
    assert nodes_to_requeue("node2", claiming, moved) == ["node1", "node3"]
    assert nodes_to_requeue("node2", moved, quiet) == ["node1", "node3"]  # withdrawn


def test_a_change_of_what_a_lease_vouches_requeues_its_node_and_its_claims() -> None:
    claiming = LeaseState("node2", True, None, (("node1", NOW),))
    lapsed = LeaseState("node2", False, LATER, (("node1", NOW),))
    assert nodes_to_requeue("node2", claiming, lapsed) == ["node2", "node1"]
    assert nodes_to_requeue("node2", None, claiming) == ["node2", "node1"]  # first seen
