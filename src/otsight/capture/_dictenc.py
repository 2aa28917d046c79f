"""Dictionary encoding of address columns in one pass (hash table), for Arrow output.

``np.unique`` sorts, which costs O(n log n) per column per chunk; a hash table finds the
few distinct addresses of a chunk in O(n).
"""

from __future__ import annotations

import numpy as np

from otsight._jit import njit


@njit(cache=True, nogil=True)
def dict_encode_pairs(hi, lo):
    """Return (codes int32, distinct hi, distinct lo) in order of first appearance."""
    n = hi.shape[0]
    cap = 64
    while cap < 2 * n:
        cap *= 2
    cap = min(cap, 1 << 22) if n < (1 << 21) else cap
    slots = np.full(cap, -1, dtype=np.int64)
    mask = np.uint64(cap - 1)
    uh = np.empty(n, dtype=np.uint64)
    ul = np.empty(n, dtype=np.uint64)
    codes = np.empty(n, dtype=np.int32)
    m = 0
    for i in range(n):
        h = hi[i]
        v = lo[i]
        x = (v ^ (h * np.uint64(0x9E3779B97F4A7C15))) * np.uint64(0xFF51AFD7ED558CCD)
        x ^= x >> np.uint64(29)
        pos = x & mask
        while True:
            s = slots[pos]
            if s < 0:
                slots[pos] = m
                uh[m] = h
                ul[m] = v
                codes[i] = m
                m += 1
                break
            if uh[s] == h and ul[s] == v:
                codes[i] = s
                break
            pos = (pos + np.uint64(1)) & mask
    return codes, uh[:m].copy(), ul[:m].copy()
