"""The host base's build from the CLI, in separate processes (the stale or unreadable base
image lives on disk, so every process sees it): ``create`` refuses a stale base in one line
with the remedy, goes on with an unreadable one, and ``doctor`` warns with the reason; ``ls``
never loads the reader."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from cli_support import CliEnv, Result

from hcs_sandbox.sim import programdata

Cli = Callable[..., Result]


def test_create_refuses_a_stale_base_image_in_one_line(cli_proc: Cli, cli_env: CliEnv) -> None:
    folder = programdata.set_base_image_build(cli_env.sim, 22631)
    result = cli_proc("create", "--name", "stale")
    assert result.code == 1, result.out + result.err
    errors = [line for line in result.err.splitlines() if "error:" in line]
    assert len(errors) == 1, result.err
    line = errors[0]
    assert "build 22631" in line
    assert f"build {programdata.simulated_windows_build()}" in line
    assert str(folder) in line
    assert "start Windows Sandbox once" in result.err
    assert "HCS_SANDBOX_IGNORE_BASE_BUILD=1" in line  # the way past it, in the one line
    assert cli_proc("ls", "-a", "-q").out.strip() == ""  # nothing half-made


def test_doctor_json_fails_with_both_builds_when_create_would_refuse(
    cli_proc: Cli, cli_env: CliEnv
) -> None:
    folder = programdata.set_base_image_build(cli_env.sim, 22631)
    report = cli_proc("doctor", "--json")
    assert report.code == 1, report.out + report.err
    document = report.json()
    assert document["ok"] is False
    check = next(c for c in document["checks"] if c["name"] == "base_build")
    assert check["status"] == "fail"
    assert check["data"]["host_build"] == programdata.simulated_windows_build()
    assert [(f["path"], f["build"]) for f in check["data"]["folders"]] == [(str(folder), 22631)]
    assert "HCS_SANDBOX_IGNORE_BASE_BUILD=1" in check["fix"]
    human = cli_proc("doctor")
    assert human.code == 1
    assert "[FAIL] base_build:" in human.out


def test_the_override_lets_create_use_a_stale_base_and_doctor_warns(
    cli_proc: Cli, cli_env: CliEnv
) -> None:
    programdata.set_base_image_build(cli_env.sim, 22631)
    override = {"HCS_SANDBOX_IGNORE_BASE_BUILD": "1"}
    created = cli_proc("create", "--name", "overridden", extra_env=override)
    assert created.code == 0, created.out + created.err
    report = cli_proc("doctor", "--json", extra_env=override)
    assert report.code == 0, report.out + report.err
    check = next(c for c in report.json()["checks"] if c["name"] == "base_build")
    assert check["status"] == "warn"
    assert check["data"]["override"] is True
    assert check["data"]["base_build"] == 22631
    assert cli_proc("rm", "-f", "overridden").code == 0


def test_create_goes_on_with_an_unreadable_build_and_doctor_warns(
    cli_proc: Cli, cli_env: CliEnv
) -> None:
    kernel = programdata.make_base_image_unreadable(cli_env.sim, "no-version")
    created = cli_proc("create", "--name", "unknown-build")
    assert created.code == 0, created.out + created.err
    report = cli_proc("doctor", "--json")
    assert report.code == 0, report.out + report.err
    check = next(c for c in report.json()["checks"] if c["name"] == "base_build")
    assert check["status"] == "warn"
    assert str(kernel) in check["detail"]
    assert "no version resource" in check["detail"]
    human = cli_proc("doctor")
    assert "[WARN] base_build:" in human.out
    assert cli_proc("rm", "-f", "unknown-build").code == 0


def test_doctor_says_the_build_matches(cli_proc: Cli) -> None:
    report = cli_proc("doctor", "--json")
    check = next(c for c in report.json()["checks"] if c["name"] == "base_build")
    assert check["status"] == "ok"
    assert check["data"]["base_build"] == programdata.simulated_windows_build()


def test_ls_does_not_load_the_build_check(cli_env: CliEnv) -> None:
    probe = (
        "import sys\n"
        "from hcs_sandbox.cli.main import main\n"
        "assert main(['ls', '--json']) == 0\n"
        "print('LOADED', [m for m in ('hcs_sandbox.sandbox.peversion', "
        "'hcs_sandbox.sandbox.basebuild') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env.env, check=True
    )
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
