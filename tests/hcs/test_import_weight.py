"""The hcs layer and the binding import no ``logging``, ``dataclasses``, ``queue``,
``weakref`` or ``uuid`` (``hcs-sandbox ls`` with live records imports them, then needs none);
the plain classes that replaced dataclasses keep a frozen dataclass's behaviour, and the lazy
loggers log like ``logging.getLogger`` ones."""

from __future__ import annotations

import copy
import dataclasses
import logging
import pickle
import subprocess
import sys

import pytest

from hcs_sandbox.hcs._log import get_logger
from hcs_sandbox.hcs.events import Event
from hcs_sandbox.hcs.operation import ProcessInformation

LIGHT = ("logging", "dataclasses", "queue", "weakref", "uuid", "platform", "inspect")


def test_importing_the_hcs_layer_imports_none_of_the_heavy_modules() -> None:
    probe = (
        "import sys\n"
        "import hcs_sandbox.hcs.system, hcs_sandbox.hcs._watch, hcs_sandbox.native\n"
        f"print('HEAVY', sorted(m for m in {LIGHT!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr


def _twin(cls: type, fields: tuple[tuple[str, object], ...]) -> type:
    """A frozen dataclass with ``cls``'s name and fields (defaults as given)."""
    spec = [
        (name, object) if default is dataclasses.MISSING else (name, object, default)
        for name, default in fields
    ]
    return dataclasses.make_dataclass(cls.__name__, spec, frozen=True)  # type: ignore[arg-type]


M = dataclasses.MISSING


@pytest.mark.parametrize(
    ("cls", "fields", "args"),
    [
        (Event, (("type", M), ("data", M), ("operation", None)), [(1, "x"), (2, None, 5)]),
        (
            ProcessInformation,
            (("process_id", M), ("std_input", M), ("std_output", M), ("std_error", M)),
            [(10, 1, 2, 3), (11, None, None, None)],
        ),
    ],
)
def test_plain_classes_behave_like_the_frozen_dataclasses(
    cls: type, fields: tuple[tuple[str, object], ...], args: list[tuple[object, ...]]
) -> None:
    twin = _twin(cls, fields)
    for a in args:
        ours, theirs = cls(*a), twin(*a)
        assert repr(ours) == repr(theirs)
        assert ours == cls(*a)
        assert hash(ours) == hash(cls(*a))
        assert ours != cls(*[*a[:-1], "other"])
        assert (ours == theirs) is False  # another class: NotImplemented, as a dataclass
        assert cls.__match_args__ == twin.__match_args__  # type: ignore[attr-defined]
        for name, _default in fields:
            assert getattr(ours, name) == getattr(theirs, name)
            with pytest.raises(AttributeError):
                setattr(ours, name, 0)
            with pytest.raises(AttributeError):
                delattr(ours, name)
        with pytest.raises(AttributeError):
            ours.extra = 1  # type: ignore[attr-defined]
        assert copy.copy(ours) == ours
        assert copy.deepcopy(ours) == ours
        assert pickle.loads(pickle.dumps(ours)) == ours
    kwargs = {name: i for i, (name, _d) in enumerate(fields)}
    assert cls(**kwargs) == cls(*kwargs.values())


def test_event_defaults_and_json() -> None:
    assert Event(1, None).operation is None
    assert Event(1, '{"a": 1}').json() == {"a": 1}
    assert Event(1, "not json").json() is None
    match Event(3, "d", 4):
        case Event(t, d, o):
            assert (t, d, o) == (3, "d", 4)


def test_lazy_logger_logs_from_the_callers_frame(caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger("hcs_sandbox.tests.lazy")
    with caplog.at_level(logging.DEBUG, logger="hcs_sandbox.tests.lazy"):
        line = sys._getframe().f_lineno + 1
        log.warning("value %s", 42)
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        log.debug("quiet")
    first, second, third = caplog.records
    assert (first.name, first.levelno, first.getMessage()) == (
        "hcs_sandbox.tests.lazy",
        logging.WARNING,
        "value 42",
    )
    assert (first.pathname, first.lineno, first.funcName) == (
        __file__,
        line,
        "test_lazy_logger_logs_from_the_callers_frame",
    )
    assert second.exc_info is not None
    assert second.exc_info[0] is ValueError
    assert third.levelno == logging.DEBUG
    assert log.name == "hcs_sandbox.tests.lazy"
    assert log.isEnabledFor(logging.CRITICAL)
    assert log._logger is logging.getLogger("hcs_sandbox.tests.lazy")  # type: ignore[attr-defined]


def test_event_sink_is_still_importable() -> None:
    import queue

    from hcs_sandbox.hcs._watch import EventSink, Watch

    assert "Queue" in repr(EventSink)
    watch = Watch(1)
    got: list[Event] = []
    q: queue.Queue[Event] = queue.Queue()
    watch.subscribe(got.append)
    watch.subscribe(q)
    watch.on_event(Event(7, "x"))
    assert got == [Event(7, "x")]
    assert q.get_nowait() == Event(7, "x")
