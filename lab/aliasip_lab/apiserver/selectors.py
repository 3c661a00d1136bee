"""Label and field selectors, parsed and matched as kube-apiserver does.

Label selectors (``k8s.io/apimachinery/pkg/labels``): comma-separated requirements
``key``, ``!key``, ``key=v``, ``key==v``, ``key!=v``, ``key in (a,b)``, ``key notin (a,b)``,
``key>N``, ``key<N``. ``!=`` and ``notin`` also match objects without the key.

Field selectors (``k8s.io/apimachinery/pkg/fields``): comma-separated ``key=v``,
``key==v``, ``key!=v`` terms, with ``\\``, ``\\,`` and ``\\=`` escapes. Each resource
supports only certain field labels (always ``metadata.name`` and ``metadata.namespace``;
Events, Nodes, Namespaces and CRDs' ``selectableFields`` add theirs); any other label is a
400 Bad Request, as in kube-apiserver ("field label not supported"). A field missing from
the object reads as the empty string, so ``involvedObject.namespace=`` matches events
about cluster-scoped objects, which ``kubectl describe`` relies on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aliasip_lab.apiserver.errors import ApiError, bad_request
from aliasip_lab.apiserver.registry import ResourceType

Json = dict[str, Any]

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_VALUE_RE = re.compile(rf"^({_NAME})?$")
_NAME_RE = re.compile(rf"^{_NAME}$")
_PREFIX_RE = re.compile(rf"^{_DNS_SUBDOMAIN}$")


def valid_label_key(key: str) -> bool:
    """A qualified name: optional DNS-subdomain prefix and '/', then a name of <= 63."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _PREFIX_RE.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_NAME_RE.match(name))


def valid_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_VALUE_RE.match(value))


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # exists, !, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key, "")
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("=", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return not has or value not in self.values
        if not has:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == "gt" else number < bound


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


_TOKEN_RE = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse ``labelSelector``; 400 Bad Request when it does not parse."""
    tokens = _tokenize(text)
    requirements: list[Requirement] = []
    pos = 0

    def fail(why: str) -> ApiError:
        return bad_request(f"unable to parse requirement: {why}")

    while pos < len(tokens):
        token = tokens[pos]
        if token == "!":
            if pos + 1 >= len(tokens):
                raise fail("found '', expected: identifier")
            key = tokens[pos + 1]
            _check_key(key, fail)
            requirements.append(Requirement(key, "!"))
            pos += 2
        else:
            key = token
            _check_key(key, fail)
            pos += 1
            if pos >= len(tokens) or tokens[pos] == ",":
                requirements.append(Requirement(key, "exists"))
            else:
                op = tokens[pos]
                pos += 1
                if op in ("=", "==", "!="):
                    value = ""
                    if pos < len(tokens) and tokens[pos] not in (",",):
                        value = tokens[pos]
                        pos += 1
                    _check_value(value, fail)
                    requirements.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
                elif op in ("in", "notin"):
                    values, pos = _value_set(tokens, pos, fail)
                    requirements.append(Requirement(key, op, values))
                elif op in (">", "<"):
                    if pos >= len(tokens) or not re.fullmatch(r"-?\d+", tokens[pos]):
                        raise fail("for 'Gt', 'Lt' operators, the value must be an integer")
                    requirements.append(
                        Requirement(key, "gt" if op == ">" else "lt", (tokens[pos],))
                    )
                    pos += 1
                else:
                    raise fail(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")
        if pos < len(tokens):
            if tokens[pos] != ",":
                raise fail(f"found '{tokens[pos]}', expected: ',' or 'end of string'")
            pos += 1
            if pos >= len(tokens):
                raise fail("found '', expected: !, identifier, or 'end of string'")
    return LabelSelector(tuple(requirements))


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise bad_request(f"unable to parse requirement: {text!r}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _value_set(tokens: list[str], pos: int, fail: Any) -> tuple[tuple[str, ...], int]:
    if pos >= len(tokens) or tokens[pos] != "(":
        raise fail("found '', expected: '('")
    pos += 1
    values: list[str] = []
    expect_value = True
    while pos < len(tokens) and tokens[pos] != ")":
        token = tokens[pos]
        if token == ",":
            if expect_value:
                values.append("")
            expect_value = True
        else:
            _check_value(token, fail)
            values.append(token)
            expect_value = False
        pos += 1
    if pos >= len(tokens):
        raise fail("found '', expected: ')'")
    if not values:
        raise fail("for 'in', 'notin' operators, values set can't be empty")
    return tuple(values), pos + 1


def _check_key(key: str, fail: Any) -> None:
    if not valid_label_key(key):
        raise fail(f"invalid label key {key!r}")


def _check_value(value: str, fail: Any) -> None:
    if not valid_label_value(value):
        raise fail(f"invalid label value: {value!r}")


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negate: bool

    def matches(self, fields: Mapping[str, str]) -> bool:
        return (fields.get(self.field, "") == self.value) != self.negate


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[FieldTerm, ...]

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(t.matches(fields) for t in self.terms)

    @property
    def empty(self) -> bool:
        return not self.terms

    def name(self) -> str | None:
        """The single ``metadata.name=X`` the selector pins, if any (a fast path)."""
        for term in self.terms:
            if term.field == "metadata.name" and not term.negate:
                return term.value
        return None


def parse_field_selector(text: str, rt: ResourceType) -> FieldSelector:
    """Parse ``fieldSelector`` for ``rt``; 400 for bad syntax or an unsupported label."""
    terms: list[FieldTerm] = []
    supported = supported_fields(rt)
    for part in _split_unescaped(text, ","):
        if not part.strip():
            continue
        for op in ("!=", "==", "="):
            index = _find_unescaped(part, op)
            if index >= 0:
                field, raw = part[:index].strip(), part[index + len(op) :]
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        terms.append(FieldTerm(field, _unescape(raw, text), op == "!="))
    return FieldSelector(tuple(terms))


def supported_fields(rt: ResourceType) -> set[str]:
    return {"metadata.name", "metadata.namespace", *rt.field_labels, *rt.selectable_fields}


def _find_unescaped(text: str, needle: str) -> int:
    pos = 0
    while pos < len(text):
        if text[pos] == "\\":
            pos += 2
            continue
        if text.startswith(needle, pos):
            return pos
        pos += 1
    return -1


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            current.append(text[pos : pos + 2])
            pos += 2
            continue
        if char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        pos += 1
    parts.append("".join(current))
    return parts


def _unescape(raw: str, whole: str) -> str:
    out: list[str] = []
    pos = 0
    while pos < len(raw):
        char = raw[pos]
        if char == "\\":
            if pos + 1 >= len(raw) or raw[pos + 1] not in "\\,=":
                raise bad_request(f"invalid field selector: '{whole}': invalid escape sequence")
            out.append(raw[pos + 1])
            pos += 2
            continue
        if char in ",=":
            raise bad_request(f"invalid field selector: '{whole}': unescaped {char!r}")
        out.append(char)
        pos += 1
    return "".join(out)


def object_fields(rt: ResourceType, obj: Json) -> dict[str, str]:
    """The field-selector view of ``obj``: every supported label with its string value."""
    metadata = obj.get("metadata") or {}
    fields = {
        "metadata.name": str(metadata.get("name", "")),
        "metadata.namespace": str(metadata.get("namespace", "")),
    }
    if rt.plural == "events" and not rt.group:
        involved = obj.get("involvedObject") or {}
        for key in (
            "kind",
            "namespace",
            "name",
            "uid",
            "apiVersion",
            "resourceVersion",
            "fieldPath",
        ):
            fields[f"involvedObject.{key}"] = _text(involved.get(key))
        fields["reason"] = _text(obj.get("reason"))
        fields["reportingComponent"] = _text(obj.get("reportingComponent"))
        fields["source"] = _text((obj.get("source") or {}).get("component"))
        fields["type"] = _text(obj.get("type"))
    elif rt.plural == "nodes" and not rt.group:
        fields["spec.unschedulable"] = (
            "true" if (obj.get("spec") or {}).get("unschedulable") else "false"
        )
    elif rt.plural == "namespaces" and not rt.group:
        fields["status.phase"] = _text((obj.get("status") or {}).get("phase"))
    for path in rt.selectable_fields:
        value: Any = obj
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        fields[path] = _text(value)
    return fields


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
