"""``hcs-sandbox port NAME``: list, publish and unpublish a sandbox's ports.

Without options it lists the published ports (``HOST -> GUEST/proto``, docker's ``port``
shape); ``--publish HOST:GUEST[/tcp|udp]`` adds one while the sandbox exists and
``--unpublish HOST[/tcp|udp]`` removes one added that way (:meth:`Sandbox.publish`,
:meth:`Sandbox.unpublish`; see docs/networking.md).
Exit codes: 0; 2 bad input, unknown sandbox, or no network; 1 HCN refused (a taken port).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "port",
        help="list, publish or unpublish a sandbox's ports",
        description="List a sandbox's published ports, or publish/unpublish one while it "
        "exists (needs --network nat or internet-only).",
    )
    parser.add_argument("name", metavar="NAME", help="the sandbox (name or id)")
    parser.add_argument(
        "-p",
        "--publish",
        action="append",
        default=[],
        metavar="HOST:GUEST[/PROTO]",
        help="publish a guest port on a host port; LOOSENS ISOLATION: the host's network "
        "can reach that guest port",
    )
    parser.add_argument(
        "--unpublish",
        action="append",
        default=[],
        metavar="HOST[/PROTO]",
        help="remove a port published with --publish",
    )
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import parse_publish, parse_unpublish
    from hcs_sandbox.cli.output import notice_if_simulated, print_json, with_simulated
    from hcs_sandbox.errors import SpecError
    from hcs_sandbox.sandbox.sandbox import Sandbox

    adds = [parse_publish(p) for p in args.publish]
    removes = [parse_unpublish(p) for p in args.unpublish]
    with Sandbox.get(args.name) as sandbox:
        notice_if_simulated(sandbox.simulated)
        for host, protocol in removes:
            sandbox.unpublish(host, protocol)
        for k, (host, guest, protocol) in enumerate(adds):
            try:
                sandbox.publish(host, guest, protocol)
            except SpecError as exc:
                raise _every_publish(exc, sandbox.name, args.publish[k:]) from exc
        ports = sandbox.ports()
        if args.json:
            out = {"name": sandbox.name, "ip": sandbox.ip, "ports": [p.to_dict() for p in ports]}
            print_json(with_simulated(out, sandbox.simulated))
            return 0
        for p in ports:
            sys.stdout.write(f"{p.host_port}/{p.protocol} -> {p.guest_port}/{p.protocol}\n")
    return 0


def _every_publish(exc: Exception, name: str, typed: list[str]) -> Exception:
    """A sandbox without a network refuses every ``-p``: name them all as typed (the
    library's message names the first port only), the remedy once.  Other errors as they
    are."""
    from hcs_sandbox.cli.common import quoted
    from hcs_sandbox.errors import SpecError

    if not isinstance(exc, SpecError) or exc.field != "network" or len(typed) < 2:
        return exc
    shown = [quoted(word) for word in typed]
    return SpecError(
        f"cannot publish --publish {', '.join(shown[:-1])} and {shown[-1]} for sandbox "
        f"'{name}': it has no network (network {exc.value})",
        field=exc.field,
        value=exc.value,
        remedy=exc.remedy,
    )
