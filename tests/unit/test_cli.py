"""aliasip-agent CLI: exit codes, the one-line error, --json; no kernel is touched.

Parse-level failures run with NetlinkHost and Announcer replaced by tripwires, which
proves they fail before any netlink or packet socket is opened. The remaining cases run
against fakes, to pin the mapping from outcome to exit code and output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import TracebackType

import pytest

from aliasip_nodeagent import announce, cli, netlink
from aliasip_nodeagent.hoststate import HeldAlias, HostState, IPAddress
from aliasip_nodeagent.placement import Placement
from tests.unit.hosts import MAC_OTHER, host, iface, loopback, owned, stationary


class Tripwire:
    """Stands in for NetlinkHost and Announcer where no kernel access may happen."""

    def __init__(self) -> None:
        raise AssertionError("the kernel was touched before the input was validated")


@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netlink, "NetlinkHost", Tripwire)
    monkeypatch.setattr(announce, "Announcer", Tripwire)


@dataclass
class World:
    """The fake host the CLI sees, and what was done to it."""

    state: HostState
    conflict_mac: str | None = None
    calls: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    conflict_mac: str | None


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    made = World(
        state=host(
            loopback(),
            iface("eth1", stationary("198.18.0.2/24"), owned("198.18.0.60/24")),
        )
    )

    class FakeNetlinkHost:
        def __init__(self) -> None:
            made.calls.append("open")

        def __enter__(self) -> FakeNetlinkHost:
            return self

        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None:
            made.calls.append("close")

        def snapshot(self, version: int | None = None, interface: str | None = None) -> HostState:
            made.calls.append("snapshot")
            return made.state

        def add(self, placement: Placement) -> bool:
            made.calls.append(f"add {placement.address} {placement.interface}")
            return True

        def delete(self, held: HeldAlias) -> bool:
            made.calls.append(f"delete {held.address} {held.interface}")
            return True

    class FakeAnnouncer:
        def announce(self, interface: str, mac: str, ip: IPAddress) -> int:
            made.calls.append(f"announce {ip}")
            return 2

        def probe(self, interface: str, mac: str, ip: IPAddress, wait_s: float) -> Outcome:
            made.calls.append(f"probe {ip} {wait_s}")
            return Outcome(made.conflict_mac)

        def close(self) -> None:
            made.calls.append("announcer-close")

    monkeypatch.setattr(netlink, "NetlinkHost", FakeNetlinkHost)
    monkeypatch.setattr(announce, "Announcer", FakeAnnouncer)
    return made


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (["apply", "not-an-ip"], "InvalidAddress", "'not-an-ip' is not an IPv4 or IPv6 address"),
        (["apply", "198.18.0.50/33"], "InvalidAddress", "prefix must be a number from 0 to 32"),
        (["apply", "2001:2::50/129"], "InvalidAddress", "from 0 to 128"),
        (["apply", "198.18.0.50", "--interface", ""], "InvalidAddress", "--interface"),
        (["apply", "127.0.0.5"], "ReservedAddress", "127.0.0.5 is a loopback address"),
        (["apply", "ff02::1"], "ReservedAddress", "multicast"),
        (["apply", "198.18.0.50", "--announce-count", "0"], "InvalidAddress", "announce count"),
        (["apply", "198.18.0.50", "--announce-count", "101"], "InvalidAddress", "announce count"),
        (
            ["apply", "198.18.0.50", "--announce-interval-ms", "5"],
            "InvalidAddress",
            "announce interval",
        ),
        (["apply", "198.18.0.50", "--probe-wait-ms", "0"], "InvalidAddress", "--probe-wait-ms"),
        (
            ["apply", "198.18.0.50", "--probe-wait-ms", "5001"],
            "InvalidAddress",
            "--probe-wait-ms",
        ),
    ],
    ids=[
        "garbage",
        "v4-prefix-33",
        "v6-prefix-129",
        "empty-interface",
        "loopback",
        "multicast",
        "announce-count-0",
        "announce-count-101",
        "announce-interval-5ms",
        "probe-wait-0",
        "probe-wait-5001",
    ],
)
@pytest.mark.usefixtures("no_kernel")
def test_apply_refuses_bad_input_before_the_kernel(
    argv: list[str], code: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"aliasip-agent: {code}: ")
    assert fragment in lines[0]


@pytest.mark.usefixtures("no_kernel")
def test_apply_json_failure(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["apply", "not-an-ip", "--json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "ok": False,
        "error": "InvalidAddress",
        "message": "'not-an-ip' is not an IPv4 or IPv6 address",
    }
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [["apply"], ["release"], ["release", "198.18.0.50", "--all"], ["frobnicate"], []],
    ids=["apply-no-address", "release-no-target", "release-address-and-all", "unknown", "none"],
)
@pytest.mark.usefixtures("no_kernel")
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 2
    assert "usage: aliasip-agent" in capsys.readouterr().err


def test_release_bad_input_exits_2_without_reading_the_host(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["release", "not-an-ip"]) == 2
    assert "snapshot" not in world.calls
    assert not [c for c in world.calls if c.startswith("delete")]
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert "InvalidAddress" in lines[0]


def test_apply_json_success(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["apply", "198.18.0.50", "--json", "--announce-count", "1", "--probe-wait-ms", "20"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    result = json.loads(out)
    assert result["ok"] is True
    assert {k: result[k] for k in ("action", "address", "prefix", "interface", "changed")} == {
        "action": "apply",
        "address": "198.18.0.50",
        "prefix": 24,
        "interface": "eth1",
        "changed": True,
    }
    assert result["announcements"] == 1
    assert world.calls.index("probe 198.18.0.50 0.02") < world.calls.index(
        "add 198.18.0.50/24 eth1"
    )
    assert world.calls[-1] == "announcer-close"


def test_apply_no_probe_human_output(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["apply", "198.18.0.50", "--no-probe", "--announce-count", "1"]) == 0
    assert not [c for c in world.calls if c.startswith("probe")]
    out = capsys.readouterr().out
    assert out == "198.18.0.50/24 added on eth1 (not probed; 1 announcement rounds)\n"


def test_apply_conflict_exits_4(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.conflict_mac = MAC_OTHER
    assert cli.main(["apply", "198.18.0.50", "--json"]) == 4
    out, err = capsys.readouterr()
    assert json.loads(out)["error"] == "AddressInUse"
    assert MAC_OTHER in err
    assert not [c for c in world.calls if c.startswith("add")]
    assert world.calls[-1] == "announcer-close"


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["apply", "198.19.0.50"], "NoCoveringInterface"),
        (["apply", "198.18.0.50", "--interface", "eth9"], "UnknownInterface"),
    ],
    ids=["no-covering-interface", "unknown-interface"],
)
def test_apply_placement_refusal_exits_3(
    world: World, argv: list[str], code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"aliasip-agent: {code}: ")
    assert not [c for c in world.calls if c.startswith(("add", "probe", "announce "))]


def test_release_foreign_exits_3(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["release", "198.18.0.2"]) == 3
    assert "NotOwned" in capsys.readouterr().err
    assert not [c for c in world.calls if c.startswith("delete")]


def test_release_and_list_json(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "ok": True,
        "action": "list",
        "aliases": [{"address": "198.18.0.60", "prefix": 24, "interface": "eth1"}],
    }
    assert cli.main(["release", "198.18.0.60"]) == 0
    assert capsys.readouterr().out == "198.18.0.60/24 released from eth1\n"
    assert "delete 198.18.0.60/24 eth1" in world.calls
    assert cli.main(["release", "198.18.0.61"]) == 0
    assert capsys.readouterr().out == "198.18.0.61: not held here, nothing to do\n"


def test_permission_error_exits_1(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Denied:
        def __init__(self) -> None:
            raise PermissionError("[Errno 1] Operation not permitted")

    monkeypatch.setattr(netlink, "NetlinkHost", Denied)
    assert cli.main(["list"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("aliasip-agent: PermissionDenied: ")
    assert "NET_ADMIN" in err[0]
