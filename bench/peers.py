"""Peer tools on the lab LAN: how long do clients lose an alias that the floor, Pacemaker's
IPaddr2 or keepalived moves between two nodes?

Each driver moves the alias once between two node namespaces of a lab LAN
(``aliasip_lab.lan``) and returns the report of the 10 ms client prober
(``aliasip_lab.prober``: ``outage_ms``, ``gaps``, ``segments`` with the MAC of each run of
replies, ...), measured exactly as ``bench.datapath`` measures aliasip (``bench.probing``):
the prober runs in the client namespace, the trial waits until the old holder answers it
and the client's ARP locktime has passed, then injects the move or the fault *while
probing*, and waits until the new holder answers.

Over the same window the wire observer (``aliasip_lab.observer``, in the LAN's observer
namespace) asks for the alias by broadcast ARP every 10 ms; the trial's split-brain
figures come from it (``split_brain_rounds``, ``longest_split_brain_ms``: two MACs
answering one round) and so does ``holderless_ms`` (nobody answering), next to the
prober's client-seen ``outage_ms``. The prober's own ``split_brain_samples`` (two MACs
in one client probe, which its neighbour cache almost never lets happen) stays in the
report as the client's view; it is no evidence that the wire had one holder.

- ``floor_move``: ``ip addr del`` on src, ``ip addr add`` + one ``arping -U`` on dst;
- ``ipaddr2_move``: the Pacemaker resource agent (Debian ``resource-agents``)
  ``IPaddr2 stop`` on src, then ``IPaddr2 start`` on dst, as the cluster manager runs them;
- ``keepalived_pair`` / ``KeepalivedPair.trial``: one keepalived (Debian package) per node
  namespace, a VRRP instance for the alias, and three faults of the master: ``graceful``
  (SIGTERM: it sends priority 0), ``node-loss`` (SIGKILL + its LAN cable cut), ``link-down``
  (cable cut, keepalived alive). ``keepalived_failover`` is the one-shot form.

Every process a driver starts is stopped when it returns, also on failure; every wait is
bounded. Everything stays in the LAN's namespaces (198.18.0.0/24, no default route).

    .venv/bin/python -m bench.peers --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from aliasip_lab.lan import Host, Lan, ip
from bench.probing import (
    LOCKTIME_WAIT_S,
    Json,
    capture_on,
    check_neighbour,
    finish_prober,
    forget_neighbour,
    move_by_hand,
    observing,
    start_prober,
    wait_answered_by,
    wait_prober_ready,
    wire_figures,
)

ALIAS = ipaddress.IPv4Interface("198.18.0.50/24")
# The prober runs for a fixed time: its start-up until the old holder answers (typically
# 0.2 s), the locktime wait, the move's own budget, and this much probing after the new
# holder first answered (so the report shows it answering).
READY_BUDGET_S = 1.0
TAIL_S = 0.3
FLOOR_BUDGET_S = 0.5
IPADDR2_BUDGET_S = 1.5
PROCESS_EXIT_S = 5.0
POLL_S = 0.02
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

OCF_ROOT = Path("/usr/lib/ocf")
IPADDR2 = OCF_ROOT / "resource.d/heartbeat/IPaddr2"
OCF_SUCCESS = 0

KEEPALIVED = "/usr/sbin/keepalived"
# VRRPv3 (RFC 5798) carries the interval in centiseconds: keepalived accepts 0.01-255 s.
# VRRPv2 carries whole seconds: keepalived 2.2.7 rounds 0.1 up to 1 s ("must be an integer.
# rounding"), so sub-second needs version 3; both intervals here use it (at 1 s, v2 and v3
# have the same timers).
VRRP_VERSION = 3
MIN_ADVERT_INT_S = 0.01
VRID = 50
PRIMARY_PRIORITY = 150  # "50 more than on other machines" (keepalived.conf(5))
STANDBY_PRIORITY = 100
RESTART_TIMEOUT_S = 10.0
KEEPALIVED_SLACK_S = 0.5
STATE_RE = re.compile(r"\((\w+)\) Entering (\w+) STATE")

Fault = Literal["graceful", "node-loss", "link-down"]
FAULTS: tuple[Fault, ...] = get_args(Fault)


# --------------------------------------------------------------------------- one trial


def measure(
    lan: Lan,
    alias: ipaddress.IPv4Interface,
    before: Host,
    after: Host,
    inject: Callable[[], dict[str, float]],
    budget_s: float,
    phase_s: float = 0.0,
) -> Json:
    """Probe from the client, wait until ``before`` answers and locktime has passed, run
    ``inject`` (the move, or the fault), wait (bounded by ``budget_s``) until ``after``
    answers; the prober's report, the wire observer's figures over the same window
    (``bench.probing.wire_figures``), and when and how long the injection took.

    ``inject`` returns the ms of its steps. ``takeover_ms`` is from the start of the
    injection to the first echo reply from ``after`` at the client (kernel timestamp).
    ``phase_s``: inject after a further random delay in [0, phase_s), so that a fault does
    not always hit the same phase of a periodic protocol (VRRP adverts).
    """
    address = alias.ip
    duration_s = round(READY_BUDGET_S + LOCKTIME_WAIT_S + phase_s + budget_s + TAIL_S, 3)
    with capture_on(lan.client) as cap, observing(lan, address, duration_s) as observer:
        started = time.monotonic()
        proc = start_prober(lan, address, duration_s)
        try:
            wait_prober_ready(cap, proc, address, before.mac)
            time.sleep(LOCKTIME_WAIT_S)  # since the client learnt ``before``'s MAC
            neighbour_state = check_neighbour(lan, address, before)
            time.sleep(random.uniform(0.0, phase_s))
            injected_at, t0 = time.time(), time.perf_counter()
            steps_ms = inject()
            inject_ms = (time.perf_counter() - t0) * 1000
            left_s = started + duration_s - TAIL_S - time.monotonic()
            took_over_at = wait_answered_by(
                cap, proc, address, after.mac, timeout_s=max(left_s, 0.0), since=injected_at
            )
            report = finish_prober(proc, duration_s)
            wire = wire_figures(observer.finish(), address)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=PROCESS_EXIT_S)
    if took_over_at is None:
        raise RuntimeError(
            f"{after.name} did not answer the client within {budget_s} s of the injection"
        )
    return {
        **report,
        **wire,
        "injected_at": injected_at,
        "inject_ms": round(inject_ms, 3),
        "steps_ms": {k: round(v, 3) for k, v in steps_ms.items()},
        "takeover_ms": round((took_over_at - injected_at) * 1000, 3),
        "lost_probes": sum(g["lost"] for g in report["gaps"]),
        "neighbour_state_before": neighbour_state,
        "from_mac": before.mac,
        "to_mac": after.mac,
    }


def alias_on(host: Host, alias: ipaddress.IPv4Interface) -> bool:
    """Does ``host``'s LAN interface carry the alias (any label, any flags)?"""
    out = ip("-n", host.netns, "-o", "-4", "addr", "show", "dev", host.ifname).stdout
    return f"inet {alias} " in out


def remove_alias(host: Host, alias: ipaddress.IPv4Interface) -> None:
    ip("-n", host.netns, "addr", "del", str(alias), "dev", host.ifname, check=False)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` (bounded); raise naming ``what`` if it never held."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(POLL_S)


# --------------------------------------------------------------------------- (1) the floor


def floor_move(lan: Lan, alias: ipaddress.IPv4Interface, src: Host, dst: Host) -> Json:
    """``ip addr del`` on ``src``, ``ip addr add`` and ``arping -U`` on ``dst`` (one trial)."""
    for host in (src, dst):
        remove_alias(host, alias)
    ip("-n", src.netns, "addr", "add", str(alias), "dev", src.ifname)
    forget_neighbour(lan, alias.ip)

    def inject() -> dict[str, float]:
        return move_by_hand(lan, alias, src, dst).steps_ms

    return measure(lan, alias, src, dst, inject, FLOOR_BUDGET_S)


# --------------------------------------------------------------------------- (2) IPaddr2


class SessionGroups:
    """Processes started each in a session of its own, stopped together at the end.

    A resource agent leaves children behind on purpose (IPaddr2 sends its ARPs from a
    background ``send_arp``): they stay in the agent's process group, so waiting for (and
    at worst killing) that group by its id catches them without touching anything else.
    """

    def __init__(self) -> None:
        self.groups: list[int] = []

    def run(self, lan: Lan, host: Host, argv: Sequence[str], env: dict[str, str], log: Path) -> int:
        """Run ``argv`` in ``host``'s namespace, wait (bounded) for it; its exit code."""
        with log.open("a") as out:
            proc = lan.spawn(
                host, argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.groups.append(proc.pid)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=PROCESS_EXIT_S)
            raise RuntimeError(f"{host.name}: {' '.join(argv)} did not finish in 30 s") from None

    def settle(self, timeout_s: float = PROCESS_EXIT_S) -> None:
        """Wait (bounded) until every group is gone; SIGKILL what is left."""
        deadline = time.monotonic() + timeout_s
        for group in self.groups:
            while _group_alive(group) and time.monotonic() < deadline:
                time.sleep(POLL_S)
            if _group_alive(group):  # a live member keeps the group id from being reused
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
        self.groups.clear()


def _group_alive(group: int) -> bool:
    """Does a live (not zombie) process of process group ``group`` remain? Orphans are reaped
    by init whenever it gets to it (in a micro-VM, a second later): a zombie has finished."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False


class IPaddr2:
    """The IPaddr2 resource agent for one alias, run per node as Pacemaker would run it.

    Pacemaker's executor passes the parameters as ``OCF_RESKEY_*`` variables; here each
    node gets its own ``HA_RSCTMP`` (the agent's state: send_arp pid files, locks) under
    ``workdir``, as each real node has its own ``/run/resource-agents``, and the agent logs
    to a file there instead of syslog. ARPs as by default: 5, 200 ms apart, in background.
    """

    def __init__(self, lan: Lan, alias: ipaddress.IPv4Interface, workdir: Path) -> None:
        self.lan, self.alias, self.workdir = lan, alias, workdir
        self.processes = SessionGroups()

    def env(self, host: Host) -> dict[str, str]:
        state = self.workdir / host.name
        state.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": SYSTEM_PATH,
            "OCF_ROOT": str(OCF_ROOT),
            "OCF_RA_VERSION_MAJOR": "1",
            "OCF_RA_VERSION_MINOR": "1",
            "OCF_RESOURCE_INSTANCE": "alias",
            "OCF_RESOURCE_TYPE": "IPaddr2",
            "OCF_RESOURCE_PROVIDER": "heartbeat",
            "OCF_RESKEY_ip": str(self.alias.ip),
            "OCF_RESKEY_cidr_netmask": str(self.alias.network.prefixlen),
            "OCF_RESKEY_nic": host.ifname,
            "OCF_RESKEY_CRM_meta_timeout": "20000",
            "HA_RSCTMP": str(state),
            "HA_VARRUN": str(state),
            "HA_LOGFACILITY": "none",
            "HA_LOGFILE": str(state / "ha.log"),
            "HA_DEBUGLOG": str(state / "ha-debug.log"),
        }

    def action(self, host: Host, action: str) -> float:
        """``IPaddr2 ACTION`` on ``host``; its wall ms. Anything but OCF_SUCCESS raises."""
        started = time.perf_counter()
        log = self.workdir / f"{host.name}.out"
        code = self.processes.run(self.lan, host, [str(IPADDR2), action], self.env(host), log)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if code != OCF_SUCCESS:
            tail = log.read_text()[-500:] if log.exists() else ""
            raise RuntimeError(f"{host.name}: IPaddr2 {action} exited {code}: {tail}")
        return elapsed_ms

    def close(self) -> None:
        self.processes.settle()


def ipaddr2_move(lan: Lan, alias: ipaddress.IPv4Interface, src: Host, dst: Host) -> Json:
    """``IPaddr2 stop`` on ``src``, then ``IPaddr2 start`` on ``dst`` (one trial)."""
    with tempfile.TemporaryDirectory(prefix="aliasip-ipaddr2-") as tmp:
        agent = IPaddr2(lan, alias, Path(tmp))
        try:
            for host in (src, dst):
                remove_alias(host, alias)
            agent.action(src, "start")
            agent.processes.settle()  # its background ARPs are done before the trial
            forget_neighbour(lan, alias.ip)

            def inject() -> dict[str, float]:
                return {
                    "ipaddr2_stop": agent.action(src, "stop"),
                    "ipaddr2_start": agent.action(dst, "start"),
                }

            return measure(lan, alias, src, dst, inject, IPADDR2_BUDGET_S)
        finally:
            agent.close()


# --------------------------------------------------------------------------- (3) keepalived


@dataclass
class Keepalived:
    """One keepalived (VRRP only) in one node's namespace, files of its own in ``workdir``."""

    lan: Lan
    host: Host
    priority: int
    workdir: Path
    proc: subprocess.Popen[str] | None = None
    log_offset: int = 0

    def path(self, suffix: str) -> Path:
        return self.workdir / f"{self.host.name}.{suffix}"

    def configure(self, alias: ipaddress.IPv4Interface, advert_int: float, master: bool) -> None:
        """The configuration keepalived users write: initial MASTER on the higher priority,
        preemption on (the default), GARPs: 3 at once on becoming master and 3 more 1 s later
        (keepalived's default is 5 + 5 after 5 s), no vrrp_strict (it would set no_accept,
        and the alias would not answer the client)."""
        self.path("conf").write_text(
            f"""global_defs {{
    router_id {self.host.name}
    vrrp_version {VRRP_VERSION}
    vrrp_garp_master_repeat 3
    vrrp_garp_master_delay 1
}}
vrrp_instance alias {{
    state {"MASTER" if master else "BACKUP"}
    interface {self.host.ifname}
    virtual_router_id {VRID}
    priority {self.priority}
    advert_int {advert_int:g}
    virtual_ipaddress {{
        {alias} dev {self.host.ifname}
    }}
}}
"""
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Foreground (``-n``), VRRP only (``-P``), log to its file (``-l -D``, no syslog),
        its own pid files so that the instances of several namespaces never clash."""
        log = self.path("log")
        self.log_offset = log.stat().st_size if log.exists() else 0
        argv = [
            KEEPALIVED, "-n", "-P", "-l", "-D", "-G", "-f", str(self.path("conf")),
            "-p", str(self.path("pid")), "-r", str(self.path("vrrp.pid")),
        ]  # fmt: skip
        with log.open("a") as out:
            self.proc = self.lan.spawn(
                self.host, argv, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def state(self) -> str | None:
        """The VRRP state this run of keepalived last entered (its log), None before any."""
        log = self.path("log")
        if self.proc is None or not log.exists():
            return None
        with log.open() as f:
            f.seek(self.log_offset)
            states = STATE_RE.findall(f.read())
        return states[-1][1] if states else None

    def terminate(self) -> None:
        """SIGTERM, as ``systemctl stop``: the master sends priority 0 and drops the alias.
        Returns at once; ``reap`` waits for the exit."""
        if self.running and self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL keepalived and its VRRP child at once (its own session's process group):
        no priority 0 advert, the alias stays configured, as in a crash."""
        if self.proc is not None and self.proc.returncode is None:  # not reaped: our group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.reap()

    def reap(self) -> None:
        """Wait (bounded) for the process to exit; SIGKILL it and its child if it won't.
        (keepalived's parent exits only after its VRRP child: nothing is left behind.)"""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=PROCESS_EXIT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # not reaped yet: still our group
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=PROCESS_EXIT_S)
        self.proc = None


@dataclass
class KeepalivedPair:
    """A VRRP instance for the alias between ``primary`` (priority 150, initial MASTER) and
    ``standby`` (100, BACKUP), preemption on: after a fault is repaired, the primary takes
    the alias back, so every trial starts from the same state."""

    lan: Lan
    alias: ipaddress.IPv4Interface
    primary: Keepalived
    standby: Keepalived
    advert_int: float
    trials: int = field(default=0)

    @property
    def instances(self) -> tuple[Keepalived, Keepalived]:
        return self.primary, self.standby

    @property
    def master_down_s(self) -> float:
        """RFC 5798: 3 adverts + skew, the skew from the standby's priority."""
        skew = (256 - self.standby.priority) * self.advert_int / 256
        return 3 * self.advert_int + skew

    def restore(self) -> None:
        """Level-triggered: the cables up, keepalived running on both nodes, the primary
        MASTER holding the alias, the standby BACKUP without it, the client reaching the
        alias at the primary's MAC. A node whose keepalived is down counts as rebooted: the
        alias it still carries (after SIGKILL) is removed before its cable comes back."""
        for instance in self.instances:
            if not instance.running:
                instance.reap()
                remove_alias(instance.host, self.alias)
        for instance in self.instances:
            self.lan.set_link(instance.host, up=True)
        for instance in self.instances:
            if not instance.running:
                instance.start()
        primary, standby = self.primary, self.standby
        wait_until(
            lambda: (
                primary.state() == "MASTER"
                and standby.state() == "BACKUP"
                and alias_on(primary.host, self.alias)
                and not alias_on(standby.host, self.alias)
            ),
            RESTART_TIMEOUT_S + 2 * self.master_down_s,
            f"{primary.host.name} MASTER and {standby.host.name} BACKUP",
        )
        for instance in self.instances:
            if not instance.running:
                raise RuntimeError(f"keepalived on {instance.host.name} exited")
        forget_neighbour(self.lan, self.alias.ip)
        self.lan.run(self.lan.client, "ping", "-c", "1", "-W", "2", str(self.alias.ip))
        if self.lan.neighbour_mac(self.lan.client, str(self.alias.ip)) != primary.host.mac:
            raise RuntimeError(f"the client does not reach {self.alias} at {primary.host.name}")

    def inject(self, fault: Fault) -> dict[str, float]:
        """The fault on the primary (master); the ms of each step."""
        primary, steps = self.primary, dict[str, float]()
        t0 = time.perf_counter()
        if fault == "graceful":
            primary.terminate()
            steps["sigterm"] = (time.perf_counter() - t0) * 1000
        elif fault == "node-loss":
            primary.kill()
            t1 = time.perf_counter()
            self.lan.set_link(primary.host, up=False)
            steps |= {"sigkill": (t1 - t0) * 1000, "cable_cut": (time.perf_counter() - t1) * 1000}
        else:
            self.lan.set_link(primary.host, up=False)
            steps["cable_cut"] = (time.perf_counter() - t0) * 1000
        return steps

    def budget_s(self, fault: Fault) -> float:
        """How long the standby may take: after priority 0, its skew time (< one advert
        interval); after a silent loss, the master-down interval from the last advert heard;
        plus ``KEEPALIVED_SLACK_S``."""
        if fault == "graceful":
            return self.advert_int + KEEPALIVED_SLACK_S
        return self.master_down_s + KEEPALIVED_SLACK_S

    def trial(self, fault: Fault) -> Json:
        """Restore, then one measured failover from the primary to the standby."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        self.restore()
        self.trials += 1
        primary, standby = self.primary.host, self.standby.host
        try:
            report = measure(
                self.lan, self.alias, primary, standby, lambda: self.inject(fault),
                self.budget_s(fault), phase_s=self.advert_int,
            )  # fmt: skip
        finally:
            if fault == "graceful":
                self.primary.reap()
        if self.standby.state() != "MASTER":
            raise RuntimeError(f"{standby.name} answered but is {self.standby.state()}")
        return {**report, "advert_int": self.advert_int, "fault": fault}

    def close(self) -> None:
        """Stop both keepalived (SIGTERM, bounded, then SIGKILL) and plug the cables back."""
        for instance in self.instances:
            instance.terminate()
        for instance in self.instances:
            instance.reap()
        for instance in self.instances:
            self.lan.set_link(instance.host, up=True)
            remove_alias(instance.host, self.alias)


@contextlib.contextmanager
def keepalived_pair(
    lan: Lan,
    alias: ipaddress.IPv4Interface,
    primary: Host,
    standby: Host,
    advert_int: float,
) -> Iterator[KeepalivedPair]:
    """keepalived on ``primary`` and ``standby``, the primary MASTER; all stopped on exit."""
    if shutil.which(KEEPALIVED) is None:
        raise RuntimeError(f"{KEEPALIVED} not found (Debian package keepalived)")
    if not MIN_ADVERT_INT_S <= advert_int <= 255:
        raise ValueError(f"advert_int must be {MIN_ADVERT_INT_S}-255 s (VRRPv3)")
    workdir = Path(tempfile.mkdtemp(prefix="aliasip-keepalived-"))
    pair = KeepalivedPair(
        lan,
        alias,
        Keepalived(lan, primary, PRIMARY_PRIORITY, workdir),
        Keepalived(lan, standby, STANDBY_PRIORITY, workdir),
        advert_int,
    )
    try:
        for instance in pair.instances:
            remove_alias(instance.host, alias)
            instance.configure(alias, advert_int, master=instance is pair.primary)
        pair.restore()
        yield pair
    finally:
        try:
            pair.close()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def keepalived_failover(
    lan: Lan,
    alias: ipaddress.IPv4Interface,
    src: Host,
    dst: Host,
    advert_int: float,
    fault: Fault,
) -> Json:
    """One trial: keepalived with ``src`` master and ``dst`` backup, ``fault`` on ``src``."""
    with keepalived_pair(lan, alias, src, dst, advert_int) as pair:
        return pair.trial(fault)


# --------------------------------------------------------------------------- main


@dataclass(frozen=True)
class Scenario:
    """One row of the table: a name, a one-trial driver, the reference outage (ms)."""

    name: str
    reference_ms: float | None


FLOOR = Scenario("floor: ip addr del/add + arping -U", None)
IPADDR2_SCENARIO = Scenario("Pacemaker IPaddr2 stop/start", 90)
REFERENCE_MS: dict[tuple[Fault, float], float] = {
    ("graceful", 1.0): 620,
    ("graceful", 0.1): 70,
    ("node-loss", 1.0): 2975,
    ("node-loss", 0.1): 325,
}


def keepalived_scenario(fault: Fault, advert_int: float) -> Scenario:
    return Scenario(
        f"keepalived advert_int {advert_int:g}: {fault}", REFERENCE_MS.get((fault, advert_int))
    )


def summarize(records: list[Json]) -> Json:
    """One scenario's trials: the client's figures (prober) and the wire's (observer)."""
    outages = [float(r["outage_ms"]) for r in records]
    takeovers = [float(r["takeover_ms"]) for r in records]
    holderless = [float(r["holderless_ms"]) for r in records]
    return {
        "n": len(records),
        "outage_median": statistics.median(outages),
        "outage_min": min(outages),
        "outage_max": max(outages),
        "takeover_median": statistics.median(takeovers),
        "holderless_median": statistics.median(holderless),
        "holderless_max": max(holderless),
        "split_brain_rounds": sum(int(r["split_brain_rounds"]) for r in records),
        "split_brain_trials": sum(int(r["split_brain_rounds"]) > 0 for r in records),
        "longest_split_brain_ms": max(float(r["longest_split_brain_ms"]) for r in records),
        "client_split_brain_samples": sum(len(r["split_brain_samples"]) for r in records),
        "ended_on_new_holder": sum(r["segments"][-1]["mac"] == r["to_mac"] for r in records),
    }


TABLE_NOTE = (
    "Client-seen outage and takeover: the 10 ms ICMP prober in the client namespace. "
    "Wire figures: the wire observer (broadcast ARP for the alias every 10 ms from its own "
    "namespace, every answering MAC recorded) over the same window. *Wire split-brain "
    "rounds*: observer rounds answered by two or more MACs, summed over the trials (in how "
    "many trials; the longest two-MAC run, ms). *Wire holderless*: the longest run of "
    "rounds nobody answered. *Client two-MAC samples*: probes the client saw answered by two "
    "MACs (its neighbour cache hides a second holder: no evidence of one holder)."
)


def table(results: dict[Scenario, list[Json]]) -> str:
    lines = [
        "| scenario | n | client outage ms median (min-max) | wire holderless ms median (max) "
        "| fault → new holder answers, ms | wire split-brain rounds (trials; longest ms) "
        "| client two-MAC samples | ended on new holder | reference ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario, records in results.items():
        s = summarize(records)
        ref = "-" if scenario.reference_ms is None else f"~{scenario.reference_ms:,.0f}"
        lines.append(
            f"| {scenario.name} | {s['n']} | {s['outage_median']:.1f} "
            f"({s['outage_min']:.1f}-{s['outage_max']:.1f}) "
            f"| {s['holderless_median']:.1f} ({s['holderless_max']:.1f}) "
            f"| {s['takeover_median']:.1f} "
            f"| {s['split_brain_rounds']} ({s['split_brain_trials']}/{s['n']}; "
            f"{s['longest_split_brain_ms']:.0f}) "
            f"| {s['client_split_brain_samples']} | {s['ended_on_new_holder']}/{s['n']} | {ref} |"
        )
    return "\n".join(lines)


def record(results: dict[Scenario, list[Json]], scenario: Scenario, report: Json) -> None:
    results.setdefault(scenario, []).append(report)
    print(
        f"{scenario.name:42} outage {report['outage_ms']:8.1f} ms  "
        f"takeover {report['takeover_ms']:8.1f} ms  "
        f"wire: holderless {report['holderless_ms']:8.1f} ms  "
        f"split-brain rounds {report['split_brain_rounds']} "
        f"(longest {report['longest_split_brain_ms']:.0f} ms)",
        flush=True,
    )


def run_all(
    lan: Lan, runs: int, advert_ints: Sequence[float], alias: ipaddress.IPv4Interface = ALIAS
) -> dict[Scenario, list[Json]]:
    """Every scenario ``runs`` times, node1 → node2; keepalived faults interleaved."""
    node1, node2 = lan.node("node1"), lan.node("node2")
    results: dict[Scenario, list[Json]] = {}
    for _ in range(runs):
        record(results, FLOOR, floor_move(lan, alias, node1, node2))
        record(results, IPADDR2_SCENARIO, ipaddr2_move(lan, alias, node1, node2))
    for advert_int in advert_ints:
        with keepalived_pair(lan, alias, node1, node2, advert_int) as pair:
            for _ in range(runs):
                for fault in FAULTS:
                    record(results, keepalived_scenario(fault, advert_int), pair.trial(fault))
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="trials per scenario (1-50)")
    parser.add_argument(
        "--advert-int", type=float, nargs="+", default=[1.0, 0.1], help="keepalived, seconds"
    )
    parser.add_argument("--json", type=Path, help="also write every report to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be 1-50")
    if not all(MIN_ADVERT_INT_S <= a <= 10 for a in args.advert_int):
        parser.error(f"--advert-int must be {MIN_ADVERT_INT_S}-10 s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.peers needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 1
    with Lan.create(nodes=2) as lan:
        results = run_all(lan, args.runs, args.advert_int)
    if args.json is not None:
        args.json.write_text(
            json.dumps({s.name: records for s, records in results.items()}, indent=1) + "\n"
        )
    print()
    print(TABLE_NOTE)
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
