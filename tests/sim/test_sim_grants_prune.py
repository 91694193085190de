"""VM-access grants go with their file (HcsGrantVmAccess.md: an entry in the file's ACL), and
the grants file stays a record file rewritten in place (docs/performance.md, round 2)."""

from __future__ import annotations

from pathlib import Path

from hcs_sandbox.hcs import service
from hcs_sandbox.sim.core import Simulator


def test_grant_on_a_deleted_file_is_dropped_at_the_next_write(
    sim: Simulator, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.vhdx", tmp_path / "b.vhdx"
    first.write_bytes(b"x")
    second.write_bytes(b"x")
    service.grant_vm_access("vm-1", first)
    assert sim.store.read_grants() == {"vm-1": [str(first)]}
    first.unlink()  # the ACE is gone with the file
    service.grant_vm_access("vm-2", second)
    assert sim.store.read_grants() == {"vm-2": [str(second)]}
    first.write_bytes(b"x")  # made again at the same path: no grant
    assert str(first) not in sim.store.read_grants().get("vm-1", [])


def test_many_lifecycles_leave_no_grants_behind(sim: Simulator, tmp_path: Path) -> None:
    for i in range(20):
        disk = tmp_path / f"d{i}.vhdx"
        disk.write_bytes(b"x")
        service.grant_vm_access(f"vm-{i}", disk)
        disk.unlink()
    keep = tmp_path / "keep.vhdx"
    keep.write_bytes(b"x")
    service.grant_vm_access("vm-keep", keep)
    assert sim.store.read_grants() == {"vm-keep": [str(keep)]}
    raw = (Path(sim.store.root) / "grants.json").read_bytes()
    assert raw.startswith(b"HCSSIM ")  # CRC-checked record file, read without a lock


def test_revoke_still_removes_an_existing_grant(sim: Simulator, tmp_path: Path) -> None:
    disk = tmp_path / "a.vhdx"
    disk.write_bytes(b"x")
    service.grant_vm_access("vm-1", disk)
    service.revoke_vm_access("vm-1", disk)
    assert sim.store.read_grants() == {}
