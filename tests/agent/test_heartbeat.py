"""The monitoring path's messages (issue 11): signed, checked for freshness and replay,
rotated without a gap (pure: bytes and clocks in, verdicts out)."""

from __future__ import annotations

import pytest

from aliasip_nodeagent.heartbeat import (
    MAX_DATAGRAM,
    Heartbeat,
    KeyRing,
    Receiver,
    Verdict,
    decode,
    encode,
    parse_payload,
    split,
)

OLD, NEW = b"o" * 32, b"n" * 32
RING = KeyRing({"k1": OLD}, signing="k1")
NOW = 1_800_000_000.0


def beat(seq: int = 1, boot: int = 7, sent_at: float = NOW) -> Heartbeat:
    return Heartbeat("node1", boot, seq, sent_at, held=(("uid-web", 4),))


def test_a_signed_heartbeat_round_trips() -> None:
    assert decode(encode(beat(), RING), RING) == (Verdict.ACCEPTED, beat())


def test_forged_unknown_and_malformed_are_told_apart() -> None:
    data = bytearray(encode(beat(), RING))
    data[-3] ^= 0x01  # the payload changed after signing
    assert decode(bytes(data), RING)[0] is Verdict.FORGED
    other = KeyRing({"k1": b"x" * 32}, signing="k1")  # same id, another key
    assert decode(encode(beat(), other), RING)[0] is Verdict.FORGED
    stranger = KeyRing({"k9": OLD}, signing="k9")
    assert decode(encode(beat(), stranger), RING)[0] is Verdict.UNKNOWN_KEY
    assert decode(b"GET / HTTP/1.1", RING)[0] is Verdict.MALFORMED
    assert decode(b"AIP2\x05k1", RING)[0] is Verdict.MALFORMED


def test_stale_and_replayed_are_rejected_and_counted() -> None:
    rx = Receiver(RING)
    assert rx.receive(encode(beat(1), RING), NOW)[0] is Verdict.ACCEPTED
    assert rx.receive(encode(beat(1), RING), NOW)[0] is Verdict.REPLAYED  # the same again
    assert rx.receive(encode(beat(2), RING), NOW + 0.1)[0] is Verdict.ACCEPTED
    old = beat(3, sent_at=NOW - 5)
    assert rx.receive(encode(old, RING), NOW)[0] is Verdict.STALE
    future = beat(4, sent_at=NOW + 5)
    assert rx.receive(encode(future, RING), NOW)[0] is Verdict.STALE
    assert rx.counts == {"accepted": 2, "replayed": 1, "stale": 2}


def test_a_restarted_agent_starts_over_but_an_old_boot_is_a_replay() -> None:
    rx = Receiver(RING)
    assert rx.receive(encode(beat(50, boot=7), RING), NOW)[0] is Verdict.ACCEPTED
    restarted = beat(1, boot=8, sent_at=NOW + 1)
    assert rx.receive(encode(restarted, RING), NOW + 1)[0] is Verdict.ACCEPTED
    replay = beat(51, boot=7, sent_at=NOW + 0.5)  # recorded before the restart
    assert rx.receive(encode(replay, RING), NOW + 1)[0] is Verdict.REPLAYED


def test_a_rotation_accepts_old_and_new_then_only_new() -> None:
    rotating = KeyRing({"k1": OLD, "k2": NEW}, signing="k2")
    rx = Receiver(rotating)
    assert rx.receive(encode(beat(1), RING), NOW)[0] is Verdict.ACCEPTED  # a peer not yet rotated
    assert rx.receive(encode(beat(2), rotating), NOW)[0] is Verdict.ACCEPTED
    done = Receiver(KeyRing({"k2": NEW}, signing="k2"))
    assert done.receive(encode(beat(3), RING), NOW)[0] is Verdict.UNKNOWN_KEY


def test_a_ring_refuses_weak_or_missing_keys() -> None:
    with pytest.raises(ValueError, match="not in the ring"):
        KeyRing({"k1": OLD}, signing="k2")
    with pytest.raises(ValueError, match="shorter than 16 bytes"):
        KeyRing({"k1": b"short"}, signing="k1")


def test_many_aliases_split_into_datagrams_that_each_fit() -> None:
    held = [(f"uid-{i:04d}-{'x' * 30}", i) for i in range(200)]
    datagrams = split("node1", 7, 10, NOW, held, [("uid-gone", 3)], RING)
    assert len(datagrams) > 1 and all(len(d) <= MAX_DATAGRAM for d in datagrams)
    rx = Receiver(RING)
    got = [rx.receive(d, NOW) for d in datagrams]
    assert all(v is Verdict.ACCEPTED for v, _ in got)
    beats = [b for _, b in got if b is not None]
    assert [b.seq for b in beats] == list(range(10, 10 + len(datagrams)))
    assert [h for b in beats for h in b.held] == held
    assert [r for b in beats for r in b.released] == [("uid-gone", 3)]


def test_a_bare_heartbeat_is_small_on_the_wire() -> None:
    """What each peer gets ten times a second (issue 11: < 50 kbit/s per node): with the
    Ethernet, IPv4 and UDP headers, 100 bytes for a 5-character node and a 2-byte key id."""
    data = encode(Heartbeat("node1", 2**63 - 1, 2**40, NOW), RING)
    assert 14 + 20 + 8 + len(data) == 95


def test_a_kubernetes_uid_travels_in_16_bytes_and_any_other_as_text() -> None:
    uid = "0b5b2c1e-4f0a-4c3e-9a53-7d7f5a0c2e11"
    for held in ((uid, 4),), ((uid.upper(), 4),), (("uid-web", 4),):
        sent = Heartbeat("node1", 7, 1, NOW, held=held)
        assert decode(encode(sent, RING), RING) == (Verdict.ACCEPTED, sent)
    bare = len(Heartbeat("node1", 7, 1, NOW).payload())
    assert len(Heartbeat("node1", 7, 1, NOW, held=((uid, 4),)).payload()) == bare + 25


def test_truncated_or_trailing_payloads_are_malformed() -> None:
    good = encode(beat(), RING)
    for cut in range(len(good) - 1, len(good) - 30, -1):
        assert decode(good[:cut], RING)[0] in (Verdict.MALFORMED, Verdict.FORGED)
    payload = beat().payload()
    for bad in (payload[:-1], payload + b"\x01", b"", b"\x00" + payload[6:]):
        with pytest.raises(ValueError):
            parse_payload(bad)


def test_a_successors_ready_travels_signed() -> None:
    """R11's "ready" (the named successor has read the AliasIP) is one more kind of entry
    in the payload."""
    beat = Heartbeat("node2", 7, 3, NOW, (), (), (("uid-web", 2),))
    verdict, got = decode(encode(beat, RING), RING)
    assert verdict is Verdict.ACCEPTED and got is not None
    assert got.ready == (("uid-web", 2),) and got.released == ()
