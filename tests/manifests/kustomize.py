"""Build a kustomization the way a user does (``kubectl kustomize``) and parse the output.

Which kubectl: ``aliasip_lab.kubectl.find_kubectl`` (``$KUBECTL``, ``PATH``, the venv). A missing
or too old kubectl is a test failure that says what to install, never a skip: these tests
are the only check that the install manifests build at all.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from aliasip_lab.kubectl import INSTALL_HINT, find_kubectl

REPO = Path(__file__).resolve().parents[2]

Obj = dict[str, Any]


class BuildFailed(RuntimeError):
    """``kubectl kustomize`` refused the kustomization."""


def client_version(kubectl: str) -> str:
    """``kubectl version --client`` as one line, for error messages."""
    done = subprocess.run(
        [kubectl, "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    try:
        info = json.loads(done.stdout)
    except json.JSONDecodeError:
        return (done.stdout or done.stderr).strip() or "unknown version"
    client = info.get("clientVersion", {}).get("gitVersion", "?")
    # kubectl reports its kustomize version since 1.24.
    bundled = info.get("kustomizeVersion", "older than v4.5")
    return f"kubectl {client}, kustomize {bundled}"


def build(directory: Path) -> list[Obj]:
    """Every object that ``kubectl kustomize DIRECTORY`` emits, in order."""
    kubectl = find_kubectl()
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # kustomize needs no cluster; keep any kubeconfig of the machine out of it.
        env={**os.environ, "KUBECONFIG": os.devnull},
    )
    if done.returncode != 0:
        raise BuildFailed(
            f"`{kubectl} kustomize {directory}` failed ({client_version(kubectl)}):\n"
            f"{done.stderr.strip()}\n{INSTALL_HINT}"
        )
    objects = [doc for doc in yaml.safe_load_all(done.stdout) if doc is not None]
    for doc in objects:
        if not isinstance(doc, dict):
            raise BuildFailed(f"not a Kubernetes object: {doc!r}")
    return objects


def key(obj: Obj) -> tuple[str, str]:
    """(kind, name): unique within this project's manifests."""
    return str(obj["kind"]), str(obj["metadata"]["name"])
