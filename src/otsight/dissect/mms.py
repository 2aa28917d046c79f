"""IEC 61850 / ISO 9506 MMS over ISO-on-TCP (TPKT, COTP, ISO 8327 session, ISO 8823
presentation, ISO 8650 ACSE), recognised by content.

Every PDU of the TPKT framer is probed once by a numba kernel, the same PDUs the S7comm
dissector reads (each takes what is its own; S7 never sees MMS as S7, and this dissector
never reports S7 PDUs):

* COTP DT whose user data is an ISO 8327 SPDU: Give-Tokens + Data-Transfer (the kernel
  concatenation every MMS stack sends), or Connect / Accept / Refuse / Finish / Disconnect /
  Abort carrying user data. The presentation layer is walked to the PDV of its user data:
  fully-encoded-data (in DT, FN, DN) or the CP / CPA / CPR / ARU PPDU around it (CN, AC, RF,
  AB). Inside: an ACSE APDU (AARQ, AARE, RLRQ, RLRE, ABRT) — whose user-information of an
  AARQ / AARE carries the MMS initiate PDU — or an MMS PDU directly.
* COTP DT whose user data is an MMS PDU itself (no session or presentation: some tools
  send that; Wireshark's heuristic takes it too): accepted only when the first element is
  an MMS PDU tag whose length fills the TSDU exactly.
* A TSDU split over several DT TPDUs (end-of-TSDU bit clear, large PDUs beyond the
  negotiated TPDU size) is put together per flow and direction and probed when its last
  TPDU arrives.

The kernel hands over the PDU type, invoke id, confirmed / unconfirmed service and the
offsets of the ACSE and MMS PDUs; names, values and parameters are decoded in plain
Python (few per second even in a busy substation): object names of read / write /
attributes / named variable lists / information reports, domain and program invocation of
domain and program services, file names, getNameList class / scope / answers, identify
answers (vendor, model, revision), written / read / reported values with data access errors,
service errors, rejects, initiate parameters, and the ACSE application context, AP titles,
AE qualifiers, result and authentication mechanism.

Confirmed requests and their responses or errors are paired per flow by invoke id (cancel,
initiate and conclude in their own spaces); responses carry ``request_frame`` / ``latency``
and error PDUs the request's service. Anything malformed becomes a ``weird`` row with a
reason; decoding never raises.

Table: ``mms`` (one row per MMS PDU, and per ACSE APDU that carries none: release, abort).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.capture import _track as T
from otsight.capture import framing
from otsight.capture._prefetch import prefetch
from otsight.dissect import _ber
from otsight.dissect.base import (
    ChunkContext,
    Dissector,
    Meaning,
    Semantics,
    pairing_columns,
    take_envelope,
)
from otsight.dissect.matching import RequestMatcher

# ---- semantics (ISO 9506-2 / Wireshark 4.0 packet-mms value strings) -------------------------
PDU_TYPES = Semantics(
    "mms",
    "pdu_type",
    {
        0: ("confirmed_request", None),
        1: ("confirmed_response", None),
        2: ("confirmed_error", None),
        3: ("unconfirmed", None),
        4: ("reject", None),
        5: ("cancel_request", "control"),
        6: ("cancel_response", None),
        7: ("cancel_error", None),
        8: ("initiate_request", "session", ["T0886"]),
        9: ("initiate_response", "session"),
        10: ("initiate_error", "session"),
        11: ("conclude_request", "session"),
        12: ("conclude_response", "session"),
        13: ("conclude_error", "session"),
    },
)

_DOWNLOAD = ("program", ["T0843"])
_UPLOAD = ("program", ["T0845"])
_EVENT_CONFIG = ("write", ["T0838"])

SERVICES = Semantics(
    "mms",
    "service",
    {
        0: ("status", "diagnostic", ["T0888"]),
        1: ("get_name_list", "discovery", ["T0861", "T0888"]),
        2: ("identify", "discovery", ["T0888"]),
        3: ("rename", "write", ["T0836"]),
        4: ("read", "read", ["T0801"]),
        5: ("write", "write", ["T0855", "T0836"]),
        6: ("get_variable_access_attributes", "discovery", ["T0861"]),
        7: ("define_named_variable", "write", ["T0836"]),
        8: ("define_scattered_access", "write", ["T0836"]),
        9: ("get_scattered_access_attributes", "discovery", ["T0861"]),
        10: ("delete_variable_access", "write", ["T0836"]),
        11: ("define_named_variable_list", "write"),  # datasets of IEC 61850 reports
        12: ("get_named_variable_list_attributes", "discovery", ["T0861"]),
        13: ("delete_named_variable_list", "write"),
        14: ("define_named_type", "write"),
        15: ("get_named_type_attributes", "discovery", ["T0861"]),
        16: ("delete_named_type", "write"),
        17: ("input", "read"),
        18: ("output", "write"),
        19: ("take_control", "control"),
        20: ("relinquish_control", "control"),
        21: ("define_semaphore", "write"),
        22: ("delete_semaphore", "write"),
        23: ("report_semaphore_status", "diagnostic"),
        24: ("report_pool_semaphore_status", "diagnostic"),
        25: ("report_semaphore_entry_status", "diagnostic"),
        26: ("initiate_download_sequence", *_DOWNLOAD),
        27: ("download_segment", *_DOWNLOAD),
        28: ("terminate_download_sequence", *_DOWNLOAD),
        29: ("initiate_upload_sequence", *_UPLOAD),
        30: ("upload_segment", *_UPLOAD),
        31: ("terminate_upload_sequence", *_UPLOAD),
        32: ("request_domain_download", *_DOWNLOAD),
        33: ("request_domain_upload", *_UPLOAD),
        34: ("load_domain_content", *_DOWNLOAD),
        35: ("store_domain_content", *_UPLOAD),
        36: ("delete_domain", "program", ["T0843", "T0809"]),
        37: ("get_domain_attributes", "discovery", ["T0888"]),
        38: ("create_program_invocation", "program", ["T0843", "T0821"]),
        39: ("delete_program_invocation", "program", ["T0843", "T0858"]),
        40: ("start", "control", ["T0858"]),
        41: ("stop", "control", ["T0858", "T0816"]),
        42: ("resume", "control", ["T0858"]),
        43: ("reset", "control", ["T0858", "T0816"]),
        44: ("kill", "control", ["T0858", "T0816"]),
        45: ("get_program_invocation_attributes", "discovery", ["T0868", "T0888"]),
        46: ("obtain_file", "program", ["T0843", "T0867"]),
        47: ("define_event_condition", *_EVENT_CONFIG),
        48: ("delete_event_condition", "write", ["T0838", "T0878"]),
        49: ("get_event_condition_attributes", "discovery"),
        50: ("report_event_condition_status", "diagnostic"),
        51: ("alter_event_condition_monitoring", "write", ["T0838", "T0878"]),
        52: ("trigger_event", "control", ["T0855"]),
        53: ("define_event_action", *_EVENT_CONFIG),
        54: ("delete_event_action", *_EVENT_CONFIG),
        55: ("get_event_action_attributes", "discovery"),
        56: ("report_event_action_status", "diagnostic"),
        57: ("define_event_enrollment", *_EVENT_CONFIG),
        58: ("delete_event_enrollment", "write", ["T0838", "T0878"]),
        59: ("alter_event_enrollment", *_EVENT_CONFIG),
        60: ("report_event_enrollment_status", "diagnostic"),
        61: ("get_event_enrollment_attributes", "discovery"),
        62: ("acknowledge_event_notification", "control", ["T0878"]),
        63: ("get_alarm_summary", "read", ["T0801"]),
        64: ("get_alarm_enrollment_summary", "read", ["T0801"]),
        65: ("read_journal", "read", ["T0801"]),
        66: ("write_journal", "write"),
        67: ("initialize_journal", "write", ["T0872"]),
        68: ("report_journal_status", "diagnostic"),
        69: ("create_journal", "write"),
        70: ("delete_journal", "write", ["T0872"]),
        71: ("get_capability_list", "discovery", ["T0888"]),
        72: ("file_open", "read", ["T0882"]),
        73: ("file_read", "read", ["T0882"]),
        74: ("file_close", "read"),
        75: ("file_rename", "write"),
        76: ("file_delete", "write", ["T0809"]),
        77: ("file_directory", "discovery", ["T0888"]),
    },
)

UNCONFIRMED_SERVICES = Semantics(
    "mms",
    "unconfirmed_service",
    {
        0: ("information_report", "read", ["T0856"]),  # a forged report spoofs the view
        1: ("unsolicited_status", "diagnostic"),
        2: ("event_notification", "diagnostic", ["T0856"]),
    },
)

OBJECT_CLASSES = Semantics(
    "mms",
    "object_class",
    {
        0: "named_variable",
        1: "scattered_access",
        2: "named_variable_list",
        3: "named_type",
        4: "semaphore",
        5: "event_condition",
        6: "event_action",
        7: "event_enrollment",
        8: "journal",
        9: "domain",
        10: "program_invocation",
        11: "operator_station",
        12: "data_exchange",
        13: "access_control_list",
    },
)

DATA_ACCESS_ERRORS = Semantics(
    "mms",
    "data_access_error",
    {
        0: "object_invalidated",
        1: "hardware_fault",
        2: "temporarily_unavailable",
        3: "object_access_denied",
        4: "object_undefined",
        5: "invalid_address",
        6: "type_unsupported",
        7: "type_inconsistent",
        8: "object_attribute_inconsistent",
        9: "object_access_unsupported",
        10: "object_non_existent",
        11: "object_value_invalid",
    },
)

ERROR_CLASSES = Semantics(
    "mms",
    "error_class",
    {
        0: "vmd_state",
        1: "application_reference",
        2: "definition",
        3: "resource",
        4: "service",
        5: "service_preempt",
        6: "time_resolution",
        7: "access",
        8: "initiate",
        9: "conclude",
        10: "cancel",
        11: "file",
        12: "others",
    },
)

REJECT_TYPES = Semantics(
    "mms",
    "reject_type",
    {
        1: "confirmed_request_pdu",
        2: "confirmed_response_pdu",
        3: "confirmed_error_pdu",
        4: "unconfirmed_pdu",
        5: "pdu_error",
        6: "cancel_request_pdu",
        7: "cancel_response_pdu",
        8: "cancel_error_pdu",
        9: "conclude_request_pdu",
        10: "conclude_response_pdu",
        11: "conclude_error_pdu",
    },
)

ACSE_PDUS = Semantics(
    "mms",
    "acse_pdu",
    {
        0: ("aarq", "session", ["T0886"]),  # association request
        1: ("aare", "session"),
        2: ("rlrq", "session"),  # release
        3: ("rlre", "session"),
        4: ("abrt", "session"),
    },
)

ACSE_RESULTS = Semantics(
    "mms", "acse_result", {0: "accepted", 1: "rejected_permanent", 2: "rejected_transient"}
)

SPDU_TYPES = Semantics(
    "mms",
    "spdu_type",
    {
        1: "data_transfer",
        2: "please_tokens",
        8: "not_finished",
        9: "finish",
        10: "disconnect",
        12: "refuse",
        13: "connect",
        14: "accept",
        15: "connect_data_overflow",
        16: "overflow_accept",
        25: "abort",
        26: "abort_accept",
    },
)

APPLICATION_CONTEXTS = {
    "1.0.9506.2.3": "mms",
    "1.0.9506.2.1": "mms_abstract_syntax_v1",
    "1.2.840.10034.2.1": "iccp_tase2_v1996",  # ICCP / TASE.2
}

# ---- kernel -------------------------------------------------------------------------------
(KIND, EOT, DT_OFF, SPDU, CTX, ACSE_OFF, ACSE_END, MMS_OFF, MMS_END, PDU) = range(10)
(INVOKE, SERVICE, UNCONF, STATUS) = range(10, 14)
NCOL = 14

K_NONE, K_ISO, K_BARE, K_SEGMENT = 0, 1, 2, 3

OK = 0
SES_BAD = 1  # session SPDU lengths or parameters inconsistent
PRES_BAD = 2  # presentation PPDU not decodable
ACSE_BAD = 3
MMS_BAD = 4  # MMS PDU header malformed
MMS_CUT = 5  # MMS PDU longer than the TSDU
MMS_UNKNOWN = 6  # not an MMS PDU tag where one was expected
WEIRD = {
    SES_BAD: "iso_session_malformed",
    PRES_BAD: "iso_presentation_malformed",
    ACSE_BAD: "acse_malformed",
    MMS_BAD: "mms_malformed",
    MMS_CUT: "mms_truncated",
    MMS_UNKNOWN: "mms_unknown_pdu",
}

_SESSION_USER_DATA = (8, 9, 10, 12, 13, 14, 15, 16, 25, 26)


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
def _tag(b, p, end):
    """(identifier byte, tag number, offset of the length); number -1 if unreadable."""
    if p >= end:
        return np.int64(-1), np.int64(-1), p
    first = np.int64(b[p])
    num = first & 0x1F
    q = p + 1
    if num != 0x1F:
        return first, num, q
    num = np.int64(0)
    for _ in range(4):
        if q >= end:
            return first, np.int64(-1), q
        d = np.int64(b[q])
        q += 1
        num = (num << 7) | (d & 0x7F)
        if d < 0x80:
            return first, num, q
    return first, np.int64(-1), q


@njit(cache=True, inline="always")
def _uint(b, s, e):
    """BER INTEGER content as a non-negative int64 (-1 if empty, negative or too long)."""
    n = e - s
    if n <= 0 or n > 9 or (n == 9 and b[s] != 0) or b[s] >= 0x80:
        return np.int64(-1)
    v = np.int64(0)
    for i in range(n):
        v = (v << 8) | np.int64(b[s + i])
    return v


@njit(cache=True, inline="always")
def _child(b, s, e, ident):
    """(content start, end) of the first child with identifier byte ``ident`` in b[s:e]."""
    r = s
    while r < e:
        first, num, q = _tag(b, r, e)
        if num < 0:
            return np.int64(-1), np.int64(-1)
        cs, ce = _len(b, q, e)
        if cs < 0 or ce > e:
            return np.int64(-1), np.int64(-1)
        if first == ident:
            return cs, ce
        r = ce
    return np.int64(-1), np.int64(-1)


@njit(cache=True, inline="always")
def _mms_ident_ok(first):
    """Is ``first`` the identifier of an MMS PDU (MMSpdu CHOICE [0]..[13])?"""
    if (first >> 6) != 2:
        return False
    num = first & 0x1F
    cons = (first >> 5) & 1
    if num <= 4 or num == 7 or (num >= 8 and num <= 10) or num == 13:
        return cons == 1
    if num == 5 or num == 6 or num == 11 or num == 12:
        return cons == 0
    return False


@njit(cache=True, inline="always")
def _mms(b, s, end, out, j):
    """Header of the MMS PDU at ``s``: type, invoke id, service."""
    first = np.int64(b[s])
    if not _mms_ident_ok(first):
        out[j, STATUS] = MMS_UNKNOWN
        return
    pdu = first & 0x1F
    out[j, PDU] = pdu
    cs, ce = _len(b, s + 1, end)
    if cs < 0:
        out[j, STATUS] = MMS_BAD
        return
    out[j, MMS_OFF] = s
    out[j, MMS_END] = min(ce, end)
    if ce > end:
        out[j, STATUS] = MMS_CUT
        ce = end
    if pdu == 5 or pdu == 6:
        out[j, INVOKE] = _uint(b, cs, ce)
        return
    if pdu >= 8:
        return
    r = cs
    seen_invoke = False
    while r < ce:
        ident, num, q = _tag(b, r, ce)
        if num < 0:
            out[j, STATUS] = MMS_BAD
            return
        fs, fe = _len(b, q, ce)
        if fs < 0 or fe > ce:
            if out[j, STATUS] == OK:
                out[j, STATUS] = MMS_CUT if fe > ce and fs >= 0 else MMS_BAD
            if fs < 0:
                return
        cls = ident >> 6
        if pdu <= 1:
            if ident == 0x02 and not seen_invoke:
                out[j, INVOKE] = _uint(b, fs, min(fe, ce))
                seen_invoke = True
            elif cls == 2 and seen_invoke:
                out[j, SERVICE] = num
                return
        elif pdu == 3:
            if cls == 2:
                out[j, UNCONF] = num
                return
        else:  # confirmed-Error, reject, cancel-Error: [0] originalInvokeID
            if ident == 0x80:
                out[j, INVOKE] = _uint(b, fs, min(fe, ce))
                return
        r = fe


@njit(cache=True, inline="always")
def _pdv(b, s, e, out, j):
    """Inner PDU of the first PDV-list of fully-encoded-data content b[s:e]:
    (start, end) of the presentation data value, or (-1, -1)."""
    ls, le = _child(b, s, e, 0x30)
    if ls < 0:
        return np.int64(-1), np.int64(-1)
    ctx_s, ctx_e = _child(b, ls, le, 0x02)
    if ctx_s >= 0:
        out[j, CTX] = _uint(b, ctx_s, ctx_e)
    vs, ve = _child(b, ls, le, 0xA0)  # single-ASN1-type
    if vs < 0:
        vs, ve = _child(b, ls, le, 0x81)  # octet-aligned
    return vs, ve


@njit(cache=True, inline="always")
def _presentation(b, s, e, out, j):
    """The presentation data value inside user data b[s:e] (CP, CPA, CPR, ARU or
    fully-encoded-data): (start, end) or (-1, -1)."""
    first = np.int64(b[s])
    cs, ce = _len(b, s + 1, e)
    if cs < 0 or ce > e:
        return np.int64(-1), np.int64(-1)
    if first == 0x61:
        return _pdv(b, cs, ce, out, j)
    if first == 0x31 or first == 0x30 or first == 0xA0:
        ns, ne = _child(b, cs, ce, 0xA2)  # normal-mode-parameters of CP / CPA
        if ns < 0:
            ns, ne = cs, ce
        us, ue = _child(b, ns, ne, 0x61)
        if us >= 0:
            return _pdv(b, us, ue, out, j)
    return np.int64(-1), np.int64(-1)


@njit(cache=True, inline="always")
def _spdu(b, s, end):
    """(SPDU type, parameters start, parameters end) at ``s``; type -1 when the header does
    not fit."""
    if s + 2 > end:
        return np.int64(-1), np.int64(-1), np.int64(-1)
    si = np.int64(b[s])
    li = np.int64(b[s + 1])
    ps = s + 2
    if li == 0xFF:
        if s + 4 > end:
            return np.int64(-1), np.int64(-1), np.int64(-1)
        li = _b16(b, s + 2)
        ps = s + 4
    return si, ps, ps + li


@njit(cache=True, inline="always")
def _session(b, s, end, out, j):
    """Walk the ISO 8327 SPDU(s) at ``s``: KIND K_ISO and the user data's inner PDU, or
    leave KIND K_NONE when this is not a session SPDU."""
    si, ps, pe = _spdu(b, s, end)
    if si < 0:
        return
    us = np.int64(-1)
    ue = np.int64(-1)
    if si == 1 or si == 2:  # Give / Please Tokens, then Data Transfer (or DT alone)
        if pe > end:
            return
        if pe < end and b[pe] == 1:
            si2, ps2, pe2 = _spdu(b, pe, end)
            if si2 < 0 or pe2 > end:
                return
            us, ue = pe2, end
            si = 1
        elif si == 1 and pe < end and (b[pe] == 0x61 or b[pe] == 0x40):
            us, ue = pe, end
        else:
            return
    else:
        known = False
        for k in _SESSION_USER_DATA:
            if si == k:
                known = True
        if not known:
            return
        if pe > end:
            out[j, KIND] = K_ISO
            out[j, SPDU] = si
            out[j, STATUS] = SES_BAD
            return
        r = ps
        while r < pe:  # parameter (group) units: code, length (1 or 3 bytes), value
            if r + 2 > pe:
                out[j, KIND] = K_ISO
                out[j, SPDU] = si
                out[j, STATUS] = SES_BAD
                return
            code = np.int64(b[r])
            ln = np.int64(b[r + 1])
            vs = r + 2
            if ln == 0xFF:
                if r + 4 > pe:
                    out[j, KIND] = K_ISO
                    out[j, SPDU] = si
                    out[j, STATUS] = SES_BAD
                    return
                ln = _b16(b, r + 2)
                vs = r + 4
            if vs + ln > pe:
                out[j, KIND] = K_ISO
                out[j, SPDU] = si
                out[j, STATUS] = SES_BAD
                return
            if code == 193 or code == 194:  # session user data / extended user data
                us, ue = vs, vs + ln
            r = vs + ln
    out[j, KIND] = K_ISO
    out[j, SPDU] = si
    if us < 0 or us >= ue:
        return  # a session SPDU without user data (e.g. an empty Accept)
    vs, ve = _presentation(b, us, ue, out, j)
    if vs < 0:
        out[j, STATUS] = PRES_BAD
        return
    if vs >= ve:
        out[j, STATUS] = PRES_BAD
        return
    first = np.int64(b[vs])
    if first >= 0x60 and first <= 0x64:  # ACSE APDU
        cs, ce = _len(b, vs + 1, ve)
        if cs < 0 or ce > ve:
            out[j, STATUS] = ACSE_BAD
            return
        out[j, ACSE_OFF] = vs
        out[j, ACSE_END] = ce
        if first == 0x60 or first == 0x61:
            ui_s, ui_e = _child(b, cs, ce, 0xBE)  # user-information
            if ui_s < 0:
                return
            xs, xe = _child(b, ui_s, ui_e, 0x28)  # EXTERNAL
            if xs < 0:
                out[j, STATUS] = ACSE_BAD
                return
            ms, me = _child(b, xs, xe, 0xA0)  # encoding: single-ASN1-type
            if ms < 0:
                ms, me = _child(b, xs, xe, 0x81)
            if ms < 0 or ms >= me:
                out[j, STATUS] = ACSE_BAD
                return
            _mms(b, ms, me, out, j)
        return
    _mms(b, vs, ve, out, j)


PREFETCH_AHEAD = 16  # PDUs ahead whose first bytes are asked for


@njit(cache=True, nogil=True, _nrt=False)
def _probe(buf, arena, in_arena, off, length, out):
    """Recognise MMS in TPKT PDUs by content (COTP DT → session → presentation → ACSE → MMS,
    or an MMS PDU right in the DT) and read its header."""
    n = off.shape[0]
    for j in range(n):
        # the PDUs' first bytes are far apart and out of the cache: ask for them early
        ahead = j + PREFETCH_AHEAD
        if ahead < n:
            prefetch(arena if in_arena[ahead] else buf, off[ahead])
        for c in range(NCOL):
            out[j, c] = -1
        out[j, KIND] = K_NONE
        out[j, STATUS] = OK
        b = arena if in_arena[j] else buf
        p = off[j]
        end = p + length[j]
        if length[j] < 7:
            continue
        li = np.int64(b[p + 4])
        if li < 2 or p + 5 + li > end or (np.int64(b[p + 5]) & 0xF0) != 0xF0:
            continue  # not a COTP DT (connection management is the cotp table's)
        out[j, EOT] = np.int64(b[p + 6]) >> 7
        s = p + 5 + li
        out[j, DT_OFF] = s
        if s >= end:
            continue
        if out[j, EOT] == 0:
            out[j, KIND] = K_SEGMENT  # the dissector puts the TSDU together
            continue
        first = np.int64(b[s])
        if (first >> 6) == 2:
            # an MMS PDU right in the DT: a valid PDU tag whose length fills the TSDU
            if _mms_ident_ok(first):
                cs, ce = _len(b, s + 1, end)
                if cs >= 0 and ce == end:
                    out[j, KIND] = K_BARE
                    _mms(b, s, end, out, j)
            continue
        _session(b, s, end, out, j)


# ---- schema -----------------------------------------------------------------------------------
_STR = E._STR

SCHEMA = E._schema(
    "mms",
    E.PDU_COMMON
    + [
        pa.field("carried_by", _STR),  # "session" (ISO 8327 + 8823) or "cotp" (bare MMS)
        pa.field("spdu_type", pa.int16()),
        pa.field("spdu_type_name", _STR),
        pa.field("presentation_context", pa.int16()),
        pa.field("is_request", pa.bool_()),
        pa.field("pdu_type", pa.int16()),  # MMSpdu choice (null: an ACSE APDU only)
        pa.field("pdu_type_name", _STR),
        pa.field("invoke_id", pa.int64()),
        pa.field("service", pa.int16()),  # confirmed service (errors: the request's)
        pa.field("service_name", _STR),
        pa.field("unconfirmed_service", pa.int16()),
        pa.field("unconfirmed_service_name", _STR),
        pa.field("category", _STR),
        pa.field("techniques", pa.list_(_STR)),
        # objects
        pa.field("object_names", pa.list_(pa.string())),  # "domain/item" or "item" (VMD)
        pa.field("domain", pa.string()),  # domain services, getNameList scope
        pa.field("program_invocation", pa.string()),
        pa.field("file_name", pa.string()),
        pa.field("object_class", pa.int16()),  # getNameList
        pa.field("object_class_name", _STR),
        pa.field("object_scope", _STR),  # vmd / domain / aa
        pa.field("identifiers", pa.list_(pa.string())),  # getNameList answer
        pa.field("more_follows", pa.bool_()),
        # values
        pa.field("data_count", pa.int32()),  # values written / results read or reported
        pa.field("data", pa.list_(pa.string())),  # 'type:value' per value (first 256)
        pa.field("data_access_errors", pa.list_(pa.int16())),
        pa.field("data_access_error_names", pa.list_(_STR)),
        # errors
        pa.field("error_class", pa.int16()),
        pa.field("error_class_name", _STR),
        pa.field("error_code", pa.int32()),
        pa.field("reject_type", pa.int16()),
        pa.field("reject_type_name", _STR),
        pa.field("reject_code", pa.int32()),
        # identify answer
        pa.field("vendor_name", pa.string()),
        pa.field("model_name", pa.string()),
        pa.field("revision", pa.string()),
        # initiate
        pa.field("local_detail", pa.int64()),
        pa.field("max_serv_outstanding_calling", pa.int32()),
        pa.field("max_serv_outstanding_called", pa.int32()),
        pa.field("data_structure_nesting_level", pa.int32()),
        pa.field("version_number", pa.int16()),
        pa.field("parameter_cbb", pa.string()),  # hex of the bit string
        pa.field("services_supported", pa.string()),
        # ACSE
        pa.field("acse_pdu", _STR),
        pa.field("application_context", _STR),  # OID, e.g. 1.0.9506.2.3 (MMS)
        pa.field("application_context_name", _STR),
        pa.field("acse_result", pa.int16()),
        pa.field("acse_result_name", _STR),
        pa.field("acse_reason", pa.int16()),  # release / abort reason or source
        pa.field("calling_ap_title", _STR),
        pa.field("calling_ae_qualifier", pa.int64()),
        pa.field("called_ap_title", _STR),  # AARE: the responding AP title
        pa.field("called_ae_qualifier", pa.int64()),
        pa.field("auth_mechanism", _STR),  # OID; 2.2.3.1 is a password
    ]
    + E._REQUEST_MATCH,
    "IEC 61850 / ISO 9506 MMS over ISO-on-TCP (with its ACSE association), one row per PDU.",
)


# ---- Python decoding of the rich parts -------------------------------------------------------
class _Rows:
    """Column values gathered row by row (only a few columns are set per row)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.cols: dict[str, dict[int, Any]] = {}

    def set(self, k: int, name: str, value: Any) -> None:
        if value is not None:
            self.cols.setdefault(name, {})[k] = value

    def get(self, name: str, k: int, default: Any = None) -> Any:
        return self.cols.get(name, {}).get(k, default)

    def column(self, name: str, typ: pa.DataType) -> pa.Array:
        got = self.cols.get(name)
        if got and pa.types.is_integer(typ):  # a value the column cannot hold is left out
            got = {k: v for k, v in got.items() if _fits(v, typ)}
        elif got and pa.types.is_list(typ) and pa.types.is_integer(typ.value_type):
            got = {k: [x for x in v if _fits(x, typ.value_type)] for k, v in got.items()}
        if not got:
            return pa.nulls(self.n, typ)
        pos = np.full(self.n, -1, np.int64)
        keys = list(got)
        pos[keys] = np.arange(len(keys))
        small = pa.array([got[k] for k in keys], typ)
        return small.take(pa.array(pos, mask=pos < 0))


def _fits(v: Any, typ: pa.DataType) -> bool:
    info = np.iinfo(typ.to_pandas_dtype())
    return isinstance(v, int) and info.min <= v <= info.max


def _children(data: bytes, t: _ber.Tlv) -> list[_ber.Tlv]:
    items, _ok = _ber.children(data, t[3], t[4])
    return items


def _object_name(data: bytes, t: _ber.Tlv) -> str | None:
    """ObjectName CHOICE: vmd-specific [0], domain-specific [1], aa-specific [2]."""
    cls, _cons, num, s, e = t
    if cls != 2:
        return None
    if num == 0:
        return _ber.text(data[s:e])
    if num == 2:
        return "@aa/" + _ber.text(data[s:e])
    if num == 1:
        parts, _ok = _ber.children(data, s, e)
        if len(parts) >= 2:
            dom, item = parts[0], parts[1]
            return f"{_ber.text(data[dom[3] : dom[4]])}/{_ber.text(data[item[3] : item[4]])}"
        return None
    return None


def _names_in_vas(data: bytes, t: _ber.Tlv, names: list[str]) -> None:
    """ObjectNames of a VariableAccessSpecification: listOfVariable [0] / variableListName [1]."""
    if t[0] != 2:
        return
    if t[2] == 1:  # variableListName: explicit wrapper around the ObjectName CHOICE
        for inner in _children(data, t)[:1]:
            nm = _object_name(data, inner)
            if nm is not None:
                names.append(nm)
    elif t[2] == 0:
        _names_in_list_of_variable(data, t, names)


def _names_in_list_of_variable(data: bytes, t: _ber.Tlv, names: list[str]) -> None:
    for item in _children(data, t):  # SEQUENCE { variableSpecification, alternateAccess }
        for spec in _children(data, item)[:1]:
            if spec[0] == 2 and spec[2] == 0:  # name [0]: explicit ObjectName
                for inner in _children(data, spec)[:1]:
                    nm = _object_name(data, inner)
                    if nm is not None:
                        names.append(nm)


def _results(rows: _Rows, k: int, data: bytes, t: _ber.Tlv) -> str | None:
    """listOfAccessResult: failure [0] DataAccessError, or success Data."""
    items = _children(data, t)
    errors = [_ber.to_int(data[x[3] : x[4]]) for x in items if x[0] == 2 and x[2] == 0]
    values = [x for x in items if not (x[0] == 2 and x[2] == 0)]
    rows.set(k, "data_count", len(items))
    rows.set(k, "data_access_errors", [e for e in errors if e is not None] or None)
    return _values(rows, k, data, values)


def _values(rows: _Rows, k: int, data: bytes, items: list[_ber.Tlv]) -> str | None:
    _types, texts, problem = _ber.data_list(data, items)
    rows.set(k, "data", texts)
    return problem


def _service_error(rows: _Rows, k: int, data: bytes, t: _ber.Tlv) -> None:
    """ServiceError: errorClass [0] CHOICE { class [n] INTEGER }."""
    for part in _children(data, t):
        if part[0] == 2 and part[2] == 0:
            for cls in _children(data, part)[:1]:
                rows.set(k, "error_class", cls[2])
                rows.set(k, "error_code", _ber.to_int(data[cls[3] : cls[4]]))


def _identifier(data: bytes, t: _ber.Tlv | None) -> str | None:
    return None if t is None else _ber.text(data[t[3] : t[4]])


def _file_name(data: bytes, t: _ber.Tlv) -> str:
    """FileName ::= SEQUENCE OF GraphicString."""
    return "".join(_ber.text(data[x[3] : x[4]]) for x in _children(data, t))


_DOMAIN_PRIMITIVE = {27, 29, 36, 37}  # service content is the domain name itself
_DOMAIN_FIELD0 = {26, 28, 32, 33, 34, 35}  # domainName [0]
_PI_PRIMITIVE = {39, 45}
_PI_FIELD0 = {38, 40, 41, 42, 43, 44}


def _confirmed_request(rows: _Rows, k: int, data: bytes, svc: _ber.Tlv) -> str | None:
    num = svc[2]
    items = _children(data, svc) if svc[1] else []
    names: list[str] = []
    problem = None
    if num == 1:  # getNameList
        for x in items:
            if x[2] == 0 and x[1]:
                for oc in _children(data, x)[:1]:
                    rows.set(k, "object_class", _ber.to_int(data[oc[3] : oc[4]]))
            elif x[2] == 1 and x[1]:
                for sc in _children(data, x)[:1]:
                    rows.set(k, "object_scope", {0: "vmd", 1: "domain", 2: "aa"}.get(sc[2]))
                    if sc[2] == 1:
                        rows.set(k, "domain", _identifier(data, sc))
    elif num == 4:  # read: specificationWithResult [0], variableAccessSpecification [1]
        for x in items:
            if x[2] == 1 and x[1]:
                for vas in _children(data, x)[:1]:
                    _names_in_vas(data, vas, names)
    elif num == 6:  # getVariableAccessAttributes: name [0] (explicit ObjectName) | address
        for x in items[:1]:
            if x[2] == 0 and x[1]:
                for inner in _children(data, x)[:1]:
                    nm = _object_name(data, inner)
                    if nm is not None:
                        names.append(nm)
    elif num in (12, 15):  # get named variable list / type attributes: the ObjectName
        for x in items[:1]:
            nm = _object_name(data, x)
            if nm is not None:
                names.append(nm)
    elif num == 5:  # write: variableAccessSpecification, listOfData [0]
        if items:
            _names_in_vas(data, items[0], names)
        if len(items) >= 2 and items[1][2] == 0 and items[1][1]:
            values = _children(data, items[1])
            rows.set(k, "data_count", len(values))
            problem = _values(rows, k, data, values)
    elif num == 11:  # defineNamedVariableList: variableListName, listOfVariable [0]
        if items:
            nm = _object_name(data, items[0])
            if nm is not None:
                names.append(nm)
        for x in items[1:2]:
            _names_in_list_of_variable(data, x, names)
    elif num == 13:  # deleteNamedVariableList: listOfVariableListName [1]
        for x in items:
            if x[2] == 1 and x[1]:
                for inner in _children(data, x):
                    nm = _object_name(data, inner)
                    if nm is not None:
                        names.append(nm)
            elif x[2] == 2:
                rows.set(k, "domain", _identifier(data, x))
    elif num == 3:  # rename: currentName [1]
        for x in items:
            if x[2] == 1 and x[1]:
                for inner in _children(data, x)[:1]:
                    nm = _object_name(data, inner)
                    if nm is not None:
                        names.append(nm)
    elif num in (19, 20):  # take / relinquish control: semaphoreName [0]
        for x in items[:1]:
            for inner in _children(data, x)[:1]:
                nm = _object_name(data, inner)
                if nm is not None:
                    names.append(nm)
    elif num in _DOMAIN_PRIMITIVE:
        rows.set(k, "domain", _identifier(data, svc))
    elif num in _DOMAIN_FIELD0:
        for x in items:
            if x[2] == 0 and not x[1]:
                rows.set(k, "domain", _identifier(data, x))
            elif num == 33 and x[2] == 1 and x[1]:
                rows.set(k, "file_name", _file_name(data, x))
    elif num in _PI_PRIMITIVE:
        rows.set(k, "program_invocation", _identifier(data, svc))
    elif num in _PI_FIELD0:
        for x in items:
            if x[2] == 0 and not x[1]:
                rows.set(k, "program_invocation", _identifier(data, x))
            elif num == 38 and x[2] == 1 and x[1]:
                doms = [_ber.text(data[d[3] : d[4]]) for d in _children(data, x)]
                rows.set(k, "domain", ",".join(doms))
    elif num in (72, 76, 46, 75, 77):  # file services: the (first) file name
        if num == 76:
            rows.set(k, "file_name", _file_name(data, svc))
        else:
            want = {72: 0, 46: 1, 75: 0, 77: 0}[num]
            for x in items:
                if x[2] == want and x[1]:
                    rows.set(k, "file_name", _file_name(data, x))
                    break
    if names:
        rows.set(k, "object_names", names)
    return problem


def _confirmed_response(rows: _Rows, k: int, data: bytes, svc: _ber.Tlv) -> str | None:
    num = svc[2]
    items = _children(data, svc) if svc[1] else []
    names: list[str] = []
    problem = None
    if num == 1:  # getNameList: listOfIdentifier [0], moreFollows [1]
        for x in items:
            if x[2] == 0 and x[1]:
                rows.set(
                    k, "identifiers", [_ber.text(data[i[3] : i[4]]) for i in _children(data, x)]
                )
            elif x[2] == 1 and not x[1]:
                rows.set(k, "more_follows", bool(data[x[3] : x[4]] not in (b"", b"\x00")))
    elif num == 2:  # identify
        for x in items:
            key = {0: "vendor_name", 1: "model_name", 2: "revision"}.get(x[2])
            if key and not x[1]:
                rows.set(k, key, _ber.text(data[x[3] : x[4]]))
    elif num == 4:  # read: variableAccessSpecification [0]?, listOfAccessResult [1]
        for x in items:
            if x[2] == 0 and x[1]:
                for vas in _children(data, x)[:1]:
                    _names_in_vas(data, vas, names)
            elif x[2] == 1 and x[1]:
                problem = _results(rows, k, data, x)
    elif num == 5:  # write: SEQUENCE OF { failure [0] | success [1] }
        errs = [_ber.to_int(data[x[3] : x[4]]) for x in items if x[2] == 0]
        rows.set(k, "data_count", len(items))
        rows.set(k, "data_access_errors", [e for e in errs if e is not None] or None)
    elif num == 12:  # getNamedVariableListAttributes: listOfVariable [1]
        for x in items:
            if x[2] == 1 and x[1]:
                _names_in_list_of_variable(data, x, names)
    if names:
        rows.set(k, "object_names", names)
    return problem


def _initiate(rows: _Rows, k: int, data: bytes, items: list[_ber.Tlv]) -> None:
    for x in items:
        if x[0] != 2:
            continue
        if x[2] == 0:
            rows.set(k, "local_detail", _ber.to_int(data[x[3] : x[4]]))
        elif x[2] == 1:
            rows.set(k, "max_serv_outstanding_calling", _ber.to_int(data[x[3] : x[4]]))
        elif x[2] == 2:
            rows.set(k, "max_serv_outstanding_called", _ber.to_int(data[x[3] : x[4]]))
        elif x[2] == 3:
            rows.set(k, "data_structure_nesting_level", _ber.to_int(data[x[3] : x[4]]))
        elif x[2] == 4 and x[1]:
            for d in _children(data, x):
                raw = data[d[3] : d[4]]
                if d[2] == 0:
                    rows.set(k, "version_number", _ber.to_int(raw))
                elif d[2] == 1 and raw:
                    rows.set(k, "parameter_cbb", raw[1:].hex())
                elif d[2] == 2 and raw:
                    rows.set(k, "services_supported", raw[1:].hex())


def decode_mms(rows: _Rows, k: int, data: bytes) -> str | None:
    """Rich fields of the MMS PDU ``data`` (the whole PDU) into row ``k``; a problem name or
    None."""
    top = _ber.tlv(data, 0, len(data))
    if top is None:
        return "mms_malformed"
    cls, cons, pdu, s, e = top
    items, ok = _ber.children(data, s, e) if cons else ([], True)
    problem = None if ok else "mms_malformed"
    if pdu == 0 or pdu == 1:
        svc = next((x for x in items if x[0] == 2), None)
        if svc is not None:
            fn = _confirmed_request if pdu == 0 else _confirmed_response
            problem = fn(rows, k, data, svc) or problem
    elif pdu == 2:
        for x in items:
            if x[2] == 2 and x[1]:
                _service_error(rows, k, data, x)
    elif pdu == 3:
        svc = next((x for x in items if x[0] == 2), None)
        if svc is not None and svc[2] == 0 and svc[1]:  # informationReport
            parts = _children(data, svc)
            names: list[str] = []
            if parts:
                _names_in_vas(data, parts[0], names)
            if names:
                rows.set(k, "object_names", names)
            for x in parts[1:2]:
                if x[2] == 0 and x[1]:
                    problem = _results(rows, k, data, x) or problem
    elif pdu == 4:
        for x in items:
            if x[0] == 2 and 1 <= x[2] <= 11:
                rows.set(k, "reject_type", x[2])
                rows.set(k, "reject_code", _ber.to_int(data[x[3] : x[4]]))
    elif pdu == 7:
        for x in items:
            if x[2] == 1 and x[1]:
                _service_error(rows, k, data, x)
    elif pdu in (8, 9):
        _initiate(rows, k, data, items)
    elif pdu in (10, 13):
        _service_error(rows, k, data, top)
    return problem


_ACSE_NAMES = {0: "aarq", 1: "aare", 2: "rlrq", 3: "rlre", 4: "abrt"}


def decode_acse(rows: _Rows, k: int, data: bytes) -> str | None:
    """ACSE APDU ``data``: application context, titles, qualifiers, result, reason."""
    top = _ber.tlv(data, 0, len(data))
    if top is None:
        return "acse_malformed"
    kind = top[2]
    rows.set(k, "acse_pdu", _ACSE_NAMES.get(kind))
    items, ok = _ber.children(data, top[3], top[4])

    def inner_oid(x: _ber.Tlv) -> str | None:
        for c in _children(data, x)[:1]:
            if c[0] == 0 and c[2] == 6:
                return _ber.oid(data[c[3] : c[4]])
        return None

    def inner_int(x: _ber.Tlv) -> int | None:
        for c in _children(data, x)[:1]:
            if c[0] == 0 and c[2] == 2:
                return _ber.to_int(data[c[3] : c[4]])
        return None

    for x in items:
        if x[0] != 2:
            continue
        num = x[2]
        if kind in (2, 3, 4):
            if num == 0 and not x[1]:
                rows.set(k, "acse_reason", _ber.to_int(data[x[3] : x[4]]))
            continue
        if num == 1 and x[1]:
            ctx = inner_oid(x)
            rows.set(k, "application_context", ctx)
            rows.set(k, "application_context_name", APPLICATION_CONTEXTS.get(ctx or ""))
        elif kind == 0 and num in (2, 6) and x[1]:
            rows.set(k, "called_ap_title" if num == 2 else "calling_ap_title", inner_oid(x))
        elif kind == 0 and num in (3, 7) and x[1]:
            rows.set(k, "called_ae_qualifier" if num == 3 else "calling_ae_qualifier", inner_int(x))
        elif kind == 1 and num == 2 and x[1]:
            rows.set(k, "acse_result", inner_int(x))
        elif kind == 1 and num == 4 and x[1]:
            rows.set(k, "called_ap_title", inner_oid(x))
        elif kind == 1 and num == 5 and x[1]:
            rows.set(k, "called_ae_qualifier", inner_int(x))
        elif num == 11 and not x[1]:
            rows.set(k, "auth_mechanism", _ber.oid(data[x[3] : x[4]]))
    return None if ok else "acse_malformed"


# ---- helpers ------------------------------------------------------------------------------
def _fit(v: np.ndarray, dtype) -> np.ndarray:
    """Codes with those the column type cannot hold replaced by -1 (absent)."""
    return np.where(v > np.iinfo(dtype).max, -1, v)


def _col(v: np.ndarray, dtype) -> pa.Array:
    v = _fit(v, dtype)
    return pa.array(v.astype(dtype), mask=v < 0)


def _names(sem: Semantics, codes: np.ndarray) -> pa.Array:
    """Names of codes; negative codes (absent) are null, as are codes beyond int16."""
    codes = _fit(codes, np.int16)
    names = sem.names(np.maximum(codes, 0))
    return pa.DictionaryArray.from_arrays(
        pa.array(names.indices.to_numpy(zero_copy_only=False), mask=codes < 0), names.dictionary
    )


def _meanings(
    pdu: np.ndarray, service: np.ndarray, unconf: np.ndarray, acse: list[int | None]
) -> tuple[pa.Array, pa.Array]:
    """Category and techniques of each row: confirmed service > unconfirmed service >
    PDU type > ACSE APDU."""
    cats: list[str | None] = []
    techs: list[list[str]] = []
    for k in range(pdu.shape[0]):
        m: Meaning | None = None
        p = int(pdu[k])
        if p in (0, 1, 2) and service[k] >= 0:
            m = SERVICES.rows.get(int(service[k]))
        elif p == 3 and unconf[k] >= 0:
            m = UNCONFIRMED_SERVICES.rows.get(int(unconf[k]))
        elif p >= 0:
            m = PDU_TYPES.rows.get(p)
        elif acse[k] is not None:
            m = ACSE_PDUS.rows.get(acse[k])
        cats.append(m.category if m else None)
        techs.append(list(m.techniques) if m else [])
    return (
        pa.array(cats, pa.string()).dictionary_encode(),
        pa.array(techs, pa.list_(pa.string())).cast(pa.list_(_STR)),
    )


# ---- the dissector ----------------------------------------------------------------------------
_MAX_TSDU = 1 << 20  # a TSDU put together from DT TPDUs is dropped beyond this size


class MmsDissector(Dissector):
    name = "mms"
    tables = {"mms": SCHEMA}
    framers = (framing.TPKT,)
    semantics = (
        PDU_TYPES,
        SERVICES,
        UNCONFIRMED_SERVICES,
        OBJECT_CLASSES,
        DATA_ACCESS_ERRORS,
        ERROR_CLASSES,
        REJECT_TYPES,
        ACSE_PDUS,
        ACSE_RESULTS,
        SPDU_TYPES,
    )

    def __init__(self) -> None:
        self.matcher = RequestMatcher(width=1)
        # (flow, is_orig) → user data of the DT TPDUs of a TSDU still arriving
        self.segments: dict[tuple[int, bool], bytearray] = {}

    def process(self, ctx: ChunkContext) -> dict[str, pa.RecordBatch]:
        idx = ctx.pdus(framing.TPKT)
        if idx.shape[0] == 0:
            return {}
        in_arena, off, length = ctx.pdu_locations(idx)
        out = np.empty((idx.shape[0], NCOL), np.int64)
        _probe(ctx.chunk.buf, ctx.track.arena, in_arena, off, length, out)
        datas: dict[int, bytes] = {}
        if self.segments or (out[:, KIND] == K_SEGMENT).any():
            self._reassemble(ctx, idx, out, off, datas)
        rows = np.flatnonzero(
            ((out[:, KIND] == K_ISO) | (out[:, KIND] == K_BARE))
            & ((out[:, MMS_OFF] >= 0) | (out[:, ACSE_OFF] >= 0))
        )
        self._weird(ctx, idx, out)
        if rows.shape[0] == 0:
            return {}
        return {"mms": self._rows(ctx, idx[rows], out[rows], off[rows], datas, rows)}

    # -- TSDUs in several DT TPDUs --------------------------------------------------------------
    def _reassemble(self, ctx, idx, out, off, datas: dict[int, bytes]) -> None:
        """Put together the user data of DT TPDUs up to the one with end-of-TSDU, then probe
        the whole TSDU with the kernel (behind a DT header) in place of that last TPDU."""
        P = ctx.track.pdus
        for k in range(idx.shape[0]):
            if out[k, DT_OFF] < 0:
                continue
            key = (int(P[idx[k], T.P_FLOW]), bool(P[idx[k], T.P_ORIG]))
            if out[k, KIND] != K_SEGMENT and key not in self.segments:
                continue
            pdu = ctx.pdu_bytes(idx[k])
            user = pdu[int(out[k, DT_OFF] - off[k]) :]
            pending = self.segments.setdefault(key, bytearray())
            if len(pending) + len(user) > _MAX_TSDU:
                self.segments.pop(key, None)
                continue
            pending += user
            if out[k, KIND] == K_SEGMENT:
                continue
            whole = b"\x03\x00\x00\x00\x02\xf0\x80" + bytes(self.segments.pop(key))
            arr = np.frombuffer(whole, np.uint8)
            one = np.empty((1, NCOL), np.int64)
            _probe(
                arr,
                arr,
                np.zeros(1, np.int64),
                np.zeros(1, np.int64),
                np.array([len(whole)], np.int64),
                one,
            )
            out[k] = one[0]
            datas[k] = whole
            off[k] = 0  # offsets of this row are into ``whole``
        if len(self.segments) > 10_000:  # TSDUs never finished: forget the oldest
            for key in list(self.segments)[:5_000]:
                del self.segments[key]

    # -- rows ---------------------------------------------------------------------------------
    def _rows(self, ctx, idx, out, off, datas, orig_rows) -> pa.RecordBatch:
        n = idx.shape[0]
        P = ctx.track.pdus
        env = ctx.pdu_envelope(idx)
        rows = _Rows(n)
        problems: list[tuple[int, str, str]] = []
        acse_kind: list[int | None] = []
        for k in range(n):
            whole = datas.get(int(orig_rows[k]))
            data = whole if whole is not None else ctx.pdu_bytes(idx[k])
            base = int(off[k])
            ak = None
            try:
                if out[k, ACSE_OFF] >= 0:
                    a = data[int(out[k, ACSE_OFF]) - base : int(out[k, ACSE_END]) - base]
                    ak = a[0] - 0x60 if a else None
                    pr = decode_acse(rows, k, a)
                    if pr:
                        problems.append((k, pr, "ACSE APDU"))
                if out[k, MMS_OFF] >= 0:
                    m = data[int(out[k, MMS_OFF]) - base : int(out[k, MMS_END]) - base]
                    pr = decode_mms(rows, k, m)
                    if pr and out[k, STATUS] == OK:
                        problems.append(
                            (
                                k,
                                pr if pr.startswith("mms") else f"mms_{pr}",
                                f"pdu type {int(out[k, PDU])}",
                            )
                        )
            except Exception as exc:  # noqa: BLE001 - a decoding slip must not cost the row
                problems.append((k, "mms_decoder_error", f"{type(exc).__name__}: {exc}"))
            acse_kind.append(ak)

        pdu = out[:, PDU]
        is_req = np.isin(pdu, (0, 5, 8, 11)) | (
            (pdu < 0) & np.array([a in (0, 2) for a in acse_kind], bool)
        )
        # pairing per flow: confirmed by invoke id; cancel, initiate, conclude in own spaces
        space = np.select(
            [pdu <= 2, (pdu >= 5) & (pdu <= 7), (pdu >= 8) & (pdu <= 10), pdu >= 11],
            [0, 1, 2, 3],
            -1,
        )
        space = np.where(pdu < 0, -1, space)
        inv = np.where((space == 0) | (space == 1), np.maximum(out[:, INVOKE], 0), 0)
        key2 = np.where(space >= 0, inv | (space << 40), -1)
        ts = P[idx, T.P_TS]
        flow = P[idx, T.P_FLOW]
        matched, req_frame, req_ts, req_pl = self.matcher.match(
            flow, key2, is_req, P[idx, T.P_FRAME], ts, out[:, SERVICE].reshape(n, 1)
        )
        matched &= ~is_req & (space >= 0)
        service = out[:, SERVICE].copy()
        fill = matched & (pdu == 2) & (service < 0)
        service[fill] = req_pl[fill, 0]

        category, techniques = _meanings(pdu, service, out[:, UNCONF], acse_kind)
        errs = rows.cols.get("data_access_errors", {})
        err_names = {k: [DATA_ACCESS_ERRORS.name(e) for e in v] for k, v in errs.items()}
        rows.cols["data_access_error_names"] = err_names

        def ints(name: str) -> np.ndarray:
            got = rows.cols.get(name, {})
            v = np.full(n, -1, np.int64)
            for k, x in got.items():
                if isinstance(x, int) and 0 <= x < (1 << 62):
                    v[k] = x
            return v

        object_class = ints("object_class")
        error_class = ints("error_class")
        reject_type = ints("reject_type")
        acse_result = ints("acse_result")
        acse_code = np.array([-1 if a is None else a for a in acse_kind], np.int64)
        batch = dict(env)
        batch.update(
            {
                "carried_by": pa.array(
                    np.where(out[:, KIND] == K_BARE, "cotp", "session"), pa.string()
                ).dictionary_encode(),
                "spdu_type": _col(out[:, SPDU], np.int16),
                "spdu_type_name": _names(SPDU_TYPES, out[:, SPDU]),
                "presentation_context": _col(out[:, CTX], np.int16),
                "is_request": pa.array(is_req),
                "pdu_type": _col(pdu, np.int16),
                "pdu_type_name": _names(PDU_TYPES, pdu),
                "invoke_id": _col(out[:, INVOKE], np.int64),
                "service": _col(service, np.int16),
                "service_name": _names(SERVICES, service),
                "unconfirmed_service": _col(out[:, UNCONF], np.int16),
                "unconfirmed_service_name": _names(UNCONFIRMED_SERVICES, out[:, UNCONF]),
                "category": category,
                "techniques": techniques,
                "object_names": rows.column("object_names", pa.list_(pa.string())),
                "domain": rows.column("domain", pa.string()),
                "program_invocation": rows.column("program_invocation", pa.string()),
                "file_name": rows.column("file_name", pa.string()),
                "object_class": _col(object_class, np.int16),
                "object_class_name": _names(OBJECT_CLASSES, object_class),
                "object_scope": rows.column("object_scope", pa.string()).dictionary_encode(),
                "identifiers": rows.column("identifiers", pa.list_(pa.string())),
                "more_follows": rows.column("more_follows", pa.bool_()),
                "data_count": rows.column("data_count", pa.int32()),
                "data": rows.column("data", pa.list_(pa.string())),
                "data_access_errors": rows.column("data_access_errors", pa.list_(pa.int16())),
                "data_access_error_names": rows.column(
                    "data_access_error_names", pa.list_(pa.string())
                ),
                "error_class": _col(error_class, np.int16),
                "error_class_name": _names(ERROR_CLASSES, error_class),
                "error_code": rows.column("error_code", pa.int32()),
                "reject_type": _col(reject_type, np.int16),
                "reject_type_name": _names(REJECT_TYPES, reject_type),
                "reject_code": rows.column("reject_code", pa.int32()),
                "vendor_name": rows.column("vendor_name", pa.string()),
                "model_name": rows.column("model_name", pa.string()),
                "revision": rows.column("revision", pa.string()),
                "local_detail": rows.column("local_detail", pa.int64()),
                "max_serv_outstanding_calling": rows.column(
                    "max_serv_outstanding_calling", pa.int32()
                ),
                "max_serv_outstanding_called": rows.column(
                    "max_serv_outstanding_called", pa.int32()
                ),
                "data_structure_nesting_level": rows.column(
                    "data_structure_nesting_level", pa.int32()
                ),
                "version_number": rows.column("version_number", pa.int16()),
                "parameter_cbb": rows.column("parameter_cbb", pa.string()),
                "services_supported": rows.column("services_supported", pa.string()),
                "acse_pdu": _names(ACSE_PDUS, acse_code),
                "application_context": rows.column(
                    "application_context", pa.string()
                ).dictionary_encode(),
                "application_context_name": rows.column(
                    "application_context_name", pa.string()
                ).dictionary_encode(),
                "acse_result": _col(acse_result, np.int16),
                "acse_result_name": _names(ACSE_RESULTS, acse_result),
                "acse_reason": rows.column("acse_reason", pa.int16()),
                "calling_ap_title": rows.column(
                    "calling_ap_title", pa.string()
                ).dictionary_encode(),
                "calling_ae_qualifier": rows.column("calling_ae_qualifier", pa.int64()),
                "called_ap_title": rows.column("called_ap_title", pa.string()).dictionary_encode(),
                "called_ae_qualifier": rows.column("called_ae_qualifier", pa.int64()),
                "auth_mechanism": rows.column("auth_mechanism", pa.string()).dictionary_encode(),
                **pairing_columns(matched, req_frame, req_ts, ts),
            }
        )
        if problems:
            ks = np.array([k for k, _, _ in problems], np.int64)
            ctx.weird(
                take_envelope(env, ks),
                [p for _, p, _ in problems],
                [d for _, _, d in problems],
                "mms",
            )
        return pa.RecordBatch.from_pydict(batch, schema=SCHEMA)

    @staticmethod
    def _weird(ctx, idx, out) -> None:
        bad = np.flatnonzero(
            ((out[:, KIND] == K_ISO) | (out[:, KIND] == K_BARE)) & (out[:, STATUS] != OK)
        )
        if bad.shape[0] == 0:
            return
        ctx.weird(
            ctx.pdu_envelope(idx[bad]),
            [WEIRD[int(s)] for s in out[bad, STATUS]],
            [
                f"spdu {int(sp)}, mms pdu {int(p)}"
                for sp, p in zip(out[bad, SPDU], out[bad, PDU], strict=True)
            ],
            "mms",
        )


DISSECTOR = MmsDissector
