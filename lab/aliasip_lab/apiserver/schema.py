"""Custom resources against their CRD's structural schema: prune, default, validate.

kube-apiserver, for a custom resource, (1) drops fields the schema does not declare
("pruning"), except under ``x-kubernetes-preserve-unknown-fields: true``, and drops
``null`` where the schema does not say ``nullable: true``; (2) fills in ``default``s;
(3) validates the result against the OpenAPI v3 schema, answering 422 Invalid with one
cause per problem, in the words of ``k8s.io/apiextensions-apiserver``'s validation
(``spec.x: Required value``, ``spec.x: Unsupported value: "a": supported values: ...``,
``spec.x[0]: Invalid value: "v": spec.x[0] in body must be of type cidr: "v"``). What
was pruned is also reported, for ``fieldValidation=Strict`` (400) and ``Warn`` (warnings).

Validation uses ``jsonschema``'s Draft 4 validator (OpenAPI 3.0's schema is Draft 4-like:
boolean ``exclusiveMinimum``, an integer is not 1.0) on a copy of the schema in which
``nullable`` and ``x-kubernetes-int-or-string`` are spelled as plain JSON-schema types, and
with the format checks of ``formats``. CEL rules (``x-kubernetes-validations``) are not
evaluated.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from aliasip_lab.apiserver import formats
from aliasip_lab.apiserver.errors import Cause

Json = dict[str, Any]

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_ROOT_KEPT = ("apiVersion", "kind", "metadata")


# --------------------------------------------------------------------------- pruning


def prune(obj: Json, schema: Json | None) -> tuple[Json, list[str]]:
    """``obj`` without undeclared fields and non-nullable nulls; and the pruned paths."""
    unknown: list[str] = []
    if schema is None:
        return obj, unknown
    pruned = _prune(obj, schema, "", unknown, root=True)
    return (pruned if isinstance(pruned, dict) else {}), unknown


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _prune(value: Any, schema: Json, path: str, unknown: list[str], root: bool = False) -> Any:
    if isinstance(value, dict):
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = root or bool(schema.get("x-kubernetes-embedded-resource"))
        properties: Json = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        out: Json = {}
        for key, item in value.items():
            child = _child(path, key)
            if embedded and key in _ROOT_KEPT:
                # apiVersion, kind and ObjectMeta are the server's, whatever the schema says.
                out[key] = _prune_metadata(item, child, unknown) if key == "metadata" else item
                continue
            sub: Json | None = None
            if key in properties:
                sub = properties[key]
            elif isinstance(additional, dict):
                sub = additional
            elif additional is True or preserve:
                out[key] = item
                continue
            else:
                unknown.append(child)
                continue
            if item is None and not (sub or {}).get("nullable", False):
                continue  # pruned before defaulting, which may then fill it in
            out[key] = _prune(item, sub or {}, child, unknown)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(v, schema["items"], f"{path}[{i}]", unknown) for i, v in enumerate(value)]
    return value


def _prune_metadata(value: Any, path: str, unknown: list[str]) -> Any:
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in OBJECT_META_FIELDS:
            out[key] = item
        else:
            unknown.append(_child(path, key))
    return out


# --------------------------------------------------------------------------- defaulting


def apply_defaults(obj: Json, schema: Json | None) -> Json:
    """Fill in every ``default`` whose field is absent, recursively, on a copy."""
    if schema is None:
        return obj
    result = _default(copy.deepcopy(obj), schema, root=True)
    return result if isinstance(result, dict) else obj


def _default(value: Any, schema: Json, root: bool = False) -> Any:
    if isinstance(value, dict):
        properties: Json = schema.get("properties") or {}
        for key, sub in properties.items():
            if root and key == "metadata":
                continue
            if key not in value and isinstance(sub, dict) and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if root and key in _ROOT_KEPT:
                continue
            sub = properties.get(key, additional if isinstance(additional, dict) else None)
            if isinstance(sub, dict):
                value[key] = _default(item, sub)
        return value
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_default(v, schema["items"]) for v in value]
    return value


# --------------------------------------------------------------------------- validation

_FORMAT_CHECKER = FormatChecker(formats=())
for _name in formats.CHECKS:
    _FORMAT_CHECKER.checks(_name)(
        lambda v, _n=_name: not isinstance(v, str) or formats.check(_n, v)
    )

_compiled: dict[str, Draft4Validator] = {}


def _jsonschema(schema: Any) -> Any:
    """OpenAPI v3 (Kubernetes flavour) to plain Draft 4 JSON schema."""
    if isinstance(schema, list):
        return [_jsonschema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: _jsonschema(v)
        for k, v in schema.items()
        if not k.startswith("x-kubernetes-") and k not in ("nullable", "default", "example")
    }
    if schema.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if schema.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if "properties" in out:
        out["properties"] = {k: _jsonschema(v) for k, v in schema["properties"].items()}
    return out


def _validator(schema: Json) -> Draft4Validator:
    key = json.dumps(schema, sort_keys=True)
    validator = _compiled.get(key)
    if validator is None:
        converted = _jsonschema(schema)
        root_props = converted.get("properties")
        if isinstance(root_props, dict):
            root_props.pop("metadata", None)  # ObjectMeta is validated by the server itself
        validator = Draft4Validator(converted, format_checker=_FORMAT_CHECKER)
        if len(_compiled) > 64:
            _compiled.clear()
        _compiled[key] = validator
    return validator


def validate(obj: Json, schema: Json | None) -> list[Cause]:
    """Causes for every schema violation of ``obj``, kube-apiserver's wording."""
    if schema is None:
        return []
    errors = sorted(
        _validator(schema).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))
    )
    causes: list[Cause] = []
    for error in errors:
        for cause in _causes(error):
            if cause not in causes:
                causes.append(cause)
    causes.extend(_list_types(obj, schema, ""))
    return causes


def _list_types(value: Any, schema: Json, path: str) -> Iterator[Cause]:
    """``x-kubernetes-list-type`` set and map: no duplicates (structural validation).

    As kube-apiserver's (apiextensions-apiserver ``listtype`` validation): linear, each
    element's identity hashed once (a scalar itself, a compound as its canonical JSON);
    and a list longer than its ``maxItems`` is not checked for duplicates at all: it is
    rejected by ``maxItems`` already, and a hostile 10,000-element list must not cost
    the server more than reading it (a pairwise scan took 81 s for 10,000 addresses,
    stalling every other client of the lab's control plane).
    """
    if isinstance(value, dict):
        properties: Json = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, additional if isinstance(additional, dict) else None)
            if isinstance(sub, dict):
                yield from _list_types(item, sub, _child(path, key))
    elif isinstance(value, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else None
        list_type = schema.get("x-kubernetes-list-type")
        max_items = schema.get("maxItems")
        if isinstance(max_items, int) and len(value) > max_items:
            list_type = None  # too many: the maxItems cause is the answer
        seen: set[str] = set()
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            if list_type == "set":
                identity = _identity(item)
                if identity in seen:
                    yield Cause("FieldValueDuplicate", f"Duplicate value: {go_value(item)}", where)
                seen.add(identity)
            elif list_type == "map" and isinstance(item, dict):
                keys = schema.get("x-kubernetes-list-map-keys") or []
                ident = {k: item.get(k) for k in keys}
                identity = _identity(ident)
                if identity in seen:
                    shown = ", ".join(f'"{k}":{go_value(v)}' for k, v in ident.items())
                    yield Cause(
                        "FieldValueDuplicate",
                        f"Duplicate value: map[string]interface {{}}{{{shown}}}",
                        where,
                    )
                seen.add(identity)
            if items is not None:
                yield from _list_types(item, items, where)


def _identity(value: Any) -> str:
    """One hashable identity per JSON value: equal values, equal identities."""
    return json.dumps(value, sort_keys=True)


def field_path(parts: Any) -> str:
    """``spec.addresses[0]``: dots between names, brackets around indices."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = _child(out, str(part))
    return out


def go_value(value: Any) -> str:
    """A value as Go's field errors print it (%q for strings, %v for numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, separators=(",", ":"))


def _type_name(value: Any) -> str:
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
    return "array" if isinstance(value, list) else "object"


def _causes(error: ValidationError) -> Iterator[Cause]:
    path = field_path(error.absolute_path)
    where = path or "<root>"
    keyword = error.validator
    expected: Any = error.validator_value
    value: Any = error.instance
    node: Json = error.schema if isinstance(error.schema, dict) else {}
    if keyword == "required":
        for name in expected:
            if isinstance(value, dict) and name not in value:
                yield Cause("FieldValueRequired", "Required value", _child(path, name))
        return
    if keyword == "enum":
        allowed = ", ".join(go_value(v) for v in expected if v is not None)
        yield Cause(
            "FieldValueNotSupported",
            f"Unsupported value: {go_value(value)}: supported values: {allowed}",
            path,
        )
        return
    if keyword == "type":
        wanted = (
            expected if isinstance(expected, str) else ",".join(t for t in expected if t != "null")
        )
        actual = _type_name(value)
        yield Cause(
            "FieldValueTypeInvalid",
            f'Invalid value: "{actual}": {where} in body must be of type {wanted}: "{actual}"',
            path,
        )
        return
    if keyword == "maxItems":
        yield Cause(
            "FieldValueTooMany",
            f"Too many: {len(value)}: must have at most {expected} items",
            path,
        )
        return
    if keyword == "maxLength":
        yield Cause("FieldValueTooLong", f"Too long: may not be longer than {expected}", path)
        return
    shown: Any = value
    if keyword == "format":
        detail = f"{where} in body must be of type {expected}: {go_value(value)}"
    elif keyword == "minimum":
        relation = "greater than" if node.get("exclusiveMinimum") else "greater than or equal to"
        detail = f"{where} in body should be {relation} {go_value(expected)}"
    elif keyword == "maximum":
        relation = "less than" if node.get("exclusiveMaximum") else "less than or equal to"
        detail = f"{where} in body should be {relation} {go_value(expected)}"
    elif keyword == "minItems":
        shown = len(value)
        detail = f"{where} in body should have at least {expected} items"
    elif keyword == "minLength":
        detail = f"{where} in body should be at least {expected} chars long"
    elif keyword == "pattern":
        detail = f"{where} in body should match '{expected}'"
    elif keyword == "multipleOf":
        detail = f"{where} in body should be a multiple of {go_value(expected)}"
    elif keyword == "minProperties":
        shown = len(value)
        detail = f"{where} in body should have at least {expected} properties"
    elif keyword == "maxProperties":
        shown = len(value)
        detail = f"{where} in body should have at most {expected} properties"
    elif keyword == "uniqueItems":
        detail = f"{where} in body shouldn't contain duplicates"
    elif keyword in ("oneOf", "anyOf", "allOf", "not"):
        detail = {
            "oneOf": "must validate one and only one schema (oneOf)",
            "anyOf": "must validate at least one schema (anyOf)",
            "allOf": "must validate all the schemas (allOf)",
            "not": "must not validate the schema (not)",
        }[keyword]
        # kube-openapi reports the alternatives' own failures after the composite one.
        shown = _type_name(value) if isinstance(value, (dict, list)) else value
        yield Cause("FieldValueInvalid", f"Invalid value: {go_value(shown)}: {detail}", path)
        for sub in sorted(error.context or [], key=lambda e: list(map(str, e.absolute_path))):
            yield from _causes(sub)
        return
    else:
        detail = f"{where} in body is invalid: {error.message}"
    if isinstance(shown, (dict, list)):
        shown = _type_name(shown)
    yield Cause("FieldValueInvalid", f"Invalid value: {go_value(shown)}: {detail}", path)
