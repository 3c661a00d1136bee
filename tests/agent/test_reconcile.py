"""The agent's pure decisions (reconcile.plan): table-driven cases and properties.

Properties (hypothesis): never hold an alias whose status names another node (or none);
planning again after applying a plan changes nothing (idempotent); a stale epoch changes
nothing; every node of a cluster running the same inputs yields at most one holder.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aliasip_nodeagent.hoststate import HeldAlias
from aliasip_nodeagent.reconcile import Hold, Observed, Plan, observe, plan

NODES = ("node1", "node2", "node3")
MACS = {"eth1": "02:00:00:00:01:01", "eth2": "02:00:00:00:01:02"}


def obj(
    name: str = "web",
    *addresses: str,
    active: str | None = None,
    epoch: int = 0,
    uid: str | None = None,
    nodes: tuple[str, ...] = ("node1", "node2"),
    interface: str | None = None,
    status: Any = "default",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "addresses": list(addresses) or ["198.18.0.50/24"],
        "nodes": list(nodes),
    }
    if interface is not None:
        spec["interface"] = interface
    body: dict[str, Any] = {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {"name": name, "uid": uid or f"uid-{name}"},
        "spec": spec,
    }
    body["status"] = {"activeNode": active, "epoch": epoch} if status == "default" else status
    return body


def held(address: str = "198.18.0.50/24", interface: str = "eth1") -> HeldAlias:
    return HeldAlias(
        interface=interface,
        index=2 if interface == "eth1" else 3,
        mac=MACS[interface],
        address=ipaddress.ip_interface(address),
    )


def run(
    *objects: dict[str, Any],
    have: tuple[HeldAlias, ...] = (),
    newest: dict[str, int] | None = None,
    node: str = "node1",
) -> Plan:
    return plan(node, [observe(o) for o in objects], have, newest or {})


def holds(p: Plan) -> list[tuple[str, int, bool]]:
    return [(h.aliasip, h.epoch, h.adopt) for h in p.holds]


def releases(p: Plan) -> list[str]:
    return [str(r.held.address) for r in p.releases]


CASES = [
    # (id, objects, held, newest, expected holds, expected releases)
    ("named-acquire", [obj(active="node1", epoch=1)], (), {}, [("web", 1, False)], []),
    ("named-adopt", [obj(active="node1", epoch=3)], (held(),), {}, [("web", 3, True)], []),
    ("other-node-release", [obj(active="node2", epoch=2)], (held(),), {}, [], ["198.18.0.50/24"]),
    ("none-named-release", [obj(active=None, epoch=2)], (held(),), {}, [], ["198.18.0.50/24"]),
    ("other-node-nothing-held", [obj(active="node2", epoch=2)], (), {}, [], []),
    ("no-status-nothing", [obj(status=None)], (), {}, [], []),
    ("orphan-released", [], (held(),), {}, [], ["198.18.0.50/24"]),
    (
        "orphan-with-other-aliasip",
        [obj("db", "198.18.0.60/24", active="node1", epoch=1)],
        (held(), held("198.18.0.60/24")),
        {},
        [("db", 1, True)],
        ["198.18.0.50/24"],
    ),
    ("stale-epoch-ignored", [obj(active="node1", epoch=1)], (), {"uid-web": 2}, [], []),
    (
        "stale-epoch-keeps-held",
        [obj(active="node2", epoch=1)],
        (held(),),
        {"uid-web": 2},
        [],
        [],
    ),
    (
        "same-epoch-acts",
        [obj(active="node1", epoch=2)],
        (),
        {"uid-web": 2},
        [("web", 2, False)],
        [],
    ),
    (
        "recreated-object-new-uid",
        [obj(active="node1", epoch=1, uid="second-life")],
        (),
        {"uid-web": 7},
        [("web", 1, False)],
        [],
    ),
    (
        "wrong-prefix-replaced",
        [obj(active="node1", epoch=1)],
        (held("198.18.0.50/25"),),
        {},
        [("web", 1, False)],
        ["198.18.0.50/25"],
    ),
    (
        "wrong-interface-replaced",
        [obj(active="node1", epoch=1, interface="eth1")],
        (held(interface="eth2"),),
        {},
        [("web", 1, False)],
        ["198.18.0.50/24"],
    ),
    (
        "partial-acquire",
        [obj("web", "198.18.0.50/24", "2001:2::50/64", active="node1", epoch=1)],
        (held(),),
        {},
        [("web", 1, False)],
        [],
    ),
    (
        "invalid-status-untouched",
        [obj(status={"activeNode": "node2", "epoch": "three"})],
        (held(),),
        {},
        [],
        [],
    ),
]


@pytest.mark.parametrize(
    ("objects", "have", "newest", "want_holds", "want_releases"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan_table(
    objects: list[dict[str, Any]],
    have: tuple[HeldAlias, ...],
    newest: dict[str, int],
    want_holds: list[tuple[str, int, bool]],
    want_releases: list[str],
) -> None:
    p = run(*objects, have=have, newest=newest)
    assert holds(p) == want_holds
    assert releases(p) == want_releases


def test_stale_object_is_reported_and_fencing_kept() -> None:
    p = run(obj(active="node1", epoch=1), newest={"uid-web": 5})
    assert p.stale == ("web",)
    assert p.newest == {"uid-web": 5}


def test_fencing_advances_and_forgets_deleted_objects() -> None:
    p = run(obj(active="node2", epoch=4), newest={"uid-web": 3, "uid-gone": 9})
    assert p.newest == {"uid-web": 4}


def test_release_says_why() -> None:
    p = run(obj(active="node2", epoch=2), have=(held(),))
    (r,) = p.releases
    assert (r.aliasip, r.epoch, r.reason) == ("web", 2, "status names node2")


def test_hold_carries_requests_and_announce_schedule() -> None:
    body = obj(active="node1", epoch=1, interface="eth1")
    body["spec"]["announce"] = {"count": 3, "intervalMs": 200}
    (h,) = run(body).holds
    assert h.announce_count == 3
    assert h.announce_interval_s == pytest.approx(0.2)
    (request,) = h.requests
    assert (str(request.ip), request.prefixlen, request.interface) == ("198.18.0.50", 24, "eth1")


def test_invalid_spec_wants_nothing_and_says_why() -> None:
    body = obj(active="node1", epoch=1)
    body["spec"]["addresses"] = ["not-an-address"]
    observed = observe(body)
    assert observed.spec is None
    assert observed.problem is not None and "invalid spec" in observed.problem
    assert plan("node1", [observed], (), {}).holds == ()


# --------------------------------------------------------------------------- properties

ADDRESSES = ("198.18.0.50/24", "198.18.0.51/24", "2001:2::50/64")
statuses = st.fixed_dictionaries(
    {"activeNode": st.sampled_from((None, *NODES)), "epoch": st.integers(0, 6)}
)
objects_strategy = st.lists(
    st.tuples(
        st.sampled_from(("a", "b", "c")), st.sets(st.sampled_from(ADDRESSES), min_size=1), statuses
    ),
    max_size=3,
    unique_by=lambda t: t[0],
)
held_strategy = st.sets(st.sampled_from(ADDRESSES)).map(lambda s: tuple(held(a) for a in sorted(s)))
newest_strategy = st.dictionaries(st.sampled_from(("uid-a", "uid-b", "uid-c")), st.integers(0, 6))


def build(spec: list[tuple[str, set[str], dict[str, Any]]]) -> list[Observed]:
    return [observe(obj(n, *sorted(a), status=s, nodes=NODES)) for n, a, s in spec]


def apply(p: Plan, have: tuple[HeldAlias, ...]) -> tuple[HeldAlias, ...]:
    """What the kernel holds after the plan succeeded (the daemon's job, modelled)."""
    after = [h for h in have if h not in {r.held for r in p.releases}]
    for h in p.holds:
        for request in h.requests:
            if not any(x.address.ip == request.ip for x in after):
                after.append(held(f"{request.ip}/{request.prefixlen}"))
    return tuple(after)


@settings(max_examples=300, deadline=None)
@given(objects_strategy, held_strategy, newest_strategy, st.sampled_from(NODES))
def test_never_holds_what_status_gives_to_another(
    spec: list[tuple[str, set[str], dict[str, Any]]],
    have: tuple[HeldAlias, ...],
    newest: dict[str, int],
    node: str,
) -> None:
    observed = build(spec)
    p = plan(node, observed, have, newest)
    by_name = {o.name: o for o in observed}
    for h in p.holds:
        assert by_name[h.aliasip].status.active_node == node
        assert h.epoch >= newest.get(by_name[h.aliasip].key, 0)
    for r in p.releases:
        assert r.held in have  # only what we marked ourselves


@settings(max_examples=300, deadline=None)
@given(objects_strategy, held_strategy, newest_strategy, st.sampled_from(NODES))
def test_idempotent(
    spec: list[tuple[str, set[str], dict[str, Any]]],
    have: tuple[HeldAlias, ...],
    newest: dict[str, int],
    node: str,
) -> None:
    observed = build(spec)
    first = plan(node, observed, have, newest)
    after = apply(first, have)
    second = plan(node, observed, after, first.newest)
    assert second.releases == ()
    assert all(h.adopt for h in second.holds)
    assert second.newest == first.newest


@settings(max_examples=200, deadline=None)
@given(objects_strategy, held_strategy)
def test_at_most_one_holder_per_alias(
    spec: list[tuple[str, set[str], dict[str, Any]]], have: tuple[HeldAlias, ...]
) -> None:
    observed = build(spec)
    holders: dict[str, set[str]] = {}
    for node in NODES:
        for h in plan(node, observed, have, {}).holds:
            holders.setdefault(h.aliasip, set()).add(node)
    assert all(len(nodes) == 1 for nodes in holders.values())


@settings(max_examples=200, deadline=None)
@given(objects_strategy, held_strategy, st.sampled_from(NODES))
def test_a_stale_epoch_changes_nothing(
    spec: list[tuple[str, set[str], dict[str, Any]]], have: tuple[HeldAlias, ...], node: str
) -> None:
    observed = build(spec)
    newer = {o.key: o.status.epoch + 1 for o in observed}
    p = plan(node, observed, have, newer)
    assert p.holds == ()
    assert set(p.stale) == {o.name for o in observed}
    protected = {a.ip for o in observed if o.spec for a in o.spec.addresses}
    assert all(r.held.address.ip not in protected for r in p.releases)


def test_hold_type_is_frozen() -> None:
    (h,) = run(obj(active="node1", epoch=1)).holds
    assert isinstance(h, Hold)
    with pytest.raises(AttributeError):
        h.epoch = 2  # type: ignore[misc]


def _moved(
    epoch: int, old_view: dict[str, Any] | None, source: str | None = "node2", to: str = "node1"
) -> dict[str, Any]:
    """node1 named at ``epoch`` after a move from ``source`` whose own report is ``old_view``."""
    status: dict[str, Any] = {
        "activeNode": "node1",
        "epoch": epoch,
        "lastTransition": {"from": source, "to": to, "reason": "Switchover"},
        "nodes": {"node2": old_view} if old_view is not None else {},
    }
    return obj(active="node1", epoch=epoch, status=status)


@pytest.mark.parametrize(
    ("case", "body", "probe"),
    [
        # planned: node2 reported released at the release epoch (2), node1 named at 3
        ("released-just-before", _moved(3, {"state": "released", "epoch": 2}), False),
        ("released-same-epoch", _moved(3, {"state": "released", "epoch": 3}), False),
        # failover: the old holder's last report still says holding
        ("old-holder-silent", _moved(4, {"state": "holding", "epoch": 3}), True),
        ("old-holder-error", _moved(4, {"state": "error", "epoch": 3}), True),
        # a release from an older move does not vouch for this one
        ("released-long-ago", _moved(6, {"state": "released", "epoch": 2}), True),
        ("no-report", _moved(3, None), True),
        ("no-previous-holder", _moved(1, None, source=None), True),
        ("transition-to-another", _moved(3, {"state": "released", "epoch": 2}, to="node3"), True),
        ("no-transition", obj(active="node1", epoch=3), True),
    ],
)
def test_probe_only_without_a_confirmed_release(
    case: str, body: dict[str, Any], probe: bool
) -> None:
    (hold,) = run(body).holds
    assert hold.probe is probe, case
