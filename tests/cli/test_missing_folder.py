"""A mapped folder that does not exist: one line, exit 2, and nothing made."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cli_support import CliEnv, Result

Cli = Callable[..., Result]

WSB = """<Configuration>
  <Networking>Disable</Networking>
  <MappedFolders>
    <MappedFolder>
      <HostFolder>{host}</HostFolder>
      <SandboxFolder>C:\\tools</SandboxFolder>
    </MappedFolder>
  </MappedFolders>
</Configuration>
"""


def _nothing_made(cli: Cli, env: CliEnv) -> None:
    assert cli("ls", "-a", "--json").json() == []
    sandboxes = env.state / "sandboxes"
    assert not sandboxes.exists() or not any(sandboxes.iterdir())


def test_wsb_host_folder_missing_names_file_and_line(
    cli: Cli, cli_env: CliEnv, tmp_path: Path
) -> None:
    wsb = tmp_path / "tools.wsb"
    wsb.write_text(WSB.format(host=tmp_path / "not-there"), encoding="utf-8")
    for verb in ("run", "create"):
        result = cli(verb, str(wsb))
        assert result.code == 2, result.err
        errors = [line for line in result.err_lines if line.startswith("hcs-sandbox: error:")]
        assert len(errors) == 1, result.err
        assert f"{wsb}:5:" in errors[0]
        assert "does not exist" in errors[0]
        assert "Traceback" not in result.err
    _nothing_made(cli, cli_env)


def test_map_flag_host_folder_missing(cli: Cli, cli_env: CliEnv, tmp_path: Path) -> None:
    result = cli("run", "-d", "--map", f"{tmp_path / 'absent'}:C:\\data")
    assert result.code == 2, result.err
    assert "absent" in result.err
    assert "does not exist" in result.err
    _nothing_made(cli, cli_env)


def test_plan_does_not_check_host_folders(cli: Cli, tmp_path: Path) -> None:
    wsb = tmp_path / "elsewhere.wsb"
    wsb.write_text(WSB.format(host="C:\\Users\\someone\\tools"), encoding="utf-8")
    result = cli("plan", str(wsb), "--json")
    assert result.code == 0, result.err


def test_missing_base_path_is_bad_input(cli: Cli, cli_env: CliEnv, tmp_path: Path) -> None:
    """A ``--base`` path that does not exist is the user's input: exit 2 (not 1, an HCS or
    storage failure), one line, nothing made."""
    for base in (f"vhdx:{tmp_path / 'missing.vhdx'}", f"image:{tmp_path / 'no-image'}"):
        for verb in ("run", "create"):
            result = cli(verb, "--base", base)
            assert result.code == 2, result.err
            errors = [line for line in result.err_lines if line.startswith("hcs-sandbox: error:")]
            assert len(errors) == 1, result.err
            assert "cannot be used" in errors[0]
    _nothing_made(cli, cli_env)
