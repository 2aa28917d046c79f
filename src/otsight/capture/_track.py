"""Flow tracking and TCP reassembly kernel.

One pass over a chunk's decoded packets does three things per packet, in capture order:

* finds or creates the bidirectional flow (open-addressing hash table over 128-bit
  addresses, ports and protocol) and updates its counters;
* for TCP, keeps each direction's next expected sequence number, trims retransmitted and
  overlapping bytes (the first copy wins, as in Zeek), buffers out-of-order segments up to a
  bound and reports a gap when the bound is exceeded or the flow ends with a hole;
* feeds the in-order bytes to the flow's framer, emitting each whole PDU once: in place
  (offset into the chunk's window) when it lies inside one segment, or copied into the
  output arena when it was assembled from several.

All state lives in arrays owned by :class:`otsight.capture.flows.FlowTable`. The kernel
checks up front that every pool and output has room for the worst case of the next packet
and otherwise returns, asking the wrapper to grow them; a packet is never half-processed.
"""

from __future__ import annotations

import numpy as np

from otsight._jit import njit
from otsight.capture import framing as FR
from otsight.capture._prefetch import prefetch
from otsight.dissect import _l2l4 as L

# ---- flow record fields (F[rec, field]) ------------------------------------------------
F_ID, F_FIRST_TS, F_LAST_TS, F_FIRST_FRAME, F_LAST_FRAME = 0, 1, 2, 3, 4
F_PKTS0, F_PKTS1, F_BYTES0, F_BYTES1, F_PAY0, F_PAY1 = 5, 6, 7, 8, 9, 10
F_STREAM0, F_STREAM1, F_CLIENT, F_HOW, F_FLAGS0, F_FLAGS1 = 11, 12, 13, 14, 15, 16
F_VLAN, F_FRAMER, F_NEXT0, F_NEXT1, F_CARRY0, F_CARRY1 = 17, 18, 19, 20, 21, 22
F_CLEN0, F_CLEN1, F_NEED0, F_NEED1, F_DESYNC0, F_DESYNC1 = 23, 24, 25, 26, 27, 28
F_OOO0, F_OOO1, F_OOOB0, F_OOOB1, F_GAPS, F_GAP_BYTES = 29, 30, 31, 32, 33, 34
F_RETX, F_PDUS, F_ETH0, F_ETH1, F_SLOT, F_CLOSED = 35, 36, 37, 38, 39, 40
F_ISN0, F_ISN1, F_FRAMED0, F_FRAMED1, F_SKIPPED = 41, 42, 43, 44, 45
F_CFRAME0, F_CFRAME1, F_OHEAD0, F_OHEAD1, F_PROTO = 46, 47, 48, 49, 50
NF = 51

# A TCP flow's framer is chosen from the content of the first bytes of its streams; when
# this many bytes fit no framer, the flow is left unframed.
DETECT_MAX = 64

# How the client (initiator) was decided.
HOW_SYN, HOW_SYNACK, HOW_PORT, HOW_FIRST = 0, 1, 2, 3

# F_CLOSED bits
CL_FIN0, CL_FIN1, CL_RST = 1, 2, 4

# ---- meta counters (M[...]) --------------------------------------------------------------
M_FREE, M_NEXT_ID, M_LIVE, M_TOMB, M_SFREE, M_BFREE, M_OFREE = 0, 1, 2, 3, 4, 5, 6
M_PN, M_AN, M_GN, M_EN = 7, 8, 9, 10
NM = 16

# ---- pools ------------------------------------------------------------------------------
SMALL = 2048
BIG = 65664
BIGBIT = np.int64(1) << 40  # slot ids >= BIGBIT index the big pool
OOO_MAX = 16  # out-of-order segments buffered per direction
OOO_MAX_BYTES = 256 * 1024
# OQ[entry, field]
O_SEQ, O_LEN, O_SLOT, O_FRAME, O_TS, O_NEXT = 0, 1, 2, 3, 4, 5
NO = 6

# ---- outputs ----------------------------------------------------------------------------
# P[pdu, field]
# (only what the readers use: each PDU's row is written once and read twice, 15 × 8 bytes)
P_FRAME, P_FIRST_FRAME, P_TS, P_FLOW, P_ORIG, P_FRAMER, P_IN_ARENA, P_OFF = range(8)
P_LEN, P_SRC_HI, P_SRC_LO, P_DST_HI, P_DST_LO, P_SPORT, P_DPORT = range(8, 15)
NPC = 15
# G[event, field]: gaps and stream anomalies
G_FRAME, G_TS, G_FLOW, G_REC, G_SIDE, G_SEQ, G_LEN, G_KIND, G_PKT = 0, 1, 2, 3, 4, 5, 6, 7, 8
G_SRC_HI, G_SRC_LO, G_DST_HI, G_DST_LO, G_SPORT, G_DPORT = 9, 10, 11, 12, 13, 14
NGC = 15
GK_GAP, GK_GAP_AT_END, GK_PDU_CUT, GK_BAD_HEADER, GK_SNAPLEN = 0, 1, 2, 3, 4
GAP_KINDS = {
    GK_GAP: "tcp_gap",
    GK_GAP_AT_END: "tcp_gap_at_end",
    GK_PDU_CUT: "pdu_incomplete",
    GK_BAD_HEADER: "pdu_bad_header",
    GK_SNAPLEN: "tcp_bytes_not_captured",
}

# How many packets ahead ``track`` asks for a packet's payload: the chunk's bytes have left
# the caches by the time flows are tracked, and the framers read the first bytes of nearly
# every TCP payload (measured best of 8, 16, 32, 64).
PREFETCH_AHEAD = 16

# Kernel return codes
DONE, NEED_RECORDS, NEED_REHASH, NEED_SMALL, NEED_BIG, NEED_OOO, NEED_OUT = 0, 1, 2, 3, 4, 5, 6

WORST_PDUS = (2 * OOO_MAX_BYTES + 2 * BIG + 65536) // 6 + 16
WORST_ARENA = 2 * OOO_MAX_BYTES + 4 * BIG + 65536

_SERVICE_PORTS = np.zeros(65536, dtype=np.uint8)
for _p in (
    502,
    20000,
    44818,
    2222,
    102,
    2404,
    47808,
    4840,
    34962,
    34963,
    34964,
    1089,
    1090,
    1091,
    5094,
    18245,
    18246,
    789,
    1962,
    9600,
    20547,
    5007,
    48898,
    1911,
    4911,
    3389,
    1433,
    5432,
    3306,
    8080,
    8443,
    5060,
    2455,
    5450,
    19999,
    20001,
    4000,
    1883,
    8883,
    5683,
    3260,
    5900,
    5901,
    6379,
    9200,
    27017,
):
    _SERVICE_PORTS[_p] = 1
_SERVICE_PORTS[:1024] = 1


@njit(cache=True, inline="always", _nrt=False)
def _mix(x):
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    x ^= x >> np.uint64(33)
    return x


@njit(cache=True, inline="always", _nrt=False)
def _hash(k0, k1, k2, k3, k4):
    # The key words are combined by independent multiplies and mixed once: five chained
    # mixes put ~50 cycles of latency in front of every packet's table lookup.
    h = (
        k0 * np.uint64(0x9E3779B97F4A7C15)
        + k1 * np.uint64(0xC2B2AE3D27D4EB4F)
        + k2 * np.uint64(0x165667B19E3779F9)
        + k3 * np.uint64(0xD6E8FEB86659FD93)
        + k4 * np.uint64(0xFF51AFD7ED558CCD)
    )
    return _mix(h)


@njit(cache=True, inline="always", _nrt=False)
def _find(S, K, k0, k1, k2, k3, k4):
    """Return (record or -1, slot where it is or where it would go)."""
    mask = np.uint64(S.shape[0] - 1)
    pos = _hash(k0, k1, k2, k3, k4) & mask
    first_tomb = np.int64(-1)
    while True:
        r = S[pos]
        if r == -1:
            if first_tomb >= 0:
                return np.int64(-1), first_tomb
            return np.int64(-1), np.int64(pos)
        if r == -2:
            if first_tomb < 0:
                first_tomb = np.int64(pos)
        elif K[r, 0] == k0 and K[r, 1] == k1 and K[r, 2] == k2 and K[r, 3] == k3 and K[r, 4] == k4:
            return r, np.int64(pos)
        pos = (pos + np.uint64(1)) & mask


@njit(cache=True, _nrt=False)
def rehash(S_new, K, F):
    """Re-insert every live record into a fresh slot array."""
    mask = np.uint64(S_new.shape[0] - 1)
    for k in range(S_new.shape[0]):
        S_new[k] = -1
    for r in range(K.shape[0]):
        if F[r, F_ID] < 0:
            continue
        pos = _hash(K[r, 0], K[r, 1], K[r, 2], K[r, 3], K[r, 4]) & mask
        while S_new[pos] != -1:
            pos = (pos + np.uint64(1)) & mask
        S_new[pos] = r
        F[r, F_SLOT] = np.int64(pos)


@njit(cache=True, inline="always", _nrt=False)
def _copy(dst, d, src, s, n):
    # An explicit loop: slice assignment may allocate a temporary, which needs the runtime.
    for k in range(n):
        dst[d + k] = src[s + k]


# ---- byte pools ---------------------------------------------------------------------------
@njit(cache=True, inline="always", _nrt=False)
def _slot_alloc(M, SFREE, BFREE, nbytes):
    if nbytes <= SMALL:
        M[M_SFREE] -= 1
        return SFREE[M[M_SFREE]]
    M[M_BFREE] -= 1
    return BFREE[M[M_BFREE]] + BIGBIT


@njit(cache=True, inline="always", _nrt=False)
def _slot_free(M, SFREE, BFREE, s):
    if s < BIGBIT:
        SFREE[M[M_SFREE]] = s
        M[M_SFREE] += 1
    else:
        BFREE[M[M_BFREE]] = s - BIGBIT
        M[M_BFREE] += 1


@njit(cache=True, inline="always", _nrt=False)
def _slot_cap(s):
    return SMALL if s < BIGBIT else BIG


@njit(cache=True, inline="always", _nrt=False)
def _slot_pool(SPOOL, BPOOL, s):
    return SPOOL if s < BIGBIT else BPOOL


@njit(cache=True, inline="always", _nrt=False)
def _slot_base(s):
    return s * SMALL if s < BIGBIT else (s - BIGBIT) * BIG


# ---- events -------------------------------------------------------------------------------
@njit(cache=True, inline="always", _nrt=False)
def _gap(G, M, K, frame, ts, fid, rec, side, seq, length, kind, pkt):
    g = M[M_GN]
    _put_addresses(G, g, K, rec, side, G_SRC_HI)
    G[g, G_FRAME] = frame
    G[g, G_TS] = ts
    G[g, G_FLOW] = fid
    G[g, G_REC] = rec
    G[g, G_SIDE] = side
    G[g, G_SEQ] = seq
    G[g, G_LEN] = length
    G[g, G_KIND] = kind
    G[g, G_PKT] = pkt
    M[M_GN] = g + 1


@njit(cache=True, inline="always", _nrt=False)
def _put_addresses(X, j, K, rec, side, first):
    """Write the sender's and receiver's address and port into rows first..first+5."""
    a = 0 if side == 0 else 2
    b = 2 - a
    X[j, first] = np.int64(K[rec, a])
    X[j, first + 1] = np.int64(K[rec, a + 1])
    X[j, first + 2] = np.int64(K[rec, b])
    X[j, first + 3] = np.int64(K[rec, b + 1])
    pa = np.int64(K[rec, 4] >> np.uint64(24)) & 0xFFFF
    pb = np.int64(K[rec, 4] >> np.uint64(8)) & 0xFFFF
    X[j, first + 4] = pa if side == 0 else pb
    X[j, first + 5] = pb if side == 0 else pa


@njit(cache=True, inline="always", _nrt=False)
def _emit_pdu(P, M, F, K, rec, side, frame, first_frame, ts, in_arena, off, length):
    j = M[M_PN]
    P[j, P_FRAME] = frame
    P[j, P_FIRST_FRAME] = first_frame
    P[j, P_TS] = ts
    P[j, P_FLOW] = F[rec, F_ID]
    P[j, P_ORIG] = 1 if side == F[rec, F_CLIENT] else 0
    P[j, P_FRAMER] = F[rec, F_FRAMER]
    P[j, P_IN_ARENA] = in_arena
    P[j, P_OFF] = off
    P[j, P_LEN] = length
    _put_addresses(P, j, K, rec, side, P_SRC_HI)
    M[M_PN] = j + 1
    F[rec, F_PDUS] += 1


@njit(cache=True, inline="always", _nrt=False)
def _deliver_segment(
    src, so, n, rec, side, frame, ts, pkt, F, K, M, SPOOL, BPOOL, SFREE, BFREE, P, A, G
):
    """:func:`_deliver` for the in-order bytes of one segment, with the common case done in
    line: the flow's framer is known, no PDU is half-assembled and the segment holds exactly
    one whole PDU. A call passes every array as seven to nine words on the stack; for the
    two calls each segment made (deliver, frame), those pushes were a third of the flow
    kernel's time. Anything else takes the calls, which repeat the length check."""
    framer = F[rec, F_FRAMER]
    if (
        framer > FR.NONE
        and F[rec, F_CLEN0 + side] == 0
        and F[rec, F_DESYNC0 + side] == 0
        and FR.pdu_length(framer, src, so, n) == n
    ):
        F[rec, F_STREAM0 + side] += n
        F[rec, F_NEXT0 + side] += n
        _emit_pdu(P, M, F, K, rec, side, frame, frame, ts, 0, so, n)
        F[rec, F_FRAMED0 + side] += n
        return
    _deliver(
        src, so, n, True, rec, side, frame, ts, pkt, F, K, M, SPOOL, BPOOL, SFREE, BFREE, P, A, G
    )


@njit(cache=True, _nrt=False)  # called, not inlined: keeps compile time down
def _deliver(
    src, so, n, zero_copy, rec, side, frame, ts, pkt, F, K, M, SPOOL, BPOOL, SFREE, BFREE, P, A, G
):
    """Account ``n`` in-order stream bytes ``src[so:so+n]`` and feed them to the framer."""
    F[rec, F_STREAM0 + side] += n
    F[rec, F_NEXT0 + side] += n
    framer = F[rec, F_FRAMER]
    if framer > FR.NONE:
        _frame(
            src,
            so,
            n,
            zero_copy,
            rec,
            side,
            frame,
            ts,
            pkt,
            F,
            K,
            M,
            SPOOL,
            BPOOL,
            SFREE,
            BFREE,
            P,
            A,
            G,
        )
    elif framer < 0:
        _undecided(
            src, so, n, rec, side, frame, ts, pkt, F, K, M, SPOOL, BPOOL, SFREE, BFREE, P, A, G
        )


@njit(cache=True, _nrt=False)
def _undecided(src, so, n, rec, side, frame, ts, pkt, F, K, M, SPOOL, BPOOL, SFREE, BFREE, P, A, G):
    """The flow's protocol is not known yet: buffer the stream's first bytes and decide.

    Deciding on the stream (not on one segment) means that a first segment cut short,
    even to one byte, cannot hide a flow's protocol.
    """
    s = F[rec, F_CARRY0 + side]
    pa = np.int64(K[rec, 4] >> np.uint64(24)) & 0xFFFF
    pb = np.int64(K[rec, 4] >> np.uint64(8)) & 0xFFFF
    sport = pa if side == 0 else pb
    dport = pb if side == 0 else pa
    if s < 0:
        # Nothing buffered: the segment alone usually tells (a whole first PDU).
        framer = FR.detect(src, so, n, sport, dport)
        if framer != FR.NONE or n >= DETECT_MAX:
            _decide(rec, framer, frame, ts, pkt, F, K, M, SPOOL, BPOOL, SFREE, BFREE, P, A, G)
            if framer > FR.NONE:
                _frame(
                    src,
                    so,
                    n,
                    True,
                    rec,
                    side,
                    frame,
                    ts,
                    pkt,
                    F,
                    K,
                    M,
                    SPOOL,
                    BPOOL,
                    SFREE,
                    BFREE,
                    P,
                    A,
                    G,
                )
            return
        s = _slot_alloc(M, SFREE, BFREE, DETECT_MAX)
        F[rec, F_CARRY0 + side] = s
        F[rec, F_CLEN0 + side] = 0
        F[rec, F_CFRAME0 + side] = frame
    clen = F[rec, F_CLEN0 + side]
    pool = _slot_pool(SPOOL, BPOOL, s)
    base = _slot_base(s)
    take = n if n < DETECT_MAX - clen else DETECT_MAX - clen
    _copy(pool, base + clen, src, so, take)
    clen += take
    F[rec, F_CLEN0 + side] = clen
    framer = FR.detect(pool, base, clen, sport, dport)
    if framer == FR.NONE and clen < DETECT_MAX:
        return  # not enough bytes to say yet
    _decide(rec, framer, frame, ts, pkt, F, K, M, SPOOL, BPOOL, SFREE, BFREE, P, A, G)
    if framer > FR.NONE and n > take:
        _frame(
            src,
            so + take,
            n - take,
            True,
            rec,
            side,
            frame,
            ts,
            pkt,
            F,
            K,
            M,
            SPOOL,
            BPOOL,
            SFREE,
            BFREE,
            P,
            A,
            G,
        )


@njit(cache=True, _nrt=False)
def _decide(rec, framer, frame, ts, pkt, F, K, M, SPOOL, BPOOL, SFREE, BFREE, P, A, G):
    """Fix the flow's framer and replay both directions' buffered first bytes through it."""
    F[rec, F_FRAMER] = framer
    first = 0 if F[rec, F_CFRAME0] <= F[rec, F_CFRAME1] else 1
    for k in range(2):
        sd = first if k == 0 else 1 - first
        s = F[rec, F_CARRY0 + sd]
        if s < 0:
            continue
        clen = F[rec, F_CLEN0 + sd]
        F[rec, F_CARRY0 + sd] = -1
        F[rec, F_CLEN0 + sd] = 0
        F[rec, F_NEED0 + sd] = -1
        if framer > FR.NONE and clen > 0:
            _frame(
                _slot_pool(SPOOL, BPOOL, s),
                _slot_base(s),
                clen,
                False,
                rec,
                sd,
                frame,
                ts,
                pkt,
                F,
                K,
                M,
                SPOOL,
                BPOOL,
                SFREE,
                BFREE,
                P,
                A,
                G,
            )
        _slot_free(M, SFREE, BFREE, s)


@njit(cache=True, _nrt=False)  # called, not inlined: keeps compile time down
def _frame(
    src, so, n, zero_copy, rec, side, frame, ts, pkt, F, K, M, SPOOL, BPOOL, SFREE, BFREE, P, A, G
):
    """Cut in-order stream bytes into whole PDUs with the flow's framer."""
    framer = F[rec, F_FRAMER]
    i = 0
    while i < n:
        clen = F[rec, F_CLEN0 + side]
        if clen == 0 and F[rec, F_DESYNC0 + side] != 0:
            # After a gap or a bad header: resume only where a valid header starts.
            t = FR.pdu_length(framer, src, so + i, n - i)
            if t == FR.INVALID or (t == FR.NEED_MORE and i > 0):
                F[rec, F_SKIPPED] += n - i
                return
            F[rec, F_DESYNC0 + side] = 0
        if clen == 0:
            avail = n - i
            t = FR.pdu_length(framer, src, so + i, avail)
            if t == FR.INVALID:
                _gap(
                    G,
                    M,
                    K,
                    frame,
                    ts,
                    F[rec, F_ID],
                    rec,
                    side,
                    (F[rec, F_NEXT0 + side] - n + i) & 0xFFFFFFFF,
                    avail,
                    GK_BAD_HEADER,
                    pkt,
                )
                F[rec, F_DESYNC0 + side] = 1
                F[rec, F_SKIPPED] += avail
                return
            if t > 0 and t <= avail:
                if zero_copy:
                    _emit_pdu(P, M, F, K, rec, side, frame, frame, ts, 0, so + i, t)
                else:
                    a = M[M_AN]
                    _copy(A, a, src, so + i, t)
                    M[M_AN] = a + t
                    _emit_pdu(P, M, F, K, rec, side, frame, frame, ts, 1, a, t)
                F[rec, F_FRAMED0 + side] += t
                i += t
                continue
            # start a carry: the PDU continues in a later segment
            need = t if t > 0 else np.int64(-1)
            s = _slot_alloc(M, SFREE, BFREE, need if need > 0 else 1)
            F[rec, F_CARRY0 + side] = s
            F[rec, F_NEED0 + side] = need
            pool = _slot_pool(SPOOL, BPOOL, s)
            base = _slot_base(s)
            _copy(pool, base, src, so + i, avail)
            F[rec, F_CLEN0 + side] = avail
            F[rec, F_CFRAME0 + side] = frame
            return
        # continue a carried PDU
        s = F[rec, F_CARRY0 + side]
        need = F[rec, F_NEED0 + side]
        if need < 0:
            hb = FR.header_bytes(framer)
            take = hb - clen
            if take > n - i:
                take = n - i
            pool = _slot_pool(SPOOL, BPOOL, s)
            base = _slot_base(s)
            _copy(pool, base + clen, src, so + i, take)
            clen += take
            i += take
            F[rec, F_CLEN0 + side] = clen
            t = FR.pdu_length(framer, pool, base, clen)
            if t == FR.NEED_MORE:
                continue
            if t == FR.INVALID:
                _gap(
                    G,
                    M,
                    K,
                    frame,
                    ts,
                    F[rec, F_ID],
                    rec,
                    side,
                    (F[rec, F_NEXT0 + side] - n + i) & 0xFFFFFFFF,
                    clen,
                    GK_BAD_HEADER,
                    pkt,
                )
                _slot_free(M, SFREE, BFREE, s)
                F[rec, F_CARRY0 + side] = -1
                F[rec, F_CLEN0 + side] = 0
                F[rec, F_DESYNC0 + side] = 1
                F[rec, F_SKIPPED] += clen + (n - i)
                return
            need = t
            F[rec, F_NEED0 + side] = need
            if need > _slot_cap(s):
                s2 = _slot_alloc(M, SFREE, BFREE, need)
                p2 = _slot_pool(SPOOL, BPOOL, s2)
                b2 = _slot_base(s2)
                _copy(p2, b2, pool, base, clen)
                _slot_free(M, SFREE, BFREE, s)
                s = s2
                F[rec, F_CARRY0 + side] = s
            # (a PDU that is only a header, e.g. ENIP with length 0, is complete right here:
            # fall through so it is emitted even when this segment has no bytes left)
        take = need - clen
        if take > n - i:
            take = n - i
        pool = _slot_pool(SPOOL, BPOOL, s)
        base = _slot_base(s)
        _copy(pool, base + clen, src, so + i, take)
        clen += take
        i += take
        F[rec, F_CLEN0 + side] = clen
        if clen == need:
            a = M[M_AN]
            _copy(A, a, pool, base, need)
            M[M_AN] = a + need
            _emit_pdu(P, M, F, K, rec, side, frame, F[rec, F_CFRAME0 + side], ts, 1, a, need)
            F[rec, F_FRAMED0 + side] += need
            _slot_free(M, SFREE, BFREE, s)
            F[rec, F_CARRY0 + side] = -1
            F[rec, F_CLEN0 + side] = 0
            F[rec, F_NEED0 + side] = -1


# ---- stream breaks and out-of-order segments ---------------------------------------------
@njit(cache=True, _nrt=False)  # called, not inlined: keeps compile time down
def _break_stream(rec, side, frame, ts, pkt, F, K, M, SFREE, BFREE, G):
    """Bytes are missing: drop a half-assembled PDU and resynchronise on the next header."""
    s = F[rec, F_CARRY0 + side]
    if F[rec, F_FRAMER] < 0:  # still deciding the protocol: restart detection after the hole
        if s >= 0:
            F[rec, F_SKIPPED] += F[rec, F_CLEN0 + side]
            _slot_free(M, SFREE, BFREE, s)
            F[rec, F_CARRY0 + side] = -1
            F[rec, F_CLEN0 + side] = 0
        return
    if s >= 0:
        _gap(
            G,
            M,
            K,
            frame,
            ts,
            F[rec, F_ID],
            rec,
            side,
            F[rec, F_NEXT0 + side] & 0xFFFFFFFF,
            F[rec, F_CLEN0 + side],
            GK_PDU_CUT,
            pkt,
        )
        _slot_free(M, SFREE, BFREE, s)
        F[rec, F_CARRY0 + side] = -1
        F[rec, F_CLEN0 + side] = 0
        F[rec, F_NEED0 + side] = -1
    if F[rec, F_FRAMER] > 0:
        F[rec, F_DESYNC0 + side] = 1


@njit(cache=True, _nrt=False)
def _ooo_insert(rec, side, seq, src, so, n, frame, ts, F, M, SPOOL, BPOOL, SFREE, BFREE, OQ, OFREE):
    M[M_OFREE] -= 1
    e = OFREE[M[M_OFREE]]
    s = _slot_alloc(M, SFREE, BFREE, n)
    pool = _slot_pool(SPOOL, BPOOL, s)
    base = _slot_base(s)
    _copy(pool, base, src, so, n)
    OQ[e, O_SEQ] = seq
    OQ[e, O_LEN] = n
    OQ[e, O_SLOT] = s
    OQ[e, O_FRAME] = frame
    OQ[e, O_TS] = ts
    prev = np.int64(-1)
    cur = F[rec, F_OHEAD0 + side]
    while cur >= 0 and OQ[cur, O_SEQ] <= seq:
        prev = cur
        cur = OQ[cur, O_NEXT]
    OQ[e, O_NEXT] = cur
    if prev < 0:
        F[rec, F_OHEAD0 + side] = e
    else:
        OQ[prev, O_NEXT] = e
    F[rec, F_OOO0 + side] += 1
    F[rec, F_OOOB0 + side] += n


@njit(cache=True, _nrt=False)
def _ooo_drain(
    rec, side, force_gaps, frame, ts, pkt, F, K, M, SPOOL, BPOOL, SFREE, BFREE, OQ, OFREE, P, A, G
):
    """Deliver buffered segments that are now in order.

    ``force_gaps`` > 0 allows that many holes to be skipped (reported as gaps): used when the
    buffer is over its bound and when the flow ends. ``frame`` < 0 attributes delivered
    PDUs to the frame that carried each buffered segment.
    """
    while True:
        e = F[rec, F_OHEAD0 + side]
        if e < 0:
            return
        seq = OQ[e, O_SEQ]
        n = OQ[e, O_LEN]
        nxt = F[rec, F_NEXT0 + side]
        f = frame if frame >= 0 else OQ[e, O_FRAME]
        t = ts if frame >= 0 else OQ[e, O_TS]
        if seq > nxt:
            if force_gaps <= 0:
                return
            force_gaps -= 1
            _gap(G, M, K, f, t, F[rec, F_ID], rec, side, nxt & 0xFFFFFFFF, seq - nxt, GK_GAP, pkt)
            F[rec, F_GAPS] += 1
            F[rec, F_GAP_BYTES] += seq - nxt
            _break_stream(rec, side, f, t, pkt, F, K, M, SFREE, BFREE, G)
            F[rec, F_NEXT0 + side] = seq
            nxt = seq
        F[rec, F_OHEAD0 + side] = OQ[e, O_NEXT]
        F[rec, F_OOO0 + side] -= 1
        F[rec, F_OOOB0 + side] -= n
        s = OQ[e, O_SLOT]
        skip = nxt - seq
        if skip < n:
            if skip > 0:
                F[rec, F_RETX] += 1
            _deliver(
                _slot_pool(SPOOL, BPOOL, s),
                _slot_base(s) + skip,
                n - skip,
                False,
                rec,
                side,
                f,
                t,
                pkt,
                F,
                K,
                M,
                SPOOL,
                BPOOL,
                SFREE,
                BFREE,
                P,
                A,
                G,
            )
        else:
            F[rec, F_RETX] += 1
        _slot_free(M, SFREE, BFREE, s)
        OFREE[M[M_OFREE]] = e
        M[M_OFREE] += 1


@njit(cache=True, inline="always", _nrt=False)
def _segment(
    rec,
    side,
    seq32,
    seglen,
    buf,
    po,
    paylen,
    frame,
    ts,
    pkt,
    F,
    K,
    M,
    SPOOL,
    BPOOL,
    SFREE,
    BFREE,
    OQ,
    OFREE,
    P,
    A,
    G,
):
    nxt = F[rec, F_NEXT0 + side]
    if nxt < 0:  # first data seen in this direction (capture started mid-connection)
        nxt = seq32
        F[rec, F_NEXT0 + side] = nxt
    diff = ((seq32 - (nxt & 0xFFFFFFFF) + 0x80000000) & 0xFFFFFFFF) - 0x80000000
    seq = nxt + diff
    end = seq + seglen
    if end <= nxt:
        F[rec, F_RETX] += 1
        return
    if seq > nxt:
        room = paylen
        while F[rec, F_OOO0 + side] >= OOO_MAX or F[rec, F_OOOB0 + side] + room > OOO_MAX_BYTES:
            # The buffer is full: give up on the hole. Buffered segments are delivered as of
            # the frames that carried them (frame -1), which is where Wireshark shows them.
            _ooo_drain(
                rec,
                side,
                1,
                -1,
                ts,
                pkt,
                F,
                K,
                M,
                SPOOL,
                BPOOL,
                SFREE,
                BFREE,
                OQ,
                OFREE,
                P,
                A,
                G,
            )
            nxt = F[rec, F_NEXT0 + side]
            if seq <= nxt:
                break
        if seq > nxt:
            if room > 0:
                _ooo_insert(
                    rec,
                    side,
                    seq,
                    buf,
                    po,
                    room,
                    frame,
                    ts,
                    F,
                    M,
                    SPOOL,
                    BPOOL,
                    SFREE,
                    BFREE,
                    OQ,
                    OFREE,
                )
            return
        if end <= nxt:
            F[rec, F_RETX] += 1
            return
    skip = nxt - seq
    if skip > 0:
        F[rec, F_RETX] += 1
    if paylen > skip:
        _deliver_segment(
            buf,
            po + skip,
            paylen - skip,
            rec,
            side,
            frame,
            ts,
            pkt,
            F,
            K,
            M,
            SPOOL,
            BPOOL,
            SFREE,
            BFREE,
            P,
            A,
            G,
        )
    got = paylen if paylen > skip else skip
    missing = seglen - got
    if missing > 0:  # the capture's snap length cut this segment
        _gap(
            G,
            M,
            K,
            frame,
            ts,
            F[rec, F_ID],
            rec,
            side,
            (seq + got) & 0xFFFFFFFF,
            missing,
            GK_SNAPLEN,
            pkt,
        )
        _break_stream(rec, side, frame, ts, pkt, F, K, M, SFREE, BFREE, G)
        F[rec, F_NEXT0 + side] += missing
    if F[rec, F_OHEAD0 + side] >= 0:
        _ooo_drain(
            rec, side, 0, frame, ts, pkt, F, K, M, SPOOL, BPOOL, SFREE, BFREE, OQ, OFREE, P, A, G
        )


# ---- flow lifecycle ------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def _retire(rec, F, K, S, M, FREE, SPOOL, BPOOL, SFREE, BFREE, OQ, OFREE, P, A, G, EF, EK):
    """End a flow: flush buffered data (holes become gaps), emit its record, free it."""
    if F[rec, F_FRAMER] < 0:
        _decide_at_end(rec, F, K, M, SPOOL, BPOOL, SFREE, BFREE, P, A, G)
    for side in range(2):
        _ooo_drain(
            rec, side, 1 << 30, -1, 0, -1, F, K, M, SPOOL, BPOOL, SFREE, BFREE, OQ, OFREE, P, A, G
        )
        s = F[rec, F_CARRY0 + side]
        if s >= 0:
            _gap(
                G,
                M,
                K,
                F[rec, F_LAST_FRAME],
                F[rec, F_LAST_TS],
                F[rec, F_ID],
                rec,
                side,
                F[rec, F_NEXT0 + side] & 0xFFFFFFFF,
                F[rec, F_CLEN0 + side],
                GK_PDU_CUT,
                -1,
            )
            _slot_free(M, SFREE, BFREE, s)
            F[rec, F_CARRY0 + side] = -1
            F[rec, F_CLEN0 + side] = 0
    en = M[M_EN]
    for c in range(NF):
        EF[en, c] = F[rec, c]
    for c in range(5):
        EK[en, c] = K[rec, c]
    M[M_EN] = en + 1
    S[F[rec, F_SLOT]] = -2
    M[M_TOMB] += 1
    M[M_LIVE] -= 1
    F[rec, F_ID] = -1
    FREE[M[M_FREE]] = rec
    M[M_FREE] += 1


@njit(cache=True, _nrt=False)
def _decide_at_end(rec, F, K, M, SPOOL, BPOOL, SFREE, BFREE, P, A, G):
    """A flow ends before its protocol was decided: decide on the bytes it sent."""
    framer = FR.NONE
    for sd in range(2):
        s = F[rec, F_CARRY0 + sd]
        if s >= 0 and framer == FR.NONE:
            pa = np.int64(K[rec, 4] >> np.uint64(24)) & 0xFFFF
            pb = np.int64(K[rec, 4] >> np.uint64(8)) & 0xFFFF
            framer = FR.detect(
                _slot_pool(SPOOL, BPOOL, s),
                _slot_base(s),
                F[rec, F_CLEN0 + sd],
                pa if sd == 0 else pb,
                pb if sd == 0 else pa,
            )
    _decide(
        rec,
        framer,
        F[rec, F_LAST_FRAME],
        F[rec, F_LAST_TS],
        -1,
        F,
        K,
        M,
        SPOOL,
        BPOOL,
        SFREE,
        BFREE,
        P,
        A,
        G,
    )


@njit(cache=True, inline="always", _nrt=False)
def _is_service(port):
    return _SERVICE_PORTS[port] != 0


@njit(cache=True, _nrt=False)
def _create(slot, k0, k1, k2, k3, k4, side, proto, flags, sport, dport, F, K, S, M, FREE):
    M[M_FREE] -= 1
    rec = FREE[M[M_FREE]]
    for c in range(NF):
        F[rec, c] = 0
    K[rec, 0] = k0
    K[rec, 1] = k1
    K[rec, 2] = k2
    K[rec, 3] = k3
    K[rec, 4] = k4
    if S[slot] == -2:
        M[M_TOMB] -= 1
    S[slot] = rec
    M[M_LIVE] += 1
    F[rec, F_SLOT] = slot
    F[rec, F_ID] = M[M_NEXT_ID]
    M[M_NEXT_ID] += 1
    F[rec, F_PROTO] = proto
    for c in (
        F_NEXT0,
        F_NEXT1,
        F_CARRY0,
        F_CARRY1,
        F_NEED0,
        F_NEED1,
        F_OHEAD0,
        F_OHEAD1,
        F_ISN0,
        F_ISN1,
        F_VLAN,
    ):
        F[rec, c] = -1
    F[rec, F_FRAMER] = -1 if proto == 6 else FR.NONE
    other = 1 - side
    if proto == 6 and (flags & 0x12) == 0x02:
        F[rec, F_CLIENT] = side
        F[rec, F_HOW] = HOW_SYN
    elif proto == 6 and (flags & 0x12) == 0x12:
        F[rec, F_CLIENT] = other
        F[rec, F_HOW] = HOW_SYNACK
    elif proto == 1 or proto == 58:
        F[rec, F_CLIENT] = side
        F[rec, F_HOW] = HOW_FIRST
    elif _is_service(dport) and not _is_service(sport):
        F[rec, F_CLIENT] = side
        F[rec, F_HOW] = HOW_PORT
    elif _is_service(sport) and not _is_service(dport):
        F[rec, F_CLIENT] = other
        F[rec, F_HOW] = HOW_PORT
    elif _is_service(sport) and _is_service(dport) and sport != dport:
        F[rec, F_CLIENT] = side if sport > dport else other
        F[rec, F_HOW] = HOW_PORT
    else:
        F[rec, F_CLIENT] = side
        F[rec, F_HOW] = HOW_FIRST
    return rec


@njit(cache=True, _nrt=False, nogil=True)
def track(
    start,
    frame0,
    ts,
    wire,
    cols,
    addrs,
    buf,
    F,
    K,
    S,
    M,
    FREE,
    SPOOL,
    SFREE,
    BPOOL,
    BFREE,
    OQ,
    OFREE,
    P,
    A,
    G,
    EF,
    EK,
    pkt_flow,
    pkt_side,
    pkt_orig,
    idle_timeout,
    closed_timeout,
):
    """Process packets ``start..n-1`` of a chunk. Returns (next packet, status)."""
    n = ts.shape[0]
    for i in range(start, n):
        if M[M_FREE] < 2:
            return i, NEED_RECORDS
        if (M[M_LIVE] + M[M_TOMB] + 2) * 2 > S.shape[0]:
            return i, NEED_REHASH
        if M[M_SFREE] < 6:
            return i, NEED_SMALL
        if M[M_BFREE] < 6:
            return i, NEED_BIG
        if M[M_OFREE] < 2:
            return i, NEED_OOO
        if (
            M[M_PN] + WORST_PDUS > P.shape[0]
            or M[M_AN] + WORST_ARENA > A.shape[0]
            or M[M_GN] + 2 * OOO_MAX + 16 > G.shape[0]
            or M[M_EN] + 2 > EF.shape[0]
        ):
            return i, NEED_OUT
        if i + PREFETCH_AHEAD < n:
            prefetch(buf, cols[i + PREFETCH_AHEAD, L.PAY_OFF])
        if i + 2 * PREFETCH_AHEAD < n:
            # The row read just above (for the payload hint) is itself out of the cache: the
            # L2-L4 matrix is far larger than it. Ask for that row's lines one step earlier.
            prefetch(cols, (i + 2 * PREFETCH_AHEAD, 0))
            prefetch(cols, (i + 2 * PREFETCH_AHEAD, 8))
            prefetch(cols, (i + 2 * PREFETCH_AHEAD, 16))
            prefetch(cols, (i + 2 * PREFETCH_AHEAD, L.NCOLS - 1))
        pkt_flow[i] = -1
        pkt_side[i] = 0
        pkt_orig[i] = 0
        st = cols[i, L.STATUS]
        if cols[i, L.IPVER] == 0 or (
            st != 0 and st != L.SNAPLEN_CUT and st != L.BAD_UDP_LENGTH and st != L.TCP_HEADER_CUT
        ):
            continue
        proto = cols[i, L.PROTO]
        sp = cols[i, L.SPORT]
        dp = cols[i, L.DPORT]
        if proto == 1 or proto == 58:
            sp = 0
            dp = 0
        s_hi = addrs[i, L.SRC_HI]
        s_lo = addrs[i, L.SRC_LO]
        d_hi = addrs[i, L.DST_HI]
        d_lo = addrs[i, L.DST_LO]
        if s_hi < d_hi or (s_hi == d_hi and (s_lo < d_lo or (s_lo == d_lo and sp <= dp))):
            side = 0
            k0, k1, k2, k3 = s_hi, s_lo, d_hi, d_lo
            k4 = (
                (np.uint64(sp) << np.uint64(24))
                | (np.uint64(dp) << np.uint64(8))
                | np.uint64(proto)
            )
        else:
            side = 1
            k0, k1, k2, k3 = d_hi, d_lo, s_hi, s_lo
            k4 = (
                (np.uint64(dp) << np.uint64(24))
                | (np.uint64(sp) << np.uint64(8))
                | np.uint64(proto)
            )
        flags = cols[i, L.TCP_FLAGS]
        seq32 = cols[i, L.SEQ]
        frame = frame0 + i
        t = ts[i]
        rec, slot = _find(S, K, k0, k1, k2, k3, k4)
        if (
            rec >= 0
            and proto == 6
            and (flags & 0x12) == 0x02
            and F[rec, F_CLOSED] != 0
            and F[rec, F_ISN0 + side] != seq32
        ):
            # A new connection reuses the 4-tuple of a closed one.
            _retire(rec, F, K, S, M, FREE, SPOOL, BPOOL, SFREE, BFREE, OQ, OFREE, P, A, G, EF, EK)
            rec, slot = _find(S, K, k0, k1, k2, k3, k4)
        if rec >= 0:
            # Idle too long: the flow ended (as the periodic sweep would have said). Deciding
            # here too keeps flows independent of where chunk boundaries fall.
            idle = t - F[rec, F_LAST_TS]
            if idle > idle_timeout or (F[rec, F_CLOSED] != 0 and idle > closed_timeout):
                _retire(
                    rec, F, K, S, M, FREE, SPOOL, BPOOL, SFREE, BFREE, OQ, OFREE, P, A, G, EF, EK
                )
                rec, slot = _find(S, K, k0, k1, k2, k3, k4)
        if rec < 0:
            rec = _create(slot, k0, k1, k2, k3, k4, side, proto, flags, sp, dp, F, K, S, M, FREE)
            F[rec, F_FIRST_TS] = t
            F[rec, F_LAST_TS] = t
            F[rec, F_FIRST_FRAME] = frame
            F[rec, F_VLAN] = cols[i, L.VLAN1]
        if t > F[rec, F_LAST_TS]:  # capture clocks may step back; keep the span positive
            F[rec, F_LAST_TS] = t
        elif t < F[rec, F_FIRST_TS]:
            F[rec, F_FIRST_TS] = t
        F[rec, F_LAST_FRAME] = frame
        F[rec, F_PKTS0 + side] += 1
        F[rec, F_BYTES0 + side] += wire[i]
        F[rec, F_ETH0 + side] = cols[i, L.ETH_SRC]
        seglen = cols[i, L.SEG_LEN]
        F[rec, F_PAY0 + side] += seglen
        if proto == 6 and cols[i, L.FRAG] & L.FRAG_NOT_FIRST == 0:
            F[rec, F_FLAGS0 + side] |= flags
            dseq = seq32
            if flags & 0x02:
                F[rec, F_ISN0 + side] = seq32
                dseq = (seq32 + 1) & 0xFFFFFFFF
                if F[rec, F_STREAM0 + side] == 0 and F[rec, F_OHEAD0 + side] < 0:
                    F[rec, F_NEXT0 + side] = seq32 + 1
            if flags & 0x04:
                F[rec, F_CLOSED] |= CL_RST
            if flags & 0x01:
                F[rec, F_CLOSED] |= CL_FIN0 if side == 0 else CL_FIN1
            if seglen > 0:
                po = cols[i, L.PAY_OFF]
                paylen = cols[i, L.PAY_LEN]
                _segment(
                    rec,
                    side,
                    dseq,
                    seglen,
                    buf,
                    po,
                    paylen,
                    frame,
                    t,
                    i,
                    F,
                    K,
                    M,
                    SPOOL,
                    BPOOL,
                    SFREE,
                    BFREE,
                    OQ,
                    OFREE,
                    P,
                    A,
                    G,
                )
        pkt_flow[i] = F[rec, F_ID]
        pkt_side[i] = side
        pkt_orig[i] = 1 if side == F[rec, F_CLIENT] else 0
    return n, DONE


@njit(cache=True, _nrt=False, nogil=True)
def expire(
    start,
    now,
    idle_timeout,
    closed_timeout,
    everything,
    F,
    K,
    S,
    M,
    FREE,
    SPOOL,
    SFREE,
    BPOOL,
    BFREE,
    OQ,
    OFREE,
    P,
    A,
    G,
    EF,
    EK,
):
    """Retire idle flows (all of them when ``everything``). Returns (next record, status)."""
    for r in range(start, F.shape[0]):
        if F[r, F_ID] < 0:
            continue
        idle = now - F[r, F_LAST_TS]
        if everything or idle > idle_timeout or (F[r, F_CLOSED] != 0 and idle > closed_timeout):
            if (
                M[M_PN] + WORST_PDUS > P.shape[0]
                or M[M_AN] + WORST_ARENA > A.shape[0]
                or M[M_GN] + 2 * OOO_MAX + 16 > G.shape[0]
                or M[M_EN] + 2 > EF.shape[0]
            ):
                return r, NEED_OUT
            _retire(r, F, K, S, M, FREE, SPOOL, BPOOL, SFREE, BFREE, OQ, OFREE, P, A, G, EF, EK)
    return F.shape[0], DONE
