"""The lab demo: move an alias between two nodes and show what a client saw.

Builds a LAN of namespaces (two nodes and a client on a bridge), puts an alias on node1
with ``aliasip-agent apply``, starts a 10 ms reachability prober on the client, then moves
the alias twice: to node2 the way an admin would with IPaddr2 (``release`` on node1 and
``apply`` on node2, fresh processes), and back to node1 with the same data-path functions
already loaded, as the agent daemon will run them. It prints a timeline (which MAC
answered when, when each gratuitous ARP reached the client), the outage of each move,
and whether two MACs ever answered at once. Always tears the LAN down.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aliasip_lab.capture import Capture, Frame
from aliasip_lab.lan import Host, Lan
from aliasip_lab.nsenter import netns
from aliasip_lab.prober import Gap, ProbeReport
from aliasip_nodeagent import dataplane
from aliasip_nodeagent.announce import Announcer
from aliasip_nodeagent.netlink import NetlinkHost
from aliasip_nodeagent.placement import parse_request

MOVE_AT_S = 1.0
SECOND_MOVE_PAUSE_S = 0.8
PROBE_S = 8.0


@dataclass(frozen=True)
class Step:
    at: float  # epoch seconds
    what: str


def say(text: str) -> None:
    print(text, flush=True)


def agent(lan: Lan, host: Host, *args: str) -> tuple[dict[str, object], float, float]:
    """Run ``aliasip-agent`` in ``host``'s namespace; (json result, start, end)."""
    started = time.time()
    done = lan.run(host, sys.executable, "-m", "aliasip_nodeagent", *args, "--json", check=False)
    ended = time.time()
    if done.returncode != 0:
        raise SystemExit(f"aliasip-agent {' '.join(args)} on {host.name}: {done.stderr.strip()}")
    result: dict[str, object] = json.loads(done.stdout)
    return result, started, ended


def run(alias: str = "198.18.0.50") -> int:
    say("aliasip demo: an alias moves between two nodes; a client probes it every 10 ms\n")
    say("building the LAN (network namespaces: a switch, node1, node2, a client) ...")
    lan = Lan.create(nodes=2)
    try:
        return _demo(lan, alias)
    finally:
        lan.destroy()
        say("\nLAN removed (all namespaces deleted)")


def _demo(lan: Lan, alias: str) -> int:
    node1, node2 = lan.nodes
    names = {h.mac: h.name for h in lan.hosts}
    for host in lan.hosts:
        say(f"  {host.name:7} {host.mac}  {host.ipv4}  {host.ipv6}")
    say(f"\nnode1: aliasip-agent apply {alias}")
    result, _, _ = agent(lan, node1, "apply", alias, "--announce-count", "1")
    prefix, interface, probe = result["prefix"], result["interface"], result["probe_ms"]
    say(f"  {alias}/{prefix} added on {interface} (probe {probe} ms)")
    resident = {host.name: ResidentPath.open(host) for host in (node1, node2)}

    say(f"client: probing {alias} every 10 ms for {PROBE_S:.0f} s ...")
    prober = lan.spawn(
        lan.client,
        [sys.executable, "-m", "aliasip_lab.prober", alias, "--interval-ms", "10",
         "--duration", str(PROBE_S), "--json"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    with netns(lan.client.netns):
        capture = Capture(lan.client.ifname)
    steps: list[Step] = []
    moves: list[Move] = []
    try:
        with capture:
            time.sleep(MOVE_AT_S)
            say("\nmove 1, by hand as with IPaddr2: two fresh aliasip-agent processes")
            say(f"  node1: aliasip-agent release {alias}")
            _, started, ended = agent(lan, node1, "release", alias)
            steps += [Step(started, "node1: release starts"), Step(ended, "node1: release done")]
            say(f"  node2: aliasip-agent apply {alias}  (probe, add, gratuitous ARP x4 over 3.3 s)")
            _, _, applied = agent(lan, node2, "apply", alias)
            steps.append(Step(applied, "node2: apply done"))
            moves.append(Move("1: node1 -> node2", "aliasip-agent release + apply", started))

            time.sleep(SECOND_MOVE_PAUSE_S)
            say("\nmove 2, the way the agent daemon will: the same functions, already loaded")
            say("  node2: release_alias()   node1: apply_alias()  (probe, add, gratuitous ARP)")
            started = time.time()
            resident["node2"].release(alias)
            steps.append(Step(time.time(), "node2: release_alias() returned"))
            resident["node1"].apply(alias)
            steps.append(Step(time.time(), "node1: apply_alias() returned"))
            moves.append(Move("2: node2 -> node1", "in-process data path", started))
            out, _ = prober.communicate(timeout=PROBE_S + 30)
            frames = capture.stop()
    finally:
        for path in resident.values():
            path.close()
    report = ProbeReport.from_dict(json.loads(out))
    steps += _announcement_steps(frames, alias, names)
    steps += _reply_steps(report, names)
    _print_timeline(report, steps)
    _print_summary(report, names, lan.neighbour_mac(lan.client, alias), moves)
    return 0 if report.split_brain_samples() == [] and report.answered > 0 else 1


@dataclass(frozen=True)
class Move:
    name: str
    how: str
    started_at: float  # epoch seconds


@dataclass
class ResidentPath:
    """Netlink and packet sockets opened once in a node's namespace, as the daemon keeps them."""

    host: Host
    netlink: NetlinkHost
    announcer: Announcer

    @classmethod
    def open(cls, host: Host) -> ResidentPath:
        with netns(host.netns):
            announcer = Announcer()
            announcer.socket_for(host.ifname, 4)
            return cls(host, NetlinkHost(), announcer)

    def release(self, alias: str) -> None:
        dataplane.release_alias(ipaddress.ip_address(alias), self.netlink)

    def apply(self, alias: str) -> None:
        dataplane.apply_alias(parse_request(alias), self.netlink, self.announcer)

    def close(self) -> None:
        self.netlink.close()
        self.announcer.close()


def _announcement_steps(frames: list[Frame], alias: str, names: dict[str, str]) -> list[Step]:
    """Gratuitous ARPs (sender IP = target IP = alias) that reached the client."""
    packed = bytes(int(p) for p in alias.split("."))
    steps = []
    for frame in frames:
        arp = frame.data[14:42]
        if frame.outgoing or frame.ethertype != 0x0806 or len(arp) < 28:
            continue
        if arp[14:18] == packed and arp[24:28] == packed:
            kind = "request" if arp[7] == 1 else "reply"
            who = names.get(frame.src_mac, frame.src_mac)
            steps.append(Step(frame.at, f"client: gratuitous ARP {kind} from {who}"))
    return steps


def _reply_steps(report: ProbeReport, names: dict[str, str]) -> list[Step]:
    steps = []
    for seg in report.segments():
        start = report.started_at + float(str(seg["first_ms"])) / 1000
        end = report.started_at + float(str(seg["last_ms"])) / 1000
        who = names.get(str(seg["mac"]), str(seg["mac"]))
        steps.append(Step(start, f"client: replies from {who} begin"))
        steps.append(Step(end, f"client: last reply from {who}"))
    return steps


def _print_timeline(report: ProbeReport, steps: list[Step]) -> None:
    say("\ntimeline (ms since the client started probing)")
    for step in sorted(steps, key=lambda s: s.at):
        say(f"  {(step.at - report.started_at) * 1000:8.1f}  {step.what}")


def _print_summary(
    report: ProbeReport, names: dict[str, str], neighbour: str | None, moves: list[Move]
) -> None:
    answered_by = " then ".join(
        f"{names.get(str(s['mac']), s['mac'])} ({s['replies']})" for s in report.segments()
    )
    rows = [
        ("probes sent / answered", f"{report.sent} / {report.answered}"),
        ("answered by (replies)", answered_by),
        ("split-brain samples", str(len(report.split_brain_samples()))),
        ("client neighbour entry", f"{neighbour} ({names.get(neighbour or '', '?')})"),
    ]
    width = max(len(k) for k, _ in rows)
    say("\nsummary")
    for key, value in rows:
        say(f"  {key:<{width}}  {value}")
    say(f"\n  {'move':<18} {'how':<32} {'client-seen outage':>18} {'probes lost':>12}")
    for move, gap in _gaps_per_move(report, moves):
        outage = f"{gap.outage_ms:.1f} ms" if gap else "0 ms"
        lost = str(gap.lost) if gap else "0"
        say(f"  {move.name:<18} {move.how:<32} {outage:>18} {lost:>12}")


def _gaps_per_move(report: ProbeReport, moves: list[Move]) -> list[tuple[Move, Gap | None]]:
    """The longest gap that began after each move started (and before the next one)."""
    bounds = [*(m.started_at for m in moves[1:]), float("inf")]
    paired = []
    for move, until in zip(moves, bounds, strict=True):
        sent_at = {r.seq: report.started_at + r.sent_ms / 1000 for r in report.replies}
        inside = [
            g for g in report.gaps()
            if move.started_at - 0.05 <= sent_at.get(g.after_seq, 0.0) < until
        ]  # fmt: skip
        paired.append((move, max(inside, key=lambda g: g.outage_ms, default=None)))
    return paired


def main(argv: Sequence[str] | None = None) -> int:
    return run()
