"""Types shared by the CLI tests and their fixtures (conftest.py)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def err_lines(self) -> list[str]:
        return [
            line
            for line in self.err.splitlines()
            if line.strip() and not line.startswith("note: simulated")
        ]


@dataclass
class CliEnv:
    root: Path
    sim: Path
    state: Path
    env: dict[str, str]


def cli_command() -> list[str]:
    """The CLI as users start it: ``python -m hcs_sandbox``."""
    return [sys.executable, "-m", "hcs_sandbox"]


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``predicate`` every 50 ms until it is true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")
