"""What the wire observer makes of its rounds, per alias (pure: no sockets, no clock).

A *round* is one broadcast question per watched alias; the MACs that answer it are those
of the replies received until the next round is sent. Per alias this keeps, streaming and
bounded (a 30-minute run at 100 rounds a second keeps kilobytes, not every round):

- rounds sent and answered;
- **split-brain rounds**: rounds answered by two or more distinct MACs, as runs (first and
  last round, from when to when, which MACs) -- two kernels answering at once, what a
  client that follows its own neighbour cache cannot see;
- **gaps**: runs of rounds nobody answered (holderless time on the wire), from the first
  unanswered round's sending to the next answered round's sending; a gap before the first
  answer ever is ``leading`` (the alias was not placed yet), one still open at the end is
  ``open``;
- **changes**: each time the set of answering MACs differs from the last non-empty set;
- **announcements**: every frame claiming the alias that did not answer the observer
  (gratuitous ARP, unsolicited NA), with its kernel timestamp and sender MAC; probes
  (ARP from 0.0.0.0, DAD) are only counted.

``emit`` receives each finished fact as it happens (the observer's ``--events`` file), so
a caller can check invariants while a run goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_RECORDS = 10_000
"""Per alias and per list: beyond it only the counters grow (the report says so)."""

Emit = Callable[[dict[str, Any]], None]


def _ignore(_: dict[str, Any]) -> None:
    return None


@dataclass
class AliasObservation:
    """The observer's record of one alias; feed it with ``close_round`` and ``announce``."""

    address: str
    emit: Emit = _ignore
    rounds: int = 0
    answered: int = 0
    split_brain_rounds: int = 0
    probes: int = 0
    split_brain: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    announcements: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0  # records not kept beyond MAX_RECORDS
    last_macs: frozenset[str] = frozenset()  # the last non-empty answer
    last_answered_at: float | None = None
    _gap: dict[str, Any] | None = None
    _split: dict[str, Any] | None = None

    def close_round(self, index: int, sent_at: float, macs: frozenset[str]) -> None:
        """Round ``index`` (sent at ``sent_at``) is over; ``macs`` answered it."""
        self.rounds += 1
        if not macs:
            if self._gap is None:
                self._gap = {
                    "first_round": index, "since": sent_at,
                    "leading": self.last_answered_at is None,
                }  # fmt: skip
            self._end_split()
            return
        self.answered += 1
        if self._gap is not None:
            self._close_gap(index - 1, sent_at, open_=False)
        if len(macs) >= 2:
            self.split_brain_rounds += 1
            if self._split is None:
                self._split = {"first_round": index, "since": sent_at, "macs": set(macs)}
                self.emit({"event": "split-brain", "alias": self.address, "round": index,
                           "at": sent_at, "macs": sorted(macs)})  # fmt: skip
            self._split["macs"] |= macs
            self._split["last_round"], self._split["until"] = index, sent_at
        else:
            self._end_split()
        if macs != self.last_macs:
            change = {"round": index, "at": sent_at, "macs": sorted(macs)}
            self._keep(self.changes, change)
            self.emit({"event": "change", "alias": self.address, **change})
        self.last_macs = macs
        self.last_answered_at = sent_at

    def announce(self, at: float, mac: str, kind: str) -> None:
        """A frame claiming the alias (not an answer to the observer) was seen at ``at``."""
        if kind == "probe":
            self.probes += 1
            return
        record = {"at": at, "mac": mac, "kind": kind}
        self._keep(self.announcements, record)
        self.emit({"event": "announcement", "alias": self.address, **record})

    def finish(self, ended_at: float) -> None:
        """The run is over: close what is still open (an unanswered tail is an open gap)."""
        if self._gap is not None:
            self._close_gap(None, ended_at, open_=True)
        self._end_split()

    def _close_gap(self, last_round: int | None, until: float, open_: bool) -> None:
        gap = self._gap
        assert gap is not None
        self._gap = None
        gap.update(
            last_round=last_round, until=until, open=open_,
            rounds=(last_round - gap["first_round"] + 1) if last_round is not None else None,
            ms=round((until - gap["since"]) * 1000, 1),
        )  # fmt: skip
        self._keep(self.gaps, gap)
        self.emit({"event": "gap", "alias": self.address, **gap})

    def _end_split(self) -> None:
        run = self._split
        if run is None:
            return
        self._split = None
        record = {**run, "macs": sorted(run["macs"]),
                  "rounds": run["last_round"] - run["first_round"] + 1}  # fmt: skip
        self._keep(self.split_brain, record)
        self.emit({"event": "split-brain-end", "alias": self.address, **record})

    def _keep(self, records: list[dict[str, Any]], record: dict[str, Any]) -> None:
        if len(records) < MAX_RECORDS:
            records.append(record)
        else:
            self.dropped += 1

    def longest_gap_ms(self) -> float:
        """The longest holderless time after the alias first answered (leading gaps are
        the time before it was placed; open ones count up to the end of the run)."""
        return max((g["ms"] for g in self.gaps if not g["leading"]), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "rounds": self.rounds,
            "answered": self.answered,
            "split_brain_rounds": self.split_brain_rounds,
            "split_brain": self.split_brain,
            "longest_gap_ms": self.longest_gap_ms(),
            "gaps": self.gaps,
            "changes": self.changes,
            "macs": sorted({m for c in self.changes for m in c["macs"]}),
            "last_macs": sorted(self.last_macs),
            "last_answered_at": self.last_answered_at,
            "announcements": self.announcements,
            "probes": self.probes,
            "dropped_records": self.dropped,
        }


def split_brain_rounds(report: dict[str, Any]) -> int:
    """Split-brain rounds over every alias of an observer report (``Observer`` JSON)."""
    return sum(int(a["split_brain_rounds"]) for a in report["aliases"].values())
