"""``hcs-sandbox cp SRC DST``: copy files between the host and a sandbox.

Exactly one side is ``NAME:PATH`` (docker's syntax), the guest side, with an absolute guest
path (``web:C:\\data``); the other is a host path.  A host path with a drive letter
(``C:\\src``) is never read as a sandbox named ``C``; write ``./a:b`` for a relative host
path with a colon.  Folders are copied whole; a destination that is an existing folder
receives the copy inside it.  Exit codes: 0 copied; 2 bad input, no such sandbox or a path
that would escape; 1 the copy failed; 3 HCS unavailable.
"""

from __future__ import annotations

import argparse
from typing import Any


def parse_location(text: str) -> tuple[str | None, str]:
    """``(sandbox, path)`` for ``NAME:PATH``; ``(None, path)`` for a host path.

    ``NAME`` follows the sandbox name rule (:data:`store.NAME_PATTERN`; ids are hex and
    ``-``, which it also accepts).  A single letter followed by ``:\\`` or ``:/`` (or alone
    with ``:``) is a drive letter.
    """
    from hcs_sandbox.sandbox.store import NAME_PATTERN

    name, sep, path = text.partition(":")
    if not sep or not NAME_PATTERN.fullmatch(name):
        return None, text
    if len(name) == 1 and (path == "" or path[:1] in ("\\", "/")):
        return None, text  # C:\x, C:/x, C:
    return name, path


def parse_cp_args(source: str, destination: str) -> tuple[str, str, str, str]:
    """``(direction, sandbox, guest_path, host_path)``; direction ``"in"`` or ``"out"``."""
    from hcs_sandbox.errors import SpecError
    from hcs_sandbox.sandbox.files import host_path_arg  # the library's rule (QA agent F1)

    src_box, src_path = parse_location(source)
    dst_box, dst_path = parse_location(destination)
    if (src_box is None) == (dst_box is None):
        both = "both" if src_box is not None else "neither"
        raise SpecError(
            f"cp needs exactly one side written as NAME:PATH, and {both} is",
            field="cp",
            value=[source, destination],
            remedy="e.g. 'hcs-sandbox cp ./file.txt web:C:\\data' or "
            "'hcs-sandbox cp web:C:\\out ./out'",
        )
    if src_box is not None:
        if not src_path:
            raise SpecError(f"no guest path after '{src_box}:'", field="cp", value=source)
        host_path_arg(destination, what="destination", field="cp")
        return "out", src_box, src_path, destination
    assert dst_box is not None
    if not dst_path:
        raise SpecError(f"no guest path after '{dst_box}:'", field="cp", value=destination)
    host_path_arg(source, what="source", field="cp")
    return "in", dst_box, dst_path, source


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cp",
        help="copy files or folders between the host and a sandbox (NAME:PATH)",
        description="Copy a file or folder into (cp SRC NAME:PATH) or out of "
        "(cp NAME:PATH DST) a running sandbox. LOOSENS ISOLATION: the first cp after a "
        "start shares the sandbox's transfer folder with the guest, read-write and with no "
        "quota (the guest can write to the host disk through it), until the sandbox stops; "
        "see docs/files.md.",
        epilog="examples: hcs-sandbox cp ./tools web:C:\\tools ; "
        "hcs-sandbox cp web:C:\\Users\\WDAGUtilityAccount\\Desktop\\out.txt .",
    )
    parser.add_argument("source", metavar="SRC", help="host path, or NAME:GUEST_PATH")
    parser.add_argument("destination", metavar="DST", help="host path, or NAME:GUEST_PATH")
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.output import notice_if_simulated, print_json, with_simulated
    from hcs_sandbox.sandbox.sandbox import Sandbox

    direction, name, guest, host = parse_cp_args(args.source, args.destination)
    sandbox = Sandbox.get(name)
    notice_if_simulated(sandbox.simulated)
    try:
        if direction == "in":
            sandbox.copy_in(host, guest)
        else:
            sandbox.copy_out(guest, host)
    finally:
        sandbox.close()
    if args.json:
        out = {
            "sandbox": sandbox.name,
            "direction": direction,
            "guest_path": guest,
            "host_path": host,
        }
        print_json(with_simulated(out, sandbox.simulated))
    return 0
