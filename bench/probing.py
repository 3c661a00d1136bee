"""What the move benchmarks share: commands in a node, the client's prober, the wire
observer, the floor move.

Every benchmark that moves an alias between lab nodes measures the same way: the 10 ms
ICMP prober (``aliasip_lab.prober``) runs as its own process in the client namespace, a
kernel-timestamped capture there tells when it is being answered (and by which MAC), and
the client's neighbour entry is checked before anything is timed. ``bench.datapath`` and
``bench.peers`` both use these helpers, so aliasip and its peers are measured alike.

Two witnesses, two questions. The prober tells what a client lives through (its outage,
which MAC served it), but it follows the client's neighbour cache, so it hears one MAC at
a time and cannot see two hosts answering at once. The wire observer
(``aliasip_lab.observer``, in the LAN's ``observer`` namespace) broadcasts an ARP request
for the alias every 10 ms over the same window and records every MAC that answers: the
split-brain figures (rounds answered by two or more MACs) and the holderless time (the
longest run of rounds nobody answered) come from it, never from the prober.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aliasip_lab.capture import Capture, Frame
from aliasip_lab.lan import Host, Lan, ip
from aliasip_lab.nsenter import netns
from aliasip_lab.observer import Running

PROBE_INTERVAL_MS = 10.0
# Linux neighbours ignore non-gratuitous ARP updates for locktime (1 s) after the last one;
# waiting longer before a move treats every method alike, whatever it sends.
LOCKTIME_WAIT_S = 1.1
READY_TIMEOUT_S = 5.0
USABLE_NEIGHBOUR_STATES = ("REACHABLE", "STALE", "DELAY")
ETH_P_IP = 0x0800

Json = dict[str, Any]


def exec_in(
    lan: Lan, host: Host, argv: Sequence[str], ok: Sequence[int] = (0,)
) -> tuple[float, str]:
    """Run ``argv`` in ``host``'s namespace; (wall ms, stdout). Unexpected exit codes raise."""
    started = time.perf_counter()
    done = lan.run(host, *argv, check=False, timeout=30)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if done.returncode not in ok:
        raise RuntimeError(
            f"{host.name}: {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}"
        )
    return elapsed_ms, done.stdout


@contextlib.contextmanager
def capture_on(host: Host) -> Iterator[Capture]:
    """A kernel-timestamped capture of ``host``'s LAN interface, stopped on exit."""
    with netns(host.netns):
        cap = Capture(host.ifname)
    with cap:
        yield cap


# --------------------------------------------------------------------------- the prober


def start_prober(
    lan: Lan, alias: ipaddress.IPv4Address, duration_s: float
) -> subprocess.Popen[str]:
    """The 10 ms reachability prober in the client namespace, as its own process."""
    argv = [
        sys.executable, "-m", "aliasip_lab.prober", str(alias),
        "--interface", lan.client.ifname, "--interval-ms", str(PROBE_INTERVAL_MS),
        "--duration", str(duration_s), "--json",
    ]  # fmt: skip
    return lan.spawn(lan.client, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish_prober(proc: subprocess.Popen[str], duration_s: float) -> Json:
    """Wait (bounded) for the prober's JSON report."""
    try:
        out, err = proc.communicate(timeout=duration_s + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=5)
        raise RuntimeError("the prober did not finish in time") from None
    if proc.returncode != 0:
        raise RuntimeError(f"the prober failed ({proc.returncode}): {err.strip()}")
    report: Json = json.loads(out)
    return report


def is_echo_reply_from(frame: Frame, alias: ipaddress.IPv4Address, mac: str) -> bool:
    """An ICMP echo reply from ``alias`` sent by ``mac`` (the prober is being answered)."""
    data = frame.data
    if frame.outgoing or frame.ethertype != ETH_P_IP or frame.src_mac != mac or len(data) < 34:
        return False
    ihl = (data[14] & 0x0F) * 4
    icmp_type_at = 14 + ihl
    return (
        data[23] == 1
        and data[26:30] == alias.packed
        and len(data) > icmp_type_at
        and data[icmp_type_at] == 0
    )


def wait_answered_by(
    cap: Capture,
    proc: subprocess.Popen[str],
    alias: ipaddress.IPv4Address,
    mac: str,
    timeout_s: float = READY_TIMEOUT_S,
    since: float = 0.0,
) -> float | None:
    """Block (bounded) until ``mac`` answers the prober (seen on the client's wire) at or
    after epoch ``since``; the kernel timestamp of that reply, None if none came in time."""

    def answered(frame: Frame) -> bool:
        return frame.at >= since and is_echo_reply_from(frame, alias, mac)

    frames = cap.wait_for(answered, timeout_s)
    first = min((f.at for f in frames if answered(f)), default=None)
    if first is None and proc.poll() is not None:
        raise RuntimeError(f"the prober exited ({proc.returncode}) before {mac} answered")
    return first


def wait_prober_ready(
    cap: Capture, proc: subprocess.Popen[str], alias: ipaddress.IPv4Address, mac: str
) -> None:
    """Block (bounded) until ``mac`` answers the prober, seen on the client's wire."""
    if wait_answered_by(cap, proc, alias, mac) is None:
        raise RuntimeError(f"no echo reply from {mac} within {READY_TIMEOUT_S} s")


# --------------------------------------------------------------------------- the wire


OBSERVER_INTERVAL_MS = 10.0
OBSERVER_SLACK_S = 2.0  # its own bound beyond the window; it is ended (SIGTERM) before


@contextlib.contextmanager
def observing(lan: Lan, alias: ipaddress.IPv4Address, duration_s: float) -> Iterator[Running]:
    """The wire observer on ``alias`` in the LAN's observer namespace, its first round
    already sent when the body starts (so a fault injected in the body is seen). The body
    ends it with ``Running.finish()``; on the way out it is killed if still running."""
    with tempfile.TemporaryDirectory(prefix="aliasip-observer-") as tmp:
        running = Running(
            lan.observer.netns, [str(alias)], duration_s + OBSERVER_SLACK_S,
            Path(tmp) / "events.jsonl", interval_ms=OBSERVER_INTERVAL_MS,
            interface=lan.observer.ifname,
        )  # fmt: skip
        try:
            running.wait_started()
            yield running
        finally:
            running.kill()


def wire_figures(report: Json, alias: ipaddress.IPv4Address) -> Json:
    """What the observer saw of ``alias``, in the trial's terms.

    - ``split_brain_rounds``: rounds answered by two or more MACs (two kernels at once);
    - ``longest_split_brain_ms``: the longest run of such rounds, counted from its first
      round's sending to one interval after its last (one round alone is one interval);
    - ``holderless_ms``: the longest run of rounds nobody answered, after the alias first
      answered (from the first unanswered round's sending to the next answered one's);
    - ``wire``: the observer's record of the alias (changes, gaps, split-brain runs,
      announcements) and of its run (start, end, rounds it sent late).
    """
    seen = report["aliases"][str(alias)]
    interval_ms = float(report["interval_ms"])
    runs = seen["split_brain"]
    longest = max(((r["until"] - r["since"]) * 1000 + interval_ms for r in runs), default=0.0)
    return {
        "split_brain_rounds": int(seen["split_brain_rounds"]),
        "longest_split_brain_ms": round(longest, 1),
        "holderless_ms": float(seen["longest_gap_ms"]),
        "wire": {
            **seen,
            "interval_ms": interval_ms,
            "started_at": report["started_at"],
            "ended_at": report["ended_at"],
            "late_rounds": report["late_rounds"],
        },
    }


# --------------------------------------------------------------------------- the client


def client_neighbour(lan: Lan, alias: ipaddress.IPv4Address) -> tuple[str | None, str]:
    """(MAC, NUD state) of the client's neighbour entry for the alias."""
    client = lan.client
    out = ip("-n", client.netns, "neigh", "show", str(alias), "dev", client.ifname).stdout
    mac = re.search(r"lladdr ([0-9a-f:]{17})", out)
    words = out.split()
    return (mac.group(1) if mac else None), (words[-1] if words else "NONE")


def check_neighbour(lan: Lan, alias: ipaddress.IPv4Address, holder: Host) -> str:
    """Refuse to time a move unless the client already sends to ``holder`` without asking."""
    mac, state = client_neighbour(lan, alias)
    if mac != holder.mac or state not in USABLE_NEIGHBOUR_STATES:
        raise RuntimeError(
            f"client neighbour entry for {alias} is {mac} {state}, not {holder.name}"
        )
    return state


def forget_neighbour(lan: Lan, alias: ipaddress.IPv4Address) -> None:
    """Delete the client's entry: its next packet to the alias resolves it by a real ARP."""
    ip("-n", lan.client.netns, "neigh", "del", str(alias), "dev", lan.client.ifname, check=False)


# --------------------------------------------------------------------------- the floor


@dataclass
class HandMove:
    """What the floor move cost; epoch times line it up with kernel capture timestamps."""

    started_at: float
    add_started_at: float
    wall_ms: float
    steps_ms: dict[str, float]


def move_by_hand(lan: Lan, alias: ipaddress.IPv4Interface, src: Host, dst: Host) -> HandMove:
    """The floor: ``ip addr del`` on ``src``, ``ip addr add`` and one gratuitous ARP on ``dst``.

    Debian's arping is Thomas Habets's: ``-U`` sends an unsolicited ARP only with ``-S``
    (sender = target = the alias). ``-w 0`` makes it exit right after sending: without it,
    ``-c 1`` waits a second for a reply that never comes to a gratuitous ARP (the outage
    would not change, the wall time would just measure that wait). arping then exits 1
    ("100% unanswered"), as expected.
    """
    cidr, address = str(alias), str(alias.ip)
    started_at, t0 = time.time(), time.perf_counter()
    del_ms, _ = exec_in(lan, src, ["ip", "addr", "del", cidr, "dev", src.ifname])
    add_started_at = time.time()
    add_ms, _ = exec_in(lan, dst, ["ip", "addr", "add", cidr, "dev", dst.ifname])
    arping = ["arping", "-U", "-S", address, "-i", dst.ifname, "-c", "1", "-w", "0", address]
    arp_ms, out = exec_in(lan, dst, arping, ok=(0, 1))
    if "1 packets transmitted" not in out:
        raise RuntimeError(f"arping did not send its gratuitous ARP: {out.strip()}")
    wall_ms = (time.perf_counter() - t0) * 1000
    steps = {"ip_addr_del": del_ms, "ip_addr_add": add_ms, "arping": arp_ms}
    return HandMove(started_at, add_started_at, wall_ms, steps)
