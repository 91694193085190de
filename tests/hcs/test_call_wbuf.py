"""``_call.wbuf``: a ``PCWSTR`` input that owns its wide-string copy (round 8: a
``c_wchar_p``, not ``create_unicode_buffer``)."""

from __future__ import annotations

import ctypes
import gc

from hcs_sandbox.hcs._call import wbuf


def test_none_stays_null() -> None:
    assert wbuf(None) is None


def test_text_round_trips_and_outlives_its_source() -> None:
    text = "".join(['{"Owner":"h\u00e9\u20ac \U0001f600",', '"x":"' + "y" * 5000 + '"}'])
    buf = wbuf(text)
    assert isinstance(buf, ctypes.c_wchar_p)
    address = ctypes.cast(buf, ctypes.c_void_p).value
    expected = str(text)
    del text
    gc.collect()
    assert buf.value == expected
    assert ctypes.wstring_at(address) == expected  # the buffer the native call reads


def test_passes_as_a_pcwstr_argument() -> None:
    """What a prototype with a ``c_wchar_p`` argument receives from it."""
    seen: list[str | None] = []
    proto = ctypes.CFUNCTYPE(None, ctypes.c_wchar_p)
    callback = proto(seen.append)
    callback(wbuf("abc \U0001f600"))
    assert seen == ["abc \U0001f600"]
