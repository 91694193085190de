"""Property tests for the .wsb reader/writer (hypothesis)."""

from __future__ import annotations

import codecs

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcs_sandbox.errors import WsbError
from hcs_sandbox.sandbox.spec import MappedFolder, SandboxSpec
from hcs_sandbox.sandbox.wsb import WsbResult, parse_wsb, to_wsb

# -- random valid specs that a .wsb can express round-trip through to_wsb/parse_wsb ---------

_win_component = st.from_regex(
    r"[A-Za-z0-9_&'()\[\]é][A-Za-z0-9_ &'()\[\]é.-]{0,10}[A-Za-z0-9_]", fullmatch=True
).filter(
    lambda c: (
        c.split(".", 1)[0].rstrip(" ").upper()
        not in {"CON", "PRN", "AUX", "NUL"}
        | {f"COM{i}" for i in range(10)}
        | {f"LPT{i}" for i in range(10)}
    )
)
_win_host = st.builds(
    lambda drive, sep, parts, tail: f"{drive}:{sep}" + sep.join(parts) + tail,
    st.sampled_from("CDEcz"),
    st.sampled_from(["\\", "/"]),
    st.lists(_win_component, min_size=1, max_size=3),
    st.sampled_from(["", "\\"]),
)
_posix_host = st.builds(
    lambda parts: "/" + "/".join(parts),
    st.lists(
        st.from_regex(r"[a-z0-9_][a-z0-9._ <>&-]{0,8}[a-z0-9]", fullmatch=True),
        min_size=1,
        max_size=3,
    ),
)
_command = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() != "")


# Windows device names are refused as guest path components (hostpath.guest_path_problem).
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{d}{i}" for d in ("COM", "LPT") for i in range(10)}


@st.composite
def wsb_specs(draw: st.DrawFn) -> SandboxSpec:
    guests = draw(
        st.lists(
            st.from_regex(r"[A-Za-z][A-Za-z0-9 _-]{0,8}[A-Za-z0-9]", fullmatch=True).filter(
                lambda n: n.split(".")[0].strip().upper() not in _RESERVED
            ),
            max_size=4,
            unique_by=str.casefold,
        )
    )
    folders = []
    for name in guests:
        depth = draw(st.sampled_from(["", "\\sub", "\\a b\\c"]))
        drive = draw(st.sampled_from("Cc"))
        guest = f"{drive}:\\{name}{depth}"
        folders.append(MappedFolder(draw(_win_host | _posix_host), guest, draw(st.booleans())))
    return SandboxSpec(
        memory_mb=draw(st.integers(2048, 1024 * 1024)),
        network=draw(st.sampled_from(["none", "nat"])),
        mapped_folders=tuple(folders),
        logon_command=draw(st.none() | _command),
        gpu=draw(st.booleans()),
        clipboard=draw(st.booleans()),
        audio_input=draw(st.booleans()),
        video_input=draw(st.booleans()),
        printer=draw(st.booleans()),
        protected_client=draw(st.booleans()),
        display="desktop",
    )


@settings(max_examples=200, deadline=None)
@given(wsb_specs(), st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_property_specs_round_trip_through_wsb(spec: SandboxSpec, encoding: str) -> None:
    text = to_wsb(spec)
    result = parse_wsb(text.encode(encoding), source_path="rt.wsb")
    assert result.spec == spec
    # every loosening setting of the spec shows up as a warning, and nothing else does
    # (the desktop display, which no .wsb element turns off, is one of them)
    assert len(result.warnings) == len(spec.loosened_isolation()) + 1
    assert result.warning_fields.count("display") == 1


# -- random input never raises anything but WsbError ------------------------------------------

SEED = (
    b'<?xml version="1.0"?>\r\n<Configuration>\n <vGPU>Enable</vGPU>\n'
    b" <Networking>Disabled</Networking>\n <MemoryInMB>4096</MemoryInMB>\n"
    b" <MappedFolders><MappedFolder><HostFolder>C:\\a &amp; b</HostFolder>"
    b"<SandboxFolder>C:\\x</SandboxFolder><ReadOnly>True</ReadOnly></MappedFolder>"
    b"</MappedFolders>\n <LogonCommand><Command>cmd /c echo &gt; x</Command></LogonCommand>\n"
    b" <!-- comment --><AudioInput>Default</AudioInput>\n</Configuration>\n"
)


def _check(data: bytes) -> None:
    error: WsbError | None = None
    try:
        result = parse_wsb(data, source_path="fuzz.wsb", environ={"A": "C:\\env"})
    except WsbError as exc:
        error = exc
    if error is None:
        assert isinstance(result, WsbResult)
        assert isinstance(result.spec, SandboxSpec)
    else:
        assert str(error).startswith("fuzz.wsb")
        assert error.remedy


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_property_random_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(SEED)), st.integers(0, 8), st.binary(max_size=8)),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([b"", codecs.BOM_UTF8]),
)
def test_property_mutated_files(edits: list[tuple[int, int, bytes]], prefix: bytes) -> None:
    data = bytearray(SEED)
    for at, drop, insert in edits:
        data[at : at + drop] = insert
    _check(prefix + bytes(data))


_TOKENS = [
    "<Configuration>",
    "</Configuration>",
    "<VGpu>",
    "</VGpu>",
    "<vgpu>",
    "</vgpu>",
    "<Networking>",
    "</Networking>",
    "<MemoryInMB>",
    "</MemoryInMB>",
    "<MappedFolders>",
    "</MappedFolders>",
    "<MappedFolder>",
    "</MappedFolder>",
    "<HostFolder>",
    "</HostFolder>",
    "<SandboxFolder>",
    "</SandboxFolder>",
    "<ReadOnly>",
    "</ReadOnly>",
    "<LogonCommand>",
    "</LogonCommand>",
    "<Command>",
    "</Command>",
    "Enable",
    "Disable",
    "Default",
    "true",
    "false",
    "2048",
    "C:\\x",
    "c:/X/y",
    ".\\rel",
    "%A%\\y",
    "%B%",
    "\\\\srv\\s",
    "&amp;",
    "&lt;",
    "<!-- c -->",
    "<![CDATA[x]]>",
    "\n",
    " ",
    "<x/>",
    "<!DOCTYPE a>",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=40))
def test_property_token_soup(tokens: list[str]) -> None:
    _check("".join(tokens).encode("utf-8"))
