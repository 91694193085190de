"""The lifecycle log: ``<sandbox dir>/sandbox.log``, one line per step, read by ``logs()``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hcs_sandbox.sandbox.sandbox import LOG_NAME, Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec


def test_lines_go_to_the_folder_root_without_a_logs_folder(sim: Any) -> None:
    sb = Sandbox.create(SandboxSpec(name="logged"))
    try:
        sb.start()
        sb.stop(timeout=5)
        directory = Path(sb.directory)
        lines = (directory / LOG_NAME).read_text(encoding="utf-8").splitlines()
        assert [line.split(" ", 1)[1] for line in lines] == ["created", "started", "stopped"]
        assert all(line.split(" ", 1)[0].endswith("Z") for line in lines)
        assert not (directory / "logs").exists()  # no folder made just for the log
        assert sb.logs().splitlines() == lines
    finally:
        sb.remove(force=True)
        sb.close()


def test_no_line_and_no_folder_once_the_sandbox_folder_is_gone(sim: Any) -> None:
    sb = Sandbox.create(SandboxSpec(name="gone"))
    directory = Path(sb.directory)
    try:
        sb.remove(force=True)
        assert not directory.exists()
        sb._log_line("late")  # e.g. a logon thread finishing after remove
        assert not directory.exists()
    finally:
        sb.close()
