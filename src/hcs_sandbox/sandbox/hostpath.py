"""Path rules shared by SandboxSpec and the ``.wsb`` reader: host paths and guest paths.

Pure string logic, no file I/O (except :func:`directory_problem`, which callers use at run
time, and :func:`long_paths_enabled`, a registry read on Windows), so the same rules hold on
Windows and on the POSIX hosts that run the simulator.

*Host paths* are where a folder or image lives on the machine that runs the sandbox.  On
Windows they are Windows paths (``C:\\work``, ``C:/work``); the simulator runs elsewhere, so
POSIX absolute paths (``/srv/work``) are accepted too.  UNC and device paths (``\\\\server\\share``,
``//server/share``, ``\\\\?\\...``, ``\\\\.\\...``) are refused: Windows Sandbox stopped mapping
network shares in 24H2 "due to security concerns" (microsoft/Windows-Sandbox#63), and a
network share makes the sandbox depend on another host.

*Guest paths* are where a folder appears inside the Windows guest: always absolute Windows
paths with a drive letter (``C:\\data``).  Windows compares paths case-insensitively, so two
guest paths that differ only in case or in separators are the same folder.

Sources for the Windows naming rules: Microsoft, *Naming Files, Paths, and Namespaces*
(learn.microsoft.com/windows/win32/fileio/naming-a-file): reserved characters
``< > : " / \\ | ? *``, characters 1–31, the reserved device names (CON, PRN, AUX, NUL,
COM1–9, LPT1–9, COM¹–³, LPT¹–³, also with an extension; COM0 and LPT0 are not reserved: the
page lists them no more, MicrosoftDocs/win32@4fde3c1, golang/go#67238), "do not end a file or
directory name with a space or a period", and the ``\\\\?\\`` and ``\\\\.\\`` prefixes.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
import re
import sys
from collections.abc import Mapping

from hcs_sandbox.errors import SpecError

__all__ = [
    "LONG_PATHS_REMEDY",
    "MAX_PATH",
    "WSB_DEFAULT_DESKTOP",
    "directory_problem",
    "expand_variables",
    "guest_key",
    "guest_path_problem",
    "has_variable_reference",
    "host_basename",
    "host_path_problem",
    "is_absolute_host_path",
    "is_network_path",
    "is_posix_absolute",
    "is_unc",
    "is_windows_absolute",
    "join_host_path",
    "limits_apply",
    "long_paths_enabled",
    "nested_or_same",
    "normalise_guest_path",
    "too_long",
    "too_long_problem",
    "without_device_prefix",
    "workdir_problem",
]

# Windows Sandbox maps a folder without <SandboxFolder> to the container user's desktop:
# "If no sandbox folder is specified, the folder is mapped to the container desktop"
# (windows-sandbox-configure-using-wsb-file.md); C:\Test -> ...\Desktop\Test (MicrosoftDocs/
# windows-itpro-docs windows-sandbox-overview.md @083e62c, 2020).  The container user is
# WDAGUtilityAccount (renenyffenegger.ch notes Windows/optional-features/Windows-Sandbox).
WSB_DEFAULT_DESKTOP = "C:\\Users\\WDAGUtilityAccount\\Desktop"

_WINDOWS_ABSOLUTE = re.compile(r"[A-Za-z]:[\\/]")
_DRIVE_RELATIVE = re.compile(r"[A-Za-z]:(?![\\/])")
# naming-a-file: reserved characters in a path component (the separators are handled apart).
_RESERVED_CHARS = frozenset('<>:"|?*')
_RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]  # not COM0/LPT0: see the module docstring
    + [f"LPT{i}" for i in range(1, 10)]
    + ["COM¹", "COM²", "COM³", "LPT¹", "LPT²", "LPT³"]
)
# %NAME% where NAME looks like a Windows environment variable name (letters, digits, _ and
# the parentheses of ProgramFiles(x86)).  A lone % is left as it is.
_VARIABLE = re.compile(r"%([A-Za-z_][A-Za-z0-9_()]*)%")


def _has_control(text: str) -> bool:
    """True when ``text`` holds a character 0–31 (naming-a-file) or one XML 1.0 cannot carry."""
    for ch in text:
        code = ord(ch)
        if code < 32 or code in (0xFFFE, 0xFFFF) or 0xD800 <= code <= 0xDFFF:
            return True
    return False


def is_unc(path: str) -> bool:
    """True for UNC and device-namespace paths: two leading separators of either kind.

    Covers ``\\\\server\\share``, ``//server/share``, ``\\\\?\\UNC\\...``, ``\\\\?\\C:\\...`` and
    ``\\\\.\\pipe\\...`` (naming-a-file: the ``\\\\?\\`` and ``\\\\.\\`` prefixes).
    """
    return len(path) >= 2 and path[0] in "\\/" and path[1] in "\\/"


def is_windows_absolute(path: str) -> bool:
    """True for ``X:\\...`` or ``X:/...`` (a drive letter, a colon and a separator)."""
    return _WINDOWS_ABSOLUTE.match(path) is not None


def is_posix_absolute(path: str) -> bool:
    """True for ``/x`` (but not ``//x``, which is UNC-like and refused)."""
    return path.startswith("/") and not is_unc(path)


def is_absolute_host_path(path: str) -> bool:
    """A host path we accept as absolute: Windows with a drive letter, or POSIX."""
    return is_windows_absolute(path) or is_posix_absolute(path)


def _windows_components_problem(
    rest: str, *, what: str, dots: bool = False, trailing: bool = True, names: bool = True
) -> str | None:
    """The first component of ``rest`` Windows forbids; ``dots``: ``.`` and ``..`` are
    allowed (naming-a-file: "use a period as a directory component in a path to represent
    the current directory", two for the parent); ``trailing``: a component ending with a
    space or a period is refused (naming-a-file: "Do not end a file or directory name with a
    space or a period").  Host and guest paths of mapped folders keep that rule: a guest
    folder is created under that name, and two spellings Windows reads as one folder
    (``C:\\data.`` and ``C:\\data``) would pass the overlap check (``guest_key``) as two.
    A working directory does not: CreateProcess normalises it, which trims them (*File path
    formats on Windows systems*, "Trim characters").  ``names``: a device name (CON, NUL ...)
    is refused; a ``\\\\?\\`` path is passed on "with minimal modification" and may name one
    (naming-a-file), so the components of a UNC or device path are checked for characters
    only."""
    for part in re.split(r"[\\/]+", rest):
        if not part or (dots and part in (".", "..")):
            continue
        if part in (".", ".."):
            return f"{what} contains a '{part}' component; write the full path without it"
        bad = sorted({ch for ch in part if ch in _RESERVED_CHARS})
        if bad:
            chars = " ".join(bad)
            return f"{what} component {part!r} contains a character Windows forbids ({chars})"
        if trailing and part[-1] in " .":
            return f"{what} component {part!r} ends with a space or a period, which Windows drops"
        stem = part.split(".", 1)[0].rstrip(" ").upper()
        if names and stem in _RESERVED_NAMES:
            return f"{what} component {part!r} is a reserved Windows device name"
    return None


def host_path_problem(path: str) -> str | None:
    """Why ``path`` is not an acceptable absolute host path, or None when it is."""
    if not path:
        return "the host path is empty"
    if _has_control(path):
        return "the host path contains a control character"
    if path != path.strip():
        return "the host path starts or ends with whitespace"
    if is_unc(path):
        return (
            "UNC and device paths (\\\\server\\share, //server/share, \\\\?\\...) are not "
            "accepted as host paths; copy the files to a local folder"
        )
    if _DRIVE_RELATIVE.match(path):
        return "the host path is drive-relative (like C:folder); write C:\\folder"
    if is_windows_absolute(path):
        return _windows_components_problem(path[3:], what="the host path")
    if is_posix_absolute(path):
        return None
    return "the host path is not absolute; write a full path such as C:\\work or /srv/work"


def guest_path_problem(path: str) -> str | None:
    """Why ``path`` is not an acceptable guest folder, or None when it is.

    A guest path is an absolute Windows path below a drive root (``C:\\data``); the drive
    root itself is refused because mapping over it would hide the guest's own files.
    """
    if not path:
        return "the guest path is empty"
    if _has_control(path):
        return "the guest path contains a control character"
    if not is_windows_absolute(path):
        return "the guest path must be an absolute Windows path such as C:\\data"
    rest = path[3:]
    if not rest.strip("\\/"):
        return "the guest path is a drive root; map the folder below it, such as C:\\data"
    return _windows_components_problem(rest, what="the guest path")


def is_network_path(path: str) -> bool:
    """True for a UNC path that names a share (``\\\\server\\share``, ``//server/share``,
    ``\\\\?\\UNC\\server\\share``); False for a local device path (``\\\\?\\C:\\``,
    ``\\\\.\\Volume{...}``) and anything that is not UNC (*File path formats on Windows
    systems*)."""
    if not is_unc(path):
        return False
    upper = path.upper().replace("/", "\\")
    return upper[2:3] not in ("?", ".") or upper[3:4] != "\\" or upper[4:8] == "UNC\\"


_DEVICE_DRIVE = re.compile(r"[\\/]{2}[?.][\\/](?=[A-Za-z]:[\\/])")
_DEVICE_UNC = re.compile(r"[\\/]{2}[?.][\\/]UNC[\\/]", re.IGNORECASE)


def without_device_prefix(path: str) -> str:
    """``path`` without a device prefix that names a drive or a share: ``\\\\?\\X:\\...``
    and ``\\\\.\\X:\\...`` become ``X:\\...``, ``\\\\?\\UNC\\server\\share\\...`` becomes
    ``\\\\server\\share\\...`` (*File path formats on Windows systems*: the device path
    forms name the same file as the DOS and UNC paths; ``\\\\?\\`` only skips
    normalisation).  ``os.path.realpath`` keeps a ``\\\\?\\`` prefix it was given
    (CPython ``ntpath.realpath``).  Anything else is returned as it is."""
    match = _DEVICE_DRIVE.match(path)
    if match:
        return path[match.end() :]
    match = _DEVICE_UNC.match(path)
    if match:
        return "\\\\" + path[match.end() :]
    return path


#: What a working directory may be, for messages.
WORKDIR_ALLOWED = "an absolute Windows path such as C:\\Users\\Public"


def _unc_root_problem(path: str) -> str | None:
    """Why the UNC or device path ``path`` has no root to name a folder under, or None.

    A UNC path needs a server and a share (``\\\\server\\share``: "\\\\server\\share" is the
    volume, naming-a-file); a device path (``\\\\?\\`` or ``\\\\.\\``, *File path formats on
    Windows systems*) needs the drive, volume or ``UNC\\server\\share`` after its prefix.
    """
    parts = re.split(r"[\\/]", path[2:])
    if parts[0] in ("?", "."):
        rest = parts[1:]
        if not rest or not rest[0]:
            prefix = "\\\\" + parts[0] + "\\"
            return f"it is the {prefix} prefix alone, with no drive, volume or share after it"
        if rest[0].upper() == "UNC" and (len(rest) < 3 or not rest[1] or not rest[2]):
            return "it is a UNC path without both a server and a share"
        return None
    if not parts[0] or len(parts) < 2 or not parts[1]:
        return "it is a UNC path without both a server and a share"
    return None


def _unc_rest(path: str) -> str:
    """What follows the root of the UNC or device path ``path`` (one ``_unc_root_problem``
    passes): after ``\\\\server\\share`` or ``\\\\?\\UNC\\server\\share``, after the drive or
    volume of ``\\\\?\\X:`` or ``\\\\.\\Volume{...}``.  The reserved characters of *Naming
    Files, Paths, and Namespaces* apply to those components as to any."""
    parts = re.split(r"[\\/]", path[2:])
    device_unc = parts[0] in ("?", ".") and parts[1].upper() == "UNC"
    return "\\".join(parts[4 if device_unc else 2 :])


def workdir_problem(path: str) -> tuple[str, str] | None:
    """Why ``path`` cannot be a guest process's working directory (``ProcessParameters.
    WorkingDirectory``, CreateProcess's ``lpCurrentDirectory``), as ``(reason, remedy)``, or
    None.  Only what is known without the guest: whether the folder exists is the guest's
    answer (``ERROR_DIRECTORY``).

    Refused: an empty path; a control character; a UNC path with no server or share
    (``\\\\``, ``\\\\server``) and a device prefix with nothing after it (``\\\\?``,
    ``\\\\.\\``); anything else that is not a full path with a drive letter
    (``lpCurrentDirectory`` is "the full path to the current directory"); a component with a
    character or a name *Naming Files, Paths, and Namespaces* reserves (``< > : " | ? *``,
    CON, NUL, COM1 ...).  Allowed: ``.`` and ``..`` components (that page: they are part of
    a full path), and a component ending with a space or a period (CreateProcess normalises
    the path, which trims them: *File path formats on Windows systems*, "Trim characters").
    Passed on as they are: a UNC path (``\\\\server\\share\\dir``, ``//server/share``) and a
    ``\\\\?\\`` or ``\\\\.\\`` path: ``lpCurrentDirectory`` "can also specify a UNC path"
    (CreateProcess, learn.microsoft.com), and the two device prefixes differ only in that
    ``\\\\?\\`` skips normalisation ("they are otherwise identical", *File path formats*);
    cmd.exe itself will not run in a UNC folder, and whether the share or device is there is
    the guest's answer.  Their components after ``\\\\server\\share`` or the device root are
    checked for the reserved characters only, not for device names or trailing characters,
    which ``\\\\?\\`` passes on "with minimal modification".
    """
    if not path:
        return (
            "it is empty",
            "give a full guest path such as C:\\Users\\Public, or leave it out to start in "
            "the guest's default folder",
        )
    if _has_control(path):
        return "it contains a control character", WORKDIR_ALLOWED
    if is_unc(path):
        problem = _unc_root_problem(path)
        if problem:
            return problem, (
                "give a folder on a share as \\\\server\\share\\folder, or a full guest path "
                "such as C:\\Users\\Public"
            )
        problem = _windows_components_problem(
            _unc_rest(path), what="the path", dots=True, trailing=False, names=False
        )
        if problem:
            return problem.removeprefix("the path "), (
                'name a folder whose names Windows allows: none of < > : " | ? *'
            )
        return None  # UNC, \\?\ and \\.\ paths: CreateProcess takes them; the guest answers
    if not is_windows_absolute(path):
        return "it must be a full guest path", WORKDIR_ALLOWED
    problem = _windows_components_problem(path[3:], what="the path", dots=True, trailing=False)
    if problem:
        return problem.removeprefix("the path "), (
            'name a folder whose names Windows allows: none of < > : " | ? *, no device '
            "name such as CON or NUL"
        )
    return None


def normalise_guest_path(path: str) -> str:
    """The canonical spelling of a valid guest path: ``C:\\a\\b`` (upper-case drive letter,
    backslashes, no repeated or trailing separator).  Case of the rest is kept."""
    parts = [p for p in re.split(r"[\\/]+", path[3:]) if p]
    return path[0].upper() + ":\\" + "\\".join(parts)


def guest_key(path: str) -> str:
    """A comparison key for a valid guest path: Windows compares paths case-insensitively."""
    return normalise_guest_path(path).casefold()


def nested_or_same(a: str, b: str) -> bool:
    """True when guest paths ``a`` and ``b`` are the same folder or one contains the other."""
    ka, kb = guest_key(a), guest_key(b)
    return ka == kb or kb.startswith(ka + "\\") or ka.startswith(kb + "\\")


def host_basename(path: str) -> str:
    """The last component of a host path of either flavour (``C:\\Test\\`` → ``Test``)."""
    stripped = path.rstrip("\\/")
    parts = re.split(r"[\\/]", stripped)
    last = parts[-1] if parts else ""
    if _DRIVE_RELATIVE.fullmatch(last) or last.endswith(":"):
        return ""
    return last


def join_host_path(base_dir: str, relative: str) -> str:
    """Resolve ``relative`` (a path written in a .wsb) against ``base_dir``.

    The flavour follows ``base_dir``: a Windows base joins with :mod:`ntpath`; a POSIX base
    joins with :mod:`posixpath`, reading ``\\`` in ``relative`` as a separator because .wsb
    files are written on Windows (``.\\tools``).  ``.`` and ``..`` are resolved.
    """
    if is_windows_absolute(base_dir):
        return ntpath.normpath(ntpath.join(base_dir, relative))
    return posixpath.normpath(posixpath.join(base_dir, relative.replace("\\", "/")))


def has_variable_reference(text: str) -> bool:
    """True when ``text`` holds a ``%NAME%`` that :func:`expand_variables` would replace."""
    return _VARIABLE.search(text) is not None


def expand_variables(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace each ``%NAME%`` with its value from ``environ`` (default: ``os.environ``).

    Names match case-insensitively, as Windows environment variable names do.  An
    undefined name raises :class:`~hcs_sandbox.errors.SpecError` whose ``value`` is the name.
    """
    env = os.environ if environ is None else environ
    folded = {key.casefold(): value for key, value in env.items()}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        try:
            return folded[name.casefold()]
        except KeyError:
            raise SpecError(
                f"environment variable %{name}% is not defined",
                field="environment",
                value=name,
                remedy=f"define {name} or write the path without %{name}%",
            ) from None

    return _VARIABLE.sub(replace, text)


def directory_problem(path: str) -> str | None:
    """Run-time check (file I/O): why ``path`` is not an existing directory, or None."""
    try:
        if os.path.isdir(path):
            return None
        if os.path.exists(path):
            return "it exists but is not a directory"
    except (OSError, ValueError) as exc:  # ValueError: embedded NUL on some platforms
        return f"it cannot be checked ({exc})"
    return "it does not exist"


# --------------------------------------------------------------------------------------
# MAX_PATH on the host (review RV40)
# --------------------------------------------------------------------------------------

#: Win32 MAX_PATH: 260 characters *with* the terminating NUL, so a full path has at most 259
#: (Microsoft, "Maximum Path Length Limitation",
#: learn.microsoft.com/windows/win32/fileio/maximum-file-path-limitation).
MAX_PATH = 260
LONG_PATHS_DOCS = "https://learn.microsoft.com/windows/win32/fileio/maximum-file-path-limitation"
_LONG_PATHS_KEY = r"SYSTEM\CurrentControlSet\Control\FileSystem"
#: What to do about a path that is too long (for a ``remedy``).
LONG_PATHS_REMEDY = (
    "enable long paths on this host (set HKLM\\" + _LONG_PATHS_KEY + "\\LongPathsEnabled to 1, "
    "or the policy 'Enable Win32 long paths'; " + LONG_PATHS_DOCS + ") or use a shorter path"
)


def _on_windows() -> bool:
    """Whether the host is Windows (one switch; tests turn it on to emulate MAX_PATH)."""
    return sys.platform == "win32"


def long_paths_enabled() -> bool:
    """Whether ``LongPathsEnabled`` is 1 (registry read, Windows only; False elsewhere and
    when it cannot be read).  With it on, python.exe (long-path aware since 3.6, "What's New
    In Python 3.6") may use paths longer than MAX_PATH; it is 0 on a default Windows
    (CPython ``Doc/using/windows.rst``, "Removing the MAX_PATH Limitation")."""
    if sys.platform != "win32":
        return False
    import winreg

    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, _LONG_PATHS_KEY) as key:
            value, _kind = winreg.QueryValueEx(key, "LongPathsEnabled")
    except OSError:
        return False
    return bool(value == 1)


def limits_apply(path: str) -> bool:
    """Whether Windows' MAX_PATH limits this process's file calls on ``path``: on Windows,
    ``path`` not an extended-length ``\\\\?\\`` path, and long paths not enabled."""
    if not _on_windows() or path[:4] in ("\\\\?\\", "//?/"):
        return False
    return not long_paths_enabled()


def too_long(path: str | os.PathLike[str], *, folder: bool = False) -> bool:
    """True when ``path`` (made absolute) is too long for Windows file calls: on Windows,
    260 characters or more (``folder``: 248 or more, what CreateDirectory allows: "MAX_PATH
    minus 12"), not an extended-length ``\\\\?\\`` path, and long paths
    not enabled (:func:`long_paths_enabled`).  Python raises FileNotFoundError for such a
    path (CPython ``PC/errmap.h`` maps ERROR_PATH_NOT_FOUND and ERROR_FILENAME_EXCED_RANGE
    to ENOENT), so a caller that would say "does not exist" asks this first.  Always False
    off Windows."""
    if not _on_windows():
        return False
    try:
        text = os.fspath(path)
    except TypeError:
        return False
    if isinstance(text, bytes):  # pragma: no cover - callers pass text
        text = os.fsdecode(text)
    limit = MAX_PATH - 12 if folder else MAX_PATH
    return len(os.path.abspath(text)) >= limit and limits_apply(text)


def too_long_problem(path: str | os.PathLike[str], *, folder: bool = False) -> str:
    """The words for a :func:`too_long` path: how long it is and the limit."""
    length = len(os.path.abspath(os.fspath(path)))
    limit = f"{MAX_PATH - 12} characters for a new folder" if folder else f"{MAX_PATH} characters"
    return (
        f"it is {length} characters long, longer than Windows allows without long paths "
        f"({limit}, with the terminating NUL)"
    )
