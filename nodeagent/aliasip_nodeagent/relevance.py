"""Pure: does an AliasIP concern this node at all? Read from the raw object, unparsed.

Every agent watches every AliasIP (one watch, no per-node server-side filter exists for a
list field), but in a cluster of 50 nodes and 1,000 AliasIPs an agent has a part in a few
dozen of them. Parsing an object validates it against the CRD's schema (1-2 ms), and a
reconcile pass plans, reports and watches holders per object: doing that for all of them
on every watch event made each agent's work O(AliasIPs x events), and 50 agents saturated
the machine before 1,000 AliasIPs became Active (bench/results/scale.md). So an agent
parses, plans and reports only for the AliasIPs that concern it, and wakes only for
events of those.

An AliasIP concerns ``node`` when any of these holds, which is exactly when the agent
could have something to do or to say for it (``report.view_for`` returns a view, or
``reconcile.plan`` an action):

- ``status.activeNode`` names it (hold it, or report the error);
- ``spec.nodes`` lists it (report standby; watch the holder's Lease on the wire);
- ``status.nodes`` has its view (keep that view truthful: released, holderHeard);
- the kernel holds one of its addresses with our mark (release it).

A node matched only by ``spec.nodeSelector`` is concerned once it is named active, as the
agent cannot evaluate the selector (it never reads Node objects). An object whose raw
fields cannot be read concerns every node: the full parse then says what is wrong.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def concerns(node: str, obj: Mapping[str, Any] | None, held: Collection[str]) -> bool:
    """Whether the AliasIP ``obj`` (as the API serves it) concerns ``node``, which holds
    the addresses ``held`` (our marked ones, from the last kernel snapshot, as
    ``held_texts`` spells them: this runs for every object on every pass)."""
    if obj is None:
        return False
    spec = obj.get("spec")
    status = obj.get("status")
    if not isinstance(spec, Mapping) or not isinstance(status or {}, Mapping):
        return True
    status = status or {}
    if status.get("activeNode") == node:
        return True
    views = status.get("nodes")
    if isinstance(views, Mapping) and node in views:
        return True
    listed = spec.get("nodes")
    if isinstance(listed, list) and node in listed:
        return True
    if not held:
        return False
    addresses = spec.get("addresses")
    if not isinstance(addresses, list):
        return True
    for text in addresses:
        head = str(text).split("/", 1)[0]
        if ":" in head:  # IPv4 is written one way only; IPv6 may be spelt many ways
            try:
                head = str(ipaddress.ip_interface(str(text)).ip)
            except ValueError:
                continue  # not an address: nothing of it can be held here
        if head in held:
            return True
    return False


def held_texts(held: Collection[IPAddress]) -> frozenset[str]:
    """The held addresses as ``concerns`` compares them (canonical text)."""
    return frozenset(str(ip) for ip in held)
