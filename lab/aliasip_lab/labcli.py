"""The lab's cluster commands: ``up``, ``down``, ``status``, ``kubectl`` and the faults.

Each command is one call on :class:`~aliasip_lab.cluster.Lab`; this module only parses
arguments, prints, and maps :class:`~aliasip_lab.cluster.LabError` to one line on stderr
and its exit code (2 bad input, 3 not possible in the lab's current state, 1 failed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aliasip_api.rest import ApiError, ApiUnavailable
from aliasip_lab.cluster import Lab, LabError, default_state_dir
from aliasip_lab.heartbeatfaults import block_heartbeats, rotate_keys, spoof_heartbeats

COMMANDS = {
    "up": "build the lab: N node namespaces with agents, API server, two operators",
    "down": "remove everything the lab started (also after a crash)",
    "status": "processes, cables, leader, aliases held, AliasIPs (--json)",
    "kubectl": "run kubectl against the lab (aliasip-lab kubectl get aip)",
    "kill-agent": "SIGKILL the agent on NODE (its aliases expire within 2 s: dead-man switch)",
    "start-agent": "start the agent on NODE again",
    "stop-node": "NODE is gone: agent killed, LAN and management cables cut",
    "start-node": "NODE back: cables connected, agent started",
    "link-down": "cut NODE's service LAN cable (the agent stays up)",
    "link-up": "connect NODE's service LAN cable again",
    "partition": "cut NODE from the API (management cable) only",
    "heal": "reconnect NODE to the API",
    "kill-operator": "SIGKILL the operators (--leader: only the leader)",
    "start-operator": "start the operator replicas that are not running",
    "restart-api": "restart the API server (objects kept, watches cut)",
    "cordon": "kubectl cordon NODE: planned move of its aliases",
    "uncordon": "kubectl uncordon NODE",
    "switchover": "NAME --to NODE: planned move by the switchover annotation",
    "freeze": "agent NODE | operator [--leader] | api: SIGSTOP it (a stalled process)",
    "thaw": "agent NODE | operator | api: SIGCONT what freeze stopped",
    "block-heartbeats": "drop NODE's heartbeats both ways (UDP 7947; ARP and aliases flow)",
    "unblock-heartbeats": "let NODE's heartbeats flow again",
    "spoof-heartbeats": "send every node forged heartbeats claiming every AliasIP",
    "rotate-keys": "STEP 1|2|3 of a heartbeat key rotation: add a key, sign with it, drop the old",
}


def usage() -> str:
    width = max(len(c) for c in COMMANDS)
    return "\n".join(f"  {c:<{width}}  {text}" for c, text in COMMANDS.items())


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"aliasip-lab {command}", description=COMMANDS[command])
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help="where the lab keeps its state (default $ALIASIP_LAB_DIR or /run/aliasip-lab)",
    )
    if command == "up":
        parser.add_argument("--nodes", type=int, default=3)
        parser.add_argument("--api-port", type=int, default=6443)
    if command == "status":
        parser.add_argument("--json", action="store_true")
    if command in ("kill-agent", "start-agent", "stop-node", "start-node", "link-down",
                   "link-up", "partition", "heal", "cordon", "uncordon",
                   "block-heartbeats", "unblock-heartbeats"):  # fmt: skip
        parser.add_argument("node", metavar="NODE")
    if command == "kill-operator":
        parser.add_argument("--leader", action="store_true", help="only the elected leader")
    if command in ("freeze", "thaw"):
        parser.add_argument("target", metavar="TARGET", help="agent, operator or api")
        parser.add_argument("node", metavar="NODE", nargs="?", help="for agent: the node")
    if command == "freeze":
        parser.add_argument("--leader", action="store_true", help="operator: only the leader")
    if command == "rotate-keys":
        parser.add_argument("step", type=int, choices=(1, 2, 3), metavar="STEP")
    if command == "switchover":
        parser.add_argument("name", metavar="NAME")
        parser.add_argument("--to", required=True, metavar="NODE")
    return parser


def actions(args: argparse.Namespace) -> dict[str, Callable[[Lab], str]]:
    return {
        "kill-agent": lambda lab: lab.kill_agent(args.node),
        "start-agent": lambda lab: lab.start_agent(args.node),
        "stop-node": lambda lab: lab.stop_node(args.node),
        "start-node": lambda lab: lab.start_node(args.node),
        "link-down": lambda lab: lab.set_link(args.node, up=False),
        "link-up": lambda lab: lab.set_link(args.node, up=True),
        "partition": lambda lab: lab.set_partition(args.node, partitioned=True),
        "heal": lambda lab: lab.set_partition(args.node, partitioned=False),
        "kill-operator": lambda lab: lab.kill_operator(leader_only=args.leader),
        "start-operator": lambda lab: lab.start_operator(),
        "restart-api": lambda lab: lab.restart_api(),
        "cordon": lambda lab: lab.cordon(args.node, cordoned=True),
        "uncordon": lambda lab: lab.cordon(args.node, cordoned=False),
        "switchover": lambda lab: lab.switchover(args.name, args.to),
        "freeze": lambda lab: lab.freeze(args.target, args.node, leader_only=args.leader),
        "thaw": lambda lab: lab.thaw(args.target, args.node),
        "block-heartbeats": lambda lab: block_heartbeats(lab, args.node, blocked=True),
        "unblock-heartbeats": lambda lab: block_heartbeats(lab, args.node, blocked=False),
        "spoof-heartbeats": lambda lab: spoof_heartbeats(lab),
        "rotate-keys": lambda lab: rotate_keys(lab, args.step),
    }


def main(command: str, argv: Sequence[str]) -> int:
    if command == "kubectl":
        return _kubectl(list(argv))
    args = _parser(command).parse_args(argv)
    try:
        if command == "up":
            lab = Lab.up(args.state_dir, args.nodes, args.api_port, progress=_progress)
            print(_summary(lab.status()))
            return 0
        if command == "down":
            removed = Lab.down(args.state_dir)
            print(f"removed {len(removed)} things" if removed else "nothing to remove")
            for item in removed:
                print(f"  {item}")
            return 0
        lab = Lab.attach(args.state_dir)
        if command == "status":
            report = lab.status()
            print(json.dumps(report, indent=2) if args.json else _summary(report))
            return 0
        print(actions(args)[command](lab))
        return 0
    except LabError as exc:
        print(f"aliasip-lab {command}: {exc}", file=sys.stderr)
        return exc.code
    except ApiError as exc:
        print(f"aliasip-lab {command}: the API refused: {exc}", file=sys.stderr)
        return 1
    except ApiUnavailable as exc:
        print(f"aliasip-lab {command}: the API server did not answer: {exc}", file=sys.stderr)
        return 1


def _kubectl(argv: list[str]) -> int:
    state_dir = default_state_dir()
    if argv[:1] == ["--state-dir"] and len(argv) >= 2:
        state_dir, argv = Path(argv[1]), argv[2:]
    try:
        lab = Lab.attach(state_dir)
        command = lab.kubectl_argv(*argv)
    except LabError as exc:
        print(f"aliasip-lab kubectl: {exc}", file=sys.stderr)
        return exc.code
    os.execvp(command[0], command)


def _progress(text: str) -> None:
    print(f"  {text}", flush=True)


def _state(daemon: dict[str, Any]) -> str:
    if not daemon["running"]:
        return "DOWN"
    return "FROZEN" if daemon.get("frozen") else "running"


def _summary(report: dict[str, Any]) -> str:
    """``status`` for people: one line per process, node and AliasIP."""
    api = report["api"]
    lines = [
        f"lab in {report['stateDir']} (since {report['created']})",
        f"API server   {api['url']}  {_state(api)}"
        + ("" if report.get("apiReachable") else f"  unreachable: {report.get('apiError')}"),
    ]
    for op in report["operators"]:
        role = "leader" if op["leader"] else "standby"
        state = f"{_state(op)} ({role})" if op["running"] else "DOWN"
        lines.append(f"operator     {op['identity']:<8} {state}")
    lines.append("")
    lines.append(f"{'NODE':<8} {'ADDRESS':<17} {'AGENT':<8} {'LAN':<5} {'API':<5} ALIASES")
    for node in report["nodes"]:
        agent = _state(node["agent"])
        api_link = "up" if node["management"] == "up" else "cut"
        extra = " (cordoned)" if node["cordoned"] else ""
        aliases = ", ".join(node["aliases"]) or "-"
        lines.append(
            f"{node['name']:<8} {node['address']:<17} {agent:<8} {node['lan']:<5} "
            f"{api_link:<5} {aliases}{extra}"
        )
    client = report["client"]
    lines.append(f"client   {client['address']:<17} (namespace {client['netns']})")
    if report["aliasips"]:
        lines.append("")
        lines.append(f"{'ALIASIP':<16} {'ADDRESSES':<22} {'ACTIVE':<8} {'PHASE':<10} EPOCH")
        for row in report["aliasips"]:
            addresses = ",".join(row["addresses"])
            lines.append(
                f"{row['name']:<16} {addresses:<22} {row['active'] or '-':<8} "
                f"{row['phase'] or '-':<10} {row['epoch'] if row['epoch'] is not None else '-'}"
            )
    lines.append("")
    lines.append(f"kubectl: aliasip-lab kubectl get aip   (= {report['kubectl']} ...)")
    return "\n".join(lines)
