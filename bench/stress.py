"""No false failovers: the lab under full CPU load, counting every move and suspicion.

    .venv/bin/python -m bench.stress --minutes 10 [--profiles default fast] [--out-dir DIR]

Issue 11: "a CPU-starved, paused or garbage-collecting agent on a node that still serves
must not lose its aliases". For each profile, one lab (``aliasip-lab up``: three nodes,
the embedded API server, two operators; the agents' heartbeats every 100 ms as shipped,
or every 50 ms for the ``fast`` profile, a lab-only setting), ``--aliasips`` AliasIPs
spread over the three nodes (each node first for some), then Debian's ``stress-ng
--cpu N`` on every core of the machine for ``--minutes`` while nothing else is done. A
poller reads every AliasIP each 0.5 s.

Counted: moves (an AliasIP's ``activeNode`` changed, or its epoch grew), the phases seen
other than Active, and from the agents' logs the suspicions that did not become moves
(``peer-silent``: heartbeats missed; ``holder-probed``/``holder-silent``: wire probes of a
holder; ``node-silent``: a claim of evidence per node; ``muted``: an agent stalled past
its dead-man window, its aliases muted and deleted) and rejected heartbeats. The agents
run their shipped full-pass interval (5 s). The target is zero moves. Results: DIR/stress.md and
DIR/stress.json (DIR: bench/results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aliasip_lab.cluster import Lab, running_lab
from aliasip_lab.interrupt import sigterm_as_interrupt

RESULTS = Path(__file__).parent / "results"
PROFILES = {"default": None, "fast": 50.0}  # heartbeat interval, ms (None: as shipped)
NODES = ("node1", "node2", "node3")
POLL_S = 0.5
EVENTS = (
    "peer-silent",
    "peer-heard",
    "holder-probed",
    "holder-silent",
    "node-silent",  # evidence per node claimed (a move needs every standby's)
    "muted",  # the fine dead-man switch fired on a live agent (a stall past its window)
    "heartbeat-rejected",
)
SHIPPED_RESYNC_S = 5.0  # the agent's --resync-interval default (manifests/agent.yaml)


def aliasip_body(index: int) -> dict[str, Any]:
    first = NODES[index % len(NODES)]
    rest = [n for n in NODES if n != first]
    return {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {"name": f"stress-{index}"},
        "spec": {"addresses": [f"198.18.0.{60 + index}/24"], "nodes": [first, *rest]},
    }


def snapshot(lab: Lab) -> dict[str, tuple[str | None, int, str | None]]:
    listing = lab.api.call("GET", "/apis/aliasip.io/v1alpha1/aliasips")
    out: dict[str, tuple[str | None, int, str | None]] = {}
    for item in listing.get("items", []):
        status = item.get("status") or {}
        out[item["metadata"]["name"]] = (
            status.get("activeNode"),
            int(status.get("epoch") or 0),
            status.get("phase"),
        )
    return out


def agent_events(lab: Lab) -> Counter[str]:
    counts: Counter[str] = Counter()
    for node in NODES:
        path = Path(lab.log_path(f"agent {node}"))
        text = path.read_text() if path.exists() else ""
        for event in EVENTS:
            counts[event] += len(re.findall(rf"event={event}\b", text))
    return counts


def run_profile(name: str, heartbeat_ms: float | None, args: argparse.Namespace) -> dict[str, Any]:
    state_dir = Path(tempfile.mkdtemp(prefix=f"aliasip-bench-stress-{name}-"))
    print(f"[{name}] lab up (heartbeat {heartbeat_ms or 'shipped default'} ms)", flush=True)
    with running_lab(
        state_dir, nodes=len(NODES), heartbeat_ms=heartbeat_ms, resync_s=SHIPPED_RESYNC_S
    ) as lab:
        for index in range(args.aliasips):
            lab.api.call("POST", "/apis/aliasip.io/v1alpha1/aliasips", aliasip_body(index))

        def all_active() -> bool | None:
            got = snapshot(lab)
            ok = len(got) == args.aliasips and all(p == "Active" for _, _, p in got.values())
            return True if ok else None

        lab.wait(all_active, 60, "every AliasIP Active")
        time.sleep(3.0)  # the first reports and announcements settle
        before = snapshot(lab)
        events_before = agent_events(lab)
        cpus = os.cpu_count() or 1
        print(f"[{name}] stress-ng --cpu {cpus} for {args.minutes} min", flush=True)
        stress = subprocess.Popen(
            ["stress-ng", "--cpu", str(cpus), "--timeout", f"{int(args.minutes * 60)}s", "-q"]
        )
        moves: list[dict[str, Any]] = []
        phases: Counter[str] = Counter()
        polls = 0
        last = before
        load: list[float] = []
        started = time.monotonic()
        deadline = started + args.minutes * 60 + 30
        try:
            while stress.poll() is None and time.monotonic() < deadline:
                time.sleep(POLL_S)
                try:
                    now = snapshot(lab)
                except Exception as exc:  # a slow API under load: count it, go on
                    phases[f"poll failed: {type(exc).__name__}"] += 1
                    continue
                polls += 1
                load.append(os.getloadavg()[0])
                for aip, (active, epoch, phase) in now.items():
                    was = last.get(aip)
                    if phase != "Active":
                        phases[str(phase)] += 1
                    if was is not None and (was[0] != active or epoch > was[1]):
                        moves.append(
                            {
                                "aliasip": aip,
                                "from": was[0],
                                "to": active,
                                "epoch": epoch,
                                "at_s": round(time.monotonic() - started, 1),
                            }
                        )
                last = now
        finally:
            if stress.poll() is None:
                stress.terminate()
            stress.wait(timeout=30)
        events = agent_events(lab) - events_before
    shutil.rmtree(state_dir, ignore_errors=True)
    result = {
        "profile": name,
        "heartbeat_ms": heartbeat_ms or 100.0,
        "lab_only": heartbeat_ms is not None,
        "minutes": args.minutes,
        "aliasips": args.aliasips,
        "cpus": os.cpu_count(),
        "polls": polls,
        "moves": moves,
        "not_active_polls": dict(phases),
        "agent_events": dict(events),
        "load_median": round(sorted(load)[len(load) // 2], 2) if load else None,
    }
    print(f"[{name}] moves {len(moves)}; agents: {dict(events)}; load {result['load_median']}")
    return result


def write(results: list[dict[str, Any]], args: argparse.Namespace, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# No false failovers under full CPU load",
        "",
        f"{stamp} · kernel {platform.release()} · {os.cpu_count()} CPUs · "
        f"`.venv/bin/python -m bench.stress --minutes {args.minutes} --aliasips {args.aliasips}`",
        "",
        "Three lab nodes, the shipped agent settings except where the profile says; "
        f"`stress-ng --cpu {os.cpu_count()}` on every core for the whole window; status "
        f"polled every {POLL_S} s. Target: 0 moves.",
        "",
        "| profile | heartbeat | minutes | AliasIPs | moves | polls not Active | "
        "peer-silent | holder probes (silent) | node-silent claims | muted | "
        "rejected heartbeats | load (median) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ev = r["agent_events"]
        hb = f"{r['heartbeat_ms']:g} ms" + (" (lab-only)" if r["lab_only"] else " (shipped)")
        lines.append(
            f"| {r['profile']} | {hb} | {r['minutes']} | {r['aliasips']} | {len(r['moves'])} | "
            f"{sum(r['not_active_polls'].values())} | {ev.get('peer-silent', 0)} | "
            f"{ev.get('holder-probed', 0)} ({ev.get('holder-silent', 0)}) | "
            f"{ev.get('node-silent', 0)} | {ev.get('muted', 0)} | "
            f"{ev.get('heartbeat-rejected', 0)} | {r['load_median']} |"
        )
    (out_dir / "stress.md").write_text("\n".join(lines) + "\n")
    (out_dir / "stress.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.stress", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--aliasips", type=int, default=6)
    parser.add_argument("--profiles", nargs="+", choices=sorted(PROFILES), default=list(PROFILES))
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if shutil.which("stress-ng") is None:
        print("bench.stress: needs stress-ng (apt-get install stress-ng)", file=sys.stderr)
        return 1
    with sigterm_as_interrupt():
        results = [run_profile(name, PROFILES[name], args) for name in args.profiles]
    write(results, args, args.out_dir)
    return 0 if all(not r["moves"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
