"""A name never reads as a sandbox id (QA F2; review RV-names H1 and the narrowed rule).

One function, ``paths.reads_as_id``, says which keys ``Store.get`` tries as an id before a
name and which names a NEW sandbox may not have (``spec.check_new_name``: ``Sandbox.create``
and the CLI's run/create/plan): the canonical id's prefixes of 8 or more hex digits with the
dashes where a GUID has them, the 32 hex digits, either in braces.  A stored spec is never
checked so: a sandbox named so before the rule keeps working."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcs_sandbox.errors import SandboxNotFoundError, SpecError
from hcs_sandbox.sandbox import paths
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import PortMapping, SandboxSpec, check_new_name, name_reads_as_id
from hcs_sandbox.sandbox.store import Store, open_store

if TYPE_CHECKING:
    from conftest import Inspector


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "ids") as s:
        yield s


_GUID = "5cb6ec6e-1193-47d7-82c4-ae871e6eae11"

#: What the project prints (ls, ls -q, --no-trunc) or takes as an id: refused as a new name.
_ID_SHAPED = [
    _GUID[:12],  # what ls / ls -q print
    _GUID,  # ls --no-trunc, inspect
    _GUID.upper(),
    _GUID[:8],  # the first group
    _GUID[:9],  # ... with its dash
    _GUID[:23],
    _GUID.replace("-", ""),  # the 32-hex-digit form (uuid.UUID takes it)
    "deadbeef",
    "DEADBEEF",
    "12345678",
    "0" * 32,
]
#: Not an id's shape: a name first, then an id prefix.
_NOT_ID_SHAPED = [
    "a",
    "cafe",
    "1234567",  # 7 hex digits: short, a name first as in docker
    "2024-01-01",  # a dash where no id has one
    "build-1234",
    "dead-beef",
    "123456789",  # 9 hex digits without the dash after the 8th: no id is printed so
    _GUID.replace("-", "")[:12],
    "0" * 33,
    "9" * 63,
    "g0000000",
    "5cb6-ec6e-1193-47d7-82c4-ae871e6eae11",  # 32 hex digits, a dash out of place
]


@pytest.mark.parametrize("name", _ID_SHAPED)
def test_a_new_name_with_the_shape_of_an_id_is_refused(name: str) -> None:
    assert name_reads_as_id(name)
    with pytest.raises(SpecError) as info:
        check_new_name(name)
    err = info.value
    assert err.field == "name"
    assert err.value == name
    assert err.exit_code == 2
    assert "reads as a sandbox id" in err.message
    assert "\n" not in str(err)
    assert err.remedy is not None
    suggested = err.remedy.split("'")[-2]  # the example the remedy gives is a valid new name
    check_new_name(suggested)
    assert SandboxSpec(name=suggested).name == suggested


@pytest.mark.parametrize("name", _NOT_ID_SHAPED)
def test_a_name_without_the_shape_of_an_id_is_allowed(name: str) -> None:
    assert not name_reads_as_id(name)
    check_new_name(name)
    assert SandboxSpec(name=name).name == name


def test_the_allowed_text_says_exactly_what_is_refused() -> None:
    """Review L2: ``cafe`` or ``2024-01-01`` are made only of hex digits and '-' and allowed,
    so the rule may not say "not only hex digits and '-'"."""
    with pytest.raises(SpecError) as info:
        check_new_name("deadbeef")
    allowed = info.value.allowed or ""
    assert "not only hex digits" not in allowed
    assert "8 or more hex digits" in allowed
    assert "8-4-4-4-12" in allowed
    assert "32 hex digits" in allowed


@pytest.mark.parametrize("name", ["deadbeef", _GUID[:12], _GUID])
def test_a_stored_spec_with_such_a_name_is_still_a_valid_spec(name: str) -> None:
    # (Review H1: the stored spec of a sandbox named before the rule is loaded through
    # SandboxSpec.from_dict: it must not turn "damaged".)
    spec = SandboxSpec(name=name)
    assert SandboxSpec.from_dict(spec.to_dict()) == spec


def test_sandbox_create_and_run_refuse_such_a_name(world: Inspector) -> None:
    with pytest.raises(SpecError, match="reads as a sandbox id"):
        Sandbox.create(SandboxSpec(name="deadbeef"))
    with (
        pytest.raises(SpecError, match="reads as a sandbox id"),
        Sandbox.run(SandboxSpec(name=_GUID[:12])),
    ):
        pass
    assert Sandbox.list() == []
    world.assert_nothing_left()


_KEY_FORMS = st.sampled_from(["canonical", "dashless", "braces", "odd-dash", "upper"])


@given(
    guid=st.uuids(),
    form=_KEY_FORMS,
    length=st.integers(min_value=1, max_value=36),
    dash_at=st.integers(min_value=1, max_value=31),
)
def test_lookup_tries_a_key_as_an_id_first_exactly_when_it_reads_as_an_id(
    tmp_path_factory: pytest.TempPathFactory, guid: uuid.UUID, form: str, length: int, dash_at: int
) -> None:
    """The one rule: with a sandbox whose id the key starts (or is) and another NAMED like
    the key, ``get`` finds the first exactly when ``reads_as_id(key)``, so every key tried as
    an id first is a refused name and every refused name is a key tried as an id first."""
    text = str(guid)
    digits = text.replace("-", "")
    key = {
        "canonical": text[:length],
        "upper": text[:length].upper(),
        "dashless": digits[: min(length, 32)],
        "braces": "{" + text + "}",
        "odd-dash": digits[:dash_at] + "-" + digits[dash_at:],
    }[form]
    with open_store(tmp_path_factory.mktemp("keys")) as store:
        target = store.reserve("target", text, {})
        try:
            named = store.reserve(key, None, {})  # a name the store's own rule takes
        except SpecError:  # braces: no name has them; nothing can shadow the id
            assert paths.reads_as_id(key)
            assert store.get(key).id == target.id
            return
        expected = target.id if paths.reads_as_id(key) else named.id
        assert store.get(key).id == expected, key
        assert name_reads_as_id(key) == paths.reads_as_id(key)


def test_the_short_id_reaches_its_sandbox_not_a_sandbox_named_so(store: Store) -> None:
    target = store.reserve("hello", _GUID, {})
    # A record named like it, made before names of that shape were refused (the store's
    # own name rule still takes it: only a new sandbox's name is checked).
    legacy = store.reserve(_GUID[:12], None, {})
    for key in (_GUID[:12], _GUID[:8], _GUID, _GUID.upper(), _GUID.replace("-", "")):
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


def test_a_date_like_name_wins_over_the_id_its_digits_start(store: Store) -> None:
    # "2024-01-01" has a dash where no id has one: a name, allowed, and found as one.
    store.reserve("x", "20240101-0000-4000-8000-000000000000", {})
    named = store.reserve("2024-01-01", None, {})
    assert store.get("2024-01-01").id == named.id


def test_a_sandbox_named_so_before_the_rule_keeps_working(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:  # (monkeypatch.context: undo() would undo the state_dir fixture's too)
    """Review H1: made as main made it (no check), its stored spec holds the id-like name;
    it loads, starts, runs commands, lists its ports, and another sandbox's create names it
    as the holder of a port it publishes."""
    from hcs_sandbox.sandbox import spec as spec_module

    with monkeypatch.context() as patch:
        patch.setattr(spec_module, "check_new_name", lambda name: None)  # main: no check
        legacy = Sandbox.create(
            SandboxSpec(
                name="0badcafe",
                network="nat",
                ports=(PortMapping(7474, 74),),
                persistence="persistent",
            )
        )
    assert legacy.spec.name == "0badcafe"
    legacy.close()
    again = Sandbox.get("0badcafe")
    assert again.id == legacy.id
    assert again.spec.name == "0badcafe"
    again.start()
    assert again.exec("cmd /c ver").exit_code == 0
    assert [p.host_port for p in again.ports()] == [7474]
    from hcs_sandbox import errors

    with pytest.raises(errors.HcnAlreadyExistsError) as info:
        Sandbox.create(SandboxSpec(name="pz", network="nat", ports=(PortMapping(7474, 74),)))
    assert "(by sandbox '0badcafe')" in info.value.message
    again.stop()
    again.start()
    again.remove(force=True)
    world.assert_nothing_left()


@pytest.mark.parametrize(
    "key",
    [
        "123456789",  # 9 hex digits, no dash after the 8th: no id is printed so
        _GUID.replace("-", "")[:12],
        "5cb6-ec6e-1193-47d7-82c4-ae871e6eae11",  # a GUID uuid.UUID takes, dashes misplaced
        "5cb6ec6e-11-93",
    ],
)
def test_a_key_without_the_shape_of_an_id_is_a_name_first(store: Store, key: str) -> None:
    # The same rule both ways: such a name is allowed, so the lookup must find it as a name
    # before it tries the key as an id (or id prefix) of another sandbox.
    store.reserve(
        "target", _GUID if not key.startswith("1") else "12345678-9abc-4000-8000-000000000000", {}
    )
    named = store.reserve(key, None, {})
    assert store.get(key).id == named.id
    check_new_name(key)
