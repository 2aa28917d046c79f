"""IEC 60870-5-104: APCI (I/S/U frames), ASDU header and information objects.

Every APDU framed by the IEC104 framer (start octet 0x68, length, four control octets,
then an ASDU for I-frames) becomes one row. A first kernel decodes the fields every APDU
has (frame type, send/receive sequence numbers, U function, type identification, SQ bit
and number of objects, cause of transmission with its P/N and test bits, originator and
common address) and counts the information objects that fit; a second kernel decodes the
objects into flat arrays (IOA, value, quality, select/execute, qualifier, CP56Time2a)
that become list columns, one element per object.

The 104 profile is fixed: two-octet cause of transmission (with originator address),
two-octet common address, three-octet IOA. Element layouts follow IEC 60870-5-101 §7.3;
Wireshark decodes the same set (plus or minus a few, see ``ELEMENT_LENGTH``).

Request/response pairing (best effort): an activation (COT 6) or deactivation (COT 8) is
paired, within the TCP flow, with the following confirmations of the same type
identification, common address and first IOA — activation confirmation (7), activation
termination (10) and the negative "unknown type / cause / common address / IOA" answers
(44–47) for activations, deactivation confirmation (9) for deactivations. U-frames pair
"act" with "con" of the same function (STARTDT, STOPDT, TESTFR). A confirmation carries
``request_frame`` and ``latency``; requests carried over a chunk boundary are matched,
but a second confirmation (e.g. ActTerm after ActCon) is only matched while the request
is still in the same chunk or carried (the matcher forgets answered requests).

CP56Time2a carries no time zone: it is read as UTC. A day or month out of range is
normalised the way C ``mktime`` does (as Wireshark shows it); years < 70 are 20xx.
CP24Time2a (minutes and milliseconds only, types 2, 4, 6 ... 16) is not turned into a time.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.capture import _track as T
from otsight.capture import framing
from otsight.dissect.base import ChunkContext, Dissector, Semantics, pairing_columns, take_envelope
from otsight.dissect.matching import RequestMatcher

PORT = 2404

# ---- semantics (seeded from shared/PROTOCOLS.md 3.6; names as Wireshark shows them) ------
_REPORT = ("read", ["T0801", "T0856"])
_COMMAND = ("control", ["T0855", "T0831"])
_SETPOINT = ("write", ["T0836", "T0855"])
_FILE = ("program", ["T0843", "T0845", "T0857"])
_AUTH = ("session", ["T0859", "T0812"])
_PARAM = ("write", ["T0836", "T0838"])


def _rows(spec: dict[int, tuple[str, tuple[str, list[str]]]]) -> dict[Hashable, Any]:
    return {k: (name, cat, techs) for k, (name, (cat, techs)) in spec.items()}


TYPE_IDS = Semantics(
    "iec104",
    "type_id",
    _rows(
        {
            1: ("M_SP_NA_1", _REPORT),
            2: ("M_SP_TA_1", _REPORT),
            3: ("M_DP_NA_1", _REPORT),
            4: ("M_DP_TA_1", _REPORT),
            5: ("M_ST_NA_1", _REPORT),
            6: ("M_ST_TA_1", _REPORT),
            7: ("M_BO_NA_1", _REPORT),
            8: ("M_BO_TA_1", _REPORT),
            9: ("M_ME_NA_1", _REPORT),
            10: ("M_ME_TA_1", _REPORT),
            11: ("M_ME_NB_1", _REPORT),
            12: ("M_ME_TB_1", _REPORT),
            13: ("M_ME_NC_1", _REPORT),
            14: ("M_ME_TC_1", _REPORT),
            15: ("M_IT_NA_1", _REPORT),
            16: ("M_IT_TA_1", _REPORT),
            17: ("M_EP_TA_1", _REPORT),
            18: ("M_EP_TB_1", _REPORT),
            19: ("M_EP_TC_1", _REPORT),
            20: ("M_PS_NA_1", _REPORT),
            21: ("M_ME_ND_1", _REPORT),
            30: ("M_SP_TB_1", _REPORT),
            31: ("M_DP_TB_1", _REPORT),
            32: ("M_ST_TB_1", _REPORT),
            33: ("M_BO_TB_1", _REPORT),
            34: ("M_ME_TD_1", _REPORT),
            35: ("M_ME_TE_1", _REPORT),
            36: ("M_ME_TF_1", _REPORT),
            37: ("M_IT_TB_1", _REPORT),
            38: ("M_EP_TD_1", _REPORT),
            39: ("M_EP_TE_1", _REPORT),
            40: ("M_EP_TF_1", _REPORT),
            41: ("S_IT_TC_1", _AUTH),
            45: ("C_SC_NA_1", _COMMAND),
            46: ("C_DC_NA_1", _COMMAND),
            47: ("C_RC_NA_1", _COMMAND),
            48: ("C_SE_NA_1", _SETPOINT),
            49: ("C_SE_NB_1", _SETPOINT),
            50: ("C_SE_NC_1", _SETPOINT),
            51: ("C_BO_NA_1", _SETPOINT),
            58: ("C_SC_TA_1", _COMMAND),
            59: ("C_DC_TA_1", _COMMAND),
            60: ("C_RC_TA_1", _COMMAND),
            61: ("C_SE_TA_1", _SETPOINT),
            62: ("C_SE_TB_1", _SETPOINT),
            63: ("C_SE_TC_1", _SETPOINT),
            64: ("C_BO_TA_1", _SETPOINT),
            70: ("M_EI_NA_1", ("diagnostic", ["T0816"])),
            81: ("S_CH_NA_1", _AUTH),
            82: ("S_RP_NA_1", _AUTH),
            83: ("S_AR_NA_1", _AUTH),
            84: ("S_KR_NA_1", _AUTH),
            85: ("S_KS_NA_1", _AUTH),
            86: ("S_KC_NA_1", _AUTH),
            87: ("S_ER_NA_1", _AUTH),
            90: ("S_US_NA_1", _AUTH),
            91: ("S_UQ_NA_1", _AUTH),
            92: ("S_UR_NA_1", _AUTH),
            93: ("S_UK_NA_1", _AUTH),
            94: ("S_UA_NA_1", _AUTH),
            95: ("S_UC_NA_1", _AUTH),
            100: ("C_IC_NA_1", ("read", ["T0846", "T0888", "T0861"])),
            101: ("C_CI_NA_1", ("read", ["T0846", "T0888", "T0861"])),
            102: ("C_RD_NA_1", ("read", ["T0861", "T0888"])),
            103: ("C_CS_NA_1", ("write", ["T0836"])),
            104: ("C_TS_NA_1", ("diagnostic", [])),  # IEC 101 only
            105: ("C_RP_NA_1", ("control", ["T0816"])),
            106: ("C_CD_NA_1", ("diagnostic", [])),  # IEC 101 only
            107: ("C_TS_TA_1", ("diagnostic", [])),
            110: ("P_ME_NA_1", _PARAM),
            111: ("P_ME_NB_1", _PARAM),
            112: ("P_ME_NC_1", _PARAM),
            113: ("P_AC_NA_1", ("write", ["T0836"])),
            120: ("F_FR_NA_1", _FILE),
            121: ("F_SR_NA_1", _FILE),
            122: ("F_SC_NA_1", _FILE),
            123: ("F_LS_NA_1", _FILE),
            124: ("F_AF_NA_1", _FILE),
            125: ("F_SG_NA_1", _FILE),
            126: ("F_DR_TA_1", _FILE),
            127: ("F_SC_NB_1", _FILE),
        }
    ),
)

U_FUNCTIONS = Semantics(
    "iec104",
    "u_function",
    {
        0x01: ("STARTDT act", "session"),
        0x02: ("STARTDT con", "session"),
        0x04: ("STOPDT act", "control", ["T0804", "T0814"]),
        0x08: ("STOPDT con", "control", ["T0804", "T0814"]),
        0x10: ("TESTFR act", "session"),
        0x20: ("TESTFR con", "session"),
    },
)

_PROBING = ["T0846", "T0861"]
COTS = Semantics(
    "iec104",
    "cot",
    {
        0: "not_used",
        1: "Per/Cyc",
        2: "Back",
        3: "Spont",
        4: "Init",
        5: "Req",
        6: "Act",
        7: "ActCon",
        8: "Deact",
        9: "DeactCon",
        10: "ActTerm",
        11: "Retrem",
        12: "Retloc",
        13: "File",
        14: "Auth",
        15: "Seskey",
        16: "Usrkey",
        20: "Inrogen",
        **{20 + g: f"Inro{g}" for g in range(1, 17)},
        37: "Reqcogen",
        **{37 + g: f"Reqco{g}" for g in range(1, 5)},
        44: ("UkTypeId", None, _PROBING),
        45: ("UkCauseTx", None, _PROBING),
        46: ("UkComAdrASDU", None, _PROBING),
        47: ("UkIOA", None, _PROBING),
    },
)

# quality bits of the ``quality`` list column (low octet = the quality octet as sent)
QUALITY_FLAGS = (
    (0x80, "IV"),
    (0x40, "NT"),
    (0x20, "SB"),
    (0x10, "BL"),
    (0x08, "EI"),  # protection events: elapsed time invalid
    (0x01, "OV"),
    (0x100, "TRANSIENT"),  # step position (VTI) in transient state
    (0x200, "CY"),  # integrated totals: carry
    (0x400, "CA"),  # integrated totals: counter adjusted
    (0x800, "TIME_IV"),  # CP56Time2a marked invalid
)

# ---- per type: element length (after the IOA) and which object columns it fills --------
F_VALUE, F_INT, F_QUALITY, F_SELECT, F_QUALIFIER, F_TIME = 1, 2, 4, 8, 16, 32
VARIABLE = -1  # unknown or variable length: first IOA only (as Wireshark does)
NO_OBJECTS = -2  # secure authentication: no information object address

_TYPES: dict[int, tuple[int, int]] = {
    1: (1, F_INT | F_QUALITY),
    2: (4, F_INT | F_QUALITY),
    3: (1, F_INT | F_QUALITY),
    4: (4, F_INT | F_QUALITY),
    5: (2, F_INT | F_QUALITY),
    6: (5, F_INT | F_QUALITY),
    7: (5, F_INT | F_QUALITY),
    8: (8, F_INT | F_QUALITY),
    9: (3, F_VALUE | F_QUALITY),
    10: (6, F_VALUE | F_QUALITY),
    11: (3, F_VALUE | F_INT | F_QUALITY),
    12: (6, F_VALUE | F_INT | F_QUALITY),
    13: (5, F_VALUE | F_QUALITY),
    14: (8, F_VALUE | F_QUALITY),
    15: (5, F_VALUE | F_INT | F_QUALITY | F_QUALIFIER),
    16: (8, F_VALUE | F_INT | F_QUALITY | F_QUALIFIER),
    20: (5, F_INT | F_QUALITY),
    21: (2, F_VALUE),
    30: (8, F_INT | F_QUALITY | F_TIME),
    31: (8, F_INT | F_QUALITY | F_TIME),
    32: (9, F_INT | F_QUALITY | F_TIME),
    33: (12, F_INT | F_QUALITY | F_TIME),
    34: (10, F_VALUE | F_QUALITY | F_TIME),
    35: (10, F_VALUE | F_INT | F_QUALITY | F_TIME),
    36: (12, F_VALUE | F_QUALITY | F_TIME),
    37: (12, F_VALUE | F_INT | F_QUALITY | F_QUALIFIER | F_TIME),
    38: (10, F_INT | F_QUALITY | F_TIME),
    39: (11, F_INT | F_QUALITY | F_TIME),
    40: (11, F_INT | F_QUALITY | F_TIME),
    41: (14, F_VALUE | F_INT | F_QUALITY | F_QUALIFIER | F_TIME),
    45: (1, F_INT | F_SELECT | F_QUALIFIER),
    46: (1, F_INT | F_SELECT | F_QUALIFIER),
    47: (1, F_INT | F_SELECT | F_QUALIFIER),
    48: (3, F_VALUE | F_SELECT | F_QUALIFIER),
    49: (3, F_VALUE | F_INT | F_SELECT | F_QUALIFIER),
    50: (5, F_VALUE | F_SELECT | F_QUALIFIER),
    51: (4, F_INT),
    58: (8, F_INT | F_SELECT | F_QUALIFIER | F_TIME),
    59: (8, F_INT | F_SELECT | F_QUALIFIER | F_TIME),
    60: (8, F_INT | F_SELECT | F_QUALIFIER | F_TIME),
    61: (10, F_VALUE | F_SELECT | F_QUALIFIER | F_TIME),
    62: (10, F_VALUE | F_INT | F_SELECT | F_QUALIFIER | F_TIME),
    63: (12, F_VALUE | F_SELECT | F_QUALIFIER | F_TIME),
    64: (11, F_INT | F_TIME),
    70: (1, F_QUALIFIER),
    100: (1, F_QUALIFIER),
    101: (1, F_QUALIFIER),
    102: (0, 0),
    103: (7, F_TIME),
    104: (2, F_INT),
    105: (1, F_QUALIFIER),
    106: (2, F_INT),
    107: (9, F_INT | F_TIME),
    110: (3, F_VALUE | F_QUALIFIER),
    111: (3, F_VALUE | F_INT | F_QUALIFIER),
    112: (5, F_VALUE | F_QUALIFIER),
    113: (1, F_QUALIFIER),
    # file transfer: value_int = name of file (NOF), qualifier = the type's qualifier octet
    120: (6, F_INT | F_QUALIFIER),
    121: (7, F_INT | F_QUALIFIER),
    122: (4, F_INT | F_QUALIFIER),
    123: (5, F_INT | F_QUALIFIER),
    124: (4, F_INT | F_QUALIFIER),
    126: (13, F_INT | F_QUALIFIER | F_TIME),
    127: (16, F_INT | F_TIME),
}
ELEMENT_LENGTH = np.full(256, VARIABLE, dtype=np.int64)
TYPE_FLAGS = np.zeros(256, dtype=np.int64)
for _t, (_len, _flags) in _TYPES.items():
    ELEMENT_LENGTH[_t] = _len
    TYPE_FLAGS[_t] = _flags
for _t in range(81, 96):
    ELEMENT_LENGTH[_t] = NO_OBJECTS

# ---- kernels ----------------------------------------------------------------------------
# columns of the per-APDU int64 output (-1 = absent)
APCI, TX, RX, UFUNC, TYPE, SQ, NUM, COT, NEG, TEST, OA, CA, NOBJ, STATUS, IOA0 = range(15)
NCOL = 15

APCI_I, APCI_S, APCI_U = 0, 1, 3
_APCI_NAMES = {APCI_I: "I", APCI_S: "S", 2: "I", APCI_U: "U"}

OK, SHORT_ASDU_HEADER, SHORT_ASDU, LENGTH_MISMATCH, BAD_U, BAD_APCI_LENGTH, TOO_LONG = range(7)
WEIRD = {
    SHORT_ASDU_HEADER: "iec104_short_asdu_header",
    SHORT_ASDU: "iec104_short_asdu",
    LENGTH_MISMATCH: "iec104_asdu_length_mismatch",
    BAD_U: "iec104_bad_u_function",
    BAD_APCI_LENGTH: "iec104_bad_apci_length",
    TOO_LONG: "iec104_apdu_too_long",
}

NO_TIME = np.iinfo(np.int64).min


@njit(cache=True, inline="always")
def _u16(b, p):
    return np.int64(b[p]) | (np.int64(b[p + 1]) << 8)


@njit(cache=True, inline="always")
def _s16(b, p):
    v = np.int64(b[p]) | (np.int64(b[p + 1]) << 8)
    return v - 65536 if v >= 32768 else v


@njit(cache=True, inline="always")
def _u24(b, p):
    return np.int64(b[p]) | (np.int64(b[p + 1]) << 8) | (np.int64(b[p + 2]) << 16)


@njit(cache=True, inline="always")
def _u32(b, p):
    return (
        np.int64(b[p])
        | (np.int64(b[p + 1]) << 8)
        | (np.int64(b[p + 2]) << 16)
        | (np.int64(b[p + 3]) << 24)
    )


@njit(cache=True, nogil=True, _nrt=False)
def _fields(buf, arena, in_arena, off, length, elen_of, out):
    """APCI and ASDU header of each APDU; ``out[j, NOBJ]`` = objects that fit."""
    n = off.shape[0]
    for j in range(n):
        for c in range(NCOL):
            out[j, c] = -1
        out[j, NOBJ] = 0
        out[j, STATUS] = OK
        b = arena if in_arena[j] else buf
        p = off[j]
        ln = length[j]
        if ln < 6:  # the framer never hands over less; stay safe anyway
            out[j, STATUS] = BAD_APCI_LENGTH
            continue
        apdu = np.int64(b[p + 1]) + 2
        if apdu > ln:
            apdu = ln
        c0 = np.int64(b[p + 2])
        if apdu > 255 or b[p + 1] > 253:
            out[j, STATUS] = TOO_LONG
        if (c0 & 1) == 0:
            out[j, APCI] = APCI_I
            out[j, TX] = (_u16(b, p + 2) >> 1) & 0x7FFF
            out[j, RX] = (_u16(b, p + 4) >> 1) & 0x7FFF
        elif (c0 & 3) == 1:
            out[j, APCI] = APCI_S
            out[j, RX] = (_u16(b, p + 4) >> 1) & 0x7FFF
            if apdu != 6:
                out[j, STATUS] = BAD_APCI_LENGTH
            continue
        else:
            out[j, APCI] = APCI_U
            uf = (c0 >> 2) & 0x3F
            out[j, UFUNC] = uf
            if uf != 1 and uf != 2 and uf != 4 and uf != 8 and uf != 16 and uf != 32:
                out[j, STATUS] = BAD_U
            elif apdu != 6:
                out[j, STATUS] = BAD_APCI_LENGTH
            continue
        # I-frame: the ASDU
        q = p + 6
        avail = apdu - 6
        if avail < 6:
            out[j, STATUS] = SHORT_ASDU_HEADER
            if avail >= 1:
                out[j, TYPE] = b[q]
            if avail >= 2:
                out[j, SQ] = b[q + 1] >> 7
                out[j, NUM] = b[q + 1] & 0x7F
            if avail >= 3:
                out[j, COT] = b[q + 2] & 0x3F
                out[j, NEG] = (b[q + 2] >> 6) & 1
                out[j, TEST] = b[q + 2] >> 7
            if avail >= 4:
                out[j, OA] = b[q + 3]
            continue
        t = np.int64(b[q])
        sq = np.int64(b[q + 1]) >> 7
        num = np.int64(b[q + 1]) & 0x7F
        out[j, TYPE] = t
        out[j, SQ] = sq
        out[j, NUM] = num
        out[j, COT] = b[q + 2] & 0x3F
        out[j, NEG] = (b[q + 2] >> 6) & 1
        out[j, TEST] = b[q + 2] >> 7
        out[j, OA] = b[q + 3]
        out[j, CA] = _u16(b, q + 4)
        rem = avail - 6  # bytes of information objects
        q += 6
        el = elen_of[t]
        if el == -2:
            continue
        if rem >= 3:
            out[j, IOA0] = _u24(b, q)
        if el == -1:
            if rem >= 3:
                out[j, NOBJ] = 1
            continue
        if sq:
            if num == 0:
                fit = 0
                need = 0
            elif rem < 3:
                fit = 0
                need = 3 + num * el
            else:
                fit = num if el == 0 else (rem - 3) // el
                need = 3 + num * el
        else:
            fit = rem // (3 + el)
            need = num * (3 + el)
        nobj = num if fit > num else fit
        out[j, NOBJ] = nobj
        if nobj < num:
            out[j, STATUS] = SHORT_ASDU
        elif rem > need and out[j, STATUS] == OK:
            out[j, STATUS] = LENGTH_MISMATCH


@njit(cache=True, inline="always")
def _float32(bits):
    e = (bits >> 23) & 0xFF
    m = bits & 0x7FFFFF
    if e == 255:
        v = np.inf if m == 0 else np.nan
    elif e == 0:
        v = math.ldexp(np.float64(m), -149)
    else:
        v = math.ldexp(np.float64(m | 0x800000), int(e) - 150)
    return -v if bits >> 31 else v


@njit(cache=True, inline="always")
def _days_from_civil(y, m, d):
    y = y - 1 if m <= 2 else y
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = m + 9 if m <= 2 else m - 3
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@njit(cache=True, inline="always")
def _cp56(b, p):
    """CP56Time2a → milliseconds since the epoch (UTC); out-of-range fields roll over."""
    ms = _u16(b, p)
    minute = np.int64(b[p + 2]) & 0x3F
    hour = np.int64(b[p + 3]) & 0x1F
    day = np.int64(b[p + 4]) & 0x1F
    mon0 = (np.int64(b[p + 5]) & 0x0F) - 1
    yy = np.int64(b[p + 6]) & 0x7F
    year = yy + 2000 if yy < 70 else yy + 1900
    year += mon0 // 12
    mon0 = mon0 % 12
    days = _days_from_civil(year, mon0 + 1, 1) + day - 1
    return days * 86400000 + hour * 3600000 + minute * 60000 + ms


def object_arrays(m: int) -> tuple[np.ndarray, ...]:
    """Output arrays of ``_objects`` for ``m`` objects, in their column types."""
    return (
        np.empty(m, np.int32),  # ioa
        np.empty(m, np.float64),  # value
        np.empty(m, np.int64),  # value_int
        np.empty(m, np.int16),  # quality
        np.empty(m, np.uint8),  # select (viewed as bool)
        np.empty(m, np.int16),  # qualifier
        np.empty(m, np.int64),  # time (ms), NO_TIME when absent
    )


@njit(cache=True, nogil=True, _nrt=False)
def _objects(buf, arena, in_arena, off, out, elen_of, starts, ioa, vf, vi, qual, sel, qlf, tms):
    """Information objects of each I-frame into flat arrays at ``starts[j]``."""
    n = off.shape[0]
    for j in range(n):
        cnt = out[j, NOBJ]
        if cnt <= 0:
            continue
        b = arena if in_arena[j] else buf
        t = out[j, TYPE]
        el = elen_of[t]
        base = off[j] + 12  # first IOA
        s = starts[j]
        sq = out[j, SQ] == 1
        first = _u24(b, base)  # cnt > 0: the first kernel saw at least one IOA
        for k in range(cnt):
            i = s + k
            vf[i] = np.nan
            vi[i] = 0
            qual[i] = 0
            sel[i] = 0
            qlf[i] = 0
            tms[i] = NO_TIME
            if sq:
                ioa[i] = first + k
                e = base + 3 + k * el
            else:
                e = base + k * (3 + (el if el > 0 else 0))
                ioa[i] = _u24(b, e)
                e += 3
            if el > 0:
                fv, iv, q, se, ql, tp = _element(b, t, e)
                vf[i] = fv
                vi[i] = iv
                sel[i] = se
                qlf[i] = ql
                if tp >= 0:
                    tms[i] = _cp56(b, tp)
                    if b[tp + 2] & 0x80:
                        q |= 0x800
                qual[i] = q


@njit(cache=True, inline="always")
def _element(b, t, e):
    """One information element at ``b[e]``: (value, int value, quality, select,
    qualifier, position of its CP56Time2a or -1)."""
    fv = np.nan
    iv = np.int64(0)
    q = np.int64(0)
    s = np.int64(0)
    ql = np.int64(0)
    tp = np.int64(-1)
    if t == 1 or t == 2 or t == 30:
        x = np.int64(b[e])
        iv = x & 1
        q = x & 0xF0
        if t == 30:
            tp = e + 1
    elif t == 3 or t == 4 or t == 31:
        x = np.int64(b[e])
        iv = x & 3
        q = x & 0xF0
        if t == 31:
            tp = e + 1
    elif t == 5 or t == 6 or t == 32:
        x = np.int64(b[e])
        v = x & 0x7F
        iv = v - 128 if v >= 64 else v
        q = (np.int64(b[e + 1]) & 0xF1) | (0x100 if x & 0x80 else 0)
        if t == 32:
            tp = e + 2
    elif t == 7 or t == 8 or t == 33 or t == 20:
        iv = _u32(b, e)
        q = np.int64(b[e + 4]) & 0xF1
        if t == 33:
            tp = e + 5
    elif t == 9 or t == 10 or t == 34 or t == 21:
        fv = _s16(b, e) / 32768.0
        if t != 21:
            q = np.int64(b[e + 2]) & 0xF1
        if t == 34:
            tp = e + 3
    elif t == 11 or t == 12 or t == 35:
        x = _s16(b, e)
        iv = x
        fv = x
        q = np.int64(b[e + 2]) & 0xF1
        if t == 35:
            tp = e + 3
    elif t == 13 or t == 14 or t == 36:
        fv = _float32(_u32(b, e))
        q = np.int64(b[e + 4]) & 0xF1
        if t == 36:
            tp = e + 5
    elif t == 15 or t == 16 or t == 37 or t == 41:
        if t == 41:
            e += 2  # association id
        x = _u32(b, e)
        x = x - 4294967296 if x >= 2147483648 else x
        iv = x
        fv = x
        sq = np.int64(b[e + 4])
        q = (sq & 0x80) | (0x200 if sq & 0x20 else 0) | (0x400 if sq & 0x40 else 0)
        ql = sq & 0x1F
        if t == 37 or t == 41:
            tp = e + 5
    elif t == 38:
        x = np.int64(b[e])
        iv = x & 3
        q = x & 0xF8
        tp = e + 3
    elif t == 39 or t == 40:
        iv = b[e]
        q = np.int64(b[e + 1]) & 0xF8
        tp = e + 4
    elif t == 45 or t == 46 or t == 47 or t == 58 or t == 59 or t == 60:
        x = np.int64(b[e])
        iv = x & 1 if (t == 45 or t == 58) else x & 3
        s = x >> 7
        ql = (x >> 2) & 0x1F
        if t >= 58:
            tp = e + 1
    elif t == 48 or t == 61 or t == 110:
        fv = _s16(b, e) / 32768.0
        x = np.int64(b[e + 2])
        if t == 110:
            ql = x
        else:
            s = x >> 7
            ql = x & 0x7F
        if t == 61:
            tp = e + 3
    elif t == 49 or t == 62 or t == 111:
        x = _s16(b, e)
        iv = x
        fv = x
        y = np.int64(b[e + 2])
        if t == 111:
            ql = y
        else:
            s = y >> 7
            ql = y & 0x7F
        if t == 62:
            tp = e + 3
    elif t == 50 or t == 63 or t == 112:
        fv = _float32(_u32(b, e))
        y = np.int64(b[e + 4])
        if t == 112:
            ql = y
        else:
            s = y >> 7
            ql = y & 0x7F
        if t == 63:
            tp = e + 5
    elif t == 51 or t == 64:
        iv = _u32(b, e)
        if t == 64:
            tp = e + 4
    elif t == 70 or t == 100 or t == 101 or t == 105 or t == 113:
        ql = b[e]
    elif t == 103:
        tp = e
    elif t == 104 or t == 106:
        iv = _u16(b, e)
    elif t == 107:
        iv = _u16(b, e)
        tp = e + 2
    elif t >= 120 and t <= 127:
        iv = _u16(b, e)  # name of file
        if t == 120:
            ql = b[e + 5]
        elif t == 121:
            ql = b[e + 6]
        elif t == 122 or t == 123 or t == 124:
            ql = b[e + 3]
        elif t == 126:
            ql = b[e + 5]
            tp = e + 6
        elif t == 127:
            tp = e + 2
    return fv, iv, q, s, ql, tp


# ---- schema -------------------------------------------------------------------------------
_LIST_STR = pa.list_(E._STR)
SCHEMA = E._schema(
    "iec104",
    E.PDU_COMMON
    + [
        pa.field("apci_type", E._STR),  # I, S or U
        pa.field("tx", pa.int32()),  # send sequence number N(S) (I-frames)
        pa.field("rx", pa.int32()),  # receive sequence number N(R) (I and S frames)
        pa.field("u_function", pa.int16()),  # U-frames: 0x01 STARTDT act ... 0x20 TESTFR con
        pa.field("u_function_name", E._STR),
        pa.field("type_id", pa.int16()),  # ASDU type identification
        pa.field("type_name", E._STR),
        pa.field("category", E._STR),  # by type id (I) or U function
        pa.field("sq", pa.bool_()),  # objects are a sequence (one IOA, then +1 each)
        pa.field("count", pa.int16()),  # number of objects announced (VSQ)
        pa.field("cot", pa.int16()),  # cause of transmission (6 bits)
        pa.field("cot_name", E._STR),
        pa.field("negative", pa.bool_()),  # P/N bit: negative confirmation
        pa.field("test", pa.bool_()),
        pa.field("originator_address", pa.int16()),
        pa.field("common_address", pa.int32()),
        # one element per information object decoded (the objects that fit in the APDU)
        pa.field("ioa", pa.list_(pa.int32())),
        pa.field("value", pa.list_(pa.float64())),  # measured / set-point values
        pa.field("value_int", pa.list_(pa.int64())),  # points, steps, bitstrings, counters
        pa.field("quality", pa.list_(pa.int16())),  # quality bits (see QUALITY_FLAGS)
        pa.field("quality_flags", _LIST_STR),  # the same, as text: "IV|NT"
        pa.field("select", pa.list_(pa.bool_())),  # commands / set-points: S/E bit
        pa.field("qualifier", pa.list_(pa.int16())),  # QU, QL, QOI, QCC, QRP, COI, QPM ...
        pa.field("time", pa.list_(pa.timestamp("ms", tz="UTC"))),  # CP56Time2a
    ]
    + E._REQUEST_MATCH,
    "IEC 60870-5-104 APDUs: APCI, ASDU header and information objects.",
)


# ---- dissector ----------------------------------------------------------------------------
def _col(v: np.ndarray, dtype) -> pa.Array:
    return pa.array(v.astype(dtype), mask=v < 0)


def _bool(v: np.ndarray) -> pa.Array:
    return pa.array(v > 0, mask=v < 0)


def _small_dict(codes: np.ndarray, size: int, namer) -> pa.DictionaryArray:
    """Small non-negative integer codes (-1 = null) → names, in one pass (no sort)."""
    indices = np.empty(codes.shape[0], np.int32)
    used = np.zeros(size, np.int32)
    n_used = _dict_indices(codes, used, indices)
    return pa.DictionaryArray.from_arrays(
        pa.array(indices, mask=indices < 0),
        pa.array([namer(int(u)) for u in used[:n_used]], type=pa.string()),
    )


@njit(cache=True, nogil=True)
def _dict_indices(codes, used, indices):
    """Dictionary indices of ``codes`` (first-seen order); ``used[:k]`` = the codes."""
    lut = np.full(used.shape[0], -1, np.int32)
    k = 0
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= used.shape[0]:
            indices[i] = -1
            continue
        x = lut[c]
        if x < 0:
            x = k
            lut[c] = k
            used[k] = c
            k += 1
        indices[i] = x
    return k


def _names(sem: Semantics, codes: np.ndarray, size: int = 256) -> pa.DictionaryArray:
    return _small_dict(codes, size, sem.name)


_QUALITY_TEXT: dict[int, str] = {}


def _quality_text(code: int) -> str:
    text = _QUALITY_TEXT.get(code)
    if text is None:
        text = "|".join(name for bit, name in QUALITY_FLAGS if code & bit)
        _QUALITY_TEXT[code] = text
    return text


def _category_of(code: int) -> str:
    sem, key = (U_FUNCTIONS, code - 256) if code >= 256 else (TYPE_IDS, code)
    m = sem.rows.get(key)
    return (m.category or "") if m is not None else ""


def _categories(type_id: np.ndarray, ufunc: np.ndarray) -> pa.DictionaryArray:
    """Category by type id (I-frames) or U function; null when neither has one."""
    codes = np.where(type_id >= 0, type_id, np.where(ufunc >= 0, 256 + ufunc, -1))
    known = _CATEGORY_KNOWN[np.clip(codes, 0, 511)] & (codes >= 0)
    return _small_dict(np.where(known, codes, -1), 512, _category_of)


_CATEGORY_KNOWN = np.array([_category_of(c) != "" for c in range(512)])


def _lists(offsets: pa.Array, values: pa.Array, null_rows: np.ndarray) -> pa.Array:
    return pa.ListArray.from_arrays(offsets, values, mask=pa.array(null_rows))


class Iec104Dissector(Dissector):
    name = "iec104"
    tables = {"iec104": SCHEMA}
    framers = (framing.IEC104,)
    semantics = (TYPE_IDS, U_FUNCTIONS, COTS)

    def __init__(self) -> None:
        self.matcher = RequestMatcher(width=1)

    def process(self, ctx: ChunkContext) -> dict[str, pa.RecordBatch]:
        idx = ctx.pdus(framing.IEC104)
        n = idx.shape[0]
        if n == 0:
            return {}
        env = ctx.pdu_envelope(idx)
        P = ctx.track.pdus
        in_arena, off, length = ctx.pdu_locations(idx)
        buf, arena = ctx.chunk.buf, ctx.track.arena
        out = np.empty((n, NCOL), dtype=np.int64)
        _fields(buf, arena, in_arena, off, length, ELEMENT_LENGTH, out)
        counts = out[:, NOBJ]
        starts = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        m = int(starts[-1])
        arrays = object_arrays(m)
        ioa, vf, vi, qual, sel, qlf, tms = arrays
        _objects(buf, arena, in_arena, off, out, ELEMENT_LENGTH, starts, *arrays)

        type_id = out[:, TYPE]
        has_asdu = out[:, CA] >= 0
        flags = np.where(has_asdu, TYPE_FLAGS[np.clip(type_id, 0, 255)], 0)
        offsets = pa.array(starts.astype(np.int32))
        quality_text = _small_dict(qual, 4096, _quality_text)

        matched, req_frame, req_ts = self._match(
            out, P[idx, T.P_FLOW], P[idx, T.P_FRAME], P[idx, T.P_TS]
        )
        batch = dict(env)
        batch.update(
            {
                "apci_type": _small_dict(out[:, APCI], 4, _APCI_NAMES.__getitem__),
                "tx": _col(out[:, TX], np.int32),
                "rx": _col(out[:, RX], np.int32),
                "u_function": _col(out[:, UFUNC], np.int16),
                "u_function_name": _names(U_FUNCTIONS, out[:, UFUNC], 64),
                "type_id": _col(type_id, np.int16),
                "type_name": _names(TYPE_IDS, type_id),
                "category": _categories(type_id, out[:, UFUNC]),
                "sq": _bool(out[:, SQ]),
                "count": _col(out[:, NUM], np.int16),
                "cot": _col(out[:, COT], np.int16),
                "cot_name": _names(COTS, out[:, COT], 64),
                "negative": _bool(out[:, NEG]),
                "test": _bool(out[:, TEST]),
                "originator_address": _col(out[:, OA], np.int16),
                "common_address": _col(out[:, CA], np.int32),
                "ioa": _lists(offsets, pa.array(ioa), ~has_asdu),
                "value": _lists(offsets, pa.array(vf), (flags & F_VALUE) == 0),
                "value_int": _lists(offsets, pa.array(vi), (flags & F_INT) == 0),
                "quality": _lists(offsets, pa.array(qual), (flags & F_QUALITY) == 0),
                "quality_flags": _lists(offsets, quality_text, (flags & F_QUALITY) == 0),
                "select": _lists(offsets, pa.array(sel.view(np.bool_)), (flags & F_SELECT) == 0),
                "qualifier": _lists(offsets, pa.array(qlf), (flags & F_QUALIFIER) == 0),
                "time": _lists(
                    offsets,
                    pa.array(tms, type=pa.timestamp("ms", tz="UTC"), mask=tms == NO_TIME),
                    (flags & F_TIME) == 0,
                ),
                **pairing_columns(matched, req_frame, req_ts, P[idx, T.P_TS]),
            }
        )
        bad = np.flatnonzero(out[:, STATUS] != OK)
        if bad.shape[0]:
            ctx.weird(
                take_envelope(env, bad),
                [WEIRD[int(s)] for s in out[bad, STATUS]],
                [_detail(out[k], int(length[k])) for k in bad],
                "iec104",
            )
        return {"iec104": pa.RecordBatch.from_pydict(batch, schema=SCHEMA)}

    def _match(self, out, flow, frame, ts):
        """Pair confirmations with activations (see the module docstring)."""
        n = out.shape[0]
        key = np.empty(n, np.int64)
        kind = np.empty(n, np.int8)
        _match_keys(out, key, kind)
        take = np.flatnonzero(kind >= 0)
        matched = np.zeros(n, bool)
        req_frame = np.zeros(n, np.int64)
        req_ts = np.zeros(n, np.int64)
        if take.shape[0] == 0:
            return matched, req_frame, req_ts
        m, rf, rts, _ = self.matcher.match(
            flow[take],
            key[take],
            kind[take] == 1,
            frame[take],
            ts[take],
            np.zeros((take.shape[0], 1), np.int64),
        )
        matched[take] = m
        req_frame[take] = rf
        req_ts[take] = rts
        return matched, req_frame, req_ts


@njit(cache=True, nogil=True, _nrt=False)
def _match_keys(out, key, kind):
    """Pairing key of each APDU and its kind: 1 request, 0 answer, -1 not paired.

    I-frames: (type id, common address, first IOA) + activation or deactivation group.
    U-frames: the function group (STARTDT, STOPDT, TESTFR).
    """
    for j in range(out.shape[0]):
        kind[j] = -1
        key[j] = 0
        if out[j, APCI] == APCI_I and out[j, CA] >= 0:
            cot = out[j, COT]
            if cot == 6:
                kind[j] = 1
            elif cot == 7 or cot == 10 or (cot >= 44 and cot <= 47):
                kind[j] = 0
            elif cot == 8:
                kind[j] = 1
            elif cot == 9:
                kind[j] = 0
            else:
                continue
            group = np.int64(1) << 48 if (cot == 8 or cot == 9) else np.int64(0)
            key[j] = (
                (out[j, TYPE] << 40) | (out[j, CA] << 24) | max(out[j, IOA0], np.int64(0)) | group
            )
        elif out[j, APCI] == APCI_U and out[j, STATUS] == OK:
            uf = out[j, UFUNC]
            kind[j] = 1 if (uf == 1 or uf == 4 or uf == 16) else 0
            key[j] = (np.int64(1) << 50) | (2 if uf >= 16 else (1 if uf >= 4 else 0))


def _detail(row: np.ndarray, length: int) -> str:
    kind = {APCI_I: "I", APCI_S: "S", APCI_U: "U"}.get(int(row[APCI]), "?")
    text = f"{kind}-frame, {length} bytes"
    if row[TYPE] >= 0:
        text += f", type {int(row[TYPE])}"
    if row[NUM] >= 0:
        text += f", {int(row[NUM])} objects announced"
        if row[STATUS] == SHORT_ASDU:
            text += f", {int(row[NOBJ])} fit"
    if row[UFUNC] >= 0:
        text += f", U function 0x{int(row[UFUNC]):02x}"
    return text


DISSECTOR = Iec104Dissector
