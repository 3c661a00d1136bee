"""What a request asks for, in the terms authorizers use: kube-apiserver's RequestInfo.

A copy of ``RequestInfoFactory.NewRequestInfo``
(``k8s.io/apiserver/pkg/endpoints/request/requestinfo.go``) with API prefixes ``api``
(group-less) and ``apis``:

- A path outside ``/api`` and ``/apis``, or one of the discovery paths above the
  resources (``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>``,
  ``/apis/<group>/<version>``), is a non-resource request whose verb is the lower-cased
  HTTP method (``get``, ``head``, ``post``...). RBAC matches it against
  ``nonResourceURLs``.
- Otherwise it is a resource request. The verb comes from the method (POST create,
  GET/HEAD get, PUT update, PATCH patch, DELETE delete; any other method an empty verb),
  or from the legacy prefixes ``/watch/`` and ``/proxy/``. ``namespaces/<ns>/<resource>``
  sets the namespace; ``/api/v1/namespaces/<ns>`` is the namespace object itself, whose
  namespace attribute is its own name (so a RoleBinding in ``ns`` can grant reading it),
  and ``status`` and ``finalize`` after it are its subresources.
- A GET without a name is ``list``, or ``watch`` when the first ``watch`` value is anything
  but ``false``/``0`` (``watch=`` too, as ``Convert_Slice_string_To_bool`` reads it); a
  list or watch whose ``fieldSelector`` requires ``metadata.name=<n>`` exactly gets the
  name ``n`` (so ``resourceNames`` can allow watching one object, as client-go's
  single-object informers do). A DELETE without a name is ``deletecollection``. A GET of
  a named object stays ``get`` whatever its ``watch`` parameter says.

RBAC ignores label/field selector requirements (the 1.32 ``AuthorizeWithSelectors``
attributes serve webhook authorizers only), so they are not derived here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aliasip_lab.apiserver.userinfo import UserInfo

API_PREFIXES = frozenset({"api", "apis"})
GROUPLESS_API_PREFIXES = frozenset({"api"})
SPECIAL_VERBS = frozenset({"proxy", "watch"})
SPECIAL_VERBS_NO_SUBRESOURCES = frozenset({"proxy"})
NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


@dataclass(frozen=True)
class RequestInfo:
    """``request.RequestInfo``."""

    is_resource_request: bool
    path: str
    verb: str
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attributes:
    """``authorizer.AttributesRecord``: a user and what it asks to do."""

    user: UserInfo
    verb: str
    resource_request: bool
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


def attributes(user: UserInfo, info: RequestInfo) -> Attributes:
    """``GetAuthorizerAttributes``: the request info seen as the authorizer sees it."""
    if not info.is_resource_request:
        return Attributes(user=user, verb=info.verb, resource_request=False, path=info.path)
    return Attributes(
        user=user,
        verb=info.verb,
        resource_request=True,
        namespace=info.namespace,
        api_group=info.api_group,
        api_version=info.api_version,
        resource=info.resource,
        subresource=info.subresource,
        name=info.name,
        path=info.path,
    )


class RequestInfoError(ValueError):
    """``/api/v1/watch`` with nothing after it: kube-apiserver answers 500 with this."""


def _split_path(path: str) -> list[str]:
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []


def request_info(method: str, path: str, query: Mapping[str, Sequence[str]]) -> RequestInfo:
    """The request info of ``method path?query``; ``query`` maps each parameter to all of
    its values, in order (``urllib.parse.parse_qs(..., keep_blank_values=True)``, or
    ``{k: request.query.getall(k)}`` from aiohttp)."""
    verb = method.lower()
    parts = _split_path(path)
    if len(parts) < 3 or parts[0] not in API_PREFIXES:
        return RequestInfo(False, path, verb)
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix not in GROUPLESS_API_PREFIXES:
        if len(parts) < 3:
            return RequestInfo(False, path, verb)
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]
    if parts[0] in SPECIAL_VERBS:
        if len(parts) < 2:
            raise RequestInfoError(f"unable to determine kind and namespace from url, {path}")
        verb, parts = parts[0], parts[1:]
    else:
        verb = METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = subresource = name = ""
    if len(parts) >= 3 and verb not in SPECIAL_VERBS_NO_SUBRESOURCES:
        subresource = parts[2]
    if len(parts) >= 2:
        name = parts[1]
    if parts:
        resource = parts[0]
    if not name and verb == "get":
        watch = query.get("watch") or ()
        verb = "watch" if watch and watch[0].lower() not in ("false", "0") else "list"
        selected = _name_from_field_selector(query)
        if selected is not None and _valid_path_segment(selected):
            name = selected
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(
        True, path, verb, prefix, group, version, namespace, resource, subresource, name,
        tuple(parts),
    )  # fmt: skip


def _valid_path_segment(name: str) -> bool:
    """``path.IsValidPathSegmentName``."""
    return name not in (".", "..") and "/" not in name and "%" not in name


def _name_from_field_selector(query: Mapping[str, Sequence[str]]) -> str | None:
    """``fieldSelector.RequiresExactMatch("metadata.name")``, when the list options decode
    (a malformed selector or a non-integer ``limit``/``timeoutSeconds`` makes
    kube-apiserver fall back to no name)."""
    for key in ("limit", "timeoutSeconds"):
        values = query.get(key) or ()
        if values and values[0] != "":
            try:
                int(values[0])
            except ValueError:
                return None
    values = query.get("fieldSelector") or ()
    if not values or not values[0]:
        return None
    terms = _parse_field_selector(values[0])
    if terms is None:
        return None
    for field, op, value in terms:
        if field == "metadata.name" and op in ("=", "=="):
            return value
    return None


def _parse_field_selector(text: str) -> list[tuple[str, str, str]] | None:
    """``fields.ParseSelector``: comma-separated ``field<op>value`` terms, sorted, each split
    at the first place where ``!=``, ``==`` or ``=`` starts; values take the ``\\\\``,
    ``\\,`` and ``\\=`` escapes. None if malformed."""
    terms: list[tuple[str, str, str]] = []
    for raw in sorted(_split_unescaped(text, ",")):
        if not raw:
            continue
        split = _split_term(raw)
        if split is None:
            return None
        field, op, value = split
        unescaped = _unescape(value)
        if unescaped is None:
            return None
        terms.append((field, op, unescaped))
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    out, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == sep:
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return out


def _unescape(value: str) -> str | None:
    out, i = [], 0
    while i < len(value):
        char = value[i]
        if char == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                return None
            out.append(value[i + 1])
            i += 2
            continue
        if char in ",=":
            return None
        out.append(char)
        i += 1
    return "".join(out)
