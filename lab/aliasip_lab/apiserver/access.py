"""Who may do what, at the HTTP edge: kube-apiserver's authentication and authorization
filters in front of the lab's handlers (opt-in: ``--authorization-mode RBAC``).

The pieces are pure modules (``authfilter.admit``: request info, authentication,
impersonation, RBAC; ``authapi``: the review endpoints and TokenRequest); this one holds
what a serving API needs for them (the authenticator with its static tokens and the
service-account signing key) and what kube-apiserver's post-start hook does: the default
ClusterRoles and bindings (``rbac_defaults``) stored as ordinary objects, so that they can
be listed, read and changed like any other.

Why opt-in for now: the lab's agents and operators still get the admin kubeconfig; once
they run from the manifests with their own service-account tokens (issue 12's lab
kubelet), the lab turns it on.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aliasip_lab.apiserver import authapi, rbac_defaults
from aliasip_lab.apiserver.authfilter import Admitted, StorePolicy, admit, store_lookup
from aliasip_lab.apiserver.authn import AdminCredential, Authenticator, parse_token_file
from aliasip_lab.apiserver.operations import Api
from aliasip_lab.apiserver.tokens import SigningKey

Json = dict[str, Any]


@dataclass(frozen=True)
class Access:
    """The authenticator and signing key of one serving API."""

    authenticator: Authenticator
    key: SigningKey
    admin: AdminCredential | None = None

    @staticmethod
    def create(
        token_file: Path | None = None,
        key_file: Path | None = None,
        anonymous: bool = True,
    ) -> Access:
        """From kube-apiserver's flags: ``--token-auth-file`` (static tokens; without one,
        a fresh admin token, written into the kubeconfig the server writes),
        ``--service-account-key-file`` (without one, a fresh key: tokens then die with the
        server, as with a rotated key), ``--anonymous-auth``."""
        admin = None
        if token_file is not None:
            static = parse_token_file(token_file.read_text(), str(token_file))
        else:
            admin = AdminCredential.new()
            static = parse_token_file(admin.token_file())
        key_bytes = key_file.read_bytes() if key_file is not None else secrets.token_bytes(32)
        key = SigningKey(key_bytes)
        return Access(Authenticator(static, key=key, anonymous=anonymous), key, admin)

    def bootstrap(self, api: Api) -> None:
        """The default roles and bindings, created where missing (as the post-start
        hook ``rbac/bootstrap-roles`` does; an edited one is left as it is)."""
        for obj in rbac_defaults.objects():
            plural = "clusterroles" if obj["kind"] == "ClusterRole" else "clusterrolebindings"
            rt = api.registry.lookup("rbac.authorization.k8s.io", "v1", plural)
            assert rt is not None, plural
            name = obj["metadata"]["name"]
            if api.store.get((rt.group, rt.plural), ("", name)) is None:
                api.create(rt, "", obj)

    def admit(
        self,
        api: Api,
        method: str,
        path: str,
        query: Mapping[str, Sequence[str]],
        headers: Iterable[tuple[str, str]],
    ) -> Admitted:
        """The request's user and attributes, or ``ApiError`` (401/400/403)."""
        return admit(
            method,
            path,
            query,
            headers,
            authenticator=self.authenticator,
            policy=StorePolicy(api.store),
            lookup=store_lookup(api.store),
            now=time.time(),
        )

    def answer(self, api: Api, admitted: Admitted, body: Json) -> Json | None:
        """The 201 body of a review or TokenRequest; None for any other request."""
        return authapi.answer(
            admitted,
            body,
            policy=StorePolicy(api.store),
            key=self.key,
            lookup=store_lookup(api.store),
            now=time.time(),
        )
