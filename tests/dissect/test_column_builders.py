"""Column builders shared by the dissectors: absent values become nulls, present ones keep
their value and type."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from otsight.dissect.base import null_negative_rows, sparse_column


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16])
def test_sparse_column_is_null_but_at_its_rows(dtype):
    n = 100_003  # not a multiple of 8: the last validity byte is partial
    rows = np.array([0, 7, 8, 4095, 4096, 65_537, n - 1], np.int64)
    values = np.array([5, 0, 1 << 14, 3, 2, 1, 7], np.int64)
    col = sparse_column(n, rows, values, dtype)
    assert col.type == pa.from_numpy_dtype(dtype) and len(col) == n
    assert col.null_count == n - rows.shape[0]
    got = col.to_pylist()
    want = [None] * n
    for r, v in zip(rows.tolist(), values.tolist(), strict=True):
        want[r] = v
    assert got == want


def test_sparse_column_without_rows_is_all_null():
    col = sparse_column(10, np.zeros(0, np.int64), np.zeros(0, np.int64), np.int32)
    assert col.type == pa.int32() and col.null_count == 10


def test_null_negative_rows_narrows_and_nulls_negatives():
    out = np.array([[1, -1, 300, 0, -5, 2, 3, 4, 9], [-1] * 9], np.int64)
    cols = null_negative_rows(out, (("a", 0), ("b", 1)), np.int16)
    assert cols["a"].type == pa.int16()
    assert cols["a"].to_pylist() == [1, None, 300, 0, None, 2, 3, 4, 9]
    assert cols["b"].null_count == 9
