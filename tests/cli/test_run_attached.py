"""``hcs-sandbox run``: an attached run dies with its CLI; ``run -d`` outlives it; a .wsb's
mapped folders are linked at their guest paths, end to end in a subprocess."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from cli_support import CliEnv, Result, cli_command, wait_for

Cli = Callable[..., Result]


def _record_states() -> dict[str, str]:
    """name -> record state, from the store only (no HCS handle is opened here: a handle
    held by the test process would keep a terminate-on-close VM alive)."""
    from hcs_sandbox.sandbox.sandbox import Sandbox

    return {sb.name: sb.record.state for sb in Sandbox.list(all=True)}


def _live_systems() -> list[dict[str, object]]:
    """Compute systems owned by hcs-sandbox that HCS still has (enumeration also lets the
    simulator notice handles of dead processes)."""
    from hcs_sandbox.hcs.system import enumerate_compute_systems

    return enumerate_compute_systems({"Owners": ["hcs-sandbox"]})


def test_attached_run_killed_leaves_no_running_vm(cli_env: CliEnv, cli: Cli) -> None:
    proc = subprocess.Popen(
        [*cli_command(), "run", "--name", "att"],
        env=cli_env.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: _record_states().get("att") == "running" or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()[1]
        assert len(_live_systems()) == 1  # it runs while its CLI lives
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    # HCS terminated the VM when the CLI's last handle closed (the process died).
    wait_for(lambda: _live_systems() == [], timeout=10)
    assert _record_states() == {"att": "running"}  # nobody told the record yet
    pruned = cli("prune", "-f", "--json")
    assert pruned.code == 0, pruned.err
    assert any("att" in r for r in pruned.json()["records"]), pruned.out
    assert _record_states() == {}
    sandboxes = cli_env.state / "sandboxes"
    assert not sandboxes.exists() or not any(sandboxes.iterdir())


def test_detached_run_outlives_its_cli(cli_env: CliEnv, cli_proc: Cli, cli: Cli) -> None:
    done = cli_proc("run", "-d", "--name", "det")
    assert done.code == 0, done.err
    assert done.out.strip()  # the id
    # The CLI process has exited; the sandbox runs on.
    systems = _live_systems()
    assert len(systems) == 1
    assert str(systems[0].get("State", "")).lower() == "running"
    assert _record_states() == {"det": "running"}
    pruned = cli("prune", "-f", "--json")
    assert pruned.code == 0, pruned.err
    assert _record_states() == {"det": "running"}  # prune never touches a live sandbox
    removed = cli("rm", "-f", "det")
    assert removed.code == 0, removed.err
    assert _live_systems() == []


def test_wsb_mapped_folders_through_run(cli_env: CliEnv, cli_proc: Cli, tmp_path: Path) -> None:
    source = tmp_path / "tools"
    out = tmp_path / "results"
    source.mkdir()
    out.mkdir()
    (source / "in.txt").write_bytes(b"tool data\r\n")
    wsb = tmp_path / "tools.wsb"
    wsb.write_text(
        "<Configuration><Networking>Disable</Networking><MappedFolders>"
        f"<MappedFolder><HostFolder>{source}</HostFolder>"
        "<SandboxFolder>C:\\tools</SandboxFolder><ReadOnly>true</ReadOnly></MappedFolder>"
        f"<MappedFolder><HostFolder>{out}</HostFolder>"
        "<SandboxFolder>C:\\results</SandboxFolder><ReadOnly>false</ReadOnly></MappedFolder>"
        "</MappedFolders></Configuration>",
        encoding="utf-8",
    )
    done = cli_proc(
        "run", "--rm", str(wsb), "--", "cmd", "/c", "copy", "C:\\tools\\in.txt", "C:\\results\\"
    )
    assert done.code == 0, done.err
    assert (out / "in.txt").read_bytes() == b"tool data\r\n"
    denied = cli_proc("run", "--rm", str(wsb), "--", "cmd", "/c", "del", "C:\\tools\\in.txt")
    assert denied.code != 0
    assert (source / "in.txt").exists()
    assert cli_proc("ls", "-a", "-q").out.strip() == ""
