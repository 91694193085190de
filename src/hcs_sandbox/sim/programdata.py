"""A fake ``%ProgramData%`` for the simulator, holding a fake Windows Sandbox base image.

The sandbox layer asks the backend where ProgramData is (``program_data_dir()``); on
Windows that is the real folder, and in the simulator it is ``<state>/ProgramData`` with
the layout Windows Sandbox uses (its HCS document, MouriNaruto/MouriDocs ``docs/4/ReadMe.md``):
``Microsoft\\Windows\\Containers\\BaseImages\\<guid>\\BaseLayer\\Files`` plus a few files a
Windows root has, so tests can find "this host's base image" without Windows.

The simulated host is Windows build :data:`SIMULATED_WINDOWS_VERSION` (the backend answers
``windows_build()`` with its build), and the fake base image's
``Windows\\System32\\ntoskrnl.exe`` is a minimal real PE image (:func:`build_pe`) whose
version resource carries that version, so the sandbox layer's build check
(``sandbox/basebuild.py``) reads it as it would on Windows.  Tests simulate a stale base
image (:func:`set_base_image_build` with an older build) or one whose build cannot be read
(:func:`make_base_image_unreadable`); both live on disk, so every process sees them.

Created lazily on the first call, never at import time.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path

from hcs_sandbox.sim.state import ensure_private_dir

__all__ = [
    "FAKE_BASE_IMAGE_ID",
    "SIMULATED_WINDOWS_VERSION",
    "base_image_kernel",
    "build_pe",
    "ensure_program_data",
    "make_base_image_unreadable",
    "set_base_image_build",
    "simulated_windows_build",
]

#: The id of the fake base image folder (any GUID; Windows uses a random one per build).
FAKE_BASE_IMAGE_ID = "134ac1c6-9de2-465e-9f16-570f0066c8a5"

#: The simulated host's Windows version (major, minor, build, revision): Windows 11 24H2's
#: build number; any build works, the fake base image is made to match it.
SIMULATED_WINDOWS_VERSION = (10, 0, 26100, 1)

#: What earlier versions wrote as the fake kernel (not a PE image): replaced on first use.
_OLD_FAKE_KERNEL = b"MZ simulated kernel\n"

_BASE_IMAGES = ("Microsoft", "Windows", "Containers", "BaseImages")
_KERNEL = ("BaseLayer", "Files", "Windows", "System32", "ntoskrnl.exe")

# What was made in this process, by state dir: (the ProgramData folder, the fake kernel's
# path), checked with one lstat of the kernel.
_MADE: dict[str, tuple[Path, str]] = {}


def simulated_windows_build() -> int:
    """The simulated host's build number (what the backend's ``windows_build()`` says)."""
    return SIMULATED_WINDOWS_VERSION[2]


def base_image_kernel(
    state_dir: str | os.PathLike[str], image_id: str = FAKE_BASE_IMAGE_ID
) -> Path:
    """``<ProgramData>\\...\\BaseImages\\<image_id>\\BaseLayer\\Files\\Windows\\System32\\ntoskrnl.exe``."""
    return Path(state_dir, "ProgramData", *_BASE_IMAGES, image_id, *_KERNEL)


def ensure_program_data(state_dir: str | os.PathLike[str]) -> Path:
    """Create (if missing) and return ``<state_dir>/ProgramData``."""
    key = os.fspath(state_dir)
    made = _MADE.get(key)
    if made is not None and os.path.lexists(made[1]):
        return made[0]  # made earlier (one lstat instead of the mkdirs below)
    ensure_private_dir(os.path.normpath(key))  # owner-only, as the store makes it
    root = Path(state_dir) / "ProgramData"
    os.makedirs(root, 0o700, exist_ok=True)
    kernel = base_image_kernel(state_dir)
    kernel.parent.mkdir(parents=True, exist_ok=True)
    # A kernel already there (a test's stale or unreadable one) is left as it is, except
    # the placeholder earlier versions wrote, which becomes the real-shaped image.
    if not os.path.lexists(kernel) or _is_old_placeholder(kernel):
        _write_atomically(kernel, build_pe(SIMULATED_WINDOWS_VERSION))
    _MADE[key] = (root, str(kernel))
    return root


def set_base_image_build(
    state_dir: str | os.PathLike[str],
    build: int,
    *,
    image_id: str = FAKE_BASE_IMAGE_ID,
    mtime: float | None = None,
) -> Path:
    """Make (or rewrite) the base image ``image_id`` with a kernel of ``10.0.<build>.1``:
    an older build than :func:`simulated_windows_build` simulates a base image left from
    before a Windows update.  ``mtime`` sets its ``BaseLayer\\Files`` folder's modification
    time (which base is newest).  Returns the base image folder."""
    ensure_program_data(state_dir)
    kernel = base_image_kernel(state_dir, image_id)
    kernel.parent.mkdir(parents=True, exist_ok=True)
    _remove(kernel)
    _write_atomically(kernel, build_pe((10, 0, build, 1)))
    files = kernel.parents[2]  # ...\<image_id>\BaseLayer\Files
    if mtime is not None:
        os.utime(files, (mtime, mtime))
    return files.parent.parent


def make_base_image_unreadable(
    state_dir: str | os.PathLike[str],
    how: str = "no-version",
    *,
    image_id: str = FAKE_BASE_IMAGE_ID,
) -> Path:
    """Make the build of base image ``image_id`` unreadable: ``no-version``, a PE image
    without a version resource; ``garbage``, not a PE image; ``unopenable``, a link that
    leads nowhere (as a reparse point the host cannot follow).  Returns the kernel's path."""
    ensure_program_data(state_dir)
    kernel = base_image_kernel(state_dir, image_id)
    kernel.parent.mkdir(parents=True, exist_ok=True)
    _remove(kernel)
    if how == "no-version":
        kernel.write_bytes(build_pe(SIMULATED_WINDOWS_VERSION, version_resource=False))
    elif how == "garbage":
        kernel.write_bytes(b"MZ" + b"\xff" * 126)
    elif how == "unopenable":
        os.symlink(kernel.with_name("missing-target.exe"), kernel)
    else:
        raise ValueError(f"how must be no-version, garbage or unopenable, not {how!r}")
    return kernel


def _is_old_placeholder(kernel: Path) -> bool:
    try:
        if os.lstat(kernel).st_size != len(_OLD_FAKE_KERNEL):
            return False
        return kernel.read_bytes() == _OLD_FAKE_KERNEL
    except OSError:
        return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    elif os.path.lexists(path):
        path.unlink()


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (another process
    reading the kernel never sees half of it).  The temporary name is per process and per
    thread: threads that make the simulator's ProgramData at once (the first sandboxes of a
    pool) each rename their own file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


# --------------------------------------------------------------------------------------
# A minimal PE image with a version resource (PE Format, learn.microsoft.com; VS_VERSIONINFO
# and VS_FIXEDFILEINFO, MicrosoftDocs: the same documents sandbox/peversion.py reads by)
# --------------------------------------------------------------------------------------

_FILE_ALIGNMENT = 0x200
_SECTION_ALIGNMENT = 0x1000


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def _version_info(version: Sequence[int], children: bytes) -> bytes:
    """VS_VERSIONINFO: header, L"VS_VERSION_INFO", Padding1, VS_FIXEDFILEINFO, Padding2,
    then ``children`` (opaque bytes here: StringFileInfo/VarFileInfo are not read)."""
    major, minor, build, revision = version
    ms, ls = (major << 16) | minor, (build << 16) | revision
    fixed = struct.pack(
        "<13I",
        0xFEEF04BD,  # dwSignature
        0x00010000,  # dwStrucVersion 1.0
        ms,
        ls,  # dwFileVersionMS/LS
        ms,
        ls,  # dwProductVersionMS/LS
        0x3F,  # dwFileFlagsMask
        0,  # dwFileFlags
        0x00040004,  # dwFileOS VOS_NT_WINDOWS32
        3,  # dwFileType VFT_DRV
        7,  # dwFileSubtype VFT2_DRV_SYSTEM
        0,
        0,  # dwFileDateMS/LS
    )
    key = "VS_VERSION_INFO\0".encode("utf-16-le")
    head = 6 + len(key)
    body = key + b"\0" * (_align(head, 4) - head) + fixed
    body += b"\0" * (_align(6 + len(body), 4) - 6 - len(body)) + children
    return struct.pack("<HHH", 6 + len(body), len(fixed), 0) + body


def _directory(entries: list[tuple[int | None, int]], names: int) -> bytes:
    """A resource directory table and its entries: (ID or None for a Name entry, target)."""
    table = struct.pack("<IIHHHH", 0, 0, 0, 0, names, len(entries) - names)
    return table + b"".join(struct.pack("<II", ident or 0, target) for ident, target in entries)


def build_pe(
    version: Sequence[int],
    *,
    pe32plus: bool = True,
    version_resource: bool = True,
    other_types: Sequence[int] = (),
    named_type: bool = False,
    code_section: bool = False,
    children: bytes = b"",
    data_misalign: int = 0,
) -> bytes:
    """A minimal PE image (MS-DOS header, ``PE\\0\\0``, COFF header, PE32/PE32+ optional
    header with 16 data directories, an optional ``.text`` section and a ``.rsrc`` section)
    whose resources hold a VS_VERSIONINFO for ``version`` (major, minor, build, revision).

    ``other_types``: more resource types (IDs, each with one small RCDATA-like blob) listed
    around RT_VERSION in ID order; ``named_type``: a Name entry before the ID entries;
    ``version_resource=False``: no RT_VERSION at all; ``children``: bytes after the fixed
    info inside VS_VERSIONINFO (as StringFileInfo would be); ``data_misalign``: each
    resource's data that many bytes past its DWORD-aligned place (2: a data RVA and a file
    offset that are 2 mod 4; VS_VERSIONINFO's own padding stays relative to its start).  It
    does not run: it is for reading its headers and resources only.
    """
    rt_version = 16
    types = sorted({*other_types} - {rt_version} | ({rt_version} if version_resource else set()))
    blobs = {
        t: (_version_info(version, children) if t == rt_version else b"data%04d" % t) for t in types
    }
    # Layout of .rsrc: root directory, per type a name directory and a language directory,
    # then data entries, the name string, then the data (each DWORD-aligned).
    named = 1 if named_type else 0
    root_size = 16 + 8 * (len(types) + named)
    level_size = 16 + 8  # one entry
    name_dirs_at = root_size
    lang_dirs_at = name_dirs_at + level_size * (len(types) + named)
    data_entries_at = lang_dirs_at + level_size * (len(types) + named)
    string_at = data_entries_at + 16 * (len(types) + named)
    name_string = struct.pack("<H", 4) + "NAME".encode("utf-16-le")
    data_at = _align(string_at + len(name_string), 4)
    keys: list[int | None] = ([None] if named else []) + list(types)
    offsets: list[int] = []
    cursor = data_at
    payloads: list[bytes] = []
    for key in keys:
        blob = b"named" if key is None else blobs[key]
        offsets.append(cursor + data_misalign)
        payloads.append(blob)
        cursor = _align(cursor + data_misalign + len(blob), 4)
    rsrc_size = cursor
    headers_raw = _align(0x80 + 4 + 20 + (240 if pe32plus else 224) + 40 * 2, _FILE_ALIGNMENT)
    text_rva = _SECTION_ALIGNMENT
    rsrc_rva = _SECTION_ALIGNMENT * (2 if code_section else 1)
    rsrc_raw = headers_raw + (_FILE_ALIGNMENT if code_section else 0)

    rsrc = bytearray(rsrc_size)
    root_entries: list[tuple[int | None, int]] = []
    for index, key in enumerate(keys):
        name_dir = name_dirs_at + level_size * index
        lang_dir = lang_dirs_at + level_size * index
        entry = data_entries_at + 16 * index
        ident = (0x80000000 | string_at) if key is None else key
        root_entries.append((ident, 0x80000000 | name_dir))
        rsrc[name_dir : name_dir + level_size] = _directory([(1, 0x80000000 | lang_dir)], 0)
        rsrc[lang_dir : lang_dir + level_size] = _directory([(0x0409, entry)], 0)
        rsrc[entry : entry + 16] = struct.pack(
            "<IIII", rsrc_rva + offsets[index], len(payloads[index]), 0, 0
        )
        rsrc[offsets[index] : offsets[index] + len(payloads[index])] = payloads[index]
    rsrc[0:root_size] = _directory(root_entries, named)
    rsrc[string_at : string_at + len(name_string)] = name_string
    rsrc_raw_size = _align(rsrc_size, _FILE_ALIGNMENT)

    sections = []
    if code_section:
        sections.append((b".text", 0x10, text_rva, _FILE_ALIGNMENT, headers_raw, 0x60000020))
    sections.append((b".rsrc", rsrc_size, rsrc_rva, rsrc_raw_size, rsrc_raw, 0x40000040))
    image_size = _align(rsrc_rva + rsrc_size, _SECTION_ALIGNMENT)

    directories = [(0, 0)] * 16
    directories[2] = (rsrc_rva, rsrc_size)  # Resource Table
    standard = struct.pack(
        "<HBBIIIII", 0x20B if pe32plus else 0x10B, 14, 0, 0, rsrc_raw_size, 0, 0, text_rva
    )
    if pe32plus:
        windows = struct.pack(
            "<QIIHHHHHHIIIIHHQQQQII",
            0x140000000, _SECTION_ALIGNMENT, _FILE_ALIGNMENT, 10, 0, 10, 0, 10, 0, 0,
            image_size, headers_raw, 0, 1, 0x160, 0x80000, 0x1000, 0x100000, 0x1000, 0, 16,
        )  # fmt: skip
    else:
        standard += struct.pack("<I", 0)  # BaseOfData
        windows = struct.pack(
            "<IIIHHHHHHIIIIHHIIIIII",
            0x400000, _SECTION_ALIGNMENT, _FILE_ALIGNMENT, 10, 0, 10, 0, 10, 0, 0,
            image_size, headers_raw, 0, 1, 0x140, 0x80000, 0x1000, 0x100000, 0x1000, 0, 16,
        )  # fmt: skip
    optional = standard + windows + b"".join(struct.pack("<II", *d) for d in directories)
    coff = struct.pack(
        "<HHIIIHH", 0x8664 if pe32plus else 0x14C, len(sections), 0, 0, 0, len(optional), 0x22
    )
    table = b"".join(
        struct.pack("<8sIIIIIIHHI", name, vsize, rva, raw_size, raw, 0, 0, 0, 0, flags)
        for name, vsize, rva, raw_size, raw, flags in sections
    )
    dos = bytearray(0x80)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x80)
    head = bytes(dos) + b"PE\0\0" + coff + optional + table
    image = bytearray(head + b"\0" * (headers_raw - len(head)))
    if code_section:
        image += b"\xc3" + b"\0" * (_FILE_ALIGNMENT - 1)
    image += bytes(rsrc) + b"\0" * (rsrc_raw_size - rsrc_size)
    return bytes(image)
