"""The ``meta.k8s.io/v1`` Table kubectl asks for (``Accept: ...;as=Table;v=v1;g=meta.k8s.io``).

``kubectl get`` prints what the server puts in a Table: ``columnDefinitions`` and one row
per object with ``cells`` and the object (``PartialObjectMetadata`` by default, the whole
object with ``includeObject=Object``, nothing with ``None``). For custom resources the
columns are Name plus the CRD's ``additionalPrinterColumns`` (just Age when it declares
none), evaluated with the JSONPath subset printer columns use (``.a.b``, ``.a[0]``,
``.a['x.y']``, ``.a[*]``); a ``string`` column prints lists and maps as compact JSON, the
way kube-apiserver's jsonpath printer does, ``date`` columns as a human age (``5m10s``).
Built-in types get the columns kube-apiserver's printers give them (Nodes: Name, Status,
Roles, Age, Version; wide: Internal-IP, ...).
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aliasip_lab.apiserver.registry import PrinterColumn, ResourceType

Json = dict[str, Any]

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)


# --------------------------------------------------------------------------- time


def parse_time(text: str) -> datetime.datetime | None:
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``: two or three digits."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if rest == 0 else f"{years}y{rest}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any, now: datetime.datetime) -> str:
    """``ConvertToHumanReadableDateType``: ``<unknown>`` without a timestamp."""
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    parsed = parse_time(timestamp)
    if parsed is None:
        return "<invalid>"
    return human_duration((now - parsed).total_seconds())


# --------------------------------------------------------------------------- JSONPath

_SEGMENT = re.compile(
    r"""\.(?P<field>[^.\[\]'"]+)|\[(?P<index>-?\d+)\]|\[(?P<star>\*)\]|\[(?P<q>['"])(?P<key>.*?)(?P=q)\]"""
)


class JsonPathError(ValueError):
    pass


def parse_json_path(path: str) -> list[str | int | None]:
    """``.a.b[0]['c.d'][*]`` to ``['a', 'b', 0, 'c.d', None]`` (None: every element)."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if text.startswith("$"):
        text = text[1:]
    parts: list[str | int | None] = []
    pos = 0
    while pos < len(text):
        match = _SEGMENT.match(text, pos)
        if match is None:
            raise JsonPathError(f"unsupported JSONPath {path!r} at {text[pos:]!r}")
        if match.group("field") is not None:
            parts.append(match.group("field"))
        elif match.group("index") is not None:
            parts.append(int(match.group("index")))
        elif match.group("star"):
            parts.append(None)
        else:
            parts.append(match.group("key"))
        pos = match.end()
    return parts


def find(obj: Any, parts: list[str | int | None]) -> list[Any]:
    """Every value at the path (missing keys give nothing, as AllowMissingKeys)."""
    values = [obj]
    for part in parts:
        found: list[Any] = []
        for value in values:
            if part is None:
                if isinstance(value, list):
                    found.extend(value)
                elif isinstance(value, dict):
                    found.extend(value[k] for k in sorted(value))
            elif isinstance(part, int):
                if isinstance(value, list) and -len(value) <= part < len(value):
                    found.append(value[part])
            elif isinstance(value, dict) and part in value:
                found.append(value[part])
        values = found
    return values


def go_json(value: Any) -> str:
    """Go's ``json.Marshal``: compact, map keys sorted, <, > and & escaped."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def go_float(value: float) -> str:
    """Go's ``%v`` of a float64: shortest digits, ``e`` notation below 1e-4 or from 1e6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    parts = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, parts.digits))
    point = len(digits) + int(parts.exponent)  # where the decimal point goes
    exponent = point - 1
    if exponent < -4 or exponent >= 6:  # strconv 'g' with shortest precision: eprec = 6
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def print_text(value: Any) -> str:
    """jsonpath PrintResults for one value: JSON for lists and maps, text otherwise."""
    if isinstance(value, (dict, list)):
        return go_json(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def custom_cell(column: PrinterColumn, obj: Json, now: datetime.datetime) -> Any:
    """One cell of a CRD printer column (``cellForJSONValue`` in kube-apiserver)."""
    try:
        values = find(obj, parse_json_path(column.json_path))
    except JsonPathError:
        return None
    if not values:
        return None
    value = values[0]
    if column.type == "string":
        return print_text(value)
    if value is None:
        return None
    if column.type == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        return int(value) if isinstance(value, float) else None
    if column.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)
    if column.type == "boolean":
        return value if isinstance(value, bool) else None
    if column.type == "date":
        if not isinstance(value, str):
            return None
        return age(value, now) if parse_time(value) else "<invalid>"
    return None


# --------------------------------------------------------------------------- built-ins


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    cell: Callable[[Json, datetime.datetime], Any]
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> Json:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


def _meta(obj: Json) -> Json:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


NAME = Column("Name", "string", lambda o, _: _meta(o).get("name", ""), "name", NAME_DESCRIPTION)
AGE = Column(
    "Age",
    "string",
    lambda o, now: age(_meta(o).get("creationTimestamp"), now),
    description="CreationTimestamp is a timestamp representing the server time when this "
    "object was created.",
)


def _node_status(node: Json, _: datetime.datetime) -> str:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None:
        state = "Unknown"
    elif ready.get("status") == "True":
        state = "Ready"
    elif ready.get("status") == "False":
        state = "NotReady"
    else:
        state = "Unknown"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    return state


def _node_roles(node: Json, _: datetime.datetime) -> str:
    roles = set()
    for key, value in (_meta(node).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key.removeprefix("node-role.kubernetes.io/")
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(kind: str) -> Callable[[Json, datetime.datetime], str]:
    def cell(node: Json, _: datetime.datetime) -> str:
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == kind:
                return str(address.get("address", ""))
        return "<none>"

    return cell


def _node_info(key: str) -> Callable[[Json, datetime.datetime], str]:
    def cell(node: Json, _: datetime.datetime) -> str:
        value = ((node.get("status") or {}).get("nodeInfo") or {}).get(key)
        return str(value) if value else "<unknown>"

    return cell


def _event_last_seen(event: Json, now: datetime.datetime) -> str:
    last = (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or _meta(event).get("creationTimestamp")
    )
    text = age(last, now)
    count = event.get("count") or 0
    if isinstance(count, int) and count > 1:
        first = event.get("firstTimestamp") or last
        return f"{text} (x{count} over {age(first, now)})"
    return text


def _event_source(event: Json, _: datetime.datetime) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else str(component)


def _event_object(event: Json, _: datetime.datetime) -> str:
    involved = event.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


BUILTIN_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "namespaces"): [
        NAME,
        Column("Status", "string", lambda o, _: (o.get("status") or {}).get("phase", "")),
        AGE,
    ],
    ("", "nodes"): [
        NAME,
        Column("Status", "string", _node_status),
        Column("Roles", "string", _node_roles),
        AGE,
        Column(
            "Version",
            "string",
            lambda o, _: ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""),
        ),
        Column("Internal-IP", "string", _node_address("InternalIP"), priority=1),
        Column("External-IP", "string", _node_address("ExternalIP"), priority=1),
        Column("OS-Image", "string", _node_info("osImage"), priority=1),
        Column("Kernel-Version", "string", _node_info("kernelVersion"), priority=1),
        Column("Container-Runtime", "string", _node_info("containerRuntimeVersion"), priority=1),
    ],
    ("", "events"): [
        Column("Last Seen", "string", _event_last_seen),
        Column("Type", "string", lambda o, _: o.get("type", "")),
        Column("Reason", "string", lambda o, _: o.get("reason", "")),
        Column("Object", "string", _event_object),
        Column(
            "Subobject",
            "string",
            lambda o, _: (o.get("involvedObject") or {}).get("fieldPath", ""),
            priority=1,
        ),
        Column("Source", "string", _event_source, priority=1),
        Column("Message", "string", lambda o, _: o.get("message", "")),
        Column(
            "First Seen", "string", lambda o, now: age(o.get("firstTimestamp"), now), priority=1
        ),
        Column("Count", "integer", lambda o, _: o.get("count") or 0, priority=1),
        Column("Name", "string", lambda o, _: _meta(o).get("name", ""), priority=1),
    ],
    ("coordination.k8s.io", "leases"): [
        NAME,
        Column("Holder", "string", lambda o, _: (o.get("spec") or {}).get("holderIdentity", "")),
        AGE,
    ],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        NAME,
        Column(
            "Created At",
            "date",
            lambda o, _: _rfc3339(_meta(o).get("creationTimestamp")),
            description="CreationTimestamp is a timestamp representing the server time when "
            "this object was created.",
        ),
    ],
}


def _at(obj: Json, *keys: str) -> Any:
    found: Any = obj
    for key in keys:
        found = found.get(key) if isinstance(found, dict) else None
    return found


def _count(*keys: str) -> Callable[[Json, datetime.datetime], int]:
    """An integer status field, 0 when unset (Go's zero value)."""
    return lambda o, _: int(_at(o, *keys) or 0)


def _length(*fields: str) -> Callable[[Json, datetime.datetime], int]:
    return lambda o, _: sum(len(o.get(f) or ()) for f in fields)


def _selector(labels: Any) -> str:
    """``labels.SelectorFromSet(...).String()``: sorted ``k=v`` pairs, or ``<none>``."""
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _label_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: matchLabels, then matchExpressions."""
    if not isinstance(selector, dict):
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        values = ",".join(expr.get("values") or [])
        operator = str(expr.get("operator", "")).lower()
        key = expr.get("key", "")
        if operator in ("in", "notin"):
            parts.append(f"{key} {operator} ({values})")
        elif operator == "exists":
            parts.append(key)
        else:
            parts.append(f"!{key}")
    return ",".join(parts) or "<none>"


def _pod_template(field_name: str) -> Callable[[Json, datetime.datetime], str]:
    def cell(obj: Json, _: datetime.datetime) -> str:
        containers = _at(obj, "spec", "template", "spec", "containers") or []
        return ",".join(str(c.get(field_name, "")) for c in containers)

    return cell


def _int_or_string(value: Any) -> str:
    return "N/A" if value is None else str(value)


def _role_ref(kind: str) -> Callable[[Json, datetime.datetime], str]:
    def cell(obj: Json, _: datetime.datetime) -> str:
        return f"{kind}/{_at(obj, 'roleRef', 'name') or ''}"

    return cell


def _subjects(kind: str) -> Callable[[Json, datetime.datetime], str]:
    def cell(obj: Json, _: datetime.datetime) -> str:
        names = [
            (f"{s.get('namespace')}/{s.get('name')}" if kind == "ServiceAccount" else s.get("name"))
            for s in obj.get("subjects") or []
            if isinstance(s, dict) and s.get("kind") == kind
        ]
        return ", ".join(str(n) for n in names)

    return cell


def _pod_ready(pod: Json, _: datetime.datetime) -> str:
    statuses = _at(pod, "status", "containerStatuses") or []
    ready = sum(1 for c in statuses if isinstance(c, dict) and c.get("ready"))
    return f"{ready}/{len(_at(pod, 'spec', 'containers') or [])}"


CREATED_AT = Column(
    "Created At",
    "date",
    lambda o, _: _rfc3339(_meta(o).get("creationTimestamp")),
    description="CreationTimestamp is a timestamp representing the server time when "
    "this object was created.",
)
CONTAINERS = Column("Containers", "string", _pod_template("name"), priority=1)
IMAGES = Column("Images", "string", _pod_template("image"), priority=1)
SELECTOR = Column(
    "Selector", "string", lambda o, _: _label_selector(_at(o, "spec", "selector")), priority=1
)
BINDING_WIDE = [
    Column("Users", "string", _subjects("User"), priority=1),
    Column("Groups", "string", _subjects("Group"), priority=1),
    Column("ServiceAccounts", "string", _subjects("ServiceAccount"), priority=1),
]
RBAC = "rbac.authorization.k8s.io"
# The kinds ``kubectl apply -k manifests/`` installs, with kube-apiserver's printers
# (pkg/printers/internalversion/printers.go): the same columns, names and cells.
WORKLOAD_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("apps", "deployments"): [
        NAME,
        Column(
            "Ready",
            "string",
            lambda o, _: (
                f"{_at(o, 'status', 'readyReplicas') or 0}/{_at(o, 'spec', 'replicas') or 0}"
            ),
        ),
        Column("Up-to-date", "integer", _count("status", "updatedReplicas")),
        Column("Available", "integer", _count("status", "availableReplicas")),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    ("apps", "daemonsets"): [
        NAME,
        Column("Desired", "integer", _count("status", "desiredNumberScheduled")),
        Column("Current", "integer", _count("status", "currentNumberScheduled")),
        Column("Ready", "integer", _count("status", "numberReady")),
        Column("Up-to-date", "integer", _count("status", "updatedNumberScheduled")),
        Column("Available", "integer", _count("status", "numberAvailable")),
        Column(
            "Node Selector",
            "string",
            lambda o, _: _selector(_at(o, "spec", "template", "spec", "nodeSelector")),
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    ("policy", "poddisruptionbudgets"): [
        NAME,
        Column(
            "Min Available", "string", lambda o, _: _int_or_string(_at(o, "spec", "minAvailable"))
        ),
        Column(
            "Max Unavailable",
            "string",
            lambda o, _: _int_or_string(_at(o, "spec", "maxUnavailable")),
        ),
        Column("Allowed Disruptions", "integer", _count("status", "disruptionsAllowed")),
        AGE,
    ],
    ("", "secrets"): [
        NAME,
        Column("Type", "string", lambda o, _: o.get("type", "")),
        Column("Data", "string", _length("data")),
        AGE,
    ],
    ("", "configmaps"): [NAME, Column("Data", "string", _length("data", "binaryData")), AGE],
    ("", "serviceaccounts"): [NAME, Column("Secrets", "string", _length("secrets")), AGE],
    ("", "pods"): [
        NAME,
        Column("Ready", "string", _pod_ready),
        Column("Status", "string", lambda o, _: _at(o, "status", "phase") or "Pending"),
        Column(
            "Restarts",
            "string",
            lambda o, _: sum(
                int(c.get("restartCount") or 0)
                for c in _at(o, "status", "containerStatuses") or []
                if isinstance(c, dict)
            ),
        ),
        AGE,
    ],
    (RBAC, "roles"): [NAME, CREATED_AT],
    (RBAC, "clusterroles"): [NAME, CREATED_AT],
    (RBAC, "rolebindings"): [NAME, Column("Role", "string", _role_ref("Role")), AGE, *BINDING_WIDE],
    (RBAC, "clusterrolebindings"): [
        NAME,
        Column("Role", "string", _role_ref("ClusterRole")),
        AGE,
        *BINDING_WIDE,
    ],
}
BUILTIN_COLUMNS.update(WORKLOAD_COLUMNS)


def _rfc3339(value: Any) -> str:
    parsed = parse_time(value) if isinstance(value, str) else None
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else ""


def columns_for(rt: ResourceType) -> list[Column]:
    if rt.printer_columns is not None:
        custom = [
            Column(
                c.name,
                c.type,
                (lambda col: lambda o, now: custom_cell(col, o, now))(c),
                c.format,
                c.description
                or f"Custom resource definition column (in JSONPath format): {c.json_path}",
                c.priority,
            )
            for c in rt.printer_columns
        ]
        return [NAME, *custom]
    return BUILTIN_COLUMNS.get(rt.group_resource, [NAME, AGE])


# --------------------------------------------------------------------------- the Table


def partial_metadata(obj: Json, table_version: str = "v1") -> Json:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{table_version}",
        "metadata": _meta(obj),
    }


def to_table(
    rt: ResourceType,
    objects: Iterable[Json],
    *,
    now: datetime.datetime,
    resource_version: str = "",
    include_object: str = "Metadata",
    headers: bool = True,
    table_version: str = "v1",
) -> Json:
    """A ``meta.k8s.io`` Table of ``objects`` (``include_object``: None/Metadata/Object)."""
    columns = columns_for(rt)
    rows = []
    for obj in objects:
        row: Json = {"cells": [c.cell(obj, now) for c in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj, table_version)
        rows.append(row)
    table: Json = {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{table_version}",
        "metadata": {"resourceVersion": resource_version} if resource_version else {},
        "columnDefinitions": [c.definition() for c in columns] if headers else None,
        "rows": rows,
    }
    return table
