"""QA analyst F1 through the CLI, each verb its own process: ``prune -f`` under a new, empty
(or mistyped) state directory used to terminate every running sandbox of the other state
directories on the same HCS host and delete their endpoints.  Now it leaves them alone,
says so, exits 0, and still prunes its own true orphans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from cli_support import CliEnv, Result

Proc = Callable[..., Result]


def _other(mark: str, mine: str) -> str:
    """The line's head for what another state directory made (its mark, this one's, and
    how to see a state directory's: review RV-scope F4)."""
    return (
        f"left alone (made in another state directory: it carries mark {mark}, this one's is "
        f"{mine}; 'hcs-sandbox prune --dry-run --json --state-dir DIR' shows the state_mark "
        "of an existing state directory DIR)"
    )


def _kill_mid_create(cli_env: CliEnv, state: Path) -> str:
    """A sandbox create in ``state`` killed (os._exit, no rollback) right after its compute
    system was made: its id (the record stays ``creating``)."""
    code = textwrap.dedent(
        """
        import os, sys
        from hcs_sandbox.sandbox.sandbox import Sandbox
        from hcs_sandbox.sandbox.spec import SandboxSpec
        def progress(text):
            if text == "created":
                os._exit(9)
        Sandbox.create(SandboxSpec(name="killed", network="nat"), progress=progress)
        os._exit(0)
        """
    )
    env = dict(cli_env.env)
    env["HCS_SANDBOX_STATE_DIR"] = str(state)
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 9, done.stderr
    from hcs_sandbox.sandbox.store import open_store

    with open_store(state) as store:
        (record,) = store.list(all=True)
    assert record.state == "creating"
    return record.id


def test_prune_in_an_empty_state_dir_leaves_another_state_dirs_sandboxes_alone(
    cli_env: CliEnv, cli_proc: Proc, tmp_path: Path
) -> None:
    # State directory B (the fixture's): a running persistent sandbox and a NAT one.
    assert cli_proc("run", "-d", "--name", "victimvm", "--persistent").code == 0
    assert cli_proc("exec", "victimvm", "--", "cmd", "/c", "echo work>C:\\work.txt").code == 0
    assert cli_proc("run", "-d", "--name", "netvm", "--network", "nat").code == 0
    shown = {s["name"]: s for s in json.loads(cli_proc("inspect", "victimvm", "netvm").out)}
    systems = sorted(s["system_id"] for s in shown.values())
    endpoint_ids = shown["netvm"]["endpoints"]
    assert len(endpoint_ids) == 1

    # State directory A: new and empty (a typo), with one true orphan of its own: a create
    # killed after its compute system and endpoint were made.
    empty = tmp_path / "stateA"
    killed = _kill_mid_create(cli_env, empty)
    in_a = {"HCS_SANDBOX_STATE_DIR": str(empty)}

    dry = cli_proc("prune", "--dry-run", "--json", extra_env=in_a)
    assert dry.code == 0, dry.err
    planned = dry.json()
    assert planned["systems"] == []  # the killed create's record names its system
    assert [r.split(" ")[0] for r in planned["records"]] == ["killed"]
    assert sorted(planned["other_state_dir_systems"]) == systems
    assert planned["other_state_dir_endpoints"] == endpoint_ids
    # Each state directory's mark, as its own prune --dry-run --json shows it.
    mark_b = cli_proc("prune", "--dry-run", "--json").json()["state_mark"]
    mark_a = planned["state_mark"]
    assert mark_a != mark_b
    assert all(len(m) == 12 and int(m, 16) >= 0 for m in (mark_a, mark_b))
    assert planned["other_state_dir_marks"] == dict.fromkeys([*systems, *endpoint_ids], mark_b)

    pruned = cli_proc("prune", "-f", extra_env=in_a)
    assert pruned.code == 0, pruned.err
    assert pruned.err_lines == []
    lines = pruned.out.splitlines()
    assert f"removed record: killed ({killed})" in lines
    head = _other(mark_b, mark_a)
    left = sorted(line for line in lines if line.startswith("left alone"))
    assert left == sorted(
        [
            *(f"{head}: compute system {s}" for s in systems),
            f"{head}: endpoint {endpoint_ids[0]}",
        ]
    )
    assert not any(s in line for s in systems for line in lines if line.startswith("removed"))

    # B's sandboxes run on, with their endpoint and their files.
    listed = {s["name"]: s["state"] for s in json.loads(cli_proc("ls", "-a", "--json").out)}
    assert listed == {"victimvm": "running", "netvm": "running"}
    read = cli_proc("exec", "victimvm", "--", "cmd", "/c", "type C:\\work.txt")
    assert read.code == 0, read.err
    assert read.out.strip() == "work"
    again = json.loads(cli_proc("inspect", "netvm").out)[0]
    assert again["endpoints"] == endpoint_ids
    from hcs_sandbox.hcs import network

    assert endpoint_ids[0] in network.enumerate_endpoints(None)

    # A's prune found nothing more, and B's own prune nothing at all.
    assert cli_proc("prune", "-f", "--json", extra_env=in_a).json()["systems"] == []
    own = cli_proc("prune", "-f")
    assert own.code == 0, own.err
    assert "nothing to prune" in own.out.splitlines(), own.out
    assert cli_proc("rm", "-f", "victimvm", "netvm").code == 0
    assert cli_proc("prune", "-f", "--json", extra_env=in_a).json()["other_state_dir_systems"] == []
    assert not os.listdir(empty / "sandboxes")
