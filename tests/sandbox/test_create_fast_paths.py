"""The create path's shortcuts (session 12, s12-create) give what the longer code gave.

Each shortcut is a pure speed change; these tests pin that the values are the same as the
code they replace computes, and that a refused spec value still gets its own error.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import paths, planner, sandbox, storage
from hcs_sandbox.sandbox.spec import BaseImage, FrozenMap, MappedFolder, SandboxSpec


def test_new_id_is_uuid4_of_the_same_random_bytes_with_the_store_s_mark(
    tmp_path: Path,
) -> None:
    """A new sandbox id: a version-4 GUID (RFC 4122 variant) whose first 8 bytes are
    os.urandom's (with the version), whose clock_seq is the tag and whose node is the
    store's mark (QA analyst F1, review RV-scope F1; sandbox/owned.py)."""
    from hcs_sandbox.sandbox.store import open_store

    store = open_store(tmp_path)
    mark = bytes.fromhex(store.mark)
    for _ in range(200):
        raw = os.urandom(8)
        with mock.patch("os.urandom", return_value=raw):
            got = sandbox._new_id(store)
        parsed = uuid.UUID(got)
        assert paths.is_canonical_id(got)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.bytes[:6] == raw[:6]
        assert parsed.bytes[7] == raw[7]
        assert parsed.bytes[6] & 0x0F == raw[6] & 0x0F
        assert parsed.bytes[8:10] == bytes.fromhex("9c5b")
        assert parsed.bytes[10:] == mark
    assert sandbox._new_id(store) != sandbox._new_id(store)


def test_files_of_is_the_join_for_every_base_folder(tmp_path: Path) -> None:
    for name in ("0123", "a b", "x.y"):
        (tmp_path / name).mkdir()
    with os.scandir(tmp_path) as entries:
        for entry in entries:
            assert storage._files_of(entry.path) == os.path.join(entry.path, "BaseLayer", "Files")


def test_host_base_folders_and_find_host_base_name_the_files_folder() -> None:
    base = storage.find_host_base()
    assert base.os_files == os.path.join(base.path, "BaseLayer", "Files")
    for _mtime, _name, folder, st in storage.host_base_folders():
        assert os.stat(os.path.join(folder, "BaseLayer", "Files")) == st


def test_spec_defaults_are_the_values_the_factories_made() -> None:
    spec = SandboxSpec(name="a")
    assert spec.base == BaseImage()
    assert type(spec.environment) is FrozenMap
    assert type(spec.labels) is FrozenMap
    assert spec.environment == FrozenMap() == spec.labels
    assert spec == SandboxSpec(name="a", base=BaseImage(), environment={}, labels={})
    assert hash(spec) == hash(SandboxSpec(name="a", environment=FrozenMap()))
    # Given mappings and sequences are still converted.
    given = SandboxSpec(environment={"B": "2", "A": "1"}, labels={"k": "v"}, ports=[])
    assert type(given.environment) is FrozenMap
    assert list(given.environment) == ["A", "B"]
    assert type(given.labels) is FrozenMap
    assert given.ports == ()
    assert type(given.ports) is tuple


class _Str(str):
    pass


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"memory_mb": True}, "memory_mb", "invalid memory_mb True: not an integer"),
        ({"memory_mb": 1023}, "memory_mb", "invalid memory_mb 1023: below the minimum of 1024 MB"),
        ({"cpus": 65}, "cpus", "invalid cpus 65: above the maximum of 64"),
        ({"cpus": 2.0}, "cpus", "invalid cpus 2.0: not an integer"),
        ({"network": "NAT"}, "network", "invalid network 'NAT': not a known value"),
        ({"display": None}, "display", "invalid display None: not a known value"),
        ({"persistence": b"ephemeral"}, "persistence", "invalid persistence b'ephemeral'"),
        ({"gpu": 1}, "gpu", "invalid gpu 1: not a boolean"),
        ({"protected_client": None}, "protected_client", "invalid protected_client None"),
        ({"ports": "80:80"}, "ports", "invalid ports '80:80': not a list of PortMapping"),
        ({"mapped_folders": [1]}, "mapped_folders[0]", "invalid mapped_folders[0] 1"),
        ({"environment": {"": "x"}}, "environment", "invalid environment '': not a valid"),
        ({"labels": {"a": "\n"}}, "labels[a]", "invalid labels[a] '\\n': the value contains"),
        ({"labels": []}, "labels", "invalid labels []: not a mapping"),
    ],
)
def test_refused_values_get_their_own_errors(
    changes: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(errors.SpecError) as info:
        SandboxSpec(**changes)
    assert info.value.field == field
    assert str(info.value).startswith(message)


def test_accepted_values_of_other_types_are_kept() -> None:
    # int subclasses other than bool, str subclasses: accepted as before (the fast tests
    # only decide which values need the full check).
    spec = SandboxSpec(network=_Str("nat"), cpus=3, memory_mb=2048)
    assert spec.network == "nat"
    assert type(spec.network) is _Str
    assert (spec.cpus, spec.memory_mb) == (3, 2048)
    folder = MappedFolder(host_path=os.getcwd(), guest_path="C:\\m")
    assert SandboxSpec(mapped_folders=[folder]).mapped_folders == (folder,)


def test_to_dict_gives_plain_dicts() -> None:
    spec = SandboxSpec(environment={"B": "2", "A": "1"}, labels={"k": "v"})
    out = spec.to_dict()
    assert type(out["environment"]) is dict
    assert list(out["environment"].items()) == [("A", "1"), ("B", "2")]
    assert type(out["labels"]) is dict
    assert out["labels"] == {"k": "v"}
    assert out["labels"] is not spec.to_dict()["labels"]
    assert SandboxSpec.from_dict(out) == spec


@pytest.mark.parametrize("explicit", [None, "", "   ", "relative/dir", "/abs/dir "])
def test_state_dir_text_reads_each_source_once_with_the_same_result(
    explicit: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for env in (None, "", "  ", str(tmp_path / "env-state")):
        if env is None:
            monkeypatch.delenv(paths.ENV_STATE_DIR, raising=False)
        else:
            monkeypatch.setenv(paths.ENV_STATE_DIR, env)
        if explicit is not None and not explicit.strip():
            # An explicitly empty one is bad input, whatever the variable says (QA s17 F7).
            with pytest.raises(errors.SpecError, match="empty"):
                paths.state_dir_text(explicit)
            continue
        if explicit is not None:
            expected = os.path.abspath(explicit.strip())
        elif env is not None and env.strip():
            expected = os.path.abspath(env.strip())
        else:
            expected = os.path.abspath(os.path.expanduser(paths.default_state_dir()))
        assert paths.state_dir_text(explicit) == expected
        if explicit:
            assert paths.state_dir_text(Path(explicit)) == expected


def test_fill_with_the_values_given_is_the_fill_without() -> None:
    spec = SandboxSpec(name="a")
    facts = planner.HostFacts.for_planning(spec, sandbox_id=str(uuid.uuid4()))
    real = planner.plan_documents(spec, facts)  # makes the template
    key = planner._documents_key(spec, facts)
    template = planner._documents_cache[key]
    assert template is not None
    values = planner._fill_values(facts)
    for part in template:
        assert planner._fill(part, facts, values) == planner._fill(part, facts)
    again = planner.plan_documents(spec, facts)  # from the template
    assert again.document_json == planner._dumps(real.document)
    assert again == real  # (reads the document: ends document_json)


def test_sandbox_keeps_a_path_and_makes_one_of_text(tmp_path: Path) -> None:
    record: Any = object()
    state = Path(tmp_path)
    assert sandbox.Sandbox(record, state)._state_dir is state
    made = sandbox.Sandbox(record, str(tmp_path))._state_dir
    assert type(made) is type(state)
    assert made == state


def test_with_host_folders_without_folders_is_the_spec() -> None:
    spec = SandboxSpec(name="a")
    assert sandbox._with_host_folders(spec, ()) is spec
    with pytest.raises(ValueError, match="zip"):
        sandbox._with_host_folders(spec, ("/x",))


@pytest.mark.parametrize("directory", ["", "/", "//", "a", "a/", "/s/x", "/s/x/", " ", "\\\\"])
def test_documents_key_posix_join_answer_is_the_join(directory: str) -> None:
    spec = SandboxSpec(name="a")
    facts = planner.HostFacts(
        sandbox_id="i", system_id="i", sandbox_dir=directory, path_style="posix"
    )
    key = planner._documents_key(spec, facts)
    assert key is not None
    assert key[-1] is (posixpath.join(directory, "f") == directory + "/f")
    # Not text: no key (as before).
    folder: Any = Path("/x")
    odd = planner.HostFacts(sandbox_id="i", system_id="i", sandbox_dir=folder, path_style="posix")
    assert planner._documents_key(spec, odd) is None
