"""QA F2 end to end, each verb in its own process: ``create``/``run``/``plan`` refuse a name
with the shape of a sandbox id (and only that: review RV-names), and what ``ls -q`` prints
reaches the sandbox it came from, also when a record was named like it before that rule (it
stays reachable, removable, and works in every verb: review RV-names H1)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import CliEnv, Result

Cli = Callable[..., Result]


def _rename_as_main_would(cli_env: CliEnv, name: str, new: str) -> str:
    """Give the record ``name`` the name ``new`` in its row AND its stored spec: what main's
    ``create --name NEW`` wrote (the spec's name is the only part of it the name changes;
    the documents do not depend on it).  Returns the record's id."""
    from hcs_sandbox.sandbox.store import open_store

    with open_store(cli_env.state) as store:
        record = store.get(name)
        spec = dict(record.spec)
        assert spec["name"] == name
        store.update(record.id, name=new, spec={**spec, "name": new})
    return record.id


def _states(cli_proc: Cli) -> dict[str, str]:
    listed = cli_proc("ls", "-a", "--json")
    assert listed.code == 0, listed.err
    return {o["name"]: o["state"] for o in listed.json()}


@pytest.mark.parametrize("verb", ["create", "run", "plan"])
def test_a_name_that_reads_as_an_id_is_refused(cli_proc: Cli, verb: str) -> None:
    assert cli_proc("run", "-d", "--name", "hello").code == 0
    short = cli_proc("ls", "-q", "--filter", "name=hello").out.strip()
    assert len(short) == 12
    for name in (short, cli_proc("ls", "-q", "--no-trunc").out.strip()):
        refused = cli_proc(verb, *(["-d"] if verb == "run" else []), "--name", name)
        assert refused.code == 2, refused.err
        assert len(refused.err_lines) == 1, refused.err
        assert "reads as a sandbox id" in refused.err
        assert f"'sb-{name}'" in refused.err  # the remedy
        assert "invalid --name" in refused.err  # (the flag, as for any bad flag value)
        assert "Traceback" not in refused.err
    assert set(_states(cli_proc)) == {"hello"}
    assert cli_proc("rm", "-f", "hello").code == 0


def test_ls_q_output_reaches_its_sandbox_past_a_record_named_so(
    cli_proc: Cli, cli_env: CliEnv
) -> None:
    assert cli_proc("run", "-d", "--name", "hello").code == 0
    short = cli_proc("ls", "-q", "--filter", "name=hello").out.strip()
    made = cli_proc("create", "--name", "legacy")
    assert made.code == 0, made.err
    # A record named like hello's short id, as one made before the rule would be.
    _rename_as_main_would(cli_env, "legacy", short)
    assert cli_proc("ls", "-q").out.split() == [short]  # only hello runs
    stopped = cli_proc("stop", *cli_proc("ls", "-q").out.split())
    assert stopped.code == 0, stopped.err
    assert _states(cli_proc) == {"hello": "stopped", short: "created"}
    # The record named so: reachable by its own id, and removable.
    own_id = cli_proc("ls", "-aq", "--filter", f"name={short}").out.strip()
    assert own_id != short
    assert cli_proc("inspect", own_id).json()[0]["name"] == short
    removed = cli_proc("rm", "-f", short)  # the id prefix first: hello
    assert removed.code == 0, removed.err
    assert set(_states(cli_proc)) == {short}
    # No id starts with it any more: now the name reaches the record named so.
    assert cli_proc("rm", "-f", short).code == 0
    assert _states(cli_proc) == {}


def test_only_names_with_the_shape_of_an_id_are_refused(cli_proc: Cli) -> None:
    """Review RV-names: dates, build numbers and short hex names are names, as in docker;
    8 or more hex digits as an id starts (``12345678``, ``deadbeef``) are refused."""
    for name in ("2024-01-01", "build-1234", "1234567", "cafe", "123456789"):
        made = cli_proc("create", "--name", name)
        assert made.code == 0, (name, made.err)
        assert cli_proc("inspect", name).json()[0]["name"] == name
    for name in ("12345678", "deadbeef"):
        refused = cli_proc("create", "--name", name)
        assert refused.code == 2, (name, refused.err)
        assert len(refused.err_lines) == 1, refused.err
    assert sorted(_states(cli_proc)) == sorted(
        ["2024-01-01", "build-1234", "1234567", "cafe", "123456789"]
    )
    for name in _states(cli_proc):
        assert cli_proc("rm", "-f", name).code == 0


def test_a_sandbox_named_so_before_the_rule_works_in_every_verb(
    cli_proc: Cli, cli_env: CliEnv
) -> None:
    """Review RV-names H1: its stored spec carries the id-like name as main wrote it; every
    verb works on it, with no damage report, and it is named as a port's holder."""
    made = cli_proc(
        "run", "-d", "--persistent", "--name", "keep", "--network", "nat", "-p", "7676:76"
    )
    assert made.code == 0, made.err
    own_id = _rename_as_main_would(cli_env, "keep", "0badcafe")

    def ok(*argv: str) -> Result:
        done = cli_proc(*argv)
        assert done.code == 0, (argv, done.err)
        assert "damaged" not in done.err, (argv, done.err)
        assert "not valid" not in done.err, (argv, done.err)
        return done

    ok("exec", "0badcafe", "--", "cmd", "/c", "ver")
    listed_ports = ok("port", "0badcafe", "--json").json()["ports"]
    assert [p["host_port"] for p in listed_ports] == [7676]
    ok("port", "0badcafe", "-p", "7677:77")
    shown = ok("inspect", "0badcafe").json()[0]
    assert shown["id"] == own_id
    assert shown["spec"]["name"] == "0badcafe"
    assert "damaged" not in shown or not shown["damaged"]
    listed = ok("ls", "-a", "--json").json()
    assert [(o["name"], [p["host_port"] for p in o["ports"]]) for o in listed] == [
        ("0badcafe", [7676, 7677])
    ]
    # Another sandbox's -p names it as the holder (its spec is read: not skipped).
    taken = cli_proc("create", "--name", "pz", "--network", "nat", "-p", "7676:76")
    assert taken.code == 1, taken.err
    assert "(by sandbox '0badcafe')" in taken.err, taken.err
    ok("stop", "0badcafe")
    ok("start", "0badcafe")
    ok("exec", own_id[:12], "--", "cmd", "/c", "ver")
    ok("rm", "-f", "0badcafe")
    assert _states(cli_proc) == {}
