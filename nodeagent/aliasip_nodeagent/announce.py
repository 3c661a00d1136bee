"""The only module that sends or sniffs packets (scapy): announcements, the probe, and
the claim listener's socket (``ClaimSocket``).

Frames are built as bytes by the pure ``frames`` (no scapy on the sending path); scapy
decodes what is heard, and tests decode what is sent. The
``Announcer`` owns one packet socket per interface and address family, reused for every
frame it sends and receives. They are plain ``AF_PACKET`` sockets bound to the ARP or IPv6
ethertype rather than scapy's ``L2socket``, which re-lists every interface over netlink
when it opens (about 20 ms) and by default puts the interface in promiscuous mode.

Why both ARP forms: a Linux neighbour ignores an ARP update that comes within ``locktime``
(1 s) of the previous one, *except* a gratuitous request (sender IP = target IP) or a
reply whose target MAC is the sender MAC. Other stacks prefer one form or the other, so
every round sends both (as IPaddr2's send_arp and MetalLB do), and rounds repeat past 1 s.

Only the scapy layers needed are imported (``scapy.all`` costs about a second).
"""

from __future__ import annotations

import ctypes
import ipaddress
import select
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet

from aliasip_nodeagent import errors
from aliasip_nodeagent.claims import claim_filter
from aliasip_nodeagent.frames import announcement_frames, probe_frame
from aliasip_nodeagent.hoststate import IPAddress

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAX_FRAME = 65535
SO_ATTACH_FILTER = 26


def _inet6() -> Any:
    """IPv6 layers, imported on first use: IPv4-only hosts never pay for them."""
    from scapy.layers import inet6

    return inet6


def decode(data: bytes) -> Packet:
    """A frame heard on the wire, parsed. scapy binds IPv6 to its ethertype only once
    its IPv6 layers are imported, which happens lazily here: parsed before that, an
    IPv6 frame is Ether / Raw and no neighbour advertisement is ever recognised (a DAD
    probe that hears the holder's answer and takes the address anyway)."""
    if data[12:14] == b"\x86\xdd":
        _inet6()
    frame: Packet = Ether(data)
    return frame


def conflicting_mac(frame: Packet, ip: IPAddress, own_mac: str) -> str | None:
    """The MAC of another host that *claims* ``ip`` in ``frame``, else None.

    A claim is an ARP frame whose sender IP is ``ip`` (a reply, a gratuitous request or
    reply) or a neighbour advertisement for it. Another host's *probe* (ARP from 0.0.0.0,
    DAD solicitation from ::) is deliberately not a conflict, unlike RFC 5227's
    simultaneous-probe rule: in aliasip the operator serialises assignments, so a prober
    is never a holder; it is a standby checking whether the holder still answers
    (docs/design.md, "Unplanned failover"). Taking that as a conflict would make a node that
    takes over at the same moment refuse the address it was assigned.
    """
    if frame.haslayer(Ether) and frame[Ether].src.lower() == own_mac.lower():
        return None  # our own frame, seen on the way out
    if ip.version == 4:
        if not frame.haslayer(ARP):
            return None
        arp = frame[ARP]
        return str(arp.hwsrc) if arp.psrc == str(ip) else None
    inet6 = _inet6()
    if frame.haslayer(inet6.ICMPv6ND_NA):
        target = frame[inet6.ICMPv6ND_NA].tgt
        if ipaddress.ip_address(target) == ip:
            return str(frame[Ether].src)
    return None


def claimed(frame: Packet) -> IPAddress | None:
    """The address ``frame`` could claim (``conflicting_mac`` tells whether it does): an
    ARP frame's sender address, a neighbour advertisement's target; else None."""
    if frame.haslayer(ARP):
        try:
            return ipaddress.ip_address(str(frame[ARP].psrc))
        except ValueError:
            return None
    inet6 = _inet6()
    if frame.haslayer(inet6.ICMPv6ND_NA):
        try:
            return ipaddress.ip_address(str(frame[inet6.ICMPv6ND_NA].tgt))
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class ProbeResult:
    """What the probe heard: ``conflict_mac`` is None when nobody else answered."""

    conflict_mac: str | None
    waited_s: float


class Announcer:
    """Sends announcements and probes; one reusable packet socket per interface and family.

    Sockets are opened in the caller's network namespace on first use and kept until
    ``close()``; the long-running agent keeps one Announcer for its whole life.
    """

    def __init__(self) -> None:
        self._sockets: dict[tuple[str, int], socket.socket] = {}

    def socket_for(self, interface: str, version: int) -> socket.socket:
        """The packet socket for ``interface`` that receives ARP (v4) or IPv6 frames."""
        key = (interface, version)
        sock = self._sockets.get(key)
        if sock is None:
            ethertype = ETH_P_ARP if version == 4 else ETH_P_IPV6
            # Protocol 0 at creation, the ethertype at bind: binding a socket that is already
            # hooked to a protocol waits for an RCU grace period (synchronize_net), ~8 ms.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                sock.bind((interface, ethertype))
            except OSError as exc:
                sock.close()
                raise errors.KernelError(
                    f"cannot open a packet socket on {interface}: {exc.strerror}"
                ) from exc
            self._sockets[key] = sock
        return sock

    def announce(self, interface: str, mac: str, ip: IPAddress) -> int:
        """Send one announcement round now; returns the number of frames sent."""
        sock = self.socket_for(interface, ip.version)
        frames = announcement_frames(mac, ip)
        for frame in frames:
            sock.send(frame)
        return len(frames)

    def probe(self, interface: str, mac: str, ip: IPAddress, wait_s: float) -> ProbeResult:
        """Ask the wire whether anyone else holds ``ip``; listen for at most ``wait_s``.

        Two probes are sent (at the start and half-way) so that one lost frame does not
        hide a holder; the wait is bounded, tens of milliseconds, not RFC 5227's seconds.
        """
        sock = self.socket_for(interface, ip.version)
        _drain(sock)
        frame = probe_frame(mac, ip)
        start = time.monotonic()
        deadline = start + wait_s
        resend_at: float | None = start + wait_s / 2
        sock.send(frame)
        while (now := time.monotonic()) < deadline:
            if resend_at is not None and now >= resend_at:
                sock.send(frame)
                resend_at = None
            timeout = min(deadline, resend_at or deadline) - now
            ready, _, _ = select.select([sock], [], [], max(timeout, 0.0))
            if not ready:
                continue
            data, address = sock.recvfrom(MAX_FRAME)
            if address[2] == PACKET_OUTGOING:
                continue
            other = conflicting_mac(decode(data), ip, mac)
            if other:
                return ProbeResult(conflict_mac=other, waited_s=time.monotonic() - start)
        return ProbeResult(conflict_mac=None, waited_s=time.monotonic() - start)

    def probe_many(
        self, targets: Sequence[tuple[str, str, IPAddress]], wait_s: float
    ) -> dict[IPAddress, str]:
        """``probe`` for many addresses at once: every probe frame leaves at the start and
        again half-way, and all are listened for during one ``wait_s``. Returns the MAC
        of another host that claimed each address it heard (absent: nobody answered).

        Why: a node taking over 100 aliases probed them one after the other, ``wait_s``
        each; the answers a probe waits for come within milliseconds whatever else was
        asked, so one wait covers them all.
        """
        asked: dict[IPAddress, tuple[socket.socket, str, bytes]] = {}
        for interface, mac, ip in targets:
            sock = self.socket_for(interface, ip.version)
            asked[ip] = (sock, mac, probe_frame(mac, ip))
        socks = list({id(sock): sock for sock, _, _ in asked.values()}.values())
        for sock in socks:
            _drain(sock)
        heard: dict[IPAddress, str] = {}
        start = time.monotonic()
        deadline = start + wait_s
        resend_at: float | None = start + wait_s / 2
        for sock, _, frame in asked.values():
            sock.send(frame)
        while len(heard) < len(asked) and (now := time.monotonic()) < deadline:
            if resend_at is not None and now >= resend_at:
                for ip, (sock, _, frame) in asked.items():
                    if ip not in heard:
                        sock.send(frame)
                resend_at = None
            timeout = min(deadline, resend_at or deadline) - now
            ready, _, _ = select.select(socks, [], [], max(timeout, 0.0))
            for sock in ready:
                data, address = sock.recvfrom(MAX_FRAME)
                if address[2] == PACKET_OUTGOING:
                    continue
                frame_ = decode(data)
                said = claimed(frame_)
                if said is None or said not in asked or said in heard:
                    continue
                other = conflicting_mac(frame_, said, asked[said][1])
                if other:
                    heard[said] = other
        return heard

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


def _drain(sock: socket.socket) -> None:
    """Drop frames queued before the probe: only answers to this probe count."""
    for _ in range(100_000):
        ready, _, _ = select.select([sock], [], [], 0)
        if not ready:
            return
        sock.recv(MAX_FRAME)


class ClaimSocket:
    """A packet socket on one interface that receives only frames that may claim one of
    the held ``addresses`` (``claims.claim_filter``, run by the kernel), for the agent's
    claim listener. Non-blocking: the event loop reads it when it is readable
    (``loop.add_reader``), so listening costs no thread and, on a quiet LAN, no wake-ups.

    The socket is created with protocol 0 (it receives nothing), gets its filter, and only
    then is bound to every ethertype: no unfiltered frame is ever queued.
    """

    def __init__(self, interface: str, addresses: Iterable[IPAddress]) -> None:
        self.interface = interface
        self._filter: tuple[IPAddress, ...] | None = None
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            self.set_addresses(addresses)
            self._sock.bind((interface, ETH_P_ALL))
        except OSError as exc:
            self._sock.close()
            raise errors.KernelError(
                f"cannot listen for claims on {interface}: {exc.strerror}"
            ) from exc
        self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def set_addresses(self, addresses: Iterable[IPAddress]) -> None:
        """Replace the kernel filter (atomically, SO_ATTACH_FILTER) when the set changed."""
        wanted = tuple(sorted(set(addresses), key=lambda a: (a.version, int(a))))
        if wanted == self._filter:
            return
        program = claim_filter(list(wanted))
        code = b"".join(struct.pack("HBBI", *insn) for insn in program)
        buffer = ctypes.create_string_buffer(code, len(code))
        fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self._filter = wanted

    def read(self, limit: int = 64) -> list[bytes]:
        """The incoming frames queued now, at most ``limit`` (the rest on the next call)."""
        frames: list[bytes] = []
        for _ in range(limit):
            try:
                data, address = self._sock.recvfrom(MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                break
            if address[2] != PACKET_OUTGOING:
                frames.append(data)
        return frames

    def close(self) -> None:
        self._sock.close()
