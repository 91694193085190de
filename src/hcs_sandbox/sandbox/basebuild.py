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
  on Windows the file version of the host's own kernel, ``<system directory>\\ntoskrnl.exe``,
  read by the same :mod:`~hcs_sandbox.sandbox.peversion` reader: both sides are then the
  same kind of evidence (the same file's version resource).  The system directory is
  ``%SystemRoot%\\System32`` (else ``%windir%``'s); a 32-bit Python on 64-bit
  Windows is redirected from ``System32`` to ``SysWOW64`` by WOW64, so it reads
  ``<Windows directory>\\Sysnative\\ntoskrnl.exe`` first ("32-bit applications can access
  the native system directory by substituting %windir%\\Sysnative for %windir%\\System32":
  Microsoft's "File System Redirector" page, MicrosoftDocs/win32
  ``desktop-src/WinProg64/file-system-redirector.md``).  Only when that kernel cannot be
  read: ``sys.getwindowsversion().platform_version[2]``.  ``platform_version`` is NOT
  immune to the version shims: Python takes it from ``kernel32.dll``'s file version through
  ``GetFileVersionInfoW``, which is itself shimmed in a process whose manifest does not
  declare Windows 10 (an embedding or frozen program): it then reports 6.3, not 10.0
  (python/cpython#146299; the build that goes with it is a pre-Windows 10 one, 9600).  A
  build below :data:`FIRST_WINDOWS_10_BUILD` (10240, Windows 10 version 1507, Microsoft's
  Windows 10 release information) is such a shimmed answer, or a host without Windows
  Sandbox: it counts as unknown, and an unknown host build refuses nothing.  Only the build
  (not the revision) is compared; that the host kernel's build is the build a base image is
  made for is UNCONFIRMED (docs/windows-notes.md#sandbox).
* **The override**: ``HCS_SANDBOX_IGNORE_BASE_BUILD=1`` (:data:`ENV_IGNORE_BASE_BUILD`)
  makes :func:`~hcs_sandbox.sandbox.storage.find_host_base` take the newest folder when no
  folder has this host's build, instead of refusing; ``hcs-sandbox doctor`` still reports
  the builds (a warning).
"""

from __future__ import annotations

import dataclasses
import os
import struct
import sys
import threading

__all__ = [
    "ENV_IGNORE_BASE_BUILD",
    "FIRST_WINDOWS_10_BUILD",
    "KERNEL_PATH",
    "BaseBuild",
    "HostBuild",
    "base_build",
    "host_build",
    "host_build_info",
    "ignore_base_build",
    "invalidate_cache",
]

#: The file whose version tells a base image's build, relative to ``<guid>\\BaseLayer\\Files``.
KERNEL_PATH = ("Windows", "System32", "ntoskrnl.exe")
_KERNEL_TAIL = os.sep + os.path.join(*KERNEL_PATH)  # joined once (pure text)
#: The first Windows 10 build (version 1507, OS build 10240: Microsoft's "Windows 10 release
#: information", learn.microsoft.com/windows/release-health/release-information).  A host
#: build below it is a version shim's answer (python/cpython#146299: 9600), never a host
#: that runs Windows Sandbox: unknown.
FIRST_WINDOWS_10_BUILD = 10240
#: Set to 1 (or true/yes/on) to use the newest base image folder when none has this host's
#: build, instead of refusing (doctor still reports the builds).
ENV_IGNORE_BASE_BUILD = "HCS_SANDBOX_IGNORE_BASE_BUILD"
_TRUE = frozenset({"1", "true", "yes", "on"})


def ignore_base_build() -> bool:
    """Whether :data:`ENV_IGNORE_BASE_BUILD` asks to skip the build refusal."""
    return os.environ.get(ENV_IGNORE_BASE_BUILD, "").strip().lower() in _TRUE


@dataclasses.dataclass(frozen=True)
class BaseBuild:
    """A base image's build, or why it could not be read (``build`` None, ``reason`` set).

    ``version`` is the kernel's whole file version text (``10.0.26100.1``) when read.
    """

    build: int | None
    version: str | None = None
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class HostBuild:
    """This host's build (None: unknown, nothing is refused), and how it was told:
    ``source`` names the file or API it was read from, ``note`` why it is unknown or why
    the fallback was used."""

    build: int | None
    source: str | None = None
    note: str | None = None


_lock = threading.Lock()
# BaseLayer\Files path -> (its identity + the kernel's stat, what was read)
_cache: dict[str, tuple[tuple[int, ...], BaseBuild]] = {}
_CACHE_LIMIT = 64
# (the backend object it was asked of, what it said): asked once per backend
_host: tuple[object, HostBuild] | None = None


def invalidate_cache() -> None:
    """Forget every base image's build read so far, and the host's build."""
    global _host
    with _lock:
        _cache.clear()
        _host = None


def host_build() -> int | None:
    """This host's Windows build (see the module docstring), asked once per backend; None
    when it cannot be told (a backend without one, off Windows, a shimmed answer)."""
    return host_build_info().build


def host_build_info() -> HostBuild:
    """:func:`host_build` with where it came from (for ``hcs-sandbox doctor``)."""
    global _host
    from hcs_sandbox.native import loader  # (the module: see sandbox._store)

    try:
        backend: object = loader.get_backend()
    except OSError:
        backend = None
    known = _host
    if known is not None and known[0] is backend:
        return known[1]
    getter = getattr(backend, "windows_build", None)
    if callable(getter):
        value = getter()
        found = HostBuild(int(value) if value is not None else None, source="the backend")
    elif sys.platform == "win32":
        found = _windows_host_build()
    else:
        found = HostBuild(None, note="not Windows")
    if found.build is not None and found.build < FIRST_WINDOWS_10_BUILD:
        found = HostBuild(
            None,
            source=found.source,
            note=f"{found.source} says build {found.build}, below Windows 10's first "
            f"({FIRST_WINDOWS_10_BUILD}): a compatibility shim's answer, taken as unknown",
        )
    _host = (backend, found)
    return found


def _is_32bit_process() -> bool:
    return struct.calcsize("P") == 4


def _windows_directories() -> tuple[str | None, str | None]:
    """(the Windows directory, the system directory): ``%SystemRoot%`` (else ``%windir%``)
    and its ``System32``; None when neither is set (then the caller falls back to
    ``platform_version``).  Read from the environment, not through ``GetSystemDirectoryW``:
    the sandbox layer declares no ctypes prototypes (docs/architecture.md, layers)."""
    windows = os.environ.get("SYSTEMROOT") or os.environ.get("WINDIR") or None
    system = os.path.join(windows, "System32") if windows else None
    return windows, system


def _host_kernels() -> list[str]:
    """Where this host's kernel is read, in order (see the module docstring)."""
    windows, system = _windows_directories()
    paths: list[str] = []
    if _is_32bit_process() and windows:
        paths.append(os.path.join(windows, "Sysnative", "ntoskrnl.exe"))
    if system:
        paths.append(os.path.join(system, "ntoskrnl.exe"))
    return paths


def _windows_host_build() -> HostBuild:
    from hcs_sandbox.sandbox import peversion

    reasons: list[str] = []
    for kernel in _host_kernels():
        try:
            version = peversion.read_file_version(kernel)
        except peversion.PEVersionError as exc:
            reasons.append(f"{kernel}: {exc.reason}")
            continue
        return HostBuild(version.build, source=kernel)
    note = "; ".join(reasons) or "no system directory"
    if sys.platform != "win32":  # (the caller checked; this narrows it for the type checker)
        return HostBuild(None, note=note)
    try:
        build = int(sys.getwindowsversion().platform_version[2])
    except (AttributeError, IndexError, TypeError, ValueError) as exc:
        return HostBuild(None, note=f"{note}; platform_version: {exc}")
    return HostBuild(
        build,
        source="sys.getwindowsversion().platform_version",
        note=f"the host's kernel could not be read ({note})",
    )


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
