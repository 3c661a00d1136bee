"""The lab's faults of the monitoring path: heartbeats lost, forged, and keys rotated.

- ``block_heartbeats(lab, node)``: the node's service link drops every UDP datagram to or
  from the heartbeat port (a tc ``clsact`` filter in the node's namespace; the rest of
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
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from aliasip_lab.lan import ip
from aliasip_lab.nsenter import netns
from aliasip_nodeagent.heartbeat import DEFAULT_PORT, Heartbeat, KeyRing, encode

if TYPE_CHECKING:
    from aliasip_lab.cluster import Lab

SPOOF_EPOCH = 1_000_000


def block_heartbeats(lab: Lab, node: str, blocked: bool) -> str:
    host = lab.node(node)
    if not blocked:
        ip("-n", host.netns, "link", "show", host.ifname)  # the node exists
        _tc(host.netns, "qdisc", "del", "dev", host.ifname, "clsact", check=False)
        return f"{node}: heartbeats flow again"
    _tc(host.netns, "qdisc", "replace", "dev", host.ifname, "clsact")
    for direction, field in (("ingress", "dport"), ("egress", "sport")):
        _tc(
            host.netns, "filter", "add", "dev", host.ifname, direction, "protocol", "ip",
            "u32", "match", "ip", field, str(DEFAULT_PORT), "0xffff", "action", "drop",
        )  # fmt: skip
    return f"{node}: heartbeats dropped on {host.ifname} (UDP {DEFAULT_PORT}, both ways)"


def _tc(namespace: str, *args: str, check: bool = True) -> None:
    done = subprocess.run(
        ["tc", "-n", namespace, *args], capture_output=True, text=True, timeout=10
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"tc {' '.join(args)}: {done.stderr.strip()}")


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
            beat = Heartbeat(claimer, 1, 2**40, _now(), held)
            for data in (encode(beat, wrong), encode(beat, stranger), beat.payload()):
                sock.sendto(data, (str(target.ipv4.ip), DEFAULT_PORT))
                sent += 1
    finally:
        sock.close()
    return f"{sent} forged heartbeats sent (epoch {SPOOF_EPOCH} for {len(uids)} AliasIPs)"


def _now() -> float:
    return time.time()


def rotate_keys(lab: Lab, step: int) -> str:
    """One step of a rotation on the lab's key directory (as kubelet lays the Secret out:
    one file per key id, and ``signing``)."""
    from aliasip_lab.cluster import HEARTBEAT_KEYS_DIR

    directory: Path = lab.state_dir / HEARTBEAT_KEYS_DIR
    keys = sorted(p.name for p in directory.iterdir() if p.name != "signing")
    signing = (directory / "signing").read_text().strip()
    numbered = sorted((int(k[1:]), k) for k in keys if k[1:].isdigit())
    newest = numbered[-1][1] if numbered else signing
    if step == 1:
        new = f"k{(numbered[-1][0] if numbered else 0) + 1}"
        path = directory / new
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
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
