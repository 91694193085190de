"""Windows Sandbox ``.wsb`` files ⇄ :class:`~hcs_sandbox.sandbox.spec.SandboxSpec`.

Reading applies **Windows Sandbox's own defaults** (a ``.wsb`` without ``<Networking>`` gets a
network, as it would in Windows Sandbox) and returns a warning for every setting that loosens
isolation, so the user sees what the file really asks for.  ``docs/wsb.md`` has the mapping
table.

Sources for the format and its defaults: Microsoft, *Use and configure Windows Sandbox*
(MicrosoftDocs/windows-itpro-docs ``windows/security/application-security/application-isolation/
windows-sandbox/windows-sandbox-configure-using-wsb-file.md``), which lists the elements
VGpu (also spelled vGPU), Networking, MappedFolders/MappedFolder (HostFolder, SandboxFolder,
ReadOnly), LogonCommand/Command, AudioInput, VideoInput, ProtectedClient, PrinterRedirection,
ClipboardRedirection and MemoryInMB, the values Enable/Disable/Default, and the defaults:
vGPU enabled (non-Arm64), networking enabled, audio input enabled, video input disabled,
protected client disabled, printer redirection disabled, clipboard redirection enabled,
ReadOnly false, a 4 GB default memory cap and a 2048 MB minimum.  ``Disabled`` is accepted
because Microsoft's own ``wsb start --config`` example (``windows-sandbox-cli.md``) and
pywinsandbox (``winsandbox/config/config_genereator.py``) write it;
``True``/``False`` because public files use them.

Parsing is safe: at most :data:`MAX_WSB_BYTES`, UTF-8 (with or without BOM) or UTF-16 with a
BOM, no DTD at all (so no entity declarations, no external entities and no entity expansion
beyond XML's five predefined entities and character references), stdlib expat only.
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn
from xml.parsers import expat

from hcs_sandbox.errors import SpecError, WsbError
from hcs_sandbox.sandbox import hostpath
from hcs_sandbox.sandbox.spec import MAX_MEMORY_MB, MappedFolder, SandboxSpec, short_repr

__all__ = [
    "MAX_WSB_BYTES",
    "WSB_DEFAULTS",
    "WSB_MIN_MEMORY_MB",
    "WsbResult",
    "parse_wsb",
    "read_wsb",
    "to_wsb",
]

MAX_WSB_BYTES = 1024 * 1024
# "If the memory value specified is insufficient to boot a sandbox, it's automatically
# increased to the required minimum amount of 2048 MB"
# (windows-sandbox-configure-using-wsb-file.md).
WSB_MIN_MEMORY_MB = 2048
# "a basic Sandbox with maximum capacity of 4GB memory" (same page).
WSB_DEFAULT_MEMORY_MB = 4096
_MAX_DEPTH = 8  # a .wsb nests 4 deep (Configuration/MappedFolders/MappedFolder/HostFolder)

# Windows Sandbox's default for each on/off element (same page, "Supported values ... Default").
WSB_DEFAULTS: Mapping[str, bool] = {
    "VGpu": True,  # "Currently, this default value denotes that vGPU is enabled" (non-Arm64)
    "Networking": True,  # "enables networking by creating a virtual switch"
    "AudioInput": True,  # "this default value denotes that audio input is enabled"
    "VideoInput": False,  # "this default value denotes that video input is disabled"
    "ProtectedClient": False,  # "the sandbox doesn't run in Protected Client mode"
    "PrinterRedirection": False,  # "default value denotes that printer redirection is disabled"
    "ClipboardRedirection": True,  # "copy/paste between the host and sandbox are permitted"
}
_TOGGLE_FIELD = {
    "VGpu": "gpu",
    "Networking": "network",
    "AudioInput": "audio_input",
    "VideoInput": "video_input",
    "ProtectedClient": "protected_client",
    "PrinterRedirection": "printer",
    "ClipboardRedirection": "clipboard",
}
# What each loosening toggle exposes, for warnings: (subject, consequence).
_TOGGLE_WHAT = {
    "VGpu": ("the virtual GPU", "the host's graphics driver is exposed to the sandbox"),
    "Networking": ("networking", "the sandbox can reach your LAN and the internet"),
    "AudioInput": ("audio input", "the sandbox can hear the host's microphone"),
    "VideoInput": ("video input", "the sandbox can see the host's camera"),
    "PrinterRedirection": ("printer redirection", "the sandbox can use the host's printers"),
    "ClipboardRedirection": ("clipboard redirection", "text and files can pass both ways"),
}
# Spec field -> the .wsb element it comes from, to name it in errors.
_FIELD_ELEMENT = {
    "memory_mb": "MemoryInMB",
    "logon_command": "Command",
    "mapped_folders": "MappedFolder",
    **{spec_field: element for element, spec_field in _TOGGLE_FIELD.items()},
}
_ENABLE = frozenset({"enable", "enabled", "true"})
_DISABLE = frozenset({"disable", "disabled", "false"})
_DEFAULT = frozenset({"default"})
_TOGGLE_ALLOWED = "Enable, Disable or Default (also Enabled, Disabled, true, false)"

_TOP = (
    "VGpu",
    "Networking",
    "MemoryInMB",
    "MappedFolders",
    "LogonCommand",
    "AudioInput",
    "VideoInput",
    "ProtectedClient",
    "PrinterRedirection",
    "ClipboardRedirection",
)
_FOLDER_CHILDREN = ("HostFolder", "SandboxFolder", "ReadOnly")


@dataclass(frozen=True)
class WsbResult:
    """The spec a ``.wsb`` describes, and one warning per setting that loosens isolation.

    ``warning_fields``: for each warning, the spec field it is about (``gpu``, ``network``,
    ``memory_mb``, ``display``, ``mapped_folders[0]``, ...), or None; :meth:`warnings_unless`
    uses it, and the CLI prints a planner warning about the same field only once
    (``Sandbox.warnings_unless``)."""

    spec: SandboxSpec
    warnings: list[str] = field(default_factory=list)
    warning_fields: tuple[str | None, ...] = ()

    def warnings_unless(self, fields: Iterable[str]) -> list[str]:
        """The warnings, without those about the spec ``fields`` that something else (a
        command-line flag) replaced: ``--no-gpu`` makes a .wsb's VGpu warning moot."""
        moot = set(fields)
        about = self.warning_fields
        if len(about) != len(self.warnings):  # built without them: none is about a field
            about = (None,) * len(self.warnings)
        return [w for w, f in zip(self.warnings, about, strict=True) if f is None or f not in moot]


# --------------------------------------------------------------------------------------
# A minimal tree with line numbers, built by expat with DTDs refused
# --------------------------------------------------------------------------------------


@dataclass
class _Node:
    name: str
    line: int
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)

    @property
    def value(self) -> str:
        return "".join(self.text).strip()


class _Ctx:
    """Where errors point: the file's name."""

    def __init__(
        self, source_path: str | None, replaced: Mapping[str, str | None] | None = None
    ) -> None:
        self.path = source_path
        self.label = source_path or "<wsb>"
        self.warnings: list[str] = []
        self.warning_fields: list[str | None] = []
        #: Spec field -> what replaces the file's value (None: unnamed), see parse_wsb.
        self.replaced: Mapping[str, str | None] = replaced or {}

    def fail(
        self, message: str, line: int | None, remedy: str, *, value: object = None
    ) -> NoReturn:
        raise WsbError(message, path=self.label, line=line, value=value, remedy=remedy)

    def bad_value(
        self, message: str, line: int | None, remedy: str, *, about: str, value: object = None
    ) -> None:
        """An element's value the reader refuses (:meth:`fail`), unless the caller replaces
        the spec field ``about`` it becomes: then a warning that the value was ignored (kept
        by ``warnings_unless``, which drops only warnings about what the file asks for)."""
        if about not in self.replaced:
            self.fail(message, line, remedy, value=value)
        by = self.replaced[about]
        self.warn(
            f"{message}; ignored, as {by or 'the value given in its place'} replaces it", line
        )

    def warn(self, message: str, line: int | None = None, *, about: str | None = None) -> None:
        """A warning; ``about``: the spec field it concerns (see ``WsbResult.warning_fields``)."""
        where = self.label if line is None else f"{self.label}:{line}"
        self.warnings.append(f"{where}: {message}")
        self.warning_fields.append(about)


def _decode(data: bytes, ctx: _Ctx) -> str:
    remedy = "save the file as UTF-8 (or UTF-16 with a byte-order mark)"
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        ctx.fail("the file is UTF-32, which is not supported", 1, remedy)
    if data.startswith(codecs.BOM_UTF8):
        body, encoding = data[len(codecs.BOM_UTF8) :], "utf-8"
    elif data.startswith(codecs.BOM_UTF16_LE):
        body, encoding = data[2:], "utf-16-le"
    elif data.startswith(codecs.BOM_UTF16_BE):
        body, encoding = data[2:], "utf-16-be"
    else:
        body, encoding = data, "utf-8"
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        line = body[: exc.start].decode(encoding, errors="replace").count("\n") + 1
        ctx.fail(f"the file is not valid {encoding.upper()} ({exc.reason})", line, remedy)


def _parse_tree(text: str, ctx: _Ctx) -> _Node:
    parser = expat.ParserCreate(encoding="UTF-8")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Node] = []
    roots: list[_Node] = []
    no_dtd = "remove the <!DOCTYPE ...> and any entity declarations; .wsb files need none"

    def doctype(*_args: object) -> None:
        ctx.fail(
            "DTDs (<!DOCTYPE>) are not allowed in a .wsb file", parser.CurrentLineNumber, no_dtd
        )

    def entity_decl(*_args: object) -> None:
        ctx.fail("entity declarations are not allowed", parser.CurrentLineNumber, no_dtd)

    def external_entity(*_args: object) -> int:
        ctx.fail("external entities are not allowed", parser.CurrentLineNumber, no_dtd)

    def start(name: str, attrs: dict[str, str]) -> None:
        node = _Node(name, parser.CurrentLineNumber, dict(attrs))
        if len(stack) >= _MAX_DEPTH:
            ctx.fail(
                f"<{name}> is nested too deeply",
                node.line,
                "a .wsb nests at most Configuration/MappedFolders/MappedFolder/HostFolder",
            )
        if stack:
            stack[-1].children.append(node)
        else:
            roots.append(node)
        stack.append(node)

    def end(_name: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        if stack:
            stack[-1].text.append(data)

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity_decl
    parser.UnparsedEntityDeclHandler = entity_decl
    parser.ExternalEntityRefHandler = external_entity
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(text.encode("utf-8"), True)
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code) if exc.code is not None else str(exc)
        ctx.fail(
            f"malformed XML: {reason} (column {exc.offset + 1})",
            exc.lineno,
            "fix the XML; every <Element> needs a matching </Element> and '&' must be "
            "written &amp;",
        )
    return roots[0]


# --------------------------------------------------------------------------------------
# Interpreting the tree
# --------------------------------------------------------------------------------------


def _canonical(node: _Node, known: tuple[str, ...], parent: str, ctx: _Ctx) -> str:
    """The documented spelling of ``node``'s name (names match case-insensitively)."""
    folded = node.name.casefold()
    for name in known:
        if name.casefold() == folded:
            return name
    close = difflib.get_close_matches(folded, [k.casefold() for k in known], n=1)
    hint = ""
    if close:
        hint = f"did you mean <{next(k for k in known if k.casefold() == close[0])}>? "
    ctx.fail(
        f"unknown element <{node.name}> in <{parent}>",
        node.line,
        f"{hint}<{parent}> may contain: {', '.join(known)}",
        value=node.name,
    )


def _no_stray_text(node: _Node, ctx: _Ctx) -> None:
    text = node.value
    if text:
        shown = text if len(text) <= 40 else text[:37] + "..."
        ctx.fail(
            f"unexpected text {shown!r} directly inside <{node.name}>",
            node.line,
            f"<{node.name}> holds only elements; put the value inside the right element",
        )


def _attributes(node: _Node, ctx: _Ctx) -> None:
    if node.attrs:
        names = ", ".join(sorted(node.attrs))
        ctx.warn(
            f"attributes on <{node.name}> ({names}) are not part of .wsb and are ignored", node.line
        )


def _leaf(node: _Node, canonical: str, ctx: _Ctx) -> str:
    _attributes(node, ctx)
    if node.children:
        child = node.children[0]
        ctx.fail(
            f"<{canonical}> cannot contain <{child.name}>",
            child.line,
            f"<{canonical}> holds a single value",
        )
    return node.value


def _unique(
    children: list[_Node], known: tuple[str, ...], parent: str, ctx: _Ctx
) -> dict[str, _Node]:
    found: dict[str, _Node] = {}
    for child in children:
        name = _canonical(child, known, parent, ctx)
        if name in found:
            ctx.fail(
                f"<{name}> appears twice in <{parent}> (first at line {found[name].line})",
                child.line,
                f"keep only one <{name}>",
            )
        found[name] = child
    return found


def _toggle(node: _Node, name: str, ctx: _Ctx) -> tuple[bool, bool] | None:
    """``(enabled, explicit)`` for an on/off element; None when its invalid value was
    ignored (the caller replaces it: ``_Ctx.bad_value``)."""
    raw = _leaf(node, name, ctx)
    word = raw.casefold()
    if word in _ENABLE:
        return True, True
    if word in _DISABLE:
        return False, True
    if word in _DEFAULT:
        return WSB_DEFAULTS[name], False
    ctx.bad_value(
        f"invalid value {raw!r} for <{name}>",
        node.line,
        f"use {_TOGGLE_ALLOWED}",
        about=_TOGGLE_FIELD[name],
        value=raw,
    )
    return None


def _memory(node: _Node, ctx: _Ctx) -> int:
    raw = _leaf(node, "MemoryInMB", ctx)
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        ctx.bad_value(
            f"invalid value {raw!r} for <MemoryInMB>",
            node.line,
            "use a whole number of megabytes, such as 4096",
            about="memory_mb",
            value=raw,
        )
        return WSB_DEFAULT_MEMORY_MB  # ignored: the caller's value replaces it
    value = int(raw)
    if value < WSB_MIN_MEMORY_MB:
        ctx.warn(
            f"MemoryInMB {value} is below Windows Sandbox's minimum; using "
            f"{WSB_MIN_MEMORY_MB} MB as Windows Sandbox does",
            node.line,
            about="memory_mb",
        )
        value = WSB_MIN_MEMORY_MB
    return value


def _host_folder(
    node: _Node, ctx: _Ctx, environ: Mapping[str, str] | None, base_dir: str | None
) -> str:
    raw = _leaf(node, "HostFolder", ctx)
    if not raw:
        ctx.fail("<HostFolder> is empty", node.line, "give the host folder's path")
    try:
        path = hostpath.expand_variables(raw, environ)
    except SpecError as exc:
        ctx.fail(f"in <HostFolder>: {exc.message}", node.line, exc.remedy or "", value=raw)
    if hostpath.is_unc(path):
        ctx.fail(
            f"<HostFolder> {path} is a UNC or device path, which is not accepted",
            node.line,
            "copy the files to a local folder and map that (Windows Sandbox 24H2 also "
            "refuses network shares)",
            value=path,
        )
    if not hostpath.is_absolute_host_path(path) and not re.match(r"[A-Za-z]:", path):
        if base_dir is None:
            ctx.fail(
                f"<HostFolder> {path} is relative and the .wsb's folder is unknown",
                node.line,
                "use an absolute path, or read the file with read_wsb() / pass base_dir",
                value=path,
            )
        path = hostpath.join_host_path(base_dir, path)
    problem = hostpath.host_path_problem(path)
    if problem:
        ctx.fail(f"<HostFolder> {path}: {problem}", node.line, "fix <HostFolder>", value=path)
    return path


def _mapped_folder(
    node: _Node,
    ctx: _Ctx,
    environ: Mapping[str, str] | None,
    base_dir: str | None,
    *,
    check_paths: bool,
    local: bool,
    index: int,
) -> MappedFolder:
    _attributes(node, ctx)
    _no_stray_text(node, ctx)
    parts = _unique(node.children, _FOLDER_CHILDREN, "MappedFolder", ctx)
    if "HostFolder" not in parts:
        ctx.fail(
            "<MappedFolder> has no <HostFolder>",
            node.line,
            "add <HostFolder>C:\\path\\to\\folder</HostFolder> inside it",
        )
    host_node = parts["HostFolder"]
    host = _host_folder(host_node, ctx, environ, base_dir)
    if check_paths:
        # THE host-folder check (the one create and runtime map use), against the state
        # directory Sandbox.create uses by default (the CLI sets it from --state-dir).
        from hcs_sandbox.sandbox import files

        found = files.host_folder_problem(host, protected=files.protected_folders(), local=local)
        if found is not None:
            why, remedy = found
            if why == "it does not exist":
                remedy += " (Windows Sandbox refuses to start too)"
            ctx.fail(
                f"<HostFolder> {host} cannot be mapped: {why}", host_node.line, remedy, value=host
            )

    if "SandboxFolder" in parts:
        guest_node = parts["SandboxFolder"]
        guest = _leaf(guest_node, "SandboxFolder", ctx)
        guest_line = guest_node.line
    else:
        base = hostpath.host_basename(host)
        if not base:
            ctx.fail(
                f"<MappedFolder> for {host} has no <SandboxFolder>, and a drive root has no "
                "name to put on the sandbox desktop",
                node.line,
                "add <SandboxFolder>C:\\some\\folder</SandboxFolder>",
            )
        guest = f"{hostpath.WSB_DEFAULT_DESKTOP}\\{base}"
        guest_line = node.line
    problem = hostpath.guest_path_problem(guest)
    if problem:
        ctx.fail(
            f"<SandboxFolder> {guest}: {problem}",
            guest_line,
            "give an absolute Windows path such as C:\\data",
            value=guest,
        )

    if "ReadOnly" in parts:
        ro_node = parts["ReadOnly"]
        raw = _leaf(ro_node, "ReadOnly", ctx)
        word = raw.casefold()
        if word not in ("true", "false"):
            ctx.fail(f"invalid value {raw!r} for <ReadOnly>", ro_node.line, "use true or false")
        read_only = word == "true"
        if not read_only:
            ctx.warn(
                f"mapped folder {host} is writable from the sandbox at {guest}; changes "
                "persist on the host",
                ro_node.line,
                about=f"mapped_folders[{index}]",
            )
    else:
        read_only = False
        ctx.warn(
            f"mapped folder {host} is writable from the sandbox at {guest} (Windows Sandbox "
            "default); add <ReadOnly>true</ReadOnly> to protect it",
            node.line,
            about=f"mapped_folders[{index}]",
        )
    try:
        return MappedFolder(host, guest, read_only)
    except SpecError as exc:  # pragma: no cover - the checks above are the same
        ctx.fail(exc.message, node.line, exc.remedy or "fix the mapped folder")


def _logon_command(node: _Node, ctx: _Ctx) -> tuple[str | None, int]:
    _attributes(node, ctx)
    _no_stray_text(node, ctx)
    parts = _unique(node.children, ("Command",), "LogonCommand", ctx)
    if "Command" not in parts:
        return None, node.line
    command_node = parts["Command"]
    command = _leaf(command_node, "Command", ctx)
    if not command:
        ctx.bad_value(
            "<Command> is empty",
            command_node.line,
            "give a command, or remove <LogonCommand>",
            about="logon_command",
        )
        return None, command_node.line  # ignored: the caller's command replaces it
    return command, command_node.line


def _interpret(
    root: _Node,
    ctx: _Ctx,
    environ: Mapping[str, str] | None,
    base_dir: str | None,
    *,
    check_paths: bool,
    local: bool,
) -> SandboxSpec:
    if root.name.casefold() != "configuration":
        ctx.fail(
            f"the root element is <{root.name}>, not <Configuration>",
            root.line,
            "a .wsb file is <Configuration> ... </Configuration>",
        )
    _attributes(root, ctx)
    _no_stray_text(root, ctx)
    parts = _unique(root.children, _TOP, "Configuration", ctx)
    lines: dict[str, int] = {}
    kwargs: dict[str, Any] = {"display": "desktop"}

    for name, spec_field in _TOGGLE_FIELD.items():
        node = parts.get(name)
        if node is None:
            enabled, explicit, line = WSB_DEFAULTS[name], False, None
        else:
            read, line = _toggle(node, name, ctx), node.line
            lines[spec_field] = node.line
            if read is None:  # an invalid value the caller replaces: no warning about it
                kwargs[spec_field] = "none" if name == "Networking" else False
                continue
            enabled, explicit = read
        kwargs[spec_field] = ("nat" if enabled else "none") if name == "Networking" else enabled
        if enabled and name in _TOGGLE_WHAT:
            subject, consequence = _TOGGLE_WHAT[name]
            if explicit:
                assert node is not None
                how = f"by <{name}>{node.value}</{name}>"
                fix = f"use <{name}>Disable</{name}> to turn it off"
            else:
                how = "(Windows Sandbox default)"
                verb = "use" if node is not None else "add"
                fix = f"{verb} <{name}>Disable</{name}> to turn it off"
            ctx.warn(f"{subject} is enabled {how}: {consequence}; {fix}", line, about=spec_field)
    # A Windows Sandbox has a desktop (Microsoft's "Windows Sandbox command line interface":
    # `wsb connect` "opens a new window with a remote desktop session", `wsb stop` "closes the
    # window that shows the sandbox desktop"), and no .wsb element turns it off, so
    # hcs-sandbox declares display pipes for a .wsb's sandbox; they loosen isolation
    # (docs/planner.md).  Whether `wsb start` opens a window by itself: docs/windows-notes.md.
    ctx.warn(
        "the desktop display is on (hcs-sandbox declares display pipes for a .wsb's sandbox, "
        "as Windows Sandbox has a desktop; no .wsb element turns it off): processes running "
        "as you can connect to its display pipes and see and control its desktop; use "
        '--display headless (display="headless") to turn it off',
        about="display",
    )

    if "MemoryInMB" in parts:
        kwargs["memory_mb"] = _memory(parts["MemoryInMB"], ctx)
        lines["memory_mb"] = parts["MemoryInMB"].line
    else:
        kwargs["memory_mb"] = WSB_DEFAULT_MEMORY_MB

    folders: list[MappedFolder] = []
    if "MappedFolders" in parts:
        container = parts["MappedFolders"]
        _attributes(container, ctx)
        _no_stray_text(container, ctx)
        for child in container.children:
            _canonical(child, ("MappedFolder",), "MappedFolders", ctx)
            folder = _mapped_folder(
                child,
                ctx,
                environ,
                base_dir,
                check_paths=check_paths,
                local=local,
                index=len(folders),
            )
            for j, other in enumerate(folders):
                if hostpath.nested_or_same(other.guest_path, folder.guest_path):
                    same = hostpath.guest_key(other.guest_path) == hostpath.guest_key(
                        folder.guest_path
                    )
                    first = container.children[j].line
                    how = "is the same folder as" if same else "is nested with"
                    ctx.fail(
                        f"sandbox folder {folder.guest_path} {how} {other.guest_path} "
                        f"(mapped at line {first})",
                        child.line,
                        "give each <MappedFolder> its own <SandboxFolder>, not inside another",
                        value=folder.guest_path,
                    )
            lines[f"mapped_folders[{len(folders)}]"] = child.line
            folders.append(folder)
    kwargs["mapped_folders"] = tuple(folders)

    if "LogonCommand" in parts:
        command, line = _logon_command(parts["LogonCommand"], ctx)
        kwargs["logon_command"] = command
        lines["logon_command"] = line

    while True:
        try:
            return SandboxSpec(**kwargs)
        except SpecError as exc:
            _refuse_or_ignore(exc, kwargs, lines, ctx)


#: Spec fields a .wsb element sets that SandboxSpec may refuse, and what replaces an ignored
#: value (a caller that replaces the field: ``parse_wsb(replaced=...)``) until it does.
_DROPPABLE: Mapping[str, object] = {"memory_mb": WSB_DEFAULT_MEMORY_MB, "logon_command": None}


def _refuse_or_ignore(
    exc: SpecError, kwargs: dict[str, Any], lines: Mapping[str, int], ctx: _Ctx
) -> None:
    """SandboxSpec refused a value the file gave: a WsbError in the file's words, or, when
    the caller replaces that field, a warning and the value in ``kwargs`` set to the one in
    :data:`_DROPPABLE` (once: if that is refused too, the refusal stands)."""
    key = exc.field or ""
    line = lines.get(key) or lines.get(key.split(".", 1)[0])
    top = key.split("[", 1)[0].split(".", 1)[0]
    element = _FIELD_ELEMENT.get(top)
    remedy = exc.remedy or "fix the value"
    if element is None:
        message = exc.message
    elif exc.reason is not None:
        # In the file's words: the element and its value, not the spec field
        # ("invalid value '999999999' for <MemoryInMB>: above the maximum ...").
        shown = short_repr(exc.value if isinstance(exc.value, str) else str(exc.value))
        message = f"invalid value {shown} for <{element}>: {exc.reason}"
        remedy = re.sub(rf"\b{re.escape(top)}\b", f"<{element}>", remedy)
        if top == "memory_mb":  # below the minimum is raised (_memory): only the maximum
            remedy = f"use a whole number of megabytes up to {MAX_MEMORY_MB}, such as 4096"
    else:
        message = f"<{element}>: {exc.message}"
    if top in _DROPPABLE and top in ctx.replaced and kwargs.get(top) != _DROPPABLE[top]:
        ctx.bad_value(message, line, remedy, about=top, value=exc.value)
        kwargs[top] = _DROPPABLE[top]
        return
    ctx.fail(message, line, remedy, value=exc.value)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


#: The spec fields ``parse_wsb(replaced=...)`` takes: those whose invalid value it can ignore.
_REPLACEABLE = frozenset({"memory_mb", "logon_command", *_TOGGLE_FIELD.values()})


def _replaced_fields(
    replaced: Mapping[str, str | None] | Iterable[str],
) -> dict[str, str | None]:
    """``parse_wsb``'s ``replaced`` as a mapping, or a TypeError/ValueError for a misuse that
    would otherwise do nothing silently (a ``str`` is an iterable of its letters)."""
    if isinstance(replaced, (bytes, bytearray, memoryview)):
        name = bytes(replaced).decode("utf-8", "replace")
        raise TypeError(
            f"replaced= takes a collection of spec field names as str, not bytes "
            f"({replaced!r}): write replaced={{{name!r}}}"
        )
    if isinstance(replaced, str):
        raise TypeError(
            f"replaced= takes a collection of spec field names, not the string {replaced!r}: "
            f"write replaced={{{replaced!r}}}"
        )
    fields = dict(replaced) if isinstance(replaced, Mapping) else dict.fromkeys(replaced, None)
    unknown = sorted(str(name) for name in fields if name not in _REPLACEABLE)
    if unknown:
        raise ValueError(
            f"replaced= names {', '.join(map(repr, unknown))}, which is not a spec field a "
            f".wsb value can be replaced for; use {', '.join(sorted(_REPLACEABLE))}"
        )
    return fields


def parse_wsb(
    data: bytes | str,
    *,
    source_path: str | None = None,
    base_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
    check_paths: bool = False,
    local: bool = True,
    replaced: Mapping[str, str | None] | Iterable[str] = (),
) -> WsbResult:
    """Parse the bytes of a ``.wsb`` file into a :class:`WsbResult`.

    ``data`` may also be text (``str``), such as :func:`to_wsb` returns: it is read as its
    UTF-8 encoding (any ``encoding=`` in its XML declaration is ignored, as for bytes).

    ``source_path`` names the file in messages (``file:line``) and, when ``base_dir`` is not
    given, its folder resolves relative ``HostFolder`` paths.  ``environ`` supplies
    ``%VARIABLES%`` in ``HostFolder`` (default ``os.environ``; names match case-insensitively;
    an undefined name is an error).  ``check_paths`` also puts every ``HostFolder`` through
    the host-folder rule of create and runtime map (``files.host_folder_problem``): it exists
    and is a directory, is no system folder, and is not the state directory
    ``Sandbox.create`` uses by default nor inside or around it (``Sandbox.create`` checks
    again against the one it is given).  ``local`` (with ``check_paths``): True, the folder
    must exist on this host and its real path is checked; False (what ``hcs-sandbox plan``
    uses: the file may describe another machine's folders), the path as written, without
    looking at the file system.  Windows Sandbox's defaults apply to what the file
    leaves out; ``display`` is ``"desktop"`` because a Windows Sandbox has a desktop
    (with a warning: ``display="headless"`` turns it off).

    ``replaced``: the spec fields the caller replaces with its own value (as the CLI's
    ``--memory``, ``--network``, ``--[no-]gpu``... do), optionally mapped to how to name
    what replaces them (``{"memory_mb": "--memory"}``).  An invalid value of such a field's
    element (``MemoryInMB``, ``Networking``, ``VGpu``, ``AudioInput``, ``VideoInput``,
    ``ProtectedClient``, ``PrinterRedirection``, ``ClipboardRedirection``, ``Command``) is
    then not refused: it is ignored with a warning (``... for <MemoryInMB>; ignored, as
    --memory replaces it``), and the result has a stand-in value until the caller replaces
    it: a toggle is off (the safe value, not Windows Sandbox's default, which is on for
    ``VGpu``, ``Networking``, ``AudioInput`` and ``ClipboardRedirection``), memory is
    Windows Sandbox's 4096, and there is no logon command.  A malformed file is refused all
    the same.  ``replaced`` itself is checked: a plain ``str`` raises :class:`TypeError`
    (it would read as its letters), a name that is not one of those fields (``memory_mb``,
    ``logon_command``, ``network``, ``gpu``, ``audio_input``, ``video_input``,
    ``protected_client``, ``printer``, ``clipboard``) raises :class:`ValueError`.

    Raises :class:`~hcs_sandbox.errors.WsbError` (with ``path``, ``line`` and a remedy) for
    anything it refuses; never another exception for bad input.
    """
    ctx = _Ctx(source_path, _replaced_fields(replaced))
    if isinstance(data, str):
        given = data
        try:
            data = given.encode("utf-8")  # a leading U+FEFF becomes the UTF-8 BOM, as in a file
        except UnicodeEncodeError as exc:
            line = given.count("\n", 0, exc.start) + 1
            ctx.fail(
                f"the text is not valid Unicode ({exc.reason})",
                line,
                "pass the file's bytes, or text decoded from them",
            )
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        ctx.fail(
            f"the .wsb content must be bytes or str, not {type(data).__name__}",
            None,
            "pass the file's bytes (read it in binary mode) or its text",
        )
    raw = bytes(data)
    if len(raw) > MAX_WSB_BYTES:
        ctx.fail(
            f"the file is {len(raw)} bytes, more than the {MAX_WSB_BYTES}-byte limit",
            None,
            "a .wsb file is a few hundred bytes; check that this is the right file",
        )
    if base_dir is None and source_path is not None:
        base_dir = os.path.dirname(os.path.abspath(source_path))
    elif base_dir is not None and not hostpath.is_absolute_host_path(base_dir):
        base_dir = os.path.abspath(base_dir)
    text = _decode(raw, ctx)
    root = _parse_tree(text, ctx)
    spec = _interpret(root, ctx, environ, base_dir, check_paths=check_paths, local=local)
    return WsbResult(spec, ctx.warnings, tuple(ctx.warning_fields))


def read_wsb(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    check_paths: bool = False,
    local: bool = True,
    replaced: Mapping[str, str | None] | Iterable[str] = (),
) -> WsbResult:
    """Read and parse the ``.wsb`` file at ``path`` (see :func:`parse_wsb`).

    Relative ``HostFolder`` paths resolve against the file's folder.
    """
    replaced = _replaced_fields(replaced)  # a misuse is reported before the file is opened
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            data = handle.read(MAX_WSB_BYTES + 1)
    except OSError as exc:
        raise WsbError(
            f"cannot read the file: {exc.strerror or exc}",
            path=name,
            remedy="check the path and that you may read it",
        ) from exc
    return parse_wsb(
        data,
        source_path=name,
        base_dir=os.path.dirname(os.path.abspath(name)),
        environ=environ,
        check_paths=check_paths,
        local=local,
        replaced=replaced,
    )


def _onoff(value: bool) -> str:
    return "Enable" if value else "Disable"


def to_wsb(spec: SandboxSpec) -> str:
    """Write ``spec`` as the text of a ``.wsb`` file.

    Every setting a ``.wsb`` can express is written explicitly (Windows Sandbox's defaults
    differ from ours, so nothing is left to them): VGpu, Networking, MemoryInMB, AudioInput,
    VideoInput, ProtectedClient, PrinterRedirection, ClipboardRedirection, MappedFolders
    (with ReadOnly) and LogonCommand.  Reading the result back with :func:`parse_wsb` gives
    an equal spec when the spec only uses what a ``.wsb`` can say.

    Not written, because a ``.wsb`` cannot express them: ``name``, ``base``, ``cpus``,
    ``ports``, ``display`` (a Windows Sandbox has a desktop), ``persistence``,
    ``environment`` and ``labels``; an XML comment lists those that differ from what reading
    the file gives.  Network ``internet-only`` is written as ``Enable`` (Windows Sandbox has
    only on/off), with a comment saying so.  ``memory_mb`` below 2048 is written as it is;
    Windows Sandbox (and :func:`parse_wsb`) raise it to 2048.

    Raises SpecError when a host path holds ``%NAME%``, which the reader would expand.
    """
    for i, folder in enumerate(spec.mapped_folders):
        if hostpath.has_variable_reference(folder.host_path):
            raise SpecError(
                f"host path {folder.host_path} of mapped_folders[{i}] contains %NAME%, which "
                "a .wsb reader expands as an environment variable",
                field=f"mapped_folders[{i}].host_path",
                value=folder.host_path,
                remedy="rename the folder or map it from another path",
            )
    defaults = SandboxSpec(display="desktop")
    dropped = [
        name
        for name in (
            "name",
            "base",
            "cpus",
            "ports",
            "display",
            "persistence",
            "environment",
            "labels",
        )
        if getattr(spec, name) != getattr(defaults, name)
    ]
    root = ET.Element("Configuration")
    if dropped:
        root.append(
            ET.Comment(f" hcs-sandbox: not expressible in .wsb, not written: {', '.join(dropped)} ")
        )
    if spec.network == "internet-only":
        root.append(
            ET.Comment(" hcs-sandbox: network was internet-only; Windows Sandbox only has on/off ")
        )

    def add(name: str, text: str) -> ET.Element:
        element = ET.SubElement(root, name)
        element.text = text
        return element

    add("VGpu", _onoff(spec.gpu))
    add("Networking", _onoff(spec.network != "none"))
    add("MemoryInMB", str(spec.memory_mb))
    add("AudioInput", _onoff(spec.audio_input))
    add("VideoInput", _onoff(spec.video_input))
    add("ProtectedClient", _onoff(spec.protected_client))
    add("PrinterRedirection", _onoff(spec.printer))
    add("ClipboardRedirection", _onoff(spec.clipboard))
    if spec.mapped_folders:
        folders = ET.SubElement(root, "MappedFolders")
        for folder in spec.mapped_folders:
            item = ET.SubElement(folders, "MappedFolder")
            ET.SubElement(item, "HostFolder").text = folder.host_path
            ET.SubElement(item, "SandboxFolder").text = folder.guest_path
            ET.SubElement(item, "ReadOnly").text = "true" if folder.read_only else "false"
    if spec.logon_command is not None:
        logon = ET.SubElement(root, "LogonCommand")
        ET.SubElement(logon, "Command").text = spec.logon_command
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"
