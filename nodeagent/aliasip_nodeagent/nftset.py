"""Set-element transactions sent straight to nf_tables over netlink (no libnftables).

Why: the dead-man refresh (``mute``) is one transaction twenty times a second for the
life of every agent. Through libnftables each one parses text and, before it, lists the
tables and sets from the kernel to fill its cache (the ruleset's generation moved with
the last refresh, so the cache is never warm): 0.25 ms for 10 addresses in a tight loop,
0.55 ms when spaced as the refresher spaces them, and 2-2.3 % of a core per agent in the
lab, the largest share of an idle agent's CPU. The same transaction encoded here is a
few hundred bytes built with ``struct`` and one ``sendmsg``; the kernel does the same work.

The messages are what ``nft`` itself sends for ``add element`` / ``delete element``
(libnftnl): an nfnetlink batch (``NFNL_MSG_BATCH_BEGIN`` ... ``END``) of
``NFT_MSG_NEWSETELEM`` / ``NFT_MSG_DELSETELEM`` messages, each with ``NLM_F_ACK``. The
kernel runs a batch as one transaction: if any message fails (a ``delete`` of an
element that expired: ENOENT) nothing of it takes effect, and ``run`` raises ``NftError``.
Anything but element changes (the ruleset, reading an element) stays with libnftables
(``nft``), whose text every command here mirrors: ``describe`` prints it.

One ``ElementSocket`` per thread, as for ``Nft``.
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from aliasip_nodeagent.nft import NftError
from aliasip_nodeagent.rawnetlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_REQUEST,
    answers,
    attr,
    message,
    nested,
)

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFT_MSG_NEWSETELEM = 12
NFT_MSG_DELSETELEM = 14
NFTA_SET_ELEM_LIST_TABLE = 1
NFTA_SET_ELEM_LIST_SET = 2
NFTA_SET_ELEM_LIST_ELEMENTS = 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY = 1
NFTA_SET_ELEM_TIMEOUT = 4
NFTA_DATA_VALUE = 1
FAMILIES = {"inet": 1, "ip": 2, "arp": 3, "ip6": 10}
# A batch's acknowledgements come within microseconds; this bounds a kernel that never
# answers (then the transaction counts as failed, as a refused one does).
ANSWER_TIMEOUT_S = 1.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# An element's key: an address (``ipv4_addr``/``ipv6_addr`` sets), or a one-byte value
# (sets of ``typeof arp plen`` or ``meta nfproto``).
Key = IPAddress | int


@dataclass(frozen=True)
class ElementOp:
    """``add`` or ``delete`` of ``keys`` in ``family table set``; ``timeout_ms`` for an add
    to a set with timeouts."""

    verb: str
    family: str
    table: str
    set: str
    keys: tuple[Key, ...]
    timeout_ms: int | None = None

    def __post_init__(self) -> None:
        if self.verb not in ("add", "delete"):
            raise ValueError(f"an element op adds or deletes, not {self.verb!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"unknown nftables family {self.family!r}")
        if not self.keys:
            raise ValueError("an element op names at least one element")
        if self.timeout_ms is not None and self.verb != "add":
            raise ValueError("only an add sets a timeout")
        if any(isinstance(k, int) and not 0 <= k <= 255 for k in self.keys):
            raise ValueError("a numeric key is one byte, 0-255")

    def describe(self) -> str:
        """The same op as ``nft`` text (for logs, and to try by hand)."""
        timeout = f" timeout {self.timeout_ms}ms" if self.timeout_ms is not None else ""
        keys = ", ".join(f"{k}{timeout}" for k in self.keys)
        return f"{self.verb} element {self.family} {self.table} {self.set} {{ {keys} }}"


def _message(kind: int, flags: int, seq: int, family: int, res_id: int, body: bytes) -> bytes:
    """An nfnetlink message: the generic header (family, version, resource id), then body."""
    nfgen = struct.pack("=BB", family, 0) + struct.pack("!H", res_id)
    return message(kind, flags, seq, nfgen + body)


def _key_bytes(key: Key) -> bytes:
    return bytes([key]) if isinstance(key, int) else key.packed


def _element(key: Key, timeout_ms: int | None) -> bytes:
    parts = [nested(NFTA_SET_ELEM_KEY, attr(NFTA_DATA_VALUE, _key_bytes(key)))]
    if timeout_ms is not None:
        parts.append(attr(NFTA_SET_ELEM_TIMEOUT, struct.pack("!Q", timeout_ms)))
    return nested(NFTA_LIST_ELEM, *parts)


def encode(ops: Sequence[ElementOp], first_seq: int) -> tuple[bytes, list[int]]:
    """One batch of ``ops`` and the sequence numbers whose acknowledgement is expected."""
    seq = itertools.count(first_seq)
    out = [_message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, next(seq), 0, NFNL_SUBSYS_NFTABLES, b"")]
    acked: list[int] = []
    for op in ops:
        kind = NFT_MSG_NEWSETELEM if op.verb == "add" else NFT_MSG_DELSETELEM
        flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE if op.verb == "add" else 0)
        body = (
            attr(NFTA_SET_ELEM_LIST_TABLE, op.table.encode() + b"\0")
            + attr(NFTA_SET_ELEM_LIST_SET, op.set.encode() + b"\0")
            + nested(NFTA_SET_ELEM_LIST_ELEMENTS, *(_element(k, op.timeout_ms) for k in op.keys))
        )
        number = next(seq)
        acked.append(number)
        out.append(
            _message(
                (NFNL_SUBSYS_NFTABLES << 8) | kind, flags, number, FAMILIES[op.family], 0, body
            )
        )
    out.append(_message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, next(seq), 0, NFNL_SUBSYS_NFTABLES, b""))
    return b"".join(out), acked


class ElementSocket:
    """A netlink socket to nf_tables that runs batches of element ops as transactions."""

    def __init__(self) -> None:
        try:
            self._sock: socket.socket | None = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER
            )
        except OSError as exc:
            raise NftError(f"no nfnetlink socket: {exc}") from exc
        self._sock.bind((0, 0))
        self._sock.settimeout(ANSWER_TIMEOUT_S)
        self._seq = itertools.count(1)

    def run(self, ops: Sequence[ElementOp]) -> None:
        """All of ``ops`` in one transaction; NftError (nothing changed) if any fails."""
        if self._sock is None:
            raise NftError("this nfnetlink socket is closed")
        if not ops:
            return
        data, acked = encode(ops, next(self._seq))
        for _ in range(len(acked) + 1):  # the batch's own numbers, and room for the end
            next(self._seq)
        waiting = set(acked)
        failure: tuple[int, int] | None = None
        try:
            self._sock.send(data)
            while waiting:
                for seq, error in answers(self._sock.recv(65536)):
                    if seq not in waiting:
                        if error and seq < min(acked):
                            continue  # a late answer to an earlier batch
                        if error and failure is None:
                            failure = (seq, error)  # the batch's own header refused
                            waiting.clear()
                        continue
                    waiting.discard(seq)
                    if error and failure is None:
                        failure = (seq, error)
        except OSError as exc:  # includes the timeout: the outcome is unknown
            raise NftError(f"nf_tables did not answer the batch: {exc}") from exc
        if failure is not None:
            seq, error = failure
            which = acked.index(seq) if seq in acked else None
            what = ops[which].describe() if which is not None else "the batch"
            raise NftError(f"{what}: {os.strerror(-error)} ({errno.errorcode.get(-error, error)})")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
