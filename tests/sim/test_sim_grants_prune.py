"""VM-access grants go with their file (HcsGrantVmAccess.md: an entry in the file's ACL): a
grant records the identity of the file it was made on, and counts only while its path still
names that file.  Grants live in 64 striped record files rewritten in place (no global lock,
no file per VM; docs/performance.md)."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import pytest
from simapi import Api, vm_doc

from hcs_sandbox.hcs import service
from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim import state
from hcs_sandbox.sim.core import Simulator, _Failure


def _remake(path: Path) -> None:
    """Delete ``path`` and make a new file there with another inode number (a file system
    may hand a deleted file's number to the next new file: those files are kept aside)."""
    old = path.stat().st_ino
    path.unlink()
    aside: list[Path] = []
    for n in range(100):
        new = path.with_name(f"{path.name}.{n}")
        new.write_bytes(b"x")
        if new.stat().st_ino != old:
            os.replace(new, path)
            break
        aside.append(new)
    for spare in aside:
        spare.unlink()
    assert path.stat().st_ino != old


def test_grant_on_a_deleted_file_is_dropped(sim: Simulator, tmp_path: Path) -> None:
    first, second = tmp_path / "a.vhdx", tmp_path / "b.vhdx"
    first.write_bytes(b"x")
    second.write_bytes(b"x")
    service.grant_vm_access("vm-1", first)
    assert sim.store.read_grants() == {"vm-1": [str(first)]}
    assert sim.store.granted("VM-1") == [str(first)]  # ids are case-insensitive
    first.unlink()  # the ACE is gone with the file
    assert sim.store.granted("vm-1") == []
    service.grant_vm_access("vm-2", second)
    assert sim.store.read_grants() == {"vm-2": [str(second)]}


def test_a_file_made_again_at_the_same_path_has_no_grant(sim: Simulator, tmp_path: Path) -> None:
    disk = tmp_path / "a.vhdx"
    disk.write_bytes(b"x")
    service.grant_vm_access("vm-1", disk)
    _remake(disk)  # no write to the grants in between: the check itself notices
    assert disk.exists()
    assert sim.store.granted("vm-1") == []
    assert sim.store.read_grants() == {}
    service.grant_vm_access("vm-1", disk)  # granting again gives access again
    assert sim.store.granted("vm-1") == [str(disk)]


def test_a_write_to_a_granted_file_keeps_its_grant(sim: Simulator, tmp_path: Path) -> None:
    disk = tmp_path / "a.vhdx"
    disk.write_bytes(b"x")
    service.grant_vm_access("vm-1", disk)
    with disk.open("ab") as f:
        f.write(b"more")
    os.chmod(disk, 0o600)
    assert sim.store.granted("vm-1") == [str(disk)]


def test_create_fails_on_a_disk_made_again_after_its_grant(api: Api, tmp_path: Path) -> None:
    disk = tmp_path / "scratch.vhdx"
    disk.write_bytes(b"x")
    doc = vm_doc(
        Devices={"Scsi": {"0": {"Attachments": {"0": {"Type": "VirtualDisk", "Path": str(disk)}}}}}
    )
    assert api.HcsGrantVmAccess("remade", str(disk)) == 0
    _remake(disk)
    hr, system, result = api.create("remade", doc)
    assert hr == H.E_ACCESSDENIED
    assert "HcsGrantVmAccess" in (result or "")
    api.close(system)
    assert api.HcsGrantVmAccess("remade", str(disk)) == 0
    hr, system, result = api.create("remade", doc)
    assert hr == 0, result
    api.call("HcsTerminateComputeSystem", system, None)
    api.close(system)


def test_a_grant_on_a_folder_covers_the_files_in_it(api: Api, tmp_path: Path) -> None:
    folder = tmp_path / "vm"
    folder.mkdir()
    disk = folder / "scratch.vhdx"
    disk.write_bytes(b"x")
    doc = vm_doc(
        Devices={"Scsi": {"0": {"Attachments": {"0": {"Type": "VirtualDisk", "Path": str(disk)}}}}}
    )
    assert api.HcsGrantVmAccess("by-folder", str(folder)) == 0
    hr, system, result = api.create("by-folder", doc)
    assert hr == 0, result
    api.call("HcsTerminateComputeSystem", system, None)
    api.close(system)


def _same_stripe_ids(count: int) -> list[str]:
    """VM ids whose grants share one grants file."""
    ids: list[str] = []
    want = None
    n = 0
    while len(ids) < count:
        vm = f"vm-{n}"
        n += 1
        stripe = zlib.crc32(vm.encode()) % state._GRANT_STRIPES
        if want is None:
            want = stripe
        if stripe == want:
            ids.append(vm)
    return ids


def _raw(sim: Simulator, vm: str) -> dict[str, dict[str, list[int]]]:
    stripe = zlib.crc32(vm.encode()) % state._GRANT_STRIPES
    data = (Path(sim.store.root) / "grants" / f"{stripe:02d}.json").read_bytes()
    assert data.startswith(b"HCSSIM ")  # CRC-checked record file, read without a lock
    value: dict[str, dict[str, list[int]]] = json.loads(data.split(b"\n", 1)[1])["Grants"]
    return value


def test_grants_that_no_longer_count_are_dropped(sim: Simulator, tmp_path: Path) -> None:
    """A VM's own dead grants go at its next write; everyone's once the file has doubled
    since its last clean-up: what files deleted without a revoke leave behind stays bounded."""
    *gone, keep_vm = _same_stripe_ids(60)
    peak = 0
    for vm in gone:
        disk = tmp_path / f"{vm}.vhdx"
        disk.write_bytes(b"x")
        service.grant_vm_access(vm, disk)
        disk.unlink()  # a sandbox deletes its own files without revoking
        peak = max(peak, len(_raw(sim, keep_vm)))
    assert peak <= state._GRANT_SLACK + 1
    assert sim.store.read_grants() == {}
    keep = tmp_path / "keep.vhdx"
    keep.write_bytes(b"x")
    service.grant_vm_access(keep_vm, keep)
    assert _raw(sim, keep_vm)[keep_vm] == {str(keep): [keep.stat().st_dev, keep.stat().st_ino]}
    assert sim.store.read_grants() == {keep_vm: [str(keep)]}
    assert not (Path(sim.store.root) / "grants.json").exists()
    gone_disk = tmp_path / f"{keep_vm}-2.vhdx"
    gone_disk.write_bytes(b"x")
    service.grant_vm_access(keep_vm, gone_disk)
    gone_disk.unlink()
    service.grant_vm_access(keep_vm, keep)  # its own dead grant goes at once
    assert _raw(sim, keep_vm)[keep_vm] == {str(keep): [keep.stat().st_dev, keep.stat().st_ino]}


def test_revoke_still_removes_an_existing_grant(sim: Simulator, tmp_path: Path) -> None:
    disk = tmp_path / "a.vhdx"
    disk.write_bytes(b"x")
    service.grant_vm_access("vm-1", disk)
    service.revoke_vm_access("vm-1", disk)
    assert sim.store.read_grants() == {}
    assert "vm-1" not in _raw(sim, "vm-1")


def test_hcs_writes_into_a_granted_file_keep_its_grant(api: Api, tmp_path: Path) -> None:
    """Formatting a disk, or saving into a granted save file, writes into the same file (as HCS
    does on Windows, where the ACL entry stays with the file): the grant still counts."""
    import ctypes

    from hcs_sandbox.sim.exports import CREATE_VIRTUAL_DISK_PARAMETERS_V2, VIRTUAL_STORAGE_TYPE

    disk = tmp_path / "scratch.vhdx"
    params = CREATE_VIRTUAL_DISK_PARAMETERS_V2(Version=2, MaximumSize=1 << 30)
    handle = ctypes.c_void_p()
    storage = VIRTUAL_STORAGE_TYPE()
    args = (ctypes.byref(storage), str(disk), 0, None, 0, 0, ctypes.byref(params), None)
    assert api.CreateVirtualDisk(*args, ctypes.byref(handle)) == 0
    again = ctypes.c_void_p()
    assert api.CreateVirtualDisk(*args, ctypes.byref(again)) == H.ERROR_FILE_EXISTS
    assert api.HcsGrantVmAccess("formatted", str(disk)) == 0
    inode = disk.stat().st_ino
    assert api.HcsFormatWritableLayerVhd(handle.value) == 0
    assert disk.stat().st_ino == inode
    assert json.loads(disk.read_text())["Formatted"] is True
    assert api.CloseHandle(handle.value) == 1
    doc = vm_doc(
        Devices={"Scsi": {"0": {"Attachments": {"0": {"Type": "VirtualDisk", "Path": str(disk)}}}}}
    )
    hr, system, result = api.create("formatted", doc)
    assert hr == 0, result
    api.call("HcsTerminateComputeSystem", system, None)
    api.close(system)


def test_empty_state_files_are_made_new(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "x.vmgs"
    assert api.HcsCreateEmptyGuestStateFile(str(path)) == 0
    assert json.loads(path.read_text()) == {"SimulatedGuestState": 1}
    assert api.HcsCreateEmptyGuestStateFile(str(path)) & 0xFFFFFFFF == H.ERROR_FILE_EXISTS_HR
    missing = tmp_path / "no-such-folder" / "x.vmgs"
    assert api.HcsCreateEmptyGuestStateFile(str(missing)) & 0xFFFFFFFF == H.ERROR_PATH_NOT_FOUND_HR
    assert not list(tmp_path.glob(".tmp-*"))


def test_cached_grant_tables_follow_other_writers(tmp_path: Path) -> None:
    # Two stores on one state directory stand for two processes: each keeps the decoding of
    # the grants files it read or wrote, and must use it only while the file still holds the
    # same bytes.
    here = state.StateStore(tmp_path / "sim")
    there = state.StateStore(tmp_path / "sim")
    first, second = tmp_path / "first.vhdx", tmp_path / "second.vhdx"
    first.write_text("x")
    second.write_text("y")
    vm = "0e9e5d4e-1111-4222-8333-944455556666"
    here.grant(vm, str(first), True)
    assert here.granted(vm) == [str(first)]  # its own write, from the cache
    there.grant(vm, str(second), True)
    assert sorted(here.granted(vm)) == sorted([str(first), str(second)])
    here.grant(vm, str(first), False)
    assert there.granted(vm) == [str(second)]
    assert here.granted(vm) == [str(second)]
    there.grant(vm, str(second), False)
    assert here.granted(vm) == []
    here.close()
    there.close()


def test_a_grant_on_a_missing_path_fails_before_any_write(sim: Simulator, tmp_path: Path) -> None:
    missing = tmp_path / "missing.vhdx"
    vm = "0e9e5d4e-1111-4222-8333-944455556667"
    for call in (sim.HcsGrantVmAccess, sim.HcsRevokeVmAccess):
        with pytest.raises(_Failure) as failure:
            call(vm, str(missing))
        assert failure.value.hr == H.ERROR_FILE_NOT_FOUND_HR
    assert sim.store.granted(vm) == []
    assert not (sim.store.root / "grants").exists() or not any(
        (sim.store.root / "grants").iterdir()
    )


def test_files_standing_for_disks_are_one_line_of_json(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "state.vmgs"
    assert api.HcsCreateEmptyGuestStateFile(str(path)) == 0
    text = path.read_text()
    assert text == '{"SimulatedGuestState":1}'
    assert json.loads(text) == {"SimulatedGuestState": 1}


def test_concurrent_grants_on_one_grants_file_are_all_kept(tmp_path: Path) -> None:
    # The grants file is its own lock (flock on one pooled descriptor per holder): threads of
    # one store and a second store (another process) writing the same file lose no grant.
    import threading

    stores = [state.StateStore(tmp_path / "sim"), state.StateStore(tmp_path / "sim")]
    vms = [f"vm-{n}" for n in range(200)]
    vms = [vm for vm in vms if state._grant_stripe(vm) == state._grant_stripe(vms[0])][:12]
    files = {vm: tmp_path / f"{vm}.vhdx" for vm in vms}
    for path in files.values():
        path.write_text("x")

    def work(n: int) -> None:
        vm = vms[n]
        stores[n % 2].grant(vm, str(files[vm]), True)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(vms))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        assert store.read_grants() == {vm: [str(files[vm])] for vm in vms}
        store.close()


def test_an_empty_grants_file_holds_no_grants(tmp_path: Path) -> None:
    # A writer creates the file before it locks it; a reader then (or after that writer was
    # killed) sees no grants at once, without waiting for a "torn" file to settle.
    import time

    store = state.StateStore(tmp_path / "sim")
    disk = tmp_path / "a.vhdx"
    disk.write_text("x")
    vm = "vm-empty"
    store.grant(vm, str(disk), True)
    grants = store.root / "grants" / f"{state._grant_stripe(vm):02d}.json"
    grants.write_bytes(b"")
    started = time.monotonic()
    assert store.granted(vm) == []
    assert time.monotonic() - started < 0.2
    store.grant(vm, str(disk), False)  # a revoke that changes nothing still writes a table
    assert grants.read_bytes().startswith(b"HCSSIM ")
    grants.write_bytes(b"HCSSIM 00000000 99\n{")  # torn for good: a writer died mid-way
    store.grant(vm, str(disk), True)  # the next write mends it
    assert store.granted(vm) == [str(disk)]
    store.close()


def test_a_grants_file_deleted_under_a_pooled_descriptor_is_made_again(tmp_path: Path) -> None:
    store = state.StateStore(tmp_path / "sim")
    disk, other = tmp_path / "a.vhdx", tmp_path / "b.vhdx"
    disk.write_text("x")
    other.write_text("y")
    vm = "vm-deleted"
    store.grant(vm, str(disk), True)  # its descriptor is now pooled
    grants = store.root / "grants" / f"{state._grant_stripe(vm):02d}.json"
    grants.unlink()
    store.grant(vm, str(other), True)  # must not write into the deleted file
    assert grants.exists()
    assert store.granted(vm) == [str(other)]
    assert state.StateStore(tmp_path / "sim").granted(vm) == [str(other)]
    store.close()


def test_every_pooled_descriptor_of_a_deleted_grants_file_is_dropped(tmp_path: Path) -> None:
    # Several threads granted at once: several descriptors of the file are pooled.  After
    # the file is deleted and made again, a grant must not give up after trying 3 of them.
    store = state.StateStore(tmp_path / "sim")
    disk = tmp_path / "a.vhdx"
    disk.write_text("x")
    vm = "vm-many"
    store.grant(vm, str(disk), True)
    name = f"grants{os.sep}{state._grant_stripe(vm):02d}.json"
    fds = [store._take_fd(name) for _ in range(5)]
    for fd in fds:
        store._give_fd(name, fd)
    grants = store.root / "grants" / f"{state._grant_stripe(vm):02d}.json"
    grants.unlink()
    grants.write_bytes(b"")  # made again (empty: no grants)
    store.grant(vm, str(disk), True)
    assert state.StateStore(tmp_path / "sim").granted(vm) == [str(disk)]
    store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_does_not_share_the_parents_lock_descriptors(tmp_path: Path) -> None:
    # flock on a descriptor inherited through fork() excludes nothing between parent and
    # child (one open file description): the child must open its own.
    import fcntl

    store = state.StateStore(tmp_path / "sim")
    disk = tmp_path / "a.vhdx"
    disk.write_text("x")
    vm = "vm-fork"
    store.grant(vm, str(disk), True)  # pools a descriptor of the grants file
    name = f"grants{os.sep}{state._grant_stripe(vm):02d}.json"
    fd = store._take_fd(name)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held in the parent (by "another thread")
    store._give_fd(name, fd)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 if the lock excludes it, 1 if not
        code = 2
        try:
            child_fd = store._take_fd(name)
            try:
                fcntl.flock(child_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                code = 1
            except BlockingIOError:
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    fcntl.flock(fd, fcntl.LOCK_UN)
    assert os.waitstatus_to_exitcode(status) == 0
    store.close()
