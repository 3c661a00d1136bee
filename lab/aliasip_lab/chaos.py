"""``aliasip-lab chaos --seed N --minutes M``: random combined faults, invariants checked.

Jepsen-style, with the lab's own fault commands: it brings a lab up (or uses the one in
``--state-dir``), applies K AliasIPs with kubectl, starts the witnesses -- the wire
observer (``aliasip_lab.observer``), kernel truth (``aliasip_lab.kerneltruth``) and a
poller of every AliasIP's status every 100 ms -- and then injects the episodes of
``chaosplan.plan(seed)``: partitions with link-downs, stop-node during a switchover,
frozen agents, operators and API server, restart-api during a failover, killed agents
and operators, cordons, switchovers, spec changes, delete + recreate during moves; each
healed after a random bounded time, overlapping. Then it heals everything and waits.

The invariants (``aliasip_lab.invariants``) are checked while it runs (every few seconds,
over what the witnesses recorded so far) and at the end. On a violation it stops
injecting, heals, and exits 1 printing the seed, the violations and the replayable
fault log: one JSON line per lab command it issued (offset, fault, concrete args);
``--replay FILE`` issues the same commands at the same offsets. Exit 0 with a summary
otherwise: faults by kind, observer rounds, split-brain rounds (0), longest holderless
time on the wire.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from aliasip_api.rest import ALIASIPS, ApiError, ApiUnavailable
from aliasip_api.succession import succession_of
from aliasip_lab import chaosplan, invariants
from aliasip_lab.chaosplan import HOLDER, OTHER, Episode, Resources, Step
from aliasip_lab.cluster import Lab, LabApi, LabError
from aliasip_lab.heartbeatfaults import block_heartbeats, rotate_keys, spoof_heartbeats
from aliasip_lab.interrupt import sigterm_as_interrupt
from aliasip_lab.invariants import CONVERGE_S, Command, Sample, Violation
from aliasip_lab.kerneltruth import KernelTruth, bare
from aliasip_lab.lan import ip
from aliasip_lab.observer import Running
from aliasip_operator.observations import SWITCHOVER_ANNOTATION

CHECK_EVERY_S = 3.0
"""How often the invariants run over what was recorded so far while faults go on."""
HEALS = ("heal", "link-up", "start-node", "start-agent", "thaw", "uncordon", "start-operator",
         "create")  # fmt: skip
MAX_MINUTES = 240.0


def aliasip_addresses(count: int) -> dict[str, list[str]]:
    """``chaos-1`` .. ``chaos-K`` on 198.18.0.50.. (/24); chaos-2 also has an IPv6 alias,
    so the observer's neighbour solicitations are exercised too."""
    found = {}
    for i in range(1, count + 1):
        addresses = [f"198.18.0.{49 + i}/24"]
        if i == 2:
            addresses.append(f"2001:2::{49 + i}/64")
        found[f"chaos-{i}"] = addresses
    return found


def aliasip_object(name: str, addresses: list[str], nodes: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {"name": name},
        "spec": {"addresses": addresses, "nodes": nodes},
    }


class StatusPoller:
    """Samples every watched AliasIP's status every ``POLL_S`` (a list call); a name
    missing from the list is sampled as not existing. API errors are skipped."""

    def __init__(self, lab: Lab, addresses: dict[str, list[str]]) -> None:
        self.lab = lab
        self.addresses = addresses
        self.samples: list[Sample] = []
        self.latest: dict[str, Sample] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> StatusPoller:
        self._thread.start()
        return self

    def _loop(self) -> None:
        api = LabApi(self.lab.kubeconfig, self.lab.control_plane)
        api.rest._timeout = (1.0, 1.0)  # a frozen API must not stall the sampling long
        while not self._stop.wait(invariants.POLL_S):
            try:
                items = api.call("GET", ALIASIPS).get("items") or []
            except (ApiError, ApiUnavailable):
                continue
            at = time.time()
            seen = {o["metadata"]["name"]: o for o in items}
            with self._lock:
                for name, addresses in self.addresses.items():
                    obj = seen.get(name)
                    status = (obj or {}).get("status") or {}
                    named = succession_of(status)  # who may hold on a handoff (R11)
                    sample = Sample(
                        at, name, (obj or {}).get("metadata", {}).get("uid"),
                        status.get("activeNode"), status.get("phase"),
                        status.get("epoch"), tuple(addresses),
                        named.to_node if named is not None else None,
                    )  # fmt: skip
                    self.samples.append(sample)
                    self.latest[name] = sample

    def snapshot(self) -> tuple[list[Sample], dict[str, Sample]]:
        with self._lock:
            return list(self.samples), dict(self.latest)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def address_lines(lab: Lab, aliases: set[str]) -> dict[str, list[str]]:
    """Per node, every address of its namespace except the aliases: family, address,
    scope and interface (flags such as ``tentative`` left out: they are the kernel's)."""
    found = {}
    for host in lab.lan.nodes:
        out = ip("-n", host.netns, "-o", "addr", "show", check=False).stdout
        lines = []
        for line in out.splitlines():
            words = line.split()
            if len(words) < 4 or bare(words[3]) in aliases:
                continue
            scope = words[words.index("scope") + 1] if "scope" in words else "-"
            lines.append(f"{words[1]} {words[2]} {words[3]} scope {scope}")
        found[host.name] = sorted(lines)
    return found


def foreign_addresses(lab: Lab) -> None:
    """An address on each node that no AliasIP names (another tool's): must stay."""
    for host in lab.lan.nodes:
        ip("-n", host.netns, "addr", "add", f"198.18.0.{140 + host.host_id}/32", "dev",
           host.ifname, "label", f"{host.ifname}:other")  # fmt: skip
        ip("-n", host.netns, "addr", "add", f"2001:2::1:{host.host_id:x}/128", "dev",
           host.ifname, "nodad")  # fmt: skip


@dataclass
class Run:
    """One chaos run against ``lab``: the plan (or a replayed log), the witnesses, the log."""

    lab: Lab
    seed: int
    duration_s: float
    addresses: dict[str, list[str]]
    log: IO[str]
    workdir: Path
    replay: list[dict[str, Any]] | None = None
    say: Callable[[str], None] = print
    commands: list[Command] = field(default_factory=list)
    episodes_done: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    t0: float = 0.0

    # -- issuing lab commands ------------------------------------------------------------

    def issue(self, fault: str, args: dict[str, Any], **context: Any) -> bool:
        """One lab command, logged (whatever its outcome) as a replayable JSON line."""
        t = time.time()
        try:
            result, ok = self._do(fault, args), True
        except (LabError, ApiError, ApiUnavailable, RuntimeError) as exc:
            result, ok = f"refused: {exc}".splitlines()[0][:300], False
        done = time.time()
        self.commands.append(Command(t, done, fault, dict(args), ok))
        record = {"t": round(t - self.t0, 3), "at": round(t, 3), "fault": fault, "args": args,
                  "ok": ok, "took": round(done - t, 3), "result": result, **context}  # fmt: skip
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()
        return ok

    def _do(self, fault: str, args: dict[str, Any]) -> str:
        lab, node = self.lab, args.get("node")
        simple: dict[str, Callable[[], str]] = {
            "partition": lambda: lab.set_partition(str(node), partitioned=True),
            "heal": lambda: lab.set_partition(str(node), partitioned=False),
            "link-down": lambda: lab.set_link(str(node), up=False),
            "link-up": lambda: lab.set_link(str(node), up=True),
            "stop-node": lambda: lab.stop_node(str(node)),
            "start-node": lambda: lab.start_node(str(node)),
            "kill-agent": lambda: lab.kill_agent(str(node)),
            "start-agent": lambda: lab.start_agent(str(node)),
            "cordon": lambda: lab.cordon(str(node), cordoned=True),
            "uncordon": lambda: lab.cordon(str(node), cordoned=False),
            "freeze": lambda: lab.freeze(args["target"], node, bool(args.get("leader"))),
            "thaw": lambda: lab.thaw(args["target"], node),
            "kill-operator": lambda: lab.kill_operator(bool(args.get("leader"))),
            "start-operator": lab.start_operator,
            "restart-api": lab.restart_api,
            "block-heartbeats": lambda: block_heartbeats(lab, str(node), blocked=True),
            "unblock-heartbeats": lambda: block_heartbeats(lab, str(node), blocked=False),
            "spoof-heartbeats": lambda: spoof_heartbeats(lab),
            "rotate-keys": lambda: rotate_keys(lab, int(args["step"])),
        }
        if fault in simple:
            return simple[fault]()
        name = str(args.get("name"))
        path = f"{ALIASIPS}/{name}"
        if fault == "switchover":
            annotation = {"metadata": {"annotations": {SWITCHOVER_ANNOTATION: args["to"]}}}
            lab.api.merge_patch(path, annotation)
            return f"{name}: switchover to {args['to'] or 'the next standby'} requested"
        if fault == "spec":
            spec = {k: v for k, v in args.items() if k in ("nodes", "failback")}
            lab.api.merge_patch(path, {"spec": spec})
            return f"{name}: spec {spec}"
        if fault == "delete":
            lab.api.call("DELETE", path)
            self.deleted.add(name)
            return f"{name} deleted"
        if fault == "create":
            nodes = list(args.get("nodes") or lab.node_names)
            lab.api.call("POST", ALIASIPS, aliasip_object(name, self.addresses[name], nodes))
            self.deleted.discard(name)
            return f"{name} created on {nodes}"
        raise LabError(f"unknown fault {fault!r}", code=2)

    # -- the schedule --------------------------------------------------------------------

    def resolve(self, episode: Episode, holder_of: dict[str, Sample]) -> str:
        """The episode's node: the AliasIP's holder as last sampled; while it has none (a
        move under way, the API down), a node drawn from the episode's own seed."""
        if episode.node != HOLDER:
            return episode.node
        sample = holder_of.get(episode.aliasip)
        if sample is not None and sample.active:
            return sample.active
        return random.Random(self.seed * 100_003 + episode.index).choice(self.lab.node_names)

    def concrete(self, step: Step, node: str, rng: random.Random) -> dict[str, Any]:
        args = dict(step.args)
        if args.get("node") == HOLDER:
            args["node"] = node
        if args.get("to") in (OTHER, node):
            args["to"] = rng.choice([n for n in self.lab.node_names if n != node])
        return args

    def play(self, poller: StatusPoller, check: Callable[[], None]) -> None:
        """Issue the plan's episodes (or the replayed commands) until the end or the first
        violation; then heal whatever is still open."""
        queue: list[tuple[float, int, str, Any]] = []
        seq = 0
        if self.replay is not None:
            for entry in self.replay:
                heapq.heappush(queue, (entry["t"], seq, "command", entry))
                seq += 1
        else:
            for drawn in chaosplan.plan(
                self.seed, self.duration_s, self.lab.node_names, list(self.addresses)
            ):
                heapq.heappush(queue, (drawn.at, seq, "episode", drawn))
                seq += 1
        resources = Resources()
        open_steps: dict[int, list[tuple[Step, str]]] = {}
        next_check = time.monotonic() + CHECK_EVERY_S
        while queue and not self.violations:
            at, _, what, item = heapq.heappop(queue)
            while (wait := self.t0 + at - time.time()) > 0:
                time.sleep(min(wait, 0.2))
                if time.monotonic() >= next_check:
                    check()
                    next_check = time.monotonic() + CHECK_EVERY_S
            if self.violations:
                break
            if what == "command":
                self.issue(item["fault"], item["args"], replayed=True)
            elif what == "episode":
                episode: Episode = item
                _, latest = poller.snapshot()
                node = self.resolve(episode, latest)
                episode_steps = chaosplan.steps(episode)
                wanted = chaosplan.resources(episode_steps, node)
                why = None
                if not resources.take(episode.index, wanted):
                    why = f"resources taken: {sorted(r for r in wanted if r in resources.owner)}"
                if why is not None:
                    self.skipped[episode.kind] += 1
                    self.log.write(json.dumps({"t": round(time.time() - self.t0, 3),
                                               "skipped": episode.kind, "episode": episode.index,
                                               "why": why}) + "\n")  # fmt: skip
                    continue
                self.episodes_done[episode.kind] += 1
                rng = random.Random(self.seed * 100_003 + episode.index)
                open_steps[episode.index] = []
                for step in episode_steps:
                    args = self.concrete(step, node, rng)
                    concrete = Step(step.after, step.fault, args)
                    open_steps[episode.index].append((concrete, node))
                    heapq.heappush(queue, (at + step.after, seq, "step", (episode, concrete)))
                    seq += 1
            else:
                episode, step = item
                self.issue(step.fault, step.args, episode=episode.index, kind=episode.kind)
                remaining = open_steps[episode.index]
                remaining.pop(0)
                if not remaining:
                    del open_steps[episode.index]
                    resources.release(episode.index)
        # Heal what the open episodes still have to heal, in their order.
        for episode_index in sorted(open_steps):
            for step, _ in open_steps[episode_index]:
                if step.fault in HEALS:
                    self.issue(step.fault, step.args, episode=episode_index, healing=True)

    def heal_everything(self) -> None:
        """Whatever is still off after the episodes' own heals (a replay cut short, a
        refused heal): every node up and connected, every daemon running and thawed,
        every AliasIP present, nothing cordoned."""
        lab = self.lab
        for role in lab.frozen():
            target, _, node = role.partition(" ")  # "agent node1", "operator op-a", "api"
            args = {"target": target, "node": node} if target == "agent" else {"target": target}
            self.issue("thaw", args, healing=True)
        for node in lab.node_names:
            daemon = lab.daemon(f"agent {node}")
            if daemon is None or not daemon.running:
                self.issue("start-node", {"node": node}, healing=True)
            if not lab.port_up(f"p-{node}"):
                self.issue("link-up", {"node": node}, healing=True)
            if not lab.port_up(f"m-{node}"):
                self.issue("heal", {"node": node}, healing=True)
            self.issue("uncordon", {"node": node}, healing=True)
        operators = [lab.daemon(f"operator {i}") for i in ("op-a", "op-b")]
        if any(d is None or not d.running for d in operators):
            self.issue("start-operator", {}, healing=True)
        for name in sorted(self.addresses):
            for _ in range(20):  # bounded: a deletion may still be in flight
                if lab.api.get(f"{ALIASIPS}/{name}") is not None:
                    break
                if self.issue("create", {"name": name}, healing=True):
                    break
                time.sleep(0.5)


def converged(
    lab: Lab, poller: StatusPoller, truth: KernelTruth, addresses: dict[str, list[str]]
) -> str | None:
    """None once every AliasIP is Active on one node whose kernel alone has its
    addresses; else what is still wrong."""
    _, latest = poller.snapshot()
    for name, wanted in addresses.items():
        sample = latest.get(name)
        if sample is None or sample.uid is None:
            return f"{name} not seen"
        if sample.phase != "Active" or not sample.active:
            return f"{name}: phase {sample.phase}, activeNode {sample.active}"
        for address in wanted:
            if truth.holders(address) != [sample.active]:
                return f"{address}: kernels {truth.holders(address)} vs {sample.active}"
    return None


def wire_agrees(
    lab: Lab, report: dict[str, Any], latest: dict[str, Sample], addresses: dict[str, list[str]]
) -> list[Violation]:
    """(c) on the wire: the observer's last answers are the holder's MAC alone."""
    found = []
    for name, wanted in addresses.items():
        sample = latest.get(name)
        holder = sample.active if sample is not None else None
        mac = lab.lan.node(holder).mac if holder else None
        for address in wanted:
            seen = report["aliases"].get(bare(address))
            if seen is None:
                continue
            open_gap = bool(seen["gaps"]) and seen["gaps"][-1]["open"]
            if seen["last_macs"] != [mac] or open_gap:
                found.append(
                    Violation(
                        "convergence", report["ended_at"],
                        f"{address}: on the wire {seen['last_macs'] or 'nobody'}"
                        f"{' (unanswered at the end)' if open_gap else ''}, holder {holder} {mac}",
                    )
                )  # fmt: skip
    return found


def execute(
    lab: Lab,
    seed: int,
    minutes: float,
    aliasips: int,
    log_path: Path,
    workdir: Path,
    replay: list[dict[str, Any]] | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One chaos run on a running ``lab``; returns the summary (``violations`` empty when
    every invariant held)."""
    addresses = aliasip_addresses(aliasips)
    alias_set = {bare(a) for wanted in addresses.values() for a in wanted}
    duration_s = minutes * 60
    for name, wanted in addresses.items():
        body = yaml.safe_dump(aliasip_object(name, wanted, lab.node_names))
        argv = lab.kubectl_argv("apply", "-f", "-")
        subprocess.run(argv, input=body, text=True, capture_output=True, check=True, timeout=60)

    def all_active() -> bool:
        rows = {o["metadata"]["name"]: o.get("status") or {} for o in lab.aliasips()}
        return all((rows.get(n) or {}).get("phase") == "Active" for n in addresses)

    lab.wait(all_active, 60.0, "every chaos AliasIP Active")
    foreign_addresses(lab)
    before = address_lines(lab, alias_set)
    poller = StatusPoller(lab, addresses).start()
    truth = KernelTruth({h.name: h.netns for h in lab.lan.nodes}).start()
    observer_s = duration_s + CONVERGE_S + 600
    observer = Running(
        lab.lan.observer.netns, sorted(alias_set), observer_s, workdir / "observer.jsonl"
    )
    with log_path.open("w") as log:
        run = Run(lab, seed, duration_s, addresses, log, workdir, replay, say)
        header = {"chaos": {"seed": seed, "minutes": minutes, "nodes": lab.node_names,
                            "aliasips": addresses, "replay": replay is not None}}  # fmt: skip
        log.write(json.dumps(header) + "\n")
        try:
            observer.wait_started()
            run.t0 = time.time()

            def check() -> None:
                found = _check_so_far(run, poller, truth, observer, alias_set)
                for v in found:
                    if v not in run.violations:
                        say(f"VIOLATION ({v.invariant}) {v.detail}")
                        run.violations.append(v)

            say(f"chaos seed {seed}: {minutes:g} min of faults on {lab.node_names}, "
                f"AliasIPs {sorted(addresses)}; log {log_path}")  # fmt: skip
            run.play(poller, check)
            check()
            run.heal_everything()
            healed_at = time.time()
            say(f"healed at +{healed_at - run.t0:.1f} s; waiting for convergence")
            deadline = time.monotonic() + CONVERGE_S
            wrong = converged(lab, poller, truth, addresses)
            while wrong is not None and time.monotonic() < deadline:
                time.sleep(0.2)
                wrong = converged(lab, poller, truth, addresses)
            converge_s = time.time() - healed_at
            if wrong is not None:
                run.violations.append(
                    Violation(
                        "convergence",
                        time.time(),
                        f"not within {CONVERGE_S:g} s of the heal: {wrong}",
                    )
                )
            time.sleep(1.0)  # the observer hears the settled state for a second
            report = observer.finish()
            samples, latest = poller.snapshot()
        finally:
            observer.kill()
            poller.stop()
            presences = truth.stop()
    end = time.time()
    after = address_lines(lab, alias_set)
    able, powered = invariants.ability(run.commands, lab.node_names, run.t0)
    runs = invariants.agent_runs(run.commands, lab.node_names, run.t0)
    split = invariants.judge_split_brain(
        invariants.split_brain_runs(report), node_macs(lab), runs, samples
    )
    violations = [
        *split,
        *invariants.dead_man([p for p in presences if p.address in alias_set], runs, powered, end),
        *invariants.stray_aliases(presences, samples, able, powered, end),
        *invariants.epochs(samples),
        *invariants.untouched(before, after, end),
        *(wire_agrees(lab, report, latest, addresses) if wrong is None else []),
        *[v for v in run.violations if v.invariant == "convergence"],
    ]
    unique = list(dict.fromkeys(violations))
    gaps = [a["longest_gap_ms"] for a in report["aliases"].values()]
    return {
        "seed": seed,
        "minutes": minutes,
        "started_at": run.t0,
        "replay": replay is not None,
        "nodes": lab.node_names,
        "aliasips": addresses,
        "log": str(log_path),
        "episodes": dict(sorted(run.episodes_done.items())),
        "skipped": dict(sorted(run.skipped.items())),
        "commands": dict(sorted(Counter(c.fault for c in run.commands).items())),
        "refused": sum(not c.ok for c in run.commands),
        "observer_rounds": report["rounds"],
        "observer_late_rounds": report["late_rounds"],
        "split_brain_rounds": report["split_brain_rounds"],
        "max_holderless_ms": max(gaps, default=0.0),
        "converge_s": round(converge_s, 2),
        "bounds": {
            "reaction_s": invariants.REACTION_S,
            "recovery_s": invariants.RECOVERY_S,
            "converge_s": CONVERGE_S,
            "deadman_s": invariants.DEADMAN_S,
        },
        "violations": [v.to_dict() for v in sorted(unique, key=_when)],
    }


def node_macs(lab: Lab) -> dict[str, str]:
    """Each node's MAC on the service LAN, by MAC."""
    return {lab.lan.node(n).mac: n for n in lab.node_names}


def _when(v: Violation) -> float:
    return v.at if v.at is not None else float("inf")


def _check_so_far(
    run: Run, poller: StatusPoller, truth: KernelTruth, observer: Running, aliases: set[str]
) -> list[Violation]:
    """(a), (b), (e) and (f) over what the witnesses recorded until now."""
    samples, _ = poller.snapshot()
    settled = time.time() - 2 * invariants.SETTLE_S  # newer rounds: judged at the next check
    rounds = [
        invariants.SplitBrain(
            e["alias"], e["at"], tuple(e["macs"]), 1,
            f"{e['alias']}: round {e['round']} answered by {', '.join(e['macs'])}",
        )
        for e in observer.events()
        if e.get("event") == "split-brain" and e["at"] <= settled
    ]  # fmt: skip
    runs = invariants.agent_runs(run.commands, run.lab.node_names, run.t0)
    found = invariants.judge_split_brain(rounds, node_macs(run.lab), runs, samples)
    found += invariants.epochs(samples)
    now = time.time()
    able, powered = invariants.ability(run.commands, run.lab.node_names, run.t0)
    presences = truth.presences(aliases)
    found += invariants.stray_aliases(presences, samples, able, powered, now)
    found += invariants.dead_man(presences, runs, powered, now - invariants.DEADMAN_S)
    return found


def summary_lines(summary: dict[str, Any]) -> list[str]:
    lines = [
        f"chaos seed {summary['seed']} ({summary['minutes']:g} min"
        f"{', replayed' if summary['replay'] else ''}): "
        f"{'OK' if not summary['violations'] else 'VIOLATED'}",
        f"  episodes by kind: {summary['episodes']}",
        f"  skipped (their resources taken by an open episode): {sum(summary['skipped'].values())}",
        f"  lab commands: {sum(summary['commands'].values())} "
        f"({summary['refused']} refused by the lab)",
        f"  observer rounds {summary['observer_rounds']}, split-brain rounds "
        f"{summary['split_brain_rounds']}, longest holderless time on the wire "
        f"{summary['max_holderless_ms']} ms",
        f"  converged {summary['converge_s']} s after the heal",
    ]
    for v in summary["violations"]:
        when = f" at +{v['at'] - summary['started_at']:.1f} s" if v["at"] is not None else ""
        lines.append(f"  VIOLATION {v['invariant']}{when}: {v['detail']}")
    if summary["violations"]:
        lines.append(f"  seed {summary['seed']}; fault log {summary['log']}")
        lines.append(f"  replay: aliasip-lab chaos --replay {summary['log']}")
    return lines


def read_log(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the issued commands of a fault log (``--replay``)."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not lines or "chaos" not in lines[0]:
        raise LabError(f"{path} is not a chaos fault log (no header line)", code=2)
    return lines[0]["chaos"], [e for e in lines[1:] if "fault" in e and not e.get("healing")]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="aliasip-lab chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--nodes", type=int, default=3, help="for a lab it builds")
    parser.add_argument("--aliasips", type=int, default=2)
    parser.add_argument("--log", type=Path, help="the fault log (JSON lines)")
    parser.add_argument("--replay", type=Path, help="issue the commands of this fault log")
    parser.add_argument("--state-dir", type=Path, help="use (or build) the lab kept there")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    try:
        replay = None
        if args.replay is not None:
            if not args.replay.exists():
                raise LabError(f"no fault log {args.replay}", code=2)
            header, replay = read_log(args.replay)
            args.seed, args.minutes = header["seed"], header["minutes"]
            args.nodes, args.aliasips = len(header["nodes"]), len(header["aliasips"])
        if not 0 < args.minutes <= MAX_MINUTES:
            raise LabError(f"--minutes must be in (0, {MAX_MINUTES:g}]", code=2)
        if not 2 <= args.nodes <= 10:
            raise LabError("--nodes must be 2 to 10 (a move needs two)", code=2)
        if not 1 <= args.aliasips <= 20:
            raise LabError("--aliasips must be 1 to 20", code=2)
        summary = chaos(args.seed, args.minutes, args.nodes, args.aliasips, args.state_dir,
                        args.log, replay)  # fmt: skip
    except LabError as exc:
        print(f"aliasip-lab chaos: {exc}", file=sys.stderr)
        return exc.code
    print(json.dumps(summary, indent=2) if args.json else "\n".join(summary_lines(summary)))
    return 1 if summary["violations"] else 0


def chaos(
    seed: int,
    minutes: float,
    nodes: int,
    aliasips: int,
    state_dir: Path | None = None,
    log: Path | None = None,
    replay: list[dict[str, Any]] | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """A chaos run on the lab in ``state_dir`` (built there if none is up, then removed),
    or on a lab of its own in a temporary directory."""
    workdir = Path(tempfile.mkdtemp(prefix="aip-chaos-"))
    stamp = int(time.time())
    log_path = log or Path(tempfile.gettempdir()) / f"aliasip-chaos-seed{seed}-{stamp}.jsonl"
    own = state_dir is None or not (state_dir / "state.json").exists()
    lab_dir = state_dir or workdir / "lab"
    with sigterm_as_interrupt():
        return _chaos_in(
            lab_dir, own, seed, minutes, nodes, aliasips, log_path, workdir, replay, say
        )


def _chaos_in(
    lab_dir: Path,
    own: bool,
    seed: int,
    minutes: float,
    nodes: int,
    aliasips: int,
    log_path: Path,
    workdir: Path,
    replay: list[dict[str, Any]] | None,
    say: Callable[[str], None],
) -> dict[str, Any]:
    try:
        if own:
            say(f"building a lab of {nodes} nodes in {lab_dir}")
            lab = Lab.up(lab_dir, nodes)
        else:
            lab = Lab.attach(lab_dir)
        try:
            return execute(lab, seed, minutes, aliasips, log_path, workdir, replay, say)
        finally:
            if not own:
                remove_traces(lab, aliasip_addresses(aliasips))
    finally:
        if own:
            Lab.down(lab_dir)
        with contextlib.suppress(OSError):
            for path in workdir.glob("*"):
                if path.is_file():
                    path.unlink()
            workdir.rmdir()


def remove_traces(lab: Lab, addresses: dict[str, list[str]]) -> None:
    """On a lab the run did not build: its AliasIPs and foreign addresses go again."""
    for name in addresses:
        with contextlib.suppress(ApiError, ApiUnavailable):
            lab.api.call("DELETE", f"{ALIASIPS}/{name}")
    for host in lab.lan.nodes:
        ip("-n", host.netns, "addr", "del", f"198.18.0.{140 + host.host_id}/32", "dev",
           host.ifname, check=False)  # fmt: skip
        ip("-n", host.netns, "addr", "del", f"2001:2::1:{host.host_id:x}/128", "dev",
           host.ifname, check=False)  # fmt: skip
