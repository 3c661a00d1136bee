"""The demo's timeline arithmetic and parsing, on made-up records (no lab needed).

What the demo prints is only as good as these readings: an agent log line read in the
wrong time zone, a reply counted for the wrong move, or a gratuitous ARP missed would
give a wrong timeline that nobody can check by eye.
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import IPv4Address

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from aliasip_lab.capture import Frame
from aliasip_lab.prober import ProbeReport, Reply
from aliasip_lab.timeline import (
    AgentRecord,
    Step,
    agent_steps,
    aliasip_events,
    client_view,
    echo_reply_mac,
    event_at,
    event_steps,
    failover_evidence,
    first_gratuitous_arp,
    parse_agent_line,
    render,
)

ALIAS = IPv4Address("198.18.0.50")
N1, N2, CLIENT = "02:a1:00:00:00:0b", "02:a1:00:00:00:0c", "02:a1:00:00:00:64"


def test_an_agent_line_is_read_in_local_time_with_quoted_values() -> None:
    line = (
        "time=2026-11-24 21:22:02,948 level=INFO event=release node=node1 aliasip=demo "
        'address=198.18.0.50/24 epoch=2 reason="status names no node" changed=True'
    )
    record = parse_agent_line(line)
    assert record is not None
    assert record.at == datetime(2026, 11, 24, 21, 22, 2, 948000).timestamp()
    assert record.level == "INFO"
    assert record.event == "release"
    assert record.fields["reason"] == "status names no node"
    assert record.fields["epoch"] == "2"


def test_lines_that_are_not_agent_records_are_skipped() -> None:
    assert parse_agent_line("Traceback (most recent call last):") is None
    assert parse_agent_line("time=yesterday level=INFO event=start") is None
    assert parse_agent_line("time=2026-11-24 21:22:02,948 level=INFO no event here") is None


def record(at: float, event: str, **fields: str) -> AgentRecord:
    return AgentRecord(at, "INFO", event, {"aliasip": "demo", **fields})


def test_agent_steps_keep_the_story_and_drop_the_routine() -> None:
    records = [
        record(0.5, "release", address="198.18.0.50/24", epoch="2"),  # before the window
        record(1.0, "release", address="198.18.0.50/24", epoch="2", reason="status names no node"),
        record(1.1, "report", state="released", epoch="2"),
        record(1.2, "report", state="released", epoch="3"),  # the same state again: dropped
        record(1.3, "report", state="standby", epoch="3"),  # routine: dropped
        record(1.4, "hold", address="198.18.0.50/24", interface="eth1", epoch="4", probe_ms="30"),
        record(1.5, "release", aliasip="other", address="198.18.0.60/24", epoch="1"),
        record(9.0, "hold", address="198.18.0.50/24", interface="eth1", epoch="5"),  # after
    ]
    steps = agent_steps("node1", records, "demo", (1.0, 5.0), reporters={"node1", "node2"})
    assert [s.at for s in steps] == [1.0, 1.1, 1.4]
    assert steps[0].what == "deleted 198.18.0.50/24 (epoch 2, status names no node)"
    assert steps[1].what == "reported released at epoch 2"
    assert "probed the wire 30 ms: nobody answered; added 198.18.0.50/24 on eth1" in steps[2].what
    assert {s.who for s in steps} == {"node1"}
    # A standby's reports are not part of the story; its probe of the wire is.
    standby = [
        record(2.0, "report", state="released", epoch="3"),
        record(2.1, "holder-probed", holder="node2", heard="False"),
    ]
    steps = agent_steps("node3", standby, "demo", (1.0, 5.0), reporters={"node1", "node2"})
    assert [s.what for s in steps] == [
        "node2's Lease lapsed: probed the wire for its address, nobody answered"
    ]


def test_events_are_found_in_any_namespace_and_timed_to_the_microsecond() -> None:
    items = [
        {
            "metadata": {"namespace": "aliasip-system"},
            "involvedObject": {"kind": "AliasIP", "name": "demo"},
            "reason": "Switchover",
            "message": "node2 takes the addresses at epoch 3",
            "eventTime": "2026-11-24T21:22:02.972733Z",
        },
        {
            "metadata": {"namespace": "default"},
            "involvedObject": {"kind": "AliasIP", "name": "demo"},
            "reason": "Held",
            "message": "node2 holds the addresses at epoch 3",
            "lastTimestamp": "2026-11-24T21:22:03Z",
        },
        {"involvedObject": {"kind": "AliasIP", "name": "other"}, "reason": "Held"},
        {"involvedObject": {"kind": "Pod", "name": "demo"}, "reason": "Started"},
    ]
    events = aliasip_events(items, "demo")
    assert [e["reason"] for e in events] == ["Switchover", "Held"]
    at = event_at(events[0])
    assert at is not None
    assert abs(at - 1795555322.972733) < 1e-6
    steps = event_steps(events, (at, at + 10))
    assert [s.what for s in steps] == [
        "Switchover: node2 takes the addresses at epoch 3",
        "Held: node2 holds the addresses at epoch 3",
    ]
    assert {s.source for s in steps} == {"Event"}


def test_the_failover_evidence_is_the_operators_own_words() -> None:
    events = [
        {"reason": "Held", "message": "node1 holds the addresses at epoch 1"},
        {
            "reason": "Failover",
            "message": "the agent on node2 lost its Lease at 2026-11-24T21:22:19Z and node1 "
            "hears nobody answering: node1 takes over at epoch 4",
        },
    ]
    assert failover_evidence(events) == "Lease expired + node1 hears nobody answering"
    not_ready = [
        {
            "reason": "Failover",
            "message": "the agent on node2 lost its Lease and Node node2 is not Ready "
            "(Ready=False); node3 takes over once node1 let go",
        }
    ]
    assert failover_evidence(not_ready) == "Lease expired + Node node2 is not Ready (Ready=False)"
    peers = [
        {
            "reason": "Failover",
            "message": "node2 is silent: node1, node3 hear neither its heartbeats nor its "
            "addresses since 2026-12-07T15:08:01Z: node1 takes over at epoch 4",
        }
    ]
    assert failover_evidence(peers) == (
        "peers' evidence: node1, node3 hear neither its heartbeats nor its addresses"
    )
    assert failover_evidence(events[:1]) is None


def frame(at: float, packet: Ether, outgoing: bool = False) -> Frame:
    return Frame(at, bytes(packet), outgoing)


def garp(mac: str, op: int) -> Ether:
    return Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=op, hwsrc=mac, psrc=str(ALIAS), hwdst="00:00:00:00:00:00", pdst=str(ALIAS)
    )


def test_the_first_gratuitous_arp_of_the_new_node_after_the_move() -> None:
    frames = [
        frame(1.0, garp(N2, 1)),  # before the move
        frame(2.0, Ether(src=N2) / ARP(op=1, psrc="198.18.0.12", pdst=str(ALIAS))),  # a query
        frame(2.1, garp(N1, 1)),  # another node
        frame(2.2, garp(N2, 2), outgoing=True),  # sent by the client itself
        frame(2.3, garp(N2, 2)),
        frame(2.4, garp(N2, 1)),
    ]
    found = first_gratuitous_arp(frames, ALIAS, N2, since=1.5)
    assert found is not None
    assert (found[0].at, found[1]) == (2.3, "reply")
    assert first_gratuitous_arp(frames, ALIAS, "02:00:00:00:00:99", since=0) is None


def test_echo_replies_from_the_alias_name_the_answering_mac() -> None:
    reply = Ether(src=N2, dst=CLIENT) / IP(src=str(ALIAS), dst="198.18.0.100") / ICMP(type=0)
    request = Ether(src=CLIENT, dst=N2) / IP(src="198.18.0.100", dst=str(ALIAS)) / ICMP(type=8)
    other = Ether(src=N1, dst=CLIENT) / IP(src="198.18.0.11", dst="198.18.0.100") / ICMP(type=0)
    assert echo_reply_mac(frame(1.0, reply), ALIAS) == N2
    assert echo_reply_mac(frame(1.0, request, outgoing=True), ALIAS) is None
    assert echo_reply_mac(frame(1.0, other), ALIAS) is None
    assert echo_reply_mac(frame(1.0, garp(N2, 1)), ALIAS) is None


def probe_report(*replies: tuple[int, str]) -> ProbeReport:
    """Probes every 10 ms from epoch second 100, each answered after 1 ms."""
    report = ProbeReport("198.18.0.50", 10.0, started_at=100.0, sent=100)
    report.replies = [Reply(seq, seq * 10.0, 1.0, mac) for seq, mac in replies]
    return report


def test_the_client_view_of_a_move_is_the_gap_its_first_new_reply_closes() -> None:
    report = probe_report(
        *((s, N1) for s in range(0, 10)),
        *((s, N2) for s in range(15, 30)),  # move 1: probes 10..14 lost
        (30, N1),  # an unrelated later move back
    )
    view = client_view(report, N2, (100.05, 100.25))
    assert view.first_new is not None and view.first_new.seq == 15
    assert view.last_before is not None and view.last_before.seq == 9
    assert view.lost == 5
    assert view.outage_ms == 60.0  # arrival of 9 (91 ms) to arrival of 15 (151 ms)
    assert view.first_new_at == 100.151
    assert view.split_brain == 0


def test_a_seamless_move_has_no_outage_and_split_brain_is_counted_per_move() -> None:
    report = probe_report(
        *((s, N1) for s in range(0, 10)),
        (10, N1),
        (10, N2),  # answered by both: split brain, in the window
        *((s, N2) for s in range(11, 20)),
    )
    view = client_view(report, N2, (100.0, 101.0))
    assert (view.lost, view.outage_ms, view.split_brain) == (0, 0.0, 1)
    assert client_view(report, N2, (100.15, 101.0)).split_brain == 0
    assert client_view(report, "02:00:00:00:00:99", (100.0, 101.0)).first_new is None


def test_render_sorts_by_time_and_aligns_wrapped_text() -> None:
    t0 = 1000.0
    rows = render(
        [
            Step(t0 + 0.25, "node1", "second " + "long words " * 12, "agent log"),
            Step(t0 - 0.5, "API", "before the move", "Lease"),
            Step(t0, "demo", "the trigger", "API"),
        ],
        t0,
        width=90,
    )
    assert rows[0].split() == ["wall", "clock", "+ms", "who", "witness", "what"]
    assert "-500.0" in rows[1] and "before the move" in rows[1]
    assert "+0.0" in rows[2] and "the trigger" in rows[2]
    assert "+250.0" in rows[3]
    what_column = rows[0].index("what")
    assert rows[3].index("second") == what_column
    assert all(r[:what_column].strip() == "" for r in rows[4:])
    assert all(len(r) <= 90 for r in rows)
