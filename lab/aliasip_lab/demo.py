"""The lab demo: move an alias from node1 to node2 and show what a client saw.

Builds a LAN of namespaces (two nodes and a client on a bridge), puts an alias on node1
with ``aliasip-agent apply``, starts a 10 ms reachability prober on the client, then moves
the alias the way an admin would with IPaddr2 (``release`` on node1, ``apply`` on node2)
and prints a timeline: which MAC answered when, when the gratuitous ARP reached the
client, the outage in ms, and whether two MACs ever answered at once. Always tears down.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aliasip_lab.capture import Capture, Frame
from aliasip_lab.lan import Host, Lan
from aliasip_lab.nsenter import netns
from aliasip_lab.prober import ProbeReport

MOVE_AT_S = 1.0
PROBE_S = 6.0


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
    with capture:
        time.sleep(MOVE_AT_S)
        say(f"node1: aliasip-agent release {alias}")
        _, started, ended = agent(lan, node1, "release", alias)
        steps += [Step(started, "node1: release starts"), Step(ended, "node1: release done")]
        say(f"node2: aliasip-agent apply {alias}  (probe, add, gratuitous ARP x4 over 3.3 s)")
        result, started, ended = agent(lan, node2, "apply", alias)
        steps += [Step(started, "node2: apply starts"), Step(ended, "node2: apply done")]
        out, _ = prober.communicate(timeout=PROBE_S + 30)
        frames = capture.stop()
    report = ProbeReport.from_dict(json.loads(out))
    steps += _announcement_steps(frames, alias, names)
    steps += _reply_steps(report, names)
    _print_timeline(report, steps)
    _print_summary(report, names, lan.neighbour_mac(lan.client, alias))
    return 0 if report.split_brain_samples() == [] and report.answered > 0 else 1


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


def _print_summary(report: ProbeReport, names: dict[str, str], neighbour: str | None) -> None:
    gaps = report.gaps()
    answered_by = " then ".join(
        f"{names.get(str(s['mac']), s['mac'])} ({s['mac']}, {s['replies']} replies)"
        for s in report.segments()
    )
    rows = [
        ("probes sent / answered", f"{report.sent} / {report.answered}"),
        ("answered by", answered_by),
        (
            "client-seen outage",
            f"{report.outage_ms():.1f} ms ({sum(g.lost for g in gaps)} probes lost)",
        ),
        ("split-brain samples", str(len(report.split_brain_samples()))),
        ("client neighbour entry", f"{neighbour} ({names.get(neighbour or '', '?')})"),
    ]
    width = max(len(k) for k, _ in rows)
    say("\nsummary")
    for key, value in rows:
        say(f"  {key:<{width}}  {value}")


def main(argv: Sequence[str] | None = None) -> int:
    return run()
