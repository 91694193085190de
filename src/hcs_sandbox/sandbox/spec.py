"""SandboxSpec: the user's description of a sandbox, independent of HCS.

A :class:`SandboxSpec` is frozen and validated when it is built: a bad value raises
:class:`~hcs_sandbox.errors.SpecError` naming the field, the value, why it is refused and what
is allowed.  The planner turns a spec into HCS documents; the state store keeps
:meth:`SandboxSpec.to_dict`; the ``.wsb`` reader (:mod:`hcs_sandbox.sandbox.wsb`) builds one
from a Windows Sandbox file.

Defaults are hcs-sandbox's own and are deliberately tighter than Windows Sandbox's
(WSB's defaults: windows-sandbox-configure-using-wsb-file.md): no network, no clipboard,
no audio/video input, no printer, no GPU, mapped folders read-only, headless, ephemeral.
A ``.wsb`` file gets Windows Sandbox's own defaults instead (see ``docs/wsb.md``).

Memory: the default of 4096 MB matches Windows Sandbox's default cap ("a basic Sandbox with
maximum capacity of 4GB memory", windows-sandbox-configure-using-wsb-file.md).  The minimum
here is 1024 MB, lower than Windows Sandbox's 2048 MB floor ("automatically increased to the
required minimum amount of 2048 MB", same page), because the sandbox WSB itself creates is a
1024 MB VM plus shared memory (its HCS document, MouriDocs ``docs/4/ReadMe.md``) and custom
base images can be smaller; the ``.wsb`` reader applies the 2048 MB floor to ``.wsb`` input.
The upper bound (1 TiB) is a sanity bound of ours, not a Windows limit.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from hcs_sandbox.errors import SpecError
from hcs_sandbox.sandbox import hostpath

__all__ = [
    "BASE_KINDS",
    "DISPLAY_MODES",
    "MAX_CPUS",
    "MAX_MEMORY_MB",
    "MIN_CPUS",
    "MIN_MEMORY_MB",
    "NETWORK_MODES",
    "PERSISTENCE_MODES",
    "PROTOCOLS",
    "BaseImage",
    "BaseKind",
    "Display",
    "FrozenMap",
    "MappedFolder",
    "Network",
    "Persistence",
    "PortMapping",
    "Protocol",
    "SandboxSpec",
    "check_new_name",
    "name_reads_as_id",
    "short_repr",
]

BaseKind = Literal["host", "image", "vhdx"]
Network = Literal["none", "nat", "internet-only"]
Protocol = Literal["tcp", "udp"]
Display = Literal["headless", "desktop"]
Persistence = Literal["ephemeral", "persistent"]

BASE_KINDS: tuple[str, ...] = get_args(BaseKind)
NETWORK_MODES: tuple[str, ...] = get_args(Network)
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
DISPLAY_MODES: tuple[str, ...] = get_args(Display)
PERSISTENCE_MODES: tuple[str, ...] = get_args(Persistence)

MIN_MEMORY_MB = 1024
MAX_MEMORY_MB = 1024 * 1024
DEFAULT_MEMORY_MB = 4096
MIN_CPUS = 1
MAX_CPUS = 64
DEFAULT_CPUS = 2
# CreateProcessW: "The maximum length of this string is 32,767 characters"
# (learn.microsoft.com/windows/win32/api/processthreadsapi/nf-processthreadsapi-createprocessw).
MAX_COMMAND_CHARS = 32767

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_NAME_RULE = "1–63 characters: letters, digits, '-', '_' or '.', starting with a letter or digit"
#: A new sandbox's name may not have the shape of a sandbox id or id prefix
#: (:func:`paths.reads_as_id`: 8 or more hex digits starting the canonical ``8-4-4-4-12``
#: form, dashes exactly where a GUID has them, or the 32 hex digits): a sandbox is named by
#: its name, its id or a unique id prefix, and ``Store.get`` tries a key of that shape as an
#: id before it tries it as a name -- the same function, so a name never shadows an id and
#: what ``ls``/``ls -q`` print always reaches its sandbox (QA F2).  Docker's names have no
#: such rule and its lookup takes the full id, then the name, then an id prefix of any
#: length (moby daemon/container.go GetContainer), so a name can shadow a short id there.
#: Below 8 hex digits (the first group of a GUID) a prefix is rarely unique among many
#: sandboxes (1,000 random ids share a 6-digit prefix with a chance of ~3%, an 8-digit one
#: ~0.01%), so short hex names ("cafe", "1234567") stay names first, as in docker; so do
#: names with a dash elsewhere ("2024-01-01", "build-1234").  Only a NEW name is checked
#: (:func:`check_new_name`: ``Sandbox.create``, the CLI's run/create/plan), never a stored
#: spec: a sandbox named so before this rule keeps working (review RV-names H1).
_ID_LIKE_RULE = (
    "not the shape of a sandbox id: 8 or more hex digits as an id starts "
    "(8-4-4-4-12, a '-' exactly where an id has one), or 32 hex digits"
)


def name_reads_as_id(name: str) -> bool:
    """Whether ``name`` has the shape of a sandbox id or id prefix (:func:`paths.reads_as_id`:
    the keys a lookup tries as an id first), which a new sandbox's name may not have."""
    from hcs_sandbox.sandbox.paths import reads_as_id

    return reads_as_id(name)


def check_new_name(name: str | None) -> None:
    """Refuse a NEW sandbox's name that has the shape of a sandbox id or id prefix
    (:func:`name_reads_as_id`): :class:`SpecError` (field ``name``, exit 2).  Called where a
    sandbox is named (``Sandbox.create``, the CLI's ``run``/``create``/``plan``), never
    for a stored spec, so a sandbox named so before this rule keeps its name and works."""
    if name is None or not name_reads_as_id(name):
        return
    raise _fail(
        "name",
        name,
        "it reads as a sandbox id (8 or more hex digits as an id starts, or 32), and a "
        "key of that shape is looked up as an id first",
        allowed=_NAME_RULE + ", and " + _ID_LIKE_RULE,
        remedy="add a letter from g to z, '_' or '.' (e.g. 'sb-" + name[:59] + "')",
    )


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters (ending ``...``)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: Remedies of the value types' "not a ..." errors: how to build one.
_BASE_REMEDY = (
    "give a BaseImage: BaseImage() for the host's Windows, BaseImage('image', FOLDER) or "
    "BaseImage('vhdx', FILE)"
)
_PORTS_REMEDY = "give a list of PortMapping, e.g. ports=[PortMapping(8080, 80)]"
_FOLDERS_REMEDY = (
    "give a list of MappedFolder, e.g. mapped_folders=[MappedFolder(HOST_FOLDER, r'C:\\data')]"
)


def _fail(
    field_name: str,
    value: object,
    why: str,
    *,
    allowed: str | None = None,
    remedy: str | None = None,
) -> SpecError:
    return SpecError(
        f"invalid {field_name} {short_repr(value)}: {why}",
        field=field_name,
        value=value,
        allowed=allowed,
        remedy=remedy,
        reason=why,
    )


def _check_bool(value: object, field_name: str) -> None:
    if not isinstance(value, bool):
        raise _fail(field_name, value, "not a boolean", allowed="true or false")


def _check_int(value: object, field_name: str, low: int, high: int, unit: str = "") -> int:
    if type(value) is int and low <= value <= high:
        return value  # (the usual case, before any text is made)
    allowed = f"an integer from {low} to {high}{unit}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(field_name, value, "not an integer", allowed=allowed)
    if value < low:
        raise _fail(field_name, value, f"below the minimum of {low}{unit}", allowed=allowed)
    if value > high:
        raise _fail(field_name, value, f"above the maximum of {high}{unit}", allowed=allowed)
    return value


def _check_choice(value: object, field_name: str, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise _fail(field_name, value, "not a known value", allowed="one of " + ", ".join(choices))


def _check_str(value: object, field_name: str) -> str:
    if not isinstance(value, str):
        raise _fail(field_name, value, "not a string")
    return value


def _check_host_path(value: object, field_name: str) -> str:
    path = _check_str(value, field_name)
    problem = hostpath.host_path_problem(path)
    if problem:
        raise _fail(field_name, path, problem)
    return path


def _control_free(text: str, *, allow_tab: bool = False) -> bool:
    for ch in text:
        code = ord(ch)
        if code < 32 and not (allow_tab and ch == "\t"):
            return False
        if code in (0xFFFE, 0xFFFF) or 0xD800 <= code <= 0xDFFF:
            return False
    return True


# --------------------------------------------------------------------------------------
# FrozenMap
# --------------------------------------------------------------------------------------


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable ``str → str`` mapping (environment and labels of a spec).

    Equal to any mapping with the same items; iterates in sorted key order.
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        data = dict(items)
        self._data: dict[str, str] = {k: data[k] for k in sorted(data)}
        self._hash: int | None = None

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    # Pickled and copied without the cached ``_hash``: a hash of strings differs from
    # process to process (PYTHONHASHSEED), and a copy loaded elsewhere must hash as that
    # process's equal maps do (review RV44).  Everything else of the object (a subclass's
    # slots and ``__dict__`` included) goes as it is, through ``__new__`` (RV49 F3, RV50 F4).
    def __getstate__(self) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        import copyreg  # (the slot names as stored: private ones mangled; cached per class)

        slots: dict[str, Any] = {"_hash": None}  # (a reader that sets no _hash has one)
        for name in copyreg._slotnames(type(self)):  # type: ignore[attr-defined]
            if name != "_hash" and hasattr(self, name):
                slots[name] = getattr(self, name)
        return (getattr(self, "__dict__", None) or None, slots)

    def __setstate__(self, state: tuple[dict[str, Any] | None, dict[str, Any]]) -> None:
        attributes, slots = state
        if attributes:
            self.__dict__.update(attributes)
        for name, value in slots.items():
            object.__setattr__(self, name, value)
        self._hash = None

    def to_dict(self) -> dict[str, str]:
        """A plain ``dict`` copy."""
        return dict(self._data)


#: The default environment and labels: an empty :class:`FrozenMap` (immutable; shared).
_EMPTY_MAP = FrozenMap()


def _plain_dict(mapping: Mapping[str, str]) -> dict[str, str]:
    """``dict(mapping)``; for a :class:`FrozenMap` (what a spec holds) without the
    ``Mapping`` protocol's Python-level ``keys()``/``__getitem__`` calls."""
    if type(mapping) is FrozenMap:
        return mapping.to_dict()
    return dict(mapping)


def _frozen_map(value: object, field_name: str) -> FrozenMap:
    if isinstance(value, FrozenMap):
        return value
    if not isinstance(value, Mapping):
        raise _fail(
            field_name,
            value,
            "not a mapping of strings to strings",
            remedy=f'give a dict of strings, e.g. {field_name}={{"NAME": "value"}}',
        )
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise _fail(
                field_name, {key: item}, "keys and values must be strings", allowed="str → str"
            )
    return FrozenMap(cast("Mapping[str, str]", value))


# --------------------------------------------------------------------------------------
# Value types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseImage:
    """What the sandbox boots.

    - ``host``: the host's own Windows, as Windows Sandbox does (no path);
    - ``image``: a Windows container base image folder, which holds ``UtilityVM\\Files``
      (hcsshim ``internal/uvm/create_wcow.go`` shares ``UtilityVM\\Files`` as the ``os`` vSMB
      share);
    - ``vhdx``: a bootable VHDX file.
    """

    kind: BaseKind = "host"
    path: str | None = None

    def __post_init__(self) -> None:
        _check_choice(self.kind, "base.kind", BASE_KINDS)
        if self.kind == "host":
            if self.path is not None:
                raise _fail(
                    "base.path",
                    self.path,
                    "a 'host' base takes no path",
                    remedy="leave the path out, or use kind 'image' or 'vhdx'",
                )
            return
        if self.path is None:
            raise _fail(
                "base.path",
                None,
                f"a '{self.kind}' base needs a path",
                remedy=(
                    "give the base image folder"
                    if self.kind == "image"
                    else "give the path of a bootable .vhdx file"
                ),
            )
        path = _check_host_path(self.path, "base.path")
        if self.kind == "vhdx" and not path.lower().endswith(".vhdx"):
            raise _fail(
                "base.path", path, "a 'vhdx' base must be a .vhdx file", allowed="a *.vhdx path"
            )


#: The default base: ``BaseImage()`` (frozen; shared by every spec that takes the default).
_HOST_BASE = BaseImage()


@dataclass(frozen=True)
class PortMapping:
    """A host port forwarded to a guest port (needs a network)."""

    host_port: int
    guest_port: int
    protocol: Protocol = "tcp"

    def __post_init__(self) -> None:
        _check_int(self.host_port, "ports.host_port", 1, 65535)
        _check_int(self.guest_port, "ports.guest_port", 1, 65535)
        _check_choice(self.protocol, "ports.protocol", PROTOCOLS)

    def __str__(self) -> str:
        return f"{self.host_port}:{self.guest_port}/{self.protocol}"


@dataclass(frozen=True)
class MappedFolder:
    """A host folder shown inside the guest at ``guest_path``; read-only unless asked."""

    host_path: str
    guest_path: str
    read_only: bool = True

    def __post_init__(self) -> None:
        _check_host_path(self.host_path, "mapped_folders.host_path")
        guest = _check_str(self.guest_path, "mapped_folders.guest_path")
        problem = hostpath.guest_path_problem(guest)
        if problem:
            raise _fail("mapped_folders.guest_path", guest, problem)
        _check_bool(self.read_only, "mapped_folders.read_only")


def _indexed(exc: SpecError, prefix: str, index: int) -> SpecError:
    """Re-home an error from an item's own validation under ``prefix[index]``."""
    leaf = (exc.field or "").rsplit(".", 1)[-1]
    field_name = f"{prefix}[{index}].{leaf}" if leaf and leaf != prefix else f"{prefix}[{index}]"
    message = exc.message.replace(exc.field or "\0", field_name, 1)
    return SpecError(
        message, field=field_name, value=exc.value, allowed=exc.allowed, remedy=exc.remedy
    )


# --------------------------------------------------------------------------------------
# SandboxSpec
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxSpec:
    """Everything the user says about one sandbox.  Frozen; validated on construction.

    Sequences may be given as lists and mappings as dicts: they are stored as tuples and
    :class:`FrozenMap`.  ``logon_command`` is stored without surrounding whitespace.
    """

    name: str | None = None
    # The defaults are immutable, so every spec shares one (a factory built new ones per spec).
    base: BaseImage = _HOST_BASE
    memory_mb: int = DEFAULT_MEMORY_MB
    cpus: int = DEFAULT_CPUS
    network: Network = "none"
    ports: tuple[PortMapping, ...] = ()
    mapped_folders: tuple[MappedFolder, ...] = ()
    logon_command: str | None = None
    gpu: bool = False
    clipboard: bool = False
    audio_input: bool = False
    video_input: bool = False
    printer: bool = False
    protected_client: bool = False
    display: Display = "headless"
    persistence: Persistence = "ephemeral"
    environment: Mapping[str, str] = _EMPTY_MAP
    labels: Mapping[str, str] = _EMPTY_MAP

    if TYPE_CHECKING:
        # For type checkers only: the constructor takes any sequence of ports and folders
        # (a list, as the docs write them), which __post_init__ stores as a tuple, so the
        # attributes stay tuples (and the spec hashable).  At run time the dataclass makes
        # __init__ from the fields above; this one must list them in the same order with
        # the same defaults (tests/sandbox/test_spec_typing.py compares the two).
        def __init__(  # noqa: PLR0917 - positional, as the dataclass's own __init__
            self,
            name: str | None = None,
            base: BaseImage = _HOST_BASE,
            memory_mb: int = DEFAULT_MEMORY_MB,
            cpus: int = DEFAULT_CPUS,
            network: Network = "none",
            ports: Sequence[PortMapping] = (),
            mapped_folders: Sequence[MappedFolder] = (),
            logon_command: str | None = None,
            gpu: bool = False,
            clipboard: bool = False,
            audio_input: bool = False,
            video_input: bool = False,
            printer: bool = False,
            protected_client: bool = False,
            display: Display = "headless",
            persistence: Persistence = "ephemeral",
            environment: Mapping[str, str] = _EMPTY_MAP,
            labels: Mapping[str, str] = _EMPTY_MAP,
        ) -> None: ...

    def __post_init__(self) -> None:
        # Every check below is made for every spec, in this order; the fast tests in front
        # of some (``type(x) is str and x in choices``...) pass exactly the values the check
        # behind them passes, so a refused value still gets that check's error.
        set_ = object.__setattr__
        if self.name is not None:
            name = _check_str(self.name, "name")
            if not _NAME.fullmatch(name):
                raise _fail("name", name, "not a valid sandbox name", allowed=_NAME_RULE)
        if not isinstance(self.base, BaseImage):
            raise _fail("base", self.base, "not a BaseImage", remedy=_BASE_REMEDY)
        _check_int(self.memory_mb, "memory_mb", MIN_MEMORY_MB, MAX_MEMORY_MB, " MB")
        _check_int(self.cpus, "cpus", MIN_CPUS, MAX_CPUS)
        choice: object
        for choice, field_name, choices in (
            (self.network, "network", NETWORK_MODES),
            (self.display, "display", DISPLAY_MODES),
            (self.persistence, "persistence", PERSISTENCE_MODES),
        ):
            if type(choice) is not str or choice not in choices:
                _check_choice(choice, field_name, choices)
        value: object
        for value, flag in (
            (self.gpu, "gpu"),
            (self.clipboard, "clipboard"),
            (self.audio_input, "audio_input"),
            (self.video_input, "video_input"),
            (self.printer, "printer"),
            (self.protected_client, "protected_client"),
        ):
            if value is not True and value is not False:
                _check_bool(value, flag)

        # No ports, no folders (an empty tuple): nothing to check or convert.
        if type(self.ports) is not tuple or self.ports:
            set_(self, "ports", self._check_ports(self.ports))
        if type(self.mapped_folders) is not tuple or self.mapped_folders:
            set_(self, "mapped_folders", self._check_folders(self.mapped_folders))

        if self.logon_command is not None:
            command = _check_str(self.logon_command, "logon_command").strip()
            if not command:
                raise _fail(
                    "logon_command",
                    self.logon_command,
                    "empty",
                    remedy="give a command or leave logon_command out",
                )
            if not _control_free(command, allow_tab=True):
                raise _fail(
                    "logon_command",
                    command,
                    "contains a control character (line breaks are not allowed)",
                    remedy="put multi-step logic in a script in a mapped folder and run that",
                )
            if len(command) > MAX_COMMAND_CHARS:
                raise _fail(
                    "logon_command",
                    command,
                    f"longer than Windows' {MAX_COMMAND_CHARS}-character command line limit",
                    remedy="put the logic in a script in a mapped folder and run that",
                )
            set_(self, "logon_command", command)

        # An empty FrozenMap (the default) is valid and kept as it is.
        environment, labels = self.environment, self.labels
        if type(environment) is not FrozenMap or environment._data:
            set_(self, "environment", self._check_environment(environment))
        if type(labels) is not FrozenMap or labels._data:
            set_(self, "labels", self._check_labels(labels))

    # -- validation helpers ------------------------------------------------------------

    def _check_ports(self, ports: object) -> tuple[PortMapping, ...]:
        if isinstance(ports, (str, bytes)) or not isinstance(ports, Iterable):
            raise _fail("ports", ports, "not a list of PortMapping", remedy=_PORTS_REMEDY)
        items = tuple(ports)
        seen: dict[tuple[int, str], int] = {}
        for i, port in enumerate(items):
            if not isinstance(port, PortMapping):
                raise _fail(f"ports[{i}]", port, "not a PortMapping", remedy=_PORTS_REMEDY)
            key = (port.host_port, port.protocol)
            if key in seen:
                raise _fail(
                    f"ports[{i}]",
                    str(port),
                    f"host port {port.host_port}/{port.protocol} is already used by "
                    f"ports[{seen[key]}]",
                    remedy="use each host port once per protocol",
                )
            seen[key] = i
        if items and self.network == "none":
            raise _fail(
                "ports",
                [str(p) for p in items],
                "port mappings need a network, and network is 'none'",
                remedy="set network to 'nat' or 'internet-only', or drop the ports",
            )
        return items

    def _check_folders(self, folders: object) -> tuple[MappedFolder, ...]:
        if isinstance(folders, (str, bytes)) or not isinstance(folders, Iterable):
            raise _fail(
                "mapped_folders", folders, "not a list of MappedFolder", remedy=_FOLDERS_REMEDY
            )
        items = tuple(folders)
        for i, folder in enumerate(items):
            if not isinstance(folder, MappedFolder):
                raise _fail(
                    f"mapped_folders[{i}]", folder, "not a MappedFolder", remedy=_FOLDERS_REMEDY
                )
            for j in range(i):
                other = items[j].guest_path
                if hostpath.nested_or_same(other, folder.guest_path):
                    same = hostpath.guest_key(other) == hostpath.guest_key(folder.guest_path)
                    why = (
                        f"the same guest folder as mapped_folders[{j}] ({other})"
                        if same
                        else f"nested with mapped_folders[{j}] ({other})"
                    )
                    raise _fail(
                        f"mapped_folders[{i}].guest_path",
                        folder.guest_path,
                        why,
                        remedy="give each mapped folder its own guest folder, not inside another",
                    )
        return items

    @staticmethod
    def _check_environment(value: object) -> FrozenMap:
        env = _frozen_map(value, "environment")
        seen: dict[str, str] = {}
        for key, item in env.items():
            # Environment Variables (learn.microsoft.com/windows/win32/procthread/
            # environment-variables): "The name of an environment variable cannot include
            # an equal sign (=)"; names are case-insensitive on Windows.
            if not key or "=" in key or not _control_free(key):
                raise _fail(
                    "environment",
                    key,
                    "not a valid variable name",
                    allowed="a non-empty name without '=' or control characters",
                )
            if not _control_free(item, allow_tab=True):
                raise _fail(f"environment[{key}]", item, "the value contains a control character")
            folded = key.casefold()
            if folded in seen:
                raise _fail(
                    "environment",
                    key,
                    f"the same variable as {seen[folded]!r} (Windows names ignore case)",
                    remedy="keep only one of them",
                )
            seen[folded] = key
        return env

    @staticmethod
    def _check_labels(value: object) -> FrozenMap:
        labels = _frozen_map(value, "labels")
        for key, item in labels.items():
            if not key or not _control_free(key):
                raise _fail(
                    "labels",
                    key,
                    "not a valid label key",
                    allowed="a non-empty key without control characters",
                )
            if not _control_free(item, allow_tab=True):
                raise _fail(f"labels[{key}]", item, "the value contains a control character")
        return labels

    # -- public API --------------------------------------------------------------------

    def replace(self, **changes: Any) -> SandboxSpec:
        """A copy with ``changes`` applied, validated again."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise SpecError(
                f"unknown SandboxSpec field(s): {', '.join(unknown)}",
                field=unknown[0],
                allowed="one of " + ", ".join(sorted(names)),
            )
        return dataclasses.replace(self, **changes)

    def loosened_isolation(self) -> list[str]:
        """One human sentence for every setting that loosens isolation from the host."""
        out: list[str] = []
        if self.network == "nat":
            out.append("networking is on (nat): the sandbox can reach the internet and your LAN")
        elif self.network == "internet-only":
            out.append("networking is on (internet-only): the sandbox can reach the internet")
        out.extend(
            f"port {p.host_port}/{p.protocol} on the host is forwarded to port "
            f"{p.guest_port} in the sandbox"
            for p in self.ports
        )
        if self.clipboard:
            out.append("clipboard sharing is on: text and files can pass between host and sandbox")
        if self.audio_input:
            out.append("audio input is on: the sandbox can hear the host's microphone")
        if self.video_input:
            out.append("video input is on: the sandbox can see the host's camera")
        if self.printer:
            out.append("printer redirection is on: the sandbox can use the host's printers")
        if self.gpu:
            out.append(
                "the virtual GPU is on: the host's graphics driver is exposed to the sandbox"
            )
        out.extend(
            f"host folder {f.host_path} is writable from the sandbox at {f.guest_path}: "
            "changes persist on the host"
            for f in self.mapped_folders
            if not f.read_only
        )
        return out

    def check_mapped_folders(
        self, *, state_dir: str | os.PathLike[str] | None = None, local: bool = True
    ) -> tuple[str, ...]:
        """Every mapped host folder through THE host-folder check,
        :func:`hcs_sandbox.sandbox.files.check_host_folder` (the one runtime ``Sandbox.map``
        uses): not a system folder, a drive root or ``/``, nor inside or around one; not the
        state directory ``state_dir`` (None: the one ``Sandbox.create`` uses by default),
        nor inside or around it; read-only or not.

        ``local`` True (create): the folder must exist here; its real path is checked.
        ``local`` False (``plan``): the path as written, nothing on disk is looked at.
        Raises SpecError naming the first folder refused (``mapped_folders[i].host_path``).
        Returns the paths checked, one per mapped folder in order: the real paths when
        ``local`` (what ``Sandbox.create`` shares), else the paths as written, normalised.
        """
        if not self.mapped_folders:
            return ()
        from hcs_sandbox.sandbox import files  # files -> planner -> spec: imported on use

        protected = files.protected_folders(state_dir)
        return tuple(
            files.check_host_folder(
                folder.host_path,
                protected=protected,
                local=local,
                field=f"mapped_folders[{i}].host_path",
                of=f" of mapped_folders[{i}]",
            )
            for i, folder in enumerate(self.mapped_folders)
        )

    def check_host_paths(
        self, *, state_dir: str | os.PathLike[str] | None = None
    ) -> tuple[str, ...]:
        """Run-time check before create (file I/O): every mapped host folder passes
        :meth:`check_mapped_folders` (it exists, is a folder, is no system folder and not
        the state directory ``state_dir`` nor around it), and the base exists (an ``image``
        base: its ``UtilityVM\\Files`` folder and ``UtilityVM\\SystemTemplate.vhdx`` file).

        Raises SpecError naming the first path that is refused.  Returns the real paths of
        the mapped folders, as :meth:`check_mapped_folders` does.
        """
        checked = self.check_mapped_folders(state_dir=state_dir)
        base = self.base
        if base.kind == "image" and base.path is not None:
            problem = hostpath.directory_problem(base.path)
            if problem is None:
                uvm = os.path.join(base.path, "UtilityVM")
                if not os.path.isdir(os.path.join(uvm, "Files")):
                    problem = "it has no UtilityVM\\Files folder"
                elif not os.path.isfile(os.path.join(uvm, "SystemTemplate.vhdx")):
                    # The image's scratch disk is made from it (storage.resolve_base).
                    problem = "it has no UtilityVM\\SystemTemplate.vhdx file"
            if problem:
                raise SpecError(
                    f"base image folder {base.path} cannot be used: {problem}",
                    field="base.path",
                    value=base.path,
                    remedy="give the folder of a Windows container base image layer",
                )
        elif base.kind == "vhdx" and base.path is not None and not os.path.isfile(base.path):
            raise SpecError(
                f"base VHDX {base.path} cannot be used: it does not exist or is not a file",
                field="base.path",
                value=base.path,
                remedy="give the path of an existing bootable .vhdx file",
            )
        return checked

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; :meth:`from_dict` of it gives back an equal spec."""
        return {
            "name": self.name,
            "base": {"kind": self.base.kind, "path": self.base.path},
            "memory_mb": self.memory_mb,
            "cpus": self.cpus,
            "network": self.network,
            "ports": [
                {"host_port": p.host_port, "guest_port": p.guest_port, "protocol": p.protocol}
                for p in self.ports
            ],
            "mapped_folders": [
                {"host_path": f.host_path, "guest_path": f.guest_path, "read_only": f.read_only}
                for f in self.mapped_folders
            ],
            "logon_command": self.logon_command,
            "gpu": self.gpu,
            "clipboard": self.clipboard,
            "audio_input": self.audio_input,
            "video_input": self.video_input,
            "printer": self.printer,
            "protected_client": self.protected_client,
            "display": self.display,
            "persistence": self.persistence,
            "environment": _plain_dict(self.environment),
            "labels": _plain_dict(self.labels),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxSpec:
        """Build a spec from :meth:`to_dict` output (missing keys take their defaults).

        Unknown keys are refused so that a typo is not silently ignored.
        """
        if not isinstance(data, Mapping):
            raise _fail("spec", data, "not a mapping")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown:
            raise SpecError(
                f"unknown sandbox spec field(s): {', '.join(unknown)}",
                field=unknown[0],
                value=data.get(unknown[0]),
                allowed="one of " + ", ".join(names),
            )
        kwargs: dict[str, Any] = dict(data)
        if "base" in kwargs:
            kwargs["base"] = _build(BaseImage, kwargs["base"], "base", ("kind", "path"))
        if "ports" in kwargs:
            kwargs["ports"] = _build_list(
                PortMapping, kwargs["ports"], "ports", ("host_port", "guest_port", "protocol")
            )
        if "mapped_folders" in kwargs:
            kwargs["mapped_folders"] = _build_list(
                MappedFolder,
                kwargs["mapped_folders"],
                "mapped_folders",
                ("host_path", "guest_path", "read_only"),
            )
        return cls(**kwargs)


def _build(cls: type[Any], data: object, where: str, keys: tuple[str, ...]) -> Any:
    if not isinstance(data, Mapping):
        raise _fail(where, data, "not a mapping", allowed="an object with " + ", ".join(keys))
    unknown = sorted(str(k) for k in data if k not in keys)
    if unknown:
        raise _fail(
            where, dict(data), f"unknown key(s) {', '.join(unknown)}", allowed=", ".join(keys)
        )
    try:
        return cls(**data)
    except TypeError as exc:  # a required key is missing
        raise _fail(where, dict(data), f"incomplete ({exc})", allowed=", ".join(keys)) from None


def _build_list(cls: type[Any], data: object, where: str, keys: tuple[str, ...]) -> list[Any]:
    if not isinstance(data, (list, tuple)):
        raise _fail(where, data, "not a list")
    out = []
    for i, item in enumerate(data):
        try:
            out.append(_build(cls, item, f"{where}[{i}]", keys))
        except SpecError as exc:
            if exc.field and exc.field.startswith(f"{where}["):
                raise
            raise _indexed(exc, where, i) from None
    return out
