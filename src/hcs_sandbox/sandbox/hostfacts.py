"""Real host facts for the planner: what :func:`hcs_sandbox.sandbox.planner.plan` needs to
know about this host and one new sandbox (:class:`~hcs_sandbox.sandbox.planner.HostFacts`).

The planner is pure; this module does the looking-up:

* **schema versions** — ``HcsGetServiceProperties`` (``Basic``), through
  :func:`hcs_sandbox.hcs.service.supported_schema_versions`.  Asked once per process and
  per backend (:func:`supported_schema_versions` caches; the cache is dropped when the
  backend object changes — ``use_simulator`` / ``reset_backend`` — or by
  :func:`invalidate_cache`);
* **the creating user's SID** (desktop display pipes' ``AccessSids``, the wsb-compat
  document's HvSocket table) — on Windows the process token's ``TokenUser``
  (:func:`hcs_sandbox.native.security.current_user_sid`); elsewhere (the simulator on
  Linux/macOS) the stand-in ``S-1-22-1-<uid>``, the "Unix User" SID form Samba and
  Windows' Services for NFS use for a POSIX uid (S-1-22-1 = Unix users).  The simulator
  only checks that ``AccessSids`` holds strings, so any SID-shaped string works there;
  the stand-in is stable per user and never a real Windows account;
* **the base** — :func:`hcs_sandbox.sandbox.storage.resolve_base`;
* **the host-base document variant** — :func:`hcs_sandbox.sandbox.doctor.preferred_variant`
  (what ``doctor --deep`` saw boot, or ``HCS_SANDBOX_HOST_VARIANT``; a value of it that
  names no variant is refused), else ``documented``;
* **per-sandbox ids** — :meth:`HostFacts.for_sandbox` derives the endpoint id and the
  network adapter id from the sandbox id, so every sandbox gets its own and a re-created
  persistent sandbox keeps them.  The MAC is not a host fact: HNS assigns it from the NAT
  network's ``MacPool`` when the endpoint is created, and the sandbox layer copies it into
  the adapter (:meth:`hcs_sandbox.sandbox.planner.Plan.with_adapter_mac`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from typing import TYPE_CHECKING

from hcs_sandbox import errors
from hcs_sandbox.hcs import service
from hcs_sandbox.native.loader import get_backend
from hcs_sandbox.sandbox import doctor, paths, storage
from hcs_sandbox.sandbox.planner import HostFacts

if TYPE_CHECKING:
    from hcs_sandbox.native.loader import Backend
    from hcs_sandbox.sandbox.planner import PathStyle, Variant
    from hcs_sandbox.sandbox.spec import SandboxSpec
    from hcs_sandbox.sandbox.storage import ResolvedBase
    from hcs_sandbox.schema import VersionTuple

__all__ = [
    "UNIX_USER_SID_PREFIX",
    "gather",
    "host_path_style",
    "host_variant",
    "host_variant_choice",
    "invalidate_cache",
    "supported_schema_versions",
    "user_sid",
]

#: ``S-1-22-1-<uid>``: the "Unix User" SID of a POSIX uid (Samba ``idmap``, Windows Services
#: for NFS); the stand-in user SID off Windows (see the module docstring).
UNIX_USER_SID_PREFIX = "S-1-22-1-"

_log = logging.getLogger("hcs_sandbox.sandbox")
_lock = threading.Lock()
# (weak reference to the backend the versions came from, the versions)
_versions_cache: tuple[weakref.ReferenceType[Backend], tuple[VersionTuple, ...]] | None = None
_sid_cache: str | None = None


def invalidate_cache() -> None:
    """Forget the cached schema versions and user SID (the next call asks again)."""
    global _versions_cache, _sid_cache
    with _lock:
        _versions_cache = None
        _sid_cache = None


def _backend() -> Backend:
    try:
        return get_backend()
    except OSError as exc:  # NativeUnavailable
        raise errors.HcsUnavailableError(
            str(getattr(exc, "message", exc)), remedy=getattr(exc, "remedy", None)
        ) from exc


def supported_schema_versions() -> tuple[VersionTuple, ...]:
    """The HCS schema versions this host supports, sorted (``HcsGetServiceProperties``
    ``Basic``: HcsGetServiceProperties.md), asked once per backend and then cached."""
    global _versions_cache
    backend = _backend()
    with _lock:
        cached = _versions_cache
    if cached is not None and cached[0]() is backend:
        return cached[1]
    versions = tuple(service.supported_schema_versions())
    try:
        ref = weakref.ref(backend)
    except TypeError:  # a backend object that takes no weak references: do not cache
        return versions
    with _lock:
        _versions_cache = (ref, versions)
    return versions


def user_sid() -> str:
    """The SID of the user creating sandboxes (cached per process): the token user on
    Windows, ``S-1-22-1-<uid>`` elsewhere (see the module docstring)."""
    global _sid_cache
    with _lock:
        if _sid_cache is not None:
            return _sid_cache
    if sys.platform == "win32":
        from hcs_sandbox.native import security

        try:
            sid = security.current_user_sid()
        except OSError as exc:
            raise errors.HcsSandboxError(
                f"could not read this process's user SID (needed for the sandbox's access "
                f"lists): {exc}",
                remedy="run hcs-sandbox as a normal logged-on user; please report this if it "
                "persists",
            ) from exc
    else:
        sid = f"{UNIX_USER_SID_PREFIX}{os.getuid()}"
    with _lock:
        _sid_cache = sid
    return sid


def host_path_style() -> PathStyle:
    """``windows`` on Windows (real or simulated HCS), ``posix`` elsewhere (the simulator's
    host paths are this OS's paths)."""
    return "windows" if sys.platform == "win32" else "posix"


def host_variant(state_dir: str | os.PathLike[str] | None) -> Variant:
    """The host-base document variant to use: ``doctor.preferred_variant`` (the last deep
    doctor run, or ``HCS_SANDBOX_HOST_VARIANT``), else ``documented``.  A value of
    ``HCS_SANDBOX_HOST_VARIANT`` that names no variant raises SpecError."""
    return host_variant_choice(state_dir)[0]


def host_variant_choice(state_dir: str | os.PathLike[str] | None) -> tuple[Variant, str]:
    """:func:`host_variant` and where it comes from, in words (``doctor.variant_choice``;
    ``from <where>``, or ``the default: <why>`` when no report or variable chose): what
    ``plan`` shows.  Reads the report file and the environment only (no HCS call)."""
    preferred, source = doctor.variant_choice(state_dir)
    if preferred == "wsb-compat":
        return "wsb-compat", f"from {source}"
    if preferred == "documented":
        return "documented", f"from {source}"
    return "documented", f"the default: {source}"


def gather(
    spec: SandboxSpec,
    *,
    sandbox_id: str,
    system_id: str,
    state_dir: str | os.PathLike[str],
    terminate_on_close: bool = False,
    base: ResolvedBase | None = None,
    sandbox_dir: str | None = None,
) -> HostFacts:
    """The planner's facts for creating sandbox ``sandbox_id`` from ``spec`` on this host.

    ``terminate_on_close``: ask for ``ShouldTerminateOnLastHandleClosed`` (ephemeral
    sandboxes owned by one process: ``Sandbox.run()``; the planner ignores it for persistent
    ones).  ``base``: the already resolved base (default: resolved here).  ``sandbox_dir``:
    ``paths.sandbox_dir_text(state_dir, sandbox_id)`` when the caller has it.
    """
    if base is None:
        base = storage.resolve_base(spec.base.kind, spec.base.path)
    directory = sandbox_dir or paths.sandbox_dir_text(state_dir, sandbox_id)
    variant = host_variant(state_dir)
    sid: str | None
    try:
        sid = user_sid()
    except errors.HcsSandboxError:
        # Only a desktop display (AccessSids) and the wsb-compat host document (HvSocket
        # table) need the SID; everything else plans fine without it.
        if spec.display == "desktop" or (spec.base.kind == "host" and variant == "wsb-compat"):
            raise
        _log.debug("no user SID for sandbox %s", sandbox_id, exc_info=True)
        sid = None
    return HostFacts.for_sandbox(
        sandbox_id=sandbox_id,
        system_id=system_id,
        sandbox_dir=directory,
        base_path=base.path,
        supported_schema_versions=supported_schema_versions(),
        path_style=host_path_style(),
        variant=variant,
        user_sid=sid,
        terminate_on_close=terminate_on_close,
    )
