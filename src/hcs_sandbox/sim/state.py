"""The simulator's persistent state: JSON files in a directory, guarded by file locks.

Layout (all under the state directory)::

    lock                      the global lock file (shared by record locks, exclusive by lock())
    locks/<nn>                striped record locks (a record's key hashes to one of 64 stripes)
    systems/<id>.json         compute systems, one file each; a stopped system's file keeps
                              only its exit status (``"State": "Stopped"``), which is what HCS
                              keeps after a stop, until every process that held a handle has
                              ended (Simulator.sweep_stopped)
    systems.swept             touched when such a sweep begins (one a minute at most)
    exits                     touched at every stop, pause and resume (the exit watchers
                              poll its mtime)
    networks/<guid>.json      HCN networks
    endpoints/<guid>.json     HCN endpoints
    grants/<nn>.json          HcsGrantVmAccess records {"Grants": {vm id: {path: [st_dev,
                              st_ino]}}, "Checked": n}, a VM's in the one of 16 files its id
                              hashes to (record files, rewritten in place under a flock
                              on the file itself; a grant counts while its path names the
                              same file; see StateStore.grant)
    group-grants.json         HcsGrantVmGroupAccess records [paths]
    disks/<dev>-<ino>/C/      the guest file system (C:\\) on a disk (its file's device and inode):
                              the first writable disk a system attaches; disk.json beside it
                              names the disk's path and the VolumeId written into the disk
                              when the folder was made (see disk_guest_root)
    guests/<id>/C/            the guest file system of a system with no such disk (stands for
                              C:\\), created lazily, discarded when the system stops
    trash/                    discarded guest folders, deleted in the background

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
handle counts never look at the document).  Other files (group grants, simulated disks) are
written atomically (temporary file, then ``os.replace``).

Locking (POSIX): :meth:`StateStore.lock_record` takes the global lock file *shared* and one
stripe file *exclusive*, so operations on different systems run in parallel, in this process
and across processes; :meth:`StateStore.lock` takes the global lock file *exclusive* (a
consistent view of everything: enumeration, HCN, group grants).  Every acquisition uses its own open
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
import weakref
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "DETAIL_KEYS",
    "Partial",
    "StateStore",
    "default_state_dir",
    "ensure_private_dir",
    "read_bytes",
]

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

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # A string: pathlib (and the urllib.parse and ipaddress it imports) is not needed on
        # the paths every simulated CLI command takes (~5 ms of its start).
        self._root_text = os.path.normpath(os.fspath(root))
        self._ready = False
        self._held = _Held()
        self._pool: dict[str, list[int]] = {}
        self._pool_lock = threading.Lock()
        self._exclusive_fd: int | None = None
        self._win_lock = threading.RLock()  # Windows: the in-process half of the global lock
        self._janitor: threading.Thread | None = None
        self._janitor_wake = threading.Event()
        self._sweep_again = False  # the janitor sweeps again a second after a stop
        self._tmp_seq = 0
        # grants file -> (its bytes, their decoding: table, checked); see _grant_table
        self._grant_cache: dict[str, tuple[bytes, dict[str, dict[str, Any]], int]] = {}
        # The process that opened the pooled descriptors: a forked child shares the parent's
        # open file descriptions, so flock on an inherited descriptor would exclude nothing
        # between the two; the child opens its own (_take_fd).
        self._pid = os.getpid()

    def _forget_descriptors(self) -> None:
        """In a forked child: drop the pooled and held descriptors inherited from the parent
        (closing the child's copies releases none of the parent's locks)."""
        self._pid = os.getpid()
        self._pool_lock = threading.Lock()
        pools, self._pool = self._pool, {}
        self._held = _Held()
        for fds in pools.values():
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    @property
    def root(self) -> Path:
        """The state directory."""
        from pathlib import Path

        return Path(self._root_text)

    @property
    def state_text(self) -> str:
        """The state directory, as a string."""
        return self._root_text

    def _ensure(self) -> None:
        if not self._ready:
            ensure_private_dir(self._root_text)
            for kind in (*self.KINDS, "guests", "locks", "grants"):
                with contextlib.suppress(FileExistsError):
                    os.mkdir(f"{self._root_text}{os.sep}{kind}", 0o700)
            self._ready = True
            root = self._root_text
            if os.path.isdir(f"{root}{os.sep}trash") or os.path.isdir(f"{root}{os.sep}disks"):
                self._wake_janitor()  # leftovers of an earlier process, deleted disks' files

    # ---- locks ---------------------------------------------------------------------------------

    def _take_fd(self, name: str) -> int:
        if self._pid != os.getpid():  # forked: never use the parent's descriptors
            self._forget_descriptors()
        with self._pool_lock:
            free = self._pool.get(name)
            if free:
                return free.pop()
        return os.open(f"{self._root_text}{os.sep}{name}", os.O_RDWR | os.O_CREAT, 0o644)

    def _drop_pooled(self, name: str) -> None:
        """Close the idle pooled descriptors of ``name`` (its file was deleted: the next
        :meth:`_take_fd` opens the file now at that path)."""
        with self._pool_lock:
            stale = self._pool.pop(name, [])
        for fd in stale:
            with contextlib.suppress(OSError):
                os.close(fd)

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
                data = read_bytes(path)
            except FileNotFoundError:
                return None
            value = _decode(data, detail)
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
            # The stamp first: a writer killed in between leaves the stamp moved (the index
            # of system records is then checked file by file; see summaries).
            self.touch(f"{kind}.stamp")
            self._write_at(self._path(kind, key), state, detail)
        else:
            self._write_at(self._path(kind, key), record)

    @staticmethod
    def _write_at(path: str, record: Any, detail: bytes | None = None) -> bytes:
        """Write a record file in place; returns the bytes written."""
        data = _encode(record, detail)
        StateStore._put(path, data)
        return data

    @staticmethod
    def _put(path: str, data: bytes) -> None:
        """Rewrite the file ``path`` in place with ``data`` (created when missing)."""
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
    def write_json(path: str | os.PathLike[str], value: Any) -> None:
        """Write ``value`` to ``path`` atomically (temporary file + ``os.replace``)."""
        data = json.dumps(value, indent=1, sort_keys=True).encode()
        folder = os.path.dirname(os.fspath(path))
        tmp = os.path.join(folder, f".tmp-{os.getpid()}-{threading.get_ident()}-{next(_sequence)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o644)
        except FileNotFoundError:
            os.makedirs(folder or ".", exist_ok=True)
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

    @staticmethod
    def write_file(path: str, value: Any, *, create: bool) -> None:
        """Write ``value`` (JSON, as :meth:`write_json` does) to a file standing for a disk,
        a state file or a save file.  ``create``: make a new file (``FileExistsError`` when
        something is already at ``path``, ``FileNotFoundError`` when its folder is missing);
        else rewrite the existing file in place (``FileNotFoundError`` when it is gone), so it
        stays the same file: a VM-access grant on it still counts, as an ACL entry on Windows
        stays with a file that HCS writes into.  Compact JSON on one line (the C encoder:
        ``indent`` takes CPython's pure-Python encoder, ~8x slower)."""
        data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        flags = os.O_WRONLY | _O_BINARY | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(path, flags, 0o644)
        try:
            view = memoryview(data)
            offset = 0
            while offset < len(data):
                offset += _pwrite(fd, view[offset:], offset)
            if not create:
                os.ftruncate(fd, len(data))
        finally:
            os.close(fd)

    def delete(self, kind: str, key: str) -> None:
        """Delete a record.  Hold its record lock (or the global lock)."""
        if kind in _INDEXED:
            self.touch(f"{kind}.stamp")  # first, as in write()
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

    def summaries(self, kind: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every record of ``kind`` (sorted by file name, unreadable ones skipped) as a plain
        dict of its ``keys`` that it has (never write one back: it is not the whole record),
        taken from the index file ``<kind>.index`` instead of reading every record.

        Every write or deletion of such a record first touches ``<kind>.stamp`` (under the
        record's lock; first, so a writer killed half-way has still moved it).  When the
        stamp is the one the index was made with, and was already :data:`INDEX_MARGIN_NS`
        old then (a file system clock is coarse: a touch in the same tick could keep its
        mtime), nothing changed since: the index is the answer.  Else every record file is
        listed and ``stat``-ed; one is read again when its ``(mtime_ns, size, inode)``
        differs from the index's, or when the index cannot vouch for it (written less than
        the margin before it was read into the index).  Either way
        a record created, rewritten or deleted a moment ago by any process is seen.

        Hold the global lock exclusively (:meth:`lock`): no record changes meanwhile, and only
        holders of that lock write the index (in place; a torn or unreadable index, or one
        made for other ``keys``, is ignored and written again).  Only for the kinds whose
        writes touch the stamp (:data:`_INDEXED`).
        """
        if kind not in _INDEXED:
            raise ValueError(f"simulator state: no index of {kind!r} records")
        self._ensure()
        index_path = f"{self._root_text}{os.sep}{kind}.index"
        index = _read_index(index_path, keys)
        old: dict[str, list[Any]] = index["Files"] if index else {}
        vouch_before = time.time_ns() - INDEX_MARGIN_NS
        stamp_path = f"{self._root_text}{os.sep}{kind}.stamp"
        try:
            try:
                st = os.stat(stamp_path)
            except FileNotFoundError:  # a new state directory, or one of an older simulator
                self.touch(f"{kind}.stamp")
                st = os.stat(stamp_path)
            stamp: list[int] | None = [st.st_mtime_ns, st.st_size, st.st_ino]
        except OSError:
            stamp = None
        if index and stamp is not None and index["Stamp"] == stamp and index["StampVouched"]:
            return [_summary(keys, cached[4]) for cached in old.values()]
        new: dict[str, list[Any]] = {}
        out: list[dict[str, Any]] = []
        changed = False
        with os.scandir(f"{self._root_text}{os.sep}{kind}") as entries:
            files = sorted((e.name, e) for e in entries if e.name.endswith(".json"))
        for name, entry in files:
            try:
                # Windows: DirEntry.stat() has no inode and comes from the directory listing,
                # which NTFS may update late; os.stat asks the file itself.
                st = os.stat(entry.path) if sys.platform == "win32" else entry.stat()
            except OSError:
                changed = True
                continue
            cached = old.get(name)
            if not (
                cached is not None
                and cached[3] is True
                and cached[0] == st.st_mtime_ns
                and cached[1] == st.st_size
                and cached[2] == st.st_ino
            ):
                changed = True
                try:
                    record = self._read_at(entry.path, False)
                except (OSError, ValueError):
                    continue  # skipped, as records() does
                if record is None:
                    continue
                if all(k in record for k in keys):
                    values: Any = [record[k] for k in keys]  # the usual case: positional
                else:
                    values = {k: record[k] for k in keys if k in record}
                vouched = st.st_mtime_ns < vouch_before
                cached = [st.st_mtime_ns, st.st_size, st.st_ino, vouched, values]
            new[name] = cached
            out.append(_summary(keys, cached[4]))
        stamp_vouched = stamp is not None and stamp[0] < vouch_before
        if (
            changed
            or len(new) != len(old)
            or not index
            or index["Stamp"] != stamp
            or index["StampVouched"] != stamp_vouched
        ):
            value = {
                "Version": _INDEX_VERSION,
                "Keys": list(keys),
                "Stamp": stamp,
                "StampVouched": stamp_vouched,
                "Files": new,
            }
            with contextlib.suppress(OSError):
                self._write_at(index_path, value)
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
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | _O_BINARY, 0o644))

    def stamp(self, name: str) -> int:
        """The modification time of ``<root>/name`` in ns (0 when missing): cheap to poll."""
        try:
            return os.stat(f"{self._root_text}{os.sep}{name}").st_mtime_ns
        except OSError:
            return 0

    # ---- VM-access grants (HcsGrantVmAccess) ----------------------------------------------------

    def _grant_file(self, stripe: int) -> str:
        return f"{self._root_text}{os.sep}grants{os.sep}{stripe:02d}.json"

    def grant(self, vm_id: str, path: str, add: bool, ident: list[int] | None = None) -> None:
        """Grant (``add``) or revoke ``vm_id``'s access to ``path`` (an absolute path).

        HcsGrantVmAccess.md: the grant is an entry in the file's ACL, so it goes away with
        the file, and a file made again at the same path has no grant.  Each grant therefore
        records the identity of the file it was made on (``st_dev``, ``st_ino``) and counts
        only while the path still names that file.  The grants live in
        ``grants/<nn>.json``, one of :data:`_GRANT_STRIPES` record files picked by the VM id
        (no file is created per VM and no global lock is taken).  POSIX: the file is its own
        lock: it is locked (``flock``), read and rewritten in place through one pooled
        descriptor (one per holder: threads exclude each other as processes do), and a
        descriptor whose file was deleted meanwhile (``st_nlink`` 0) is dropped; Windows:
        under the file's record lock.  A write drops ``vm_id``'s grants that no longer count, and
        once the file holds twice as many grants as after its last clean-up (at least
        :data:`_GRANT_SLACK`), everyone's: files deleted without a revoke leave a bounded
        number of grants behind, at an amortised O(1) ``stat`` calls per grant.

        ``ident``: ``[st_dev, st_ino]`` of ``path``, when the caller has just ``stat``-ed it
        (else it is ``stat``-ed here, before the lock is taken: fewer system calls inside it).
        Raises ``FileNotFoundError`` when granting a path that does not exist.
        """
        self._ensure()
        key = vm_id.lower()
        stripe = _grant_stripe(key)
        target = self._grant_file(stripe)
        if add and ident is None:
            st = os.stat(path)
            ident = [st.st_dev, st.st_ino]
        if sys.platform == "win32":
            with self.lock_record("grants", f"{stripe:02d}"):
                try:
                    data = read_bytes(target)
                except FileNotFoundError:
                    data = b""
                new = self._grant_change(target, data, key=key, path=path, add=add, ident=ident)
                if new is not None:
                    self._put(target, new[0])
                    self._grant_cache[target] = new
        else:
            # POSIX: the grants file is its own lock (flock on a pooled descriptor of it: one per
            # holder, so threads exclude each other as processes do), read and rewritten through
            # that descriptor: no record lock, no open per read or write.
            name = f"grants{os.sep}{stripe:02d}.json"
            for _attempt in range(3):
                fd = self._take_fd(name)
                keep = True
                try:
                    _lock_fd(fd, exclusive=True)
                    try:
                        if os.fstat(fd).st_nlink == 0:  # deleted under us (a wiped state dir)
                            keep = False
                            self._drop_pooled(name)  # the pool's others name it too
                            continue
                        data = _pread_all(fd)
                        new = self._grant_change(
                            target, data, key=key, path=path, add=add, ident=ident
                        )
                        if new is not None:
                            body = new[0]
                            view = memoryview(body)
                            offset = 0
                            while offset < len(body):
                                offset += os.pwrite(fd, view[offset:], offset)
                            if len(body) < len(data):
                                os.ftruncate(fd, len(body))
                            self._grant_cache[target] = new
                        return
                    finally:
                        _unlock_fd(fd)
                finally:
                    if keep:
                        self._give_fd(name, fd)
                    else:
                        os.close(fd)
            raise OSError(f"simulator state: {target} keeps being deleted")

    def _grant_change(
        self,
        target: str,
        data: bytes,
        *,
        key: str,
        path: str,
        add: bool,
        ident: list[int] | None,
    ) -> tuple[bytes, dict[str, dict[str, Any]], int] | None:
        """The new content of a grants file holding ``data`` (its lock held) after granting or
        revoking ``key``'s access to ``path``: ``(its bytes, table, checked)``, or None
        when nothing changes (a file still empty is written anyway)."""
        table, checked = self._grant_decode(target, data)
        kept = {vm: dict(entries) for vm, entries in table.items()}
        mine = {p: i for p, i in kept.pop(key, {}).items() if _same_file(p, i)}
        if add:
            assert ident is not None
            mine[path] = list(ident)
        else:
            mine.pop(path, None)
        if mine:
            kept[key] = mine
        count = sum(len(entries) for entries in kept.values())
        if count > max(_GRANT_SLACK, 2 * checked):  # clean up everyone's
            kept = {
                vm: live
                for vm, entries in kept.items()
                if (live := {p: i for p, i in entries.items() if _same_file(p, i)})
            }
            checked = sum(len(entries) for entries in kept.values())
        if kept == table and data:
            return None
        return _encode({"Grants": kept, "Checked": checked}), kept, checked

    def granted(self, vm_id: str) -> list[str]:
        """The paths ``vm_id`` is granted (files or folders) that still count: the grant's
        file is still at its path.  Lock-free, like :meth:`read`."""
        self._ensure()
        key = vm_id.lower()
        entries = self._grant_table(self._grant_file(_grant_stripe(key)))[0].get(key, {})
        return [p for p, ident in entries.items() if _same_file(p, ident)]

    def read_grants(self) -> dict[str, list[str]]:
        """Every VM's grants that still count (see :meth:`granted`): ``{vm id: [paths]}``."""
        self._ensure()
        out: dict[str, list[str]] = {}
        for stripe in range(_GRANT_STRIPES):
            for vm, entries in self._grant_table(self._grant_file(stripe))[0].items():
                live = [p for p, ident in entries.items() if _same_file(p, ident)]
                if live:
                    out[vm] = live
        return out

    def _grant_table(self, path: str) -> tuple[dict[str, dict[str, Any]], int]:
        """A grants file, read without its lock: ``({vm id: {path: [st_dev, st_ino]}}, the
        number of grants it held after its last clean-up)``.  See :meth:`_grant_decode`."""
        try:
            data = read_bytes(path)
        except OSError:
            return {}, 0
        return self._grant_decode(path, data, locked=False)

    def _grant_decode(
        self, path: str, data: bytes, *, locked: bool = True
    ) -> tuple[dict[str, dict[str, Any]], int]:
        """The grants file ``path`` holding ``data``.  An empty file (just made by a writer
        that holds its lock, or left by one killed before its first write) has no grants.
        Torn content: read without the lock (``locked`` False), a writer was mid-way: read
        again (as :meth:`read` does); under the lock, a writer was killed mid-way: no grants
        (the next write mends the file).  Never change the table returned: it may be the
        cached decoding of these bytes (``_grant_cache``: kept per file with the exact bytes
        it was decoded from, or written as; used only when the file holds those bytes now,
        so it can never be stale, whoever wrote the file)."""
        cached = self._grant_cache.get(path)
        if cached is not None and cached[0] == data:
            return cached[1], cached[2]
        if not data:
            return {}, 0
        value = _decode(data)
        if value is _TORN:
            if locked:
                return {}, 0
            try:
                value = self._read_at(path)
            except (OSError, ValueError):
                return {}, 0
            return _grant_value(value)  # not cached: these are not the bytes just read
        result = _grant_value(value)
        self._grant_cache[path] = (data, *result)
        return result

    def read_file(self, name: str) -> Any:
        """The JSON value of ``<root>/name``, or None when missing or unreadable."""
        self._ensure()
        try:
            return json.loads(read_bytes(f"{self._root_text}{os.sep}{name}"))
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
        self._discard(folder, name)

    def disk_guest_root(self, disk_path: str, new_volume: Callable[[], str]) -> Path | None:
        """The folder that stands for the guest's ``C:\\`` on the disk at ``disk_path``
        (created on first use by a guest process): on Windows the guest's files live on its
        disk, so every system that attaches the same disk sees the same files, and they go
        with the disk.  None when the disk is gone, is no simulated disk, or cannot be
        written (the caller gives the system a folder of its own).

        A folder is handed to a disk only when the disk provably is the file it was made
        for (review RV-sim F1): ``disks/<st_dev>-<st_ino>`` is the file's identity; its
        ``disk.json`` names the path, which must still name that same file (a disk renamed,
        or deleted and its inode number given to another file at another path, is another
        disk); and the ``VolumeId`` that was written into the disk file when the folder was
        made (``new_volume()``, an id no other disk had) must still be in it.  Any file made
        since carries another or none: CreateVirtualDisk and HcsFormatWritableLayerVhd make
        a new one, and a copy carries its source's, which is that of a template (never
        this folder's: the id was made for this file after it was copied) or of the very
        disk the folder was made for (a byte copy of the disk holds its files, as on
        Windows).  The disk stays open meanwhile, so its inode number cannot be reused."""
        try:
            fd = os.open(disk_path, os.O_RDWR | _O_BINARY)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            name = f"{st.st_dev}-{st.st_ino}"
            disks = f"{self._root_text}{os.sep}disks"
            folder = f"{disks}{os.sep}{name}"
            with self.lock_record("disks", name):  # against another process and the sweep
                try:
                    disk = json.loads(os.read(fd, 1 << 16))  # a small file, just opened
                except (OSError, ValueError):
                    return None
                if not isinstance(disk, dict):
                    return None
                marker = _read_small_json(f"{folder}{os.sep}disk.json")
                volume = disk.get("VolumeId")
                if (
                    isinstance(marker, dict)
                    and isinstance(volume, str)
                    and marker.get("VolumeId") == volume
                    and _names_file(marker.get("Path"), st)
                ):
                    return self.root / "disks" / name / "C"  # the same disk
                if os.path.isdir(folder):
                    self._discard(folder, name)
                # The disk first (a marker without its id in the disk matches nothing).
                disk["VolumeId"] = new_volume()
                _rewrite(fd, json.dumps(disk, sort_keys=True, separators=(",", ":")).encode())
                with contextlib.suppress(FileExistsError):
                    os.mkdir(disks, 0o700)
                os.mkdir(folder, 0o700)
                marker = {"Path": os.path.abspath(disk_path), "VolumeId": disk["VolumeId"]}
                self.write_json(f"{folder}{os.sep}disk.json", marker)
        finally:
            os.close(fd)
        return self.root / "disks" / name / "C"

    def wake_disk_sweep(self) -> None:
        """A disk was made: disks deleted since may have left guest files (deleted by the
        janitor thread, :meth:`sweep_disks`).  One ``stat`` while no disk holds guest files
        (a look at most once a second was tried: no fewer instructions per create within
        bench_verb_instructions' noise, and a disk made within that second swept nothing)."""
        if os.path.isdir(f"{self._root_text}{os.sep}disks"):
            self._wake_janitor()

    def disk_may_go(self) -> None:
        """A system stopped: its disk may be deleted next (hcs-sandbox deletes a removed
        sandbox's scratch disk just after its system stops, with no call the simulator
        sees).  When any disk holds guest files (one ``stat`` otherwise), the janitor
        sweeps now and again a second later, and this process sweeps once more when it
        exits (review RV-sim F2)."""
        if not os.path.isdir(f"{self._root_text}{os.sep}disks"):
            return
        if not _exit_hook:
            import atexit

            _exit_hook.append(True)
            atexit.register(_sweep_at_exit)  # once per process: see _sweep_at_exit
        _exit_sweeps.add(self)
        self._sweep_again = True
        self._wake_janitor()

    def sweep_disks(self) -> None:
        """Discard the guest files of every disk that is gone: no file at its path any more,
        another file there, or the disk formatted again (another ``VolumeId``).  A disk
        renamed or moved is taken for gone."""
        disks = f"{self._root_text}{os.sep}disks"
        try:
            entries = list(os.scandir(disks))
        except OSError:
            return
        for entry in entries:
            with self.lock_record("disks", entry.name):
                marker = _read_small_json(f"{entry.path}{os.sep}disk.json")
                if isinstance(marker, dict) and _disk_still_there(entry.name, marker):
                    continue
                if os.path.isdir(entry.path):
                    self._discard(entry.path, entry.name)

    def _discard(self, folder: str, name: str) -> None:
        """Move ``folder`` into ``trash/`` (one rename) for the janitor to delete."""
        trash = f"{self._root_text}{os.sep}trash"
        target = f"{trash}{os.sep}{name}-{os.getpid()}-{next(_sequence)}"
        try:
            os.rename(folder, target)
        except FileNotFoundError:
            os.makedirs(trash, 0o700, exist_ok=True)
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
        try:
            entries = list(os.scandir(f"{self._root_text}{os.sep}trash"))
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
        """Sweep deleted disks and empty the trash when woken, and a second later after a
        stop (:meth:`disk_may_go`); end after 10 idle seconds (restarted on demand)."""
        while True:
            again = self._sweep_again
            if not self._janitor_wake.wait(1.0 if again else 10.0):
                if again:
                    self._sweep_again = False
                    self.sweep_disks()
                    self.empty_trash()
                    continue
                with self._pool_lock:
                    if self._janitor_wake.is_set():
                        continue
                    self._janitor = None
                    return
            self._janitor_wake.clear()
            self.sweep_disks()
            self.empty_trash()


_O_BINARY: int = getattr(os, "O_BINARY", 0)


#: The stores in which a system stopped while a disk held guest files (disk_may_go).
_exit_sweeps: weakref.WeakSet[StateStore] = weakref.WeakSet()
_exit_hook: list[bool] = []  # _sweep_at_exit registered (once per process)


def _sweep_at_exit() -> None:
    """At exit: the guest files of the disks deleted since a stop go (``hcs-sandbox rm``
    deletes the scratch disk after the stop and then ends; the janitor is a daemon
    thread).  Costs a look at each disk that holds guest files, and deleting the files of
    those gone."""
    for store in list(_exit_sweeps):
        with contextlib.suppress(OSError):
            store.sweep_disks()
            store.empty_trash()


def ensure_private_dir(root: str) -> None:
    """Make the simulator's folder owner-only, as hcs-sandbox's state directory is
    (``sandbox/paths.py``): created with mode 0700; an existing one of this user that
    others may enter is tightened to 0700; one of another user is refused (PermissionError).
    It holds every guest's ``C:``, every system's document and the simulated host's
    ProgramData, which on Windows only SYSTEM and Administrators may read."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        parent = os.path.dirname(root)
        if parent:
            os.makedirs(parent, exist_ok=True)
        try:
            os.mkdir(root, 0o700)
            return
        except FileExistsError:
            st = os.stat(root)
    if sys.platform == "win32":  # pragma: no cover - POSIX modes only
        return
    if st.st_uid != os.getuid():
        raise PermissionError(
            f"the HCS simulator's folder {root} belongs to another user (uid {st.st_uid}): "
            "use a folder of your own (HCS_SANDBOX_SIMULATOR=/absolute/dir)"
        )
    if st.st_mode & 0o077:
        os.chmod(root, 0o700)


def read_bytes(path: str) -> bytes:
    """The whole content of a file: ``os.open``/``os.read`` (about a third of the CPU and
    of the system calls of ``open(path, "rb").read()``, which sets up a buffered file)."""
    fd = os.open(path, os.O_RDONLY | _O_BINARY)
    try:
        chunks = [os.read(fd, 1 << 16)]
        while len(chunks[-1]) == 1 << 16:
            chunks.append(os.read(fd, 1 << 16))
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _read_small_json(path: str) -> Any:
    """The JSON value of a small file (its first 64 KiB), or None when missing or not JSON."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_BINARY)
    except OSError:
        return None
    try:
        return json.loads(os.read(fd, 1 << 16))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _names_file(path: Any, st: os.stat_result) -> bool:
    """Whether ``path`` names the file ``st`` is of (device and inode)."""
    if not isinstance(path, str):
        return False
    try:
        named = os.stat(path)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (st.st_dev, st.st_ino)


def _rewrite(fd: int, data: bytes) -> None:
    """Rewrite the open file ``fd`` in place with ``data`` (the same file: grants stay)."""
    view = memoryview(data)
    offset = 0
    while offset < len(data):
        offset += _pwrite(fd, view[offset:], offset)
    os.ftruncate(fd, len(data))


def _disk_still_there(name: str, marker: dict[str, Any]) -> bool:
    """Whether the disk a ``disks/<name>/disk.json`` marker names is still that disk."""
    path = marker.get("Path")
    if not isinstance(path, str):
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    if f"{st.st_dev}-{st.st_ino}" != name:
        return False
    disk = _read_small_json(path)
    volume = disk.get("VolumeId") if isinstance(disk, dict) else None
    return bool(volume == marker.get("VolumeId"))


def _rmtree(path: str) -> None:
    import shutil  # here only: it imports bz2 and lzma (~3 ms of a simulated CLI start)

    shutil.rmtree(path, ignore_errors=True)


_TORN = object()

INDEX_MARGIN_NS = 2_000_000_000  # see StateStore.summaries
_INDEXED = ("systems",)  # record kinds whose writes touch <kind>.stamp (StateStore.summaries)
_INDEX_VERSION = 1


def _read_index(path: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
    """The index :meth:`StateStore.summaries` keeps: ``Stamp`` (the stamp's [mtime_ns, size,
    inode] or None), ``StampVouched`` and ``Files``: {file name: [mtime_ns, size, inode,
    vouched, values]} (``values``: a list in ``keys`` order, or a dict when the record lacks
    some of them).  None when missing, torn, not understood or made for other keys (it is
    then written again)."""
    try:
        with open(path, "rb") as fh:
            value = _decode(fh.read())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(value, dict)
        or value.get("Version") != _INDEX_VERSION
        or value.get("Keys") != list(keys)
        or not isinstance(value.get("Files"), dict)
        or not isinstance(value.get("StampVouched"), bool)
        or not (value.get("Stamp") is None or isinstance(value.get("Stamp"), list))
    ):
        return None
    for entry in value["Files"].values():
        if not (
            isinstance(entry, list)
            and len(entry) == 5
            and (
                (isinstance(entry[4], list) and len(entry[4]) == len(keys))
                or isinstance(entry[4], dict)
            )
        ):
            return None  # not written by this code: read every record again
    return value


def _summary(keys: tuple[str, ...], values: Any) -> dict[str, Any]:
    if isinstance(values, list):
        return dict(zip(keys, values, strict=True))
    return dict(values)


_GRANT_STRIPES = 16  # grants/<nn>.json files (a VM's grants are in the one its id hashes to)
_GRANT_SLACK = 16  # a grants file is cleaned up past max(this, twice its grants after the last)


def _grant_value(value: Any) -> tuple[dict[str, dict[str, Any]], int]:
    """A grants file's decoded JSON as ``(table, checked)`` (anything else: no grants)."""
    if not isinstance(value, dict) or not isinstance(value.get("Grants"), dict):
        return {}, 0
    checked = value.get("Checked")
    grants = {
        vm: entries
        for vm, entries in value["Grants"].items()
        if isinstance(vm, str) and isinstance(entries, dict)
    }
    return grants, checked if isinstance(checked, int) else 0


def _encode(record: Any, detail: bytes | None = None) -> bytes:
    """A record file's bytes: the ``HCSSIM`` header, then the JSON (see the module's doc)."""
    body = json.dumps(record, separators=(",", ":")).encode()
    if detail is None:
        header = f"HCSSIM {zlib.crc32(body):08x} {len(body)}\n".encode()
    else:
        split = len(body)
        body += detail
        header = f"HCSSIM {zlib.crc32(body):08x} {len(body)} {split}\n".encode()
    return header + body


def _grant_stripe(vm_key: str) -> int:
    return zlib.crc32(vm_key.encode()) % _GRANT_STRIPES


def _same_file(path: str, ident: Any) -> bool:
    """True when ``path`` still names the file a grant was made on (``ident``: its
    ``[st_dev, st_ino]`` then).  A file system may reuse a deleted file's inode number for a
    new file; such a file then passes (the simulator errs on the permissive side there)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    return isinstance(ident, list) and ident == [st.st_dev, st.st_ino]


@functools.lru_cache(maxsize=4096)
def _file_name(key: str) -> str:
    """A record key as a file name: lower case (ids are case-insensitive), percent-quoted."""
    text = key.lower()
    if _UNRESERVED.issuperset(text):
        return text
    return "".join(c if c in _UNRESERVED else _percent(c) for c in text)


# What urllib.parse.quote(text, safe="") leaves alone (RFC 3986 unreserved characters); the
# rest is percent-encoded as UTF-8 bytes, upper-case hex, exactly as quote() does.
_UNRESERVED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-~")


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


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

    def _pread_all(fd: int) -> bytes:
        """The whole content of the file open as ``fd`` (from offset 0; the offset is unused)."""
        chunks = [os.pread(fd, 1 << 16, 0)]
        while len(chunks[-1]) == 1 << 16:
            chunks.append(os.pread(fd, 1 << 16, sum(len(c) for c in chunks)))
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
