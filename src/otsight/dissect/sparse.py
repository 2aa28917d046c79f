"""Columns with a value at a few rows in thousands, built from the few values.

Identity answers, file names, block lists and the like come once in many thousand PDUs,
yet their columns span every row of a batch. Building them as "a full column of absent
markers, then a take" costs a pass over every row per column; here the offsets, indices
and validity buffers are written directly around the rows that have a value.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.dissect.base import sparse_column


@njit(cache=True, nogil=True, _nrt=False)
def _spread(keys, lengths, present, bounds, offsets, bits):
    """Offsets and validity of columns that have values at a few rows only: column ``c`` at
    rows ``keys[bounds[c]:bounds[c + 1]]`` (ascending), of ``lengths`` (null where not
    ``present``)."""
    n = offsets.shape[1] - 1
    for c in range(bounds.shape[0] - 1):
        for i in range(bits.shape[1]):
            bits[c, i] = 0
        total = 0
        j = 0
        for k in range(bounds[c], bounds[c + 1]):
            r = keys[k]
            while j <= r:
                offsets[c, j] = total
                j += 1
            total += lengths[k]
            if present[k]:
                bits[c, r >> 3] |= np.uint8(1 << (r & 7))
        while j <= n:
            offsets[c, j] = total
            j += 1


def _buffers(n: int, keys: list[int], lengths: list[int], present: list[bool], bounds):
    """Offsets and validity buffers of columns of ``n`` rows with values at a few rows only
    (column ``c``: ``keys[bounds[c]:bounds[c + 1]]``), made by one kernel call for all."""
    m = len(bounds) - 1
    offsets = np.empty((m, n + 1), np.int32)
    bits = np.empty((m, (n + 7) >> 3), np.uint8)
    _spread(
        np.array(keys, np.int64),
        np.array(lengths, np.int64),
        np.array(present, np.bool_),
        np.array(bounds, np.int64),
        offsets,
        bits,
    )
    return [(pa.py_buffer(offsets[c]), pa.py_buffer(bits[c])) for c in range(m)]


def string_lists(n: int, rows: dict[int, list[str]]) -> pa.Array:
    """A list<string> column, null but at ``rows`` (row → its strings)."""
    if not rows:
        return pa.nulls(n, pa.list_(pa.string()))
    keys = sorted(rows)
    lists = [rows[k] for k in keys]
    [(offsets, validity)] = _buffers(
        n, keys, [len(v) for v in lists], [True] * len(keys), [0, len(keys)]
    )
    values = pa.array([s for v in lists for s in v], pa.string())
    return pa.Array.from_buffers(pa.list_(pa.string()), n, [validity, offsets], children=[values])


def strings(n: int, columns: dict[str, dict[int, str | None]]) -> dict[str, pa.Array]:
    """String columns, each null but at its rows (row → text; None is null too)."""
    res = {name: pa.nulls(n, pa.string()) for name, rows in columns.items() if not rows}
    filled = [name for name, rows in columns.items() if rows]
    if not filled:
        return res
    keys: list[int] = []
    texts: list[str | None] = []
    bounds = [0]
    for name in filled:
        rows = columns[name]
        for k in sorted(rows):
            keys.append(k)
            texts.append(rows[k])
        bounds.append(len(keys))
    data = [b"" if t is None else t.encode() for t in texts]
    buffers = _buffers(n, keys, [len(d) for d in data], [t is not None for t in texts], bounds)
    for c, name in enumerate(filled):
        offsets, validity = buffers[c]
        raw = pa.py_buffer(b"".join(data[bounds[c] : bounds[c + 1]]))
        res[name] = pa.StringArray.from_buffers(n, offsets, raw, validity)
    return res


def dictionary(n: int, rows: dict[int, str | None]) -> pa.DictionaryArray:
    """A dictionary-encoded string column, null but at ``rows`` (row → text; None is null
    too): the few distinct values are encoded, not a column of nulls."""
    kept = sorted(k for k, v in rows.items() if v is not None)
    if not kept:
        return pa.nulls(n, E._STR)
    codes: dict[str, int] = {}
    at = np.array(kept, np.int64)
    values = np.array([codes.setdefault(rows[k], len(codes)) for k in kept], np.int32)  # type: ignore[arg-type]
    return pa.DictionaryArray.from_arrays(
        sparse_column(n, at, values, np.int32), pa.array(list(codes), pa.string()), safe=False
    )


def spread_dictionary(n: int, rows: np.ndarray, few: pa.DictionaryArray) -> pa.DictionaryArray:
    """``few`` (one value per row of ``rows``, ascending) placed at those rows of an
    otherwise null column of ``n`` rows, with the same dictionary."""
    valid = few.is_valid().to_numpy(zero_copy_only=False)
    indices = few.indices.to_numpy(zero_copy_only=False)
    column = sparse_column(n, rows[valid], indices[valid], np.int32)
    return pa.DictionaryArray.from_arrays(column, few.dictionary, safe=False)
