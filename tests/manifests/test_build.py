"""The kustomize base builds into exactly the expected objects, each valid for Kubernetes.

Validation is offline, against the JSON schemas of a current Kubernetes release that
kubernetes-validate ships, in strict mode (an unknown field, e.g. a typo such as
``hostNetwrk``, fails instead of being silently dropped by the API server).
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.manifests.kustomize import REPO, Obj, key

KUBERNETES_VERSION = "1.32"
NAMESPACE = "aliasip-system"

# (kind, name): everything `kubectl apply -k manifests/` creates, nothing else.
INVENTORY: list[tuple[str, str]] = [
    ("Namespace", NAMESPACE),
    ("CustomResourceDefinition", "aliasips.aliasip.io"),
    ("ServiceAccount", "aliasip-operator"),
    ("ClusterRole", "aliasip-operator"),
    ("ClusterRoleBinding", "aliasip-operator"),
    ("Role", "aliasip-operator"),
    ("RoleBinding", "aliasip-operator"),
    ("Role", "aliasip-operator-events"),
    ("RoleBinding", "aliasip-operator-events"),
    ("ServiceAccount", "aliasip-agent"),
    ("ClusterRole", "aliasip-agent"),
    ("ClusterRoleBinding", "aliasip-agent"),
    ("Role", "aliasip-agent"),
    ("RoleBinding", "aliasip-agent"),
    ("Deployment", "aliasip-operator"),
    ("PodDisruptionBudget", "aliasip-operator"),
    ("DaemonSet", "aliasip-agent"),
]
INVENTORY_IDS = [f"{kind}/{name}" for kind, name in INVENTORY]

# The objects that live elsewhere than aliasip-system: the operator's Events about
# cluster-scoped AliasIPs must be in default (or kube-system) for kube-apiserver to admit
# them without involvedObject.namespace, which `kubectl describe aip` looks for.
ELSEWHERE: dict[tuple[str, str], str] = {
    ("Role", "aliasip-operator-events"): "default",
    ("RoleBinding", "aliasip-operator-events"): "default",
}

# Built-in kinds that have no namespace; custom kinds are looked up in their CRD.
CLUSTER_SCOPED_BUILTINS = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
}


def test_the_base_builds_exactly_the_inventory(base: list[Obj]) -> None:
    built = [key(obj) for obj in base]
    assert len(built) == len(set(built)), f"duplicate objects: {built}"
    assert sorted(built) == sorted(INVENTORY)


@pytest.mark.parametrize("wanted", INVENTORY, ids=INVENTORY_IDS)
def test_each_object_is_valid_for_kubernetes(
    by_key: dict[tuple[str, str], Obj], wanted: tuple[str, str]
) -> None:
    obj = by_key[wanted]
    assert isinstance(obj.get("apiVersion"), str)
    assert isinstance(obj.get("kind"), str)
    assert isinstance(obj.get("metadata", {}).get("name"), str)
    try:
        checked = kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(part) for part in exc.path)
        pytest.fail(f"{wanted}: {where}: {exc.message}", pytrace=False)
    assert checked == KUBERNETES_VERSION


@pytest.mark.parametrize("wanted", INVENTORY, ids=INVENTORY_IDS)
def test_every_namespaced_object_lands_in_aliasip_system_but_the_events_role(
    by_key: dict[tuple[str, str], Obj], wanted: tuple[str, str]
) -> None:
    obj = by_key[wanted]
    namespace = obj["metadata"].get("namespace")
    if obj["kind"] in CLUSTER_SCOPED_BUILTINS:
        assert namespace is None
    else:
        assert namespace == ELSEWHERE.get(wanted, NAMESPACE)


def test_binding_subjects_are_our_service_accounts_in_aliasip_system(base: list[Obj]) -> None:
    accounts = {obj["metadata"]["name"] for obj in base if obj["kind"] == "ServiceAccount"}
    for obj in base:
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            for subject in obj["subjects"]:
                assert subject["kind"] == "ServiceAccount", key(obj)
                assert subject["namespace"] == NAMESPACE, key(obj)
                assert subject["name"] in accounts, key(obj)


def test_the_base_ships_the_crd_from_crds_unchanged(
    by_key: dict[tuple[str, str], Obj],
) -> None:
    """The CRD in the install is crds/aliasip.yaml itself (the single source), not a copy."""
    source: Any = yaml.safe_load((REPO / "crds" / "aliasip.yaml").read_text())
    built = dict(by_key[("CustomResourceDefinition", "aliasips.aliasip.io")])
    labels = dict(built["metadata"].get("labels", {}))
    # The base adds its part-of label; nothing else may differ.
    assert labels.pop("app.kubernetes.io/part-of") == "aliasip"
    built["metadata"] = {**built["metadata"], "labels": labels}
    if not labels:
        del built["metadata"]["labels"]
    assert built == source
    assert source["spec"]["scope"] == "Cluster"
    assert source["spec"]["names"]["kind"] == "AliasIP"


def test_kubernetes_validate_knows_the_version_we_check_against() -> None:
    """Pinned to a current release; fails loudly if kubernetes-validate drops it."""
    known = kubernetes_validate.utils.all_versions()
    assert any(version.startswith(KUBERNETES_VERSION + ".") for version in known), known
