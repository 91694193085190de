"""QA F4: ``ls`` shows every published port -- the spec's and those added later with
``port NAME -p`` -- in its PORTS column and as ``ports`` in ``--json`` (what ``port NAME
--json`` lists).  Each verb in its own process."""

from __future__ import annotations

from collections.abc import Callable

from cli_support import Result

Cli = Callable[..., Result]


def test_ls_shows_ports_published_later(cli_proc: Cli) -> None:
    made = cli_proc("run", "-d", "--name", "pe", "--network", "nat", "-p", "7575:75/udp")
    assert made.code == 0, made.err
    assert cli_proc("run", "-d", "--name", "quiet").code == 0
    assert cli_proc("port", "pe", "-p", "7474:74").code == 0
    published = cli_proc("port", "pe", "--json").json()["ports"]
    assert {p["runtime"] for p in published} == {False, True}

    listed = {o["name"]: o for o in cli_proc("ls", "--json").json()}
    assert listed["pe"]["ports"] == published
    assert listed["quiet"]["ports"] == []

    table = cli_proc("ls", "--filter", "name=pe")
    assert table.code == 0, table.err
    header, row = table.out.splitlines()
    column = row[header.index("PORTS") :]
    assert column == ", ".join(
        f"{p['host_port']}->{p['guest_port']}/{p['protocol']}" for p in published
    )

    assert cli_proc("port", "pe", "--unpublish", "7474").code == 0
    again = cli_proc("ls", "--json", "--filter", "name=pe").json()[0]["ports"]
    assert again == [p for p in published if not p["runtime"]]
    assert cli_proc("rm", "-f", "pe", "quiet").code == 0


def test_ls_json_ports_agree_with_sandbox_to_dict(cli: Cli) -> None:
    from hcs_sandbox.cli.ls import shown, summary
    from hcs_sandbox.sandbox.sandbox import Sandbox
    from hcs_sandbox.sandbox.spec import PortMapping, SandboxSpec
    from hcs_sandbox.sandbox.store import open_store

    made = Sandbox.create(SandboxSpec(name="alpha", network="nat", ports=[PortMapping(7676, 76)]))
    try:
        made.publish(7777, 77, "udp")
        with open_store() as store:
            record = store.get("alpha")
            (listed,) = store.summaries(all=True)
        expected = Sandbox(record, made._state_dir).to_dict()
        assert [(p["host_port"], p["runtime"]) for p in expected["ports"]] == [
            (7676, False),
            (7777, True),
        ]
        assert summary(record) == expected  # from the whole record
        assert shown(listed) == expected  # from the listing's query
    finally:
        made.remove(force=True)
        made.close()
