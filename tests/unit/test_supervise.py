"""The lab's stand-in for a Deployment's restarts (aliasip_lab.supervise), as processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.api.support import eventually


def supervise(*command: str, backoff: str = "0.05") -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "aliasip_lab.supervise", "--backoff", backoff, "--", *command]
    return subprocess.Popen(argv, stderr=subprocess.PIPE)


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_command_that_exits_is_started_again_until_sigterm(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    script = f"import sys; open({str(runs)!r}, 'a').write('x'); sys.exit(3)"
    proc = supervise(sys.executable, "-c", script)
    try:
        eventually(lambda: runs.exists() and len(runs.read_text()) >= 3, timeout=15)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode is not None
    assert b"exited with 3; restarting in" in err


def test_sigterm_is_passed_on_and_ends_both() -> None:
    proc = supervise(sys.executable, "-c", "import time; time.sleep(30)")
    try:
        child = eventually(lambda: children(proc.pid)[0] if children(proc.pid) else None, 10)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        eventually(lambda: not alive(child), timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_killing_the_supervisor_kills_the_command() -> None:
    proc = supervise(sys.executable, "-c", "import time; time.sleep(30)")
    child = eventually(lambda: children(proc.pid)[0] if children(proc.pid) else None, 10)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    eventually(lambda: not alive(child), timeout=5)
