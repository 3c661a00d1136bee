"""Semantic checks the CRD's schema cannot express, as pure functions returning findings.

They run on parsed specs and never raise: the operator turns findings into status (phase
Invalid or Conflict, a condition) and an Event, and carries on with the other AliasIPs.

Claims: every parsed AliasIP claims the IP address of each of its addresses (the prefix
does not matter: 198.18.0.50/24 and 198.18.0.50/32 are one address on the wire). When two
AliasIPs claim one address, the older one keeps it (earlier ``creationTimestamp``, ties
broken by name) and the younger one is in Conflict, naming the oldest claimant. Whether
that oldest claimant is itself valid does not matter: the rule stays local and stable, so
fixing or deleting one object never makes an unrelated one lose its addresses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from aliasip_api import kubetime
from aliasip_api.addresses import (
    IPAddress,
    reserved_kind,
    subnet_reserved_kind,
    with_article,
)
from aliasip_api.errors import (
    ADDRESS_CONFLICT,
    DUPLICATE_ADDRESS,
    RESERVED_ADDRESS,
    STATIONARY_ADDRESS,
    Finding,
)
from aliasip_api.nodes import NodeInfo
from aliasip_api.spec import AliasIP, AliasIPSpec
from aliasip_api.status import Phase


def address_findings(spec: AliasIPSpec) -> tuple[Finding, ...]:
    """Addresses that repeat an earlier one's IP, and addresses that can never be aliases."""
    found: list[Finding] = []
    first: dict[IPAddress, int] = {}
    for index, address in enumerate(spec.addresses):
        path = f"spec.addresses[{index}]"
        ip = address.ip
        if ip in first:
            earlier = first[ip]
            found.append(
                Finding(
                    path,
                    f"{ip} is the same address as spec.addresses[{earlier}] "
                    f"({spec.addresses[earlier]})",
                    DUPLICATE_ADDRESS,
                )
            )
        else:
            first[ip] = index
        kind = reserved_kind(ip)
        if kind:
            found.append(
                Finding(
                    path,
                    f"{ip} is {with_article(kind)} address and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            )
            continue
        kind = subnet_reserved_kind(ip, address.network)
        if kind:
            message = f"{ip} is the {kind} address of {address.network} and cannot be an alias"
            found.append(Finding(path, message, RESERVED_ADDRESS))
    return tuple(found)


def stationary_findings(spec: AliasIPSpec, nodes: Iterable[NodeInfo]) -> tuple[Finding, ...]:
    """Addresses equal to a node's stationary address (InternalIP or ExternalIP)."""
    owners: dict[IPAddress, list[str]] = defaultdict(list)
    for node in nodes:
        for kind, ip in node.addresses:
            owners[ip].append(f"{kind} of node {node.name}")
    found = []
    for index, address in enumerate(spec.addresses):
        if address.ip in owners:
            message = (
                f"{address.ip} is a stationary address ({', '.join(sorted(owners[address.ip]))})"
                " and cannot be an alias"
            )
            found.append(Finding(f"spec.addresses[{index}]", message, STATIONARY_ADDRESS))
    return tuple(found)


def conflict_findings(aliasips: Iterable[AliasIP]) -> dict[str, tuple[Finding, ...]]:
    """For every AliasIP (by name), the addresses an older AliasIP already claims.

    An empty tuple means no conflict. Each finding names the oldest claimant.
    """
    everyone = sorted(aliasips, key=lambda a: a.seniority)
    oldest: dict[IPAddress, AliasIP] = {}
    found: dict[str, tuple[Finding, ...]] = {}
    for aliasip in everyone:
        mine: list[Finding] = []
        seen: set[IPAddress] = set()
        for index, address in enumerate(aliasip.spec.addresses):
            ip = address.ip
            if ip in seen:
                continue  # the same IP twice in one object is a DuplicateAddress finding
            seen.add(ip)
            holder = oldest.setdefault(ip, aliasip)
            if holder is not aliasip:
                mine.append(
                    Finding(
                        f"spec.addresses[{index}]", _conflict(ip, holder, aliasip), ADDRESS_CONFLICT
                    )
                )
        found[aliasip.name] = tuple(mine)
    return found


def _conflict(ip: IPAddress, holder: AliasIP, younger: AliasIP) -> str:
    created = holder.creation_timestamp
    if created is None:
        when = "not created yet either, and first by name"
    elif created == younger.creation_timestamp:
        when = f"created at the same time ({kubetime.format_time(created)}) and first by name"
    else:
        when = f"created earlier ({kubetime.format_time(created)})"
    return f"{ip} is already claimed by AliasIP {holder.name}, {when}"


def phase_for(findings: Iterable[Finding]) -> Phase | None:
    """The phase findings put an AliasIP in: Invalid beats Conflict; None if there are none.

    Invalid wins because fixing the object comes first: a conflict may disappear with it.
    """
    reasons = {f.reason for f in findings}
    if not reasons:
        return None
    return Phase.CONFLICT if reasons == {ADDRESS_CONFLICT} else Phase.INVALID
