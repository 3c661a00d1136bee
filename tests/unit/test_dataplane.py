"""dataplane orchestrations against fakes of the Netlink and Announce protocols.

The fakes record every call in one shared log (like Cilium's fake gneigh.Sender), so the
tests can assert the order of side effects, and that refused requests cause none.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pytest

from aliasip_nodeagent import errors
from aliasip_nodeagent.dataplane import (
    AnnounceSchedule,
    ApplyResult,
    announce_repeats,
    apply_alias,
    list_aliases,
    release_alias,
    release_all,
)
from aliasip_nodeagent.hoststate import HeldAlias, HostState, IPAddress
from aliasip_nodeagent.placement import Placement, parse_request
from tests.unit.hosts import MAC_ETH1, MAC_OTHER, host, iface, loopback, owned, stationary

Call = tuple[object, ...]


@dataclass
class FakeNetlink:
    state: HostState
    log: list[Call]
    add_changes: bool = True
    delete_changes: bool = True

    def snapshot(self, version: int | None = None, interface: str | None = None) -> HostState:
        self.log.append(("snapshot",))
        return self.state

    def add(self, placement: Placement) -> bool:
        self.log.append(("add", placement.interface, str(placement.address)))
        return self.add_changes

    def delete(self, held: HeldAlias) -> bool:
        self.log.append(("delete", held.interface, str(held.address)))
        return self.delete_changes


@dataclass(frozen=True)
class FakeProbeOutcome:
    conflict_mac: str | None


@dataclass
class FakeAnnounce:
    log: list[Call]
    conflict_mac: str | None = None
    announce_error: Exception | None = None
    fail_after: int = 0  # announcements that succeed before announce_error is raised
    announced: int = field(default=0, init=False)

    def announce(self, interface: str, mac: str, ip: IPAddress) -> int:
        self.log.append(("announce", interface, mac, str(ip)))
        if self.announce_error is not None and self.announced >= self.fail_after:
            raise self.announce_error
        self.announced += 1
        return 2

    def probe(self, interface: str, mac: str, ip: IPAddress, wait_s: float) -> FakeProbeOutcome:
        self.log.append(("probe", interface, mac, str(ip), wait_s))
        return FakeProbeOutcome(self.conflict_mac)


NODE = host(
    loopback(),
    iface("eth1", stationary("198.18.0.2/24"), stationary("2001:2::2/64")),
)
NODE_HOLDING = host(
    loopback(),
    iface(
        "eth1",
        stationary("198.18.0.2/24"),
        owned("198.18.0.50/24"),
        stationary("2001:2::2/64"),
        owned("2001:2::50/64"),
    ),
)


def fakes(state: HostState, **announce: object) -> tuple[list[Call], FakeNetlink, FakeAnnounce]:
    log: list[Call] = []
    conflict = announce.get("conflict_mac")
    error = announce.get("announce_error")
    assert conflict is None or isinstance(conflict, str)
    assert error is None or isinstance(error, Exception)
    return (
        log,
        FakeNetlink(state, log),
        FakeAnnounce(log, conflict_mac=conflict, announce_error=error),
    )


@pytest.mark.parametrize(
    ("text", "address"),
    [("198.18.0.50", "198.18.0.50/24"), ("2001:2::50", "2001:2::50/64")],
    ids=["v4", "v6"],
)
def test_apply_probes_then_adds_then_announces(text: str, address: str) -> None:
    log, netlink, announcer = fakes(NODE)
    result = apply_alias(parse_request(text), netlink, announcer, probe_wait_s=0.05)
    ip = text
    assert log == [
        ("snapshot",),
        ("probe", "eth1", MAC_ETH1, ip, 0.05),
        ("add", "eth1", address),
        ("announce", "eth1", MAC_ETH1, ip),
    ]
    assert result.changed is True
    assert result.rounds_sent == 1
    assert result.probe_ms is not None
    assert result.probe_ms >= 0
    assert result.to_dict() == {
        "action": "apply",
        "address": ip,
        "prefix": int(address.split("/")[1]),
        "interface": "eth1",
        "changed": True,
        "probe_ms": round(result.probe_ms, 2),
        "announcements": 1,
    }


@pytest.mark.parametrize("text", ["198.18.0.50", "2001:2::50"], ids=["v4", "v6"])
def test_probe_conflict_refuses_without_adding(text: str) -> None:
    log, netlink, announcer = fakes(NODE, conflict_mac=MAC_OTHER)
    with pytest.raises(errors.AddressInUse) as caught:
        apply_alias(parse_request(text), netlink, announcer)
    assert MAC_OTHER in caught.value.message
    assert text in caught.value.message
    assert caught.value.exit_code == 4
    assert [c[0] for c in log] == ["snapshot", "probe"]


@pytest.mark.parametrize(
    ("text", "address"),
    [("198.18.0.50", "198.18.0.50/24"), ("2001:2::50", "2001:2::50/64")],
    ids=["v4", "v6"],
)
def test_already_held_skips_probe_and_add_but_announces_once(text: str, address: str) -> None:
    log, netlink, announcer = fakes(NODE_HOLDING, conflict_mac=MAC_OTHER)
    netlink.add_changes = False  # what the real, idempotent add reports for a present address
    result = apply_alias(parse_request(text), netlink, announcer)
    assert [c[0] for c in log if c[0] in ("probe", "announce")] == ["announce"]
    assert result.placement.already_held is True
    assert result.probe_ms is None
    assert result.rounds_sent == 1
    assert ("announce", "eth1", MAC_ETH1, text) in log
    assert result.changed is False
    # The code may re-assert the address with an idempotent add(); nothing else is allowed.
    assert [c for c in log if c[0] == "add"] in ([], [("add", "eth1", address)])


def test_probe_wait_none_skips_the_probe() -> None:
    log, netlink, announcer = fakes(NODE, conflict_mac=MAC_OTHER)
    result = apply_alias(parse_request("198.18.0.50"), netlink, announcer, probe_wait_s=None)
    assert [c[0] for c in log] == ["snapshot", "add", "announce"]
    assert result.probe_ms is None
    assert result.to_dict()["probe_ms"] is None


def test_first_announce_failure_removes_the_added_address() -> None:
    log, netlink, announcer = fakes(NODE, announce_error=OSError("Network is down"))
    with pytest.raises(errors.KernelError) as caught:
        apply_alias(parse_request("198.18.0.50"), netlink, announcer)
    assert [c[0] for c in log] == ["snapshot", "probe", "add", "announce", "delete"]
    assert log[-1] == ("delete", "eth1", "198.18.0.50/24")
    assert "Network is down" in caught.value.message
    assert "eth1" in caught.value.message
    assert isinstance(caught.value.__cause__, OSError)


def test_announce_failure_after_a_no_op_add_deletes_nothing() -> None:
    # add() reports no change (the kernel already had it): the rollback must not delete an
    # address that this call did not add, and the message must not claim it did.
    log, netlink, announcer = fakes(NODE_HOLDING, announce_error=OSError("Network is down"))
    netlink.add_changes = False
    with pytest.raises(errors.KernelError) as caught:
        apply_alias(parse_request("198.18.0.50"), netlink, announcer)
    assert not [c for c in log if c[0] == "delete"]
    assert "removed again" not in caught.value.message


def test_refusal_changes_nothing() -> None:
    log, netlink, announcer = fakes(NODE)
    with pytest.raises(errors.NoCoveringInterface):
        apply_alias(parse_request("198.19.0.50"), netlink, announcer)
    assert log == [("snapshot",)]


def test_announce_repeats_follows_the_schedule() -> None:
    log, netlink, announcer = fakes(NODE)
    result = apply_alias(parse_request("198.18.0.50"), netlink, announcer, probe_wait_s=None)
    slept: list[float] = []

    def sleep(delay: float) -> None:
        slept.append(delay)
        log.append(("sleep", delay))

    announce_repeats(result, announcer, AnnounceSchedule(count=4, interval_s=0.25), sleep=sleep)
    assert slept == [0.25, 0.25, 0.25]
    assert result.rounds_sent == 4
    after_first = log[log.index(("announce", "eth1", MAC_ETH1, "198.18.0.50")) + 1 :]
    assert (
        after_first
        == [
            ("sleep", 0.25),
            ("announce", "eth1", MAC_ETH1, "198.18.0.50"),
        ]
        * 3
    )


def test_announce_repeats_with_one_round_never_sleeps() -> None:
    _, netlink, announcer = fakes(NODE)
    result = apply_alias(parse_request("2001:2::50"), netlink, announcer, probe_wait_s=None)
    slept: list[float] = []
    announce_repeats(result, announcer, AnnounceSchedule(count=1), sleep=slept.append)
    assert slept == []
    assert result.rounds_sent == 1


def test_default_schedule_is_four_rounds_1_1_s_apart() -> None:
    schedule = AnnounceSchedule()
    assert list(schedule.repeat_delays()) == [1.1, 1.1, 1.1]


@pytest.mark.parametrize(
    ("count", "interval_s", "fragment"),
    [
        (0, 1.0, "announce count"),
        (-1, 1.0, "announce count"),
        (101, 1.0, "announce count"),
        (4, 0.0, "announce interval"),
        (4, 0.009, "announce interval"),
        (4, 60.5, "announce interval"),
    ],
    ids=["count-0", "count-negative", "count-101", "interval-0", "interval-9ms", "interval-60.5s"],
)
def test_announce_schedule_bounds_refused(count: int, interval_s: float, fragment: str) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        AnnounceSchedule(count=count, interval_s=interval_s)
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("count", "interval_s"),
    [(1, 0.01), (100, 60.0), (4, 1.1)],
    ids=["lowest", "highest", "default"],
)
def test_announce_schedule_bounds_accepted(count: int, interval_s: float) -> None:
    assert list(AnnounceSchedule(count, interval_s).repeat_delays()) == [interval_s] * (count - 1)


# ---- release ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "state", "deleted"),
    [
        ("198.18.0.50", NODE_HOLDING, [("delete", "eth1", "198.18.0.50/24")]),
        ("2001:2::50", NODE_HOLDING, [("delete", "eth1", "2001:2::50/64")]),
        ("198.18.0.50", NODE, []),
        (
            "198.18.0.50",
            host(
                iface("eth1", stationary("198.18.0.2/24"), owned("198.18.0.50/24")),
                iface("eth2", owned("198.18.0.50/32")),
            ),
            [("delete", "eth1", "198.18.0.50/24"), ("delete", "eth2", "198.18.0.50/32")],
        ),
    ],
    ids=["v4-held", "v6-held", "not-held", "held-twice"],
)
def test_release_alias_deletes_only_owned_matches(
    ip: str, state: HostState, deleted: list[Call]
) -> None:
    log, netlink, _ = fakes(state)
    result = release_alias(ipaddress.ip_address(ip), netlink)
    assert [c for c in log if c[0] == "delete"] == deleted
    assert result.changed == bool(deleted)
    assert result.to_dict()["address"] == ip
    assert [(h.interface, str(h.address)) for h in result.released] == [d[1:] for d in deleted]
    released = result.to_dict()["released"]
    assert isinstance(released, list)
    assert [r["interface"] for r in released] == [d[1] for d in deleted]


def test_release_alias_reports_nothing_when_the_kernel_had_nothing() -> None:
    _, netlink, _ = fakes(NODE_HOLDING)
    netlink.delete_changes = False
    result = release_alias(ipaddress.ip_address("198.18.0.50"), netlink)
    assert result.released == []
    assert result.changed is False


@pytest.mark.parametrize("ip", ["198.18.0.2", "2001:2::2"], ids=["v4", "v6"])
def test_release_alias_refuses_a_foreign_address(ip: str) -> None:
    log, netlink, _ = fakes(NODE_HOLDING)
    with pytest.raises(errors.NotOwned) as caught:
        release_alias(ipaddress.ip_address(ip), netlink)
    assert "was not added by aliasip" in caught.value.message
    assert not [c for c in log if c[0] == "delete"]


def test_release_all_leaves_foreign_addresses_alone() -> None:
    state = host(
        loopback(),
        iface("eth1", stationary("198.18.0.2/24"), owned("198.18.0.50/24")),
        iface("eth2", stationary("2001:2::2/64"), owned("2001:2::50/64"), owned("2001:2::51/64")),
    )
    log, netlink, _ = fakes(state)
    result = release_all(netlink)
    assert [c for c in log if c[0] == "delete"] == [
        ("delete", "eth1", "198.18.0.50/24"),
        ("delete", "eth2", "2001:2::50/64"),
        ("delete", "eth2", "2001:2::51/64"),
    ]
    assert result.to_dict()["address"] == "all"
    assert result.changed is True


def test_release_all_on_a_host_without_aliases_changes_nothing() -> None:
    log, netlink, _ = fakes(NODE)
    result = release_all(netlink)
    assert log == [("snapshot",)]
    assert result.changed is False


def test_list_aliases_lists_only_owned() -> None:
    _, netlink, _ = fakes(NODE_HOLDING)
    assert [h.to_dict() for h in list_aliases(netlink)] == [
        {"address": "198.18.0.50", "prefix": 24, "interface": "eth1"},
        {"address": "2001:2::50", "prefix": 64, "interface": "eth1"},
    ]


def test_apply_result_rounds_are_counted_from_the_first() -> None:
    placement = Placement(
        index=2,
        interface="eth1",
        mac=MAC_ETH1,
        address=ipaddress.ip_interface("198.18.0.50/24"),
    )
    result = ApplyResult(placement=placement, changed=True, rounds_sent=1)
    log: list[Call] = []
    announcer = FakeAnnounce(log)
    announce_repeats(result, announcer, AnnounceSchedule(3, 0.5), sleep=lambda _: None)
    assert result.to_dict()["announcements"] == 3
    assert len(log) == 2
