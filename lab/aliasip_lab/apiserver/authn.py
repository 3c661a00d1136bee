"""Request authentication as kube-apiserver's filter chain does it, and the 401 it answers.

The chain (``k8s.io/apiserver/pkg/authentication``): the ``Authorization: Bearer`` token
is tried against the static tokens (``--token-auth-file``), then against the bound
service-account tokens (``tokens``); the first that knows it wins and
``system:authenticated`` is added to its groups (``AuthenticatedGroupAdder``). A bearer
token nobody accepts is a 401, also when it merely has another issuer ("invalid bearer
token"). A request with no bearer token at all (or an empty one, or another scheme) is
anonymous, ``system:anonymous`` in ``system:unauthenticated``, because kube-apiserver's
``--anonymous-auth`` defaults to true; RBAC then lets it read only ``/healthz``,
``/livez``, ``/readyz`` and ``/version`` (``system:public-info-viewer``). With anonymous
authentication off, such a request is a 401 too. The 401 body is kube-apiserver's:
``Status`` reason ``Unauthorized``, message ``Unauthorized``, no details.

The admin credential: kubeadm writes ``admin.conf`` with a client certificate for the user
``kubernetes-admin``. The lab serves plain http, so it presents the same identity as a
static token, one line of a token file (``token,user,uid,"groups"``) kept beside the
service-account key, written into the lab's kubeconfig as ``users[].user.token``. The
groups are ``system:masters`` (the brief's choice, kubeadm's before 1.29: the privileged
group bypasses RBAC, so the admin stays admin whatever happens to the bindings); kubeadm
1.29+ gives ``admin.conf`` the group ``kubeadm:cluster-admins`` bound to ``cluster-admin``
instead and keeps ``system:masters`` for ``super-admin.conf``.
"""

from __future__ import annotations

import csv
import hmac
import io
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aliasip_lab.apiserver.errors import ApiError
from aliasip_lab.apiserver.tokens import (
    Lookup,
    SigningKey,
    TokenError,
    TokenSettings,
)
from aliasip_lab.apiserver.tokens import (
    authenticate as authenticate_bound_token,
)
from aliasip_lab.apiserver.userinfo import (
    ANONYMOUS_USER,
    SYSTEM_PRIVILEGED_GROUP,
    UserInfo,
    with_authenticated_group,
)

Json = dict[str, Any]

ADMIN_USER = "kubernetes-admin"
ADMIN_GROUPS: tuple[str, ...] = (SYSTEM_PRIVILEGED_GROUP,)


class Unauthorized(ApiError):
    """401 as kube-apiserver writes it: ``apierrors.NewUnauthorized("Unauthorized")``,
    whose Status has no ``details``."""

    def status(self) -> Json:
        body = super().status()
        if not body.get("details"):
            body.pop("details", None)
        return body


def unauthorized() -> Unauthorized:
    return Unauthorized(401, "Unauthorized", "Unauthorized")


class TokenFileError(ValueError):
    """A token file kube-apiserver would refuse at start-up."""


def parse_token_file(text: str, path: str = "token file") -> dict[str, UserInfo]:
    """``--token-auth-file`` (``tokenfile.NewCSV``): ``token,user,uid[,"g1,g2"]`` per line;
    at least three columns; an empty token is skipped; the last duplicate wins."""
    tokens: dict[str, UserInfo] = {}
    for record in csv.reader(io.StringIO(text)):
        if not record:
            continue
        if len(record) < 3:
            raise TokenFileError(
                f"token file '{path}' must have at least 3 columns (token, user name, user "
                f"uid), found {len(record)}"
            )
        token = record[0].strip()
        if not token:
            continue
        groups = tuple(record[3].split(",")) if len(record) >= 4 else ()
        tokens[token] = UserInfo(name=record[1], uid=record[2], groups=groups)
    return tokens


def token_file_line(token: str, user: UserInfo) -> str:
    """One line of a token file for ``user`` (the inverse of ``parse_token_file``)."""
    out = io.StringIO()
    row = [token, user.name, user.uid]
    if user.groups:
        row.append(",".join(user.groups))
    csv.writer(out, lineterminator="\n").writerow(row)
    return out.getvalue()


@dataclass(frozen=True)
class AdminCredential:
    """The lab's cluster-admin: a static bearer token for ``kubernetes-admin``."""

    token: str
    user: UserInfo = field(default_factory=lambda: UserInfo(ADMIN_USER, groups=ADMIN_GROUPS))

    @staticmethod
    def new() -> AdminCredential:
        return AdminCredential(secrets.token_urlsafe(32))

    def token_file(self) -> str:
        return token_file_line(self.token, self.user)

    def kubeconfig_user(self) -> Json:
        """The kubeconfig ``users[]`` entry, named as in kubeadm's admin.conf."""
        return {"name": self.user.name, "user": {"token": self.token}}


def bearer_token(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (``bearertoken.go``); None when there
    is no usable bearer token (no header, another scheme, an empty token)."""
    auth = (authorization or "").strip()
    if not auth:
        return None
    parts = auth.split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return None
    return parts[1] or None


@dataclass(frozen=True)
class Authenticator:
    """Everything the server knows about credentials; ``authenticate`` is the filter."""

    static_tokens: Mapping[str, UserInfo] = field(default_factory=dict)
    key: SigningKey | None = None
    settings: TokenSettings = field(default_factory=TokenSettings)
    anonymous: bool = True  # --anonymous-auth (kube-apiserver's default: true)

    def authenticate(self, authorization: str | None, lookup: Lookup, now: float) -> UserInfo:
        """The request's user, or ``Unauthorized`` (a ``TokenError`` is kube-apiserver's
        log line; clients see only the 401)."""
        token = bearer_token(authorization)
        if token is None:
            if self.anonymous:
                return ANONYMOUS_USER
            raise unauthorized()
        user = self._static(token)
        if user is None and self.key is not None:
            try:
                user = authenticate_bound_token(
                    token, key=self.key, lookup=lookup, now=now, settings=self.settings
                )
            except TokenError as exc:
                raise _unauthorized_because(str(exc)) from exc
        if user is None:
            raise _unauthorized_because("invalid bearer token")
        return with_authenticated_group(user)

    def _static(self, token: str) -> UserInfo | None:
        found = None
        for known, user in self.static_tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = user
        return found


def _unauthorized_because(why: str) -> Unauthorized:
    error = unauthorized()
    error.__notes__ = [f"Unable to authenticate the request: {why}"]
    return error


def self_subject_review(user: UserInfo) -> Json:
    """What ``POST /apis/authentication.k8s.io/v1/selfsubjectreviews`` answers
    (``kubectl auth whoami``): the requesting user, after impersonation."""
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": user.to_json()},
    }
