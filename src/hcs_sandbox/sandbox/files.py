"""Files in and out of a sandbox: runtime mapped folders and ``cp``.

**Mapped folders at run time** (:func:`map_folder` / :func:`unmap_folder`).  A host folder is
added to the running VM as a VSMB share with ``HcsModifyComputeSystem``
(``ResourcePath`` ``VirtualMachine/Devices/VirtualSmb/Shares``, ``RequestType``
``Add``/``Remove``: HcsModifyComputeSystem.md).  Options follow hcsshim
``internal/uvm/vsmb.go`` ``DefaultVSMBOptions``: a read-only share gets ``ReadOnly``,
``ShareRead``, ``CacheIo``, ``PseudoOplocks``; a writable share gets none of them.
Inside the guest the share appears at
``\\\\?\\VMSMB\\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\\<share name>`` (hcsshim
``vsmbSharePrefix``); the requested guest folder is made a directory symbolic link to it
with ``cmd /c mklink /d`` run through ``HcsCreateProcess``.  That the link works for every
program in a Windows Sandbox guest is **unconfirmed** (docs/windows-notes.md#guest).
Runtime mappings are recorded in the store record (``extra["mappings"]``, stamped with the
start time they belong to: a restart forgets them, as the VM does).

**Mapped folders at create** (the spec's / the ``.wsb``'s): the planner puts their VSMB shares
in the document and a ``GuestLink`` each in ``Plan.guest_links`` (kept in the record's
``extra["guest_links"]``); :func:`link_created_mappings` makes the same guest-side link
(:func:`_link_share`, the one implementation) after every start, before the logon command.
:func:`mappings` lists both kinds.

Host folders are checked by ONE rule, :func:`host_folder_problem`, for every mapping: the
spec's and ``--map``'s at create (``SandboxSpec.check_host_paths``), a ``.wsb``'s
(``read_wsb(check_paths=True)``), a runtime one here, and ``plan`` (the paths as written):
they exist, are folders, are not UNC/device paths, are not system folders (``C:\\Windows``,
``C:\\Program Files``, ``/``, ``/etc``, ``/usr`` ...) nor contain one, and are not the
hcs-sandbox state directory of the store being used (nor inside or around it); read-only
or not.  A runtime mapping also may not overlap another mapping of the same sandbox (host
side or guest side).

**cp** (:func:`copy_in` / :func:`copy_out`).  Each sandbox has a transfer share: the host
folder ``<sandbox dir>/transfer`` mapped read-write (and only that folder) as the VSMB
share ``hcs-transfer``, added on first use.  ``copy_in`` streams the host files into a fresh
batch folder there (``shutil.copyfileobj`` with a 1 MiB buffer: nothing is read whole into
memory), then a guest command (``copy`` for a file, ``xcopy /e /i /h /k /y`` for a folder)
copies them to the guest path; ``copy_out`` does the reverse.  The batch folder is deleted
afterwards, success or not.  Everything that crosses is checked so nothing lands outside its
destination: ``..``, absolute or drive-qualified names, names Windows cannot hold
(reserved device names such as ``CON``/``NUL``, ``:`` alternate data streams, ``<>"|?*``,
trailing dots and spaces), symbolic links and directory junctions that leave the copied
tree (:func:`_link_kind`: a junction is no ``islink`` before Python 3.12), and anything in
the transfer folder that is not a plain file or folder (a guest could plant a link there);
the host side is never written through a link or a junction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import logging
import ntpath
import os
import re
import shutil
import stat
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcs_sandbox import errors
from hcs_sandbox.sandbox import hostpath
from hcs_sandbox.sandbox.planner import VSMB_GUEST_PREFIX
from hcs_sandbox.schema.compute import VirtualSmbShare, VirtualSmbShareOptions
from hcs_sandbox.schema.enums import ModifyRequestType
from hcs_sandbox.schema.operations import ModifySettingRequest

if TYPE_CHECKING:
    from hcs_sandbox.hcs.system import ComputeSystem
    from hcs_sandbox.sandbox.sandbox import Sandbox

__all__ = [
    "COPY_BUFFER",
    "MAP_SHARE_PREFIX",
    "TRANSFER_SHARE",
    "VSMB_PREFIX",
    "FolderMapping",
    "check_guest_path",
    "check_host_folder",
    "copy_in",
    "copy_out",
    "host_folder_problem",
    "link_created_mappings",
    "map_folder",
    "mappings",
    "protected_folders",
    "share_options",
    "short_name_warning",
    "system_dir_problem",
    "unmap_folder",
    "vsmb_path",
    "vsmb_request",
    "windows_name_problem",
]

_log = logging.getLogger("hcs_sandbox.sandbox")

#: Where VSMB shares appear in the guest (the planner's ``VSMB_GUEST_PREFIX``: hcsshim
#: ``internal/uvm/vsmb.go`` ``vsmbSharePrefix``).
VSMB_PREFIX = VSMB_GUEST_PREFIX
#: ModifySettingRequest resource path for VSMB shares (HcsModifyComputeSystem.md; hcsshim
#: ``internal/hcs/resourcepaths``: ``VSMBShareResourcePath``).
VSMB_RESOURCE = "VirtualMachine/Devices/VirtualSmb/Shares"
TRANSFER_SHARE = "hcs-transfer"
MAP_SHARE_PREFIX = "hcsmap-"
COPY_BUFFER = 1024 * 1024

# Folders no sandbox may see (nor any folder that contains one).  Windows: the OS, the
# program folders and ProgramData (where HCS keeps base images and hcs-sandbox its state);
# POSIX (simulator hosts): the system hierarchy.
_WINDOWS_SYSTEM = (
    "C:\\Windows",
    "C:\\Program Files",
    "C:\\Program Files (x86)",
    "C:\\ProgramData",
    "C:\\System Volume Information",
    "C:\\$Recycle.Bin",
    "C:\\Recovery",
    "C:\\Boot",
)
_POSIX_SYSTEM = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/proc",
    # not /root: it is root's home, like /home/<user> (its project folders may be mapped;
    # the state directory inside it is protected by its own rule)
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/lib",
    "/var/run",
    "/System",
    "/Library",
)


# --------------------------------------------------------------------------------------
# Pure checks
# --------------------------------------------------------------------------------------


def vsmb_path(share: str, *parts: str) -> str:
    """The guest path of a VSMB share (and of something inside it)."""
    return VSMB_PREFIX + "\\".join([share, *parts])


def share_options(read_only: bool) -> dict[str, bool]:
    """``VirtualSmbShareOptions`` as hcsshim ``DefaultVSMBOptions(readOnly)`` sets them
    (``NoDirectmap`` is only for physically backed VMs, which sandboxes are not)."""
    if read_only:
        return {"ReadOnly": True, "ShareRead": True, "CacheIo": True, "PseudoOplocks": True}
    return {}


def vsmb_request(
    request_type: ModifyRequestType, name: str, path: str | None = None, *, read_only: bool = False
) -> dict[str, Any]:
    """The ``HcsModifyComputeSystem`` request that adds (``Add``: ``path`` is the host folder,
    shared with :func:`share_options`) or removes (``Remove``: only ``name``) the VSMB share
    ``name`` of a running VM: a typed ``ModifySettingRequest`` on :data:`VSMB_RESOURCE` with a
    ``VirtualSmbShare`` as ``Settings`` (SchemaReference.md; hcsshim ``internal/uvm/vsmb.go``
    ``AddVSMB`` / ``RemoveVSMB``)."""
    if request_type is ModifyRequestType.REMOVE:
        share = VirtualSmbShare(Name=name)
    elif path is None:
        raise ValueError(f"a {request_type.value} request for VSMB share {name!r} needs its path")
    else:
        share = VirtualSmbShare(
            Name=name, Path=path, Options=VirtualSmbShareOptions(**share_options(read_only))
        )
    return ModifySettingRequest(
        ResourcePath=VSMB_RESOURCE, RequestType=request_type, Settings=share
    ).to_dict()


def _windows_style(path: str) -> bool:
    return hostpath.is_windows_absolute(path)


def _windows_host() -> bool:
    """True on Windows, where every host path is judged by Windows rules."""
    return sys.platform == "win32"


def _windows_rules(path: str) -> bool:
    """Whether ``path`` (device prefix removed) is compared by Windows rules: on a Windows
    host, and for a drive-letter or UNC path anywhere.  A POSIX path on a POSIX host keeps
    POSIX rules (case-sensitive, ``/``)."""
    return _windows_host() or _windows_style(path) or hostpath.is_unc(path)


def _fold(path: str) -> str:
    """A comparison key for a host path: ``\\\\?\\X:\\`` read as ``X:\\``
    (:func:`hostpath.without_device_prefix`), normalised separators, case-folded under
    Windows rules (:func:`_windows_rules`)."""
    path = hostpath.without_device_prefix(path)
    if _windows_rules(path):
        return ntpath.normpath(path).rstrip("\\").casefold() or path.casefold()
    return os.path.normpath(path).rstrip("/") or "/"


def _inside_or_same(child: str, parent: str) -> bool:
    c, p = _fold(child), _fold(parent)
    sep = "\\" if _windows_rules(hostpath.without_device_prefix(parent)) else "/"
    if p in ("/", ""):
        return True
    return c == p or c.startswith(p.rstrip(sep) + sep)


def system_dir_problem(path: str, *, extra: tuple[str, ...] = ()) -> str | None:
    """Why ``path`` (absolute, normalised; a ``\\\\?\\X:\\`` prefix is read as ``X:\\``)
    is a system folder, inside one, or contains one; None when it is not.  ``extra``: more
    protected folders (the state directory)."""
    path = hostpath.without_device_prefix(path)
    if _windows_style(path):
        drive = path[0].upper()
        protected = tuple(drive + p[1:] for p in _WINDOWS_SYSTEM)
        if _fold(path) == _fold(path[:3]):
            return f"{path} is a drive root, which holds the system folders"
    else:
        protected = _POSIX_SYSTEM
        if _fold(path) == "/":
            return "/ is the root of the host file system"
    for folder in (*protected, *extra):
        kind = "system folder" if folder in protected else "protected folder"
        if _inside_or_same(path, folder):
            return f"{path} is the {kind} {folder} or inside it"
        if _inside_or_same(folder, path):
            return f"{path} contains the {kind} {folder}"
    return None


def windows_name_problem(name: str) -> str | None:
    """Why one file or folder name cannot cross into a Windows guest, or None."""
    if not name or name in (".", ".."):
        return f"the name {name!r} is not a file name"
    if any(ord(c) < 32 for c in name):
        return f"the name {name!r} contains a control character"
    if "/" in name or "\\" in name:
        return f"the name {name!r} contains a path separator"
    if ":" in name:
        return f"the name {name!r} contains ':' (an alternate data stream or a drive)"
    bad = sorted({c for c in name if c in '<>"|?*'})
    if bad:
        return f"the name {name!r} contains characters Windows forbids ({' '.join(bad)})"
    if name[-1] in " .":
        return f"the name {name!r} ends with a space or a period, which Windows drops"
    if hostpath.guest_path_problem("C:\\x\\" + name):
        return f"the name {name!r} is a reserved Windows device name"
    return None


def check_guest_path(path: str, *, allow_root: bool = False, what: str = "guest path") -> str:
    """Validate an absolute guest path; returns it normalised (``C:\\a\\b``)."""
    if not isinstance(path, str):
        raise errors.SpecError(f"the {what} is not a string", field=what, value=path)
    text = path.strip()
    if allow_root and hostpath.is_windows_absolute(text) and not text[3:].strip("\\/"):
        return text[0].upper() + ":\\"
    problem = hostpath.guest_path_problem(text)
    if problem:
        raise errors.SpecError(
            f"{what} {errors.quoted(path)}: {problem.removeprefix('the guest path ')}",
            field=what,
            value=path,
            allowed="an absolute Windows path such as C:\\data",
            remedy="" if "such as" in problem else None,  # the reason says it (no repeat)
        )
    return hostpath.normalise_guest_path(text)


def protected_folders(state_dir: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """hcs-sandbox's own folders that no mapping may touch, for :func:`check_host_folder`:
    the state directory of the store being used (``state_dir``; None: the one
    ``Sandbox.create`` would use, ``$HCS_SANDBOX_STATE_DIR`` or the platform default), as
    written and as its real path.  Nothing is created."""
    from hcs_sandbox.sandbox import paths

    text = paths.state_dir_text(state_dir)
    return tuple(dict.fromkeys((text, os.path.realpath(text), *_hcs_host_folders())))


def _hcs_host_folders() -> tuple[str, ...]:
    """The HCS host's own folders that are no system folder already: the simulator's folder
    (its systems' documents, every guest's ``C:``, its base image), which plays the part of
    ``C:\\ProgramData``'s HCS folders on Windows (a system folder, refused anyway).  The
    backend says (``host_folders()``); none when HCS is unavailable."""
    from hcs_sandbox.native import loader

    backend = loader.chosen_backend()
    if backend is None:
        if not loader.simulator_requested():
            return ()
        try:
            backend = loader.get_backend()
        except OSError:  # a bad HCS_SANDBOX_SIMULATOR: the create says so itself
            return ()
    getter = getattr(backend, "host_folders", None)
    if not callable(getter):
        return ()
    folders: tuple[str, ...] = tuple(getter())
    _HOST_FOLDERS.update(folders)
    return folders


#: Folders :func:`_hcs_host_folders` returned (their refusal names them as HCS's folders).
_HOST_FOLDERS: set[str] = set()


def host_folder_problem(
    path: str, *, protected: tuple[str, ...] = (), local: bool = True
) -> tuple[str, str] | None:
    """THE rule for a host folder to map, for every mapping: the spec's and the ``--map``
    flags' (``SandboxSpec.check_host_paths``), a ``.wsb``'s (``read_wsb(check_paths=True)``)
    and a runtime one (:func:`map_folder`); read-only and read-write alike (a read-only
    share of a system folder or of the state directory still shows the guest what is in
    it).  Returns ``(why, remedy)`` when ``path`` may not be mapped, None when it may.

    Refused: a UNC/device or relative path; a system folder (:func:`system_dir_problem`), a
    folder inside one or one that contains one, a drive root, ``/``; hcs-sandbox's own
    folders in ``protected`` (the state directory: :func:`protected_folders`), a folder
    inside one or one that contains one.  ``local`` True: the folder must exist on this
    host, and the rule is applied to its real path (symbolic links resolved), which must
    itself pass the host-path rules (:func:`_real_path_problem`: a mapped network drive
    resolves to a share).  ``local``
    False (``plan``, which may describe another machine's folders): to the path as written
    (normalised), without touching the file system.
    """
    return _host_folder_check(path, protected, local)[1]


def _host_folder_check(
    path: str, protected: tuple[str, ...], local: bool
) -> tuple[str, tuple[str, str] | None]:
    """:func:`host_folder_problem`'s work: (the path judged, the problem or None).  The
    path judged is what :func:`check_host_folder` returns: the real path is resolved ONCE,
    so what is shared is what was checked (a link retargeted in between cannot change it)."""
    problem = hostpath.host_path_problem(path)
    if problem:
        return path, (problem, "give the absolute path of a folder on this host")
    real = _checked_path(path, local)
    return real, _judged_problem(real, protected, local)


def _judged_problem(real: str, protected: tuple[str, ...], local: bool) -> tuple[str, str] | None:
    """The rest of :func:`host_folder_problem`, on the path it judges (``real``)."""
    if local:
        found = _real_path_problem(real)
        if found is not None:
            return found
    # Protected before missing: creating the folder would not make it acceptable.
    problem = system_dir_problem(real)
    if problem:
        return problem, "map a folder of your own, such as a project folder"
    for own in protected:
        if _inside_or_same(real, own):
            how = "is" if _fold(real) == _fold(own) else "is inside"
        elif _inside_or_same(own, real):
            how = "contains"
        else:
            continue
        if own in _HOST_FOLDERS:
            return (
                f"{real} {how} the HCS simulator's folder {own}, which holds every simulated "
                "system's documents, guest drive and base image",
                "map a folder of your own outside it, or keep the simulator's state elsewhere "
                "with HCS_SANDBOX_SIMULATOR=/absolute/dir",
            )
        return (
            f"{real} {how} the hcs-sandbox state directory {own}, which holds every "
            "sandbox's records and disks",
            "map a folder of your own outside the state directory, or keep the state "
            "elsewhere with --state-dir or HCS_SANDBOX_STATE_DIR",
        )
    if local:
        problem = hostpath.directory_problem(real)
        if problem:
            if hostpath.too_long(real):  # FileNotFoundError is what a too-long path raises
                return hostpath.too_long_problem(real), hostpath.LONG_PATHS_REMEDY
            return problem, "create the folder or fix the path"
    return None


def _checked_path(path: str, local: bool) -> str:
    """The path :func:`host_folder_problem` judges: the real path (a ``\\\\?\\X:\\``
    prefix that ``os.path.realpath`` keeps read as ``X:\\``), or (not ``local``) the path
    as written, normalised."""
    if local:
        return hostpath.without_device_prefix(os.path.realpath(path))
    return ntpath.normpath(path) if _windows_style(path) else os.path.normpath(path)


def _real_path_problem(real: str) -> tuple[str, str] | None:
    """The host-path rules again, on the real path: what the written path hid.  On Windows
    ``os.path.realpath`` turns a mapped network drive into its UNC path, by design
    (python/cpython#82174), and a link may lead to a share or a device path; none is a
    local folder.  Returns ``(why, remedy)`` or None."""
    if hostpath.is_network_path(real):
        return (
            f"its real path {real} is on a network share (a mapped network drive or a "
            "link to a share leads there), and network shares are not mapped",
            "copy the files to a local folder and map that",
        )
    if hostpath.is_unc(real):
        return (
            f"its real path {real} is a device path, not a folder on a drive letter",
            "copy the files to a local folder and map that",
        )
    problem = hostpath.host_path_problem(real)
    if problem:
        return f"its real path {real}: {problem.removeprefix('the host path ')}", (
            "rename the folder the path leads to, or copy the files to a local folder"
        )
    return None


def _looks_short(name: str) -> bool:
    """True when ``name`` has the shape of a generated 8.3 short name: a base of at most 8
    characters ending in ``~`` and digits (``PROGRA~1``, ``PR1A2B~1``), with an optional
    extension of at most 3 (``LONGFI~1.TXT``).  A shape only: "not all file systems follow
    this convention" (Microsoft, ``GetLongPathNameW``), and such a name may also be a long
    name of its own."""
    base, dot, ext = name.partition(".")
    head, tilde, digits = base.rpartition("~")
    return (
        bool(tilde and head and digits.isdigit())
        and len(base) <= 8
        and (not dot or (0 < len(ext) <= 3 and "." not in ext))
    )


def _short_fits(short: str, long: str) -> bool:
    """Whether ``short`` (casefolded, :func:`_looks_short`'s shape) can be the generated 8.3
    name of ``long`` (casefolded).  Microsoft documents no rule ("the mapping of long names
    to short names is nondeterministic": ``RtlGenerate8dot3Name``); what NTFS is seen to do,
    as git relies on it (git's ``is_ntfs_dotgit`` commit, "Windows 2000 ... NTFS short
    names are only generated in the <prefix>~<number> form up to number 4. After that, a
    *different* prefix is used ... GI7EBA~1"): the base starts with the long name's first
    letters (spaces and periods dropped: ``PROGRA~1`` for "Program Files", shorter before a
    longer number), or with its first two letters and hexadecimal digits of a hash.  ``_``
    in the short name stands for any character (it replaces those 8.3 does not allow).  The
    extension is not compared.  Only ``plan``'s warning depends on this: create judges the
    real path, in which Windows has expanded the short name."""
    if not _looks_short(short):
        return False
    head = short.partition(".")[0].rpartition("~")[0]
    letters = long.replace(" ", "").replace(".", "")
    hashed = len(head) > 2 and all(c in "0123456789abcdef" for c in head[2:])
    if hashed and _prefix_fits(head[:2], letters):  # the hash form
        return True
    return _prefix_fits(head, letters)


def _prefix_fits(head: str, letters: str) -> bool:
    return len(letters) >= len(head) and all(
        h in (c, "_") for h, c in zip(head, letters, strict=False)
    )


def short_name_warning(path: str, *, protected: tuple[str, ...] = ()) -> str | None:
    """``plan``'s warning for a host folder written with a component shaped like an 8.3 short
    name (:func:`_looks_short`) that may name a protected folder (a system folder of that
    drive, or one of ``protected``: the state directory), be inside one or hold one; None
    otherwise.  Only ``plan`` needs it: it judges the path as written and cannot expand a
    short name (the folder may be another machine's), while ``create`` judges the real path,
    in which ``os.path.realpath`` has expanded short names to long ones on Windows.  A short
    name is a legal way to write any folder (Microsoft, *Naming Files, Paths, and
    Namespaces*, "Short vs. Long Names"), so it is not refused: a short component matches
    any name at its place, and only a path that could then be protected is warned about."""
    if not _windows_style(path):
        return None
    parts = [p.casefold() for p in re.split(r"[\\/]+", path[3:]) if p]
    if not any(_looks_short(p) for p in parts):
        return None
    drive = path[0].upper()
    system = tuple(drive + p[1:] for p in _WINDOWS_SYSTEM)
    found: list[tuple[str, int]] = []  # (folder, its depth)
    for folder in (*system, *protected):
        plain = hostpath.without_device_prefix(folder)
        if not _windows_style(plain) or plain[0].upper() != drive:
            continue
        others = [p.casefold() for p in re.split(r"[\\/]+", plain[3:]) if p]
        pairs = list(zip(parts, others, strict=False))
        if not others or not all(a == b or _short_fits(a, b) for a, b in pairs):
            continue
        found.append((folder, len(others)))
    if not found:
        return None
    # The deepest folder the path may be (or be inside) first: C:\PROGRA~3\hcs-sandbox
    # names the state directory C:\ProgramData\hcs-sandbox, not C:\Program Files.
    folder, depth = max(found, key=lambda f: (f[1] <= len(parts), f[1]))
    short = next(p for p in re.split(r"[\\/]+", path[3:]) if _looks_short(p.casefold()))
    kind = "system folder" if folder in system else "hcs-sandbox state directory"
    how = "be" if len(parts) == depth else "be inside" if len(parts) > depth else "hold"
    return (
        f"mapped folder {path}: {short!r} looks like an 8.3 short name, which plan cannot "
        f"expand, and the folder may {how} the {kind} {folder}; create expands short names "
        "and refuses protected folders (write the long name to have plan check it)"
    )


def check_host_folder(
    path: str,
    *,
    protected: tuple[str, ...] = (),
    local: bool = True,
    field: str = "host_path",
    of: str = "",
) -> str:
    """:func:`host_folder_problem` as a SpecError (``field``; ``of`` follows the path in
    the message, such as ``" of mapped_folders[0]"``); returns the path checked (the real
    path when ``local``)."""
    checked, found = _host_folder_check(path, protected, local)
    if found is not None:
        why, remedy = found
        raise errors.SpecError(
            f"host folder {path}{of} cannot be mapped: {why}",
            field=field,
            value=path,
            remedy=remedy,
        )
    return checked


# --------------------------------------------------------------------------------------
# Runtime mappings
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FolderMapping:
    """One mapped folder: host folder, guest folder, read-only, VSMB share name, and
    ``runtime`` (True: added with :meth:`Sandbox.map`; False: from the spec at create)."""

    host_path: str
    guest_path: str
    read_only: bool
    share: str | None
    runtime: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _runtime_entries(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The record's runtime mappings that belong to the current start of the VM."""
    started = sandbox.record.started_at
    entries = sandbox.record.extra.get("mappings") or []
    return [
        dict(e)
        for e in entries
        if isinstance(e, Mapping) and started is not None and e.get("started_at") == started
    ]


def _created_links(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The create-time mapped folders as the planner linked them (``Plan.guest_links``,
    kept in the record's ``extra["guest_links"]`` by ``Sandbox._provision``)."""
    entries = sandbox.record.extra.get("guest_links") or []
    return [dict(e) for e in entries if isinstance(e, Mapping)]


def mappings(sandbox: Sandbox) -> list[FolderMapping]:
    """Every folder mapped into the sandbox: the spec's (create-time), then the runtime ones.

    Create-time mappings carry the VSMB share the planner made for them (``share``, from
    the record) and are linked at their guest path after every start
    (:func:`link_created_mappings`); a record without that list (made before it existed)
    shows the spec's folders without a share.
    """
    links = _created_links(sandbox)
    if links:
        found = [
            FolderMapping(
                str(e["host_path"]),
                hostpath.normalise_guest_path(str(e["guest_path"])),
                bool(e["read_only"]),
                str(e["share"]),
                False,
            )
            for e in links
        ]
    else:
        found = [
            FolderMapping(
                m.host_path, hostpath.normalise_guest_path(m.guest_path), m.read_only, None, False
            )
            for m in sandbox.spec.mapped_folders
        ]
    for e in _runtime_entries(sandbox):
        found.append(
            FolderMapping(
                str(e["host"]), str(e["guest"]), bool(e["read_only"]), str(e["share"]), True
            )
        )
    return found


def _update_mappings(sandbox: Sandbox, change: Any) -> None:
    """Compare-and-set the record's runtime mapping list: ``change(list) -> list``."""
    from hcs_sandbox.sandbox.store import open_store

    with open_store(sandbox._state_dir) as store:
        for _ in range(20):
            record = store.get(sandbox.id)
            current = [
                dict(e) for e in record.extra.get("mappings") or [] if isinstance(e, Mapping)
            ]
            started = record.started_at
            live = [e for e in current if started is not None and e.get("started_at") == started]
            new = change(live)
            try:
                sandbox._record = store.update(
                    record.id,
                    expect_revision=record.revision,
                    merge_extra={"mappings": new} if new else {"mappings": None},
                )
                return
            except errors.StateConflictError:
                time.sleep(0.01)
        raise errors.StoreError(
            f"could not record the mappings of sandbox '{sandbox.name}': the record keeps changing",
            remedy="try again",
        )


def _share_name(guest_key: str) -> str:
    return MAP_SHARE_PREFIX + hashlib.sha256(guest_key.encode("utf-8")).hexdigest()[:12]


def _quote(path: str) -> str:
    if '"' in path:
        raise errors.SpecError(f"the path {path!r} contains a double quote", value=path)
    return f'"{path}"'


#: The remedy of a guest copy, mkdir or link command that failed: the guest's own message
#: ends the error line.
GUEST_WRITE_REMEDY = (
    "the guest's message says why; a mapped folder is read-only unless it was mapped "
    "read-write, and the guest's disk may be full"
)


def _guest_run(
    system: ComputeSystem, command: str, *, doing: str, where: str, remedy: str | None = None
) -> Any:
    from hcs_sandbox.sandbox.guest import exec_command

    result = exec_command(system, command, timeout=3600.0, where=where)
    if not result.ok:
        raise errors.GuestCommandError(result, doing=doing, remedy=remedy or GUEST_WRITE_REMEDY)
    return result


def host_path_arg(path: object, *, what: str, field: str) -> str:
    """THE rule for a host path given to a copy (:func:`copy_in`'s source, :func:`copy_out`'s
    destination, the CLI's ``cp``) or a map: a ``str`` or ``os.PathLike`` of one, not empty.
    An empty one is refused, not read as the current folder (``Path("")`` is ``.``): an unset
    variable would otherwise copy the whole working directory into the guest (QA agent F1).
    ``what``: ``"source"``, ``"destination"`` or ``"folder"``, for the message."""
    text = path if isinstance(path, str) else None
    if text is None and isinstance(path, os.PathLike):
        named = os.fspath(path)
        text = named if isinstance(named, str) else None
    if text is None:
        raise errors.SpecError(
            f"the host {what} must be a path (a str or os.PathLike), not {type(path).__name__}",
            field=field,
            value=path,
            allowed="a host path as a str or pathlib.Path",
        )
    if not text:
        raise errors.SpecError(
            f"the host {what} is empty",
            field=field,
            value=text,
            remedy="give a host path; write '.' for the current folder",
        )
    return text


def _link_share(
    system: ComputeSystem, share: str, guest: str, *, where: str, replace: bool = False
) -> None:
    """Make ``guest`` (a normalised guest path) a directory symbolic link to the VSMB share
    ``share``: the parent folder first (``mkdir`` makes intermediate folders, command
    extensions being on by default; an existing one is fine, hence ``if not exist``), then
    ``mklink /d`` (Microsoft *mklink* docs; the share's guest path: hcsshim
    ``vsmbSharePrefix``).  The one implementation for runtime and create-time mappings.

    ``replace``: first remove a link left at ``guest`` by an earlier start (a persistent
    sandbox's disk keeps it); ``rmdir`` removes a link, never the files behind it, and
    refuses a folder that is not empty, so ``mklink`` then fails with a clear message.
    """
    from hcs_sandbox.sandbox.guest import exec_command

    if replace:
        # Its failure (nothing there, a non-empty folder) is judged by mklink below.
        exec_command(system, f"cmd /c rmdir {_quote(guest)}", timeout=600.0, where=where)
    parent = ntpath.dirname(guest)
    if len(parent) > 3:
        _guest_run(
            system,
            f"cmd /c if not exist {_quote(parent)} mkdir {_quote(parent)}",
            doing=f"creating the guest folder {parent}",
            where=where,
        )
    _guest_run(
        system,
        f"cmd /c mklink /d {_quote(guest)} {_quote(vsmb_path(share))}",
        doing=f"linking {guest} to the mapped folder",
        where=where,
    )


#: How long :func:`link_created_mappings` retries while the guest agent does not answer
#: yet (right after ``HcsStartComputeSystem``; as ``logon.READY_TIMEOUT``).
LINK_READY_TIMEOUT = 180.0
_LINK_RETRY_EVERY = 1.0


def link_created_mappings(sandbox: Sandbox, system: ComputeSystem) -> int:
    """Link every create-time mapped folder at its guest path (after each start, before
    the logon command runs: ``Sandbox._after_start``).  Returns how many were linked.

    The shares themselves are in the compute system's document (the planner's
    ``VirtualSmb.Shares``); only the guest-side link is made here, with
    :func:`_link_share`.  While the guest connection is not up yet
    (:class:`~hcs_sandbox.errors.ConnectFailedError`) each link is retried for up to
    :data:`LINK_READY_TIMEOUT` seconds.  Any other failure raises a clear error naming the
    folder; the caller stops the sandbox (a sandbox never runs without a folder it was
    asked to show).  ``system`` is used as it is: the record is not ``running`` yet.
    """
    links = _created_links(sandbox)
    if not links:
        return 0
    where = f"sandbox '{sandbox.name}'"
    deadline = time.monotonic() + LINK_READY_TIMEOUT
    for entry in links:
        guest = hostpath.normalise_guest_path(str(entry["guest_path"]))
        host = str(entry["host_path"])
        try:
            while True:
                try:
                    _link_share(
                        system,
                        str(entry["share"]),
                        guest,
                        where=where,
                        replace=sandbox.persistent,
                    )
                    break
                except errors.ConnectFailedError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(_LINK_RETRY_EVERY)
        except errors.HcsError as exc:
            # Same class (and exit code) as HCS's own error, with the folder named.
            raise exc.restated(
                f"sandbox '{sandbox.name}' started, but its mapped folder {host} could not be "
                f"linked at {guest} in the guest: {exc.message}; the sandbox was stopped",
                remedy="check that the guest runs and accepts commands ('hcs-sandbox doctor'), "
                "then start it again",
            ) from exc
        except errors.HcsSandboxError as exc:
            raise errors.HcsSandboxError(
                f"sandbox '{sandbox.name}' started, but its mapped folder {host} could not be "
                f"linked at {guest} in the guest: {exc.message}; the sandbox was stopped",
                remedy="map it at a guest path that does not exist in the base image, "
                "then create the sandbox again",
            ) from exc
        _log.debug("%s: linked %s at %s", where, host, guest)
    sandbox._log_line(f"linked {len(links)} mapped folder(s) in the guest")
    return len(links)


def map_folder(
    sandbox: Sandbox, host_path: str | os.PathLike[str], guest_path: str, *, read_only: bool = True
) -> None:
    """:meth:`Sandbox.map`: add a VSMB share and link ``guest_path`` to it."""
    from hcs_sandbox.sandbox.guest import running_system

    if not isinstance(read_only, bool):
        raise errors.SpecError(
            "read_only must be True or False", field="read_only", value=read_only
        )
    host_path = host_path_arg(host_path, what="folder", field="host_path")
    guest = check_guest_path(guest_path)
    real = check_host_folder(host_path, protected=protected_folders(sandbox._state_dir))
    system = running_system(sandbox, "map a folder")
    for m in mappings(sandbox):
        if hostpath.nested_or_same(m.guest_path, guest):
            raise errors.SpecError(
                f"guest folder {guest} overlaps the mapped folder {m.guest_path}",
                field="guest_path",
                value=guest_path,
                remedy="map it somewhere else, or unmap the other one first",
            )
        # Real paths on both sides: a create-time folder recorded as written (a record made
        # before create recorded real paths) or moved since is compared as what it is now.
        other = os.path.realpath(m.host_path)
        if _inside_or_same(real, other) or _inside_or_same(other, real):
            raise errors.SpecError(
                f"host folder {real} overlaps {other}, already mapped at {m.guest_path}",
                field="host_path",
                value=host_path,
                remedy="map each host folder once, and not one inside another",
            )
    transfer = _transfer_dir(sandbox)
    if _inside_or_same(real, str(transfer)) or _inside_or_same(str(transfer), real):
        raise errors.SpecError(
            f"host folder {real} overlaps the sandbox's own transfer folder",
            field="host_path",
            value=host_path,
        )
    share = _share_name(hostpath.guest_key(guest))
    started = sandbox.record.started_at
    entry = {
        "host": real,
        "guest": guest,
        "read_only": read_only,
        "share": share,
        "started_at": started,
    }
    where = f"sandbox '{sandbox.name}'"
    # Write-ahead: the record knows the share before HCS has it.
    _update_mappings(sandbox, lambda live: [*live, entry])
    added = False
    try:
        system.modify(vsmb_request(ModifyRequestType.ADD, share, real, read_only=read_only))
        added = True
        _link_share(system, share, guest, where=where)
    except BaseException:
        if added:
            with contextlib.suppress(Exception):
                system.modify(vsmb_request(ModifyRequestType.REMOVE, share))
        with contextlib.suppress(Exception):
            _update_mappings(sandbox, lambda live: [e for e in live if e.get("share") != share])
        raise
    sandbox._log_line(f"mapped {real} at {guest} ({'read-only' if read_only else 'read-write'})")


def unmap_folder(sandbox: Sandbox, guest_path: str) -> None:
    """:meth:`Sandbox.unmap`: remove the guest link and the VSMB share."""
    from hcs_sandbox.sandbox.guest import running_system

    guest = check_guest_path(guest_path)
    key = hostpath.guest_key(guest)
    found = [m for m in mappings(sandbox) if hostpath.guest_key(m.guest_path) == key]
    if not found:
        raise errors.SpecError(
            f"nothing is mapped at {guest} in sandbox '{sandbox.name}'",
            field="guest_path",
            value=guest_path,
            remedy="see the mapped folders with 'hcs-sandbox inspect'",
        )
    mapping = found[0]
    if not mapping.runtime or mapping.share is None:
        raise errors.SpecError(
            f"{guest} was mapped when sandbox '{sandbox.name}' was created and stays mapped",
            field="guest_path",
            value=guest_path,
            remedy="only folders mapped with 'map' while it runs can be unmapped",
        )
    system = running_system(sandbox, "unmap a folder")
    where = f"sandbox '{sandbox.name}'"
    # rmdir on a directory symbolic link removes the link, never the target's files.
    _guest_run(
        system,
        f"cmd /c if exist {_quote(guest)} rmdir {_quote(guest)}",
        doing=f"removing the link {guest}",
        where=where,
    )
    share = mapping.share
    try:
        system.modify(vsmb_request(ModifyRequestType.REMOVE, share))
    except errors.NotFoundError:
        pass  # gone already
    _update_mappings(sandbox, lambda live: [e for e in live if e.get("share") != share])
    sandbox._log_line(f"unmapped {guest}")


# --------------------------------------------------------------------------------------
# The transfer share
# --------------------------------------------------------------------------------------


def _transfer_dir(sandbox: Sandbox) -> Path:
    from hcs_sandbox.sandbox import paths

    return Path(sandbox.directory) / paths.TRANSFER_DIR


def _ensure_transfer(sandbox: Sandbox, system: ComputeSystem) -> Path:
    """Make the staging folder and add the read-write transfer share once per VM start."""
    directory = _transfer_dir(sandbox)
    directory.mkdir(mode=0o700, exist_ok=True)
    started = sandbox.record.started_at
    if sandbox.record.extra.get("transfer_share") == started and started is not None:
        return directory
    try:
        system.modify(
            vsmb_request(ModifyRequestType.ADD, TRANSFER_SHARE, os.path.realpath(directory))
        )
    except errors.AlreadyExistsError:
        pass  # another process added it for this start
    except errors.HcsError as exc:
        # A share of that name already there (added by another process) is fine.
        if "already" not in str(exc).lower() and exc.name not in ("ERROR_FILE_EXISTS",):
            raise
    from hcs_sandbox.sandbox.store import open_store

    with open_store(sandbox._state_dir) as store:
        sandbox._record = store.update(sandbox.id, merge_extra={"transfer_share": started})
    return directory


@contextlib.contextmanager
def _batch(sandbox: Sandbox, system: ComputeSystem) -> Iterator[tuple[Path, str]]:
    """A fresh folder in the transfer share: (host path, guest path); deleted afterwards."""
    directory = _ensure_transfer(sandbox, system)
    name = uuid.uuid4().hex
    host = directory / name
    if hostpath.too_long(host, folder=True):
        # A state directory of more than ~158 characters on Windows without long paths:
        # sandboxes fit, a cp batch folder does not (review RV43 #1: "internal error").
        raise errors.SpecError(
            f"cannot copy: the transfer folder {host} would be "
            f"{hostpath.too_long_problem(host, folder=True).removeprefix('it is ')}, because "
            "the state directory's path is long",
            field="state_dir",
            value=str(host),
            remedy="use a shorter --state-dir / HCS_SANDBOX_STATE_DIR for sandboxes you copy "
            "to or from, or " + hostpath.LONG_PATHS_REMEDY,
        )
    host.mkdir(mode=0o700)
    try:
        yield host, vsmb_path(TRANSFER_SHARE, name)
    finally:
        _remove_batch(host, sandbox.directory)


def _remove_batch(host: Path, sandbox_dir: str | os.PathLike[str]) -> None:
    """Delete a cp batch folder; what cannot be deleted (a path longer than Windows allows,
    a file the guest still holds open) is logged, not hidden: it stays inside the sandbox
    folder, so removing the sandbox deletes it."""
    from hcs_sandbox.sandbox import storage

    failed: dict[str, str] = {}  # path: why (rmtree may fail twice on one path)

    def note(path: str, exc: BaseException) -> None:
        if isinstance(exc, FileNotFoundError):
            if not hostpath.too_long(path):
                return  # already gone
            failed.setdefault(path, hostpath.too_long_problem(path))
        elif not (isinstance(exc, OSError) and exc.errno == errno.ENOTEMPTY):
            failed.setdefault(path, str(exc))  # (ENOTEMPTY: a folder whose contents failed)

    storage.rmtree(host, note)
    if failed:
        first, why = next(iter(failed.items()))
        _log.warning(
            "could not delete %d item(s) of the copy folder %s, first %s (%s); they are "
            "inside the sandbox folder %s, so removing the sandbox deletes them",
            len(failed),
            host,
            first,
            why,
            os.fspath(sandbox_dir),
        )


# --------------------------------------------------------------------------------------
# Streaming copies with escape checks
# --------------------------------------------------------------------------------------


# Reparse tags of the two kinds of Windows links: IO_REPARSE_TAG_MOUNT_POINT (a directory
# junction, ``mklink /J``, or a volume mount point) and IO_REPARSE_TAG_SYMLINK (Microsoft
# [MS-FSCC] 2.1.2.1 "Reparse Tags": 0xA0000003 and 0xA000000C).  Python's ``stat`` module has
# them on Windows only (``stat.IO_REPARSE_TAG_*``, 3.8+), hence the fallbacks.
_IO_REPARSE_TAG_MOUNT_POINT: int = getattr(stat, "IO_REPARSE_TAG_MOUNT_POINT", 0xA0000003)
_IO_REPARSE_TAG_SYMLINK: int = getattr(stat, "IO_REPARSE_TAG_SYMLINK", 0xA000000C)


def _link_kind(path: str | os.PathLike[str]) -> str | None:
    """What kind of link ``path`` itself is (``"symbolic link"``, ``"junction"``), or None
    when it is none (or does not exist): THE test of every copy for a link it must not
    follow or write through.

    ``os.path.islink`` / ``Path.is_symlink`` are False for a directory junction on Python
    3.10 and 3.11 (``os.path.isjunction`` is 3.12+), and ``os.walk(followlinks=False)``
    descends into one (python/cpython#67596).  ``os.lstat`` does not follow a junction and
    reports its tag: Python docs, ``os.stat_result.st_reparse_tag`` ("When
    st_file_attributes has FILE_ATTRIBUTE_REPARSE_POINT set, this field contains the tag
    identifying the type of reparse point", Windows, 3.8+) and the ``stat`` module's
    ``IO_REPARSE_TAG_SYMLINK`` / ``IO_REPARSE_TAG_MOUNT_POINT`` (bpo-37834: lstat opens
    name surrogates, symbolic links and junctions, without following them).  Only those two
    tags count: other reparse points (OneDrive and cloud files, deduplicated files ...) are
    files or folders with content and are copied.  Off Windows there is no tag
    (``st_reparse_tag`` is absent) and only a symbolic link counts.
    """
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return None
    if stat.S_ISLNK(st.st_mode):
        return "symbolic link"
    tag = getattr(st, "st_reparse_tag", 0)
    if tag == _IO_REPARSE_TAG_MOUNT_POINT:
        return "junction"
    if tag == _IO_REPARSE_TAG_SYMLINK:
        return "symbolic link"
    return None


def _refuse_link(path: str | os.PathLike[str]) -> None:
    """Raise when ``path`` is a link (:func:`_link_kind`): the host side of a copy is never
    written through one."""
    kind = _link_kind(path)
    if kind is not None:
        raise errors.StorageError(
            f"refusing to write through the {kind} {os.fspath(path)}",
            remedy="remove the link or copy somewhere else",
        )


def _copy_file(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> int:
    """Stream one regular file; never follows a symbolic link or junction at ``target``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    _refuse_link(target)
    fd = os.open(target, flags, 0o666)
    with open(source, "rb") as src, open(fd, "wb") as dst:
        shutil.copyfileobj(src, dst, COPY_BUFFER)
        return dst.tell()


def _source_tree(root: Path) -> Iterator[tuple[Path, str, bool]]:
    """Walk a host source folder: (path, relative path with \\, is_dir).  Refuses names a
    Windows guest cannot hold and links that leave the tree; follows links inside it."""
    real_root = os.path.realpath(root)
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in [*dirs, *sorted(files)]:
            path = Path(current) / name
            rel = os.path.relpath(path, root)
            problem = windows_name_problem(name)
            if problem:
                raise errors.SpecError(
                    f"cannot copy {path}: {problem}",
                    field="source",
                    value=str(path),
                    remedy="rename it, or copy the other files one by one",
                )
            link = _link_kind(path)
            if link is not None:
                target = os.path.realpath(path)
                if not _inside_or_same(target, real_root):
                    raise errors.SpecError(
                        f"cannot copy {path}: it is a {link} to {target}, outside the "
                        "folder being copied",
                        field="source",
                        value=str(path),
                        remedy="copy the link's target separately",
                    )
                if os.path.isdir(path):
                    # A link to a folder inside the tree: its files are copied there anyway.
                    # os.walk(followlinks=False) still descends into a junction on Windows
                    # (python/cpython#67596): drop it from ``dirs`` so it never does.
                    if name in dirs:
                        dirs.remove(name)
                    continue
            is_dir = link is None and path.is_dir()
            if not is_dir and not path.is_file():
                if hostpath.too_long(path):  # it cannot even be read (review RV42 #4)
                    raise errors.SpecError(
                        f"cannot copy {path}: {hostpath.too_long_problem(path)}",
                        field="source",
                        value=str(path),
                        remedy=hostpath.LONG_PATHS_REMEDY,
                    )
                raise errors.SpecError(
                    f"cannot copy {path}: not a regular file or folder",
                    field="source",
                    value=str(path),
                )
            yield path, rel.replace(os.sep, "\\"), is_dir
    if not os.path.isdir(real_root):  # pragma: no cover - raced away
        raise errors.StorageError(f"{root} disappeared while it was copied")


def _stage_host_source(source: str, staging: Path) -> tuple[str, bool]:
    """Copy a host file/folder into ``staging``; returns (its name, is_dir)."""
    path = Path(source)
    try:
        st = path.stat()
    except FileNotFoundError:
        if hostpath.too_long(source):
            raise errors.SpecError(
                f"cannot copy {source}: {hostpath.too_long_problem(source)}",
                field="source",
                value=source,
                remedy=hostpath.LONG_PATHS_REMEDY,
            ) from None
        where = "" if os.path.isabs(source) else f"; a relative one starts at {os.getcwd()}"
        raise errors.SpecError(
            f"cannot copy {source}: it does not exist",
            field="source",
            value=source,
            remedy=f"check the host path{where}",
        ) from None
    except OSError as exc:
        raise errors.StorageError(f"cannot read {source}: {exc}") from exc
    name = os.path.basename(os.path.normpath(os.path.abspath(source)))
    problem = windows_name_problem(name)
    if problem:
        raise errors.SpecError(f"cannot copy {source}: {problem}", field="source", value=source)
    if stat.S_ISREG(st.st_mode):
        _refuse_too_deep(source, [(staging / name, False)], staging)
        with _staging_errors(source, staging):
            _copy_file(path, staging / name)
        return name, False
    if not stat.S_ISDIR(st.st_mode):
        raise errors.SpecError(
            f"cannot copy {source}: not a regular file or folder", field="source", value=source
        )
    top = staging / name
    tree = list(_source_tree(path))  # walked first: refused before anything is copied
    _refuse_too_deep(
        source,
        [(top, True)] + [(top / rel.replace("\\", os.sep), d) for _, rel, d in tree],
        staging,
    )
    with _staging_errors(source, staging):
        top.mkdir()
        for item, rel, is_dir in tree:
            target = top / rel.replace("\\", os.sep)
            if is_dir:
                target.mkdir(exist_ok=True)
            else:
                _copy_file(item, target)
    return name, True


def _staged_too_long(
    staged: str, staging: Path, *, folder: bool = False, verb: str = "would be"
) -> str:
    """Why ``staged`` (inside the cp batch folder ``staging``) cannot be written on Windows."""
    inside = os.path.relpath(staged, staging).replace(os.sep, "\\")
    limit = hostpath.MAX_PATH - 12 if folder else hostpath.MAX_PATH
    room = max(limit - 1 - len(os.fspath(staging)) - 1, 0)
    return (
        f"the copy of {inside} in the transfer folder {os.fspath(staging)} {verb} "
        f"{len(os.path.abspath(staged))} characters long, longer than Windows allows without "
        f"long paths ({limit} characters with the terminating NUL"
        f"{' for a new folder' if folder else ''}): the transfer folder leaves {room} "
        "characters for the names copied"
    )


def _too_deep_error(
    source: str, staged: str, staging: Path, *, folder: bool = False
) -> errors.SpecError:
    """A cp whose copy in the transfer folder (``staging``, on the host) would be longer
    than Windows allows (:func:`hostpath.too_long`)."""
    return errors.SpecError(
        f"cannot copy {source}: {_staged_too_long(staged, staging, folder=folder)}",
        field="source",
        value=source,
        remedy=hostpath.LONG_PATHS_REMEDY.replace(
            "or use a shorter path", "or copy a shallower folder, or an archive of it"
        ),
    )


def _refuse_too_deep(source: str, staged: list[tuple[Path, bool]], staging: Path) -> None:
    """Refuse, before copying, a source with a staged path (path, is a folder) too long on
    Windows (:func:`hostpath.too_long`); the longest one is named."""
    over = [(p, d) for p, d in staged if hostpath.too_long(p, folder=d)]
    if over:
        path, folder = max(over, key=lambda item: len(os.fspath(item[0])))
        raise _too_deep_error(source, os.fspath(path), staging, folder=folder)


@contextlib.contextmanager
def _staging_errors(source: str, staging: Path) -> Iterator[None]:
    """An OSError on a too-long path while staging becomes :func:`_too_deep_error` (not an
    internal error); any other is raised as it is."""
    try:
        yield
    except OSError as exc:
        name = exc.filename
        # 248 characters or more: too long for a new folder (a file may have 259).
        if isinstance(name, (str, os.PathLike)) and hostpath.too_long(name, folder=True):
            folder = not hostpath.too_long(name)
            raise _too_deep_error(source, os.fspath(name), staging, folder=folder) from exc
        raise


def _check_staged(root: Path) -> None:
    """Everything the guest left in a batch folder must be a plain file or folder with a
    valid name (no links, junctions, devices or FIFOs that could point outside)."""
    for current, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(current) / name
            if hostpath.too_long(path):  # before lstat: it would raise FileNotFoundError
                raise _copied_out_too_deep(path, root)
            st = path.lstat()
            problem = windows_name_problem(name)
            if problem:
                raise errors.SpecError(
                    f"refusing to copy {name!r} out of the sandbox: {problem}",
                    field="source",
                    value=name,
                )
            if stat.S_ISLNK(st.st_mode) or not (
                stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)
            ):
                raise errors.SpecError(
                    f"refusing to copy {os.path.relpath(path, root)} out of the sandbox: it is "
                    "not a plain file or folder (a link could point outside the destination)",
                    field="source",
                    value=name,
                )
            if sys.platform == "win32":  # pragma: no cover - Windows only
                attrs = getattr(st, "st_file_attributes", 0)
                if attrs & 0x400:  # FILE_ATTRIBUTE_REPARSE_POINT (winnt.h)
                    raise errors.SpecError(
                        f"refusing to copy the reparse point {name!r} out of the sandbox",
                        field="source",
                        value=name,
                    )


def _copied_out_too_deep(path: Path, root: Path) -> errors.StorageError:
    """What the guest copied into the transfer folder has a path longer than Windows allows
    on the host (:func:`hostpath.too_long`)."""
    return errors.StorageError(
        "cannot copy out of the sandbox: " + _staged_too_long(os.fspath(path), root, verb="is"),
        remedy=hostpath.LONG_PATHS_REMEDY.replace(
            "or use a shorter path",
            "or copy a shallower guest folder, or an archive of it (tar in the guest)",
        ),
    )


def _place_on_host(staged: Path, target: Path, is_dir: bool) -> None:
    """Stream a checked staged item to its host destination, never through a link."""
    if not is_dir:
        _copy_file(staged, target)
        return
    _refuse_link(target)
    target.mkdir(exist_ok=True)
    for current, dirs, files in os.walk(staged, followlinks=False):
        rel = os.path.relpath(current, staged)
        base = target if rel == "." else target / rel
        for name in sorted(dirs):
            dest = base / name
            _refuse_link(dest)
            dest.mkdir(exist_ok=True)
        for name in sorted(files):
            _copy_file(Path(current) / name, base / name)


# --------------------------------------------------------------------------------------
# copy_in / copy_out
# --------------------------------------------------------------------------------------


#: :func:`_guest_kind`'s exit codes.
_GUEST_KINDS = {3: "dir", 2: "file", 4: "missing"}


def _guest_kind(system: ComputeSystem, guest: str, *, where: str) -> str:
    """``"dir"``, ``"file"`` or ``"missing"`` for a guest path, asked in ONE guest command
    (cmd.exe ``IF EXIST``, ``IF ... (...) ELSE ...``: learn.microsoft.com, *if*; a path
    followed by ``\\*`` exists only for a folder, where FindFirstFile finds at least
    ``.``).  Whether it exists is asked first, then whether it is a folder: a folder that
    another copy creates meanwhile is then "missing" or "dir", never taken for a file, as
    the other order did (one command for each question: QA agent F3)."""
    from hcs_sandbox.sandbox.guest import exec_command

    q = _quote(guest)
    q_all = _quote(guest.rstrip("\\") + "\\*")
    result = exec_command(
        system,
        f"cmd /c if not exist {q} (exit 4) else if exist {q_all} (exit 3) else (exit 2)",
        timeout=600.0,
        where=where,
    )
    kind = _GUEST_KINDS.get(result.exit_code)
    if kind is None:
        raise errors.GuestCommandError(
            result,
            doing=f"asking whether {guest} is a file or a folder in the guest",
            remedy="try again; if it fails again, check that the guest runs commands "
            "(exec 'cmd /c ver' in it)",
        )
    return kind


def copy_in(sandbox: Sandbox, host_path: str | os.PathLike[str], guest_path: str) -> None:
    """:meth:`Sandbox.copy_in`.  A file or folder; into ``guest_path`` when that is an
    existing guest folder, else as ``guest_path`` (its parent is created)."""
    from hcs_sandbox.sandbox.guest import running_system

    source = host_path_arg(host_path, what="source", field="source")
    guest = check_guest_path(guest_path, allow_root=True)
    system = running_system(sandbox, "copy files")
    where = f"sandbox '{sandbox.name}'"
    with _batch(sandbox, system) as (host_batch, guest_batch):
        name, is_dir = _stage_host_source(source, host_batch)
        staged = f"{guest_batch}\\{name}"
        kind = _guest_kind(system, guest, where=where)
        if kind == "dir":
            target = guest.rstrip("\\") + "\\" + name
        elif kind == "file" and is_dir:
            raise errors.SpecError(
                f"cannot copy the folder {source} onto the guest file {guest}",
                field="destination",
                value=guest_path,
                remedy="give a guest folder, or a path that does not exist yet",
            )
        else:
            target = guest
            parent = ntpath.dirname(guest)
            if kind == "missing" and len(parent) > 3:
                _guest_run(
                    system,
                    f"cmd /c if not exist {_quote(parent)} mkdir {_quote(parent)}",
                    doing=f"creating the guest folder {parent}",
                    where=where,
                )
        if is_dir:
            command = f"cmd /c xcopy {_quote(staged)} {_quote(target + chr(92))} /e /i /h /k /y /q"
        else:
            command = f"cmd /c copy /y /b {_quote(staged)} {_quote(target)}"
        _guest_run(system, command, doing=f"copying {source} to {target} in the guest", where=where)
    sandbox._log_line(f"copied {source} into the guest at {target}")


def copy_out(sandbox: Sandbox, guest_path: str, host_path: str | os.PathLike[str]) -> None:
    """:meth:`Sandbox.copy_out`.  A guest file or folder; into ``host_path`` when that is
    an existing host folder, else as ``host_path`` (its parent must exist)."""
    from hcs_sandbox.sandbox.guest import running_system

    given = host_path_arg(host_path, what="destination", field="destination")
    guest = check_guest_path(guest_path)
    destination = Path(os.path.abspath(given))
    system = running_system(sandbox, "copy files")
    where = f"sandbox '{sandbox.name}'"
    kind = _guest_kind(system, guest, where=where)
    if kind == "missing":
        folder = ntpath.dirname(guest)
        raise errors.SpecError(
            f"{guest} does not exist in sandbox '{sandbox.name}'",
            field="source",
            value=guest_path,
            remedy=f"check the guest path; list {folder} with: hcs-sandbox exec "
            f'{sandbox.name} -- cmd /c dir "{folder}"',  # cmd.exe, PowerShell, bash (RV41 #3)
        )
    name = ntpath.basename(guest)
    if hostpath.too_long(destination):  # it would look missing (FileNotFoundError)
        raise errors.SpecError(
            f"cannot copy to {destination}: {hostpath.too_long_problem(destination)}",
            field="destination",
            value=given,
            remedy=hostpath.LONG_PATHS_REMEDY,
        )
    if destination.is_dir() and _link_kind(destination) is None:
        target = destination / name
    else:
        target = destination
        if not target.parent.is_dir():
            raise errors.SpecError(
                f"cannot copy to {target}: the folder {target.parent} does not exist",
                field="destination",
                value=given,
                remedy="create it first",
            )
    if kind == "dir" and target.exists() and not target.is_dir():
        raise errors.SpecError(
            f"cannot copy the guest folder {guest} onto the host file {target}",
            field="destination",
            value=given,
            remedy="give a host folder, or a path that does not exist yet",
        )
    with _batch(sandbox, system) as (host_batch, guest_batch):
        staged_guest = f"{guest_batch}\\{name}"
        if kind == "dir":
            command = (
                f"cmd /c xcopy {_quote(guest)} {_quote(staged_guest + chr(92))} /e /i /h /k /y /q"
            )
        else:
            command = f"cmd /c copy /y /b {_quote(guest)} {_quote(staged_guest)}"
        _guest_run(
            system,
            command,
            doing=f"copying {guest} out of the guest",
            where=where,
            remedy="the guest's message says why (a file the guest holds open cannot be "
            "read); check that the host has room",
        )
        _check_staged(host_batch)
        entries = os.listdir(host_batch)
        if entries != [name] and [e.casefold() for e in entries] != [name.casefold()]:
            raise errors.SpecError(
                f"unexpected files in the transfer folder after copying {guest}: {entries}",
                field="source",
                value=guest_path,
            )
        staged = host_batch / entries[0]
        try:
            _place_on_host(staged, target, kind == "dir")
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise errors.StorageError(
                    f"refusing to write through the symbolic link {target}"
                ) from exc
            name_ = exc.filename
            if isinstance(name_, (str, os.PathLike)) and hostpath.too_long(name_, folder=True):
                new_folder = not hostpath.too_long(name_)
                raise errors.StorageError(
                    f"cannot write {os.fspath(name_)}: "
                    f"{hostpath.too_long_problem(name_, folder=new_folder)}",
                    remedy=hostpath.LONG_PATHS_REMEDY,
                ) from exc
            raise errors.StorageError(f"cannot write {target}: {exc}") from exc
    sandbox._log_line(f"copied {guest} out of the guest to {target}")
