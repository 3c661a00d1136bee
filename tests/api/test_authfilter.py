"""The whole filter chain, impersonation and access reviews (pure).

Sources: k8s.io/apiserver/pkg/endpoints/filters (authentication, impersonation,
authorization), pkg/registry/authorization/{selfsubjectaccessreview,subjectaccessreview,
localsubjectaccessreview}/rest.go and pkg/apis/authorization/validation, and
https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation
("Impersonate-User ... Impersonate-Group ... Impersonate-Extra-( extra name ) ...
Impersonate-Uid"; "the impersonating user must have the impersonate verb").
What ``kubectl auth can-i --as system:serviceaccount:aliasip-system:aliasip-agent update
leases -n aliasip-system`` sends: a SelfSubjectAccessReview with impersonation headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from aliasip_lab.apiserver import rbac_defaults
from aliasip_lab.apiserver.accessreview import (
    local_subject_access_review,
    self_subject_access_review,
    self_subject_rules_review,
    subject_access_review,
)
from aliasip_lab.apiserver.authapi import answer, is_auth_endpoint
from aliasip_lab.apiserver.authfilter import Admitted, StorePolicy, admit, store_lookup
from aliasip_lab.apiserver.authn import AdminCredential, Authenticator, self_subject_review
from aliasip_lab.apiserver.authz import Decision, authorize
from aliasip_lab.apiserver.errors import ApiError
from aliasip_lab.apiserver.rbac import StaticPolicy
from aliasip_lab.apiserver.requestinfo import Attributes
from aliasip_lab.apiserver.tokens import SigningKey, token_request
from aliasip_lab.apiserver.userinfo import UserInfo

Json = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000
NS = "aliasip-system"
AGENT_NAME = "system:serviceaccount:aliasip-system:aliasip-agent"
KEY = SigningKey(b"k" * 32)
ADMIN = AdminCredential("the-admin-token")


class FakeStore:
    """The two reads of ``store.Store`` the filters use, over a dict of objects."""

    def __init__(self, objects: list[Json]) -> None:
        self.tables: dict[tuple[str, str], dict[tuple[str, str], Json]] = {}
        plural = {
            "ServiceAccount": ("", "serviceaccounts"),
            "Pod": ("", "pods"),
            "Node": ("", "nodes"),
            "Role": ("rbac.authorization.k8s.io", "roles"),
            "ClusterRole": ("rbac.authorization.k8s.io", "clusterroles"),
            "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings"),
            "ClusterRoleBinding": ("rbac.authorization.k8s.io", "clusterrolebindings"),
        }
        for obj in objects:
            if not obj or obj.get("kind") not in plural:
                continue
            meta = obj["metadata"]
            table = self.tables.setdefault(plural[obj["kind"]], {})
            table[(meta.get("namespace", ""), meta["name"])] = obj

    def get(self, gr: tuple[str, str], key: tuple[str, str]) -> Json | None:
        if gr not in self.tables:
            raise LookupError(gr)
        return self.tables[gr].get(key)

    def items(
        self, gr: tuple[str, str], namespace: str | None = None
    ) -> Iterator[tuple[tuple[str, str], Json]]:
        if gr not in self.tables:
            raise LookupError(gr)
        for key in sorted(self.tables[gr]):
            if namespace is None or key[0] == namespace:
                yield key, self.tables[gr][key]


def shipped_objects() -> list[Json]:
    objects: list[Json] = [*rbac_defaults.objects()]
    for name in ("agent-rbac.yaml", "operator-rbac.yaml"):
        objects += [d for d in yaml.safe_load_all((ROOT / "manifests" / name).read_text()) if d]
    for obj in objects:
        if obj["kind"] == "ServiceAccount":
            obj["metadata"]["uid"] = f"{obj['metadata']['name']}-uid"
    objects.append(
        {
            "kind": "Pod",
            "metadata": {"name": "agent-pod", "namespace": NS, "uid": "pod-uid"},
            "spec": {"serviceAccountName": "aliasip-agent", "nodeName": "node2"},
        }
    )
    objects.append({"kind": "Node", "metadata": {"name": "node2", "uid": "node-uid"}})
    return objects


STORE = FakeStore(shipped_objects())
POLICY = StorePolicy(STORE)
LOOKUP = store_lookup(STORE)
AUTHENTICATOR = Authenticator(static_tokens={ADMIN.token: ADMIN.user}, key=KEY)


def agent_token() -> str:
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "agent-pod"}
    answer = token_request(
        NS, "aliasip-agent", {"spec": {"boundObjectRef": ref}}, key=KEY, lookup=LOOKUP, now=NOW
    )
    return str(answer["status"]["token"])


def request(
    method: str,
    url: str,
    token: str | None = None,
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> Admitted:
    split = urlsplit(url)
    pairs = list(headers)
    if token is not None:
        pairs.insert(0, ("Authorization", f"Bearer {token}"))
    return admit(
        method,
        split.path,
        parse_qs(split.query, keep_blank_values=True),
        pairs,
        authenticator=AUTHENTICATOR,
        policy=POLICY,
        lookup=LOOKUP,
        now=NOW,
    )


def refused(method: str, url: str, token: str | None = None, **kw: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        request(method, url, token, **kw)
    return caught.value


def decide(attrs: Attributes) -> Decision:
    return authorize(attrs, POLICY)


LEASE = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/aliasip-agent-node2"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
AS_AGENT = [("Impersonate-User", AGENT_NAME)]


# --------------------------------------------------------------------------- the chain


def test_the_admin_may_do_anything() -> None:
    admitted = request("DELETE", "/api/v1/nodes", ADMIN.token)
    assert admitted.user.name == "kubernetes-admin"
    assert admitted.info.verb == "deletecollection"
    assert admitted.attributes.resource == "nodes"


def test_the_agent_renews_its_lease_and_may_not_patch_it() -> None:
    token = agent_token()
    assert request("PUT", LEASE, token).user.name == AGENT_NAME
    error = refused("PATCH", LEASE, token)
    assert error.code == 403
    assert error.message == (
        'leases.coordination.k8s.io "aliasip-agent-node2" is forbidden: User '
        '"system:serviceaccount:aliasip-system:aliasip-agent" cannot patch resource "leases" '
        'in API group "coordination.k8s.io" in the namespace "aliasip-system"'
    )


def test_discovery_works_for_any_authenticated_client() -> None:
    token = agent_token()
    for url in ("/api", "/apis", "/apis/aliasip.io/v1alpha1", "/version", "/openapi/v3"):
        request("GET", url, token)


def test_anonymous_requests_reach_health_and_version_only() -> None:
    assert request("GET", "/healthz").user.name == "system:anonymous"
    request("GET", "/version")
    error = refused("GET", "/api")
    assert (error.code, error.message) == (
        403,
        'forbidden: User "system:anonymous" cannot get path "/api"',
    )
    assert refused("POST", SSAR).code == 403


def test_a_bad_token_is_401_even_for_healthz() -> None:
    error = refused("GET", "/healthz", "not-a-token")
    assert (error.code, error.reason, error.message) == (401, "Unauthorized", "Unauthorized")
    assert "details" not in error.status()


def test_a_token_of_a_deleted_pod_is_401() -> None:
    token = agent_token()
    gone = FakeStore([o for o in shipped_objects() if o.get("kind") != "Pod"])
    with pytest.raises(ApiError) as caught:
        admit("GET", "/api", {}, [("Authorization", f"Bearer {token}")],
              authenticator=AUTHENTICATOR, policy=StorePolicy(gone),
              lookup=store_lookup(gone), now=NOW)  # fmt: skip
    assert caught.value.code == 401


def test_an_unparseable_resource_path_is_500() -> None:
    assert refused("GET", "/api/v1/watch", ADMIN.token).code == 500


def test_a_store_without_rbac_types_has_no_policy() -> None:
    empty = StorePolicy(FakeStore([]))
    assert empty.get_cluster_role("cluster-admin") is None
    assert list(empty.cluster_role_bindings()) == []
    assert store_lookup(FakeStore([]))("pods", NS, "p") is None


# --------------------------------------------------------------------------- can-i


def can_i(verb: str, resource: str, group: str = "", namespace: str = "", **more: str) -> Json:
    """``kubectl auth can-i --as <agent> VERB RESOURCE [-n NS]`` against the server."""
    admitted = request("POST", SSAR, ADMIN.token, headers=AS_AGENT)
    attrs = {"verb": verb, "resource": resource, "group": group, "namespace": namespace, **more}
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}  # fmt: skip
    return self_subject_access_review(body, admitted.user, decide)


def test_kubectl_auth_can_i_as_the_agent() -> None:
    yes = can_i("update", "leases", "coordination.k8s.io", NS)
    assert yes["status"] == {
        "allowed": True,
        "reason": 'RBAC: allowed by RoleBinding "aliasip-agent/aliasip-system" of Role '
        '"aliasip-agent" to ServiceAccount "aliasip-agent/aliasip-system"',
    }
    assert yes["kind"] == "SelfSubjectAccessReview"
    assert yes["metadata"] == {"creationTimestamp": None}
    assert can_i("patch", "leases", "coordination.k8s.io", NS)["status"] == {"allowed": False}
    assert can_i("update", "leases", "coordination.k8s.io", "kube-node-lease")["status"] == {
        "allowed": False
    }
    assert can_i("patch", "aliasips", "aliasip.io", subresource="status")["status"]["allowed"]
    assert not can_i("patch", "aliasips", "aliasip.io")["status"]["allowed"]


def test_can_i_for_a_path() -> None:
    admitted = request("POST", SSAR, agent_token())
    body = {"spec": {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}}
    assert self_subject_access_review(body, admitted.user, decide)["status"] == {"allowed": False}
    body = {"spec": {"nonResourceAttributes": {"path": "/apis", "verb": "get"}}}
    assert self_subject_access_review(body, admitted.user, decide)["status"]["allowed"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, 'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
         'spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes '
         "or resourceAttributes must be specified"),
        ({"resourceAttributes": {"verb": "get"},
          "nonResourceAttributes": {"path": "/api", "verb": "get"}},
         'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
         "spec.nonResourceAttributes: Invalid value: "
         '&authorization.NonResourceAttributes{Path:"/api", Verb:"get"}: cannot be specified '
         "in combination with resourceAttributes"),
    ],
)  # fmt: skip
def test_invalid_self_subject_access_reviews(spec: Json, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        self_subject_access_review({"spec": spec}, ADMIN.user, decide)
    assert (caught.value.code, caught.value.message) == (422, message)


def test_subject_access_review_takes_the_groups_as_given() -> None:
    attrs = {"nonResourceAttributes": {"path": "/api", "verb": "get"}}
    bare = subject_access_review({"spec": {"user": "alice", **attrs}}, decide)
    assert bare["status"] == {"allowed": False}
    grouped = {"user": "alice", "groups": ["system:authenticated"], **attrs}
    assert subject_access_review({"spec": grouped}, decide)["status"]["allowed"]
    agent = {"user": AGENT_NAME, "resourceAttributes": {
        "verb": "create", "group": "coordination.k8s.io", "resource": "leases",
        "namespace": NS}}  # fmt: skip
    review = subject_access_review({"spec": agent}, decide)
    assert review["kind"] == "SubjectAccessReview"
    assert review["status"]["allowed"]
    assert review["spec"] == agent


def test_subject_access_review_needs_a_user_or_a_group() -> None:
    with pytest.raises(ApiError) as caught:
        subject_access_review({"spec": {"resourceAttributes": {"verb": "get"}}}, decide)
    assert caught.value.message == (
        'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": '
        "at least one of user or group must be specified"
    )


def test_local_subject_access_review_stays_in_its_namespace() -> None:
    leases = {"verb": "get", "group": "coordination.k8s.io", "resource": "leases"}
    spec = {"user": AGENT_NAME, "resourceAttributes": {**leases, "namespace": NS}}
    review = local_subject_access_review({"spec": spec}, NS, decide)
    assert review["metadata"] == {"creationTimestamp": None, "namespace": NS}
    assert review["status"]["allowed"]
    with pytest.raises(ApiError) as caught:
        local_subject_access_review({"spec": spec}, "default", decide)
    assert caught.value.message == (
        'LocalSubjectAccessReview.authorization.k8s.io "" is invalid: '
        'spec.resourceAttributes.namespace: Invalid value: "aliasip-system": must match '
        "metadata.namespace"
    )
    with pytest.raises(ApiError) as caught:
        local_subject_access_review({"metadata": {"namespace": "x"}, "spec": spec}, NS, decide)
    assert caught.value.code == 400
    paths = {"user": "u", "nonResourceAttributes": {"path": "/api", "verb": "get"}}
    with pytest.raises(ApiError, match="disallowed on this kind of request"):
        local_subject_access_review({"spec": paths}, NS, decide)


# --------------------------------------------------------------------------- impersonation


def test_impersonating_a_service_account_gives_its_groups() -> None:
    user = request("GET", "/api", ADMIN.token, headers=AS_AGENT).user
    assert user == UserInfo(
        AGENT_NAME,
        groups=("system:serviceaccounts", "system:serviceaccounts:aliasip-system",
                "system:authenticated"),
    )  # fmt: skip
    review = self_subject_review(user)
    assert review["status"]["userInfo"] == {
        "username": AGENT_NAME,
        "groups": ["system:serviceaccounts", "system:serviceaccounts:aliasip-system",
                   "system:authenticated"],
    }  # fmt: skip


def test_the_impersonated_user_is_what_gets_authorized() -> None:
    error = refused("PATCH", LEASE, ADMIN.token, headers=AS_AGENT)
    assert error.message.startswith(
        'leases.coordination.k8s.io "aliasip-agent-node2" is forbidden: User '
        '"system:serviceaccount:aliasip-system:aliasip-agent" cannot patch'
    )
    request("PUT", LEASE, ADMIN.token, headers=AS_AGENT)


def test_given_groups_replace_the_service_account_groups() -> None:
    headers = [*AS_AGENT, ("Impersonate-Group", "developers"), ("impersonate-group", "ops")]
    user = request("GET", "/api", ADMIN.token, headers=headers).user
    assert user.groups == ("developers", "ops", "system:authenticated")
    unauth = [("Impersonate-User", "bob"), ("Impersonate-Group", "system:unauthenticated")]
    assert request("GET", "/healthz", ADMIN.token, headers=unauth).user.groups == (
        "system:unauthenticated",
    )


def test_impersonating_anonymous() -> None:
    headers = [("Impersonate-User", "system:anonymous")]
    user = request("GET", "/healthz", ADMIN.token, headers=headers).user
    assert (user.name, user.groups) == ("system:anonymous", ("system:unauthenticated",))
    assert refused("GET", "/api", ADMIN.token, headers=headers).code == 403


def test_extras_and_uid() -> None:
    headers = [
        ("Impersonate-User", "bob"),
        ("Impersonate-Extra-Reason", "audit"),
        ("Impersonate-Extra-Reason", "again"),
        ("Impersonate-Extra-Example.com%2fteam", "net"),
        ("Impersonate-Uid", "1234"),
    ]
    user = request("GET", "/api", ADMIN.token, headers=headers).user
    assert user == UserInfo(
        "bob",
        uid="1234",
        groups=("system:authenticated",),
        extra={"reason": ("audit", "again"), "example.com/team": ("net",)},
    )


def test_groups_without_a_user_are_a_bad_request() -> None:
    error = refused("GET", "/api", ADMIN.token, headers=[("Impersonate-Group", "g")])
    assert (error.code, error.message) == (
        400,
        "requested [{Group  g    }] without impersonating a user",
    )


def test_the_agent_may_not_impersonate() -> None:
    token = agent_token()
    error = refused("GET", "/api", token, headers=[("Impersonate-User", "alice")])
    assert error.status()["details"] == {"name": "alice", "kind": "users"}
    assert error.message == (
        'users "alice" is forbidden: User "system:serviceaccount:aliasip-system:aliasip-agent" '
        'cannot impersonate resource "users" in API group "" at the cluster scope'
    )
    operator = "system:serviceaccount:aliasip-system:aliasip-operator"
    error = refused("GET", "/api", token, headers=[("Impersonate-User", operator)])
    assert error.message == (
        'serviceaccounts "aliasip-operator" is forbidden: User '
        '"system:serviceaccount:aliasip-system:aliasip-agent" cannot impersonate resource '
        '"serviceaccounts" in API group "" in the namespace "aliasip-system"'
    )


def impersonator_policy(*rules: Json, namespace: str = "") -> StaticPolicy:
    objects: list[Json] = [*rbac_defaults.objects()]
    if namespace:
        objects += [
            {"kind": "Role", "metadata": {"name": "imp", "namespace": namespace},
             "rules": list(rules)},
            {"kind": "RoleBinding", "metadata": {"name": "imp", "namespace": namespace},
             "roleRef": {"kind": "Role", "name": "imp"},
             "subjects": [{"kind": "User", "name": "carol"}]},
        ]  # fmt: skip
    else:
        objects += [
            {"kind": "ClusterRole", "metadata": {"name": "imp"}, "rules": list(rules)},
            {"kind": "ClusterRoleBinding", "metadata": {"name": "imp"},
             "roleRef": {"kind": "ClusterRole", "name": "imp"},
             "subjects": [{"kind": "User", "name": "carol"}]},
        ]  # fmt: skip
    return StaticPolicy.of(objects)


def impersonates(policy: StaticPolicy, headers: list[tuple[str, str]]) -> UserInfo | ApiError:
    carol = Authenticator(static_tokens={"carol-token": UserInfo("carol")})
    try:
        return admit(
            "GET", "/version", {}, [("Authorization", "Bearer carol-token"), *headers],
            authenticator=carol, policy=policy, lookup=LOOKUP, now=NOW,
        ).user  # fmt: skip
    except ApiError as error:
        return error


def test_impersonating_service_accounts_of_one_namespace() -> None:
    """The ``edit`` role's rule: impersonate serviceaccounts, granted in a namespace."""
    policy = impersonator_policy(
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
        namespace=NS,
    )
    got = impersonates(policy, AS_AGENT)
    assert isinstance(got, UserInfo) and got.name == AGENT_NAME
    other = impersonates(policy, [("Impersonate-User", "system:serviceaccount:default:x")])
    assert isinstance(other, ApiError) and other.code == 403
    # A name that is not a well-formed service account is a User, not allowed here.
    odd = impersonates(policy, [("Impersonate-User", "system:serviceaccount:Bad:x")])
    assert isinstance(odd, ApiError) and 'resource "users"' in odd.message


def test_each_extra_value_needs_its_own_permission() -> None:
    policy = impersonator_policy(
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/scopes"],
         "resourceNames": ["view"], "verbs": ["impersonate"]},
    )  # fmt: skip
    ok = impersonates(policy, [("Impersonate-User", "bob"), ("Impersonate-Extra-Scopes", "view")])
    assert isinstance(ok, UserInfo) and dict(ok.extra) == {"scopes": ("view",)}
    error = impersonates(
        policy, [("Impersonate-User", "bob"), ("Impersonate-Extra-Scopes", "admin")]
    )
    assert isinstance(error, ApiError)
    assert error.message == (
        'userextras.authentication.k8s.io "admin" is forbidden: User "carol" cannot '
        'impersonate resource "userextras/scopes" in API group "authentication.k8s.io" at the '
        "cluster scope"
    )
    groups = impersonates(policy, [("Impersonate-User", "bob"), ("Impersonate-Group", "g")])
    assert isinstance(groups, ApiError) and 'resource "groups"' in groups.message
    uid = impersonates(policy, [("Impersonate-User", "bob"), ("Impersonate-Uid", "1")])
    assert isinstance(uid, ApiError) and 'resource "uids"' in uid.message


# --------------------------------------------------------------------------- can-i --list


def test_can_i_list_shows_the_agents_rules() -> None:
    admitted = request("POST", SSAR, ADMIN.token, headers=AS_AGENT)
    review = self_subject_rules_review({"spec": {"namespace": NS}}, admitted.user, POLICY)
    status = review["status"]
    assert status["incomplete"] is False
    assert "evaluationError" not in status
    assert {
        "verbs": ["get", "list", "watch", "create", "update"],
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
    } in status["resourceRules"]
    assert {"verbs": ["patch"], "apiGroups": ["aliasip.io"], "resources": ["aliasips/status"]} in (
        status["resourceRules"]
    )
    public = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
    assert {"verbs": ["get"], "nonResourceURLs": public} in status["nonResourceRules"]
    elsewhere = self_subject_rules_review({"spec": {"namespace": "default"}}, admitted.user, POLICY)
    assert all(r.get("resources") != ["leases"] for r in elsewhere["status"]["resourceRules"])
    with pytest.raises(ApiError, match="no namespace on request"):
        self_subject_rules_review({"spec": {}}, admitted.user, POLICY)


# --------------------------------------------------------------------------- endpoints


def post(url: str, body: Json, token: str | None = ADMIN.token, **kw: Any) -> Json | None:
    admitted = request("POST", url, token, **kw)
    return answer(admitted, body, policy=POLICY, key=KEY, lookup=LOOKUP, now=NOW)


def test_the_review_endpoints() -> None:
    ask = {"spec": {"resourceAttributes": {"verb": "update", "group": "coordination.k8s.io",
                                           "resource": "leases", "namespace": NS}}}  # fmt: skip
    review = post(SSAR, ask, headers=AS_AGENT)
    assert review is not None and review["status"]["allowed"]
    whoami = post("/apis/authentication.k8s.io/v1/selfsubjectreviews", {}, agent_token())
    assert whoami is not None
    assert whoami["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"] == [
        "agent-pod"
    ]
    rules = post(
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", {"spec": {"namespace": NS}}
    )
    assert rules is not None and rules["kind"] == "SelfSubjectRulesReview"
    local = post(
        f"/apis/authorization.k8s.io/v1/namespaces/{NS}/localsubjectaccessreviews",
        {"spec": {"user": AGENT_NAME, "resourceAttributes": {**ask["spec"]["resourceAttributes"]}}},
    )
    assert local is not None and local["status"]["allowed"]
    sar = post("/apis/authorization.k8s.io/v1/subjectaccessreviews", {"spec": {"user": "x",
               "nonResourceAttributes": {"path": "/api", "verb": "get"}}})  # fmt: skip
    assert sar is not None and sar["status"] == {"allowed": False}


def test_kubectl_create_token() -> None:
    url = f"/api/v1/namespaces/{NS}/serviceaccounts/aliasip-agent/token"
    made = post(url, {"spec": {"expirationSeconds": 600}})
    assert made is not None and made["kind"] == "TokenRequest"
    token = made["status"]["token"]
    assert request("PUT", LEASE, token).user.name == AGENT_NAME
    # The agent itself may not mint tokens.
    assert refused("POST", url, agent_token()).message == (
        'serviceaccounts "aliasip-agent" is forbidden: User '
        '"system:serviceaccount:aliasip-system:aliasip-agent" cannot create resource '
        '"serviceaccounts/token" in API group "" in the namespace "aliasip-system"'
    )


def test_other_requests_are_not_auth_endpoints() -> None:
    admitted = request("GET", LEASE, ADMIN.token)
    assert not is_auth_endpoint(admitted)
    assert answer(admitted, {}, policy=POLICY, key=KEY, lookup=LOOKUP, now=NOW) is None
    with pytest.raises(ApiError) as caught:
        answer(request("GET", SSAR, ADMIN.token), {}, policy=POLICY, key=KEY, lookup=LOOKUP,
               now=NOW)  # fmt: skip
    assert caught.value.code == 405
    with pytest.raises(ApiError) as caught:
        post("/apis/authorization.k8s.io/v1/namespaces/x/selfsubjectaccessreviews", {})
    assert caught.value.code == 404
    with pytest.raises(ApiError) as caught:
        post("/apis/authorization.k8s.io/v1/localsubjectaccessreviews", {})
    assert caught.value.code == 404
