"""Read the fixed file version (``VS_FIXEDFILEINFO``) of a PE file, in pure Python.

Used to tell which Windows build a base image holds (the version of its
``Windows\\System32\\ntoskrnl.exe``: ``10.0.<build>.<revision>``), on any OS, without
``GetFileVersionInfo`` (which loads the file as a module and is Windows-only).

Only Microsoft's documents, nothing guessed:

* **PE Format** (learn.microsoft.com/windows/win32/debug/pe-format; MicrosoftDocs/win32
  ``desktop-src/Debug/pe-format.md``): the file offset of the PE signature at 0x3C of the
  MS-DOS stub; the signature ``PE\\0\\0``; the 20-byte COFF file header (NumberOfSections at
  2, SizeOfOptionalHeader at 16; "the Windows loader limits the number of sections to 96");
  the optional header's magic (0x10B PE32, 0x20B PE32+), NumberOfRvaAndSizes at 92/108 and
  the data directories from 96/112, the Resource Table being the one at 112/128; the section
  table right after the optional header, 40 bytes a section (VirtualSize 8, VirtualAddress
  12, SizeOfRawData 16, PointerToRawData 20); the .rsrc section: a resource directory table
  (16 bytes; Number of Name Entries at 12, Number of ID Entries at 14, the Name entries
  first), followed by its 8-byte entries (an Integer ID or a Name Offset, then a Data Entry
  Offset, or a Subdirectory Offset when the high bit is 1; offsets relative to the resource
  table), three levels (Type, Name, Language), and 16-byte Resource Data Entries (Data RVA,
  Size).
* **Resource Types** (MicrosoftDocs/win32 ``desktop-src/menurc/resource-types.md``):
  ``RT_VERSION`` is ``MAKEINTRESOURCE(16)``.
* **VS_VERSIONINFO** (MicrosoftDocs/win32 ``desktop-src/menurc/vs-versioninfo.md``):
  ``wLength``, ``wValueLength``, ``wType``, ``szKey`` = L"VS_VERSION_INFO", zero words
  aligning ``Value`` on a 32-bit boundary, ``Value`` = the VS_FIXEDFILEINFO
  (``wValueLength`` bytes; none when 0).  The page does not say what the boundary is
  relative to; the block is read by ``VerQueryValue`` from the copy ``GetFileVersionInfo``
  puts in the caller's buffer, so it can only be the structure's own start: ``Value`` is at
  40 bytes from it (6 + 32 bytes of header and key, 2 of padding), wherever the resource
  lies in the file.  pefile (``dword_align(offset, base)`` with the data RVA as base) gives
  the same 40 for a data RVA that is 0, 1 or 2 mod 4.
* **VS_FIXEDFILEINFO** (MicrosoftDocs/sdk-api
  ``sdk-api-src/content/verrsrc/ns-verrsrc-vs_fixedfileinfo.md``): 13 DWORDs; dwSignature
  0xFEEF04BD; dwFileVersionMS / dwFileVersionLS, the most / least significant 32 bits of
  the file's binary version.  Each half is read as two 16-bit parts, high word first
  (major.minor . build.revision), the way that page splits dwStrucVersion and the way
  Windows shows a file version.

Reads are bounded: the headers, the section table (at most 96 sections), three resource
directory levels, one data entry and the first bytes of the version resource; never the
whole file.  Every malformed input ends in :class:`PEVersionError` (so does a file that
cannot be opened or read), never another exception.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from typing import BinaryIO

__all__ = ["FileVersion", "PEVersionError", "read_file_version", "read_file_version_from"]

PE_SIGNATURE_OFFSET_AT = 0x3C
PE_SIGNATURE = b"PE\0\0"
COFF_HEADER_SIZE = 20
MAX_SECTIONS = 96  # "the Windows loader limits the number of sections to 96"
SECTION_HEADER_SIZE = 40
PE32_MAGIC = 0x10B
PE32PLUS_MAGIC = 0x20B
RESOURCE_DIRECTORY_INDEX = 2  # Export, Import, Resource
RT_VERSION = 16
RESOURCE_DIRECTORY_SIZE = 16
RESOURCE_ENTRY_SIZE = 8
RESOURCE_DATA_ENTRY_SIZE = 16
HIGH_BIT = 0x80000000
VS_FIXEDFILEINFO_SIGNATURE = 0xFEEF04BD
VS_FIXEDFILEINFO_SIZE = 13 * 4
VS_VERSION_INFO_KEY = "VS_VERSION_INFO\0".encode("utf-16-le")
#: How many entries of one resource directory are looked at (a version resource is found
#: among the first; a corrupt count cannot make the reader read megabytes).
MAX_DIRECTORY_ENTRIES = 4096


class PEVersionError(ValueError):
    """The file's version could not be read: ``reason`` says why (not a PE file, no version
    resource, a structure out of bounds, an I/O error, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True, order=True)
class FileVersion:
    """``major.minor.build.revision`` from VS_FIXEDFILEINFO's dwFileVersionMS/LS."""

    major: int
    minor: int
    build: int
    revision: int

    @classmethod
    def from_dwords(cls, ms: int, ls: int) -> FileVersion:
        return cls(ms >> 16, ms & 0xFFFF, ls >> 16, ls & 0xFFFF)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.build}.{self.revision}"


class _Reader:
    """Bounded reads at file offsets; a short read is a :class:`PEVersionError`."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self.size = size

    def read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise PEVersionError(f"{what} lies outside the file (offset {offset}, {length} bytes)")
        self._stream.seek(offset)
        data = self._stream.read(length)
        if len(data) != length:
            raise PEVersionError(f"{what}: the file ended early")
        return data


@dataclasses.dataclass(frozen=True)
class _Section:
    virtual_address: int
    virtual_size: int
    raw_size: int
    raw_pointer: int


def _sections(reader: _Reader) -> tuple[list[_Section], int, int]:
    """The section table and the resource table's (RVA, size)."""
    if reader.size < 2 or reader.read(0, 2, "the MS-DOS header") != b"MZ":
        raise PEVersionError("not a PE file (no MZ header)")
    pe_offset = struct.unpack("<I", reader.read(PE_SIGNATURE_OFFSET_AT, 4, "the PE offset"))[0]
    if reader.read(pe_offset, 4, "the PE signature") != PE_SIGNATURE:
        raise PEVersionError("not a PE file (no PE signature at the offset at 0x3C)")
    coff = reader.read(pe_offset + 4, COFF_HEADER_SIZE, "the COFF file header")
    sections = struct.unpack_from("<H", coff, 2)[0]
    optional_size = struct.unpack_from("<H", coff, 16)[0]
    if sections > MAX_SECTIONS:
        raise PEVersionError(f"{sections} sections (the Windows loader allows {MAX_SECTIONS})")
    optional_at = pe_offset + 4 + COFF_HEADER_SIZE
    optional = reader.read(optional_at, optional_size, "the optional header")
    if len(optional) < 2:
        raise PEVersionError("no optional header (an object file, not an image)")
    magic = struct.unpack_from("<H", optional, 0)[0]
    if magic == PE32_MAGIC:
        count_at, directories_at = 92, 96
    elif magic == PE32PLUS_MAGIC:
        count_at, directories_at = 108, 112
    else:
        raise PEVersionError(f"unknown optional header magic 0x{magic:X}")
    if len(optional) < count_at + 4:
        raise PEVersionError("the optional header is too short for its data directories")
    directories = struct.unpack_from("<I", optional, count_at)[0]
    resource_at = directories_at + RESOURCE_DIRECTORY_INDEX * 8
    if directories <= RESOURCE_DIRECTORY_INDEX or len(optional) < resource_at + 8:
        raise PEVersionError("no resource table (the optional header has no such directory)")
    resource_rva, resource_size = struct.unpack_from("<II", optional, resource_at)
    if resource_rva == 0 or resource_size == 0:
        raise PEVersionError("no resource table (its data directory is empty)")
    table = reader.read(
        optional_at + optional_size, sections * SECTION_HEADER_SIZE, "the section table"
    )
    found = []
    for index in range(sections):
        virtual_size, virtual_address, raw_size, raw_pointer = struct.unpack_from(
            "<IIII", table, index * SECTION_HEADER_SIZE + 8
        )
        found.append(_Section(virtual_address, virtual_size, raw_size, raw_pointer))
    return found, resource_rva, resource_size


def _file_offset(sections: list[_Section], rva: int, length: int, what: str) -> int:
    """The file offset of ``length`` bytes at ``rva``: they must lie in one section's raw
    data (bytes past SizeOfRawData are zero-filled in memory, not in the file)."""
    for section in sections:
        start = section.virtual_address
        if start <= rva and rva + length <= start + section.raw_size:
            return section.raw_pointer + (rva - start)
    raise PEVersionError(f"{what} (RVA 0x{rva:X}, {length} bytes) is in no section's data")


@dataclasses.dataclass(frozen=True)
class _Tree:
    """The resource table: where it is (RVA, size) and how to reach its bytes."""

    reader: _Reader
    sections: list[_Section]
    root: int
    size: int

    def bytes_at(self, offset: int, length: int, what: str) -> bytes:
        """``length`` bytes at ``offset`` from the resource table's start, inside it."""
        if offset + length > self.size:
            raise PEVersionError(f"{what} lies outside the resource table")
        at = _file_offset(self.sections, self.root + offset, length, what)
        return self.reader.read(at, length, what)


def _entries(tree: _Tree, offset: int, what: str) -> list[tuple[int, bool, int]]:
    """A resource directory's entries: (Integer ID or -1 for a Name entry, is-subdirectory,
    offset), at most :data:`MAX_DIRECTORY_ENTRIES` of them."""
    table = tree.bytes_at(offset, RESOURCE_DIRECTORY_SIZE, f"the {what} directory")
    names, ids = struct.unpack_from("<HH", table, 12)
    count = min(names + ids, MAX_DIRECTORY_ENTRIES)
    if count == 0:
        return []
    data = tree.bytes_at(
        offset + RESOURCE_DIRECTORY_SIZE, count * RESOURCE_ENTRY_SIZE, f"the {what} entries"
    )
    out = []
    for index in range(count):
        name, target = struct.unpack_from("<II", data, index * RESOURCE_ENTRY_SIZE)
        ident = -1 if index < names else name
        out.append((ident, bool(target & HIGH_BIT), target & ~HIGH_BIT))
    return out


def _version_resource(reader: _Reader) -> tuple[int, int, list[_Section]]:
    """(RVA, size) of the first RT_VERSION resource (first name, first language)."""
    sections, root, size = _sections(reader)
    tree = _Tree(reader, sections, root, size)
    version = [entry for entry in _entries(tree, 0, "type") if entry[0] == RT_VERSION]
    if not version:
        raise PEVersionError("no version resource (no RT_VERSION entry)")
    entry = version[0]
    for level in ("name", "language"):
        if not entry[1]:
            raise PEVersionError(f"the version resource has no {level} level")
        below = _entries(tree, entry[2], level)
        if not below:
            raise PEVersionError(f"the version resource's {level} directory is empty")
        entry = below[0]
    if entry[1]:
        raise PEVersionError("the version resource nests deeper than type/name/language")
    data = tree.bytes_at(entry[2], RESOURCE_DATA_ENTRY_SIZE, "the version resource's data entry")
    data_rva, data_size = struct.unpack_from("<II", data, 0)
    return data_rva, data_size, sections


def _fixed_info(reader: _Reader) -> FileVersion:
    rva, size, sections = _version_resource(reader)
    header = 6 + len(VS_VERSION_INFO_KEY)  # wLength, wValueLength, wType, szKey
    value_at = (header + 3) & ~3  # Padding1: Value on a 32-bit boundary of the structure
    needed = value_at + VS_FIXEDFILEINFO_SIZE
    if size < needed:
        raise PEVersionError(f"the version resource is too short ({size} bytes)")
    block = reader.read(
        _file_offset(sections, rva, needed, "the version resource"), needed, "VS_VERSIONINFO"
    )
    length, value_length, _type = struct.unpack_from("<HHH", block, 0)
    if block[6:header] != VS_VERSION_INFO_KEY:
        raise PEVersionError("the version resource does not start with VS_VERSION_INFO")
    if length < needed or length > size:
        raise PEVersionError(f"VS_VERSIONINFO's wLength {length} does not fit its resource")
    if value_length < VS_FIXEDFILEINFO_SIZE:
        raise PEVersionError("the version resource has no VS_FIXEDFILEINFO")
    signature, _struc, ms, ls = struct.unpack_from("<IIII", block, value_at)
    if signature != VS_FIXEDFILEINFO_SIGNATURE:
        raise PEVersionError(f"VS_FIXEDFILEINFO's signature is 0x{signature:08X}")
    return FileVersion.from_dwords(ms, ls)


def read_file_version_from(stream: BinaryIO, size: int) -> FileVersion:
    """The file version of the PE image in ``stream`` (seekable, ``size`` bytes long).

    Raises :class:`PEVersionError` for anything that is not a well-formed PE image with a
    version resource, and when the stream cannot be read.
    """
    try:
        return _fixed_info(_Reader(stream, size))
    except PEVersionError:
        raise
    except (OSError, ValueError, struct.error, OverflowError) as exc:
        raise PEVersionError(f"could not read the file: {exc}") from exc


def read_file_version(path: str | os.PathLike[str]) -> FileVersion:
    """The file version of the PE image at ``path`` (see :func:`read_file_version_from`).

    A file that cannot be opened (missing, access denied, a reparse point this host cannot
    follow, a folder) is a :class:`PEVersionError` too.
    """
    try:
        stream = open(path, "rb")  # noqa: SIM115  (closed below)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PEVersionError(f"could not open it: {reason}") from exc
    with stream:
        try:
            size = os.fstat(stream.fileno()).st_size
        except OSError as exc:
            raise PEVersionError(f"could not read it: {exc.strerror or exc}") from exc
        return read_file_version_from(stream, size)
