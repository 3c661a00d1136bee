"""The chaos benchmark: long runs of ``aliasip-lab chaos`` over several seeds.

    .venv/bin/python -m bench.chaos --seeds 1 2 3 --minutes 30

Each seed gets a lab of its own (``aliasip_lab.chaos.chaos``: 3 nodes, 2 AliasIPs, one with
an IPv6 alias; random combined faults for ``--minutes``, then everything healed; the
invariants checked by the wire observer, kernel truth and the status poller). Stores a
table in bench/results/chaos.md and every run's summary (episodes by kind, violations,
the fault log's path, figures) in bench/results/chaos.json; each run's fault log is kept
next to them (bench/results/chaos-seedN.jsonl), so a violation can be replayed with
``aliasip-lab chaos --replay``. Exits 1 if any run violated an invariant.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aliasip_lab import invariants
from aliasip_lab.chaos import chaos, summary_lines

RESULTS = Path(__file__).parent / "results"


def table(runs: list[dict[str, Any]], command: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    host = f"{platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}"
    lines = [
        "# Chaos: random combined faults, invariants checked on the wire",
        "",
        f"`{command}` on {when}, {host}. Bounds: stray alias {invariants.REACTION_S:g} s "
        f"(a node that could act) / {invariants.RECOVERY_S:g} s (just able again); "
        f"convergence {invariants.CONVERGE_S:g} s after the heal; a dead or frozen agent's "
        f"aliases gone {invariants.DEADMAN_S:g} s after it stopped (the dead-man switch). "
        "Every two-MAC observer round is a violation.",
        "",
    ]
    shared = max((int(r.get("parallel", 1)) for r in runs), default=1)
    if shared > 1:
        lines += [
            f"The seeds ran at the same time ({shared} labs sharing the CPUs: every agent,",
            "operator and API server slower than alone, every bound the same).",
            "",
        ]
    lines += [
        "| seed | minutes | episodes | lab commands (refused) | observer rounds | "
        "split-brain rounds | longest holderless ms | converged s | violations |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        kinds = ", ".join(f"{k} {n}" for k, n in r["episodes"].items())
        violations = "; ".join(f"{v['invariant']}: {v['detail']}" for v in r["violations"])
        lines.append(
            f"| {r['seed']} | {r['minutes']:g} | {sum(r['episodes'].values())} ({kinds}) | "
            f"{sum(r['commands'].values())} ({r['refused']}) | {r['observer_rounds']} | "
            f"{r['split_brain_rounds']} | "
            f"{r['max_holderless_ms']} | {r['converge_s']} | "
            f"{violations or 0} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.chaos", description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--aliasips", type=int, default=2)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="run the seeds at the same time, each on a lab of its own (one process each); "
        "the table says so, since the labs then share the CPUs",
    )
    args = parser.parse_args(argv)

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # as Ctrl-C: labs are taken down
    if os.geteuid() != 0:
        parser.error("run as root (network namespaces, raw sockets)")
    args.results.mkdir(parents=True, exist_ok=True)
    if args.parallel:
        runs = _in_parallel(args)
    else:
        runs = []
        for seed in args.seeds:
            log = args.results / f"chaos-seed{seed}.jsonl"
            summary = chaos(seed, args.minutes, args.nodes, args.aliasips, log=log)
            print("\n".join(summary_lines(summary)), flush=True)
            runs.append(summary)
    command = "python -m bench.chaos " + " ".join(sys.argv[1:] if argv is None else argv)
    (args.results / "chaos.md").write_text(table(runs, command.strip()))
    (args.results / "chaos.json").write_text(json.dumps(runs, indent=2) + "\n")
    return 1 if any(r["violations"] for r in runs) else 0


def _in_parallel(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One ``bench.chaos`` process per seed, each writing to a folder of its own; their
    summaries in seed order, each fault log moved next to the results."""
    procs = []
    for seed in args.seeds:
        folder = args.results / f".seed{seed}"
        argv = [
            sys.executable, "-m", "bench.chaos", "--seeds", str(seed),
            "--minutes", str(args.minutes), "--nodes", str(args.nodes),
            "--aliasips", str(args.aliasips), "--results", str(folder),
        ]  # fmt: skip
        procs.append((seed, folder, subprocess.Popen(argv)))
    try:
        for _, _, proc in procs:
            proc.wait()
    except BaseException:  # Ctrl-C, SIGTERM: each run takes its own lab down first
        for _, _, proc in procs:
            proc.send_signal(signal.SIGTERM)
        for _, _, proc in procs:
            proc.wait(timeout=300)
        raise
    runs: list[dict[str, Any]] = []
    for seed, folder, _ in procs:
        found = json.loads((folder / "chaos.json").read_text())
        log = folder / f"chaos-seed{seed}.jsonl"
        kept = args.results / log.name
        log.replace(kept)
        for run in found:
            run["log"] = str(kept)
            run["parallel"] = len(args.seeds)
        runs.extend(found)
        shutil.rmtree(folder, ignore_errors=True)
    return runs


if __name__ == "__main__":
    sys.exit(main())
