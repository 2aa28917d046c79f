"""The common columns of framed PDUs (time, frame, flow, addresses, ports, direction).

The PDU matrix is row-major (one row per PDU, as the flow kernel appends them); reading the
columns one strided gather at a time touches every row's cache lines once per column. One
pass that copies the wanted fields of each row touches them once.
"""

from __future__ import annotations

import numpy as np

from otsight._jit import njit
from otsight.capture import _track as T
from otsight.capture._prefetch import prefetch, prefetch_write

# Rows ahead whose PDU row is asked for, to read (the matrix is far larger than the cache);
# the outputs are asked for, to write, four times further (each new line of each column
# would otherwise be fetched before its stores could retire).
AHEAD = 16


@njit(cache=True, nogil=True, _nrt=False)
def _columns(P, idx, all_rows, frame, first_frame, ts, flow, off, in_arena, length, sport,
             dport, framer, orig, ips):  # fmt: skip
    n = frame.shape[0]
    with_ips = ips.shape[1] == n
    for k in range(n):
        i = k if all_rows else idx[k]
        if k + AHEAD < n:
            prefetch(P, (k + AHEAD if all_rows else idx[k + AHEAD], 0))
            prefetch(P, (k + AHEAD if all_rows else idx[k + AHEAD], P.shape[1] - 1))
            if k % 8 == 0:
                a = k + 4 * AHEAD if k + 4 * AHEAD < n else n - 1
                prefetch_write(frame, a)
                prefetch_write(first_frame, a)
                prefetch_write(ts, a)
                prefetch_write(flow, a)
                prefetch_write(off, a)
                prefetch_write(in_arena, a)
                prefetch_write(length, a)
                prefetch_write(sport, a)
                prefetch_write(dport, a)
                prefetch_write(orig, a)
                prefetch_write(framer, a)
                if with_ips:
                    for c in range(4):
                        prefetch_write(ips, (c, a))
        frame[k] = P[i, T.P_FRAME]
        first_frame[k] = P[i, T.P_FIRST_FRAME]
        ts[k] = P[i, T.P_TS]
        flow[k] = P[i, T.P_FLOW]
        off[k] = P[i, T.P_OFF]
        in_arena[k] = P[i, T.P_IN_ARENA]
        sport[k] = P[i, T.P_SPORT]
        dport[k] = P[i, T.P_DPORT]
        orig[k] = P[i, T.P_ORIG] != 0
        framer[k] = P[i, T.P_FRAMER]
        length[k] = P[i, T.P_LEN]
        if not with_ips:
            continue
        ips[0, k] = np.uint64(P[i, T.P_SRC_HI])
        ips[1, k] = np.uint64(P[i, T.P_SRC_LO])
        ips[2, k] = np.uint64(P[i, T.P_DST_HI])
        ips[3, k] = np.uint64(P[i, T.P_DST_LO])


def pdu_columns(
    P: np.ndarray, idx: np.ndarray | None = None, addresses: bool = True
) -> dict[str, np.ndarray]:
    """Columns of PDU rows ``idx`` (every row when None): frame, first_frame, ts, flow and
    the PDU's location ``off``, ``in_arena``, ``length`` (int64, as the dissector kernels take
    them), sport, dport, framer (int32), orig (bool) and, with ``addresses``, the 128-bit
    addresses ``src_hi``, ``src_lo``, ``dst_hi``, ``dst_lo`` (uint64)."""
    n = P.shape[0] if idx is None else idx.shape[0]
    out: dict[str, np.ndarray] = {
        k: np.empty(n, np.int64)
        for k in ("frame", "first_frame", "ts", "flow", "off", "in_arena", "length")
    }
    out |= {k: np.empty(n, np.int32) for k in ("sport", "dport", "framer")}
    out["orig"] = np.empty(n, np.bool_)
    ips = np.empty((4, n if addresses else 0), np.uint64)
    rows = np.zeros(0, np.int64) if idx is None else np.asarray(idx, np.int64)
    _columns(
        P, rows, idx is None, out["frame"], out["first_frame"], out["ts"], out["flow"],
        out["off"], out["in_arena"], out["length"], out["sport"], out["dport"], out["framer"],
        out["orig"], ips,
    )  # fmt: skip
    if addresses:
        out["src_hi"], out["src_lo"], out["dst_hi"], out["dst_lo"] = ips
    return out


@njit(cache=True, nogil=True, _nrt=False)
def _gather(idx, frame, first_frame, ts, flow, off, in_arena, length, sport, dport, framer, orig,
            o_frame, o_first_frame, o_ts, o_flow, o_off, o_in_arena, o_length, o_sport, o_dport,
            o_framer, o_orig):  # fmt: skip
    for k in range(idx.shape[0]):
        i = idx[k]
        o_frame[k] = frame[i]
        o_first_frame[k] = first_frame[i]
        o_ts[k] = ts[i]
        o_flow[k] = flow[i]
        o_off[k] = off[i]
        o_in_arena[k] = in_arena[i]
        o_length[k] = length[i]
        o_sport[k] = sport[i]
        o_dport[k] = dport[i]
        o_framer[k] = framer[i]
        o_orig[k] = orig[i]


def gather_pdu_columns(columns: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    """Rows ``idx`` of columns made by :func:`pdu_columns` (without the addresses): the
    same fields as ``pdu_columns(P, idx, addresses=False)``, read from the chunk's columns
    (about 70 bytes a row, in order) instead of the matrix rows (120 bytes, two or three
    cache lines each)."""
    idx = np.asarray(idx, np.int64)
    out = {k: np.empty(idx.shape[0], columns[k].dtype) for k in _FIELDS}
    _gather(idx, *(columns[k] for k in _FIELDS), *(out[k] for k in _FIELDS))
    return out


_FIELDS = (
    "frame", "first_frame", "ts", "flow", "off", "in_arena", "length", "sport", "dport",
    "framer", "orig",
)  # fmt: skip
