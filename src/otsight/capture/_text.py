"""Text columns written by a kernel straight into Arrow's string layout.

Some detail columns hold numbers that are nearly all distinct (TCP sequence numbers), so
formatting once per distinct value does not help and a Python f-string per row costs about
a microsecond. The kernel writes the decimal digits into one buffer with the offsets.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from otsight._jit import njit

_MAX_DIGITS = 20  # "-9223372036854775808"


@njit(cache=True, inline="always")
def _put_text(out, pos, text):
    for k in range(text.shape[0]):
        out[pos + k] = text[k]
    return pos + text.shape[0]


@njit(cache=True, inline="always")
def _put_int(out, pos, x):
    if x < 0:
        out[pos] = 45  # '-'
        pos += 1
        mag = np.uint64(-(x + 1)) + np.uint64(1)  # -x overflows for the smallest int64
    else:
        mag = np.uint64(x)
    digits = 1
    t = mag
    while t >= np.uint64(10):
        t //= np.uint64(10)
        digits += 1
    for k in range(digits - 1, -1, -1):
        out[pos + k] = np.uint8(48 + mag % np.uint64(10))
        mag //= np.uint64(10)
    return pos + digits


@njit(cache=True, nogil=True)
def _two_ints(a, b, before, between, after):
    n = a.shape[0]
    offsets = np.empty(n + 1, np.int32)
    width = before.shape[0] + between.shape[0] + after.shape[0] + 2 * _MAX_DIGITS
    out = np.empty(n * width, np.uint8)
    pos = 0
    for i in range(n):
        offsets[i] = pos
        pos = _put_text(out, pos, before)
        pos = _put_int(out, pos, a[i])
        pos = _put_text(out, pos, between)
        pos = _put_int(out, pos, b[i])
        pos = _put_text(out, pos, after)
    offsets[n] = pos
    return offsets, out[:pos]


def two_ints_text(
    a: np.ndarray, b: np.ndarray, before: str, between: str, after: str
) -> pa.StringArray:
    """``f"{before}{a}{between}{b}{after}"`` for each row of the int64 columns ``a``, ``b``."""

    def encoded(s: str) -> np.ndarray:
        return np.frombuffer(s.encode(), np.uint8)

    a = np.ascontiguousarray(a, dtype=np.int64)
    b = np.ascontiguousarray(b, dtype=np.int64)
    offsets, data = _two_ints(a, b, encoded(before), encoded(between), encoded(after))
    return pa.Array.from_buffers(
        pa.string(), a.shape[0], [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
