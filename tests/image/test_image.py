"""The built image, run as the DaemonSet runs it, on a real kernel and a real wire.

Needs the image ``ghcr.io/aliasip/aliasip:<version of pyproject.toml>`` in the machine's
container storage. Build it with ``./dev image`` (debootstrap + buildah, no Docker Hub;
it runs this file afterwards); this file is skipped only when that image is not there.

The agent container gets the DaemonSet's securityContext, read from manifests/agent.yaml
and translated to podman flags (its user, ``--cap-drop=ALL --cap-add=NET_ADMIN,NET_RAW``,
``--read-only`` with the pod's /tmp emptyDir as a tmpfs, ``no-new-privileges``, the
runtime's default seccomp profile, not privileged), and node1's network namespace of a
lab LAN (``--network ns:/run/netns/...``) as the pod gets the host's. What it did is read
independently: the kernel with a plain netlink dump, the wire from node2's namespace with
a packet socket, frames decoded with scapy. The operator container gets the Deployment's
securityContext and the lab's API server. Every test first checks that the image holds
this checkout's code (its wheel's RECORD against the source files): a stale image fails.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import resource
import shutil
import subprocess
import tomllib
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from scapy.layers.l2 import ARP, Ether

from aliasip_lab.capture import Capture, Frame
from aliasip_lab.lan import Lan, existing_namespaces
from aliasip_lab.nsenter import netns
from tests.netns.support import kernel_addresses

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]
OWN_PROTO = 0xA1  # written here, not imported: the test states what the kernel must show
ALIAS = "198.18.0.50"
NODE1_MAC = "02:a1:00:00:00:0b"


def _image() -> str:
    with (REPO / "pyproject.toml").open("rb") as f:
        version = tomllib.load(f)["project"]["version"]
    return f"ghcr.io/aliasip/aliasip:{version}"


IMAGE = _image()


def _built() -> bool:
    if shutil.which("podman") is None:
        return False
    return subprocess.run(["podman", "image", "exists", IMAGE], check=False).returncode == 0


if not _built():
    pytest.skip(f"image {IMAGE} not built: run ./dev image", allow_module_level=True)

# Where each package of the image comes from in the checkout (pyproject's package dirs).
SOURCES = {
    "aliasip_api": REPO / "crds" / "aliasip_api",
    "aliasip_nodeagent": REPO / "nodeagent" / "aliasip_nodeagent",
    "aliasip_operator": REPO / "operator" / "aliasip_operator",
}
RECORD = "/opt/aliasip/lib/python3.11/site-packages/aliasip-*.dist-info/RECORD"


def _digest(path: Path) -> str:
    raw = hashlib.sha256(path.read_bytes()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def stale_files() -> list[str]:
    """Files of our packages whose content differs between the image (its wheel's RECORD)
    and the checkout, or that only one of them has."""
    done = subprocess.run(
        ["podman", "run", "--rm", "--network=none", "--ulimit=nproc=4096:4096",
         "--ulimit=nofile=1024:1024", IMAGE, "sh", "-c", f"cat {RECORD}"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    in_image: dict[str, str] = {}
    for line in done.stdout.splitlines():
        path, _, rest = line.partition(",")
        digest = rest.partition(",")[0]
        if path.split("/")[0] in SOURCES and digest:
            in_image[path] = digest.removeprefix("sha256=")
    in_checkout: dict[str, str] = {}
    for package, source in SOURCES.items():
        for file in source.rglob("*"):
            relative = file.relative_to(source)
            if file.is_file() and "__pycache__" not in relative.parts and file.suffix != ".pyc":
                in_checkout[f"{package}/{relative}"] = _digest(file)
    return sorted(
        path
        for path in in_image.keys() | in_checkout.keys()
        if in_image.get(path) != in_checkout.get(path)
    )


@pytest.fixture(scope="module", autouse=True)
def _the_image_is_this_checkout() -> None:
    """The tests below judge the image, so it must hold this checkout's code: an image
    built from older code fails here (rebuild: ./dev image; ./dev test rebuilds an image
    that was built on this machine before it runs the suite)."""
    stale = stale_files()
    assert not stale, f"{IMAGE} was built from other code ({stale[:5]}...): run ./dev image"


def _agent_pod() -> tuple[dict[str, Any], dict[str, Any]]:
    """The DaemonSet's pod spec and its agent container (manifests/agent.yaml)."""
    docs = list(yaml.safe_load_all((REPO / "manifests" / "agent.yaml").read_text()))
    daemonset = next(d for d in docs if d and d["kind"] == "DaemonSet")
    pod: dict[str, Any] = daemonset["spec"]["template"]["spec"]
    container: dict[str, Any] = next(c for c in pod["containers"] if c["name"] == "agent")
    return pod, container


def daemonset_flags() -> list[str]:
    """podman flags for the DaemonSet's securityContext and volumes (manifests/agent.yaml)."""
    pod, container = _agent_pod()
    context = container["securityContext"]
    assert context["privileged"] is False
    assert context["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    capabilities = context["capabilities"]
    flags = [
        f"--user={context['runAsUser']}:{context['runAsGroup']}",
        # no_new_privs: what allowPrivilegeEscalation: false sets.
        "--security-opt=no-new-privileges",
        *[f"--cap-drop={c}" for c in capabilities["drop"]],
        f"--cap-add={','.join(capabilities['add'])}",
    ]
    if context["readOnlyRootFilesystem"]:
        # Only the pod's volumes are writable: not podman's default tmpfs on /run, /var/tmp.
        flags += ["--read-only", "--read-only-tmpfs=false"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        if "emptyDir" in volumes[mount["name"]]:
            flags.append(f"--tmpfs={mount['mountPath']}:rw,size=16m")
    for env in container["env"]:
        if "value" in env:
            flags.append(f"--env={env['name']}={env['value']}")
    return flags


def test_the_daemonset_context_is_what_this_test_gives() -> None:
    """Non-privileged, NET_ADMIN + NET_RAW only, read-only root: the test runs exactly
    that (the flags come from the manifest; this pins what the manifest says)."""
    flags = daemonset_flags()
    assert "--cap-drop=ALL" in flags
    assert "--cap-add=NET_ADMIN,NET_RAW" in flags
    assert "--read-only" in flags
    assert "--tmpfs=/tmp:rw,size=16m" in flags


def podman_command(name: str, argv: Sequence[str], network: str, flags: list[str]) -> list[str]:
    # podman's default rlimits (nofile 1048576, nproc) can exceed what the machine lets
    # runc set (it then fails before the process starts): ours, and a modest nproc.
    _, nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    return [
        "podman", "--runtime", "runc", "run", "--rm", f"--name={name}",
        f"--ulimit=nofile={nofile}:{nofile}", "--ulimit=nproc=4096:4096",
        f"--network={network}", *flags, IMAGE, *argv,
    ]  # fmt: skip


def podman_run(
    *argv: str, network: str = "none", flags: list[str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    name = f"aliasip-test-{uuid.uuid4().hex[:12]}"
    command = podman_command(name, argv, network, flags or [])
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    finally:
        subprocess.run(["podman", "rm", "--force", "--ignore", name], capture_output=True)


@contextlib.contextmanager
def podman_process(
    argv: Sequence[str], network: str, flags: list[str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running container (its output to ``log``), stopped and removed on exit."""
    name = f"aliasip-test-{uuid.uuid4().hex[:12]}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            podman_command(name, argv, network, flags), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        subprocess.run(["podman", "stop", "--time=5", "--ignore", name], capture_output=True)
        subprocess.run(["podman", "rm", "--force", "--ignore", name], capture_output=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def lan() -> Iterator[Lan]:
    """node1 (the agent's) and node2 (the sniffer's) on one bridge, 198.18.0.0/24, nothing
    attached to the host's namespace; removed afterwards, whatever happens."""
    made = Lan.create(nodes=2)
    try:
        yield made
    finally:
        made.destroy()
        leftover = [ns for ns in existing_namespaces() if ns.startswith(made.tag + "-")]
        assert not leftover, f"namespaces left behind: {leftover}"


def _gratuitous_arp(frame: Frame) -> bool:
    if frame.outgoing or frame.ethertype != 0x0806:
        return False
    arp = Ether(frame.data)[ARP]
    return bool(arp.psrc == ALIAS and arp.pdst == ALIAS and arp.hwsrc == NODE1_MAC)


def test_the_image_agent_adds_announces_and_releases_an_alias(lan: Lan) -> None:
    node1, node2 = lan.nodes
    before = kernel_addresses(node1)
    flags = daemonset_flags()
    with netns(node2.netns):
        capture = Capture(node2.ifname)
    with capture:
        applied = podman_run(
            "aliasip-agent", "apply", ALIAS, "--announce-count", "2", "--json",
            network=f"ns:/run/netns/{node1.netns}", flags=flags,
        )  # fmt: skip
        assert applied.returncode == 0, applied.stderr
        assert json.loads(applied.stdout)["changed"] is True
        frames = capture.wait_until(lambda fs: sum(map(_gratuitous_arp, fs)) >= 2, 5.0)

    # The kernel: the alias with the stationary prefix, the IPv4 label and aliasip's mark.
    added = [a for a in kernel_addresses(node1) if a.address == ALIAS]
    assert len(added) == 1
    assert added[0].prefixlen == 24
    assert added[0].proto == OWN_PROTO
    assert added[0].label == "eth1:aip"

    # The wire: node2 heard gratuitous ARP for the alias from node1's MAC, broadcast,
    # both a request and a reply (one round each time).
    announcements = [Ether(f.data) for f in frames if _gratuitous_arp(f)]
    assert len(announcements) >= 2
    assert {p.dst for p in announcements} == {"ff:ff:ff:ff:ff:ff"}
    assert {p[ARP].op for p in announcements} == {1, 2}
    assert lan.neighbour_mac(node2, ALIAS) in (None, NODE1_MAC)

    released = podman_run(
        "aliasip-agent", "release", ALIAS, "--json",
        network=f"ns:/run/netns/{node1.netns}", flags=flags,
    )  # fmt: skip
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout)["changed"] is True
    assert kernel_addresses(node1) == before


def test_without_net_admin_the_agent_cannot_add(lan: Lan) -> None:
    """The capabilities are what makes it work, not some other privilege of the runtime."""
    node1 = lan.nodes[0]
    before = kernel_addresses(node1)
    flags = [f for f in daemonset_flags() if not f.startswith("--cap-add")]
    refused = podman_run(
        "aliasip-agent", "apply", ALIAS, "--announce-count", "1",
        network=f"ns:/run/netns/{node1.netns}", flags=flags,
    )  # fmt: skip
    assert refused.returncode != 0
    assert kernel_addresses(node1) == before


IMPORT_ALL = """
import importlib, pkgutil, sys
for top in ("aliasip_api", "aliasip_nodeagent", "aliasip_operator"):
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        if not info.name.endswith(".__main__"):  # that one runs the command line
            importlib.import_module(info.name)
print("imported", len([m for m in sys.modules if m.startswith("aliasip_")]))
"""


def test_every_module_of_the_operator_and_the_agent_imports_in_the_image() -> None:
    """Every dependency a module of ours imports is in the image (the lock, --no-deps):
    not only the one-shot agent commands run above, the daemon and the operator too."""
    done = podman_run("python3", "-c", IMPORT_ALL, flags=["--read-only"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported ")


PROBE = """
import ctypes, importlib.util, os, shutil
print("user", os.getuid(), os.getgid())
for name in ("pip", "setuptools", "wheel", "aliasip_lab", "pytest", "kubernetes"):
    print("module", name, importlib.util.find_spec(name) is not None)
for name in ("aliasip-agent", "aliasip-operator", "aliasip-lab", "gcc", "cc", "apt-get"):
    print("command", name, shutil.which(name) is not None)
ctypes.CDLL("libnftables.so.1")
print("libnftables ok")
try:
    open("/opt/aliasip/written", "w")
    print("rootfs writable")
except OSError:
    print("rootfs read-only")
"""


def test_the_image_holds_what_its_processes_need_and_no_more() -> None:
    done = podman_run("python3", "-c", PROBE, flags=["--read-only"])
    assert done.returncode == 0, done.stderr
    lines = set(done.stdout.splitlines())
    assert "user 65532 65532" in lines  # the default user: the operator's, not root
    for name in ("pip", "setuptools", "wheel", "aliasip_lab", "pytest", "kubernetes"):
        assert f"module {name} False" in lines
    assert "command aliasip-agent True" in lines
    assert "command aliasip-operator True" in lines
    for name in ("aliasip-lab", "gcc", "cc"):
        assert f"command {name} False" in lines
    assert "libnftables ok" in lines  # the agent's mute loads it through ctypes
    assert "rootfs read-only" in lines


def _operator_pod() -> tuple[dict[str, Any], dict[str, Any]]:
    """The Deployment's pod spec and its operator container (manifests/operator.yaml)."""
    docs = list(yaml.safe_load_all((REPO / "manifests" / "operator.yaml").read_text()))
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    container: dict[str, Any] = pod["containers"][0]
    return pod, container


def deployment_flags() -> list[str]:
    """podman flags for the operator Deployment's securityContext (its default user)."""
    pod, container = _operator_pod()
    context, pod_context = container["securityContext"], pod["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    return [
        f"--user={pod_context['runAsUser']}:{pod_context['runAsGroup']}",
        "--security-opt=no-new-privileges",
        "--cap-drop=ALL",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs=/tmp:rw,size=16m",
    ]


def test_the_image_operator_places_an_alias(tmp_path: Path) -> None:
    """The image's operator, as the Deployment runs it (non-root, no capability, read-only
    root), against the lab's API server in a private namespace: it takes the leader Lease
    and places a new AliasIP on its first node, as tests/operatorproc checks for the
    operator of the checkout. The image has kopf without the `kubernetes` package: this
    is where that is proven."""
    # Imported here: they start the lab's API server, which only this test needs.
    from tests.api.support import api_lab
    from tests.operatorproc.support import NS, Agents, create, leader, prepare, wait_status

    with api_lab() as lab:
        prepare(lab)
        # The lab's kubeconfig, readable by the operator's non-root user.
        config = tmp_path / "kubeconfig"
        shutil.copyfile(lab.kubeconfig, config)
        tmp_path.chmod(0o755)
        config.chmod(0o644)
        argv = [
            "aliasip-operator", "--kubeconfig=/etc/aliasip/kubeconfig", "--leader-elect",
            f"--leader-election-namespace={NS}", "--leader-election-lease=aliasip-operator",
            "--identity=op-image", f"--agent-lease-namespace={NS}", "--health-port=0",
        ]  # fmt: skip
        flags = [*deployment_flags(), f"--volume={config}:/etc/aliasip/kubeconfig:ro"]
        log = tmp_path / "operator.log"
        network = f"ns:/run/netns/{lab.namespace}"
        with Agents(lab).running(), podman_process(argv, network, flags, log) as proc:
            create(lab, "web")
            try:
                wait_status(lab, "web", timeout=30, activeNode="node1", epoch=1)
            except AssertionError as failed:
                raise AssertionError(f"operator log:\n{log.read_text()[-3000:]}") from failed
            assert proc.poll() is None, log.read_text()
            assert leader(lab) == "op-image"
