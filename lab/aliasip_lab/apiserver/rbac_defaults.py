"""The default ClusterRoles and ClusterRoleBindings kube-apiserver creates at start-up.

kube-apiserver's ``rbac/bootstrap-roles`` post-start hook reconciles these from
``plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`` (1.32); the ones here are
those the product and its clients rely on, with the same names, rules, subjects, label
``kubernetes.io/bootstrapping: rbac-defaults`` and annotation
``rbac.authorization.kubernetes.io/autoupdate: "true"``:

- ``cluster-admin`` (everything), bound to the group ``system:masters`` (which the
  privileged-group authorizer allows before RBAC is even asked);
- ``system:discovery`` (GET ``/api``, ``/apis``, ``/openapi``, ``/version``, health),
  bound to ``system:authenticated``: every client's discovery (kopf, kubectl, the
  kubernetes client) needs it and no shipped Role grants it;
- ``system:basic-user`` (create SelfSubjectAccessReviews, SelfSubjectRulesReviews and
  SelfSubjectReviews), bound to ``system:authenticated``: ``kubectl auth can-i`` and
  ``kubectl auth whoami`` for anyone;
- ``system:public-info-viewer`` (GET ``/healthz``, ``/livez``, ``/readyz``, ``/version``),
  bound to ``system:authenticated`` and ``system:unauthenticated``: anonymous probes;
- ``system:service-account-issuer-discovery`` (the OIDC discovery documents), bound to
  ``system:serviceaccounts``.

Not created here: ``admin``/``edit``/``view`` and their ``system:aggregate-to-*`` parts,
the controllers', nodes' and other components' roles (the lab runs none of those
components), ``system:monitoring``.
"""

from __future__ import annotations

from typing import Any

from aliasip_lab.apiserver.rbac import RBAC_GROUP
from aliasip_lab.apiserver.userinfo import (
    ALL_AUTHENTICATED,
    ALL_SERVICE_ACCOUNTS,
    ALL_UNAUTHENTICATED,
    SYSTEM_PRIVILEGED_GROUP,
)

Json = dict[str, Any]

BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def _metadata(name: str) -> Json:
    return {"name": name, "labels": dict(BOOTSTRAP_LABELS), "annotations": dict(AUTOUPDATE)}


def _cluster_role(name: str, rules: list[Json]) -> Json:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": _metadata(name),
        "rules": rules,
    }


def _binding(name: str, *groups: str) -> Json:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _metadata(name),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups],
    }


def _urls(*urls: str) -> Json:
    return {"nonResourceURLs": list(urls), "verbs": ["get"]}


def cluster_roles() -> list[Json]:
    """Fresh copies (callers may store and mutate them)."""
    return [
        _cluster_role(
            "cluster-admin",
            [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
        ),
        _cluster_role(
            "system:discovery",
            [
                _urls(
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                )
            ],
        ),
        _cluster_role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                    "verbs": ["create"],
                },
            ],
        ),
        _cluster_role(
            "system:public-info-viewer",
            [_urls("/healthz", "/livez", "/readyz", "/version", "/version/")],
        ),
        _cluster_role(
            "system:service-account-issuer-discovery",
            [
                _urls(
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                )
            ],
        ),
    ]


def cluster_role_bindings() -> list[Json]:
    return [
        _binding("cluster-admin", SYSTEM_PRIVILEGED_GROUP),
        _binding("system:basic-user", ALL_AUTHENTICATED),
        _binding("system:discovery", ALL_AUTHENTICATED),
        _binding("system:public-info-viewer", ALL_AUTHENTICATED, ALL_UNAUTHENTICATED),
        _binding("system:service-account-issuer-discovery", ALL_SERVICE_ACCOUNTS),
    ]


def objects() -> list[Json]:
    """Everything, roles before bindings (the order the post-start hook creates them)."""
    return [*cluster_roles(), *cluster_role_bindings()]
