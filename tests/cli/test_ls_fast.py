"""The fast paths of the CLI: ``ls`` from records (no Sandbox objects), one HCS
enumeration, and parsers built for the chosen verb only."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from cli_support import CliEnv, Result

from hcs_sandbox.cli.ls import summary
from hcs_sandbox.cli.main import VERBS, build_parser, chosen_verb

Cli = Callable[..., Result]


def test_summary_is_exactly_sandbox_to_dict(cli: Cli) -> None:
    from hcs_sandbox.sandbox.sandbox import Sandbox
    from hcs_sandbox.sandbox.spec import SandboxSpec
    from hcs_sandbox.sandbox.store import open_store

    made = Sandbox.create(SandboxSpec(name="alpha", labels={"team": "qa"}))
    try:
        with open_store() as store:
            record = store.get("alpha")
            store.update(record.id, merge_extra={"ip": "172.20.0.5"})
            record = store.get("alpha")
        assert summary(record) == Sandbox(record, made._state_dir).to_dict()
        assert summary(record)["ip"] == "172.20.0.5"
    finally:
        made.remove(force=True)
        made.close()


def test_ls_marks_a_record_whose_system_is_gone_stopped(cli: Cli) -> None:
    from hcs_sandbox.hcs.system import ComputeSystem
    from hcs_sandbox.sandbox.sandbox import Sandbox
    from hcs_sandbox.sandbox.spec import SandboxSpec

    keep = Sandbox.create(SandboxSpec(name="keep"))
    gone = Sandbox.create(SandboxSpec(name="gone"))
    try:
        keep.start()
        gone.start()
        gone.close()  # our handle would keep the exited system listed
        with ComputeSystem.open(gone.system_id) as system:
            system.terminate_and_close(timeout=30)
        listed = {d["name"]: d["state"] for d in cli("ls", "-a", "--json").json()}
        assert listed == {"keep": "running", "gone": "stopped"}
        assert [d["name"] for d in cli("ls", "--json").json()] == ["keep"]
    finally:
        for sb in (keep, gone):
            sb.remove(force=True)
            sb.close()


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["ls", "--json"], "ls"),
        (["ps"], "ls"),
        (["--simulator", "--state-dir", "ls", "rm", "x"], "rm"),
        (["--state-dir=/x", "stop", "a"], "stop"),
        (["--help"], None),
        (["--version", "ls"], None),
        ([], None),
        (["nosuchverb"], None),
        (["-h", "ls"], None),
    ],
)
def test_chosen_verb(argv: list[str], verb: str | None) -> None:
    assert chosen_verb(argv) == verb


def test_one_verb_parser_parses_like_the_full_one() -> None:
    argv = ["ls", "-a", "-q", "--filter", "label=x", "--json", "--state-dir", "/s"]
    full = vars(build_parser().parse_args(argv))
    one = vars(build_parser(only="ls").parse_args(argv))
    assert one == full


def test_unknown_verb_lists_every_verb(cli: Cli) -> None:
    result = cli("nosuchverb")
    assert result.code == 2
    assert "invalid choice" in result.err
    for verb, _module in VERBS:
        assert verb in result.err


def test_ls_process_does_not_import_the_heavy_modules(cli_env: CliEnv) -> None:
    """``ls`` on an empty store: no typing, shutil, ctypes, logging, sandbox layer, doctor."""
    probe = (
        "import sys\n"
        "from hcs_sandbox.cli.main import main\n"
        "assert main(['ls', '--json']) == 0\n"
        "heavy = [m for m in ('typing', 'shutil', 'ctypes', 'logging', "
        "'hcs_sandbox.sandbox.sandbox', 'hcs_sandbox.sandbox.doctor') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env.env, check=True
    )
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr
