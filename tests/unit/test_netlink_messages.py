"""The raw rtnetlink messages of the dead-man switch's renewals (pure: bytes in, bytes out).

The kernel's side is proven in tests/netns/test_lifetimes.py; here, what we send and how we
read a dump, byte by byte, including what must be skipped."""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from aliasip_nodeagent.netlink import (
    IFA_CACHEINFO,
    IFA_LABEL,
    IFA_LOCAL,
    IFA_PROTO,
    RTM_NEWADDR,
    MarkedAddress,
    addition,
    parse_marked,
    removal,
    renewal,
)
from aliasip_nodeagent.rawnetlink import (
    NLM_F_REPLACE,
    NLMSG_DONE,
    NLMSG_ERROR,
    answers,
    attributes,
    messages,
)
from aliasip_nodeagent.rawnetlink import attr as _attr
from aliasip_nodeagent.rawnetlink import message as _message

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


def test_an_addition_creates_exclusively_with_the_mark_and_the_lifetime() -> None:
    data = addition(MarkedAddress(socket.AF_INET, 24, 0, 3, V4, "eth1:aip"), 7, 5)
    _length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", data)
    assert (kind, seq) == (RTM_NEWADDR, 5)
    assert flags == 0x1 | 0x4 | 0x400 | 0x200  # REQUEST, ACK, CREATE, EXCL: `ip addr add`
    attrs = _attrs(data[16 + 8 :])
    assert attrs[IFA_LOCAL] == V4 and attrs[IFA_LABEL] == b"eth1:aip\0"
    assert attrs[IFA_PROTO] == b"\xa1"
    assert struct.unpack("=IIII", attrs[IFA_CACHEINFO])[:2] == (7, 7)


def test_a_permanent_addition_has_no_lifetime() -> None:
    data = addition(MarkedAddress(socket.AF_INET6, 64, 0, 3, V6, None), None, 1)
    attrs = _attrs(data[16 + 8 :])
    assert IFA_CACHEINFO not in attrs
    assert attrs[1] == V6 and attrs[IFA_PROTO] == b"\xa1"


def test_a_removal_names_the_address_prefix_and_label() -> None:
    data = removal(MarkedAddress(socket.AF_INET, 24, 0, 3, V4, "eth1:aip"), 9)
    _length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", data)
    assert (kind, flags, seq) == (21, 0x1 | 0x4, 9)  # RTM_DELADDR, REQUEST | ACK
    family, prefixlen, _flags, _scope, index = struct.unpack_from("=BBBBI", data, 16)
    assert (family, prefixlen, index) == (socket.AF_INET, 24, 3)
    attrs = _attrs(data[16 + 8 :])
    assert attrs[IFA_LOCAL] == V4 and attrs[1] == V4 and attrs[IFA_LABEL] == b"eth1:aip\0"


def _attrs(data: bytes) -> dict[int, bytes]:
    found, pos = {}, 0
    while pos + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, pos)
        found[kind] = data[pos + 4 : pos + length]
        pos += (length + 3) & ~3
    return found


def test_answers_reads_each_acknowledgement_and_skips_other_messages() -> None:
    ok = _message(NLMSG_ERROR, 0, 7, struct.pack("=i", 0) + b"\0" * 16)
    refused = _message(NLMSG_ERROR, 0, 8, struct.pack("=i", -errno.ENOENT) + b"\0" * 16)
    done = _message(NLMSG_DONE, 0, 9, b"")
    assert answers(ok + done + refused) == [(7, 0), (8, -errno.ENOENT)]


def test_attributes_are_padded_to_four_bytes_and_read_back() -> None:
    data = _attr(1, b"abc") + _attr(2, b"") + _attr(3, b"12345")
    assert len(_attr(1, b"abc")) == 8
    assert list(attributes(data, 0)) == [(1, b"abc"), (2, b""), (3, b"12345")]


def test_a_truncated_datagram_yields_only_whole_messages() -> None:
    whole = _message(NLMSG_DONE, 0, 1, b"")
    assert [seq for _k, seq, _b in messages(whole + whole[:10])] == [1]
