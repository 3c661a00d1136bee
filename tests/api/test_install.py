"""Installing aliasip as a user does: ``kubectl apply -k manifests/``, client- and server-side.

The real kubectl against the embedded API server, which must behave as kube-apiserver
where kubectl relies on it: discovery and ``/openapi/v3`` for every kind the manifests
hold (kubectl validates strictly by default), strategic merge patches, and server-side
apply with field ownership (what Flux and ``kubectl apply --server-side`` use): no-op
re-applies, 409 conflicts naming field and manager, ``--force-conflicts``, removal of
fields an applier stops applying, ``kubectl diff``, unknown fields rejected.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import yaml

from tests.api.support import REPO, ApiLab

MANIFESTS = str(REPO / "manifests")
OPERATOR = "/apis/apps/v1/namespaces/aliasip-system/deployments/aliasip-operator"
APPLY_PATCH = "application/apply-patch+yaml"


def installed(lab: ApiLab) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every object of the kustomization, read back with ``kubectl get -k``."""
    listing = json.loads(lab.kubectl("get", "-k", MANIFESTS, "-o", "json").stdout)
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
        for o in listing["items"]
    }


def expected(lab: ApiLab) -> set[tuple[str, str, str]]:
    """What the kustomization renders to (kubectl's own kustomize, no server)."""
    docs = yaml.safe_load_all(lab.kubectl("kustomize", MANIFESTS).stdout)
    return {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]) for d in docs if d
    }


def versions(lab: ApiLab) -> dict[tuple[str, str, str], str]:
    return {k: o["metadata"]["resourceVersion"] for k, o in installed(lab).items()}


def operator_config(**spec: Any) -> str:
    """A second applier's config for the operator Deployment, as kubectl reads it."""
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "aliasip-operator", "namespace": "aliasip-system"},
            "spec": spec,
        }
    )


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


# --------------------------------------------------------------------------- install


def test_kubectl_apply_k_installs_every_object_and_a_second_apply_changes_nothing(
    lab: ApiLab,
) -> None:
    done = lab.kubectl("apply", "-k", MANIFESTS)
    assert "daemonset.apps/aliasip-agent created" in done.stdout
    objects = installed(lab)
    assert set(objects) == expected(lab)
    deployment = lab.client.get(OPERATOR).json  # kubectl get hides managedFields
    assert deployment["metadata"]["generation"] == 1
    assert ("kubectl-client-side-apply", "Update") in managers(deployment)
    before = versions(lab)
    again = lab.kubectl("apply", "-k", MANIFESTS)
    assert "created" not in again.stdout
    assert versions(lab) == before


def test_kubectl_apply_server_side_installs_every_object_and_is_idempotent(lab: ApiLab) -> None:
    done = lab.kubectl("apply", "--server-side", "-k", MANIFESTS)
    assert "daemonset.apps/aliasip-agent serverside-applied" in done.stdout
    objects = installed(lab)
    assert set(objects) == expected(lab)
    for listed in objects.values():
        link = listed["metadata"]["name"]
        namespace = listed["metadata"].get("namespace")
        shown = lab.kubectl("get", listed["kind"].lower() + "." + listed["apiVersion"].split("/")[0]
                            if "/" in listed["apiVersion"] else listed["kind"].lower(), link,
                            *(("-n", namespace) if namespace else ()), "--show-managed-fields",
                            "-o", "json")  # fmt: skip
        obj = json.loads(shown.stdout)
        entry = managers(obj)[("kubectl", "Apply")]
        assert entry["fieldsType"] == "FieldsV1" and entry["apiVersion"] == obj["apiVersion"]
    daemonset = lab.client.get(
        "/apis/apps/v1/namespaces/aliasip-system/daemonsets/aliasip-agent"
    ).json
    fields = managers(daemonset)[("kubectl", "Apply")]["fieldsV1"]
    agent = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"agent"}']
    assert "f:env" in agent and 'k:{"name":"NODE_NAME"}' in agent["f:env"]
    before = versions(lab)
    lab.kubectl("apply", "--server-side", "-k", MANIFESTS)
    assert versions(lab) == before


def test_client_side_install_then_server_side_takes_over(lab: ApiLab) -> None:
    """kubectl's upgrade path: it replaces managedFields with a JSON patch, then applies."""
    lab.kubectl("apply", "-k", MANIFESTS)
    lab.kubectl("apply", "--server-side", "-k", MANIFESTS)
    deployment = lab.client.get(OPERATOR).json
    owners = managers(deployment)
    assert ("kubectl", "Apply") in owners
    assert ("kubectl-client-side-apply", "Update") not in owners
    before = versions(lab)
    lab.kubectl("apply", "--server-side", "-k", MANIFESTS)
    assert versions(lab) == before


def test_kubectl_diff_shows_nothing_after_an_install_and_a_change_after_an_edit(
    lab: ApiLab,
) -> None:
    lab.kubectl("apply", "-k", MANIFESTS)
    clean = lab.kubectl("diff", "-k", MANIFESTS, check=False)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout == ""
    lab.kubectl("patch", "deployment", "aliasip-operator", "-n", "aliasip-system",
                "-p", '{"spec":{"replicas":5}}')  # fmt: skip
    changed = lab.kubectl("diff", "-k", MANIFESTS, check=False)
    assert changed.returncode == 1, changed.stderr
    assert "-  replicas: 5" in changed.stdout and "+  replicas: 2" in changed.stdout
    # kubectl patch owns replicas now: a server-side diff must force to show the change
    # (without --force-conflicts it reports the conflict, as against kube-apiserver).
    conflict = lab.kubectl("diff", "--server-side", "-k", MANIFESTS, check=False)
    assert conflict.returncode > 1
    assert 'conflict with "kubectl-patch" using apps/v1: .spec.replicas' in conflict.stderr
    server_side = lab.kubectl(
        "diff", "--server-side", "--force-conflicts", "-k", MANIFESTS, check=False
    )
    assert server_side.returncode == 1, server_side.stderr
    assert "replicas: 5" in server_side.stdout


def test_generation_counts_spec_changes_of_workloads_only(lab: ApiLab) -> None:
    lab.kubectl("apply", "--server-side", "-k", MANIFESTS)
    lab.kubectl("label", "deployment", "aliasip-operator", "-n", "aliasip-system", "x=y")
    assert lab.client.get(OPERATOR).json["metadata"]["generation"] == 1
    lab.kubectl("patch", "deployment", "aliasip-operator", "-n", "aliasip-system",
                "-p", '{"spec":{"replicas":3}}')  # fmt: skip
    assert lab.client.get(OPERATOR).json["metadata"]["generation"] == 2
    # kube-apiserver's Deployment strategy also counts annotations (copied to ReplicaSets);
    # the DaemonSet strategy counts spec only.
    lab.kubectl("annotate", "deployment", "aliasip-operator", "-n", "aliasip-system", "a=b")
    assert lab.client.get(OPERATOR).json["metadata"]["generation"] == 3
    lab.kubectl("annotate", "daemonset", "aliasip-agent", "-n", "aliasip-system", "a=b")
    agent = "/apis/apps/v1/namespaces/aliasip-system/daemonsets/aliasip-agent"
    assert lab.client.get(agent).json["metadata"]["generation"] == 1
    status = lab.client.patch(f"{OPERATOR}/status", {"status": {"replicas": 3}})
    assert status.status == 200, status.body
    assert status.json["metadata"]["generation"] == 3
    assert status.json["status"] == {"replicas": 3}


# --------------------------------------------------------------------------- ownership


def test_a_second_manager_conflicts_on_an_owned_field_and_force_conflicts_wins(
    lab: ApiLab,
) -> None:
    lab.kubectl("apply", "--server-side", "-k", MANIFESTS)
    refused = lab.kubectl(
        "apply", "--server-side", "--field-manager=autoscaler", "-f", "-",
        stdin=operator_config(replicas=5), check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas' in (
        refused.stderr
    )
    raw = lab.client.request(
        "PATCH",
        OPERATOR,
        raw=operator_config(replicas=5).encode(),
        content_type=APPLY_PATCH,
        params={"fieldManager": "autoscaler"},
    )
    assert raw.status == 409
    assert raw.json["reason"] == "Conflict"
    assert raw.json["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl"',
            "field": ".spec.replicas",
        }
    ]
    lab.kubectl(
        "apply", "--server-side", "--field-manager=autoscaler", "--force-conflicts", "-f", "-",
        stdin=operator_config(replicas=5),
    )  # fmt: skip
    deployment = lab.client.get(OPERATOR).json
    assert deployment["spec"]["replicas"] == 5
    owners = managers(deployment)
    assert owners[("autoscaler", "Apply")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in owners[("kubectl", "Apply")]["fieldsV1"]["f:spec"]


def test_an_update_managers_conflict_names_its_api_version(lab: ApiLab) -> None:
    lab.kubectl("apply", "--server-side", "-k", MANIFESTS)
    lab.kubectl("patch", "deployment", "aliasip-operator", "-n", "aliasip-system",
                "-p", '{"spec":{"replicas":4}}')  # fmt: skip
    refused = lab.kubectl("apply", "--server-side", "-k", MANIFESTS, check=False)
    assert refused.returncode != 0
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl-patch" using apps/v1: '
        ".spec.replicas" in refused.stderr
    )


def test_a_field_removed_from_the_applied_config_is_removed_from_the_object(
    lab: ApiLab,
) -> None:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "default"},
        "data": {"a": "1", "b": "2"},
    }
    lab.kubectl("apply", "--server-side", "--field-manager=flux", "-f", "-",
                stdin=json.dumps(config))  # fmt: skip
    lab.kubectl("patch", "configmap", "settings", "-p", '{"data":{"c":"3"}}')
    config["data"] = {"a": "1"}
    lab.kubectl("apply", "--server-side", "--field-manager=flux", "-f", "-",
                stdin=json.dumps(config))  # fmt: skip
    stored = json.loads(lab.kubectl("get", "configmap", "settings", "-o", "json").stdout)
    assert stored["data"] == {"a": "1", "c": "3"}  # c belongs to kubectl-patch: kept


def test_an_env_var_removed_from_the_manifests_goes_from_the_daemonset(lab: ApiLab) -> None:
    lab.kubectl("apply", "--server-side", "-k", MANIFESTS)
    rendered = [d for d in yaml.safe_load_all(lab.kubectl("kustomize", MANIFESTS).stdout) if d]
    daemonset = next(d for d in rendered if d["kind"] == "DaemonSet")
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "HOME"]
    lab.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(daemonset))
    stored = lab.client.get("/apis/apps/v1/namespaces/aliasip-system/daemonsets/aliasip-agent")
    env = stored.json["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "HOME" not in [e["name"] for e in env]
    assert [e["name"] for e in env] == [e["name"] for e in container["env"]]
    assert stored.json["metadata"]["generation"] == 2


def test_an_apply_creates_and_requires_a_field_manager(lab: ApiLab) -> None:
    path = "/api/v1/namespaces/default/configmaps/made"
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "made"}})
    missing = lab.client.request("PATCH", path, raw=body.encode(), content_type=APPLY_PATCH)
    assert missing.status == 422
    assert missing.json["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
        "for apply patch"
    )
    created = lab.client.request(
        "PATCH", path, raw=body.encode(), content_type=APPLY_PATCH, params={"fieldManager": "me"}
    )
    assert created.status == 201, created.body
    wrong = body.replace('"v1"', '"v2"', 1)
    refused = lab.client.request(
        "PATCH", path, raw=wrong.encode(), content_type=APPLY_PATCH, params={"fieldManager": "me"}
    )
    assert refused.status == 400
    assert refused.json["message"] == (
        "Incorrect version specified in apply patch. Specified patch version: v2, expected: v1"
    )


# --------------------------------------------------------------------------- unknown fields


def test_an_unknown_field_is_rejected_as_kube_apiserver_rejects_it(lab: ApiLab) -> None:
    lab.kubectl("apply", "-k", MANIFESTS)
    bad = yaml.safe_load(operator_config(replicas=2, surprise=True))
    done = lab.kubectl("apply", "-f", "-", stdin=json.dumps(bad), check=False)
    assert done.returncode != 0
    assert 'strict decoding error: unknown field "spec.surprise"' in done.stderr
    raw = lab.client.put(OPERATOR, bad, fieldValidation="Strict")
    assert raw.status == 400
    assert raw.json["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.surprise"'
    )
    warned = lab.client.patch(OPERATOR, {"spec": {"surprise": True}}, fieldValidation="Warn")
    assert warned.status == 200
    assert any("spec.surprise" in w for w in warned.warnings())
    assert "surprise" not in warned.json["spec"]
    ssa = lab.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(bad), check=False)
    assert ssa.returncode != 0
    assert (
        "failed to create typed patch object (aliasip-system/aliasip-operator; apps/v1, "
        "Kind=Deployment): .spec.surprise: field not declared in schema" in ssa.stderr
    )


# --------------------------------------------------------------------------- discovery


def test_discovery_lists_the_workload_kinds_as_kube_apiserver_does(lab: ApiLab) -> None:
    groups = {g["name"] for g in lab.client.get("/apis").json["groups"]}
    assert {"apps", "rbac.authorization.k8s.io", "policy", "admissionregistration.k8s.io"} <= (
        groups
    )
    apps = {r["name"]: r for r in lab.client.get("/apis/apps/v1").json["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"]
    assert apps["deployments"]["categories"] == ["all"]
    assert apps["daemonsets"]["namespaced"] is True
    assert "deployments/status" in apps and "daemonsets/status" in apps
    admission = lab.client.get("/apis/admissionregistration.k8s.io/v1").json["resources"]
    policies = {r["name"]: r for r in admission}
    assert policies["validatingadmissionpolicies"]["namespaced"] is False
    assert "validatingadmissionpolicies/status" in policies
    assert policies["validatingadmissionpolicybindings"]["namespaced"] is False
    names = lab.kubectl("api-resources", "-o", "name").stdout.split()
    for name in ("serviceaccounts", "secrets", "configmaps", "pods", "clusterrolebindings"):
        assert name in names or f"{name}.rbac.authorization.k8s.io" in names


def test_openapi_describes_the_built_in_kinds_for_kubectl_explain(lab: ApiLab) -> None:
    document = lab.client.get("/openapi/v3/apis/apps/v1").json
    schema = document["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1", "kind": "Deployment"}
    ]
    containers = schema["properties"]["spec"]["properties"]["template"]["properties"]["spec"][
        "properties"
    ]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    explained = lab.kubectl("explain", "daemonset.spec.template.spec.tolerations").stdout
    assert "tolerationSeconds" in explained


# --------------------------------------------------------------------------- the install's extras


def test_kubectl_create_secret_as_the_install_instructions_do(lab: ApiLab) -> None:
    """kubectl's typed create commands send protobuf, which kube-apiserver accepts."""
    lab.kubectl("create", "namespace", "aliasip-system")
    lab.kubectl("-n", "aliasip-system", "create", "secret", "generic", "aliasip-heartbeat",
                "--from-literal=k1=0123456789abcdef0123456789abcdef",
                "--from-literal=signing=k1")  # fmt: skip
    secret = lab.client.get("/api/v1/namespaces/aliasip-system/secrets/aliasip-heartbeat").json
    assert secret["type"] == "Opaque"  # defaulted, as kube-apiserver does
    assert base64.b64decode(secret["data"]["signing"]) == b"k1"
    assert managers(secret).keys() == {("kubectl-create", "Update")}
    lab.kubectl("create", "configmap", "settings", "--from-literal=a=b")
    assert lab.client.get("/api/v1/namespaces/default/configmaps/settings").json["data"] == {
        "a": "b"
    }


def test_string_data_is_written_into_data(lab: ApiLab) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"a": base64.b64encode(b"old").decode()},
        "stringData": {"a": "new", "b": "two"},
    }
    created = lab.client.post("/api/v1/namespaces/default/secrets", body)
    assert created.status == 201, created.body
    assert "stringData" not in created.json
    assert {k: base64.b64decode(v) for k, v in created.json["data"].items()} == {
        "a": b"new",
        "b": b"two",
    }


def test_the_example_aliasip_applies_server_side_beside_the_agents_status_writes(
    lab: ApiLab,
) -> None:
    example = str(REPO / "manifests" / "example")
    lab.kubectl("apply", "--server-side", "-k", MANIFESTS)
    lab.kubectl("apply", "--server-side", "-k", example)
    path = "/apis/aliasip.io/v1alpha1/aliasips/example"
    status = lab.client.patch(
        f"{path}/status", {"status": {"nodes": {"node1": {"state": "standby"}}}}
    )
    assert status.status == 200, status.body
    before = lab.client.get(path).json
    owners = managers(before)
    assert ("kubectl", "Apply") in owners
    assert any(o[1] == "Update" and e.get("subresource") == "status" for o, e in owners.items())
    lab.kubectl("apply", "--server-side", "-k", example)
    after = lab.client.get(path).json
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["status"] == before["status"]


def test_aggregated_discovery_answers_kubectl_in_one_document_per_root(lab: ApiLab) -> None:
    accept = (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
        "application/json"
    )
    reply = lab.client.request("GET", "/apis", accept=accept)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    )
    groups = {g["metadata"]["name"]: g for g in reply.json["items"]}
    apps = {r["resource"]: r for r in groups["apps"]["versions"][0]["resources"]}
    assert apps["deployments"]["scope"] == "Namespaced"
    assert apps["deployments"]["responseKind"]["kind"] == "Deployment"
    assert apps["deployments"]["subresources"][0]["subresource"] == "status"
    core = lab.client.request("GET", "/api", accept=accept).json["items"]
    assert [g["versions"][0]["version"] for g in core] == ["v1"]
    assert "secrets" in {r["resource"] for r in core[0]["versions"][0]["resources"]}
    classic = lab.client.get("/apis")  # Accept: application/json alone: the classic list
    assert classic.json["kind"] == "APIGroupList"


def test_kubectl_get_prints_kube_apiservers_columns_for_the_installed_kinds(lab: ApiLab) -> None:
    lab.kubectl("apply", "--server-side", "-k", MANIFESTS)
    shown = lab.kubectl("get", "deploy,ds,pdb", "-n", "aliasip-system").stdout.splitlines()
    assert shown[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert shown[1].split()[:4] == ["deployment.apps/aliasip-operator", "0/2", "0", "0"]
    daemonsets = next(i for i, line in enumerate(shown) if line.startswith("NAME   ") and
                      "DESIRED" in line)  # fmt: skip
    assert "kubernetes.io/os=linux" in shown[daemonsets + 1]
    bindings = lab.kubectl("get", "clusterrolebinding", "aliasip-agent", "-o", "wide").stdout
    assert "ClusterRole/aliasip-agent" in bindings and "aliasip-system/aliasip-agent" in bindings


def test_strategic_merge_patches_merge_containers_env_and_ports_by_their_keys(
    lab: ApiLab,
) -> None:
    lab.kubectl("apply", "-k", MANIFESTS)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "agent",
                            "env": [{"name": "EXTRA", "value": "1"}],
                            "ports": [{"containerPort": 9000, "name": "metrics"}],
                        }
                    ],
                    "tolerations": [{"key": "only", "operator": "Exists"}],
                }
            }
        }
    }
    lab.kubectl("patch", "daemonset", "aliasip-agent", "-n", "aliasip-system",
                "--type", "strategic", "-p", json.dumps(patch))  # fmt: skip
    rendered = [d for d in yaml.safe_load_all(lab.kubectl("kustomize", MANIFESTS).stdout) if d]
    shipped = next(d for d in rendered if d["kind"] == "DaemonSet")
    before = shipped["spec"]["template"]["spec"]["containers"][0]
    path = "/apis/apps/v1/namespaces/aliasip-system/daemonsets/aliasip-agent"
    spec = lab.client.get(path).json["spec"]["template"]["spec"]
    agent = spec["containers"][0]
    assert [e["name"] for e in agent["env"]] == [e["name"] for e in before["env"]] + ["EXTRA"]
    assert [p["containerPort"] for p in agent["ports"]] == [
        p["containerPort"] for p in before["ports"]
    ] + [9000]
    assert agent["image"].startswith("ghcr.io/aliasip/aliasip:")  # the rest of it kept
    assert spec["tolerations"] == [{"key": "only", "operator": "Exists"}]  # replaced
