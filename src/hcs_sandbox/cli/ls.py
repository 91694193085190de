"""``hcs-sandbox ls`` (alias ``ps``): list sandboxes.

By default only running and paused sandboxes (like ``docker ps``); ``-a`` adds created and
stopped ones and any in a transitional or error state.  States come from the records,
checked against HCS with one enumeration (not one query per sandbox), so ``ls`` stays fast.
``-q`` prints ids only (with ``--json``: a JSON list of them); ``--json`` a list of objects.
``--filter`` (repeatable, all must match): ``label=KEY``, ``label=KEY=VALUE``, ``name=TEXT``
(substring, case-insensitive), ``state=STATE``.  Exit codes: 0 ok; 2 a bad --filter; 3 HCS
unavailable (every time: not Windows without the simulator, or a malformed
``HCS_SANDBOX_SIMULATOR``; on Windows HCS itself is asked only about live records).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    import argparse
    from typing import Any

_FILTER_KEYS = ("label", "name", "state")

#: The options :func:`register` declares, for the CLI's fast path
#: (:func:`hcs_sandbox.cli.main.fast_parse`: a plain ``ls -a --json`` is parsed without
#: importing argparse): option string -> (dest, ``"true"`` for store_true | ``"append"``).
#: Keep in step with :func:`register` and :func:`fast_defaults`
#: (tests/cli/test_fast_parse.py checks all three against argparse).
FAST_OPTIONS: dict[str, tuple[str, str]] = {
    "-a": ("all", "true"),
    "--all": ("all", "true"),
    "-q": ("quiet", "true"),
    "--quiet": ("quiet", "true"),
    "-f": ("filter", "append"),
    "--filter": ("filter", "append"),
    "--no-trunc": ("no_trunc", "true"),
    "--json": ("json", "true"),
}


def fast_defaults() -> dict[str, Any]:
    """Every value ``ls``'s parser sets when no option is given (``handler`` included)."""
    return {
        "all": False,
        "quiet": False,
        "filter": [],
        "no_trunc": False,
        "json": False,
        "handler": handle,
    }


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_common

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "ls",
        aliases=["ps"],
        help="list sandboxes",
        description="List running and paused sandboxes (-a: all).",
    )
    parser.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="include created and stopped sandboxes (default: running and paused only)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print ids only")
    parser.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label=KEY, label=KEY=VALUE, name=TEXT or state=STATE (repeatable; all must match)",
    )
    parser.add_argument("--no-trunc", action="store_true", help="print full ids in the table")
    add_common(parser)
    parser.set_defaults(handler=handle)
    return parser


def parse_filters(texts: list[str]) -> list[tuple[str, str, str | None]]:
    """``["label=a=b", "name=x"]`` → ``[("label", "a", "b"), ("name", "x", None)]``."""
    from hcs_sandbox.errors import SpecError
    from hcs_sandbox.sandbox.store import STATES

    out: list[tuple[str, str, str | None]] = []
    for text in texts:
        key, sep, rest = text.partition("=")
        key = key.strip().lower()
        if not sep or key not in _FILTER_KEYS or not rest:
            raise SpecError(
                f"invalid --filter {text!r}",
                field="filter",
                value=text,
                allowed="label=KEY, label=KEY=VALUE, name=TEXT or state=STATE",
            )
        if key == "label":
            label, has_value, value = rest.partition("=")
            out.append(("label", label, value if has_value else None))
        elif key == "state" and rest.strip().lower() not in STATES:
            raise SpecError(
                f"invalid --filter {text!r}: no sandbox is ever in state {rest!r}",
                field="filter",
                value=text,
                allowed=", ".join(STATES),
            )
        elif key == "state":
            out.append((key, rest.strip().lower(), None))  # the word checked above
        else:
            out.append((key, rest, None))
    return out


def matches(sandbox: Any, state: str, filters: list[tuple[str, str, str | None]]) -> bool:
    """True when ``sandbox`` (a :class:`~hcs_sandbox.sandbox.store.Record`, a
    :class:`~hcs_sandbox.sandbox.store.Summary` or a
    :class:`~hcs_sandbox.sandbox.sandbox.Sandbox`) passes every filter."""
    labels = sandbox.labels if hasattr(sandbox, "labels") else sandbox.spec.labels
    if labels is None:  # damaged in the state database: unknown, so no label matches
        labels = {}
    for key, value, extra in filters:
        if key == "label":
            if value not in labels or (extra is not None and labels[value] != extra):
                return False
        elif key == "name":
            if value.lower() not in sandbox.name.lower():
                return False
        elif key == "state" and state.lower() != value.lower():
            return False
    return True


def summary(record: Any) -> dict[str, Any]:
    """The JSON object ``ls --json`` prints for a store record: exactly
    :meth:`hcs_sandbox.sandbox.sandbox.Sandbox.to_dict` (tests/cli/test_ls_fast.py checks
    they agree), built from the record without importing the sandbox layer."""
    from hcs_sandbox.sandbox.store import Summary

    return shown(Summary.of(record))


def shown(item: Any) -> dict[str, Any]:
    """:func:`summary` from a :class:`hcs_sandbox.sandbox.store.Summary` (what
    :meth:`~hcs_sandbox.sandbox.store.Store.summaries` lists: ``ls`` reads no more)."""
    base = item.spec_base
    ip = item.extra_ip
    return {
        "name": item.name,
        "id": item.id,
        "state": item.state,
        "kind": item.kind,
        "persistent": item.persistent,
        # (a record whose spec is damaged by hand may hold anything here: review RV52 F2)
        "base": base.get("kind") if isinstance(base, dict) else None,
        "network": item.spec_network,
        "ip": str(ip) if ip else None,
        # (the spec's and those added with publish; None: the spec is damaged, unknown)
        "ports": item.ports,
        # (None: damaged in the state database, unknown)
        "labels": None if item.labels is None else dict(item.labels),
        "created_at": item.created_at,
        "started_at": item.started_at,
    }


def ago(seconds: float) -> str:
    """``"5 seconds ago"``, ``"3 minutes ago"``, ... like docker ps."""
    seconds = max(0.0, seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    n = int(seconds)
    return "just now" if n < 1 else f"{n} second{'s' if n != 1 else ''} ago"


def _gone(records: list[Any]) -> tuple[set[str], set[str]]:
    """Ids of live records (``created``/``running``/``paused``) whose compute system no
    longer exists: ONE ``HcsEnumerateComputeSystems`` (``{"Owners": ["hcs-sandbox"]}``,
    SystemQuery: SchemaReference.md) and a set lookup per record, so ``ls`` stays O(n)
    with many records.  No live record: no HCS call at all.  Second: ids of live records
    made through another HCS host, whose systems cannot be seen from here (never "gone")."""
    from hcs_sandbox.sandbox.store import LIVE_STATES

    live = [r for r in records if r.state in LIVE_STATES]
    if not live:
        return set(), set()
    # The cli layer calls the sandbox layer only (tests/test_layers.py): the one-enumeration
    # helper, {lower-case system id: properties}.
    from hcs_sandbox.sandbox.owned import host_identity, owned_systems

    existing = owned_systems()
    mine = host_identity()
    other = {r.id for r in live if r.extra_host and r.extra_host != mine}
    # (A damaged compute system id, "", names no system: its state is unknown, shown as
    # recorded, as inspect shows it; sandbox/damage.py.)
    gone = {
        r.id
        for r in live
        if r.id not in other and r.system_id and r.system_id.lower() not in existing
    }
    return gone, other


def require_host() -> None:
    """Raise :class:`~hcs_sandbox.errors.HcsUnavailableError` (exit 3) when this process
    cannot reach any HCS -- not Windows and the simulator not asked for, or
    ``HCS_SANDBOX_SIMULATOR`` malformed (:mod:`hcs_sandbox._simenv`) -- so that ``ls`` says
    so every time, not only when a live record needs HCS.  Checked without choosing the
    backend when that is cheap (no ctypes, no simulator import: ``ls`` with no live record
    makes no HCS call); otherwise (``--simulator``, or a setting to refuse) the backend is
    chosen and raises what any HCS call would.  On Windows the DLLs load with the first HCS
    call, not here."""
    import sys

    from hcs_sandbox import _simenv

    if "hcs_sandbox.native.loader" not in sys.modules:  # use_simulator() was not called
        try:
            asked = _simenv.setting() is not None
        except _simenv.SimulatorSettingError:
            asked = False
        else:
            if asked or sys.platform == "win32":
                return
    from hcs_sandbox.sandbox.owned import host_identity

    host_identity()


def handle(args: argparse.Namespace) -> int:
    import time

    from hcs_sandbox.cli.output import is_simulated, notice_if_simulated, print_json, table
    from hcs_sandbox.sandbox.store import open_existing_store

    filters = parse_filters(args.filter)
    require_host()
    simulated = is_simulated()
    # What ls shows of each record (one query, no whole records): no Sandbox objects, no
    # compute-system handle.
    store = open_existing_store()  # None: no state directory, no sandboxes (none is made)
    items: list[Any] = []
    if store is not None:
        with store:
            items = store.summaries(all=args.all)
    gone, other = _gone(items)
    rows: list[tuple[Any, str]] = []
    for item in items:
        state = item.state
        if item.id in gone:
            state = "stopped"  # its compute system exited since the record was written
            if not args.all:
                continue
        if matches(item, state, filters):
            rows.append((item, state))
    if args.quiet and args.json:  # -q --json: the ids, as JSON
        print_json([r.id if args.no_trunc else r.id[:12] for r, _ in rows])
    elif args.quiet:
        print("\n".join(r.id if args.no_trunc else r.id[:12] for r, _ in rows))
    elif args.json:
        objects = []
        for r, state in rows:
            obj = shown(r)
            obj["state"] = state
            if r.id in other:
                obj["other_host"] = r.extra_host
            if simulated:
                obj["simulated"] = True
            objects.append(obj)
        print_json(objects)
    else:
        now = time.time()
        lines = []
        for r, state in rows:
            ports = ", ".join(  # the spec's and those added with publish (QA F4)
                f"{p['host_port']}->{p['guest_port']}/{p['protocol']}" for p in r.ports or ()
            )
            lines.append(
                {
                    "id": r.id if args.no_trunc else r.id[:12],
                    "name": r.name,
                    "state": f"{state} (other host)" if r.id in other else state,
                    "created": ago(now - r.created_at),
                    "network": str(r.spec_network or "none"),
                    "ports": ports,
                }
            )
        columns = [
            ("id", "SANDBOX ID"),
            ("name", "NAME"),
            ("state", "STATE"),
            ("created", "CREATED"),
            ("network", "NETWORK"),
            ("ports", "PORTS"),
        ]
        print(table(lines, columns))
    notice_if_simulated(simulated)
    return 0
