"""The pure server-side apply logic (``apply``, ``managedfields``), without a server.

Each case is a rule of sigs.k8s.io/structured-merge-diff as kube-apiserver applies it:
what a config owns, how it merges into the live object, who conflicts, what an applier
dropping a field removes, and how FieldsV1 is written.
"""

from __future__ import annotations

from typing import Any

import pytest

from aliasip_lab.apiserver import apply, managedfields
from aliasip_lab.apiserver.builtin_schemas import schema_for
from aliasip_lab.apiserver.managedfields import APPLY, UPDATE, Entry, Managed, Manager, Path

DEPLOYMENT = apply.root_schema(schema_for("apps", "v1", "Deployment"))
CONFIGMAP = apply.root_schema(schema_for("", "v1", "ConfigMap"))
NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:01:00Z"
FLUX = Manager("flux", APPLY)
KUBECTL = Manager("kubectl", APPLY)
EDIT = Manager("kubectl-edit", UPDATE, "apps/v1")


def f(*names: str) -> Path:
    return tuple(("f", n) for n in names)


def deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "op", "namespace": "ns"},
        "spec": spec,
    }


def container(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, **fields}


def template(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"containers": list(containers)}}


CONTAINERS = f("spec", "template", "spec", "containers")


def item(path: Path, key: str) -> Path:
    return (*path, ("k", key))


# --------------------------------------------------------------------------- field sets


def test_a_config_owns_its_leaves_its_list_items_and_its_map_keys() -> None:
    config = deployment(
        replicas=2,
        selector={"matchLabels": {"app": "op"}},
        template=template(container("op", image="i:1", args=["a"])),
    )
    config["metadata"]["labels"] = {"app": "op"}
    op = item(CONTAINERS, '{"name":"op"}')
    assert apply.field_set(config, DEPLOYMENT) == {
        f("apiVersion"),
        f("kind"),
        f("metadata", "name"),
        f("metadata", "namespace"),
        f("metadata", "labels", "app"),
        f("spec", "replicas"),
        f("spec", "selector"),  # a LabelSelector is atomic (+structType=atomic)
        op,
        (*op, ("f", "name")),
        (*op, ("f", "image")),
        (*op, ("f", "args")),  # atomic list
    }


def test_a_map_list_key_that_is_missing_takes_its_schema_default() -> None:
    config = deployment(
        template=template(container("op", ports=[{"containerPort": 8080, "name": "health"}]))
    )
    paths = apply.field_set(config, DEPLOYMENT)
    port = item(
        (*item(CONTAINERS, '{"name":"op"}'), ("f", "ports")),
        '{"containerPort":8080,"protocol":"TCP"}',
    )
    assert port in paths


def test_an_unknown_field_does_not_fit_the_schema() -> None:
    with pytest.raises(apply.TypeError_, match=r"\.foo: field not declared in schema"):
        apply.field_set(deployment(foo=1), DEPLOYMENT, strict=True)


# --------------------------------------------------------------------------- merge


def test_merge_keeps_live_items_the_config_does_not_name_and_merges_the_named() -> None:
    live = deployment(
        template=template(container("sidecar", image="s:1"), container("op", image="i:1"))
    )
    config = deployment(template=template(container("op", image="i:2", args=["x"])))
    merged = apply.merge(live, config, DEPLOYMENT)
    assert merged["spec"]["template"]["spec"]["containers"] == [
        {"name": "sidecar", "image": "s:1"},
        {"name": "op", "image": "i:2", "args": ["x"]},
    ]


def test_merge_replaces_atomic_lists_and_atomic_structs_whole() -> None:
    live = deployment(selector={"matchLabels": {"a": "1", "b": "2"}})
    live["spec"]["template"] = template(container("op", args=["a", "b"]))
    config = deployment(selector={"matchLabels": {"a": "1"}})
    config["spec"]["template"] = template(container("op", args=["c"]))
    merged = apply.merge(live, config, DEPLOYMENT)
    assert merged["spec"]["selector"] == {"matchLabels": {"a": "1"}}
    assert merged["spec"]["template"]["spec"]["containers"][0]["args"] == ["c"]


def test_merge_of_sets_keeps_every_value_once() -> None:
    live: dict[str, Any] = {"metadata": {"finalizers": ["a", "b"]}}
    config: dict[str, Any] = {"metadata": {"finalizers": ["b", "c"]}}
    merged = apply.merge(live, config, DEPLOYMENT)
    assert merged["metadata"]["finalizers"] == ["a", "b", "c"]


# --------------------------------------------------------------------------- apply


def test_first_apply_owns_exactly_its_config() -> None:
    config = deployment(replicas=2)
    merged, managed = apply.apply({}, {}, config, DEPLOYMENT, FLUX, "apps/v1", NOW, False)
    assert merged == config
    assert managed[FLUX].fields == {f("spec", "replicas")}
    assert managed[FLUX].time == NOW


def test_an_unchanged_apply_keeps_the_object_and_the_time() -> None:
    config = deployment(replicas=2)
    merged, managed = apply.apply({}, {}, config, DEPLOYMENT, FLUX, "apps/v1", NOW, False)
    again, after = apply.apply(managed, merged, config, DEPLOYMENT, FLUX, "apps/v1", LATER, False)
    assert again == merged
    assert after[FLUX].time == NOW


def test_changing_a_field_another_applier_owns_conflicts_with_kube_apiservers_message() -> None:
    live = deployment(replicas=2)
    managed: Managed = {KUBECTL: Entry({f("spec", "replicas")}, "apps/v1", NOW)}
    with pytest.raises(apply.Conflicts) as caught:
        apply.apply(managed, live, deployment(replicas=5), DEPLOYMENT, FLUX, "apps/v1", NOW, False)
    assert str(caught.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas'
    )


def test_an_update_manager_is_named_with_its_api_version() -> None:
    live = deployment(replicas=2, paused=False)
    managed: Managed = {EDIT: Entry({f("spec", "replicas"), f("spec", "paused")}, "apps/v1", NOW)}
    config = deployment(replicas=5, paused=True)
    with pytest.raises(apply.Conflicts) as caught:
        apply.apply(managed, live, config, DEPLOYMENT, FLUX, "apps/v1", NOW, False)
    assert str(caught.value) == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-edit" using apps/v1:\n'
        "- .spec.paused\n"
        "- .spec.replicas"
    )


def test_applying_the_same_value_shares_ownership_without_conflict() -> None:
    live = deployment(replicas=2)
    managed: Managed = {KUBECTL: Entry({f("spec", "replicas")}, "apps/v1", NOW)}
    _, after = apply.apply(
        managed, live, deployment(replicas=2), DEPLOYMENT, FLUX, "apps/v1", NOW, False
    )
    assert f("spec", "replicas") in after[FLUX].fields
    assert f("spec", "replicas") in after[KUBECTL].fields


def test_force_takes_the_field_from_its_owner() -> None:
    live = deployment(replicas=2, paused=False)
    managed: Managed = {
        KUBECTL: Entry({f("spec", "replicas"), f("spec", "paused")}, "apps/v1", NOW)
    }
    merged, after = apply.apply(
        managed, live, deployment(replicas=5), DEPLOYMENT, FLUX, "apps/v1", NOW, True
    )
    assert merged["spec"]["replicas"] == 5
    assert after[FLUX].fields == {f("spec", "replicas")}
    assert after[KUBECTL].fields == {f("spec", "paused")}


def test_a_field_dropped_from_the_config_is_removed_unless_someone_else_owns_it() -> None:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "1", "b": "2", "c": "3"},
    }
    live, managed = apply.apply({}, {}, config, CONFIGMAP, FLUX, "v1", NOW, False)
    other = Manager("other", UPDATE, "v1")
    managed[other] = Entry({f("data", "c")}, "v1", NOW)
    smaller = {**config, "data": {"a": "1"}}
    merged, after = apply.apply(managed, live, smaller, CONFIGMAP, FLUX, "v1", LATER, False)
    assert merged["data"] == {"a": "1", "c": "3"}
    assert after[FLUX].fields == {f("data", "a")}  # apiVersion, kind, name: never owned


def test_a_list_item_dropped_from_the_config_is_removed() -> None:
    config = deployment(template=template(container("a", image="1"), container("b", image="2")))
    live, managed = apply.apply({}, {}, config, DEPLOYMENT, FLUX, "apps/v1", NOW, False)
    smaller = deployment(template=template(container("a", image="1")))
    merged, _ = apply.apply(managed, live, smaller, DEPLOYMENT, FLUX, "apps/v1", LATER, False)
    assert merged["spec"]["template"]["spec"]["containers"] == [{"name": "a", "image": "1"}]


def test_a_dropped_item_keeps_what_another_manager_owns_under_its_key() -> None:
    config = deployment(template=template(container("a", image="1", args=["x"])))
    live, managed = apply.apply({}, {}, config, DEPLOYMENT, FLUX, "apps/v1", NOW, False)
    image = (*item(CONTAINERS, '{"name":"a"}'), ("f", "image"))
    managed[EDIT] = Entry({image}, "apps/v1", NOW)
    managed[FLUX].fields.discard(image)
    empty = deployment(template=template())
    merged, _ = apply.apply(managed, live, empty, DEPLOYMENT, FLUX, "apps/v1", LATER, False)
    assert merged["spec"]["template"]["spec"]["containers"] == [{"name": "a", "image": "1"}]


# --------------------------------------------------------------------------- update


def test_an_update_takes_what_it_changed_and_everyone_loses_what_went() -> None:
    old = deployment(replicas=2, paused=False)
    managed: Managed = {FLUX: Entry({f("spec", "replicas"), f("spec", "paused")}, "apps/v1", NOW)}
    new = deployment(replicas=3)
    after = apply.update(managed, old, new, DEPLOYMENT, EDIT, "apps/v1", LATER)
    assert after[EDIT].fields == {f("spec", "replicas")}
    assert after[EDIT].time == LATER
    assert FLUX not in after  # replicas was taken, paused removed: nothing left


def test_an_update_that_changes_nothing_records_nothing() -> None:
    old = deployment(replicas=2)
    after = apply.update({}, old, old, DEPLOYMENT, EDIT, "apps/v1", LATER)
    assert after == {}


def test_status_is_never_owned_through_the_main_resource() -> None:
    config = {**deployment(replicas=1), "status": {"replicas": 1}}
    ignored = (f("status"),)
    _, managed = apply.apply({}, {}, config, DEPLOYMENT, FLUX, "apps/v1", NOW, False, ignored)
    assert all(p[:1] != f("status") for p in managed[FLUX].fields)


# --------------------------------------------------------------------------- FieldsV1


def test_fields_v1_marks_members_with_children_and_round_trips() -> None:
    op = item(CONTAINERS, '{"name":"op"}')
    paths = {op, (*op, ("f", "image")), f("metadata", "labels", "app"), f("spec", "replicas")}
    encoded = managedfields.encode_fields(paths)
    assert encoded == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:template": {
                "f:spec": {"f:containers": {'k:{"name":"op"}': {".": {}, "f:image": {}}}}
            },
        },
    }
    assert managedfields.decode_fields(encoded) == paths


def test_paths_print_as_kube_apiserver_prints_them() -> None:
    port = (*f("spec", "ports"), ("k", '{"port":80,"protocol":"TCP"}'), ("f", "name"))
    assert managedfields.path_string(port) == '.spec.ports[port=80,protocol="TCP"].name'
    assert managedfields.path_string((*f("metadata", "finalizers"), ("v", '"x"'))) == (
        '.metadata.finalizers[="x"]'
    )


def test_entries_encode_in_kube_apiservers_order_and_apply_entries_have_no_version_key() -> None:
    managed: Managed = {
        EDIT: Entry({f("spec", "paused")}, "apps/v1", LATER),
        FLUX: Entry({f("spec", "replicas")}, "apps/v1", NOW),
    }
    entries = managedfields.encode(managed)
    assert [(e["manager"], e["operation"]) for e in entries] == [
        ("flux", "Apply"),
        ("kubectl-edit", "Update"),
    ]
    decoded = managedfields.decode(entries)
    assert set(decoded) == {EDIT, FLUX}
    assert decoded[FLUX].api_version == "apps/v1"
