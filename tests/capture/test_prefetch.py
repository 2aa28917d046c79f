"""The prefetch hint compiles for every index form the kernels use and changes nothing."""

from __future__ import annotations

import numpy as np

from otsight._jit import njit
from otsight.capture._prefetch import prefetch, prefetch_write


@njit(cache=False)
def _sum_with_hints(flat, rows):
    total = 0
    for i in range(flat.shape[0]):
        prefetch(flat, i)  # 1-D: an integer index
        total += flat[i]
    for r in range(rows.shape[0]):
        prefetch(rows, (r, rows.shape[1] - 1))  # 2-D: a tuple, as for a row of a matrix
        prefetch_write(rows, (r, 0))
        for c in range(rows.shape[1]):
            total += rows[r, c]
    return total


def test_prefetch_hints_compile_and_leave_data_alone():
    flat = np.arange(1000, dtype=np.uint8)
    rows = np.arange(60, dtype=np.int64).reshape(20, 3)
    before = (flat.copy(), rows.copy())
    assert _sum_with_hints(flat, rows) == int(flat.astype(np.int64).sum() + rows.sum())
    assert np.array_equal(flat, before[0]) and np.array_equal(rows, before[1])
