"""kopf glue: watched objects in, ``decide`` in the middle, status/Events/annotation out.

What kopf watches, and why each is an index: Nodes and the agents' Leases are
observations for every AliasIP, and the conflict findings need every AliasIP; kopf fills
its indexes completely before it runs any other handler, so a decision is never made
from a half-listed cluster (a Node not listed yet must not read as "gone").

When an AliasIP is evaluated (``evaluate``; the same for every trigger, level-triggered):

- on every watch event of the AliasIP (``on.event``, not ``on.create``/``on.update``:
  ``on.update`` ignores status changes (kopf #715), and the agents' reports *are* status
  changes; ``on.event`` also stores no per-handler progress in the object, so running it
  on every event costs no writes);
- every 0.5 s per AliasIP (``timer``), which picks up Node and Lease changes, and Lease
  expiries that no event announces (``Decision.recheck_at``), at most 0.5 s late. kopf
  cannot re-trigger another resource's handler from a Node/Lease handler; a short timer
  is the simple, level-triggered way. Its cost is CPU only: the decision is pure and
  in memory, and the operator writes only when the decision changes the status (or
  consumes a request), so an idle cluster costs no API calls. kopf adds its finalizer
  for the timer (it stops timers before deletion); deleting an AliasIP therefore waits
  for a running operator, which the two replicas provide.

Applying a decision (order matters): the status merge patch first, carrying the
resourceVersion it was decided from (a 409 means newer agent reports arrived: drop the
decision, the next trigger decides again); then the switchover annotation is removed
with a JSON-patch ``test`` on the value served; then the Events. Events are posted only
after the status they describe was written, so a dropped decision emits nothing. A
decision that only serves a request (the status unchanged) emits nothing either when the
removal fails: the watch event of a status write that also served a request still shows
the annotation, and deciding on it serves the same request again (its removal then finds
the annotation gone, 422), which must not repeat its Event (SwitchoverRefused twice).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from aliasip_api.errors import Finding, InvalidAliasIP
from aliasip_api.findings import conflict_findings
from aliasip_api.lease import AGENT_LEASE_PREFIX
from aliasip_api.nodes import NodeInfo, parse_node
from aliasip_api.spec import AliasIP, parse_aliasip
from aliasip_api.status import AliasIPStatus
from aliasip_operator.decide import decide, decide_invalid
from aliasip_operator.decision import Decision
from aliasip_operator.kube import EVENTS_NAMESPACE, ApiError, ApiUnavailable, KubeApi
from aliasip_operator.observations import (
    SWITCHOVER_ANNOTATION,
    AgentLease,
    Observations,
    parse_lease,
    switchover_request,
)

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "aliasip.io", "v1alpha1", "aliasips"
RECHECK_INTERVAL_S = 0.5
FINALIZER = "aliasip.io/operator"


@dataclass
class Context:
    """What the handlers need besides kopf's kwargs (passed as ``memo.context``)."""

    api: KubeApi
    events_namespace: str = EVENTS_NAMESPACE  # where Events about AliasIPs go (see there)
    identity: str = field(default_factory=socket.gethostname)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, name: str) -> asyncio.Lock:
        """One evaluation at a time per AliasIP (the event handler and the timer race)."""
        return self.locks.setdefault(name, asyncio.Lock())


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
    settings.persistence.finalizer = FINALIZER
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


async def evaluate(
    body: kopf.Body,
    ctx: Context,
    nodes_index: kopf.Index[str, NodeInfo],
    leases_index: kopf.Index[str, AgentLease],
    aliasips_index: kopf.Index[str, AliasIP],
) -> None:
    """Decide for this AliasIP and apply the decision (see the module docstring)."""
    name = str(body.metadata.name)
    if body.metadata.get("deletionTimestamp"):
        return
    async with ctx.lock(name):
        snapshot = dict(body)  # kopf's body is live: decide and apply on one version
        now = datetime.now(UTC)
        try:
            decision = decide_for(
                snapshot, _values(nodes_index), _values(leases_index), _values(aliasips_index), now
            )
        except InvalidAliasIP as exc:
            log.error("invalid status, not deciding", extra={"aliasip": name, "error": str(exc)})
            return
        current = AliasIPStatus.from_dict(snapshot.get("status"))
        if not decision.changed(current) and not decision.remove_switchover:
            return
        await asyncio.to_thread(apply, ctx, snapshot, decision, now)


def apply(ctx: Context, body: Mapping[str, Any], decision: Decision, now: datetime) -> None:
    """Write ``decision`` (blocking; runs in a worker thread)."""
    metadata = body.get("metadata") or {}
    name = str(metadata.get("name"))
    current = AliasIPStatus.from_dict(body.get("status"))
    api = ctx.api
    try:
        if decision.changed(current):
            api.patch_status(name, decision.status_patch(), metadata.get("resourceVersion"))
            log.info(
                "status written",
                extra={
                    "aliasip": name,
                    "phase": str(decision.status.phase),
                    "activeNode": decision.status.active_node,
                    "epoch": decision.status.epoch,
                },
            )
    except ApiError as exc:
        if exc.status == 409:
            log.info("stale decision dropped (409)", extra={"aliasip": name})
            return
        log.warning("status patch failed", extra={"aliasip": name, "error": str(exc)})
        return
    except ApiUnavailable as exc:
        log.warning("status patch failed", extra={"aliasip": name, "error": str(exc)})
        return
    annotations = metadata.get("annotations") or {}
    if decision.remove_switchover and SWITCHOVER_ANNOTATION in annotations:
        try:
            api.remove_annotation(
                name, SWITCHOVER_ANNOTATION, str(annotations[SWITCHOVER_ANNOTATION])
            )
            log.info("switchover request consumed", extra={"aliasip": name})
        except (ApiError, ApiUnavailable) as exc:
            # 422: the served request is gone already (consumed by an earlier decision) or
            # a new one replaced it, which is decided on its own.
            log.info("switchover annotation kept", extra={"aliasip": name, "error": str(exc)})
            if not decision.changed(current):
                return  # this decision only served that request: nothing to report
    involved = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AliasIP",
        "name": name,
        "uid": metadata.get("uid"),
    }
    for event in decision.events:
        try:
            api.post_event(
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


# ----------------------------------------------------------------------- triggers


@kopf.on.event(GROUP, VERSION, PLURAL)
async def aliasip_changed(type: str, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """Every watch event of an AliasIP: spec, annotations and the agents' reports.

    The indexes come in ``kwargs`` by their function names (``nodes``, ``agent_leases``,
    ``aliasips``): kopf's handler protocols type only its own kwargs.
    """
    if type == "DELETED":
        return
    await evaluate(body, context(memo), kwargs["nodes"], kwargs["agent_leases"], kwargs["aliasips"])


@kopf.timer(GROUP, VERSION, PLURAL, interval=RECHECK_INTERVAL_S)
async def recheck(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """Node and Lease changes, and Lease expiries nobody announces (module docstring)."""
    await evaluate(body, context(memo), kwargs["nodes"], kwargs["agent_leases"], kwargs["aliasips"])
