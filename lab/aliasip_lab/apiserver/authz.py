"""Authorization as kubeadm configures kube-apiserver, and the 403 it answers.

The authorizer chain (``--authorization-mode=Node,RBAC``, union in
``k8s.io/apiserver/pkg/authorization/union``): first the privileged-group authorizer
(``authorizerfactory.NewPrivilegedGroups("system:masters")``: a member is allowed
everything, reason ``""``), then the Node authorizer (no opinion for anyone but kubelets;
the lab runs none, so it is left out), then RBAC. The first Allow wins; if nobody allows,
the request is forbidden and the reasons gathered on the way (RBAC's resolution errors)
are appended to the message.

The 403 body (``responsewriters.Forbidden`` and ``forbiddenMessage`` in
``k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go``, wrapped by
``apierrors.NewForbidden``): a Status with reason ``Forbidden``, ``details`` {name, group,
kind: the resource} and one of the messages

- ``leases.coordination.k8s.io "x" is forbidden: User "u" cannot update resource "leases"
  in API group "coordination.k8s.io" in the namespace "ns"``
- ``nodes is forbidden: User "u" cannot list resource "nodes" in API group "" at the
  cluster scope`` (no name: no quoted name)
- ``aliasips.aliasip.io "a" is forbidden: User "u" cannot update resource
  "aliasips/status" in API group "aliasip.io" at the cluster scope`` (the subresource in
  the resource, not in the qualified name)
- ``forbidden: User "system:anonymous" cannot get path "/api"`` (non-resource)

followed by ``: <reason>`` when there is one. ``&``, ``<`` and ``>`` in the first part are
HTML-escaped, as kube-apiserver does to keep errors from looking like HTML.
"""

from __future__ import annotations

from dataclasses import dataclass

from aliasip_lab.apiserver import rbac
from aliasip_lab.apiserver.errors import ApiError
from aliasip_lab.apiserver.rbac import PolicySource, go_quote
from aliasip_lab.apiserver.requestinfo import Attributes
from aliasip_lab.apiserver.userinfo import SYSTEM_PRIVILEGED_GROUP

_SANITIZE = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


@dataclass(frozen=True)
class Decision:
    """``authorizer.Decision`` with its reason: allowed, or no opinion (RBAC never denies)."""

    allowed: bool
    reason: str = ""
    denied: bool = False


def authorize(attrs: Attributes, policy: PolicySource) -> Decision:
    """The union of the privileged-group authorizer and RBAC."""
    if SYSTEM_PRIVILEGED_GROUP in attrs.user.groups:
        return Decision(True)
    allowed, reason = rbac.authorize(attrs, policy)
    return Decision(allowed, reason)


def forbidden_message(attrs: Attributes) -> str:
    """``forbiddenMessage``."""
    user = go_quote(attrs.user.name)
    if not attrs.resource_request:
        return f"User {user} cannot {attrs.verb} path {go_quote(attrs.path)}"
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    head = (
        f"User {user} cannot {attrs.verb} resource {go_quote(resource)} "
        f"in API group {go_quote(attrs.api_group)}"
    )
    if attrs.namespace:
        return f"{head} in the namespace {go_quote(attrs.namespace)}"
    return f"{head} at the cluster scope"


def forbidden(attrs: Attributes, reason: str = "") -> ApiError:
    """The 403 kube-apiserver answers for ``attrs`` (``responsewriters.Forbidden``)."""
    message = "".join(_SANITIZE.get(c, c) for c in forbidden_message(attrs))
    if reason:
        message = f"{message}: {reason}"
    group, resource, name = attrs.api_group, attrs.resource, attrs.name
    if not group and not resource:
        text = f"forbidden: {message}"
    else:
        qualified = f"{resource}.{group}" if group else resource
        text = (
            f"{qualified} {go_quote(name)} is forbidden: {message}"
            if name
            else f"{qualified} is forbidden: {message}"
        )
    details: dict[str, str] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if resource:
        details["kind"] = resource
    return ApiError(403, "Forbidden", text, details)


def check(attrs: Attributes, policy: PolicySource) -> None:
    """The authorization filter: return if allowed, raise the 403 otherwise."""
    decision = authorize(attrs, policy)
    if not decision.allowed:
        raise forbidden(attrs, decision.reason)
