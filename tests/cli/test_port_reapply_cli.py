"""``hcs-sandbox start`` of a persistent sandbox whose endpoint HNS lost: runtime ports come
back, a taken one is one clear line (exit 1) and ``port --unpublish`` works while stopped."""

from __future__ import annotations

from collections.abc import Callable

from cli_support import Result

Cli = Callable[..., Result]


def _hns_ports(name: str) -> list[tuple[int, int]]:
    from hcs_sandbox.sandbox import network
    from hcs_sandbox.sandbox.sandbox import Sandbox

    policies = network.endpoint_policies(Sandbox.get(name).record.endpoint_ids[0]) or []
    return sorted(
        (p["Settings"]["ExternalPort"], p["Settings"]["InternalPort"])
        for p in policies
        if p["Type"] == "PortMapping"
    )


def _lose_endpoint(name: str) -> None:
    from hcs_sandbox.sandbox import network
    from hcs_sandbox.sandbox.sandbox import Sandbox

    (endpoint_id,) = Sandbox.get(name).record.endpoint_ids
    assert network.delete_endpoint(endpoint_id) is True


def test_start_after_the_endpoint_vanished(cli: Cli) -> None:
    created = cli("run", "-d", "--name", "keep", "--network", "nat", "--persistent")
    assert created.code == 0, created.err
    assert cli("port", "keep", "-p", "9000:90", "-p", "9001:91").code == 0
    assert cli("stop", "keep").code == 0
    _lose_endpoint("keep")
    assert cli("run", "-d", "--name", "thief", "--network", "nat", "-p", "9001:80").code == 0
    refused = cli("start", "keep")
    assert refused.code == 1
    assert len(refused.err_lines) == 1
    assert "9001:91/tcp" in refused.err
    assert "sandbox 'thief'" in refused.err
    assert "--unpublish 9001/tcp" in refused.err
    listed = cli("port", "keep")
    assert listed.out.splitlines() == ["9000/tcp -> 90/tcp", "9001/tcp -> 91/tcp"]
    unpublished = cli("port", "keep", "--unpublish", "9001")
    assert unpublished.code == 0, unpublished.err
    assert unpublished.out.splitlines() == ["9000/tcp -> 90/tcp"]
    started = cli("start", "keep")
    assert started.code == 0, started.err
    assert _hns_ports("keep") == [(9000, 90)]
    assert cli("rm", "-f", "keep", "thief").code == 0
