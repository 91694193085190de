"""Helpers shared by the lifecycle verbs: spec flags, name lists, JSON objects, errors.

This imports only ``sys`` and :mod:`hcs_sandbox.cli.output` at module level (``argparse``
where it is used: ``ls``'s fast path runs without it); the library is imported inside the
functions, so that ``hcs-sandbox ls`` stays fast to start.
"""

from __future__ import annotations

import sys

# Defined with the output helpers (``ls`` imports those, not this module); kept here too.
from hcs_sandbox.cli.output import is_simulated, with_simulated
from hcs_sandbox.errors import quoted  # messages quote values as typed (errors.quoted)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    # argparse: imported where used, so that ``ls`` (hcs_sandbox.cli.main.fast_parse) can
    # run without it.
    import argparse
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    from hcs_sandbox.errors import SpecError
    from hcs_sandbox.sandbox.sandbox import Sandbox
    from hcs_sandbox.sandbox.spec import SandboxSpec

__all__ = [
    "add_common",
    "add_encoding_option",
    "add_spec_options",
    "check_spec_paths",
    "codec",
    "each_sandbox",
    "error_line",
    "host_exit_code",
    "is_simulated",
    "parse_base",
    "parse_key_value",
    "parse_map",
    "parse_publish",
    "parse_unpublish",
    "print_sandbox_warnings",
    "quoted",
    "seconds",
    "seconds_or_zero",
    "spec_and_warnings",
    "spec_from_args",
    "spec_warnings_about",
    "with_simulated",
]

_NETWORKS = ("none", "nat", "internet-only")


def add_common(parser: argparse.ArgumentParser, *, json_help: str | None = None) -> None:
    """The options every lifecycle verb has: ``--json`` and the global options."""
    from hcs_sandbox.cli.main import add_global_options

    parser.add_argument(
        "--json",
        action="store_true",
        help=json_help or "print the result as one JSON document on stdout",
    )
    add_global_options(parser, suppress=True)


#: ``--X`` / ``--no-X`` switches for the SandboxSpec device fields (all off by default).
_DEVICE_SWITCHES: tuple[tuple[str, str], ...] = (
    ("gpu", "share the host GPU (GPU-PV); LOOSENS ISOLATION: the guest drives the host's GPU"),
    (
        "clipboard",
        "clipboard redirection for a desktop viewer; LOOSENS ISOLATION: text and files can "
        "pass both ways",
    ),
    (
        "audio-input",
        "microphone input; LOOSENS ISOLATION: the guest can hear the host's microphone",
    ),
    ("video-input", "camera input; LOOSENS ISOLATION: the guest can see the host's camera"),
    ("printer", "printer redirection; LOOSENS ISOLATION: the guest can print to host printers"),
)


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    """The sandbox-description flags of ``run`` and ``create`` (they override a .wsb file)."""
    import argparse

    parser.add_argument(
        "wsb",
        nargs="?",
        metavar="FILE.wsb",
        help="a Windows Sandbox configuration file; the flags below override it",
    )
    parser.add_argument("--name", help="a name for the sandbox (default: generated)")
    parser.add_argument(
        "--memory",
        metavar="MB",
        help="memory in MiB (default 4096), or with a unit: 2048M, 4G",
    )
    parser.add_argument("--cpus", metavar="N", help="virtual processors (default 2)")
    parser.add_argument(
        "--network",
        choices=_NETWORKS,
        help="none (default, no adapter); nat or internet-only LOOSEN ISOLATION: the guest "
        "can reach the network",
    )
    parser.add_argument(
        "-p",
        "--publish",
        action="append",
        default=[],
        metavar="HOST:GUEST[/udp]",
        help="publish a guest port on a host port (needs --network nat or internet-only); "
        "LOOSENS ISOLATION: "
        "the host port reaches the guest. Repeatable",
    )
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="HOST:GUEST[:rw]",
        help="map a host folder into the guest, read-only unless ':rw' (writable maps LOOSEN "
        "ISOLATION: the guest can change host files). Repeatable; drive letters are fine: "
        "C:\\src:C:\\work:rw",
    )
    parser.add_argument(
        "--base",
        metavar="host|image:PATH|vhdx:PATH",
        help="what the guest boots: this host's Windows Sandbox image (default), a container "
        "base image folder, or a bootable VHDX (never written: a differencing disk is used)",
    )
    parser.add_argument(
        "--display",
        choices=("headless", "desktop"),
        help="headless (default) or desktop (declares display pipes; LOOSENS ISOLATION: "
        "a desktop viewer can connect)",
    )
    parser.add_argument(
        "--persistent",
        action="store_true",
        default=None,
        help="keep the scratch disk across stop/start (default: ephemeral, thrown away)",
    )
    # Device switches: off by default; --no-X turns off what a .wsb turned on.
    for flag, what in _DEVICE_SWITCHES:
        parser.add_argument(
            f"--{flag}", action=argparse.BooleanOptionalAction, default=None, help=what
        )
    parser.add_argument(
        "--logon-command",
        metavar="CMD",
        help="a command the guest runs once it is ready (its output: 'hcs-sandbox logs NAME'). "
        "LOOSENS ISOLATION: until it ends, the guest can write to one host folder (its log "
        "share, no quota), see docs/exec.md",
    )
    parser.add_argument(
        "--env",
        "-e",
        action="append",
        default=[],
        metavar="K=V",
        help="an environment variable for commands run in the guest. Repeatable",
    )
    parser.add_argument(
        "--label",
        "-l",
        action="append",
        default=[],
        metavar="K=V",
        help="a label (metadata for 'ls --filter label=K=V'). Repeatable",
    )


# ------------------------------------------------------------------------------ parsing


def _spec_error(message: str, *, field: str, value: object, allowed: str) -> Exception:
    from hcs_sandbox.errors import SpecError

    return SpecError(message, field=field, value=value, allowed=allowed)


def _is_drive(text: str, i: int) -> bool:
    """True when ``text[i]`` is the colon of a drive letter (``C:`` at a segment start)."""
    return (
        i >= 1
        and text[i - 1].isalpha()
        and (i == 1 or text[i - 2] == ":")
        and (i + 1 == len(text) or text[i + 1] in "\\/")
    )


def parse_map(text: str) -> tuple[str, str, bool]:
    """``HOST:GUEST[:rw|:ro]`` → ``(host, guest, read_only)``; drive-letter colons are kept.

    >>> parse_map(r"C:\\src:C:\\work:rw")
    ('C:\\\\src', 'C:\\\\work', False)
    >>> parse_map("/srv/data:C:\\data")
    ('/srv/data', 'C:\\\\data', True)
    """
    allowed = "HOST:GUEST or HOST:GUEST:rw, e.g. C:\\src:C:\\work:rw or /srv/data:C:\\data"
    read_only = True
    body = text
    lowered = text.lower()
    if lowered.endswith((":rw", ":ro")):
        read_only = lowered.endswith(":ro")
        body = text[:-3]
    cuts = [i for i, ch in enumerate(body) if ch == ":" and not _is_drive(body, i)]
    if len(cuts) != 1:
        raise _spec_error(
            f"invalid --map {quoted(text)}: expected one ':' between the host and guest paths",
            field="mapped_folders",
            value=text,
            allowed=allowed,
        )
    host, guest = body[: cuts[0]], body[cuts[0] + 1 :]
    if not host or not guest:
        raise _spec_error(
            f"invalid --map {quoted(text)}: the host and guest paths must not be empty",
            field="mapped_folders",
            value=text,
            allowed=allowed,
        )
    return host, guest, read_only


_PUBLISH_ALLOWED = "HOST:GUEST[/tcp|/udp] with ports 1-65535, e.g. 8080:80"
_UNPUBLISH_ALLOWED = "HOST[/tcp|/udp] with a port 1-65535, e.g. 8080 or 5353/udp"


def ascii_digits(text: str) -> bool:
    """``text`` is one or more ASCII digits 0-9.  Not ``str.isdigit``: it accepts ``²``,
    which ``int`` refuses (an internal error), and ``str.isdecimal`` accepts ``٣``, which
    ``int`` reads as 3 (review RV-warn R6)."""
    return text.isascii() and text.isdigit()


def _port(text: str, whole: str, *, option: str = "--publish") -> int:
    if not ascii_digits(text) or not 1 <= int(text) <= 65535:
        raise _spec_error(
            f"invalid {option} {whole!r}: {text!r} is not a port number",
            field="ports",
            value=whole,
            allowed=_PUBLISH_ALLOWED if option == "--publish" else _UNPUBLISH_ALLOWED,
        )
    return int(text)


def _protocol(text: str, whole: str, *, option: str, allowed: str) -> str:
    protocol = (text or "tcp").lower()
    if protocol not in {"tcp", "udp"}:
        raise _spec_error(
            f"invalid {option} {whole!r}: protocol {protocol!r} is not tcp or udp",
            field="ports",
            value=whole,
            allowed=allowed,
        )
    return protocol


def parse_publish(text: str) -> tuple[int, int, str]:
    """``HOST:GUEST[/tcp|/udp]`` → ``(host_port, guest_port, protocol)``.

    >>> parse_publish("8080:80/udp")
    (8080, 80, 'udp')
    """
    body, _, proto = text.partition("/")
    protocol = _protocol(proto, text, option="--publish", allowed=_PUBLISH_ALLOWED)
    host, sep, guest = body.partition(":")
    if not sep:
        raise _spec_error(
            f"invalid --publish {text!r}: expected HOST:GUEST",
            field="ports",
            value=text,
            allowed=_PUBLISH_ALLOWED,
        )
    return _port(host, text), _port(guest, text), protocol


def parse_unpublish(text: str) -> tuple[int, str]:
    """``HOST[/tcp|/udp]`` (``port --unpublish``) → ``(host_port, protocol)``.

    >>> parse_unpublish("5353/udp")
    (5353, 'udp')
    """
    body, _, proto = text.partition("/")
    protocol = _protocol(proto, text, option="--unpublish", allowed=_UNPUBLISH_ALLOWED)
    return _port(body, text, option="--unpublish"), protocol


def parse_key_value(text: str, *, option: str) -> tuple[str, str]:
    """``K=V`` → ``(K, V)``; the value may be empty, the key may not."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise _spec_error(
            f"invalid {option} {text!r}: expected KEY=VALUE",
            field=option.lstrip("-"),
            value=text,
            allowed="KEY=VALUE, e.g. stage=test",
        )
    return key, value


def parse_base(text: str) -> tuple[str, str | None]:
    """``host`` | ``image:PATH`` | ``vhdx:PATH`` → ``(kind, path)``."""
    kind, sep, path = text.partition(":")
    kind = kind.lower()
    allowed = "host, image:PATH (a folder with UtilityVM\\Files) or vhdx:PATH (a bootable disk)"
    if kind == "host" and not sep:
        return "host", None
    if kind in {"image", "vhdx"} and sep and path:
        return kind, path
    raise _spec_error(f"invalid --base {quoted(text)}", field="base", value=text, allowed=allowed)


def _seconds(text: str, *, zero_ok: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    bound = ">= 0" if zero_ok else "> 0"
    if not (value >= 0 if zero_ok else value > 0) or value == float("inf"):
        import argparse

        raise argparse.ArgumentTypeError(f"invalid seconds {text!r}: expected a number {bound}")
    return value


def codec(text: str) -> str:
    """An argparse ``type``: a Python text encoding that decodes guest output, returned as
    typed (THE rule of the library: ``guest.encoding_problem``)."""
    import argparse

    from hcs_sandbox.sandbox import guest

    problem = guest.encoding_problem(text)
    if problem is None:
        return text
    allowed = f"expected {guest.ENCODING_ALLOWED}"
    if problem == guest.UNKNOWN_ENCODING:
        raise argparse.ArgumentTypeError(f"unknown encoding {quoted(text)}: {allowed}")
    if problem == guest.NOT_A_TEXT_ENCODING:
        raise argparse.ArgumentTypeError(f"{quoted(text)} is not a text encoding: {allowed}")
    raise argparse.ArgumentTypeError(f"{quoted(text)} {problem.removeprefix('it ')}: {allowed}")


def add_encoding_option(parser: argparse.ArgumentParser, *, what: str) -> None:
    """``--encoding CODEC`` (:func:`codec`; None when not given: UTF-8)."""
    parser.add_argument(
        "--encoding",
        type=codec,
        metavar="CODEC",
        help=f"the encoding of {what} (a Python codec: cp850, cp932, utf-16-le...; default "
        "utf-8, invalid bytes shown as U+FFFD); see docs/exec.md",
    )


def seconds(text: str) -> float:
    """An argparse ``type``: a finite number of seconds > 0."""
    return _seconds(text, zero_ok=False)


def seconds_or_zero(text: str) -> float:
    """An argparse ``type``: a finite number of seconds >= 0."""
    return _seconds(text, zero_ok=True)


def _int_option(text: str, *, option: str, field: str, allowed: str) -> int:
    """A whole number; a negative one is returned as it is, for the spec to refuse with its
    bound ("below the minimum of 1"): ``-1`` is a whole number (QA tester F9)."""
    if not ascii_digits(text.strip().removeprefix("-")):
        raise _spec_error(
            f"invalid {option} {text!r}: not a whole number (digits 0-9)",
            field=field,
            value=text,
            allowed=allowed,
        )
    return int(text)


def parse_memory(text: str) -> int:
    """``4096`` / ``4096M`` / ``4G`` → MiB."""
    value = text.strip().upper().removesuffix("B")
    factor = 1
    if value.endswith("G"):
        factor, value = 1024, value[:-1]
    elif value.endswith("M"):
        value = value[:-1]
    allowed = "MiB as a whole number, or with a unit: 2048M, 4G"
    if not ascii_digits(value.strip().removeprefix("-")):  # report what the user typed
        return _int_option(text, option="--memory", field="memory_mb", allowed=allowed)
    return _int_option(value, option="--memory", field="memory_mb", allowed=allowed) * factor


def spec_from_args(
    args: argparse.Namespace, *, check_paths: bool = False, warned: set[str] | None = None
) -> SandboxSpec:
    """The SandboxSpec that ``run``/``create`` flags describe (a .wsb first, flags over it);
    the .wsb's warnings go to stderr.  See :func:`spec_and_warnings`.  ``warned``: a set
    that gets the spec fields those warnings are about (``WsbResult.warning_fields``), for
    :func:`print_sandbox_warnings`."""
    from hcs_sandbox.cli.output import warn

    spec, warnings, about = spec_warnings_about(args, check_paths=check_paths)
    for message in warnings:
        warn(message)
    if warned is not None:
        warned.update(about)
    if check_paths:
        # What Sandbox.create checks first, here too: a refusal then names the flag.
        check_spec_paths(spec, args, local=True)
    return spec


def print_sandbox_warnings(sandbox: Sandbox, warned: Iterable[str] = ()) -> None:
    """The planner's warnings for a sandbox just made (``Sandbox.warnings``: every setting
    that loosens isolation, every experimental choice), one ``warning:`` line each on
    stderr, without those about a spec field in ``warned`` (the .wsb's warnings printed
    before said it, with the file and line and how to turn it off)."""
    from hcs_sandbox.cli.output import warn

    for message in sandbox.warnings_unless(warned):
        warn(message)


def spec_and_warnings(
    args: argparse.Namespace, *, check_paths: bool = False, local: bool = True
) -> tuple[SandboxSpec, list[str]]:
    """The SandboxSpec the flags describe, and the .wsb's warnings (not printed).
    See :func:`spec_warnings_about`."""
    spec, warnings, _about = spec_warnings_about(args, check_paths=check_paths, local=local)
    return spec, warnings


def spec_warnings_about(
    args: argparse.Namespace, *, check_paths: bool = False, local: bool = True
) -> tuple[SandboxSpec, list[str], set[str]]:
    """The SandboxSpec the flags describe, the .wsb's warnings (not printed), and the spec
    fields those warnings are about (a planner warning about one of them says it again).

    Scalar flags replace the .wsb's value; ``--map``, ``--publish``, ``--env`` and ``--label``
    add to what the .wsb has.  ``check_paths``: a .wsb HostFolder the host-folder rule
    refuses is refused with the file and line, in the .wsb's words (``read_wsb``'s
    ``check_paths``); ``local`` False (``plan``, which may describe another machine's
    folders): the paths as written, whether they exist is not asked.
    """
    from hcs_sandbox.errors import SpecError
    from hcs_sandbox.sandbox.spec import (
        BaseImage,
        MappedFolder,
        PortMapping,
        SandboxSpec,
        check_new_name,
    )

    changes: dict[str, Any] = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.memory is not None:
        changes["memory_mb"] = parse_memory(args.memory)
    if args.cpus is not None:
        changes["cpus"] = _int_option(
            args.cpus, option="--cpus", field="cpus", allowed="a whole number from 1 to 64"
        )
    if args.network is not None:
        changes["network"] = args.network
    if args.base is not None:
        kind, path = parse_base(args.base)
        try:
            changes["base"] = BaseImage(kind=kind, path=path)  # type: ignore[arg-type]
        except SpecError as exc:
            raise _as_flag_error(exc, changes, args) from exc
    if args.display is not None:
        changes["display"] = args.display
    if args.persistent:
        changes["persistence"] = "persistent"
    for flag, _what in _DEVICE_SWITCHES:
        value = getattr(args, flag.replace("-", "_"), None)
        if value is not None:
            changes[flag.replace("-", "_")] = value
    if args.logon_command is not None:
        changes["logon_command"] = args.logon_command

    if args.wsb:
        from hcs_sandbox.sandbox.wsb import read_wsb

        # A flag replaces the .wsb's value: that value's warnings are moot, and an invalid
        # one is ignored with a warning instead of refused (the flag's is used).
        result = read_wsb(
            args.wsb, check_paths=check_paths, local=local, replaced=_replacing_flags(changes)
        )
        warnings = result.warnings_unless(changes)
        about = {f for f in result.warning_fields if f is not None and f not in changes}
        spec: SandboxSpec = result.spec
    else:
        warnings = []
        about = set()
        spec = SandboxSpec()

    maps = [parse_map(m) for m in args.map]
    if maps:
        folders = list(spec.mapped_folders)
        for k, (host, guest, read_only) in enumerate(maps):
            try:
                folders.append(MappedFolder(host_path=host, guest_path=guest, read_only=read_only))
            except SpecError as exc:  # mapped_folders.host_path: the k-th --map
                raise _as_flag_error(exc, changes, args, item=k) from exc
        changes["mapped_folders"] = tuple(folders)
    ports = [parse_publish(p) for p in args.publish]
    if ports:
        changes["ports"] = (
            *spec.ports,
            *(
                PortMapping(host_port=h, guest_port=g, protocol=pr)  # type: ignore[arg-type]
                for h, g, pr in ports
            ),
        )
    if args.env:
        env = dict(spec.environment)
        env.update(parse_key_value(e, option="--env") for e in args.env)
        changes["environment"] = env
    if args.label:
        labels = dict(spec.labels)
        labels.update(parse_key_value(lb, option="--label") for lb in args.label)
        changes["labels"] = labels
    if not changes:
        return spec, warnings, about
    try:
        spec = spec.replace(**changes)
        check_new_name(spec.name)  # (run/create/plan name a new sandbox: not like an id)
    except SpecError as exc:
        raise _as_flag_error(exc, changes, args) from exc
    return spec, warnings, about


def _replacing_flags(changes: dict[str, Any]) -> dict[str, str]:
    """Spec field -> the flag as typed, for each flag in ``changes`` that replaces a .wsb
    element's value (``--memory``, ``--network``, ``--logon-command``, ``--[no-]gpu`` ...)."""
    flags = {"memory_mb": "--memory", "network": "--network", "logon_command": "--logon-command"}
    for flag, _what in _DEVICE_SWITCHES:
        key = flag.replace("-", "_")
        if key in changes:
            flags[key] = f"--{flag}" if changes[key] else f"--no-{flag}"
    return {key: flag for key, flag in flags.items() if key in changes}


def check_spec_paths(spec: SandboxSpec, args: argparse.Namespace, *, local: bool) -> None:
    """The host paths of ``spec`` (from :func:`spec_and_warnings` of ``args``) through the
    check ``Sandbox.create`` applies: ``local`` True (``run``, ``create``):
    ``spec.check_host_paths()``, the folders and the base must exist here; False (``plan``,
    which may describe another machine): ``spec.check_mapped_folders(local=False)``, the
    paths as written.  A path a flag gave is refused naming the flag and its value as typed
    (``invalid --map 'C:\\nope:C:\\x': host folder C:\\nope cannot be mapped: ...``)."""
    from hcs_sandbox.errors import SpecError

    try:
        if local:
            spec.check_host_paths()
        else:
            spec.check_mapped_folders(local=False)
    except SpecError as exc:
        changes: dict[str, Any] = {"mapped_folders": spec.mapped_folders}
        if args.base is not None:
            changes["base"] = spec.base
        raise _as_flag_error(exc, changes, args) from exc


#: Spec field -> the flag that sets it, to name the flag in a value error.
_FIELD_FLAG = {
    "name": "--name",
    "memory_mb": "--memory",
    "cpus": "--cpus",
    "logon_command": "--logon-command",
}

#: Spec field -> (the repeatable flag that adds its items, the ``args`` attribute).  Their
#: items come after the .wsb's (which has no ports, environment or labels).
_LIST_FLAG = {
    "mapped_folders": ("--map", "map"),
    "ports": ("--publish", "publish"),
    "environment": ("--env", "env"),
    "labels": ("--label", "label"),
}

#: Spec field -> its remedy as the flags say it (the API's names fields: "set network to
#: 'nat' ... or drop the ports").
_FLAG_REMEDY = {
    "ports": "add --network nat or --network internet-only, or drop --publish",
}


def _as_flag_error(
    exc: SpecError, changes: dict[str, Any], args: Any = None, *, item: int | None = None
) -> SpecError:
    """``exc`` naming the flag instead of the spec field when a flag set that field; else
    ``exc`` itself (a .wsb's value, the API's words).

    ``name``, ``--memory``, ``--cpus``, ``--logon-command``: ``invalid --memory 512: ...``,
    not ``invalid memory_mb 512``.  ``--base``, ``--map``, ``--publish``, ``--env``,
    ``--label``: the flag and its value as typed (paths keep their single backslashes),
    then why: ``invalid --map 'C:\\src:relative': the guest path must be ...``.  Other items
    a message mentions (``nested with mapped_folders[0]``) are named by their flag too.
    ``item``: ``exc`` came from building the ``item``-th ``--map`` (its field has no index).
    """
    import re

    from hcs_sandbox.errors import SpecError

    field = exc.field or ""
    flag = _FIELD_FLAG.get(field)
    prefix = f"invalid {field} "
    if flag is not None:
        if field not in changes or not exc.message.startswith(prefix):
            return exc
        word = re.compile(rf"\b{re.escape(field)}\b")
        return SpecError(
            f"invalid {flag} " + exc.message[len(prefix) :],
            field=exc.field,
            value=exc.value,
            allowed=exc.allowed,
            remedy=word.sub(flag, exc.remedy) if exc.remedy else exc.remedy,
        )
    if args is None:
        return exc
    found = _typed_flag(field, exc.value, changes, args, item=item)
    if found is None:
        return exc
    flag, typed = found
    why = exc.reason
    if why is None:  # "host folder P of mapped_folders[0] cannot be mapped: ..."
        where = re.match(r"[a-z_]+\[\d+\]", field)
        why = exc.message.replace(f" of {where.group()}", "", 1) if where else exc.message
    why = re.sub(
        r"\b(mapped_folders|ports)\[(\d+)\]",
        lambda m: _mention(m.group(1), int(m.group(2)), changes, args),
        why,
    )
    remedy = _FLAG_REMEDY.get(field, exc.remedy)
    shown = quoted(typed)
    if field == "ports":  # "port mappings need a network": every -p is refused, name them all
        _flag, words, _before = _flag_words("ports", changes, args)
        if len(words) > 1:
            typed_words = [quoted(w) for w in words]
            shown = f"{', '.join(typed_words[:-1])} and {typed_words[-1]}"
    return SpecError(
        f"invalid {flag} {shown}: {why}",
        field=exc.field,
        value=exc.value,
        allowed=exc.allowed,
        remedy=remedy,
    )


def _flag_words(top: str, changes: dict[str, Any], args: Any) -> tuple[str, list[str], int]:
    """(flag, its words as typed, how many items come before the first of them)."""
    flag, attribute = _LIST_FLAG[top]
    words: list[str] = list(getattr(args, attribute, None) or [])
    items = changes.get(top)
    before = len(items) - len(words) if isinstance(items, tuple) else 0
    return flag, words, before


def _typed_flag(
    field: str, value: object, changes: dict[str, Any], args: Any, *, item: int | None
) -> tuple[str, str] | None:
    """The flag that gave the value ``field`` refers to, and that value as typed; None
    when no flag gave it."""
    import re

    if field == "base" or field.startswith("base."):
        return ("--base", args.base) if args.base is not None else None  # a .wsb has none
    match = re.fullmatch(r"([a-z_]+)(?:\[(.*?)\])?(?:\.[a-z_]+)?", field)
    if match is None or match.group(1) not in _LIST_FLAG:
        return None
    top, index = match.group(1), match.group(2)
    flag, words, before = _flag_words(top, changes, args)
    if not words:
        return None
    if top in ("environment", "labels"):  # the key: environment[KEY] or the value
        key = index if index is not None else value
        typed = [w for w in words if w.partition("=")[0] == key]
        return (flag, typed[-1]) if typed else None  # the last one of a key is the one kept
    if item is not None:
        k = item
    elif index is not None and index.isdigit():
        k = int(index) - before
    elif top == "ports":  # "port mappings need a network": every -p (_as_flag_error names all)
        k = 0
    else:
        return None
    return (flag, words[k]) if 0 <= k < len(words) else None


def _mention(top: str, index: int, changes: dict[str, Any], args: Any) -> str:
    """How a message names item ``index`` of ``top`` (``nested with mapped_folders[0]``):
    ``--map 'C:\\a:C:\\x'`` for a flag's, ``a .wsb MappedFolder`` for the .wsb's."""
    flag, words, before = _flag_words(top, changes, args)
    k = index - before
    if 0 <= k < len(words):
        return f"{flag} {quoted(words[k])}"
    return "a .wsb MappedFolder" if top == "mapped_folders" else f"{top}[{index}]"


# ------------------------------------------------------------------------------ running


def error_line(what: BaseException | str, *, kind: str = "error") -> None:
    """Print ``what`` (an exception or a message) as one ``hcs-sandbox: error: ...`` line on
    stderr, its whitespace (newlines included) collapsed; ``kind`` replaces ``error``."""
    text = " ".join(str(what).split())
    print(f"hcs-sandbox: {kind}: {text}", file=sys.stderr)


def traceback_if_debug() -> None:
    """With ``--debug``: the traceback of the exception being handled, on stderr (before its
    error line), as :func:`hcs_sandbox.cli.main.main` prints for the error it ends with."""
    from hcs_sandbox.cli.main import debugging

    if debugging():
        import traceback

        traceback.print_exc()


def host_exit_code(code: int) -> int:
    """The exit status this process can return for a guest exit code (``exec``,
    ``run -- COMMAND``): the full 32-bit code on Windows; elsewhere 0-255 as is, else 1
    (POSIX exit statuses have 8 bits).

    On Windows the 32 bits are returned as a signed number (0xC0000005 -> -1073741819):
    Windows reports the same 32 bits as the process's exit code, and every Python passes a
    signed 32-bit value through ``sys.exit``, whereas Python 3.10 and 3.11 turn an unsigned
    value of 0x80000000 or more into 0xFFFFFFFF (their exit status goes through a C
    ``long``, 32-bit on Windows: CPython gh-125842, fixed by PR #125896 in later versions).
    """
    if sys.platform == "win32":
        bits = code & 0xFFFFFFFF
        return bits - 0x100000000 if bits >= 0x80000000 else bits
    return code if 0 <= code <= 255 else 1


def each_sandbox(
    names: Iterable[str],
    action: Callable[[Sandbox], Any],
    *,
    on_done: Callable[[str, Sandbox, Any], None] | None = None,
) -> int:
    """Run ``action`` on each named sandbox; continue past failures with one line each.

    Returns 0 when every one succeeded; otherwise the exit code all failures share, or 1 when
    they differ (e.g. ``rm a missing`` exits 2: no such sandbox).  HCS being unavailable stops
    at once (nothing else could work either).
    """
    from hcs_sandbox.errors import HcsSandboxError, HcsUnavailableError
    from hcs_sandbox.sandbox.sandbox import Sandbox

    codes: set[int] = set()
    for name in names:
        try:
            sandbox = Sandbox.get(name)
            try:
                result = action(sandbox)
            finally:
                sandbox.close()
        except HcsUnavailableError:
            raise
        except HcsSandboxError as exc:
            traceback_if_debug()
            error_line(exc)
            codes.add(exc.exit_code)
            continue
        if on_done is not None:
            on_done(name, sandbox, result)
    if not codes:
        return 0
    return codes.pop() if len(codes) == 1 else 1


def names_argument(parser: argparse.ArgumentParser, *, what: str) -> None:
    """A ``NAME...`` positional (names, ids or unique id prefixes)."""
    parser.add_argument(
        "names", nargs="+", metavar="NAME", help=f"{what}: sandbox names, ids or id prefixes"
    )


def print_names_or_json(
    args: argparse.Namespace, done: Sequence[dict[str, Any]], simulated: bool
) -> None:
    """After a per-sandbox verb: the names (one a line) or ``--json`` (a list of objects)."""
    from hcs_sandbox.cli.output import notice_if_simulated, print_json

    if args.json:
        print_json([with_simulated(d, simulated) for d in done])
    else:
        for d in done:
            print(d["name"])
    notice_if_simulated(simulated)


def run_per_sandbox(args: argparse.Namespace, action: Callable[[Sandbox], dict[str, Any]]) -> int:
    """The body of ``start``/``stop``/``kill``/``pause``/``resume``/``rm``: apply ``action``
    to each name, print what succeeded (names, or ``--json`` objects), one error line for each
    failure; the exit code follows :func:`each_sandbox`."""
    done: list[dict[str, Any]] = []
    simulated = is_simulated()

    def record(_name: str, _sandbox: Sandbox, result: Any) -> None:
        done.append(result)

    code = each_sandbox(args.names, action, on_done=record)
    print_names_or_json(args, done, simulated)
    return code


def summary(sandbox: Sandbox, **extra: Any) -> dict[str, Any]:
    """``{"name", "id", "state"}`` of a sandbox plus ``extra``."""
    out: dict[str, Any] = {"name": sandbox.name, "id": sandbox.id, "state": sandbox.state}
    out.update(extra)
    return out
