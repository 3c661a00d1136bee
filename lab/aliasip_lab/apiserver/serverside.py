"""Field ownership on every write, and server-side apply requests, for ``operations``.

The pure merge and ownership rules are in ``apply``; this module holds what kube-apiserver's
``fieldmanager`` does around them:

- ``record``: every create, update and patch leaves ``metadata.managedFields`` as
  kube-apiserver leaves it: an ``Update`` entry for the writer (``fieldManager``, or the
  User-Agent's product name) per apiVersion and subresource, taking the fields the write
  added or changed; an applier's ownership comes from the apply itself.
- ``apply_request``: a ``PATCH`` with ``application/apply-patch+yaml``: ``fieldManager``
  is required (422 ``PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required
  value: is required for apply patch``), the body must name the resource's apiVersion
  (400 ``Incorrect version specified in apply patch. ...``) and carry no managedFields
  (400 ``metadata.managedFields must be nil``); a body that does not fit the schema is
  answered as kube-apiserver answers a failed typed conversion (500, ``failed to create
  typed patch object (ns/name; group/version, Kind=Kind): .spec.x: field not declared in
  schema``); conflicts are 409 ``Conflict`` with one ``FieldManagerConflict`` cause per
  field (``NewApplyConflict``). An object with no managedFields is first given to the
  manager ``before-first-apply`` (kube-apiserver's ``skipNonApplied`` manager), so that
  applying to an object made before ownership was tracked does not silently take it all.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import yaml

from aliasip_lab.apiserver import apply, errors, managedfields
from aliasip_lab.apiserver.errors import ApiError, Cause
from aliasip_lab.apiserver.managedfields import APPLY, UPDATE, Entry, Managed, Manager, Path
from aliasip_lab.apiserver.registry import ResourceType

if TYPE_CHECKING:
    from aliasip_lab.apiserver.operations import WriteOptions

Json = dict[str, Any]
BEFORE_FIRST_APPLY = "before-first-apply"
MANAGER_REQUIRED = "Required value: is required for apply patch"


def bare(obj: Json | None) -> Json:
    """The object as ownership sees it: without its managedFields."""
    if obj is None:
        return {}
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {**obj, "metadata": metadata}


def ignored(rt: ResourceType, subresource: str) -> tuple[Path, ...]:
    """Fields the strategy resets for this endpoint, which nobody owns through it."""
    if subresource == "status":
        return ((("f", "spec"),),)
    if rt.status_subresource:
        return ((("f", "status"),),)
    return ()


def record(
    rt: ResourceType,
    old: Json | None,
    new: Json,
    options: WriteOptions,
    subresource: str,
    now: str,
    managed: Managed | None = None,
) -> None:
    """Write ``new``'s managedFields: ``managed`` (an apply), or the update's result."""
    if managed is None:
        previous = base_managers(old, new, subresource)
        me = Manager(options.manager, UPDATE, rt.api_version, subresource)
        try:
            managed = apply.update(
                previous,
                bare(old),
                bare(new),
                apply.root_schema(rt.schema),
                me,
                rt.api_version,
                now,
                ignored(rt, subresource),
            )
        except apply.TypeError_:
            # An object kube-apiserver's validation would have refused (a map-list item
            # without its key): owned as an untyped value rather than failing the write.
            managed = apply.update(
                previous,
                bare(old),
                bare(new),
                apply.root_schema(None),
                me,
                rt.api_version,
                now,
                ignored(rt, subresource),
            )
    entries = managedfields.encode(managed)
    if entries:
        new["metadata"]["managedFields"] = entries
    else:
        new["metadata"].pop("managedFields", None)


def base_managers(old: Json | None, new: Json, subresource: str) -> Managed:
    """The managers a non-apply write starts from (fieldmanager's ``decodeLiveOrNew``).

    A write to the main resource may set managedFields itself (kubectl's upgrade from
    client-side to server-side apply replaces them with a JSON patch): ``[]`` resets
    them, entries that decode are taken as they are; otherwise, and always through a
    subresource, the stored object's count.
    """
    live = managedfields.decode((old or {}).get("metadata", {}).get("managedFields"))
    if subresource:
        return live
    requested = (new.get("metadata") or {}).get("managedFields")
    if requested == []:
        return {}
    decoded = managedfields.decode(requested)
    return decoded if decoded else live


def _decode_body(body: bytes) -> Any:
    """kubectl sends JSON (which is YAML); anything else is read as YAML."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        pass
    try:
        return yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from None


def apply_request(
    rt: ResourceType,
    namespace: str,
    name: str,
    old: Json | None,
    body: bytes,
    subresource: str,
    options: WriteOptions,
    now: str,
) -> tuple[Json, Managed]:
    """The object after this apply, and its managers (before admission and storage)."""
    if not options.field_manager:
        raise errors.invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            [Cause("FieldValueRequired", MANAGER_REQUIRED, "fieldManager")],
        )
    config = _decode_body(body)
    if not isinstance(config, dict):
        raise errors.bad_request("error decoding YAML: the apply patch is not an object")
    version = str(config.get("apiVersion") or "")
    if version != rt.api_version:
        raise errors.bad_request(
            "Incorrect version specified in apply patch. Specified patch version: "
            f"{version}, expected: {rt.api_version}"
        )
    metadata = config.get("metadata")
    if isinstance(metadata, dict) and metadata.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    schema = apply.root_schema(rt.schema)
    live = bare(old)
    previous = managedfields.decode((old or {}).get("metadata", {}).get("managedFields"))
    if old is not None and not previous:
        fields = apply.field_set(live, schema) - managedfields.STRIPPED
        if fields:
            previous = {
                Manager(BEFORE_FIRST_APPLY, UPDATE, rt.api_version): Entry(
                    fields, rt.api_version, now
                )
            }
    me = Manager(options.field_manager, APPLY, "", subresource)
    try:
        return apply.apply(
            previous,
            live,
            config,
            schema,
            me,
            rt.api_version,
            now,
            options.force,
            ignored(rt, subresource),
        )
    except apply.TypeError_ as exc:
        gvk = f"{rt.api_version if rt.group else '/' + rt.version}, Kind={rt.kind}"
        raise ApiError(
            500, "", f"failed to create typed patch object ({namespace}/{name}; {gvk}): {exc}"
        ) from None
    except apply.Conflicts as exc:
        raise ApiError(
            409,
            "Conflict",
            str(exc),
            causes=[
                Cause(
                    "FieldManagerConflict",
                    f"conflict with {c.manager.printed()}",
                    managedfields.path_string(c.path),
                )
                for c in exc.conflicts
            ],
        ) from None


__all__ = ["APPLY", "apply_request", "bare", "record"]
