"""The host base image must be this host's build (storage.find_host_base, sandbox/basebuild.py):
the simulator's fake base image matches the simulated build; a stale one (an older build)
is refused with both builds, the folder and the remedy; one whose build cannot be read is
used, and ``doctor`` warns with the reason; the read is cached per process and read again
when the base is regenerated."""

from __future__ import annotations

import os
import shutil
import sys
import threading
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
    # the way past it, should this host's build be misread, is named in the remedy
    assert "HCS_SANDBOX_IGNORE_BASE_BUILD=1" in info.value.remedy
    # doctor: the base_image check warns with it
    image = _check("base_image")
    assert image.status == doctor.WARN
    assert f"build {OLD}" in image.detail


def test_doctor_fails_with_each_folders_build_when_create_would_refuse(
    sim_state_dir: Path,
) -> None:
    """Not a skip with empty data: create refuses, so the check fails, and says why."""
    folder = programdata.set_base_image_build(sim_state_dir, OLD)
    other = programdata.set_base_image_build(
        sim_state_dir, OLD - 1, image_id="aaaaaaaa-0000-0000-0000-000000000001", mtime=1
    )
    check = _check("base_build")
    assert check.status == doctor.FAIL, check
    assert check.data["host_build"] == HOST
    assert check.data["override"] is False
    folders = {f["path"]: f["build"] for f in check.data["folders"]}
    assert folders == {str(folder): OLD, str(other): OLD - 1}
    assert [f["path"] for f in check.data["folders"]] == [str(folder), str(other)]  # newest first
    assert f"build {HOST}" in check.detail
    assert f"{folder} is build {OLD}" in check.detail
    assert check.fix is not None
    assert "start Windows Sandbox once" in check.fix
    assert "HCS_SANDBOX_IGNORE_BASE_BUILD=1" in check.fix
    report = doctor.DoctorReport(simulated=True, checks=doctor.host_checks())
    assert not report.ok


@pytest.mark.parametrize("value", ["1", "true", " YES "])
def test_the_override_takes_the_newest_folder_and_doctor_warns(
    sim_state_dir: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    folder = programdata.set_base_image_build(sim_state_dir, OLD, mtime=2_000_000)
    programdata.set_base_image_build(
        sim_state_dir, OLD - 1, image_id="aaaaaaaa-0000-0000-0000-000000000001", mtime=1_000_000
    )
    monkeypatch.setenv(basebuild.ENV_IGNORE_BASE_BUILD, value)
    assert storage.find_host_base().path == str(folder)
    check = _check("base_build")
    assert check.status == doctor.WARN, check
    assert check.data["override"] is True
    assert check.data["base_build"] == OLD
    assert check.data["host_build"] == HOST
    assert len(check.data["folders"]) == 2
    assert basebuild.ENV_IGNORE_BASE_BUILD in check.detail
    assert _check("base_image").status == doctor.OK


@pytest.mark.parametrize("value", ["", "0", "no"])
def test_the_override_off_still_refuses(
    sim_state_dir: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    programdata.set_base_image_build(sim_state_dir, OLD)
    monkeypatch.setenv(basebuild.ENV_IGNORE_BASE_BUILD, value)
    with pytest.raises(errors.StorageError, match=f"build {OLD}"):
        storage.find_host_base()


def test_the_override_still_prefers_the_matching_folder(
    sim_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matching = programdata.set_base_image_build(sim_state_dir, HOST, mtime=1_000_000)
    programdata.set_base_image_build(
        sim_state_dir, OLD, image_id="aaaaaaaa-0000-0000-0000-000000000001", mtime=2_000_000
    )
    monkeypatch.setenv(basebuild.ENV_IGNORE_BASE_BUILD, "1")
    assert storage.find_host_base().path == str(matching)
    assert _check("base_build").status == doctor.OK


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


def test_threads_making_the_fake_kernel_at_once_do_not_collide(
    sim_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads of one process write the fake kernel at once (the first sandboxes of a
    pool): the second one's whole write runs between the first one's write and rename,
    made deterministic by doing it from inside the first rename."""
    kernel = programdata.base_image_kernel(sim_state_dir)
    kernel.parent.mkdir(parents=True)
    real_replace = os.replace
    errors_seen: list[BaseException] = []

    def other_thread_first(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        monkeypatch.setattr(programdata.os, "replace", real_replace)

        def write() -> None:
            try:
                programdata._write_atomically(kernel, programdata.build_pe((10, 0, HOST, 1)))
            except BaseException as exc:  # reported below
                errors_seen.append(exc)

        thread = threading.Thread(target=write)
        thread.start()
        thread.join()
        real_replace(src, dst)

    monkeypatch.setattr(programdata.os, "replace", other_thread_first)
    programdata._write_atomically(kernel, programdata.build_pe((10, 0, HOST, 1)))
    assert errors_seen == []
    assert peversion.read_file_version(kernel).build == HOST
    assert [p.name for p in kernel.parent.iterdir()] == ["ntoskrnl.exe"]


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
    folder = programdata.set_base_image_build(sim_state_dir, OLD)
    monkeypatch.setattr(
        basebuild, "host_build_info", lambda: basebuild.HostBuild(None, note="not Windows")
    )
    assert storage.find_host_base().path.endswith(FAKE_BASE_IMAGE_ID)
    check = _check("base_build")
    assert check.status == doctor.SKIP
    assert "not Windows" in check.detail
    assert check.data["folders"][0] == {
        "path": str(folder),
        "build": OLD,
        "version": f"10.0.{OLD}.1",
        "reason": None,
    }


# --------------------------------------------------------------------------------------
# This host's build on Windows (the Windows code path, run here with sys.platform faked)
# --------------------------------------------------------------------------------------

SHIMMED = types.SimpleNamespace(build=9200, platform_version=(6, 3, 9600))


@pytest.fixture
def windows_host(
    sim_state_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., Path]:
    """The Windows path: a backend without ``windows_build()`` (still the simulator's HCS
    and ProgramData), ``sys.platform == "win32"``, a fake ``%SystemRoot%``.  Returns a
    function that writes the host's kernel (``relative`` to SystemRoot) and sets what
    ``sys.getwindowsversion()`` answers."""
    from hcs_sandbox.sim.backend import SimulatorBackend

    monkeypatch.delattr(SimulatorBackend, "windows_build")
    monkeypatch.setattr(sys, "platform", "win32")
    root = tmp_path / "Windows"
    monkeypatch.setenv("SYSTEMROOT", str(root))
    monkeypatch.setattr(basebuild, "_is_32bit_process", lambda: False, raising=False)

    def host(
        build: int | None,
        *,
        version: types.SimpleNamespace = SHIMMED,
        relative: str = "System32",
        data: bytes | None = None,
    ) -> Path:
        monkeypatch.setattr(sys, "getwindowsversion", lambda: version, raising=False)
        kernel = root / relative / "ntoskrnl.exe"
        if build is not None or data is not None:
            kernel.parent.mkdir(parents=True, exist_ok=True)
            kernel.write_bytes(
                data if data is not None else programdata.build_pe((10, 0, build or 0, 5))
            )
        basebuild.invalidate_cache()
        return kernel

    return host


def test_a_shimmed_platform_version_does_not_refuse_a_working_host(
    windows_host: Callable[..., Path],
) -> None:
    """python/cpython#146299: without the Windows 10 manifest, platform_version says 6.3.9600.
    The host's own kernel tells the real build; the healthy base is taken."""
    kernel = windows_host(HOST)
    assert basebuild.host_build() == HOST
    info = basebuild.host_build_info()
    assert info.source == str(kernel)
    assert storage.find_host_base().path.endswith(FAKE_BASE_IMAGE_ID)
    check = doctor._check_base_build()  # (the other checks would ask Windows)
    assert check.status == doctor.OK, check
    assert check.data["host_build_source"] == str(kernel)


def test_the_host_kernel_wins_over_platform_version(windows_host: Callable[..., Path]) -> None:
    """Like with like: the base's kernel against the host's kernel, whatever kernel32 says."""
    windows_host(HOST, version=types.SimpleNamespace(build=HOST, platform_version=(10, 0, OLD)))
    assert basebuild.host_build() == HOST


def test_an_unreadable_host_kernel_falls_back_to_platform_version(
    windows_host: Callable[..., Path],
) -> None:
    kernel = windows_host(
        None, data=b"MZ not a kernel", version=types.SimpleNamespace(platform_version=(10, 0, OLD))
    )
    info = basebuild.host_build_info()
    assert info.build == OLD
    assert info.source == "sys.getwindowsversion().platform_version"
    assert info.note is not None
    assert str(kernel) in info.note
    with pytest.raises(errors.StorageError, match=f"this host's build {OLD}"):
        storage.find_host_base()


def test_a_shimmed_build_with_no_kernel_is_unknown_and_refuses_nothing(
    windows_host: Callable[..., Path], sim_state_dir: Path
) -> None:
    """Below 10240 (the first Windows 10 build) is a shim's answer: unknown, no refusal."""
    windows_host(None)  # no kernel at all; platform_version 6.3.9600
    programdata.set_base_image_build(sim_state_dir, OLD)
    info = basebuild.host_build_info()
    assert info.build is None
    assert info.note is not None
    assert "9600" in info.note
    assert "10240" in info.note
    assert storage.find_host_base().path.endswith(FAKE_BASE_IMAGE_ID)
    check = doctor._check_base_build()  # (the other checks would ask Windows)
    assert check.status == doctor.SKIP
    assert "9600" in check.detail
    assert check.data["folders"][0]["build"] == OLD


@pytest.mark.parametrize("build", [9600, 10239])
def test_the_threshold_is_the_first_windows_10_build(
    windows_host: Callable[..., Path], build: int
) -> None:
    windows_host(build)
    assert basebuild.host_build() is None
    windows_host(basebuild.FIRST_WINDOWS_10_BUILD)
    assert basebuild.host_build() == 10240


def test_a_32bit_process_reads_the_native_kernel_through_sysnative(
    windows_host: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """WOW64 redirects System32 to SysWOW64 for a 32-bit process; Sysnative is the native
    System32 (File System Redirector page).  Here System32 stands for what the redirected
    path would hold (not the kernel)."""
    windows_host(None, relative="System32", data=b"MZ redirected")
    native = windows_host(HOST, relative="Sysnative")
    assert basebuild.host_build() is None  # 64-bit: Sysnative is not a real folder, not used
    monkeypatch.setattr(basebuild, "_is_32bit_process", lambda: True)
    basebuild.invalidate_cache()
    assert basebuild.host_build_info() == basebuild.HostBuild(HOST, source=str(native))
