"""The authentication and authorization filters in one call, for the HTTP layer.

kube-apiserver's handler chain runs, before any request reaches its handler: request info
(``requestinfo``), authentication (``authn``; 401), impersonation (``impersonation``; 400
or 403), authorization (``authz``; 403). ``admit`` does the same, purely: the server passes
the method, path, query and headers, and gets back who the request is from and what it
asks, or an ``ApiError`` to answer with. ``StorePolicy`` and ``store_lookup`` read the RBAC
objects and the token-bound objects from the server's store (anything with the store's
``get``/``items``); a resource the store does not keep reads as empty.

The RBAC policy is the stored objects only: the default roles and bindings
(``rbac_defaults``) must be created in the store at start-up, as kube-apiserver's
bootstrap hook creates them, so that they can be listed and changed like any object.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aliasip_lab.apiserver import errors, impersonation
from aliasip_lab.apiserver.authn import Authenticator
from aliasip_lab.apiserver.authz import Decision, authorize, forbidden
from aliasip_lab.apiserver.rbac import RBAC_GROUP, PolicySource
from aliasip_lab.apiserver.requestinfo import (
    Attributes,
    RequestInfo,
    RequestInfoError,
    attributes,
    request_info,
)
from aliasip_lab.apiserver.tokens import Lookup
from aliasip_lab.apiserver.userinfo import UserInfo

Json = dict[str, Any]


class ObjectReader(Protocol):
    """The part of ``store.Store`` the filters read."""

    def get(self, gr: tuple[str, str], key: tuple[str, str]) -> Json | None: ...

    def items(
        self, gr: tuple[str, str], namespace: str | None = None
    ) -> Iterator[tuple[tuple[str, str], Json]]: ...


@dataclass(frozen=True)
class StorePolicy:
    """RBAC objects as the store holds them (bindings in name order)."""

    store: ObjectReader

    def _get(self, resource: str, key: tuple[str, str]) -> Json | None:
        try:
            return self.store.get((RBAC_GROUP, resource), key)
        except LookupError:
            return None

    def _items(self, resource: str, namespace: str) -> list[Json]:
        try:
            return [obj for _, obj in self.store.items((RBAC_GROUP, resource), namespace)]
        except LookupError:
            return []

    def get_role(self, namespace: str, name: str) -> Json | None:
        return self._get("roles", (namespace, name))

    def get_cluster_role(self, name: str) -> Json | None:
        return self._get("clusterroles", ("", name))

    def role_bindings(self, namespace: str) -> Iterable[Json]:
        return self._items("rolebindings", namespace)

    def cluster_role_bindings(self) -> Iterable[Json]:
        return self._items("clusterrolebindings", "")


def store_lookup(store: ObjectReader) -> Lookup:
    """``tokens.Lookup`` over the store: core ServiceAccounts, Pods, Secrets, Nodes."""

    def lookup(resource: str, namespace: str, name: str) -> Json | None:
        try:
            return store.get(("", resource), (namespace, name))
        except LookupError:
            return None

    return lookup


@dataclass(frozen=True)
class Admitted:
    """A request that may proceed: its (possibly impersonated) user and what it asks."""

    user: UserInfo
    info: RequestInfo

    @property
    def attributes(self) -> Attributes:
        return attributes(self.user, self.info)


def admit(
    method: str,
    path: str,
    query: Mapping[str, Sequence[str]],
    headers: Iterable[tuple[str, str]],
    *,
    authenticator: Authenticator,
    policy: PolicySource,
    lookup: Lookup,
    now: float,
) -> Admitted:
    """Request info, authentication, impersonation, authorization; ``ApiError`` (401, 400,
    403, or 500 for a path kube-apiserver cannot parse) if the request must stop here."""
    pairs = list(headers)
    try:
        info = request_info(method, path, query)
    except RequestInfoError as exc:
        raise errors.internal(str(exc)) from exc
    authorization = next((v for k, v in pairs if k.lower() == "authorization"), None)
    requestor = authenticator.authenticate(authorization, lookup, now)

    def decide(attrs: Attributes) -> Decision:
        return authorize(attrs, policy)

    user = impersonation.impersonate(requestor, pairs, decide)
    attrs = attributes(user, info)
    decision = decide(attrs)
    if not decision.allowed:
        raise forbidden(attrs, decision.reason)
    return Admitted(user, info)
