"""Buffers that outlive a chunk: zero-filled, on a private mapping of their own."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from otsight._memory import zeroed


def _mapping_of(address: int) -> tuple[int, str]:
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if start <= address < end:
                return start, perms
    raise AssertionError(f"address 0x{address:x} is in no mapping")


def test_zeroed_is_zero_filled_writable_and_shaped():
    a = zeroed((3, 5), np.int64)
    assert a.shape == (3, 5) and a.dtype == np.int64 and a.flags.c_contiguous
    assert a.flags.writeable and not a.any()
    a[2, 4] = 7
    assert a.sum() == 7 and not zeroed(7, np.uint8).any()
    assert zeroed(0, np.int32).shape == (0,)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_zeroed_lives_on_a_private_mapping_of_its_own():
    # Its own mapping: the data starts where a mapping starts (a heap block sits behind an
    # allocator header). Private: a shared anonymous map is slower to fault in.
    a = zeroed(1 << 20, np.int64)
    start, perms = _mapping_of(a.ctypes.data)
    assert start == a.ctypes.data and perms == "rw-p"
