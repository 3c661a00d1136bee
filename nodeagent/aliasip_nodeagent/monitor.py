"""The monitoring path: heartbeats to and from the peers over the service LAN (issue 11).

One room of the agent (``daemon.Agent`` wires it). Every ``interval_s`` (0.1 s as
shipped) it sends each peer (``peers.plan_peers``) one signed heartbeat (``heartbeat``)
per datagram's worth of what it holds for that peer, from UDP port ``port`` (7947 as
shipped) to the same port on the peer. It receives on that port, IPv4 and IPv6, checks
every datagram (forged, unknown key, stale, replayed: rejected, counted, logged once per
kind and source, then summarised) and keeps, per node, when it was last heard.

What it tells the agent:

- ``heard(node)``: True while ``node`` was heard within ``misses`` intervals, False once
  it missed them, None if never heard since this agent started (the monitoring path
  does not cover it: an agent without keys, an older version; the standby then falls
  back on the Lease);
- ``on_silent(node)`` / ``on_heard(node)``: a watched node went silent or was heard
  again (each logged once per change, not once per AliasIP);
- ``on_beat(beat)``: every accepted heartbeat (a holder that hears a peer hold one of its
  aliases at a higher epoch releases it at once: docs/design.md, R10).

Missing heartbeats are never evidence alone: they only start the standby's wire probe
(``standby``), whose silence must outlast the dead-man window (R9) before a failover. So a
lost, delayed or spoofed heartbeat can cost a probe, never an alias.

State, all on the event loop: the sockets, the receiver's replay table, ``_last_heard``
and the silent set. ``set_peers`` and ``set_watched`` replace whole values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aliasip_nodeagent.heartbeat import (
    DEFAULT_INTERVAL_S,
    DEFAULT_MISSES,
    Heartbeat,
    KeyRing,
    Receiver,
    Verdict,
    encode,
    new_boot,
    split,
)
from aliasip_nodeagent.hoststate import IPAddress
from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.peers import Peer

log = logging.getLogger("aliasip.agent.monitor")
# The key directory is looked at this often (a stat of a few files).
KEYS_EVERY_S = 1.0
# Rejections after the first of a kind and source are summed and logged this often.
REJECTIONS_EVERY_S = 10.0
MAX_READ = 2048
# A peer is told what we hold (its share) when it changes, at once when it is heard after
# a gap, and at least this often (a repair for a lost datagram: R10 acts on entries, never
# on their absence, so a bare heartbeat claims nothing). Repeating ~20 entries ten times a
# second was most of the traffic (274.5 kbit/s on one node's link at 50 x 1,000); once a
# second still put node2 of the 10 x 200 lab at 50.8 kbit/s (binary heartbeats).
HELD_EVERY_S = 3.0
# Datagrams read per socket and interval at most (a node with 100 holders hears 1,000 a
# second; more than this is a flood, and the rest waits for the next interval).
MAX_PER_TICK = 1024
# A silence is checked this long after it falls due (``heard`` counts the last miss's
# moment itself as heard).
SILENCE_SLACK_S = 0.001


@dataclass
class Traffic:
    """What the monitoring path sent and received, for the benchmarks and the logs."""

    sent: int = 0
    send_errors: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)


class Monitor:
    """Heartbeats for one agent; ``open`` binds, ``run`` sends and checks until cancelled.

    The sockets are not registered with the event loop: they are drained once per
    interval (``tick``). A node hears ~10 datagrams a second from each of its holders; a
    wake-up of the loop for each cost more than the heartbeats themselves, and silences
    are judged once per interval anyway. ``keys`` is called once per ``KEYS_EVERY_S``
    (``keyring.KeyFiles.refresh``, or a test's ring)."""

    def __init__(
        self,
        node: str,
        keys: Callable[[], KeyRing | None],
        *,
        port: int,
        interval_s: float = DEFAULT_INTERVAL_S,
        misses: int = DEFAULT_MISSES,
        on_beat: Callable[[Heartbeat], None] = lambda _beat: None,
        on_silent: Callable[[str], None] = lambda _node: None,
        on_heard: Callable[[str], None] = lambda _node: None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if interval_s <= 0 or misses < 1:
            raise ValueError("heartbeats need an interval above 0 and at least 1 miss")
        self.node = node
        self._keys = keys
        self.port = port
        self.interval_s = interval_s
        self.misses = misses
        self._on_beat = on_beat
        self._on_silent = on_silent
        self._on_heard = on_heard
        self._clock = clock
        self._wall = wall
        self.boot = new_boot()
        self._seq = 0
        self.ring: KeyRing | None = None
        self._receiver: Receiver | None = None
        self._sockets: list[socket.socket] = []
        self.peers: Mapping[str, Peer] = {}
        self._told: dict[str, tuple[tuple[tuple[str, int], ...], float]] = {}  # held, when
        self.watched: frozenset[str] = frozenset()
        self._last_heard: dict[str, float] = {}
        self._silent: set[str] = set()
        self.traffic = Traffic()
        self._rejections_told: set[tuple[str, str]] = set()
        self._rejections_since: Counter[str] = Counter()
        self._rejections_logged_at = 0.0
        self._keys_read_at: float | None = None
        self._armed = False

    # -- sockets -------------------------------------------------------------------------

    def open(self) -> None:
        """Bind the heartbeat port (IPv4, and IPv6 where the host has it), in the current
        network namespace. OSError if the IPv4 port cannot be bound."""
        v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            v4.bind(("0.0.0.0", self.port))
        except OSError:
            v4.close()
            raise
        v4.setblocking(False)
        self._sockets = [v4]
        try:
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        except OSError:
            return  # no IPv6 on this host
        try:
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            v6.bind(("::", self.port))
        except OSError as exc:
            v6.close()
            log.info(kv("heartbeat-ipv6-off", node=self.node, error=exc.strerror))
            return
        v6.setblocking(False)
        self._sockets.append(v6)

    def close(self) -> None:
        if self._armed:
            with contextlib.suppress(RuntimeError):  # the loop is gone already
                loop = asyncio.get_running_loop()
                for sock in self._sockets:
                    loop.remove_reader(sock.fileno())
            self._armed = False
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    # -- what the agent asks -------------------------------------------------------------

    def set_peers(self, peers: Mapping[str, Peer]) -> None:
        self.peers = dict(peers)

    def set_watched(self, nodes: frozenset[str]) -> None:
        """The nodes whose silence the agent needs to hear of (the holders it watches)."""
        self.watched = nodes
        self._silent &= set(nodes)

    def heard(self, node: str) -> bool | None:
        """True: heard within ``misses`` intervals; False: missed them; None: never heard
        since this agent started (the monitoring path does not cover ``node``)."""
        last = self._last_heard.get(node)
        if last is None:
            return None
        return self._clock() - last <= self.misses * self.interval_s

    def quiet_s(self, node: str) -> float | None:
        """Seconds since ``node``'s last heartbeat was heard; None if never heard."""
        last = self._last_heard.get(node)
        return None if last is None else max(0.0, self._clock() - last)

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Send, check silences, refresh the keys; until cancelled."""
        while True:
            started = self._clock()
            self.tick()
            await asyncio.sleep(max(0.0, started + self.interval_s - self._clock()))

    def tick(self) -> None:
        """One interval: keys looked at (each ``KEYS_EVERY_S``), heartbeats sent, the
        watched nodes' silences checked, rejections summarised."""
        now = self._clock()
        if self._keys_read_at is None or now - self._keys_read_at >= KEYS_EVERY_S:
            self._keys_read_at = now
            self._set_ring(self._keys())
        for sock in self._sockets:
            self._readable(sock)
        self.send_all()
        self.check_silences()
        self._check_at_next_silence(now)
        self._summarise_rejections(now)

    def _check_at_next_silence(self, now: float) -> None:
        """Check again the moment a watched node's last miss falls due, if before the next
        tick: a silence is then noticed when it begins, not up to an interval later (half
        an interval on average: 25-50 ms of every node-lost failover)."""
        due = [
            last + self.misses * self.interval_s
            for node, last in self._last_heard.items()
            if node in self.watched and node not in self._silent
        ]
        if not due:
            return
        delay = min(due) - now + SILENCE_SLACK_S
        if 0 < delay < self.interval_s:
            with contextlib.suppress(RuntimeError):  # no loop (a test's tick): next tick
                asyncio.get_running_loop().call_later(delay, self._recheck)

    def _recheck(self) -> None:
        """Between ticks: what came meanwhile is read first (it may be the awaited beat)."""
        for sock in self._sockets:
            self._readable(sock)
        self.check_silences()

    def _set_ring(self, ring: KeyRing | None) -> None:
        if ring is None or ring == self.ring:
            return
        self.ring = ring
        if self._receiver is None:
            self._receiver = Receiver(ring)
        else:
            self._receiver.ring = ring  # the replay table stays: a rotation is no restart

    def send_all(self) -> None:
        """This interval's heartbeats, one datagram (or a few) per peer.

        Every peer's datagrams are numbered from the same sequence number, so the bare
        heartbeat (what most peers get in most intervals) is one datagram, encoded and
        signed once and sent to each: at 10 nodes that was nine HMACs an interval for the
        same words. Each receiver still sees its sender's numbers rise (replay checks are
        per sender), and a copy taken to another peer says only what was sent to it too.
        """
        if self.ring is None or not self._sockets:
            return
        sent_at = self._wall()
        now = self._clock()
        first = self._seq + 1
        bare: list[bytes] | None = None
        used = 0
        for peer in self.peers.values():
            if not peer.targets:
                continue
            held = self._held_for(peer, now)
            if held:
                datagrams = split(self.node, self.boot, first, sent_at, held, (), self.ring)
            else:
                if bare is None:
                    bare = split(self.node, self.boot, first, sent_at, (), (), self.ring)
                datagrams = bare
            used = max(used, len(datagrams))
            # One target per peer (IPv4 first): a second copy would read as a replay.
            target = peer.targets[0]
            sock = self._socket_for(target.version)
            if sock is None:
                continue
            for data in datagrams:
                try:
                    sock.sendto(data, (str(target), self.port))
                except OSError:
                    self.traffic.send_errors += 1  # no route, link down: heard as silence
                    continue
                self.traffic.sent += 1
        self._seq += used

    def _held_for(self, peer: Peer, now: float) -> tuple[tuple[str, int], ...]:
        """What this interval tells ``peer`` we hold: its share of our holdings when that
        changed or was last told ``HELD_EVERY_S`` ago, else nothing (a bare heartbeat)."""
        held = peer.held
        told = self._told.get(peer.node)
        if told is not None and told[0] == held and now - told[1] < HELD_EVERY_S:
            return ()  # told lately and unchanged: a bare heartbeat claims nothing
        if held:
            self._told[peer.node] = (held, now)
        return held

    def tell(
        self,
        peer: str,
        targets: Sequence[IPAddress],
        released: Sequence[tuple[str, int]] = (),
        ready: Sequence[tuple[str, int]] = (),
    ) -> bool:
        """Tell ``peer`` now, out of the heartbeat rhythm, that this node let go of
        ``released`` or is ready to take ``ready`` (``(uid, epoch)``): a direct handoff
        (docs/design.md, R11). One signed datagram to its first address; False if it
        could not be sent (no keys, no route): the API path follows anyway."""
        if self.ring is None or not targets or not (released or ready):
            return False
        target = targets[0]
        sock = self._socket_for(target.version)
        if sock is None:
            return False
        beat = Heartbeat(
            self.node, self.boot, self._seq + 1, self._wall(), (), tuple(released), tuple(ready)
        )
        try:
            data = encode(beat, self.ring)
        except ValueError:
            return False  # hundreds of entries: the API path carries those
        self._seq += 1
        try:
            sock.sendto(data, (str(target), self.port))
        except OSError:
            self.traffic.send_errors += 1
            return False
        self.traffic.sent += 1
        return True

    def arm(self, loop: asyncio.AbstractEventLoop, on: bool) -> None:
        """Read the sockets as datagrams come (``on``) or once per interval. On only
        while a handoff is awaited: a wake-up per heartbeat costs more than the
        heartbeats at 100 holders, but a handoff must not wait up to an interval."""
        if on == self._armed:
            return
        self._armed = on
        for sock in self._sockets:
            if on:
                loop.add_reader(sock.fileno(), self._readable, sock)
            else:
                loop.remove_reader(sock.fileno())

    def _socket_for(self, version: int) -> socket.socket | None:
        family = socket.AF_INET if version == 4 else socket.AF_INET6
        return next((s for s in self._sockets if s.family == family), None)

    def check_silences(self) -> None:
        for node in sorted(self.watched):
            heard = self.heard(node)
            if heard is False and node not in self._silent:
                self._silent.add(node)
                last = self._last_heard[node]
                log.info(
                    kv(
                        "peer-silent",
                        node=self.node,
                        peer=node,
                        silent_s=round(self._clock() - last, 3),
                        note="heartbeats missed: probing its aliases on the wire",
                    )
                )
                self._on_silent(node)

    # -- receiving -----------------------------------------------------------------------

    def _readable(self, sock: socket.socket) -> None:
        """Everything queued on ``sock`` now (bounded: a flood waits for the next tick)."""
        for _ in range(MAX_PER_TICK):
            try:
                data, source = sock.recvfrom(MAX_READ)
            except OSError:  # nothing queued (BlockingIOError) or the socket failed
                return
            self.received(data, str(source[0]))

    def received(self, data: bytes, source: str) -> None:
        """One datagram from ``source``: checked, counted, acted on if accepted."""
        if self._receiver is None:
            self.traffic.verdicts["no-keys"] += 1
            return
        verdict, beat = self._receiver.receive(data, self._wall())
        self.traffic.verdicts[verdict.value] += 1
        if verdict is not Verdict.ACCEPTED or beat is None:
            self._rejected(verdict, source)
            return
        if beat.node == self.node:
            return  # our own, looped back
        if beat.node not in self._last_heard:
            log.info(kv("peer-heard", node=self.node, peer=beat.node, note="first heartbeat"))
        if self.heard(beat.node) is not True:
            # Heard after a gap (a partition healed, a restart): what we hold is told to it
            # in the next interval, not within the second (R10 at once for an old holder).
            self._told.pop(beat.node, None)
        self._last_heard[beat.node] = self._clock()
        if beat.node in self._silent:
            self._silent.discard(beat.node)
            log.info(kv("peer-heard", node=self.node, peer=beat.node))
            self._on_heard(beat.node)
        self._on_beat(beat)

    def _rejected(self, verdict: Verdict, source: str) -> None:
        told = (verdict.value, source)
        if told not in self._rejections_told:
            self._rejections_told.add(told)
            log.warning(
                kv(
                    "heartbeat-rejected",
                    node=self.node,
                    verdict=verdict.value,
                    source=source,
                    note="further ones from this source are counted and summarised",
                )
            )
            return
        self._rejections_since[verdict.value] += 1

    def _summarise_rejections(self, now: float) -> None:
        if now - self._rejections_logged_at < REJECTIONS_EVERY_S:
            return
        self._rejections_logged_at = now
        if self._rejections_since:
            log.warning(
                kv(
                    "heartbeats-rejected",
                    node=self.node,
                    **{k.replace("-", "_"): v for k, v in sorted(self._rejections_since.items())},
                    window_s=REJECTIONS_EVERY_S,
                )
            )
            self._rejections_since.clear()
