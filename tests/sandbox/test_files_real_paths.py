"""Mapped folders are judged and shared as their real paths (RV30 F2).

A folder mapped at create through a symbolic link (on Windows also an 8.3 name, a junction
or a ``subst`` drive) is the same folder as its real path: a runtime ``map`` of it, read-write
or not, overlaps the create-time mapping.  ``Sandbox.create`` records and shares the real path
it checked, so a link retargeted after create cannot change the folder the VM sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import MappedFolder, SandboxSpec
from hcs_sandbox.sandbox.store import open_store


@pytest.fixture
def host(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    (root / "proj" / "sub").mkdir(parents=True)
    (root / "link").symlink_to(root / "proj")
    return root


@pytest.fixture
def sb(host: Path) -> Iterator[Sandbox]:
    spec = SandboxSpec(
        name="realpaths", mapped_folders=(MappedFolder(str(host / "link"), "C:\\ro"),)
    )
    with Sandbox.run(spec) as sandbox:
        yield sandbox


def _shares(sim: Any, sb: Sandbox) -> dict[str, str]:
    record = sim.store.read("systems", sb.system_id)
    return {s["Name"]: s.get("Path") for s in record.get("Shares") or []}


@pytest.mark.parametrize("mapped", ["proj", "link", "proj/sub"])
def test_a_folder_mapped_at_create_through_a_link_cannot_be_mapped_again(
    sb: Sandbox, host: Path, mapped: str
) -> None:
    with pytest.raises(errors.SpecError) as caught:
        sb.map(str(host / mapped), "C:\\again", read_only=False)
    real = host / "proj"
    assert caught.value.message.endswith(f"overlaps {real}, already mapped at C:\\ro")
    assert [m["guest_path"] for m in sb.inspect()["mappings"]] == ["C:\\ro"]


def test_a_record_that_keeps_the_written_path_is_compared_as_its_real_path(
    sb: Sandbox, host: Path
) -> None:
    # A record made before create recorded real paths keeps the path as written.
    links = [dict(e, host_path=str(host / "link")) for e in sb.record.extra["guest_links"]]
    with open_store(sb._state_dir) as store:
        sb._record = store.update(sb.id, merge_extra={"guest_links": links})
    assert sb.inspect()["mappings"][0]["host_path"] == str(host / "link")
    with pytest.raises(errors.SpecError, match="already mapped at C:\\\\ro"):
        sb.map(str(host / "proj"), "C:\\again", read_only=False)


def test_create_shares_and_records_the_real_path(sb: Sandbox, host: Path, sim: Any) -> None:
    real = str(host / "proj")
    assert _shares(sim, sb)["map0"] == real
    assert sb.spec.mapped_folders[0].host_path == real
    assert sb.inspect()["mappings"][0]["host_path"] == real
    # Retargeting the link afterwards does not change what a restart would share.
    (host / "link").unlink()
    (host / "link").symlink_to(host / "proj" / "sub")
    again = Sandbox.get(sb.name)
    assert again.spec.mapped_folders[0].host_path == real


def test_a_persistent_sandbox_restarts_with_the_folder_checked_at_create(
    host: Path, sim: Any
) -> None:
    spec = SandboxSpec(
        name="realkeep",
        persistence="persistent",
        mapped_folders=(MappedFolder(str(host / "link"), "C:\\ro"),),
    )
    sb = Sandbox.create(spec)
    try:
        sb.start()
        sb.stop()
        (host / "link").unlink()
        (host / "link").symlink_to(host / "proj" / "sub")  # retargeted after create
        sb.start()
        assert _shares(sim, sb)["map0"] == str(host / "proj")
    finally:
        sb.remove(force=True)


def test_the_path_returned_is_the_path_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A link retargeted between the check and the use must not change the folder shared:
    # check_host_folder returns the real path it judged, resolved once (review RV32 #1).
    from hcs_sandbox.sandbox import files

    good = tmp_path / "good"
    good.mkdir()
    answers = [str(good), "/etc"]  # the second resolution would lead elsewhere
    calls: list[str] = []

    def realpath(path: Any, *args: Any, **kwargs: Any) -> str:
        calls.append(str(path))
        return answers[min(len(calls), len(answers)) - 1]

    monkeypatch.setattr(files.os.path, "realpath", realpath)
    assert files.check_host_folder(str(tmp_path / "link")) == str(good)
    assert len(calls) == 1
