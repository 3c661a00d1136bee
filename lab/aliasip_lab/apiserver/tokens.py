"""Bound service-account tokens, issued and checked as kube-apiserver does them.

What is copied (kube-apiserver 1.32, ``pkg/serviceaccount/claims.go`` and ``jwt.go``,
``pkg/registry/core/serviceaccount/storage/token.go``):

- The claims, exactly: ``iss``, ``sub`` (``system:serviceaccount:<ns>:<name>``), ``aud``
  (always a list), ``exp``, ``iat``, ``nbf`` (whole seconds), ``jti`` (a UUID, feature
  ServiceAccountTokenJTI, on since 1.30) and the private claim ``kubernetes.io`` with
  ``namespace``, ``serviceaccount{name,uid}``, one of ``pod{name,uid}`` /
  ``secret{name,uid}`` / ``node{name,uid}`` (a pod-bound token also carries the pod's
  ``node``), and ``warnafter`` only for the kubelet's extended tokens. Keys are written
  sorted, as go-jose marshals its claim maps; empty fields are left out (``omitempty``).
- TokenRequest (``POST .../serviceaccounts/<name>/token``): audiences default to the API
  audiences; ``expirationSeconds`` defaults to 3600 and must lie in [600, 2^32]; a
  request for exactly 3607 s bound to a pod with API audiences (what the kubelet asks for)
  is extended to one year with ``warnafter`` at 3607 s
  (``--service-account-extend-token-expiration``, on by default); the status'
  ``expirationTimestamp`` is always the requested one.
- Verification, in kube-apiserver's order: the unverified issuer must be ours (else the
  token is "not ours" and the bearer authenticator answers "invalid bearer token"), the
  signature, the issuer again, the audiences (their intersection with the API audiences
  must not be empty), then ``nbf``/``exp``/``iat`` with go-jose's one-minute leeway, then
  the bound objects: the ServiceAccount (same uid, not deleted for more than the leeway),
  the bound Secret or Pod (found, same uid, not deleted), and a Node for a token bound to a
  node alone (feature ServiceAccountTokenNodeBindingValidation, on since 1.30). A
  pod-bound token's node claim is only reported, never checked (as kube-apiserver).
- The user kube-apiserver derives (``ServiceAccountInfo.UserInfo``): see
  ``userinfo.service_account_user``; ``credential-id`` is ``JTI=<jti>``.

Where it departs: kube-apiserver signs with its service-account key (RS256 or ES256, the
public keys served at ``/openid/v1/jwks``); the lab signs with HMAC-SHA256 over a per-lab
secret key (``alg: HS256``), since nothing but this server ever verifies the tokens and
the lab has no key pair to publish. The ``kid`` header is derived from the key one way
(an HMAC of a fixed label), so it names the key without revealing it. Legacy
Secret-based tokens (``kubernetes.io/serviceaccount/...`` claims) are not issued or read.

Pure: the clock, the JTI and every object lookup are parameters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aliasip_api import kubetime
from aliasip_lab.apiserver import errors
from aliasip_lab.apiserver.errors import ApiError, Cause
from aliasip_lab.apiserver.userinfo import UserInfo, make_username, service_account_user

Json = dict[str, Any]
Lookup = Callable[[str, str, str], Json | None]
"""``lookup(resource, namespace, name)``: the stored object or None. ``resource`` is one of
``serviceaccounts``, ``pods``, ``secrets``, ``nodes`` (namespace ``""`` for nodes)."""

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
"""kubeadm's ``--service-account-issuer``; ``--api-audiences`` defaults to it."""
LEEWAY_S = 60  # go-jose's jwt.DefaultLeeway
DEFAULT_EXPIRATION_S = 3600  # SetDefaults_TokenRequestSpec
MIN_EXPIRATION_S = 600
MAX_EXPIRATION_S = 1 << 32
WARN_ONLY_BOUND_TOKEN_EXPIRATION_S = 60 * 60 + 7  # what the kubelet requests
EXPIRATION_EXTENSION_S = 24 * 365 * 60 * 60
ALGORITHM = "HS256"
AUTHENTICATION_GROUP = "authentication.k8s.io"


class TokenError(Exception):
    """The token is ours but invalid; the message is kube-apiserver's (it logs it; the
    client only sees 401 Unauthorized)."""


@dataclass(frozen=True)
class SigningKey:
    """The lab's service-account key: 32 random bytes kept next to the lab's other keys."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < 32:
            raise ValueError("a service-account signing key needs at least 32 bytes")

    @property
    def kid(self) -> str:
        return _b64(hmac.new(self.secret, b"aliasip-lab key id", hashlib.sha256).digest())

    def sign(self, data: bytes) -> bytes:
        return hmac.new(self.secret, data, hashlib.sha256).digest()


@dataclass(frozen=True)
class TokenSettings:
    """kube-apiserver's flags that shape tokens."""

    issuer: str = DEFAULT_ISSUER
    api_audiences: tuple[str, ...] = (DEFAULT_ISSUER,)
    extend_expiration: bool = True
    max_expiration_s: int = 0  # --service-account-max-token-expiration; 0: none


# --------------------------------------------------------------------------- JWS


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if "=" in text:
        raise ValueError("padded base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _compact(obj: Json) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(payload: Json, key: SigningKey) -> str:
    """A compact JWS: ``header.payload.signature``, each base64url without padding."""
    header = _b64(_compact({"alg": ALGORITHM, "kid": key.kid}))
    body = _b64(_compact(payload))
    signing_input = f"{header}.{body}".encode("ascii")
    return f"{header}.{body}.{_b64(key.sign(signing_input))}"


def unverified_payload(token: str) -> Json | None:
    """The claims without checking anything (``hasCorrectIssuer``'s peek), or None."""
    if token.strip().startswith("{"):
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def verified_payload(token: str, key: SigningKey) -> Json:
    """The claims of a token whose signature is ours; ``TokenError`` otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("go-jose/go-jose: compact JWS format must have three parts")
    try:
        header = json.loads(_unb64(parts[0]))
        signature = _unb64(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise TokenError(f"go-jose/go-jose: {exc}") from None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise TokenError("go-jose/go-jose: unexpected signature algorithm in JWS header")
    expected = key.sign(f"{parts[0]}.{parts[1]}".encode("ascii"))
    if not hmac.compare_digest(expected, signature):
        raise TokenError("go-jose/go-jose: error in cryptographic primitive")
    payload = unverified_payload(token)
    if payload is None:
        raise TokenError("go-jose/go-jose: invalid payload")
    return payload


# --------------------------------------------------------------------------- claims


def _ref(obj: Json) -> Json:
    meta = obj.get("metadata") or {}
    ref = {"name": meta.get("name", ""), "uid": meta.get("uid", "")}
    return {k: v for k, v in ref.items() if v}


def claims(
    service_account: Json,
    *,
    audiences: Sequence[str],
    issuer: str,
    now: int,
    expiration_s: int,
    jti: str,
    pod: Json | None = None,
    secret: Json | None = None,
    node: Json | None = None,
    warn_after_s: int = 0,
) -> Json:
    """The payload ``serviceaccount.Claims`` builds (public and private claims merged)."""
    if secret is not None and (pod is not None or node is not None):
        raise ValueError("internal error, token can only be bound to one object type")
    meta = service_account.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    private: Json = {"namespace": namespace, "serviceaccount": _ref(service_account)}
    if pod is not None:
        private["pod"] = _ref(pod)
        if node is not None:
            private["node"] = _ref(node)
    elif secret is not None:
        private["secret"] = _ref(secret)
    elif node is not None:
        private["node"] = _ref(node)
    if warn_after_s:
        private["warnafter"] = now + warn_after_s
    payload: Json = {
        "aud": list(audiences),
        "exp": now + expiration_s,
        "iat": now,
        "iss": issuer,
        "kubernetes.io": {k: v for k, v in private.items() if v not in ("", {})},
        "nbf": now,
        "sub": make_username(namespace, name),
    }
    if jti:
        payload["jti"] = jti
    return payload


# --------------------------------------------------------------------------- TokenRequest


def _invalid(name: str, field: str, value: Any, why: str) -> ApiError:
    shown = json.dumps(value) if isinstance(value, str) else value
    return errors.invalid(
        AUTHENTICATION_GROUP,
        "TokenRequest",
        name,
        [Cause("FieldValueInvalid", f"Invalid value: {shown}: {why}", field)],
    )


def _deleted_before(obj: Json, cutoff: float) -> bool:
    stamp = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return False
    return kubetime.parse_time(str(stamp)).timestamp() < cutoff


def token_request(
    namespace: str,
    name: str,
    body: Json,
    *,
    key: SigningKey,
    lookup: Lookup,
    now: float,
    settings: TokenSettings = TokenSettings(),
    new_jti: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Json:
    """What ``POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`` answers (201).

    ``body`` is the client's TokenRequest. Failures are kube-apiserver's: 422 for a
    mismatched name/namespace or an expiration out of range, 404 for a missing
    ServiceAccount or bound object, 400 for a pod that runs as another ServiceAccount or a
    bound kind other than Pod/Secret/Node, 409 for a bound uid that is not the stored one.
    """
    meta = body.get("metadata") or {}
    spec = dict(body.get("spec") or {})
    if meta.get("name") and meta["name"] != name:
        raise _invalid(
            name, "metadata.name", meta["name"], "must match the service account name if specified"
        )
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise _invalid(
            name,
            "metadata.namespace",
            meta["namespace"],
            "must match the service account namespace if specified",
        )
    service_account = lookup("serviceaccounts", namespace, name)
    if service_account is None:
        raise errors.not_found("", "serviceaccounts", name)
    audiences = list(spec.get("audiences") or settings.api_audiences)
    expiration = spec.get("expirationSeconds")
    expiration = DEFAULT_EXPIRATION_S if expiration is None else expiration
    if not isinstance(expiration, int) or isinstance(expiration, bool):
        raise errors.bad_request("spec.expirationSeconds must be an integer")
    if settings.max_expiration_s > 0 and expiration > settings.max_expiration_s:
        expiration = settings.max_expiration_s
    if expiration < MIN_EXPIRATION_S:
        raise _invalid(
            name,
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration less than 10 minutes",
        )
    if expiration > MAX_EXPIRATION_S:
        raise _invalid(
            name,
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration larger than 2^32 seconds",
        )
    pod = secret = node = None
    ref = spec.get("boundObjectRef")
    if ref:
        kind, api_version = str(ref.get("kind", "")), str(ref.get("apiVersion", ""))
        group, _, version = api_version.rpartition("/")
        ref_name = str(ref.get("name", ""))
        # schema.FromAPIVersionAndKind: only the group and the kind count, not the version.
        if group == "" and kind == "Pod":
            pod = lookup("pods", namespace, ref_name)
            if pod is None:
                raise errors.not_found("", "pods", ref_name)
            if (pod.get("spec") or {}).get("serviceAccountName", "default") != name:
                raise errors.bad_request(
                    f'cannot bind token for serviceaccount "{name}" to pod running with '
                    "different serviceaccount name."
                )
            bound = pod
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name:
                # A pod's node that is gone still names itself in the claims, without a uid.
                node = lookup("nodes", "", node_name) or {"metadata": {"name": node_name}}
        elif group == "" and kind == "Secret":
            secret = lookup("secrets", namespace, ref_name)
            if secret is None:
                raise errors.not_found("", "secrets", ref_name)
            bound = secret
        elif group == "" and kind == "Node":
            node = lookup("nodes", "", ref_name)
            if node is None:
                raise errors.not_found("", "nodes", ref_name)
            bound = node
        else:
            raise errors.bad_request(
                f"cannot bind token to object of type {group}/{version}, Kind={kind}"
            )
        stored_uid = (bound.get("metadata") or {}).get("uid", "")
        if ref.get("uid") and ref["uid"] != stored_uid:
            raise errors.conflict(
                "",
                kind,
                ref_name,
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID "
                "in record. The object might have been deleted and then recreated",
            )
    exp, warn_after = expiration, 0
    if (
        settings.extend_expiration
        and pod is not None
        and expiration == WARN_ONLY_BOUND_TOKEN_EXPIRATION_S
        and set(audiences) <= set(settings.api_audiences)
    ):
        warn_after, exp = expiration, EXPIRATION_EXTENSION_S
    issued_at = int(now)
    payload = claims(
        service_account,
        audiences=audiences,
        issuer=settings.issuer,
        now=issued_at,
        expiration_s=exp,
        jti=new_jti(),
        pod=pod,
        secret=secret,
        node=node,
        warn_after_s=warn_after,
    )
    out_spec: Json = {"audiences": audiences, "expirationSeconds": expiration}
    if ref:
        out_spec["boundObjectRef"] = ref
    return {
        "kind": "TokenRequest",
        "apiVersion": f"{AUTHENTICATION_GROUP}/v1",
        "metadata": {
            "name": meta.get("name") or name,
            "namespace": meta.get("namespace") or namespace,
            "creationTimestamp": _stamp(now),
        },
        "spec": out_spec,
        "status": {
            "token": sign(payload, key),
            "expirationTimestamp": _stamp(now + expiration),
        },
    }


def _stamp(when: float) -> str:
    return kubetime.format_time(datetime.fromtimestamp(int(when), UTC))


# --------------------------------------------------------------------------- verification


def _go_quoted_list(items: Sequence[str]) -> str:
    """Go's ``%q`` of a string slice: ``["a" "b"]``."""
    return "[" + " ".join(json.dumps(i) for i in items) + "]"


def authenticate(
    token: str,
    *,
    key: SigningKey,
    lookup: Lookup,
    now: float,
    settings: TokenSettings = TokenSettings(),
) -> UserInfo | None:
    """The user a bound token stands for; None if it is not a token of this issuer;
    ``TokenError`` (kube-apiserver's message) if it is ours but invalid."""
    peek = unverified_payload(token)
    if peek is None or peek.get("iss") != settings.issuer:
        return None
    payload = verified_payload(token, key)
    if payload.get("iss") != settings.issuer:
        raise TokenError(f'token issuer "{payload.get("iss")}" is invalid')
    aud = payload.get("aud")
    token_audiences = [aud] if isinstance(aud, str) else list(aud or [])
    if not token_audiences:
        token_audiences = list(settings.api_audiences)  # a legacy token: API audiences only
    if settings.api_audiences and not set(token_audiences) & set(settings.api_audiences):
        raise TokenError(
            f"token audiences {_go_quoted_list(token_audiences)} is invalid for the target "
            f"audiences {_go_quoted_list(settings.api_audiences)}"
        )
    return _validate(payload, lookup, now)


def _number(payload: Json, claim: str) -> float | None:
    value = payload.get(claim)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(
            "service account token claims could not be validated due to unexpected validation error"
        )
    return float(value)


def _validate(payload: Json, lookup: Lookup, now: float) -> UserInfo:
    """``validator.Validate`` of ``claims.go``."""
    nbf, exp, iat = _number(payload, "nbf"), _number(payload, "exp"), _number(payload, "iat")
    if nbf is not None and now + LEEWAY_S < nbf:
        raise TokenError("service account token is not valid yet")
    if exp is not None and now - LEEWAY_S > exp:
        raise TokenError("service account token has expired")
    if iat is not None and now + LEEWAY_S < iat:
        raise TokenError("service account token is issued in the future")
    private = payload.get("kubernetes.io")
    if not isinstance(private, dict):
        private = {}
    cutoff = now - LEEWAY_S
    namespace = str(private.get("namespace", ""))
    sa_ref = private.get("serviceaccount") or {}
    sa_name, sa_uid = str(sa_ref.get("name", "")), str(sa_ref.get("uid", ""))
    service_account = lookup("serviceaccounts", namespace, sa_name)
    if service_account is None:
        raise TokenError(f'serviceaccounts "{sa_name}" not found')
    stored_uid = (service_account.get("metadata") or {}).get("uid", "")
    if stored_uid != sa_uid:
        raise TokenError(f"service account UID ({stored_uid}) does not match claim ({sa_uid})")
    if _deleted_before(service_account, cutoff):
        raise TokenError(f"service account {namespace}/{sa_name} has been deleted")
    invalidated = TokenError("service account token has been invalidated")
    secret_ref = private.get("secret")
    if secret_ref is not None:
        secret = lookup("secrets", namespace, str(secret_ref.get("name", "")))
        if secret is None:
            raise invalidated
        uid = (secret.get("metadata") or {}).get("uid", "")
        if secret_ref.get("uid", "") != uid:
            raise TokenError(
                f"secret UID ({uid}) does not match service account secret ref claim "
                f"({secret_ref.get('uid', '')})"
            )
        if _deleted_before(secret, cutoff):
            raise invalidated
    pod_name = pod_uid = ""
    pod_ref = private.get("pod")
    if pod_ref is not None:
        pod = lookup("pods", namespace, str(pod_ref.get("name", "")))
        if pod is None:
            raise invalidated
        uid = (pod.get("metadata") or {}).get("uid", "")
        if pod_ref.get("uid", "") != uid:
            raise TokenError(
                f"pod UID ({uid}) does not match service account pod ref claim "
                f"({pod_ref.get('uid', '')})"
            )
        if _deleted_before(pod, cutoff):
            raise invalidated
        pod_name, pod_uid = str(pod_ref.get("name", "")), str(pod_ref.get("uid", ""))
    node_name = node_uid = ""
    node_ref = private.get("node")
    if node_ref is not None:
        if pod_ref is None:
            node = lookup("nodes", "", str(node_ref.get("name", "")))
            if node is None:
                raise invalidated
            uid = (node.get("metadata") or {}).get("uid", "")
            if node_ref.get("uid", "") != uid:
                raise TokenError(
                    f"node UID ({uid}) does not match service account node ref claim "
                    f"({node_ref.get('uid', '')})"
                )
            if _deleted_before(node, cutoff):
                raise invalidated
        node_name, node_uid = str(node_ref.get("name", "")), str(node_ref.get("uid", ""))
    jti = str(payload.get("jti") or "")
    return service_account_user(
        namespace,
        sa_name,
        sa_uid,
        pod_name=pod_name,
        pod_uid=pod_uid,
        node_name=node_name,
        node_uid=node_uid,
        credential_id=f"JTI={jti}" if jti else "",
    )
