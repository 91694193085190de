"""Where hcs-sandbox keeps its files: the state directory and its layout.

The state directory holds the state database and one folder per sandbox::

    <state>/
        state.db  (+ state.db-wal, state.db-shm)   the store (sandbox/store.py)
        sandboxes/<id>/                             per-sandbox files
            sandbox.vhdx                            scratch (writable) disk
            sandbox.vmgs                            guest state file
            sandbox.vmrs                            runtime state file
            saved.vmrs                              memory saved to a file (save/restore)
            sandbox.log                             lifecycle log of earlier versions
                                                    (now in state.db; still read)
            logs/guest/                             logon command output (logon.py)
            transfer/                               cp's transfer share (files.py)
        templates/<id>/                             template files (save-as-template, pools)

Where it is (:func:`state_dir`), first match wins:

1. an explicit argument;
2. the environment variable ``HCS_SANDBOX_STATE_DIR`` (tests use it);
3. Windows: ``%ProgramData%\\hcs-sandbox`` (machine-wide; HCS needs an administrator anyway);
4. elsewhere (the simulator): ``$XDG_STATE_HOME/hcs-sandbox``, else
   ``~/.local/state/hcs-sandbox`` (XDG Base Directory Specification, "XDG_STATE_HOME").

Protection (:func:`ensure_state_dir`):

- Windows: created with ``CreateDirectoryW`` and the protected security descriptor
  :data:`WINDOWS_STATE_DIR_SDDL` (owner Administrators; full access, inherited by files and
  subfolders, for Administrators and SYSTEM only; nothing inherited from ``%ProgramData%``,
  whose default DACL lets every user create folders).  An existing directory whose owner or
  DACL differs (e.g. pre-created by an unprivileged user to plant files) is *tightened*:
  the owner and protected DACL are set again with ``SetNamedSecurityInfoW``; when that is
  refused, a :class:`~hcs_sandbox.errors.StoreError` says how to fix it.
- Elsewhere: mode 0700.  An existing directory owned by this user with group/other bits
  is tightened to 0700 (``chmod``); one owned by another user is refused.

Per-sandbox folders are created with mode 0700 (elsewhere: inside the 0700 parent too).  On
Windows, Python 3.9.20, 3.10.15, 3.11.10, 3.12.4 and later give a folder made with mode
0700 a protected DACL of their own, ``D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;OW)``
(SYSTEM, Administrators, OWNER RIGHTS: CPython gh-118486, the CVE-2024-4030 mitigation, and
its test ``test_win32_mkdir_700``); older ones ignore the mode and the folder inherits the
state directory's ``OICI`` ACEs.  Either way only SYSTEM and Administrators (and, with the
former, the folder's owner: Administrators for an elevated process) have access
(docs/windows-notes.md).

Nothing here touches the disk at import time; only :func:`ensure_state_dir` and
:func:`ensure_sandbox_dir` create anything.  A read (:func:`existing_state_dir`) never
creates the state directory: one that does not exist holds no sandboxes.
"""

from __future__ import annotations

import os
import re
import stat
import sys

from hcs_sandbox._frozen import Frozen
from hcs_sandbox.errors import SpecError, StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import TypeVar

    _K = TypeVar("_K")
    _V = TypeVar("_V")

__all__ = [
    "APP_DIR_NAME",
    "DATABASE_NAME",
    "ENV_STATE_DIR",
    "SANDBOXES_DIR",
    "TEMPLATES_DIR",
    "WINDOWS_STATE_DIR_SDDL",
    "SandboxFiles",
    "canonical_id",
    "database_path",
    "default_state_dir",
    "ensure_sandbox_dir",
    "ensure_sandbox_dir_text",
    "ensure_state_dir",
    "ensure_state_dir_text",
    "existing_state_dir",
    "existing_state_dir_text",
    "reads_as_id",
    "sandbox_dir",
    "sandbox_dir_text",
    "sandbox_files",
    "sddl_is_restricted",
    "state_dir",
    "state_dir_text",
    "template_dir",
    "templates_dir",
]

ENV_STATE_DIR = "HCS_SANDBOX_STATE_DIR"
APP_DIR_NAME = "hcs-sandbox"
DATABASE_NAME = "state.db"
SANDBOXES_DIR = "sandboxes"
#: cp's transfer share under a sandbox folder (files.py); one batch folder per copy in it.
TRANSFER_DIR = "transfer"
TEMPLATES_DIR = "templates"

# Owner BUILTIN\Administrators; protected DACL ("P": nothing inherited from the parent);
# two ACEs "allow, object+container inherit (OICI), FILE_ALL_ACCESS (FA)" for
# BUILTIN\Administrators (BA) and LOCAL SYSTEM (SY).
# Source: Microsoft Learn, "Security Descriptor String Format" and "ACE Strings"
# (https://learn.microsoft.com/en-us/windows/win32/secauthz/security-descriptor-string-format,
#  .../secauthz/ace-strings, SID aliases in .../secauthz/sid-strings).
WINDOWS_STATE_DIR_SDDL = "O:BAD:P(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)"
_ALLOWED_OWNERS = frozenset({"BA", "SY"})
_REQUIRED_ACES = frozenset({"A;OICI;FA;;;BA", "A;OICI;FA;;;SY"})


def default_state_dir(
    *, platform: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The default state directory for ``platform`` (``sys.platform``), as a string.

    Ignores ``HCS_SANDBOX_STATE_DIR``; see :func:`state_dir` for the full rule.
    """
    platform = sys.platform if platform is None else platform
    env = os.environ if environ is None else environ
    if platform == "win32":
        # %ProgramData% (KNOWNFOLDERID FOLDERID_ProgramData; environment variable ProgramData,
        # default C:\ProgramData).  Windows environment names are case-insensitive.
        base = _env_get(env, "ProgramData") or _env_get(env, "ALLUSERSPROFILE") or r"C:\ProgramData"
        return base.rstrip("\\/") + "\\" + APP_DIR_NAME
    xdg = env.get("XDG_STATE_HOME", "").strip()
    # XDG Base Directory Specification: a relative $XDG_STATE_HOME is invalid and ignored.
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, APP_DIR_NAME)
    home = env.get("HOME", "").strip() or os.path.expanduser("~")
    return os.path.join(home, ".local", "state", APP_DIR_NAME)


def _env_get(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if value is None:
        lowered = name.lower()
        for key, val in env.items():
            if key.lower() == lowered:
                value = val
                break
    return (value or "").strip()


def state_dir(
    explicit: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Path:
    """The state directory: ``explicit``, else ``$HCS_SANDBOX_STATE_DIR``, else the default.

    The result is absolute (``~`` expanded, relative paths made absolute); nothing is created.
    """
    return _as_path(_state_dir_text(explicit, environ))


def state_dir_text(explicit: str | os.PathLike[str] | None = None) -> str:
    """``str(state_dir(explicit))`` without pathlib (same rules; nothing is created)."""
    return _state_dir_text(explicit, None)


def _state_dir_text(
    explicit: str | os.PathLike[str] | None, environ: Mapping[str, str] | None
) -> str:
    env = os.environ if environ is None else environ
    # Each text is read once (a Path's fspath and an os.environ look-up are Python calls).
    chosen = os.fspath(explicit).strip() if explicit is not None else ""
    if explicit is not None and not chosen:
        # An explicit empty value (``--state-dir "$UNSET"``) is bad input, not "not given":
        # falling back would act on the real state directory (QA s17 tester F7).  An empty
        # HCS_SANDBOX_STATE_DIR is unset, as an empty HCS_SANDBOX_SIMULATOR is (and an
        # empty XDG_STATE_HOME, XDG Base Directory Specification).
        raise empty_state_dir_error(os.fspath(explicit))
    if not chosen:
        chosen = env.get(ENV_STATE_DIR, "").strip()
        if not chosen:
            chosen = default_state_dir(environ=env)
    done = _ABSOLUTE.get(chosen)
    if done is None:
        done = os.path.abspath(os.path.expanduser(chosen))
        if (
            os.path.isabs(chosen)
            and not chosen.startswith("~")
            and (sys.platform != "win32" or os.path.splitdrive(chosen)[0])
        ):
            # Absolute (on Windows with its drive or UNC share): the result depends on
            # the text alone (not on the current folder or drive, nor on HOME), so it is
            # remembered.
            _remember(_ABSOLUTE, chosen, done)
    return done


def empty_state_dir_error(value: str, option: str = "state_dir") -> SpecError:
    """The error for an explicitly empty (or blank) state directory: ``option`` names it as
    the caller wrote it (``state_dir``, ``--state-dir``)."""
    return SpecError(
        f"invalid {option} {value!r}: an empty path names no folder",
        field="state_dir",
        value=value,
        remedy=f"give the state directory's path, or leave {option} out to use "
        f"{ENV_STATE_DIR} or the default",
        reason="an empty path names no folder",
    )


def _as_path(absolute: str) -> Path:
    """``Path(absolute)``, made once per process (pathlib imported on first use only: the
    ``ls`` verb never needs it)."""
    cached = _STATE_DIRS.get(absolute)
    if cached is None:
        from pathlib import Path

        cached = _remember(_STATE_DIRS, absolute, Path(absolute))
    return cached


# Per-process caches of pure path computations (a lifecycle asks for the same few paths
# dozens of times; building a Path costs more than the lookup).  Bounded: cleared when full.
_STATE_DIRS: dict[str, Path] = {}
_ABSOLUTE: dict[str, str] = {}
_DATABASES: dict[str, Path] = {}
_SANDBOX_FILES: dict[tuple[str, str], SandboxFiles] = {}
_SANDBOXES_TEXT: dict[str, str] = {}
_CACHE_SIZE = 256
_CANONICAL: re.Pattern[str] | None = None


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> _V:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def database_path(state: str | os.PathLike[str]) -> Path:
    """The state database inside ``state``."""
    key = os.fspath(state)
    cached = _DATABASES.get(key)
    if cached is None:
        from pathlib import Path

        cached = _remember(_DATABASES, key, Path(state) / DATABASE_NAME)
    return cached


def is_canonical_id(value: object) -> bool:
    """True for a GUID already in the form ``str(uuid.UUID(value))`` gives (lowercase
    ``8-4-4-4-12``), checked without building a UUID (``uuid`` imports ``platform``)."""
    global _CANONICAL
    if _CANONICAL is None:
        _CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    return isinstance(value, str) and _CANONICAL.fullmatch(value) is not None


#: Where a GUID's canonical ``8-4-4-4-12`` form has its dashes.
_GUID_DASHES = (8, 13, 18, 23)
_ID_CHARS: re.Pattern[str] | None = None


def reads_as_id(key: str) -> bool:
    """Whether ``key`` has the shape of a sandbox id or id prefix as the project prints or
    takes one, the keys ``Store.get`` tries as an id before it tries them as a name, and so
    the names a new sandbox may not have (``spec.check_new_name``; one rule for both, QA F2):

    * a prefix of the canonical form of 8 or more hex digits, dashes exactly where the
      GUID has them (``8-4-4-4-12``): ``deadbeef``, ``5cb6ec6e-119`` (what ``ls``/``ls -q``
      print), ``5cb6ec6e-1193-47d7-82c4-ae871e6eae11`` (``--no-trunc``);
    * the 32 hex digits without dashes (``uuid.UUID`` takes it);
    * either full form in braces (``uuid.UUID`` takes it; no name has braces).

    Any case (ids are looked up case-insensitively).  Not: fewer than 8 hex digits
    (``cafe``, ``1234567``: a name first, as in docker), a dash elsewhere (``2024-01-01``,
    ``build-1234``), 9 to 31 hex digits without the dash after the 8th: no id is printed so,
    and such a key is a name first, then an id prefix."""
    global _ID_CHARS
    if _ID_CHARS is None:
        _ID_CHARS = re.compile(r"[0-9a-fA-F-]{8,36}")
    braced = len(key) in (34, 38) and key[0] == "{" and key[-1] == "}"
    if braced:
        key = key[1:-1]
    if _ID_CHARS.fullmatch(key) is None:
        return False
    if len(key) == 32 and "-" not in key:
        return True
    dashes = [i for i in _GUID_DASHES if i < len(key)]
    shaped = key.count("-") == len(dashes) and all(key[i] == "-" for i in dashes)
    return shaped and (len(key) == 36 or not braced)


def canonical_id(value: str, *, what: str = "sandbox id") -> str:
    """A GUID in its canonical lowercase ``8-4-4-4-12`` form; :class:`SpecError` otherwise.

    Accepts upper case, braces and the 32-hex-digit form (``uuid.UUID`` rules).
    """
    if is_canonical_id(value):
        return value  # already canonical: what str(uuid.UUID(value)) gives back
    import uuid  # not at import time: uuid imports platform (start-up of every CLI verb)

    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError, TypeError):
        raise SpecError(
            f"invalid {what} {value!r}: not a GUID",
            field="id",
            value=value,
            allowed="a GUID such as 3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
        ) from None


def sandbox_dir(state: str | os.PathLike[str], sandbox_id: str) -> Path:
    """The folder for one sandbox's files: ``<state>/sandboxes/<id>`` (id checked as a GUID)."""
    return sandbox_files(state, sandbox_id).directory


def sandbox_dir_text(state: str | os.PathLike[str], sandbox_id: str) -> str:
    """``str(sandbox_dir(state, sandbox_id))`` without building a ``Path`` per sandbox (a
    create asks for a new id's folder; :func:`sandbox_files` makes seven ``Path`` objects).

    ``str(Path(state) / "sandboxes")`` is remembered per ``state`` text (pure: it depends on
    the text alone); joining a plain name (the canonical GUID: no separator, not ``.``) to a
    path whose last part is ``sandboxes`` is that text, the separator and the name, exactly
    as pathlib joins it.
    """
    key = os.fspath(state)
    prefix = _SANDBOXES_TEXT.get(key)
    if prefix is None:
        from pathlib import Path

        prefix = _remember(_SANDBOXES_TEXT, key, str(Path(key) / SANDBOXES_DIR))
    return f"{prefix}{os.sep}{canonical_id(sandbox_id)}"


def templates_dir(state: str | os.PathLike[str]) -> Path:
    """The folder holding template folders: ``<state>/templates``."""
    from pathlib import Path

    return Path(state) / TEMPLATES_DIR


def template_dir(state: str | os.PathLike[str], template_id: str) -> Path:
    """The folder for one template's files: ``<state>/templates/<id>``."""
    return templates_dir(state) / canonical_id(template_id, what="template id")


class SandboxFiles(Frozen):
    """The well-known files of one sandbox (none of them is created here).

    Names follow Windows Sandbox's own layout (``sandbox.vhdx``, ``sandbox.vmgs``; its HCS
    document as dumped in MouriNaruto/MouriDocs ``docs/4/ReadMe.md``).  HCS refuses VMGS/VMRS
    files at a drive root (same page, limitations), which this layout never produces.

    Immutable, compared and hashed by value (what ``@dataclass(frozen=True)`` gave; a plain
    class because importing ``dataclasses`` costs every CLI verb ~10 ms of start-up).
    """

    __slots__ = ("directory", "guest_state", "logs", "runtime_state", "saved_state", "scratch_vhdx")
    _FIELDS = ("directory", "scratch_vhdx", "guest_state", "runtime_state", "saved_state", "logs")
    directory: Path
    scratch_vhdx: Path
    guest_state: Path
    runtime_state: Path
    saved_state: Path
    logs: Path

    def __init__(  # noqa: PLR0917 - positional, like the dataclass it replaces
        self,
        directory: Path,
        scratch_vhdx: Path,
        guest_state: Path,
        runtime_state: Path,
        saved_state: Path,
        logs: Path,
    ) -> None:
        values = (directory, scratch_vhdx, guest_state, runtime_state, saved_state, logs)
        for name, value in zip(self._FIELDS, values, strict=True):
            object.__setattr__(self, name, value)


def sandbox_files(state: str | os.PathLike[str], sandbox_id: str) -> SandboxFiles:
    """The layout of one sandbox's folder (see the module docstring)."""
    key = (os.fspath(state), sandbox_id)
    cached = _SANDBOX_FILES.get(key)
    if cached is not None:
        return cached
    from pathlib import Path

    directory = Path(state) / SANDBOXES_DIR / canonical_id(sandbox_id)
    files = SandboxFiles(
        directory=directory,
        scratch_vhdx=directory / "sandbox.vhdx",
        guest_state=directory / "sandbox.vmgs",
        runtime_state=directory / "sandbox.vmrs",
        saved_state=directory / "saved.vmrs",
        logs=directory / "logs",
    )
    return _remember(_SANDBOX_FILES, key, files)


# --------------------------------------------------------------------------------------
# Creating and protecting
# --------------------------------------------------------------------------------------


def sddl_is_restricted(sddl: str) -> bool:
    """True when an ``O:..D:..`` SDDL string is exactly what the state directory needs.

    Owner Administrators or SYSTEM; a protected DACL (``P`` flag; ``AI``/``AR`` may also be
    present); exactly the two ACEs of :data:`WINDOWS_STATE_DIR_SDDL`.  Anything else (an
    extra ACE, an inherited one, another owner) means "too open" and is tightened.
    """
    match = re.fullmatch(r"O:([^:()]+?)(?:G:[^:()]+?)?D:([A-Z]*)((?:\([^()]*\))*)", sddl.strip())
    if match is None:
        return False
    owner, flags, aces_text = match.groups()
    if owner not in _ALLOWED_OWNERS:
        return False
    if "P" not in re.findall(r"P|AI|AR|NO_ACCESS_CONTROL", flags):
        return False
    aces = re.findall(r"\(([^()]*)\)", aces_text)
    return len(aces) == len(_REQUIRED_ACES) and set(aces) == _REQUIRED_ACES


def existing_state_dir_text(path: str | os.PathLike[str] | None = None) -> str | None:
    """The state directory for a read (``ls``, ``Sandbox.list``/``get``, ``reconcile``,
    ``prune``): None when it does not exist, and nothing is made (a mistyped or relative
    path showed "no sandboxes" and left a folder and a ``state.db`` behind: QA s17 agent
    F8); an existing one is checked (and tightened) as :func:`ensure_state_dir_text` does.
    Only a create makes the state directory.

    Only "not found" means none: ``FileNotFoundError``, and ``NotADirectoryError`` (a parent
    is a file, so the folder cannot exist either; Windows reports that case as not found).
    Any other error (a parent the user may not search: ``PermissionError``) goes on to
    :func:`ensure_state_dir_text` and its message, as before; ``os.path.lexists`` was false
    for those too and called an unreachable folder missing (review RV-misc R1)."""
    target = _state_dir_text(path, None)
    try:
        os.lstat(target)  # (lstat: a dangling link is refused below, not "none")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        pass
    return ensure_state_dir_text(target)


def existing_state_dir(path: str | os.PathLike[str] | None = None) -> Path | None:
    """:func:`existing_state_dir_text` as a ``Path`` (None: no state directory)."""
    text = existing_state_dir_text(path)
    return None if text is None else _as_path(text)


def ensure_state_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Create the state directory if missing, and make sure only its owners can use it.

    ``path`` defaults to :func:`state_dir`.  Returns the absolute path.  Raises
    :class:`~hcs_sandbox.errors.StoreError` (message and remedy) when it cannot be created
    or protected.  See the module docstring for the rules per OS.
    """
    return _as_path(ensure_state_dir_text(path))


# The longest paths a sandbox's own files take under the state directory (review RV40's
# budget): the folder <state>\sandboxes\<id>\logs\guest and the logon marker in it,
# logon.done (logon.py).  Windows allows a folder path of MAX_PATH - 12 characters with the
# NUL (CreateDirectory) and a file path of MAX_PATH with it (Microsoft, "Maximum Path
# Length Limitation"), so a longer state directory fails on its first sandbox.  A cp batch
# folder (<id>\transfer\<32 hex>) goes deeper: cp checks its own paths before copying
# (files.py), so a state directory that leaves no room for it only refuses that copy.
_ID = "0" * 36
_LONGEST_OWN_FOLDER = len("\\".join(["", SANDBOXES_DIR, _ID, "logs", "guest"]))
_LONGEST_OWN_FILE = len("\\".join(["", SANDBOXES_DIR, _ID, "logs", "guest", "logon.done"]))
_MAX_PATH = 260  # hostpath.MAX_PATH, not imported: `ls` opens the store and loads no hostpath
#: The longest state directory (characters) Windows leaves room for a sandbox's own files
#: in without long paths.
MAX_STATE_DIR_LENGTH = min(
    _MAX_PATH - 12 - 1 - _LONGEST_OWN_FOLDER, _MAX_PATH - 1 - _LONGEST_OWN_FILE
)


def state_dir_length_problem(path: str) -> str | None:
    """Why the (absolute) state directory ``path`` is too long for a sandbox's own files on
    Windows without long paths (:func:`hostpath.too_long`'s rule: Windows, not ``\\\\?\\``,
    LongPathsEnabled not 1), or None."""
    if len(path) <= MAX_STATE_DIR_LENGTH:
        return None  # (before the import: every create asks)
    from hcs_sandbox.sandbox import hostpath

    if not hostpath.limits_apply(path):
        return None
    return (
        f"the state directory {path} is {len(path)} characters long; a sandbox's files go up "
        f"to {_LONGEST_OWN_FILE} characters deeper "
        f"(<state>\\{SANDBOXES_DIR}\\<id>\\logs\\guest\\logon.done), and Windows allows "
        f"{_MAX_PATH} characters for a path without long paths, so it may be at most "
        f"{MAX_STATE_DIR_LENGTH} characters"
    )


#: What to do about a state directory too long for a sandbox's files.
SHORTER_STATE_DIR_REMEDY = (
    "choose a shorter --state-dir / HCS_SANDBOX_STATE_DIR, or enable long paths "
    "(LongPathsEnabled=1)"
)


def check_room_for_sandboxes(path: str) -> None:
    """A :class:`~hcs_sandbox.errors.SpecError` when a new sandbox's files would not fit
    under the state directory ``path`` (:func:`state_dir_length_problem`).  Asked where new
    paths are made (``Sandbox.create``, a state directory created for the first time), not
    by every verb: a user whose state directory is longer can still list, stop, remove and
    prune what is in it (review RV42 #1)."""
    problem = state_dir_length_problem(path)
    if problem is not None:
        raise SpecError(
            problem,
            field="state_dir",
            value=path,
            remedy=SHORTER_STATE_DIR_REMEDY,
        )


def ensure_state_dir_text(path: str | os.PathLike[str] | None = None) -> str:
    """:func:`ensure_state_dir`, returning the path as a string (no ``pathlib`` import:
    what ``ls`` and :func:`~hcs_sandbox.sandbox.store.open_store` use).  A state directory
    to be created that is too long for a sandbox's files on Windows
    (:func:`state_dir_length_problem`) is refused with a
    :class:`~hcs_sandbox.errors.SpecError`; an existing one is used as it is."""
    target = _state_dir_text(path, None)
    if len(target) > MAX_STATE_DIR_LENGTH and not os.path.isdir(target):
        check_room_for_sandboxes(target)  # a new one only: see check_room_for_sandboxes
    if sys.platform == "win32":
        _ensure_windows(_as_path(target))
    else:
        _ensure_posix(target)
    return target


def ensure_sandbox_dir(state: str | os.PathLike[str], sandbox_id: str) -> Path:
    """Create ``<state>/sandboxes/<id>`` (mode 0700; on Windows see the module docstring:
    its own protected DACL on current Pythons, the state DACL inherited on older ones)."""
    ensure_sandbox_dir_text(state, sandbox_id)
    return sandbox_dir(state, sandbox_id)


def ensure_sandbox_dir_text(state: str | os.PathLike[str], sandbox_id: str) -> str:
    """:func:`ensure_sandbox_dir`, returning the folder as text (:func:`sandbox_dir_text`)."""
    directory = sandbox_dir_text(state, sandbox_id)
    try:
        try:
            _mkdir(directory)
        except FileNotFoundError:  # the first sandbox: make <state>/sandboxes, then again
            _mkdir(os.path.join(state, SANDBOXES_DIR))
            _mkdir(directory)
    except OSError as exc:
        raise StoreError(
            f"cannot create the sandbox folder {directory}: {exc.strerror or exc}",
            remedy="check that the state directory exists and that you may write to it "
            "(run as Administrator on Windows)",
        ) from exc
    return directory


def _mkdir(path: str | os.PathLike[str]) -> None:
    """``Path(path).mkdir(mode=0o700, exist_ok=True)`` without pathlib."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def _ensure_posix(target: str) -> None:
    # Fast path (every store open): it exists already, is ours and is closed to others.
    try:
        st = os.stat(target)
    except OSError:
        pass
    else:
        getuid = getattr(os, "getuid", None)
        if (
            stat.S_ISDIR(st.st_mode)
            and not stat.S_IMODE(st.st_mode) & 0o077
            and (getuid is None or st.st_uid == getuid())
        ):
            return
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.mkdir(target, 0o700)
        return
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(
            f"cannot create the state directory {target}: {exc.strerror or exc}",
            remedy=f"choose a writable location with {ENV_STATE_DIR}=PATH",
        ) from exc
    try:
        st = os.stat(target)
    except OSError as exc:
        raise StoreError(
            f"cannot read the state directory {target}: {exc.strerror or exc}",
            remedy=f"fix its permissions or choose another location with {ENV_STATE_DIR}=PATH",
        ) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(
            f"the state directory {target} exists but is not a directory",
            remedy=f"move that file away or choose another location with {ENV_STATE_DIR}=PATH",
        )
    getuid = getattr(os, "getuid", None)
    if getuid is not None and st.st_uid != getuid():
        raise StoreError(
            f"the state directory {target} belongs to another user (uid {st.st_uid})",
            remedy=f"use your own directory with {ENV_STATE_DIR}=PATH, or remove that one",
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        # Ours but readable or writable by others: tighten it (documented choice).
        try:
            os.chmod(target, 0o700)
        except OSError as exc:  # pragma: no cover - we own it, so chmod works
            raise StoreError(
                f"the state directory {target} is open to other users and cannot be "
                f"restricted: {exc.strerror or exc}",
                remedy=f"run 'chmod 700 {target}'",
            ) from exc


def _ensure_windows(target: Path) -> None:  # pragma: no cover - Windows only
    from hcs_sandbox.native import fs

    text = str(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create {target.parent}: {exc.strerror or exc}",
            remedy="run as Administrator",
        ) from exc
    try:
        fs.create_directory_with_sddl(text, WINDOWS_STATE_DIR_SDDL)
        return
    except OSError as exc:
        if getattr(exc, "winerror", None) != fs.ERROR_ALREADY_EXISTS:
            raise StoreError(
                f"cannot create the state directory {target}: {exc.strerror or exc}",
                remedy="run as Administrator (the state directory is readable by "
                "Administrators and SYSTEM only)",
            ) from exc
    if not target.is_dir():
        raise StoreError(
            f"the state directory {target} exists but is not a directory",
            remedy="move that file away and run again",
        )
    try:
        current = fs.get_file_sddl(text)
    except OSError as exc:
        raise StoreError(
            f"cannot read the permissions of the state directory {target}: {exc.strerror or exc}",
            remedy="run as Administrator",
        ) from exc
    if sddl_is_restricted(current):
        return
    try:
        fs.set_file_sddl(text, WINDOWS_STATE_DIR_SDDL)
    except OSError as exc:
        raise StoreError(
            f"the state directory {target} is open to other users ({current}) and could "
            f"not be restricted: {exc.strerror or exc}",
            remedy=f'as Administrator run: takeown /F "{target}" /A /R, then run again; or '
            "remove the directory if you did not create it",
        ) from exc
