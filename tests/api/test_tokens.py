"""Bound service-account tokens and request authentication (pure).

Sources: kubernetes pkg/serviceaccount/claims.go (Claims, validator.Validate), jwt.go
(JWTTokenAuthenticator.AuthenticateToken), pkg/registry/core/serviceaccount/storage/token.go
(TokenRequest), k8s.io/apiserver/pkg/authentication/serviceaccount/util.go (the user and
its extra), .../request/bearertoken (Bearer parsing), .../token/tokenfile (static tokens),
apierrors.NewUnauthorized (the 401 body).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from aliasip_lab.apiserver.authn import (
    ADMIN_USER,
    AdminCredential,
    Authenticator,
    TokenFileError,
    Unauthorized,
    bearer_token,
    parse_token_file,
    self_subject_review,
)
from aliasip_lab.apiserver.errors import ApiError
from aliasip_lab.apiserver.tokens import (
    DEFAULT_ISSUER,
    EXPIRATION_EXTENSION_S,
    SigningKey,
    TokenError,
    TokenSettings,
    authenticate,
    sign,
    token_request,
    unverified_payload,
)
from aliasip_lab.apiserver.userinfo import ANONYMOUS_USER, UserInfo

Json = dict[str, Any]
NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
KEY = SigningKey(bytes(range(32)))
OTHER_KEY = SigningKey(bytes(range(1, 33)))
NS = "aliasip-system"
SA_UID = "5c1f6f4e-0000-4000-8000-00000000000a"
POD_UID = "5c1f6f4e-0000-4000-8000-00000000000b"
NODE_UID = "5c1f6f4e-0000-4000-8000-00000000000c"
JTI = "0b6c2e1e-1111-4111-8111-111111111111"


def obj(name: str, uid: str, namespace: str = "", **extra: Any) -> Json:
    meta: Json = {"name": name, "uid": uid}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, **extra}


class World:
    """The objects a lookup can find; tests delete and replace them."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Json] = {
            ("serviceaccounts", NS, "aliasip-agent"): obj("aliasip-agent", SA_UID, NS),
            ("pods", NS, "aliasip-agent-x7k2p"): obj(
                "aliasip-agent-x7k2p",
                POD_UID,
                NS,
                spec={"serviceAccountName": "aliasip-agent", "nodeName": "node2"},
            ),
            ("nodes", "", "node2"): obj("node2", NODE_UID),
            ("secrets", NS, "s"): obj("s", "secret-uid", NS),
        }

    def lookup(self, resource: str, namespace: str, name: str) -> Json | None:
        return self.objects.get((resource, namespace, name))

    def issue(self, spec: Json | None = None, **kw: Any) -> Json:
        return token_request(
            NS,
            "aliasip-agent",
            {"spec": spec or {}},
            key=KEY,
            lookup=self.lookup,
            now=NOW,
            new_jti=lambda: JTI,
            **kw,
        )

    def check(self, token: str, now: float = NOW, **kw: Any) -> UserInfo | None:
        return authenticate(token, key=KEY, lookup=self.lookup, now=now, **kw)


POD_REF = {"kind": "Pod", "apiVersion": "v1", "name": "aliasip-agent-x7k2p"}


@pytest.fixture
def world() -> World:
    return World()


def parts(token: str) -> tuple[Json, Json]:
    head, body, _ = token.split(".")
    return _decode(head), _decode(body)


def _decode(part: str) -> Json:
    decoded: Json = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


# --------------------------------------------------------------------------- issuing


def test_a_pod_bound_token_has_exactly_kubernetes_claims(world: World) -> None:
    answer = world.issue({"boundObjectRef": POD_REF})
    header, payload = parts(answer["status"]["token"])
    assert header == {"alg": "HS256", "kid": KEY.kid}
    assert payload == {
        "aud": [DEFAULT_ISSUER],
        "exp": NOW + 3600,
        "iat": NOW,
        "iss": DEFAULT_ISSUER,
        "jti": JTI,
        "kubernetes.io": {
            "namespace": NS,
            "node": {"name": "node2", "uid": NODE_UID},
            "pod": {"name": "aliasip-agent-x7k2p", "uid": POD_UID},
            "serviceaccount": {"name": "aliasip-agent", "uid": SA_UID},
        },
        "nbf": NOW,
        "sub": "system:serviceaccount:aliasip-system:aliasip-agent",
    }
    # go-jose writes the claims with sorted keys, compactly.
    body = answer["status"]["token"].split(".")[1]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    assert raw == json.dumps(payload, sort_keys=True, separators=(",", ":"))


def test_the_token_request_answer(world: World) -> None:
    answer = world.issue({"boundObjectRef": POD_REF})
    assert answer["kind"] == "TokenRequest"
    assert answer["apiVersion"] == "authentication.k8s.io/v1"
    assert answer["metadata"] == {
        "name": "aliasip-agent",
        "namespace": NS,
        "creationTimestamp": "2027-01-15T08:00:00Z",
    }
    assert answer["spec"] == {
        "audiences": [DEFAULT_ISSUER],
        "expirationSeconds": 3600,
        "boundObjectRef": POD_REF,
    }
    assert answer["status"]["expirationTimestamp"] == "2027-01-15T09:00:00Z"


def test_the_key_id_names_the_key_without_revealing_it() -> None:
    assert KEY.kid != OTHER_KEY.kid
    assert KEY.kid == SigningKey(bytes(range(32))).kid
    assert base64.urlsafe_b64encode(KEY.secret).decode().rstrip("=") not in KEY.kid
    with pytest.raises(ValueError):
        SigningKey(b"short")


def test_an_unbound_token_has_no_object_claims(world: World) -> None:
    _, payload = parts(world.issue({"audiences": ["vault"]})["status"]["token"])
    assert payload["aud"] == ["vault"]
    assert payload["kubernetes.io"] == {
        "namespace": NS,
        "serviceaccount": {"name": "aliasip-agent", "uid": SA_UID},
    }


def test_secret_and_node_bound_tokens(world: World) -> None:
    secret_ref = {"kind": "Secret", "apiVersion": "v1", "name": "s"}
    _, payload = parts(world.issue({"boundObjectRef": secret_ref})["status"]["token"])
    assert payload["kubernetes.io"]["secret"] == {"name": "s", "uid": "secret-uid"}
    assert "pod" not in payload["kubernetes.io"]
    node_ref = {"kind": "Node", "apiVersion": "v1", "name": "node2"}
    _, payload = parts(world.issue({"boundObjectRef": node_ref})["status"]["token"])
    assert payload["kubernetes.io"]["node"] == {"name": "node2", "uid": NODE_UID}
    assert "pod" not in payload["kubernetes.io"]


def test_a_pod_on_a_missing_node_names_the_node_without_uid(world: World) -> None:
    del world.objects[("nodes", "", "node2")]
    _, payload = parts(world.issue({"boundObjectRef": POD_REF})["status"]["token"])
    assert payload["kubernetes.io"]["node"] == {"name": "node2"}


def test_the_kubelets_3607_second_token_lasts_a_year_and_warns_after_3607(world: World) -> None:
    answer = world.issue({"boundObjectRef": POD_REF, "expirationSeconds": 3607})
    _, payload = parts(answer["status"]["token"])
    assert payload["exp"] == NOW + EXPIRATION_EXTENSION_S
    assert payload["kubernetes.io"]["warnafter"] == NOW + 3607
    # The status tells the requested expiration, as kube-apiserver's does.
    assert answer["status"]["expirationTimestamp"] == "2027-01-15T09:00:07Z"


@pytest.mark.parametrize(
    "spec",
    [
        {"expirationSeconds": 3607},  # not bound to a pod
        {"boundObjectRef": POD_REF, "expirationSeconds": 3607, "audiences": ["vault"]},
        {"boundObjectRef": POD_REF, "expirationSeconds": 3608},
    ],
)
def test_other_tokens_are_not_extended(world: World, spec: Json) -> None:
    _, payload = parts(world.issue(spec)["status"]["token"])
    assert payload["exp"] == NOW + spec["expirationSeconds"]
    assert "warnafter" not in payload["kubernetes.io"]


def test_no_extension_when_the_server_does_not_extend(world: World) -> None:
    settings = TokenSettings(extend_expiration=False)
    answer = world.issue({"boundObjectRef": POD_REF, "expirationSeconds": 3607}, settings=settings)
    assert parts(answer["status"]["token"])[1]["exp"] == NOW + 3607


def test_a_maximum_expiration_shortens_the_request(world: World) -> None:
    answer = world.issue({"expirationSeconds": 7200}, settings=TokenSettings(max_expiration_s=900))
    assert answer["spec"]["expirationSeconds"] == 900


def rejected(world: World, body: Json, name: str = "aliasip-agent") -> ApiError:
    with pytest.raises(ApiError) as caught:
        token_request(NS, name, body, key=KEY, lookup=world.lookup, now=NOW)
    return caught.value


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"spec": {"expirationSeconds": 599}}, 422,
         'TokenRequest.authentication.k8s.io "aliasip-agent" is invalid: '
         "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than "
         "10 minutes"),
        ({"spec": {"expirationSeconds": (1 << 32) + 1}}, 422,
         'TokenRequest.authentication.k8s.io "aliasip-agent" is invalid: '
         "spec.expirationSeconds: Invalid value: 4294967297: may not specify a duration "
         "larger than 2^32 seconds"),
        ({"metadata": {"name": "other"}, "spec": {}}, 422,
         'TokenRequest.authentication.k8s.io "aliasip-agent" is invalid: metadata.name: '
         'Invalid value: "other": must match the service account name if specified'),
        ({"spec": {"boundObjectRef": {**POD_REF, "name": "gone"}}}, 404,
         'pods "gone" not found'),
        ({"spec": {"boundObjectRef": {"kind": "Deployment", "apiVersion": "apps/v1",
                                      "name": "d"}}}, 400,
         "cannot bind token to object of type apps/v1, Kind=Deployment"),
        ({"spec": {"boundObjectRef": {**POD_REF, "uid": "old-uid"}}}, 409,
         'Operation cannot be fulfilled on Pod "aliasip-agent-x7k2p": the UID in the bound '
         "object reference (old-uid) does not match the UID in record. The object might "
         "have been deleted and then recreated"),
    ],
)  # fmt: skip
def test_token_requests_kube_apiserver_refuses(
    world: World, body: Json, code: int, message: str
) -> None:
    error = rejected(world, body)
    assert (error.code, error.message) == (code, message)


def test_a_token_for_a_missing_service_account_is_404(world: World) -> None:
    error = rejected(world, {"spec": {}}, name="nobody")
    assert (error.code, error.message) == (404, 'serviceaccounts "nobody" not found')


def test_a_pod_of_another_service_account_cannot_bind(world: World) -> None:
    world.objects[("serviceaccounts", NS, "default")] = obj("default", "d-uid", NS)
    error = rejected(world, {"spec": {"boundObjectRef": POD_REF}}, name="default")
    assert (error.code, error.message) == (
        400,
        'cannot bind token for serviceaccount "default" to pod running with different '
        "serviceaccount name.",
    )


# --------------------------------------------------------------------------- verification


def test_a_pod_bound_token_authenticates_as_kube_apiserver_says(world: World) -> None:
    token = world.issue({"boundObjectRef": POD_REF})["status"]["token"]
    assert world.check(token) == UserInfo(
        name="system:serviceaccount:aliasip-system:aliasip-agent",
        uid=SA_UID,
        groups=("system:serviceaccounts", "system:serviceaccounts:aliasip-system",
                "system:authenticated"),
        extra={
            "authentication.kubernetes.io/pod-name": ("aliasip-agent-x7k2p",),
            "authentication.kubernetes.io/pod-uid": (POD_UID,),
            "authentication.kubernetes.io/credential-id": (f"JTI={JTI}",),
            "authentication.kubernetes.io/node-name": ("node2",),
            "authentication.kubernetes.io/node-uid": (NODE_UID,),
        },
    )  # fmt: skip


def test_an_unbound_token_has_only_the_credential_id(world: World) -> None:
    user = world.check(world.issue()["status"]["token"])
    assert user is not None
    assert dict(user.extra) == {"authentication.kubernetes.io/credential-id": (f"JTI={JTI}",)}


def test_a_token_without_jti_has_no_credential_id(world: World) -> None:
    token = token_request(
        NS, "aliasip-agent", {}, key=KEY, lookup=world.lookup, now=NOW, new_jti=lambda: ""
    )["status"]["token"]
    assert "jti" not in parts(token)[1]
    user = world.check(token)
    assert user is not None and not user.extra


def test_a_pod_on_a_missing_node_reports_the_node_name_only(world: World) -> None:
    del world.objects[("nodes", "", "node2")]
    user = world.check(world.issue({"boundObjectRef": POD_REF})["status"]["token"])
    assert user is not None
    assert user.extra["authentication.kubernetes.io/node-name"] == ("node2",)
    assert "authentication.kubernetes.io/node-uid" not in user.extra


def test_a_pod_bound_token_does_not_check_the_pods_node(world: World) -> None:
    token = world.issue({"boundObjectRef": POD_REF})["status"]["token"]
    del world.objects[("nodes", "", "node2")]
    assert world.check(token) is not None


def resign(token: str, change: Json, key: SigningKey = KEY) -> str:
    _, payload = parts(token)
    payload.update(change)
    return sign(payload, key)


def test_tampering_breaks_the_signature(world: World) -> None:
    token = world.issue()["status"]["token"]
    head, _, signature = token.split(".")
    forged = resign(token, {"sub": "system:serviceaccount:kube-system:admin"}).split(".")[1]
    with pytest.raises(TokenError, match="error in cryptographic primitive"):
        world.check(f"{head}.{forged}.{signature}")


def test_a_token_signed_with_another_key_is_refused(world: World) -> None:
    token = resign(world.issue()["status"]["token"], {}, key=OTHER_KEY)
    with pytest.raises(TokenError, match="error in cryptographic primitive"):
        world.check(token)


def test_an_unsigned_token_is_refused(world: World) -> None:
    token = world.issue()["status"]["token"]
    _, body, _ = token.split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
    with pytest.raises(TokenError):
        world.check(f"{none_header}.{body}.")


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", '{"iss":"x"}', "a.!!.c"])
def test_garbage_is_not_our_token(world: World, token: str) -> None:
    assert world.check(token) is None


def test_a_token_of_another_issuer_is_not_ours(world: World) -> None:
    token = resign(world.issue()["status"]["token"], {"iss": "https://elsewhere"})
    assert unverified_payload(token) is not None
    assert world.check(token) is None


def test_a_token_for_another_audience_is_refused(world: World) -> None:
    token = world.issue({"audiences": ["vault", "sts"]})["status"]["token"]
    with pytest.raises(TokenError) as caught:
        world.check(token)
    assert str(caught.value) == (
        'token audiences ["vault" "sts"] is invalid for the target audiences '
        '["https://kubernetes.default.svc.cluster.local"]'
    )
    # One shared audience is enough.
    both = world.issue({"audiences": ["vault", DEFAULT_ISSUER]})["status"]["token"]
    assert world.check(both) is not None


def test_expiry_has_kube_apiservers_one_minute_leeway(world: World) -> None:
    token = world.issue()["status"]["token"]
    assert world.check(token, now=NOW + 3600 + 60) is not None
    with pytest.raises(TokenError, match=r"^service account token has expired$"):
        world.check(token, now=NOW + 3600 + 61)


def test_a_token_from_the_future_is_refused(world: World) -> None:
    token = world.issue()["status"]["token"]
    assert world.check(token, now=NOW - 60) is not None
    with pytest.raises(TokenError, match=r"^service account token is not valid yet$"):
        world.check(token, now=NOW - 61)
    issued_later = resign(token, {"nbf": NOW - 3600, "iat": NOW + 3600})
    with pytest.raises(TokenError, match=r"^service account token is issued in the future$"):
        world.check(issued_later)


def test_a_deleted_pod_invalidates_its_tokens(world: World) -> None:
    token = world.issue({"boundObjectRef": POD_REF})["status"]["token"]
    del world.objects[("pods", NS, "aliasip-agent-x7k2p")]
    with pytest.raises(TokenError, match=r"^service account token has been invalidated$"):
        world.check(token)


def test_a_recreated_pod_does_not_inherit_tokens(world: World) -> None:
    token = world.issue({"boundObjectRef": POD_REF})["status"]["token"]
    world.objects[("pods", NS, "aliasip-agent-x7k2p")]["metadata"]["uid"] = "new-uid"
    with pytest.raises(TokenError) as caught:
        world.check(token)
    assert str(caught.value) == (
        f"pod UID (new-uid) does not match service account pod ref claim ({POD_UID})"
    )


def test_a_terminating_pod_keeps_its_tokens_for_the_leeway(world: World) -> None:
    token = world.issue({"boundObjectRef": POD_REF})["status"]["token"]
    meta = world.objects[("pods", NS, "aliasip-agent-x7k2p")]["metadata"]
    meta["deletionTimestamp"] = "2027-01-15T08:00:00Z"  # NOW
    assert world.check(token, now=NOW + 60) is not None
    with pytest.raises(TokenError, match="invalidated"):
        world.check(token, now=NOW + 61)


def test_a_deleted_or_recreated_service_account_invalidates_its_tokens(world: World) -> None:
    token = world.issue()["status"]["token"]
    world.objects[("serviceaccounts", NS, "aliasip-agent")]["metadata"]["uid"] = "new"
    with pytest.raises(TokenError) as caught:
        world.check(token)
    assert str(caught.value) == f"service account UID (new) does not match claim ({SA_UID})"
    del world.objects[("serviceaccounts", NS, "aliasip-agent")]
    with pytest.raises(TokenError, match=r'^serviceaccounts "aliasip-agent" not found$'):
        world.check(token)


def test_a_terminating_service_account(world: World) -> None:
    token = world.issue()["status"]["token"]
    meta = world.objects[("serviceaccounts", NS, "aliasip-agent")]["metadata"]
    meta["deletionTimestamp"] = "2027-01-15T07:58:00Z"
    with pytest.raises(TokenError, match=r"^service account aliasip-system/aliasip-agent has"):
        world.check(token)


def test_secret_and_node_bindings_are_checked(world: World) -> None:
    secret_ref = {"kind": "Secret", "apiVersion": "v1", "name": "s"}
    secret_token = world.issue({"boundObjectRef": secret_ref})["status"]["token"]
    node_ref = {"kind": "Node", "apiVersion": "v1", "name": "node2"}
    node_token = world.issue({"boundObjectRef": node_ref})["status"]["token"]
    user = world.check(node_token)
    assert user is not None
    assert user.extra["authentication.kubernetes.io/node-uid"] == (NODE_UID,)
    assert "authentication.kubernetes.io/pod-name" not in user.extra
    world.objects[("secrets", NS, "s")]["metadata"]["uid"] = "other"
    with pytest.raises(TokenError, match=r"^secret UID \(other\) does not match"):
        world.check(secret_token)
    del world.objects[("secrets", NS, "s")]
    with pytest.raises(TokenError, match="invalidated"):
        world.check(secret_token)
    world.objects[("nodes", "", "node2")]["metadata"]["uid"] = "other"
    with pytest.raises(TokenError, match=r"^node UID \(other\) does not match"):
        world.check(node_token)
    del world.objects[("nodes", "", "node2")]
    with pytest.raises(TokenError, match="invalidated"):
        world.check(node_token)


# --------------------------------------------------------------------------- the filter


ADMIN = AdminCredential("admin-token-0123456789")


def authenticator(**kw: Any) -> Authenticator:
    return Authenticator(static_tokens=parse_token_file(ADMIN.token_file()), key=KEY, **kw)


def test_the_admin_token_is_kubernetes_admin_in_system_masters(world: World) -> None:
    user = authenticator().authenticate(f"Bearer {ADMIN.token}", world.lookup, NOW)
    assert user == UserInfo(ADMIN_USER, groups=("system:masters", "system:authenticated"))
    assert ADMIN.kubeconfig_user() == {
        "name": "kubernetes-admin",
        "user": {"token": "admin-token-0123456789"},
    }
    assert len(AdminCredential.new().token) >= 43


def test_a_service_account_token_authenticates(world: World) -> None:
    token = world.issue({"boundObjectRef": POD_REF})["status"]["token"]
    user = authenticator().authenticate(f"bearer {token}", world.lookup, NOW)
    assert user.name == "system:serviceaccount:aliasip-system:aliasip-agent"
    assert user.groups[-1] == "system:authenticated"


@pytest.mark.parametrize("header", [None, "", "   ", "Bearer", "Bearer ", "Basic YTpi", "Token x"])
def test_no_bearer_token_is_anonymous(world: World, header: str | None) -> None:
    assert authenticator().authenticate(header, world.lookup, NOW) == ANONYMOUS_USER
    assert ANONYMOUS_USER.groups == ("system:unauthenticated",)
    with pytest.raises(Unauthorized):
        authenticator(anonymous=False).authenticate(header, world.lookup, NOW)


@pytest.mark.parametrize("token", ["wrong", "a.b.c"])
def test_an_unknown_bearer_token_is_401(world: World, token: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        authenticator().authenticate(f"Bearer {token}", world.lookup, NOW)
    assert caught.value.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_an_expired_token_is_401(world: World) -> None:
    token = world.issue()["status"]["token"]
    with pytest.raises(Unauthorized) as caught:
        authenticator().authenticate(f"Bearer {token}", world.lookup, NOW + 7200)
    assert caught.value.__notes__ == [
        "Unable to authenticate the request: service account token has expired"
    ]


def test_bearer_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("  bearer abc  ") == "abc"
    assert bearer_token("Bearer abc def") == "abc"
    assert bearer_token("Bearer  abc") is None  # the space before the token: empty token


def test_token_files_as_kube_apiserver_reads_them() -> None:
    tokens = parse_token_file('t1,alice,1,"g1,g2"\n\n t2 ,bob,2\n,empty,3\nt1,carol,4\n')
    assert tokens == {
        "t1": UserInfo("carol", "4"),
        "t2": UserInfo("bob", "2"),
    }
    assert parse_token_file('t,alice,1,"g1,g2"\n')["t"].groups == ("g1", "g2")
    with pytest.raises(TokenFileError, match="must have at least 3 columns"):
        parse_token_file("t,alice\n")


def test_self_subject_review_tells_who_you_are(world: World) -> None:
    user = world.check(world.issue({"boundObjectRef": POD_REF})["status"]["token"])
    assert user is not None
    review = self_subject_review(user)
    assert review["kind"] == "SelfSubjectReview"
    assert review["status"]["userInfo"]["username"] == (
        "system:serviceaccount:aliasip-system:aliasip-agent"
    )
    assert review["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-uid"] == [
        POD_UID
    ]
