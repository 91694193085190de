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


@pytest.mark.parametrize(
    "number",
    [
        "1e999",
        "-1E400",
        "1" + "0" * 400 + ".5",
        # Integers past Python's str limit (sys.int_max_str_digits, 4,300 digits by
        # default): ls showed them as sound (review RV62 F4).
        "1" + "0" * 5000,
        "-" + "9" * 4301,
    ],
)
def test_ls_shows_a_spec_holding_a_number_no_float_holds_as_damaged(
    cli_proc: Callable[..., Result], cli_env: CliEnv, number: str
) -> None:
    """A spec holding a number no float holds is damaged (inspect: spec null): ls showed
    its network and base from it all the same (sqlite's json_valid accepts it); now as
    any damaged spec, unknown (null), as the same listing built from whole records."""
    for name in ("odd", "bad"):
        assert cli_proc("create", "--name", name, "--network", "nat").code == 0
    sound = {item["name"]: item for item in cli_proc("ls", "-a", "--json").json()}["odd"]
    assert (sound["network"], sound["base"]) == ("nat", "host")
    conn = sqlite3.connect(cli_env.state / "state.db")
    try:
        (spec,) = conn.execute("SELECT spec FROM sandboxes WHERE name = 'odd'").fetchone()
    finally:
        conn.close()
    _damage(cli_env, "odd", spec.replace('"memory_mb":', f'"big":{number},"memory_mb":', 1))
    _damage(cli_env, "bad", "{oops")
    inspected = cli_proc("inspect", "odd")
    assert inspected.code == 0, inspected.err
    (info,) = inspected.json()
    assert info["spec"] is None
    assert info["damaged"]["spec"].startswith("not JSON (")
    listed = cli_proc("ls", "-a", "--json")
    assert listed.code == 0, listed.err
    shown = {item["name"]: item for item in listed.json()}
    assert (shown["odd"]["network"], shown["odd"]["base"]) == (None, None)
    assert {
        k: v for k, v in shown["odd"].items() if k not in ("name", "id", "created_at", "ip")
    } == {k: v for k, v in shown["bad"].items() if k not in ("name", "id", "created_at", "ip")}
    table = cli_proc("ls", "-a")
    assert table.code == 0, table.err
    rows = {line.split()[1]: line.split()[-1] for line in table.out.splitlines()[1:]}
    assert rows["odd"] == rows["bad"]  # (the NETWORK column, as for any damaged spec)
    assert cli_proc("rm", "-f", "odd", "bad").code == 0
