"""SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview and
SelfSubjectRulesReview.

``authorization.k8s.io/v1``, as ``pkg/registry/authorization/*subjectaccessreview`` and
``pkg/apis/authorization/validation`` do them: the review is validated, turned into
request attributes (``authorizationutil.ResourceAttributesFrom`` /
``NonResourceAttributesFrom`` / ``AuthorizationAttributesFrom``), put to the same
authorizer chain as real requests, and answered (201) with the review and its status
``{allowed, denied (only if true), reason, evaluationError}``; nothing is stored.

- SelfSubjectAccessReview asks about the requesting user (after impersonation: this is
  what ``kubectl auth can-i --as system:serviceaccount:ns:sa ...`` sends), so it answers as
  the real request would be answered.
- SubjectAccessReview names the user, groups, extra and uid itself; the groups are taken
  as given (no ``system:authenticated`` is added).
- LocalSubjectAccessReview is a SubjectAccessReview confined to its namespace.
- SelfSubjectRulesReview (``kubectl auth can-i --list``) lists the RBAC rules that apply
  to the requesting user in ``spec.namespace`` (required: 400 ``no namespace on request``),
  split into resource and non-resource rules as ``RBACAuthorizer.RulesFor`` does; binding
  errors go to ``evaluationError``. The privileged-group authorizer lists nothing there
  (in kube-apiserver it is not a rule resolver), so ``system:masters`` sees the rules of the
  ``cluster-admin`` binding.

Validation failures are 422 with kube-apiserver's field messages, e.g.
``SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes:
Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be
specified``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aliasip_lab.apiserver import errors
from aliasip_lab.apiserver.authz import Decision
from aliasip_lab.apiserver.errors import ApiError, Cause
from aliasip_lab.apiserver.rbac import PolicySource, go_quote, rules_for
from aliasip_lab.apiserver.requestinfo import Attributes
from aliasip_lab.apiserver.userinfo import UserInfo

Json = dict[str, Any]
Authorize = Callable[[Attributes], Decision]
GROUP = "authorization.k8s.io"


def _cause(field: str, shown: str, why: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {shown}: {why}", field)


def _go_struct(name: str, value: Mapping[str, Any] | None, fields: tuple[str, ...]) -> str:
    """Go's ``%#v`` of a small attributes struct, as field errors print it."""
    if value is None:
        return '"null"'
    inner = ", ".join(f"{f[0].upper()}{f[1:]}:{go_quote(str(value.get(f, '')))}" for f in fields)
    return f"&authorization.{name}{{{inner}}}"


_NON_RESOURCE_FIELDS = ("path", "verb")


def _spec_causes(spec: Mapping[str, Any], with_subject: bool) -> list[Cause]:
    """``ValidateSubjectAccessReviewSpec`` / ``ValidateSelfSubjectAccessReviewSpec``."""
    causes = []
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        causes.append(
            _cause(
                "spec.nonResourceAttributes",
                _go_struct("NonResourceAttributes", non_resource, _NON_RESOURCE_FIELDS),
                "cannot be specified in combination with resourceAttributes",
            )
        )
    if resource is None and non_resource is None:
        causes.append(
            _cause(
                "spec.resourceAttributes",
                '"null"',
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        )
    if with_subject and not spec.get("user") and not spec.get("groups"):
        causes.append(
            _cause(
                "spec.user",
                go_quote(str(spec.get("user") or "")),
                "at least one of user or group must be specified",
            )
        )
    return causes


def _meta_cause(meta: Mapping[str, Any], except_namespace: bool) -> list[Cause]:
    rest = {
        k: v
        for k, v in meta.items()
        if v not in (None, "", {}, []) and k != "managedFields"
        if not (except_namespace and k == "namespace")
    }
    if not rest:
        return []
    why = "must be empty except for namespace" if except_namespace else "must be empty"
    shown = "v1.ObjectMeta{" + ", ".join(f"{k}:{v!r}" for k, v in rest.items()) + "}"
    return [_cause("metadata", shown, why)]


def _invalid(kind: str, causes: list[Cause]) -> ApiError:
    return errors.invalid(GROUP, kind, "", causes)


def _resource_attributes(user: UserInfo, attrs: Mapping[str, Any]) -> Attributes:
    """``ResourceAttributesFrom`` (an empty version matches all: ``*``)."""
    return Attributes(
        user=user,
        verb=str(attrs.get("verb", "")),
        resource_request=True,
        namespace=str(attrs.get("namespace", "")),
        api_group=str(attrs.get("group", "")),
        api_version=str(attrs.get("version") or "*"),
        resource=str(attrs.get("resource", "")),
        subresource=str(attrs.get("subresource", "")),
        name=str(attrs.get("name", "")),
    )


def _non_resource_attributes(user: UserInfo, attrs: Mapping[str, Any]) -> Attributes:
    return Attributes(
        user=user,
        verb=str(attrs.get("verb", "")),
        resource_request=False,
        path=str(attrs.get("path", "")),
    )


def _attributes(user: UserInfo, spec: Mapping[str, Any]) -> Attributes:
    if spec.get("resourceAttributes") is not None:
        return _resource_attributes(user, spec["resourceAttributes"])
    return _non_resource_attributes(user, spec["nonResourceAttributes"])


def _subject(spec: Mapping[str, Any]) -> UserInfo:
    """``AuthorizationAttributesFrom``'s user: exactly what the spec says."""
    extra = spec.get("extra") or {}
    return UserInfo(
        name=str(spec.get("user", "")),
        uid=str(spec.get("uid", "")),
        groups=tuple(str(g) for g in spec.get("groups") or ()),
        extra={str(k): tuple(str(x) for x in v or ()) for k, v in extra.items()},
    )


def _answer(body: Json, kind: str, decision: Decision, metadata: Json) -> Json:
    status: Json = {"allowed": decision.allowed}
    if decision.denied:
        status["denied"] = True
    if decision.reason:
        status["reason"] = decision.reason
    return {
        "kind": kind,
        "apiVersion": f"{GROUP}/v1",
        "metadata": {"creationTimestamp": None, **metadata},
        "spec": body.get("spec") or {},
        "status": status,
    }


def self_subject_access_review(body: Json, user: UserInfo, authorize: Authorize) -> Json:
    """``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`` by ``user``."""
    kind = "SelfSubjectAccessReview"
    spec = body.get("spec") or {}
    causes = _spec_causes(spec, with_subject=False) + _meta_cause(body.get("metadata") or {}, False)
    if causes:
        raise _invalid(kind, causes)
    return _answer(body, kind, authorize(_attributes(user, spec)), {})


def subject_access_review(body: Json, authorize: Authorize) -> Json:
    """``POST /apis/authorization.k8s.io/v1/subjectaccessreviews``."""
    kind = "SubjectAccessReview"
    spec = body.get("spec") or {}
    causes = _spec_causes(spec, with_subject=True) + _meta_cause(body.get("metadata") or {}, False)
    if causes:
        raise _invalid(kind, causes)
    return _answer(body, kind, authorize(_attributes(_subject(spec), spec)), {})


def local_subject_access_review(body: Json, namespace: str, authorize: Authorize) -> Json:
    """``POST /apis/authorization.k8s.io/v1/namespaces/<ns>/localsubjectaccessreviews``."""
    kind = "LocalSubjectAccessReview"
    meta = dict(body.get("metadata") or {})
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    meta["namespace"] = namespace
    spec = body.get("spec") or {}
    causes = _spec_causes(spec, with_subject=True) + _meta_cause(meta, True)
    resource = spec.get("resourceAttributes")
    if resource is not None and resource.get("namespace", "") != namespace:
        causes.append(
            _cause(
                "spec.resourceAttributes.namespace",
                go_quote(str(resource.get("namespace", ""))),
                "must match metadata.namespace",
            )
        )
    if spec.get("nonResourceAttributes") is not None:
        causes.append(
            _cause(
                "spec.nonResourceAttributes",
                _go_struct(
                    "NonResourceAttributes", spec["nonResourceAttributes"], _NON_RESOURCE_FIELDS
                ),
                "disallowed on this kind of request",
            )
        )
    if causes:
        raise _invalid(kind, causes)
    decision = authorize(_attributes(_subject(spec), spec))
    return _answer(body, kind, decision, {"namespace": namespace})


def self_subject_rules_review(body: Json, user: UserInfo, policy: PolicySource) -> Json:
    """``POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews`` by ``user``."""
    spec = body.get("spec") or {}
    namespace = str(spec.get("namespace") or "")
    if not namespace:
        raise errors.bad_request("no namespace on request")
    rules, evaluation_error = rules_for(user, namespace, policy)
    resource_rules, non_resource_rules = [], []
    for rule in rules:
        if rule.get("resources"):
            entry: Json = {"verbs": list(rule.get("verbs") or [])}
            for key in ("apiGroups", "resources", "resourceNames"):
                if rule.get(key):
                    entry[key] = list(rule[key])
            resource_rules.append(entry)
        if rule.get("nonResourceURLs"):
            non_resource_rules.append(
                {
                    "verbs": list(rule.get("verbs") or []),
                    "nonResourceURLs": list(rule["nonResourceURLs"]),
                }
            )
    status: Json = {
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": False,
    }
    if evaluation_error:
        status["evaluationError"] = evaluation_error
    return {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": f"{GROUP}/v1",
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": status,
    }
