"""Heartbeats between agents: the monitoring path's messages, signed and checked (pure).

Issue 11, after the first design's "Failure detection: the monitoring path": agents send
each other small UDP heartbeats over the nodes' stationary addresses, carrying the node,
a sequence number and what it holds with epochs, authenticated with a key from a
Kubernetes Secret. This module is the message and its checks only; sockets, timers and
peers are the monitoring room's.

Wire format (one UDP datagram), binary, big-endian::

    b"AIP2" | key id length (1 byte) | key id | HMAC-SHA256, first 16 bytes | payload
    payload: node length (1) | node | boot (8) | seq (8) | sent_at (8, IEEE double)
             | entries, each: kind (1: held, 2: released, 3: ready) | epoch (8)
                              | uid length (1) | uid
                   or, for a uid in the canonical UUID form (as Kubernetes makes them):
                              kind + 0x80 (1) | epoch (8) | the UUID's 16 bytes

The HMAC covers the key id and the payload; 128 of its bits are kept, as IPsec does
(RFC 4868, HMAC-SHA-256-128). The payload: ``node``, ``boot`` (random per agent start,
so a restarted agent's sequence numbers starting over are no replay), ``seq``,
``sent_at`` (the sender's wall clock, seconds), and entries ``(aliasip uid, epoch)``:
``held``, ``released`` (a direct handoff's "let go", R11) and ``ready`` (a named
successor's "read and ready to take it"). A bare heartbeat (no entries) is 95 bytes on
an Ethernet wire with a 2-byte key id and a 5-character node name; the first format
(JSON, a 32-byte MAC) took 243: at 30 peers' worth of datagrams a second both ways,
the difference between 116 and under 50 kbit/s on a node's link (bench/scale.py).

Checks, in order, each a ``Verdict`` the caller counts and logs: malformed (not ours, or
not parsable), ``unknown-key`` (a key id the ring does not hold), ``forged`` (a bad
HMAC), ``stale`` (``sent_at`` more than ``max_age_s`` from the receiver's clock either
way), ``replayed`` (a sequence number not above the highest seen for that node and boot,
or an older boot's message). Key rotation without a gap: the ring holds the old and the
new key while a rotation runs; senders sign with the newest.
"""

from __future__ import annotations

import enum
import hmac
import secrets
import struct
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

MAGIC = b"AIP2"
DIGEST_LEN = 16  # HMAC-SHA256 truncated to 128 bits (RFC 4868)
MAX_DATAGRAM = 1400  # stays under a 1500-byte MTU with the IP and UDP headers
DEFAULT_MAX_AGE_S = 2.0
# UDP. Not 7946: MetalLB's memberlist (speakers on the host network) uses that one.
DEFAULT_PORT = 7947
# A heartbeat to each peer this often; a peer missing this many is probed on the wire.
DEFAULT_INTERVAL_S = 0.1
DEFAULT_MISSES = 3


_FIXED = struct.Struct("!QQd")  # boot, seq, sent_at
_ENTRY = struct.Struct("!BQ")  # kind, epoch
HELD, RELEASED, READY = 1, 2, 3
PACKED_UUID = 0x80  # added to the kind: the uid follows as a UUID's 16 bytes


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown-key"
    FORGED = "forged"
    STALE = "stale"
    REPLAYED = "replayed"


@dataclass(frozen=True)
class Heartbeat:
    node: str
    boot: int
    seq: int
    sent_at: float
    held: tuple[tuple[str, int], ...] = ()
    released: tuple[tuple[str, int], ...] = ()
    ready: tuple[tuple[str, int], ...] = ()

    def payload(self) -> bytes:
        node = self.node.encode()
        if not 1 <= len(node) <= 255:
            raise ValueError(f"a node name of {len(node)} bytes does not fit a heartbeat")
        parts = [bytes([len(node)]), node, _FIXED.pack(self.boot, self.seq, self.sent_at)]
        for kind, entries in ((HELD, self.held), (RELEASED, self.released), (READY, self.ready)):
            for uid, epoch in entries:
                packed = _packed_uuid(uid)
                if packed is not None:
                    parts.append(_ENTRY.pack(kind | PACKED_UUID, epoch) + packed)
                    continue
                raw = uid.encode()
                if len(raw) > 255:
                    raise ValueError(f"an AliasIP uid of {len(raw)} bytes does not fit")
                parts.append(_ENTRY.pack(kind, epoch) + bytes([len(raw)]) + raw)
        return b"".join(parts)


def _packed_uuid(uid: str) -> bytes | None:
    """A canonical UUID's 16 bytes (20 fewer than its text), or None for any other uid."""
    if len(uid) != 36:
        return None
    try:
        parsed = uuid.UUID(uid)
    except ValueError:
        return None
    return parsed.bytes if str(parsed) == uid else None


def parse_payload(payload: bytes) -> Heartbeat:
    """The heartbeat in a payload; ValueError if it is not exactly one."""
    try:
        return _parse(payload)
    except struct.error as exc:
        raise ValueError(f"truncated: {exc}") from exc


def _parse(payload: bytes) -> Heartbeat:
    if not payload:
        raise ValueError("empty")
    pos = 1 + payload[0]
    node = payload[1:pos].decode()
    boot, seq, sent_at = _FIXED.unpack_from(payload, pos)
    pos += _FIXED.size
    found: dict[int, list[tuple[str, int]]] = {HELD: [], RELEASED: [], READY: []}
    while pos < len(payload):
        kind, epoch = _ENTRY.unpack_from(payload, pos)
        pos += _ENTRY.size
        if kind & PACKED_UUID:
            kind &= ~PACKED_UUID
            raw = payload[pos : pos + 16]
            if len(raw) != 16:
                raise ValueError("a truncated uid")
            uid = str(uuid.UUID(bytes=raw))
            pos += 16
        else:
            length = payload[pos]
            raw = payload[pos + 1 : pos + 1 + length]
            if len(raw) != length:
                raise ValueError("a truncated uid")
            uid = raw.decode()
            pos += 1 + length
        if kind not in found:
            raise ValueError(f"an entry of unknown kind {kind}")
        found[kind].append((uid, epoch))
    if not node:
        raise ValueError("no node")
    return Heartbeat(
        node, boot, seq, sent_at, tuple(found[HELD]), tuple(found[RELEASED]), tuple(found[READY])
    )


def new_boot() -> int:
    """A random incarnation number for an agent's start."""
    return secrets.randbits(63)


@dataclass(frozen=True)
class KeyRing:
    """The keys a receiver accepts, by id; ``signing`` is the one a sender uses (the
    newest: during a rotation both are accepted, so no heartbeat is lost)."""

    keys: Mapping[str, bytes]
    signing: str

    def __post_init__(self) -> None:
        if self.signing not in self.keys:
            raise ValueError(f"the signing key {self.signing!r} is not in the ring")
        for key_id, key in self.keys.items():
            if not 1 <= len(key_id.encode()) <= 255:
                raise ValueError(f"key id {key_id!r} must be 1-255 bytes")
            if len(key) < 16:
                raise ValueError(f"key {key_id!r} is shorter than 16 bytes")


def _mac(key: bytes, key_id: bytes, payload: bytes) -> bytes:
    # hmac.digest: the one-shot C path (an agent signs and checks hundreds a second).
    return hmac.digest(key, key_id + payload, "sha256")[:DIGEST_LEN]


def encode(beat: Heartbeat, ring: KeyRing) -> bytes:
    """One signed datagram; ValueError if it would not fit one (``split`` first)."""
    key_id = ring.signing.encode()
    payload = beat.payload()
    data = MAGIC + bytes([len(key_id)]) + key_id + _mac(ring.keys[ring.signing], key_id, payload)
    data += payload
    if len(data) > MAX_DATAGRAM:
        raise ValueError(f"a heartbeat of {len(data)} bytes does not fit one datagram")
    return data


def split(
    node: str,
    boot: int,
    first_seq: int,
    sent_at: float,
    held: Sequence[tuple[str, int]],
    released: Sequence[tuple[str, int]],
    ring: KeyRing,
) -> list[bytes]:
    """What a node holds and released, as few signed datagrams as fit, numbered from
    ``first_seq`` (a node holding hundreds of aliases sends several)."""
    items = [("held", h) for h in held] + [("released", r) for r in released]
    out: list[bytes] = []
    seq = first_seq
    start = 0
    while True:
        end = len(items)
        while True:
            chunk = items[start:end]
            beat = Heartbeat(
                node,
                boot,
                seq,
                sent_at,
                tuple(v for k, v in chunk if k == "held"),
                tuple(v for k, v in chunk if k == "released"),
            )
            try:
                out.append(encode(beat, ring))
                break
            except ValueError:
                if end - start <= 1:
                    raise
                end = start + (end - start) // 2
        seq += 1
        start = end
        if start >= len(items):
            return out


def decode(data: bytes, ring: KeyRing) -> tuple[Verdict, Heartbeat | None]:
    """The heartbeat in ``data`` if it is ours and signed with a key of the ring."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 1:
        return Verdict.MALFORMED, None
    pos = len(MAGIC)
    id_len = data[pos]
    pos += 1
    key_id = data[pos : pos + id_len]
    pos += id_len
    digest = data[pos : pos + DIGEST_LEN]
    payload = data[pos + DIGEST_LEN :]
    if len(key_id) != id_len or len(digest) != DIGEST_LEN:
        return Verdict.MALFORMED, None
    key = ring.keys.get(key_id.decode(errors="replace"))
    if key is None:
        return Verdict.UNKNOWN_KEY, None
    if not hmac.compare_digest(_mac(key, key_id, payload), digest):
        return Verdict.FORGED, None
    try:
        beat = parse_payload(payload)
    except ValueError:  # UnicodeDecodeError is one
        return Verdict.MALFORMED, None
    return Verdict.ACCEPTED, beat


@dataclass
class Receiver:
    """Checks signed heartbeats for freshness and replay; counts every verdict.

    Per node it keeps the newest boot and the highest sequence number accepted of it; a
    message of another boot is accepted only if it was sent after the last one accepted
    (a restarted agent, not an old one replayed).
    """

    ring: KeyRing
    max_age_s: float = DEFAULT_MAX_AGE_S
    counts: Counter[str] = field(default_factory=Counter)
    _last: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # boot, seq, sent

    def receive(self, data: bytes, now: float) -> tuple[Verdict, Heartbeat | None]:
        verdict, beat = decode(data, self.ring)
        if beat is not None:
            verdict = self._judge(beat, now)
        self.counts[verdict.value] += 1
        return verdict, (beat if verdict is Verdict.ACCEPTED else None)

    def _judge(self, beat: Heartbeat, now: float) -> Verdict:
        if abs(now - beat.sent_at) > self.max_age_s:
            return Verdict.STALE
        last = self._last.get(beat.node)
        if last is not None:
            boot, seq, sent_at = last
            if beat.boot == boot and beat.seq <= seq:
                return Verdict.REPLAYED
            if beat.boot != boot and beat.sent_at <= sent_at:
                return Verdict.REPLAYED
        self._last[beat.node] = (beat.boot, beat.seq, beat.sent_at)
        return Verdict.ACCEPTED
