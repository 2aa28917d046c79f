"""DNP3 (IEEE 1815) encoders: link frames, transport segments and application fragments.

The three layers compose inside-out.  Application helpers return one *fragment*
(application control, function code, IIN for responses, object headers and data);
:func:`frames` cuts a fragment into transport segments of at most
:data:`MAX_SEGMENT_DATA` bytes and wraps each in a link frame with its CRCs::

    frag = read_class(seq=3)                       # integrity poll, classes 1/2/3/0
    for frame in frames(dst=10, src=1, fragment=frag):
        ...                                        # TCP/UDP port 20000 payloads

Object helpers (``binary_inputs``, ``analog_inputs``, ``crob``, ``analog_output`` ...)
return an object header followed by its objects, ready to be concatenated into the
``objects`` argument of :func:`request` / :func:`response`.  Multi-byte fields are little
endian as on the wire; times are milliseconds since 1970-01-01 UTC.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "AI_ONLINE",
    "BI_ONLINE",
    "BI_STATE",
    "CROB_CLOSE",
    "CROB_LATCH_OFF",
    "CROB_LATCH_ON",
    "CROB_NUL",
    "CROB_PULSE_OFF",
    "CROB_PULSE_ON",
    "CROB_TRIP",
    "FC_CLOSE_FILE",
    "FC_COLD_RESTART",
    "FC_CONFIRM",
    "FC_DIRECT_OPERATE",
    "FC_DIRECT_OPERATE_NO_ACK",
    "FC_DISABLE_UNSOLICITED",
    "FC_ENABLE_UNSOLICITED",
    "FC_OPEN_FILE",
    "FC_OPERATE",
    "FC_READ",
    "FC_RESPONSE",
    "FC_SELECT",
    "FC_UNSOLICITED_RESPONSE",
    "FC_WARM_RESTART",
    "FC_WRITE",
    "FILE_MODE_APPEND",
    "FILE_MODE_READ",
    "FILE_MODE_WRITE",
    "IIN_ALL_STATIONS",
    "IIN_ALREADY_EXECUTING",
    "IIN_CLASS1_EVENTS",
    "IIN_CLASS2_EVENTS",
    "IIN_CLASS3_EVENTS",
    "IIN_CONFIG_CORRUPT",
    "IIN_DEVICE_RESTART",
    "IIN_DEVICE_TROUBLE",
    "IIN_EVENT_BUFFER_OVERFLOW",
    "IIN_LOCAL_CONTROL",
    "IIN_NEED_TIME",
    "IIN_NO_FUNC_CODE_SUPPORT",
    "IIN_OBJECT_UNKNOWN",
    "IIN_PARAMETER_ERROR",
    "LINK_ACK",
    "LINK_CONFIRMED_USER_DATA",
    "LINK_NACK",
    "LINK_REQUEST_STATUS",
    "LINK_RESET_LINK_STATES",
    "LINK_STATUS",
    "LINK_TEST_LINK_STATES",
    "LINK_UNCONFIRMED_USER_DATA",
    "MAX_LINK_USER_DATA",
    "MAX_SEGMENT_DATA",
    "Q_ALL",
    "Q_COUNT8",
    "Q_COUNT16",
    "Q_INDEX8_COUNT8",
    "Q_INDEX16_COUNT16",
    "Q_SIZE16_FREE8",
    "Q_START_STOP8",
    "Q_START_STOP16",
    "START",
    "STATUS_SUCCESS",
    "Crob",
    "all_objects",
    "analog_input_events",
    "analog_inputs",
    "analog_output",
    "app_control",
    "binary_input_events",
    "binary_inputs",
    "class_objects",
    "clear_restart",
    "cold_restart",
    "confirm",
    "count_header",
    "crc",
    "crob",
    "crobs",
    "direct_operate",
    "disable_unsolicited",
    "enable_unsolicited",
    "file_close",
    "file_command",
    "file_command_status",
    "file_open",
    "file_read",
    "file_transport",
    "frames",
    "link_control",
    "link_frame",
    "object_header",
    "operate",
    "range_header",
    "read",
    "read_class",
    "read_range",
    "request",
    "response",
    "response_fragments",
    "restart_response",
    "segments",
    "select",
    "time_delay",
    "time_object",
    "transport_header",
    "unsolicited_response",
    "warm_restart",
    "write_time",
]

START = b"\x05\x64"

# link-layer function codes (control octet, low nibble); primary (PRM=1) then secondary
LINK_RESET_LINK_STATES = 0x0
LINK_TEST_LINK_STATES = 0x2
LINK_CONFIRMED_USER_DATA = 0x3
LINK_UNCONFIRMED_USER_DATA = 0x4
LINK_REQUEST_STATUS = 0x9
LINK_ACK = 0x0
LINK_NACK = 0x1
LINK_STATUS = 0xB

MAX_LINK_USER_DATA = 250  # the LENGTH octet counts 5 header octets + user data, max 255
MAX_SEGMENT_DATA = MAX_LINK_USER_DATA - 1  # application bytes per transport segment

# application function codes
FC_CONFIRM = 0x00
FC_READ = 0x01
FC_WRITE = 0x02
FC_SELECT = 0x03
FC_OPERATE = 0x04
FC_DIRECT_OPERATE = 0x05
FC_DIRECT_OPERATE_NO_ACK = 0x06
FC_COLD_RESTART = 0x0D
FC_WARM_RESTART = 0x0E
FC_ENABLE_UNSOLICITED = 0x14
FC_DISABLE_UNSOLICITED = 0x15
FC_OPEN_FILE = 0x19
FC_CLOSE_FILE = 0x1A
FC_RESPONSE = 0x81
FC_UNSOLICITED_RESPONSE = 0x82

# internal indications, as the 16-bit value IIN1 << 8 | IIN2
IIN_ALL_STATIONS = 0x0100
IIN_CLASS1_EVENTS = 0x0200
IIN_CLASS2_EVENTS = 0x0400
IIN_CLASS3_EVENTS = 0x0800
IIN_NEED_TIME = 0x1000
IIN_LOCAL_CONTROL = 0x2000
IIN_DEVICE_TROUBLE = 0x4000
IIN_DEVICE_RESTART = 0x8000
IIN_NO_FUNC_CODE_SUPPORT = 0x0001
IIN_OBJECT_UNKNOWN = 0x0002
IIN_PARAMETER_ERROR = 0x0004
IIN_EVENT_BUFFER_OVERFLOW = 0x0008
IIN_ALREADY_EXECUTING = 0x0010
IIN_CONFIG_CORRUPT = 0x0020

# qualifier codes: object prefix (high nibble) and range specifier (low nibble)
Q_START_STOP8 = 0x00
Q_START_STOP16 = 0x01
Q_ALL = 0x06
Q_COUNT8 = 0x07
Q_COUNT16 = 0x08
Q_INDEX8_COUNT8 = 0x17
Q_INDEX16_COUNT16 = 0x28
Q_SIZE16_FREE8 = 0x5B  # one-octet count, each object preceded by a two-octet size

# flag octets of static/event points
BI_ONLINE = 0x01
BI_STATE = 0x80
AI_ONLINE = 0x01

# CROB control code: operation type (low nibble) and trip/close code (top two bits)
CROB_NUL = 0x00
CROB_PULSE_ON = 0x01
CROB_PULSE_OFF = 0x02
CROB_LATCH_ON = 0x03
CROB_LATCH_OFF = 0x04
CROB_CLOSE = 0x40
CROB_TRIP = 0x80
STATUS_SUCCESS = 0

# g70 file modes
FILE_MODE_READ = 1
FILE_MODE_WRITE = 2
FILE_MODE_APPEND = 3

_CRC_TABLE: list[int] = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0xA6BC if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


# ---- link layer ---------------------------------------------------------------------------


def crc(data: bytes) -> int:
    """DNP3 CRC-16 (polynomial 0x3D65, reflected, complemented) of ``data``."""
    c = 0
    for byte in data:
        c = (c >> 8) ^ _CRC_TABLE[(c ^ byte) & 0xFF]
    return ~c & 0xFFFF


def link_control(
    function: int,
    from_master: bool = True,
    primary: bool = True,
    fcb: bool = False,
    fcv_dfc: bool = False,
) -> int:
    """The link control octet: DIR, PRM, FCB, FCV (primary) or DFC (secondary), function."""
    return (
        (0x80 if from_master else 0)
        | (0x40 if primary else 0)
        | (0x20 if fcb and primary else 0)
        | (0x10 if fcv_dfc else 0)
        | (function & 0x0F)
    )


def link_frame(dst: int, src: int, control: int, user_data: bytes = b"") -> bytes:
    """One link frame: header with its CRC, then user data in 16-octet blocks each + CRC."""
    if len(user_data) > MAX_LINK_USER_DATA:
        raise ValueError(f"link user data is {len(user_data)} > {MAX_LINK_USER_DATA} octets")
    head = START + struct.pack("<BBHH", 5 + len(user_data), control, dst, src)
    out = bytearray(head + struct.pack("<H", crc(head)))
    for k in range(0, len(user_data), 16):
        block = user_data[k : k + 16]
        out += block + struct.pack("<H", crc(block))
    return bytes(out)


# ---- transport layer ----------------------------------------------------------------------


def transport_header(fir: bool, fin: bool, seq: int) -> int:
    """The transport octet: FIN (0x80), FIR (0x40) and a 6-bit sequence number."""
    return (0x80 if fin else 0) | (0x40 if fir else 0) | (seq & 0x3F)


def segments(fragment: bytes, seq: int = 0) -> list[bytes]:
    """Transport segments (header + up to 249 application octets) of one fragment.

    Sequence numbers count up from ``seq`` modulo 64; an empty fragment still gives one
    FIR|FIN segment.
    """
    pieces = [fragment[k : k + MAX_SEGMENT_DATA] for k in range(0, len(fragment), MAX_SEGMENT_DATA)]
    pieces = pieces or [b""]
    last = len(pieces) - 1
    return [
        bytes([transport_header(i == 0, i == last, seq + i)]) + piece
        for i, piece in enumerate(pieces)
    ]


def frames(
    dst: int,
    src: int,
    fragment: bytes,
    from_master: bool = True,
    transport_seq: int = 0,
    confirmed: bool = False,
    fcb: bool = False,
) -> list[bytes]:
    """Link frames carrying one application fragment (one frame per transport segment).

    Frames use Unconfirmed User Data, or Confirmed User Data with FCV set and the given
    FCB when ``confirmed``.  Concatenate them for a TCP stream or send one per datagram.
    """
    function = LINK_CONFIRMED_USER_DATA if confirmed else LINK_UNCONFIRMED_USER_DATA
    control = link_control(function, from_master, True, fcb, confirmed)
    return [link_frame(dst, src, control, seg) for seg in segments(fragment, transport_seq)]


# ---- application layer: headers -----------------------------------------------------------


def app_control(
    seq: int, fir: bool = True, fin: bool = True, con: bool = False, uns: bool = False
) -> int:
    """The application control octet: FIR, FIN, CON, UNS and a 4-bit sequence number."""
    return (
        (0x80 if fir else 0)
        | (0x40 if fin else 0)
        | (0x20 if con else 0)
        | (0x10 if uns else 0)
        | (seq & 0x0F)
    )


def request(
    seq: int, function: int, objects: bytes = b"", *, con: bool = False, uns: bool = False
) -> bytes:
    """A single-fragment request (FIR and FIN set): control, function code, objects."""
    return bytes([app_control(seq, con=con, uns=uns), function]) + objects


def response(
    seq: int,
    iin: int = 0,
    objects: bytes = b"",
    *,
    function: int = FC_RESPONSE,
    fir: bool = True,
    fin: bool = True,
    con: bool = False,
    uns: bool = False,
) -> bytes:
    """A response fragment: control, function (129), IIN1, IIN2 (``iin`` = IIN1 << 8 | IIN2)."""
    ctl = app_control(seq, fir, fin, con, uns)
    return bytes([ctl, function]) + struct.pack(">H", iin & 0xFFFF) + objects


def response_fragments(seq: int, iin: int, object_chunks: Sequence[bytes]) -> list[bytes]:
    """A multi-fragment response: one fragment per chunk of whole objects, FIR on the first,
    FIN on the last, sequence numbers counting up from ``seq``; every fragment but the last
    asks for confirmation (CON), which the master gives before the next one is sent."""
    last = len(object_chunks) - 1
    return [
        response(seq + k, iin, chunk, fir=k == 0, fin=k == last, con=k != last)
        for k, chunk in enumerate(object_chunks)
    ]


def unsolicited_response(seq: int, iin: int = 0, objects: bytes = b"", con: bool = True) -> bytes:
    """An unsolicited response (function 130, UNS set, CON set unless told otherwise)."""
    return response(seq, iin, objects, function=FC_UNSOLICITED_RESPONSE, con=con, uns=True)


def confirm(seq: int, uns: bool = False) -> bytes:
    """An application confirm (function 0) of the response with sequence ``seq``."""
    return request(seq, FC_CONFIRM, uns=uns)


def object_header(group: int, variation: int, qualifier: int, range_field: bytes = b"") -> bytes:
    """An object header: group, variation, qualifier and the raw range field."""
    return bytes([group, variation, qualifier]) + range_field


def all_objects(group: int, variation: int) -> bytes:
    """Header naming all objects of a group/variation (qualifier 0x06, no range)."""
    return object_header(group, variation, Q_ALL)


def range_header(group: int, variation: int, start: int, stop: int) -> bytes:
    """Header with a start-stop range: 1-octet (0x00) when it fits, else 2-octet (0x01)."""
    if not 0 <= start <= stop <= 0xFFFF:
        raise ValueError(f"bad range {start}..{stop}")
    if stop <= 0xFF:
        return object_header(group, variation, Q_START_STOP8, bytes([start, stop]))
    return object_header(group, variation, Q_START_STOP16, struct.pack("<HH", start, stop))


def count_header(group: int, variation: int, count: int) -> bytes:
    """Header with an object count: 1-octet (0x07) when it fits, else 2-octet (0x08)."""
    if count <= 0xFF:
        return object_header(group, variation, Q_COUNT8, bytes([count]))
    return object_header(group, variation, Q_COUNT16, struct.pack("<H", count))


def class_objects(classes: Iterable[int]) -> bytes:
    """Class data headers (g60v1 class 0, g60v2..v4 classes 1..3), qualifier 0x06."""
    out = b""
    for cls in classes:
        if not 0 <= cls <= 3:
            raise ValueError(f"no DNP3 event class {cls}")
        out += all_objects(60, cls + 1)
    return out


# ---- requests -----------------------------------------------------------------------------


def read(seq: int, objects: bytes) -> bytes:
    """A Read request (function 1) of the given object headers."""
    return request(seq, FC_READ, objects)


def read_class(seq: int, classes: Sequence[int] = (1, 2, 3, 0)) -> bytes:
    """A class poll; the default (classes 1, 2, 3 then 0) is the integrity poll."""
    return read(seq, class_objects(classes))


def read_range(seq: int, group: int, variation: int, start: int, stop: int) -> bytes:
    """A Read of points ``start..stop`` of one group/variation (e.g. g30v5 0..9)."""
    return read(seq, range_header(group, variation, start, stop))


def select(seq: int, objects: bytes) -> bytes:
    """Select (function 3) of CROB/analog-output objects; Operate must follow with the same."""
    return request(seq, FC_SELECT, objects)


def operate(seq: int, objects: bytes) -> bytes:
    """Operate (function 4) after a Select of identical objects."""
    return request(seq, FC_OPERATE, objects)


def direct_operate(seq: int, objects: bytes, no_ack: bool = False) -> bytes:
    """Direct Operate (function 5), or Direct Operate No Ack (6) when ``no_ack``."""
    return request(seq, FC_DIRECT_OPERATE_NO_ACK if no_ack else FC_DIRECT_OPERATE, objects)


def cold_restart(seq: int) -> bytes:
    """Cold Restart request (function 13, no objects)."""
    return request(seq, FC_COLD_RESTART)


def warm_restart(seq: int) -> bytes:
    """Warm Restart request (function 14, no objects)."""
    return request(seq, FC_WARM_RESTART)


def restart_response(seq: int, delay_ms: int, iin: int = 0, fine: bool = True) -> bytes:
    """The response to a restart: a g52 time delay (fine, ms) or g52v1 (coarse, seconds)."""
    return response(seq, iin, time_delay(delay_ms if fine else delay_ms // 1000, fine))


def enable_unsolicited(seq: int, classes: Sequence[int] = (1, 2, 3)) -> bytes:
    """Enable Unsolicited Responses (function 20) for event classes (g60v2..v4)."""
    return request(seq, FC_ENABLE_UNSOLICITED, class_objects(classes))


def disable_unsolicited(seq: int, classes: Sequence[int] = (1, 2, 3)) -> bytes:
    """Disable Unsolicited Responses (function 21) for event classes (g60v2..v4)."""
    return request(seq, FC_DISABLE_UNSOLICITED, class_objects(classes))


def write_time(seq: int, ms: int) -> bytes:
    """Write (function 2) of the absolute time g50v1 (ms since the epoch)."""
    return request(seq, FC_WRITE, time_object(ms))


def clear_restart(seq: int) -> bytes:
    """Write of g80v1 index 7 = 0: the master clearing the outstation's IIN1.7 restart bit."""
    return request(seq, FC_WRITE, range_header(80, 1, 7, 7) + b"\x00")


# ---- objects ------------------------------------------------------------------------------


def _u48(ms: int) -> bytes:
    return struct.pack("<Q", ms & 0xFFFFFFFFFFFF)[:6]


def time_object(ms: int) -> bytes:
    """g50v1 absolute time with its header (qualifier 0x07, one object)."""
    return count_header(50, 1, 1) + _u48(ms)


def time_delay(delay: int, fine: bool = True) -> bytes:
    """g52v2 (fine, ms) or g52v1 (coarse, s) time delay with its header."""
    return count_header(52, 2 if fine else 1, 1) + struct.pack("<H", delay)


def binary_inputs(
    start: int, states: Sequence[bool], variation: int = 2, flags: int = BI_ONLINE
) -> bytes:
    """Static binary inputs from index ``start``: g1v2 (flags octet each, state in bit 7)
    or g1v1 (packed bits, LSB first)."""
    head = range_header(1, variation, start, start + len(states) - 1)
    if variation == 1:
        packed = bytearray((len(states) + 7) // 8)
        for i, s in enumerate(states):
            if s:
                packed[i >> 3] |= 1 << (i & 7)
        return head + bytes(packed)
    if variation == 2:
        return head + bytes((flags & 0x7F) | (BI_STATE if s else 0) for s in states)
    raise ValueError(f"binary input variation {variation} is not g1v1/g1v2")


# analog input layouts by variation: (struct format, has flag); g30 static, g32 events
_AI_FORMATS = {
    1: ("<i", True),
    2: ("<h", True),
    3: ("<i", False),
    4: ("<h", False),
    5: ("<f", True),
    6: ("<d", True),
}
_AI_EVENT_FORMATS = {1: "<i", 2: "<h", 5: "<f", 6: "<d"}


def _analog(fmt: str, value: float) -> bytes:
    if fmt[-1] in "ih":
        return struct.pack(fmt, int(value))
    return struct.pack(fmt, value)


def analog_inputs(
    start: int, values: Sequence[float], variation: int = 1, flags: int = AI_ONLINE
) -> bytes:
    """Static analog inputs g30 (v1 32-bit+flag, v2 16-bit+flag, v3/v4 without flag,
    v5 float+flag, v6 double+flag) from index ``start``."""
    if variation not in _AI_FORMATS:
        raise ValueError(f"analog input variation {variation} is not g30v1..v6")
    fmt, has_flag = _AI_FORMATS[variation]
    body = b"".join((bytes([flags]) if has_flag else b"") + _analog(fmt, v) for v in values)
    return range_header(30, variation, start, start + len(values) - 1) + body


def _prefixed(group: int, variation: int, count: int, index_size: int) -> tuple[bytes, str]:
    """Header with an index-prefix qualifier (0x17 one octet, 0x28 two octets) and the
    struct code of the prefix."""
    if index_size == 1:
        return object_header(group, variation, Q_INDEX8_COUNT8, bytes([count])), "B"
    if index_size == 2:
        return object_header(group, variation, Q_INDEX16_COUNT16, struct.pack("<H", count)), "H"
    raise ValueError(f"index prefixes are 1 or 2 octets, not {index_size}")


def binary_input_events(
    events: Sequence[tuple[int, bool]],
    flags: int = BI_ONLINE,
    time_ms: int | None = None,
    index_size: int = 2,
) -> bytes:
    """Binary input change events ``(index, state)`` as g2v1, or g2v2 with an absolute
    time when ``time_ms`` is given; index prefixes of ``index_size`` octets (qualifier
    0x28, or 0x17 for one octet)."""
    var = 1 if time_ms is None else 2
    stamp = b"" if time_ms is None else _u48(time_ms)
    head, idx_fmt = _prefixed(2, var, len(events), index_size)
    body = b"".join(
        struct.pack(f"<{idx_fmt}B", idx, (flags & 0x7F) | (BI_STATE if s else 0)) + stamp
        for idx, s in events
    )
    return head + body


def analog_input_events(
    events: Sequence[tuple[int, float]],
    variation: int = 1,
    flags: int = AI_ONLINE,
    index_size: int = 2,
) -> bytes:
    """Analog input change events ``(index, value)`` as g32 (v1 32-bit, v2 16-bit,
    v5 float, v6 double; all with flag, no time), index-prefixed (0x28 or 0x17)."""
    if variation not in _AI_EVENT_FORMATS:
        raise ValueError(f"analog event variation {variation} is not g32v1/2/5/6")
    fmt = _AI_EVENT_FORMATS[variation]
    head, idx_fmt = _prefixed(32, variation, len(events), index_size)
    return head + b"".join(
        struct.pack(f"<{idx_fmt}B", idx, flags) + _analog(fmt, v) for idx, v in events
    )


@dataclass(frozen=True)
class Crob:
    """One Control Relay Output Block: point index, control code (operation type |
    CROB_CLOSE/CROB_TRIP, queue 0x10, clear 0x20), count, on/off times (ms), status."""

    index: int
    code: int = CROB_LATCH_ON
    count: int = 1
    on_ms: int = 0
    off_ms: int = 0
    status: int = STATUS_SUCCESS


def crobs(blocks: Sequence[Crob], index_size: int = 2) -> bytes:
    """Several g12v1 CROBs under one header (qualifier 0x28, or 0x17 for 1-octet indexes)."""
    head, idx_fmt = _prefixed(12, 1, len(blocks), index_size)
    return head + b"".join(
        struct.pack(f"<{idx_fmt}BBIIB", b.index, b.code, b.count, b.on_ms, b.off_ms, b.status)
        for b in blocks
    )


def crob(
    index: int,
    code: int = CROB_LATCH_ON,
    count: int = 1,
    on_ms: int = 0,
    off_ms: int = 0,
    status: int = STATUS_SUCCESS,
    index_size: int = 2,
) -> bytes:
    """One g12v1 Control Relay Output Block for point ``index`` with its header (see
    :class:`Crob` for the fields)."""
    return crobs([Crob(index, code, count, on_ms, off_ms, status)], index_size)


_AO_FORMATS = {1: "<i", 2: "<h", 3: "<f", 4: "<d"}


def analog_output(
    index: int,
    value: float,
    variation: int = 1,
    status: int = STATUS_SUCCESS,
    index_size: int = 2,
) -> bytes:
    """One g41 analog output command (v1 32-bit, v2 16-bit, v3 float, v4 double) for point
    ``index`` with its header (qualifier 0x28, or 0x17) and status octet."""
    if variation not in _AO_FORMATS:
        raise ValueError(f"analog output variation {variation} is not g41v1..v4")
    head, idx_fmt = _prefixed(41, variation, 1, index_size)
    value_bytes = _analog(_AO_FORMATS[variation], value)
    return head + struct.pack(f"<{idx_fmt}", index) + value_bytes + bytes([status])


# ---- file transfer (g70) ------------------------------------------------------------------


def _free_format(variation: int, data: bytes) -> bytes:
    """One g70 object with qualifier 0x5B (count 1, 2-octet object size prefix)."""
    return (
        object_header(70, variation, Q_SIZE16_FREE8, b"\x01") + struct.pack("<H", len(data)) + data
    )


def file_command(
    name: str,
    mode: int = FILE_MODE_READ,
    request_id: int = 0,
    max_block: int = 1024,
    created_ms: int = 0,
    permissions: int = 0o644,
    auth_key: int = 0,
    file_size: int = 0,
) -> bytes:
    """A g70v3 file command object (name offset 26, mode, request id ...) with header."""
    raw_name = name.encode()
    body = (
        struct.pack("<HH", 26, len(raw_name))
        + _u48(created_ms)
        + struct.pack("<HIIHHH", permissions, auth_key, file_size, mode, max_block, request_id)
        + raw_name
    )
    return _free_format(3, body)


def file_open(
    seq: int,
    name: str,
    mode: int = FILE_MODE_READ,
    request_id: int = 0,
    max_block: int = 1024,
    file_size: int = 0,
    created_ms: int = 0,
    permissions: int = 0o644,
    auth_key: int = 0,
) -> bytes:
    """Open File request (function 25) with a g70v3 file command: ``mode`` FILE_MODE_READ,
    _WRITE or _APPEND; ``file_size`` is the size of a file opened for writing."""
    command = file_command(
        name, mode, request_id, max_block, created_ms, permissions, auth_key, file_size
    )
    return request(seq, FC_OPEN_FILE, command)


def file_command_status(
    handle: int,
    file_size: int = 0,
    max_block: int = 1024,
    request_id: int = 0,
    status: int = 0,
    text: str = "",
) -> bytes:
    """A g70v4 file command status (handle, size, block size, request id, status) with
    header: what the outstation answers to Open/Close, or what Close File sends."""
    body = struct.pack("<IIHHB", handle, file_size, max_block, request_id, status) + text.encode()
    return _free_format(4, body)


def file_transport(handle: int, block: int, data: bytes = b"", last: bool = False) -> bytes:
    """A g70v5 file transport object (handle, block number with the last-block bit, data)."""
    number = (block & 0x7FFFFFFF) | (0x80000000 if last else 0)
    return _free_format(5, struct.pack("<II", handle, number) + data)


def file_read(seq: int, handle: int, block: int) -> bytes:
    """A Read (function 1) of one block of an open file: g70v5 with no data."""
    return read(seq, file_transport(handle, block))


def file_close(seq: int, handle: int, request_id: int = 0) -> bytes:
    """Close File request (function 26) with a g70v4 naming the handle."""
    return request(seq, FC_CLOSE_FILE, file_command_status(handle, 0, 0, request_id))
