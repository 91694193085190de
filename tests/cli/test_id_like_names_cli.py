"""QA F2 end to end, each verb in its own process: ``create``/``run`` refuse a name that reads
as a sandbox id, and what ``ls -q`` prints reaches the sandbox it came from, also when a
record was named like it before that rule (it stays reachable and removable)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import CliEnv, Result

Cli = Callable[..., Result]


def _states(cli_proc: Cli) -> dict[str, str]:
    listed = cli_proc("ls", "-a", "--json")
    assert listed.code == 0, listed.err
    return {o["name"]: o["state"] for o in listed.json()}


@pytest.mark.parametrize("verb", ["create", "run"])
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
        assert "Traceback" not in refused.err
    assert set(_states(cli_proc)) == {"hello"}
    assert cli_proc("rm", "-f", "hello").code == 0


def test_ls_q_output_reaches_its_sandbox_past_a_record_named_so(
    cli_proc: Cli, cli_env: CliEnv
) -> None:
    from hcs_sandbox.sandbox.store import open_store

    assert cli_proc("run", "-d", "--name", "hello").code == 0
    short = cli_proc("ls", "-q", "--filter", "name=hello").out.strip()
    made = cli_proc("create", "--name", "legacy")
    assert made.code == 0, made.err
    # A record named like hello's short id, as one made before the rule would be.
    with open_store(cli_env.state) as store:
        store.update(store.get("legacy").id, name=short)
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
