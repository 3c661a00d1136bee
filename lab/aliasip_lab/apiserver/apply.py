"""Server-side apply and field ownership: structured-merge-diff, on plain JSON values.

kube-apiserver keeps, for every object, which manager owns which field
(``managedFields``), and ``PATCH`` with ``application/apply-patch+yaml`` merges an
applier's whole intent into the object. This module is the pure part of that, after
sigs.k8s.io/structured-merge-diff (``merge.Updater``) as kube-apiserver 1.32 uses it:

- **Types from the schema.** A map with ``properties`` is a struct, one with
  ``additionalProperties`` (or an untyped one) a map; ``x-kubernetes-map-type: atomic``
  makes either one value. Lists follow ``x-kubernetes-list-type``: ``map`` (items keyed
  by ``x-kubernetes-list-map-keys``, a missing key taking its schema ``default``),
  ``set`` (items keyed by value), otherwise ``atomic`` (one value; also every untyped
  list).
- **Field sets** (``field_set``, SMD's ``ToFieldSet``): scalars, atomic values, list
  items, map keys that are not struct fields, and empty or null values are members.
- **Merge** (``merge``): the config's values win; maps merge key by key; ``map`` and
  ``set`` lists merge item by item, keeping the live items the config does not name.
- **Compare** (``compare``): added, removed and modified paths between two values.
- **Apply** (``apply``): merge, then remove what the applier applied last time but no
  longer applies, unless another manager owns it; every other manager owning a field
  whose value changes is a conflict (409), unless ``force``, which moves the field to
  the applier. The applier's set becomes exactly its config's fields.
- **Update** (``update``): any other write; the writer takes every field it added or
  changed, from whoever owned it, and loses the ones it removed, as everyone does.

Fields in ``ignored`` (``status`` for a resource's main endpoint when it has a status
subresource, ``spec`` for ``/status``: kube-apiserver's reset fields) are never owned.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aliasip_lab.apiserver.builtin_schemas import ANY, OBJECT_META, STRING
from aliasip_lab.apiserver.managedfields import (
    STRIPPED,
    Element,
    Entry,
    Managed,
    Manager,
    Path,
    key_json,
    path_string,
    value_json,
)

Json = dict[str, Any]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class TypeError_(Exception):
    """A value that does not fit its schema (SMD: "failed to create typed ... object")."""


@dataclass
class Conflict:
    manager: Manager
    path: Path


class Conflicts(Exception):
    """Apply found fields owned by other managers that it would change."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(conflict_message(conflicts))
        self.conflicts = conflicts


def conflict_message(conflicts: list[Conflict]) -> str:
    """kube-apiserver's ``getConflictMessage``, word for word."""
    if len(conflicts) == 1:
        only = conflicts[0]
        return (
            f"Apply failed with 1 conflict: conflict with {only.manager.printed()}: "
            f"{path_string(only.path)}"
        )
    by_manager: dict[str, list[Path]] = {}
    for conflict in conflicts:
        by_manager.setdefault(conflict.manager.printed(), []).append(conflict.path)
    lines = []
    for printed in sorted(by_manager):
        lines.append(f"conflicts with {printed}:")
        lines += [f"- {path_string(p)}" for p in by_manager[printed]]
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


# --------------------------------------------------------------------------- types


def root_schema(schema: Json | None) -> Json:
    """The object's schema with apiVersion, kind and ObjectMeta, as SMD types a root."""
    base = schema if schema is not None else ANY
    properties = {
        **(base.get("properties") or {}),
        "apiVersion": STRING,
        "kind": STRING,
        "metadata": OBJECT_META,
    }
    return {**base, "type": "object", "properties": properties}


def _shape(schema: Json, value: Any) -> str:
    if isinstance(value, dict):
        return "atomic" if schema.get("x-kubernetes-map-type") == "atomic" else "map"
    if isinstance(value, list):
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "map" and schema.get("x-kubernetes-list-map-keys"):
            return "listmap"
        return "set" if list_type == "set" else "atomic"
    return "scalar"


def _child(schema: Json, key: str, strict: bool = False) -> tuple[Json, bool]:
    """The schema of ``key`` in a map, and whether it is a struct field."""
    properties = schema.get("properties") or {}
    if key in properties:
        return properties[key], True
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        return additional, False
    if (
        strict
        and properties
        and not schema.get("x-kubernetes-preserve-unknown-fields")
        and additional is not True
    ):
        raise TypeError_("field not declared in schema")
    return ANY, False


def _items(schema: Json) -> Json:
    items = schema.get("items")
    return items if isinstance(items, dict) else ANY


def element(schema: Json, item: Any) -> Element:
    """The path element of a list item (``k:`` for map lists, ``v:`` for sets)."""
    if _shape(schema, [item]) == "set":
        return ("v", value_json(item))
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if not isinstance(item, dict):
        raise TypeError_("expected map, got a non-map item in an associative list")
    item_props = _items(schema).get("properties") or {}
    pairs = []
    for key in keys:
        if key in item:
            pairs.append((key, item[key]))
        elif "default" in (item_props.get(key) or {}):
            pairs.append((key, item_props[key]["default"]))
        else:
            raise TypeError_(
                f"associative list with keys has an element that omits key field {key!r} "
                "(and doesn't have default value)"
            )
    return ("k", key_json(pairs))


def _index(schema: Json, items: list[Any]) -> list[tuple[Element, Any]]:
    return [(element(schema, item), item) for item in items]


# --------------------------------------------------------------------------- field sets


def field_set(value: Any, schema: Json, strict: bool = False) -> set[Path]:
    """The paths ``value`` sets (SMD ``ToFieldSet``); ``strict``: unknown fields raise."""
    out: set[Path] = set()
    _walk(value, schema, (), out, strict)
    return out


def _walk(value: Any, schema: Json, path: Path, out: set[Path], strict: bool) -> None:
    shape = _shape(schema, value)
    if shape in ("scalar", "atomic"):
        if path:
            out.add(path)
        return
    if shape == "map":
        for key, item in value.items():
            child = (*path, ("f", key))
            try:
                sub, is_field = _child(schema, key, strict)
            except TypeError_ as exc:
                raise TypeError_(f"{path_string(child)}: {exc}") from None
            _walk(item, sub, child, out, strict)
            if item is None or item == {} or not is_field:
                out.add(child)
        return
    for item in value:  # duplicates are one path here; validation rejects them later
        pe = element(schema, item)
        child = (*path, pe)
        _walk(item, _items(schema), child, out, strict)
        out.add(child)


def _all_paths(value: Any, schema: Json, path: Path) -> set[Path]:
    """Every node of ``value`` (itself included): what appears or goes with it."""
    out = {path} if path else set()
    shape = _shape(schema, value)
    if shape == "map":
        for key, item in value.items():
            out |= _all_paths(item, _child(schema, key)[0], (*path, ("f", key)))
    elif shape in ("listmap", "set"):
        for pe, item in _index(schema, value):
            out |= _all_paths(item, _items(schema), (*path, pe))
    return out


# --------------------------------------------------------------------------- merge


def merge(live: Any, config: Any, schema: Json) -> Any:
    """``config`` merged into ``live`` (SMD ``TypedValue.Merge``), on copies."""
    if config is MISSING:
        return copy.deepcopy(live)
    if live is MISSING:
        return copy.deepcopy(config)
    shape = _shape(schema, config)
    if shape == "map" and isinstance(live, dict) and _shape(schema, live) == "map":
        out = copy.deepcopy(live)
        for key, item in config.items():
            out[key] = merge(live.get(key, MISSING), item, _child(schema, key)[0])
        return out
    if shape in ("listmap", "set") and isinstance(live, list):
        return _merge_list(live, config, schema)
    return copy.deepcopy(config)


def _merge_list(live: list[Any], config: list[Any], schema: Json) -> list[Any]:
    """SMD's list merge: the config's order for the items it names, live-only items kept
    where they were relative to the shared ones."""
    items = _items(schema)
    lhs = _index(schema, live)
    rhs = _index(schema, config)
    observed_l = {pe: item for pe, item in lhs}
    observed_r = {pe: item for pe, item in rhs}
    shared = deque(pe for pe, _ in rhs if pe in observed_l)
    next_shared = shared.popleft() if shared else None
    out: list[Any] = []
    merged_r: set[Element] = set()
    li = ri = 0
    while li < len(lhs) or ri < len(rhs):
        if li < len(lhs) and ri < len(rhs):
            pe = lhs[li][0]
            if pe == rhs[ri][0]:
                merged_r.add(pe)
                out.append(merge(observed_l[pe], observed_r[pe], items))
                li += 1
                ri += 1
                next_shared = shared.popleft() if shared else None
                continue
            if pe in observed_r and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lhs):
            pe = lhs[li][0]
            if pe not in observed_r:
                out.append(copy.deepcopy(lhs[li][1]))
                li += 1
                continue
            if pe in merged_r:
                li += 1
                continue
        if ri < len(rhs):
            pe = rhs[ri][0]
            merged_r.add(pe)
            out.append(merge(observed_l.get(pe, MISSING), observed_r[pe], items))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.popleft() if shared else None
    return out


# --------------------------------------------------------------------------- compare


@dataclass
class Comparison:
    added: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)

    @property
    def changed(self) -> set[Path]:
        return self.added | self.modified


def compare(old: Any, new: Any, schema: Json) -> Comparison:
    """What changed from ``old`` to ``new`` (SMD ``TypedValue.Compare``)."""
    comparison = Comparison()
    _compare(old, new, schema, (), comparison)
    return comparison


def _compare(old: Any, new: Any, schema: Json, path: Path, c: Comparison) -> None:
    if old is new or (type(old) is type(new) and isinstance(old, dict | list) and old == new):
        return  # an unchanged subtree (most of any write): nothing to walk
    if old is MISSING and new is MISSING:
        return
    if old is MISSING:
        c.added |= _all_paths(new, schema, path)
        return
    if new is MISSING:
        c.removed |= _all_paths(old, schema, path)
        return
    shape = _shape(schema, new)
    if shape != _shape(schema, old) or shape in ("scalar", "atomic"):
        if not _equal(old, new) and path:
            c.modified.add(path)
        return
    if shape == "map":
        for key in {**old, **new}:
            sub = _child(schema, key)[0]
            _compare(old.get(key, MISSING), new.get(key, MISSING), sub, (*path, ("f", key)), c)
        return
    lhs = dict(_index(schema, old))
    rhs = dict(_index(schema, new))
    for pe in {**lhs, **rhs}:
        _compare(lhs.get(pe, MISSING), rhs.get(pe, MISSING), _items(schema), (*path, pe), c)


def _equal(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# --------------------------------------------------------------------------- removal


def remove(value: Any, paths: set[Path], schema: Json) -> Any:
    """``value`` without the nodes at ``paths`` (and what is under them), on a copy.

    A map or list that removal leaves empty goes too, as the Go types omit empty maps
    and lists when they are written back.
    """
    result = _remove(value, paths, _prefixes(paths), schema, ())
    return {} if result is MISSING else result


def _prefixes(paths: set[Path]) -> set[Path]:
    """Every proper prefix of ``paths``: whether to look inside a node, in one lookup
    (a pass per node over all paths would be quadratic in a 10,000-item list)."""
    return {p[:i] for p in paths for i in range(len(p))}


def _remove(value: Any, paths: set[Path], inside: set[Path], schema: Json, path: Path) -> Any:
    if path in paths:
        return MISSING
    if path not in inside:
        return copy.deepcopy(value)
    shape = _shape(schema, value)
    if shape == "map":
        out = {}
        for key, item in value.items():
            kept = _remove(item, paths, inside, _child(schema, key)[0], (*path, ("f", key)))
            if kept is not MISSING:
                out[key] = kept
        return out if out or not value or not path else MISSING
    if shape in ("listmap", "set"):
        keys = schema.get("x-kubernetes-list-map-keys") or [] if shape == "listmap" else []
        kept_items = []
        for pe, item in _index(schema, value):
            kept = _remove(item, paths, inside, _items(schema), (*path, pe))
            if kept is MISSING:
                continue
            if isinstance(kept, dict) and isinstance(item, dict):
                # An item kept for what others own keeps its identity (SMD adds owned
                # items back under their keys).
                kept.update({k: item[k] for k in keys if k in item})
            kept_items.append(kept)
        return kept_items if kept_items or not value else MISSING
    return copy.deepcopy(value)


# --------------------------------------------------------------------------- ownership


def _strip(paths: set[Path], ignored: tuple[Path, ...]) -> set[Path]:
    return {p for p in paths if p not in STRIPPED and not any(p[: len(i)] == i for i in ignored)}


def _take(
    managed: Managed,
    old: Any,
    new: Any,
    schema: Json,
    me: Manager,
    force: bool,
    ignored: tuple[Path, ...],
) -> Comparison:
    """SMD ``Updater.update``: others lose what changed (or conflict) and what went."""
    comparison = compare(old, new, schema)
    comparison.added = _strip(comparison.added, ignored)
    comparison.modified = _strip(comparison.modified, ignored)
    comparison.removed = _strip(comparison.removed, ignored)
    changed = comparison.changed
    conflicts: list[Conflict] = []
    for other, entry in managed.items():
        if other == me:
            continue
        clash = entry.fields & changed
        if clash and not force:
            conflicts += [Conflict(other, p) for p in sorted(clash, key=_path_order)]
    if conflicts:
        raise Conflicts(conflicts)
    for other, entry in list(managed.items()):
        if other == me:
            continue
        entry.fields -= changed | comparison.removed
        if not entry.fields:
            del managed[other]
    return comparison


def _path_order(path: Path) -> tuple[tuple[int, str], ...]:
    return tuple(("fkvi".index(k), t) for k, t in path)


def update(
    managed: Managed,
    old: Any,
    new: Any,
    schema: Json,
    me: Manager,
    api_version: str,
    now: str,
    ignored: tuple[Path, ...] = (),
) -> Managed:
    """The managers after a non-apply write of ``new`` over ``old`` by ``me``.

    As kube-apiserver's ``managedFieldsUpdater.Update``: the writer takes what it added
    or changed (keeping what it owned before), nobody keeps what was removed, and the
    writer's time moves only when it took something.
    """
    result = {k: Entry(set(v.fields), v.api_version, v.time) for k, v in managed.items()}
    comparison = _take(result, old, new, schema, me, True, ignored)
    taken = comparison.changed
    previous = result.get(me)
    if previous is not None:
        previous.fields -= comparison.removed
        if not previous.fields:
            del result[me]
    if taken:
        fields = taken | (previous.fields if previous is not None else set())
        result[me] = Entry(fields, api_version, now)
    return result


def apply(
    managed: Managed,
    live: Any,
    config: Json,
    schema: Json,
    me: Manager,
    api_version: str,
    now: str,
    force: bool,
    ignored: tuple[Path, ...] = (),
) -> tuple[Json, Managed]:
    """SMD ``Updater.Apply``: the object after ``me`` applies ``config``, and its managers.

    Raises ``Conflicts`` (unless ``force``) and ``TypeError_`` for a config that does not
    fit the schema. The applier's time moves only when the object changes.
    """
    result = {k: Entry(set(v.fields), v.api_version, v.time) for k, v in managed.items()}
    applied = _strip(field_set(config, schema, strict=True), ignored)
    merged = merge(live, config, schema)
    last = result.get(me)
    if last is not None:
        keep = applied.union(*(e.fields for k, e in result.items() if k != me))
        kept = keep | _prefixes(keep)  # owned, or holding something owned
        gone = {p for p in last.fields - applied if p not in kept}
        merged = remove(merged, gone, schema)
    result[me] = Entry(applied, api_version, last.time if last is not None else now)
    _take(result, live, merged, schema, me, force, ignored)
    if not _equal(live, merged) or last is None:
        result[me].time = now
    if not result[me].fields:
        del result[me]
    return merged, result
