"""Fixtures for CLI tests: a private simulator + state dir, and ways to run the CLI.

``cli`` runs ``main()`` in-process (fast); ``cli_proc`` runs ``python -m hcs_sandbox`` in a
new process with ``HCS_SANDBOX_SIMULATOR=<tmp>/sim`` and ``HCS_SANDBOX_STATE_DIR=<tmp>/state``
(both point at the same directories, so in-process and subprocess calls see the same
sandboxes).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import CliEnv, Result, cli_command


@pytest.fixture(scope="session")
def pycache_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Subprocesses share compiled bytecode here (the source tree stays clean), so each one
    does not recompile the package: a CLI start costs what it costs users."""
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture
def cli_env(
    tmp_path: Path, sim_state_dir: Path, monkeypatch: pytest.MonkeyPatch, pycache_prefix: Path
) -> CliEnv:
    """The root conftest's simulator directory (also for subprocesses) and a state dir."""
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCS_SANDBOX_")}
    env["HCS_SANDBOX_SIMULATOR"] = str(sim_state_dir)
    env["HCS_SANDBOX_STATE_DIR"] = str(state)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache_prefix)
    for key in [k for k in os.environ if k.startswith("HCS_SANDBOX_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HCS_SANDBOX_STATE_DIR", str(state))
    return CliEnv(tmp_path, sim_state_dir, state, env)


@pytest.fixture
def cli(cli_env: CliEnv, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    from hcs_sandbox.cli.main import main

    def run(*argv: str) -> Result:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli_proc(cli_env: CliEnv) -> Callable[..., Result]:
    def run(*argv: str, extra_env: dict[str, str] | None = None, timeout: float = 60) -> Result:
        env = dict(cli_env.env)
        env.update(extra_env or {})
        done = subprocess.run(
            [*cli_command(), *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def web(cli: Callable[..., Result]) -> str:
    """A running sandbox named ``web``, made through the CLI (``run -d``)."""
    assert cli("run", "-d", "--name", "web").code == 0
    return "web"
