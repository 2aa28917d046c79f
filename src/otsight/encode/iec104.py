"""IEC 60870-5-104 encoders: APCI frames (I, S, U) and ASDUs with information objects.

The 104 profile is fixed: two-octet cause of transmission (cause, P/N and test bits, then
the originator address), two-octet common address, three-octet information object
address (IOA), all little endian.  Build an ASDU, then wrap it in an I-frame::

    asdu = m_me_nc_1(ca=1, points=[(2001, 49.98), (2002, 50.02)], cot=COT_SPONTANEOUS)
    apdu = i_frame(tx=5, rx=3, asdu=asdu)          # TCP port 2404 payload

Element helpers (``siq``, ``nva`` ... ``cp56time2a``) give the information elements
without an IOA; :func:`asdu` puts ``(ioa, element)`` pairs into an ASDU, in the
non-sequence form (an IOA per object) or, with ``sq=True``, the sequence form (one IOA,
then consecutive objects).  The typed helpers (``m_sp_na_1`` ...) do both steps.
Times are milliseconds since 1970-01-01 UTC.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "COT_ACTIVATION",
    "COT_ACTIVATION_CON",
    "COT_ACTIVATION_TERMINATION",
    "COT_BACKGROUND",
    "COT_DEACTIVATION",
    "COT_DEACTIVATION_CON",
    "COT_INITIALIZED",
    "COT_INTERROGATED",
    "COT_PERIODIC",
    "COT_REQUEST",
    "COT_SPONTANEOUS",
    "COT_UNKNOWN_CA",
    "COT_UNKNOWN_CAUSE",
    "COT_UNKNOWN_IOA",
    "COT_UNKNOWN_TYPE",
    "C_CS_NA_1",
    "C_DC_NA_1",
    "C_IC_NA_1",
    "C_RP_NA_1",
    "C_SC_NA_1",
    "C_SC_TA_1",
    "C_SE_NA_1",
    "C_SE_NB_1",
    "C_SE_NC_1",
    "DP_INDETERMINATE",
    "DP_OFF",
    "DP_ON",
    "MAX_ASDU",
    "M_DP_NA_1",
    "M_DP_TB_1",
    "M_EI_NA_1",
    "M_ME_NA_1",
    "M_ME_NB_1",
    "M_ME_NC_1",
    "M_ME_TF_1",
    "M_SP_NA_1",
    "M_SP_TB_1",
    "QDS_BL",
    "QDS_IV",
    "QDS_NT",
    "QDS_OV",
    "QDS_SB",
    "QOI_STATION",
    "QRP_GENERAL_RESET",
    "QRP_RESET_EVENTS",
    "START",
    "U_STARTDT_ACT",
    "U_STARTDT_CON",
    "U_STOPDT_ACT",
    "U_STOPDT_CON",
    "U_TESTFR_ACT",
    "U_TESTFR_CON",
    "apdu",
    "asdu",
    "c_cs_na_1",
    "c_dc_na_1",
    "c_ic_na_1",
    "c_rp_na_1",
    "c_sc_na_1",
    "c_sc_ta_1",
    "c_se_na_1",
    "c_se_nb_1",
    "c_se_nc_1",
    "cp56time2a",
    "dco",
    "diq",
    "i_frame",
    "m_dp_na_1",
    "m_dp_tb_1",
    "m_ei_na_1",
    "m_me_na_1",
    "m_me_nb_1",
    "m_me_nc_1",
    "m_me_tf_1",
    "m_sp_na_1",
    "m_sp_tb_1",
    "nva",
    "qos",
    "s_frame",
    "sco",
    "siq",
    "startdt",
    "stopdt",
    "testfr",
    "u_frame",
]

START = 0x68
MAX_ASDU = 249  # the APDU length octet counts 4 control octets + ASDU, max 253

# U-frame first control octet (function bit | 0x03)
U_STARTDT_ACT = 0x07
U_STARTDT_CON = 0x0B
U_STOPDT_ACT = 0x13
U_STOPDT_CON = 0x23
U_TESTFR_ACT = 0x43
U_TESTFR_CON = 0x83

# type identifications
M_SP_NA_1 = 1
M_DP_NA_1 = 3
M_ME_NA_1 = 9
M_ME_NB_1 = 11
M_ME_NC_1 = 13
M_SP_TB_1 = 30
M_DP_TB_1 = 31
M_ME_TF_1 = 36
C_SC_NA_1 = 45
C_DC_NA_1 = 46
C_SE_NA_1 = 48
C_SE_NB_1 = 49
C_SE_NC_1 = 50
C_SC_TA_1 = 58
M_EI_NA_1 = 70
C_IC_NA_1 = 100
C_CS_NA_1 = 103
C_RP_NA_1 = 105

# causes of transmission
COT_PERIODIC = 1
COT_BACKGROUND = 2
COT_SPONTANEOUS = 3
COT_INITIALIZED = 4
COT_REQUEST = 5
COT_ACTIVATION = 6
COT_ACTIVATION_CON = 7
COT_DEACTIVATION = 8
COT_DEACTIVATION_CON = 9
COT_ACTIVATION_TERMINATION = 10
COT_INTERROGATED = 20  # interrogated by station interrogation (21..36: groups 1..16)
COT_UNKNOWN_TYPE = 44
COT_UNKNOWN_CAUSE = 45
COT_UNKNOWN_CA = 46
COT_UNKNOWN_IOA = 47

# quality descriptor bits (QDS; SIQ/DIQ use the top four)
QDS_OV = 0x01
QDS_BL = 0x10
QDS_SB = 0x20
QDS_NT = 0x40
QDS_IV = 0x80

# double point states
DP_INDETERMINATE = 0
DP_OFF = 1
DP_ON = 2

QOI_STATION = 20  # qualifier of interrogation: station (global) interrogation
QRP_GENERAL_RESET = 1
QRP_RESET_EVENTS = 2  # reset pending information with time tag of the event buffer

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ---- APCI ---------------------------------------------------------------------------------


def apdu(control: bytes, asdu: bytes = b"") -> bytes:
    """Start octet, length, the four control octets and an optional ASDU."""
    if len(control) != 4:
        raise ValueError("the APCI has four control octets")
    if len(asdu) > MAX_ASDU:
        raise ValueError(f"ASDU of {len(asdu)} octets > {MAX_ASDU}")
    return bytes([START, 4 + len(asdu)]) + control + asdu


def i_frame(tx: int, rx: int, asdu: bytes) -> bytes:
    """An I-frame (information transfer) with send N(S) and receive N(R) numbers (15 bit)."""
    return apdu(struct.pack("<HH", (tx & 0x7FFF) << 1, (rx & 0x7FFF) << 1), asdu)


def s_frame(rx: int) -> bytes:
    """An S-frame acknowledging I-frames up to N(R) - 1."""
    return apdu(struct.pack("<HH", 0x0001, (rx & 0x7FFF) << 1))


def u_frame(function: int) -> bytes:
    """A U-frame; ``function`` is the first control octet (``U_STARTDT_ACT`` ...)."""
    if function not in (U_STARTDT_ACT, U_STARTDT_CON, U_STOPDT_ACT, U_STOPDT_CON,
                        U_TESTFR_ACT, U_TESTFR_CON):  # fmt: skip
        raise ValueError(f"not a U-frame function: {function:#04x}")
    return apdu(bytes([function, 0, 0, 0]))


def startdt(con: bool = False) -> bytes:
    """STARTDT act (controlling station) or con (controlled station)."""
    return u_frame(U_STARTDT_CON if con else U_STARTDT_ACT)


def stopdt(con: bool = False) -> bytes:
    """STOPDT act or con: stop data transfer on the connection."""
    return u_frame(U_STOPDT_CON if con else U_STOPDT_ACT)


def testfr(con: bool = False) -> bytes:
    """TESTFR act or con: link keep-alive test."""
    return u_frame(U_TESTFR_CON if con else U_TESTFR_ACT)


# ---- ASDU ---------------------------------------------------------------------------------


def asdu(
    type_id: int,
    cot: int,
    ca: int,
    objects: Sequence[tuple[int, bytes]],
    *,
    sq: bool = False,
    originator: int = 0,
    negative: bool = False,
    test: bool = False,
) -> bytes:
    """An ASDU: type, VSQ, cause (with P/N and T bits), originator, common address, objects.

    ``objects`` are ``(ioa, element)`` pairs.  With ``sq`` the IOAs must be consecutive and
    only the first is written (SQ = 1).
    """
    if not 0 <= len(objects) <= 127:
        raise ValueError("an ASDU holds at most 127 information objects")
    if sq and any(ioa != objects[0][0] + k for k, (ioa, _) in enumerate(objects)):
        raise ValueError("SQ=1 needs consecutive information object addresses")
    head = struct.pack(
        "<BBBBH",
        type_id,
        (0x80 if sq else 0) | len(objects),
        (0x80 if test else 0) | (0x40 if negative else 0) | (cot & 0x3F),
        originator,
        ca,
    )
    if sq and objects:
        body = _ioa(objects[0][0]) + b"".join(element for _, element in objects)
    else:
        body = b"".join(_ioa(ioa) + element for ioa, element in objects)
    return head + body


def _ioa(ioa: int) -> bytes:
    if not 0 <= ioa <= 0xFFFFFF:
        raise ValueError(f"IOA {ioa} does not fit three octets")
    return struct.pack("<I", ioa)[:3]


# ---- information elements -----------------------------------------------------------------


def siq(on: bool, quality: int = 0) -> bytes:
    """Single-point information with quality (SPI in bit 0; BL/SB/NT/IV on top)."""
    return bytes([(quality & 0xF0) | (1 if on else 0)])


def diq(state: int, quality: int = 0) -> bytes:
    """Double-point information with quality (DPI 0..3: DP_OFF = 1, DP_ON = 2)."""
    return bytes([(quality & 0xF0) | (state & 3)])


def nva(value: float) -> bytes:
    """Normalized value: -1.0 <= value < 1.0 as a signed 16-bit fraction (value * 32768)."""
    raw = round(value * 32768)
    if not -32768 <= raw <= 32767:
        raise ValueError(f"normalized value {value} is outside [-1, 1)")
    return struct.pack("<h", raw)


def cp56time2a(ms: int, invalid: bool = False, summer_time: bool = False) -> bytes:
    """Seven-octet time tag: ms within the minute, minute (IV), hour (SU), day of month
    with day of week (Monday = 1), month, year within the century."""
    t = _EPOCH + timedelta(milliseconds=ms)
    return struct.pack(
        "<HBBBBB",
        t.second * 1000 + t.microsecond // 1000,
        t.minute | (0x80 if invalid else 0),
        t.hour | (0x80 if summer_time else 0),
        t.day | (t.isoweekday() << 5),
        t.month,
        t.year % 100,
    )


def sco(on: bool, select: bool = False, qu: int = 0) -> bytes:
    """Single command: SCS (bit 0), qualifier of command QU (bits 2..6), S/E (bit 7)."""
    return bytes([(0x80 if select else 0) | ((qu & 0x1F) << 2) | (1 if on else 0)])


def dco(state: int, select: bool = False, qu: int = 0) -> bytes:
    """Double command: DCS (bits 0..1, 1 = off, 2 = on), QU, S/E."""
    return bytes([(0x80 if select else 0) | ((qu & 0x1F) << 2) | (state & 3)])


def qos(select: bool = False, ql: int = 0) -> bytes:
    """Qualifier of set-point command: QL (bits 0..6) and S/E (bit 7)."""
    return bytes([(0x80 if select else 0) | (ql & 0x7F)])


# ---- monitor direction --------------------------------------------------------------------

# An element builder takes a point's values after the IOA, then the quality, and returns
# the information element (``siq``, ``diq`` ... with a CP56Time2a appended for the timed
# types).
_Element = Callable[..., bytes]


def _monitor(type_id: int, element: _Element, name: str, doc: str) -> Callable[..., bytes]:
    """A typed monitor-direction builder ``(ca, points, cot, quality, *, sq, originator,
    test)``: ``points`` are ``(ioa, *values)`` tuples, each made an element by ``element``."""

    def build(
        ca: int,
        points: Sequence[tuple[Any, ...]],
        cot: int = COT_SPONTANEOUS,
        quality: int = 0,
        *,
        sq: bool = False,
        originator: int = 0,
        test: bool = False,
    ) -> bytes:
        elements = [(ioa, element(*values, quality)) for ioa, *values in points]
        return asdu(type_id, cot, ca, elements, sq=sq, originator=originator, test=test)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    return build


def _monitor_timed(type_id: int, element: _Element, name: str, doc: str) -> Callable[..., bytes]:
    """As :func:`_monitor` for the types with CP56Time2a (``(ioa, *values, time_ms)``
    points; events, never in the sequence form)."""

    def timed(value: Any, time_ms: int, quality: int) -> bytes:
        return element(value, quality) + cp56time2a(time_ms)

    points_builder = _monitor(type_id, timed, name, doc)

    def build(
        ca: int,
        points: Sequence[tuple[Any, ...]],
        cot: int = COT_SPONTANEOUS,
        quality: int = 0,
        *,
        originator: int = 0,
        test: bool = False,
    ) -> bytes:
        return points_builder(ca, points, cot, quality, originator=originator, test=test)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    return build


def _nva_qds(value: float, quality: int) -> bytes:
    return nva(value) + bytes([quality])


def _scaled_qds(value: int, quality: int) -> bytes:
    return struct.pack("<hB", value, quality)


def _float_qds(value: float, quality: int) -> bytes:
    return struct.pack("<fB", value, quality)


m_sp_na_1 = _monitor(
    M_SP_NA_1, siq, "m_sp_na_1", "Single points ``(ioa, on)`` without time (type 1)."
)
m_dp_na_1 = _monitor(
    M_DP_NA_1, diq, "m_dp_na_1", "Double points ``(ioa, state)`` without time (type 3)."
)
m_me_na_1 = _monitor(
    M_ME_NA_1, _nva_qds, "m_me_na_1",
    "Measured values, normalized ``(ioa, -1.0..1.0)``, with QDS (type 9).",
)  # fmt: skip
m_me_nb_1 = _monitor(
    M_ME_NB_1, _scaled_qds, "m_me_nb_1",
    "Measured values, scaled ``(ioa, -32768..32767)``, with QDS (type 11).",
)  # fmt: skip
m_me_nc_1 = _monitor(
    M_ME_NC_1, _float_qds, "m_me_nc_1",
    "Measured values, short floating point ``(ioa, value)``, with QDS (type 13).",
)  # fmt: skip
m_sp_tb_1 = _monitor_timed(
    M_SP_TB_1, siq, "m_sp_tb_1",
    "Single points with CP56Time2a ``(ioa, on, time_ms)`` (type 30, events).",
)  # fmt: skip
m_dp_tb_1 = _monitor_timed(
    M_DP_TB_1, diq, "m_dp_tb_1",
    "Double points with CP56Time2a ``(ioa, state, time_ms)`` (type 31, events).",
)  # fmt: skip
m_me_tf_1 = _monitor_timed(
    M_ME_TF_1, _float_qds, "m_me_tf_1",
    "Short floating point measured values with CP56Time2a ``(ioa, value, time_ms)``"
    " (type 36).",
)  # fmt: skip


def m_ei_na_1(ca: int, coi: int = 0, *, originator: int = 0) -> bytes:
    """End of initialization (type 70, COT 4) with the cause of initialization (0 = power
    on, 1 = local reset, 2 = remote reset; +0x80 after a parameter change)."""
    return asdu(M_EI_NA_1, COT_INITIALIZED, ca, [(0, bytes([coi]))], originator=originator)


# ---- control direction (and their confirmations) ------------------------------------------


def _command(
    type_id: int,
    ca: int,
    ioa: int,
    element: bytes,
    cot: int,
    originator: int,
    negative: bool,
    test: bool,
) -> bytes:
    return asdu(
        type_id, cot, ca, [(ioa, element)], originator=originator, negative=negative, test=test
    )


def _select_command(
    type_id: int, element: Callable[[Any, bool, int], bytes], name: str, doc: str
) -> Callable[..., bytes]:
    """A single or double command builder ``(ca, ioa, value, select, qu, cot, *,
    originator, negative, test)``; ``element`` makes the SCO / DCO."""

    def build(
        ca: int,
        ioa: int,
        value: Any,
        select: bool = False,
        qu: int = 0,
        cot: int = COT_ACTIVATION,
        *,
        originator: int = 0,
        negative: bool = False,
        test: bool = False,
    ) -> bytes:
        return _command(
            type_id, ca, ioa, element(value, select, qu), cot, originator, negative, test
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    return build


def _setpoint(
    type_id: int, pack: Callable[[Any], bytes], name: str, doc: str
) -> Callable[..., bytes]:
    """A set-point command builder ``(ca, ioa, value, select, ql, cot, *, originator,
    negative, test)``; ``pack`` encodes the value, QOS follows."""

    def build(
        ca: int,
        ioa: int,
        value: Any,
        select: bool = False,
        ql: int = 0,
        cot: int = COT_ACTIVATION,
        *,
        originator: int = 0,
        negative: bool = False,
        test: bool = False,
    ) -> bytes:
        element = pack(value) + qos(select, ql)
        return _command(type_id, ca, ioa, element, cot, originator, negative, test)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    return build


c_sc_na_1 = _select_command(
    C_SC_NA_1, sco, "c_sc_na_1",
    "Single command (type 45): select (S/E = 1) or execute; the outstation mirrors it with"
    " COT 7 (``negative`` for a refusal) and COT 10 when done.",
)  # fmt: skip
c_dc_na_1 = _select_command(
    C_DC_NA_1, dco, "c_dc_na_1", "Double command (type 46): ``state`` DP_OFF (1) or DP_ON (2)."
)
c_se_na_1 = _setpoint(
    C_SE_NA_1, nva, "c_se_na_1", "Set-point command, normalized value -1.0..1.0 (type 48)."
)
c_se_nb_1 = _setpoint(
    C_SE_NB_1, struct.Struct("<h").pack, "c_se_nb_1",
    "Set-point command, scaled value -32768..32767 (type 49).",
)  # fmt: skip
c_se_nc_1 = _setpoint(
    C_SE_NC_1, struct.Struct("<f").pack, "c_se_nc_1",
    "Set-point command, short floating point (type 50).",
)  # fmt: skip


def c_sc_ta_1(
    ca: int,
    ioa: int,
    on: bool,
    time_ms: int,
    select: bool = False,
    qu: int = 0,
    cot: int = COT_ACTIVATION,
    *,
    originator: int = 0,
    negative: bool = False,
    test: bool = False,
) -> bytes:
    """Single command with CP56Time2a (type 58)."""
    element = sco(on, select, qu) + cp56time2a(time_ms)
    return _command(C_SC_TA_1, ca, ioa, element, cot, originator, negative, test)


def c_ic_na_1(
    ca: int,
    qoi: int = QOI_STATION,
    cot: int = COT_ACTIVATION,
    *,
    originator: int = 0,
    negative: bool = False,
    test: bool = False,
) -> bytes:
    """Interrogation command (type 100, IOA 0): COT 6 asks, 7 confirms, 10 terminates;
    the answers in between carry COT 20 (station) or 21..36 (groups)."""
    return _command(C_IC_NA_1, ca, 0, bytes([qoi]), cot, originator, negative, test)


def c_cs_na_1(
    ca: int,
    time_ms: int,
    cot: int = COT_ACTIVATION,
    *,
    originator: int = 0,
    negative: bool = False,
    test: bool = False,
) -> bytes:
    """Clock synchronization command (type 103, IOA 0) carrying CP56Time2a."""
    return _command(C_CS_NA_1, ca, 0, cp56time2a(time_ms), cot, originator, negative, test)


def c_rp_na_1(
    ca: int,
    qrp: int = QRP_GENERAL_RESET,
    cot: int = COT_ACTIVATION,
    *,
    originator: int = 0,
    negative: bool = False,
    test: bool = False,
) -> bytes:
    """Reset process command (type 105, IOA 0): QRP 1 general reset of the process,
    2 reset of pending time-tagged events."""
    return _command(C_RP_NA_1, ca, 0, bytes([qrp]), cot, originator, negative, test)
