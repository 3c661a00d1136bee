"""What a create, read, update, patch or delete does, apart from HTTP.

One code path for every resource type; per-type behaviour comes from its ``ResourceType``
(the "strategy" in kube-apiserver terms). The rules pinned here, each as
kube-apiserver implements it:

- **System metadata.** ``uid`` and ``creationTimestamp`` are set on create and kept
  forever; ``resourceVersion`` is the store's revision of the last write; ``generation``
  (CRs, CRDs) starts at 1 and grows when anything but ``metadata`` (and ``status``, when
  there is a status subresource) changes.
- **Optimistic concurrency.** An update or patch that carries a ``resourceVersion`` other
  than the stored one gets 409 Conflict; so does a delete whose preconditions
  (``uid``/``resourceVersion``) do not hold. CRs and CRDs must carry one on PUT (422).
- **Status subresource.** Writes to the main resource keep the stored ``status``; writes
  to ``/status`` change only ``status`` (CRs, CRDs) or everything but ``spec`` (Nodes).
  A CR created with a status subresource starts without status.
- **No-op writes** (nothing but resourceVersion would change) store nothing, send no
  watch event and keep the resourceVersion, as the etcd3 store does.
- **Finalizers.** Deleting an object with finalizers sets ``deletionTimestamp`` (and
  ``deletionGracePeriodSeconds: 0``) and keeps it; the write that removes the last
  finalizer deletes it. No finalizer may be added once deletion started.
- **Custom resources** are pruned, defaulted and validated against their CRD's schema;
  built-in kinds with a schema (``builtin_schemas``) drop or reject unknown fields as the
  Go decoder does (``fieldValidation``). Secrets fold ``stringData`` into ``data``.
- **Field ownership.** Every write leaves ``metadata.managedFields`` as kube-apiserver's
  field manager does (``serverside``); ``PATCH`` with ``application/apply-patch+yaml`` is
  server-side apply (creating the object when it does not exist).
- **Generation** of Deployments also grows with their annotations (kube-apiserver's
  Deployment strategy; the annotations are copied to ReplicaSets).
- **Events**: kube-apiserver's namespace rule (``validation.validate_event``): an Event
  about a cluster-scoped object (no ``involvedObject.namespace``) is admitted only in
  ``default``, or also ``kube-system`` when it has ``eventTime``; without ``eventTime``
  one about a namespaced object must live in that object's namespace.
- **CRDs**: storing one serves its resource at once (``Established``); deleting one
  deletes its objects and stops serving it.
- **Namespaces**: namespaced objects need an existing, non-terminating namespace;
  deleting a namespace deletes its objects, then the namespace.
"""

from __future__ import annotations

import base64
import copy
import datetime
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aliasip_lab.apiserver import errors, managedfields, schema, serverside, validation
from aliasip_lab.apiserver.errors import Cause
from aliasip_lab.apiserver.patch import APPLY, apply_patch
from aliasip_lab.apiserver.registry import (
    CRD_GROUP_RESOURCE,
    NAMESPACES,
    Registry,
    ResourceType,
    types_from_crd,
    version_priority,
)
from aliasip_lab.apiserver.selectors import FieldSelector, LabelSelector, object_fields
from aliasip_lab.apiserver.store import Expired, Store, dumps

Json = dict[str, Any]
Clock = Callable[[], datetime.datetime]

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apiserver names.SimpleNameGenerator
EVENTS = ("", "events")
SECRETS = ("", "secrets")
EVENT_TTL_S = 3600.0  # kube-apiserver --event-ttl default
SYSTEM_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
DROPPED_METADATA = ("selfLink",)
NON_APPLY_FORCE = "Forbidden: may not be specified for non-apply patch"


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 with second precision, as ``metav1.Time`` serialises."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Outcome:
    """The object a write produced, warnings for the client, and the HTTP code."""

    obj: Json
    code: int = 200
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    field_validation: str = "Warn"  # Strict, Warn, Ignore (kube-apiserver's default: Warn)
    field_manager: str = ""  # the fieldManager query parameter
    user_agent: str = ""  # names the manager when fieldManager is not given
    force: bool = False  # server-side apply: take fields other managers own

    @property
    def manager(self) -> str:
        return self.field_manager or managedfields.user_agent_manager(self.user_agent)


class Api:
    """The server's state and every operation on it (single event-loop thread)."""

    def __init__(
        self,
        store: Store | None = None,
        registry: Registry | None = None,
        clock: Clock = utc_now,
        event_ttl_s: float = EVENT_TTL_S,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.store = store or Store()
        self.registry = registry or Registry()
        self.clock = clock
        self.event_ttl_s = event_ttl_s
        self._monotonic = monotonic or time.monotonic
        self._event_expiry: deque[tuple[float, str, str]] = deque()
        self._event_deadline: dict[tuple[str, str], float] = {}
        for rt in self.registry.all():
            self.store.ensure(rt.group_resource)
        # A store restored from saved state brings its CRDs and events back with it.
        crds = self._type(CRD_GROUP_RESOURCE)
        for _, crd in list(self.store.items(crds.group_resource)):
            self._after_write(crds, crd)
        events = self._type(EVENTS)
        for _, event in list(self.store.items(events.group_resource)):
            self._track_event(event)
        namespaces = self._type(NAMESPACES)
        for name in INITIAL_NAMESPACES:
            if self.store.get(NAMESPACES, ("", name)) is None:
                self.create(
                    namespaces,
                    "",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                )

    # ------------------------------------------------------------------ lookups

    def _type(self, gr: tuple[str, str]) -> ResourceType:
        for rt in self.registry.all():
            if rt.group_resource == gr:
                return rt
        raise errors.no_route()

    def resource(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.registry.lookup(group, version, plural)
        if rt is None:
            raise errors.no_route()
        return rt

    def view(self, rt: ResourceType, obj: Json) -> Json:
        """The stored object as a client of ``rt.version`` sees it (conversion "None")."""
        if obj.get("apiVersion") == rt.api_version:
            return obj
        return {**obj, "apiVersion": rt.api_version}

    # ------------------------------------------------------------------ reads

    def get(self, rt: ResourceType, namespace: str, name: str) -> Json:
        obj = self.store.get(rt.group_resource, (namespace, name))
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return self.view(rt, obj)

    def matches(
        self,
        rt: ResourceType,
        obj: Json,
        namespace: str | None,
        labels: LabelSelector | None,
        fields: FieldSelector | None,
    ) -> bool:
        metadata = obj.get("metadata") or {}
        if namespace is not None and metadata.get("namespace", "") != namespace:
            return False
        if labels is not None and not labels.empty and not labels.matches(metadata.get("labels")):
            return False
        return fields is None or fields.empty or fields.matches(object_fields(rt, obj))

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> tuple[list[Json], int]:
        """Matching objects and the list's resourceVersion (the newest revision).

        ``resourceVersion`` unset or "0" or "X" with the default ``NotOlderThan`` match is
        served from the current state (which is never older than anything handed out);
        an ``X`` newer than the current revision cannot have been handed out: 504, as
        kube-apiserver answers after waiting for it; ``Exact`` works only for the current
        revision (older states are not kept: 410).
        """
        current = self.store.rv
        if resource_version not in (None, "", "0"):
            requested = parse_rv(resource_version)
            if requested > current:
                raise errors.timeout(f"Too large resource version: {requested}, current: {current}")
            if resource_version_match == "Exact" and requested != current:
                raise errors.expired(f"too old resource version: {requested} ({current})")
        gr = rt.group_resource
        name = fields.name() if fields is not None else None
        if name is not None and namespace is not None:
            found = self.store.get(gr, (namespace, name))
            candidates: Iterator[Json] = iter([found] if found is not None else [])
        elif name is not None:
            candidates = (o for k, o in self.store.items(gr) if k[1] == name)
        else:
            candidates = (o for _, o in self.store.items(gr, namespace))
        items = [
            self.view(rt, o) for o in candidates if self.matches(rt, o, namespace, labels, fields)
        ]
        return items, current

    def serialized(self, rt: ResourceType, obj: Json) -> bytes:
        """``obj`` as JSON for ``rt``'s clients; the store's cached bytes when they fit."""
        if obj.get("apiVersion") == rt.api_version:
            meta = obj.get("metadata") or {}
            raw = self.store.raw(
                rt.group_resource, (meta.get("namespace", ""), meta.get("name", ""))
            )
            if raw is not None:
                return raw
        return dumps(self.view(rt, obj))

    def changes_since(self, rt: ResourceType, resource_version: int) -> list[Any]:
        """Stored changes after ``resource_version`` (raises ApiError 410 when expired)."""
        try:
            return self.store.since(rt.group_resource, resource_version)
        except Expired as exc:
            raise errors.expired(str(exc)) from None

    # ------------------------------------------------------------------ create

    def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        options: WriteOptions = WriteOptions(),
        managed: managedfields.Managed | None = None,
    ) -> Outcome:
        """POST (or a PUT or apply that creates): ``managed`` is an applier's ownership."""
        obj = self._decode(rt, body)
        metadata = obj["metadata"]
        _bind_namespace(rt, metadata, namespace)
        if rt.namespaced:
            self._require_namespace(rt, namespace, str(metadata.get("name", "")))
        if metadata.get("resourceVersion"):
            raise errors.internal("resourceVersion should not be set on objects to be created")
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = self._generate_name(rt, namespace, str(metadata["generateName"]))
        for field_name in (*SYSTEM_METADATA, *DROPPED_METADATA, "generation"):
            metadata.pop(field_name, None)
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = timestamp(self.clock())
        if rt.tracks_generation:
            metadata["generation"] = 1
        if rt.status_subresource and not rt.create_keeps_status:
            obj.pop("status", None)
        warnings = self._prepare_create(rt, obj)
        obj, more = self._admit(rt, obj, options)
        warnings += more
        serverside.record(rt, None, obj, options, "", self.now_text(), managed)
        key = (metadata.get("namespace", ""), str(metadata.get("name", "")))
        if self.store.get(rt.group_resource, key) is not None:
            raise errors.already_exists(rt.group, rt.plural, key[1])
        if options.dry_run:
            return Outcome(self.view(rt, obj), 201, warnings)
        stored = self.store.create(rt.group_resource, key, obj)
        self._after_write(rt, stored)
        return Outcome(self.view(rt, stored), 201, warnings)

    def _generate_name(self, rt: ResourceType, namespace: str, prefix: str) -> str:
        """generateName + 5 random characters; a few tries against existing names."""
        base = prefix[: 63 - 5]
        for _ in range(8):
            name = base + "".join(secrets.choice(GENERATE_ALPHABET) for _ in range(5))
            if (
                self.store.get(rt.group_resource, (namespace if rt.namespaced else "", name))
                is None
            ):
                return name
        return name

    def _prepare_create(self, rt: ResourceType, obj: Json) -> list[str]:
        if rt.group_resource == NAMESPACES:
            obj["spec"] = {"finalizers": ["kubernetes"], **(obj.get("spec") or {})}
            obj["status"] = {"phase": "Active"}
            _label_namespace(obj)
        elif rt.group_resource == CRD_GROUP_RESOURCE:
            self._prepare_crd(obj, None)
        return []

    def _require_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns = self.store.get(NAMESPACES, ("", namespace))
        if ns is None:
            raise errors.not_found("", "namespaces", namespace)
        if (ns.get("status") or {}).get("phase") == "Terminating":
            raise errors.forbidden(
                rt.group,
                rt.plural,
                name,
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
            )

    # ------------------------------------------------------------------ update and patch

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        subresource: str = "",
        options: WriteOptions = WriteOptions(),
    ) -> Outcome:
        """PUT: replace the object (or its status); 409 on a stale resourceVersion."""
        new = self._decode(rt, body)
        self._check_identity(rt, namespace, name, new)
        old = self.store.get(rt.group_resource, (namespace, name))
        if old is None:
            if rt.allow_create_on_update and not subresource:
                return self.create(rt, namespace, body, options)
            raise errors.not_found(rt.group, rt.plural, name)
        rv = str(new["metadata"].get("resourceVersion") or "")
        if not rv and not rt.allow_unconditional_update:
            raise errors.invalid(
                rt.group,
                rt.kind,
                name,
                [
                    Cause(
                        "FieldValueInvalid",
                        "Invalid value: 0: must be specified for an update",
                        "metadata.resourceVersion",
                    )
                ],
            )
        return self._write(rt, old, new, rv, subresource, options)

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: bytes,
        subresource: str = "",
        options: WriteOptions = WriteOptions(),
    ) -> Outcome:
        """PATCH: apply the patch to the stored object, then write it like an update.

        A resourceVersion the patch sets is a precondition (409 if stale); without one the
        patch applies to whatever is stored.
        """
        old = self.store.get(rt.group_resource, (namespace, name))
        if content_type.split(";", 1)[0].strip().lower() == APPLY:
            return self._apply(rt, namespace, name, old, body, subresource, options)
        if options.force:
            raise errors.invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                [Cause("FieldValueForbidden", NON_APPLY_FORCE, "force")],
            )
        if old is None:
            raise errors.not_found(rt.group, rt.plural, name)
        patched = apply_patch(
            content_type,
            self.view(rt, old),
            body,
            strategic=rt.strategic_merge,
            merge_keys=rt.merge_keys,
        )
        new = self._decode(rt, patched)
        self._check_identity(rt, namespace, name, new)
        rv = str(new["metadata"].get("resourceVersion") or "")
        return self._write(rt, old, new, rv, subresource, options)

    def now_text(self) -> str:
        return timestamp(self.clock())

    def _apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        old: Json | None,
        body: bytes,
        subresource: str,
        options: WriteOptions,
    ) -> Outcome:
        """Server-side apply; an apply to an object that does not exist creates it."""
        if old is None and subresource:
            raise errors.not_found(rt.group, rt.plural, name)
        merged, managed = serverside.apply_request(
            rt, namespace, name, old, body, subresource, options, self.now_text()
        )
        if old is None:
            return self.create(rt, namespace, merged, options, managed)
        new = self._decode(rt, merged)
        self._check_identity(rt, namespace, name, new)
        rv = str(new["metadata"].get("resourceVersion") or "")
        return self._write(rt, old, new, rv, subresource, options, managed)

    def _check_identity(self, rt: ResourceType, namespace: str, name: str, new: Json) -> None:
        metadata = new["metadata"]
        body_name = metadata.get("name") or ""
        if body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        _bind_namespace(rt, metadata, namespace)

    def _write(
        self,
        rt: ResourceType,
        old: Json,
        new: Json,
        rv: str,
        subresource: str,
        options: WriteOptions,
        managed: managedfields.Managed | None = None,
    ) -> Outcome:
        old_meta = old["metadata"]
        name = str(old_meta["name"])
        if rv and rv != old_meta.get("resourceVersion"):
            raise errors.stale(rt.group, rt.plural, name)
        new_uid = new["metadata"].get("uid")
        if new_uid and new_uid != old_meta.get("uid"):
            raise errors.conflict(
                rt.group,
                rt.plural,
                name,
                f"Precondition failed: UID in precondition: {new_uid}, UID in object meta: "
                f"{old_meta.get('uid')}",
            )
        if subresource == "status":
            new = self._status_write(rt, old, new)
        elif rt.status_subresource:
            new = {k: v for k, v in new.items() if k != "status"}
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        metadata = new["metadata"]
        for field_name in SYSTEM_METADATA:
            if field_name in old_meta:
                metadata[field_name] = copy.deepcopy(old_meta[field_name])
            else:
                metadata.pop(field_name, None)
        for field_name in DROPPED_METADATA:
            metadata.pop(field_name, None)
        if rt.tracks_generation:
            metadata["generation"] = old_meta.get("generation", 1)
            if subresource != "status" and (
                _content(rt, new) != _content(rt, old)
                or (
                    rt.generation_counts_annotations
                    and (metadata.get("annotations") or {}) != (old_meta.get("annotations") or {})
                )
            ):
                metadata["generation"] = int(old_meta.get("generation", 1)) + 1
        else:
            metadata.pop("generation", None)
        if old_meta.get("deletionTimestamp"):
            added = [
                f
                for f in metadata.get("finalizers") or []
                if f not in (old_meta.get("finalizers") or [])
            ]
            if added:
                listed = ", ".join(f'"{f}"' for f in added)
                raise errors.invalid(
                    rt.group,
                    rt.kind,
                    name,
                    [
                        Cause(
                            "FieldValueForbidden",
                            "Forbidden: no new finalizers can be added if the object is being "
                            f"deleted, found new finalizers []string{{{listed}}}",
                            "metadata.finalizers",
                        )
                    ],
                )
        if rt.group_resource == CRD_GROUP_RESOURCE and subresource != "status":
            self._prepare_crd(new, old)
        if rt.group_resource == NAMESPACES:
            _label_namespace(new)
        new, warnings = self._admit(rt, new, options)
        metadata = new["metadata"]
        metadata["resourceVersion"] = old_meta.get("resourceVersion")
        serverside.record(rt, old, new, options, subresource, self.now_text(), managed)
        if _same(new, old):
            return Outcome(self.view(rt, old), 200, warnings)
        key = (str(old_meta.get("namespace", "")), name)
        if old_meta.get("deletionTimestamp") and not metadata.get("finalizers"):
            # The write that removes the last finalizer deletes the object
            # (genericregistry.Store.Update: errEmptiedFinalizers -> deleteWithoutFinalizers).
            if options.dry_run:
                return Outcome(self.view(rt, new), 200, warnings)
            self._remove(rt, key)
            return Outcome(self.view(rt, new), 200, warnings)
        if options.dry_run:
            return Outcome(self.view(rt, new), 200, warnings)
        stored = self.store.update(rt.group_resource, key, new)
        self._after_write(rt, stored)
        return Outcome(self.view(rt, stored), 200, warnings)

    def _status_write(self, rt: ResourceType, old: Json, new: Json) -> Json:
        if rt.status_write_keeps_metadata:
            # Only status changes (CR and CRD status strategies copy the old object first).
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            result["metadata"]["resourceVersion"] = new["metadata"].get("resourceVersion")
            return result
        # Nodes, namespaces: everything but spec (the node status strategy resets spec).
        result = {k: v for k, v in new.items() if k != "spec"}
        if "spec" in old:
            result["spec"] = copy.deepcopy(old["spec"])
        return result

    # ------------------------------------------------------------------ delete

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        delete_options: Json | None = None,
        options: WriteOptions = WriteOptions(),
    ) -> Outcome:
        """DELETE with optional preconditions; finalizers defer the removal."""
        key = (namespace, name)
        old = self.store.get(rt.group_resource, key)
        if old is None:
            raise errors.not_found(rt.group, rt.plural, name)
        preconditions = (delete_options or {}).get("preconditions") or {}
        meta = old["metadata"]
        uid = preconditions.get("uid")
        if uid and uid != meta.get("uid"):
            raise errors.conflict(
                rt.group,
                rt.plural,
                name,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                f"{meta.get('uid')}",
            )
        rv = preconditions.get("resourceVersion")
        if rv and rv != meta.get("resourceVersion"):
            raise errors.conflict(
                rt.group,
                rt.plural,
                name,
                f"Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion "
                f"in object meta: {meta.get('resourceVersion')}",
            )
        if options.dry_run:
            return Outcome(self.view(rt, old))
        if rt.group_resource == NAMESPACES:
            return self._delete_namespace(rt, old)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return Outcome(self.view(rt, old))
            marked = copy.deepcopy(old)
            marked["metadata"]["deletionTimestamp"] = timestamp(self.clock())
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            stored = self.store.update(rt.group_resource, key, marked)
            return Outcome(self.view(rt, stored))
        final = self._remove(rt, key)
        if rt.delete_returns_object:
            return Outcome(self.view(rt, final))
        return Outcome(errors.success(rt.group, rt.plural, name, str(meta.get("uid", ""))))

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector | None,
        fields: FieldSelector | None,
        delete_options: Json | None = None,
        options: WriteOptions = WriteOptions(),
    ) -> list[Json]:
        items, _ = self.list_objects(rt, namespace, labels, fields)
        for item in items:
            meta = item["metadata"]
            self.delete(rt, meta.get("namespace", ""), meta["name"], delete_options, options)
        return items

    def _remove(self, rt: ResourceType, key: tuple[str, str]) -> Json:
        """Remove from the store, with what removal implies (CRD: its resource goes)."""
        if rt.group_resource == CRD_GROUP_RESOURCE:
            crd = self.store.get(rt.group_resource, key)
            if crd is not None:
                self._retire_crd(crd)
        final = self.store.delete(rt.group_resource, key)
        namespace = key[0]
        if namespace and self.store.namespace_counts.get(namespace, 0) == 0:
            ns = self.store.get(NAMESPACES, ("", namespace))
            if ns is not None and (ns.get("status") or {}).get("phase") == "Terminating":
                self.store.delete(NAMESPACES, ("", namespace))
        return final

    def _delete_namespace(self, rt: ResourceType, old: Json) -> Outcome:
        """Terminating, then its objects go, then (once it is empty) the namespace."""
        name = str(old["metadata"]["name"])
        if (old.get("status") or {}).get("phase") != "Terminating":
            marked = copy.deepcopy(old)
            marked["metadata"]["deletionTimestamp"] = timestamp(self.clock())
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            marked["status"] = {"phase": "Terminating"}
            old = self.store.update(NAMESPACES, ("", name), marked)
        answer = self.view(rt, old)
        for other in self._namespaced_types():
            for key, _ in list(self.store.items(other.group_resource, name)):
                if self.store.get(other.group_resource, key) is not None:
                    self.delete(other, key[0], key[1])
        if self.store.namespace_counts.get(name, 0) == 0 and self.store.get(NAMESPACES, ("", name)):
            self.store.delete(NAMESPACES, ("", name))
        return Outcome(answer)

    def _namespaced_types(self) -> list[ResourceType]:
        seen: dict[tuple[str, str], ResourceType] = {}
        for rt in self.registry.all():
            if rt.namespaced and rt.group_resource not in seen:
                seen[rt.group_resource] = rt
        return list(seen.values())

    # ------------------------------------------------------------------ admission

    def _decode(self, rt: ResourceType, body: Any) -> Json:
        """The request object, checked for kind and apiVersion, as a private copy."""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request is not a JSON object")
        obj = copy.deepcopy(body)
        if not rt.is_custom:
            # Built-in types decode with the URL's group-version-kind as the default
            # (json.Serializer + gvkWithDefaults); custom resources decode as
            # unstructured, which needs both in the body.
            obj.setdefault("apiVersion", rt.api_version)
            obj.setdefault("kind", rt.kind)
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        if not kind:
            raise errors.bad_request(f"Object 'Kind' is missing in '{_short(body)}'")
        if not api_version:
            raise errors.bad_request(f"Object 'apiVersion' is missing in '{_short(body)}'")
        if kind != rt.kind or api_version != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
                if kind == rt.kind
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        metadata = obj.get("metadata")
        if metadata is None:
            obj["metadata"] = {}
        elif not isinstance(metadata, dict):
            raise errors.bad_request("metadata must be an object")
        if rt.is_custom:
            obj["apiVersion"] = self._storage_api_version(rt)
        return obj

    def _storage_api_version(self, rt: ResourceType) -> str:
        crd = self.store.get(CRD_GROUP_RESOURCE, ("", rt.crd_name or ""))
        for version in (crd or {}).get("spec", {}).get("versions", []):
            if version.get("storage"):
                return f"{rt.group}/{version.get('name')}"
        return rt.api_version

    def _admit(self, rt: ResourceType, obj: Json, options: WriteOptions) -> tuple[Json, list[str]]:
        """Prune, default and validate; report unknown fields per ``fieldValidation``."""
        warnings: list[str] = []
        if rt.schema is not None:
            # Built-in kinds: the Go decoder drops (Warn) or rejects (Strict) fields its
            # type lacks, as pruning does for custom resources; the same message.
            obj, unknown = schema.prune(obj, rt.schema)
            obj = schema.apply_defaults(obj, rt.schema)
            if rt.group_resource == SECRETS:
                _secret_defaults(obj)
            if unknown and options.field_validation == "Strict":
                listed = ", ".join(f'unknown field "{u}"' for u in unknown)
                raise errors.bad_request(
                    f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                    f"strict decoding error: {listed}"
                )
            if options.field_validation == "Warn":
                warnings += [f'unknown field "{u}"' for u in unknown]
        metadata = obj["metadata"]
        causes = validation.validate_metadata(
            metadata,
            dns_label_name=rt.group_resource == NAMESPACES,
            path_segment_name=rt.group == "rbac.authorization.k8s.io",
        )
        if rt.is_custom:
            causes += schema.validate(obj, rt.schema)
        if rt.group_resource == CRD_GROUP_RESOURCE:
            causes += validate_crd(obj)
        if rt.group_resource == EVENTS:
            causes += validation.validate_event(obj)
        if causes:
            raise errors.invalid(rt.group, rt.kind, str(metadata.get("name", "")), causes)
        return obj, warnings

    # ------------------------------------------------------------------ after a write

    def _after_write(self, rt: ResourceType, stored: Json) -> None:
        if rt.group_resource == CRD_GROUP_RESOURCE:
            name = str(stored["metadata"]["name"])
            types = types_from_crd(stored)
            self.registry.set_crd(name, types)
            for served in types:
                self.store.ensure(served.group_resource)
        elif rt.group_resource == EVENTS:
            self._track_event(stored)

    def _track_event(self, event: Json) -> None:
        """Events expire ``event_ttl_s`` after their last write (kube-apiserver --event-ttl).

        One queue entry per event write, popped once due: bounded by the events written
        within one TTL, like the etcd leases kube-apiserver attaches to events.
        """
        now = self._monotonic()
        meta = event["metadata"]
        key = (str(meta.get("namespace", "")), str(meta["name"]))
        self._event_deadline[key] = now + self.event_ttl_s
        self._event_expiry.append((now + self.event_ttl_s, *key))
        self.expire_events()

    def expire_events(self) -> None:
        now = self._monotonic()
        events = self._type(EVENTS)
        while self._event_expiry and self._event_expiry[0][0] <= now:
            _, namespace, name = self._event_expiry.popleft()
            deadline = self._event_deadline.get((namespace, name))
            if deadline is None or deadline > now:
                continue  # written again since: a later entry covers it
            del self._event_deadline[(namespace, name)]
            if self.store.get(events.group_resource, (namespace, name)) is not None:
                self._remove(events, (namespace, name))

    def sizes(self) -> dict[str, int]:
        """The store's containers plus the event-expiry queue (see ``Store.sizes``)."""
        return {
            **self.store.sizes(),
            "event_expiry": len(self._event_expiry),
            "event_deadlines": len(self._event_deadline),
        }

    # ------------------------------------------------------------------ CRDs

    def _prepare_crd(self, crd: Json, old: Json | None) -> None:
        """Defaults and status kube-apiserver gives a CRD (it is Established at once)."""
        spec = crd.setdefault("spec", {})
        names = spec.setdefault("names", {})
        kind = str(names.get("kind", ""))
        names.setdefault("singular", kind.lower())
        names.setdefault("listKind", f"{kind}List")
        spec.setdefault("conversion", {"strategy": "None"})
        versions = spec.get("versions") or []
        storage = [str(v.get("name")) for v in versions if isinstance(v, dict) and v.get("storage")]
        now = timestamp(self.clock())
        previous = (old or {}).get("status") or {}
        stored_versions = list(previous.get("storedVersions") or [])
        for version in storage:
            if version not in stored_versions:
                stored_versions.append(version)
        conditions = previous.get("conditions") or [
            {
                "type": "NamesAccepted",
                "status": "True",
                "lastTransitionTime": now,
                "reason": "NoConflicts",
                "message": "no conflicts found",
            },
            {
                "type": "Established",
                "status": "True",
                "lastTransitionTime": now,
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ]
        crd["status"] = {
            "conditions": conditions,
            "acceptedNames": copy.deepcopy(names),
            "storedVersions": stored_versions,
        }

    def _retire_crd(self, crd: Json) -> None:
        """Delete every object of the CRD, then stop serving its resource."""
        name = str(crd["metadata"]["name"])
        types = self.registry.drop_crd(name)
        if not types:
            return
        gr = types[0].group_resource
        for key, _ in list(self.store.items(gr)):
            self.store.delete(gr, key)
        self.store.drop(gr)


def _label_namespace(namespace: Json) -> None:
    """kube-apiserver (1.21+) keeps ``kubernetes.io/metadata.name`` on every namespace."""
    metadata = namespace["metadata"]
    labels = metadata.get("labels")
    metadata["labels"] = {
        **(labels if isinstance(labels, dict) else {}),
        "kubernetes.io/metadata.name": metadata.get("name", ""),
    }


def _secret_defaults(secret: Json) -> None:
    """kube-apiserver's Secret handling: ``stringData`` is write-only, merged into
    ``data`` (base64, its keys winning) on every write; ``type`` defaults to ``Opaque``."""
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        current = secret.get("data")
        data: Json = current if isinstance(current, dict) else {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        secret["data"] = data
    if not secret.get("type"):
        secret["type"] = "Opaque"


def _content(rt: ResourceType, obj: Json) -> Json:
    """What generation tracks: all but metadata (and status, with a status subresource)."""
    skip = ("metadata", "status") if rt.status_subresource else ("metadata",)
    return {k: v for k, v in obj.items() if k not in skip}


def _same(new: Json, old: Json) -> bool:
    return new == old and _types_equal(new, old)


def _types_equal(a: Any, b: Any) -> bool:
    """``==`` plus "true is not 1" (Python's bool is an int)."""
    if isinstance(a, dict):
        return all(_types_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return all(_types_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b)


def _short(body: Any) -> str:
    import json

    text = json.dumps(body, separators=(",", ":"))
    return text if len(text) < 200 else text[:200] + "..."


def parse_rv(value: str) -> int:
    try:
        rv = int(value)
    except ValueError:
        raise errors.bad_request(f"invalid resource version: {value!r}") from None
    if rv < 0:
        raise errors.bad_request(f"invalid resource version: {value!r}")
    return rv


def validate_crd(crd: Json) -> list[Cause]:
    """The CRD checks this project can trip over (a subset of ValidateCustomResourceDefinition)."""
    causes: list[Cause] = []
    spec = crd.get("spec") or {}
    group = str(spec.get("group") or "")
    names = spec.get("names") or {}
    plural = str(names.get("plural") or "")
    if not group:
        causes.append(Cause("FieldValueRequired", "Required value", "spec.group"))
    elif "." not in group:
        causes.append(
            Cause(
                "FieldValueInvalid",
                f'Invalid value: "{group}": should be a domain with at least one dot',
                "spec.group",
            )
        )
    if not plural:
        causes.append(Cause("FieldValueRequired", "Required value", "spec.names.plural"))
    if not names.get("kind"):
        causes.append(Cause("FieldValueRequired", "Required value", "spec.names.kind"))
    expected = f"{plural}.{group}"
    name = crd.get("metadata", {}).get("name")
    if plural and group and name != expected:
        causes.append(
            Cause(
                "FieldValueInvalid",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                "metadata.name",
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            Cause(
                "FieldValueNotSupported",
                f'Unsupported value: "{spec.get("scope", "")}": supported values: "Cluster", '
                '"Namespaced"',
                "spec.scope",
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            Cause(
                "FieldValueInvalid",
                "Invalid value: must have at least one version",
                "spec.versions",
            )
        )
    storage = [v for v in versions if isinstance(v, dict) and v.get("storage")]
    if versions and len(storage) != 1:
        causes.append(
            Cause(
                "FieldValueInvalid",
                "Invalid value: must have exactly one version marked as storage version",
                "spec.versions",
            )
        )
    for index, version in enumerate(versions):
        if not isinstance(version, dict):
            continue
        if not (version.get("schema") or {}).get("openAPIV3Schema"):
            causes.append(
                Cause(
                    "FieldValueRequired",
                    "Required value: schemas are required",
                    f"spec.versions[{index}].schema.openAPIV3Schema",
                )
            )
    return causes


def sort_versions(versions: list[str]) -> list[str]:
    return sorted(versions, key=version_priority)


def _bind_namespace(rt: ResourceType, metadata: Json, namespace: str) -> None:
    """The URL decides the namespace; a different one in the body is a 400 (as upstream)."""
    if not rt.namespaced:
        metadata.pop("namespace", None)
        return
    body_ns = metadata.get("namespace") or ""
    if body_ns and body_ns != namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    metadata["namespace"] = namespace
