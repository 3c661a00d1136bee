"""``metadata.managedFields``: who owns which field, in kube-apiserver's encoding.

Field paths and sets are those of sigs.k8s.io/structured-merge-diff (``fieldpath``): a
path is a tuple of elements, each ``("f", name)`` (a field or map key), ``("k", json)``
(an item of a ``map`` list, by its key fields), ``("v", json)`` (an item of a ``set``
list) or ``("i", index)``. A set of paths is written as FieldsV1: a nested JSON object
keyed ``f:name``, ``k:{"name":"x"}``, ``v:"x"``, ``i:0``, where ``{}`` is a member with
no children and ``".": {}`` marks a member that also has children.

An entry is keyed as kube-apiserver keys it (``BuildManagerIdentifier``): manager,
operation, subresource, and the apiVersion for ``Update`` entries only (an applier keeps
one entry whatever version it applies with). Entries are written sorted as
``sortEncodedManagedFields`` sorts them: operation, time, manager, apiVersion,
subresource. Conflict messages name a manager as ``printManager`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]
Element = tuple[str, str]
Path = tuple[Element, ...]

APPLY = "Apply"
UPDATE = "Update"
FIELDS_V1 = "FieldsV1"
# Paths kube-apiserver never records as owned (fieldmanager's stripMeta manager).
STRIPPED: frozenset[Path] = frozenset(
    {
        (("f", "apiVersion"),),
        (("f", "kind"),),
        (("f", "metadata"),),
        *(
            (("f", "metadata"), ("f", name))
            for name in (
                "name",
                "namespace",
                "creationTimestamp",
                "selfLink",
                "uid",
                "clusterName",
                "generation",
                "managedFields",
                "resourceVersion",
            )
        ),
    }
)


@dataclass(frozen=True, order=True)
class Manager:
    """One managedFields entry's identity."""

    manager: str
    operation: str
    api_version: str = ""
    subresource: str = ""

    @property
    def applies(self) -> bool:
        return self.operation == APPLY

    def printed(self) -> str:
        """kube-apiserver's ``printManager``, as conflict messages name a manager.

        It prints the manager's identifier, which holds no time (and an apiVersion only
        for Update entries): ``"kubectl-edit" using apps/v1``, or ``"flux"`` for an
        applier.
        """
        text = _quote(self.manager)
        if self.subresource:
            text += f" with subresource {_quote(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text


@dataclass
class Entry:
    """A manager's fields, the apiVersion it used and when it last changed something."""

    fields: set[Path]
    api_version: str
    time: str


Managed = dict[Manager, Entry]


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def key_json(fields: Iterable[tuple[str, Any]]) -> str:
    """The ``k:`` element of a map-list item: its key fields, sorted by name, as JSON."""
    return json.dumps(dict(sorted(fields)), separators=(",", ":"), ensure_ascii=False)


def value_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def path_string(path: Path) -> str:
    """``fieldpath.Path.String()``: ``.spec.containers[name="agent"].image``."""
    out = []
    for kind, text in path:
        if kind == "f":
            out.append(f".{text}")
        elif kind == "k":
            pairs = json.loads(text)
            out.append("[" + ",".join(f"{k}={value_json(v)}" for k, v in pairs.items()) + "]")
        elif kind == "v":
            out.append(f"[={text}]")
        else:
            out.append(f"[{text}]")
    return "".join(out)


def _order(element: Element) -> tuple[int, Any]:
    kind, text = element
    rank = "fkvi".index(kind)
    return (rank, int(text) if kind == "i" else text)


def encode_fields(paths: Iterable[Path]) -> Json:
    """A set of paths as FieldsV1."""
    tree: dict[Element, Any] = {}
    members: set[Path] = set()
    for path in paths:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        members.add(path)

    def render(node: dict[Element, Any], prefix: Path) -> Json:
        out: Json = {}
        if node and prefix in members:
            out["."] = {}
        for element in sorted(node, key=_order):
            out[f"{element[0]}:{element[1]}"] = render(node[element], (*prefix, element))
        return out

    return render(tree, ())


def decode_fields(fields: Any, prefix: Path = ()) -> set[Path]:
    """FieldsV1 back to a set of paths (malformed parts are skipped)."""
    out: set[Path] = set()
    if not isinstance(fields, dict):
        return out
    for name, child in fields.items():
        if name == ".":
            if prefix:
                out.add(prefix)
            continue
        kind, sep, text = str(name).partition(":")
        if not sep or kind not in ("f", "k", "v", "i"):
            continue
        path = (*prefix, (kind, text))
        if isinstance(child, dict) and child:
            out |= decode_fields(child, path)
        else:
            out.add(path)
    return out


def decode(entries: Any) -> Managed:
    """``metadata.managedFields`` as ``Managed`` (entries that do not parse are dropped)."""
    managed: Managed = {}
    if not isinstance(entries, list):
        return managed
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("fieldsType", FIELDS_V1) != FIELDS_V1:
            continue
        operation = str(entry.get("operation") or "")
        if operation not in (APPLY, UPDATE):
            continue
        api_version = str(entry.get("apiVersion") or "")
        key = Manager(
            manager=str(entry.get("manager") or ""),
            operation=operation,
            api_version="" if operation == APPLY else api_version,
            subresource=str(entry.get("subresource") or ""),
        )
        managed[key] = Entry(
            decode_fields(entry.get("fieldsV1")), api_version, str(entry.get("time") or "")
        )
    return managed


def encode(managed: Managed) -> list[Json]:
    """``Managed`` as ``metadata.managedFields``, in kube-apiserver's order."""

    def order(item: tuple[Manager, Entry]) -> tuple[str, str, str, str, str]:
        key, entry = item
        return (key.operation, entry.time, key.manager, entry.api_version, key.subresource)

    out: list[Json] = []
    for key, entry in sorted(managed.items(), key=order):
        if not entry.fields:
            continue
        item: Json = {"manager": key.manager, "operation": key.operation}
        item["apiVersion"] = entry.api_version
        if entry.time:
            item["time"] = entry.time
        item["fieldsType"] = FIELDS_V1
        item["fieldsV1"] = encode_fields(entry.fields)
        if key.subresource:
            item["subresource"] = key.subresource
        out.append(item)
    return out


def user_agent_manager(user_agent: str) -> str:
    """The manager of a write without ``fieldManager``: the User-Agent's product name.

    As kube-apiserver's ``prefixFromUserAgent``: up to the first ``/``, at most 128
    characters ("kubectl", "OpenAPI-Generator", "python-requests").
    """
    return user_agent.split("/", 1)[0][:128]
