"""kopf glue: watched objects in, ``decide`` in the middle, status/Events/annotation out.

What kopf watches, and why each is an index: Nodes and the agents' Leases are
observations for every AliasIP, and the conflict findings need every AliasIP; kopf fills
its indexes completely before it runs any other handler, so a decision is never made
from a half-listed cluster (a Node not listed yet must not read as "gone").

When an AliasIP is decided: its name goes into a deduplicating work queue
(``workqueue``), and a few workers decide on the newest version known of it
(``Context.bodies``: watch events and our own writes' answers, whichever is newer). A
name is queued

- on every watch event of the AliasIP (spec, annotations, the agents' reports);
- when a Node it involves changes what the decision reads (labels, Ready, cordon), and
  when an agent Lease it involves starts or stops vouching, including at the instant it
  expires, which no event announces (``relations``: a renewal on time queues nothing);
- when its conflict findings change (another AliasIP changed or was deleted);
- on a retry, and every ``RESYNC_INTERVAL_S`` for all of them (level-triggered net).

Session 2 decided every AliasIP every 0.5 s on a kopf timer and on every event with
kopf's copy of the object: at 1,000 AliasIPs the operator fell minutes behind, and most
of its writes met newer versions (409) and were dropped. Now the work is proportional to
what changed, and a 409 is answered by reading the object again and deciding at once.
No timer also means no kopf finalizer: deleting an AliasIP never waits for the operator.

Applying a decision (order matters): the status merge patch first, carrying the
resourceVersion it was decided from (a 409 means newer agent reports arrived: decide
again on them); then the switchover annotation is removed with a JSON-patch ``test`` on
the value served; then the Events, queued to one task that posts them in order off the
decisions' path (``announce_events``). Events are posted only after the status they
describe was written, so a dropped decision emits nothing. A decision that only serves a request
(the status unchanged) emits nothing either when the removal fails: the watch event of a
status write that also served a request still shows the annotation, and deciding on it
serves the same request again (its removal then finds the annotation gone, 422), which
must not repeat its Event (SwitchoverRefused twice).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from aliasip_api.errors import Finding, InvalidAliasIP
from aliasip_api.findings import conflict_findings
from aliasip_api.lease import AGENT_LEASE_PREFIX, agent_lease_name
from aliasip_api.nodes import NodeInfo, parse_node
from aliasip_api.spec import AliasIP, parse_aliasip
from aliasip_api.status import AliasIPStatus
from aliasip_operator.decide import decide, decide_invalid
from aliasip_operator.decision import Decision, Event
from aliasip_operator.freshness import LeaseViews
from aliasip_operator.kube import EVENTS_NAMESPACE, ApiError, ApiUnavailable, KubeApi
from aliasip_operator.observations import (
    SWITCHOVER_ANNOTATION,
    AgentLease,
    Observations,
    parse_lease,
    switchover_request,
)
from aliasip_operator.relations import (
    Involvement,
    LeaseState,
    changed_findings,
    involved_nodes,
    nodes_to_requeue,
)
from aliasip_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "aliasip.io", "v1alpha1", "aliasips"
WORKERS = 16  # decisions in flight at once (each waits on one API write at a time)
CONFLICT_ATTEMPTS = 3  # decide again on a fresh read after a 409, at most this often
RETRY_DELAY_S = 1.0  # a write the API did not take is retried after this
RESYNC_INTERVAL_S = 30.0  # every AliasIP is decided again this often, whatever happened
EXPIRY_SLACK_S = 0.01  # an agent Lease is looked at this long after it expires
CONFIRM_ROUNDS = 2  # Lease reads before one decision is written, at most (then retry)
AGENT_LEASE_NAMESPACE = "aliasip-system"


def always() -> bool:
    """``Context.may_write`` without leader election: a single replica always may."""
    return True


@dataclass(frozen=True)
class Indexes:
    """kopf's live indexes (filled completely before any handler runs)."""

    nodes: kopf.Index[str, NodeInfo]
    leases: kopf.Index[str, AgentLease]
    aliasips: kopf.Index[str, AliasIP]


@dataclass
class Context:
    """The operator's state besides kopf's indexes (passed as ``memo.context``): the newest
    body of each AliasIP, the work queue and its workers, and what the triggers compare
    against (each node's parsed Node and Lease state, the last conflict findings)."""

    api: KubeApi
    events_namespace: str = EVENTS_NAMESPACE  # where Events about AliasIPs go (see there)
    identity: str = field(default_factory=socket.gethostname)
    agent_lease_namespace: str = AGENT_LEASE_NAMESPACE
    # Whether this replica may write now (its leadership is provable): a leader that was
    # paused past its renew deadline must not write before it renewed, or exited.
    may_write: Callable[[], bool] = always
    lease_views: LeaseViews = field(default_factory=LeaseViews)
    # Agent Lease reads in flight, by node: when sent, and done (``confirm_leases``).
    lease_reads: dict[str, tuple[datetime, asyncio.Future[None]]] = field(default_factory=dict)
    workers: int = WORKERS
    queue: WorkQueue = field(default_factory=WorkQueue)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    involvement: Involvement = field(default_factory=Involvement)
    indexes: Indexes | None = None
    node_infos: dict[str, NodeInfo] = field(default_factory=dict)
    leases: dict[str, AgentLease | None] = field(default_factory=dict)
    lease_states: dict[str, LeaseState] = field(default_factory=dict)
    lease_timers: dict[str, tuple[datetime, asyncio.TimerHandle]] = field(default_factory=dict)
    findings: Mapping[str, tuple[Finding, ...]] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    executor: ThreadPoolExecutor | None = None
    events: asyncio.Queue[tuple[Mapping[str, Any], tuple[Event, ...], datetime]] | None = None

    def start(self, kwargs: Mapping[str, Any]) -> None:
        """On the first handler call: keep kopf's indexes and start the workers (kopf runs
        handlers only once every index is complete, so no decision sees a half-listed
        cluster; a Node not listed yet must not read as "gone")."""
        if self.indexes is not None:
            return
        self.indexes = Indexes(kwargs["nodes"], kwargs["agent_leases"], kwargs["aliasips"])
        self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix="aliasip-write")
        self.events = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self.tasks = [
            asyncio.create_task(work(self), name=f"aliasip-worker-{i}") for i in range(self.workers)
        ]
        self.tasks.append(asyncio.create_task(resync(self), name="aliasip-resync"))
        self.tasks.append(asyncio.create_task(announce_events(self), name="aliasip-events"))

    def announce(self, metadata: Mapping[str, Any], decision: Decision, now: datetime) -> None:
        """From a write thread: queue the Events of a decision whose status is written."""
        if decision.events and self.events is not None and self._loop is not None:
            item = (metadata, decision.events, now)
            self._loop.call_soon_threadsafe(self.events.put_nowait, item)

    def remember(self, body: dict[str, Any]) -> None:
        """Keep ``body`` if it is not older than the version known (watch events and our
        own writes' answers arrive in either order)."""
        name = str((body.get("metadata") or {}).get("name"))
        known = self.bodies.get(name)
        if known is None or _version(body) >= _version(known):
            self.bodies[name] = body
            self.involvement.update(name, body)

    def forget(self, name: str) -> None:
        """The AliasIP is gone: those it conflicted with are decided again."""
        self.bodies.pop(name, None)
        self.involvement.update(name, None)
        self.queue.add_all([n for n, found in self.findings.items() if found and n != name])

    def note_findings(self, findings: Mapping[str, tuple[Finding, ...]]) -> None:
        """Queue the AliasIPs whose conflict findings changed since the last result."""
        if findings is self.findings:
            return
        changed = changed_findings(self.findings, findings)
        self.findings = findings
        self.queue.add_all([n for n in changed if n in self.bodies])

    def track_lease(self, node: str, lease: AgentLease | None) -> None:
        """Queue the AliasIPs involving ``node`` when its Lease vouches differently now,
        and look again at the instant it expires (no watch event announces that)."""
        self.leases[node] = lease
        self._lease_check(node)
        expires = lease.expires_at if lease is not None else None
        known = self.lease_timers.get(node)
        if expires is None or (known is not None and known[0] == expires):
            return
        if known is not None:
            known[1].cancel()
        delay = (expires - datetime.now(UTC)).total_seconds() + EXPIRY_SLACK_S
        handle = asyncio.get_running_loop().call_later(max(delay, 0.0), self._lease_check, node)
        self.lease_timers[node] = (expires, handle)

    def lease_view(self) -> dict[str, AgentLease]:
        """The agent Leases by node: the watch's, or a newer one read since (freshness)."""
        assert self.indexes is not None
        return self.lease_views.merged(_values(self.indexes.leases))

    def _lease_check(self, node: str) -> None:
        state = LeaseState.of(self.leases.get(node), node, datetime.now(UTC))
        before = self.lease_states.get(node)
        if before == state:
            return
        self.lease_states[node] = state
        # evidence per node: a claim moves every AliasIP the claimed node is in at once
        for changed in nodes_to_requeue(node, before, state):
            self.queue.add_all(self.involvement.involving(changed))


def _version(body: Mapping[str, Any]) -> int:
    rv = str((body.get("metadata") or {}).get("resourceVersion", ""))
    return int(rv) if rv.isdigit() else -1


def context(memo: Any) -> Context:
    found = getattr(memo, "context", None)
    if not isinstance(found, Context):
        raise kopf.PermanentError("the operator was started without its context")
    return found


# ----------------------------------------------------------------------- settings, login


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """kopf behind our own leader election: no peering, no CRD/namespace scanning beyond
    what RBAC grants, no Events from kopf's logs (ours are explicit)."""
    settings.peering.standalone = True
    # Scanning would list and watch Namespaces (the Leases are watched in one namespace),
    # which RBAC does not grant; main waits for the CRD before starting kopf instead.
    settings.scanning.disabled = True
    settings.posting.enabled = False
    # Events of one object arrive in bursts (an agent's report, then ours); the work queue
    # already coalesces them, so kopf's own batching (0.1 s) would only delay decisions.
    settings.batching.batch_window = 0.01
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


@kopf.on.login()
def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
    """The same credentials as our own client (kubeconfig, or in-cluster)."""
    cfg = context(memo).api.configuration
    token = None
    for auth in cfg.auth_settings().values():
        value = str(auth.get("value") or "")
        if auth.get("key") == "authorization" and value.lower().startswith("bearer "):
            token = value.split(" ", 1)[1]
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        token=token,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
    )


# ----------------------------------------------------------------------- indexes


@kopf.index("nodes")
def nodes(body: kopf.Body, name: str | None, **_: Any) -> dict[str, NodeInfo] | None:
    """Nodes by name (labels, Ready, cordon, stationary addresses)."""
    if not name:
        return None
    return {name: parse_node(body)}


@kopf.index("coordination.k8s.io", "v1", "leases")
def agent_leases(body: kopf.Body, name: str | None, **_: Any) -> dict[str, AgentLease] | None:
    """Agent Leases (``aliasip-agent-<node>``, in the agent namespace kopf serves) by node.

    The key is the node the Lease is named for; ``AgentLease.valid_for`` still requires
    ``holderIdentity`` to be that node, so a released Lease proves nothing.
    """
    if not name or not name.startswith(AGENT_LEASE_PREFIX):
        return None  # e.g. the operator's own election Lease
    return {name.removeprefix(AGENT_LEASE_PREFIX): parse_lease(body)}


@kopf.index(GROUP, VERSION, PLURAL)
def aliasips(body: kopf.Body, name: str | None, **_: Any) -> dict[str, AliasIP] | None:
    """Every parsable AliasIP, for the conflict findings (which need all of them)."""
    if not name:
        return None
    try:
        return {name: parse_aliasip(dict(body))}
    except InvalidAliasIP:
        return None  # it claims nothing; its own evaluation reports why


def _values(index: kopf.Index[str, Any]) -> dict[str, Any]:
    return {key: value for key, store in index.items() for value in store}


# Caches for the decision's two costly inputs. Each evaluation (every watch event and every
# 0.5 s per AliasIP) needs the parsed spec (validated against the CRD's schema, 1-2 ms)
# and the conflict findings over every AliasIP (a pass over all of them): at 1,000
# AliasIPs recomputing both on every evaluation took the operator's whole core.
_PARSED_MAX = 20_000
_parsed: dict[tuple[object, ...], AliasIP | InvalidAliasIP] = {}
_findings: list[tuple[tuple[AliasIP, ...], dict[str, tuple[Finding, ...]]]] = []


def parse_cached(body: Mapping[str, Any]) -> AliasIP:
    """``parse_aliasip`` of the object without its status, once per spec version: what it
    reads (the spec, name, uid, creationTimestamp) changes only with ``generation``."""
    metadata = body.get("metadata") or {}
    generation = metadata.get("generation")
    key = (metadata.get("uid"), metadata.get("name"), generation, metadata.get("creationTimestamp"))
    found = _parsed.get(key) if isinstance(generation, int) else None
    if found is None:
        try:
            found = parse_aliasip({k: v for k, v in body.items() if k != "status"})
        except InvalidAliasIP as exc:
            found = exc
        if isinstance(generation, int):
            if len(_parsed) >= _PARSED_MAX:
                _parsed.clear()
            _parsed[key] = found
    if isinstance(found, InvalidAliasIP):
        raise found
    return found


def conflicts_cached(everyone: Mapping[str, AliasIP]) -> dict[str, tuple[Finding, ...]]:
    """``conflict_findings`` over the index's AliasIPs, recomputed only when one of them
    changed (the index holds a new object for every change)."""
    current = tuple(everyone.values())
    if _findings:
        known, result = _findings[0]
        if len(known) == len(current) and all(a is b for a, b in zip(known, current, strict=True)):
            return result
    result = conflict_findings(current)
    _findings[:] = [(current, result)]
    return result


# ----------------------------------------------------------------------- the decision


def decide_for(
    body: Mapping[str, Any],
    nodes_index: Mapping[str, NodeInfo],
    leases_index: Mapping[str, AgentLease],
    everyone: Mapping[str, AliasIP],
    now: datetime,
) -> Decision:
    """The decision for one AliasIP body from the indexes' contents (pure).

    Raises ``InvalidAliasIP`` only for an invalid *status* (a writer's bug: acting on it
    would be guessing); an invalid spec is a decision (Invalid) like any other.
    """
    metadata = body.get("metadata") or {}
    status = AliasIPStatus.from_dict(body.get("status"))
    name = str(metadata.get("name"))
    generation = metadata.get("generation")
    try:
        aliasip = parse_cached(body)
    except InvalidAliasIP as exc:
        observed = Observations.of(
            nodes_index.values(), leases_index, switchover_request(metadata.get("annotations"))
        )
        gen = generation if isinstance(generation, int) else None
        return decide_invalid(exc.findings, observed, status, now, generation=gen)
    if everyone.get(name) == aliasip:
        conflicts = conflicts_cached(everyone).get(name, ())
    else:  # the index lags behind this body: decide on the body's own version
        conflicts = conflict_findings({**everyone, name: aliasip}.values()).get(name, ())
    observed = Observations.of(
        nodes_index.values(),
        leases_index,
        switchover_request(metadata.get("annotations")),
        conflicts,
    )
    return decide(aliasip, observed, status, now)


Written = dict[str, Any] | None


class Conflict(Exception):
    """The status patch met a newer version of the object (409): decide again on it."""


def apply(ctx: Context, body: Mapping[str, Any], decision: Decision, now: datetime) -> Written:
    """Write ``decision`` (blocking; runs in a worker thread).

    Returns the object as the status write left it (None when nothing was written);
    raises ``Conflict`` on a 409 (nothing else was done) and ``ApiUnavailable`` /
    ``ApiError`` when the status could not be written (nothing else was done either).
    """
    metadata = body.get("metadata") or {}
    name = str(metadata.get("name"))
    current = AliasIPStatus.from_dict(body.get("status"))
    api = ctx.api
    written: Written = None
    if decision.changed(current):
        try:
            written = api.patch_status(
                name, decision.status_patch(), metadata.get("resourceVersion")
            )
        except ApiError as exc:
            if exc.status == 409:
                raise Conflict(name) from exc
            raise
        log.info(
            "status written",
            extra={
                "aliasip": name,
                "phase": str(decision.status.phase),
                "activeNode": decision.status.active_node,
                "epoch": decision.status.epoch,
            },
        )
    annotations = metadata.get("annotations") or {}
    if decision.remove_switchover and SWITCHOVER_ANNOTATION in annotations:
        try:
            written = api.remove_annotation(
                name, SWITCHOVER_ANNOTATION, str(annotations[SWITCHOVER_ANNOTATION])
            )
            log.info("switchover request consumed", extra={"aliasip": name})
        except (ApiError, ApiUnavailable) as exc:
            # 422: the served request is gone already (consumed by an earlier decision) or
            # a new one replaced it, which is decided on its own.
            log.info("switchover annotation kept", extra={"aliasip": name, "error": str(exc)})
            if not decision.changed(current):
                return written  # this decision only served that request: nothing to report
    ctx.announce(metadata, decision, now)
    return written


def post_events(
    ctx: Context, metadata: Mapping[str, Any], events: tuple[Event, ...], now: datetime
) -> None:
    """Post the Events of a decision whose status is written (blocking; the Event task)."""
    name = str(metadata.get("name"))
    involved = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AliasIP",
        "name": name,
        "uid": metadata.get("uid"),
    }
    for event in events:
        try:
            ctx.api.post_event(
                ctx.events_namespace,
                involved,
                str(event.type),
                event.reason,
                event.message,
                now,
                ctx.identity,
            )
        except (ApiError, ApiUnavailable) as exc:
            log.warning("event not posted", extra={"aliasip": name, "error": str(exc)})
        log.info(
            "event",
            extra={"aliasip": name, "type": str(event.type), "reason": event.reason},
        )


async def evaluate(ctx: Context, name: str) -> None:
    """Decide for the newest known version of ``name`` and apply the decision.

    On a 409 the object is read again and decided again at once (a few times): the
    newer version is usually an agent's report, which the decision must take into account.
    A write the API did not take is retried after ``RETRY_DELAY_S``. Nothing is written
    while this replica cannot prove it leads (``Context.may_write``), nor on a judgement
    that an agent Lease lapsed which no read after the lapse confirms (``freshness``).
    """
    indexes = ctx.indexes
    if indexes is None:
        return
    for _attempt in range(CONFLICT_ATTEMPTS):
        body = ctx.bodies.get(name)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return
        try:
            found = await decide_fresh(ctx, body)
        except InvalidAliasIP as exc:
            log.error("invalid status, not deciding", extra={"aliasip": name, "error": str(exc)})
            return
        except (ApiError, ApiUnavailable) as exc:
            log.warning("agent lease not read", extra={"aliasip": name, "error": str(exc)})
            ctx.queue.add_after(name, RETRY_DELAY_S)
            return
        if found is None:  # still unproven after the reads: look again soon
            ctx.queue.add_after(name, RETRY_DELAY_S)
            return
        decision, now = found
        current = AliasIPStatus.from_dict(body.get("status"))
        if not decision.changed(current) and not decision.remove_switchover:
            return
        if not ctx.may_write():
            log.warning("not leading provably: not writing", extra={"aliasip": name})
            ctx.queue.add_after(name, RETRY_DELAY_S)
            return
        try:
            written = await asyncio.get_running_loop().run_in_executor(
                ctx.executor, apply, ctx, body, decision, now
            )
        except Conflict:
            log.info("stale decision: deciding again on a fresh read", extra={"aliasip": name})
            try:
                ctx.remember(await asyncio.to_thread(ctx.api.get_aliasip, name))
            except ApiError as exc:
                if exc.status == 404:
                    return
                raise
            continue
        except (ApiError, ApiUnavailable) as exc:
            log.warning("status patch failed", extra={"aliasip": name, "error": str(exc)})
            ctx.queue.add_after(name, RETRY_DELAY_S)
            return
        if written is not None:
            ctx.remember(written)
        return
    ctx.queue.add_after(name, RETRY_DELAY_S)


async def decide_fresh(ctx: Context, body: Mapping[str, Any]) -> tuple[Decision, datetime] | None:
    """The decision for ``body``, on a Lease view proven fresh where it would matter.

    A decision that would write is checked first: every node it reads whose Lease the
    view says does not vouch, without a read since that moment, has its Lease read
    (``freshness``), and the decision is made again on what was read. None if a Lease is
    still unproven after ``CONFIRM_ROUNDS`` reads (the caller retries later).
    """
    indexes = ctx.indexes
    assert indexes is not None
    current = AliasIPStatus.from_dict(body.get("status"))
    for _round in range(CONFIRM_ROUNDS + 1):
        everyone = _values(indexes.aliasips)
        ctx.note_findings(conflicts_cached(everyone))
        now = datetime.now(UTC)
        nodes = _values(indexes.nodes)
        leases = ctx.lease_view()
        decision = decide_for(body, nodes, leases, everyone, now)
        if not decision.changed(current) and not decision.remove_switchover:
            return decision, now
        involved = involved_nodes(body)
        read = involved if involved is not None else {*nodes, *leases}
        unproven = ctx.lease_views.unproven(read, leases, now)
        if not unproven:
            return decision, now
        if _round == CONFIRM_ROUNDS:
            break
        await confirm_leases(ctx, unproven, leases, now)
    log.warning("agent leases still unproven", extra={"aliasip": _name(body)})
    return None


async def confirm_leases(
    ctx: Context, nodes: Iterable[str], view: Mapping[str, AgentLease], now: datetime
) -> None:
    """Read the agent Leases of ``nodes`` and record them (``freshness``), sharing a read
    of a node already in flight when it was sent late enough to prove what ``view`` says
    at ``now`` (``LeaseViews.needed_after``); one sent earlier proves nothing new, so
    another is made. Why: peers' evidence that node1 is silent queues every AliasIP it
    holds at once, and each of their decisions (``WORKERS`` at a time) read node1's Lease
    with a GET of its own, on the path of every one of those failovers."""
    joined: list[asyncio.Future[None]] = []
    mine: list[str] = []
    for node in nodes:
        flight = ctx.lease_reads.get(node)
        needed = ctx.lease_views.needed_after(node, view, now)
        if flight is not None and (needed is None or flight[0] >= needed):
            joined.append(flight[1])
        else:
            mine.append(node)
    if mine:
        sent = datetime.now(UTC)  # before any of the reads: no later than each is sent
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for node in mine:
            ctx.lease_reads[node] = (sent, done)
        try:
            for node, lease, at in await asyncio.to_thread(read_leases, ctx, mine):
                ctx.lease_views.confirm(node, lease, at)
        finally:
            for node in mine:
                if ctx.lease_reads.get(node, (sent, None))[1] is done:
                    del ctx.lease_reads[node]
            if not done.done():
                done.set_result(None)  # a failed read: the sharers find it still unproven
    if joined:
        await asyncio.wait(joined)  # not gather: a cancelled sharer must not cancel them


def _name(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("name"))


def read_leases(
    ctx: Context, nodes: Iterable[str]
) -> list[tuple[str, AgentLease | None, datetime]]:
    """Each node's agent Lease as read now, and when the read was sent (blocking; a
    worker thread: the caller records them on the event loop, which owns the views)."""
    found: list[tuple[str, AgentLease | None, datetime]] = []
    for node in nodes:
        sent = datetime.now(UTC)
        body = ctx.api.get_lease(ctx.agent_lease_namespace, agent_lease_name(node))
        lease = parse_lease(body) if body is not None else None
        found.append((node, lease, sent))
        valid = lease is not None and lease.valid_for(node, datetime.now(UTC))
        log.info("agent lease read", extra={"node": node, "valid": valid})
    return found


async def work(ctx: Context) -> None:
    """One worker: take a name, decide, repeat. A failure is logged and retried later."""
    while True:
        name = await ctx.queue.get()
        try:
            await evaluate(ctx, name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("evaluation failed", extra={"aliasip": name})
            ctx.queue.add_after(name, RETRY_DELAY_S)
        finally:
            ctx.queue.done(name)


async def announce_events(ctx: Context) -> None:
    """Post Events in the order their decisions were written, off the decisions' path: a
    failover of 100 AliasIPs is 100 status writes that each gate an agent's move, and
    waiting for each decision's Event POST as well halved how many moved per second."""
    queue = ctx.events
    assert queue is not None  # created with the task (Context.start)
    while True:
        metadata, events, now = await queue.get()
        try:
            await asyncio.to_thread(post_events, ctx, metadata, events, now)
        except Exception:
            log.exception("events not posted", extra={"aliasip": metadata.get("name")})


async def resync(ctx: Context) -> None:
    """Every ``RESYNC_INTERVAL_S`` queue every AliasIP: the level-triggered safety net
    (cheap: an unchanged decision writes nothing)."""
    while True:
        await asyncio.sleep(RESYNC_INTERVAL_S)
        ctx.queue.add_all(sorted(ctx.bodies))


# ----------------------------------------------------------------------- triggers


@kopf.on.event(GROUP, VERSION, PLURAL)
async def aliasip_changed(type: str, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """Every watch event of an AliasIP (spec, annotations, the agents' reports): keep the
    newest version and queue it. Deleting one may end other AliasIPs' conflicts.

    ``on.event``, not ``on.create``/``on.update``: ``on.update`` ignores status changes
    (kopf #715), and the agents' reports *are* status changes; ``on.event`` also stores no
    per-handler progress in the object, so it costs no writes. The indexes come in
    ``kwargs`` by their function names (kopf's handler protocols type only its own).
    """
    ctx = context(memo)
    ctx.start(kwargs)
    name = str(body.metadata.name)
    if type == "DELETED":
        ctx.forget(name)
        return
    ctx.remember(dict(body))
    ctx.queue.add(name)


@kopf.on.event("nodes")
async def node_changed(type: str, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """A Node's labels, readiness, cordon or addresses changed: queue the AliasIPs that
    involve it (a kubelet heartbeat alone changes nothing parsed, and queues nothing)."""
    ctx = context(memo)
    ctx.start(kwargs)
    name = str(body.metadata.name)
    info = None if type == "DELETED" else parse_node(body)
    if ctx.node_infos.get(name) == info and (info is not None or name not in ctx.node_infos):
        return
    if info is None:
        ctx.node_infos.pop(name, None)
    else:
        ctx.node_infos[name] = info
    ctx.queue.add_all(ctx.involvement.involving(name))


@kopf.on.event("coordination.k8s.io", "v1", "leases")
async def lease_changed(type: str, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """An agent Lease was written (or removed): see whether it vouches differently now."""
    ctx = context(memo)
    ctx.start(kwargs)
    name = str(body.metadata.name)
    if not name.startswith(AGENT_LEASE_PREFIX):
        return
    node = name.removeprefix(AGENT_LEASE_PREFIX)
    lease = None if type == "DELETED" else parse_lease(body)
    ctx.lease_views.observe(node, lease)
    ctx.track_lease(node, lease)
