"""Evaluate an OpenAPI v3 structural schema the way kube-apiserver does, with jsonschema.

kube-apiserver handles a custom resource in this order: prune unknown fields, apply
defaults (pruning nulls of non-nullable fields), then validate (OpenAPI, then CEL). Each
step is a method of ``OpenAPISchema``, usable for any structural schema. Where
kube-apiserver differs from plain JSON Schema Draft 4, this follows kube-apiserver:

- ``nullable: true`` admits null;
- ``pattern`` is an RE2 (Go) expression: ``$`` matches only at the very end of the text,
  whereas Python's ``$`` also matches before a final newline (``"eth0\\n"`` would pass);
- formats ``cidr`` (Go's ``net.ParseCIDR``), ``date-time`` (RFC 3339), ``int32``/``int64``;
- ``x-kubernetes-list-type`` ``set``/``map`` forbid duplicates (structural schemas forbid
  ``uniqueItems``; kube-apiserver checks these instead);
- ``x-kubernetes-validations`` (CEL) run through their Python counterparts (``cel``);
- unknown fields are findings when ``strict`` (kubectl's default, ``--validate=strict``),
  and are dropped by ``prune``.

Findings carry kube-style field paths (``spec.addresses[1]``, ``status.nodes[node-a]``)
and messages that say what was expected and what was found.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema import Draft4Validator, FormatChecker, ValidationError, validators

from aliasip_api import cel, kubetime
from aliasip_api.addresses import parse_cidr
from aliasip_api.errors import INVALID_SPEC, Finding

PRESERVE = "x-kubernetes-preserve-unknown-fields"
VALIDATIONS = "x-kubernetes-validations"
LIST_TYPE = "x-kubernetes-list-type"
LIST_MAP_KEYS = "x-kubernetes-list-map-keys"

_BASE = Draft4Validator.VALIDATORS
_INT_RANGES = {"int32": 32, "int64": 64}


class OpenAPISchema:
    """One structural schema (e.g. a CRD's ``openAPIV3Schema``) and what kube does with it."""

    def __init__(self, schema: Mapping[str, Any], *, strict: bool = True) -> None:
        for rule in _cel_rules(schema):
            if cel.is_transition(rule):
                cel.transition_counterpart(rule)
            else:
                cel.counterpart(rule)
        self.schema = schema
        self.strict = strict
        cls = _STRICT if strict else _LENIENT
        self._validator = cls(dict(schema), format_checker=_FORMATS)

    def at(self, *fields: str) -> OpenAPISchema:
        """The schema of a nested field: names of properties, ``[]`` for items, ``{}`` for
        map values (``at("spec", "addresses", "[]")``). ``KeyError`` if there is none."""
        return OpenAPISchema(schema_at(self.schema, *fields), strict=self.strict)

    def validate(self, instance: Any, root: str = "", reason: str = INVALID_SPEC) -> list[Finding]:
        """Every finding for ``instance`` (already defaulted), with paths under ``root``."""
        found: list[Finding] = []
        for error in self._validator.iter_errors(instance):
            finding = Finding(
                _field_path(self.schema, root, error.absolute_path), _message(error), reason
            )
            if finding not in found:
                found.append(finding)
        return found

    def default(self, instance: Any) -> Any:
        """A copy of ``instance`` with defaults applied and non-nullable nulls pruned."""
        return _default(self.schema, copy.deepcopy(instance))

    def prune(self, instance: Any) -> Any:
        """A copy of ``instance`` without the fields the schema does not declare."""
        return _prune(self.schema, copy.deepcopy(instance), top=True)

    def validate_update(
        self, old: Any, new: Any, root: str = "", reason: str = INVALID_SPEC
    ) -> list[Finding]:
        """Findings of the transition rules (``oldSelf``) for an update from ``old`` to ``new``.

        Like kube-apiserver, a rule runs only where the field exists in both objects;
        fields are correlated through properties and map values (not through lists).
        """
        return [
            Finding(_field_path(self.schema, root, path), message, reason)
            for path, message in _transitions(self.schema, old, new)
        ]


def schema_at(schema: Mapping[str, Any], *fields: str) -> Mapping[str, Any]:
    """The sub-schema reached by property names, ``[]`` (items) and ``{}`` (map values)."""
    node = schema
    for name in fields:
        if name == "[]":
            node = node["items"]
        elif name == "{}":
            node = node["additionalProperties"]
        else:
            node = node["properties"][name]
    return node


def _cel_rules(schema: Any) -> Iterator[str]:
    if isinstance(schema, Mapping):
        for entry in schema.get(VALIDATIONS, ()):
            yield str(entry["rule"])
        for value in schema.values():
            yield from _cel_rules(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _cel_rules(value)


# --- keywords --------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def go_regex(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern for Python: an unescaped ``$`` outside a class becomes ``\\Z``."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return re.compile("".join(out))


def _nullable_null(instance: Any, schema: Mapping[str, Any]) -> bool:
    return instance is None and schema.get("nullable") is True


def _type(validator: Any, types: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not _nullable_null(instance, schema):
        yield from _BASE["type"](validator, types, instance, schema)


def _enum(validator: Any, enums: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not _nullable_null(instance, schema):
        yield from _BASE["enum"](validator, enums, instance, schema)


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if isinstance(instance, str) and not go_regex(pattern).search(instance):
        yield ValidationError(f"must match the pattern {pattern} (got {_json(instance)})")


def _required(
    validator: Any, required: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if isinstance(instance, dict):
        for name in required:
            if name not in instance:
                yield ValidationError("required value is missing", path=[name])


def _properties_strict(
    validator: Any, properties: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    yield from _BASE["properties"](validator, properties, instance, schema)
    if isinstance(instance, dict) and "additionalProperties" not in schema:
        if schema.get(PRESERVE) is True:
            return
        for name in instance:
            if name not in properties:
                yield ValidationError("unknown field", path=[name])


def _list_type(validator: Any, kind: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not isinstance(instance, list) or kind not in ("set", "map"):
        return
    keys: list[str] = list(schema.get(LIST_MAP_KEYS, ())) if kind == "map" else []
    seen: set[str] = set()
    for index, item in enumerate(instance):
        if kind == "set":
            identity = _canonical(item)
            what = f"duplicate value {_json(item)}"
        elif isinstance(item, dict):
            identity = _canonical([item.get(k) for k in keys])
            what = "duplicate entry with " + ", ".join(f"{k}={_json(item.get(k))}" for k in keys)
        else:
            continue
        if identity in seen:
            yield ValidationError(what, path=[index])
        seen.add(identity)


def _cel(validator: Any, rules: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    for entry in rules:
        rule = str(entry["rule"])
        if not cel.is_transition(rule):
            for path, message in cel.counterpart(rule)(instance):
                yield ValidationError(message, path=list(path))


_KEYWORDS = {
    "type": _type,
    "enum": _enum,
    "pattern": _pattern,
    "required": _required,
    LIST_TYPE: _list_type,
    VALIDATIONS: _cel,
}
# types-jsonschema leaves extend() untyped; the classes are Draft 4 validators.
_LENIENT: Any = validators.extend(Draft4Validator, _KEYWORDS)  # type: ignore[no-untyped-call]
_STRICT: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft4Validator, {**_KEYWORDS, "properties": _properties_strict}
)


def _formats() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("cidr", raises=ValueError)
    def _cidr(instance: object) -> bool:
        if isinstance(instance, str):
            parse_cidr(instance)
        return True

    @checker.checks("date-time", raises=ValueError)
    def _date_time(instance: object) -> bool:
        if isinstance(instance, str):
            kubetime.parse_time(instance)
        return True

    for name, bits in _INT_RANGES.items():

        @checker.checks(name, raises=ValueError)
        def _integer(instance: object, bits: int = bits) -> bool:
            if isinstance(instance, int) and not -(2 ** (bits - 1)) <= instance < 2 ** (bits - 1):
                raise ValueError(f"out of range for a {bits}-bit integer")
            return True

    return checker


_FORMATS = _formats()


# --- messages and paths ----------------------------------------------------------------


def _message(error: ValidationError) -> str:
    kind = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    schema: Any = error.schema
    if kind == "type":
        return f"must be of type {value} (got {_json_type(instance)})"
    if kind == "enum":
        return f"must be one of {', '.join(_json(v) for v in value)} (got {_json(instance)})"
    if kind in ("minimum", "maximum"):
        exclusive = schema.get("exclusiveMinimum" if kind == "minimum" else "exclusiveMaximum")
        relation = "greater" if kind == "minimum" else "less"
        bound = f"{relation} than" if exclusive is True else f"{relation} than or equal to"
        return f"must be {bound} {value} (got {_json(instance)})"
    counted = {
        "minItems": ("at least", "item", len),
        "maxItems": ("at most", "item", len),
        "minLength": ("at least", "character", len),
        "maxLength": ("at most", "character", len),
        "minProperties": ("at least", "entry", len),
        "maxProperties": ("at most", "entry", len),
    }
    if kind in counted:
        bound, unit, size = counted[kind]
        noun = _plural(unit, value)
        return f"must have {bound} {value} {noun} (got {size(instance)})"
    if kind == "format":
        detail = f": {error.cause}" if error.cause else ""
        return f"{_json(instance)} is not a valid {value}{detail}"
    if kind == "anyOf":
        names = [s["required"] for s in value if isinstance(s, Mapping) and list(s) == ["required"]]
        if len(names) == len(value):
            return f"at least one of {', '.join(n for group in names for n in group)} is required"
        return "must satisfy at least one of: " + "; ".join(
            sorted({_message(e) for e in error.context})
        )
    return error.message


def _plural(unit: str, count: int) -> str:
    if count == 1:
        return unit
    return "entries" if unit == "entry" else f"{unit}s"


def _field_path(schema: Mapping[str, Any], root: str, parts: Any) -> str:
    """kube's field path: ``.name`` for declared fields, ``[key]`` for map keys and indexes."""
    path = root
    node: Any = schema
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
            node = node.get("items", {})
            continue
        properties = node.get("properties", {})
        extra = node.get("additionalProperties")
        if part in properties or not isinstance(extra, Mapping):
            path = f"{path}.{part}" if path else str(part)
            node = properties.get(part, {})
        else:
            path += f"[{part}]"
            node = extra
    return path


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# --- defaulting, pruning, transitions --------------------------------------------------


def _child_schema(schema: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    properties = schema.get("properties", {})
    if key in properties:
        sub: Mapping[str, Any] = properties[key]
        return sub
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else None


def _default(schema: Mapping[str, Any], value: Any) -> Any:
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            missing = key not in value or (value[key] is None and not sub.get("nullable"))
            if missing and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        for key in list(value):
            sub = _child_schema(schema, key)
            if sub is None:
                continue
            if value[key] is None and not sub.get("nullable"):
                del value[key]  # kube prunes nulls of non-nullable fields without a default
            else:
                value[key] = _default(sub, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_default(schema["items"], item) for item in value]
    return value


def _prune(schema: Mapping[str, Any], value: Any, top: bool = False) -> Any:
    if isinstance(value, dict):
        keep_unknown = schema.get(PRESERVE) is True
        for key in list(value):
            if top and key == "metadata":
                continue  # ObjectMeta is kube's own, not the CRD's, to prune
            sub = _child_schema(schema, key)
            if sub is None:
                if not keep_unknown:
                    del value[key]
            else:
                value[key] = _prune(sub, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_prune(schema["items"], item) for item in value]
    return value


def _transitions(
    schema: Mapping[str, Any], old: Any, new: Any, parts: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Failures of transition rules as (path from the top, message)."""
    for entry in schema.get(VALIDATIONS, ()):
        rule = str(entry["rule"])
        if cel.is_transition(rule):
            for path, message in cel.transition_counterpart(rule)(old, new):
                yield (*parts, *path), message
    if isinstance(old, dict) and isinstance(new, dict):
        for key in new:
            sub = _child_schema(schema, key)
            if sub is not None and key in old:
                yield from _transitions(sub, old[key], new[key], (*parts, key))
