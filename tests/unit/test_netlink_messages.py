"""The raw rtnetlink messages of the dead-man switch's renewals (pure: bytes in, bytes out).

The kernel's side is proven in tests/netns/test_lifetimes.py; here, what we send and how we
read a dump, byte by byte, including what must be skipped."""

from __future__ import annotations

import socket
import struct

import pytest

from aliasip_nodeagent.netlink import (
    IFA_CACHEINFO,
    IFA_LABEL,
    IFA_LOCAL,
    IFA_PROTO,
    NLM_F_REPLACE,
    NLMSG_DONE,
    NLMSG_ERROR,
    RTM_NEWADDR,
    MarkedAddress,
    _attr,
    _message,
    parse_marked,
    renewal,
)

V4 = socket.inet_pton(socket.AF_INET, "198.18.0.50")
V6 = socket.inet_pton(socket.AF_INET6, "2001:2::50")


def _newaddr(family: int, address: bytes, proto: int | None, label: str | None = None) -> bytes:
    body = struct.pack("=BBBBI", family, 24 if family == socket.AF_INET else 64, 0, 0, 3)
    body += _attr(IFA_LOCAL if family == socket.AF_INET else 1, address)
    if label:
        body += _attr(IFA_LABEL, label.encode() + b"\0")
    if proto is not None:
        body += _attr(IFA_PROTO, bytes([proto]))
    return _message(RTM_NEWADDR, 0x2, 1, body)


def test_a_dump_yields_only_marked_addresses_until_done() -> None:
    chunk = (
        _newaddr(socket.AF_INET, socket.inet_pton(socket.AF_INET, "198.18.0.11"), None)
        + _newaddr(socket.AF_INET, V4, 0xA1, "eth1:aip")
        + _newaddr(socket.AF_INET6, V6, 0xA1)
        + _newaddr(socket.AF_INET6, V6, 0x02)  # a kernel-made address (kernel_ra)
    )
    found, done = parse_marked(chunk)
    assert not done
    assert found == [
        MarkedAddress(socket.AF_INET, 24, 0, 3, V4, "eth1:aip"),
        MarkedAddress(socket.AF_INET6, 64, 0, 3, V6, None),
    ]
    assert parse_marked(_message(NLMSG_DONE, 0x2, 1, struct.pack("=i", 0))) == ([], True)


def test_a_dump_error_is_raised() -> None:
    with pytest.raises(OSError, match="Operation not permitted"):
        parse_marked(_message(NLMSG_ERROR, 0, 1, struct.pack("=i", -1)))


def test_a_renewal_replaces_with_the_same_mark_label_and_a_new_lifetime() -> None:
    data = renewal(MarkedAddress(socket.AF_INET, 24, 0, 3, V4, "eth1:aip"), 7, 42)
    length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", data)
    assert (length, kind, seq) == (len(data), RTM_NEWADDR, 42)
    assert flags & NLM_F_REPLACE
    attrs = _attrs(data[16 + 8 :])
    assert attrs[IFA_LOCAL] == V4 and attrs[1] == V4
    assert attrs[IFA_LABEL] == b"eth1:aip\0"
    assert attrs[IFA_PROTO] == b"\xa1"
    assert struct.unpack("=IIII", attrs[IFA_CACHEINFO])[:2] == (7, 7)  # preferred, valid


def test_an_ipv6_renewal_keeps_nodad_and_has_no_label() -> None:
    data = renewal(MarkedAddress(socket.AF_INET6, 64, 0, 3, V6, None), 1, 1)
    assert data[16 + 2] == 0x02  # ifa_flags: IFA_F_NODAD
    attrs = _attrs(data[16 + 8 :])
    assert IFA_LABEL not in attrs and IFA_LOCAL not in attrs
    assert struct.unpack("=I", attrs[8])[0] == 0x02  # IFA_FLAGS


def _attrs(data: bytes) -> dict[int, bytes]:
    found, pos = {}, 0
    while pos + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, pos)
        found[kind] = data[pos + 4 : pos + length]
        pos += (length + 3) & ~3
    return found
