"""``ls`` reads only what it shows: :meth:`Store.summaries` (sqlite's JSON functions pick
the spec's base/network/ports and the extra's ip out) equals the same values taken from
whole records, with and without JSON functions, and ``ls`` prints the same either way."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcs_sandbox.cli import ls
from hcs_sandbox.sandbox import store as store_module
from hcs_sandbox.sandbox.store import Store, Summary, open_store

# (spec, extra) pairs: every JSON shape the picked values can have.
SHAPES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"base": {"kind": "host", "path": None}, "network": "nat", "ports": []}, {"ip": "10.0.0.2"}),
    ({"base": {"kind": "image", "path": "C:\\x"}, "network": "none"}, {}),
    ({}, {}),
    ({"base": None, "network": None, "ports": None}, {"ip": None}),
    ({"base": {}, "network": "internet-only"}, {"ip": ""}),
    ({"base": {"path": "p"}}, {"ip": 0}),
    ({"base": {"kind": 7}, "network": 3.5}, {"ip": 1234}),
    ({"base": {"kind": True}, "network": False}, {"ip": True}),
    ({"base": {"kind": None}, "network": True}, {"ip": False}),
    ({"base": {"kind": ["a", 1]}, "network": {"x": [1, 2]}}, {"ip": {"v4": "1.2.3.4"}}),
    ({"network": ["nat"]}, {"ip": ["1.2.3.4", "::1"]}),
    ({"base": {"kind": "ünïcode ✓"}, "network": 'a"b\\c'}, {"ip": "fe80::1%eth0"}),
    (
        {
            "ports": [
                {"host_port": 8080, "guest_port": 80},
                {"host_port": 1, "guest_port": 2, "protocol": "udp"},
                "odd",
            ]
        },
        {"ip": 1.5, "other": {"deep": [1, {"x": None}]}},
    ),
    ({"base": {"kind": "host"}, "network": "nat", "n": 1e300, "f": -0.0}, {"ip": "x" * 300}),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "state")
    states = ["created", "running", "paused", "stopped", "error", "creating"]
    kinds = ["sandbox", "sandbox", "template", "sandbox", "pool"]
    for i, (spec, extra) in enumerate(SHAPES):
        s.reserve(
            f"s{i}",
            spec=spec,
            extra=extra,
            labels={"n": str(i), "k": "v"} if i % 2 else {},
            state=states[i % len(states)],
            kind=kinds[i % len(kinds)],
            persistent=bool(i % 3),
        )
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def no_json_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite as if built without JSON1: the real detection path (no such function)."""
    monkeypatch.setattr(store_module, "_json_functions", True)
    monkeypatch.setattr(
        store_module,
        "_SUMMARY_SELECT",
        store_module._SUMMARY_SELECT.replace("json_extract(", "json_extract_missing("),
    )


def _slow(store: Store, **kw: Any) -> list[Summary]:
    return [Summary.of(r) for r in store.list(**kw)]


@pytest.mark.parametrize("all", [True, False])
@pytest.mark.parametrize("kind", ["sandbox", "template", "pool"])
def test_summaries_equal_whole_records(store: Store, all: bool, kind: str) -> None:
    fast = store.summaries(all=all, kind=kind)
    assert fast == _slow(store, all=all, kind=kind)
    assert [s.id for s in fast] == [r.id for r in store.list(all=all, kind=kind)]  # order
    for s in fast:
        assert type(s.persistent) is bool


def test_every_shape_is_covered(store: Store) -> None:
    got = {s.name: s for k in ("sandbox", "template", "pool") for s in store.summaries(kind=k)}
    assert len(got) == len(SHAPES)
    for i, (spec, extra) in enumerate(SHAPES):
        s = got[f"s{i}"]
        # An ip that is not a string damages the extra (as the record reads it): unknown.
        ip = extra.get("ip") if isinstance(extra.get("ip"), str) else None
        assert (s.spec_base, s.spec_network, s.spec_ports, s.extra_ip) == (
            spec.get("base"),
            spec.get("network"),
            spec.get("ports"),
            ip,
        )
        assert type(s.extra_ip) is type(ip)
    assert {type(extra.get("ip")) for _, extra in SHAPES} >= {str, bool, int, list, dict}


def test_a_spec_that_is_not_an_object(store: Store) -> None:
    record = store.reserve("odd", spec=None)
    store._connection().execute("UPDATE sandboxes SET spec = '[1, 2]' WHERE id = ?", (record.id,))
    store._connection().commit()
    fast = {s.name: s for s in store.summaries()}["odd"]
    assert fast == {s.name: s for s in _slow(store)}["odd"]
    assert (fast.spec_base, fast.spec_network, fast.spec_ports) == (None, None, None)
    assert ls.shown(fast)["base"] is None


def test_without_json_functions_summaries_come_from_records(
    store: Store, no_json_functions: None
) -> None:
    expected = _slow(store)
    assert store.summaries() == expected
    assert store_module._json_functions is False  # remembered: no second failing query
    assert store.summaries(all=False) == _slow(store, all=False)


def test_other_errors_are_not_taken_for_missing_json_functions(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hcs_sandbox.errors import StoreError

    monkeypatch.setattr(store_module, "_json_functions", True)
    monkeypatch.setattr(store_module, "_SUMMARY_SELECT", "SELECT nonsense FROM nowhere")
    with pytest.raises(StoreError):
        store.summaries()
    assert store_module._json_functions is True


def test_summary_and_shown_agree(store: Store) -> None:
    for record in store.list(kind="sandbox"):
        assert ls.summary(record) == ls.shown(Summary.of(record))
        json.dumps(ls.summary(record))  # JSON-safe


def _run_ls(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from hcs_sandbox.cli.main import main

    code = main(argv)
    return code, capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["ls", "-a", "--json"],
        ["ls", "--json"],
        ["ls", "-a"],
        ["ls", "-a", "-q", "--no-trunc"],
        ["ls", "-a", "--json", "-f", "label=n", "-f", "name=s1"],
        ["ls", "-a", "-f", "state=stopped"],
    ],
)
def test_ls_prints_the_same_without_json_functions(
    cli_env: Any,
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open_store() as s:
        for i, (spec, extra) in enumerate(SHAPES):
            # "stopped"/"error" only: no live record, so no HCS enumeration is needed
            s.reserve(
                f"s{i}",
                spec=spec,
                extra=extra,
                labels={"n": str(i)},
                state=("stopped", "error")[i % 2],
            )
    fast = _run_ls(argv, capsys)
    monkeypatch.setattr(store_module, "_json_functions", False)
    slow = _run_ls(argv, capsys)
    assert fast == slow
    assert fast[0] == 0
    if "-a" in argv and "-f" not in argv:
        assert fast[1].count("\n") >= len(SHAPES)  # every record was listed


def test_long_json_list_is_the_per_item_dumps(store: Store) -> None:
    from hcs_sandbox.cli.output import LONG_JSON_LIST, print_json

    items: list[Any] = [ls.summary(r) for r in store.list(kind="sandbox")]
    items = (items * (LONG_JSON_LIST // len(items) + 2))[: LONG_JSON_LIST + 5]
    items[0] = {**items[0], "odd": Path("/x"), "b": {"z": 1, "a": 2}}  # default=str, nesting
    out = io.StringIO()
    print_json(items, stream=out)
    expected = ",\n".join(json.dumps(i, sort_keys=True, default=str) for i in items)
    assert out.getvalue() == "[\n" + expected + "\n]\n"


@pytest.mark.parametrize("live", [False, True])
def test_ls_process_imports_only_what_it_needs(cli: Any, cli_env: Any, live: bool) -> None:
    """``ls --json``: never the verb helpers (cli.common); with a live record (one HCS
    enumeration) still no logging, dataclasses, queue or weakref (the hcs layer's)."""
    import subprocess
    import sys

    from hcs_sandbox.sandbox.sandbox import Sandbox
    from hcs_sandbox.sandbox.spec import SandboxSpec

    made = Sandbox.create(SandboxSpec(name="alive")) if live else None
    try:
        probe = (
            "import sys\n"
            "from hcs_sandbox.cli.main import main\n"
            "assert main(['ls', '-a', '--json']) == 0\n"
            "names = ('hcs_sandbox.cli.common', 'argparse', 'logging', 'dataclasses', 'queue', "
            "'weakref', 'hcs_sandbox.hcs.system')\n"
            "print('LOADED', [m for m in names if m in sys.modules])\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            env=cli_env.env,
            check=True,
        )
        expected = ["hcs_sandbox.hcs.system"] if live else []
        assert f"LOADED {expected}" in done.stdout, done.stdout + done.stderr
        assert ('"alive"' in done.stdout) is live
    finally:
        if made is not None:
            made.remove(force=True)
            made.close()


@pytest.mark.parametrize("stored", ["{oops", b"\xff\x00", b'{"network": "nat"}'])
def test_a_spec_that_is_not_json_is_listed_without_spec_values(
    store: Store, stored: str | bytes
) -> None:
    """One record whose spec is damaged does not refuse the whole listing (it said "the
    state database is damaged ... move it aside": review RV51 F4); it is listed, so that it
    can be seen and removed, with no spec values, as the slow path lists it."""
    store.reserve("fine", spec={"network": "nat"})
    record = store.reserve("odd", spec={})
    store._connection().execute("UPDATE sandboxes SET spec = ? WHERE id = ?", (stored, record.id))
    store._connection().commit()
    fast = {s.name: s for s in store.summaries()}
    assert {"fine", "odd"} <= set(fast)
    assert fast["odd"] == {s.name: s for s in _slow(store)}["odd"]
    assert (fast["odd"].spec_base, fast["odd"].spec_network, fast["odd"].spec_ports) == (
        None,
        None,
        None,
    )
    assert fast["fine"].spec_network == "nat"


def test_without_json_tree_summaries_come_from_records(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite without json_tree (the table-valued function the spec's numbers are checked
    with): as without JSON functions, from whole records."""
    monkeypatch.setattr(store_module, "_json_functions", True)
    select = store_module._SUMMARY_SELECT
    assert "json_tree(" in select
    monkeypatch.setattr(
        store_module, "_SUMMARY_SELECT", select.replace("json_tree(", "json_tree_missing(")
    )
    assert store.summaries() == _slow(store)
    assert store_module._json_functions is False
