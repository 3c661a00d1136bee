"""Optional persistence: what etcd gives kube-apiserver, so that a restart loses nothing.

A kube-apiserver restart keeps every object (they live in etcd) and resourceVersions
carry on from where they were. To let the lab restart its API server the same way, the
store can write every change to an append-only file, one JSON line each, flushed to the
operating system before the request is answered (so a killed process loses nothing it
acknowledged; a host crash is outside the lab's failure model). On start the file is
replayed, then rewritten as a compact snapshot; while serving it is compacted again
whenever it holds more than twice as many lines as objects (plus a constant), so its size
and the replay time stay proportional to the data, not to the requests ever served.

Lines: ``{"rv": N}`` (a snapshot's revision), ``{"gr": [group, resource], "key":
[namespace, name], "obj": {...}}`` (an object as stored), ``{"gr": ..., "key": ...,
"deleted": N}``. A torn last line (the process died mid-write) is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import IO, Any

from aliasip_lab.apiserver.store import DELETED, Change, GroupResource, ObjectKey, Store, dumps

Json = dict[str, Any]
COMPACT_SLACK = 1000


class StateJournal:
    """Replays, then appends to, one state file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._store: Store | None = None
        self._lines = 0
        self._objects = 0

    def load(self) -> tuple[int, dict[GroupResource, dict[ObjectKey, Json]]]:
        """The saved revision and objects (nothing if the file does not exist)."""
        rv = 0
        objects: dict[GroupResource, dict[ObjectKey, Json]] = {}
        if not self.path.exists():
            return rv, objects
        with self.path.open("rb") as saved:
            for raw in saved:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    break  # a torn last line
                if "rv" in entry:
                    rv = max(rv, int(entry["rv"]))
                    continue
                gr = (str(entry["gr"][0]), str(entry["gr"][1]))
                key = (str(entry["key"][0]), str(entry["key"][1]))
                table = objects.setdefault(gr, {})
                if "deleted" in entry:
                    table.pop(key, None)
                    rv = max(rv, int(entry["deleted"]))
                else:
                    table[key] = entry["obj"]
                    rv = max(rv, int(entry["obj"].get("metadata", {}).get("resourceVersion", 0)))
        return rv, objects

    def start(self, store: Store) -> None:
        """Rewrite the file as a snapshot of ``store`` and append from now on."""
        self._store = store
        self._compact()

    def append(self, gr: GroupResource, change: Change) -> None:
        if self._file is None or self._store is None:
            return
        meta = change.obj.get("metadata", {})
        key = [meta.get("namespace", ""), meta.get("name", "")]
        if change.type == DELETED:
            line: Json = {"gr": list(gr), "key": key, "deleted": change.rv}
            self._objects -= 1
        else:
            line = {"gr": list(gr), "key": key, "obj": change.obj}
            if change.prev is None:
                self._objects += 1
        self._file.write(dumps(line) + b"\n")
        self._file.flush()
        self._lines += 1
        if self._lines > 2 * max(self._objects, 0) + COMPACT_SLACK:
            self._compact()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _compact(self) -> None:
        assert self._store is not None
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        count = 0
        with tmp.open("wb") as out:
            out.write(dumps({"rv": self._store.rv}) + b"\n")
            for gr, key, obj in self._store.dump():
                out.write(dumps({"gr": list(gr), "key": list(key), "obj": obj}) + b"\n")
                count += 1
        os.replace(tmp, self.path)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        self._objects = count
        self._lines = count + 1
        self._file = self.path.open("ab")
