"""``aliasip-lab demo`` (``./dev demo``): a whole cluster moves an alias twice while a
client watches, and every witness is asked what it saw.

1. ``Lab.up``: three node namespaces with an agent each, the API server and two operator
   replicas (in a temporary state directory, or ``--state-dir``);
2. the AliasIP ``demo`` (198.18.0.50/24 on node1, node2, node3) with the real
   ``kubectl apply -f -``, until Active (on node1, the first in preference order);
3. the client prober (an ICMP echo every 10 ms from 198.18.0.100, for a bounded time)
   and a kernel-timestamped capture of the client's wire;
4. a planned switchover to node2 (the switchover annotation);
5. node2 is lost (agent killed, both cables cut): the operator must fail over on the
   Lease expiry *and* a standby hearing nobody on the wire;
6. per move, one timeline from the Events, the agent logs, the Lease, the wire and the
   prober (:mod:`aliasip_lab.timeline`), with the client-seen outage and the split-brain
   samples (probes answered by two MACs, which must be none);
7. a summary table, ``kubectl get aip`` and the events of ``kubectl describe aip demo``;
8. ``Lab.down``, always: also after a failure or Ctrl-C.

Exit 0 only if both moves happened, the client reached the alias on each new node and no
probe was ever answered by two MACs; 1 with the reason otherwise; 3 if the state
directory already holds a lab; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from aliasip_api.lease import agent_lease_name, parse_lease
from aliasip_api.rest import ApiError, ApiUnavailable, leases_path
from aliasip_lab.capture import Capture, Frame
from aliasip_lab.cluster import SYSTEM_NAMESPACE, Lab, LabError, tag_for
from aliasip_lab.interrupt import sigterm_as_interrupt
from aliasip_lab.lan import existing_namespaces
from aliasip_lab.nsenter import netns
from aliasip_lab.observation import split_brain_rounds
from aliasip_lab.observer import Running
from aliasip_lab.observer import summary as observer_summary
from aliasip_lab.prober import ProbeReport
from aliasip_lab.timeline import (
    AgentRecord,
    ClientView,
    Step,
    agent_steps,
    aliasip_events,
    client_view,
    clock,
    echo_reply_mac,
    event_at,
    event_steps,
    failover_evidence,
    first_gratuitous_arp,
    read_agent_log,
    render,
)

NAME = "demo"
ALIAS = IPv4Address("198.18.0.50")
NODES = ("node1", "node2", "node3")
MANIFEST = f"""\
apiVersion: aliasip.io/v1alpha1
kind: AliasIP
metadata:
  name: {NAME}
spec:
  addresses: ["{ALIAS}/24"]
  nodes: [{", ".join(NODES)}]
"""
PROBE_INTERVAL_MS = 10
# The prober must cover both moves: ~0.5 s of baseline, the switchover (~0.2 s), the pause,
# the failover (the Lease lasts 3 s after its last renewal, renewed every second: at most
# ~3.3 s after the node stops) and the tail. What is left is spent gathering evidence.
PROBE_S = 10.0
BASELINE_S = 0.5  # steady replies from the first holder before anything moves
PAUSE_S = 1.2  # between the moves, so their timelines do not overlap
TAIL_S = 0.4  # replies from the new holder after a move, so its steady state shows
SWITCHOVER_TIMEOUT_S = 10.0
FAILOVER_TIMEOUT_S = 12.0
REPLY_TIMEOUT_S = 3.0


class DemoFailed(Exception):
    """A step did not happen as it must; the message says which and what was seen."""


class Out:
    """Lines for a person watching: progress stamped with the seconds since the start (so
    a wait of seconds visibly moves), and plain lines for the report at the end."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last = self.started
        self._lock = threading.Lock()

    def step(self, text: str) -> None:
        with self._lock:
            self.last = time.monotonic()
            print(f"[{self.last - self.started:5.1f}s] {text}", flush=True)

    def line(self, text: str = "") -> None:
        with self._lock:
            print(text, flush=True)

    def block(self, text: str, indent: str = "  ") -> None:
        for row in text.rstrip("\n").splitlines():
            self.line(f"{indent}{row}")

    @contextlib.contextmanager
    def heartbeat(self, what: str, every_s: float = 2.0) -> Iterator[None]:
        """While the body runs, say ``still waiting for WHAT`` after each ``every_s`` of
        silence: some steps (processes starting on a busy machine) have no progress of
        their own to show."""
        done = threading.Event()

        def beat() -> None:
            begun = time.monotonic()
            while not done.wait(0.1):
                if time.monotonic() - self.last >= every_s:
                    self.step(f"  ... still waiting for {what} ({time.monotonic() - begun:.0f} s)")

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


# -- entry point -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="aliasip-lab demo",
        description="Up a 3-node lab, create an AliasIP, switch it over, lose its node, "
        "show what every witness saw, and take the lab down again.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where the lab keeps its state while the demo runs (removed at the end; "
        "default: a new temporary directory)",
    )
    args = parser.parse_args(argv)
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="aliasip-demo-"))
    with sigterm_as_interrupt():
        return run(state_dir.resolve())


def run(state_dir: Path) -> int:
    """The whole demo; the lab is taken down whatever happens once it was started."""
    out = Out()
    every = f"every {PROBE_INTERVAL_MS} ms"
    out.line(f"aliasip demo: an AliasIP on 3 nodes, a client probing it {every};")
    out.line("a planned switchover, then its node is lost. Every step timed, on one clock.\n")
    if (state_dir / "state.json").exists() or _namespaces_of(state_dir):
        print(
            f"aliasip-lab demo: a lab is already up in {state_dir}; pass another --state-dir",
            file=sys.stderr,
        )
        return 3
    code = 1
    try:
        lab = bring_up(state_dir, out)
        code = play(lab, out)
    except DemoFailed as exc:
        out.line(f"\nFAILED: {exc}")
        print_log_tails(state_dir, out)
    except (LabError, ApiError, ApiUnavailable) as exc:
        out.line(f"\nFAILED: the lab: {exc}")
        print_log_tails(state_dir, out)
    except KeyboardInterrupt:
        out.line("\ninterrupted")
        code = 130
    except Exception as exc:  # anything else: still a clear last word, then the traceback
        out.line(f"\nFAILED: unexpected {type(exc).__name__}: {exc}")
        traceback.print_exc()
    finally:
        tear_down(state_dir, out)
    return code


def print_log_tails(state_dir: Path, out: Out, lines: int = 6) -> None:
    """The last lines of every lab process's log: the logs go with the lab, and a failed
    demo (in CI above all) must leave enough behind to tell why."""
    for log in sorted((state_dir / "logs").glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        out.line(f"\n  last lines of {log.stem}:")
        out.block("\n".join(tail), indent="    ")


def _namespaces_of(state_dir: Path) -> list[str]:
    tag = tag_for(state_dir)
    return [n for n in existing_namespaces() if n.startswith(f"{tag}-")]


def tear_down(state_dir: Path, out: Out) -> None:
    """``Lab.down`` and a check that no namespace is left; a second Ctrl-C must not cut
    the removal short (it would leave processes and namespaces behind), nor a SIGTERM."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        out.line("")
        out.step(f"taking the lab down (aliasip-lab down --state-dir {state_dir})")
        removed = Lab.down(state_dir)
        processes = sum(1 for r in removed if r.startswith("process"))
        namespaces = sum(1 for r in removed if r.startswith("namespace"))
        left = _namespaces_of(state_dir)
        if left:
            out.step(f"lab NOT fully removed: namespaces left: {', '.join(left)}")
        else:
            out.step(
                f"lab removed: {processes} processes stopped, {namespaces} namespaces deleted, "
                "state directory gone"
            )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- setting up ------------------------------------------------------------------------------


def bring_up(state_dir: Path, out: Out) -> Lab:
    """``Lab.up`` with its progress shown, then who is who on the LAN."""
    out.step(f"building the lab in {state_dir}")
    with out.heartbeat("the lab: processes starting, leader election, agents' Leases"):
        lab = Lab.up(state_dir, nodes=len(NODES), progress=lambda text: out.step(f"  {text}"))
    leader = lab.leader()
    out.step(f"  ready: every agent holds its Lease; operator leader {leader}")
    lan = lab.lan
    for host in lan.nodes:
        out.line(f"           {host.name:<7} {host.ipv4!s:<16} {host.mac}  agent running")
    out.line(f"           {'client':<7} {lan.client.ipv4!s:<16} {lan.client.mac}")
    return lab


def kubectl(lab: Lab, *args: str, stdin: str | None = None) -> str:
    """The real kubectl against the lab; its output, or :class:`DemoFailed` with its error."""
    done = subprocess.run(
        lab.kubectl_argv(*args), input=stdin, capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        raise DemoFailed(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def create_aliasip(lab: Lab, out: Out) -> str:
    """Step 2: apply the manifest as a user would and wait until a node holds it."""
    out.line("")
    out.step(f"kubectl apply -f -   (AliasIP {NAME}: {ALIAS}/24 on {', '.join(NODES)})")
    out.block(MANIFEST, indent="           | ")
    out.block(kubectl(lab, "apply", "-f", "-", stdin=MANIFEST), indent="           ")
    holder, _ = wait_active(lab, NODES, SWITCHOVER_TIMEOUT_S, out)
    out.step("kubectl get aip")
    out.block(kubectl(lab, "get", "aip"), indent="           ")
    return holder


def ready_message(status: dict[str, Any]) -> str:
    """The operator's own words for the AliasIP's state (its Ready condition)."""
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            return f"{condition.get('reason')}: {condition.get('message')}"
    return "(no Ready condition yet)"


def describe_status(status: dict[str, Any]) -> str:
    """One line: phase, active node, and the operator's words for it."""
    if not status.get("phase"):
        return "no status yet: waiting for the operator"
    return f"{status['phase']} on {status.get('activeNode') or 'no node'}: {ready_message(status)}"


def wait_active(
    lab: Lab,
    targets: Collection[str],
    timeout_s: float,
    out: Out,
    tick: Callable[[], str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Poll until the AliasIP is Active on one of ``targets``; (holder, status).

    Each change of the Ready condition is printed as it happens (the operator narrating
    the move), and ``tick`` once a second while nothing changes, so no wait is silent."""
    deadline = time.monotonic() + timeout_s
    next_tick = time.monotonic() + 1.0
    said, status = "", dict[str, Any]()
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiError, ApiUnavailable):
            status = lab.aliasip(NAME).get("status") or {}
        message = describe_status(status)
        if message != said:
            out.step(f"  {message}")
            said = message
        active = status.get("activeNode")
        if status.get("phase") == "Active" and isinstance(active, str) and active in targets:
            return active, status
        if tick is not None and time.monotonic() >= next_tick:
            out.step(f"  {tick()}")
            next_tick += 1.0
        time.sleep(0.05)
    raise DemoFailed(
        f"{NAME} was not Active on {' or '.join(targets)} within {timeout_s:g} s "
        f"(last seen: {said})"
    )


# -- the client ------------------------------------------------------------------------------


@dataclass
class Client:
    """The client's two witnesses: the prober process (its report comes when its bounded
    run ends) and a capture on the client's wire, which the demo can read live."""

    prober: subprocess.Popen[str]
    capture: Capture
    started: float  # epoch seconds
    observer: Running

    def wait_reply(self, mac: str, since: float, timeout_s: float) -> float | None:
        """When the first echo reply from ``mac`` reached the client after ``since``."""

        def first(frames: list[Frame]) -> float | None:
            return next(
                (f.at for f in frames if f.at >= since and echo_reply_mac(f, ALIAS) == mac), None
            )

        return first(self.capture.wait_until(lambda fs: first(fs) is not None, timeout_s))

    def report(self, out: Out) -> ProbeReport:
        """Wait for the prober's bounded run to end and read its JSON report."""
        left = self.started + PROBE_S - time.time()
        if left > 0.2:
            out.step(f"client prober: finishing its {PROBE_S:g} s run ({left:.1f} s left)")
        try:
            stdout, stderr = self.prober.communicate(timeout=PROBE_S + 15)
        except subprocess.TimeoutExpired:
            raise DemoFailed("the client prober did not finish its run") from None
        if self.prober.returncode != 0:
            raise DemoFailed(f"the client prober failed: {stderr.strip()}")
        return ProbeReport.from_dict(json.loads(stdout))

    def wire(self) -> dict[str, Any]:
        """The wire observer's report (its bounded run ends with the prober's)."""
        try:
            return self.observer.report(timeout_s=PROBE_S + 15)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            raise DemoFailed(f"the wire observer failed: {exc}") from None


@contextlib.contextmanager
def client_watching(lab: Lab, out: Out) -> Iterator[Client]:
    """Step 3: capture first (so nothing is missed), then the prober, in the client's
    namespace; both stopped afterwards, also on failure. The prober gets a session of its
    own: Ctrl-C reaches the demo, which stops it, not it directly."""
    client = lab.lan.client
    with netns(client.netns):
        capture = Capture(client.ifname)
    capture.start()
    argv = [
        "ip", "netns", "exec", client.netns, sys.executable, "-m", "aliasip_lab.prober",
        str(ALIAS), "--interface", client.ifname, "--interval-ms", str(PROBE_INTERVAL_MS),
        "--duration", str(PROBE_S), "--json",
    ]  # fmt: skip
    out.line("")
    out.step(
        f"client: probing {ALIAS} every {PROBE_INTERVAL_MS} ms for {PROBE_S:g} s "
        f"(prober process in {client.netns}); capturing its wire"
    )
    observer = Running(
        lab.lan.observer.netns,
        [str(ALIAS)],
        PROBE_S,
        lab.state_dir / "observer.jsonl",
        interval_ms=PROBE_INTERVAL_MS,
    )
    out.step(
        f"wire observer: asking the LAN who has {ALIAS} every {PROBE_INTERVAL_MS} ms "
        f"(broadcast ARP from {lab.lan.observer.ipv4.ip}), recording every MAC that answers"
    )
    started = time.time()
    prober = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        observer.wait_started()
        yield Client(prober, capture, started, observer)
    finally:
        if prober.poll() is None:
            prober.kill()
            prober.communicate(timeout=5)
        observer.kill()
        capture.stop()


# -- the moves -------------------------------------------------------------------------------


@dataclass
class Move:
    """One move as the demo drove it: what it did and when, where the alias went, and the
    facts only the demo knows (its own action, the lost node's Lease)."""

    number: int
    title: str
    old: str
    started_at: float  # epoch seconds: the trigger, t0 of the timeline
    own_steps: list[Step]
    new: str = ""
    transition: dict[str, Any] = field(default_factory=dict)  # status.lastTransition


def switchover(lab: Lab, client: Client, holder: str, out: Out) -> Move:
    """Step 4: the planned path; the old holder releases before the new one adds."""
    out.line("")
    out.step(f"move 1: planned switchover {holder} -> node2 (annotation aliasip.io/switchover-to)")
    at = time.time()
    lab.switchover(NAME, "node2")
    action = f"annotated {NAME} aliasip.io/switchover-to=node2 (what `kubectl annotate` does)"
    move = Move(1, "switchover", holder, at, [Step(at, "demo", action, "API")])
    move.new, status = wait_active(lab, ["node2"], SWITCHOVER_TIMEOUT_S, out)
    move.transition = dict(status.get("lastTransition") or {})
    _see_client_reach(lab, client, move, out)
    return move


def lose_node(lab: Lab, client: Client, out: Out) -> Move:
    """Step 5: the unplanned path; node2 vanishes and cannot release anything."""
    out.line("")
    out.step("move 2: node2 is lost (aliasip-lab stop-node node2)")
    at = time.time()
    said = lab.stop_node("node2")
    out.step(f"  {said}")
    steps = [Step(at, "demo", f"{said}: it releases nothing; its copy of the address is "
                  "behind a cut cable", "lab")]  # fmt: skip
    renewed, expires = _lease_times(lab, "node2")
    if renewed is not None and expires is not None:
        steps.append(Step(renewed, "API", "node2's agent Lease renewed for the last time", "Lease"))
        steps.append(
            Step(expires, "API", f"node2's Lease expired ({expires - renewed:g} s after its "
                 "last renewal): nothing vouches for node2 any more", "Lease")
        )  # fmt: skip

    def tick() -> str:
        now = time.time()
        text = f"{now - at:.1f} s since node2 stopped"
        if expires is not None and now < expires:
            return f"{text}; its Lease expires in {expires - now:.1f} s"
        return f"{text}; Lease expired: waiting for the standbys' probes and the operator"

    move = Move(2, "node lost", "node2", at, steps)
    move.new, status = wait_active(lab, ["node1", "node3"], FAILOVER_TIMEOUT_S, out, tick)
    move.transition = dict(status.get("lastTransition") or {})
    _see_client_reach(lab, client, move, out)
    return move


def _lease_times(lab: Lab, node: str) -> tuple[float | None, float | None]:
    """(last renewal, expiry) of ``node``'s agent Lease, epoch seconds; read right after
    its agent was killed, so the renewal is the last one."""
    with contextlib.suppress(ApiError, ApiUnavailable):
        body = lab.api.get(f"{leases_path(SYSTEM_NAMESPACE)}/{agent_lease_name(node)}")
        if body is not None:
            lease = parse_lease(body)
            if lease.renew_time is not None and lease.expires_at is not None:
                return lease.renew_time.timestamp(), lease.expires_at.timestamp()
    return None, None


def _see_client_reach(lab: Lab, client: Client, move: Move, out: Out) -> None:
    """The move counts once the client gets replies from the new node's MAC (on its wire)."""
    mac = lab.lan.node(move.new).mac
    first = client.wait_reply(mac, move.started_at, REPLY_TIMEOUT_S)
    if first is None:
        raise DemoFailed(
            f"move {move.number}: {NAME} is Active on {move.new}, but the client got no reply "
            f"from {move.new} ({mac}) within {REPLY_TIMEOUT_S:g} s (has the {PROBE_S:g} s "
            "prober run ended?)"
        )
    out.step(
        f"  client: replies from {move.new} ({mac}), "
        f"{(first - move.started_at) * 1000:.0f} ms after the move began"
    )
    time.sleep(TAIL_S)


def play(lab: Lab, out: Out) -> int:
    """Steps 2 to 7; the exit code."""
    holder = create_aliasip(lab, out)
    with client_watching(lab, out) as client:
        mac = lab.lan.node(holder).mac
        if client.wait_reply(mac, client.started, REPLY_TIMEOUT_S) is None:
            raise DemoFailed(f"the client got no reply from {holder} ({mac}) for {ALIAS}")
        out.step(f"  client: replies from {holder} ({mac})")
        time.sleep(BASELINE_S)
        moves = [switchover(lab, client, holder, out)]
        time.sleep(PAUSE_S)
        moves.append(lose_node(lab, client, out))
        out.line("")
        out.step("gathering the evidence: Events, agent logs, kubectl get / describe")
        evidence = gather(lab)
        report = client.report(out)
        wire = client.wire()
        frames = client.capture.frames()
    return print_report(lab, moves, evidence, report, wire, frames, out)


# -- the evidence and the report -------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """What the cluster recorded, read before the lab (and its logs) are removed."""

    events: list[dict[str, Any]]
    records: dict[str, list[AgentRecord]]
    get_aip: str
    describe: str


def gather(lab: Lab) -> Evidence:
    """Events (all namespaces), every agent's log records, and kubectl's views."""
    items = lab.api.call("GET", "/api/v1/events").get("items") or []
    records = {}
    for node in NODES:
        daemon = lab.daemon(f"agent {node}")
        log = Path(daemon.log) if daemon is not None else Path(lab.log_path(f"agent {node}"))
        records[node] = read_agent_log(log)
    return Evidence(
        events=[dict(e) for e in aliasip_events(items, NAME)],
        records=records,
        get_aip=kubectl(lab, "get", "aip"),
        describe=kubectl(lab, "describe", "aip", NAME),
    )


@dataclass(frozen=True)
class Outcome:
    """One move's verdict: the client's view of it and how the operator detected it."""

    move: Move
    view: ClientView
    detection: str


def move_timeline(
    lab: Lab,
    move: Move,
    until: float,
    evidence: Evidence,
    report: ProbeReport,
    frames: list[Frame],
) -> tuple[list[Step], ClientView]:
    """Every witness's steps for ``move`` (within [its start, ``until``)) and the client's view."""
    window = (move.started_at, until)
    names = {h.mac: h.name for h in lab.lan.hosts}
    new_mac = lab.lan.node(move.new).mac
    steps = list(move.own_steps)
    steps += event_steps(evidence.events, window)
    for node, records in evidence.records.items():
        steps += agent_steps(node, records, NAME, window, reporters={move.old, move.new})
    arp = first_gratuitous_arp(frames, ALIAS, new_mac, move.started_at)
    if arp is not None:
        frame, kind = arp
        what = f"first gratuitous ARP ({kind}) for {ALIAS} from {move.new} ({new_mac})"
        steps.append(Step(frame.at, "client", what, "wire"))
    view = client_view(report, new_mac, window)
    if view.last_before is not None and view.last_before_at is not None and view.lost:
        who = names.get(view.last_before.mac, view.last_before.mac)
        steps.append(Step(view.last_before_at, "client", f"last reply before the gap, from {who}",
                          "prober"))  # fmt: skip
    if view.first_new_at is not None:
        what = f"first reply from {move.new} ({new_mac}); {view.lost} probes lost in between"
        steps.append(Step(view.first_new_at, "client", what, "prober"))
    return steps, view


def detection(move: Move, evidence: Evidence) -> str:
    """How the operator knew to move: the request, or the evidence it named for a failover."""
    if move.number == 1:
        handed = any(
            r.event == "handoff-taken" and r.at >= move.started_at
            for r in evidence.records.get(move.new, [])
        )
        how = "told it directly" if handed else "then"
        return f"planned: {move.old} released, {how}; {move.new} added"
    later = [e for e in evidence.events if (event_at(e) or 0.0) >= move.started_at]
    why = failover_evidence(later)
    return why or "Lease expired"


def print_report(
    lab: Lab,
    moves: list[Move],
    evidence: Evidence,
    report: ProbeReport,
    wire: dict[str, Any],
    frames: list[Frame],
    out: Out,
) -> int:
    """Steps 6 and 7, and the verdict as the exit code."""
    outcomes = []
    bounds = [*(m.started_at for m in moves[1:]), float("inf")]
    for move, until in zip(moves, bounds, strict=True):
        steps, view = move_timeline(lab, move, until, evidence, report, frames)
        outcome = Outcome(move, view, detection(move, evidence))
        outcomes.append(outcome)
        _print_move(outcome, steps, out)
    _print_summary(outcomes, report, out)
    out.line("")
    for row in observer_summary(wire):
        out.line(row)
    out.line("\n$ kubectl get aip")
    out.block(evidence.get_aip)
    out.line(f"\n$ kubectl describe aip {NAME}   (its Events section)")
    out.block(_events_section(evidence.describe))
    return verdict(lab, outcomes, report, wire, out)


def _print_move(outcome: Outcome, steps: list[Step], out: Out) -> None:
    move, view = outcome.move, outcome.view
    title = f"move {move.number}: {move.title} {move.old} -> {move.new}"
    out.line(f"\n{title}  (t0 = {clock(move.started_at)})")
    for row in render(steps, move.started_at):
        out.line(row)
    operator = move.transition.get("outageMs")
    measured = f"; the agents measured {operator} ms without a holder" if operator else ""
    out.line(
        f"  => client-seen outage {view.outage_ms:.1f} ms ({view.lost} probes lost), "
        f"split-brain samples {view.split_brain}{measured}"
    )


def _print_summary(outcomes: list[Outcome], report: ProbeReport, out: Out) -> None:
    rows = [
        (
            f"{o.move.number} {o.move.title}",
            f"{o.move.old} -> {o.move.new}",
            f"{o.view.outage_ms:.1f} ms",
            str(o.view.lost),
            str(o.view.split_brain),
            o.detection,
        )
        for o in outcomes
    ]
    header = ("move", "from -> to", "outage", "lost", "split-brain", "detection")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    right = (False, False, True, True, True)

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row[:5], widths, right, strict=True)
        ]
        return "  " + "  ".join([*cells, row[5]])

    out.line(f"\nsummary (client probing every {PROBE_INTERVAL_MS} ms: "
             f"{report.sent} sent, {report.answered} answered)")  # fmt: skip
    out.line(fmt(header))
    for row in rows:
        out.line(fmt(row))


def _events_section(describe: str) -> str:
    """From ``Events:`` to the end of ``kubectl describe``'s output."""
    lines = describe.rstrip("\n").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Events:")), None)
    return "\n".join(lines[start:]) if start is not None else "(no Events section)"


def verdict(
    lab: Lab, outcomes: list[Outcome], report: ProbeReport, wire: dict[str, Any], out: Out
) -> int:
    """0 only if both moves ended with the client answered by the new node, no probe was
    ever answered by two MACs, and no round of the wire observer was either (the client
    sees one MAC at a time; the wire shows two hosts answering at once); otherwise 1,
    naming each failure."""
    failures = []
    for o in outcomes:
        if o.view.first_new is None:
            failures.append(f"move {o.move.number}: the prober saw no reply from {o.move.new}")
    split = report.split_brain_samples()
    if split:
        failures.append(f"{len(split)} probes answered by two MACs (split brain): seq {split[:10]}")
    rounds = split_brain_rounds(wire)
    if rounds:
        failures.append(f"{rounds} observer rounds answered by two MACs on the wire (split brain)")
    if len(outcomes) != 2:
        failures.append(f"{len(outcomes)} moves instead of 2")
    if failures:
        out.line("\nFAILED: " + "; ".join(failures))
        return 1
    last = outcomes[-1].move.new
    out.line(
        f"\nOK: both moves done, 0 split-brain samples at the client, 0 split-brain rounds "
        f"of {wire['rounds']} on the wire; the client reaches {ALIAS} on {last} "
        f"({lab.lan.node(last).mac})"
    )
    return 0
