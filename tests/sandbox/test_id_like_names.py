"""A name never reads as a sandbox id (QA F2): ``SandboxSpec`` refuses names made only of hex
digits and '-' with 8 to 32 hex digits, and ``Store.get`` tries a key of that shape as an id
(prefix) before it tries it as a name, so what ``ls`` prints always reaches its sandbox, also
when a record named so was made before the rule."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcs_sandbox.errors import SandboxNotFoundError, SpecError
from hcs_sandbox.sandbox import store as store_module
from hcs_sandbox.sandbox.spec import SandboxSpec, name_reads_as_id
from hcs_sandbox.sandbox.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "ids") as s:
        yield s


_GUID = "5cb6ec6e-1193-47d7-82c4-ae871e6eae11"


@pytest.mark.parametrize(
    "name",
    [
        _GUID[:12],  # what ls / ls -q print
        _GUID,  # a full id
        _GUID.upper(),
        _GUID.replace("-", ""),
        "deadbeef",  # 8 hex digits: the first group of a GUID
        "dead-beef",
        "20241127",
        "0" * 32,
    ],
)
def test_spec_refuses_a_name_that_reads_as_an_id(name: str) -> None:
    with pytest.raises(SpecError) as info:
        SandboxSpec(name=name)
    err = info.value
    assert err.field == "name"
    assert err.value == name
    assert err.exit_code == 2
    assert "reads as a sandbox id" in err.message
    assert "\n" not in str(err)
    assert err.remedy is not None
    suggested = err.remedy.split("'")[-2]  # the example the remedy gives is a valid name
    assert SandboxSpec(name=suggested).name == suggested


@pytest.mark.parametrize(
    "name",
    ["a", "db", "cafe", "c170", "1234567", "dead-bee", "0" * 33, "9" * 63, "web-1", "g0000000"],
)
def test_spec_keeps_names_that_cannot_be_an_id(name: str) -> None:
    # Fewer than 8 hex digits (short: as in docker, a name wins over a prefix that short),
    # more than 32 (no GUID has them), or any other character.
    assert SandboxSpec(name=name).name == name


@given(st.from_regex(r"[0-9a-fA-Fg_.-]{1,40}", fullmatch=True))
def test_store_and_spec_agree_on_what_reads_as_an_id(text: str) -> None:
    assert store_module._reads_as_id(text) == name_reads_as_id(text)


def test_the_short_id_reaches_its_sandbox_not_a_sandbox_named_so(store: Store) -> None:
    target = store.reserve("hello", _GUID, {})
    # A record named like it, made before names of that shape were refused (the store's
    # own name rule still takes it: only SandboxSpec refuses it).
    legacy = store.reserve(_GUID[:12], None, {})
    for key in (_GUID[:12], _GUID[:8], _GUID, _GUID.upper(), _GUID.replace("-", "")[:12]):
        assert store.get(key).id == target.id, key
    # The legacy record stays reachable: by its own id, and by its name once no id starts
    # with it.
    assert store.get(legacy.id).id == legacy.id
    assert store.get(legacy.id[:12]).id == legacy.id
    store.delete(target.id)
    assert store.get(_GUID[:12]).id == legacy.id


def test_a_legacy_full_guid_name_is_reached_by_name_when_no_id_has_it(store: Store) -> None:
    other = str(uuid.UUID(int=0x1234))
    legacy = store.reserve(other, None, {})
    assert store.get(other).id == legacy.id
    with pytest.raises(SandboxNotFoundError):
        store.get("0" * 8)


def test_short_hex_names_still_win_over_short_prefixes(store: Store) -> None:
    # Below 8 hex digits nothing changed: the name first (as docker), then a prefix.
    target = store.reserve("x", "cafe0000-0000-4000-8000-000000000000", {})
    named = store.reserve("cafe", None, {})
    assert store.get("cafe").id == named.id
    assert store.get("cafe0").id == target.id
