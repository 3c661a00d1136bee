"""In-memory objects with etcd-like versioning: one global, monotonically increasing
resourceVersion, a bounded change history per resource, and live subscribers.

Like etcd behind kube-apiserver, every write (to any resource) takes the next revision and
stamps it into ``metadata.resourceVersion``. Each resource keeps its last ``history``
changes so that a watch can resume from a resourceVersion a client saw earlier; a
resourceVersion older than what is kept is *expired* (the server then answers 410 Gone,
as kube-apiserver's watch cache does). Nothing else is remembered per request, so the
cost of a request depends on the objects stored, never on how many requests came before.

Stored objects are treated as immutable: a write stores a new dict. That lets readers,
the history and every subscriber share one object without copies.

This module knows nothing about HTTP, validation or Kubernetes semantics beyond
versioning; it is driven from a single event loop thread, so it needs no locks.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

Json = dict[str, Any]
GroupResource = tuple[str, str]  # (group, plural)
ObjectKey = tuple[str, str]  # (namespace or "", name)

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


def dumps(obj: object) -> bytes:
    """Compact JSON, as the Go encoder writes it (no spaces)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Change:
    """One stored change of one object; ``prev`` is the state it replaced, if any."""

    __slots__ = ("_line", "obj", "prev", "rv", "type")

    def __init__(self, type_: str, rv: int, obj: Json, prev: Json | None) -> None:
        self.type = type_
        self.rv = rv
        self.obj = obj
        self.prev = prev
        self._line: bytes | None = None

    def line(self) -> bytes:
        """The watch event as one JSON line, serialised once for every subscriber."""
        if self._line is None:
            self._line = dumps({"type": self.type, "object": self.obj}) + b"\n"
        return self._line


Journal = Callable[[GroupResource, Change], None]


class Subscriber(Protocol):
    def push(self, change: Change) -> bool:
        """Take a change; False means it cannot keep up and must be dropped."""
        ...

    def close(self) -> None:
        """The resource stopped being served (its CRD was deleted)."""
        ...


class Expired(Exception):
    """A resourceVersion older than the kept history of a resource."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass
class _Table:
    objects: dict[ObjectKey, Json]
    raw: dict[ObjectKey, bytes]
    history: deque[Change]
    # Every change with rv > horizon is still in ``history``.
    horizon: int
    subscribers: set[Subscriber] = field(default_factory=set)


class Store:
    """Objects per (group, resource); see the module docstring."""

    def __init__(
        self, history: int = 1000, start_rv: int = 1, journal: Journal | None = None
    ) -> None:
        if history < 1:
            raise ValueError("history must keep at least one change")
        self.history_size = history
        self._rv = start_rv
        self._tables: dict[GroupResource, _Table] = {}
        self.namespace_counts: Counter[str] = Counter()
        self.journal = journal

    def restore(self, rv: int, objects: dict[GroupResource, dict[ObjectKey, Json]]) -> None:
        """Start from saved state (a restarted server over the same etcd): the revision
        continues; there is no history, so a watch from before the restart is expired."""
        self._rv = max(self._rv, rv)
        for gr, stored in objects.items():
            if not stored:
                continue  # e.g. the resource of a CRD deleted before the restart
            self.ensure(gr)
            table = self._tables[gr]
            table.horizon = self._rv
            for key, obj in stored.items():
                table.objects[key] = obj
                if key[0]:
                    self._count(key[0], +1)

    def dump(self) -> Iterator[tuple[GroupResource, ObjectKey, Json]]:
        """Every stored object (for a snapshot)."""
        for gr, table in self._tables.items():
            for key, obj in table.objects.items():
                yield gr, key, obj

    @property
    def rv(self) -> int:
        """The newest revision: every stored object's resourceVersion is at most this."""
        return self._rv

    # ------------------------------------------------------------------ resources

    def ensure(self, gr: GroupResource) -> None:
        """Start keeping objects of ``gr``; watches from before now are expired."""
        if gr not in self._tables:
            self._tables[gr] = _Table({}, {}, deque(), horizon=self._rv)

    def has(self, gr: GroupResource) -> bool:
        return gr in self._tables

    def drop(self, gr: GroupResource) -> None:
        """Forget ``gr`` (its CRD is gone); subscribers are told to end."""
        table = self._tables.pop(gr, None)
        if table is None:
            return
        for namespace, _ in table.objects:
            if namespace:
                self._count(namespace, -1)
        for sub in list(table.subscribers):
            sub.close()

    # ------------------------------------------------------------------ reads

    def get(self, gr: GroupResource, key: ObjectKey) -> Json | None:
        return self._table(gr).objects.get(key)

    def raw(self, gr: GroupResource, key: ObjectKey) -> bytes | None:
        """The stored object as JSON, serialised at most once per version."""
        table = self._table(gr)
        cached = table.raw.get(key)
        if cached is None:
            obj = table.objects.get(key)
            if obj is None:
                return None
            cached = table.raw[key] = dumps(obj)
        return cached

    def items(
        self, gr: GroupResource, namespace: str | None = None
    ) -> Iterator[tuple[ObjectKey, Json]]:
        """Objects of ``gr`` (in one namespace, or all), ordered by namespace and name."""
        objects = self._table(gr).objects
        for key in sorted(objects):
            if namespace is None or key[0] == namespace:
                yield key, objects[key]

    def count(self, gr: GroupResource) -> int:
        return len(self._table(gr).objects)

    def since(self, gr: GroupResource, rv: int) -> list[Change]:
        """Changes of ``gr`` after ``rv``, oldest first; Expired if some were dropped."""
        table = self._table(gr)
        if rv < table.horizon:
            oldest = table.history[0].rv if table.history else self._rv
            raise Expired(rv, oldest - 1)
        out: list[Change] = []
        for change in reversed(table.history):
            if change.rv <= rv:
                break
            out.append(change)
        out.reverse()
        return out

    # ------------------------------------------------------------------ writes

    def create(self, gr: GroupResource, key: ObjectKey, obj: Json) -> Json:
        table = self._table(gr)
        if key in table.objects:
            raise KeyError(key)
        stamped = self._stamp(obj)
        table.objects[key] = stamped
        table.raw.pop(key, None)
        if key[0]:
            self._count(key[0], +1)
        self._record(gr, table, Change(ADDED, self._rv, stamped, None))
        return stamped

    def update(self, gr: GroupResource, key: ObjectKey, obj: Json) -> Json:
        table = self._table(gr)
        prev = table.objects[key]
        stamped = self._stamp(obj)
        table.objects[key] = stamped
        table.raw.pop(key, None)
        self._record(gr, table, Change(MODIFIED, self._rv, stamped, prev))
        return stamped

    def delete(self, gr: GroupResource, key: ObjectKey) -> Json:
        """Remove the object; the DELETED change carries its last state at a new revision."""
        table = self._table(gr)
        prev = table.objects.pop(key)
        table.raw.pop(key, None)
        if key[0]:
            self._count(key[0], -1)
        final = self._stamp({**prev, "metadata": dict(prev.get("metadata", {}))})
        self._record(gr, table, Change(DELETED, self._rv, final, prev))
        return final

    # ------------------------------------------------------------------ subscribers

    def subscribe(self, gr: GroupResource, sub: Subscriber) -> None:
        self._table(gr).subscribers.add(sub)

    def unsubscribe(self, gr: GroupResource, sub: Subscriber) -> None:
        table = self._tables.get(gr)
        if table is not None:
            table.subscribers.discard(sub)

    def close_all(self) -> None:
        """End every subscription (server shutdown)."""
        for table in self._tables.values():
            for sub in list(table.subscribers):
                sub.close()
            table.subscribers.clear()

    # ------------------------------------------------------------------ introspection

    def sizes(self) -> dict[str, int]:
        """Every container the store keeps, by size: what may grow, and with what.

        Objects grow with what clients store; history is bounded per resource; nothing
        grows with the number of requests served. The cost test asserts exactly that.
        """
        return {
            "resources": len(self._tables),
            "objects": sum(len(t.objects) for t in self._tables.values()),
            "raw_cache": sum(len(t.raw) for t in self._tables.values()),
            "history": sum(len(t.history) for t in self._tables.values()),
            "history_max": max((len(t.history) for t in self._tables.values()), default=0),
            "subscribers": sum(len(t.subscribers) for t in self._tables.values()),
            "namespaces_counted": len(self.namespace_counts),
        }

    # ------------------------------------------------------------------ internals

    def _table(self, gr: GroupResource) -> _Table:
        try:
            return self._tables[gr]
        except KeyError:
            raise LookupError(f"resource {gr} is not stored") from None

    def _stamp(self, obj: Json) -> Json:
        self._rv += 1
        metadata = obj.setdefault("metadata", {})
        metadata["resourceVersion"] = str(self._rv)
        return obj

    def _record(self, gr: GroupResource, table: _Table, change: Change) -> None:
        if self.journal is not None:
            self.journal(gr, change)
        if len(table.history) >= self.history_size:
            table.horizon = table.history.popleft().rv
        table.history.append(change)
        for sub in list(table.subscribers):
            if not sub.push(change):
                table.subscribers.discard(sub)
                sub.close()

    def _count(self, namespace: str, delta: int) -> None:
        self.namespace_counts[namespace] += delta
        if self.namespace_counts[namespace] <= 0:
            del self.namespace_counts[namespace]
