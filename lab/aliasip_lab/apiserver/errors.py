"""Errors as kube-apiserver reports them: ``kind: Status`` objects with a code and a reason.

Clients branch on ``code`` and ``reason`` (kopf retries on 409 and restarts watches on
410; the kubernetes client raises ``ApiException`` with the code; kubectl prints the
message), so every failure leaves the server as one of these, never as a bare text body.
Messages follow ``k8s.io/apimachinery/pkg/api/errors`` word for word where clients or
people read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class Cause:
    """One ``details.causes`` entry: what is wrong with which field."""

    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
    message: str
    field: str

    def to_json(self) -> Json:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass
class ApiError(Exception):
    """A request failed; ``status()`` is the body the client receives."""

    code: int
    reason: str
    message: str
    details: Json = field(default_factory=dict)
    causes: list[Cause] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> Json:
        details = dict(self.details)
        if self.causes:
            details["causes"] = [c.to_json() for c in self.causes]
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": details,
            "code": self.code,
        }


def qualified(group: str, resource: str) -> str:
    """``aliasips.aliasip.io``, or ``nodes`` for the core group (GroupResource.String())."""
    return f"{resource}.{group}" if group else resource


def _details(group: str, resource: str, name: str) -> Json:
    details: Json = {"name": name} if name else {}
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


def not_found(group: str, resource: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{qualified(group, resource)} "{name}" not found',
        _details(group, resource, name),
    )


def no_route() -> ApiError:
    """What kube-apiserver answers for a path it does not serve at all."""
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def already_exists(group: str, resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(group, resource)} "{name}" already exists',
        _details(group, resource, name),
    )


def conflict(group: str, resource: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(group, resource)} "{name}": {why}',
        _details(group, resource, name),
    )


STALE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def stale(group: str, resource: str, name: str) -> ApiError:
    """409 for an update whose ``metadata.resourceVersion`` is not the current one."""
    return conflict(group, resource, name, STALE)


def invalid(group: str, kind: str, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid: ``Kind.group "name" is invalid: field: detail`` (errors.NewInvalid)."""
    qualified_kind = f"{kind}.{group}" if group else kind
    texts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    listed = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details: Json = {"name": name} if name else {}
    if group:
        details["group"] = group
    details["kind"] = kind
    return ApiError(
        422, "Invalid", f'{qualified_kind} "{name}" is invalid: {listed}', details, causes
    )


def unprocessable(message: str) -> ApiError:
    """422 without field causes, e.g. a JSON patch ``test`` that failed."""
    return ApiError(422, "Invalid", message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def expired(message: str) -> ApiError:
    """410 Gone: a resourceVersion older than the kept history (reason Expired)."""
    return ApiError(410, "Expired", message)


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}",
        {"causes": [{"reason": "UnsupportedMediaType", "message": content_type}]}
        if content_type
        else {},
    )


def not_acceptable(accepted: list[str]) -> ApiError:
    return ApiError(
        406,
        "NotAcceptable",
        f"only the following media types are accepted: {', '.join(accepted)}",
    )


def forbidden(group: str, resource: str, name: str, why: str) -> ApiError:
    who = f'{qualified(group, resource)} "{name}"' if name else qualified(group, resource)
    return ApiError(403, "Forbidden", f"{who} is forbidden: {why}", _details(group, resource, name))


def timeout(message: str) -> ApiError:
    return ApiError(504, "Timeout", message)


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")


def success(group: str, resource: str, name: str, uid: str) -> Json:
    """The Status a delete answers with when the object is gone at once."""
    details = _details(group, resource, name)
    details["uid"] = uid
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }
