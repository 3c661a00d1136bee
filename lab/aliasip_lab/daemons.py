"""Long-running lab processes that outlive the command which started them.

``aliasip-lab up`` starts the API server, the operators and the agents and then exits; a
later ``aliasip-lab kill-agent`` or ``down`` (another process) must find them again. A
process is remembered by its pid *and* its start time (``/proc/PID/stat`` field 22), so a
pid the kernel has since given to an unrelated process is never signalled.

A daemon can be *frozen* (``aliasip-lab freeze``): SIGSTOP of the process doing the work,
as a long GC pause, a VM stall or a stopped container would hold it; SIGCONT thaws it.
Whether it is frozen is read from the kernel (``/proc/PID/stat`` state ``T``), not kept.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Children started by this process, kept so they are reaped (no zombies counted as alive).
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass
class Daemon:
    """One lab process: what it runs, where (network namespace), its log and identity."""

    role: str  # "api", "operator op-a", "agent node1"
    netns: str
    argv: list[str]
    log: str
    pid: int = 0
    start_ticks: int = 0
    nice: int = 0  # CPU priority (see cluster.CONTROL_PLANE_NICE)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Daemon:
        return cls(**data)

    @property
    def running(self) -> bool:
        return self.pid > 0 and _start_ticks(self.pid) == self.start_ticks

    def start(self) -> None:
        """Start it in its namespace, in a session of its own (a Ctrl-C on the terminal that
        ran ``aliasip-lab up`` must not reach it), output appended to its log."""
        Path(self.log).parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            niced = ["nice", "-n", str(self.nice)] if self.nice else []
            proc = subprocess.Popen(
                [*niced, "ip", "netns", "exec", self.netns, *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _children[proc.pid] = proc
        # ``nice`` and ``ip netns exec`` exec the command: the pid is the daemon's own.
        self.pid = proc.pid
        self.start_ticks = _start_ticks(proc.pid) or 0

    @property
    def workload_pid(self) -> int:
        """The process doing the work: the supervised command when this daemon is an
        ``aliasip_lab.supervise`` (its one child), else the daemon itself."""
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            return self.pid
        return int(children[0]) if "aliasip_lab.supervise" in self.argv and children else self.pid

    @property
    def frozen(self) -> bool:
        """Running, and its working process stopped by SIGSTOP."""
        return self.running and _state(self.workload_pid) == "T"

    def freeze(self, timeout_s: float = 2.0) -> None:
        """SIGSTOP the working process; return once the kernel shows it stopped."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.workload_pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout_s
        while not self.frozen and self.running and time.monotonic() < deadline:
            time.sleep(0.005)

    def thaw(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.workload_pid, signal.SIGCONT)

    def signal(self, sig: signal.Signals, timeout_s: float = 10.0) -> bool:
        """Send ``sig``; for SIGKILL/SIGTERM wait (bounded) until it is gone. False if it was
        not running. A frozen daemon is thawed after a SIGTERM, so it can act on it."""
        if not self.running:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
            if sig == signal.SIGTERM:
                self.thaw()
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.wait_gone(timeout_s)
        return True

    def wait_gone(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.running and time.monotonic() < deadline:
            proc = _children.get(self.pid)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.05)
            else:
                time.sleep(0.02)
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            proc = _children.get(self.pid)
            if proc is not None:
                proc.wait(timeout=5)
        _children.pop(self.pid, None)

    def tail(self, lines: int = 20) -> str:
        path = Path(self.log)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _state(pid: int) -> str | None:
    """The process's state letter (R, S, T, Z ...); None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2 :].split()[0]


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None if gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        proc = _children.get(pid)
        if proc is not None:
            proc.poll()  # reap it
        return None
    return int(fields[19])
