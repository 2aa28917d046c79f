"""DNP3 over TCP and UDP: link, transport and application layers, object headers, controls.

Link frames come from two places: TCP PDUs cut by the DNP3 framer (one link frame each) and
UDP datagrams probed by content (0x05 0x64 and a valid header CRC; a datagram may carry
several link frames). Four numba kernels do the work without a Python object per frame:

1. ``_udp_split`` finds the link frames inside UDP datagrams;
2. ``_links`` decodes each link header, checks the header CRC and the CRC of every 16-byte
   data block, and copies the user data (CRCs stripped) into one buffer;
3. ``_reassemble`` joins transport segments FIR..FIN per (flow, direction, link addresses)
   into application fragments; a fragment still open at the end of a chunk is carried over;
4. ``_application`` decodes the application header, IIN and every object header (group,
   variation, qualifier, range), walking object data by its size, and extracts control
   relay output blocks (g12v1) and analog output commands (g41v1-4).

File-transfer objects (g70) are rare and decoded in Python. One row per application
fragment, plus one row per link-only frame (reset link, link status...) with a null
``func_code``. Responses are paired with requests by flow, link address pair and
application sequence number.
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.capture import _track as T
from otsight.capture import framing
from otsight.dissect import _l2l4 as L
from otsight.dissect.base import ChunkContext, Dissector, Semantics, pairing_columns, take_envelope
from otsight.dissect.matching import RequestMatcher

# ---- semantics (seeded from shared/PROTOCOLS.md 3.2, names as Wireshark's packet-dnp.c) ----
FUNCTIONS = Semantics(
    "dnp3",
    "func_code",
    {
        0: ("confirm", "session"),
        1: ("read", "read", ["T0801"]),
        2: ("write", "write", ["T0836", "T0855"]),
        3: ("select", "control", ["T0855", "T0831"]),
        4: ("operate", "control", ["T0855", "T0831"]),
        5: ("direct_operate", "control", ["T0855", "T0831"]),
        6: ("direct_operate_no_ack", "control", ["T0855", "T0831"]),
        7: ("immediate_freeze", "control", ["T0855"]),
        8: ("immediate_freeze_no_ack", "control", ["T0855"]),
        9: ("freeze_and_clear", "control", ["T0855"]),
        10: ("freeze_and_clear_no_ack", "control", ["T0855"]),
        11: ("freeze_with_time", "control", ["T0855"]),
        12: ("freeze_with_time_no_ack", "control", ["T0855"]),
        13: ("cold_restart", "control", ["T0816"]),
        14: ("warm_restart", "control", ["T0816"]),
        15: ("initialize_data", "control", ["T0816", "T0809"]),
        16: ("initialize_application", "control", ["T0816"]),
        17: ("start_application", "control", ["T0858"]),
        18: ("stop_application", "control", ["T0858", "T0881"]),
        19: ("save_configuration", "program", ["T0836", "T0843"]),
        20: ("enable_unsolicited", "control", ["T0856"]),
        21: ("disable_unsolicited", "control", ["T0804"]),
        22: ("assign_class", "control", ["T0804", "T0836"]),
        23: ("delay_measurement", "diagnostic"),
        24: ("record_current_time", "diagnostic", ["T0836"]),
        25: ("open_file", "firmware", ["T0843", "T0845", "T0857", "T0867"]),
        26: ("close_file", "firmware", ["T0843", "T0845", "T0857"]),
        27: ("delete_file", "firmware", ["T0809"]),
        28: ("get_file_info", "firmware", ["T0845"]),
        29: ("authenticate_file", "firmware", ["T0857"]),
        30: ("abort_file", "firmware"),
        31: ("activate_config", "program", ["T0836", "T0843"]),
        32: ("authentication_request", "session", ["T0859", "T0812"]),
        33: ("authentication_error", "session", ["T0859", "T0812"]),
        129: ("response", "read"),
        130: ("unsolicited_response", "read", ["T0856"]),
        131: ("authentication_response", "session", ["T0859", "T0812"]),
    },
)

# Link-layer functions, keyed by (PRM << 4) | function: the same number means different
# things from a primary (PRM=1) and a secondary (PRM=0) station.
LINK_FUNCTIONS = Semantics(
    "dnp3",
    "link_func",
    {
        0x10: ("reset_link_states", "control", ["T0816"]),
        0x11: ("reset_user_process", "control", ["T0814"]),
        0x12: ("test_link_states", "diagnostic"),
        0x13: ("confirmed_user_data", None),
        0x14: ("unconfirmed_user_data", None),
        0x19: ("request_link_status", "diagnostic"),
        0x00: ("ack", None),
        0x01: ("nack", None),
        0x0B: ("link_status", None),
        0x0E: ("link_service_not_functioning", None),
        0x0F: ("link_service_not_used", None),
    },
)

IIN_BITS = Semantics(
    "dnp3",
    "iin",
    {
        0x0100: "broadcast",
        0x0200: "class_1_events",
        0x0400: "class_2_events",
        0x0800: "class_3_events",
        0x1000: "need_time",
        0x2000: "local_control",
        0x4000: "device_trouble",
        0x8000: ("device_restart", "control", ["T0816"]),
        0x0001: "no_func_code_support",
        0x0002: "object_unknown",
        0x0004: "parameter_error",
        0x0008: "event_buffer_overflow",
        0x0010: "already_executing",
        0x0020: "config_corrupt",
        0x0040: "reserved_2",
        0x0080: "reserved_1",
    },
)

CONTROL_STATUS = Semantics(
    "dnp3",
    "control_status",
    {
        0: "success",
        1: "timeout",
        2: "no_select",
        3: "format_error",
        4: "not_supported",
        5: "already_active",
        6: "hardware_error",
        7: "local",
        8: "too_many_objs",
        9: "not_authorized",
        10: "automation_inhibit",
        11: "processing_limited",
        12: "out_of_range",
        13: "downstream_local",
        14: "already_complete",
        15: "blocked",
        16: "canceled",
        17: "blocked_other_master",
        18: "downstream_fail",
        126: "non_participating",
        127: "undefined",
    },
)

# CROB control code: operation type (low nibble) and trip/close (high two bits)
CROB_OPS = {0: "nul", 1: "pulse_on", 2: "pulse_off", 3: "latch_on", 4: "latch_off"}
CROB_TCC = {0: "", 1: "close_", 2: "trip_", 3: "reserved_"}

OBJECT_GROUPS = Semantics(
    "dnp3",
    "object_group",
    {
        0: ("device_attributes", "discovery", ["T0888"]),
        1: ("binary_input", "read"),
        2: ("binary_input_event", "read"),
        3: ("double_bit_binary_input", "read"),
        4: ("double_bit_binary_input_event", "read"),
        10: ("binary_output", "read"),
        11: ("binary_output_event", "read"),
        12: ("binary_output_command", "control", ["T0855", "T0831"]),
        13: ("binary_output_command_event", "read"),
        20: ("counter", "read"),
        21: ("frozen_counter", "read"),
        22: ("counter_event", "read"),
        23: ("frozen_counter_event", "read"),
        30: ("analog_input", "read"),
        31: ("frozen_analog_input", "read"),
        32: ("analog_input_event", "read"),
        33: ("frozen_analog_input_event", "read"),
        34: ("analog_input_deadband", "write", ["T0836"]),
        40: ("analog_output_status", "read"),
        41: ("analog_output", "control", ["T0855", "T0836"]),
        42: ("analog_output_event", "read"),
        43: ("analog_output_command_event", "read"),
        50: ("time_and_date", "write", ["T0836"]),
        51: ("time_and_date_cto", "read"),
        52: ("time_delay", "read"),
        60: ("class_data", "read", ["T0801"]),
        70: ("file_control", "firmware", ["T0843", "T0845", "T0857"]),
        80: ("internal_indications", "write"),
        81: ("device_storage", "read"),
        82: ("device_profile", "discovery", ["T0888"]),
        83: ("data_set_registration", "read"),
        85: ("data_set_prototype", "read"),
        86: ("data_set_descriptor", "read"),
        87: ("data_set", "read"),
        88: ("data_set_event", "read"),
        90: ("application_identifier", "control"),
        91: ("status_of_requested_operation", "read"),
        100: ("floating_point", "read"),
        101: ("bcd_integer", "read"),
        102: ("unsigned_integer", "read"),
        110: ("octet_string", "read"),
        111: ("octet_string_event", "read"),
        112: ("virtual_terminal_output", "write"),
        113: ("virtual_terminal_event", "read"),
        120: ("authentication", "session", ["T0859"]),
        121: ("security_statistic", "read"),
        122: ("security_statistic_event", "read"),
    },
)

# ---- object sizes (bytes per object, or one of the special kinds below) -------------------
EMPTY, PACKED1, PACKED2, OCTETS, DEVATTR, VARIABLE, UNKNOWN = 0, -1, -2, -3, -4, -5, -6


def _size_table() -> np.ndarray:
    t = np.full(256 * 256, UNKNOWN, dtype=np.int64)

    def put(group: int, sizes: dict[int, int]) -> None:
        for var, size in sizes.items():
            t[group * 256 + var] = size

    # variation 0 ("any variation") of the groups a master may read that way: no data
    for g in (1, 2, 3, 4, 11, 20, 22, 30, 32, 34, 42):
        t[g * 256] = EMPTY
    put(0, {v: DEVATTR for v in range(1, 256)})
    put(1, {1: PACKED1, 2: 1})
    put(2, {1: 1, 2: 7, 3: 3})
    put(3, {1: PACKED2, 2: 1})
    put(4, {1: 1, 2: 7, 3: 3})
    put(10, {1: PACKED1, 2: 1})
    put(11, {1: 1, 2: 7})
    put(12, {1: 11, 2: 11, 3: PACKED1})
    put(13, {1: 1, 2: 7})
    put(20, {1: 5, 2: 3, 3: 5, 4: 3, 5: 4, 6: 2, 7: 4, 8: 2})
    put(21, {1: 5, 2: 3, 3: 5, 4: 3, 5: 11, 6: 9, 7: 11, 8: 9, 9: 4, 10: 2, 11: 4, 12: 2})
    for g in (22, 23):
        put(g, {1: 5, 2: 3, 3: 5, 4: 3, 5: 11, 6: 9, 7: 11, 8: 9})
    put(30, {1: 5, 2: 3, 3: 4, 4: 2, 5: 5, 6: 9})
    put(31, {1: 5, 2: 3, 3: 11, 4: 9, 5: 4, 6: 2, 7: 5, 8: 9})
    for g in (32, 33, 42, 43):
        put(g, {1: 5, 2: 3, 3: 11, 4: 9, 5: 5, 6: 9, 7: 11, 8: 15})
    put(34, {1: 2, 2: 4, 3: 4})
    put(40, {1: 5, 2: 3, 3: 5, 4: 9})
    put(41, {1: 5, 2: 3, 3: 5, 4: 9})
    put(50, {1: 6, 2: 10, 3: 6, 4: 11})
    put(51, {1: 6, 2: 6})
    put(52, {1: 2, 2: 2})
    put(60, {1: EMPTY, 2: EMPTY, 3: EMPTY, 4: EMPTY})
    put(70, {v: VARIABLE for v in range(1, 9)})
    put(80, {1: PACKED1})
    for g in (82, 83, 85, 86, 87, 88, 90, 91):
        put(g, {v: VARIABLE for v in range(1, 256)})
    put(101, {1: 2, 2: 4, 3: 8})
    put(102, {1: 1})
    for g in (110, 111, 112, 113):
        put(g, {v: OCTETS for v in range(1, 256)})
    put(120, {v: VARIABLE for v in range(1, 256)})
    put(120, {3: 6, 4: 2})
    put(121, {1: 7})
    put(122, {1: 7, 2: 13})
    return t


_SIZES = _size_table()


def _crc_table() -> np.ndarray:
    t = np.zeros(256, dtype=np.int64)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
        t[i] = crc
    return t


_CRC = _crc_table()

# How a function's objects are walked: headers only (requests that name points), with
# object data, or not at all (functions without objects).
W_NONE, W_HEADERS, W_DATA = 0, 1, 2


def _walk_table() -> np.ndarray:
    t = np.zeros(256, dtype=np.int64)
    for f in (0, 1, 7, 8, 9, 10, 22):
        t[f] = W_HEADERS
    for f in (2, 3, 4, 5, 6, 11, 12, 20, 21, 25, 26, 27, 28, 29, 30, 32, 33, 129, 130, 131):
        t[f] = W_DATA
    return t


_WALK = _walk_table()

# ---- kernel outputs ----------------------------------------------------------------------
# link frames: LF[j, column]
LF_LEN, LF_CTL, LF_DST, LF_SRC, LF_STATUS, LF_UD_OFF, LF_UD_LEN, LF_KIND, LF_DETAIL = range(9)
NLF = 9
K_LINK_ONLY, K_SEGMENT = 0, 1
# link statuses
OK, L_TRUNCATED, L_BAD_LENGTH, L_BAD_HEADER_CRC, L_BAD_DATA_CRC = 0, 1, 2, 3, 4
# segment statuses
S_MISSING_FIRST, S_OUT_OF_SEQUENCE, S_UNFINISHED, S_TOO_LONG = 1, 2, 3, 4
# application fragments: AF[f, column]
A_CTL, A_FUNC, A_IIN, A_STATUS, A_DETAIL = 0, 1, 2, 3, 4
A_OBJ0, A_OBJ1, A_CROB0, A_CROB1, A_AO0, A_AO1, A_FILE_OFF, A_FILE_LEN, A_FILE_VAR = range(5, 14)
NAF = 14
# application statuses
AP_TOO_SHORT, AP_HEADER_TRUNCATED, AP_BAD_QUALIFIER, AP_BAD_RANGE = 1, 2, 3, 4
AP_DATA_TRUNCATED, AP_UNKNOWN_OBJECT, AP_ITEMS_ON_EMPTY = 5, 6, 7

LINK_WEIRD = {
    L_TRUNCATED: "dnp3_link_frame_truncated",
    L_BAD_LENGTH: "dnp3_bad_link_length",
    L_BAD_HEADER_CRC: "dnp3_bad_header_crc",
    L_BAD_DATA_CRC: "dnp3_bad_data_crc",
}
SEGMENT_WEIRD = {
    S_MISSING_FIRST: "dnp3_transport_missing_first",
    S_OUT_OF_SEQUENCE: "dnp3_transport_out_of_sequence",
    S_UNFINISHED: "dnp3_transport_unfinished",
    S_TOO_LONG: "dnp3_fragment_too_long",
}
APP_WEIRD = {
    AP_TOO_SHORT: "dnp3_application_too_short",
    AP_HEADER_TRUNCATED: "dnp3_object_header_truncated",
    AP_BAD_QUALIFIER: "dnp3_bad_qualifier",
    AP_BAD_RANGE: "dnp3_bad_range",
    AP_DATA_TRUNCATED: "dnp3_object_data_truncated",
    AP_UNKNOWN_OBJECT: "dnp3_unknown_object",
    AP_ITEMS_ON_EMPTY: "dnp3_items_on_empty_object",
}

MAX_FRAGMENT = 65535  # bytes of one application fragment (IEEE 1815 advises 2048)
MAX_SEGMENTS = 60  # transport segments of one fragment (Wireshark's limit too)
MIN_DATAGRAM = 10


@njit(cache=True, inline="always")
def _le16(b, p):
    return np.int64(b[p]) | (np.int64(b[p + 1]) << 8)


@njit(cache=True, inline="always")
def _le32(b, p):
    return _le16(b, p) | (_le16(b, p + 2) << 16)


@njit(cache=True, inline="always")
def _crc(b, p, n):
    crc = np.int64(0)
    for k in range(n):
        crc = (crc >> 8) ^ _CRC[(crc ^ np.int64(b[p + k])) & 0xFF]
    return (~crc) & 0xFFFF


@njit(cache=True, nogil=True, _nrt=False)
def _udp_split(buf, pkts, pay_off, pay_len, f_pkt, f_off, f_len, trail):
    """Link frames inside UDP datagrams; returns how many were found.

    A datagram is DNP3 when it starts with a link header with a valid CRC. ``trail[i]`` is
    the number of bytes after the last frame of datagram ``i`` that are not a frame.
    """
    nf = 0
    for i in range(pkts.shape[0]):
        p = pay_off[i]
        end = p + pay_len[i]
        trail[i] = 0
        first = True
        while p < end:
            avail = end - p
            ok = avail >= 10 and buf[p] == 0x05 and buf[p + 1] == 0x64
            if ok:
                ok = _crc(buf, p, 8) == _le16(buf, p + 8)
            if not ok:
                if not first:
                    trail[i] = avail
                break
            first = False
            user = np.int64(buf[p + 2]) - 5
            total = 10
            if user > 0:
                total += user + 2 * ((user + 15) // 16)
            f_pkt[nf] = pkts[i]
            f_off[nf] = p
            f_len[nf] = min(total, avail)
            nf += 1
            p += total
    return nf


@njit(cache=True, nogil=True, _nrt=False)
def _links(buf, arena, in_arena, off, length, ud, ud_start, out):
    """Link header of each frame; user data (CRCs stripped) copied into ``ud``."""
    u = ud_start
    for j in range(off.shape[0]):
        b = arena if in_arena[j] else buf
        p = off[j]
        n = length[j]
        for c in range(NLF):
            out[j, c] = -1
        out[j, LF_STATUS] = OK
        out[j, LF_KIND] = K_LINK_ONLY
        if n < 10:
            out[j, LF_STATUS] = L_TRUNCATED
            continue
        dl_len = np.int64(b[p + 2])
        ctl = np.int64(b[p + 3])
        out[j, LF_LEN] = dl_len
        out[j, LF_CTL] = ctl
        out[j, LF_DST] = _le16(b, p + 4)
        out[j, LF_SRC] = _le16(b, p + 6)
        if _crc(b, p, 8) != _le16(b, p + 8):
            out[j, LF_STATUS] = L_BAD_HEADER_CRC
            continue
        if dl_len < 5:
            out[j, LF_STATUS] = L_BAD_LENGTH
            continue
        user = dl_len - 5
        func = ctl & 0x0F
        if user == 0 or func == 0 or func == 9 or func == 11:
            continue  # no transport / application data
        if 10 + user + 2 * ((user + 15) // 16) > n:
            out[j, LF_STATUS] = L_TRUNCATED
            continue
        q = p + 10
        start = u
        left = user
        block = 0
        bad = False
        while left > 0:
            k = 16 if left > 16 else left
            if _crc(b, q, k) != _le16(b, q + k):
                bad = True
                break
            for t in range(k):
                ud[u + t] = b[q + t]
            u += k
            q += k + 2
            left -= k
            block += 1
        if bad:
            out[j, LF_STATUS] = L_BAD_DATA_CRC
            out[j, LF_DETAIL] = block
            u = start
            continue
        out[j, LF_KIND] = K_SEGMENT
        out[j, LF_UD_OFF] = start
        out[j, LF_UD_LEN] = user
    return u


@njit(cache=True, nogil=True, _nrt=False)
def _reassemble(
    ud, seg_off, seg_len, seg_w, k1, k2, order, max_frag, max_segs, app, seg_status, fr
):
    """Join transport segments FIR..FIN per key into application fragments in ``app``.

    ``fr[f]`` = (app offset, length, last segment, segments, state) with state 1 complete,
    0 still open at the end of the input, -1 abandoned. Returns the number of fragments.
    """
    nf = 0
    ap = 0
    cur = -1
    ck1 = np.int64(-1)
    ck2 = np.int64(-1)
    expect = 0
    for t in range(order.shape[0]):
        s = order[t]
        seg_status[s] = OK
        if k1[s] != ck1 or k2[s] != ck2 or t == 0:
            cur = -1  # an open fragment of the previous key stays open (state 0)
            ck1 = k1[s]
            ck2 = k2[s]
        tr = np.int64(ud[seg_off[s]])
        fir = (tr & 0x40) != 0
        fin = (tr & 0x80) != 0
        seq = tr & 0x3F
        if fir:
            if cur >= 0:
                fr[cur, 4] = -1
                seg_status[fr[cur, 2]] = S_UNFINISHED
            cur = nf
            nf += 1
            fr[cur, 0] = ap
            fr[cur, 1] = 0
            fr[cur, 2] = s
            fr[cur, 3] = 0
            fr[cur, 4] = 0
        elif cur < 0:
            seg_status[s] = S_MISSING_FIRST
            continue
        elif seq != expect:
            seg_status[s] = S_OUT_OF_SEQUENCE
            fr[cur, 4] = -1
            cur = -1
            continue
        n = seg_len[s] - 1
        if fr[cur, 1] + n > max_frag or fr[cur, 3] + seg_w[s] > max_segs:
            seg_status[s] = S_TOO_LONG
            fr[cur, 4] = -1
            cur = -1
            continue
        src = seg_off[s] + 1
        for k in range(n):
            app[ap + k] = ud[src + k]
        ap += n
        fr[cur, 1] += n
        fr[cur, 2] = s
        fr[cur, 3] += seg_w[s]
        expect = (seq + 1) & 0x3F
        if fin:
            fr[cur, 4] = 1
            cur = -1
    return nf


@njit(cache=True, inline="always")
def _range_bytes(rng):
    if rng == 0:
        return 2
    if rng == 1:
        return 4
    if rng == 2:
        return 8
    if rng == 3 or rng == 7 or rng == 11:
        return 1
    if rng == 4 or rng == 8:
        return 2
    if rng == 5 or rng == 9:
        return 4
    if rng == 6:
        return 0
    return -1


@njit(cache=True, inline="always")
def _read_n(b, p, n):
    if n == 1:
        return np.int64(b[p])
    if n == 2:
        return _le16(b, p)
    return _le32(b, p)


@njit(cache=True, nogil=True)
def _application(app, fr_off, fr_len, out, objs, crobs, aos):
    """Application header, IIN and object headers of each fragment.

    ``objs`` rows: group, variation, qualifier, start, stop, count; ``crobs`` rows: index,
    code, count, on, off, status; ``aos`` rows: index, value bits (float64 as int64),
    status. Each fragment's rows are ``[out[f, A_OBJ0], out[f, A_OBJ1])`` and so on.
    """
    no = 0
    nc = 0
    na = 0
    for f in range(fr_off.shape[0]):
        p = fr_off[f]
        end = p + fr_len[f]
        for c in range(NAF):
            out[f, c] = -1
        out[f, A_STATUS] = OK
        out[f, A_OBJ0] = no
        out[f, A_CROB0] = nc
        out[f, A_AO0] = na
        if end - p >= 1:
            out[f, A_CTL] = app[p]
        if end - p < 2:
            out[f, A_STATUS] = AP_TOO_SHORT
            out[f, A_OBJ1] = no
            out[f, A_CROB1] = nc
            out[f, A_AO1] = na
            continue
        func = np.int64(app[p + 1])
        out[f, A_FUNC] = func
        q = p + 2
        if func == 129 or func == 130 or func == 131:
            if end - q < 2:
                out[f, A_STATUS] = AP_TOO_SHORT
                out[f, A_OBJ1] = no
                out[f, A_CROB1] = nc
                out[f, A_AO1] = na
                continue
            out[f, A_IIN] = (np.int64(app[q]) << 8) | np.int64(app[q + 1])
            q += 2
        walk = _WALK[func]
        status = OK
        detail = -1
        while walk != W_NONE and end - q >= 2:
            g = np.int64(app[q])
            v = np.int64(app[q + 1])
            if end - q < 3:
                # group and variation without a qualifier (recorded, as Wireshark shows it)
                objs[no, 0] = g
                objs[no, 1] = v
                for c in range(2, 6):
                    objs[no, c] = -1
                no += 1
                status = AP_HEADER_TRUNCATED
                break
            qual = np.int64(app[q + 2])
            prefix = (qual >> 4) & 7
            rng = qual & 0x0F
            objs[no, 0] = g
            objs[no, 1] = v
            objs[no, 2] = qual
            objs[no, 3] = -1
            objs[no, 4] = -1
            objs[no, 5] = -1
            no += 1
            q += 3
            rb = _range_bytes(rng)
            if rb < 0 or prefix == 7:
                # reserved codes: no range field, no objects (as Wireshark); walk on
                if status == OK:
                    status = AP_BAD_QUALIFIER
                    detail = qual
                if rb < 0:
                    objs[no - 1, 5] = 0
                    continue
            if end - q < rb:
                status = AP_HEADER_TRUNCATED
                break
            start = np.int64(-1)
            count = np.int64(0)
            if rng <= 2:
                h = rb // 2
                start = _read_n(app, q, h)
                stop = _read_n(app, q + h, h)
                objs[no - 1, 3] = start
                objs[no - 1, 4] = stop
                count = stop - start + 1
                if count < 0:
                    status = AP_BAD_RANGE
                    break
            elif rng <= 5:
                start = _read_n(app, q, rb)
                objs[no - 1, 3] = start
                objs[no - 1, 4] = start
                count = 1
            elif rng >= 7:
                count = _read_n(app, q, rb)
                start = 0  # points are numbered from 0 when no index prefix is given
            objs[no - 1, 5] = count if rng != 6 else 0
            q += rb
            if count == 0:
                continue
            pb = 0
            if prefix == 1 or prefix == 4:
                pb = 1
            elif prefix == 2 or prefix == 5:
                pb = 2
            elif prefix == 3 or prefix == 6:
                pb = 4
            sized = prefix >= 4
            data = walk == W_DATA or sized or (g == 120 and (v == 3 or v == 9))
            size = _SIZES[g * 256 + v]
            if size == EMPTY:
                if data or pb > 0:
                    # Items on a data-less object: only one prefix is consumed (Wireshark)
                    if status == OK:
                        status = AP_ITEMS_ON_EMPTY
                        detail = g * 256 + v
                    if end - q < pb:
                        status = AP_DATA_TRUNCATED
                        break
                    q += pb
                continue
            if not data:
                need = count * pb
                if need > end - q:
                    status = AP_DATA_TRUNCATED
                    break
                q += need
                continue
            if sized:
                first = True
                k = np.int64(0)
                while k < count:
                    if end - q < pb:
                        status = AP_DATA_TRUNCATED
                        break
                    osz = _read_n(app, q, pb)
                    if end - q - pb < osz:
                        status = AP_DATA_TRUNCATED
                        break
                    if g == 70 and first and out[f, A_FILE_OFF] < 0:
                        out[f, A_FILE_OFF] = q + pb
                        out[f, A_FILE_LEN] = osz
                        out[f, A_FILE_VAR] = v
                    first = False
                    q += pb + osz
                    k += 1
                if k < count:
                    break
                continue
            if size == PACKED1 or size == PACKED2:
                bits = 1 if size == PACKED1 else 2
                if pb == 0:
                    need = (count * bits + 7) // 8
                else:
                    need = count * (pb + 1)
                if need > end - q:
                    status = AP_DATA_TRUNCATED
                    break
                q += need
                continue
            if size == OCTETS:
                size = v
            if size == DEVATTR:
                k = np.int64(0)
                while k < count:
                    if end - q < pb + 2:
                        status = AP_DATA_TRUNCATED
                        break
                    dlen = np.int64(app[q + pb + 1])
                    if end - q - pb - 2 < dlen:
                        status = AP_DATA_TRUNCATED
                        break
                    q += pb + 2 + dlen
                    k += 1
                if k < count:
                    break
                continue
            if size < 0:
                status = AP_UNKNOWN_OBJECT
                detail = g * 256 + v
                break
            item = pb + size
            whole = count
            if count > (end - q) // item:
                # the objects that are complete are still decoded, then the walk stops
                whole = (end - q) // item
                status = AP_DATA_TRUNCATED
            if g == 12 and v == 1:
                for k in range(whole):
                    r = q + k * item
                    crobs[nc, 0] = _read_n(app, r, pb) if pb > 0 else start + k
                    r += pb
                    crobs[nc, 1] = app[r]
                    crobs[nc, 2] = app[r + 1]
                    crobs[nc, 3] = _le32(app, r + 2)
                    crobs[nc, 4] = _le32(app, r + 6)
                    crobs[nc, 5] = app[r + 10]
                    nc += 1
            elif g == 41 and v >= 1 and v <= 4:
                for k in range(whole):
                    r = q + k * item
                    aos[na, 0] = _read_n(app, r, pb) if pb > 0 else start + k
                    r += pb
                    val = 0.0
                    if v == 1:
                        x = _le32(app, r)
                        val = float(x - (np.int64(1) << 32) if x >= (np.int64(1) << 31) else x)
                        st = app[r + 4]
                    elif v == 2:
                        x = _le16(app, r)
                        val = float(x - 65536 if x >= 32768 else x)
                        st = app[r + 2]
                    elif v == 3:
                        val = float(np.array([_le32(app, r)], dtype=np.uint32).view(np.float32)[0])
                        st = app[r + 4]
                    else:
                        lo = _le32(app, r)
                        hi = _le32(app, r + 4)
                        bits64 = np.array([lo | (hi << 32)], dtype=np.int64)
                        val = bits64.view(np.float64)[0]
                        st = app[r + 8]
                    aos[na, 1] = np.array([val], dtype=np.float64).view(np.int64)[0]
                    aos[na, 2] = st
                    na += 1
            if whole < count:
                break
            q += count * item
        if status == OK and walk != W_NONE and end - q == 1:
            status = AP_HEADER_TRUNCATED
        out[f, A_STATUS] = status
        out[f, A_DETAIL] = detail
        out[f, A_OBJ1] = no
        out[f, A_CROB1] = nc
        out[f, A_AO1] = na


# ---- schema -------------------------------------------------------------------------------
_I16, _I32, _I64 = pa.int16(), pa.int32(), pa.int64()

SCHEMA = E._schema(
    "dnp3",
    E.PDU_COMMON
    + [
        pa.field("is_request", pa.bool_()),  # application function < 128; null on link-only
        pa.field("src_addr", _I32),  # link-layer addresses
        pa.field("dst_addr", _I32),
        pa.field("link_len", _I16),
        pa.field("link_dir", pa.bool_()),
        pa.field("link_prm", pa.bool_()),
        pa.field("link_fcb", pa.bool_()),  # primary frames only
        pa.field("link_fcv", pa.bool_()),
        pa.field("link_dfc", pa.bool_()),  # secondary frames only
        pa.field("link_func", _I16),  # 4-bit code; meaning depends on link_prm
        pa.field("link_func_name", E._STR),
        pa.field("tr_fir", pa.bool_()),  # transport header of the final segment
        pa.field("tr_fin", pa.bool_()),
        pa.field("tr_seq", _I16),
        pa.field("tr_segments", _I32),  # segments joined into this fragment
        pa.field("app_fir", pa.bool_()),
        pa.field("app_fin", pa.bool_()),
        pa.field("app_con", pa.bool_()),
        pa.field("app_uns", pa.bool_()),
        pa.field("app_seq", _I16),
        pa.field("func_code", _I16),  # null on link-only frames
        pa.field("func_name", E._STR),
        pa.field("category", E._STR),
        pa.field("iin", pa.uint16()),  # responses: IIN1 << 8 | IIN2
        pa.field("iin_names", pa.list_(pa.string())),  # names of the bits set
        pa.field("obj_group", pa.list_(_I16)),  # one element per object header
        pa.field("obj_group_name", pa.list_(pa.string())),
        pa.field("obj_variation", pa.list_(_I16)),
        pa.field("obj_qualifier", pa.list_(_I16)),
        pa.field("obj_range_start", pa.list_(_I64)),  # start-stop and address qualifiers
        pa.field("obj_range_stop", pa.list_(_I64)),
        pa.field("obj_count", pa.list_(_I64)),  # number of objects the header names
        pa.field("crob_index", pa.list_(_I64)),  # g12v1 control relay output blocks
        pa.field("crob_control_code", pa.list_(_I16)),
        pa.field("crob_op_name", pa.list_(pa.string())),
        pa.field("crob_count", pa.list_(_I16)),
        pa.field("crob_on_time", pa.list_(_I64)),  # ms
        pa.field("crob_off_time", pa.list_(_I64)),
        pa.field("crob_status", pa.list_(_I16)),
        pa.field("crob_status_name", pa.list_(pa.string())),
        pa.field("ao_index", pa.list_(_I64)),  # g41v1-4 analog output commands
        pa.field("ao_value", pa.list_(pa.float64())),
        pa.field("ao_status", pa.list_(_I16)),
        pa.field("ao_status_name", pa.list_(pa.string())),
        pa.field("file_name", pa.string()),  # g70 file control objects
        pa.field("file_operation", E._STR),
    ]
    + E._REQUEST_MATCH,
    "DNP3 application fragments (after transport reassembly) and link-only frames.",
)


# ---- file transfer objects (rare: Python) --------------------------------------------------
_FILE_MODES = {0: "null", 1: "read", 2: "write", 3: "append"}


def _file_object(data: bytes, func: int, var: int) -> tuple[str | None, str]:
    """(file name, operation) of one g70 object's data."""
    name = None
    by_function = {26: "close", 28: "get_info", 29: "authenticate", 30: "abort"}
    if var == 3 and len(data) >= 26:  # file command
        noff, nlen = struct.unpack_from("<HH", data, 0)
        mode = struct.unpack_from("<H", data, 20)[0]
        name = _file_string(data, noff, nlen, 26)
        base = {25: "open", 27: "delete", 26: "close"}.get(func, FUNCTIONS.name(func))
        op = f"{base}_{_FILE_MODES.get(mode, f'mode_{mode}')}" if func == 25 else base
        return name, op
    if var == 7 and len(data) >= 20:  # file descriptor
        noff, nlen = struct.unpack_from("<HH", data, 0)
        return _file_string(data, noff, nlen, 20), "file_descriptor"
    if func in by_function:
        return None, by_function[func]
    if var == 2 and len(data) >= 12:  # authentication
        return None, "authenticate"
    if var == 4:
        return None, "command_status"
    if var == 5:
        return None, "write_block" if func == 2 else "read_block"
    if var == 6:
        return None, "transport_status"
    if var == 8:
        return data.decode("latin-1"), "file_specification"
    return name, FUNCTIONS.name(func)


def _file_string(data: bytes, off: int, n: int, fixed: int) -> str | None:
    # the offset counts from the start of the object (after its size prefix)
    if off < fixed or off + n > len(data):
        off = fixed
    text = data[off : off + n]
    return text.decode("latin-1") if text else None


# ---- the dissector ---------------------------------------------------------------------------
class Dnp3Dissector(Dissector):
    name = "dnp3"
    tables = {"dnp3": SCHEMA}
    framers = (framing.DNP3,)
    wants_udp = True
    semantics = (FUNCTIONS, LINK_FUNCTIONS, IIN_BITS, CONTROL_STATUS, OBJECT_GROUPS)

    def __init__(self) -> None:
        self.matcher = RequestMatcher(width=1)
        # open fragments at the end of a chunk: key → (transport byte + data, segments, env)
        self.carry: dict[tuple[int, int], tuple[bytes, int, dict[str, pa.Array]]] = {}

    # -- link frames from TCP and UDP ------------------------------------------------------
    def _frames(self, ctx: ChunkContext):
        idx = ctx.pdus(framing.DNP3)
        P = ctx.track.pdus
        t_in, t_off, t_len = ctx.pdu_locations(idx)
        udp = ctx.udp(MIN_DATAGRAM)
        c = ctx.cols
        if udp.shape[0]:
            pay_off = c[udp, L.PAY_OFF]
            pay_len = c[udp, L.PAY_LEN]
            cap = int(pay_len.sum() // 10) + 1
            f_pkt = np.empty(cap, np.int64)
            f_off = np.empty(cap, np.int64)
            f_len = np.empty(cap, np.int64)
            trail = np.empty(udp.shape[0], np.int64)
            nf = _udp_split(ctx.chunk.buf, udp, pay_off, pay_len, f_pkt, f_off, f_len, trail)
            f_pkt, f_off, f_len = f_pkt[:nf], f_off[:nf], f_len[:nf]
            bad_trail = np.flatnonzero(trail > 0)
            if bad_trail.shape[0]:
                ctx.weird(
                    ctx.packet_envelope(udp[bad_trail]),
                    ["dnp3_udp_trailing_bytes"] * bad_trail.shape[0],
                    [f"{int(x)} bytes after the last link frame" for x in trail[bad_trail]],
                    "dnp3",
                )
        else:
            f_pkt = f_off = f_len = np.zeros(0, np.int64)
        n_tcp, n_udp = idx.shape[0], f_pkt.shape[0]
        frame = np.concatenate([P[idx, T.P_FRAME], ctx.chunk.first_frame + f_pkt])
        in_arena = np.concatenate([t_in, np.zeros(n_udp, np.int64)])
        off = np.concatenate([t_off, f_off])
        length = np.concatenate([t_len, f_len])
        flow = np.concatenate([P[idx, T.P_FLOW], ctx.track.pkt_flow[f_pkt]])
        orig = np.concatenate([P[idx, T.P_ORIG] != 0, ctx.track.pkt_orig[f_pkt] != 0])
        ts = np.concatenate([P[idx, T.P_TS], ctx.chunk.ts[f_pkt]])
        order = np.lexsort((np.arange(n_tcp + n_udp), frame))
        if n_tcp + n_udp == 0:
            return None
        parts = []
        if n_tcp:
            parts.append(ctx.pdu_envelope(idx))
        if n_udp:
            parts.append(ctx.packet_envelope(f_pkt))
        if len(parts) == 2:
            env = {k: pa.concat_arrays([parts[0][k], parts[1][k]]) for k in parts[0]}
        else:
            env = parts[0]
        env = take_envelope(env, order)
        return (
            in_arena[order],
            off[order],
            length[order],
            flow[order],
            orig[order],
            ts[order],
            frame[order],
            env,
        )

    def process(self, ctx: ChunkContext) -> dict[str, pa.RecordBatch]:
        if ctx.pdus(framing.DNP3).shape[0] == 0 and ctx.udp(MIN_DATAGRAM).shape[0] == 0:
            return {}
        frames = self._frames(ctx)
        if frames is None:
            return {}
        in_arena, off, length, flow, orig, ts, frame, env = frames
        n = off.shape[0]
        # carried open fragments go first in the user-data buffer
        carry_keys = list(self.carry)
        carry_bytes = [self.carry[k][0] for k in carry_keys]
        carry_len = sum(len(b) for b in carry_bytes)
        ud = np.empty(carry_len + int(length.sum()) + 1, np.uint8)
        pos = 0
        c_off, c_len = [], []
        for b in carry_bytes:
            ud[pos : pos + len(b)] = np.frombuffer(b, np.uint8)
            c_off.append(pos)
            c_len.append(len(b))
            pos += len(b)
        lf = np.empty((n, NLF), np.int64)
        _links(ctx.chunk.buf, ctx.track.arena, in_arena, off, length, ud, carry_len, lf)

        self._link_weird(ctx, env, lf)

        # ---- transport reassembly
        segs = np.flatnonzero(lf[:, LF_KIND] == K_SEGMENT)
        nc = len(carry_keys)
        seg_off = np.concatenate([np.array(c_off, np.int64), lf[segs, LF_UD_OFF]])
        seg_len = np.concatenate([np.array(c_len, np.int64), lf[segs, LF_UD_LEN]])
        seg_w = np.concatenate(
            [
                np.array([self.carry[k][1] for k in carry_keys], np.int64),
                np.ones(segs.shape[0], np.int64),
            ]
        )
        seg_k1 = np.concatenate(
            [np.array([k[0] for k in carry_keys], np.int64), flow[segs] * 2 + orig[segs]]
        )
        seg_k2 = np.concatenate(
            [
                np.array([k[1] for k in carry_keys], np.int64),
                (lf[segs, LF_SRC] << 16) | lf[segs, LF_DST],
            ]
        )
        ns = seg_off.shape[0]
        sorder = np.lexsort((np.arange(ns), seg_k2, seg_k1))
        app = np.empty(max(int(seg_len.sum()), 1), np.uint8)
        seg_status = np.zeros(ns, np.int64)
        fr = np.zeros((ns, 5), np.int64)
        nfr = _reassemble(
            ud,
            seg_off,
            seg_len,
            seg_w,
            seg_k1,
            seg_k2,
            sorder,
            MAX_FRAGMENT,
            MAX_SEGMENTS,
            app,
            seg_status,
            fr,
        )
        fr = fr[:nfr]
        old_carry = self.carry
        self.carry = {}
        for f in np.flatnonzero(fr[:, 4] == 0):
            s = int(fr[f, 2])
            a, ln = int(fr[f, 0]), int(fr[f, 1])
            tr = 0x40 | (int(ud[seg_off[s]]) & 0x3F)
            key = (int(seg_k1[s]), int(seg_k2[s]))
            if s < nc:
                cenv = old_carry[carry_keys[s]][2]
            else:
                cenv = take_envelope(env, np.array([segs[s - nc]]))
            self.carry[key] = (bytes([tr]) + app[a : a + ln].tobytes(), int(fr[f, 3]), cenv)
        self._segment_weird(ctx, env, segs, nc, seg_status, old_carry, carry_keys)

        done = np.flatnonzero(fr[:, 4] == 1)
        fr = fr[done]
        frag_link = segs[fr[:, 2] - nc]  # the final segment is always from this chunk
        nfrag = fr.shape[0]
        total = int(fr[:, 1].sum()) if nfrag else 0
        af = np.empty((nfrag, NAF), np.int64)
        objs = np.empty((total // 3 + nfrag + 1, 6), np.int64)
        crobs = np.empty((total // 11 + 1, 6), np.int64)
        aos = np.empty((total // 3 + 1, 3), np.int64)
        _application(app, fr[:, 0].copy(), fr[:, 1].copy(), af, objs, crobs, aos)

        # ---- rows: fragments and link-only frames, in frame order
        link_only = np.flatnonzero((lf[:, LF_KIND] == K_LINK_ONLY) & (lf[:, LF_STATUS] == OK))
        row_link = np.concatenate([frag_link, link_only])
        row_frag = np.concatenate([np.arange(nfrag), np.full(link_only.shape[0], -1)])
        order = np.argsort(row_link, kind="stable")
        row_link, row_frag = row_link[order], row_frag[order]
        rows = row_link.shape[0]
        if rows == 0:
            return {}
        renv = take_envelope(env, row_link)
        self._app_weird(ctx, renv, row_frag, af)
        return {
            "dnp3": self._batch(
                ctx, renv, row_link, row_frag, lf, ud, fr, af, objs, crobs, aos, app, flow, ts
            )
        }

    # -- weird rows ---------------------------------------------------------------------------
    @staticmethod
    def _link_weird(ctx, env, lf):
        bad = np.flatnonzero(lf[:, LF_STATUS] != OK)
        if not bad.shape[0]:
            return
        details = []
        for j in bad:
            st = int(lf[j, LF_STATUS])
            d = f"length field {int(lf[j, LF_LEN])}, {int(lf[j, LF_SRC])} -> {int(lf[j, LF_DST])}"
            if st == L_BAD_DATA_CRC:
                d += f", data block {int(lf[j, LF_DETAIL])}"
            details.append(d)
        ctx.weird(
            take_envelope(env, bad),
            [LINK_WEIRD[int(s)] for s in lf[bad, LF_STATUS]],
            details,
            "dnp3",
        )

    @staticmethod
    def _segment_weird(ctx, env, segs, nc, seg_status, old_carry, carry_keys):
        bad = np.flatnonzero(seg_status != OK)
        if not bad.shape[0]:
            return
        names = [SEGMENT_WEIRD[int(seg_status[s])] for s in bad]
        details = [None] * bad.shape[0]
        parts = []
        for s in bad:
            if s >= nc:
                parts.append(take_envelope(env, np.array([segs[s - nc]])))
            else:
                parts.append(old_carry[carry_keys[s]][2])
        merged = {k: pa.concat_arrays([p[k] for p in parts]) for k in parts[0]}
        ctx.weird(merged, names, details, "dnp3")

    @staticmethod
    def _app_weird(ctx, renv, row_frag, af):
        frag_rows = np.flatnonzero(row_frag >= 0)
        st = af[row_frag[frag_rows], A_STATUS] if frag_rows.shape[0] else np.zeros(0, np.int64)
        bad = frag_rows[st != OK]
        if not bad.shape[0]:
            return
        names, details = [], []
        for r in bad:
            a = af[row_frag[r]]
            names.append(APP_WEIRD[int(a[A_STATUS])])
            d = f"function {int(a[A_FUNC])}"
            if a[A_DETAIL] >= 0:
                if a[A_STATUS] == AP_BAD_QUALIFIER:
                    d += f", qualifier 0x{int(a[A_DETAIL]):02x}"
                else:
                    d += f", object g{int(a[A_DETAIL]) >> 8}v{int(a[A_DETAIL]) & 0xFF}"
            details.append(d)
        ctx.weird(take_envelope(renv, bad), names, details, "dnp3")

    # -- the batch ------------------------------------------------------------------------------
    def _batch(
        self, ctx, renv, row_link, row_frag, lf, ud, fr, af, objs, crobs, aos, app, flow, ts
    ):
        rows = row_link.shape[0]
        is_frag = row_frag >= 0
        fi = np.where(is_frag, row_frag, 0)
        lk = lf[row_link]
        ctl = lk[:, LF_CTL]
        prm = (ctl & 0x40) != 0
        a = af[fi] if af.shape[0] else np.full((rows, NAF), -1, np.int64)
        a = np.where(is_frag[:, None], a, -1)
        func = a[:, A_FUNC]
        has_func = func >= 0
        actl = a[:, A_CTL]
        has_ctl = actl >= 0
        # transport byte of the final segment
        tr = np.full(rows, -1, np.int64)
        if is_frag.any():
            tr[is_frag] = ud[lf[row_link[is_frag], LF_UD_OFF]]
        has_tr = tr >= 0
        nseg = np.where(is_frag, fr[fi, 3] if fr.shape[0] else 0, 0)
        link_code = (prm.astype(np.int64) << 4) | (ctl & 0x0F)

        # request / response pairing: (flow, link pair, application sequence)
        rflow = flow[row_link]
        seq = actl & 0x0F
        src, dst = lk[:, LF_SRC], lk[:, LF_DST]
        is_req = has_func & (func >= 1) & (func < 128)
        is_resp = func == 129
        part = np.flatnonzero(is_req | is_resp)
        matched = np.zeros(rows, bool)
        req_frame = np.zeros(rows, np.int64)
        req_ts = np.zeros(rows, np.int64)
        if part.shape[0]:
            k2 = np.where(is_req, (src << 20) | (dst << 4), (dst << 20) | (src << 4)) | seq
            m, rf, rts, _ = self.matcher.match(
                rflow[part],
                k2[part],
                is_req[part],
                renv["frame"].to_numpy()[part],
                ts[row_link][part],
                func[part].reshape(-1, 1),
            )
            matched[part] = m
            req_frame[part] = rf
            req_ts[part] = rts
        rts_now = ts[row_link]

        batch = dict(renv)
        batch.update(
            {
                "is_request": pa.array(func < 128, mask=~has_func),
                "src_addr": pa.array(src.astype(np.int32)),
                "dst_addr": pa.array(dst.astype(np.int32)),
                "link_len": pa.array(lk[:, LF_LEN].astype(np.int16)),
                "link_dir": pa.array((ctl & 0x80) != 0),
                "link_prm": pa.array(prm),
                "link_fcb": pa.array((ctl & 0x20) != 0, mask=~prm),
                "link_fcv": pa.array((ctl & 0x10) != 0, mask=~prm),
                "link_dfc": pa.array((ctl & 0x10) != 0, mask=prm),
                "link_func": pa.array((ctl & 0x0F).astype(np.int16)),
                "link_func_name": LINK_FUNCTIONS.names(link_code),
                "tr_fir": pa.array((tr & 0x40) != 0, mask=~has_tr),
                "tr_fin": pa.array((tr & 0x80) != 0, mask=~has_tr),
                "tr_seq": pa.array((tr & 0x3F).astype(np.int16), mask=~has_tr),
                "tr_segments": pa.array(nseg.astype(np.int32), mask=~has_tr),
                "app_fir": pa.array((actl & 0x80) != 0, mask=~has_ctl),
                "app_fin": pa.array((actl & 0x40) != 0, mask=~has_ctl),
                "app_con": pa.array((actl & 0x20) != 0, mask=~has_ctl),
                "app_uns": pa.array((actl & 0x10) != 0, mask=~has_ctl),
                "app_seq": pa.array(seq.astype(np.int16), mask=~has_ctl),
                "func_code": pa.array(func.astype(np.int16), mask=~has_func),
                "func_name": FUNCTIONS.optional_names(func),
                "category": _categories(func, link_code),
                "iin": pa.array(np.maximum(a[:, A_IIN], 0).astype(np.uint16), mask=a[:, A_IIN] < 0),
                "iin_names": _iin_names(a[:, A_IIN]),
                **pairing_columns(matched, req_frame, req_ts, rts_now),
            }
        )
        # object headers, controls, analog outputs: list columns
        o0 = np.where(is_frag, a[:, A_OBJ0], 0)
        o1 = np.where(is_frag, a[:, A_OBJ1], 0)
        oi, ooff = _gather(o0, o1)
        og = objs[oi]
        batch["obj_group"] = _list(ooff, og[:, 0].astype(np.int16))
        batch["obj_group_name"] = _list(ooff, _name_values(OBJECT_GROUPS, og[:, 0]))
        batch["obj_variation"] = _list(ooff, og[:, 1].astype(np.int16))
        batch["obj_qualifier"] = _list(ooff, og[:, 2].astype(np.int16), og[:, 2] < 0)
        batch["obj_range_start"] = _list(ooff, og[:, 3], og[:, 3] < 0)
        batch["obj_range_stop"] = _list(ooff, og[:, 4], og[:, 4] < 0)
        batch["obj_count"] = _list(ooff, og[:, 5], og[:, 5] < 0)
        ci, coff = _gather(np.where(is_frag, a[:, A_CROB0], 0), np.where(is_frag, a[:, A_CROB1], 0))
        cr = crobs[ci]
        batch["crob_index"] = _list(coff, cr[:, 0])
        batch["crob_control_code"] = _list(coff, cr[:, 1].astype(np.int16))
        batch["crob_op_name"] = _list(
            coff,
            pa.array(
                [
                    CROB_TCC[(c >> 6) & 3] + CROB_OPS.get(c & 0x0F, f"op_{c & 0x0F}")
                    for c in cr[:, 1].tolist()
                ],
                pa.string(),
            ),
        )
        batch["crob_count"] = _list(coff, cr[:, 2].astype(np.int16))
        batch["crob_on_time"] = _list(coff, cr[:, 3])
        batch["crob_off_time"] = _list(coff, cr[:, 4])
        batch["crob_status"] = _list(coff, cr[:, 5].astype(np.int16))
        batch["crob_status_name"] = _list(coff, _name_values(CONTROL_STATUS, cr[:, 5]))
        ai, aoff = _gather(np.where(is_frag, a[:, A_AO0], 0), np.where(is_frag, a[:, A_AO1], 0))
        ao = aos[ai]
        batch["ao_index"] = _list(aoff, ao[:, 0])
        batch["ao_value"] = _list(aoff, ao[:, 1].copy().view(np.float64))
        batch["ao_status"] = _list(aoff, ao[:, 2].astype(np.int16))
        batch["ao_status_name"] = _list(aoff, _name_values(CONTROL_STATUS, ao[:, 2]))
        names: list[str | None] = [None] * rows
        ops: list[str | None] = [None] * rows
        for r in np.flatnonzero(a[:, A_FILE_OFF] >= 0):
            p, n = int(a[r, A_FILE_OFF]), int(a[r, A_FILE_LEN])
            names[r], ops[r] = _file_object(
                app[p : p + n].tobytes(), int(func[r]), int(a[r, A_FILE_VAR])
            )
        batch["file_name"] = pa.array(names, pa.string())
        batch["file_operation"] = pa.array(ops, pa.string()).dictionary_encode()
        return pa.RecordBatch.from_pydict(batch, schema=SCHEMA)

    def finish(self, capture: str) -> dict[str, pa.RecordBatch]:
        """Fragments whose final segment never came become weird rows."""
        if not self.carry:
            return {}
        envs = [v[2] for v in self.carry.values()]
        n = len(envs)
        merged = {k: pa.concat_arrays([e[k] for e in envs]) for k in envs[0]}
        batch = {
            k: merged[k]
            for k in (
                "capture",
                "frame",
                "ts",
                "src_ip",
                "dst_ip",
                "src_port",
                "dst_port",
                "flow_id",
            )
        }
        batch["name"] = pa.array(["dnp3_transport_unfinished"] * n).dictionary_encode()
        batch["detail"] = pa.array(
            [
                f"{v[1]} segments, {len(v[0]) - 1} bytes at the end of the capture"
                for v in self.carry.values()
            ]
        )
        batch["layer"] = pa.array(["dnp3"] * n).dictionary_encode()
        self.carry = {}
        return {"weird": pa.RecordBatch.from_pydict(batch, schema=E.WEIRD)}


# ---- helpers ---------------------------------------------------------------------------------
def _gather(start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of rows ``[start[i], stop[i])`` concatenated, and list offsets."""
    lens = np.maximum(stop - start, 0)
    offsets = np.zeros(lens.shape[0] + 1, np.int32)
    np.cumsum(lens, out=offsets[1:])
    total = int(offsets[-1])
    idx = np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1].astype(np.int64), lens)
    idx += np.repeat(start, lens)
    return idx, offsets


def _list(offsets: np.ndarray, values, null: np.ndarray | None = None) -> pa.ListArray:
    if not isinstance(values, pa.Array):
        values = pa.array(values, mask=null)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def _name_values(sem: Semantics, codes: np.ndarray) -> pa.Array:
    if codes.shape[0] == 0:
        return pa.array([], pa.string())
    uniq, inv = np.unique(codes, return_inverse=True)
    names = np.array([sem.name(int(u)) for u in uniq], dtype=object)
    return pa.array(names[inv.reshape(-1)], pa.string())


_IIN_ORDER = [0x0100 << k for k in range(8)] + [1 << k for k in range(8)]
_IIN_NAMES = np.array([IIN_BITS.name(b) for b in _IIN_ORDER], dtype=object)


def _iin_names(iin: np.ndarray) -> pa.ListArray:
    bits = np.array(_IIN_ORDER, np.int64)
    valid = iin >= 0
    hit = ((iin[:, None] & bits[None, :]) != 0) & valid[:, None]
    offsets = np.zeros(iin.shape[0] + 1, np.int32)
    np.cumsum(hit.sum(axis=1), out=offsets[1:])
    values = pa.array(_IIN_NAMES[np.nonzero(hit)[1]], pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~valid))


def _categories(func: np.ndarray, link_code: np.ndarray) -> pa.Array:
    """Application function's category; on link-only rows, the link function's."""
    cats = [
        "",
        *sorted(
            {m.category for s in (FUNCTIONS, LINK_FUNCTIONS) for m in s.rows.values() if m.category}
        ),
    ]
    code_of = {c: i for i, c in enumerate(cats)}
    app_lut = np.zeros(256, np.int32)
    for k, m in FUNCTIONS.rows.items():
        app_lut[int(k)] = code_of[m.category or ""]
    link_lut = np.zeros(32, np.int32)
    for k, m in LINK_FUNCTIONS.rows.items():
        link_lut[int(k)] = code_of[m.category or ""]
    codes = np.where(func >= 0, app_lut[np.maximum(func, 0) & 0xFF], link_lut[link_code & 0x1F])
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes == 0), pa.array(cats))


DISSECTOR = Dnp3Dissector
