"""``run -p`` end to end (spec → planner → endpoint document → HNS) and ``hcs-sandbox port``."""

from __future__ import annotations

from collections.abc import Callable

from cli_support import Result

Cli = Callable[..., Result]


def _hns_ports(name: str) -> list[tuple[int, int, int]]:
    from hcs_sandbox.sandbox import network
    from hcs_sandbox.sandbox.sandbox import Sandbox

    policies = network.endpoint_policies(Sandbox.get(name).record.endpoint_ids[0]) or []
    return sorted(
        (p["Settings"]["ExternalPort"], p["Settings"]["InternalPort"], p["Settings"]["Protocol"])
        for p in policies
        if p["Type"] == "PortMapping"
    )


def test_run_publish_reaches_hns_and_port_verb(cli: Cli) -> None:
    result = cli(
        "run", "-d", "--name", "web", "--network", "nat", "-p", "8080:80", "-p", "5353:53/udp"
    )
    assert result.code == 0, result.err
    assert _hns_ports("web") == [(5353, 53, 17), (8080, 80, 6)]
    listed = cli("port", "web")
    assert listed.code == 0
    assert listed.out.splitlines() == ["8080/tcp -> 80/tcp", "5353/udp -> 53/udp"]
    added = cli("port", "web", "--publish", "9000:90", "--json")
    assert added.code == 0, added.err
    doc = added.json()
    assert doc["ip"]
    assert {"host_port": 9000, "guest_port": 90, "protocol": "tcp", "runtime": True} in doc["ports"]
    assert (9000, 90, 6) in _hns_ports("web")
    removed = cli("port", "web", "--unpublish", "9000")
    assert removed.code == 0, removed.err
    assert "9000" not in removed.out
    assert (9000, 90, 6) not in _hns_ports("web")
    # A second sandbox cannot take a published host port: one clear line, exit 1.
    assert cli("run", "-d", "--name", "db", "--network", "nat").code == 0
    taken = cli("port", "db", "-p", "8080:81")
    assert taken.code == 1
    assert len(taken.err_lines) == 1
    assert "8080/tcp" in taken.err
    assert "sandbox 'web'" in taken.err
    # Spec ports stay; bad input is exit 2 with one line.
    kept = cli("port", "web", "--unpublish", "8080")
    assert kept.code == 2
    assert len(kept.err_lines) == 1
    bad = cli("port", "web", "-p", "80")
    assert bad.code == 2
    assert len(bad.err_lines) == 1
    assert cli("rm", "-f", "web", "db").code == 0


def test_port_on_a_sandbox_without_network(cli: Cli) -> None:
    assert cli("create", "--name", "quiet").code == 0
    assert cli("port", "quiet").out == ""
    refused = cli("port", "quiet", "-p", "8080:80")
    assert refused.code == 2
    assert len(refused.err_lines) == 1
    assert "no network" in refused.err
    assert cli("rm", "quiet").code == 0
