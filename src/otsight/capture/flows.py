"""Bidirectional flows and TCP reassembly over chunks: the typed wrapper around ``_track``.

:class:`FlowTable` owns the state arrays (flow records, hash slots, byte pools, out-of-order
entries) that persist from one chunk to the next, grows them when the kernel asks, and
returns per chunk the framed PDUs, the stream anomalies (gaps) and the flows that ended.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from otsight._memory import zeroed
from otsight.capture import _track as T

NS_PER_S = 1_000_000_000


@dataclass
class TrackResult:
    """What one chunk produced."""

    pdus: np.ndarray  # int64 [n, T.NPC]
    arena: np.ndarray  # uint8: bytes of PDUs assembled from several segments
    gaps: np.ndarray  # int64 [n, T.NGC]
    flows: np.ndarray  # int64 [n, T.NF]: records of flows that ended
    flow_keys: np.ndarray  # uint64 [n, 5]
    pkt_flow: np.ndarray  # int64 per packet: flow id or -1
    pkt_side: np.ndarray  # int8 per packet: canonical side of the sender
    pkt_orig: np.ndarray  # int8 per packet: 1 when sent by the flow's client

    def pdu_bytes(self, j: int, buf: np.ndarray) -> bytes:
        """Bytes of PDU ``j`` (tests and rare rich decoding)."""
        p = self.pdus
        off, n = int(p[j, T.P_OFF]), int(p[j, T.P_LEN])
        src = self.arena if p[j, T.P_IN_ARENA] else buf
        return bytes(src[off : off + n])


def _stack(n: int) -> np.ndarray:
    free = zeroed(n, np.int64)
    free[:] = np.arange(n - 1, -1, -1, dtype=np.int64)
    return free


class FlowTable:
    """Flow and reassembly state carried across the chunks of one or more captures. The
    state and output buffers outlive the chunks: they live outside the heap (see
    ``otsight._memory``)."""

    def __init__(
        self,
        records: int = 4096,
        idle_timeout_s: float = 3600.0,
        closed_timeout_s: float = 300.0,
    ) -> None:
        self.idle_timeout = int(idle_timeout_s * NS_PER_S)
        self.closed_timeout = int(closed_timeout_s * NS_PER_S)
        self.F = zeroed((records, T.NF), np.int64)
        self.F[:, T.F_ID] = -1
        self.K = zeroed((records, 5), np.uint64)
        self.S = zeroed(4 * records, np.int64)
        self.S[:] = -1
        self.M = np.zeros(T.NM, dtype=np.int64)
        self.FREE = _stack(records)
        self.M[T.M_FREE] = records
        self.SPOOL = zeroed(64 * T.SMALL, np.uint8)
        self.SFREE = _stack(64)
        self.M[T.M_SFREE] = 64
        self.BPOOL = zeroed(8 * T.BIG, np.uint8)
        self.BFREE = _stack(8)
        self.M[T.M_BFREE] = 8
        self.OQ = zeroed((256, T.NO), np.int64)
        self.OFREE = _stack(256)
        self.M[T.M_OFREE] = 256
        self.max_live = 0
        self._out: _Outputs | None = None

    def _outputs(self, n_packets: int, payload_bytes: int) -> _Outputs:
        """Output arrays reused from chunk to chunk: fresh ones would be page-faulted in
        (and zeroed by the kernel) every time. Results are views valid until the next call."""
        if self._out is None or not self._out.fits(n_packets, payload_bytes):
            self._out = None  # the old buffers go first: both would be live at once
            self._out = _Outputs(n_packets, payload_bytes)
        return self._out

    # -- growth --------------------------------------------------------------------------
    @staticmethod
    def _grow_stack(free: np.ndarray, used_top: int, old_n: int, new_n: int) -> np.ndarray:
        out = zeroed(new_n, np.int64)
        out[:used_top] = free[:used_top]
        out[used_top : used_top + new_n - old_n] = np.arange(new_n - 1, old_n - 1, -1)
        return out

    def _grow_records(self) -> None:
        old = self.F.shape[0]
        new = old * 2
        F = zeroed((new, T.NF), np.int64)
        F[:old] = self.F
        F[old:, T.F_ID] = -1
        K = zeroed((new, 5), np.uint64)
        K[:old] = self.K
        top = int(self.M[T.M_FREE])
        self.FREE = self._grow_stack(self.FREE, top, old, new)
        self.M[T.M_FREE] = top + new - old
        self.F, self.K = F, K

    def _rehash(self) -> None:
        size = self.S.shape[0]
        if (int(self.M[T.M_LIVE]) + 2) * 4 > size:
            size *= 2
        S = zeroed(size, np.int64)
        T.rehash(S, self.K, self.F)
        self.S = S
        self.M[T.M_TOMB] = 0

    def _grow_pool(self, big: bool) -> None:
        slot = T.BIG if big else T.SMALL
        pool, free, key = (
            (self.BPOOL, self.BFREE, T.M_BFREE) if big else (self.SPOOL, self.SFREE, T.M_SFREE)
        )
        old = pool.shape[0] // slot
        new_pool = zeroed(2 * old * slot, np.uint8)
        new_pool[: pool.shape[0]] = pool
        top = int(self.M[key])
        new_free = self._grow_stack(free, top, old, 2 * old)
        self.M[key] = top + old
        if big:
            self.BPOOL, self.BFREE = new_pool, new_free
        else:
            self.SPOOL, self.SFREE = new_pool, new_free

    def _grow_ooo(self) -> None:
        old = self.OQ.shape[0]
        OQ = zeroed((2 * old, T.NO), np.int64)
        OQ[:old] = self.OQ
        top = int(self.M[T.M_OFREE])
        self.OFREE = self._grow_stack(self.OFREE, top, old, 2 * old)
        self.M[T.M_OFREE] = top + old
        self.OQ = OQ

    def _grow(self, status: int, out: _Outputs) -> None:
        if status == T.NEED_RECORDS:
            self._grow_records()
        elif status == T.NEED_REHASH:
            self._rehash()
        elif status == T.NEED_SMALL:
            self._grow_pool(big=False)
        elif status == T.NEED_BIG:
            self._grow_pool(big=True)
        elif status == T.NEED_OOO:
            self._grow_ooo()
        elif status == T.NEED_OUT:
            out.grow(self.M)
        else:  # pragma: no cover - a kernel bug, not an input problem
            raise RuntimeError(f"flow kernel returned unknown status {status}")

    # -- processing ----------------------------------------------------------------------
    def _state(self) -> tuple:
        return (
            self.F,
            self.K,
            self.S,
            self.M,
            self.FREE,
            self.SPOOL,
            self.SFREE,
            self.BPOOL,
            self.BFREE,
            self.OQ,
            self.OFREE,
        )

    def process(self, chunk, cols: np.ndarray, addrs: np.ndarray) -> TrackResult:
        """Track one chunk's packets (``cols``/``addrs`` from the L2–L4 kernel)."""
        n = chunk.count
        # The captured bytes bound the payload bytes; summing the payload column instead
        # would read a cache line of every packet's row just to size the arena.
        out = self._outputs(n, int(chunk.caplen.sum()) if n else 0)
        self.M[T.M_PN : T.M_EN + 1] = 0
        pkt_flow = np.empty(n, dtype=np.int64)
        pkt_side = np.empty(n, dtype=np.int8)
        pkt_orig = np.empty(n, dtype=np.int8)
        i = 0
        while True:
            i, status = T.track(
                i,
                chunk.first_frame,
                chunk.ts,
                chunk.wirelen,
                cols,
                addrs,
                chunk.buf,
                *self._state(),
                *out.arrays(),
                pkt_flow,
                pkt_side,
                pkt_orig,
                self.idle_timeout,
                self.closed_timeout,
            )
            if status == T.DONE:
                break
            self._grow(status, out)
        self.max_live = max(self.max_live, int(self.M[T.M_LIVE]))
        if n:
            self._sweep(int(chunk.ts.max()), False, out)
        return out.result(self.M, pkt_flow, pkt_side, pkt_orig)

    def finish(self) -> TrackResult:
        """End every flow still open (end of input)."""
        out = _Outputs(0, 0)
        self.M[T.M_PN : T.M_EN + 1] = 0
        self._sweep(0, True, out)
        empty8 = np.empty(0, dtype=np.int8)
        return out.result(self.M, np.empty(0, dtype=np.int64), empty8, empty8)

    def _sweep(self, now: int, everything: bool, out: _Outputs) -> None:
        r = 0
        while True:
            r, status = T.expire(
                r,
                now,
                self.idle_timeout,
                self.closed_timeout,
                everything,
                *self._state(),
                *out.arrays(),
            )
            if status == T.DONE:
                return
            out.grow(self.M)

    @property
    def live(self) -> int:
        return int(self.M[T.M_LIVE])


class _Outputs:
    """Per-chunk output arrays, sized for the kernel's worst case and grown on demand."""

    def __init__(self, n_packets: int, payload_bytes: int) -> None:
        self.P = zeroed((2 * n_packets + T.WORST_PDUS + 64, T.NPC), np.int64)
        self.A = zeroed(min(payload_bytes, 64 << 20) + 2 * T.WORST_ARENA, np.uint8)
        self.G = zeroed((4 * T.OOO_MAX + 64, T.NGC), np.int64)
        self.EF = zeroed((64, T.NF), np.int64)
        self.EK = zeroed((64, 5), np.uint64)

    def fits(self, n_packets: int, payload_bytes: int) -> bool:
        return (
            self.P.shape[0] >= 2 * n_packets + T.WORST_PDUS + 64
            and self.A.shape[0] >= min(payload_bytes, 64 << 20) + 2 * T.WORST_ARENA
        )

    def arrays(self) -> tuple:
        return self.P, self.A, self.G, self.EF, self.EK

    def grow(self, M: np.ndarray) -> None:
        pn, an, gn, en = (int(M[k]) for k in (T.M_PN, T.M_AN, T.M_GN, T.M_EN))
        if pn + T.WORST_PDUS > self.P.shape[0]:
            P = zeroed((2 * self.P.shape[0], T.NPC), np.int64)
            P[:pn] = self.P[:pn]
            self.P = P
        if an + T.WORST_ARENA > self.A.shape[0]:
            A = zeroed(2 * self.A.shape[0], np.uint8)
            A[:an] = self.A[:an]
            self.A = A
        if gn + 2 * T.OOO_MAX + 16 > self.G.shape[0]:
            G = zeroed((2 * self.G.shape[0], T.NGC), np.int64)
            G[:gn] = self.G[:gn]
            self.G = G
        if en + 2 > self.EF.shape[0]:
            EF = zeroed((2 * self.EF.shape[0], T.NF), np.int64)
            EF[:en] = self.EF[:en]
            EK = zeroed((2 * self.EK.shape[0], 5), np.uint64)
            EK[:en] = self.EK[:en]
            self.EF, self.EK = EF, EK

    def result(self, M, pkt_flow, pkt_side, pkt_orig) -> TrackResult:
        pn, an, gn, en = (int(M[k]) for k in (T.M_PN, T.M_AN, T.M_GN, T.M_EN))
        return TrackResult(
            self.P[:pn],
            self.A[:an],
            self.G[:gn],
            self.EF[:en],
            self.EK[:en],
            pkt_flow,
            pkt_side,
            pkt_orig,
        )
