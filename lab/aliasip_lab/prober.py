"""A bounded reachability prober, run from the client namespace.

Every ``interval`` it sends an ICMP echo to the alias through the client's kernel (so the
client's own neighbour table decides which MAC gets it, as for any real client), and it
captures the echo replies on the wire to record *which MAC answered*. From that it
reports the gaps (client-seen outage) and the sequence numbers answered by two different
MACs at once (split-brain samples).

    python -m aliasip_lab.prober ADDRESS --interface eth1 --interval-ms 10 --duration 3 --json
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import itertools
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0
ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129
MAX_PROBES = 100_000


@dataclass(frozen=True)
class Reply:
    seq: int
    sent_ms: float  # since the prober started
    rtt_ms: float
    mac: str


@dataclass(frozen=True)
class Gap:
    after_seq: int
    before_seq: int
    lost: int
    outage_ms: float  # last reply before the gap → first reply after it
    mac_before: str
    mac_after: str


@dataclass
class ProbeReport:
    target: str
    interval_ms: float
    started_at: float  # epoch seconds
    sent: int = 0
    replies: list[Reply] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return len({r.seq for r in self.replies})

    def gaps(self) -> list[Gap]:
        """Runs of unanswered probes between two answered ones."""
        first_by_seq: dict[int, Reply] = {}
        for reply in sorted(self.replies, key=lambda r: r.seq):
            first_by_seq.setdefault(reply.seq, reply)
        ordered = list(first_by_seq.values())
        found = []
        for before, after in itertools.pairwise(ordered):
            if after.seq - before.seq > 1:
                found.append(
                    Gap(
                        after_seq=before.seq,
                        before_seq=after.seq,
                        lost=after.seq - before.seq - 1,
                        outage_ms=round(
                            (after.sent_ms + after.rtt_ms) - (before.sent_ms + before.rtt_ms), 2
                        ),
                        mac_before=before.mac,
                        mac_after=after.mac,
                    )
                )
        return found

    def outage_ms(self) -> float:
        return max((g.outage_ms for g in self.gaps()), default=0.0)

    def split_brain_samples(self) -> list[int]:
        """Sequence numbers answered by more than one MAC."""
        macs: dict[int, set[str]] = {}
        for reply in self.replies:
            macs.setdefault(reply.seq, set()).add(reply.mac)
        return sorted(seq for seq, seen in macs.items() if len(seen) > 1)

    def segments(self) -> list[dict[str, object]]:
        """Consecutive runs of replies from the same MAC: who answered, from when to when."""
        runs: list[dict[str, object]] = []
        for reply in sorted(self.replies, key=lambda r: r.seq):
            if runs and runs[-1]["mac"] == reply.mac:
                runs[-1]["last_seq"] = reply.seq
                runs[-1]["last_ms"] = round(reply.sent_ms + reply.rtt_ms, 2)
                runs[-1]["replies"] = int(str(runs[-1]["replies"])) + 1
            else:
                at = round(reply.sent_ms + reply.rtt_ms, 2)
                runs.append(
                    {"mac": reply.mac, "first_seq": reply.seq, "last_seq": reply.seq,
                     "first_ms": at, "last_ms": at, "replies": 1}
                )  # fmt: skip
        return runs

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "interval_ms": self.interval_ms,
            "started_at": self.started_at,
            "sent": self.sent,
            "answered": self.answered,
            "outage_ms": self.outage_ms(),
            "gaps": [asdict(g) for g in self.gaps()],
            "segments": self.segments(),
            "split_brain_samples": self.split_brain_samples(),
            "replies": [[r.seq, r.sent_ms, r.rtt_ms, r.mac] for r in self.replies],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeReport:
        """Rebuild a report from ``to_dict()`` output (the prober runs as a subprocess)."""
        report = cls(data["target"], data["interval_ms"], data["started_at"], data["sent"])
        report.replies = [
            Reply(seq=int(seq), sent_ms=sent, rtt_ms=rtt, mac=mac)
            for seq, sent, rtt, mac in data["replies"]
        ]
        return report


class Prober:
    """Opens its sockets in the current network namespace at construction."""

    def __init__(self, target: str, interface: str, interval_s: float = 0.01) -> None:
        self.target = ipaddress.ip_address(target)
        self.interval_s = interval_s
        self.ident = os.getpid() & 0xFFFF
        v6 = self.target.version == 6
        self._echo = socket.socket(
            socket.AF_INET6 if v6 else socket.AF_INET,
            socket.SOCK_RAW,
            socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP,
        )
        self._echo.setblocking(False)
        self._wire = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self._wire.bind((interface, ETH_P_IPV6 if v6 else ETH_P_IP))
        # Set (e.g. from a SIGTERM handler) to end early: no more probes, the last one
        # still gets its 200 ms, and the report covers what was sent.
        self.stop_requested = False

    def close(self) -> None:
        self._echo.close()
        self._wire.close()

    def run(self, duration_s: float) -> ProbeReport:
        report = ProbeReport(str(self.target), self.interval_s * 1000, time.time())
        start = time.monotonic()
        sent_at: dict[int, float] = {}
        newest: dict[int, int] = {}  # low 16 bits on the wire -> newest full sequence number
        count = min(int(duration_s / self.interval_s), MAX_PROBES)
        end = start + count * self.interval_s + 0.2  # last probe gets 200 ms to answer
        seq = 0
        while (now := time.monotonic()) < end:
            if self.stop_requested and seq < count:
                count, end = seq, min(end, now + 0.2)
            due = start + seq * self.interval_s
            if seq < count and now >= due:
                self._send(seq)
                sent_at[seq] = time.monotonic()
                newest[seq & 0xFFFF] = seq
                report.sent += 1
                seq += 1
                continue
            wait = (due if seq < count else end) - now
            ready, _, _ = select.select([self._wire], [], [], max(wait, 0.0))
            if ready:
                self._receive(report, sent_at, newest, start)
            self._drain_echo_socket()
        return report

    def _send(self, seq: int) -> None:
        v6 = self.target.version == 6
        kind = ICMP6_ECHO_REQUEST if v6 else ICMP_ECHO_REQUEST
        payload = b"aliasip-probe"
        header = struct.pack("!BBHHH", kind, 0, 0, self.ident, seq & 0xFFFF)
        if not v6:  # the kernel fills in the ICMPv6 checksum, not the ICMPv4 one
            header = struct.pack(
                "!BBHHH", kind, 0, _checksum(header + payload), self.ident, seq & 0xFFFF
            )
        # e.g. EHOSTUNREACH while the neighbour is FAILED: counted as unanswered
        with contextlib.suppress(OSError):
            self._echo.sendto(header + payload, (str(self.target), 0))

    def _receive(
        self,
        report: ProbeReport,
        sent_at: dict[int, float],
        newest: dict[int, int],
        start: float,
    ) -> None:
        for _ in range(1000):
            try:
                data = self._wire.recv(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            at = time.monotonic()
            parsed = parse_echo_reply(data, self.target, self.ident)
            if parsed is None:
                continue
            mac, seq16 = parsed
            seq = newest.get(seq16)
            if seq is None:
                continue
            report.replies.append(
                Reply(
                    seq=seq,
                    sent_ms=round((sent_at[seq] - start) * 1000, 3),
                    rtt_ms=round((at - sent_at[seq]) * 1000, 3),
                    mac=mac,
                )
            )

    def _drain_echo_socket(self) -> None:
        for _ in range(1000):
            try:
                self._echo.recv(65535)
            except BlockingIOError:
                return


def parse_echo_reply(
    frame: bytes, target: ipaddress.IPv4Address | ipaddress.IPv6Address, ident: int
) -> tuple[str, int] | None:
    """(source MAC, sequence) if ``frame`` is an echo reply from ``target`` to us."""
    if len(frame) < 14:
        return None
    mac = ":".join(f"{b:02x}" for b in frame[6:12])
    ethertype = int.from_bytes(frame[12:14], "big")
    if target.version == 4 and ethertype == ETH_P_IP:
        if len(frame) < 34:
            return None
        ihl = (frame[14] & 0x0F) * 4
        if frame[23] != socket.IPPROTO_ICMP or frame[26:30] != target.packed:
            return None
        icmp = frame[14 + ihl :]
        kind = ICMP_ECHO_REPLY
    elif target.version == 6 and ethertype == ETH_P_IPV6:
        if len(frame) < 54:
            return None
        if frame[20] != socket.IPPROTO_ICMPV6 or frame[22:38] != target.packed:
            return None
        icmp = frame[54:]
        kind = ICMP6_ECHO_REPLY
    else:
        return None
    if len(icmp) < 8 or icmp[0] != kind:
        return None
    got_ident, seq = struct.unpack("!HH", icmp[4:8])
    return (mac, seq) if got_ident == ident else None


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aliasip-lab-probe", description=__doc__)
    parser.add_argument("address")
    parser.add_argument("--interface", default="eth1")
    parser.add_argument("--interval-ms", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds (at most 600)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 600 or not 1 <= args.interval_ms <= 10_000:
        parser.error("--duration must be in (0, 600] s and --interval-ms in [1, 10000]")
    prober = Prober(args.address, args.interface, args.interval_ms / 1000)

    def stop_early(_signum: int, _frame: object) -> None:
        prober.stop_requested = True

    # SIGTERM or Ctrl-C: stop probing and still print the report of what was seen.
    signal.signal(signal.SIGTERM, stop_early)
    signal.signal(signal.SIGINT, stop_early)
    try:
        report = prober.run(args.duration)
    finally:
        prober.close()
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(f"{report.answered}/{report.sent} answered; outage {report.outage_ms()} ms")
        for seg in report.segments():
            print(
                f"  {seg['mac']}: {seg['replies']} replies, {seg['first_ms']}-{seg['last_ms']} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
