"""Data-path benchmark: how long do clients lose an alias while it moves between two nodes?

One lab LAN (node1, node2, client; LAN interface eth1), one alias, several ways to move it
from node1 to node2, all measured in the same run under the same conditions:

- ``floor``: ``ip addr del`` on node1, ``ip addr add`` and ``arping -U`` on node2 — the
  least an administrator can do by hand, the yardstick for everything else;
- ``cli``, ``cli-noprobe``: ``aliasip-agent release`` on node1, then ``aliasip-agent
  apply --announce-count 1`` on node2, each a fresh process (with and without the probe);
- ``inproc-noprobe``, ``inproc-probe``: ``dataplane.release_alias`` / ``apply_alias`` on
  netlink and packet sockets opened once per node, as the long-running daemon will do.

For each move the client-seen outage comes from the 10 ms ICMP prober
(``aliasip_lab.prober``) run in the client namespace, and the moment the first gratuitous
ARP reached the client from a kernel-timestamped capture there. Over the same window the
wire observer (``bench.probing.observing``) counts split-brain rounds (two MACs answering
one broadcast ARP request) and the holderless time on the wire. Every per-node command runs
through ``ip netns exec``, so the subprocess methods all pay the same (separately
measured) namespace-entry overhead. Results go to ``bench/results/datapath.{json,md}``.

    .venv/bin/python -m bench.datapath --runs 10
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import ipaddress
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from aliasip_lab.capture import Frame
from aliasip_lab.lan import Host, Lan, ip
from aliasip_lab.nsenter import netns
from aliasip_nodeagent.announce import Announcer
from aliasip_nodeagent.dataplane import DEFAULT_PROBE_WAIT_S, apply_alias, release_alias
from aliasip_nodeagent.netlink import NetlinkHost
from aliasip_nodeagent.placement import AliasRequest
from bench.probing import (
    LOCKTIME_WAIT_S,
    PROBE_INTERVAL_MS,
    Json,
    capture_on,
    check_neighbour,
    exec_in,
    finish_prober,
    forget_neighbour,
    move_by_hand,
    observing,
    start_prober,
    wait_prober_ready,
    wire_figures,
)

ALIAS = ipaddress.IPv4Address("198.18.0.50")
ALIAS_IFACE = ipaddress.IPv4Interface(f"{ALIAS}/24")
ALIAS_CIDR = str(ALIAS_IFACE)
IFNAME = "eth1"
# The prober must still run when the slowest method is done; it must also outlive the
# locktime wait and its own start-up. A move that ends later than this margin fails the run.
PROBER_TAIL_S = 0.3
FIRST_FRAME_TARGET_MS = 5.0
ETH_P_ARP = 0x0806
ARP_REQUEST = 1
RESULTS_DIR = Path(__file__).resolve().parent / "results"
COMMAND = ".venv/bin/python -m bench.datapath --runs {runs}"


# --------------------------------------------------------------------------- the LAN


@dataclass
class NodeHandles:
    """A node and the daemon-style handles opened once inside its namespace."""

    host: Host
    netlink: NetlinkHost
    announcer: Announcer

    def close(self) -> None:
        self.announcer.close()
        self.netlink.close()


@dataclass
class Bench:
    """Everything a move needs: the LAN, both nodes' handles, how to start the agent."""

    lan: Lan
    node1: NodeHandles
    node2: NodeHandles
    agent: list[str]

    @property
    def client(self) -> Host:
        return self.lan.client


def open_handles(host: Host) -> NodeHandles:
    """Open netlink and packet sockets in ``host``'s namespace; they stay bound to it.

    Only the construction (and the first ``socket_for``) runs inside the namespace, as the
    daemon would open them once at start; afterwards they are used from the home namespace.
    """
    with netns(host.netns):
        netlink = NetlinkHost()
        announcer = Announcer()
        try:
            announcer.socket_for(host.ifname, ALIAS.version)
        except BaseException:
            netlink.close()
            raise
    handles = NodeHandles(host, netlink, announcer)
    eth = netlink.snapshot().by_name(host.ifname)
    if eth is None or host.ipv4 not in [a.interface for a in eth.addresses]:
        handles.close()
        raise RuntimeError(f"netlink handle for {host.name} does not see {host.ipv4}")
    return handles


def agent_argv() -> list[str]:
    """The installed ``aliasip-agent`` next to this interpreter (what an admin runs)."""
    script = Path(sys.executable).with_name("aliasip-agent")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "aliasip_nodeagent"]


# --------------------------------------------------------------------------- the moves


@dataclass
class MoveTiming:
    """What one move cost; epoch times let us line it up with kernel capture timestamps."""

    started_at: float
    add_started_at: float
    wall_ms: float
    steps_ms: dict[str, float]
    probe_ms: float | None = None


def move_floor(bench: Bench) -> MoveTiming:
    """(a) The floor: plain iproute2 and one gratuitous ARP from arping (``move_by_hand``)."""
    hand = move_by_hand(bench.lan, ALIAS_IFACE, bench.node1.host, bench.node2.host)
    return MoveTiming(hand.started_at, hand.add_started_at, hand.wall_ms, hand.steps_ms)


def move_cli(bench: Bench, *apply_flags: str) -> MoveTiming:
    """(b) Two fresh ``aliasip-agent`` processes, as an administrator would run them."""
    lan, n1, n2 = bench.lan, bench.node1.host, bench.node2.host
    started_at, t0 = time.time(), time.perf_counter()
    rel_ms, rel_out = exec_in(lan, n1, [*bench.agent, "release", str(ALIAS), "--json"])
    add_started_at = time.time()
    apply = [*bench.agent, "apply", str(ALIAS), "--announce-count", "1", "--json", *apply_flags]
    app_ms, app_out = exec_in(lan, n2, apply)
    wall_ms = (time.perf_counter() - t0) * 1000
    released, applied = json.loads(rel_out), json.loads(app_out)
    if not (released["changed"] and applied["changed"]):
        raise RuntimeError(f"the CLI did not move the alias: {released} / {applied}")
    steps = {"agent_release": rel_ms, "agent_apply": app_ms}
    return MoveTiming(started_at, add_started_at, wall_ms, steps, applied["probe_ms"])


def move_inproc(bench: Bench, probe_wait_s: float | None) -> MoveTiming:
    """(c) The daemon's path: the data-path functions on sockets opened long before."""
    n1, n2 = bench.node1, bench.node2
    started_at, t0 = time.time(), time.perf_counter()
    released = release_alias(ALIAS, n1.netlink)
    t1 = time.perf_counter()
    add_started_at = time.time()
    applied = apply_alias(AliasRequest(ALIAS), n2.netlink, n2.announcer, probe_wait_s=probe_wait_s)
    t2 = time.perf_counter()
    if not (released.changed and applied.changed):
        raise RuntimeError("the in-process path did not move the alias")
    steps = {"release_alias": (t1 - t0) * 1000, "apply_alias": (t2 - t1) * 1000}
    return MoveTiming(started_at, add_started_at, (t2 - t0) * 1000, steps, applied.probe_ms)


@dataclass(frozen=True)
class Method:
    """One way of moving the alias, with the label used in the tables."""

    name: str
    label: str
    move: Callable[[Bench], MoveTiming]


METHODS = (
    Method("floor", "(a) ip addr del/add + arping -U", move_floor),
    Method("cli", "(b) aliasip-agent release/apply", move_cli),
    Method("cli-noprobe", "(b) aliasip-agent ... --no-probe", lambda b: move_cli(b, "--no-probe")),
    Method("inproc-noprobe", "(c) in-process, no probe", lambda b: move_inproc(b, None)),
    Method(
        "inproc-probe",
        f"(c) in-process, probe {DEFAULT_PROBE_WAIT_S * 1000:.0f} ms",
        lambda b: move_inproc(b, DEFAULT_PROBE_WAIT_S),
    ),
)


# --------------------------------------------------------------------------- one timed run


def reset_to_node1(bench: Bench) -> None:
    """Untimed setup: the alias only on node1 (marked, announced), the client's entry gone.

    Deleting on both nodes first makes the setup level-triggered: whatever the previous
    move left (marked or unmarked address), the next move starts from the same state.
    Deleting the client's neighbour entry makes the prober's first echo resolve the alias
    by a real ARP exchange with node1, so every timed move starts from a REACHABLE entry.
    """
    for node in (bench.node1.host, bench.node2.host):
        ip("-n", node.netns, "addr", "del", ALIAS_CIDR, "dev", IFNAME, check=False)
    node1 = bench.node1
    applied = apply_alias(AliasRequest(ALIAS), node1.netlink, node1.announcer, probe_wait_s=None)
    if not applied.changed:
        raise RuntimeError("reset: node1 did not add the alias")
    forget_neighbour(bench.lan, ALIAS)


def is_garp_from(frame: Frame, mac: str) -> bool:
    """A gratuitous ARP request for the alias (sender IP = target IP) sent by ``mac``."""
    data = frame.data
    if frame.outgoing or frame.ethertype != ETH_P_ARP or len(data) < 42:
        return False
    op = int.from_bytes(data[20:22], "big")
    sender_mac = ":".join(f"{b:02x}" for b in data[22:28])
    return (
        op == ARP_REQUEST
        and sender_mac == mac
        and data[28:32] == ALIAS.packed
        and data[38:42] == ALIAS.packed
    )


def first_garp_at(frames: list[Frame], mac: str) -> float | None:
    """Kernel timestamp (epoch s) of the first gratuitous ARP from ``mac`` on the wire."""
    return min((f.at for f in frames if is_garp_from(f, mac)), default=None)


def timed_run(bench: Bench, method: Method, prober_s: float) -> Json:
    """Reset, start the prober, wait out locktime, move once; the raw figures of that move."""
    reset_to_node1(bench)
    with capture_on(bench.client) as cap, observing(bench.lan, ALIAS, prober_s) as observer:
        proc = start_prober(bench.lan, ALIAS, prober_s)
        wait_prober_ready(cap, proc, ALIAS, bench.node1.host.mac)
        time.sleep(LOCKTIME_WAIT_S)  # since the client learnt node1's MAC, and the reset
        state = check_neighbour(bench.lan, ALIAS, bench.node1.host)
        timing = method.move(bench)
        moved_at = time.time()
        report = finish_prober(proc, prober_s)
        wire = wire_figures(observer.finish(), ALIAS)
        frames = cap.frames()
    return {**run_record(bench, timing, report, frames, state, moved_at, prober_s), **wire}


def run_record(
    bench: Bench,
    timing: MoveTiming,
    report: Json,
    frames: list[Frame],
    neighbour_state: str,
    moved_at: float,
    prober_s: float,
) -> Json:
    """Check that the move really happened as seen by the client, and keep every figure."""
    segments = report["segments"]
    node1_mac, node2_mac = bench.node1.host.mac, bench.node2.host.mac
    if not segments or segments[0]["mac"] != node1_mac or segments[-1]["mac"] != node2_mac:
        raise RuntimeError(f"client did not see node1 then node2 answer: {segments}")
    if moved_at + PROBER_TAIL_S > report["started_at"] + prober_s:
        raise RuntimeError("the move ended too close to the prober's end: raise --prober-seconds")
    garp_at = first_garp_at(frames, node2_mac)
    return {
        "outage_ms": report["outage_ms"],
        "lost_probes": sum(g["lost"] for g in report["gaps"]),
        "wall_ms": round(timing.wall_ms, 3),
        "steps_ms": {k: round(v, 3) for k, v in timing.steps_ms.items()},
        "probe_ms": timing.probe_ms,
        "first_garp_after_add_ms": _ms_between(timing.add_started_at, garp_at),
        "first_garp_after_start_ms": _ms_between(timing.started_at, garp_at),
        "neighbour_state_before": neighbour_state,
        "gaps": report["gaps"],
        "segments": segments,
        "split_brain_samples": report["split_brain_samples"],
        "probes_sent": report["sent"],
        "probes_answered": report["answered"],
    }


def _ms_between(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000, 3)


# --------------------------------------------------------------------------- CLI start-up


STARTUP_COMMANDS: tuple[tuple[str, Callable[[Bench], list[str]]], ...] = (
    ("ip netns exec ... true", lambda b: ["true"]),
    ("python -c pass", lambda b: [sys.executable, "-c", "pass"]),
    ("aliasip-agent --help", lambda b: [*b.agent, "--help"]),
    ("aliasip-agent list", lambda b: [*b.agent, "list"]),
)
IMPORTTIME_MODULES = "import aliasip_nodeagent.cli, aliasip_nodeagent.netlink, " + (
    "aliasip_nodeagent.announce"
)
IMPORTTIME_RE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


def measure_startup(bench: Bench, runs: int) -> Json:
    """Wall ms of short commands in node1's namespace, interleaved so drift hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name, _ in STARTUP_COMMANDS}
    node = bench.node1.host
    for _ in range(runs):
        for name, argv in STARTUP_COMMANDS:
            elapsed_ms, _ = exec_in(bench.lan, node, argv(bench))
            samples[name].append(round(elapsed_ms, 3))
    return {name: {"samples_ms": s, **summary(s)} for name, s in samples.items()}


def measure_importtime(bench: Bench, top: int = 12) -> list[Json]:
    """The costliest top-level imports of the agent's modules (``python -X importtime``)."""
    argv = [sys.executable, "-X", "importtime", "-c", IMPORTTIME_MODULES]
    done = bench.lan.run(bench.node1.host, *argv, timeout=30)
    rows = []
    for line in done.stderr.splitlines():
        match = IMPORTTIME_RE.match(line)
        if match and not match.group(3):  # top level only: nested ones are included
            rows.append({"module": match.group(4), "cumulative_ms": int(match.group(2)) / 1000})
    rows.sort(key=lambda r: -float(r["cumulative_ms"]))
    return rows[:top]


# --------------------------------------------------------------------------- statistics


def summary(values: Sequence[float | None]) -> Json:
    """Median, min and max of the values that exist (None: not measured in that run)."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {
        "n": len(present),
        "median": round(statistics.median(present), 3),
        "min": round(min(present), 3),
        "max": round(max(present), 3),
    }


def ratio(value: float | None, floor: float | None) -> float | None:
    if value is None or not floor:
        return None
    return round(value / floor, 2)


def summarize_methods(runs: dict[str, list[Json]]) -> dict[str, Json]:
    """Per method: summaries of each figure, and ratios of medians to the floor's."""
    keys = ("outage_ms", "wall_ms", "first_garp_after_add_ms", "first_garp_after_start_ms",
            "probe_ms", "lost_probes", "holderless_ms")  # fmt: skip
    out: dict[str, Json] = {}
    for name, records in runs.items():
        out[name] = {key: summary([r[key] for r in records]) for key in keys}
        out[name]["split_brain_samples"] = sum(len(r["split_brain_samples"]) for r in records)
        out[name]["split_brain_rounds"] = sum(r["split_brain_rounds"] for r in records)
    floor = out["floor"]
    for figures in out.values():
        figures["outage_ratio_to_floor"] = ratio(
            figures["outage_ms"]["median"], floor["outage_ms"]["median"]
        )
        figures["wall_ratio_to_floor"] = ratio(
            figures["wall_ms"]["median"], floor["wall_ms"]["median"]
        )
    return out


# --------------------------------------------------------------------------- report


def fmt(figure: Json) -> str:
    """``median (min-max)``, or a dash when the figure was not measured."""
    if figure["median"] is None:
        return "-"
    return f"{figure['median']:.1f} ({figure['min']:.1f}-{figure['max']:.1f})"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def moves_table(results: Json) -> list[str]:
    """The main table: outage, wall time, first announcement, ratios to the floor."""
    lines = [
        "| method | outage ms | wall ms | add step → first GARP ms | probe ms "
        "| outage ÷ (a) | wall ÷ (a) | lost probes (median) | wire holderless ms "
        "| wire split-brain rounds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        s = results["summary"][method.name]
        lines.append(
            f"| {method.label} | {fmt(s['outage_ms'])} | {fmt(s['wall_ms'])} "
            f"| {fmt(s['first_garp_after_add_ms'])} | {fmt(s['probe_ms'])} "
            f"| {fmt_ratio(s['outage_ratio_to_floor'])} | {fmt_ratio(s['wall_ratio_to_floor'])} "
            f"| {s['lost_probes']['median']:.0f} | {fmt(s['holderless_ms'])} "
            f"| {s['split_brain_rounds']} |"
        )
    return lines


def first_frame_lines(results: Json) -> list[str]:
    """(c)'s target: the in-process apply call to its first frame on the client's wire."""
    lines = ["| in-process variant | apply call → first GARP at client, ms | target |",
             "|---|---|---|"]  # fmt: skip
    for name in ("inproc-noprobe", "inproc-probe"):
        figure = results["summary"][name]["first_garp_after_add_ms"]
        target = "-"
        if name == "inproc-noprobe" and figure["median"] is not None:
            met = figure["median"] <= FIRST_FRAME_TARGET_MS
            target = f"≤ {FIRST_FRAME_TARGET_MS:.0f} ms: {'met' if met else 'MISSED'}"
        lines.append(f"| {name} | {fmt(figure)} | {target} |")
    return lines


def steps_lines(results: Json) -> list[str]:
    """Median of each step of each method, to see where the time goes."""
    lines = ["| method | step | median ms |", "|---|---|---|"]
    for method in METHODS:
        records = results["runs"][method.name]
        for step in records[0]["steps_ms"]:
            median = summary([r["steps_ms"][step] for r in records])["median"]
            lines.append(f"| {method.name} | {step} | {median:.1f} |")
    return lines


def startup_lines(results: Json) -> list[str]:
    lines = ["| command (in node1's namespace) | wall ms |", "|---|---|"]
    for name, figure in results["cli_startup"].items():
        lines.append(f"| `{name}` | {fmt(figure)} |")
    lines += ["", "Top-level imports (`python -X importtime`, cumulative):", ""]
    lines += ["| module | ms |", "|---|---|"]
    lines += [f"| `{r['module']}` | {r['cumulative_ms']:.1f} |" for r in results["importtime"]]
    return lines


def markdown(results: Json) -> str:
    """The human summary written next to the raw JSON."""
    meta = results["meta"]
    parts = [
        "# Data-path benchmark: moving one alias from node1 to node2",
        "",
        f"- date: {meta['date']}",
        f"- kernel: {meta['kernel']}, Python {meta['python']}, {meta['cpus']} CPUs",
        f"- command: `{meta['command']}` (as root, in /work/main)",
        f"- {meta['runs']} timed runs per method (+1 warm-up each, discarded), methods "
        f"interleaved; alias {ALIAS_CIDR} on {IFNAME}; prober every {PROBE_INTERVAL_MS:.0f} ms "
        f"from the client; ≥ {LOCKTIME_WAIT_S} s between moves",
        "",
        "Figures are median (min-max). Outage: the prober's longest gap between two answered",
        "probes (0 = no probe lost; resolution one interval). Wall: the whole move as run by",
        "this script. Subprocess methods include `ip netns exec` (see start-up table). Wire:",
        "the wire observer (broadcast ARP for the alias every 10 ms, every answering MAC",
        "recorded) over the same window: holderless = the longest run of rounds nobody",
        "answered; split-brain rounds = rounds answered by two MACs, summed over the runs.",
        "",
        *moves_table(results),
        "",
        "## (c) call to first frame on the wire",
        "",
        *first_frame_lines(results),
        "",
        "## Where the time goes",
        "",
        *steps_lines(results),
        "",
        "## CLI start-up",
        "",
        *startup_lines(results),
        "",
        "Notes: (a) runs `arping -U -S ALIAS -i eth1 -c 1 -w 0 ALIAS`; without `-w 0` arping",
        "waits 1 s for a reply that never comes to a gratuitous ARP. Raw figures: datapath.json.",
        "",
    ]
    return "\n".join(parts)


def meta(args: argparse.Namespace) -> Json:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "command": COMMAND.format(runs=args.runs),
        "runs": args.runs,
        "startup_runs": args.startup_runs,
        "prober_seconds": args.prober_seconds,
        "alias": ALIAS_CIDR,
        "probe_interval_ms": PROBE_INTERVAL_MS,
        "locktime_wait_s": LOCKTIME_WAIT_S,
        "default_probe_wait_ms": DEFAULT_PROBE_WAIT_S * 1000,
    }


def write_results(results: Json, out_dir: Path) -> None:
    """Overwrite the two fixed result files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "datapath.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / "datapath.md").write_text(markdown(results))


# --------------------------------------------------------------------------- main


def run_moves(bench: Bench, runs: int, prober_s: float) -> tuple[dict[str, list[Json]], Json]:
    """One warm-up move per method, then ``runs`` rounds of every method in turn."""
    warmup = {m.name: timed_run(bench, m, prober_s) for m in METHODS}
    results: dict[str, list[Json]] = {m.name: [] for m in METHODS}
    for index in range(runs):
        for method in METHODS:
            record = timed_run(bench, method, prober_s)
            results[method.name].append(record)
            print(
                f"run {index + 1}/{runs} {method.name:15} outage {record['outage_ms']:6.1f} ms"
                f"  wall {record['wall_ms']:7.1f} ms",
                flush=True,
            )
    return results, warmup


@contextlib.contextmanager
def bench_lan() -> Iterator[Bench]:
    """The LAN and both nodes' handles; everything closed and removed on the way out."""
    lan = Lan.create(nodes=2)
    opened: list[NodeHandles] = []
    try:
        opened.append(open_handles(lan.node("node1")))
        opened.append(open_handles(lan.node("node2")))
        yield Bench(lan, opened[0], opened[1], agent_argv())
    finally:
        for handles in opened:
            handles.close()
        lan.destroy()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.datapath", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed moves per method (1-100)")
    parser.add_argument("--startup-runs", type=int, default=7, help="CLI start-up runs (5-100)")
    parser.add_argument(
        "--prober-seconds", type=float, default=3.0, help="prober duration per move (2-30)"
    )
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 100 or not 5 <= args.startup_runs <= 100:
        parser.error("--runs must be 1-100 and --startup-runs 5-100")
    if not 2 <= args.prober_seconds <= 30:
        parser.error("--prober-seconds must be 2-30")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.datapath needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 1
    with bench_lan() as bench:
        startup = measure_startup(bench, args.startup_runs)
        importtime = measure_importtime(bench)
        runs, warmup = run_moves(bench, args.runs, args.prober_seconds)
    results: Json = {
        "meta": meta(args),
        "summary": summarize_methods(runs),
        "runs": runs,
        "warmup": warmup,
        "cli_startup": startup,
        "importtime": importtime,
    }
    write_results(results, args.out_dir)
    print()
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
