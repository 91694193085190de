"""``create``/``run`` refuse a mapped folder that is a system folder, ``/`` or the state
directory (or holds it), from ``--map`` or a ``.wsb``, read-only or not: one error line
naming the folder and the remedy, exit 2, nothing made.  ``plan`` applies the same rule to
the paths as written.  (The CLI runs in a subprocess, as users start it.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import CliEnv, Result

Cli = Callable[..., Result]

WSB = """<Configuration>
  <Networking>Disable</Networking>
  <MappedFolders>
    <MappedFolder>
      <HostFolder>{host}</HostFolder>
      <SandboxFolder>C:\\tools</SandboxFolder>
      <ReadOnly>false</ReadOnly>
    </MappedFolder>
  </MappedFolders>
</Configuration>
"""


def _one_error(result: Result, *needles: str) -> str:
    assert result.code == 2, (result.code, result.out, result.err)
    errors = [line for line in result.err_lines if line.startswith("hcs-sandbox: error:")]
    assert len(errors) == 1, result.err
    assert "Traceback" not in result.err
    assert "cannot be mapped" in errors[0], errors[0]
    for needle in needles:
        assert needle in result.err, result.err
    return errors[0]


def _nothing_made(cli_proc: Cli, env: CliEnv) -> None:
    listed = cli_proc("ls", "-a", "--json")
    assert listed.code == 0, listed.err
    assert listed.json() == []
    sandboxes = env.state / "sandboxes"
    assert not sandboxes.exists() or not any(sandboxes.iterdir())


@pytest.mark.parametrize(
    ("mapping", "needle"),
    [
        ("/:C:\\x", "/ is the root"),
        ("/etc:C:\\etc:rw", "/etc"),
        ("/etc:C:\\etc", "/etc"),  # read-only too, as at runtime
    ],
)
def test_create_refuses_system_folders(
    cli_proc: Cli, cli_env: CliEnv, mapping: str, needle: str
) -> None:
    _one_error(cli_proc("create", "--map", mapping), needle, "map a folder of your own")
    _nothing_made(cli_proc, cli_env)


def test_create_and_run_refuse_the_state_dir_and_its_parent(cli_proc: Cli, cli_env: CliEnv) -> None:
    cli_env.state.mkdir(parents=True, exist_ok=True)
    state = str(cli_env.state)
    parent = str(cli_env.state.parent)
    _one_error(cli_proc("create", "--map", f"{state}:C:\\s:rw"), state, "state directory")
    _one_error(cli_proc("create", "--map", f"{state}/sandboxes:C:\\s"), "state directory")
    _one_error(cli_proc("run", "-d", "--map", f"{parent}:C:\\s:rw"), parent, "contains")
    _nothing_made(cli_proc, cli_env)


def test_state_dir_option_is_the_one_protected(cli_proc: Cli, cli_env: CliEnv) -> None:
    """``--state-dir`` names the store being used: that folder is the protected one."""
    other = cli_env.root / "other-state"
    other.mkdir()
    result = cli_proc("create", "--state-dir", str(other), "--map", f"{other}:C:\\s")
    _one_error(result, str(other), "state directory")


def test_wsb_mapping_a_protected_folder(cli_proc: Cli, cli_env: CliEnv) -> None:
    cli_env.state.mkdir(parents=True, exist_ok=True)
    for host in ("/etc", str(cli_env.state)):
        wsb = cli_env.root / "x.wsb"
        wsb.write_text(WSB.format(host=host), encoding="utf-8")
        for verb in ("create", "run"):
            line = _one_error(cli_proc(verb, str(wsb)), host)
            assert f"{wsb}:5:" in line, line
    _nothing_made(cli_proc, cli_env)


def test_plan_refuses_a_system_folder_as_written(cli_proc: Cli, tmp_path: Path) -> None:
    _one_error(cli_proc("plan", "--map", "C:\\Windows:C:\\w"), "C:\\Windows")
    _one_error(cli_proc("plan", "--map", "/etc:C:\\e:rw"), "/etc")
    # Another machine's folder (not here): plan does not ask whether it exists.
    ok = cli_proc("plan", "--map", "C:\\Users\\me\\tools:C:\\t", "--json")
    assert ok.code == 0, ok.err


def test_an_ordinary_folder_is_still_accepted(cli_proc: Cli, cli_env: CliEnv) -> None:
    share = cli_env.root / "share"
    share.mkdir()
    made = cli_proc("create", "--name", "fine", "--map", f"{share}:C:\\s:rw")
    assert made.code == 0, made.err
    assert cli_proc("rm", "-f", "fine").code == 0
