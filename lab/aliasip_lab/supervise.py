"""``python -m aliasip_lab.supervise [--backoff S] -- CMD ...``: restart CMD when it exits.

In a cluster the operator runs in a Deployment: when a replica exits (it does so on
purpose when it loses its leader Lease, see aliasip_operator.main), the kubelet starts the
container again, with a growing back-off (CrashLoopBackOff). The lab has no kubelet, and
without one a leader that lost its Lease during an API stall left the lab with no
operator at all (bench/scale.py at 1,000 AliasIPs). This is that restart, and only that:

- the command exits (any code): it is started again after ``--backoff`` seconds, doubled
  on each quick exit up to ``MAX_BACKOFF_S``, reset after ``STABLE_S`` of running;
- SIGTERM/SIGINT: passed on to the command, then this exits with it (a graceful stop);
- SIGKILL of this process (``aliasip-lab kill-operator``: the pod is gone): the command
  is killed by the kernel too (``PR_SET_PDEATHSIG``), so nothing is left running.
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

PR_SET_PDEATHSIG = 1
MAX_BACKOFF_S = 10.0
STABLE_S = 30.0


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL it when this supervisor dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def supervise(argv: Sequence[str], backoff_s: float) -> int:
    stopping = threading.Event()
    child: subprocess.Popen[bytes] | None = None
    received = [signal.SIGTERM]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received[0] = signal.Signals(signum)
        stopping.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    delay = backoff_s
    while True:
        started = time.monotonic()
        child = subprocess.Popen(list(argv), preexec_fn=_die_with_parent)
        if stopping.is_set():
            # The signal came while Popen ran (the child forked, not yet ``child``): pass
            # it on now, or the supervisor would wait for a command nobody stops.
            child.send_signal(received[0])
        code = child.wait()
        if stopping.is_set():
            return code
        delay = backoff_s if time.monotonic() - started >= STABLE_S else delay
        print(
            f"supervise: {argv[-1] if argv else ''} exited with {code}; "
            f"restarting in {delay:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        if stopping.wait(delay):
            return code
        delay = min(delay * 2, MAX_BACKOFF_S)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aliasip_lab.supervise", description=__doc__)
    parser.add_argument("--backoff", type=float, default=1.0, help="first delay, seconds")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (after --)")
    return supervise(command, args.backoff)


if __name__ == "__main__":
    sys.exit(main())
