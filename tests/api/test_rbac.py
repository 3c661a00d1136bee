"""RBAC as kube-apiserver evaluates it, on the shipped manifests and on each rule kind (pure).

Sources: plugin/pkg/auth/authorizer/rbac/rbac.go (RuleAllows, the allowed reason),
pkg/apis/rbac/v1/evaluation_helpers.go (the matchers), pkg/registry/rbac/validation/rule.go
(VisitRulesFor, appliesToUser, the binding describers), bootstrappolicy/policy.go (the
default roles), pkg/controller/clusterroleaggregation (aggregated ClusterRoles),
k8s.io/apiserver/.../responsewriters/errors.go (forbiddenMessage) with
apierrors.NewForbidden (the 403 body), and
https://kubernetes.io/docs/reference/access-authn-authz/rbac/ ("You cannot restrict create
or deletecollection requests by their resource name"; "list, watch ... can be restricted
by resourceNames when the fieldSelector metadata.name is set").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from aliasip_lab.apiserver import rbac_defaults
from aliasip_lab.apiserver.authz import authorize, check, forbidden, forbidden_message
from aliasip_lab.apiserver.errors import ApiError
from aliasip_lab.apiserver.rbac import StaticPolicy, go_quote, rules_for
from aliasip_lab.apiserver.rbac import authorize as rbac_authorize
from aliasip_lab.apiserver.rbac_aggregation import aggregate, selector_matches
from aliasip_lab.apiserver.requestinfo import Attributes, attributes, request_info
from aliasip_lab.apiserver.userinfo import ANONYMOUS_USER, UserInfo, service_account_user

Json = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
NS = "aliasip-system"
AIP = "aliasip.io"
LEASES = "coordination.k8s.io"
CRDS = "apiextensions.k8s.io"

AGENT = service_account_user(NS, "aliasip-agent", "agent-uid", pod_name="p", pod_uid="pu")
OPERATOR = service_account_user(NS, "aliasip-operator", "operator-uid")
ALICE = UserInfo("alice", groups=("developers", "system:authenticated"))


def manifests() -> StaticPolicy:
    documents: list[Json | None] = []
    for name in ("agent-rbac.yaml", "operator-rbac.yaml"):
        documents += yaml.safe_load_all((ROOT / "manifests" / name).read_text())
    return StaticPolicy.of([*rbac_defaults.objects(), *documents])


SHIPPED = manifests()


def resource(
    user: UserInfo,
    verb: str,
    resource: str,
    group: str = "",
    namespace: str = "",
    name: str = "",
    subresource: str = "",
) -> Attributes:
    return Attributes(
        user=user,
        verb=verb,
        resource_request=True,
        namespace=namespace,
        api_group=group,
        api_version="v1",
        resource=resource,
        subresource=subresource,
        name=name,
    )


def path(user: UserInfo, url: str, verb: str = "get") -> Attributes:
    return Attributes(user=user, verb=verb, resource_request=False, path=url)


def http(user: UserInfo, method: str, url: str) -> Attributes:
    split = urlsplit(url)
    query = parse_qs(split.query, keep_blank_values=True)
    return attributes(user, request_info(method, split.path, query))


def allowed(attrs: Attributes, policy: StaticPolicy = SHIPPED) -> bool:
    return authorize(attrs, policy).allowed


# --------------------------------------------------------------------------- the agent

AGENT_MAY = [
    resource(AGENT, "get", "aliasips", AIP, name="web"),
    resource(AGENT, "list", "aliasips", AIP),
    resource(AGENT, "watch", "aliasips", AIP),
    resource(AGENT, "patch", "aliasips", AIP, name="web", subresource="status"),
    resource(AGENT, "get", "leases", LEASES, NS, "aliasip-agent-node2"),
    resource(AGENT, "list", "leases", LEASES, NS),
    resource(AGENT, "watch", "leases", LEASES, NS),
    resource(AGENT, "create", "leases", LEASES, NS),
    resource(AGENT, "update", "leases", LEASES, NS, "aliasip-agent-node2"),
    # RBAC cannot tell one node's agent from another: any agent Lease, the operator's too.
    resource(AGENT, "update", "leases", LEASES, NS, "aliasip-operator"),
    resource(AGENT, "create", "selfsubjectaccessreviews", "authorization.k8s.io"),
    path(AGENT, "/api"),
    path(AGENT, "/apis/aliasip.io/v1alpha1"),
    path(AGENT, "/version"),
    path(AGENT, "/openid/v1/jwks"),
]

AGENT_MAY_NOT = [
    resource(AGENT, "update", "aliasips", AIP, name="web"),  # never the spec
    resource(AGENT, "patch", "aliasips", AIP, name="web"),  # nor the metadata
    resource(AGENT, "update", "aliasips", AIP, name="web", subresource="status"),
    resource(AGENT, "get", "aliasips", AIP, name="web", subresource="status"),
    resource(AGENT, "delete", "aliasips", AIP, name="web"),
    resource(AGENT, "create", "aliasips", AIP),
    resource(AGENT, "patch", "leases", LEASES, NS, "aliasip-agent-node2"),
    resource(AGENT, "delete", "leases", LEASES, NS, "aliasip-agent-node2"),
    resource(AGENT, "update", "leases", LEASES, "kube-node-lease", "node2"),
    resource(AGENT, "list", "leases", LEASES),  # across namespaces
    resource(AGENT, "get", "nodes", name="node2"),
    resource(AGENT, "get", "secrets", namespace=NS, name="aliasip-heartbeat"),
    resource(AGENT, "create", "events", namespace="default"),
    resource(AGENT, "watch", "customresourcedefinitions", CRDS),
    resource(AGENT, "create", "serviceaccounts", namespace=NS, name="x", subresource="token"),
    path(AGENT, "/metrics"),
    path(AGENT, "/api", verb="post"),
]


@pytest.mark.parametrize("attrs", AGENT_MAY)
def test_what_the_agent_may_do(attrs: Attributes) -> None:
    assert allowed(attrs), forbidden_message(attrs)


@pytest.mark.parametrize("attrs", AGENT_MAY_NOT)
def test_what_the_agent_may_not_do(attrs: Attributes) -> None:
    assert not allowed(attrs)


# --------------------------------------------------------------------------- the operator

OPERATOR_MAY = [
    resource(OPERATOR, "get", "aliasips", AIP, name="web"),
    resource(OPERATOR, "list", "aliasips", AIP),
    resource(OPERATOR, "watch", "aliasips", AIP),
    resource(OPERATOR, "patch", "aliasips", AIP, name="web"),
    resource(OPERATOR, "patch", "aliasips", AIP, name="web", subresource="status"),
    resource(OPERATOR, "get", "nodes", name="node2"),
    resource(OPERATOR, "list", "nodes"),
    resource(OPERATOR, "watch", "nodes"),
    resource(OPERATOR, "list", "customresourcedefinitions", CRDS),
    resource(OPERATOR, "watch", "customresourcedefinitions", CRDS),
    resource(OPERATOR, "get", "leases", LEASES, NS, "aliasip-agent-node2"),
    resource(OPERATOR, "list", "leases", LEASES, NS),
    resource(OPERATOR, "watch", "leases", LEASES, NS),
    resource(OPERATOR, "create", "leases", LEASES, NS),
    resource(OPERATOR, "update", "leases", LEASES, NS, "aliasip-operator"),
    resource(OPERATOR, "create", "events", namespace="default"),
]

OPERATOR_MAY_NOT = [
    resource(OPERATOR, "update", "aliasips", AIP, name="web"),
    resource(OPERATOR, "update", "aliasips", AIP, name="web", subresource="status"),
    resource(OPERATOR, "delete", "aliasips", AIP, name="web"),
    resource(OPERATOR, "create", "aliasips", AIP),
    resource(OPERATOR, "get", "customresourcedefinitions", CRDS, name="aliasips.aliasip.io"),
    resource(OPERATOR, "patch", "nodes", name="node2"),
    resource(OPERATOR, "update", "nodes", name="node2", subresource="status"),
    resource(OPERATOR, "list", "namespaces"),
    # Its own Lease only: never an agent's, and only with update.
    resource(OPERATOR, "update", "leases", LEASES, NS, "aliasip-agent-node2"),
    resource(OPERATOR, "patch", "leases", LEASES, NS, "aliasip-operator"),
    resource(OPERATOR, "delete", "leases", LEASES, NS, "aliasip-operator"),
    resource(OPERATOR, "update", "leases", LEASES, "default", "aliasip-operator"),
    # Events: create, in default only.
    resource(OPERATOR, "create", "events", namespace=NS),
    resource(OPERATOR, "list", "events", namespace="default"),
    resource(OPERATOR, "patch", "events", namespace="default", name="e"),
    resource(OPERATOR, "create", "events", "events.k8s.io", "default"),
    resource(OPERATOR, "get", "secrets", namespace=NS, name="aliasip-heartbeat"),
]


@pytest.mark.parametrize("attrs", OPERATOR_MAY)
def test_what_the_operator_may_do(attrs: Attributes) -> None:
    assert allowed(attrs), forbidden_message(attrs)


@pytest.mark.parametrize("attrs", OPERATOR_MAY_NOT)
def test_what_the_operator_may_not_do(attrs: Attributes) -> None:
    assert not allowed(attrs)


def test_the_operators_election_as_http_requests() -> None:
    """The election Lease: GET it, POST it once, PUT it by name; a watch of the one Lease
    (fieldSelector metadata.name) is allowed by the unrestricted read rule anyway."""
    base = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
    assert allowed(http(OPERATOR, "GET", f"{base}/aliasip-operator"))
    assert allowed(http(OPERATOR, "POST", base))
    assert allowed(http(OPERATOR, "PUT", f"{base}/aliasip-operator"))
    assert not allowed(http(OPERATOR, "PUT", f"{base}/aliasip-agent-node2"))
    assert not allowed(http(OPERATOR, "DELETE", base))


def test_the_allowed_reasons_name_the_binding() -> None:
    lease = resource(AGENT, "update", "leases", LEASES, NS, "aliasip-agent-node2")
    assert rbac_authorize(lease, SHIPPED) == (
        True,
        'RBAC: allowed by RoleBinding "aliasip-agent/aliasip-system" of Role "aliasip-agent" '
        'to ServiceAccount "aliasip-agent/aliasip-system"',
    )
    status = resource(AGENT, "patch", "aliasips", AIP, name="w", subresource="status")
    assert rbac_authorize(status, SHIPPED) == (
        True,
        'RBAC: allowed by ClusterRoleBinding "aliasip-agent" of ClusterRole "aliasip-agent" '
        'to ServiceAccount "aliasip-agent/aliasip-system"',
    )
    assert rbac_authorize(path(AGENT, "/api"), SHIPPED) == (
        True,
        'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole '
        '"system:discovery" to Group "system:authenticated"',
    )


# --------------------------------------------------------------------------- defaults


@pytest.mark.parametrize(
    "url",
    ["/api", "/api/v1", "/apis", "/apis/aliasip.io", "/apis/aliasip.io/v1alpha1", "/version",
     "/version/", "/openapi/v3", "/openapi/v3/apis/aliasip.io/v1alpha1", "/healthz", "/livez",
     "/readyz"],
)  # fmt: skip
def test_any_authenticated_user_may_discover(url: str) -> None:
    assert allowed(path(ALICE, url))


def test_any_authenticated_user_may_review_itself() -> None:
    for review in ("selfsubjectaccessreviews", "selfsubjectrulesreviews"):
        assert allowed(resource(ALICE, "create", review, "authorization.k8s.io"))
    assert allowed(resource(ALICE, "create", "selfsubjectreviews", "authentication.k8s.io"))
    assert not allowed(resource(ALICE, "create", "subjectaccessreviews", "authorization.k8s.io"))
    assert not allowed(resource(ALICE, "list", "pods", namespace="default"))


@pytest.mark.parametrize(
    ("url", "may"),
    [("/healthz", True), ("/livez", True), ("/readyz", True), ("/version", True),
     ("/version/", True), ("/api", False), ("/apis", False), ("/openapi/v3", False),
     ("/healthz/etcd", False)],
)  # fmt: skip
def test_what_anonymous_requests_may_read(url: str, may: bool) -> None:
    assert allowed(path(ANONYMOUS_USER, url)) is may


def test_anonymous_requests_cannot_review_themselves() -> None:
    review = resource(ANONYMOUS_USER, "create", "selfsubjectaccessreviews", "authorization.k8s.io")
    assert not allowed(review)


def test_system_masters_may_do_anything_without_any_binding() -> None:
    admin = UserInfo("kubernetes-admin", groups=("system:masters", "system:authenticated"))
    empty = StaticPolicy()
    assert allowed(resource(admin, "delete", "nodes", name="node2"), empty)
    assert allowed(path(admin, "/metrics", verb="post"), empty)
    assert authorize(resource(admin, "get", "pods"), empty).reason == ""


def test_cluster_admin_is_bound_to_system_masters() -> None:
    bindings = {b["metadata"]["name"]: b for b in rbac_defaults.cluster_role_bindings()}
    assert bindings["cluster-admin"]["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}
    ]
    assert [s["name"] for s in bindings["system:public-info-viewer"]["subjects"]] == [
        "system:authenticated",
        "system:unauthenticated",
    ]
    for role in rbac_defaults.objects():
        assert role["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "rbac-defaults"}


# --------------------------------------------------------------------------- rule kinds


def role_policy(*rules: Json, cluster: bool = True, subject: Json | None = None) -> StaticPolicy:
    """One role with ``rules`` bound to alice (cluster-wide or in namespace ``ns``)."""
    subject = subject or {"kind": "User", "name": "alice"}
    if cluster:
        return StaticPolicy.of([
            {"kind": "ClusterRole", "metadata": {"name": "r"}, "rules": list(rules)},
            {"kind": "ClusterRoleBinding", "metadata": {"name": "b"},
             "roleRef": {"kind": "ClusterRole", "name": "r"}, "subjects": [subject]},
        ])  # fmt: skip
    return StaticPolicy.of([
        {"kind": "Role", "metadata": {"name": "r", "namespace": "ns"}, "rules": list(rules)},
        {"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "ns"},
         "roleRef": {"kind": "Role", "name": "r"}, "subjects": [subject]},
    ])  # fmt: skip


def test_verbs_match_exactly_or_by_star() -> None:
    one = role_policy({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]})
    star = role_policy({"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]})
    assert allowed(resource(ALICE, "get", "pods", namespace="ns", name="p"), one)
    assert not allowed(resource(ALICE, "list", "pods", namespace="ns"), one)
    assert not allowed(resource(ALICE, "GET", "pods", namespace="ns", name="p"), one)
    for verb in ("get", "list", "deletecollection", "impersonate", "escalate"):
        assert allowed(resource(ALICE, verb, "pods", namespace="ns"), star)


def test_api_groups_match_exactly_or_by_star() -> None:
    core = role_policy({"apiGroups": [""], "resources": ["leases"], "verbs": ["get"]})
    star = role_policy({"apiGroups": ["*"], "resources": ["leases"], "verbs": ["get"]})
    assert not allowed(resource(ALICE, "get", "leases", LEASES, "ns", "l"), core)
    assert allowed(resource(ALICE, "get", "leases", "", "ns", "l"), core)
    assert allowed(resource(ALICE, "get", "leases", LEASES, "ns", "l"), star)
    assert allowed(resource(ALICE, "get", "leases", "", "ns", "l"), star)


def test_subresources_must_be_named() -> None:
    plain = role_policy({"apiGroups": [AIP], "resources": ["aliasips"], "verbs": ["*"]})
    status = role_policy({"apiGroups": [AIP], "resources": ["aliasips/status"], "verbs": ["*"]})
    any_status = role_policy({"apiGroups": [AIP], "resources": ["*/status"], "verbs": ["*"]})
    no_glob = role_policy({"apiGroups": [AIP], "resources": ["aliasips/*"], "verbs": ["*"]})
    star = role_policy({"apiGroups": [AIP], "resources": ["*"], "verbs": ["*"]})
    main = resource(ALICE, "patch", "aliasips", AIP, name="w")
    sub = resource(ALICE, "patch", "aliasips", AIP, name="w", subresource="status")
    scale = resource(ALICE, "patch", "aliasips", AIP, name="w", subresource="scale")
    assert (allowed(main, plain), allowed(sub, plain)) == (True, False)
    assert (allowed(main, status), allowed(sub, status)) == (False, True)
    assert (allowed(main, any_status), allowed(sub, any_status)) == (False, True)
    assert not allowed(scale, any_status)
    assert not allowed(sub, no_glob)
    assert (allowed(main, star), allowed(sub, star), allowed(scale, star)) == (True, True, True)


def test_resource_names_restrict_only_named_requests() -> None:
    """get/update/patch/delete of a named object; never create or deletecollection; list
    and watch only with a metadata.name field selector naming an allowed object."""
    named = role_policy(
        {"apiGroups": [LEASES], "resources": ["leases"], "resourceNames": ["mine"], "verbs": ["*"]},
        cluster=False,
    )
    base = "/apis/coordination.k8s.io/v1/namespaces/ns/leases"
    assert allowed(http(ALICE, "GET", f"{base}/mine"), named)
    assert allowed(http(ALICE, "PUT", f"{base}/mine"), named)
    assert allowed(http(ALICE, "DELETE", f"{base}/mine"), named)
    assert not allowed(http(ALICE, "GET", f"{base}/theirs"), named)
    assert not allowed(http(ALICE, "POST", base), named)  # create has no name
    assert not allowed(http(ALICE, "DELETE", base), named)  # deletecollection
    assert not allowed(http(ALICE, "GET", base), named)  # list
    assert not allowed(http(ALICE, "GET", f"{base}?watch=1"), named)
    assert allowed(http(ALICE, "GET", f"{base}?fieldSelector=metadata.name%3Dmine"), named)
    assert allowed(
        http(ALICE, "GET", f"{base}?watch=true&fieldSelector=metadata.name%3Dmine"), named
    )
    assert not allowed(http(ALICE, "GET", f"{base}?fieldSelector=metadata.name%3Dtheirs"), named)
    empty_names = role_policy(
        {"apiGroups": [LEASES], "resources": ["leases"], "resourceNames": [], "verbs": ["list"]},
        cluster=False,
    )
    assert allowed(http(ALICE, "GET", base), empty_names)


def test_non_resource_urls() -> None:
    policy = role_policy(
        {"nonResourceURLs": ["/healthz", "/apis/*", "/logs*"], "verbs": ["get"]},
    )
    assert allowed(path(ALICE, "/healthz"), policy)
    assert not allowed(path(ALICE, "/healthz/etcd"), policy)
    assert allowed(path(ALICE, "/apis/x"), policy)
    assert allowed(path(ALICE, "/apis/"), policy)
    assert not allowed(path(ALICE, "/apis"), policy)  # the prefix is "/apis/"
    assert allowed(path(ALICE, "/logs"), policy)
    assert allowed(path(ALICE, "/logsomething/else"), policy)
    assert not allowed(path(ALICE, "/healthz", verb="post"), policy)
    every = role_policy({"nonResourceURLs": ["*"], "verbs": ["*"]})
    assert allowed(path(ALICE, "/anything", verb="delete"), every)
    # Non-resource rules never allow resource requests, nor resource rules paths.
    assert not allowed(resource(ALICE, "get", "healthz"), policy)
    pods = role_policy({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})
    assert not allowed(path(ALICE, "/healthz"), pods)


def test_a_cluster_role_bound_in_a_namespace_acts_there_only() -> None:
    policy = StaticPolicy.of([
        {"kind": "ClusterRole", "metadata": {"name": "reader"},
         "rules": [{"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get"]}]},
        {"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "ns"},
         "roleRef": {"kind": "ClusterRole", "name": "reader"},
         "subjects": [{"kind": "User", "name": "alice"}]},
    ])  # fmt: skip
    assert allowed(resource(ALICE, "get", "pods", namespace="ns", name="p"), policy)
    assert not allowed(resource(ALICE, "get", "pods", namespace="other", name="p"), policy)
    assert not allowed(resource(ALICE, "get", "pods", name="p"), policy)  # all namespaces
    assert not allowed(resource(ALICE, "get", "nodes", name="n"), policy)  # cluster-scoped


def test_a_cluster_role_binding_acts_everywhere() -> None:
    policy = role_policy({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]})
    assert allowed(resource(ALICE, "list", "pods", namespace="ns"), policy)
    assert allowed(resource(ALICE, "list", "pods"), policy)


def test_a_role_binding_cannot_reference_another_namespaces_role() -> None:
    policy = StaticPolicy.of([
        {"kind": "Role", "metadata": {"name": "r", "namespace": "other"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        {"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "ns"},
         "roleRef": {"kind": "Role", "name": "r"},
         "subjects": [{"kind": "User", "name": "alice"}]},
    ])  # fmt: skip
    assert authorize(resource(ALICE, "get", "pods", namespace="ns", name="p"), policy).reason == (
        'RBAC: role.rbac.authorization.k8s.io "r" not found'
    )


@pytest.mark.parametrize(
    ("subject", "user", "namespace", "applies"),
    [
        ({"kind": "User", "name": "alice"}, ALICE, "ns", True),
        ({"kind": "User", "name": "bob"}, ALICE, "ns", False),
        ({"kind": "Group", "name": "developers"}, ALICE, "ns", True),
        ({"kind": "Group", "name": "alice"}, ALICE, "ns", False),
        ({"kind": "Group", "name": "system:serviceaccounts:aliasip-system"}, AGENT, "ns", True),
        ({"kind": "ServiceAccount", "name": "aliasip-agent", "namespace": NS}, AGENT, "ns", True),
        ({"kind": "ServiceAccount", "name": "aliasip-agent", "namespace": "ns"}, AGENT, "ns",
         False),
        # Without a namespace, a RoleBinding's subject is in the binding's namespace.
        ({"kind": "ServiceAccount", "name": "aliasip-agent"}, AGENT, NS, True),
        ({"kind": "ServiceAccount", "name": "aliasip-agent"}, AGENT, "ns", False),
        ({"kind": "User", "name": "system:serviceaccount:aliasip-system:aliasip-agent"}, AGENT,
         "ns", True),
        ({"kind": "Robot", "name": "alice"}, ALICE, "ns", False),
    ],
)  # fmt: skip
def test_subjects_in_role_bindings(
    subject: Json, user: UserInfo, namespace: str, applies: bool
) -> None:
    policy = StaticPolicy.of([
        {"kind": "Role", "metadata": {"name": "r", "namespace": namespace},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        {"kind": "RoleBinding", "metadata": {"name": "b", "namespace": namespace},
         "roleRef": {"kind": "Role", "name": "r"}, "subjects": [subject]},
    ])  # fmt: skip
    assert allowed(resource(user, "get", "pods", namespace=namespace, name="p"), policy) is applies


def test_a_service_account_subject_without_namespace_never_matches_cluster_wide() -> None:
    policy = role_policy(
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        subject={"kind": "ServiceAccount", "name": "aliasip-agent"},
    )
    assert not allowed(resource(AGENT, "get", "pods", namespace=NS, name="p"), policy)


def test_missing_roles_are_the_reason_of_a_denial() -> None:
    policy = StaticPolicy.of([
        {"kind": "ClusterRoleBinding", "metadata": {"name": "a"},
         "roleRef": {"kind": "ClusterRole", "name": "gone"},
         "subjects": [{"kind": "Group", "name": "developers"}]},
        {"kind": "ClusterRoleBinding", "metadata": {"name": "b"},
         "roleRef": {"kind": "ClusterRole", "name": "gone"},
         "subjects": [{"kind": "User", "name": "alice"}]},
        {"kind": "RoleBinding", "metadata": {"name": "c", "namespace": "ns"},
         "roleRef": {"kind": "Role", "name": "missing"},
         "subjects": [{"kind": "User", "name": "alice"}]},
    ])  # fmt: skip
    got = authorize(resource(ALICE, "get", "pods", namespace="ns", name="p"), policy)
    assert got == type(got)(
        False,
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, '
        'role.rbac.authorization.k8s.io "missing" not found]',
    )
    cluster = authorize(resource(ALICE, "get", "nodes"), policy)
    assert cluster.reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found'
    # A binding that does not apply to the user reports nothing.
    assert authorize(resource(AGENT, "get", "nodes"), policy).reason == ""


def test_rules_for_lists_what_applies() -> None:
    rules, errors = rules_for(AGENT, NS, SHIPPED)
    assert errors == ""
    resources = [r.get("resources") or r.get("nonResourceURLs") for r in rules]
    assert ["leases"] in resources
    assert ["aliasips/status"] in resources
    assert rules_for(AGENT, "default", SHIPPED)[0] == [
        r for r in rules if "leases" not in (r.get("resources") or [])
    ]


# --------------------------------------------------------------------------- aggregation


def labelled(name: str, labels: dict[str, str], *rules: Json, selectors: Any = None) -> Json:
    role: Json = {"kind": "ClusterRole", "metadata": {"name": name, "labels": labels}}
    role["rules"] = list(rules)
    if selectors is not None:
        role["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return role


READ_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}
READ_AIPS = {"apiGroups": [AIP], "resources": ["aliasips"], "verbs": ["get", "list"]}


def test_aggregation_fills_rules_from_matching_roles_in_name_order() -> None:
    roles = [
        labelled("monitoring", {}, selectors=[{"matchLabels": {"agg": "mon"}}]),
        labelled("b-aips", {"agg": "mon"}, READ_AIPS, READ_PODS),
        labelled("a-pods", {"agg": "mon"}, READ_PODS),
        labelled("other", {"agg": "no"}, {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}),
    ]
    assert aggregate(roles) == {"monitoring": [READ_PODS, READ_AIPS]}


def test_aggregation_flows_through_chains_and_skips_itself() -> None:
    roles = [
        labelled("admin", {}, selectors=[{"matchLabels": {"to-admin": "true"}}]),
        labelled("edit", {"to-admin": "true"}, selectors=[{"matchLabels": {"to-edit": "true"}}]),
        labelled("view", {"to-edit": "true"}, READ_PODS),
        labelled("self", {"self": "1"}, selectors=[{"matchLabels": {"self": "1"}}]),
    ]
    got = aggregate(roles)
    assert got["admin"] == [READ_PODS]
    assert got["edit"] == [READ_PODS]
    assert "self" not in got
    # An aggregated role grants nothing until its rules are filled, as in kube-apiserver.
    binding = {"kind": "ClusterRoleBinding", "metadata": {"name": "b"},
               "roleRef": {"kind": "ClusterRole", "name": "admin"},
               "subjects": [{"kind": "User", "name": "alice"}]}  # fmt: skip
    ask = resource(ALICE, "get", "pods", namespace="ns", name="p")
    assert not allowed(ask, StaticPolicy.of([*roles, binding]))
    filled = [{**r, "rules": got.get(r["metadata"]["name"], r["rules"])} for r in roles]
    assert allowed(ask, StaticPolicy.of([*filled, binding]))
    assert aggregate(filled) == {}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ({}, True),
        ({"matchLabels": {"a": "1"}}, True),
        ({"matchLabels": {"a": "2"}}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, False),
        ({"matchExpressions": [{"key": "z", "operator": "NotIn", "values": ["1"]}]}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, False),
    ],
)
def test_cluster_role_selectors(selector: Json, matches: bool) -> None:
    assert selector_matches(selector, {"a": "1"}) is matches


# --------------------------------------------------------------------------- the 403


def denied(attrs: Attributes, policy: StaticPolicy = SHIPPED) -> ApiError:
    with pytest.raises(ApiError) as caught:
        check(attrs, policy)
    return caught.value


def test_the_403_of_a_namespaced_named_request() -> None:
    error = denied(
        http(AGENT, "PATCH", f"/apis/{LEASES}/v1/namespaces/{NS}/leases/aliasip-agent-node2")
    )
    assert error.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'leases.coordination.k8s.io "aliasip-agent-node2" is forbidden: User '
        '"system:serviceaccount:aliasip-system:aliasip-agent" cannot patch resource "leases" '
        'in API group "coordination.k8s.io" in the namespace "aliasip-system"',
        "reason": "Forbidden",
        "details": {"name": "aliasip-agent-node2", "group": LEASES, "kind": "leases"},
        "code": 403,
    }  # fmt: skip


def test_the_403_of_a_cluster_scoped_collection() -> None:
    error = denied(http(AGENT, "GET", "/api/v1/nodes"))
    assert error.message == (
        'nodes is forbidden: User "system:serviceaccount:aliasip-system:aliasip-agent" cannot '
        'list resource "nodes" in API group "" at the cluster scope'
    )
    assert error.details == {"kind": "nodes"}


def test_the_403_of_a_subresource() -> None:
    error = denied(http(AGENT, "PUT", "/apis/aliasip.io/v1alpha1/aliasips/web/status"))
    assert error.message == (
        'aliasips.aliasip.io "web" is forbidden: User '
        '"system:serviceaccount:aliasip-system:aliasip-agent" cannot update resource '
        '"aliasips/status" in API group "aliasip.io" at the cluster scope'
    )
    assert error.details == {"name": "web", "group": "aliasip.io", "kind": "aliasips"}


def test_the_403_of_a_list_across_namespaces() -> None:
    error = denied(http(AGENT, "GET", f"/apis/{LEASES}/v1/leases?watch=1"))
    assert error.message == (
        "leases.coordination.k8s.io is forbidden: User "
        '"system:serviceaccount:aliasip-system:aliasip-agent" cannot watch resource "leases" '
        'in API group "coordination.k8s.io" at the cluster scope'
    )


def test_the_403_of_a_path() -> None:
    error = denied(http(ANONYMOUS_USER, "GET", "/api"))
    assert error.message == 'forbidden: User "system:anonymous" cannot get path "/api"'
    assert error.status()["details"] == {}


def test_the_403_carries_the_reason_and_escapes_html() -> None:
    user = UserInfo("<b>&co</b>", groups=("developers",))
    policy = StaticPolicy.of([
        {"kind": "ClusterRoleBinding", "metadata": {"name": "a"},
         "roleRef": {"kind": "ClusterRole", "name": "gone"},
         "subjects": [{"kind": "Group", "name": "developers"}]},
    ])  # fmt: skip
    error = denied(resource(user, "get", "pods", namespace="ns", name="p"), policy)
    assert error.message == (
        'pods "p" is forbidden: User "&lt;b&gt;&amp;co&lt;/b&gt;" cannot get resource "pods" '
        'in API group "" in the namespace "ns": RBAC: '
        'clusterrole.rbac.authorization.k8s.io "gone" not found'
    )


def test_the_403_quotes_as_go_does() -> None:
    assert go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
    attrs = resource(UserInfo('we"ird'), "get", "pods", namespace="ns", name='p"q')
    assert forbidden(attrs).message.startswith('pods "p\\"q" is forbidden: User "we\\"ird"')
