"""IEC 61850-8-1 GOOSE on Ethernet (ethertype 0x88B8, plain or inside 802.1Q / QinQ).

GOOSE is multicast at high rate (a few frames per second per publisher at rest, bursts of
frames on every state change), so one numba pass reads every frame: the header (APPID,
length, reserved words with the simulation bit) and the BER-encoded goosePdu, field by
field by context tag — gocbRef, timeAllowedtoLive, datSet, goID, t (UtcTime), stNum, sqNum,
simulation, confRev, ndsCom, numDatSetEntries and the position and entry count of allData.
stNum / sqNum are decoded exactly as sent (replay and injection detection rely on them).

Strings and the allData values are the same frame after frame for one publisher, so they are
dictionary-encoded from raw bytes first and only the distinct ones are decoded in Python
(values as a compact list of ``type:value`` entries, e.g. ``boolean:true``,
``bit-string:0000/3``, ``structure:{...}``).

Fields are read by tag, not by position: a field that is present is reported even when the
sequence around it is broken (a missing mandatory field, a field out of order, an unknown
tag); every such problem becomes a ``weird`` row with a reason, and a frame cut short keeps
what arrived whole.

Table: ``goose`` (one row per frame).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.capture.addresses import mac_array
from otsight.dissect import _ber
from otsight.dissect import _l2l4 as L
from otsight.dissect.base import ChunkContext, Dissector, Semantics

ETHERTYPE = 0x88B8

# ---- semantics --------------------------------------------------------------------------------
# A GOOSE frame publishes a dataset (often trips, interlocks, breaker positions) that
# subscribers act on without any handshake: a forged or replayed one is a command
# (T0855) and a spoofed status report (T0856).
PDUS = Semantics(
    "goose",
    "pdu",
    {"goosePdu": ("publish", "control", ["T0855", "T0856"])},
)

_DATA_TYPE_ROWS: dict[Hashable, Any] = {k: v for k, v in _ber.DATA_TYPES.items()}
DATA_TYPES = Semantics("goose", "data_type", _DATA_TYPE_ROWS)

# IECGoosePdu fields by context tag number (IEC 61850-8-1 Annex A)
FIELDS = Semantics(
    "goose",
    "field",
    {
        0: "gocbRef",
        1: "timeAllowedtoLive",
        2: "datSet",
        3: "goID",
        4: "t",
        5: "stNum",
        6: "sqNum",
        7: "simulation",
        8: "confRev",
        9: "ndsCom",
        10: "numDatSetEntries",
        11: "allData",
        12: "security",
    },
)
# present in every valid PDU (goID, simulation, ndsCom and security may be left out)
MANDATORY = (0, 1, 2, 4, 5, 6, 8, 10, 11)

# ---- kernel -----------------------------------------------------------------------------------
(APPID, LENGTH, RES1, RES2, PCP, GOCB_OFF, GOCB_LEN, DATSET_OFF, DATSET_LEN) = range(9)
(GOID_OFF, GOID_LEN, TAL, T_SEC, T_FRAC, T_Q, STNUM, SQNUM, SIM, CONFREV) = range(9, 19)
(NDSCOM, NUMENT, AD_OFF, AD_LEN, NDATA, PRESENT, PROBLEMS, BAD_TAG) = range(19, 27)
NCOL = 27

# problem bits (one weird row per bit set)
P_BAD_LENGTH = 1 << 0
P_TRUNCATED = 1 << 1
P_NOT_GOOSE_PDU = 1 << 2
P_BAD_BER = 1 << 3
P_UNKNOWN_TAG = 1 << 4
P_OUT_OF_ORDER = 1 << 5
P_MISSING = 1 << 6
P_BAD_INTEGER = 1 << 7
P_INT_RANGE = 1 << 8
P_BAD_UTCTIME = 1 << 9
P_BAD_BOOLEAN = 1 << 10
P_BAD_DATA = 1 << 11
P_ENTRIES_MISMATCH = 1 << 12
P_S_BIT = 1 << 13
P_TOO_SHORT = 1 << 14  # fewer than the 8 header bytes: no row at all

WEIRD = {
    P_BAD_LENGTH: "goose_bad_length",
    P_TRUNCATED: "goose_truncated",
    P_NOT_GOOSE_PDU: "goose_not_a_goose_pdu",
    P_BAD_BER: "goose_bad_ber_encoding",
    P_UNKNOWN_TAG: "goose_unknown_tag",
    P_OUT_OF_ORDER: "goose_field_out_of_order",
    P_MISSING: "goose_missing_field",
    P_BAD_INTEGER: "goose_bad_integer",
    P_INT_RANGE: "goose_integer_out_of_range",
    P_BAD_UTCTIME: "goose_bad_utc_time",
    P_BAD_BOOLEAN: "goose_bad_boolean",
    P_BAD_DATA: "goose_bad_all_data",
    P_ENTRIES_MISMATCH: "goose_num_entries_mismatch",
    P_S_BIT: "goose_s_bit_without_simulation",
    P_TOO_SHORT: "goose_header_too_short",
}

_MANDATORY_MASK = sum(1 << t for t in MANDATORY)
_UINT32_FIELDS = (1, 5, 6, 8, 10)  # INT32U in IEC 61850-8-1 (TAL, stNum, sqNum, confRev, n)


@njit(cache=True, inline="always")
def _b16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(cache=True, inline="always")
def _len(b, q, end):
    """(content start, declared content end) of the BER length at ``q``; (-1, -1) when it is
    unreadable or indefinite. The end may lie past ``end`` (the caller checks)."""
    if q >= end:
        return np.int64(-1), np.int64(-1)
    first = np.int64(b[q])
    if first < 0x80:
        return q + 1, q + 1 + first
    k = first & 0x7F
    if k == 0 or k > 4 or q + 1 + k > end:
        return np.int64(-1), np.int64(-1)
    ln = np.int64(0)
    for i in range(k):
        ln = (ln << 8) | np.int64(b[q + 1 + i])
    return q + 1 + k, q + 1 + k + ln


@njit(cache=True, inline="always")
def _int(b, s, e):
    """BER INTEGER content as int64 and whether it could be read (1..8 bytes, or 9 with a
    leading zero for a large unsigned value)."""
    n = e - s
    if n <= 0 or n > 9 or (n == 9 and b[s] != 0):
        return np.int64(0), False
    if n == 9:
        s += 1
        n = 8
    v = np.int64(0)
    if b[s] >= 0x80:
        v = np.int64(-1)
    for i in range(n):
        v = (v << 8) | np.int64(b[s + i])
    return v, True


@njit(cache=True, inline="always")
def _count(b, s, e):
    """Number of whole elements in ``b[s:e]`` and whether they tile it exactly."""
    n = 0
    p = s
    while p < e:
        if p + 2 > e or (b[p] & 0x1F) == 0x1F:
            return n, False
        cs, ce = _len(b, p + 1, e)
        if cs < 0 or ce > e:
            return n, False
        n += 1
        p = ce
    return n, True


@njit(cache=True, nogil=True, _nrt=False)
def _scan(buf, cols, pkt, offset, caplen, linktype, out):
    """Header and goosePdu fields of GOOSE frames ``pkt`` (header at ``cols[i, L3_OFF]``)."""
    for j in range(pkt.shape[0]):
        i = pkt[j]
        for c in range(NCOL):
            out[j, c] = 0
        out[j, PCP] = -1
        out[j, BAD_TAG] = -1
        start = offset[i]
        fend = start + caplen[i]
        if linktype[i] == 1 and start + 16 <= fend:
            outer = _b16(buf, start + 12)
            if outer == 0x8100 or outer == 0x88A8 or outer == 0x9100:
                out[j, PCP] = np.int64(buf[start + 14]) >> 5
        p = cols[i, L.L3_OFF]
        if fend - p < 8:
            out[j, PROBLEMS] = P_TOO_SHORT
            continue
        out[j, APPID] = _b16(buf, p)
        length = _b16(buf, p + 2)
        out[j, LENGTH] = length
        out[j, RES1] = _b16(buf, p + 4)
        out[j, RES2] = _b16(buf, p + 6)
        problems = np.int64(0)
        end = fend
        if length < 8:
            problems |= P_BAD_LENGTH
        elif p + length > fend:
            problems |= P_TRUNCATED
        else:
            end = p + length  # what follows is Ethernet padding
        q = p + 8
        if q >= end:  # a header and nothing else
            out[j, PROBLEMS] = problems | (P_TRUNCATED if length > 8 else P_MISSING)
            continue
        if buf[q] != 0x61:  # not an IECGoosePdu ([APPLICATION 1])
            out[j, PROBLEMS] = problems | P_NOT_GOOSE_PDU
            out[j, BAD_TAG] = buf[q]
            continue
        s, e = _len(buf, q + 1, end)
        if s < 0:
            out[j, PROBLEMS] = problems | P_BAD_BER
            continue
        if e > end:
            problems |= P_TRUNCATED
            e = end
        present = np.int64(0)
        last = np.int64(-1)
        r = s
        while r < e:
            tb = np.int64(buf[r])
            num = tb & 0x1F
            h = r + 1
            if num == 0x1F:  # high tag number form: never a GOOSE field, skipped whole
                num = np.int64(99)
                while h < e and buf[h] >= 0x80 and h - r < 5:
                    h += 1
                h += 1
            if h >= e:
                problems |= P_TRUNCATED
                break
            cs, ce = _len(buf, h, e)
            if cs < 0:
                problems |= P_BAD_BER
                if out[j, BAD_TAG] < 0:
                    out[j, BAD_TAG] = tb
                break
            cut = ce > e
            if cut:
                problems |= P_TRUNCATED
            cls = tb >> 6
            cons = (tb >> 5) & 1
            known = cls == 2 and num <= 12 and (cons == 1) == (num == 11)
            if not known:
                problems |= P_UNKNOWN_TAG
                if out[j, BAD_TAG] < 0:
                    out[j, BAD_TAG] = tb
            else:
                if num <= last:
                    problems |= P_OUT_OF_ORDER
                last = num
                if num == 11:  # allData: the entries that arrived whole
                    ae = min(ce, e)
                    out[j, AD_OFF] = cs
                    out[j, AD_LEN] = ae - cs
                    nd, ok = _count(buf, cs, ae)
                    out[j, NDATA] = nd
                    if not ok and not cut:
                        problems |= P_BAD_DATA
                    present |= np.int64(1) << 11
                elif not cut and (present >> num) & 1 == 0:
                    present |= np.int64(1) << num
                    if num == 0 or num == 2 or num == 3:
                        o = GOCB_OFF if num == 0 else (DATSET_OFF if num == 2 else GOID_OFF)
                        out[j, o] = cs
                        out[j, o + 1] = ce - cs
                    elif num == 4:
                        if ce - cs == 8:
                            out[j, T_SEC] = (_b16(buf, cs) << 16) | _b16(buf, cs + 2)
                            out[j, T_FRAC] = (_b16(buf, cs + 4) << 8) | np.int64(buf[cs + 6])
                            out[j, T_Q] = buf[cs + 7]
                        else:
                            problems |= P_BAD_UTCTIME
                            present &= ~(np.int64(1) << 4)
                    elif num == 7 or num == 9:
                        if ce - cs == 1:
                            out[j, SIM if num == 7 else NDSCOM] = 1 if buf[cs] != 0 else 0
                        else:
                            problems |= P_BAD_BOOLEAN
                            present &= ~(np.int64(1) << num)
                    elif num != 12:
                        v, ok = _int(buf, cs, ce)
                        if not ok:
                            problems |= P_BAD_INTEGER
                            present &= ~(np.int64(1) << num)
                        else:
                            if v < 0 or v > 0xFFFFFFFF:
                                problems |= P_INT_RANGE
                            if num == 1:
                                out[j, TAL] = v
                            elif num == 5:
                                out[j, STNUM] = v
                            elif num == 6:
                                out[j, SQNUM] = v
                            elif num == 8:
                                out[j, CONFREV] = v
                            else:
                                out[j, NUMENT] = v
            if cut:
                break
            r = ce
        if (present & _MANDATORY_MASK) != _MANDATORY_MASK:
            problems |= P_MISSING
        if (
            (present >> 10) & 1
            and (present >> 11) & 1
            and (problems & (P_TRUNCATED | P_BAD_DATA)) == 0
            and out[j, NUMENT] != out[j, NDATA]
        ):
            problems |= P_ENTRIES_MISMATCH
        if (out[j, RES1] & 0x8000) != 0 and ((present >> 7) & 1 == 0 or out[j, SIM] == 0):
            problems |= P_S_BIT
        out[j, PRESENT] = present
        out[j, PROBLEMS] = problems


@njit(cache=True, nogil=True, _nrt=False)
def _copy(buf, off, lens, starts, dst):
    """Byte ranges ``buf[off[i]:off[i]+lens[i]]`` one after another into ``dst``."""
    for i in range(off.shape[0]):
        s = starts[i]
        o = off[i]
        for k in range(lens[i]):
            dst[s + k] = buf[o + k]


# ---- schema -----------------------------------------------------------------------------------
_STR = E._STR

SCHEMA = E._schema(
    "goose",
    E.PDU_COMMON
    + [
        pa.field("src_mac", _STR),
        pa.field("dst_mac", _STR),
        pa.field("vlan", pa.int32()),
        pa.field("vlan_priority", pa.int16()),  # 802.1Q PCP of the outer tag
        pa.field("appid", pa.int32()),
        pa.field("length", pa.int32()),
        pa.field("reserved1", pa.int32()),
        pa.field("reserved2", pa.int32()),
        pa.field("s_bit", pa.bool_()),  # reserved1 bit 15: simulated frame (Ed. 2)
        pa.field("gocb_ref", _STR),
        pa.field("time_allowed_to_live", pa.int64()),  # ms
        pa.field("dat_set", _STR),
        pa.field("go_id", _STR),
        pa.field("t", pa.timestamp("ns", tz="UTC")),  # event timestamp (UtcTime)
        pa.field("t_quality", pa.int16()),  # UtcTime TimeQuality octet
        pa.field("st_num", pa.int64()),
        pa.field("sq_num", pa.int64()),
        pa.field("simulation", pa.bool_()),
        pa.field("conf_rev", pa.int64()),
        pa.field("nds_com", pa.bool_()),
        pa.field("num_dat_set_entries", pa.int64()),
        pa.field("data_count", pa.int32()),  # allData entries received whole
        pa.field("data", pa.list_(_STR)),  # 'type:value' per allData entry
        pa.field("category", _STR),
        pa.field("techniques", pa.list_(_STR)),
    ],
    "IEC 61850 GOOSE frames (ethertype 0x88B8): one row per frame.",
)


# ---- helpers ----------------------------------------------------------------------------------
def _null_str(n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()), pa.array([], pa.string()))


def gather(buf: np.ndarray, off: np.ndarray, ln: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Byte ranges of ``buf`` as a binary array (null where not ``valid``)."""
    lens = np.where(valid, np.maximum(ln, 0), 0).astype(np.int64)
    starts = np.zeros(lens.shape[0] + 1, np.int64)
    np.cumsum(lens, out=starts[1:])
    data = np.empty(int(starts[-1]), np.uint8)
    _copy(buf, off.astype(np.int64, copy=False), lens, starts, data)
    return pa.BinaryArray.from_buffers(
        pa.binary(),
        lens.shape[0],
        [
            pa.py_buffer(np.packbits(valid, bitorder="little").tobytes()),
            pa.py_buffer(starts.astype(np.int32).tobytes()),
            pa.py_buffer(np.ascontiguousarray(data).tobytes()),
        ],
    )


def text_column(raw: pa.Array) -> pa.Array:
    """Binary strings → dictionary strings, decoding each distinct value once."""
    enc = raw.dictionary_encode()
    words = pa.array([_ber.text(v) for v in enc.dictionary.to_pylist()], pa.string())
    return pa.DictionaryArray.from_arrays(enc.indices, words)


def data_column(raw: pa.Array) -> tuple[pa.Array, list[str | None]]:
    """allData bytes → list of 'type:value' (distinct blobs decoded once); also the decoding
    problem of each row (None when fine)."""
    enc = raw.dictionary_encode()
    blobs = enc.dictionary.to_pylist()
    lists: list[list[str]] = []
    problems: list[str | None] = []
    for blob in blobs:
        _types, texts, problem = _ber.data_values(blob, 0, len(blob))
        lists.append(texts)
        problems.append(problem)
    values = pa.array(lists, pa.list_(pa.string()))
    flat = values.flatten().dictionary_encode()
    as_dict = pa.ListArray.from_arrays(values.offsets, flat)
    taken = as_dict.take(enc.indices)
    row_problems = [None if k is None else problems[k] for k in enc.indices.to_pylist()]
    return taken, row_problems


def _opt(v: np.ndarray, present: np.ndarray, typ: pa.DataType) -> pa.Array:
    return pa.array(v, type=typ, mask=~present)


def _techniques(n: int) -> tuple[pa.Array, pa.Array]:
    m = PDUS["goosePdu"]
    cat = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, np.int32)), pa.array([m.category], pa.string())
    )
    k = len(m.techniques)
    tech = pa.ListArray.from_arrays(
        pa.array(np.arange(n + 1, dtype=np.int32) * k),
        pa.DictionaryArray.from_arrays(
            pa.array(np.tile(np.arange(k, dtype=np.int32), n)),
            pa.array(list(m.techniques), pa.string()),
        ),
    )
    return cat, tech


def l2_envelope(ctx: ChunkContext, pkt: np.ndarray) -> dict[str, pa.Array]:
    """Envelope of rows of Ethernet frames ``pkt``: MAC addresses instead of IP ones."""
    env = ctx.packet_envelope(pkt)
    n = pkt.shape[0]
    env["src_ip"] = _null_str(n)
    env["dst_ip"] = _null_str(n)
    c = ctx.cols
    env["src_mac"] = mac_array(c[pkt, L.ETH_SRC])
    env["dst_mac"] = mac_array(c[pkt, L.ETH_DST])
    vlan = c[pkt, L.VLAN1]
    env["vlan"] = pa.array(vlan.astype(np.int32), mask=vlan < 0)
    return env


def _missing(present: int) -> str:
    gone = [FIELDS.name(t) for t in MANDATORY if not (present >> t) & 1]
    return "missing " + ", ".join(gone)


# ---- the dissector ----------------------------------------------------------------------------
class GooseDissector(Dissector):
    name = "goose"
    tables = {"goose": SCHEMA}
    ethertypes = (ETHERTYPE,)
    semantics = (PDUS, DATA_TYPES, FIELDS)

    def process(self, ctx: ChunkContext) -> dict[str, pa.RecordBatch]:
        pkt = ctx.ethertype(ETHERTYPE)
        if pkt.shape[0] == 0:
            return {}
        ch = ctx.chunk
        out = np.empty((pkt.shape[0], NCOL), np.int64)
        _scan(
            ch.buf,
            ctx.cols,
            pkt,
            ch.offset.astype(np.int64, copy=False),
            ch.caplen.astype(np.int64, copy=False),
            ch.linktype.astype(np.int64, copy=False),
            out,
        )
        rows = np.flatnonzero(out[:, PROBLEMS] & P_TOO_SHORT == 0)
        data_problems: dict[int, str] = {}
        batch = None
        if rows.shape[0]:
            batch, problems = self._rows(ctx, pkt[rows], out[rows])
            data_problems = {int(rows[k]): p for k, p in enumerate(problems) if p is not None}
        self._weird(ctx, pkt, out, data_problems)
        return {"goose": batch} if batch is not None else {}

    def _rows(
        self, ctx: ChunkContext, pkt: np.ndarray, o: np.ndarray
    ) -> tuple[pa.RecordBatch, list[str | None]]:
        n = pkt.shape[0]
        buf = ctx.chunk.buf
        present = o[:, PRESENT]

        def has(tag: int) -> np.ndarray:
            return ((present >> tag) & 1).astype(bool)

        ad = has(11)
        data, data_problems = data_column(gather(buf, o[:, AD_OFF], o[:, AD_LEN], ad))
        t_ns = o[:, T_SEC] * _ber.NS + ((o[:, T_FRAC] * _ber.NS) >> 24)
        cat, tech = _techniques(n)
        batch = l2_envelope(ctx, pkt)
        batch.update(
            {
                "vlan_priority": pa.array(o[:, PCP].astype(np.int16), mask=o[:, PCP] < 0),
                "appid": pa.array(o[:, APPID].astype(np.int32)),
                "length": pa.array(o[:, LENGTH].astype(np.int32)),
                "reserved1": pa.array(o[:, RES1].astype(np.int32)),
                "reserved2": pa.array(o[:, RES2].astype(np.int32)),
                "s_bit": pa.array((o[:, RES1] & 0x8000) != 0),
                "gocb_ref": text_column(gather(buf, o[:, GOCB_OFF], o[:, GOCB_LEN], has(0))),
                "time_allowed_to_live": _opt(o[:, TAL], has(1), pa.int64()),
                "dat_set": text_column(gather(buf, o[:, DATSET_OFF], o[:, DATSET_LEN], has(2))),
                "go_id": text_column(gather(buf, o[:, GOID_OFF], o[:, GOID_LEN], has(3))),
                "t": pa.array(t_ns, type=pa.timestamp("ns", tz="UTC"), mask=~has(4)),
                "t_quality": _opt(o[:, T_Q].astype(np.int16), has(4), pa.int16()),
                "st_num": _opt(o[:, STNUM], has(5), pa.int64()),
                "sq_num": _opt(o[:, SQNUM], has(6), pa.int64()),
                "simulation": _opt(o[:, SIM] != 0, has(7), pa.bool_()),
                "conf_rev": _opt(o[:, CONFREV], has(8), pa.int64()),
                "nds_com": _opt(o[:, NDSCOM] != 0, has(9), pa.bool_()),
                "num_dat_set_entries": _opt(o[:, NUMENT], has(10), pa.int64()),
                "data_count": _opt(o[:, NDATA].astype(np.int32), ad, pa.int32()),
                "data": data,
                "category": cat,
                "techniques": tech,
            }
        )
        return pa.RecordBatch.from_pydict(batch, schema=SCHEMA), data_problems

    def _weird(self, ctx, pkt, out, data_problems: dict[int, str]) -> None:
        """One weird row per problem of each frame, with what was found."""
        probs = out[:, PROBLEMS]
        # a value that could not be decoded, in a frame not already reported as cut or broken
        data_probs = {
            k: p for k, p in data_problems.items() if not probs[k] & (P_TRUNCATED | P_BAD_DATA)
        }
        bad = np.flatnonzero(probs != 0)
        extra = np.array(sorted(data_probs), np.int64)
        idx: list[int] = []
        names: list[str] = []
        details: list[str] = []
        for k in np.union1d(bad, extra).tolist():
            pr = int(probs[k])
            where = f"appid 0x{int(out[k, APPID]):04x}, length {int(out[k, LENGTH])}"
            for bit, name in WEIRD.items():
                if not pr & bit:
                    continue
                detail = where
                if bit == P_MISSING:
                    detail = f"{where}: {_missing(int(out[k, PRESENT]))}"
                elif bit in (P_UNKNOWN_TAG, P_BAD_BER) and out[k, BAD_TAG] >= 0:
                    detail = f"{where}: tag 0x{int(out[k, BAD_TAG]):02x}"
                elif bit == P_ENTRIES_MISMATCH:
                    detail = (
                        f"{where}: numDatSetEntries {int(out[k, NUMENT])}, "
                        f"allData {int(out[k, NDATA])}"
                    )
                idx.append(k)
                names.append(name)
                details.append(detail)
            if k in data_probs:
                idx.append(k)
                names.append("goose_bad_data_value")
                details.append(f"{where}: {data_probs[k]}")
        if idx:
            ctx.weird(l2_envelope(ctx, pkt[np.array(idx)]), names, details, "goose")


DISSECTOR = GooseDissector
