"""The simulator's persistent state: JSON files in a directory, guarded by file locks.

Layout (all under the state directory)::

    lock                      the global lock file (shared by record locks, exclusive by lock())
    locks/<nn>                striped record locks (a record's key hashes to one of 64 stripes)
    systems/<id>.json         compute systems, one file each; a stopped system's file keeps
                              only its exit status (``"State": "Stopped"``), which is what HCS
                              keeps after a stop
    exits                     touched at every stop (the exit watchers poll its mtime)
    networks/<guid>.json      HCN networks
    endpoints/<guid>.json     HCN endpoints
    grants.json               HcsGrantVmAccess records {vm id: [paths]} (a record file,
                              rewritten in place; grants on deleted files are dropped)
    group-grants.json         HcsGrantVmGroupAccess records [paths]
    guests/<id>/C/            each system's guest file system (stands for C:\\), created lazily
    trash/                    guest folders of stopped systems, deleted in the background

Records (``read``/``write``) are rewritten in place under their record lock: creating a file
is by far the most expensive thing a file system does here, and a record is rewritten several
times in a system's life.  Each record file is ``HCSSIM <crc32> <length>`` on the first line,
then the JSON document; a reader checks the CRC and reads again when it raced a writer, so
reading takes no lock, and a writer killed half-way leaves at most trailing bytes that the
length excludes.  A compute system's record has two sections: the header is then
``HCSSIM <crc32> <length> <split>``, the first ``split`` bytes of the body are the small state
(id, state, handles...) and the rest is a JSON object with its bulky keys (:data:`DETAIL_KEYS`:
the whole compute-system document and its devices).  ``read(..., detail=False)`` decodes the
state only and returns a :class:`Partial` record that keeps the detail section's bytes, so
writing it back keeps them without decoding or encoding them (enumeration, state changes and
handle counts never look at the document).  Other files (grants, simulated disks) are
written atomically (temporary file, then ``os.replace``).

Locking (POSIX): :meth:`StateStore.lock_record` takes the global lock file *shared* and one
stripe file *exclusive*, so operations on different systems run in parallel, in this process
and across processes; :meth:`StateStore.lock` takes the global lock file *exclusive* (a
consistent view of everything: enumeration, HCN, grants).  Every acquisition uses its own open
file description (``flock`` locks belong to it), taken from a small pool, so threads exclude
each other exactly as processes do.  Both locks are re-entrant per thread; a thread that holds
the global lock exclusively may take any record lock (a no-op).  On Windows every lock is the
global exclusive one (``msvcrt.locking``), as before.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["DETAIL_KEYS", "Partial", "StateStore", "default_state_dir"]

_STRIPES = 64

# The bulky keys of a compute system's record, kept in its second section (see the docstring).
DETAIL_KEYS = ("Document", "Shares", "NetworkAdapters", "Attachments", "Modifications")


class Partial(dict):  # type: ignore[type-arg]
    """A system record read without its detail section; ``detail`` holds that section's raw
    JSON bytes (b"" when it has none), which :meth:`StateStore.write` writes back unchanged
    unless the record now carries detail keys of its own (then they are merged in).  A copy
    (``dict(record)``) is a plain dict without the details: never write a copy back."""

    __slots__ = ("detail",)

    def __init__(self, state: dict[str, Any], detail: bytes) -> None:
        super().__init__(state)
        self.detail = detail


def default_state_dir() -> str:
    """``$XDG_STATE_HOME/hcs-sandbox/simulator`` or ``~/.local/state/hcs-sandbox/simulator``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "hcs-sandbox", "simulator")


class _Held(threading.local):
    """What the current thread holds: global depth/mode, record stripes and their depths."""

    def __init__(self) -> None:
        self.exclusive = 0
        self.shared = 0
        self.shared_fd: int | None = None
        self.stripes: dict[int, tuple[int, int]] = {}  # stripe -> (fd, depth)


class StateStore:
    """JSON records by kind and id, shared between processes through the file system."""

    KINDS = ("systems", "networks", "endpoints")

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self._root_text = str(self.root)
        self._ready = False
        self._held = _Held()
        self._pool: dict[str, list[int]] = {}
        self._pool_lock = threading.Lock()
        self._exclusive_fd: int | None = None
        self._win_lock = threading.RLock()  # Windows: the in-process half of the global lock
        self._janitor: threading.Thread | None = None
        self._janitor_wake = threading.Event()
        self._tmp_seq = 0

    def _ensure(self) -> None:
        if not self._ready:
            for kind in (*self.KINDS, "guests", "locks"):
                (self.root / kind).mkdir(parents=True, exist_ok=True)
            self._ready = True
            if (self.root / "trash").is_dir():
                self._wake_janitor()  # leftovers of an earlier process

    # ---- locks ---------------------------------------------------------------------------------

    def _take_fd(self, name: str) -> int:
        with self._pool_lock:
            free = self._pool.get(name)
            if free:
                return free.pop()
        return os.open(self.root / name, os.O_RDWR | os.O_CREAT, 0o644)

    def _give_fd(self, name: str, fd: int) -> None:
        with self._pool_lock:
            free = self._pool.setdefault(name, [])
            if len(free) < 16:
                free.append(fd)
                return
        os.close(fd)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the whole state exclusively (threads of this process and other processes)."""
        held = self._held
        if held.exclusive:
            held.exclusive += 1
            try:
                yield
            finally:
                held.exclusive -= 1
            return
        if held.shared or held.stripes:
            raise RuntimeError("simulator state: lock() inside lock_record() (lock upgrade)")
        self._ensure()
        if sys.platform == "win32":
            self._win_lock.acquire()
        fd = self._take_fd("lock")
        try:
            _lock_fd(fd, exclusive=True)
            held.exclusive = 1
            try:
                yield
            finally:
                held.exclusive = 0
                _unlock_fd(fd)
        finally:
            self._give_fd("lock", fd)
            if sys.platform == "win32":
                self._win_lock.release()

    @contextlib.contextmanager
    def lock_record(self, kind: str, key: str) -> Iterator[None]:
        """Hold one record (``kind``/``key``) exclusively; other records stay available."""
        held = self._held
        if held.exclusive or sys.platform == "win32":
            with self.lock():
                yield
            return
        self._ensure()
        stripe = zlib.crc32(f"{kind}/{key.lower()}".encode()) % _STRIPES
        name = f"locks/{stripe:02d}"
        if held.shared == 0:
            gfd = self._take_fd("lock")
            try:
                _lock_fd(gfd, exclusive=False)
            except BaseException:
                self._give_fd("lock", gfd)
                raise
            held.shared_fd = gfd
        held.shared += 1
        try:
            entry = held.stripes.get(stripe)
            if entry is not None:
                held.stripes[stripe] = (entry[0], entry[1] + 1)
                try:
                    yield
                finally:
                    fd, depth = held.stripes[stripe]
                    held.stripes[stripe] = (fd, depth - 1)
                return
            fd = self._take_fd(name)
            try:
                _lock_fd(fd, exclusive=True)
                held.stripes[stripe] = (fd, 1)
                try:
                    yield
                finally:
                    del held.stripes[stripe]
                    _unlock_fd(fd)
            finally:
                self._give_fd(name, fd)
        finally:
            held.shared -= 1
            if held.shared == 0 and held.shared_fd is not None:
                gfd, held.shared_fd = held.shared_fd, None
                _unlock_fd(gfd)
                self._give_fd("lock", gfd)

    def close(self) -> None:
        """Close pooled lock descriptors (locks must not be held)."""
        with self._pool_lock:
            pools, self._pool = self._pool, {}
        for fds in pools.values():
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    # ---- records -------------------------------------------------------------------------------

    def _path(self, kind: str, key: str) -> str:
        return f"{self._root_text}{os.sep}{kind}{os.sep}{_file_name(key)}.json"

    def read(self, kind: str, key: str, *, detail: bool = True) -> dict[str, Any] | None:
        """The record, or None.  Lock-free: a torn read (a writer was mid-way) is retried.
        ``detail=False``: a :class:`Partial` record without its :data:`DETAIL_KEYS`."""
        self._ensure()
        return self._read_at(self._path(kind, key), detail)

    @staticmethod
    def _read_at(path: str, detail: bool = True) -> dict[str, Any] | None:
        for attempt in range(200):
            try:
                fd = os.open(path, os.O_RDONLY | _O_BINARY)
            except FileNotFoundError:
                return None
            try:
                chunks = [os.read(fd, 1 << 16)]
                while len(chunks[-1]) == 1 << 16:
                    chunks.append(os.read(fd, 1 << 16))
            finally:
                os.close(fd)
            value = _decode(b"".join(chunks), detail)
            if value is not _TORN:
                return value if isinstance(value, dict) else None
            time.sleep(0.0005 if attempt < 20 else 0.005)
        raise ValueError(f"simulator state: {path} stays unreadable (a writer died mid-way?)")

    def write(self, kind: str, key: str, record: dict[str, Any]) -> None:
        """Rewrite a record in place.  Hold its record lock (or the global lock).  A system's
        :data:`DETAIL_KEYS` go to the record's second section (a :class:`Partial` record's
        section is kept)."""
        self._ensure()
        if kind == "systems":
            state, detail = _split(record)
            self._write_at(self._path(kind, key), state, detail)
        else:
            self._write_at(self._path(kind, key), record)

    @staticmethod
    def _write_at(path: str, record: Any, detail: bytes | None = None) -> None:
        body = json.dumps(record, separators=(",", ":")).encode()
        if detail is None:
            header = f"HCSSIM {zlib.crc32(body):08x} {len(body)}\n".encode()
        else:
            split = len(body)
            body += detail
            header = f"HCSSIM {zlib.crc32(body):08x} {len(body)} {split}\n".encode()
        data = header + body
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _O_BINARY, 0o644)
        try:
            view = memoryview(data)
            offset = 0
            while offset < len(data):
                offset += _pwrite(fd, view[offset:], offset)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)

    @staticmethod
    def write_json(path: Path, value: Any, *, compact: bool = False) -> None:
        """Write ``value`` to ``path`` atomically (temporary file + ``os.replace``)."""
        if compact:
            data = json.dumps(value, separators=(",", ":")).encode()
        else:
            data = json.dumps(value, indent=1, sort_keys=True).encode()
        tmp = path.parent / f".tmp-{os.getpid()}-{threading.get_ident()}-{next(_sequence)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def delete(self, kind: str, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(kind, key))

    def records(self, kind: str, *, detail: bool = True) -> list[dict[str, Any]]:
        """Every record of ``kind`` (sorted by file name); unreadable ones are skipped.
        ``detail=False``: :class:`Partial` records (see :meth:`read`)."""
        self._ensure()
        out = []
        with os.scandir(f"{self._root_text}{os.sep}{kind}") as entries:
            paths = sorted((e.name, e.path) for e in entries if e.name.endswith(".json"))
        read = self._read_at
        for _name, path in paths:
            try:
                value = read(path, detail)
            except (OSError, ValueError):
                continue
            if value is not None:
                out.append(value)
        return out

    def record_mark(self, kind: str, key: str) -> tuple[int, int] | None:
        """``(mtime_ns, size)`` of a record file (None when missing): one ``stat``, to tell
        whether a record may have changed since it was last read."""
        try:
            st = os.stat(self._path(kind, key))
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def touch(self, name: str) -> None:
        """Update the modification time of ``<root>/name`` (created when missing)."""
        path = f"{self._root_text}{os.sep}{name}"
        try:
            os.utime(path)
        except FileNotFoundError:
            self.root.joinpath(name).touch()

    def stamp(self, name: str) -> int:
        """The modification time of ``<root>/name`` in ns (0 when missing): cheap to poll."""
        try:
            return os.stat(f"{self._root_text}{os.sep}{name}").st_mtime_ns
        except OSError:
            return 0

    def read_grants(self) -> dict[str, list[str]]:
        self._ensure()
        try:
            value = self._read_at(f"{self._root_text}{os.sep}grants.json")
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def write_grants(self, grants: dict[str, list[str]]) -> None:
        """Write the grants, dropping those on files that no longer exist.

        HcsGrantVmAccess.md: the grant is an entry in the file's
        ACL, so it goes away with the file (a file made again at the same path has no grant).
        Without this, every sandbox that deletes its own files (rather than revoking first)
        would leave its entries here for good, and each grant would rewrite an ever-growing
        file.

        Rewritten in place like a record (creating a file costs far more than rewriting
        one); hold the global lock.
        """
        self._ensure()
        exists = os.path.exists
        kept = {vm: [p for p in paths if exists(p)] for vm, paths in grants.items()}
        kept = {vm: paths for vm, paths in kept.items() if paths}
        self._write_at(f"{self._root_text}{os.sep}grants.json", kept)

    def read_file(self, name: str) -> Any:
        """The JSON value of ``<root>/name``, or None when missing or unreadable."""
        self._ensure()
        try:
            return json.loads((self.root / name).read_bytes())
        except (OSError, ValueError):
            return None

    # ---- guest folders -------------------------------------------------------------------------

    def guest_root(self, system_id: str) -> Path:
        """The folder that stands for the guest's ``C:\\`` (created on first use by a guest
        process, see :meth:`Simulator._spawn`)."""
        return self.root / "guests" / _file_name(system_id) / "C"

    def discard_guest(self, system_id: str) -> None:
        """Move a system's guest folder (if any) out of the way, in one rename; the janitor
        thread deletes it later.  Cheap enough to run under a record lock."""
        name = _file_name(system_id)
        folder = f"{self._root_text}{os.sep}guests{os.sep}{name}"
        if not os.path.isdir(folder):
            return  # the common case: no guest process ever ran in it
        trash = self.root / "trash"
        target = trash / f"{name}-{os.getpid()}-{next(_sequence)}"
        try:
            os.rename(folder, target)
        except FileNotFoundError:
            trash.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(folder, target)
            except OSError:
                _rmtree(folder)
                return
        except OSError:
            _rmtree(folder)
            return
        self._wake_janitor()

    def empty_trash(self) -> None:
        """Delete every discarded guest folder now."""
        trash = self.root / "trash"
        try:
            entries = list(os.scandir(trash))
        except OSError:
            return
        for entry in entries:
            _rmtree(entry.path)

    def _wake_janitor(self) -> None:
        self._janitor_wake.set()
        with self._pool_lock:
            if self._janitor is None:
                self._janitor = threading.Thread(
                    target=self._janitor_loop, name="hcs-sim-janitor", daemon=True
                )
                self._janitor.start()

    def _janitor_loop(self) -> None:
        """Empty the trash when woken; end after 10 idle seconds (restarted on demand)."""
        while True:
            if not self._janitor_wake.wait(10.0):
                with self._pool_lock:
                    if self._janitor_wake.is_set():
                        continue
                    self._janitor = None
                    return
            self._janitor_wake.clear()
            self.empty_trash()


_O_BINARY: int = getattr(os, "O_BINARY", 0)


def _rmtree(path: str) -> None:
    import shutil  # here only: it imports bz2 and lzma (~3 ms of a simulated CLI start)

    shutil.rmtree(path, ignore_errors=True)


_TORN = object()


@functools.lru_cache(maxsize=4096)
def _file_name(key: str) -> str:
    """A record key as a file name: lower case (ids are case-insensitive), percent-quoted."""
    return quote(key.lower(), safe="")


_sequence = itertools.count(1)  # unique names of temporary files (with the pid and thread)


def _write_at(fd: int, data: memoryview, offset: int) -> int:
    """``pwrite`` for platforms without it (Windows): seek, then write."""
    os.lseek(fd, offset, os.SEEK_SET)
    return os.write(fd, data)


_pwrite: Callable[[int, memoryview, int], int] = getattr(os, "pwrite", _write_at)


def _split(record: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """A system record as (state without :data:`DETAIL_KEYS`, the detail section's bytes)."""
    own = {k: record[k] for k in DETAIL_KEYS if k in record}
    kept = record.detail if isinstance(record, Partial) else b""
    if not own:
        return record, kept
    state = {k: v for k, v in record.items() if k not in own}
    if kept and len(own) < len(DETAIL_KEYS):
        merged = json.loads(kept)
        merged.update(own)
        own = merged
    return state, json.dumps(own, separators=(",", ":")).encode()


def _decode(data: bytes, detail: bool = True) -> Any:
    """A record file's JSON value; ``_TORN`` when the bytes do not (yet) match the header.
    A two-section record (``split`` in the header) is merged, or with ``detail=False``
    returned as a :class:`Partial` record.

    Plain JSON (no header) is accepted too, for files written by hand."""
    if not data.startswith(b"HCSSIM "):
        if not data.strip():
            return _TORN  # created, not written yet
        try:
            return json.loads(data)
        except ValueError:
            return _TORN
    newline = data.find(b"\n")
    try:
        fields = data[:newline].decode("ascii").split(" ")
        crc, length = int(fields[1], 16), int(fields[2])
        split = int(fields[3]) if len(fields) == 4 else None
        if len(fields) not in (3, 4) or (split is not None and not 0 < split <= length):
            return _TORN
    except (ValueError, IndexError):
        return _TORN
    body = data[newline + 1 : newline + 1 + length]
    if len(body) != length or zlib.crc32(body) != crc:
        return _TORN
    if split is None:
        return json.loads(body)
    state = json.loads(body[:split])
    rest = body[split:]
    if not detail:
        return Partial(state, rest) if isinstance(state, dict) else state
    if rest:
        state.update(json.loads(rest))
    return state


if sys.platform == "win32":
    import msvcrt

    def _lock_fd(fd: int, *, exclusive: bool) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)

    def _unlock_fd(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_fd(fd: int, *, exclusive: bool) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
