"""Records made through another HCS host (another simulator directory here; Windows and the
simulator sharing %ProgramData%\\hcs-sandbox on a Windows machine) are left alone: prune
used to take their sandboxes for gone and remove their records (review RV7a, finding 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import CliEnv, Result

from hcs_sandbox import errors
from hcs_sandbox.native.loader import use_simulator
from hcs_sandbox.sandbox.sandbox import HOST_KEY, Sandbox
from hcs_sandbox.sandbox.store import open_store

Proc = Callable[..., Result]


def _records(state: Path) -> dict[str, dict[str, object]]:
    with open_store(state) as store:
        return {r.name: dict(r.extra) for r in store.list(all=True)}


def test_another_simulator_directory_leaves_the_sandbox_alone(
    cli_env: CliEnv, cli_proc: Proc, tmp_path: Path
) -> None:
    assert cli_proc("run", "-d", "--name", "web").code == 0
    tag = _records(cli_env.state)["web"][HOST_KEY]
    assert tag == "simulator:" + str(cli_env.sim)
    elsewhere = {"HCS_SANDBOX_SIMULATOR": str(tmp_path / "other-sim")}

    pruned = cli_proc("prune", "-f", "--json", extra_env=elsewhere)
    assert pruned.code == 0, pruned.err
    report = json.loads(pruned.out)
    assert report["records"] == []
    assert report["files"] == []
    assert [item.split(" ")[0] for item in report["other_host"]] == ["web"]
    assert "web" in _records(cli_env.state)

    refused = cli_proc("rm", "-f", "web", extra_env=elsewhere)
    assert refused.code == 2
    assert "another HCS host" in refused.err
    assert "Traceback" not in refused.err

    # Its own host still sees it running, and removes it.
    shown = json.loads(cli_proc("inspect", "web", "--json").out)
    assert shown[0]["state"] == "running"
    assert cli_proc("rm", "-f", "web").code == 0
    assert _records(cli_env.state) == {}


def test_the_api_does_not_list_or_get_another_hosts_sandbox(
    cli_env: CliEnv, cli_proc: Proc, tmp_path: Path
) -> None:
    assert cli_proc("run", "-d", "--name", "far").code == 0
    use_simulator(tmp_path / "other-sim")  # this process: another simulated host
    try:
        assert [sb.name for sb in Sandbox.list(state_dir=cli_env.state)] == []
        with pytest.raises(errors.SandboxNotFoundError, match="another HCS host") as caught:
            Sandbox.get("far", state_dir=cli_env.state)
        assert isinstance(caught.value, errors.OtherHostSandboxError)
    finally:
        use_simulator(cli_env.sim)
    assert cli_proc("rm", "-f", "far").code == 0


def test_records_without_the_tag_are_managed_as_before(cli_env: CliEnv, cli_proc: Proc) -> None:
    # A record made before the tag existed: an ephemeral one whose system is gone is pruned.
    with open_store(cli_env.state) as store:
        store.reserve("old", state="running")
    pruned = json.loads(cli_proc("prune", "-f", "--json").out)
    assert [item.split(" ")[0] for item in pruned["records"]] == ["old"]
    assert pruned["other_host"] == []


def test_ls_shows_another_hosts_sandbox_as_recorded_and_marked(
    cli_env: CliEnv, cli_proc: Proc, tmp_path: Path
) -> None:
    """Review RV9b: ls from another host showed a running sandbox as 'stopped' (its system
    cannot be seen from there) and plain ls hid it."""
    assert cli_proc("run", "-d", "--name", "web").code == 0
    elsewhere = {"HCS_SANDBOX_SIMULATOR": str(tmp_path / "other-sim")}
    try:
        (shown,) = cli_proc("ls", "--json", extra_env=elsewhere).json()
        assert shown["state"] == "running"
        assert shown["other_host"] == "simulator:" + str(cli_env.sim)
        table = cli_proc("ls", extra_env=elsewhere).out
        assert "running (other host)" in table
        (own,) = cli_proc("ls", "--json").json()
        assert "other_host" not in own
        taken = cli_proc("run", "-d", "--name", "web", extra_env=elsewhere)
        assert taken.code == 2
        assert "made through another HCS host" in taken.err
        assert "rm web" not in taken.err  # that rm would be refused from there
    finally:
        cli_proc("rm", "-f", "web")
