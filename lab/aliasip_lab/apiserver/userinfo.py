"""Who a request is from: kube-apiserver's ``user.Info`` and the names it gives identities.

Authentication (``authn``, ``tokens``), impersonation and the authorizers all speak of a
user as kube-apiserver does (``k8s.io/apiserver/pkg/authentication/user``): a name, a
uid, groups and ``extra`` (string lists keyed by ``authentication.kubernetes.io/...``).
The service-account naming rules are those of
``k8s.io/apiserver/pkg/authentication/serviceaccount/util.go``: the user
``system:serviceaccount:<namespace>:<name>`` in the groups ``system:serviceaccounts`` and
``system:serviceaccounts:<namespace>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# k8s.io/apiserver/pkg/authentication/user/user.go
SYSTEM_PRIVILEGED_GROUP = "system:masters"
ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"

# k8s.io/apiserver/pkg/authentication/serviceaccount/util.go
SA_USERNAME_PREFIX = "system:serviceaccount:"
SA_GROUP_PREFIX = "system:serviceaccounts:"
ALL_SERVICE_ACCOUNTS = "system:serviceaccounts"
POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
NODE_UID_KEY = "authentication.kubernetes.io/node-uid"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class UserInfo:
    """``user.DefaultInfo``: what every authenticator produces and every authorizer reads."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``authentication.k8s.io/v1`` UserInfo (SelfSubjectReview, TokenReview status)."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


def make_username(namespace: str, name: str) -> str:
    """``serviceaccount.MakeUsername``."""
    return f"{SA_USERNAME_PREFIX}{namespace}:{name}"


def make_group_names(namespace: str) -> tuple[str, str]:
    """``serviceaccount.MakeGroupNames``: the two groups every service account is in."""
    return (ALL_SERVICE_ACCOUNTS, SA_GROUP_PREFIX + namespace)


def matches_username(namespace: str, name: str, username: str) -> bool:
    """``serviceaccount.MatchesUsername`` (what RBAC's ServiceAccount subjects compare)."""
    return username == make_username(namespace, name)


def split_username(username: str) -> tuple[str, str] | None:
    """``serviceaccount.SplitUsername``: (namespace, name), or None when ``username`` is not
    a well-formed service account user (then impersonation treats it as a plain User)."""
    if not username.startswith(SA_USERNAME_PREFIX):
        return None
    parts = username[len(SA_USERNAME_PREFIX) :].split(":")
    if len(parts) != 2:
        return None
    namespace, name = parts
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        return None
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return None
    return namespace, name


def service_account_user(
    namespace: str,
    name: str,
    uid: str,
    *,
    pod_name: str = "",
    pod_uid: str = "",
    node_name: str = "",
    node_uid: str = "",
    credential_id: str = "",
) -> UserInfo:
    """``ServiceAccountInfo.UserInfo()`` followed by the authenticator's group adder.

    ``extra`` holds the pod only when both its name and uid are known, the node when its
    name is (its uid only with the name), and the credential id (``JTI=<jti>``) when the
    token had one, exactly as kube-apiserver fills them. ``system:authenticated`` is added
    last, as ``AuthenticatedGroupAdder`` does for every authenticated request.
    """
    extra: dict[str, tuple[str, ...]] = {}
    if pod_name and pod_uid:
        extra[POD_NAME_KEY] = (pod_name,)
        extra[POD_UID_KEY] = (pod_uid,)
    if credential_id:
        extra[CREDENTIAL_ID_KEY] = (credential_id,)
    if node_name:
        extra[NODE_NAME_KEY] = (node_name,)
        if node_uid:
            extra[NODE_UID_KEY] = (node_uid,)
    return UserInfo(
        name=make_username(namespace, name),
        uid=uid,
        groups=(*make_group_names(namespace), ALL_AUTHENTICATED),
        extra=extra,
    )


def with_authenticated_group(user: UserInfo) -> UserInfo:
    """``AuthenticatedGroupAdder``: add ``system:authenticated`` unless the user is
    anonymous or already in it (or in ``system:unauthenticated``)."""
    if user.name == ANONYMOUS:
        return user
    if ALL_AUTHENTICATED in user.groups or ALL_UNAUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, ALL_AUTHENTICATED), user.extra)


ANONYMOUS_USER = UserInfo(name=ANONYMOUS, groups=(ALL_UNAUTHENTICATED,))
"""What ``--anonymous-auth=true`` (kube-apiserver's default) makes of a request without
credentials."""
