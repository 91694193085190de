"""The host base image must be this host's build (storage.find_host_base, sandbox/basebuild.py):
the simulator's fake base image matches the simulated build; a stale one (an older build)
is refused with both builds, the folder and the remedy; one whose build cannot be read is
used, and ``doctor`` warns with the reason; the read is cached per process and read again
when the base is regenerated."""

from __future__ import annotations

import os
import shutil
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import basebuild, doctor, peversion, storage
from hcs_sandbox.sim import programdata
from hcs_sandbox.sim.programdata import FAKE_BASE_IMAGE_ID, SIMULATED_WINDOWS_VERSION

HOST = SIMULATED_WINDOWS_VERSION[2]
OLD = 22631


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    basebuild.invalidate_cache()


def _base_images(sim_state_dir: Path) -> Path:
    return Path(storage._base_images_text())


def _check(name: str) -> doctor.Check:
    return next(c for c in doctor.host_checks() if c.name == name)


def test_the_fake_base_image_is_a_real_pe_of_the_simulated_build(sim_state_dir: Path) -> None:
    base = storage.find_host_base()
    kernel = Path(base.os_files or "", "Windows", "System32", "ntoskrnl.exe")
    assert kernel == programdata.base_image_kernel(sim_state_dir)
    version = peversion.read_file_version(kernel)
    assert (version.major, version.minor, version.build, version.revision) == (
        SIMULATED_WINDOWS_VERSION
    )
    assert basebuild.host_build() == HOST == programdata.simulated_windows_build()
    assert basebuild.base_build(base.os_files or "") == basebuild.BaseBuild(
        HOST, version=".".join(map(str, SIMULATED_WINDOWS_VERSION))
    )


def test_the_base_of_this_hosts_build_is_preferred_to_a_newer_folder(sim_state_dir: Path) -> None:
    """After an update Windows may keep both folders: the newest is not always the right one."""
    matching = programdata.set_base_image_build(sim_state_dir, HOST, mtime=1_000_000)
    stale = programdata.set_base_image_build(
        sim_state_dir, OLD, image_id="aaaaaaaa-0000-0000-0000-000000000001", mtime=2_000_000
    )
    assert storage.find_host_base().path == str(matching)
    # two of this host's build: the newest of them
    newer = programdata.set_base_image_build(
        sim_state_dir, HOST, image_id="bbbbbbbb-0000-0000-0000-000000000002", mtime=1_500_000
    )
    assert storage.find_host_base().path == str(newer)
    assert stale != newer


def test_only_other_builds_is_an_error_naming_both_builds_and_the_folder(
    sim_state_dir: Path,
) -> None:
    folder = programdata.set_base_image_build(sim_state_dir, OLD)
    with pytest.raises(errors.StorageError) as info:
        storage.find_host_base()
    message = str(info.value)
    assert f"build {HOST}" in message
    assert f"build {OLD}" in message
    assert str(folder) in message
    assert info.value.remedy is not None
    assert "start Windows Sandbox once" in info.value.remedy
    assert "--base image:PATH" in info.value.remedy
    # doctor: the base_image check warns with it; the build check is not run on nothing
    image = _check("base_image")
    assert image.status == doctor.WARN
    assert f"build {OLD}" in image.detail
    assert _check("base_build").status == doctor.SKIP


@pytest.mark.parametrize("how", ["no-version", "garbage", "unopenable"])
def test_an_unreadable_build_does_not_refuse_and_doctor_says_why(
    sim_state_dir: Path, how: str
) -> None:
    kernel = programdata.make_base_image_unreadable(sim_state_dir, how)
    base = storage.find_host_base()  # create goes on
    assert base.path == str(kernel.parents[4])
    check = _check("base_build")
    assert check.status == doctor.WARN
    reason = check.data["reason"]
    assert str(kernel) in reason
    assert reason in check.detail
    expected = {
        "no-version": "no version resource",
        "garbage": "PE",
        "unopenable": "could not open",
    }
    assert expected[how] in reason
    assert check.fix is not None
    assert "start Windows Sandbox once" in check.fix


def test_an_unreadable_build_is_preferred_to_another_build(sim_state_dir: Path) -> None:
    programdata.set_base_image_build(
        sim_state_dir, OLD, image_id="aaaaaaaa-0000-0000-0000-000000000001", mtime=2_000_000
    )
    programdata.make_base_image_unreadable(sim_state_dir, "no-version")
    os.utime(programdata.base_image_kernel(sim_state_dir).parents[2], (1_000_000, 1_000_000))
    assert storage.find_host_base().path.endswith(FAKE_BASE_IMAGE_ID)


def test_doctor_reports_a_matching_build(sim_state_dir: Path) -> None:
    check = _check("base_build")
    assert check.status == doctor.OK, check
    assert check.data["host_build"] == check.data["base_build"] == HOST


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real: Callable[[str | os.PathLike[str]], peversion.FileVersion] = peversion.read_file_version

    def counting(path: str | os.PathLike[str]) -> peversion.FileVersion:
        reads.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(peversion, "read_file_version", counting)
    return reads


def test_the_build_is_read_once_per_process_until_the_base_changes(
    sim_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _count_reads(monkeypatch)
    for _ in range(5):
        storage.find_host_base()
    assert len(reads) == 1
    # Windows regenerates the base in place (the kernel replaced): read again, and refused
    programdata.set_base_image_build(sim_state_dir, OLD)
    with pytest.raises(errors.StorageError, match=f"build {OLD}"):
        storage.find_host_base()
    assert len(reads) == 2
    with pytest.raises(errors.StorageError):
        storage.find_host_base()
    assert len(reads) == 2
    # the whole folder removed and made again (same path): read again
    folder = programdata.base_image_kernel(sim_state_dir).parents[4]
    shutil.rmtree(folder)
    programdata.set_base_image_build(sim_state_dir, HOST)
    assert storage.find_host_base().path == str(folder)
    assert len(reads) == 3


def test_a_kernel_rewritten_with_the_same_size_is_read_again(
    sim_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _count_reads(monkeypatch)
    storage.find_host_base()
    kernel = programdata.base_image_kernel(sim_state_dir)
    data = kernel.read_bytes()
    older = programdata.build_pe((10, 0, OLD, 1))
    assert len(older) == len(data)
    stat = kernel.stat()
    kernel.write_bytes(older)  # same inode, same size: the times tell
    os.utime(kernel, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    with pytest.raises(errors.StorageError, match=f"build {OLD}"):
        storage.find_host_base()
    assert len(reads) == 2


def test_the_old_placeholder_kernel_becomes_a_real_image(sim_state_dir: Path) -> None:
    """A simulator directory made by an earlier version held a text placeholder."""
    kernel = programdata.base_image_kernel(sim_state_dir)
    storage.find_host_base()
    kernel.write_bytes(b"MZ simulated kernel\n")
    programdata._MADE.clear()
    programdata.ensure_program_data(sim_state_dir)
    assert peversion.read_file_version(kernel).build == HOST
    # a test's stale kernel is left alone
    programdata.set_base_image_build(sim_state_dir, OLD)
    programdata._MADE.clear()
    programdata.ensure_program_data(sim_state_dir)
    assert peversion.read_file_version(kernel).build == OLD


def test_without_a_host_build_the_newest_is_taken(
    sim_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    programdata.set_base_image_build(sim_state_dir, OLD)
    monkeypatch.setattr(basebuild, "host_build", lambda: None)
    assert storage.find_host_base().path.endswith(FAKE_BASE_IMAGE_ID)
    assert _check("base_build").status == doctor.SKIP


def test_on_windows_the_host_build_is_platform_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Windows backend has no windows_build(): ``platform_version``'s build, not the
    (possibly emulated) ``build``."""
    from hcs_sandbox.native import loader

    monkeypatch.setattr(loader, "get_backend", lambda: types.SimpleNamespace(name="windows"))
    monkeypatch.setattr(sys, "platform", "win32")
    version = types.SimpleNamespace(build=9200, platform_version=(10, 0, 26100))
    monkeypatch.setattr(sys, "getwindowsversion", lambda: version, raising=False)
    assert basebuild.host_build() == 26100
    monkeypatch.setattr(sys, "platform", "linux")
    assert basebuild.host_build() is None
