"""The node agent's memory: its imports never load the ``kubernetes`` package.

``import kubernetes`` loads the whole generated client, some 25 MiB of resident memory,
and the agent must stay under 80 MB (aliasip_api.rest reads kubeconfigs and talks HTTP
itself for that reason). Checked in a fresh interpreter: this one has imported far more.
"""

from __future__ import annotations

import subprocess
import sys

AGENT_RUN = (
    "aliasip_nodeagent.cli",
    "aliasip_nodeagent.service",
    "aliasip_nodeagent.daemon",
    "aliasip_nodeagent.kube",
    "aliasip_nodeagent.netlink",
    "aliasip_nodeagent.announce",
    "aliasip_api.rest",
    "aliasip_api.kubeconfig",
)


def loaded_after(*modules: str, then: str = "") -> set[str]:
    code = f"import sys\nimport {', '.join(modules)}\n{then}\nprint(' '.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return {name.split(".")[0] for name in done.stdout.split()}


def test_the_agent_imports_no_kubernetes_package() -> None:
    assert "kubernetes" not in loaded_after(*AGENT_RUN)


def test_nor_does_building_its_api_client() -> None:
    """What ``aliasip-agent run`` does before its loop: credentials, then the client."""
    then = (
        "from aliasip_api.kubeconfig import Configuration\n"
        "from aliasip_nodeagent.kube import KubeApi\n"
        "KubeApi(Configuration('https://127.0.0.1:1', token='t')).transport()\n"
    )
    assert "kubernetes" not in loaded_after("aliasip_nodeagent.service", then=then)
