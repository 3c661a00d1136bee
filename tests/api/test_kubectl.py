"""The real kubectl (/usr/bin/kubectl) against the embedded API, with the project's CRD.

What a user does with AliasIPs: apply the CRD (the new resource is served and
discoverable at once), apply/get/describe/annotate/label/patch/delete/wait objects, and
read the printer columns of ``kubectl get aip``. kubectl validates by default
(--validate=strict): with the server's OpenAPI v3 it asks the server to (fieldValidation).
For custom resources kubectl's apply computes a three-way JSON merge patch, as it does
against kube-apiserver (no strategic merge for CRs).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from aliasip_lab.kubectl import find_kubectl
from tests.api.support import ALIASIP_CRD, ApiLab

MANIFEST: dict[str, Any] = {
    "apiVersion": "aliasip.io/v1alpha1",
    "kind": "AliasIP",
    "metadata": {"name": "web"},
    "spec": {
        "addresses": ["198.18.0.50/24", "2001:2::50/64"],
        "nodes": ["node1", "node2", "node3"],
        "failback": "Manual",
    },
}


def _write(lab: ApiLab, name: str, obj: Any) -> Path:
    path = lab.workdir / name
    path.write_text(yaml.safe_dump(obj))
    return path


def _table(text: str) -> list[dict[str, str]]:
    """kubectl's text table: a header line, then whitespace-separated cells."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0].split()
    return [dict(zip(header, line.split(), strict=True)) for line in lines[1:]]


def _background(lab: ApiLab, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", lab.namespace, find_kubectl(), "--kubeconfig", str(lab.kubeconfig),
         "--cache-dir", str(lab.workdir / "kube-cache-bg"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _get_json(lab: ApiLab, *args: str) -> Any:
    return json.loads(lab.kubectl("get", *args, "-o", "json").stdout)


def test_kubectl_end_to_end_with_the_aliasip_crd(lab: ApiLab) -> None:
    out = lab.kubectl("apply", "-f", str(ALIASIP_CRD)).stdout
    assert (
        out.strip() == "customresourcedefinition.apiextensions.k8s.io/aliasips.aliasip.io created"
    )
    lab.kubectl("wait", "--for=condition=Established", "crd/aliasips.aliasip.io", "--timeout=10s")
    assert "aliasips" in lab.kubectl("api-resources", "--api-group=aliasip.io").stdout

    manifest = _write(lab, "web.yaml", MANIFEST)
    assert (
        lab.kubectl("apply", "-f", str(manifest)).stdout.strip() == "aliasip.aliasip.io/web created"
    )
    created = _get_json(lab, "aip", "web")
    applied = json.loads(
        created["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert applied["spec"] == MANIFEST["spec"]
    assert created["spec"]["announce"] == {"count": 4, "intervalMs": 1100}  # server defaults

    # Update through apply: a three-way JSON merge patch (CRs have no strategic merge).
    changed = {
        **MANIFEST,
        "spec": {**MANIFEST["spec"], "nodes": ["node2", "node1"], "failback": "Auto"},
    }
    del changed["spec"]["failback"]
    changed["spec"]["interface"] = "eth1"
    manifest = _write(lab, "web.yaml", changed)
    done = lab.kubectl("apply", "-f", str(manifest), "-v=8")
    assert "aliasip.aliasip.io/web configured" in done.stdout
    assert "Content-Type: application/merge-patch+json" in done.stderr
    bodies = [line for line in done.stderr.splitlines() if '"Request Body"' in line]
    assert bodies and '\\"failback\\":null' in bodies[-1]  # deletes what the manifest dropped
    updated = _get_json(lab, "aliasip.aliasip.io", "web")
    assert updated["spec"]["nodes"] == ["node2", "node1"]
    assert updated["spec"]["interface"] == "eth1"
    assert updated["spec"]["failback"] == "Manual"  # removed from the manifest: defaulted again
    assert updated["metadata"]["generation"] == 2
    assert (
        lab.kubectl("apply", "-f", str(manifest)).stdout.strip()
        == "aliasip.aliasip.io/web unchanged"
    )

    # Status as the operator would write it; printer columns as kubectl prints them.
    lab.kubectl(
        "patch", "aip", "web", "--subresource=status", "--type=merge",
        "-p", '{"status":{"activeNode":"node2","phase":"Active","epoch":1}}',
    )  # fmt: skip
    rows = _table(lab.kubectl("get", "aip").stdout)
    assert len(rows) == 1
    row = rows[0]
    assert list(row) == ["NAME", "ADDRESSES", "ACTIVE", "PHASE", "EPOCH", "AGE"]
    assert (row["NAME"], row["ADDRESSES"], row["ACTIVE"], row["PHASE"], row["EPOCH"]) == (
        "web", '["198.18.0.50/24","2001:2::50/64"]', "node2", "Active", "1",
    )  # fmt: skip

    lab.kubectl("annotate", "aip", "web", "aliasip.io/note=primary-moved")
    lab.kubectl("label", "aliasips", "web", "tier=gold")
    meta = _get_json(lab, "aip", "web")["metadata"]
    assert meta["annotations"]["aliasip.io/note"] == "primary-moved"
    assert meta["labels"] == {"tier": "gold"}
    assert lab.kubectl("get", "aip", "-l", "tier=gold", "-o", "name").stdout.split() == [
        "aliasip.aliasip.io/web"
    ]
    assert lab.kubectl("get", "aip", "-l", "tier!=gold", "-o", "name").stdout.split() == []

    lab.kubectl("patch", "aip", "web", "--type", "merge", "-p", '{"spec":{"failback":"Auto"}}')
    lab.kubectl(
        "patch",
        "aip",
        "web",
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/announce/count","value":2}]',
    )
    spec = _get_json(lab, "aip", "web")["spec"]
    assert (spec["failback"], spec["announce"]["count"]) == ("Auto", 2)
    test_op = '[{"op":"test","path":"/spec/failback","value":"Manual"}]'
    failed = lab.kubectl("patch", "aip", "web", "--type", "json", "-p", test_op, check=False)
    assert failed.returncode != 0
    assert "the server rejected our request due to an error in our request" in failed.stderr

    event = {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {
            "apiVersion": "aliasip.io/v1alpha1", "kind": "AliasIP",
            "name": "web", "uid": meta["uid"],
        },
        "reason": "Assigned", "message": "web is active on node2", "type": "Normal",
        "source": {"component": "aliasip-operator"}, "count": 1,
        "firstTimestamp": meta["creationTimestamp"], "lastTimestamp": meta["creationTimestamp"],
    }  # fmt: skip
    lab.kubectl("create", "-f", str(_write(lab, "event.yaml", event)))
    described = lab.kubectl("describe", "aip", "web").stdout
    assert "Name:         web" in described
    assert "198.18.0.50/24" in described and "Active Node:  node2" in described
    assert "Assigned" in described and "web is active on node2" in described  # the Events section

    waiting = _background(
        lab, "wait", "--for=jsonpath={.status.phase}=Switching", "aip/web", "--timeout=20s"
    )
    try:
        lab.kubectl(
            "patch",
            "aip",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status":{"phase":"Switching"}}',
        )
        out, err = waiting.communicate(timeout=25)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    assert "condition met" in out

    waiting = _background(lab, "wait", "--for=delete", "aip/web", "--timeout=20s")
    try:
        assert (
            lab.kubectl("delete", "aip", "web").stdout.strip() == 'aliasip.aliasip.io "web" deleted'
        )
        out, err = waiting.communicate(timeout=25)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    assert "No resources found" in lab.kubectl("get", "aip").stderr


def test_kubectl_reports_invalid_and_unknown_fields(lab: ApiLab) -> None:
    lab.kubectl("apply", "-f", str(ALIASIP_CRD))
    bad = {**MANIFEST, "spec": {**MANIFEST["spec"], "addresses": ["198.18.0.300/24"]}}
    done = lab.kubectl("apply", "-f", str(_write(lab, "bad.yaml", bad)), check=False)
    assert done.returncode != 0
    assert 'The AliasIP "web" is invalid' in done.stderr
    assert "spec.addresses[0]" in done.stderr and "must be of type cidr" in done.stderr
    unknown = {**MANIFEST, "spec": {**MANIFEST["spec"], "colour": "blue"}}
    done = lab.kubectl("apply", "-f", str(_write(lab, "unknown.yaml", unknown)), check=False)
    assert done.returncode != 0
    assert 'unknown field "spec.colour"' in done.stderr
