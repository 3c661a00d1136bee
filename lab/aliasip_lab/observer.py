"""The wire observer: who answers for each alias on the LAN, every 10 ms, seen from outside.

It runs in its own namespace on the lab's service LAN (``Lan.observer``, 198.18.0.101 and
2001:2::65). Every round it broadcasts an ARP request for each watched IPv4 alias and a
neighbour solicitation to the solicited-node group of each IPv6 alias, from its own
stationary address (never 0.0.0.0, never the alias: its questions are not claims), and
records every MAC that answers, with kernel receive timestamps. Unlike the client prober
(``aliasip_lab.prober``), which follows the client's neighbour cache and so hears one MAC
at a time, every kernel holding the address answers a broadcast question: two holders
answer one round, and that is a split-brain round. It also records every announcement
for a watched alias seen on the LAN (gratuitous ARP, unsolicited NA). What it makes of
the rounds: ``aliasip_lab.observation``.

    python -m aliasip_lab.observer 198.18.0.50 2001:2::50 --interface eth1 \
        --interval-ms 10 --duration 30 --json [--events FILE]

Bounded (``--duration``, at most 4 h); SIGTERM or SIGINT end it early and it still prints
its report. ``--events FILE`` appends each fact as a JSON line as it happens (split-brain
round runs, answer changes, gaps, announcements), for a caller checking while it runs.

Cost: decoding with ``struct`` (``aliasip_lab.arpnd``), one round for two aliases is a few
tens of microseconds of CPU; building the same frames with scapy costs about a
millisecond each, too much for 100 rounds a second on a loaded 2-core host.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from aliasip_lab import arpnd
from aliasip_lab.observation import AliasObservation

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4
MAX_DURATION_S = 4 * 3600.0


def identity(interface: str, mac: bytes) -> arpnd.Identity:
    """The observer's stationary addresses: the first global IPv4 and IPv6 address of
    ``interface`` in this namespace (read with iproute2)."""
    out = subprocess.run(
        ["ip", "-j", "addr", "show", "dev", interface],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout  # fmt: skip
    links = json.loads(out)
    infos = [a for link in links for a in link.get("addr_info", []) if a.get("scope") == "global"]
    v4 = [ipaddress.IPv4Address(a["local"]) for a in infos if a["family"] == "inet"]
    v6 = [ipaddress.IPv6Address(a["local"]) for a in infos if a["family"] == "inet6"]
    if not v4:
        raise ValueError(f"{interface} has no IPv4 address to ask from")
    return arpnd.Identity(mac=mac, ipv4=v4[0], ipv6=v6[0] if v6 else None)


class Observer:
    """Opens its packet socket in the current network namespace at construction."""

    def __init__(
        self,
        aliases: Sequence[str],
        interface: str,
        interval_s: float = 0.01,
        events: IO[str] | None = None,
    ) -> None:
        self.targets = [ipaddress.ip_address(a.split("/")[0]) for a in aliases]
        if not self.targets:
            raise ValueError("no alias to watch")
        self.interval_s = interval_s
        self._events = events
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.bind((interface, ETH_P_ALL))
        self._sock.setblocking(False)
        self.me = identity(interface, self._sock.getsockname()[4])
        if any(t.version == 6 for t in self.targets) and self.me.ipv6 is None:
            raise ValueError(f"{interface} has no IPv6 address to solicit from")
        self._questions = [arpnd.question(self.me, t) for t in self.targets]
        self._watched = frozenset(self.targets)
        self.log = {t: AliasObservation(str(t), emit=self._emit) for t in self.targets}
        self._answers: dict[arpnd.Address, set[str]] = {t: set() for t in self.targets}
        self.stop_requested = False  # set from a signal handler: end now, still report
        self.late_rounds = 0  # rounds sent more than one interval after they were due

    def _emit(self, record: dict[str, Any]) -> None:
        if self._events is not None:
            self._events.write(json.dumps(record) + "\n")
            self._events.flush()

    def close(self) -> None:
        self._sock.close()

    def run(self, duration_s: float) -> dict[str, Any]:
        started_at = time.time()
        start = time.monotonic()
        end = start + min(duration_s, MAX_DURATION_S)
        index = -1
        sent_at = started_at
        due = start
        while not self.stop_requested:
            now = time.monotonic()
            if now >= end:
                break
            if now >= due:
                self._drain()
                if index >= 0:
                    self._close_round(index, sent_at)
                index += 1
                sent_at = time.time()
                if index == 0:
                    self._emit({"event": "started", "at": sent_at})
                for frame in self._questions:
                    try:
                        self._sock.send(frame)
                    except OSError:  # e.g. ENOBUFS under load: the round goes unanswered
                        continue
                due += self.interval_s
                if due < now:  # fell behind (the host was busy): skip, do not burst
                    self.late_rounds += 1
                    due = now + self.interval_s
                continue
            ready, _, _ = select.select([self._sock], [], [], min(due, end) - now)
            if ready:
                self._drain()
        self._drain()
        if index >= 0:
            self._close_round(index, sent_at)
        ended_at = time.time()
        for log in self.log.values():
            log.finish(ended_at)
        return {
            "interface_mac": arpnd.mac_text(self.me.mac),
            "source": [str(self.me.ipv4), str(self.me.ipv6) if self.me.ipv6 else None],
            "interval_ms": self.interval_s * 1000,
            "started_at": started_at,
            "ended_at": ended_at,
            "rounds": index + 1,
            "late_rounds": self.late_rounds,
            "split_brain_rounds": sum(log.split_brain_rounds for log in self.log.values()),
            "aliases": {str(t): log.to_dict() for t, log in self.log.items()},
        }

    def _close_round(self, index: int, sent_at: float) -> None:
        for target, log in self.log.items():
            log.close_round(index, sent_at, frozenset(self._answers[target]))
            self._answers[target].clear()

    def _drain(self) -> None:
        for _ in range(10_000):  # bounded: what arrived since the last drain
            try:
                data, ancillary, _, address = self._sock.recvmsg(2048, 64)
            except BlockingIOError:
                return
            if address[2] == PACKET_OUTGOING:
                continue
            seen = arpnd.classify(data, self.me, self._watched)
            if seen is None:
                continue
            if seen.kind == "answer":
                self._answers[seen.alias].add(seen.mac)
                continue
            self.log[seen.alias].announce(_kernel_time(ancillary), seen.mac, seen.kind)


def _kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float:
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", value[:16])
            return float(sec + nsec / 1e9)
    return time.time()


def summary(report: dict[str, Any]) -> list[str]:
    """Lines for people: per alias, answered rounds, split-brain rounds, gaps, MACs."""
    lines = [
        f"wire observer ({report['source'][0]}, broadcast ARP/NS every "
        f"{report['interval_ms']:g} ms): {report['rounds']} rounds, "
        f"split-brain rounds {report['split_brain_rounds']}"
    ]
    for alias in report["aliases"].values():
        lines.append(
            f"  {alias['address']}: {alias['answered']}/{alias['rounds']} rounds answered; "
            f"split-brain rounds {alias['split_brain_rounds']}; "
            f"longest gap {alias['longest_gap_ms']} ms; "
            f"announcements {len(alias['announcements'])}"
        )
        t0 = report["started_at"]
        for change in alias["changes"]:
            when = (change["at"] - t0) * 1000
            lines.append(f"    from {when:.0f} ms: {', '.join(change['macs'])}")
        for run in alias["split_brain"]:
            lines.append(
                f"    SPLIT BRAIN {(run['since'] - t0) * 1000:.0f}-"
                f"{(run['until'] - t0) * 1000:.0f} ms ({run['rounds']} rounds): "
                f"{', '.join(run['macs'])}"
            )
    return lines


class Running:
    """An observer process in namespace ``netns`` (started by ``ip netns exec``), its facts
    appended to ``events`` as they happen; ``finish()`` ends it and returns its report."""

    def __init__(
        self,
        netns: str,
        aliases: Sequence[str],
        duration_s: float,
        events: Path,
        interval_ms: float = 10.0,
        interface: str = "eth1",
    ) -> None:
        self.events_path = events
        events.touch()
        argv = [
            "ip", "netns", "exec", netns, sys.executable, "-m", "aliasip_lab.observer",
            *aliases, "--interface", interface, "--interval-ms", str(interval_ms),
            "--duration", str(duration_s), "--json", "--events", str(events),
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self._terminated = False

    def events(self) -> list[dict[str, Any]]:
        """The facts so far (complete lines only)."""
        text = self.events_path.read_text()
        return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]

    def wait_started(self, timeout_s: float = 15.0) -> None:
        """Until its first round is sent (Python starts in a fraction of a second, more on
        a loaded host): a fault injected before that would go unseen."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if self.proc.returncode == 0:
                    return  # it ran its whole (short) duration already
                raise RuntimeError(f"the observer exited with {self.proc.returncode}")
            if any(e.get("event") == "started" for e in self.events()):
                return
            time.sleep(0.02)
        raise RuntimeError(f"the observer sent no round within {timeout_s} s")

    def report(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """Its JSON report. A SIGTERM from ``finish`` that lands after the run ended and
        the report was printed, while the interpreter shuts down (Python's handlers are
        gone by then), ends the process with -15: the complete report printed counts."""
        out, _ = self.proc.communicate(timeout=timeout_s)
        code = self.proc.returncode
        ended_by_us = self._terminated and code == -signal.SIGTERM
        if (code != 0 and not ended_by_us) or not out.strip():
            raise RuntimeError(f"the observer exited with {code}")
        try:
            found: dict[str, Any] = json.loads(out)
        except ValueError:
            raise RuntimeError(f"the observer exited with {code}, its report cut") from None
        return found

    def finish(self, settle_s: float = 0.0) -> dict[str, Any]:
        """End it now (SIGTERM: it still reports), after ``settle_s`` more of watching."""
        time.sleep(settle_s)
        if self.proc.poll() is None:
            # Its SIGTERM handler is set before its first round: a SIGTERM sent while it
            # still starts (a loaded host, a short run) would kill it without a report.
            self.wait_started()
            self._terminated = True
            self.proc.send_signal(signal.SIGTERM)
        return self.report()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aliasip_lab.observer", description=__doc__)
    parser.add_argument("aliases", nargs="+", metavar="ADDRESS", help="aliases to watch")
    parser.add_argument("--interface", default="eth1")
    parser.add_argument("--interval-ms", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds (at most 4 h)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--events", help="append facts as JSON lines to this file")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION_S or not 1 <= args.interval_ms <= 10_000:
        parser.error("--duration must be in (0, 14400] s and --interval-ms in [1, 10000]")
    try:
        for alias in args.aliases:
            ipaddress.ip_interface(alias)
    except ValueError as exc:
        parser.error(f"not an address: {exc}")
    events = open(args.events, "a") if args.events else None  # noqa: SIM115
    try:
        observer = Observer(args.aliases, args.interface, args.interval_ms / 1000, events)

        def stop_early(_signum: int, _frame: object) -> None:
            observer.stop_requested = True

        signal.signal(signal.SIGTERM, stop_early)
        signal.signal(signal.SIGINT, stop_early)
        try:
            report = observer.run(args.duration)
        finally:
            observer.close()
    finally:
        if events is not None:
            events.close()
    print(json.dumps(report) if args.json else "\n".join(summary(report)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
