"""QA F3: ``run``/``create -p`` with a host port another sandbox holds: the one error line
names the taken port and the sandbox that holds it (docs/networking.md), also with several
``-p`` and for a port published later with ``port NAME -p``.  Each verb in its own process."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import Result

Cli = Callable[..., Result]


@pytest.mark.parametrize("verb", ["run", "create"])
def test_a_taken_spec_port_names_the_port_and_its_holder(cli_proc: Cli, verb: str) -> None:
    made = cli_proc(
        "run", "-d", "--name", "pa", "--network", "nat", "-p", "7171:71", "-p", "7272:72"
    )
    assert made.code == 0, made.err
    detach = ["-d"] if verb == "run" else []
    taken = cli_proc(
        verb, *detach, "--name", "pb", "--network", "nat", "-p", "7070:70", "-p", "7272:72"
    )
    assert taken.code == 1, taken.err
    assert len(taken.err_lines) == 1, taken.err
    line = taken.err_lines[0]
    assert "host port 7272/tcp is already published" in line
    assert "(by sandbox 'pa')" in line
    assert "HCN_E_PORT_ALREADY_EXISTS" in line
    assert "free it in sandbox 'pa'" in line
    assert "7070" not in line  # the free one is not blamed
    listed = cli_proc("ls", "-a", "--json")
    assert [o["name"] for o in listed.json()] == ["pa"]  # nothing left of pb
    assert cli_proc("rm", "-f", "pa").code == 0


def test_a_port_published_later_is_found_too(cli_proc: Cli) -> None:
    assert cli_proc("run", "-d", "--name", "pa", "--network", "nat").code == 0
    assert cli_proc("port", "pa", "-p", "7373:73/udp").code == 0
    taken = cli_proc("create", "--name", "pc", "--network", "nat", "-p", "7373:74/udp")
    assert taken.code == 1, taken.err
    assert len(taken.err_lines) == 1, taken.err
    assert "host port 7373/udp is already published" in taken.err
    assert "(by sandbox 'pa')" in taken.err
    assert cli_proc("rm", "-f", "pa").code == 0


def test_every_taken_port_is_named_with_its_holder(cli_proc: Cli) -> None:
    """Review RV-names L1: with several -p taken, the one line names each, and its holder
    (not only the first, which would make the user fix them one error at a time)."""
    made = cli_proc(
        "run", "-d", "--name", "pa", "--network", "nat", "-p", "7171:71", "-p", "7272:72"
    )
    assert made.code == 0, made.err
    assert cli_proc("create", "--name", "pb", "--network", "nat", "-p", "7575:75").code == 0
    taken = cli_proc(
        "create", "--name", "pd", "--network", "nat",
        "-p", "7373:73", "-p", "7171:71", "-p", "7272:72",
    )  # fmt: skip
    assert taken.code == 1, taken.err
    assert len(taken.err_lines) == 1, taken.err
    line = taken.err_lines[0]
    assert "host ports 7171/tcp and 7272/tcp are already published" in line
    assert "(by sandbox 'pa')" in line
    assert "7373" not in line  # the free one is not blamed
    assert "free them in sandbox 'pa'" in line
    taken = cli_proc(
        "run", "-d", "--name", "pe", "--network", "nat", "-p", "7575:75", "-p", "7272:72"
    )
    assert taken.code == 1, taken.err
    assert len(taken.err_lines) == 1, taken.err
    line = taken.err_lines[0]
    assert "7575/tcp (by sandbox 'pb') and 7272/tcp (by sandbox 'pa')" in line
    assert "free them in sandboxes 'pb' and 'pa'" in line
    assert [o["name"] for o in cli_proc("ls", "-a", "--json").json()] == ["pa", "pb"]
    assert cli_proc("rm", "-f", "pa", "pb").code == 0
