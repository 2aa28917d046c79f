"""Pair responses with their requests, vectorised, across chunk boundaries.

Industrial protocols answer requests in order per transaction key (Modbus transaction id,
DNP3 sequence, S7 PDU reference, CIP sender context...). A response is paired with the
latest earlier request of the same key; requests still unanswered at the end of a chunk are
carried into the next one (the latest per key, for a bounded time).
"""

from __future__ import annotations

import numpy as np

NS_PER_S = 1_000_000_000


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
        K1 = np.concatenate([self._k1, k1])
        K2 = np.concatenate([self._k2, k2])
        REQ = np.concatenate([np.ones(c, bool), is_req.astype(bool)])
        FR = np.concatenate([self._frame, frame])
        TS = np.concatenate([self._ts, ts])
        PL = np.concatenate([self._payload, payload.reshape(n, self.width)])
        order = np.lexsort((np.arange(c + n), K2, K1))
        sk1, sk2, sreq = K1[order], K2[order], REQ[order]
        pos = np.arange(c + n)
        last = np.where(sreq, pos, -1)
        np.maximum.accumulate(last, out=last)
        prev = last  # for a response: the latest request before it in key order
        ok = (prev >= 0) & ~sreq
        prev_c = np.maximum(prev, 0)
        ok &= (sk1[prev_c] == sk1) & (sk2[prev_c] == sk2)
        matched_sorted = ok
        src_sorted = order[prev_c]
        out_matched = np.zeros(c + n, bool)
        out_src = np.zeros(c + n, np.int64)
        out_matched[order] = matched_sorted
        out_src[order] = src_sorted
        m = out_matched[c:]
        src = out_src[c:]
        req_frame = FR[src]
        req_ts = TS[src]
        req_payload = PL[src]
        # carry: the latest request per key that no response answered, if recent enough
        answered = np.zeros(c + n, bool)
        answered[out_src[out_matched]] = True
        is_last_of_key = np.ones(c + n, bool)
        is_last_of_key[:-1] = (sk1[1:] != sk1[:-1]) | (sk2[1:] != sk2[:-1])
        # the latest request of each key: the last request row before the key changes
        keep_sorted = sreq & ~answered[order]
        if c + n:
            # a request followed (within the key) by another request is superseded
            nxt_req = np.zeros(c + n, bool)
            nxt_req[:-1] = sreq[1:] & ~is_last_of_key[:-1]
            keep_sorted &= ~nxt_req
        now = TS.max() if c + n else 0
        keep = order[keep_sorted]
        keep = keep[TS[keep] >= now - self.max_wait]
        self._k1, self._k2 = K1[keep], K2[keep]
        self._frame, self._ts, self._payload = FR[keep], TS[keep], PL[keep]
        return m, req_frame, req_ts, req_payload
