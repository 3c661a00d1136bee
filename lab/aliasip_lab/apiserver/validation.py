"""ObjectMeta validation every type gets (names, generateName, labels, annotations), and
the namespace rule of core v1 Events.

The ObjectMeta rules and messages are those of ``k8s.io/apimachinery/pkg/api/validation``
(``ValidateObjectMeta``) and ``pkg/util/validation``: a DNS-1123 subdomain for most names,
a DNS-1123 label for namespace names, qualified names for label keys, at most 63
characters of ``[A-Za-z0-9._-]`` for label values, 256 KiB of annotations in total.

The Event rule is the namespace part of kube-apiserver's ``legacyValidateEvent``
(``pkg/apis/core/validation/events.go``), applied on create and on update: see
``validate_event``.
"""

from __future__ import annotations

import re
from typing import Any

from aliasip_lab.apiserver.errors import Cause
from aliasip_lab.apiserver.selectors import valid_label_key, valid_label_value

Json = dict[str, Any]

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
_LABEL_RE = re.compile(rf"^{DNS1123_LABEL}$")
_SUBDOMAIN_RE = re.compile(rf"^{DNS1123_SUBDOMAIN}$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    f"regex used for validation is '{DNS1123_SUBDOMAIN}')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    f"regex used for validation is '{DNS1123_LABEL}')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
ANNOTATIONS_MAX_BYTES = 256 * 1024


def valid_name(name: str, dns_label: bool) -> bool:
    if dns_label:
        return len(name) <= 63 and bool(_LABEL_RE.match(name))
    return len(name) <= 253 and bool(_SUBDOMAIN_RE.match(name))


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def path_segment_problems(name: str) -> list[str]:
    """``path.IsValidPathSegmentName``: the rule for RBAC objects' names
    (``ValidateRBACName``), which may hold ``:`` (``system:discovery``)."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def validate_metadata(
    metadata: Json, dns_label_name: bool, path_segment_name: bool = False
) -> list[Cause]:
    """Causes for what is wrong with ``metadata`` (name already resolved).
    ``path_segment_name``: the name follows ``path_segment_problems`` (RBAC kinds)."""
    causes: list[Cause] = []
    name = metadata.get("name")
    if name and isinstance(name, str) and path_segment_name:
        causes += [
            Cause("FieldValueInvalid", f"Invalid value: {_q(name)}: {why}", "metadata.name")
            for why in path_segment_problems(name)
        ]
    elif not name:
        causes.append(
            Cause(
                "FieldValueRequired",
                "Required value: name or generateName is required",
                "metadata.name",
            )
        )
    elif not isinstance(name, str) or not valid_name(name, dns_label_name):
        causes.append(
            Cause(
                "FieldValueInvalid",
                f"Invalid value: {_q(str(name))}: {LABEL_MSG if dns_label_name else SUBDOMAIN_MSG}",
                "metadata.name",
            )
        )
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict):
        causes.append(Cause("FieldValueInvalid", "Invalid value: must be a map", "metadata.labels"))
        labels = {}
    for key, value in labels.items():
        if not valid_label_key(str(key)):
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: {_q(str(key))}: {QUALIFIED_MSG}",
                    "metadata.labels",
                )
            )
        if not isinstance(value, str) or not valid_label_value(value):
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: {_q(str(value))}: {LABEL_VALUE_MSG}",
                    "metadata.labels",
                )
            )
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict):
        causes.append(
            Cause("FieldValueInvalid", "Invalid value: must be a map", "metadata.annotations")
        )
        annotations = {}
    total = 0
    for key, value in annotations.items():
        if not valid_label_key(str(key).lower()):
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: {_q(str(key))}: {QUALIFIED_MSG}",
                    "metadata.annotations",
                )
            )
        if not isinstance(value, str):
            causes.append(
                Cause(
                    "FieldValueTypeInvalid",
                    "Invalid value: annotation values must be strings",
                    "metadata.annotations",
                )
            )
            continue
        total += len(str(key)) + len(value.encode())
    if total > ANNOTATIONS_MAX_BYTES:
        causes.append(
            Cause(
                "FieldValueTooLong",
                f"Too long: must have at most {ANNOTATIONS_MAX_BYTES} bytes",
                "metadata.annotations",
            )
        )
    finalizers = metadata.get("finalizers") or []
    if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
        causes.append(
            Cause(
                "FieldValueInvalid",
                "Invalid value: must be a list of strings",
                "metadata.finalizers",
            )
        )
    return causes


# The namespaces where kube-apiserver admits an Event about a cluster-scoped object
# (empty ``involvedObject.namespace``) that has ``eventTime`` set: kubelet posts its Node
# Events in "default" for this reason. Without ``eventTime`` (the oldest clients) only
# "default" is admitted (or no namespace at all, which a namespaced URL cannot give).
CLUSTER_SCOPED_EVENT_NAMESPACES = ("default", "kube-system")
EVENT_NAMESPACE_MISMATCH = "does not match event.namespace"


def validate_event(event: Json) -> list[Cause]:
    """kube-apiserver's Event namespace rule (``legacyValidateEvent``), word for word:

    - ``eventTime`` set: an empty ``involvedObject.namespace`` is admitted only in
      ``default`` and ``kube-system``; a non-empty one is not compared with the Event's
      namespace (kube-apiserver does not either);
    - ``eventTime`` unset: an empty ``involvedObject.namespace`` is admitted only in
      ``default``; a non-empty one must equal the Event's namespace.

    Either failure is ``involvedObject.namespace: Invalid value: "<involvedObject's
    namespace>": does not match event.namespace``. The other checks of
    ``legacyValidateEvent`` (reportingController, reportingInstance, action and reason
    required with ``eventTime``; length limits) are not applied.
    """
    namespace = str((event.get("metadata") or {}).get("namespace") or "")
    involved = event.get("involvedObject")
    involved_ns = str((involved if isinstance(involved, dict) else {}).get("namespace") or "")
    if event.get("eventTime"):
        admitted = bool(involved_ns) or namespace in CLUSTER_SCOPED_EVENT_NAMESPACES
    elif involved_ns:
        admitted = namespace == involved_ns
    else:
        admitted = namespace in ("", "default")
    if admitted:
        return []
    return [
        Cause(
            "FieldValueInvalid",
            f"Invalid value: {_q(involved_ns)}: {EVENT_NAMESPACE_MISMATCH}",
            "involvedObject.namespace",
        )
    ]
