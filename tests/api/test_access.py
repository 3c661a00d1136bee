"""Authentication and RBAC at the server's edge (``--authorization-mode RBAC``, over
TLS: clients send bearer tokens only there). The admin's kubeconfig installs the
manifests with the real kubectl; anonymous requests see only the public paths; a service
account's token (from the TokenRequest API) is held to the shipped RBAC with
kube-apiserver's 403 message; access reviews, ``kubectl auth can-i --as`` and
impersonation answer as in a cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aliasip_lab.apiserver.access import Access
from aliasip_lab.apiserver.runner import Settings
from aliasip_lab.apiserver.tls import make_serving_files
from tests.api.support import ADDRESS, REPO, ApiLab, Reply, api_lab

AGENT = "system:serviceaccount:aliasip-system:aliasip-agent"


class Caller:
    """Requests to the secured server with one bearer token (None: anonymous)."""

    def __init__(self, lab: ApiLab, token: str | None) -> None:
        self.lab = lab
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Reply:
        return self.lab.client.request(
            method, path, body, extra_headers={**self.headers, **headers}
        )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiLab, Caller]]:
    tls = make_serving_files(tmp_path_factory.mktemp("pki"), [ADDRESS])
    access = Access.create()
    assert access.admin is not None
    with api_lab(Settings(access=access, tls=tls)) as lab:
        assert lab.server.url.startswith("https://")
        lab.kubectl("apply", "-k", str(REPO / "manifests"))  # the admin's kubeconfig
        yield lab, Caller(lab, access.admin.token)


def agent(lab: ApiLab, admin: Caller) -> Caller:
    reply = admin.call(
        "POST",
        "/api/v1/namespaces/aliasip-system/serviceaccounts/aliasip-agent/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert reply.status == 201, reply.body
    return Caller(lab, reply.json["status"]["token"])


def test_the_default_roles_are_stored_objects_the_admin_may_read(
    secured: tuple[ApiLab, Caller],
) -> None:
    _lab, admin = secured
    reply = admin.call("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles")
    assert reply.status == 200
    names = {item["metadata"]["name"] for item in reply.json["items"]}
    assert {"cluster-admin", "system:discovery", "system:public-info-viewer"} <= names


def test_an_anonymous_request_gets_public_paths_and_kube_apiservers_403(
    secured: tuple[ApiLab, Caller],
) -> None:
    lab, _admin = secured
    anonymous = Caller(lab, None)
    assert anonymous.call("GET", "/version").status == 200  # system:public-info-viewer
    reply = anonymous.call("GET", "/api/v1/namespaces")
    assert reply.status == 403
    body = reply.json
    assert (body["reason"], body["code"]) == ("Forbidden", 403)
    assert body["message"] == (
        'namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" '
        'in API group "" at the cluster scope'
    )


def test_a_bad_token_is_401(secured: tuple[ApiLab, Caller]) -> None:
    lab, _admin = secured
    reply = Caller(lab, "not-a-token").call("GET", "/api/v1/namespaces")
    assert reply.status == 401
    assert (reply.json["reason"], reply.json["message"]) == ("Unauthorized", "Unauthorized")


def test_the_agents_token_is_held_to_its_rbac(secured: tuple[ApiLab, Caller]) -> None:
    lab, admin = secured
    token = agent(lab, admin)
    leases = token.call("GET", "/apis/coordination.k8s.io/v1/namespaces/aliasip-system/leases")
    assert leases.status == 200, leases.body
    refused = token.call("GET", "/api/v1/namespaces/aliasip-system/secrets")
    assert refused.status == 403
    assert refused.json["message"] == (
        f'secrets is forbidden: User "{AGENT}" cannot list resource "secrets" in API group "" '
        'in the namespace "aliasip-system"'
    )
    whoami = token.call(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert whoami.status == 201
    assert whoami.json["status"]["userInfo"]["username"] == AGENT


@pytest.mark.parametrize(
    ("verb", "resource", "subresource", "allowed"),
    [
        ("update", "leases", "", True),
        ("get", "secrets", "", False),
        ("patch", "aliasips", "status", True),
    ],
)
def test_an_access_review_answers_from_the_shipped_rbac(
    secured: tuple[ApiLab, Caller], verb: str, resource: str, subresource: str, allowed: bool
) -> None:
    """What ``kubectl auth can-i --as`` sends: a SelfSubjectAccessReview, impersonated."""
    _lab, admin = secured
    group = {"leases": "coordination.k8s.io", "aliasips": "aliasip.io"}.get(resource, "")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": "aliasip-system",
                "verb": verb,
                "group": group,
                "resource": resource,
                "subresource": subresource,
            }
        },
    }
    reply = admin.call(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        review,
        **{"Impersonate-User": AGENT},
    )
    assert reply.status == 201, reply.body
    assert reply.json["status"]["allowed"] is allowed


def test_impersonation_needs_the_impersonate_verb(secured: tuple[ApiLab, Caller]) -> None:
    lab, admin = secured
    reply = agent(lab, admin).call(
        "GET", "/api/v1/namespaces", **{"Impersonate-User": "kubernetes-admin"}
    )
    assert reply.status == 403
    assert f'User "{AGENT}" cannot impersonate resource "users"' in reply.json["message"]


def test_kubectl_auth_whoami_with_the_admins_kubeconfig(secured: tuple[ApiLab, Caller]) -> None:
    lab, _admin = secured
    done = lab.kubectl("auth", "whoami", "-o", "json")
    assert '"system:masters"' in done.stdout and '"kubernetes-admin"' in done.stdout


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (("update", "leases", "-n", "aliasip-system"), "yes"),
        (("get", "secrets", "-n", "aliasip-system"), "no"),
        (("patch", "aliasips", "--subresource", "status"), "yes"),
        (("patch", "aliasips"), "no"),  # the spec is the admin's
        (("patch", "aliasips/status"), "no"),  # kubectl reads this as the AliasIP "status"
    ],
)
def test_kubectl_can_i_as_the_agent(
    secured: tuple[ApiLab, Caller], question: tuple[str, ...], expected: str
) -> None:
    lab, _admin = secured
    done = lab.kubectl("auth", "can-i", *question, "--as", AGENT, check=False)
    assert done.stdout.strip() == expected, done.stdout + done.stderr


def test_kubectl_with_the_agents_token_gets_the_403(secured: tuple[ApiLab, Caller]) -> None:
    lab, _admin = secured
    token = lab.kubectl("create", "token", "aliasip-agent", "-n", "aliasip-system").stdout
    done = lab.kubectl(
        "--token", token.strip(), "get", "secrets", "-n", "aliasip-system", check=False
    )
    assert done.returncode == 1
    assert (
        f'secrets is forbidden: User "{AGENT}" cannot list resource "secrets" in API group "" '
        'in the namespace "aliasip-system"'
    ) in done.stderr
