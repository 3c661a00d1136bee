"""The observer's round accounting (pure): split-brain rounds and their runs, gaps
(leading, closed, open), answer changes, announcements, and the events emitted."""

from __future__ import annotations

from typing import Any

from aliasip_lab.observation import MAX_RECORDS, AliasObservation, split_brain_rounds

A, B = "02:a1:00:00:00:0b", "02:a1:00:00:00:0c"


def feed(log: AliasObservation, *rounds: set[str]) -> None:
    for index, macs in enumerate(rounds):
        log.close_round(index, index * 0.01, frozenset(macs))


def test_one_holder_answers_every_round() -> None:
    log = AliasObservation("198.18.0.50")
    feed(log, {A}, {A}, {A})
    got = log.to_dict()
    assert (got["rounds"], got["answered"], got["split_brain_rounds"]) == (3, 3, 0)
    assert got["changes"] == [{"round": 0, "at": 0.0, "macs": [A]}]
    assert got["gaps"] == [] and got["split_brain"] == []
    assert got["last_macs"] == [A]


def test_two_macs_in_one_round_are_split_brain_runs() -> None:
    events: list[dict[str, Any]] = []
    log = AliasObservation("198.18.0.50", emit=events.append)
    feed(log, {A}, {A, B}, {A, B}, {B}, {A, B})
    log.finish(1.0)
    got = log.to_dict()
    assert got["split_brain_rounds"] == 3
    runs = [(r["first_round"], r["last_round"], r["rounds"], r["macs"]) for r in got["split_brain"]]
    assert runs == [(1, 2, 2, [A, B]), (4, 4, 1, [A, B])]
    assert [e["event"] for e in events if "split" in e["event"]] == [
        "split-brain", "split-brain-end", "split-brain", "split-brain-end",
    ]  # fmt: skip
    assert [c["macs"] for c in got["changes"]] == [[A], [A, B], [B], [A, B]]


def test_gaps_leading_closed_and_open() -> None:
    log = AliasObservation("198.18.0.50")
    feed(log, set(), {A}, set(), set(), {B}, set())
    log.finish(0.1)
    gaps = log.to_dict()["gaps"]
    assert [(g["first_round"], g["last_round"], g["leading"], g["open"]) for g in gaps] == [
        (0, 0, True, False), (2, 3, False, False), (5, None, False, True),
    ]  # fmt: skip
    assert gaps[1]["ms"] == 20.0  # from round 2's sending to round 4's
    assert log.longest_gap_ms() == 50.0  # the open tail: round 5 (0.05) to the end (0.1)


def test_a_split_run_ends_at_an_unanswered_round() -> None:
    log = AliasObservation("198.18.0.50")
    feed(log, {A, B}, set(), {A, B})
    log.finish(0.1)
    assert [r["rounds"] for r in log.split_brain] == [1, 1]


def test_announcements_kept_probes_counted() -> None:
    log = AliasObservation("198.18.0.50")
    log.announce(1.5, A, "garp-request")
    log.announce(1.6, B, "probe")
    got = log.to_dict()
    assert got["announcements"] == [{"at": 1.5, "mac": A, "kind": "garp-request"}]
    assert got["probes"] == 1


def test_records_are_bounded() -> None:
    log = AliasObservation("198.18.0.50")
    for i in range(MAX_RECORDS + 5):
        log.announce(float(i), A, "garp-request")
    assert len(log.announcements) == MAX_RECORDS and log.dropped == 5


def test_split_brain_rounds_over_a_report() -> None:
    report = {"aliases": {"a": {"split_brain_rounds": 2}, "b": {"split_brain_rounds": 1}}}
    assert split_brain_rounds(report) == 3
