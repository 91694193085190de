"""The root conftest's ``sigint_reaches_children``: the tests that send SIGINT to a process they
start (tests/cli/test_cli_sigint.py, the attached ``run`` in test_cli_lifecycle.py, the entry
window in tests/sim/test_sim_signals.py) failed all five together -- exit 0 with the command's
output, a hang until the timeout, no KeyboardInterrupt at all -- when pytest itself ignored
SIGINT: a shell without job control starts a background job (``pytest ... &``) so, and
``exec`` passes an ignored signal on to every child."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signal dispositions")

_CHILD = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"


@pytest.fixture
def pytest_ignores_sigint() -> Iterator[None]:
    """As in a background job of a shell without job control.  Set up before the fixture
    under test and torn down after it: SIGINT must be ignored again by then."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def _child_has_the_default_handler() -> str:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_a_child_of_a_process_that_ignores_sigint_ignores_it(pytest_ignores_sigint: None) -> None:
    assert _child_has_the_default_handler() == "False"


def test_a_child_started_under_the_fixture_gets_the_default_handler(
    pytest_ignores_sigint: None, sigint_reaches_children: None
) -> None:
    assert _child_has_the_default_handler() == "True"


def test_the_fixture_leaves_a_handler_that_is_not_ignored_alone(
    sigint_reaches_children: None,
) -> None:
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    assert _child_has_the_default_handler() == "True"
