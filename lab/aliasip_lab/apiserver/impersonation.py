"""User impersonation (``Impersonate-*`` headers), checked as kube-apiserver checks it.

A copy of ``WithImpersonation`` (``k8s.io/apiserver/pkg/endpoints/filters/impersonation``),
which runs after authentication and before authorization:

- ``Impersonate-User: system:serviceaccount:<ns>:<name>`` (a well-formed one) needs the
  verb ``impersonate`` on ``serviceaccounts`` named ``<name>`` in namespace ``<ns>`` (core
  group); without ``Impersonate-Group`` the user gets the service account's groups.
  Any other user name needs ``impersonate`` on ``users`` named so (cluster scope).
- Each ``Impersonate-Group`` needs ``impersonate`` on ``groups``; the groups given are
  then the user's groups (no service-account groups are added).
- Each value of each ``Impersonate-Extra-<key>`` needs ``impersonate`` on
  ``userextras/<key>`` (group ``authentication.k8s.io``) named by the value; the key is
  lower-cased and %-unescaped.
- ``Impersonate-Uid`` needs ``impersonate`` on ``uids`` (group
  ``authentication.k8s.io``).
- Groups, extras or a uid without a user are a 400 ``requested [...] without
  impersonating a user``.
- The impersonated user is in ``system:authenticated`` unless it is ``system:anonymous``
  or the groups given include ``system:authenticated`` or ``system:unauthenticated``;
  ``system:anonymous`` gets ``system:unauthenticated`` instead.
- The first check that fails answers the 403 of that check (``authz.forbidden``), e.g.
  ``serviceaccounts "aliasip-agent" is forbidden: User "u" cannot impersonate resource
  "serviceaccounts" in API group "" in the namespace "aliasip-system"``.

``kubectl --as``/``--as-group`` and ``kubectl auth can-i --as`` send these headers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from aliasip_lab.apiserver import errors
from aliasip_lab.apiserver.authz import Decision, forbidden
from aliasip_lab.apiserver.requestinfo import Attributes
from aliasip_lab.apiserver.userinfo import (
    ALL_AUTHENTICATED,
    ALL_UNAUTHENTICATED,
    ANONYMOUS,
    UserInfo,
    make_group_names,
    make_username,
    split_username,
)

USER_HEADER = "impersonate-user"
GROUP_HEADER = "impersonate-group"
UID_HEADER = "impersonate-uid"
EXTRA_PREFIX = "impersonate-extra-"
AUTHENTICATION_GROUP = "authentication.k8s.io"

Authorize = Callable[[Attributes], Decision]


@dataclass(frozen=True)
class _Request:
    """One ``ObjectReference`` of ``buildImpersonationRequests``."""

    kind: str
    name: str
    namespace: str = ""
    api_version: str = ""
    field_path: str = ""

    def go_string(self) -> str:
        """Go's ``%v`` of the ``v1.ObjectReference`` (seven fields, space-separated)."""
        fields = (self.kind, self.namespace, self.name, "", self.api_version, "", self.field_path)
        return "{" + " ".join(fields) + "}"


def _unescape_extra_key(encoded: str) -> str:
    """``url.PathUnescape``, keeping the raw key when it is malformed."""
    if "%" in encoded:
        parts = encoded.split("%")
        for part in parts[1:]:
            if len(part) < 2 or any(c not in "0123456789abcdefABCDEF" for c in part[:2]):
                return encoded
    return unquote(encoded, errors="surrogateescape")


def _requests(headers: Iterable[tuple[str, str]]) -> list[_Request]:
    user: str | None = None
    groups: list[_Request] = []
    extras: list[_Request] = []
    uid: str | None = None
    for raw_key, value in headers:
        key = raw_key.lower()
        if key == USER_HEADER:
            user = value if user is None else user  # http.Header.Get: the first value
        elif key == GROUP_HEADER:
            groups.append(_Request("Group", value))
        elif key.startswith(EXTRA_PREFIX):
            extra_key = _unescape_extra_key(key[len(EXTRA_PREFIX) :])
            extras.append(
                _Request(
                    "UserExtra", value, api_version="authentication.k8s.io/v1", field_path=extra_key
                )
            )
        elif key == UID_HEADER:
            uid = value if uid is None else uid
    out: list[_Request] = []
    if user:
        split = split_username(user)
        if split is not None:
            out.append(_Request("ServiceAccount", split[1], namespace=split[0]))
        else:
            out.append(_Request("User", user))
    out += groups + extras
    if uid:
        out.append(_Request("UID", uid, api_version="authentication.k8s.io/v1"))
    if (groups or extras or uid) and not user:
        listed = "[" + " ".join(r.go_string() for r in out) + "]"
        raise errors.bad_request(f"requested {listed} without impersonating a user")
    return out


def impersonate(
    requestor: UserInfo, headers: Iterable[tuple[str, str]], authorize: Authorize
) -> UserInfo:
    """The user the request acts as: ``requestor`` itself without impersonation headers,
    else the impersonated user once every part of it is allowed (403 or 400 otherwise).
    ``headers`` are all header (name, value) pairs, repeated names included."""
    wanted = _requests(headers)
    if not wanted:
        return requestor
    groups_given = any(r.kind == "Group" for r in wanted)
    username, uid = "", ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    for request in wanted:
        if request.kind == "ServiceAccount":
            attrs = _acting_as(requestor, "", "serviceaccounts", request.name, request.namespace)
            username = make_username(request.namespace, request.name)
            if not groups_given:
                groups = list(make_group_names(request.namespace))
        elif request.kind == "User":
            attrs = _acting_as(requestor, "", "users", request.name)
            username = request.name
        elif request.kind == "Group":
            attrs = _acting_as(requestor, "", "groups", request.name)
            groups.append(request.name)
        elif request.kind == "UserExtra":
            attrs = _acting_as(
                requestor,
                AUTHENTICATION_GROUP,
                "userextras",
                request.name,
                subresource=request.field_path,
            )
            extra.setdefault(request.field_path, []).append(request.name)
        else:
            attrs = _acting_as(requestor, AUTHENTICATION_GROUP, "uids", request.name)
            uid = request.name
        decision = authorize(attrs)
        if not decision.allowed:
            raise forbidden(attrs, decision.reason)
    if username != ANONYMOUS:
        if ALL_AUTHENTICATED not in groups and ALL_UNAUTHENTICATED not in groups:
            groups.append(ALL_AUTHENTICATED)
    elif ALL_UNAUTHENTICATED not in groups:
        groups.append(ALL_UNAUTHENTICATED)
    return UserInfo(
        name=username,
        uid=uid,
        groups=tuple(groups),
        extra={k: tuple(v) for k, v in extra.items()},
    )


def _acting_as(
    requestor: UserInfo,
    group: str,
    resource: str,
    name: str,
    namespace: str = "",
    subresource: str = "",
) -> Attributes:
    return Attributes(
        user=requestor,
        verb="impersonate",
        resource_request=True,
        namespace=namespace,
        api_group=group,
        api_version="v1",
        resource=resource,
        subresource=subresource,
        name=name,
    )
