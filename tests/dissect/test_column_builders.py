"""Column builders shared by the dissectors: absent values become nulls, present ones keep
their value and type."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from otsight.dissect import sparse
from otsight.dissect.base import null_negative_rows, sparse_column, take_envelope


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


def _envelope(n: int, rng) -> dict[str, pa.Array]:
    ips = pa.array([f"10.0.0.{i}" for i in range(9)])
    orig = pa.array(rng.random(n + 5) < 0.5).slice(5)  # a bitmap that starts mid-byte
    return {
        "capture": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), ["x"]),
        "frame": pa.array(np.arange(n, dtype=np.int64) + 1),
        "src_ip": pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 9, n, np.int32)), ips),
        "dst_ip": pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 9, n, np.int32)), ips),
        "src_port": pa.array(rng.integers(0, 65536, n, np.int32)),
        "dst_port": pa.array(rng.integers(0, 65536, n, np.int32)),
        "is_orig": orig,
    }


@pytest.mark.parametrize("n_rows", [10, 5000])  # below and above the one-pass threshold
def test_take_envelope_matches_arrow_take(n_rows):
    rng = np.random.default_rng(3)
    env = _envelope(3001, rng)
    rows = np.sort(rng.integers(0, 3001, n_rows))
    got = take_envelope(env, rows)
    for name, col in env.items():
        assert got[name].type == col.type
        assert got[name].to_pylist() == col.take(pa.array(rows)).to_pylist(), name


def test_take_envelope_with_a_null_takes_with_arrow():
    rng = np.random.default_rng(4)
    env = _envelope(3000, rng)
    env["src_port"] = pa.array(np.arange(3000, dtype=np.int32), mask=np.arange(3000) == 7)
    rows = np.arange(2999, -1, -1)
    got = take_envelope(env, rows)
    assert got["src_port"].to_pylist()[-8] is None
    assert got["is_orig"].to_pylist() == env["is_orig"].to_pylist()[::-1]


def test_take_envelope_out_of_range_is_an_error():
    env = _envelope(2000, np.random.default_rng(5))
    with pytest.raises(IndexError):
        take_envelope(env, np.arange(1, 2001))


def test_sparse_strings_and_dictionaries_hold_values_only_at_their_rows():
    n = 20
    cols = sparse.strings(n, {"a": {3: "x", 9: None, 17: "yz"}, "b": {}})
    assert cols["a"].to_pylist() == ["x" if i == 3 else "yz" if i == 17 else None for i in range(n)]
    assert cols["b"].null_count == n
    d = sparse.dictionary(n, {0: "p", 5: "q", 6: "p", 7: None})
    assert d.to_pylist() == ["p" if i in (0, 6) else "q" if i == 5 else None for i in range(n)]
    lists = sparse.string_lists(n, {2: ["a", "b"], 19: []})
    assert lists.to_pylist() == [
        ["a", "b"] if i == 2 else [] if i == 19 else None for i in range(n)
    ]
    few = pa.array(["u", None, "v"]).dictionary_encode()
    spread = sparse.spread_dictionary(n, np.array([1, 4, 8]), few)
    assert spread.to_pylist() == ["u" if i == 1 else "v" if i == 8 else None for i in range(n)]
