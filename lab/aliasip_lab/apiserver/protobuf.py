"""Request bodies in Kubernetes' protobuf encoding, for the kinds the install creates that way.

kubectl's typed commands (``kubectl create secret generic``, ``create configmap``,
``create namespace``: what the install instructions use; ``auth can-i``, ``auth whoami``
and ``create token`` against an authenticating server) send
``application/vnd.kubernetes.protobuf`` and kube-apiserver accepts it. The encoding is
the magic ``k8s\\x00`` followed by a ``runtime.Unknown`` (``typeMeta`` = 1 {apiVersion =
1, kind = 2}, ``raw`` = 2: the object's message). Each kind's message is decoded here with
the field numbers of its ``generated.proto`` (k8s.io/api/core/v1, apimachinery meta/v1)
into the JSON form the rest of the server handles; answers stay JSON, which those clients
accept too (they send ``Accept: application/vnd.kubernetes.protobuf,application/json``).
Kinds not listed here are refused with 415, naming the media types that are accepted.
Zero values Go writes for non-pointer fields (empty strings, empty times) are left out,
as the JSON encoding leaves them out.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable, Iterator
from typing import Any

from aliasip_lab.apiserver import errors

Json = dict[str, Any]
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
Field = tuple[int, int, Any]  # number, wire type, value (int or bytes)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> Iterator[Field]:
    """The (number, wire type, value) triples of one message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == 1:
            yield number, wire, data[pos : pos + 8]
            pos += 8
        elif wire == 5:
            yield number, wire, data[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _text(value: Any) -> str:
    return bytes(value).decode()


def _entry(value: bytes) -> tuple[str, bytes]:
    key, item = "", b""
    for number, _, part in fields(value):
        if number == 1:
            key = _text(part)
        elif number == 2:
            item = bytes(part)
    return key, item


def _time(value: bytes) -> str | None:
    seconds = next((v for n, _, v in fields(value) if n == 1), 0)
    if not seconds:
        return None
    moment = datetime.datetime.fromtimestamp(int(seconds), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def object_meta(data: bytes) -> Json:
    """ObjectMeta: the fields a client sets when it creates an object."""
    meta: Json = {}
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for number, _, value in fields(data):
        if number in strings and value:
            meta[strings[number]] = _text(value)
        elif number in (11, 12):
            key, item = _entry(value)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = item.decode()
        elif number == 14:
            meta.setdefault("finalizers", []).append(_text(value))
        elif number == 8 and (stamp := _time(value)):
            meta["creationTimestamp"] = stamp
    return meta


def _secret(data: bytes) -> Json:
    out: Json = {}
    for number, _, value in fields(data):
        if number == 1:
            out["metadata"] = object_meta(value)
        elif number in (2, 4):
            key, item = _entry(value)
            if number == 2:
                out.setdefault("data", {})[key] = base64.b64encode(item).decode()
            else:
                out.setdefault("stringData", {})[key] = item.decode()
        elif number == 3 and value:
            out["type"] = _text(value)
        elif number == 5:
            out["immutable"] = bool(value)
    return out


def _configmap(data: bytes) -> Json:
    out: Json = {}
    for number, _, value in fields(data):
        if number == 1:
            out["metadata"] = object_meta(value)
        elif number in (2, 3):
            key, item = _entry(value)
            if number == 2:
                out.setdefault("data", {})[key] = item.decode()
            else:
                out.setdefault("binaryData", {})[key] = base64.b64encode(item).decode()
        elif number == 4:
            out["immutable"] = bool(value)
    return out


def _namespace(data: bytes) -> Json:
    out: Json = {}
    for number, _, value in fields(data):
        if number == 1:
            out["metadata"] = object_meta(value)
        elif number == 2:
            finalizers = [_text(v) for n, _, v in fields(value) if n == 1]
            if finalizers:
                out["spec"] = {"finalizers": finalizers}
    return out


def _strings(data: bytes, names: dict[int, str]) -> Json:
    """A message of string fields only, by field number."""
    return {names[n]: _text(v) for n, _, v in fields(data) if n in names and v}


# authorization.k8s.io/v1 ResourceAttributes and NonResourceAttributes (generated.proto).
_RESOURCE_ATTRIBUTES = {
    1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource",
    7: "name",
}  # fmt: skip
_NON_RESOURCE_ATTRIBUTES = {1: "path", 2: "verb"}


def _self_subject_access_review(data: bytes) -> Json:
    """What ``kubectl auth can-i`` sends: spec = 2 {resourceAttributes = 1,
    nonResourceAttributes = 2}."""
    out: Json = {"spec": {}}
    for number, _, value in fields(data):
        if number == 1:
            out["metadata"] = object_meta(value)
        elif number == 2:
            for part, _, attrs in fields(value):
                if part == 1:
                    out["spec"]["resourceAttributes"] = _strings(attrs, _RESOURCE_ATTRIBUTES)
                elif part == 2:
                    out["spec"]["nonResourceAttributes"] = _strings(attrs, _NON_RESOURCE_ATTRIBUTES)
    return out


def _self_subject_rules_review(data: bytes) -> Json:
    """``kubectl auth can-i --list``: spec = 2 {namespace = 1}."""
    out: Json = {"spec": {}}
    for number, _, value in fields(data):
        if number == 1:
            out["metadata"] = object_meta(value)
        elif number == 2:
            out["spec"] = _strings(value, {1: "namespace"})
    return out


def _self_subject_review(data: bytes) -> Json:
    """``kubectl auth whoami``: nothing but metadata."""
    return {"metadata": next((object_meta(v) for n, _, v in fields(data) if n == 1), {})}


def _token_request(data: bytes) -> Json:
    """``kubectl create token``: spec = 2 {audiences = 1 (repeated), boundObjectRef = 3
    {kind = 1, apiVersion = 2, name = 3, uid = 4}, expirationSeconds = 4}."""
    out: Json = {"spec": {}}
    for number, _, value in fields(data):
        if number == 1:
            out["metadata"] = object_meta(value)
        elif number == 2:
            spec: Json = {}
            for part, _, item in fields(value):
                if part == 1:
                    spec.setdefault("audiences", []).append(_text(item))
                elif part == 3:
                    spec["boundObjectRef"] = _strings(
                        item, {1: "kind", 2: "apiVersion", 3: "name", 4: "uid"}
                    )
                elif part == 4:
                    spec["expirationSeconds"] = int(item)
            out["spec"] = spec
    return out


KINDS: dict[tuple[str, str], Callable[[bytes], Json]] = {
    ("v1", "Secret"): _secret,
    ("v1", "ConfigMap"): _configmap,
    ("v1", "Namespace"): _namespace,
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): _self_subject_access_review,
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): _self_subject_rules_review,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): _self_subject_review,
    ("authentication.k8s.io/v1", "TokenRequest"): _token_request,
}


def decode(body: bytes) -> Json:
    """The object a protobuf request body carries, as JSON; ApiError when it cannot be."""
    if not body.startswith(MAGIC):
        raise errors.bad_request("provided data does not appear to be a protobuf message")
    try:
        api_version = kind = ""
        raw = b""
        for number, _, value in fields(body[len(MAGIC) :]):
            if number == 1:
                for part, _, text in fields(value):
                    if part == 1:
                        api_version = _text(text)
                    elif part == 2:
                        kind = _text(text)
            elif number == 2:
                raw = bytes(value)
        decoder = KINDS.get((api_version, kind))
        if decoder is None:
            raise errors.unsupported_media_type(
                MEDIA_TYPE, ["application/json", "application/yaml"]
            )
        return {"apiVersion": api_version, "kind": kind, **decoder(raw)}
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"error decoding the request body: {exc}") from None
