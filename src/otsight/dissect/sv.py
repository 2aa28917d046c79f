"""IEC 61850-9-2 Sampled Values on Ethernet (ethertype 0x88BA, plain or inside 802.1Q).

A merging unit publishes thousands of frames per second, each carrying one or more ASDUs
(one per sample set). Two numba passes read every frame without Python per frame: the first
counts ASDUs, the second reads the header (APPID, length, simulation bit), noASDU and, per
ASDU, svID, datSet, smpCnt, confRev, refrTm, smpSynch, smpRate, smpMod and the size of the
sample data. svID / datSet strings are dictionary-encoded from raw bytes and decoded once
per distinct value. Broken frames become ``weird`` rows with reasons; ASDUs that are whole
are still reported.

Table: ``sv`` (one row per ASDU; ``asdu_index`` numbers them within the frame).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.dissect import _ber
from otsight.dissect import _l2l4 as L
from otsight.dissect.base import ChunkContext, Dissector, Semantics
from otsight.dissect.goose import gather, l2_envelope, text_column

ETHERTYPE = 0x88BA

# ---- semantics --------------------------------------------------------------------------------
# Sampled values are measurements protection relays act on at once: forged or replayed
# samples are spoofed reports (T0856) that can make a relay trip (T0855 by their effect).
PDUS = Semantics(
    "sv",
    "pdu",
    {"savPdu": ("sampled_values", None, ["T0856"])},
)

SMP_SYNCH = Semantics("sv", "smp_synch", {0: "none", 1: "local", 2: "global"})

SMP_MOD = Semantics(
    "sv",
    "smp_mod",
    {0: "samples_per_nominal_period", 1: "samples_per_second", 2: "seconds_per_sample"},
)

ASDU_FIELDS = Semantics(
    "sv",
    "asdu_field",
    {
        0: "svID",
        1: "datSet",
        2: "smpCnt",
        3: "confRev",
        4: "refrTm",
        5: "smpSynch",
        6: "smpRate",
        7: "sample",
        8: "smpMod",
        9: "gmIdentity",
    },
)
MANDATORY = (0, 2, 3, 5, 7)

# ---- kernels ----------------------------------------------------------------------------------
# per-frame columns
F_APPID, F_LENGTH, F_RES1, F_RES2, F_PCP, F_NOASDU, F_NASDU, F_PROBLEMS, F_BAD_TAG = range(9)
NFCOL = 9
# per-ASDU columns
(A_FRAME, A_INDEX, A_SVID_OFF, A_SVID_LEN, A_DS_OFF, A_DS_LEN, A_SMPCNT, A_CONFREV) = range(8)
(A_REFR_SEC, A_REFR_FRAC, A_SYNCH, A_RATE, A_MOD, A_SAMPLE_LEN, A_PRESENT) = range(8, 15)
NACOL = 15

P_BAD_LENGTH = 1 << 0
P_TRUNCATED = 1 << 1
P_NOT_SAV_PDU = 1 << 2
P_BAD_BER = 1 << 3
P_UNKNOWN_TAG = 1 << 4
P_MISSING = 1 << 5
P_COUNT_MISMATCH = 1 << 6
P_BAD_VALUE = 1 << 7
P_TOO_SHORT = 1 << 8

WEIRD = {
    P_BAD_LENGTH: "sv_bad_length",
    P_TRUNCATED: "sv_truncated",
    P_NOT_SAV_PDU: "sv_not_a_sav_pdu",
    P_BAD_BER: "sv_bad_ber_encoding",
    P_UNKNOWN_TAG: "sv_unknown_tag",
    P_MISSING: "sv_missing_field",
    P_COUNT_MISMATCH: "sv_no_asdu_mismatch",
    P_BAD_VALUE: "sv_bad_field_value",
    P_TOO_SHORT: "sv_header_too_short",
}
_MANDATORY_MASK = sum(1 << t for t in MANDATORY)


@njit(cache=True, inline="always")
def _b16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(cache=True, inline="always")
def _len(b, q, end):
    """(content start, declared content end) of the BER length at ``q``; (-1, -1) when it is
    unreadable or indefinite."""
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
def _uint(b, s, e):
    """Unsigned big-endian content of 1..4 octets (smpCnt, confRev, ...); -1 otherwise."""
    n = e - s
    if n < 1 or n > 4:
        return np.int64(-1)
    v = np.int64(0)
    for i in range(n):
        v = (v << 8) | np.int64(b[s + i])
    return v


@njit(cache=True, inline="always")
def _seq(buf, p, fend):
    """Bounds of the seqASDU contents of the frame whose header is at ``p``: (start, end,
    noASDU, problems, bad tag). start < 0 when there is no seqASDU to walk."""
    problems = np.int64(0)
    bad = np.int64(-1)
    length = _b16(buf, p + 2)
    end = fend
    if length < 8:
        problems |= P_BAD_LENGTH
    elif p + length > fend:
        problems |= P_TRUNCATED
    else:
        end = p + length
    q = p + 8
    if q >= end:
        return np.int64(-1), np.int64(-1), np.int64(-1), problems | P_MISSING, bad
    if buf[q] != 0x60:
        return np.int64(-1), np.int64(-1), np.int64(-1), problems | P_NOT_SAV_PDU, np.int64(buf[q])
    s, e = _len(buf, q + 1, end)
    if s < 0:
        return np.int64(-1), np.int64(-1), np.int64(-1), problems | P_BAD_BER, bad
    if e > end:
        problems |= P_TRUNCATED
        e = end
    noasdu = np.int64(-1)
    r = s
    while r < e:
        tb = np.int64(buf[r])
        if (tb & 0x1F) == 0x1F or r + 2 > e:
            return np.int64(-1), np.int64(-1), noasdu, problems | P_BAD_BER, tb
        cs, ce = _len(buf, r + 1, e)
        if cs < 0:
            return np.int64(-1), np.int64(-1), noasdu, problems | P_BAD_BER, tb
        if ce > e:
            problems |= P_TRUNCATED
            ce = e
        if tb == 0x80:
            noasdu = _uint(buf, cs, ce)
            if noasdu < 0:
                problems |= P_BAD_VALUE
        elif tb == 0xA2:
            return cs, ce, noasdu, problems, bad
        elif tb != 0x81:  # security
            problems |= P_UNKNOWN_TAG
            if bad < 0:
                bad = tb
        r = ce
    return np.int64(-1), np.int64(-1), noasdu, problems | P_MISSING, bad


@njit(cache=True, nogil=True, _nrt=False)
def _frames(buf, pkt, offset, caplen, linktype, l3_off, fout):
    """Per-frame header fields and ASDU count (pass 1)."""
    for j in range(pkt.shape[0]):
        i = pkt[j]
        for c in range(NFCOL):
            fout[j, c] = 0
        fout[j, F_PCP] = -1
        fout[j, F_NOASDU] = -1
        fout[j, F_BAD_TAG] = -1
        start = offset[i]
        fend = start + caplen[i]
        if linktype[i] == 1 and start + 16 <= fend:
            outer = _b16(buf, start + 12)
            if outer == 0x8100 or outer == 0x88A8 or outer == 0x9100:
                fout[j, F_PCP] = np.int64(buf[start + 14]) >> 5
        p = l3_off[i]
        if fend - p < 8:
            fout[j, F_PROBLEMS] = P_TOO_SHORT
            continue
        fout[j, F_APPID] = _b16(buf, p)
        fout[j, F_LENGTH] = _b16(buf, p + 2)
        fout[j, F_RES1] = _b16(buf, p + 4)
        fout[j, F_RES2] = _b16(buf, p + 6)
        s, e, noasdu, problems, bad = _seq(buf, p, fend)
        fout[j, F_NOASDU] = noasdu
        fout[j, F_BAD_TAG] = bad
        n = 0
        r = s
        while s >= 0 and r < e:
            if r + 2 > e or (buf[r] & 0x1F) == 0x1F:
                problems |= P_TRUNCATED if r + 2 > e else P_BAD_BER
                break
            cs, ce = _len(buf, r + 1, e)
            if cs < 0:
                problems |= P_BAD_BER
                break
            if buf[r] != 0x30:
                problems |= P_UNKNOWN_TAG
                if fout[j, F_BAD_TAG] < 0:
                    fout[j, F_BAD_TAG] = buf[r]
            elif ce <= e:
                n += 1
            else:
                problems |= P_TRUNCATED
                break
            r = ce
        fout[j, F_NASDU] = n
        if noasdu >= 0 and s >= 0 and noasdu != n and (problems & P_TRUNCATED) == 0:
            problems |= P_COUNT_MISMATCH
        fout[j, F_PROBLEMS] = problems


@njit(cache=True, nogil=True, _nrt=False)
def _asdus(buf, pkt, offset, caplen, l3_off, fout, starts, aout):
    """Fields of every whole ASDU (pass 2) into ``aout[starts[j]:starts[j+1]]``."""
    for j in range(pkt.shape[0]):
        if fout[j, F_NASDU] == 0:
            continue
        i = pkt[j]
        fend = offset[i] + caplen[i]
        s, e, _n, _p, _b = _seq(buf, l3_off[i], fend)
        k = starts[j]
        idx = 0
        r = s
        while r < e and k < starts[j + 1]:
            cs, ce = _len(buf, r + 1, e)
            if buf[r] != 0x30:
                r = ce
                continue
            for c in range(NACOL):
                aout[k, c] = 0
            aout[k, A_FRAME] = j
            aout[k, A_INDEX] = idx
            present = np.int64(0)
            bad = np.int64(0)
            t = cs
            while t < ce:
                tb = np.int64(buf[t])
                if (tb & 0x1F) == 0x1F or t + 2 > ce:
                    bad = 1
                    break
                fs, fe = _len(buf, t + 1, ce)
                if fs < 0 or fe > ce:
                    bad = 1
                    break
                num = tb & 0x1F
                if (tb >> 6) == 2 and num <= 9 and (present >> num) & 1 == 0:
                    present |= np.int64(1) << num
                    if num == 0:
                        aout[k, A_SVID_OFF] = fs
                        aout[k, A_SVID_LEN] = fe - fs
                    elif num == 1:
                        aout[k, A_DS_OFF] = fs
                        aout[k, A_DS_LEN] = fe - fs
                    elif num == 4:
                        if fe - fs == 8:
                            aout[k, A_REFR_SEC] = (_b16(buf, fs) << 16) | _b16(buf, fs + 2)
                            aout[k, A_REFR_FRAC] = (_b16(buf, fs + 4) << 8) | np.int64(buf[fs + 6])
                        else:
                            present &= ~(np.int64(1) << 4)
                            bad = 1
                    elif num == 7:
                        aout[k, A_SAMPLE_LEN] = fe - fs
                    elif num != 9:
                        v = _uint(buf, fs, fe)
                        if v < 0:
                            present &= ~(np.int64(1) << num)
                            bad = 1
                        elif num == 2:
                            aout[k, A_SMPCNT] = v
                        elif num == 3:
                            aout[k, A_CONFREV] = v
                        elif num == 5:
                            aout[k, A_SYNCH] = v
                        elif num == 6:
                            aout[k, A_RATE] = v
                        else:
                            aout[k, A_MOD] = v
                else:
                    bad = 1
                t = fe
            aout[k, A_PRESENT] = present
            if bad:
                fout[j, F_PROBLEMS] |= P_BAD_VALUE
            if (present & _MANDATORY_MASK) != _MANDATORY_MASK:
                fout[j, F_PROBLEMS] |= P_MISSING
            k += 1
            idx += 1
            r = ce


# ---- schema -----------------------------------------------------------------------------------
_STR = E._STR

SCHEMA = E._schema(
    "sv",
    E.PDU_COMMON
    + [
        pa.field("src_mac", _STR),
        pa.field("dst_mac", _STR),
        pa.field("vlan", pa.int32()),
        pa.field("vlan_priority", pa.int16()),
        pa.field("appid", pa.int32()),
        pa.field("length", pa.int32()),
        pa.field("s_bit", pa.bool_()),  # reserved1 bit 15: simulated frame
        pa.field("no_asdu", pa.int32()),
        pa.field("asdu_index", pa.int16()),
        pa.field("sv_id", _STR),
        pa.field("dat_set", _STR),
        pa.field("smp_cnt", pa.int64()),
        pa.field("conf_rev", pa.int64()),
        pa.field("refr_tm", pa.timestamp("ns", tz="UTC")),
        pa.field("smp_synch", pa.int16()),
        pa.field("smp_synch_name", _STR),
        pa.field("smp_rate", pa.int32()),
        pa.field("smp_mod", pa.int16()),
        pa.field("sample_bytes", pa.int32()),  # size of seqData (8 bytes per value+quality)
        pa.field("category", _STR),
        pa.field("techniques", pa.list_(_STR)),
    ],
    "IEC 61850-9-2 Sampled Values (ethertype 0x88BA): one row per ASDU.",
)


def _opt(v: np.ndarray, present: np.ndarray, typ: pa.DataType) -> pa.Array:
    """``v`` where present and representable in ``typ`` (a lying value is left null)."""
    info = np.iinfo(typ.to_pandas_dtype())
    ok = present & (v >= info.min) & (v <= info.max)
    return pa.array(np.where(ok, v, 0).astype(typ.to_pandas_dtype()), type=typ, mask=~ok)


def _names(sem: Semantics, codes: np.ndarray, present: np.ndarray) -> pa.Array:
    names = sem.names(np.where(present, codes, 0))
    return pa.DictionaryArray.from_arrays(
        pa.array(names.indices.to_numpy(zero_copy_only=False), mask=~present), names.dictionary
    )


# ---- the dissector ----------------------------------------------------------------------------
class SvDissector(Dissector):
    name = "sv"
    tables = {"sv": SCHEMA}
    ethertypes = (ETHERTYPE,)
    semantics = (PDUS, SMP_SYNCH, SMP_MOD, ASDU_FIELDS)

    def process(self, ctx: ChunkContext) -> dict[str, pa.RecordBatch]:
        pkt = ctx.ethertype(ETHERTYPE)
        if pkt.shape[0] == 0:
            return {}
        ch = ctx.chunk
        offset = ch.offset.astype(np.int64, copy=False)
        caplen = ch.caplen.astype(np.int64, copy=False)
        l3 = np.ascontiguousarray(ctx.cols[:, L.L3_OFF])
        fout = np.empty((pkt.shape[0], NFCOL), np.int64)
        _frames(ch.buf, pkt, offset, caplen, ch.linktype.astype(np.int64), l3, fout)
        starts = np.zeros(pkt.shape[0] + 1, np.int64)
        np.cumsum(fout[:, F_NASDU], out=starts[1:])
        aout = np.empty((int(starts[-1]), NACOL), np.int64)
        _asdus(ch.buf, pkt, offset, caplen, l3, fout, starts, aout)
        self._weird(ctx, pkt, fout, aout, starts)
        if aout.shape[0] == 0:
            return {}
        return {"sv": self._rows(ctx, pkt, fout, aout)}

    def _rows(self, ctx, pkt, fout, a) -> pa.RecordBatch:
        n = a.shape[0]
        fr = a[:, A_FRAME]
        f = fout[fr]
        present = a[:, A_PRESENT]

        def has(tag: int) -> np.ndarray:
            return ((present >> tag) & 1).astype(bool)

        buf = ctx.chunk.buf
        refr = a[:, A_REFR_SEC] * _ber.NS + ((a[:, A_REFR_FRAC] * _ber.NS) >> 24)
        m = PDUS["savPdu"]
        batch = l2_envelope(ctx, pkt[fr])
        batch.update(
            {
                "vlan_priority": _opt(f[:, F_PCP], f[:, F_PCP] >= 0, pa.int16()),
                "appid": pa.array(f[:, F_APPID].astype(np.int32)),
                "length": pa.array(f[:, F_LENGTH].astype(np.int32)),
                "s_bit": pa.array((f[:, F_RES1] & 0x8000) != 0),
                "no_asdu": _opt(f[:, F_NOASDU], f[:, F_NOASDU] >= 0, pa.int32()),
                "asdu_index": pa.array(a[:, A_INDEX].astype(np.int16)),
                "sv_id": text_column(gather(buf, a[:, A_SVID_OFF], a[:, A_SVID_LEN], has(0))),
                "dat_set": text_column(gather(buf, a[:, A_DS_OFF], a[:, A_DS_LEN], has(1))),
                "smp_cnt": _opt(a[:, A_SMPCNT], has(2), pa.int64()),
                "conf_rev": _opt(a[:, A_CONFREV], has(3), pa.int64()),
                "refr_tm": pa.array(refr, type=pa.timestamp("ns", tz="UTC"), mask=~has(4)),
                "smp_synch": _opt(a[:, A_SYNCH], has(5), pa.int16()),
                "smp_synch_name": _names(SMP_SYNCH, a[:, A_SYNCH], has(5) & (a[:, A_SYNCH] < 256)),
                "smp_rate": _opt(a[:, A_RATE], has(6), pa.int32()),
                "smp_mod": _opt(a[:, A_MOD], has(8), pa.int16()),
                "sample_bytes": _opt(a[:, A_SAMPLE_LEN], has(7), pa.int32()),
                "category": pa.nulls(n, _STR),
                "techniques": pa.ListArray.from_arrays(
                    pa.array(np.arange(n + 1, dtype=np.int32) * len(m.techniques)),
                    pa.array(list(m.techniques) * n, pa.string()).dictionary_encode(),
                ),
            }
        )
        return pa.RecordBatch.from_pydict(batch, schema=SCHEMA)

    @staticmethod
    def _weird(ctx, pkt, fout, aout, starts) -> None:
        probs = fout[:, F_PROBLEMS]
        bad = np.flatnonzero(probs != 0)
        if bad.shape[0] == 0:
            return
        idx: list[int] = []
        names: list[str] = []
        details: list[str] = []
        for k in bad.tolist():
            pr = int(probs[k])
            where = f"appid 0x{int(fout[k, F_APPID]):04x}, length {int(fout[k, F_LENGTH])}"
            for bit, name in WEIRD.items():
                if not pr & bit:
                    continue
                detail = where
                if bit == P_COUNT_MISMATCH:
                    detail = (
                        f"{where}: noASDU {int(fout[k, F_NOASDU])}, {int(fout[k, F_NASDU])} ASDUs"
                    )
                elif bit == P_MISSING:
                    gone: set[str] = set()
                    for r in range(int(starts[k]), int(starts[k + 1])):
                        pres = int(aout[r, A_PRESENT])
                        gone |= {ASDU_FIELDS.name(t) for t in MANDATORY if not (pres >> t) & 1}
                    detail = f"{where}: missing " + (", ".join(sorted(gone)) or "seqASDU")
                elif bit in (P_UNKNOWN_TAG, P_NOT_SAV_PDU) and fout[k, F_BAD_TAG] >= 0:
                    detail = f"{where}: tag 0x{int(fout[k, F_BAD_TAG]):02x}"
                idx.append(k)
                names.append(name)
                details.append(detail)
        ctx.weird(l2_envelope(ctx, pkt[np.array(idx)]), names, details, "sv")


DISSECTOR = SvDissector
