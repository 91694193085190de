"""The PE fixed-version reader (sandbox/peversion.py): real-shaped images built here
(``sim.programdata.build_pe``, in every layout it can make), images with each structure
broken, random and mutated bytes (hypothesis): a version, or PEVersionError, nothing else;
and reads that stay bounded."""

from __future__ import annotations

import io
import itertools
import os
import struct
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcs_sandbox.sandbox import peversion
from hcs_sandbox.sandbox.peversion import FileVersion, PEVersionError
from hcs_sandbox.sim.programdata import build_pe

VERSION = (10, 0, 22631, 4317)


def read(data: bytes) -> FileVersion:
    return peversion.read_file_version_from(io.BytesIO(data), len(data))


@pytest.mark.parametrize(
    ("pe32plus", "code_section", "named_type", "other_types", "children"),
    list(
        itertools.product(
            [True, False],
            [False, True],
            [False, True],
            [(), (3, 24), (1, 17, 200)],
            [b"", b"c" * 37],
        )
    ),
)
def test_every_layout_gives_the_version(
    pe32plus: bool,
    code_section: bool,
    named_type: bool,
    other_types: tuple[int, ...],
    children: bytes,
) -> None:
    data = build_pe(
        VERSION,
        pe32plus=pe32plus,
        code_section=code_section,
        named_type=named_type,
        other_types=other_types,
        children=children,
    )
    version = read(data)
    assert version == FileVersion(*VERSION)
    assert str(version) == "10.0.22631.4317"
    assert version.build == 22631


@pytest.mark.parametrize("misalign", [1, 2, 3])
@pytest.mark.parametrize("pe32plus", [True, False])
def test_value_is_aligned_from_the_structures_start_not_the_file(
    misalign: int, pe32plus: bool
) -> None:
    """VS_VERSIONINFO's Padding1 aligns Value on a 32-bit boundary of the structure (it is
    read from a copy in the caller's buffer): at 40 bytes from its start, wherever the
    resource lies in the file.  A data RVA / file offset that is 2 mod 4 must not move it."""
    data = build_pe(VERSION, pe32plus=pe32plus, other_types=(3,), data_misalign=misalign)
    offset = data.find("VS_VERSION_INFO".encode("utf-16-le")) - 6
    assert offset % 4 == misalign
    assert struct.unpack_from("<I", data, offset + 40)[0] == 0xFEEF04BD
    assert read(data) == FileVersion(*VERSION)


def test_the_four_parts_are_the_high_and_low_words() -> None:
    assert read(build_pe((0xFFFF, 1, 0xFFFE, 0))) == FileVersion(0xFFFF, 1, 0xFFFE, 0)
    assert FileVersion.from_dwords(0x000A0000, 0x65F40001) == FileVersion(10, 0, 26100, 1)


def test_a_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "ntoskrnl.exe"
    path.write_bytes(build_pe((10, 0, 26100, 2454)))
    assert peversion.read_file_version(path) == FileVersion(10, 0, 26100, 2454)
    assert peversion.read_file_version(str(path)).build == 26100


def _reason(data: bytes) -> str:
    with pytest.raises(PEVersionError) as info:
        read(data)
    assert info.value.reason == str(info.value)
    return info.value.reason


def _pe_offset(data: bytes) -> int:
    return int(struct.unpack_from("<I", data, 0x3C)[0])


def _patch(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def _optional_at(data: bytes) -> int:
    return _pe_offset(data) + 24


def _rsrc_raw(data: bytes) -> int:
    """The file offset of the resource table (single-section image)."""
    pe = _pe_offset(data)
    optional_size = struct.unpack_from("<H", data, pe + 20)[0]
    return int(struct.unpack_from("<I", data, pe + 24 + optional_size + 20)[0])


def test_each_broken_structure_is_a_pe_version_error() -> None:
    good = build_pe(VERSION)
    pe = _pe_offset(good)
    optional = _optional_at(good)
    rsrc = _rsrc_raw(good)
    cases = {
        "empty": b"",
        "not MZ": b"ZM" + good[2:],
        "PE offset past the end": _patch(good, 0x3C, "<I", 0xFFFFFFF0),
        "no PE signature": _patch(good, pe, "<I", 0),
        "too many sections": _patch(good, pe + 6, "<H", 97),
        "object file": _patch(good, pe + 20, "<H", 0),
        "unknown magic": _patch(good, optional, "<H", 0x107),
        "two data directories": _patch(good, optional + 108, "<I", 2),
        "empty resource directory": _patch(good, optional + 128, "<II", 0, 0),
        "resource RVA in no section": _patch(good, optional + 128, "<I", 0x7FFF0000),
        "section table past the end": _patch(good, pe + 6, "<H", 96),
        "no RT_VERSION": build_pe(VERSION, version_resource=False),
        "type entry without subdirectory": _patch(good, rsrc + 20, "<I", 0x30),
        "empty name directory": _patch(good, rsrc + 16 + 8 + 12, "<HH", 0, 0),
        "entry count past the table": _patch(good, rsrc + 12, "<HH", 0, 0xFFFF),
        "truncated": good[: rsrc + 40],
    }
    reasons = {name: _reason(data) for name, data in cases.items()}
    assert "MZ" in reasons["not MZ"]
    assert "no version resource" in reasons["no RT_VERSION"]
    assert "96" in reasons["too many sections"]
    assert "magic" in reasons["unknown magic"]


def test_a_subdirectory_that_points_at_itself_ends() -> None:
    """Three levels are read, never more: a loop in the tree cannot make the reader spin."""
    good = build_pe(VERSION)
    rsrc = _rsrc_raw(good)
    # the type entry's subdirectory becomes the root itself
    looped = _patch(good, rsrc + 20, "<I", 0x80000000)
    with pytest.raises(PEVersionError):
        read(looped)


def test_version_info_checks() -> None:
    good = build_pe(VERSION)
    at = good.index("VS_VERSION_INFO".encode("utf-16-le")) - 6
    no_value = _patch(good, at + 2, "<H", 0)
    assert "VS_FIXEDFILEINFO" in _reason(no_value)
    bad_key = bytearray(good)
    bad_key[at + 6] = ord("X")
    assert "VS_VERSION_INFO" in _reason(bytes(bad_key))
    signature_at = good.index(struct.pack("<I", 0xFEEF04BD))
    assert "signature" in _reason(_patch(good, signature_at, "<I", 0xFEEF04BC))
    assert "wLength" in _reason(_patch(good, at, "<H", 20))


def test_files_that_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(PEVersionError, match="could not open"):
        peversion.read_file_version(tmp_path / "missing.exe")
    with pytest.raises(PEVersionError, match="could not open"):
        peversion.read_file_version(tmp_path)  # a folder
    link = tmp_path / "link.exe"
    os.symlink(tmp_path / "nowhere.exe", link)  # as a reparse point that leads nowhere
    with pytest.raises(PEVersionError, match="could not open"):
        peversion.read_file_version(link)
    with pytest.raises(PEVersionError):
        peversion.read_file_version("bad\0path")


class _Counting(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0
        self.reads = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        self.reads += 1
        return data


def test_reads_are_bounded() -> None:
    """Headers, section table, three directory levels, a data entry and the start of the
    version resource: a few hundred bytes of a 16 MiB file, never the whole file."""
    data = build_pe(VERSION, code_section=True, children=b"s" * 4000) + b"\0" * (16 << 20)
    stream = _Counting(data)
    assert peversion.read_file_version_from(stream, len(data)) == FileVersion(*VERSION)
    assert stream.bytes_read < 2048
    assert stream.reads < 20
    # a corrupt entry count reads at most MAX_DIRECTORY_ENTRIES entries
    plain = build_pe(VERSION) + b"\0" * (16 << 20)
    rsrc = _rsrc_raw(plain)
    many = _patch(plain, rsrc + 12, "<HH", 0, 0xFFFF)
    many = _patch(many, _optional_at(many) + 132, "<I", 0x7FFFFFFF)  # a huge resource size
    stream = _Counting(many)
    with pytest.raises(PEVersionError):
        peversion.read_file_version_from(stream, len(many))
    assert stream.bytes_read <= 2048 + peversion.MAX_DIRECTORY_ENTRIES * 8


class _Failing(io.BytesIO):
    def read(self, size: int | None = -1, /) -> bytes:
        raise OSError(5, "Input/output error")


def test_an_io_error_is_a_pe_version_error() -> None:
    data = build_pe(VERSION)
    stream: BinaryIO = _Failing(data)
    with pytest.raises(PEVersionError, match="could not read"):
        peversion.read_file_version_from(stream, len(data))


def _outcome(data: bytes) -> FileVersion | None:
    try:
        return read(data)
    except PEVersionError:
        return None


_SEEDS = [
    build_pe(VERSION),
    build_pe(VERSION, pe32plus=False, code_section=True, named_type=True, other_types=(3, 24)),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise_another_exception(data: bytes) -> None:
    _outcome(data)
    _outcome(b"MZ" + data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(_SEEDS),
    edits=st.lists(
        st.tuples(
            st.integers(0, 1 << 16), st.integers(0, 255), st.sampled_from(["set", "cut", "dup"])
        ),
        min_size=1,
        max_size=8,
    ),
    words=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 0xFFFFFFFF)), max_size=4),
)
def test_mutated_images_never_raise_another_exception(
    seed: bytes, edits: list[tuple[int, int, str]], words: list[tuple[int, int]]
) -> None:
    data = bytearray(seed)
    for position, value, kind in edits:
        at = position % (len(data) + 1)
        if kind == "set" and at < len(data):
            data[at] = value
        elif kind == "cut":
            del data[at : at + value]
        else:
            data[at:at] = data[at : at + value]
    for position, value in words:  # whole fields: offsets, counts, sizes
        at = position % max(len(data) - 3, 1)
        if at + 4 <= len(data):
            struct.pack_into("<I", data, at, value)
    result = _outcome(bytes(data))
    assert result is None or isinstance(result, FileVersion)
