"""Pair responses with their requests across chunk boundaries, with a hash kernel.

Industrial protocols answer requests in order per transaction key (Modbus transaction id,
DNP3 sequence, S7 PDU reference, CIP sender context...). A response is paired with the
latest earlier request of the same key; requests still unanswered at the end of a chunk are
carried into the next one (the latest per key, for a bounded time).

One pass over the rows in capture order with an open-addressing table keyed on the two key
columns: no sort, so pairing costs a few tens of nanoseconds per row.
"""

from __future__ import annotations

import numpy as np

from otsight._jit import njit

NS_PER_S = 1_000_000_000


@njit(cache=True, nogil=True)
def _pair(k1, k2, is_req, src, matched):
    """For each row (capture order), ``src`` = row of the latest earlier request with the
    same key and ``matched`` where there is one (responses only). Returns the rows of
    requests that are the last row of their key (unanswered, to carry over)."""
    n = k1.shape[0]
    size = 16
    while size < 2 * n:
        size *= 2
    mask = size - 1
    t1 = np.empty(size, np.int64)
    t2 = np.empty(size, np.int64)
    last_req = np.full(size, -1, np.int64)
    last_is_req = np.zeros(size, np.bool_)
    used = np.zeros(size, np.bool_)
    for i in range(n):
        a = k1[i]
        b = k2[i]
        h = (a * np.int64(-7046029254386353131)) ^ (b * np.int64(-4658895280553007687))
        h ^= h >> np.int64(29)
        s = h & mask
        while used[s] and (t1[s] != a or t2[s] != b):
            s = (s + 1) & mask
        if not used[s]:
            used[s] = True
            t1[s] = a
            t2[s] = b
        if is_req[i]:
            last_req[s] = i
            last_is_req[s] = True
            matched[i] = False
        else:
            r = last_req[s]
            if r >= 0:
                matched[i] = True
                src[i] = r
            else:
                matched[i] = False
            last_is_req[s] = False
    count = 0
    for s in range(size):
        if used[s] and last_is_req[s]:
            count += 1
    keep = np.empty(count, np.int64)
    count = 0
    for s in range(size):
        if used[s] and last_is_req[s]:
            keep[count] = last_req[s]
            count += 1
    keep.sort()
    return keep


class RequestMatcher:
    """Match on two int64 key columns; requests carry ``width`` int64 payload values."""

    def __init__(self, width: int, max_wait_s: float = 600.0) -> None:
        self.width = width
        self.max_wait = int(max_wait_s * NS_PER_S)
        self._k1 = np.zeros(0, np.int64)
        self._k2 = np.zeros(0, np.int64)
        self._frame = np.zeros(0, np.int64)
        self._ts = np.zeros(0, np.int64)
        self._payload = np.zeros((0, width), np.int64)

    def match(self, k1, k2, is_req, frame, ts, payload):
        """Return (matched, req_frame, req_ts, req_payload) for every row given.

        ``matched`` is True for responses paired with a request; the other outputs are
        meaningful where ``matched``. ``payload`` is int64 [n, width] (only request rows
        are read).
        """
        n = k1.shape[0]
        c = self._k1.shape[0]
        K1 = np.concatenate([self._k1, np.asarray(k1, np.int64)])
        K2 = np.concatenate([self._k2, np.asarray(k2, np.int64)])
        REQ = np.concatenate([np.ones(c, bool), np.asarray(is_req, bool)])
        src = np.zeros(c + n, np.int64)
        ok = np.empty(c + n, bool)
        keep = _pair(K1, K2, REQ, src, ok)
        m, s = ok[c:], src[c:]
        FR = np.concatenate([self._frame, frame])
        TS = np.concatenate([self._ts, ts])
        PL = np.concatenate([self._payload, payload.reshape(n, self.width)])
        req_frame, req_ts, req_payload = FR[s], TS[s], PL[s]
        # carry: the latest request per key that no response answered, if recent enough
        now = TS.max() if c + n else 0
        keep = keep[TS[keep] >= now - self.max_wait]
        self._k1, self._k2 = K1[keep], K2[keep]
        self._frame, self._ts, self._payload = FR[keep], TS[keep], PL[keep]
        return m, req_frame, req_ts, req_payload
