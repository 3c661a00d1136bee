"""The only module that talks netlink (pyroute2): read the host, add and delete aliases.

Invariants:
- every address added here carries the aliasip mark (``IFA_PROTO = OWN_PROTO``, plus the
  label ``<ifname>:aip`` on IPv4 when it fits), and only marked addresses are deleted;
- add and delete are idempotent and return whether the kernel changed;
- IPv6 aliases are added with ``nodad``: the agent runs its own bounded probe first, and
  a tentative address would not answer neighbour solicitations for a second or more;
- with a ``lifetime_s``, every alias is added with that kernel lifetime (``valid_lft`` and
  ``preferred_lft``) and lives only while ``renew_lifetimes`` is called in time: the
  agent's dead-man switch (docs/design.md, R9). Without one (the one-shot CLI) aliases are
  permanent.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pyroute2 import IPRoute

from aliasip_nodeagent import errors
from aliasip_nodeagent.hoststate import (
    OWN_PROTO,
    SCOPE_UNIVERSE,
    HeldAlias,
    HostAddress,
    HostState,
    InterfaceState,
    own_label,
)
from aliasip_nodeagent.mute import KernelMute
from aliasip_nodeagent.nft import NftError
from aliasip_nodeagent.placement import Placement
from aliasip_nodeagent.rawnetlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    attr,
    attributes,
    error_code,
    message,
    messages,
)

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_LOWER_UP = 0x10000
IFA_F_NODAD = 0x02
# rtnetlink, for the link-event socket (linux/rtnetlink.h, linux/if_link.h).
NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
RTM_NEWLINK, RTM_DELLINK = 16, 17
IFLA_IFNAME, IFLA_CARRIER = 3, 33
# The renewals' raw socket: how long a kernel answer may take, and the receive size.
RAW_TIMEOUT_S = 1.0
RAW_BUFFER = 1 << 16
_IFINFOMSG = struct.Struct("=BxHiII")


class NetlinkHost:
    """A netlink connection to the network namespace it was opened in.

    The socket stays bound to that namespace for its whole life, so a test or a benchmark
    can open one per node namespace and use them all from one process. ``lifetime_s``:
    the kernel lifetime of every alias added (None: permanent). ``mute``: the fine
    dead-man switch (``mute``), told of every alias before it is added and after it
    left; None: the lifetime alone.
    """

    def __init__(self, lifetime_s: int | None = None, mute: KernelMute | None = None) -> None:
        if lifetime_s is not None and lifetime_s < 1:
            raise ValueError("an address lifetime is a whole number of seconds, at least 1")
        self._ipr: Any = IPRoute()
        self._mark_verified = False
        self.lifetime_s = lifetime_s
        # The renewals' own socket (raw rtnetlink, see ``renew_lifetimes``), bound to this
        # namespace like the pyroute2 one.
        self._raw = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self._raw.bind((0, 0))
        self._raw.settimeout(RAW_TIMEOUT_S)
        self._seq = 0
        self.mute = mute

    def close(self) -> None:
        self._ipr.close()
        self._raw.close()

    def __enter__(self) -> NetlinkHost:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def snapshot(self, version: int | None = None, interface: str | None = None) -> HostState:
        """The links that can matter, with their addresses, as the kernel has them now.

        Only links carrying a global address (a stationary address or one of ours), plus
        ``interface`` if named, are read: a Kubernetes node has a veth per pod, and dumping
        every link costs ~90 ms at 300 links where reading three costs ~1 ms. ``version``
        restricts the address dump to one family (the kernel filters it).
        """
        family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(version or 0)
        addresses: dict[int, list[HostAddress]] = {}
        dump = self._ipr.get_addr(family=family) if family else self._ipr.get_addr()
        for msg in dump:
            ip = msg.get("IFA_ADDRESS")
            if msg["family"] == socket.AF_INET:
                ip = msg.get("IFA_LOCAL") or ip
            if ip is None:
                continue
            addresses.setdefault(msg["index"], []).append(
                HostAddress(
                    interface=ipaddress.ip_interface(f"{ip}/{msg['prefixlen']}"),
                    scope=msg["scope"],
                    proto=msg.get("IFA_PROTO"),
                    label=msg.get("IFA_LABEL"),
                )
            )
        wanted = {
            index
            for index, found in addresses.items()
            if any(a.scope == SCOPE_UNIVERSE for a in found)
        }
        if interface is not None:
            wanted.update(self._ipr.link_lookup(ifname=interface))
        links = []
        for index in sorted(wanted):
            for link in self._ipr.get_links(index):
                links.append(_interface_state(link, addresses.get(index, [])))
        return HostState(interfaces=tuple(links))

    def add(self, placement: Placement) -> bool:
        """Add the alias with our mark; False if the kernel already had it."""
        address = placement.address
        if self.mute is not None:  # live before it can answer: never an unguarded moment
            try:
                self.mute.keep(address.ip)
            except NftError as exc:
                raise errors.KernelError(
                    f"adding {address}: the dead-man switch (nftables) refused it: {exc}"
                ) from exc
        label = own_label(placement.interface) if address.version == 4 else None
        marked = MarkedAddress.of(placement.index, address, label)
        try:
            code = self._request(lambda seq: addition(marked, self.lifetime_s, seq))
        except OSError as exc:
            raise errors.KernelError(
                f"adding {address} on {placement.interface} failed: {exc}"
            ) from exc
        if code == -errno.EEXIST:
            return False
        if code:
            raise errors.KernelError(
                f"adding {address} on {placement.interface} failed: {os.strerror(-code)}"
            )
        if not self._mark_verified:
            self._verify_marked(placement)
            self._mark_verified = True
        return True

    def renew_lifetimes(self, lifetime_s: int | None = None) -> int:
        """Give every alias we marked ``lifetime_s`` (default: ours) more seconds; how many.

        Read and renewed in one call on the data-path thread, so an alias this agent
        deleted is never brought back: a replace creates a missing address (the kernel
        ignores the absence of NLM_F_CREATE), and the dump right before it is the only
        proof that the address is still there. Four times a second, so on a raw rtnetlink
        socket: pyroute2 took ~8 ms to dump 20 addresses and ~1.5 ms per replace; this
        takes well under a millisecond for both.
        """
        lifetime = self.lifetime_s if lifetime_s is None else lifetime_s
        if lifetime is None:
            return 0
        try:
            marked = self._dump_marked()
            if self.mute is not None:  # what left the kernel (any room, an expiry) is forgotten
                self.mute.sync(_ip(m) for m in marked)
            if not marked:
                return 0
            first = self._seq + 1
            self._seq += len(marked)
            batch = b"".join(renewal(m, lifetime, first + i) for i, m in enumerate(marked))
            self._raw.send(batch)
            failed = [os.strerror(-c) for c in self._acks(range(first, first + len(marked))) if c]
        except OSError as exc:
            raise errors.KernelError(f"renewing the aliases' lifetimes failed: {exc}") from exc
        if failed:
            raise errors.KernelError(
                f"renewing the lifetime of {len(failed)} alias(es) failed: {failed[0]}"
            )
        return len(marked)

    def _dump_marked(self) -> list[MarkedAddress]:
        self._seq += 1
        request = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        self._raw.send(message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, self._seq, request))
        found: list[MarkedAddress] = []
        done = False
        while not done:
            chunk, done = parse_marked(self._raw.recv(RAW_BUFFER))
            found += chunk
        return found

    def _request(self, build: Callable[[int], bytes]) -> int:
        """One request on the raw socket (``build`` makes it for a sequence number): the
        kernel's answer, 0 or a negative errno; OSError when the socket fails."""
        self._seq += 1
        self._raw.send(build(self._seq))
        (code,) = self._acks(range(self._seq, self._seq + 1))
        return code

    def _acks(self, seqs: range) -> list[int]:
        """Read the kernel's answer to each request of ``seqs``: 0 or a negative errno
        each, in the order of ``seqs``."""
        codes: dict[int, int] = {}
        while len(codes) < len(seqs):
            for kind, seq, body in messages(self._raw.recv(RAW_BUFFER)):
                if kind == NLMSG_ERROR and seq in seqs:
                    codes[seq] = error_code(body)
        return [codes[seq] for seq in seqs]

    def _verify_marked(self, placement: Placement) -> None:
        """Kernels before 6.3 drop IFA_PROTO: then we could not find our own address again.

        Checked on the first add of each connection only, to keep it off the hot path.
        """
        for msg in self._ipr.get_addr(index=placement.index):
            found = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
            if found == str(placement.address.ip):
                if msg.get("IFA_PROTO") == OWN_PROTO:
                    return
                self._delete(placement.index, placement.address)
                raise errors.KernelError(
                    "the kernel did not keep the aliasip address mark (IFA_PROTO needs Linux "
                    f">= 6.3); {placement.address} was removed again"
                )
        raise errors.KernelError(f"{placement.address} vanished right after it was added")

    def delete(self, held: HeldAlias) -> bool:
        """Delete one alias we marked; False if it was already gone.

        ``held`` comes from a snapshot's ``owned()``, which proved the mark; the IPv4 label
        is sent too, and the kernel deletes only an address that still carries it.
        """
        label = own_label(held.interface) if held.address.version == 4 else None
        return self._delete(held.index, held.address, label)

    def _delete(
        self,
        index: int,
        address: ipaddress.IPv4Interface | ipaddress.IPv6Interface,
        label: str | None = None,
    ) -> bool:
        marked = MarkedAddress.of(index, address, label)
        try:
            code = self._request(lambda seq: removal(marked, seq))
        except OSError as exc:
            raise errors.KernelError(f"deleting {address} failed: {exc}") from exc
        if code and code != -errno.EADDRNOTAVAIL:
            raise errors.KernelError(f"deleting {address} failed: {os.strerror(-code)}")
        self._forget(address.ip)
        return not code

    def _forget(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        if self.mute is not None:
            self.mute.forget(ip)


def _interface_state(link: Any, addresses: list[HostAddress]) -> InterfaceState:
    flags = link["flags"]
    return InterfaceState(
        index=link["index"],
        name=link.get("IFLA_IFNAME"),
        mac=link.get("IFLA_ADDRESS") or "00:00:00:00:00:00",
        admin_up=bool(flags & IFF_UP),
        carrier=bool(link.get("IFLA_CARRIER", 0)),
        loopback=bool(flags & IFF_LOOPBACK),
        addresses=tuple(addresses),
    )


@dataclass(frozen=True)
class LinkChange:
    """One link as an RTM_NEWLINK/RTM_DELLINK notification describes it now."""

    index: int
    name: str | None
    admin_up: bool
    carrier: bool
    deleted: bool = False

    @property
    def serving(self) -> bool:
        """Whether addresses on this link can answer on the wire (up, with carrier)."""
        return self.admin_up and self.carrier and not self.deleted


class LinkEvents:
    """The kernel's link notifications (rtnetlink group RTMGRP_LINK) on a plain
    non-blocking socket, so the agent's event loop can wait for them (``fileno`` with
    ``loop.add_reader``) without a thread of its own: carrier loss is acted on within one
    notification, not at the next periodic pass (kube-vip #682 kept serving a VIP through
    carrier loss). The socket belongs to the namespace it was opened in."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.bind((0, RTMGRP_LINK))
        self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[LinkChange]:
        """Every notification waiting now; [] when none (never blocks). An overrun
        (ENOBUFS: notifications were lost) is reported as a change of every link (index
        0, name None), which tells the caller to re-read the kernel."""
        changes: list[LinkChange] = []
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return changes
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    changes.append(LinkChange(0, None, False, False))
                    continue
                raise
            changes.extend(parse_link_messages(data))

    def close(self) -> None:
        self._sock.close()


def parse_link_messages(data: bytes) -> list[LinkChange]:
    """The link notifications in one netlink datagram (other message types skipped)."""
    found: list[LinkChange] = []
    for kind, _seq, body in messages(data):
        if kind not in (RTM_NEWLINK, RTM_DELLINK) or len(body) < _IFINFOMSG.size:
            continue
        _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(body)
        name: str | None = None
        carrier = bool(flags & IFF_LOWER_UP)
        for atype, value in attributes(body, _IFINFOMSG.size):
            if atype == IFLA_IFNAME:
                name = value.rstrip(b"\0").decode(errors="replace")
            elif atype == IFLA_CARRIER and value:
                carrier = carrier and bool(value[0])
        found.append(LinkChange(index, name, bool(flags & IFF_UP), carrier, kind == RTM_DELLINK))
    return found


# Raw rtnetlink for the dead-man switch's renewals (four times a second: pyroute2 takes
# ~8 ms to dump 20 addresses and ~1.5 ms per replace; this takes a fraction of a ms).
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_CACHEINFO, IFA_FLAGS, IFA_PROTO = 1, 2, 3, 6, 8, 11
_IFADDRMSG = struct.Struct("=BBBBI")
_CACHEINFO = struct.Struct("=IIII")


@dataclass(frozen=True)
class MarkedAddress:
    """An address carrying our mark, as an address dump shows it (what a renewal resends)."""

    family: int
    prefixlen: int
    scope: int
    index: int
    address: bytes
    label: str | None

    @staticmethod
    def of(
        index: int,
        address: ipaddress.IPv4Interface | ipaddress.IPv6Interface,
        label: str | None,
    ) -> MarkedAddress:
        """The alias ``address`` on link ``index`` as an add or delete names it."""
        family = socket.AF_INET if address.version == 4 else socket.AF_INET6
        packed = address.ip.packed
        return MarkedAddress(
            family, address.network.prefixlen, SCOPE_UNIVERSE, index, packed, label
        )


def _ip(marked: MarkedAddress) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(marked.address)


def parse_marked(data: bytes) -> tuple[list[MarkedAddress], bool]:
    """The marked addresses in a chunk of an address dump, and whether the dump is done."""
    found: list[MarkedAddress] = []
    for kind, _seq, body in messages(data):
        if kind == NLMSG_DONE:
            return found, True
        if kind == NLMSG_ERROR:
            code = error_code(body)
            raise OSError(-code, os.strerror(-code))
        if kind != RTM_NEWADDR or len(body) < _IFADDRMSG.size:
            continue
        family, prefixlen, _flags, scope, index = _IFADDRMSG.unpack_from(body)
        attrs = dict(attributes(body, _IFADDRMSG.size))
        proto = attrs.get(IFA_PROTO)
        address = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
        if proto and proto[0] == OWN_PROTO and address:
            label = attrs.get(IFA_LABEL)
            text = label.rstrip(b"\0").decode() if label else None
            found.append(MarkedAddress(family, prefixlen, scope, index, address, text))
    return found, False


def renewal(marked: MarkedAddress, lifetime_s: int, seq: int) -> bytes:
    """RTM_NEWADDR with NLM_F_REPLACE: the same address, mark and label, a new lifetime."""
    return _newaddr(marked, lifetime_s, seq, NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE)


def addition(marked: MarkedAddress, lifetime_s: int | None, seq: int) -> bytes:
    """RTM_NEWADDR with NLM_F_CREATE | NLM_F_EXCL (EEXIST if the kernel has it): what
    ``ip addr add`` sends, with our mark, the label, and the lifetime (None: permanent).

    Why raw: pyroute2 took 0.5-1 ms per add; in a direct handoff (R11) that lies between
    the old holder's delete and the first announcement, while nobody answers."""
    return _newaddr(marked, lifetime_s, seq, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)


def removal(marked: MarkedAddress, seq: int) -> bytes:
    """RTM_DELADDR of exactly this address (``ip addr del``): the kernel matches the
    prefix length, the address and, when given, the label; EADDRNOTAVAIL if none is left."""
    body = _IFADDRMSG.pack(marked.family, marked.prefixlen, 0, 0, marked.index)
    if marked.family == socket.AF_INET:
        body += attr(IFA_LOCAL, marked.address)
    body += attr(IFA_ADDRESS, marked.address)
    if marked.label:
        body += attr(IFA_LABEL, marked.label.encode() + b"\0")
    return message(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, seq, body)


def _newaddr(marked: MarkedAddress, lifetime_s: int | None, seq: int, request: int) -> bytes:
    flags = IFA_F_NODAD if marked.family == socket.AF_INET6 else 0
    body = _IFADDRMSG.pack(marked.family, marked.prefixlen, flags, marked.scope, marked.index)
    body += attr(IFA_ADDRESS, marked.address)
    if marked.family == socket.AF_INET:
        body += attr(IFA_LOCAL, marked.address)
    if marked.label:
        body += attr(IFA_LABEL, marked.label.encode() + b"\0")
    if lifetime_s is not None:
        body += attr(IFA_CACHEINFO, _CACHEINFO.pack(lifetime_s, lifetime_s, 0, 0))
    body += attr(IFA_FLAGS, struct.pack("=I", flags))
    body += attr(IFA_PROTO, bytes([OWN_PROTO]))
    return message(RTM_NEWADDR, request, seq, body)
