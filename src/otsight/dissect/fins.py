"""Omron FINS over UDP and FINS/TCP.

A FINS frame is a 10-octet header (ICF, RSV, GCT, destination network/node/unit, source
network/node/unit, SID), a 2-octet command code (MRC/SRC, e.g. 0x0101 Memory Area Read)
and the command's parameters; a response repeats the command code and starts its data with
a 2-octet end code (MRES/SRES).

Detection is by content. A UDP datagram is FINS when it is at least 12 octets, RSV is 0, the
ICF reserved bits (0x3E) are 0, the gateway count is at most 7 (FINS allows 7 bridges) and
the command code is one FINS defines; on UDP port 9600 (either side) an unknown command code
is accepted too (the port breaks the tie) and reported. FINS/TCP is framed by its own framer
("FINS", a length, a command and an error code): command 2 (Frame Send) carries a FINS frame;
commands 0 and 1 are the node address handshake.

One row per FINS frame or FINS/TCP message. The kernel decodes the header and what says what a
frame does: memory area, address, bit and item count of the memory commands (the first item
of a Multiple Memory Area Read, source and destination of a Memory Area Transfer), program
number and mode of Run/Stop and the program area commands, the end code of responses and
the status and mode of a Controller Status Read answer. Controller Data Read answers (model
and version of the PLC) are rare and decoded in Python. Responses are paired with their
request by (flow, SID, command, requesting unit) and carry its memory area, address and
count.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.capture import _track as T
from otsight.capture import framing
from otsight.dissect import _l2l4 as L
from otsight.dissect.base import (
    CATEGORIES,
    ChunkContext,
    CodeNames,
    Dissector,
    Semantics,
    category_codes,
    dictionary_column,
    int_names,
    pairing_columns,
    take_envelope,
)
from otsight.dissect.base import null_negative as _col
from otsight.dissect.matching import RequestMatcher

PORT = 9600  # UDP and TCP, not IANA-registered: a tie-breaker only

# ---- semantics (command names after the FINS command reference, W227/W342) --------------------
_READ = ("read", ["T0801"])
_WRITE = ("write", ["T0836", "T0855"])
_UPLOAD = ("program", ["T0845"])
_DOWNLOAD = ("program", ["T0843"])

COMMANDS = Semantics(
    "fins",
    "command_code",
    {
        0x0101: ("memory_area_read", *_READ),
        0x0102: ("memory_area_write", *_WRITE),
        0x0103: ("memory_area_fill", *_WRITE),
        0x0104: ("multiple_memory_area_read", *_READ),
        0x0105: ("memory_area_transfer", *_WRITE),
        0x0201: ("parameter_area_read", "read", ["T0888"]),
        0x0202: ("parameter_area_write", "write", ["T0836"]),
        0x0203: ("parameter_area_clear", "write", ["T0836", "T0809"]),
        0x0220: ("data_link_table_read", "read", ["T0840"]),
        0x0221: ("data_link_table_write", "write", ["T0836"]),
        0x0304: ("program_area_protect", "program", ["T0892"]),
        0x0305: ("program_area_protect_clear", "program", ["T0892"]),
        0x0306: ("program_area_read", *_UPLOAD),
        0x0307: ("program_area_write", "program", ["T0843", "T0889"]),
        0x0308: ("program_area_clear", "program", ["T0889", "T0809"]),
        0x0401: ("run", "control", ["T0858"]),
        0x0402: ("stop", "control", ["T0858"]),
        0x0403: ("reset", "control", ["T0816"]),
        0x0501: ("controller_data_read", "discovery", ["T0888"]),
        0x0502: ("connection_data_read", "discovery", ["T0888"]),
        0x0601: ("controller_status_read", "diagnostic", ["T0868"]),
        0x0602: ("network_status_read", "diagnostic", ["T0840"]),
        0x0603: ("data_link_status_read", "diagnostic", ["T0840"]),
        0x0620: ("cycle_time_read", "diagnostic"),
        0x0701: ("clock_read", "read"),
        0x0702: ("clock_write", "write", ["T0836"]),
        0x0801: ("loop_back_test", "diagnostic"),
        0x0802: ("broadcast_test_results_read", "diagnostic"),
        0x0803: ("broadcast_test_data_send", "diagnostic"),
        0x0920: ("message_read_clear_fal_read", "diagnostic"),
        0x0C01: ("access_right_acquire", "session"),
        0x0C02: ("access_right_forced_acquire", "session", ["T0848"]),
        0x0C03: ("access_right_release", "session"),
        0x2101: ("error_clear", "control", ["T0872"]),
        0x2102: ("error_log_read", "diagnostic"),
        0x2103: ("error_log_clear", "diagnostic", ["T0872"]),
        0x2201: ("file_name_read", "discovery"),
        0x2202: ("single_file_read", "program", ["T0845", "T0882"]),
        0x2203: ("single_file_write", *_DOWNLOAD),
        0x2204: ("memory_card_format", "program", ["T0809"]),
        0x2205: ("file_delete", "program", ["T0809"]),
        0x2206: ("volume_label_create_delete", "write"),
        0x2207: ("file_copy", "program"),
        0x2208: ("file_name_change", "program"),
        0x2209: ("file_data_check", "diagnostic"),
        0x220A: ("memory_area_file_transfer", "program", ["T0843", "T0845"]),
        0x220B: ("parameter_area_file_transfer", "program", ["T0843", "T0845"]),
        0x220C: ("program_area_file_transfer", "program", ["T0843", "T0845"]),
        0x220F: ("file_memory_index_read", "read"),
        0x2210: ("file_memory_read", *_UPLOAD),
        0x2211: ("file_memory_write", *_DOWNLOAD),
        0x2301: ("forced_set_reset", "write", ["T0835", "T0855"]),
        0x2302: ("forced_set_reset_cancel", "write", ["T0835"]),
        0x230A: ("multiple_forced_status_read", *_READ),
        0x2601: ("name_set", "write", ["T0836"]),
        0x2602: ("name_delete", "write", ["T0836"]),
        0x2603: ("name_read", "discovery", ["T0888"]),
    },
)

TCP_COMMANDS = Semantics(
    "fins",
    "tcp_command",
    {
        0: ("node_address_data_send_client", "session"),
        1: ("node_address_data_send_server", "session"),
        2: ("frame_send", None),
        3: ("frame_send_error_notification", None),
        6: ("connection_confirmation", "session"),
    },
)

TCP_ERRORS = Semantics(
    "fins",
    "tcp_error_code",
    {
        0x00: "normal",
        0x01: "header_not_fins",
        0x02: "data_length_too_long",
        0x03: "command_not_supported",
        0x20: "all_connections_in_use",
        0x21: "node_already_connected",
        0x22: "protected_node_from_unspecified_ip",
        0x23: "client_node_address_out_of_range",
        0x24: "same_node_address_client_and_server",
        0x25: "no_node_address_available",
    },
)

# End codes (MRES/SRES), named by the code without its flag bits (0x80 of MRES: relay
# error; 0x80/0x40 of SRES: fatal/non-fatal CPU unit error); texts as Wireshark shows them.
END_CODES = Semantics(
    "fins",
    "end_code",
    {
        0x0000: "Normal completion",
        0x0001: "Service was interrupted",
        0x0101: "Local node not part of Network",
        0x0102: "Token time-out, node number to large",
        0x0103: "Number of transmit retries exceeded",
        0x0104: "Maximum number of frames exceeded",
        0x0105: "Node number setting error (range)",
        0x0106: "Node number duplication error",
        0x0201: "Destination node not part of Network",
        0x0202: "No node with the specified node number",
        0x0203: "Third node not part of Network : Broadcasting was specified",
        0x0204: "Busy error, destination node busy",
        0x0205: "Response time-out",
        0x0301: "Error occurred : ERC indicator is lit",
        0x0302: "CPU error occurred in the PC at the destination node",
        0x0303: "A controller error has prevented a normal response",
        0x0304: "Node number setting error",
        0x0401: "An undefined command has been used",
        0x0402: "Cannot process command because the specified unit model or version is wrong",
        0x0501: "Destination node number is not set in the routing table",
        0x0502: "Routing table isn't registered",
        0x0503: "Routing table error",
        0x0504: "Max relay nodes (2) was exceeded",
        0x1001: "The command is longer than the max permissible length",
        0x1002: "The command is shorter than the min permissible length",
        0x1003: "The designated number of data items differs from the actual number",
        0x1004: "An incorrect command format has been used",
        0x1005: "An incorrect header has been used",
        0x1101: "Memory area code invalid or DM is not available",
        0x1102: "Access size is wrong in command",
        0x1103: "First address in inaccessible area",
        0x1104: "The end of specified word range exceeds acceptable range",
        0x1106: "A non-existent program number",
        0x1109: "The size of data items in command block are wrong",
        0x110A: "The IOM break function cannot be executed",
        0x110B: "The response block is longer than the max length",
        0x110C: "An incorrect parameter code has been specified",
        0x2002: "The data is protected",
        0x2003: "Registered table does not exist",
        0x2004: "Search data does not exist",
        0x2005: "Non-existent program number",
        0x2006: "Non-existent file",
        0x2007: "Verification error",
        0x2101: "Specified area is read-only",
        0x2102: "The data is protected",
        0x2103: "Too many files open",
        0x2105: "Non-existent program number",
        0x2106: "Non-existent file",
        0x2107: "File already exists",
        0x2108: "Data cannot be changed",
        0x2201: "The mode is wrong (executing)",
        0x2202: "The mode is wrong (stopped)",
        0x2203: "The PC is in the PROGRAM mode",
        0x2204: "The PC is in the DEBUG mode",
        0x2205: "The PC is in the MONITOR mode",
        0x2206: "The PC is in the RUN mode",
        0x2207: "The specified node is not the control node",
        0x2208: "The mode is wrong and the step cannot be executed",
        0x2301: "The file device does not exist where specified",
        0x2302: "The specified memory does not exist",
        0x2303: "No clock exists",
        0x2401: "Data link table is incorrect",
        0x2502: "Parity / checksum error occurred",
        0x2503: "I/O setting error",
        0x2504: "Too many I/O points",
        0x2505: "CPU bus error",
        0x2506: "I/O duplication error",
        0x2507: "I/O bus error",
        0x2509: "SYSMAC BUS/2 error",
        0x250A: "Special I/O Unit error",
        0x250D: "Duplication in SYSMAC BUS word allocation",
        0x250F: "A memory error has occurred",
        0x2510: "Terminator not connected in SYSMAC BUS system",
        0x2601: "The specified area is not protected",
        0x2602: "An incorrect password has been specified",
        0x2604: "The specified area is protected",
        0x2605: "The service is being executed",
        0x2606: "The service is not being executed",
        0x2607: "Service cannot be execute from local node",
        0x2608: "Service cannot be executed settings are incorrect",
        0x2609: "Service cannot be executed incorrect settings in command data",
        0x260A: "The specified action has already been registered",
        0x260B: "Cannot clear error, error still exists",
        0x3001: "The access right is held by another device",
        0x4001: "Command aborted with ABORT command",
    },
)
END_CODE_FLAGS = 0x8080 | 0x0040  # relay error, fatal and non-fatal CPU unit error

# Memory area codes: CV-series (first group) and CS/CJ-series; as Wireshark names them.
_EM = "Expansion DM"
MEMORY_AREAS = Semantics(
    "fins",
    "memory_area",
    {
        0x00: "CIO, TR, CPU Bus Link, and Auxiliary : Bit status",
        0x40: "CIO, TR, CPU Bus Link, and Auxiliary : Bit status (with forced status)",
        0x80: "CIO, TR, CPU Bus Link, and Auxiliary : Word contents",
        0xC0: "CIO, TR, CPU Bus Link, and Auxiliary : Word contents (with forced status)",
        0x01: "Timer/Counter : Completion Flag status",
        0x41: "Timer/Counter : Completion Flag status (with forced status)",
        0x81: "Timer/Counter : PV",
        0x82: "DM : Word contents",
        0x03: "Transition : Flag status",
        0x43: "Transition : Flag status (with forced status)",
        0x04: "Step : Flag status",
        0x44: "Step : Status",
        0x84: "Step : Step timer PV",
        0x05: "Forced status : Bit status",
        0x85: "Forced status : Word contents",
        **{0x90 + k: f"{_EM} : Word contents, bank E{k}" for k in range(8)},
        0x98: f"{_EM} : Word contents, current bank",
        0x9C: "Register : Register contents / Current bank no. of expansion DM",
        0x1B: "Action : Flag status",
        0xDD: "Interrupt status : Scheduled interrupt interval",
        0x30: "CS1 mode: CIO Area : Bit status",
        0x31: "CS1 mode: Work Area : Bit status",
        0x32: "CS1 mode: Holding Bit Area : Bit status",
        0x33: "CS1 mode: Auxiliary Area : Bit status",
        0x70: "CS1 mode: CIO Area : Bit status (with forced status)",
        0x71: "CS1 mode: Work Area : Bit status (with forced status)",
        0x72: "CS1 mode: Holding Bit Area : Bit status (with forced status)",
        0xB0: "CS1 mode: CIO Area : Word contents",
        0xB1: "CS1 mode: Work Area : Word contents",
        0xB2: "CS1 mode: Holding Bit Area : Word contents",
        0xB3: "CS1 mode: Auxiliary Bit Area : Word contents",
        0xF0: "CS1 mode: CIO Area : Word contents (with forced status)",
        0xF1: "CS1 mode: Work Area : Word contents (with forced status)",
        0xF2: "CS1 mode: Holding Bit Area : Word contents (with forced status)",
        0x09: "CS1 mode: Timer/Counter : Completion Flag status",
        0x49: "CS1 mode: Timer/Counter : Completion Flag status (with forced status)",
        0x89: "CS1 mode: Timer/Counter : PV",
        0x02: "CS1 mode: DM : Bit contents",
        **{0x20 + k: f"CS1 mode: {_EM} : Bit contents, bank E{k:X}" for k in range(13)},
        **{0xA0 + k: f"CS1 mode: {_EM} : Word contents, bank E{k:X}" for k in range(13)},
        0xBC: "CS1 mode: Register : Register contents / Current bank no. of expansion DM",
        0x06: "CS1 mode: Task flag : Bit contents",
        0x46: "CS1 mode: Task flag : Status",
        0xDC: "CS1 mode: Index register : Register contents",
        0x07: "CS1 mode: Clock pulses / Condition flags : Bit contents",
    },
)

PARAMETER_AREAS = Semantics(
    "fins",
    "parameter_area",
    {
        0x8010: "pc_setup",
        0x8011: "peripheral_device_settings",
        0x8012: "io_table",
        0x8013: "routing_tables",
        0x8002: "cpu_bus_unit_settings",
    },
)
MODES = Semantics("fins", "mode_code", {0x00: "program", 0x01: "debug", 0x02: "monitor",
                                         0x04: "run"})  # fmt: skip
CONTROLLER_STATUS = Semantics("fins", "controller_status", {0x00: "stop", 0x01: "run",
                                                             0x80: "standby"})  # fmt: skip

KNOWN_COMMAND = np.zeros(65536, dtype=np.bool_)
for _c in COMMANDS.rows:
    KNOWN_COMMAND[int(_c)] = True  # type: ignore[call-overload]

# ---- kernel -------------------------------------------------------------------------------
# columns of the kernel's int64 output (-1 = absent)
TCP_LEN, TCP_CMD, TCP_ERR, CLIENT_NODE, SERVER_NODE = range(5)
ICF, RSV, GCT, DNA, DA1, DA2, SNA, SA1, SA2, SID, CMD = range(5, 16)
END, AREA, ADDR, BIT, COUNT, TO_AREA, TO_ADDR, TO_BIT = range(16, 24)
PROGRAM, MODE, CSTATUS, DATA_OFF, DATA_LEN, PARAM_AREA, STATUS = range(24, 31)
NCOL = 31

OK, TCP_TOO_SHORT, TOO_SHORT, NO_END_CODE, BAD_LENGTH, RESERVED = 0, 1, 2, 3, 4, 5
WEIRD = {
    TCP_TOO_SHORT: "fins_tcp_too_short",
    TOO_SHORT: "fins_frame_too_short",
    NO_END_CODE: "fins_response_without_end_code",
    BAD_LENGTH: "fins_bad_parameter_length",
    RESERVED: "fins_reserved_bits_set",
}


@njit(cache=True, inline="always")
def _be16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(cache=True, inline="always")
def _be32(b, p):
    return (
        (np.int64(b[p]) << 24)
        | (np.int64(b[p + 1]) << 16)
        | (np.int64(b[p + 2]) << 8)
        | np.int64(b[p + 3])
    )


@njit(cache=True, inline="always")
def _address(b, p, out, j, area, addr, bit):
    out[j, area] = b[p]
    out[j, addr] = _be16(b, p + 1)
    out[j, bit] = b[p + 3]


@njit(cache=True, nogil=True, _nrt=False)
def _fields(buf, arena, in_arena, tcp_off, start, end, out):
    """Fields of each FINS/TCP message (``tcp_off`` >= 0) and FINS frame (``start`` >= 0)."""
    n = start.shape[0]
    for j in range(n):
        b = arena if in_arena[j] else buf
        for c in range(NCOL):
            out[j, c] = -1
        out[j, STATUS] = OK
        e = end[j]
        q = start[j]
        t = tcp_off[j]
        if t >= 0:
            if e - t < 16:
                out[j, STATUS] = TCP_TOO_SHORT
                if e - t >= 12:
                    out[j, TCP_CMD] = _be32(b, t + 8)
                continue
            out[j, TCP_LEN] = _be32(b, t + 4)
            cmd = _be32(b, t + 8)
            out[j, TCP_CMD] = cmd
            out[j, TCP_ERR] = _be32(b, t + 12)
            if cmd == 0 and e - t >= 20:
                out[j, CLIENT_NODE] = _be32(b, t + 16)
            elif cmd == 1 and e - t >= 24:
                out[j, CLIENT_NODE] = _be32(b, t + 16)
                out[j, SERVER_NODE] = _be32(b, t + 20)
            if cmd != 2:
                continue
            q = t + 16
        if q < 0:
            continue
        if e - q < 12:
            out[j, STATUS] = TOO_SHORT
            if e - q >= 10:
                out[j, ICF] = b[q]
            continue
        icf = np.int64(b[q])
        out[j, ICF] = icf
        out[j, RSV] = b[q + 1]
        out[j, GCT] = b[q + 2]
        out[j, DNA] = b[q + 3]
        out[j, DA1] = b[q + 4]
        out[j, DA2] = b[q + 5]
        out[j, SNA] = b[q + 6]
        out[j, SA1] = b[q + 7]
        out[j, SA2] = b[q + 8]
        out[j, SID] = b[q + 9]
        cmd = _be16(b, q + 10)
        out[j, CMD] = cmd
        if b[q + 1] != 0 or (icf & 0x3E) != 0:
            out[j, STATUS] = RESERVED
        d = q + 12
        dl = e - d
        if icf & 0x40:  # response: end code, then the answer's data
            if dl < 2:
                out[j, STATUS] = NO_END_CODE
                continue
            out[j, END] = _be16(b, d)
            out[j, DATA_OFF] = d + 2
            out[j, DATA_LEN] = dl - 2
            if cmd == 0x0601 and dl >= 4:
                out[j, CSTATUS] = b[d + 2]
                out[j, MODE] = b[d + 3]
            elif (cmd == 0x0306 or cmd == 0x0307) and dl >= 4:
                out[j, PROGRAM] = _be16(b, d + 2)
            continue
        out[j, DATA_OFF] = d
        out[j, DATA_LEN] = dl
        bad = False
        if cmd == 0x0101 or cmd == 0x0102 or cmd == 0x0103:
            if dl >= 6:
                _address(b, d, out, j, AREA, ADDR, BIT)
                out[j, COUNT] = _be16(b, d + 4)
            bad = dl < 6 or (cmd == 0x0101 and dl != 6) or (cmd == 0x0103 and dl != 8)
        elif cmd == 0x0104:
            if dl >= 4:
                _address(b, d, out, j, AREA, ADDR, BIT)
            out[j, COUNT] = dl // 4  # the items read
            bad = dl < 4 or dl % 4 != 0
        elif cmd == 0x0105:
            if dl >= 10:
                _address(b, d, out, j, AREA, ADDR, BIT)
                _address(b, d + 4, out, j, TO_AREA, TO_ADDR, TO_BIT)
                out[j, COUNT] = _be16(b, d + 8)
            bad = dl != 10
        elif cmd == 0x0201 or cmd == 0x0202 or cmd == 0x0203:
            if dl >= 6:  # parameter area, beginning word, words
                out[j, PARAM_AREA] = _be16(b, d)
                out[j, ADDR] = _be16(b, d + 2)
                out[j, COUNT] = _be16(b, d + 4)
            bad = dl < 6 or (cmd == 0x0201 and dl != 6)
        elif cmd == 0x220A:
            if dl >= 8:  # parameter code, memory area, address, items, disk, file name
                _address(b, d + 2, out, j, AREA, ADDR, BIT)
                out[j, COUNT] = _be16(b, d + 6)
            bad = dl < 8
        elif cmd == 0x220B:
            if dl >= 8:  # parameter code, parameter area, beginning word, words, ...
                out[j, PARAM_AREA] = _be16(b, d + 2)
                out[j, ADDR] = _be16(b, d + 4)
                out[j, COUNT] = _be16(b, d + 6)
            bad = dl < 8
        elif cmd == 0x220C:
            if dl >= 4:  # parameter code, program number, ...
                out[j, PROGRAM] = _be16(b, d + 2)
        elif cmd == 0x2301:
            if dl >= 8:  # number of bits/flags, then (specification, area, address) each
                out[j, COUNT] = _be16(b, d)
                _address(b, d + 4, out, j, AREA, ADDR, BIT)
            bad = dl < 8 or (dl - 2) % 6 != 0
        elif cmd == 0x230A:
            if dl >= 6:  # area, address, units
                _address(b, d, out, j, AREA, ADDR, BIT)
                out[j, COUNT] = _be16(b, d + 4)
            bad = dl != 6
        elif cmd == 0x0401:
            if dl >= 2:
                out[j, PROGRAM] = _be16(b, d)
            if dl >= 3:
                out[j, MODE] = b[d + 2]
        elif (
            cmd == 0x0402 or (cmd >= 0x0304 and cmd <= 0x0308) or (cmd >= 0x0C01 and cmd <= 0x0C03)
        ):
            if dl >= 2:
                out[j, PROGRAM] = _be16(b, d)
        if bad and out[j, STATUS] == OK:
            out[j, STATUS] = BAD_LENGTH


@njit(cache=True, nogil=True, _nrt=False)
def _pair_keys(out, key, is_req, take):
    """(SID, command, requesting unit) of FINS frames; the FINS/TCP handshake as one key.

    The requester's network and node are not part of the key: a FINS/TCP client may send
    node 0 and the server answer to the node it assigned in the handshake.
    """
    for j in range(out.shape[0]):
        take[j] = False
        key[j] = 0
        is_req[j] = False
        if out[j, CMD] >= 0 and out[j, SA2] >= 0:
            req = (out[j, ICF] & 0x40) == 0
            unit = out[j, SA2] if req else out[j, DA2]
            key[j] = (out[j, SID] << 40) | (out[j, CMD] << 24) | unit
            is_req[j] = req
            take[j] = True
        elif out[j, TCP_CMD] == 0 or out[j, TCP_CMD] == 1:
            key[j] = np.int64(1) << 50
            is_req[j] = out[j, TCP_CMD] == 0
            take[j] = True


# ---- rare parts, in Python ----------------------------------------------------------------
def _ascii(raw: bytes) -> str:
    """A fixed-size ASCII field: up to its first NUL, trailing blanks removed."""
    return raw.split(b"\0", 1)[0].decode("latin-1").rstrip(" ")


# ---- schema -------------------------------------------------------------------------------
_S = E._STR
SCHEMA = E._schema(
    "fins",
    E.PDU_COMMON
    + [
        pa.field("transport", _S),  # udp or tcp
        pa.field("tcp_command", pa.int64()),  # FINS/TCP header
        pa.field("tcp_command_name", _S),
        pa.field("tcp_error_code", pa.int64()),
        pa.field("tcp_error_name", _S),
        pa.field("client_node", pa.int64()),  # FINS/TCP node address handshake
        pa.field("server_node", pa.int64()),
        pa.field("icf", pa.int16()),
        pa.field("is_request", pa.bool_()),  # ICF bit 6 clear: a command
        pa.field("response_required", pa.bool_()),  # ICF bit 0 clear
        pa.field("gateway_count", pa.int16()),
        pa.field("dst_network", pa.int16()),
        pa.field("dst_node", pa.int16()),
        pa.field("dst_unit", pa.int16()),
        pa.field("src_network", pa.int16()),
        pa.field("src_node", pa.int16()),
        pa.field("src_unit", pa.int16()),
        pa.field("sid", pa.int16()),
        pa.field("command_code", pa.int32()),  # MRC << 8 | SRC, e.g. 0x0101
        pa.field("command_name", _S),
        pa.field("category", _S),
        pa.field("end_code", pa.int32()),  # responses: MRES << 8 | SRES, flags included
        pa.field("end_code_name", _S),
        pa.field("memory_area", pa.int16()),  # memory commands (responses: the request's)
        pa.field("memory_area_name", _S),
        pa.field("memory_address", pa.int32()),  # word address
        pa.field("memory_bit", pa.int16()),
        pa.field("item_count", pa.int32()),
        pa.field("transfer_to_area", pa.int16()),  # Memory Area Transfer destination
        pa.field("transfer_to_address", pa.int32()),
        pa.field("transfer_to_bit", pa.int16()),
        pa.field("parameter_area", pa.int32()),  # parameter area commands (PC Setup, I/O table)
        pa.field("parameter_area_name", _S),
        pa.field("program_number", pa.int32()),  # Run, Stop, program area, access right
        pa.field("mode_code", pa.int16()),  # Run: requested; Controller Status Read: current
        pa.field("mode_name", _S),
        pa.field("controller_status", pa.int16()),  # Controller Status Read answer
        pa.field("controller_status_name", _S),
        pa.field("data_length", pa.int32()),  # parameters (requests) or data (responses)
        pa.field("controller_model", pa.string()),  # Controller Data Read answer
        pa.field("controller_version", pa.string()),
    ]
    + E._REQUEST_MATCH,
    "Omron FINS frames over UDP and FINS/TCP messages, commands and responses.",
)


# ---- the dissector --------------------------------------------------------------------------
def _names(sem: Semantics, width: int, mask: int = -1) -> CodeNames:
    """Names of codes of ``sem`` (masked by ``mask``); unknown ones as ``unknown_0x..``."""
    return CodeNames(
        int_names(sem),
        key=lambda codes: codes & mask,
        unknown=lambda code: f"unknown_0x{code:0{width}x}",
    )


_N_COMMANDS = _names(COMMANDS, 4)
_N_TCP_COMMANDS = _names(TCP_COMMANDS, 8)
_N_TCP_ERRORS = _names(TCP_ERRORS, 8)
_N_END_CODES = _names(END_CODES, 4, mask=0xFFFF & ~END_CODE_FLAGS)
_N_AREAS = _names(MEMORY_AREAS, 2)
_N_MODES = _names(MODES, 2)
_N_PARAM_AREAS = _names(PARAMETER_AREAS, 4)
_N_STATUS = _names(CONTROLLER_STATUS, 2)
_CAT_OF_COMMAND = category_codes(COMMANDS, 65536)
_CAT_OF_TCP = category_codes(TCP_COMMANDS, 8)


def _categories(out: np.ndarray) -> pa.DictionaryArray:
    cmd = out[:, CMD]
    cat = np.where(cmd >= 0, _CAT_OF_COMMAND[np.clip(cmd, 0, 65535)], -1)
    tcp = out[:, TCP_CMD]
    by_tcp = (cmd < 0) & (tcp >= 0) & (tcp < 8)
    cat[by_tcp] = _CAT_OF_TCP[tcp[by_tcp]]
    return dictionary_column(cat, list(CATEGORIES))


def _bit(out: np.ndarray, mask: int, value: bool) -> pa.Array:
    icf = out[:, ICF]
    return pa.array(((icf & mask) != 0) == value, mask=icf < 0)


def select_udp(ctx: ChunkContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(packet, start, end) of the UDP datagrams that carry a FINS frame (see the docstring)."""
    c, buf = ctx.cols, ctx.chunk.buf
    udp = ctx.udp(min_payload=12)
    if udp.shape[0] == 0:
        return udp, udp, udp
    off = c[udp, L.PAY_OFF].astype(np.int64)
    icf = buf[off]
    cmd = (buf[off + 10].astype(np.int64) << 8) | buf[off + 11]
    port = (c[udp, L.SPORT] == PORT) | (c[udp, L.DPORT] == PORT)
    ok = (buf[off + 1] == 0) & ((icf & 0x3E) == 0) & (buf[off + 2] <= 7)
    ok &= port | KNOWN_COMMAND[cmd]
    pkt = udp[ok]
    start = off[ok]
    return pkt, start, start + c[pkt, L.PAY_LEN]


class FinsDissector(Dissector):
    name = "fins"
    tables = {"fins": SCHEMA}
    framers = (framing.FINS_TCP,)
    wants_udp = True
    semantics = (COMMANDS, TCP_COMMANDS, TCP_ERRORS, END_CODES, MEMORY_AREAS,
                 PARAMETER_AREAS, MODES, CONTROLLER_STATUS)  # fmt: skip

    def __init__(self) -> None:
        self.matcher = RequestMatcher(width=3)

    def process(self, ctx: ChunkContext) -> dict[str, pa.RecordBatch]:
        idx = ctx.pdus(framing.FINS_TCP)
        pkt, ustart, uend = select_udp(ctx)
        nu, nt = pkt.shape[0], idx.shape[0]
        n = nu + nt
        if n == 0:
            return {}
        P = ctx.track.pdus
        t_in_arena, t_off, t_len = ctx.pdu_locations(idx)
        # UDP rows then TCP rows, put in capture order (pairing reads them in that order)
        frame = np.concatenate([ctx.chunk.first_frame + pkt if nu else pkt, P[idx, T.P_FRAME]])
        order = np.argsort(frame, kind="stable")
        in_arena = np.concatenate([np.zeros(nu, np.int64), t_in_arena])[order]
        tcp_off = np.concatenate([np.full(nu, -1, np.int64), t_off])[order]
        start = np.concatenate([ustart, np.full(nt, -1, np.int64)])[order]
        end = np.concatenate([uend, t_off + t_len])[order]
        ts = np.concatenate([ctx.chunk.ts[pkt] if nu else pkt, P[idx, T.P_TS]])[order]
        flow = np.concatenate([ctx.track.pkt_flow[pkt] if nu else pkt, P[idx, T.P_FLOW]])[order]
        frame = frame[order]
        env = self._envelope(ctx, pkt, idx, order)

        out = np.empty((n, NCOL), dtype=np.int64)
        _fields(ctx.chunk.buf, ctx.track.arena, in_arena, tcp_off, start, end, out)
        matched, req_frame, req_ts = self._pair(out, flow, frame, ts)
        model, version = self._identity(ctx, out, in_arena)
        transport = (tcp_off >= 0).astype(np.int64)
        batch = dict(env)
        batch.update(
            {
                "transport": dictionary_column(transport, ["udp", "tcp"]),
                "tcp_command": _col(out[:, TCP_CMD], np.int64),
                "tcp_command_name": _N_TCP_COMMANDS(out[:, TCP_CMD]),
                "tcp_error_code": _col(out[:, TCP_ERR], np.int64),
                "tcp_error_name": _N_TCP_ERRORS(out[:, TCP_ERR]),
                "client_node": _col(out[:, CLIENT_NODE], np.int64),
                "server_node": _col(out[:, SERVER_NODE], np.int64),
                "icf": _col(out[:, ICF], np.int16),
                "is_request": self._is_request(out),
                "response_required": _bit(out, 0x01, False),
                "gateway_count": _col(out[:, GCT], np.int16),
                "dst_network": _col(out[:, DNA], np.int16),
                "dst_node": _col(out[:, DA1], np.int16),
                "dst_unit": _col(out[:, DA2], np.int16),
                "src_network": _col(out[:, SNA], np.int16),
                "src_node": _col(out[:, SA1], np.int16),
                "src_unit": _col(out[:, SA2], np.int16),
                "sid": _col(out[:, SID], np.int16),
                "command_code": _col(out[:, CMD], np.int32),
                "command_name": _N_COMMANDS(out[:, CMD]),
                "category": _categories(out),
                "end_code": _col(out[:, END], np.int32),
                "end_code_name": _N_END_CODES(out[:, END]),
                "memory_area": _col(out[:, AREA], np.int16),
                "memory_area_name": _N_AREAS(out[:, AREA]),
                "memory_address": _col(out[:, ADDR], np.int32),
                "memory_bit": _col(out[:, BIT], np.int16),
                "item_count": _col(out[:, COUNT], np.int32),
                "transfer_to_area": _col(out[:, TO_AREA], np.int16),
                "transfer_to_address": _col(out[:, TO_ADDR], np.int32),
                "transfer_to_bit": _col(out[:, TO_BIT], np.int16),
                "parameter_area": _col(out[:, PARAM_AREA], np.int32),
                "parameter_area_name": _N_PARAM_AREAS(out[:, PARAM_AREA]),
                "program_number": _col(out[:, PROGRAM], np.int32),
                "mode_code": _col(out[:, MODE], np.int16),
                "mode_name": _N_MODES(out[:, MODE]),
                "controller_status": _col(out[:, CSTATUS], np.int16),
                "controller_status_name": _N_STATUS(out[:, CSTATUS]),
                "data_length": _col(out[:, DATA_LEN], np.int32),
                "controller_model": pa.array(model, type=pa.string()),
                "controller_version": pa.array(version, type=pa.string()),
                **pairing_columns(matched, req_frame, req_ts, ts),
            }
        )
        bad = np.flatnonzero(out[:, STATUS] != OK)
        if bad.shape[0]:
            ctx.weird(
                take_envelope(env, bad),
                [WEIRD[int(s)] for s in out[bad, STATUS]],
                [_detail(out[k], int(end[k] - max(start[k], tcp_off[k]))) for k in bad],
                "fins",
            )
        return {"fins": pa.RecordBatch.from_pydict(batch, schema=SCHEMA)}

    @staticmethod
    def _envelope(ctx, pkt, idx, order) -> dict[str, pa.Array]:
        if idx.shape[0] == 0:
            return ctx.packet_envelope(pkt)  # already in capture order
        if pkt.shape[0] == 0:
            return ctx.pdu_envelope(idx)
        udp, tcp = ctx.packet_envelope(pkt), ctx.pdu_envelope(idx)
        ix = pa.array(order)
        return {k: pa.concat_arrays([udp[k], tcp[k]]).take(ix) for k in udp}

    @staticmethod
    def _is_request(out: np.ndarray) -> pa.Array:
        icf, tcp = out[:, ICF], out[:, TCP_CMD]
        req = np.where(icf >= 0, (icf & 0x40) == 0, tcp == 0)
        known = (icf >= 0) | (tcp == 0) | (tcp == 1) | (tcp == 3)
        return pa.array(req, mask=~known)

    @staticmethod
    def _identity(ctx, out, in_arena) -> tuple[list[str | None], list[str | None]]:
        """Model and version from Controller Data Read answers (rare: Python)."""
        n = out.shape[0]
        model: list[str | None] = [None] * n
        version: list[str | None] = [None] * n
        rows = np.flatnonzero(
            (out[:, CMD] == 0x0501) & (out[:, END] >= 0) & (out[:, DATA_LEN] >= 40)
        )
        for k in rows:
            b = ctx.track.arena if in_arena[k] else ctx.chunk.buf
            p = int(out[k, DATA_OFF])
            model[k] = _ascii(bytes(b[p : p + 20]))
            version[k] = _ascii(bytes(b[p + 20 : p + 40]))
        return model, version

    def _pair(self, out, flow, frame, ts):
        n = out.shape[0]
        key = np.empty(n, np.int64)
        is_req = np.empty(n, np.bool_)
        take = np.empty(n, np.bool_)
        _pair_keys(out, key, is_req, take)
        take &= flow >= 0
        matched = np.zeros(n, bool)
        req_frame = np.zeros(n, np.int64)
        req_ts = np.zeros(n, np.int64)
        rows = np.flatnonzero(take)
        if rows.shape[0] == 0:
            return matched, req_frame, req_ts
        payload = np.stack([out[rows, AREA], out[rows, ADDR], out[rows, COUNT]], axis=1)
        m, rf, rts, rpl = self.matcher.match(
            flow[rows], key[rows], is_req[rows], frame[rows], ts[rows], payload
        )
        matched[rows] = m
        req_frame[rows] = rf
        req_ts[rows] = rts
        # a response names no memory area: it answers its request's
        resp = rows[m]
        for c, col in enumerate((AREA, ADDR, COUNT)):
            fill = resp[out[resp, col] < 0]
            out[fill, col] = rpl[m][out[resp, col] < 0, c]
        return matched, req_frame, req_ts


def _detail(row: np.ndarray, length: int) -> str:
    parts = [f"{length} bytes"]
    if row[TCP_CMD] >= 0:
        parts.append(f"FINS/TCP command {int(row[TCP_CMD])}")
    if row[CMD] >= 0:
        kind = "response" if row[ICF] & 0x40 else "command"
        parts.append(f"{kind} 0x{int(row[CMD]):04x}")
    return ", ".join(parts)


DISSECTOR = FinsDissector
