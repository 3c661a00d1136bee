"""Which resources the server serves, and how each one behaves (its "strategy").

kube-apiserver gives every resource a strategy: is it namespaced, does it have a
``/status`` subresource, does it count ``metadata.generation``, may an update omit
``resourceVersion``, may a PUT create. Those per-type facts live here as plain data, so
that the request logic (``operations``) is one code path for every type. Built-in types
are listed below; a CustomResourceDefinition turns into one ``ResourceType`` per served
version the moment it is stored (``types_from_crd``), as kube-apiserver starts serving a
new CRD's resource.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aliasip_lab.apiserver.builtin_schemas import schema_for

Json = dict[str, Any]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")

# Strategic-merge-patch list semantics per field path, from the Go types' patchStrategy and
# patchMergeKey tags (k8s.io/api). ``None`` as merge key: a list of scalars merged as a set.
OBJECT_META_MERGE: dict[str, str | None] = {
    "metadata.finalizers": None,
    "metadata.ownerReferences": "uid",
}
NODE_MERGE: dict[str, str | None] = {
    **OBJECT_META_MERGE,
    "spec.podCIDRs": None,
    "status.conditions": "type",
    "status.addresses": "type",
    "status.volumesAttached": "name",
}


@dataclass(frozen=True)
class PrinterColumn:
    """A CRD ``additionalPrinterColumns`` entry."""

    name: str
    type: str
    json_path: str
    format: str = ""
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class ResourceType:
    """One resource at one served version, with the behaviour kube-apiserver gives it."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    status_subresource: bool = False
    # CRs and CRDs count generation; most built-ins (nodes, leases, events) do not.
    tracks_generation: bool = False
    # Deployments also count annotation changes (they are copied to the ReplicaSets).
    generation_counts_annotations: bool = False
    # Nodes may set status on create; CRs with a status subresource may not.
    create_keeps_status: bool = False
    # CR/CRD status writes keep all metadata of the stored object; nodes take metadata.
    status_write_keeps_metadata: bool = True
    allow_unconditional_update: bool = True
    allow_create_on_update: bool = False
    # Custom resources do not accept strategic merge patches (415).
    strategic_merge: bool = True
    merge_keys: dict[str, str | None] = field(default_factory=lambda: dict(OBJECT_META_MERGE))
    # A DELETE answers with the object (CRs, CRDs, namespaces) or a Status (the others).
    delete_returns_object: bool = False
    # Field selectors this type supports beyond metadata.name and metadata.namespace.
    field_labels: tuple[str, ...] = ()
    # CRD-only: the version's openAPIV3Schema, printer columns, selectable fields.
    schema: Json | None = None
    printer_columns: tuple[PrinterColumn, ...] | None = None
    selectable_fields: tuple[str, ...] = ()
    crd_name: str | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> tuple[str, str]:
        """The storage key: one set of objects whatever version a client uses."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def is_custom(self) -> bool:
        return self.crd_name is not None


EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)

CORE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        group="",
        version="v1",
        plural="namespaces",
        singular="namespace",
        kind="Namespace",
        namespaced=False,
        schema=schema_for("", "v1", "Namespace"),
        short_names=("ns",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        status_subresource=True,
        status_write_keeps_metadata=False,
        delete_returns_object=True,
        field_labels=("status.phase",),
    ),
    ResourceType(
        group="",
        version="v1",
        plural="nodes",
        singular="node",
        kind="Node",
        namespaced=False,
        short_names=("no",),
        status_subresource=True,
        create_keeps_status=True,
        status_write_keeps_metadata=False,
        merge_keys=NODE_MERGE,
        field_labels=("spec.unschedulable",),
    ),
    ResourceType(
        group="",
        version="v1",
        plural="events",
        singular="event",
        kind="Event",
        namespaced=True,
        short_names=("ev",),
        allow_create_on_update=True,
        field_labels=EVENT_FIELDS,
    ),
    ResourceType(
        group="coordination.k8s.io",
        version="v1",
        plural="leases",
        singular="lease",
        kind="Lease",
        namespaced=True,
        allow_create_on_update=True,
        allow_unconditional_update=False,
    ),
    ResourceType(
        group="apiextensions.k8s.io",
        version="v1",
        plural="customresourcedefinitions",
        singular="customresourcedefinition",
        kind="CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        status_subresource=True,
        tracks_generation=True,
        allow_unconditional_update=False,
        strategic_merge=False,
        delete_returns_object=True,
    ),
)


def merge_keys_of(schema: Json, path: str = "") -> dict[str, str | None]:
    """Strategic-merge list semantics from a schema's ``x-kubernetes-patch-*`` markers.

    The generated schemas carry the Go tags ``patchStrategy:"merge"`` and
    ``patchMergeKey`` as these extensions; a merged list without a key is a set.
    """
    keys: dict[str, str | None] = {}
    for name, sub in (schema.get("properties") or {}).items():
        child = f"{path}.{name}" if path else name
        if "merge" in str(sub.get("x-kubernetes-patch-strategy", "")).split(","):
            keys[child] = sub.get("x-kubernetes-patch-merge-key")
        items = sub.get("items") if isinstance(sub.get("items"), dict) else None
        keys.update(merge_keys_of(items if items is not None else sub, child))
    return keys


def builtin(
    group: str,
    plural: str,
    kind: str,
    namespaced: bool,
    version: str = "v1",
    **behaviour: Any,
) -> ResourceType:
    """A built-in type with its schema (``builtin_schemas``) and the merge keys it implies."""
    found = schema_for(group, version, kind)
    merge = {**OBJECT_META_MERGE, **(merge_keys_of(found) if found else {})}
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        schema=found,
        merge_keys=merge,
        **behaviour,
    )


RBAC = "rbac.authorization.k8s.io"
POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
ADMISSION = "admissionregistration.k8s.io"
# What ``kubectl apply -k manifests/`` needs, and what the install creates next to it
# (the heartbeat Secret), with kube-apiserver's strategies: Deployments, DaemonSets and
# PodDisruptionBudgets count generation and have /status; Pods have /status but (1.32) no
# generation; ValidatingAdmissionPolicies count generation and have /status (stored only:
# no policy is evaluated); their bindings count generation.
WORKLOAD_TYPES: tuple[ResourceType, ...] = (
    builtin("", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
    builtin("", "secrets", "Secret", True, field_labels=("type",)),
    builtin("", "configmaps", "ConfigMap", True, short_names=("cm",)),
    builtin(
        "",
        "pods",
        "Pod",
        True,
        short_names=("po",),
        categories=("all",),
        status_subresource=True,
        status_write_keeps_metadata=False,
        field_labels=POD_FIELDS,
    ),
    builtin(RBAC, "roles", "Role", True),
    builtin(RBAC, "clusterroles", "ClusterRole", False),
    builtin(RBAC, "rolebindings", "RoleBinding", True),
    builtin(RBAC, "clusterrolebindings", "ClusterRoleBinding", False),
    builtin(
        "apps",
        "deployments",
        "Deployment",
        True,
        short_names=("deploy",),
        categories=("all",),
        status_subresource=True,
        tracks_generation=True,
        generation_counts_annotations=True,
    ),
    builtin(
        "apps",
        "daemonsets",
        "DaemonSet",
        True,
        short_names=("ds",),
        categories=("all",),
        status_subresource=True,
        tracks_generation=True,
    ),
    builtin(
        "policy",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        True,
        short_names=("pdb",),
        status_subresource=True,
        tracks_generation=True,
    ),
    builtin(
        ADMISSION,
        "validatingadmissionpolicies",
        "ValidatingAdmissionPolicy",
        False,
        categories=("api-extensions",),
        status_subresource=True,
        tracks_generation=True,
    ),
    builtin(
        ADMISSION,
        "validatingadmissionpolicybindings",
        "ValidatingAdmissionPolicyBinding",
        False,
        categories=("api-extensions",),
        tracks_generation=True,
    ),
)

BUILTIN_TYPES: tuple[ResourceType, ...] = (*CORE_TYPES, *WORKLOAD_TYPES)

CRD_GROUP_RESOURCE = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACES = ("", "namespaces")


def types_from_crd(crd: Json) -> list[ResourceType]:
    """The resource types a stored CRD makes the server serve: one per served version."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    kind = str(names.get("kind", ""))
    types = []
    for version in spec.get("versions", []):
        if not version.get("served", False):
            continue
        subresources = version.get("subresources") or {}
        columns = version.get("additionalPrinterColumns")
        types.append(
            ResourceType(
                group=str(spec.get("group", "")),
                version=str(version.get("name", "")),
                plural=str(names.get("plural", "")),
                singular=str(names.get("singular") or kind.lower()),
                kind=kind,
                namespaced=spec.get("scope") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in subresources,
                tracks_generation=True,
                allow_unconditional_update=False,
                strategic_merge=False,
                delete_returns_object=True,
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                printer_columns=_columns(columns),
                selectable_fields=tuple(
                    str(f.get("jsonPath", "")).lstrip(".")
                    for f in version.get("selectableFields") or ()
                ),
                crd_name=str(crd.get("metadata", {}).get("name", "")),
            )
        )
    return types


def _columns(columns: Iterable[Json] | None) -> tuple[PrinterColumn, ...]:
    """Printer columns; kube-apiserver serves just Age when a CRD declares none."""
    if not columns:
        return (
            PrinterColumn(
                name="Age",
                type="date",
                json_path=".metadata.creationTimestamp",
                description="CreationTimestamp is a timestamp representing the server time "
                "when this object was created.",
            ),
        )
    return tuple(
        PrinterColumn(
            name=str(c.get("name", "")),
            type=str(c.get("type", "string")),
            json_path=str(c.get("jsonPath", "")),
            format=str(c.get("format", "")),
            description=str(c.get("description", "")),
            priority=int(c.get("priority", 0)),
        )
        for c in columns
    )


class Registry:
    """Resource types by (group, version, plural), plus lookups discovery needs."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN_TYPES) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._by_crd: dict[str, list[ResourceType]] = {}
        for rt in types:
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def group_versions(self) -> dict[str, list[str]]:
        """Served versions per group, in the order kube-apiserver prefers them."""
        out: dict[str, list[str]] = {}
        for rt in self._types.values():
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return {g: sorted(v, key=version_priority) for g, v in out.items()}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._types.values() if (rt.group, rt.version) == (group, version)]

    def storage_served(self, group_resource: tuple[str, str]) -> bool:
        return any(rt.group_resource == group_resource for rt in self._types.values())

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        """Serve exactly ``types`` for this CRD (after a create or an update)."""
        self.drop_crd(crd_name)
        for rt in types:
            self._types[(rt.group, rt.version, rt.plural)] = rt
        self._by_crd[crd_name] = types

    def drop_crd(self, crd_name: str) -> list[ResourceType]:
        dropped = self._by_crd.pop(crd_name, [])
        for rt in dropped:
            self._types.pop((rt.group, rt.version, rt.plural), None)
        return dropped


def version_priority(version: str) -> tuple[int, int, int, str]:
    """kube-apiserver's version order: GA before beta before alpha, higher numbers first.

    ``v1`` < ``v1beta1`` < ``v1alpha1`` < anything else (alphabetical) in sort order, as in
    ``k8s.io/apimachinery/pkg/version.CompareKubeAwareVersionStrings``.
    """
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0, version)
    major = int(match.group(1))
    stage = {"": 0, None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    minor = int(match.group(3) or 0)
    return (stage, -major, -minor, version)
