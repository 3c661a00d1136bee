"""Capture raw frames on an interface with kernel receive timestamps.

Used by tests (frames are decoded with scapy there, independently of the agent's
builders) and by benchmarks (when did the first announcement reach the client?).
Open it inside the namespace to watch (``nsenter.netns``); it keeps that namespace.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4
MAX_FRAMES = 100_000


@dataclass(frozen=True)
class Frame:
    """One captured frame: kernel timestamp (epoch seconds), bytes, and direction."""

    at: float
    data: bytes
    outgoing: bool

    @property
    def ethertype(self) -> int:
        return int.from_bytes(self.data[12:14], "big")

    @property
    def src_mac(self) -> str:
        return ":".join(f"{b:02x}" for b in self.data[6:12])


class Capture:
    """Collects every frame seen on ``interface`` from ``start()`` until ``stop()``."""

    def __init__(self, interface: str) -> None:
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.bind((interface, ETH_P_ALL))
        self._frames: list[Frame] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Capture:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set() and len(self._frames) < MAX_FRAMES:
            ready, _, _ = select.select([self._sock], [], [], 0.05)
            if not ready:
                continue
            data, ancillary, _, address = self._sock.recvmsg(65535, 64)
            at = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    at = sec + nsec / 1e9
            with self._lock:
                self._frames.append(Frame(at, data, address[2] == PACKET_OUTGOING))

    def frames(self) -> list[Frame]:
        with self._lock:
            return list(self._frames)

    def wait_for(self, predicate: Callable[[Frame], bool], timeout_s: float) -> list[Frame]:
        """Frames so far, polling until one satisfies ``predicate`` or ``timeout_s`` passes."""
        return self.wait_until(lambda frames: any(predicate(f) for f in frames), timeout_s)

    def wait_until(self, condition: Callable[[list[Frame]], bool], timeout_s: float) -> list[Frame]:
        """Frames so far, polling until ``condition(frames)`` holds or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.frames()
            if condition(found):
                return found
            time.sleep(0.005)
        return self.frames()

    def stop(self) -> list[Frame]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._sock.close()
        return self.frames()

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
