"""The simulator's persistent state: JSON files in a directory, guarded by a file lock.

Layout (all under the state directory)::

    lock                      advisory lock file (fcntl.flock / msvcrt.locking)
    systems/<id>.json         live compute systems
    exited/<id>.json          exit status of stopped systems (what HCS keeps after a stop)
    networks/<guid>.json      HCN networks
    endpoints/<guid>.json     HCN endpoints
    grants.json               HcsGrantVmAccess records {vm id: [paths]}
    guests/<id>/C/            each system's guest file system (stands for C:\\)

Writes are atomic (write a temporary file, then ``os.replace``).  The lock is re-entrant within a
process (a thread-level RLock plus one OS-level lock held by the outermost holder).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["StateStore", "default_state_dir"]


def default_state_dir() -> str:
    """``$XDG_STATE_HOME/hcs-sandbox/simulator`` or ``~/.local/state/hcs-sandbox/simulator``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "hcs-sandbox", "simulator")


class StateStore:
    """JSON records by kind and id, shared between processes through the file system."""

    KINDS = ("systems", "exited", "networks", "endpoints")

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self._rlock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            for kind in self.KINDS:
                (self.root / kind).mkdir(parents=True, exist_ok=True)
            (self.root / "guests").mkdir(parents=True, exist_ok=True)
            self._ready = True

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the state lock (threads of this process and other processes)."""
        with self._rlock:
            self._ensure()
            if self._depth == 0:
                fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
                _lock_fd(fd)
                self._fd = fd
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    _unlock_fd(self._fd)
                    os.close(self._fd)
                    self._fd = None

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / (quote(key.lower(), safe="") + ".json")

    def read(self, kind: str, key: str) -> dict[str, Any] | None:
        self._ensure()
        try:
            text = self._path(kind, key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        value = json.loads(text)
        return value if isinstance(value, dict) else None

    def write(self, kind: str, key: str, record: dict[str, Any]) -> None:
        self._ensure()
        self.write_json(self._path(kind, key), record)

    @staticmethod
    def write_json(path: Path, value: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(value, handle, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def delete(self, kind: str, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(kind, key).unlink()

    def records(self, kind: str) -> list[dict[str, Any]]:
        self._ensure()
        out = []
        for path in sorted((self.root / kind).glob("*.json")):
            try:
                value = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(value, dict):
                out.append(value)
        return out

    def read_grants(self) -> dict[str, list[str]]:
        self._ensure()
        try:
            value = json.loads((self.root / "grants.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def write_grants(self, grants: dict[str, list[str]]) -> None:
        self.write_json(self.root / "grants.json", grants)

    def guest_root(self, system_id: str) -> Path:
        """The folder that stands for the guest's ``C:\\``."""
        return self.root / "guests" / quote(system_id.lower(), safe="") / "C"


if sys.platform == "win32":
    import msvcrt

    def _lock_fd(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)

    def _unlock_fd(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
