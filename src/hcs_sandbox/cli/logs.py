"""``hcs-sandbox logs [-f] [--json] NAME``: print a sandbox's log.

The log is the sandbox's lifecycle (created, started, mapped, stopped ...) followed by the
output of its logon command.  ``-f`` keeps printing new lines until the sandbox stops
(or Ctrl+C); it reads the logon command's output past the bytes it has shown, so a
character the guest has half written is shown once it is whole; a lifecycle line that
comes after output was shown is printed once, on its own line after that output; the whole
log is printed again only when the output was rewritten (shorter than what was shown).

``--encoding CODEC``: the logon command's output is decoded with it (default UTF-8, invalid
bytes shown as U+FFFD): ``cp850`` for what cmd.exe's built-ins write on a German guest...
(docs/exec.md).

``--json``: one JSON list of entries ``{"time", "source", "line"}``: ``time`` is the
lifecycle line's UTC time (``2026-11-26T03:25:17Z``, to the second) or null (the logon
command's output and notes carry no time), ``source`` is ``"lifecycle"`` or ``"logon"``,
``line`` the text without its newline.  With ``-f``: one such object per line of output
(JSON Lines), each printed once, as it arrives; a logon output line is printed once it is
complete (or when following ends).

Exit codes: 0; 2 no such sandbox; 1 the log cannot be read.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

#: The line between the lifecycle log and the logon command's output in ``Sandbox.logs()``
#: (``hcs_sandbox.sandbox.logon._SEPARATOR``; a test checks they agree).
LOGON_SEPARATOR = "---- logon command output ----"
#: A lifecycle line's time stamp (``sandbox._log_text``: ``%Y-%m-%dT%H:%M:%SZ`` + space).
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) ")


def entries(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """``Sandbox.logs()`` text as JSON entries: (lifecycle entries, logon output entries,
    the logon output's unfinished last line, ``""`` when it ends in a newline)."""
    lifecycle: list[dict[str, Any]] = []
    logon: list[dict[str, Any]] = []
    head, sep, output = text.partition(LOGON_SEPARATOR + "\n")
    if not sep:
        head, output = text, ""
    for line in head.splitlines():
        match = _STAMP.match(line)
        if match:
            lifecycle.append({"time": match.group(1), "source": "lifecycle", "line": line[21:]})
        else:  # a note without a time ("logon command finished ..."), or a continuation
            lifecycle.append({"time": None, "source": "lifecycle", "line": line})
    *complete, partial = output.split("\n")
    logon = [{"time": None, "source": "logon", "line": line} for line in complete]
    return lifecycle, logon, partial


def register(subparsers: Any) -> argparse.ArgumentParser:
    from hcs_sandbox.cli.common import add_encoding_option
    from hcs_sandbox.cli.main import add_global_options

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "logs",
        help="print a sandbox's log and its logon command's output",
        description="Print a sandbox's lifecycle log and the output of its logon command.",
    )
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new output until it stops"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.5,
        help=argparse.SUPPRESS,  # polling interval for --follow (tests)
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="a JSON list of {time, source, line}; with -f one JSON object per line",
    )
    add_encoding_option(parser, what="the logon command's output")
    parser.add_argument("name", metavar="NAME", help="the sandbox (name or id)")
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handle)
    return parser


class _Decoded:
    """The logon command's output as text, piece by piece (``logs -f``): an incremental
    decoder holds back a character the guest has half written until its tail arrives, and
    a CR at the end of a piece waits for the next one, so CRLF becomes ``\\n`` as in
    ``Sandbox.logs()`` (review RV35 F3: a poll that caught ``caf\\xc3`` showed U+FFFD, and
    the next one, ``café``, no longer began with what was shown: the whole log again)."""

    def __init__(self, encoding: str) -> None:
        import codecs

        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._cr = False

    def feed(self, data: bytes, final: bool = False) -> str:
        text = self._decoder.decode(data, final)
        if self._cr:
            text, self._cr = "\r" + text, False
        if not final and text.endswith("\r"):
            text, self._cr = text[:-1], True
        return text.replace("\r\n", "\n")


def handle(args: argparse.Namespace) -> int:
    from hcs_sandbox.cli.output import notice_if_simulated, write_text
    from hcs_sandbox.sandbox.sandbox import Sandbox

    sandbox = Sandbox.get(args.name)
    notice_if_simulated(sandbox.simulated)
    if args.json:
        try:
            return _json(args, sandbox)
        finally:
            sandbox.close()
    try:
        if not args.follow:
            write_text(sys.stdout, sandbox.logs(args.encoding or "utf-8"))
            return 0
        return _follow(args, sandbox)
    finally:
        sandbox.close()


def _follow(args: argparse.Namespace, sandbox: Any) -> int:
    """``-f`` in text: the log, then what is added to it until the sandbox stops.  The
    logon command's output is followed by its byte offset (``Sandbox.read_log``) and decoded
    piece by piece (:class:`_Decoded`).  A lifecycle line stored after output was shown
    (``stopped``, a note) is printed once, when it comes, on a line of its own after the
    output shown (each line once by its text, as ``--json -f`` does: :func:`_new_lines`);
    the whole log is printed again only when the output was rewritten (shorter than what
    was shown)."""
    import time

    from hcs_sandbox.cli.output import write_text
    from hcs_sandbox.sandbox.store import LIVE_STATES

    encoding = args.encoding or "utf-8"
    last = ["\n"]  # the last character written
    # Whether logon output was written: until then the lifecycle lines and the separator
    # that come go BEFORE the output that comes with them (review RV38 #1), after it
    # once output was shown.
    output_shown = [False]

    def write(text: str) -> None:
        if text:
            write_text(sys.stdout, text)
            last[0] = text[-1]

    def write_output(text: str) -> None:
        if text:
            write(text)
            output_shown[0] = True

    def write_all(read: Any) -> tuple[_Decoded, dict[str, int]]:
        decoded = _Decoded(encoding)
        seen: dict[str, int] = {}
        _new_lines(read.head, seen)
        output_shown[0] = False
        write(read.head)
        write_output(decoded.feed(read.output))
        return decoded, seen

    read = sandbox.read_log()
    decoded, seen = write_all(read)
    offset = read.size
    try:
        while True:
            state = sandbox.state
            running = state in LIVE_STATES or state == "creating"
            time.sleep(max(0.05, args.interval))
            read = sandbox.read_log(offset)
            if read.start >= offset:
                if read.start > offset:  # grew by more than logon.MAX_SHOWN meanwhile
                    decoded = _Decoded(encoding)
                fresh = "".join(_new_lines(read.head, seen))
                if not output_shown[0]:
                    write(fresh)  # no output yet: the head's new lines come first
                    fresh = ""
                write_output(decoded.feed(read.output))
                if fresh:
                    write(("" if last[0] == "\n" else "\n") + fresh)
            else:  # rewritten: all of it again
                read = sandbox.read_log()
                decoded, seen = write_all(read)
            offset = read.size
            if not running:
                write_output(decoded.feed(b"", final=True))
                return 0
    except KeyboardInterrupt:
        return 0


def _new_lines(head: str, seen: dict[Any, int]) -> list[str]:
    """The lines of ``head`` (each with its newline) not printed yet, by text, counting
    repeats; ``seen`` is updated (:func:`new_entries` on the text lines)."""
    lines = [raw if raw.endswith("\n") else raw + "\n" for raw in head.splitlines(keepends=True)]
    return _unseen(lines, lambda line: line, seen)


def new_entries(
    found: list[dict[str, Any]], seen: dict[tuple[Any, str], int]
) -> list[dict[str, Any]]:
    """The lifecycle entries of ``found`` not printed yet, by (time, line), counting
    repeats; ``seen`` is updated.  The lifecycle part does not only grow at its end: a note
    (``logon command finished ... (seen by the guest)``, the ``only the last ...`` note)
    comes after the stored lines and goes away again, and a line stored later is placed
    before it -- so a position says nothing, and each entry is printed once by its text."""
    return _unseen(found, lambda entry: (entry.get("time"), str(entry.get("line"))), seen)


_Item = TypeVar("_Item")


def _unseen(items: list[_Item], key: Callable[[_Item], Any], seen: dict[Any, int]) -> list[_Item]:
    """The ``items`` not printed yet, by ``key``, counting repeats (the third identical
    line is new when two were printed); ``seen`` is updated."""
    fresh: list[_Item] = []
    counted: dict[Any, int] = {}
    for item in items:
        k = key(item)
        counted[k] = counted.get(k, 0) + 1
        if counted[k] > seen.get(k, 0):
            seen[k] = counted[k]
            fresh.append(item)
    return fresh


def _json(args: argparse.Namespace, sandbox: Any) -> int:
    """``--json``: one list; with ``-f``, JSON Lines as the log grows (each entry once:
    lifecycle entries by their text, :func:`new_entries`; the logon output only grows, so
    what is new there is what lies past the count already printed).  Past
    ``logon.MAX_SHOWN`` bytes of logon output, ``logs()`` shows only the newest part and
    ``-f`` may skip lines (text mode prints that part again instead)."""
    import json
    import time

    from hcs_sandbox.cli.output import print_json, with_simulated
    from hcs_sandbox.sandbox.store import LIVE_STATES

    simulated = sandbox.simulated
    encoding = args.encoding or "utf-8"
    lifecycle, logon, partial = entries(sandbox.logs(encoding))
    if not args.follow:
        tail = [{"time": None, "source": "logon", "line": partial}] if partial else []
        print_json([with_simulated(e, simulated) for e in lifecycle + logon + tail])
        return 0

    printed = {"logon": 0}
    seen: dict[tuple[Any, str], int] = {}

    def emit(found: list[dict[str, Any]], source: str) -> None:
        if source == "lifecycle":
            fresh = new_entries(found, seen)
        else:
            fresh = found[printed[source] :]
            printed[source] = max(printed[source], len(found))
        for entry in fresh:
            sys.stdout.write(json.dumps(with_simulated(entry, simulated), sort_keys=True))
            sys.stdout.write("\n")
        sys.stdout.flush()

    emit(lifecycle, "lifecycle")
    emit(logon, "logon")
    try:
        while True:
            state = sandbox.state
            running = state in LIVE_STATES or state == "creating"
            time.sleep(max(0.05, args.interval))
            lifecycle, logon, partial = entries(sandbox.logs(encoding))
            emit(lifecycle, "lifecycle")
            emit(logon, "logon")
            if not running:
                if partial:
                    emit([*logon, {"time": None, "source": "logon", "line": partial}], "logon")
                return 0
    except KeyboardInterrupt:
        return 0
