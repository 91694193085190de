"""The doctor reads ``sc.exe query`` on a Windows in any language (review RV29 finding 4).

``sc query`` translates its labels -- ``STATE`` is ``STATUS`` in German, ``ÉTAT`` in French,
``ESTADO`` in Portuguese -- but not the state's number nor the word after it (the
``SERVICE_STATUS`` ``dwCurrentState`` values 1-7, STOPPED ... PAUSED).  The localized label
words used below come from third-party test fixtures in public repositories (a Portuguese
output captured on a real machine, with the accents its code page lost, and German and
French state lines), as RV29 found them: not from Microsoft.  Each test fails on the code before the
change (1843ecf), which looked for the label ``STATE`` and reported ``UNKNOWN``.
"""

from __future__ import annotations

import pytest

from hcs_sandbox.sandbox import doctor

ENGLISH = """
SERVICE_NAME: vmcompute
        TYPE               : 10  WIN32_OWN_PROCESS
        STATE              : 4  RUNNING
                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)
        WIN32_EXIT_CODE    : 0  (0x0)
        SERVICE_EXIT_CODE  : 0  (0x0)
        CHECKPOINT         : 0x0
        WAIT_HINT          : 0x0
"""
# The English output with the state's label as the fixtures show it; the other labels are
# left in English (only the state line's label is known from a source).
GERMAN = ENGLISH.replace("STATE      ", "STATUS     ")
FRENCH = ENGLISH.replace("STATE      ", "\u00c9TAT       ")
# Shaped like the Portuguese fixture: TIPO and ESTADO, and labels whose accented letters
# the console code page turned into U+FFFD on the way.
PORTUGUESE = """
NOME_DO_SERVI\ufffdO: hns
        TIPO               : 20  WIN32_SHARE_PROCESS
        ESTADO             : 1  STOPPED
        C\ufffdDIGO_DE_SA\ufffdDA_DO_WIN32 : 1077  (0x435)
        PONTO_DE_VERIFICA\ufffd\ufffdO   : 0x0
"""

#: SERVICE_STATUS dwCurrentState (Microsoft Learn, winsvc.h, SERVICE_STATUS_PROCESS).
STATES = [
    (1, "STOPPED"),
    (2, "START_PENDING"),
    (3, "STOP_PENDING"),
    (4, "RUNNING"),
    (5, "CONTINUE_PENDING"),
    (6, "PAUSE_PENDING"),
    (7, "PAUSED"),
]


def _sc(monkeypatch: pytest.MonkeyPatch, out: str, code: int = 0) -> None:
    monkeypatch.setattr(doctor, "_run", lambda argv, timeout=60.0: (code, out))


@pytest.mark.parametrize(
    ("out", "state"),
    [(ENGLISH, "RUNNING"), (GERMAN, "RUNNING"), (FRENCH, "RUNNING"), (PORTUGUESE, "STOPPED")],
    ids=["en", "de", "fr", "pt"],
)
def test_the_state_is_read_whatever_the_label(
    monkeypatch: pytest.MonkeyPatch, out: str, state: str
) -> None:
    _sc(monkeypatch, out)
    assert doctor.service_state("vmcompute") == state


@pytest.mark.parametrize(("number", "word"), STATES)
def test_each_of_the_seven_states(monkeypatch: pytest.MonkeyPatch, number: int, word: str) -> None:
    _sc(monkeypatch, f"        ESTADO             : {number}  {word}\n")
    assert doctor.service_state("hns") == word
    assert doctor.SERVICE_STATES[number] == word


@pytest.mark.parametrize(
    "out",
    [
        "",
        "[SC] EnumQueryServicesStatus:OpenService FAILED 5:\n\nAccess is denied.\n",
        "\ufffd\ufffd\ufffd : \ufffd\ufffd \ufffd\ufffd\ufffd\n",  # garbled by a code page
        "        TYPE               : 1  KERNEL_DRIVER\n",  # a number and a word, not a state
        "        STATE              : 4  STOPPED\n",  # a state word that is not the number's
        "        STATE              : 9  RUNNING\n",  # no such state number
    ],
    ids=["empty", "denied", "garbled", "type-line", "mismatch", "number"],
)
def test_output_without_a_state_is_unknown(monkeypatch: pytest.MonkeyPatch, out: str) -> None:
    _sc(monkeypatch, out)
    assert doctor.service_state("vmcompute") == "UNKNOWN"


def test_no_such_service_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    _sc(monkeypatch, "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\n", code=1060)
    assert doctor.service_state("hns") is None


def test_a_healthy_german_host_gets_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    _sc(monkeypatch, GERMAN)
    monkeypatch.setattr(doctor.sys, "platform", "win32")
    check = doctor._check_services()
    assert check.status == doctor.OK, check
    assert check.data == {"vmcompute": "RUNNING", "hns": "RUNNING"}
