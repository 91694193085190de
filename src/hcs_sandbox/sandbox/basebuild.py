"""Which Windows build a Windows Sandbox base image holds, and this host's build.

Windows Sandbox runs only the host's own build (its FAQ, ``windows-sandbox-faq.yml``: "same
build as host only"), and Windows keeps a base image per build under
``%ProgramData%\\Microsoft\\Windows\\Containers\\BaseImages\\<guid>``.
:func:`hcs_sandbox.sandbox.storage.find_host_base` prefers the ``<guid>`` folder whose build
is this host's, refuses when every folder has another build, and goes on when a build cannot
be read (``hcs-sandbox doctor`` then warns, naming the reason).

* **A base image's build**: the third part of the file version (``10.0.<build>.<revision>``)
  of ``BaseLayer\\Files\\Windows\\System32\\ntoskrnl.exe``, read by
  :mod:`hcs_sandbox.sandbox.peversion` (headers and the version resource only).  That this
  file is readable from the host and carries the base's build is UNCONFIRMED
  (docs/windows-notes.md#sandbox).  Kept per process, keyed by the ``<guid>`` folder's
  ``BaseLayer\\Files`` identity and the kernel file's ``stat`` (device, inode, size,
  modification and change times): a regenerated base image is read again, an unchanged
  one costs one ``stat``.
* **This host's build**: the backend is asked first (``windows_build()``: the simulator's
  simulated build, as it answers ``program_data_dir()``); the Windows backend has none, so
  on Windows ``sys.getwindowsversion().platform_version[2]``.  ``platform_version`` and not
  ``build``: Python documents ``platform_version`` as the version "of the current operating
  system, rather than the version that is being emulated for the process", while
  ``build``/``major``/``minor`` come from ``GetVersionEx``, which answers a process not
  manifested for Windows 8.1/10 with the Windows 8 version (OSVERSIONINFOEX remarks,
  learn.microsoft.com) — ``python.exe`` is manifested, an embedding or frozen program may
  not be.  Python's note that ``platform_version`` is taken from ``kernel32.dll``, whose
  version "can be of a different version than the OS version", is why only the build (not
  the revision) is compared; that kernel32's build is the OS build is UNCONFIRMED too.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading

__all__ = ["KERNEL_PATH", "BaseBuild", "base_build", "host_build", "invalidate_cache"]

#: The file whose version tells a base image's build, relative to ``<guid>\\BaseLayer\\Files``.
KERNEL_PATH = ("Windows", "System32", "ntoskrnl.exe")
_KERNEL_TAIL = os.sep + os.path.join(*KERNEL_PATH)  # joined once (pure text)


@dataclasses.dataclass(frozen=True)
class BaseBuild:
    """A base image's build, or why it could not be read (``build`` None, ``reason`` set).

    ``version`` is the kernel's whole file version text (``10.0.26100.1``) when read.
    """

    build: int | None
    version: str | None = None
    reason: str | None = None


_lock = threading.Lock()
# BaseLayer\Files path -> (its identity + the kernel's stat, what was read)
_cache: dict[str, tuple[tuple[int, ...], BaseBuild]] = {}
_CACHE_LIMIT = 64
# (the backend object it was asked of, the host build): asked once per backend
_host: tuple[object, int | None] | None = None


def invalidate_cache() -> None:
    """Forget every base image's build read so far, and the host's build."""
    global _host
    with _lock:
        _cache.clear()
        _host = None


def host_build() -> int | None:
    """This host's Windows build (see the module docstring), asked once per backend; None
    when it cannot be told (a backend without one, off Windows)."""
    global _host
    from hcs_sandbox.native.loader import get_backend

    try:
        backend: object = get_backend()
    except OSError:
        backend = None
    known = _host
    if known is not None and known[0] is backend:
        return known[1]
    getter = getattr(backend, "windows_build", None)
    build: int | None = None
    if callable(getter):
        value = getter()
        build = int(value) if value is not None else None
    elif sys.platform == "win32":
        build = int(sys.getwindowsversion().platform_version[2])
    _host = (backend, build)
    return build


def _read(kernel: str) -> BaseBuild:
    from hcs_sandbox.sandbox import peversion

    try:
        version = peversion.read_file_version(kernel)
    except peversion.PEVersionError as exc:
        return BaseBuild(None, reason=f"{kernel}: {exc.reason}")
    return BaseBuild(version.build, version=str(version))


def base_build(files: str, files_stat: os.stat_result | None = None) -> BaseBuild:
    """The build of the base image whose ``BaseLayer\\Files`` folder is ``files``
    (``files_stat``: that folder's ``os.stat``, when the caller has it)."""
    kernel = files + _KERNEL_TAIL  # os.path.join(files, *KERNEL_PATH): files has no end sep
    try:
        folder = files_stat if files_stat is not None else os.stat(files)
        st = os.stat(kernel)
    except OSError as exc:
        return BaseBuild(None, reason=f"{kernel}: could not open it: {exc.strerror or exc}")
    except ValueError as exc:  # a path the OS cannot encode
        return BaseBuild(None, reason=f"{kernel}: {exc}")
    key = (
        folder.st_dev,
        folder.st_ino,
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )
    cached = _cache.get(files)  # (one dict look-up: atomic)
    if cached is not None and cached[0] == key:
        return cached[1]
    found = _read(kernel)
    with _lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[files] = (key, found)
    return found
