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
    encode_one,
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
    assert decode(b"AIPH1\x05k1", RING)[0] is Verdict.MALFORMED


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


def test_the_fast_encoding_is_the_same_datagram() -> None:
    """What the monitoring room sends each peer ten times a second, built from its cached
    JSON fragments, is byte for byte what ``split`` builds."""
    held = (("uid-web", 4), ("uid-db", 11))
    fast = encode_one('"node1"', 7, 3, NOW + 0.125, '[["uid-web",4],["uid-db",11]]', RING)
    assert fast == split("node1", 7, 3, NOW + 0.125, held, (), RING)[0]
    assert encode_one('"node1"', 7, 3, NOW, '["' + "x" * 2000 + '"]', RING) is None


def test_a_successors_ready_travels_signed_and_a_heartbeat_without_one_is_unchanged() -> None:
    """R11's "ready" (the named successor has read the AliasIP) is one more list in the
    payload, present only when not empty: older agents' heartbeats read the same."""
    beat = Heartbeat("node2", 7, 3, NOW, (), (), (("uid-web", 2),))
    verdict, got = decode(encode(beat, RING), RING)
    assert verdict is Verdict.ACCEPTED and got is not None
    assert got.ready == (("uid-web", 2),) and got.released == ()
    assert b'"ready"' not in Heartbeat("node2", 7, 3, NOW).payload()
