"""Real ``aliasip-agent run`` processes in node namespaces against the embedded API server.

The test plays the operator (it writes ``status.activeNode``/``epoch``); the kernel is read
with iproute2, the wire from the client namespace (the 10 ms prober: which MAC answered).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from aliasip_api import kubetime
from aliasip_api.lease import HANDOVER_ANNOTATION
from aliasip_lab.capture import Capture
from aliasip_lab.nsenter import netns
from aliasip_nodeagent.silence import MUTE_SLACK_S
from tests.agent.support import ALIAS, ALIASIPS, Cluster
from tests.api.support import eventually
from tests.netns.test_observer import observe


def _ping(lab: Cluster) -> None:
    lab.lan.run(lab.lan.client, "ping", "-c", "1", "-W", "1", ALIAS, check=False, timeout=5)


def _held_by_node1(lab: Cluster) -> None:
    lab.create_aliasip()
    lab.set_active("node1", 1)
    lab.start_agent("node1")
    # node2 starts once node1's Lease exists: a standby rightly probes for a holder that
    # has no Lease at all, and tests below rely on node2 having probed nothing yet.
    eventually(lambda: lab.lease("node1") is not None, timeout=10)
    lab.start_agent("node2")
    lab.wait_holds("node1", True)
    lab.wait_view("node1", "holding", 1)


def test_holder_standby_lease_and_planned_switchover(lab: Cluster) -> None:
    node1, node2 = lab.lan.node("node1"), lab.lan.node("node2")
    _held_by_node1(lab)
    assert lab.wait_view("node1", "holding", 1)["interface"] == "eth1"
    lab.wait_view("node2", "standby", 1)
    assert not lab.holds("node2")
    _ping(lab)
    assert lab.lan.neighbour_mac(lab.lan.client, ALIAS) == node1.mac

    # The Lease is renewed about once a second, by this node, for 3 s.
    first = lab.lease("node1")
    assert first is not None
    assert first["spec"]["holderIdentity"] == "node1"
    assert first["spec"]["leaseDurationSeconds"] == 3
    eventually(
        lambda: (lab.lease("node1") or {})["spec"]["renewTime"] != first["spec"]["renewTime"],
        timeout=3,
    )

    # Release, then assign: node1 deletes and reports released before node2 adds.
    prober = lab.start_prober(4.0)
    lab.wait_probing("node1")
    lab.set_active(None, 2)
    lab.wait_view("node1", "released", 2)
    assert not lab.holds("node1") and not lab.holds("node2")
    lab.set_active("node2", 3)
    lab.wait_view("node2", "holding", 3)
    assert lab.holds("node2") and not lab.holds("node1")
    lab.wait_view("node1", "released", 3)
    report = lab.prober_report(prober)
    assert report["split_brain_samples"] == []
    segments = report["segments"]
    assert [s["mac"] for s in segments] == [node1.mac, node2.mac]
    assert segments[0]["last_ms"] < segments[1]["first_ms"]  # the wire saw node1 stop first

    # An older epoch naming node1 is ignored (fencing token): node1 does not take it.
    lab.set_active("node1", 2)
    eventually(lambda: "event=stale-ignored node=node1 aliasip=web epoch=2" in lab.log("node1"))
    assert not lab.holds("node1") and lab.holds("node2")


def test_sigterm_hands_over_and_the_next_agent_adopts_without_a_blip(lab: Cluster) -> None:
    """A graceful stop (a roll-out) is no failover: the Lease announces the handover, the
    kernel keeps the alias meanwhile, and the next agent adopts it and takes the handover
    back (docs/design.md R9)."""
    node1 = lab.lan.node("node1")
    _held_by_node1(lab)
    _ping(lab)
    prober = lab.start_prober(4.0)
    lab.wait_probing("node1")
    assert lab.stop_agent("node1", signal.SIGTERM) == 0
    assert lab.holds("node1")
    lease = lab.lease("node1")
    assert lease is not None
    until = kubetime.parse_time(lease["metadata"]["annotations"][HANDOVER_ANNOTATION])
    renewed = kubetime.parse_time(lease["spec"]["renewTime"])
    assert timedelta(seconds=14) <= until - renewed <= timedelta(seconds=16)  # --handover 15
    assert 10 <= _lifetime_s(lab, "node1") <= 15
    time.sleep(1.5)  # past the shipped 1 s lifetime: the handover keeps it
    assert lab.holds("node1")
    lab.start_agent("node1")
    eventually(lambda: lab.log("node1").count("event=lease-acquired") == 2, timeout=10)
    eventually(lambda: _lifetime_s(lab, "node1") <= 1, timeout=5)  # the new agent's again
    eventually(
        lambda: (
            HANDOVER_ANNOTATION
            not in ((lab.lease("node1") or {}).get("metadata") or {}).get("annotations", {})
        ),
        timeout=5,
    )
    report = lab.prober_report(prober)
    assert report["split_brain_samples"] == []
    assert report["gaps"] == [], report["gaps"]
    assert {s["mac"] for s in report["segments"]} == {node1.mac}
    assert "event=release" not in lab.log("node1")
    assert "event=hold " not in lab.log("node1").split("event=start")[-1]  # adopted, not re-added


def test_a_killed_agents_alias_is_muted_at_once_and_its_silence_counts_after_the_window(
    lab: Cluster,
) -> None:
    """The dead-man switch, both parts (docs/design.md R9): nobody refreshes a SIGKILLed
    agent's nftables elements, so its kernel stops answering for the alias within the
    mute window it advertised (200 ms as shipped), asked on the wire by broadcast
    requests; the address itself leaves with its lifetime (1 s + at most 1 s); a standby
    reports the silence only once it has lasted the holder's window (plus timer slack)."""
    _held_by_node1(lab)
    lab.wait_view("node2", "standby", 1)
    assert _lifetime_s(lab, "node1") <= 1
    advertised = ((lab.lease("node1") or {}).get("metadata") or {}).get("annotations", {})
    assert advertised.get("aliasip.io/mute-window-ms") == "200"
    assert observe(lab.lan, ALIAS, seconds=0.3)["aliases"][ALIAS]["answered"] > 0
    killed = time.monotonic()
    lab.stop_agent("node1", signal.SIGKILL)
    time.sleep(0.2 + 0.05)  # the window, and the kernel's tick
    muted_after = time.monotonic() - killed
    seen = observe(lab.lan, ALIAS, seconds=0.3)["aliases"][ALIAS]
    if lab.holds("node1"):  # still in the kernel (its lifetime runs), but mute
        assert seen["answered"] == 0, (muted_after, seen)
    lab.wait_holds("node1", False, timeout=5)
    assert time.monotonic() - killed <= 2.0 + 0.3  # the lifetime's window (+ polling)

    def silent_report() -> dict[str, Any] | None:
        view = lab.view("node2")
        return view if view.get("holderHeard") is False else None

    view = eventually(silent_report, timeout=10, interval=0.05)
    first = _log_field(lab.log("node2"), "holder-silent", "since")
    # Silent for the window node1 advertised (200 ms) and the timer slack, at least.
    window = timedelta(seconds=0.2 + MUTE_SLACK_S)
    assert kubetime.parse_time(view["observedAt"]) - first >= window
    assert not lab.holds("node2")  # the agent reports; only the operator moves the alias


def test_cut_off_from_the_api_the_holder_keeps_serving(lab: Cluster) -> None:
    """docs/design.md: a holder cut off from the API but not from the LAN keeps serving."""
    node1 = lab.lan.node("node1")
    _held_by_node1(lab)
    prober = lab.start_prober(7.0)
    lab.wait_probing("node1")
    lab.lan.set_management_link(node1, False)
    eventually(lambda: "event=api-lost" in lab.log("node1"), timeout=6)
    time.sleep(1.5)  # a guard pass or more: nobody else answers, nothing is deleted
    assert lab.holds("node1")
    lab.lan.set_management_link(node1, True)
    lab.wait_view("node1", "holding", 1)
    report = lab.prober_report(prober)
    assert {s["mac"] for s in report["segments"]} == {node1.mac}
    assert [g for g in report["gaps"] if g["outage_ms"] > 100] == [], report["gaps"]
    assert "event=release" not in lab.log("node1")


def _switch_port(lab: Cluster, node: str, forwarding: bool) -> None:
    """Stop (or resume) the switch forwarding ``node``'s frames without dropping its
    carrier: a LAN partition the node's kernel cannot see (a dead uplink, a VLAN error)."""
    state = "3" if forwarding else "0"  # STP port states: 3 forwarding, 0 disabled
    argv = ["bridge", "-n", lab.lan.switch_ns, "link", "set", "dev", f"p-{node}", "state", state]
    subprocess.run(argv, check=True, capture_output=True, timeout=10)


def test_cut_off_holder_deletes_an_alias_another_node_answers_for(lab: Cluster) -> None:
    """Cut off from the API and, for a while, from the LAN *with its carrier up* (so the
    link events cannot tell): the operator moved the alias. Back on the LAN (the API still
    unreachable), the old holder hears the new one on the wire and deletes its copy."""
    node1, node2 = lab.lan.node("node1"), lab.lan.node("node2")
    _held_by_node1(lab)
    lab.lan.set_management_link(node1, False)
    eventually(lambda: "event=api-lost" in lab.log("node1"), timeout=6)
    _switch_port(lab, "node1", forwarding=False)
    lab.set_active("node2", 2)  # what the operator does once node1 is silent
    lab.wait_view("node2", "holding", 2)
    assert lab.holds("node1")  # unreachable; its copy answers nobody
    _switch_port(lab, "node1", forwarding=True)
    lab.wait_holds("node1", False, timeout=5)
    # Deleted by whichever hears node2 first: the guard's probe (node2 answers it) or the
    # claim listener (node2's announcement is a claim, and a cut-off holder never defends).
    releases = [line for line in lab.log("node1").splitlines() if "event=release " in line]
    assert any(
        "answers for it while this node is cut off from the API" in line
        or f"{node2.mac} claims {ALIAS} on eth1 while this node is cut off from the API" in line
        for line in releases
    ), releases
    assert lab.holds("node2")
    lab.lan.set_management_link(node1, True)
    eventually(lambda: lab.view("node1").get("epoch") == 2, timeout=10)
    assert lab.view("node1")["state"] in ("standby", "released"), lab.view("node1")
    assert not lab.holds("node1") and lab.holds("node2")


def test_carrier_loss_deletes_at_once_even_cut_off_and_nothing_returns_unprobed(
    lab: Cluster,
) -> None:
    """Issue 10, failure 2: node1 holds, is cut off from the API, then loses its cable;
    the operator moves the alias to node2. Cut off, node1 runs no reconcile pass, so only
    the link event can delete its copy: it must be gone before the cable returns, and
    after the cable and the API return node1 adds nothing (node2 holds at a newer epoch)."""
    node1 = lab.lan.node("node1")
    _held_by_node1(lab)
    lab.lan.set_management_link(node1, False)
    eventually(lambda: "event=api-lost" in lab.log("node1"), timeout=6)
    lab.lan.set_link(node1, False)
    lab.wait_holds("node1", False, timeout=3)
    assert 'reason="carrier lost"' in lab.log("node1") and "fenced=True" in lab.log("node1")
    lab.set_active("node2", 2)
    lab.wait_view("node2", "holding", 2)
    lab.lan.set_link(node1, True)
    time.sleep(1.5)  # link-up wakes a pass (none while cut off), guard passes run
    assert not lab.holds("node1")
    lab.lan.set_management_link(node1, True)
    eventually(lambda: lab.view("node1").get("epoch") == 2, timeout=10)
    assert lab.view("node1")["state"] in ("standby", "released"), lab.view("node1")
    assert not lab.holds("node1") and lab.holds("node2")
    after_start = lab.log("node1").split("event=start")[-1]
    assert after_start.count("event=hold ") == 1  # the first hold only, at epoch 1


def test_a_planned_move_by_direct_handoff_before_the_api_round_trip(lab: Cluster) -> None:
    """R11: in the release step naming node2 the successor, node1 deletes and tells node2
    over the monitoring path; node2 adds at that epoch at once, without a probe, while the
    status still names no node (this test, playing the operator, never assigns it until
    it checked). The wire never hears two MACs, and node1 stops answering first."""
    node1, node2 = lab.lan.node("node1"), lab.lan.node("node2")
    _held_by_node1(lab)
    lab.wait_view("node2", "standby", 1)
    eventually(lambda: "event=peer-heard" in lab.log("node2"), timeout=5)
    prober = lab.start_prober(4.0)
    lab.wait_probing("node1")
    lab.set_release_step("node1", "node2", 2)
    lab.wait_view("node2", "holding", 2)
    now = lab.get()["status"]
    assert (now.get("activeNode"), now["epoch"]) == (None, 2)  # nobody assigned: a handoff
    assert lab.holds("node2") and not lab.holds("node1")
    assert "event=handoff-ready node=node2 aliasip=web epoch=2 peer=node1" in lab.log("node2")
    assert "event=handoff-told node=node1 aliasip=web epoch=2 peer=node2" in lab.log("node1")
    assert "event=handoff-taken node=node2 aliasip=web epoch=2 peer=node1" in lab.log("node2")
    assert 'epoch=2 probe="skipped: the old holder confirmed"' in lab.log("node2")
    # The assignment that follows finds node2 holding: nothing is added again.
    lab.set_active("node2", 3)
    lab.wait_view("node2", "holding", 3)
    assert lab.log("node2").count("event=hold ") == 1
    report = lab.prober_report(prober)
    assert report["split_brain_samples"] == []
    segments = report["segments"]
    assert [s["mac"] for s in segments] == [node1.mac, node2.mac]
    assert segments[0]["last_ms"] < segments[1]["first_ms"]


def test_a_handoff_for_a_release_step_naming_another_node_is_not_taken(lab: Cluster) -> None:
    """node1 lets go in a release step that names a node which does not exist: it cannot
    tell it (no address), and node2, not named, adds nothing."""
    _held_by_node1(lab)
    lab.wait_view("node2", "standby", 1)
    lab.set_release_step("node1", "node9", 2)
    lab.wait_view("node1", "released", 2)
    lab.wait_view("node2", "standby", 2)
    assert not lab.holds("node1") and not lab.holds("node2")
    assert "event=handoff-not-told node=node1 aliasip=web epoch=2 peer=node9" in lab.log("node1")
    assert "handoff-taken" not in lab.log("node2")


def test_an_agent_started_on_a_dead_link_drops_what_it_finds_there(lab: Cluster) -> None:
    """Chaos seed 2: node1's agent dies holding the alias; node1 is cut from the API and
    its cable; the alias fails over; a new agent starts while both are still cut. It hears
    no link notification (the link went down before it started), yet must delete the
    alias at once: it would answer next to node2 the moment the cable returns."""
    node1 = lab.lan.node("node1")
    _held_by_node1(lab)
    lab.stop_agent("node1", signal.SIGKILL)
    lab.lan.set_management_link(node1, False)
    lab.lan.set_link(node1, False)
    assert lab.holds("node1")  # the dead agent's alias stays in the kernel
    lab.start_agent("node1")
    lab.wait_holds("node1", False, timeout=5)
    # Started after the dead agent's mute window: muted, so never adopted (R9); within
    # it, the dead link is what deletes it. (Logged right after the kernel call returns.)
    # On a loaded host the new agent may start after the alias's own kernel lifetime (1 s
    # as shipped) ran out: then there is nothing to drop, and it must not add it back.
    reasons = (
        'reason="muted before this agent started (not adopted)"',
        'reason="no carrier at start"',
    )
    eventually(lambda: lab.log("node1").count("event=start ") == 2, timeout=5)
    time.sleep(0.5)  # its first pass (adopt, carrier check) is done well within this
    log = lab.log("node1").split("event=start ")[-1]  # the new agent's lines only
    if not any(reason in log for reason in reasons):
        assert "event=hold " not in log and not lab.holds("node1"), log


def test_link_loss_is_reported_as_an_error(lab: Cluster) -> None:
    node1 = lab.lan.node("node1")
    _held_by_node1(lab)
    lab.lan.run(node1, "ip", "link", "set", "eth1", "down")
    view = lab.wait_view("node1", "error", 1)
    assert "eth1" in view["message"]
    assert not lab.holds("node1")


def test_standby_hears_a_handed_over_holder_then_calls_it_silent_only_after_the_handover(
    lab: Cluster,
) -> None:
    """Agent gone, kernel alive (a handover): heard, not a failover. Then the node's cable
    goes: silent, but reported only once the handover the Lease announced is over (plus the
    expiry window), when the node's kernel has let the alias go."""
    node1 = lab.lan.node("node1")
    _held_by_node1(lab)
    lab.wait_view("node2", "standby", 1)
    assert "holderHeard" not in lab.view("node2")  # nothing probed while the Lease is valid
    lab.stop_agent("node1", signal.SIGTERM)
    lease = lab.lease("node1")
    assert lease is not None
    spec = lease["spec"]
    expiry = kubetime.parse_time(spec["renewTime"]) + timedelta(
        seconds=spec["leaseDurationSeconds"]
    )
    until = kubetime.parse_time(lease["metadata"]["annotations"][HANDOVER_ANNOTATION])

    def observed(heard: bool) -> dict[str, Any] | None:
        view = lab.view("node2")
        at = view.get("observedAt")
        if view.get("holderHeard") is heard and at and kubetime.parse_time(at) >= expiry:
            return view
        return None

    eventually(lambda: observed(True), timeout=10, interval=0.1)
    assert lab.holds("node1") and not lab.holds("node2")
    assert lab.view("node2")["state"] == "standby"

    lab.lan.set_link(node1, up=False)
    view = eventually(lambda: observed(False), timeout=15, interval=0.1)
    # The handover, then the mute window node1 advertised (200 ms) and the timer slack.
    assert kubetime.parse_time(view["observedAt"]) >= until + timedelta(seconds=0.2 + MUTE_SLACK_S)
    lab.wait_holds("node1", False, timeout=3)  # the kernel lets it go (lifetime's check)
    assert not lab.holds("node2")  # the agent reports; only the operator moves the alias


def _lifetime_s(lab: Cluster, node: str) -> int:
    """The kernel lifetime left (valid_lft) of the alias on ``node``, in seconds."""
    host = lab.lan.node(node)
    out = lab.lan.run(host, "ip", "-o", "addr", "show", "dev", host.ifname).stdout
    for line in out.splitlines():
        if f" {ALIAS}/" in line:
            return int(line.split("valid_lft ")[1].split("sec")[0])
    raise AssertionError(f"{ALIAS} not on {node}: {out}")


def _log_field(log: str, event: str, key: str) -> datetime:
    """``key`` of the first ``event`` line of an agent log, as a time."""
    for line in log.splitlines():
        if f"event={event} " in line:
            return kubetime.parse_time(line.split(f" {key}=")[1].split()[0])
    raise AssertionError(f"no {event} in the log")


def test_periodic_reconcile_re_adds_an_alias_deleted_behind_its_back(lab: Cluster) -> None:
    """Level-triggered: the kernel lost the alias without any API event; the resync restores it."""
    node1 = lab.lan.node("node1")
    _held_by_node1(lab)
    lab.lan.run(node1, "ip", "addr", "del", f"{ALIAS}/24", "dev", "eth1")
    assert not lab.holds("node1")
    lab.wait_holds("node1", True, timeout=10)  # resync every 1 s in these tests
    shown = lab.lan.run(node1, "ip", "-o", "addr", "show", "dev", "eth1").stdout
    assert any(ALIAS in line and "eth1:aip" in line for line in shown.splitlines())
    assert not lab.holds("node2")


def test_start_removes_its_own_marks_when_the_status_names_another_node(lab: Cluster) -> None:
    """An address node2 marked earlier (a previous life) goes when the status says node1."""
    node2 = lab.lan.node("node2")
    lab.create_aliasip()
    lab.set_active("node1", 1)
    lab.start_agent("node1")
    lab.wait_holds("node1", True)
    # node2 marked the alias in a previous life (the CLI marks exactly as the daemon does).
    done = lab.lan.run(
        node2, sys.executable, "-m", "aliasip_nodeagent", "apply", ALIAS,
        "--no-probe", "--announce-count", "1", check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert lab.holds("node2")
    # A foreign address on node2 (not aliasip's) must survive the cleanup.
    lab.lan.run(node2, "ip", "addr", "add", "198.18.0.60/24", "dev", "eth1")
    lab.start_agent("node2")
    lab.wait_holds("node2", False)
    lab.wait_view("node2", "released", 1)  # it let go of what it held at this epoch
    assert 'reason="status names node1"' in lab.log("node2")
    assert lab.holds("node2", "198.18.0.60")
    assert lab.holds("node1")


def _announcements(lab: Cluster, node: str, seconds: float) -> int:
    """Gratuitous ARPs for the alias that ``node`` sends within ``seconds`` (its wire)."""
    host = lab.lan.node(node)
    sender = bytes(int(part) for part in ALIAS.split("."))
    with netns(host.netns):
        capture = Capture(host.ifname)
    with capture:
        time.sleep(seconds)
        frames = capture.frames()
    return sum(
        1 for f in frames if f.outgoing and f.ethertype == 0x0806 and f.data[28:32] == sender
    )


def test_a_held_alias_is_re_announced_every_refresh_not_every_pass(lab: Cluster) -> None:
    """Full passes run every second here; with the default refresh (30 s) they send
    nothing for an alias held unchanged; with a 1 s refresh a round each second or so."""
    _held_by_node1(lab)
    time.sleep(1.0)  # the placement's own rounds (3 at 200 ms, support.py) are over
    assert _announcements(lab, "node1", 3.5) == 0
    lab.stop_agent("node1", signal.SIGTERM)
    lab.start_agent("node1", "--announce-refresh", "1")
    lab.wait_view("node1", "holding", 1)
    # A round is a request and a reply; at most one round per pass (a pass a second).
    assert 2 <= _announcements(lab, "node1", 3.5) <= 10
    assert lab.holds("node1")


def test_the_monitoring_path_links_holder_and_standby_and_tells_a_silence_once(
    lab: Cluster,
) -> None:
    """With the shipped keys both agents advertise their service address in their Lease,
    heartbeat each other over the service LAN (not the management network) and the
    standby, hearing the holder, never probes it; a frozen holder is told silent once
    (not once per AliasIP), and its silence then starts the wire probe."""
    node1, node2 = lab.lan.node("node1"), lab.lan.node("node2")
    _held_by_node1(lab)

    def advertised(node: str) -> str | None:
        lease = lab.lease(node) or {}
        annotations = (lease.get("metadata") or {}).get("annotations") or {}
        return annotations.get("aliasip.io/monitor")

    eventually(lambda: advertised("node1") == str(node1.ipv4), timeout=10)
    eventually(lambda: advertised("node2") == str(node2.ipv4), timeout=10)
    with netns(node2.netns):
        capture = Capture(node2.ifname)
    with capture:
        frames = capture.wait_until(lambda got: len(got) > 20, timeout_s=3.0)
    udp = [f for f in frames if f.ethertype == 0x0800 and f.data[23] == 17]
    ports = {int.from_bytes(f.data[36:38], "big") for f in udp}  # UDP destination port
    assert 7947 in ports, "no heartbeat on the service LAN"
    assert "holder-probed" not in lab.log("node2") and "peer-silent" not in lab.log("node2")
    proc = lab.agents["node1"]
    proc.send_signal(signal.SIGSTOP)
    try:
        eventually(lambda: "event=peer-silent" in lab.log("node2"), timeout=5)
        eventually(lambda: "event=holder-silent" in lab.log("node2"), timeout=5)
    finally:
        proc.send_signal(signal.SIGCONT)
    assert lab.log("node2").count("event=peer-silent") == 1
    eventually(lambda: lab.log("node2").count("event=peer-heard") == 2, timeout=5)


def test_a_release_asked_after_the_heal_is_not_held_up_by_a_late_watch_stream(
    lab: Cluster,
) -> None:
    """Issue 10, chaos seed 2 (session 6): the AliasIP watch survives a partition intact
    but late: an event the API server sent into the cut stays in TCP's retransmission
    back-off (0.2, 0.4, 0.8 ... s) and the stream resumes seconds after the heal, so a
    release asked right after the agent unfenced waited for it (2.02 s over the 2 s bound).
    An agent that unfences restarts its watches on new connections (R1): the release is
    heard at once."""
    node1 = lab.lan.node("node1")
    _held_by_node1(lab)
    lab.lan.set_management_link(node1, False)
    # An event into the cut: the API server's copy now waits for TCP to retransmit it.
    reply = lab.api.patch(f"{ALIASIPS}/web", {"metadata": {"annotations": {"touched": "1"}}})
    assert reply.status == 200, reply.body
    eventually(lambda: "event=api-lost" in lab.log("node1"), timeout=6)
    time.sleep(7.0)  # the back-off is now past 3 s: its next retransmission is ~6 s away
    assert lab.holds("node1")  # a cut-off holder keeps serving
    lab.lan.set_management_link(node1, True)
    eventually(lambda: "event=unfenced" in lab.log("node1"), timeout=10)
    asked = time.monotonic()
    lab.set_active(None, 2)  # the operator asks node1 to let go (a move, a cordon)
    lab.wait_holds("node1", False, timeout=8)
    took = time.monotonic() - asked
    assert took < 2.0, f"released {took:.2f} s after it was asked (the stray-alias bound: 2 s)"
    lab.wait_view("node1", "released", 2)
