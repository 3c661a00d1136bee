"""``aliasip-lab apiserver``: a process that writes a kubeconfig and serves until SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import yaml

from aliasip_lab.apiserver.runner import main as apiserver_main
from aliasip_lab.kubectl import find_kubectl
from aliasip_lab.lan import private_namespace
from tests.api.support import ADDRESS, WIDGETS, Client, Reply, widget, widget_crd


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line, read by a thread so the wait is bounded."""
    assert proc.stdout is not None
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    assert got, f"no output within {timeout} s"
    return got[0].strip()


def test_the_process_serves_kubectl_and_stops_on_sigterm() -> None:
    with tempfile.TemporaryDirectory() as tmp, private_namespace("api", ADDRESS) as ns:
        config = Path(tmp) / "lab" / "kubeconfig"
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "aliasip_lab.cli", "apiserver",
             "--listen", f"{ADDRESS}:0", "--kubeconfig", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            line = _first_line(proc, 15)
            assert line.startswith(f"serving http://{ADDRESS}:")
            url = line.removeprefix("serving ")
            written = yaml.safe_load(config.read_text())
            assert written["clusters"][0]["cluster"]["server"] == url
            assert written["current-context"] == "aliasip-lab"
            got = subprocess.run(
                ["ip", "netns", "exec", ns, find_kubectl(), "--kubeconfig", str(config),
                 "--cache-dir", f"{tmp}/cache", "get", "namespaces", "-o", "name"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert got.returncode == 0, got.stderr
            assert "namespace/default" in got.stdout.split()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def _start(ns: str, state: Path) -> tuple[subprocess.Popen[str], Client]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "aliasip_lab.apiserver",
         "--listen", f"{ADDRESS}:0", "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = _first_line(proc, 15)
    assert line.startswith("serving "), line
    return proc, Client(ADDRESS, int(line.rsplit(":", 1)[1]), ns)


def test_with_state_a_restart_or_a_kill_loses_nothing() -> None:
    # As kube-apiserver over etcd: objects survive, resourceVersions carry on, and a
    # watch from before the restart is expired (the new watch cache has no history).
    with tempfile.TemporaryDirectory() as tmp, private_namespace("api", ADDRESS) as ns:
        state = Path(tmp) / "state.jsonl"
        procs: list[subprocess.Popen[str]] = []
        try:
            proc, client = _start(ns, state)
            procs.append(proc)
            assert install_crd_via(client).status == 201
            created = client.post(WIDGETS, widget("w1")).json
            old_rv = created["metadata"]["resourceVersion"]
            client.patch(f"{WIDGETS}/w1", {"spec": {"size": 5}})
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0

            proc, client = _start(ns, state)
            procs.append(proc)
            kept = client.get(f"{WIDGETS}/w1").json
            assert (
                kept["spec"]["size"] == 5 and kept["metadata"]["uid"] == created["metadata"]["uid"]
            )
            patched = client.patch(f"{WIDGETS}/w1", {"spec": {"size": 6}}).json
            assert int(patched["metadata"]["resourceVersion"]) > int(
                kept["metadata"]["resourceVersion"]
            )
            with client.watch(WIDGETS, resourceVersion=old_rv) as watch:
                assert watch.next()["object"]["code"] == 410
            proc.kill()  # no chance to save anything on the way out
            proc.wait(10)

            proc, client = _start(ns, state)
            procs.append(proc)
            assert client.get(f"{WIDGETS}/w1").json["spec"]["size"] == 6
            assert client.post(WIDGETS, widget("w2")).status == 201
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)


def install_crd_via(client: Client) -> Reply:
    return client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", widget_crd())


def test_bad_arguments_exit_2(capsys: object) -> None:
    assert apiserver_main(["--listen", "nonsense"]) == 2
    assert apiserver_main(["--listen", "198.19.0.1:99999"]) == 2
