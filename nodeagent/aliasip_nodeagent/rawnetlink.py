"""Netlink's wire format, for the two hot paths that skip pyroute2 and libnftables.

Why one module: the dead-man lifetimes (``netlink``, rtnetlink) and the mute's element
changes (``nftset``, nfnetlink) each send a few hundred bytes several times a second for
the life of every agent; pyroute2 and libnftables cost milliseconds per call there. Both
speak the same framing (linux/netlink.h): a 16-byte header per message, attributes as
type-length-value padded to 4 bytes, acknowledgements as ``NLMSG_ERROR`` with an errno.
That framing lives here once; what each family puts in a message stays with its module.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_ROOT, NLM_F_MATCH = 0x1, 0x2, 0x4, 0x100, 0x200
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLA_F_NESTED = 0x8000

HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
ATTRIBUTE = struct.Struct("=HH")  # length, type
_ERRNO = struct.Struct("=i")


def attr(kind: int, payload: bytes) -> bytes:
    """One attribute, padded to 4 bytes."""
    length = ATTRIBUTE.size + len(payload)
    return ATTRIBUTE.pack(length, kind) + payload + b"\0" * (-length % 4)


def nested(kind: int, *parts: bytes) -> bytes:
    """An attribute holding other attributes."""
    return attr(kind | NLA_F_NESTED, b"".join(parts))


def message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    """One message: the header, then ``body`` (the family's header and attributes)."""
    return HEADER.pack(HEADER.size + len(body), kind, flags, seq, 0) + body


def messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, sequence number, body) of each netlink message in one datagram."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, kind, _flags, seq, _pid = HEADER.unpack_from(data, offset)
        if length < HEADER.size:
            return
        yield kind, seq, data[offset + HEADER.size : offset + length]
        offset += (length + 3) & ~3


def attributes(data: bytes, start: int) -> Iterator[tuple[int, bytes]]:
    """(type, value) of each attribute in ``data`` from ``start``."""
    pos = start
    while pos + ATTRIBUTE.size <= len(data):
        length, kind = ATTRIBUTE.unpack_from(data, pos)
        if length < ATTRIBUTE.size:
            return
        yield kind, data[pos + ATTRIBUTE.size : pos + length]
        pos += (length + 3) & ~3


def error_code(body: bytes) -> int:
    """The errno of an ``NLMSG_ERROR`` body: 0 for an acknowledgement, else negative."""
    if len(body) < _ERRNO.size:
        return 0
    (code,) = _ERRNO.unpack_from(body)
    return int(code)


def answers(data: bytes) -> list[tuple[int, int]]:
    """(sequence number, error: 0 or a negative errno) of each acknowledgement in ``data``."""
    return [
        (seq, error_code(body))
        for kind, seq, body in messages(data)
        if kind == NLMSG_ERROR and len(body) >= _ERRNO.size
    ]
