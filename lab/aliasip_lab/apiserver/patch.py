"""PATCH bodies: JSON merge patch, JSON patch and strategic merge patch, by content type.

- ``application/merge-patch+json`` (RFC 7386): objects merge, ``null`` deletes, anything
  else (a scalar, a list) replaces, including a dict replaced by a scalar.
- ``application/json-patch+json`` (RFC 6902): add, remove, replace, move, copy, test. A body
  that is not a list of operations is a 400; an operation that cannot be applied (a failed
  ``test``, a missing path) is a 422, as kube-apiserver answers (kopf relies on the 422
  when its ``test`` on ``metadata.resourceVersion`` fails).
- ``application/strategic-merge-patch+json`` (built-in types only; custom resources answer
  415 as in kube-apiserver): merge-patch semantics, except lists that the Go types tag
  with ``patchStrategy:"merge"``: lists of objects merge by their ``patchMergeKey`` (Node
  ``status.conditions`` by ``type``), lists of scalars merge as sets (``finalizers``). The
  directives ``$patch`` (replace/delete/merge), ``$retainKeys``,
  ``$deleteFromPrimitiveList/<list>`` and ``$setElementOrder/<list>`` are honoured.
- ``application/apply-patch+yaml`` (server-side apply) is handled before this module is
  reached (``serverside``, ``apply``): it merges by schema, not by patch semantics.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from aliasip_lab.apiserver.errors import (
    ApiError,
    bad_request,
    unprocessable,
    unsupported_media_type,
)

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


def supported_types(strategic: bool) -> list[str]:
    return [JSON_PATCH, MERGE, APPLY, *([STRATEGIC] if strategic else [])]


def apply_patch(
    content_type: str,
    original: dict[str, Any],
    body: bytes,
    *,
    strategic: bool,
    merge_keys: dict[str, str | None],
) -> dict[str, Any]:
    """Apply a PATCH body to a copy of ``original``; ApiError for anything wrong."""
    media = content_type.split(";", 1)[0].strip().lower()
    accepted = supported_types(strategic)
    if media not in accepted:
        raise unsupported_media_type(media, accepted)
    try:
        patch = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"error decoding patch: {exc}") from None
    if media == JSON_PATCH:
        result = json_patch(original, patch)
    elif media == MERGE:
        if not isinstance(patch, dict):
            # kube-apiserver decodes the merged document into an object: a top-level
            # scalar or list cannot be one.
            raise bad_request("json: cannot unmarshal non-object patch into an object")
        result = merge_patch(copy.deepcopy(original), patch)
    else:
        if not isinstance(patch, dict):
            raise bad_request("strategic merge patch must be a JSON object")
        result = strategic_merge_patch(original, patch, merge_keys)
    if not isinstance(result, dict):
        raise bad_request("the patched document is not an object")
    return result


# --------------------------------------------------------------------------- equality


def json_equal(a: Any, b: Any) -> bool:
    """JSON value equality: unlike ``==`` in Python, ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# --------------------------------------------------------------------------- RFC 7386


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 section 2, on copies (the inputs are never modified)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --------------------------------------------------------------------------- RFC 6902


class _Missing:
    pass


_MISSING = _Missing()


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 on a copy of ``doc``; 400 for a malformed body, 422 when an op fails."""
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    result = copy.deepcopy(doc)
    for op in ops:
        result = _apply_op(result, op)
    return result


def _fail(message: str) -> ApiError:
    """kube-apiserver: ``NewGenericServerResponse(422, ...)``, whose message is fixed (the
    detail is dropped there too); kubectl prints "The request is invalid: the server
    rejected our request due to an error in our request"."""
    del message
    return unprocessable("the server rejected our request due to an error in our request")


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise _fail(f"invalid path: {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise _fail(f'JSON pointer must be empty or start with a "/": {path!r}')
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(token: str, length: int, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise _fail(f"invalid array index {token!r}")
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise _fail(f"array index {index} out of bounds")
    return index


def _get(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts:
        if isinstance(node, dict):
            if part not in node:
                return _MISSING
            node = node[part]
        elif isinstance(node, list):
            try:
                node = node[_index(part, len(node), allow_end=False)]
            except ApiError:
                return _MISSING
        else:
            return _MISSING
    return node


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    parent = _get(doc, parts[:-1])
    if isinstance(parent, _Missing) or not isinstance(parent, (dict, list)):
        raise _fail(f"doc is missing path: {path!r}")
    return parent


def _add(doc: Any, parts: list[str], value: Any, path: str) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent.insert(_index(last, len(parent), allow_end=True), value)
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> tuple[Any, Any]:
    if not parts:
        raise _fail("cannot remove the whole document")
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _fail(f"unable to remove nonexistent key: {last}: missing value")
        return doc, parent.pop(last)
    return doc, parent.pop(_index(last, len(parent), allow_end=False))


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    path = op.get("path")
    parts = _pointer(path)
    if kind in ("add", "replace", "test") and "value" not in op:
        raise _fail(f"missing value for {kind} operation")
    value = copy.deepcopy(op.get("value"))
    if kind == "add":
        return _add(doc, parts, value, str(path))
    if kind == "remove":
        return _remove(doc, parts, str(path))[0]
    if kind == "replace":
        if isinstance(_get(doc, parts), _Missing):
            raise _fail(f"replace operation does not apply: doc is missing key: {path}")
        if not parts:
            return value
        doc, _ = _remove(doc, parts, str(path))
        return _add(doc, parts, value, str(path))
    if kind == "test":
        current = _get(doc, parts)
        if isinstance(current, _Missing):
            current = None
        if not json_equal(current, value):
            raise _fail(f"testing value {path} failed: test failed")
        return doc
    if kind in ("move", "copy"):
        source = _pointer(op.get("from"))
        found = _get(doc, source)
        if isinstance(found, _Missing):
            raise _fail(
                f"{kind} operation does not apply: doc is missing from path: {op.get('from')}"
            )
        if kind == "move":
            if parts[: len(source)] == source and len(parts) > len(source):
                raise _fail("move operation: path cannot be a child of from")
            doc, found = _remove(doc, source, str(op.get("from")))
        return _add(doc, parts, copy.deepcopy(found), str(path))
    raise _fail(f"Unexpected kind: {kind}")


# --------------------------------------------------------------------------- strategic merge


class _Delete:
    pass


_DELETE = _Delete()
_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"


def strategic_merge_patch(
    original: dict[str, Any], patch: dict[str, Any], merge_keys: dict[str, str | None]
) -> dict[str, Any]:
    """Strategic merge of ``patch`` into a copy of ``original`` (see module docstring)."""
    merged = _merge_map(original, patch, "", merge_keys)
    return {} if isinstance(merged, _Delete) else merged


def _merge_map(
    orig: dict[str, Any], patch: dict[str, Any], path: str, keys: dict[str, str | None]
) -> dict[str, Any] | _Delete:
    patch = dict(patch)
    directive = patch.pop("$patch", None)
    if directive == "replace":
        replaced: dict[str, Any] = _strip(patch)
        return replaced
    if directive == "delete":
        return _DELETE
    if directive not in (None, "merge"):
        raise bad_request(f"Unknown patch type: {directive}")
    result = copy.deepcopy(orig)
    retain = patch.pop("$retainKeys", None)
    if retain is not None:
        if not isinstance(retain, list):
            raise bad_request("$retainKeys must be a list")
        result = {k: v for k, v in result.items() if k in retain}
    orders: dict[str, Any] = {}
    removals: dict[str, Any] = {}
    for key in list(patch):
        if key.startswith(_ORDER):
            orders[key[len(_ORDER) :]] = patch.pop(key)
        elif key.startswith(_DELETE_FROM):
            removals[key[len(_DELETE_FROM) :]] = patch.pop(key)
    for key, value in patch.items():
        child = f"{path}.{key}" if path else key
        if value is None:
            result.pop(key, None)
            continue
        merged = _merge_value(result.get(key, _MISSING), value, child, keys)
        if isinstance(merged, _Delete):
            result.pop(key, None)
        else:
            result[key] = merged
    for key, values in removals.items():
        if isinstance(result.get(key), list) and isinstance(values, list):
            result[key] = [v for v in result[key] if not any(json_equal(v, r) for r in values)]
    for key, order in orders.items():
        if isinstance(result.get(key), list) and isinstance(order, list):
            child = f"{path}.{key}" if path else key
            result[key] = _reorder(result[key], order, keys.get(child))
    return result


def _merge_value(orig: Any, patch: Any, path: str, keys: dict[str, str | None]) -> Any:
    if isinstance(patch, dict):
        return _merge_map(orig if isinstance(orig, dict) else {}, patch, path, keys)
    if isinstance(patch, list):
        if path in keys:
            return _merge_list(orig if isinstance(orig, list) else [], patch, path, keys)
        return _strip(patch)
    return copy.deepcopy(patch)


def _merge_list(
    orig: list[Any], patch: list[Any], path: str, keys: dict[str, str | None]
) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [_strip(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    key = keys[path]
    result = copy.deepcopy(orig)
    if key is None:
        for item in patch:
            if not any(json_equal(item, r) for r in result):
                result.append(copy.deepcopy(item))
        return result
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {key}")
        if item.get("$patch") == "delete":
            result = [
                r for r in result if not (isinstance(r, dict) and json_equal(r.get(key), item[key]))
            ]
            continue
        for index, existing in enumerate(result):
            if isinstance(existing, dict) and json_equal(existing.get(key), item[key]):
                merged = _merge_map(existing, item, path, keys)
                if isinstance(merged, _Delete):
                    del result[index]
                else:
                    result[index] = merged
                break
        else:
            merged = _merge_map({}, item, path, keys)
            if not isinstance(merged, _Delete):
                result.append(merged)
    return result


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """Items named in ``$setElementOrder`` first, in that order; the others after."""

    def ident(item: Any) -> Any:
        return item.get(key) if key is not None and isinstance(item, dict) else item

    wanted = [ident(o) for o in order]
    ranked = sorted(
        (i for i in items if any(json_equal(ident(i), w) for w in wanted)),
        key=lambda i: next(n for n, w in enumerate(wanted) if json_equal(ident(i), w)),
    )
    rest = [i for i in items if not any(json_equal(ident(i), w) for w in wanted)]
    return ranked + rest


def _strip(value: Any) -> Any:
    """A patch value without directives, for places where it replaces what was there."""
    if isinstance(value, dict):
        return {
            k: _strip(v)
            for k, v in value.items()
            if not (k.startswith("$") and (k in ("$patch", "$retainKeys") or "/" in k))
        }
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return copy.deepcopy(value)
