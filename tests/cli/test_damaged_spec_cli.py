"""``start`` of a sandbox whose stored spec is damaged, in a separate process: one line
with the remedy, exit 1, nothing started; the remedy works (review RV49 F1)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from cli_support import CliEnv, Result


def _damage(cli_env: CliEnv, name: str, text: str) -> None:
    """Write ``text`` as the stored spec of sandbox ``name`` (a hand edit)."""
    conn = sqlite3.connect(cli_env.state / "state.db")
    try:
        conn.execute("UPDATE sandboxes SET spec = ? WHERE name = ?", (text, name))
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize("text", ["{oops", "[" * 100_000])
def test_start_of_a_damaged_spec_says_so_and_starts_nothing(
    cli_proc: Callable[..., Result], cli_env: CliEnv, text: str
) -> None:
    assert cli_proc("create", "--name", "dmg").code == 0
    _damage(cli_env, "dmg", text)
    started = cli_proc("start", "dmg")
    assert started.code == 1
    errors = [line for line in started.err.splitlines() if line.startswith("hcs-sandbox:")]
    assert len(errors) == 1
    assert "the spec of sandbox 'dmg' in the state database is damaged" in errors[0]
    assert "hcs-sandbox rm -f" in errors[0]
    assert "Traceback" not in started.err
    conn = sqlite3.connect(cli_env.state / "state.db")
    try:
        assert conn.execute("SELECT state FROM sandboxes WHERE name = 'dmg'").fetchall() == [
            ("created",)
        ]
    finally:
        conn.close()
    listed = cli_proc("ls", "-a")  # the damaged record is listed (review RV51 F4)
    assert listed.code == 0
    assert "dmg" in listed.out
    assert cli_proc("rm", "-f", "dmg").code == 0
    assert "nothing to prune" in cli_proc("prune", "--dry-run").out


@pytest.mark.parametrize("text", ['{"ports": 5}', '{"base": "x"}'])
def test_ls_lists_a_spec_with_values_of_the_wrong_shape(
    cli_proc: Callable[..., Result], cli_env: CliEnv, text: str
) -> None:
    """A stored spec whose ports or base have the wrong shape (a hand edit) is listed, in
    the table and as JSON, not an internal error (review RV52 F2)."""
    assert cli_proc("create", "--name", "odd").code == 0
    _damage(cli_env, "odd", text)
    for argv in (("ls", "-a"), ("ls", "-a", "--json")):
        listed = cli_proc(*argv)
        assert listed.code == 0, listed.err
        assert "odd" in listed.out
    assert cli_proc("rm", "-f", "odd").code == 0
