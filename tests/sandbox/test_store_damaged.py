"""The store reads a record whose labels, files, endpoint ids or extra are damaged (not JSON
at all, NaN or Infinity, a BLOB, or not of the column's kind: edited by hand, a damaged
disk) leniently: each reads as empty and ``Record.damaged`` names it, so the record can
still be listed, stopped and removed (reviews RV54 F2, RV55: an internal error before)."""

from __future__ import annotations

import copy
import pickle
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox.store import Record, Store, Summary, open_store

SPEC: dict[str, Any] = {"memory_mb": 4096}
EP = "0e1e0e1e-0000-4000-8000-0000000000e1"  # an endpoint id (a GUID)
EMPTY = {"files": (), "endpoint_ids": (), "labels": {}, "extra": {}}

#: (column, stored text, the start of what Record.damaged says).
DAMAGED = [
    ("labels", "not json", "not JSON (Expecting value"),
    ("files", "[oops", "not JSON (Expecting value"),
    ("endpoint_ids", b"[]", "not JSON text (a BLOB)"),
    ("extra", '{"ip": NaN}', "not JSON (NaN is not JSON)"),
    ("extra", '{"n": -Infinity}', "not JSON (-Infinity is not JSON)"),
    ("files", '"C:\\\\x"', "not a JSON list"),
    ("endpoint_ids", "{}", "not a JSON list"),
    ("labels", "[]", "not a JSON object"),
    ("extra", "5", "not a JSON object"),
    # The right container, a wrong value in it (review RV58 F1), and a number no float
    # holds (F2: sqlite's json_valid accepts 1e999, the store could not write it back).
    ("files", "[1]", "not a JSON list of absolute paths (item 0: 1)"),
    ("files", '["/a", null]', "not a JSON list of absolute paths (item 1: null)"),
    ("files", '["relative"]', "not a JSON list of absolute paths (item 0: 'relative')"),
    ("endpoint_ids", '["zzz"]', "not a JSON list of GUIDs (item 0: 'zzz')"),
    ("endpoint_ids", "[1]", "not a JSON list of GUIDs (item 0: 1)"),
    ("labels", '{"k": 1}', "not a JSON object of strings (the value of 'k': 1)"),
    (
        "extra",
        '{"warnings": 5}',
        "not as verbs read it (its 'warnings' is not a list of strings: 5)",
    ),
    (
        "extra",
        '{"foreign_grants": [1]}',
        "not as verbs read it (its 'foreign_grants' is not a list of absolute",
    ),
    ("extra", '{"guest_links": "x"}', "not as verbs read it (its 'guest_links' is not a list"),
    (
        "extra",
        '{"exit": {"Status": "x"}}',
        "not as verbs read it (its 'exit' is not an exit status",
    ),
    ("extra", '{"mappings": {}}', "not as verbs read it (its 'mappings' is not a list"),
    ("extra", '{"big": 1e999}', "not JSON (1e999 is out of a float's range"),
    ("extra", '{"big": -1E400}', "not JSON (-1E400 is out of a float's range"),
]


def _write(store: Store, record_id: str, column: str, text: str | bytes) -> None:
    conn = sqlite3.connect(store.path)
    try:
        conn.execute(f"UPDATE sandboxes SET {column} = ? WHERE id = ?", (text, record_id))
        conn.commit()
    finally:
        conn.close()


def _stored(store: Store, record_id: str, column: str) -> Any:
    conn = sqlite3.connect(store.path)
    try:
        return conn.execute(
            f"SELECT {column} FROM sandboxes WHERE id = ?", (record_id,)
        ).fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with open_store(tmp_path / "state") as s:
        yield s


# ---------------------------------------------------------------------------------------
# The store's lenient reader
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("column", "text", "problem"), DAMAGED)
def test_the_store_reads_a_damaged_field_as_empty_and_names_it(
    store: Store, column: str, text: str | bytes, problem: str
) -> None:
    made = store.reserve(
        "dmg", None, SPEC, labels={"k": "v"}, files=["/f"], endpoint_ids=[EP], extra={"x": 1}
    )
    sound = store.reserve("fine", None, SPEC, labels={"k": "v"})
    _write(store, made.id, column, text)
    for record in (store.get("dmg"), store.list()[0]):
        assert list(record.damaged) == [column]
        assert record.damaged[column].startswith(problem)
        assert record.damaged_field(column) == record.damaged[column]
        assert getattr(record, column) == EMPTY[column]
        for other in set(EMPTY) - {column}:
            assert record.damaged_field(other) is None
            assert getattr(record, other) != EMPTY[other]  # the others read as they are
        assert record.spec == SPEC
        assert copy.deepcopy(record) == record
        assert pickle.loads(pickle.dumps(record)) == record
        assert record != store.get("dmg").__class__(
            *(getattr(record, f) for f in Record._FIELDS[:-1])
        )  # the same values without the damage: another record
    assert store.get("fine").damaged == {}
    assert store.get("fine") == sound
    # The listing: labels unknown (None), not the whole listing refused.
    listed = {s.name: s for s in store.summaries()}
    assert listed["dmg"].labels == (None if column == "labels" else {"k": "v"})
    assert listed["dmg"] == Summary.of(store.get("dmg"))
    assert listed["fine"].labels == {"k": "v"}


def test_a_damaged_spec_is_named_too(store: Store) -> None:
    made = store.reserve("dmg", None, SPEC)
    _write(store, made.id, "spec", "{oops")
    _write(store, made.id, "labels", "oops")
    record = store.get("dmg")
    assert list(record.damaged) == ["spec", "labels"]  # the columns' order
    assert record.damaged["spec"].startswith("not JSON (")
    assert record.damaged_field("spec") == record.damaged["spec"]
    with pytest.raises(errors.StoreError, match="the spec of sandbox 'dmg'"):
        record.spec  # noqa: B018 - the read is the test


def test_writes_keep_a_damaged_field_unless_they_replace_it(store: Store) -> None:
    """An update that merges into a damaged extra writes its other fields and keeps the
    stored text (a person may still read or repair it); adding to a damaged list is
    refused (written ahead of making a resource, it would lose what the list held);
    removing from it writes nothing; a field written whole is sound again."""
    made = store.reserve("dmg", None, SPEC, files=["/f"])
    _write(store, made.id, "extra", '{"ip": NaN}')
    _write(store, made.id, "files", "oops")
    record = store.get("dmg")
    stopped = store.update(record.id, known=record, state="stopped", merge_extra={"exit": {}})
    assert stopped.state == "stopped"
    assert stopped.damaged_field("extra") is not None
    assert _stored(store, made.id, "extra") == '{"ip": NaN}'
    assert store.get("dmg") == stopped
    with pytest.raises(errors.StoreError) as caught:
        store.add_file(made.id, "/g")
    assert str(caught.value).startswith(
        "the files field of sandbox 'dmg' in the state database is damaged (not JSON ("
    )
    assert caught.value.remedy == f"remove the sandbox: hcs-sandbox rm -f {made.id}"
    assert store.remove_file(made.id, "/f").revision == stopped.revision  # nothing written
    assert _stored(store, made.id, "files") == "oops"
    repaired = store.update(made.id, extra={"a": 1}, files=["/h"])
    assert repaired.damaged == {}
    assert repaired.extra == {"a": 1}
    assert store.get("dmg") == repaired


def test_a_sound_record_costs_no_damage_lookups(store: Store) -> None:
    """A sound record carries no damage and asks nothing of the spec for it."""
    record = store.reserve("fine", None, SPEC)
    assert record._damage == ()
    read = store.get("fine")
    assert read._damage == ()
    assert read._spec is None
    assert read.damaged_field("files") is None
    assert read._spec is None  # (the spec not decoded for a column's question)


def test_sound_values_inside_the_columns_are_read_as_they_are(store: Store) -> None:
    """What the checks of the values accept: GUIDs in any case or braces, null extra keys
    (absent), keys no verb reads, finite numbers."""
    upper = "0E1E0E1E-0000-4000-8000-0000000000E1"
    made = store.reserve("ok", None, SPEC, files=["/a/b"], endpoint_ids=[EP, upper])
    _write(store, made.id, "extra", '{"ip": null, "warnings": ["w"], "x": [1], "f": 1.5e3}')
    _write(store, made.id, "labels", '{"k": ""}')
    record = store.get("ok")
    assert record.damaged == {}
    assert record.endpoint_ids == (EP, upper)
    assert record.extra == {"ip": None, "warnings": ["w"], "x": [1], "f": 1500.0}


def test_plain_columns_of_the_wrong_kind_are_named_and_read_as_empty(store: Store) -> None:
    """revision, the times and the compute system id (review RV58 F6): named in
    ``damaged`` and read as 0, 0.0, None and "" (a write then works: revision and
    updated_at are written by every write, and are sound again)."""
    made = store.reserve("dmg", None, SPEC)
    _write(store, made.id, "revision", "abc")
    _write(store, made.id, "created_at", "abc")
    _write(store, made.id, "started_at", b"\x00")
    _write(store, made.id, "system_id", "")
    record = store.get("dmg")
    assert list(record.damaged) == ["system_id", "created_at", "started_at", "revision"]
    assert record.damaged["revision"] == "not a revision number ('abc')"
    assert record.damaged["started_at"] == "not a time (a BLOB)"
    assert (record.system_id, record.created_at, record.started_at, record.revision) == (
        "",
        0.0,
        None,
        0,
    )
    assert store.summaries()[0].created_at == 0.0
    changed = store.update(made.id, state="stopped")
    assert changed.revision == 1
    assert list(changed.damaged) == ["system_id", "created_at", "started_at"]
    assert store.get("dmg") == changed


def test_a_path_from_the_drive_root_is_sound_on_every_windows_python(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV60 F3: on Windows, Python 3.13 made ``os.path.isabs('/data/base.vhdx')``
    False (earlier ones say True).  The spec takes such a ``vhdx:`` base path on Windows,
    and ``foreign_grants`` records it: the record must not read damaged (its whole extra
    empty, start and exec refused) because the Python changed.  Emulated here: Windows's
    rooted forms, and an ``isabs`` that says what 3.13's ntpath says."""
    import ntpath

    from hcs_sandbox.sandbox import store as store_module

    def isabs_313(path: str) -> bool:  # ntpath.isabs of Python 3.13: a drive or UNC root
        drive, rest = ntpath.splitdrive(path)
        return (bool(drive) and rest[:1] in ("\\", "/")) or path[:2] in ("\\\\", "//")

    monkeypatch.setattr(store_module, "_ROOTED", ("/", "\\"), raising=False)
    monkeypatch.setattr(store_module.os.path, "isabs", isabs_313)
    made = store.reserve("root", None, SPEC)
    extra = '{"ip": "10.0.0.2", "foreign_grants": ["/data/base.vhdx", "\\\\data\\\\b.vhdx"]}'
    _write(store, made.id, "extra", extra)
    record = store.get("root")
    assert record.damaged == {}
    assert record.extra["ip"] == "10.0.0.2"
    _write(store, made.id, "extra", '{"foreign_grants": ["C:base.vhdx"]}')  # drive-relative
    assert list(store.get("root").damaged) == ["extra"]


# ---------------------------------------------------------------------------------------
# The warm pool's claim
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "text"),
    [
        ("extra", '{"pool": "k", "ip": 5}'),  # (the match itself reads as it is stored)
        ("extra", "oops"),
        ("files", "[1]"),
        ("spec", "{oops"),
        ("spec", '{"big": 1e999}'),
        ("revision", "abc"),
        ("system_id", "zzz"),
        ("id", "not-a-guid"),
    ],
)
def test_claim_skips_a_damaged_member_and_leaves_it_as_it_is(
    store: Store, column: str, text: str
) -> None:
    """claim() handed out the oldest member whatever its record held (a spec no member can
    be made from, an extra it would write over), or failed on it; a damaged one is left
    for prune or rm -f, and the next sound member is claimed."""
    old = store.reserve("old", None, {}, kind="pool", state="paused", extra={"pool": "k"})
    new = store.reserve("new", None, {}, kind="pool", state="paused", extra={"pool": "k"})
    _write(store, old.id, column, text)
    before = sqlite3.connect(store.path).execute("SELECT * FROM sandboxes").fetchall()
    match = None if column == "extra" and text == "oops" else {"pool": "k"}
    got = store.claim(kind="pool", state="paused", new_state="running", extra_match=match)
    assert got is not None
    assert got.id == new.id
    assert got.state == "running"
    stored = sqlite3.connect(store.path).execute("SELECT * FROM sandboxes").fetchall()
    assert [r for r in stored if r[1] == "old"] == [r for r in before if r[1] == "old"]
    assert store.claim(kind="pool", state="paused", new_state="running") is None
    (damaged,) = [r for r in store.list(all=True, kind="pool") if r.name == "old"]
    assert damaged.state == "paused"
    assert damaged.damaged


# ---------------------------------------------------------------------------------------
# The ids
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "brief"),
    [
        ("zzz", "'zzz'"),
        ("", "''"),
        ("{0e1e0e1e-0000-4000-8000-0000000000e1}", "'{0e1e0e1e-0000-4000-8000-0000000000e1}'"),
        ("0e1e0e1e-0000-4000-8000-0000000000e1-x", "'0e1e0e1e-0000-4000-8000-0000000000e1-x'"),
        ("0e1e0e1e000040008000" + "0000000000e1", "'0e1e0e1e0000400080000000000000e1'"),
    ],
)
def test_a_system_id_that_is_no_guid_is_named_and_read_as_empty(
    store: Store, text: str, brief: str
) -> None:
    """A compute system id that is not a GUID names no system of hcs-sandbox's (it gives a
    system its sandbox's id): damaged, read as "" (no system to open), in the listing
    too; the writes refuse one, so the reader and the writers agree."""
    made = store.reserve("dmg", None, SPEC)
    _write(store, made.id, "system_id", text)
    record = store.get("dmg")
    assert record.damaged == {"system_id": f"not a compute system id (a GUID) ({brief})"}
    assert record.system_id == ""
    (listed,) = store.summaries()
    assert listed == Summary.of(record)
    assert listed.system_id == ""
    with pytest.raises(errors.StoreError, match="system_id must be a GUID"):
        store.update(made.id, system_id=text)
    with pytest.raises(errors.StoreError, match="system_id must be a GUID"):
        store.reserve("other", None, SPEC, system_id=text)
    assert [r.name for r in store.list(all=True)] == ["dmg"]
    assert _stored(store, made.id, "system_id") == text


def test_a_system_id_in_another_case_is_sound(store: Store) -> None:
    """The same GUID in upper case (prune compares them lowercased) still names it."""
    made = store.reserve("up", None, SPEC)
    _write(store, made.id, "system_id", made.id.upper())
    record = store.get("up")
    assert record.damaged == {}
    assert record.system_id == made.id.upper()
    assert store.summaries()[0].system_id == made.id.upper()


@pytest.mark.parametrize("edit", ["upper", "suffix"])
def test_an_id_not_in_the_store_form_is_named_and_kept(store: Store, edit: str) -> None:
    """An id edited by hand is damage (its folder and endpoints cannot be named by it: it
    may be another sandbox's in upper case); it is kept as it is, and still names its
    record."""
    made = store.reserve("dmg", None, SPEC)
    stored = made.id.upper() if edit == "upper" else made.id + "-x"
    _write(store, made.id, "id", stored)
    for record in (store.get("dmg"), store.get(stored), store.list()[0]):
        assert record.damaged == {"id": "not in the form hcs-sandbox writes (a lowercase GUID)"}
        assert record.id == stored
        assert record.system_id == made.id  # (its own: sound)
        assert record.spec == SPEC


def test_the_reader_remembers_only_ids_in_the_store_form_and_only_so_many(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path's set of ids found sound (a set lookup instead of a regular
    expression per read): an edited id never enters it (it reads damaged every time), and
    it is emptied past its size."""
    from hcs_sandbox.sandbox import store as store_module

    remembered: set[str] = set()
    monkeypatch.setattr(store_module, "_SOUND_IDS", remembered)
    monkeypatch.setattr(store_module, "_SOUND_IDS_SIZE", 2)
    made = [store.reserve(f"r{i}", None, SPEC) for i in range(3)]
    _write(store, made[0].id, "id", made[0].id.upper())
    for _ in range(2):
        records = {r.name: r for r in store.list(all=True)}
        assert list(records["r0"].damaged) == ["id"]
        assert records["r1"].damaged == records["r2"].damaged == {}
        assert made[0].id.upper() not in remembered
        assert 1 <= len(remembered) <= 2
        assert remembered <= {made[1].id, made[2].id}


@pytest.mark.parametrize(
    ("value", "damaged"),
    [
        ("1" + "0" * 5000, True),  # past Python's str limit: ls listed it (review RV62 F4)
        ("-" + "9" * 4301, True),
        ('[2, {"x": ' + "1" * 4301 + "}]", True),
        ("1" + "0" * 400, False),  # no float holds it; Python's int does
        ("9" * 4300, False),  # the limit, not past it
        ('"' + "1" * 5000 + '"', False),  # a string of digits: no number
        ("[1e300, -1" + "0" * 1000 + "]", False),
        ("[1e999, 1" + "0" * 5000 + "]", True),  # a float's damage too
    ],
)
def test_the_listing_reads_a_spec_with_an_integer_too_large_for_a_float_as_the_reader(
    store: Store, value: str, damaged: bool
) -> None:
    """sqlite reads an integer of more than 308 digits as an infinite number; Python reads
    one of up to sys.int_max_str_digits (4,300 by default) digits, and refuses a longer
    one.  The listing's spec values are those the record reader gives, either way."""
    made = store.reserve("big", None, {"network": "nat", "base": {"kind": "host"}})
    spec = '{"network": "nat", "big": ' + value + ', "base": {"kind": "host"}}'
    _write(store, made.id, "spec", spec)
    record = store.get("big")
    assert ("spec" in record.damaged) is damaged
    (listed,) = store.summaries()
    assert listed == Summary.of(record)
    assert listed.spec_network == (None if damaged else "nat")
    assert listed.spec_base == (None if damaged else {"kind": "host"})
