"""``hcs-sandbox plan``: show the HCS/HCN documents a sandbox would be created with.

Nothing is created and HCS is not called: the planner is pure, and the host facts are
deterministic placeholders (``HostFacts.for_planning``: ids derived from the name, paths under
``C:\\ProgramData\\hcs-sandbox``, a fake user SID), so the output is the same on every OS.
Like every verb module this imports only ``argparse`` at module level.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hcs_sandbox.sandbox.planner import Plan

__all__ = ["register"]

DESCRIPTION = """\
Print every document hcs-sandbox would pass to HCS to create this sandbox: the compute
system, the scratch disk and files, the NAT network and endpoint, the mapped-folder shares
and the warnings. Nothing is created. Ids and paths are placeholders (the real ones are
chosen at create time). Flags override the .wsb file.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``plan`` verb."""
    from hcs_sandbox.cli.common import add_spec_options
    from hcs_sandbox.cli.main import add_global_options

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "plan",
        help="show the HCS documents a sandbox would be created with (creates nothing)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_spec_options(parser)
    parser.add_argument(
        "--variant",
        choices=("documented", "wsb-compat"),
        default=None,
        help="host-base document: documented (only public schema fields) or wsb-compat "
        "(EXPERIMENTAL: Windows Sandbox's own document, undocumented fields); default: the "
        "one run/create would use (HCS_SANDBOX_HOST_VARIANT, else what 'doctor --deep' saw "
        "boot, else documented)",
    )
    parser.add_argument(
        "--host-schema",
        metavar="X.Y",
        help="plan for a host whose highest HCS schema is X.Y (default 2.6, Windows 11)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the plan as one JSON document on stdout (warnings also on stderr)",
    )
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=_handle)
    return parser


def _host_schema(text: str) -> tuple[int, int]:
    from hcs_sandbox.cli.common import ascii_digits
    from hcs_sandbox.errors import SpecError

    major, dot, minor = text.strip().partition(".")
    if not dot or not ascii_digits(major) or not ascii_digits(minor):
        raise SpecError(
            f"invalid --host-schema {text!r}: expected MAJOR.MINOR",
            field="host_schema",
            value=text,
            allowed="a schema version such as 2.1 or 2.6",
        )
    return int(major), int(minor)


def _handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.common import check_spec_paths, spec_warnings_about
    from hcs_sandbox.cli.output import print_json, warn, write_text
    from hcs_sandbox.sandbox.planner import HostFacts, plan

    # The mapped-folder rule create applies, to the paths as written (a plan may describe
    # another machine's folders: whether they exist is not asked): exit 2 as create would,
    # a .wsb's folder refused with its file and line, a --map's naming the flag.
    spec, wsb_warnings, warned = spec_warnings_about(args, check_paths=True, local=False)
    check_spec_paths(spec, args, local=False)
    # A path as written cannot expand an 8.3 short name: say so where one may name a
    # protected folder (create judges the real path, short names expanded).
    from hcs_sandbox.sandbox import files

    protected = files.protected_folders()
    for folder in spec.mapped_folders:
        short = files.short_name_warning(folder.host_path, protected=protected)
        if short is not None:
            wsb_warnings.append(short)
    for message in wsb_warnings:
        warn(message)
    versions = None
    if args.host_schema:
        top = _host_schema(args.host_schema)
        versions = [(2, m) for m in range(1, top[1] + 1)] if top[0] == 2 else [top]
    if args.variant is not None:
        variant, variant_from = args.variant, "from --variant"
    else:
        # What run/create would use on this host (reads the doctor report and the
        # environment only; no HCS call).
        from hcs_sandbox.sandbox.hostfacts import host_variant_choice

        variant, variant_from = host_variant_choice(None)
    facts = HostFacts.for_planning(spec, variant=variant, supported_schema_versions=versions)
    result = plan(spec, facts)
    # Each setting once, as run/create print it: a planner warning about a field the .wsb
    # already warned about (with its file, line and how to turn it off) is left out.
    about = result.warning_fields or (None,) * len(result.warnings)
    planned = [
        w
        for w, field in zip(result.warnings, about, strict=True)
        if field is None or field not in warned
    ]
    warnings = list(dict.fromkeys([*wsb_warnings, *planned]))
    if args.json:
        document = result.to_dict()
        document["warnings"] = warnings
        if spec.base.kind == "host":
            document["base"]["variant_from"] = variant_from
        print_json(document)
        for message in planned:
            if message not in wsb_warnings:
                warn(message)
    else:
        # Host paths may hold characters the terminal cannot show: escapes, not an
        # "internal error" (review RV39).
        write_text(sys.stdout, render(result, warnings, variant_from=variant_from))
    return 0


def _pretty(value: Any) -> str:
    import json

    return json.dumps(value, indent=2)


def _size(n: int) -> str:
    gib = n / 1024**3
    return f"{gib:g} GiB" if gib >= 1 else f"{n / 1024**2:g} MiB"


def render(result: Plan, warnings: list[str], *, variant_from: str | None = None) -> str:
    """The human-readable plan: headings, pretty JSON documents, warnings.  ``variant_from``:
    where the host base's document variant comes from (``from --variant``, ``the default:
    ...``; said after it)."""
    spec, facts = result.spec, result.facts
    base: str = spec.base.kind
    if spec.base.kind == "host":
        source = f", {variant_from}" if variant_from else ""
        base = f"host ({facts.variant} variant{source})"
    elif spec.base.path:
        base = f"{spec.base.kind} {spec.base.path}"
    lines: list[str] = [
        f"Plan for sandbox {spec.name or '(unnamed)'}: base {base}, HCS schema "
        f"{result.schema_version[0]}.{result.schema_version[1]}",
        "(ids and paths are placeholders; the real ones are chosen at create time)",
        "",
        "== Compute system (HcsCreateComputeSystem) ==",
        _pretty(result.document),
        "",
        "== Files ==",
    ]
    if result.scratch is not None:
        s = result.scratch
        how = {
            "create": f"new {_size(s.size_bytes)} dynamic VHDX, formatted",
            "differencing": f"differencing disk over {s.parent}, of the parent's size; "
            "the parent is never written",
            "copy": f"copy of {s.parent}",
        }[s.method]
        lines.append(f"scratch disk:     {s.path} ({how})")
    if result.guest_state_file:
        lines.append(f"guest state file: {result.guest_state_file}")
    if result.runtime_state_file:
        lines.append(f"runtime state:    {result.runtime_state_file}")
    for path in result.grants:
        lines.append(f"grant VM access:  {path}")
    if result.network_document is not None:
        lines += [
            "",
            "== Shared NAT network (HcnCreateNetwork, made once) ==",
            _pretty(result.network_document),
            "",
            "== Endpoint (HcnCreateEndpoint) ==",
            _pretty(result.endpoint_document),
        ]
    else:
        lines += ["", "== Network ==", "none: no network adapter"]
    if result.guest_links:
        lines += ["", "== Mapped folders =="]
        for link in result.guest_links:
            mode = "read-only" if link.read_only else "READ-WRITE"
            lines.append(f"{link.share}: {link.host_path} -> {link.guest_path} ({mode})")
    lines += ["", "== Display =="]
    if result.display_pipes:
        for pipe in result.display_pipes:
            lines.append(f"{pipe.kind}: {pipe.pipe} (access: {', '.join(pipe.access_sids)})")
    else:
        lines.append("headless: no display devices")
    after: list[str] = []
    if result.gpu_request is not None:
        after.append("GPU-PV (HcsModifyComputeSystem):")
        after.append(_pretty(result.gpu_request))
    if result.logon_command:
        after.append(f"logon command: {result.logon_command}")
    if after:
        lines += ["", "== After start ==", *after]
    lines += [
        "",
        "ShouldTerminateOnLastHandleClosed: "
        + ("true" if result.terminate_on_last_handle_closed else "false"),
        "",
        "== Warnings ==",
    ]
    lines += [f"- {w}" for w in warnings] if warnings else ["none"]
    return "\n".join(lines) + "\n"
