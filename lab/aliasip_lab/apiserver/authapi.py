"""The API endpoints of authentication and authorization, dispatched from request info.

These resources are never stored; a POST computes the answer (201) from the request's
user, the RBAC policy or the token key:

- ``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews``: ``kubectl auth can-i``
- ``POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews``: ``kubectl auth can-i
  --list``
- ``POST /apis/authorization.k8s.io/v1/subjectaccessreviews``: a review for anyone
- ``POST /apis/authorization.k8s.io/v1/namespaces/<ns>/localsubjectaccessreviews``: the
  same, confined to ``ns``
- ``POST /apis/authentication.k8s.io/v1/selfsubjectreviews``: ``kubectl auth whoami``
- ``POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token``: ``kubectl create token``

``answer`` returns None for any other request, which then goes on to the resource
handlers. The request has passed ``authfilter.admit`` already, so the caller was allowed
to ``create`` the review (``system:basic-user`` lets every authenticated user create the
self reviews) or the token (``create`` on ``serviceaccounts/token``). Other methods on these
paths are 405, as kube-apiserver serves them as create-only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aliasip_lab.apiserver import accessreview, errors, tokens
from aliasip_lab.apiserver.authfilter import Admitted
from aliasip_lab.apiserver.authn import self_subject_review
from aliasip_lab.apiserver.authz import Decision, authorize
from aliasip_lab.apiserver.rbac import PolicySource
from aliasip_lab.apiserver.requestinfo import Attributes

Json = dict[str, Any]
AUTHORIZATION = "authorization.k8s.io"
AUTHENTICATION = "authentication.k8s.io"
REVIEWS = {
    (AUTHORIZATION, "selfsubjectaccessreviews"),
    (AUTHORIZATION, "selfsubjectrulesreviews"),
    (AUTHORIZATION, "subjectaccessreviews"),
    (AUTHORIZATION, "localsubjectaccessreviews"),
    (AUTHENTICATION, "selfsubjectreviews"),
}


def is_auth_endpoint(admitted: Admitted) -> bool:
    info = admitted.info
    if not info.is_resource_request or info.api_version != "v1":
        return False
    if (info.api_group, info.resource) in REVIEWS and not info.name:
        return True
    return (
        info.api_group == ""
        and info.resource == "serviceaccounts"
        and info.subresource == "token"
        and bool(info.name)
    )


def answer(
    admitted: Admitted,
    body: Json,
    *,
    policy: PolicySource,
    key: tokens.SigningKey,
    lookup: tokens.Lookup,
    now: float,
    settings: tokens.TokenSettings | None = None,
) -> Json | None:
    """The 201 body for an auth endpoint, None for any other request; ``ApiError`` for a
    request kube-apiserver refuses (405 for a method other than POST, 400/404/409/422)."""
    if not is_auth_endpoint(admitted):
        return None
    info = admitted.info
    if info.verb != "create":
        raise errors.method_not_allowed()

    def decide(attrs: Attributes) -> Decision:
        return authorize(attrs, policy)

    user = admitted.user
    handlers: dict[str, Callable[[], Json]] = {
        "selfsubjectaccessreviews": lambda: accessreview.self_subject_access_review(
            body, user, decide
        ),
        "selfsubjectrulesreviews": lambda: accessreview.self_subject_rules_review(
            body, user, policy
        ),
        "subjectaccessreviews": lambda: accessreview.subject_access_review(body, decide),
        "localsubjectaccessreviews": lambda: accessreview.local_subject_access_review(
            body, info.namespace, decide
        ),
        "selfsubjectreviews": lambda: self_subject_review(user),
        "serviceaccounts": lambda: tokens.token_request(
            info.namespace,
            info.name,
            body,
            key=key,
            lookup=lookup,
            now=now,
            settings=settings or tokens.TokenSettings(),
        ),
    }
    cluster_wide = info.resource in ("selfsubjectaccessreviews", "selfsubjectrulesreviews",
                                     "subjectaccessreviews", "selfsubjectreviews")  # fmt: skip
    if cluster_wide == bool(info.namespace):
        raise errors.no_route()  # kube-apiserver serves each at one scope only
    return handlers[info.resource]()
