"""The monitoring path's keys, from a mounted Kubernetes Secret (a directory of files).

The Secret ``aliasip-heartbeat`` (docs/design.md, "The monitoring path") holds one entry
per key, named by its id (``k1``, ``2026-12``, ...; the value is the raw key, at least 16
bytes), and an optional entry ``signing`` naming the key senders sign with. Without
``signing`` the greatest id signs. A rotation without a gap is three edits of the Secret,
each waiting until every kubelet has synced it (about a minute): add the new key (all
accept it, the old one still signs), point ``signing`` at it, remove the old key.

``KeyFiles`` reloads when the directory changed (kubelet swaps its ``..data`` link
atomically on every update), so an agent follows a rotation without a restart. A
directory that cannot be read or holds no usable key leaves the last good ring in place
and says why once: a half-written Secret must not stop the heartbeats.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from aliasip_nodeagent.heartbeat import KeyRing
from aliasip_nodeagent.logfmt import kv

log = logging.getLogger("aliasip.agent.monitor")
SIGNING_ENTRY = "signing"


class UnusableKeys(ValueError):
    """The directory does not hold a usable key ring (the message says why)."""


def load_ring(directory: Path) -> KeyRing:
    """The ring the files of ``directory`` describe (hidden files, kubelet's ``..data``
    machinery, are skipped); UnusableKeys naming the problem otherwise."""
    try:
        entries = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise UnusableKeys(
            f"cannot read the heartbeat keys in {directory}: {exc.strerror}"
        ) from exc
    keys: dict[str, bytes] = {}
    signing: str | None = None
    for path in entries:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UnusableKeys(f"cannot read {path}: {exc.strerror}") from exc
        if path.name == SIGNING_ENTRY:
            signing = data.decode(errors="replace").strip()
            continue
        keys[path.name] = data
    if not keys:
        raise UnusableKeys(f"no heartbeat key in {directory} (one file per key, named by its id)")
    if signing is None:
        signing = max(keys)
    try:
        return KeyRing(keys, signing)
    except ValueError as exc:
        raise UnusableKeys(f"heartbeat keys in {directory}: {exc}") from exc


def _stamp(directory: Path) -> tuple[object, ...]:
    """What changes when the Secret's files change: the names, sizes and times of the
    entries, and where kubelet's ``..data`` link points."""
    try:
        data_link = os.readlink(directory / "..data") if (directory / "..data").is_symlink() else ""
        stats = tuple(
            (p.name, st.st_size, st.st_mtime_ns)
            for p in sorted(directory.iterdir())
            if not p.name.startswith(".") and (st := p.stat())
        )
    except OSError:
        return ("unreadable",)
    return (data_link, stats)


class KeyFiles:
    """The ring from ``directory``, reloaded when the directory changed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp: tuple[object, ...] | None = None
        self.ring: KeyRing | None = None
        self.problem: str | None = None

    def refresh(self) -> KeyRing | None:
        """Reload if the files changed; the ring in force (None before the first good one)."""
        stamp = _stamp(self.directory)
        if stamp == self._stamp:
            return self.ring
        self._stamp = stamp
        try:
            ring = load_ring(self.directory)
        except UnusableKeys as exc:
            if str(exc) != self.problem:
                log.error(
                    kv("heartbeat-keys-unusable", error=exc, note="keeping the last good keys")
                )
            self.problem = str(exc)
            return self.ring
        if self.ring is None or ring != self.ring:
            log.info(
                kv(
                    "heartbeat-keys",
                    keys=",".join(sorted(ring.keys)),
                    signing=ring.signing,
                    directory=self.directory,
                )
            )
        self.ring, self.problem = ring, None
        return ring
