"""The lab's faults of the monitoring path: heartbeats lost, forged, and keys rotated.

- ``block_heartbeats(lab, node)``: the node drops every UDP datagram to the heartbeat
  port, sent or received (a blackhole policy-routing rule in its namespace; the rest of
  its traffic, ARP and the aliases, flows): its peers miss its heartbeats and it misses
  theirs, while its kernel still answers on the wire;
- ``spoof_heartbeats(lab)``: a host on the LAN (the client's namespace) sends every node
  heartbeats that claim every AliasIP at a far higher epoch, signed with a key the
  cluster does not have, with an unknown key id, and unsigned: all must be rejected and
  counted, and no holder may let go (R10 acts on authenticated heartbeats only);
- ``rotate_keys(lab, step)``: the three steps of a rotation without a gap, on the
  lab's key directory (what editing the Secret does): 1 adds a new key, 2 makes it sign,
  3 removes the old one.
"""

from __future__ import annotations

import secrets
import socket
import time
from pathlib import Path

from aliasip_lab.cluster import HEARTBEAT_KEYS_DIR, Lab, write_heartbeat_key
from aliasip_lab.lan import ip
from aliasip_lab.nsenter import netns
from aliasip_nodeagent.heartbeat import DEFAULT_PORT, Heartbeat, KeyRing, encode

SPOOF_EPOCH = 1_000_000


def block_heartbeats(lab: Lab, node: str, blocked: bool) -> str:
    """Drop every UDP datagram to the heartbeat port in the node's namespace, sent or
    received: a policy-routing rule that blackholes them (IPv4 and IPv6), ahead of the
    ``local`` table (moved from preference 0 to 200 so that the rule also sees what
    arrives for the node's own addresses)."""
    host = lab.node(node)
    ns = ["-n", host.netns]
    rule = ["ipproto", "udp", "dport", str(DEFAULT_PORT), "blackhole", "pref", str(BLOCK_PREF)]
    for family in ("-4", "-6"):
        if blocked:
            _local_rule_after_block(ns, family)
            ip(*ns, family, "rule", "add", *rule)
        else:
            while ip(*ns, family, "rule", "del", *rule, check=False).returncode == 0:
                pass
    if blocked:
        return f"{node}: heartbeats dropped (UDP {DEFAULT_PORT}, sent and received)"
    return f"{node}: heartbeats flow again"


BLOCK_PREF = 100
LOCAL_PREF = 200


def _local_rule_after_block(ns: list[str], family: str) -> None:
    shown = ip(*ns, family, "rule", "show", "pref", "0").stdout
    if "lookup local" in shown:
        ip(*ns, family, "rule", "add", "pref", str(LOCAL_PREF), "lookup", "local")
        ip(*ns, family, "rule", "del", "pref", "0")


def spoof_heartbeats(lab: Lab) -> str:
    """Forged heartbeats from the client's namespace to every node: each node is told,
    in another node's name, that every AliasIP is held at epoch ``SPOOF_EPOCH``."""
    uids = [
        str(item["metadata"]["uid"])
        for item in lab.api.call("GET", "/apis/aliasip.io/v1alpha1/aliasips").get("items", [])
    ]
    held = tuple((uid, SPOOF_EPOCH) for uid in uids)
    wrong = KeyRing({"k1": secrets.token_bytes(32)}, "k1")  # a plausible id, the wrong key
    stranger = KeyRing({"attacker": secrets.token_bytes(32)}, "attacker")
    sent = 0
    with netns(lab.lan.client.netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for target in lab.lan.nodes:
            others = [n for n in lab.lan.nodes if n.name != target.name]
            claimer = others[0].name if others else "node0"
            beat = Heartbeat(claimer, 1, 2**40, time.time(), held)
            for data in (encode(beat, wrong), encode(beat, stranger), beat.payload()):
                sock.sendto(data, (str(target.ipv4.ip), DEFAULT_PORT))
                sent += 1
    finally:
        sock.close()
    return f"{sent} forged heartbeats sent (epoch {SPOOF_EPOCH} for {len(uids)} AliasIPs)"


def rotate_keys(lab: Lab, step: int) -> str:
    """One step of a rotation on the lab's key directory (as kubelet lays the Secret out:
    one file per key id, and ``signing``)."""
    directory: Path = lab.state_dir / HEARTBEAT_KEYS_DIR
    keys = sorted(p.name for p in directory.iterdir() if p.name != "signing")
    signing = (directory / "signing").read_text().strip()
    numbered = sorted((int(k[1:]), k) for k in keys if k[1:].isdigit())
    newest = numbered[-1][1] if numbered else signing
    if step == 1:
        new = f"k{(numbered[-1][0] if numbered else 0) + 1}"
        write_heartbeat_key(directory / new)
        return f"heartbeat key {new} added (accepted by all; {signing} still signs)"
    if step == 2:
        _replace(directory / "signing", newest.encode())
        return f"heartbeat key {newest} signs now"
    if step == 3:
        removed = [k for k in keys if k != signing]
        for key in removed:
            (directory / key).unlink()
        return f"heartbeat keys removed: {', '.join(removed) or 'none'} ({signing} remains)"
    raise ValueError(f"a rotation has steps 1, 2 and 3, not {step}")


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
