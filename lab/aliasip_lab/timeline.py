"""One clock for a move: what each witness saw, merged into one timeline.

No single witness sees a move of an alias whole. The operator's Events say what it
decided (microseconds); the agents' structured logs say what each node did to its kernel
(milliseconds); an agent Lease says until when it vouched for its node; a capture on the
client's wire (kernel timestamps) says when the LAN carried the gratuitous ARP; the client
prober says which MAC answered each probe. In the lab they all run on one host, so their
wall clocks are one clock and their facts can be merged and sorted. This module only
reads and formats what others recorded; it starts nothing.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from aliasip_api import kubetime
from aliasip_lab.capture import Frame
from aliasip_lab.prober import ProbeReport, Reply

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ICMP_ECHO_REPLY = 0
# The columns of a rendered timeline, so wrapped text lines up under "what".
CLOCK_W, OFFSET_W, WHO_W, SOURCE_W = 12, 8, 8, 9


@dataclass(frozen=True)
class Step:
    """One timed fact: when (epoch seconds), who did or saw it, what, and which witness
    says so (a reader must be able to tell a decision from a measurement)."""

    at: float
    who: str
    what: str
    source: str


def clock(at: float) -> str:
    """Local wall-clock time with milliseconds: what the agents' logs print too."""
    return datetime.fromtimestamp(at).strftime("%H:%M:%S.%f")[:-3]


def render(steps: Iterable[Step], t0: float, width: int = 104) -> list[str]:
    """Aligned rows sorted by time, offsets in ms from ``t0`` (the move's trigger).

    The sort is stable: steps with one timestamp keep the order given (e.g. an Event and
    the status write that caused it)."""
    indent = 2 + CLOCK_W + 1 + OFFSET_W + 2 + WHO_W + 1 + SOURCE_W + 1
    rows = [
        f"  {'wall clock':<{CLOCK_W}} {'+ms':>{OFFSET_W}}  {'who':<{WHO_W}} "
        f"{'witness':<{SOURCE_W}} what"
    ]
    for step in sorted(steps, key=lambda s: s.at):
        lines = textwrap.wrap(step.what, max(width - indent, 40)) or [""]
        offset = f"{(step.at - t0) * 1000:+.1f}"
        rows.append(
            f"  {clock(step.at):<{CLOCK_W}} {offset:>{OFFSET_W}}  {step.who:<{WHO_W}} "
            f"{step.source:<{SOURCE_W}} {lines[0]}"
        )
        rows.extend(" " * indent + line for line in lines[1:])
    return rows


# -- the agents' logs ------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentRecord:
    """One structured line of an agent's log: ``time=... level=... event=... key=value``."""

    at: float  # epoch seconds (the log has milliseconds, in local time)
    level: str
    event: str
    fields: Mapping[str, str]


def parse_agent_line(line: str) -> AgentRecord | None:
    """The record on ``line``, or None for anything else (a traceback, a library's line)."""
    head, sep, rest = line.rstrip("\n").partition(" level=")
    if not head.startswith("time=") or not sep:
        return None
    try:
        # logging's asctime is local time: a naive datetime's timestamp() reads it so.
        at = datetime.strptime(head[len("time=") :], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        words = shlex.split(rest)
    except ValueError:
        return None
    fields: dict[str, str] = {}
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if eq:
            fields[key] = value
    event = fields.pop("event", None)
    if not words or event is None:
        return None
    return AgentRecord(at, words[0], event, fields)


def read_agent_log(path: Path) -> list[AgentRecord]:
    """Every record of one agent's log file (empty if the file is missing)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    return [r for line in text.splitlines() if (r := parse_agent_line(line)) is not None]


def describe_record(record: AgentRecord) -> str | None:
    """A sentence for the records that tell a move's story; None for the routine ones."""
    f = record.fields
    if record.event == "hold":
        probed = (
            f"probed the wire {f['probe_ms']} ms: nobody answered"
            if f.get("probe_ms")
            else "no probe (the old holder had confirmed its release)"
        )
        return (
            f"{probed}; added {f.get('address')} on {f.get('interface')} and sent the first "
            f"gratuitous ARP (epoch {f.get('epoch')})"
        )
    if record.event == "release":
        why = f", {f['reason']}" if f.get("reason") else ""
        return f"deleted {f.get('address')} (epoch {f.get('epoch')}{why})"
    if record.event == "handoff-told":
        return f"told {f.get('peer')} directly, over the monitoring path (direct handoff)"
    if record.event == "handoff-taken":
        return f"heard {f.get('peer')} let go at epoch {f.get('epoch')}: taking over at once"
    if record.event == "holder-probed":
        holder = f.get("holder")
        if f.get("heard") == "False":
            return f"{holder}'s Lease lapsed: probed the wire for its address, nobody answered"
        return f"{holder}'s Lease lapsed, but {holder} still answers on the wire"
    if record.event == "peer-silent":
        return (
            f"missed {f.get('peer')}'s heartbeats for {f.get('silent_s')} s: probing its addresses"
        )
    if record.event == "node-silent":
        return (
            f"{f.get('peer')} is silent: heartbeats missed and its wire silent past its "
            "dead-man window; said once, in this agent's Lease (evidence per node)"
        )
    if record.event == "report":
        said = f"reported {f.get('state')} at epoch {f.get('epoch')}"
        if f.get("holderHeard") == "False":
            said += ", and that nobody answered (holderHeard false)"
        return said
    if record.level != "INFO":
        detail = " ".join(f"{k}={v}" for k, v in f.items() if k not in ("node", "aliasip"))
        return f"{record.level} {record.event}: {detail}"
    return None


def agent_steps(
    node: str,
    records: Iterable[AgentRecord],
    aliasip: str,
    window: tuple[float, float],
    reporters: Collection[str],
) -> list[Step]:
    """What ``node``'s agent did for ``aliasip`` within ``window``.

    Of the status reports only the first ``released``/``holding`` of the nodes in
    ``reporters`` (the old and new holder) are kept: the operator waits on those; the
    standbys' ``standby`` reports at every epoch are noise in a timeline."""
    since, until = window
    steps: list[Step] = []
    reported: set[str] = set()
    for record in records:
        if not since <= record.at < until or record.fields.get("aliasip", aliasip) != aliasip:
            continue
        if record.event == "report":
            state = record.fields.get("state", "")
            if node not in reporters or state not in ("released", "holding") or state in reported:
                continue
            reported.add(state)
        what = describe_record(record)
        if what is not None:
            steps.append(Step(record.at, node, what, "agent log"))
    return steps


# -- the operator's Events -------------------------------------------------------------------


def aliasip_events(items: Iterable[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    """The Events about the AliasIP ``name``, from whatever namespace holds them (an
    AliasIP is cluster-scoped; which namespace the operator records in may change)."""
    return [
        e
        for e in items
        if (e.get("involvedObject") or {}).get("kind") == "AliasIP"
        and (e.get("involvedObject") or {}).get("name") == name
    ]


def event_at(event: Mapping[str, Any]) -> float | None:
    """When the Event happened: ``eventTime`` (microseconds), else the older whole-second
    ``lastTimestamp``/``firstTimestamp``; None if it has none."""
    for key in ("eventTime", "lastTimestamp", "firstTimestamp"):
        text = event.get(key)
        if text:
            try:
                return kubetime.parse_time(str(text)).timestamp()
            except ValueError:
                continue
    return None


def event_steps(events: Iterable[Mapping[str, Any]], window: tuple[float, float]) -> list[Step]:
    """The operator's decisions within ``window``, in its own words (reason: message)."""
    since, until = window
    steps = []
    for event in events:
        at = event_at(event)
        if at is None or not since <= at < until:
            continue
        steps.append(
            Step(at, "operator", f"{event.get('reason')}: {event.get('message')}", "Event")
        )
    return steps


FAILOVER_WHY = re.compile(
    r"lost its Lease(?: at \S+)? and (?P<why>.+?)(?:[:;] |$)"
    r"|is silent: (?P<peers>.+?) since "
)


def failover_evidence(events: Iterable[Mapping[str, Any]]) -> str | None:
    """The silence evidence the operator named in its last Failover Event: after a lapsed
    Lease ("Lease expired + node1 hears nobody answering", "... + Node node2 is not
    Ready"), or the peers' evidence per node ("peers' evidence: node1, node3 hear neither
    its heartbeats nor its addresses"); None if there is none."""
    found = None
    for event in events:
        if event.get("reason") == "Failover":
            match = FAILOVER_WHY.search(str(event.get("message") or ""))
            if match and match.group("peers"):
                found = f"peers' evidence: {match.group('peers')}"
            elif match:
                found = f"Lease expired + {match.group('why')}"
    return found


# -- the client's wire -----------------------------------------------------------------------


def gratuitous_arp(frame: Frame, alias: IPv4Address) -> str | None:
    """``"request"``/``"reply"`` if ``frame`` is a received gratuitous ARP for ``alias``
    (sender IP = target IP = alias), else None."""
    arp = frame.data[14:42]
    if frame.outgoing or frame.ethertype != ETH_P_ARP or len(arp) < 28:
        return None
    if arp[14:18] != alias.packed or arp[24:28] != alias.packed:
        return None
    return "request" if arp[6:8] == b"\x00\x01" else "reply"


def first_gratuitous_arp(
    frames: Sequence[Frame], alias: IPv4Address, mac: str, since: float
) -> tuple[Frame, str] | None:
    """The first gratuitous ARP for ``alias`` from ``mac`` received at or after ``since``."""
    for frame in frames:
        if frame.at >= since and frame.src_mac == mac:
            kind = gratuitous_arp(frame, alias)
            if kind is not None:
                return frame, kind
    return None


def echo_reply_mac(frame: Frame, alias: IPv4Address) -> str | None:
    """The source MAC if ``frame`` is an ICMP echo reply from ``alias`` received by the
    client (to follow the prober live; its own report only comes at its end)."""
    data = frame.data
    if frame.outgoing or frame.ethertype != ETH_P_IP or len(data) < 34:
        return None
    ihl = (data[14] & 0x0F) * 4
    if data[23] != 1 or data[26:30] != alias.packed or len(data) < 14 + ihl + 1:
        return None
    return frame.src_mac if data[14 + ihl] == ICMP_ECHO_REPLY else None


# -- the client prober -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClientView:
    """One move as the client saw it: the last reply before its gap, the first reply from
    the new MAC, the outage between them, and the probes two MACs answered."""

    last_before: Reply | None
    first_new: Reply | None
    last_before_at: float | None  # epoch seconds the reply arrived
    first_new_at: float | None
    outage_ms: float
    lost: int
    split_brain: int


def client_view(report: ProbeReport, new_mac: str, window: tuple[float, float]) -> ClientView:
    """The move within ``window`` (probe send times) that ended at ``new_mac``.

    The outage is the prober's own gap measure (last reply before → first reply after,
    arrival times), taken at the gap that the first reply from ``new_mac`` closes; zero
    when no probe was lost. Split-brain samples are counted by send time in ``window``."""
    since, until = window

    def sent(reply: Reply) -> float:
        return report.started_at + reply.sent_ms / 1000

    def arrived(reply: Reply) -> float:
        return report.started_at + (reply.sent_ms + reply.rtt_ms) / 1000

    first: dict[int, Reply] = {}
    for reply in sorted(report.replies, key=lambda r: r.seq):
        first.setdefault(reply.seq, reply)
    ordered = list(first.values())
    sent_at = {r.seq: sent(r) for r in report.replies}
    split = sum(1 for seq in report.split_brain_samples() if since <= sent_at[seq] < until)
    new = next((r for r in ordered if r.mac == new_mac and since <= sent(r) < until), None)
    if new is None:
        return ClientView(None, None, None, None, 0.0, 0, split)
    before = next((r for r in reversed(ordered) if r.seq < new.seq), None)
    lost = new.seq - before.seq - 1 if before is not None else 0
    outage = round((arrived(new) - arrived(before)) * 1000, 1) if before and lost else 0.0
    return ClientView(
        before, new, arrived(before) if before else None, arrived(new), outage, lost, split
    )
