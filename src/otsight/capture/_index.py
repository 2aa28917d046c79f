"""Record-index kernels: walk capture file bytes and emit one row per packet.

The kernels see a numpy window over the memory-mapped file and write packet offsets,
lengths and timestamps into preallocated arrays. They stop when the window ends (the caller
maps the next window from where they stopped), when the output arrays are full, or when
a block must be handled in Python (pcapng section and interface headers, which are rare).
"""

from __future__ import annotations

import numpy as np

from otsight._jit import njit
from otsight.capture._prefetch import prefetch

# Why a kernel returned.
STOP_WINDOW_END = 0  # the next record does not fit in the window (or the file ended)
STOP_FULL = 1  # output arrays are full
STOP_CORRUPT = 2  # a record or block header makes no sense
STOP_META = 3  # pcapng SHB or IDB: Python parses it, then calls again
STOP_BAD_IFACE = 4  # a packet names an interface with no IDB

# Anything larger than this in a record header is a corrupt length, not a packet.
MAX_PLAUSIBLE_RECORD = 16 * 1024 * 1024
# Bytes ahead of the current record that are asked for. Each record's place follows from the
# previous one's length, so without the hint every header waits for memory in turn.
PREFETCH_BYTES = 4096


@njit(cache=True, inline="always")
def _u16(buf, p, swapped):
    if swapped:
        return (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])
    return np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)


@njit(cache=True, inline="always")
def _u32(buf, p, swapped):
    if swapped:
        return (
            (np.int64(buf[p]) << 24)
            | (np.int64(buf[p + 1]) << 16)
            | (np.int64(buf[p + 2]) << 8)
            | np.int64(buf[p + 3])
        )
    return (
        np.int64(buf[p])
        | (np.int64(buf[p + 1]) << 8)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 3]) << 24)
    )


@njit(cache=True, nogil=True, _nrt=False)
def _index_pcap(buf, pos, big_endian, ts_frac_ns, out_off, out_cap, out_wire, out_ts):
    """Index classic pcap records starting at ``pos``.

    ``big_endian`` is the file's byte order (records are read in it); ``ts_frac_ns`` is 1000
    for microsecond files and 1 for nanosecond files. Returns (count, next_pos, stop_reason).
    """
    n = 0
    end = buf.shape[0]
    limit = out_off.shape[0]
    asked = pos  # lines below this were asked for
    while True:
        if n >= limit:
            return n, pos, STOP_FULL
        if pos + 16 > end:
            return n, pos, STOP_WINDOW_END
        while asked < min(pos + PREFETCH_BYTES, end):
            prefetch(buf, asked)
            asked += 64
        sec = _u32(buf, pos, big_endian)
        frac = _u32(buf, pos + 4, big_endian)
        caplen = _u32(buf, pos + 8, big_endian)
        wire = _u32(buf, pos + 12, big_endian)
        if caplen > MAX_PLAUSIBLE_RECORD:
            return n, pos, STOP_CORRUPT
        if pos + 16 + caplen > end:
            return n, pos, STOP_WINDOW_END
        out_off[n] = pos + 16
        out_cap[n] = caplen
        out_wire[n] = wire if wire >= caplen else caplen
        out_ts[n] = sec * 1_000_000_000 + frac * ts_frac_ns
        n += 1
        pos += 16 + caplen


@njit(cache=True, inline="always")
def _ticks_to_ns(ticks, mul, div, shift):
    # Interfaces keep one of: ns = ticks*mul, ns = ticks//div, or ns = ticks*1e9 / 2**shift.
    if shift > 0:
        whole = ticks >> shift
        rest = ticks - (whole << shift)
        return whole * 1_000_000_000 + ((rest * 1_000_000_000) >> shift)
    if div > 1:
        return ticks // div
    return ticks * mul


@njit(cache=True, nogil=True, _nrt=False)
def _index_pcapng(
    buf,
    pos,
    big_endian,
    if_mul,
    if_div,
    if_shift,
    if_offset_ns,
    if_snaplen,
    n_ifaces,
    out_off,
    out_cap,
    out_wire,
    out_ts,
    out_iface,
    counters,
):
    """Index pcapng packet blocks (EPB, SPB, OPB) from ``pos`` within one section.

    Returns (count, next_pos, stop_reason). ``counters[0]`` counts skipped non-packet blocks.
    """
    n = 0
    end = buf.shape[0]
    limit = out_off.shape[0]
    asked = pos  # lines below this were asked for
    while True:
        if n >= limit:
            return n, pos, STOP_FULL
        if pos + 12 > end:
            return n, pos, STOP_WINDOW_END
        while asked < min(pos + PREFETCH_BYTES, end):
            prefetch(buf, asked)
            asked += 64
        btype = _u32(buf, pos, big_endian)
        if btype == 0x0A0D0D0A:
            return n, pos, STOP_META
        blen = _u32(buf, pos + 4, big_endian)
        if blen < 12 or (blen & 3) != 0 or blen > MAX_PLAUSIBLE_RECORD:
            return n, pos, STOP_CORRUPT
        if pos + blen > end:
            return n, pos, STOP_WINDOW_END
        if _u32(buf, pos + blen - 4, big_endian) != blen:
            return n, pos, STOP_CORRUPT
        if btype == 1:
            return n, pos, STOP_META
        if btype == 6 or btype == 2:
            if blen < 32:
                return n, pos, STOP_CORRUPT
            if btype == 6:
                iface = _u32(buf, pos + 8, big_endian)
            else:
                iface = _u16(buf, pos + 8, big_endian)
            if iface >= n_ifaces:
                return n, pos, STOP_BAD_IFACE
            ticks = (_u32(buf, pos + 12, big_endian) << 32) | _u32(buf, pos + 16, big_endian)
            caplen = _u32(buf, pos + 20, big_endian)
            wire = _u32(buf, pos + 24, big_endian)
            if 28 + caplen > blen - 4:
                return n, pos, STOP_CORRUPT
            out_off[n] = pos + 28
            out_cap[n] = caplen
            out_wire[n] = wire if wire >= caplen else caplen
            out_ts[n] = (
                _ticks_to_ns(ticks, if_mul[iface], if_div[iface], if_shift[iface])
                + if_offset_ns[iface]
            )
            out_iface[n] = iface
            n += 1
        elif btype == 3:
            if n_ifaces < 1:
                return n, pos, STOP_BAD_IFACE
            wire = _u32(buf, pos + 8, big_endian)
            caplen = wire
            room = blen - 16
            if caplen > room:
                caplen = room
            snap = if_snaplen[0]
            if snap > 0 and caplen > snap:
                caplen = snap
            out_off[n] = pos + 12
            out_cap[n] = caplen
            out_wire[n] = wire
            out_ts[n] = -1  # SPB carries no timestamp; the wrapper fills it in
            out_iface[n] = 0
            n += 1
        else:
            counters[0] += 1
        pos += blen
