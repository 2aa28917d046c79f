"""S7comm (ISO-on-TCP, TCP 102) encoders: TPKT + COTP + S7 PDUs, and S7comm-plus frames.

Every function returns bytes ready to be sent on the TCP stream: a TPKT (RFC 1006) header,
a COTP TPDU (connection request / confirm, or DT carrying one S7 PDU) and the S7 PDU.  The
layouts follow Wireshark's ``packet-s7comm.c`` and real Step 7 / TIA / Snap7 captures:

* Job (ROSCTR 1) requests and Ack_Data (3) answers: setup communication, Read Var / Write
  Var with S7ANY items, block download / upload, PI services, PLC stop.
* Ack (2) and Ack_Data answers carrying a header error class / code.
* Userdata (7): Read SZL (0x0011 module identification, 0x001C component identification,
  or any records), List blocks, PLC password.
* S7comm-plus (protocol id 0x72): header, opcode, function, sequence, session id, trailer.

PDU references, sequence numbers and upload ids are the caller's (a PLC copies the Job's
PDU reference into its answer).  Multi-byte fields are big-endian.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import NamedTuple

__all__ = [
    "AREA_COUNTERS",
    "AREA_DB",
    "AREA_DI",
    "AREA_I",
    "AREA_M",
    "AREA_PERIPHERAL",
    "AREA_Q",
    "AREA_TIMERS",
    "BLOCK_DB",
    "BLOCK_FB",
    "BLOCK_FC",
    "BLOCK_OB",
    "BLOCK_SDB",
    "BLOCK_SFB",
    "BLOCK_SFC",
    "CONN_OP",
    "CONN_PG",
    "CONN_S7_BASIC",
    "DATA_TS_BIT",
    "DATA_TS_BYTE",
    "DATA_TS_DINT",
    "DATA_TS_INT",
    "DATA_TS_NULL",
    "DATA_TS_OCTET_STRING",
    "DATA_TS_REAL",
    "FUNC_DOWNLOAD_BLOCK",
    "FUNC_DOWNLOAD_ENDED",
    "FUNC_END_UPLOAD",
    "FUNC_PI_SERVICE",
    "FUNC_PLC_STOP",
    "FUNC_READ_VAR",
    "FUNC_REQUEST_DOWNLOAD",
    "FUNC_SETUP_COMMUNICATION",
    "FUNC_START_UPLOAD",
    "FUNC_UPLOAD",
    "FUNC_WRITE_VAR",
    "PLUS_FUNC_CREATE_OBJECT",
    "PLUS_FUNC_DELETE_OBJECT",
    "PLUS_FUNC_EXPLORE",
    "PLUS_FUNC_GET_MULTI_VARIABLES",
    "PLUS_FUNC_GET_VARIABLE",
    "PLUS_FUNC_SET_MULTI_VARIABLES",
    "PLUS_FUNC_SET_VARIABLE",
    "PLUS_NOTIFICATION",
    "PLUS_REQUEST",
    "PLUS_RESPONSE",
    "RC_ACCESS_DENIED",
    "RC_DATA_TYPE_INCONSISTENT",
    "RC_DATA_TYPE_NOT_SUPPORTED",
    "RC_HARDWARE_FAULT",
    "RC_INVALID_ADDRESS",
    "RC_OBJECT_DOES_NOT_EXIST",
    "RC_RESERVED",
    "RC_SUCCESS",
    "ROSCTR_ACK",
    "ROSCTR_ACK_DATA",
    "ROSCTR_JOB",
    "ROSCTR_USERDATA",
    "SZL_COMPONENT_IDENTIFICATION",
    "SZL_MODULE_IDENTIFICATION",
    "TS_BIT",
    "TS_BYTE",
    "TS_CHAR",
    "TS_COUNTER",
    "TS_DINT",
    "TS_DWORD",
    "TS_INT",
    "TS_REAL",
    "TS_TIMER",
    "TS_WORD",
    "UD_GROUP_BLOCK",
    "UD_GROUP_CPU",
    "UD_GROUP_MODE_TRANSITION",
    "UD_GROUP_PROGRAMMER",
    "UD_GROUP_SECURITY",
    "UD_GROUP_TIME",
    "UD_SUBF_LIST_BLOCKS",
    "UD_SUBF_PASSWORD",
    "UD_SUBF_READ_SZL",
    "DataItem",
    "VarItem",
    "ack_data_error",
    "ack_error",
    "block_filename",
    "component_identification_records",
    "connection_confirm",
    "connection_request",
    "cotp_cc",
    "cotp_cr",
    "cotp_dt",
    "data_for",
    "download_block_request",
    "download_block_response",
    "download_ended_request",
    "download_ended_response",
    "encode_password",
    "end_upload_request",
    "end_upload_response",
    "list_blocks_request",
    "list_blocks_response",
    "module_identification_records",
    "password_request",
    "password_response",
    "pi_insert_request",
    "pi_service_request",
    "pi_service_response",
    "plc_cold_restart_request",
    "plc_hot_restart_request",
    "plc_stop_request",
    "plc_stop_response",
    "plus_frame",
    "read_var_request",
    "read_var_response",
    "request_download_request",
    "request_download_response",
    "s7_pdu",
    "setup_communication_request",
    "setup_communication_response",
    "start_upload_request",
    "start_upload_response",
    "szl_read_request",
    "szl_read_response",
    "tpkt",
    "tsap",
    "upload_request",
    "upload_response",
    "userdata",
    "write_var_request",
    "write_var_response",
]

# ---- codes ---------------------------------------------------------------------------------
ROSCTR_JOB = 1
ROSCTR_ACK = 2
ROSCTR_ACK_DATA = 3
ROSCTR_USERDATA = 7

FUNC_SETUP_COMMUNICATION = 0xF0
FUNC_READ_VAR = 0x04
FUNC_WRITE_VAR = 0x05
FUNC_REQUEST_DOWNLOAD = 0x1A
FUNC_DOWNLOAD_BLOCK = 0x1B
FUNC_DOWNLOAD_ENDED = 0x1C
FUNC_START_UPLOAD = 0x1D
FUNC_UPLOAD = 0x1E
FUNC_END_UPLOAD = 0x1F
FUNC_PI_SERVICE = 0x28
FUNC_PLC_STOP = 0x29

# connection types: the called TSAP's first byte
CONN_PG = 1
CONN_OP = 2
CONN_S7_BASIC = 3

# memory areas of an S7ANY address
AREA_PERIPHERAL = 0x80
AREA_I = 0x81  # inputs (process image)
AREA_Q = 0x82  # outputs (process image)
AREA_M = 0x83  # flags / merkers
AREA_DB = 0x84
AREA_DI = 0x85  # instance data blocks
AREA_COUNTERS = 0x1C
AREA_TIMERS = 0x1D

# transport sizes of an S7ANY item (the type of the addressed variable)
TS_BIT = 0x01
TS_BYTE = 0x02
TS_CHAR = 0x03
TS_WORD = 0x04
TS_INT = 0x05
TS_DWORD = 0x06
TS_DINT = 0x07
TS_REAL = 0x08
TS_COUNTER = 0x1C
TS_TIMER = 0x1D

# transport sizes of a data item; BIT, BYTE and INT count their length in bits
DATA_TS_NULL = 0x00
DATA_TS_BIT = 0x03
DATA_TS_BYTE = 0x04  # BYTE / WORD / DWORD
DATA_TS_INT = 0x05
DATA_TS_DINT = 0x06
DATA_TS_REAL = 0x07
DATA_TS_OCTET_STRING = 0x09
_BIT_LENGTH_SIZES = (DATA_TS_BIT, DATA_TS_BYTE, DATA_TS_INT)

# item return codes
RC_RESERVED = 0x00  # carried by the data items of a Write Var request
RC_HARDWARE_FAULT = 0x01
RC_ACCESS_DENIED = 0x03
RC_INVALID_ADDRESS = 0x05
RC_DATA_TYPE_NOT_SUPPORTED = 0x06
RC_DATA_TYPE_INCONSISTENT = 0x07
RC_OBJECT_DOES_NOT_EXIST = 0x0A
RC_SUCCESS = 0xFF

# Userdata function groups and sub-functions
UD_GROUP_MODE_TRANSITION = 0x0
UD_GROUP_PROGRAMMER = 0x1
UD_GROUP_BLOCK = 0x3
UD_GROUP_CPU = 0x4
UD_GROUP_SECURITY = 0x5
UD_GROUP_TIME = 0x7
UD_SUBF_LIST_BLOCKS = 0x01  # group 3
UD_SUBF_READ_SZL = 0x01  # group 4
UD_SUBF_PASSWORD = 0x01  # group 5
_UD_TYPE_PUSH, _UD_TYPE_REQUEST, _UD_TYPE_RESPONSE = 0x0, 0x4, 0x8

SZL_MODULE_IDENTIFICATION = 0x0011
SZL_COMPONENT_IDENTIFICATION = 0x001C

# block types as written in file names ("_0A00001P") and block lists (0x3041)
BLOCK_OB = "08"
BLOCK_DB = "0A"
BLOCK_SDB = "0B"
BLOCK_FC = "0C"
BLOCK_SFC = "0D"
BLOCK_FB = "0E"
BLOCK_SFB = "0F"

# S7comm-plus opcodes and functions
PLUS_REQUEST = 0x31
PLUS_RESPONSE = 0x32
PLUS_NOTIFICATION = 0x33
PLUS_FUNC_EXPLORE = 0x04BB
PLUS_FUNC_CREATE_OBJECT = 0x04CA
PLUS_FUNC_DELETE_OBJECT = 0x04D4
PLUS_FUNC_SET_VARIABLE = 0x04F2
PLUS_FUNC_GET_VARIABLE = 0x04FC
PLUS_FUNC_SET_MULTI_VARIABLES = 0x0542
PLUS_FUNC_GET_MULTI_VARIABLES = 0x054C

_S7_ID = 0x32
_PLUS_ID = 0x72


# ---- ISO-on-TCP ------------------------------------------------------------------------------
def tpkt(payload: bytes) -> bytes:
    """RFC 1006 TPKT header (version 3, length including the header) + ``payload``."""
    return struct.pack("!BBH", 3, 0, 4 + len(payload)) + payload


def tsap(connection_type: int, rack: int, slot: int) -> bytes:
    """A PLC's 2-byte TSAP: connection type, then rack (3 bits) and slot (5 bits)."""
    return bytes([connection_type & 0xFF, (rack & 0x07) << 5 | (slot & 0x1F)])


def _size_code(tpdu_size: int) -> int:
    code = tpdu_size.bit_length() - 1
    if 1 << code != tpdu_size or not 7 <= code <= 13:
        raise ValueError(f"TPDU size must be a power of two 128..8192, not {tpdu_size}")
    return code


def _cotp_conn(code: int, dst_ref: int, src_ref: int, params: bytes) -> bytes:
    head = struct.pack("!BHHB", code, dst_ref, src_ref, 0) + params  # class 0, no options
    return tpkt(bytes([len(head)]) + head)


def _cotp_params(src_tsap: bytes, dst_tsap: bytes, tpdu_size: int) -> bytes:
    return (
        bytes([0xC0, 1, _size_code(tpdu_size)])
        + bytes([0xC1, len(src_tsap)])
        + src_tsap
        + bytes([0xC2, len(dst_tsap)])
        + dst_tsap
    )


def cotp_cr(src_ref: int, src_tsap: bytes, dst_tsap: bytes, tpdu_size: int = 1024) -> bytes:
    """TPKT + COTP Connection Request (class 0) with TPDU size, calling and called TSAPs.

    TSAPs are raw bytes: two bytes for a PLC (:func:`tsap`), or text such as
    ``b"SIMATIC-ROOT-ES"`` for TIA Portal connections.
    """
    return _cotp_conn(0xE0, 0, src_ref, _cotp_params(src_tsap, dst_tsap, tpdu_size))


def cotp_cc(
    dst_ref: int, src_ref: int, src_tsap: bytes, dst_tsap: bytes, tpdu_size: int = 1024
) -> bytes:
    """TPKT + COTP Connection Confirm; ``dst_ref`` is the requester's source reference.

    A PLC echoes the TSAPs of the request (calling TSAP first).
    """
    return _cotp_conn(0xD0, dst_ref, src_ref, _cotp_params(src_tsap, dst_tsap, tpdu_size))


def connection_request(
    rack: int,
    slot: int,
    connection_type: int = CONN_PG,
    src_ref: int = 1,
    local_tsap: int = 0x0100,
    tpdu_size: int = 1024,
) -> bytes:
    """COTP CR as Step 7 / Snap7 send it: local TSAP 0x0100, called TSAP from rack/slot."""
    return cotp_cr(
        src_ref, struct.pack("!H", local_tsap), tsap(connection_type, rack, slot), tpdu_size
    )


def connection_confirm(
    rack: int,
    slot: int,
    connection_type: int = CONN_PG,
    dst_ref: int = 1,
    src_ref: int = 1,
    local_tsap: int = 0x0100,
    tpdu_size: int = 1024,
) -> bytes:
    """The PLC's COTP CC answering :func:`connection_request` (same TSAPs)."""
    return cotp_cc(
        dst_ref,
        src_ref,
        struct.pack("!H", local_tsap),
        tsap(connection_type, rack, slot),
        tpdu_size,
    )


def cotp_dt(payload: bytes, eot: bool = True, tpdu_number: int = 0) -> bytes:
    """TPKT + COTP DT (data) TPDU carrying ``payload`` (an S7 or S7comm-plus PDU)."""
    return tpkt(bytes([2, 0xF0, (0x80 if eot else 0) | (tpdu_number & 0x7F)]) + payload)


# ---- S7 PDU ----------------------------------------------------------------------------------
def s7_pdu(
    rosctr: int,
    pdu_ref: int,
    param: bytes = b"",
    data: bytes = b"",
    error_class: int = 0,
    error_code: int = 0,
) -> bytes:
    """A bare S7 PDU (protocol id 0x32): header, parameter, data; not wrapped in TPKT.

    Ack (2) and Ack_Data (3) headers carry the error class and code.
    """
    head = struct.pack("!BBHHHH", _S7_ID, rosctr, 0, pdu_ref & 0xFFFF, len(param), len(data))
    if rosctr in (ROSCTR_ACK, ROSCTR_ACK_DATA):
        head += bytes([error_class & 0xFF, error_code & 0xFF])
    return head + param + data


def _job(pdu_ref: int, param: bytes, data: bytes = b"") -> bytes:
    return cotp_dt(s7_pdu(ROSCTR_JOB, pdu_ref, param, data))


def _ack_data(pdu_ref: int, param: bytes, data: bytes = b"") -> bytes:
    return cotp_dt(s7_pdu(ROSCTR_ACK_DATA, pdu_ref, param, data))


def ack_error(pdu_ref: int, error_class: int, error_code: int) -> bytes:
    """Ack (ROSCTR 2) refusing a Job: header error only, e.g. class 0xD2 code 0x41
    (function not permitted in the current protection level)."""
    return cotp_dt(s7_pdu(ROSCTR_ACK, pdu_ref, error_class=error_class, error_code=error_code))


def ack_data_error(pdu_ref: int, function: int, error_class: int, error_code: int) -> bytes:
    """Ack_Data with a header error and the function byte plus a status with the error bit
    (as a PLC refuses a PI service: ``28 02``)."""
    return cotp_dt(
        s7_pdu(
            ROSCTR_ACK_DATA,
            pdu_ref,
            bytes([function & 0xFF, 0x02]),
            error_class=error_class,
            error_code=error_code,
        )
    )


def setup_communication_request(
    pdu_ref: int, pdu_length: int = 480, max_amq_calling: int = 1, max_amq_called: int = 1
) -> bytes:
    """Job 0xF0: the client proposes the PDU size and parallel jobs."""
    return _job(
        pdu_ref, struct.pack("!BBHHH", 0xF0, 0, max_amq_calling, max_amq_called, pdu_length)
    )


def setup_communication_response(
    pdu_ref: int, pdu_length: int = 240, max_amq_calling: int = 1, max_amq_called: int = 1
) -> bytes:
    """Ack_Data 0xF0 with the negotiated PDU size."""
    param = struct.pack("!BBHHH", 0xF0, 0, max_amq_calling, max_amq_called, pdu_length)
    return _ack_data(pdu_ref, param)


# ---- variables -----------------------------------------------------------------------------
class VarItem(NamedTuple):
    """An S7ANY address: area, DB number (DB/DI areas), byte.bit start, type and count.

    ``VarItem(AREA_DB, 10, db=1, transport_size=TS_WORD)`` is DB1.DBW10;
    ``VarItem(AREA_Q, 0, bit=3, transport_size=TS_BIT)`` is Q0.3.
    """

    area: int
    byte: int
    bit: int = 0
    db: int = 0
    transport_size: int = TS_BYTE
    length: int = 1  # number of elements of the transport size


class DataItem(NamedTuple):
    """A data item of Read Var answers and Write Var requests.

    ``length`` in the wire header counts bits for ``DATA_TS_BIT`` / ``DATA_TS_BYTE`` /
    ``DATA_TS_INT`` and bytes otherwise; it is derived from ``data``. An error answer is
    ``DataItem(return_code=RC_OBJECT_DOES_NOT_EXIST, transport_size=DATA_TS_NULL)``.
    """

    data: bytes = b""
    return_code: int = RC_SUCCESS
    transport_size: int = DATA_TS_BYTE


_ITEM_TO_DATA_SIZE = {
    TS_BIT: DATA_TS_BIT,
    TS_BYTE: DATA_TS_BYTE,
    TS_CHAR: DATA_TS_OCTET_STRING,
    TS_WORD: DATA_TS_BYTE,
    TS_DWORD: DATA_TS_BYTE,
    TS_INT: DATA_TS_INT,
    TS_DINT: DATA_TS_BYTE,
    TS_REAL: DATA_TS_REAL,
    TS_COUNTER: DATA_TS_OCTET_STRING,
    TS_TIMER: DATA_TS_OCTET_STRING,
}


def data_for(item: VarItem, data: bytes, return_code: int = RC_SUCCESS) -> DataItem:
    """The data item a PLC returns for ``item`` (the data transport size fits its type)."""
    return DataItem(data, return_code, _ITEM_TO_DATA_SIZE.get(item.transport_size, DATA_TS_BYTE))


def _any(item: VarItem) -> bytes:
    if item.transport_size in (TS_COUNTER, TS_TIMER):
        address = item.byte & 0xFFFF  # timers and counters: a number
    else:
        address = (item.byte << 3) | (item.bit & 7)
    return struct.pack(
        "!BBBBHHB", 0x12, 10, 0x10, item.transport_size, item.length, item.db, item.area
    ) + address.to_bytes(3, "big")


def _data_item(item: DataItem, last: bool) -> bytes:
    n = len(item.data)
    length = n * 8 if item.transport_size in _BIT_LENGTH_SIZES else n
    if item.transport_size == DATA_TS_BIT and n == 1:
        length = 1  # a single bit
    out = struct.pack("!BBH", item.return_code, item.transport_size, length) + item.data
    if n & 1 and not last:
        out += b"\x00"  # fill byte between items
    return out


def read_var_request(pdu_ref: int, items: Sequence[VarItem]) -> bytes:
    """Job 0x04 Read Var with one S7ANY specification per item."""
    param = bytes([FUNC_READ_VAR, len(items)]) + b"".join(_any(i) for i in items)
    return _job(pdu_ref, param)


def read_var_response(pdu_ref: int, items: Sequence[DataItem]) -> bytes:
    """Ack_Data 0x04: one data item per requested item (values or error return codes)."""
    data = b"".join(_data_item(d, k == len(items) - 1) for k, d in enumerate(items))
    return _ack_data(pdu_ref, bytes([FUNC_READ_VAR, len(items)]), data)


def write_var_request(pdu_ref: int, items: Sequence[VarItem], values: Sequence[DataItem]) -> bytes:
    """Job 0x05 Write Var: S7ANY items in the parameter, the values in the data part
    (their return code is sent as 0x00, as clients do)."""
    if len(items) != len(values):
        raise ValueError("one value per item")
    param = bytes([FUNC_WRITE_VAR, len(items)]) + b"".join(_any(i) for i in items)
    data = b"".join(
        _data_item(v._replace(return_code=RC_RESERVED), k == len(values) - 1)
        for k, v in enumerate(values)
    )
    return _job(pdu_ref, param, data)


def write_var_response(pdu_ref: int, return_codes: Sequence[int]) -> bytes:
    """Ack_Data 0x05: one return code per written item (0xFF success)."""
    return _ack_data(pdu_ref, bytes([FUNC_WRITE_VAR, len(return_codes)]), bytes(return_codes))


# ---- block transfer ------------------------------------------------------------------------
def block_filename(block_type: str, number: int, filesystem: str = "P") -> str:
    """``_`` + block type + 5-digit number + file system: ``_0A00001P`` is DB1 to the
    passive file system (download target); uploads name the active one (``A``)."""
    if len(block_type) != 2 or len(filesystem) != 1:
        raise ValueError("block type is two characters, file system one")
    return f"_{block_type}{number:05d}{filesystem}"


def _name(filename: str) -> bytes:
    raw = filename.encode("ascii")
    return bytes([len(raw)]) + raw


def _block_param(
    func: int, block_type: str, number: int, filesystem: str, status: int = 0x00
) -> bytes:
    """Parameter of the block jobs (0x1A..0x1D): function, status, reserved, the filename."""
    return bytes([func, 0x00, status, 0x00, 0, 0, 0, 0]) + _name(
        block_filename(block_type, number, filesystem)
    )


def request_download_request(
    pdu_ref: int,
    block_type: str,
    number: int,
    load_memory_length: int,
    mc7_length: int,
    filesystem: str = "P",
) -> bytes:
    """Job 0x1A: the engineering station announces a block download (lengths in bytes)."""
    part2 = f"1{load_memory_length:06d}{mc7_length:06d}".encode("ascii")
    param = _block_param(FUNC_REQUEST_DOWNLOAD, block_type, number, filesystem, status=0x01)
    return _job(pdu_ref, param + bytes([len(part2)]) + part2)


def request_download_response(pdu_ref: int) -> bytes:
    """Ack_Data 0x1A: the PLC accepts the download."""
    return _ack_data(pdu_ref, bytes([FUNC_REQUEST_DOWNLOAD]))


def download_block_request(
    pdu_ref: int, block_type: str, number: int, filesystem: str = "P"
) -> bytes:
    """Job 0x1B: the PLC asks for the next part of the block (the PLC is the client here)."""
    return _job(pdu_ref, _block_param(FUNC_DOWNLOAD_BLOCK, block_type, number, filesystem))


def _block_data(func: int, data: bytes, more: bool) -> tuple[bytes, bytes]:
    param = bytes([func, 0x01 if more else 0x00])
    return param, struct.pack("!HH", len(data), 0x00FB) + data


def download_block_response(pdu_ref: int, data: bytes, more: bool = False) -> bytes:
    """Ack_Data 0x1B carrying block bytes; ``more`` sets the "more data following" status."""
    return _ack_data(pdu_ref, *_block_data(FUNC_DOWNLOAD_BLOCK, data, more))


def download_ended_request(
    pdu_ref: int, block_type: str, number: int, filesystem: str = "P"
) -> bytes:
    """Job 0x1C: the PLC reports the block complete."""
    return _job(pdu_ref, _block_param(FUNC_DOWNLOAD_ENDED, block_type, number, filesystem))


def download_ended_response(pdu_ref: int) -> bytes:
    """Ack_Data 0x1C."""
    return _ack_data(pdu_ref, bytes([FUNC_DOWNLOAD_ENDED]))


def start_upload_request(
    pdu_ref: int, block_type: str, number: int, filesystem: str = "A"
) -> bytes:
    """Job 0x1D: the client asks to upload (read out) a block."""
    return _job(pdu_ref, _block_param(FUNC_START_UPLOAD, block_type, number, filesystem))


def start_upload_response(pdu_ref: int, upload_id: int, block_length: int) -> bytes:
    """Ack_Data 0x1D: upload id and the block length as a 7-digit string."""
    length = f"{block_length:07d}".encode("ascii")
    param = (
        bytes([FUNC_START_UPLOAD, 0x00, 0x01, 0x00])
        + struct.pack("!I", upload_id)
        + bytes([len(length)])
        + length
    )
    return _ack_data(pdu_ref, param)


def upload_request(pdu_ref: int, upload_id: int) -> bytes:
    """Job 0x1E: the next part of the upload."""
    return _job(pdu_ref, bytes([FUNC_UPLOAD, 0x00, 0x00, 0x00]) + struct.pack("!I", upload_id))


def upload_response(pdu_ref: int, data: bytes, more: bool = False) -> bytes:
    """Ack_Data 0x1E with block bytes."""
    return _ack_data(pdu_ref, *_block_data(FUNC_UPLOAD, data, more))


def end_upload_request(pdu_ref: int, upload_id: int, error_code: int = 0) -> bytes:
    """Job 0x1F: the client closes the upload (error code 0: completed)."""
    param = struct.pack("!BBHI", FUNC_END_UPLOAD, 0x00, error_code, upload_id)
    return _job(pdu_ref, param)


def end_upload_response(pdu_ref: int) -> bytes:
    """Ack_Data 0x1F."""
    return _ack_data(pdu_ref, bytes([FUNC_END_UPLOAD]))


# ---- PI services and PLC stop ---------------------------------------------------------------
def pi_service_request(pdu_ref: int, service: str, parameters: bytes = b"") -> bytes:
    """Job 0x28 PI service ``service`` (``P_PROGRAM``, ``_INSE``, ``_MODU``, ...) with its
    parameter block."""
    name = service.encode("ascii")
    param = (
        bytes([FUNC_PI_SERVICE, 0, 0, 0, 0, 0, 0, 0xFD])
        + struct.pack("!H", len(parameters))
        + parameters
        + bytes([len(name)])
        + name
    )
    return _job(pdu_ref, param)


def plc_hot_restart_request(pdu_ref: int) -> bytes:
    """PI ``P_PROGRAM`` without argument: hot restart (warm start), STOP → RUN."""
    return pi_service_request(pdu_ref, "P_PROGRAM")


def plc_cold_restart_request(pdu_ref: int) -> bytes:
    """PI ``P_PROGRAM`` with argument ``"C "``: cold restart."""
    return pi_service_request(pdu_ref, "P_PROGRAM", b"C ")


def pi_insert_request(
    pdu_ref: int, blocks: Sequence[tuple[str, int]], filesystem: str = "P", service: str = "_INSE"
) -> bytes:
    """PI ``_INSE`` (activate downloaded blocks) or ``_DELE`` (delete blocks): the block
    list ``[(block_type, number), ...]`` goes in the parameter block."""
    names = b"".join(block_filename(t, n, filesystem)[1:].encode("ascii") for t, n in blocks)
    return pi_service_request(pdu_ref, service, bytes([len(blocks), 0x00]) + names)


def pi_service_response(pdu_ref: int) -> bytes:
    """Ack_Data 0x28 (success)."""
    return _ack_data(pdu_ref, bytes([FUNC_PI_SERVICE]))


def plc_stop_request(pdu_ref: int) -> bytes:
    """Job 0x29 PLC Stop (PI service name ``P_PROGRAM``)."""
    name = b"P_PROGRAM"
    return _job(pdu_ref, bytes([FUNC_PLC_STOP, 0, 0, 0, 0, 0, len(name)]) + name)


def plc_stop_response(pdu_ref: int) -> bytes:
    """Ack_Data 0x29 (the PLC goes to STOP)."""
    return _ack_data(pdu_ref, bytes([FUNC_PLC_STOP]))


# ---- Userdata --------------------------------------------------------------------------------
def userdata(
    pdu_ref: int,
    group: int,
    subfunction: int,
    data: bytes,
    response: bool = False,
    seq: int = 0,
    data_unit_ref: int = 0,
    last_unit: bool = True,
    error_code: int = 0,
) -> bytes:
    """Userdata (ROSCTR 7) PDU: the 8-byte (request) or 12-byte (response) parameter
    header with function group and sub-function, then ``data`` as given."""
    if response:
        param = struct.pack(
            "!BBBBBBBBBBH",
            0x00,
            0x01,
            0x12,
            8,
            0x12,
            _UD_TYPE_RESPONSE << 4 | (group & 0x0F),
            subfunction,
            seq,
            data_unit_ref,
            0x00 if last_unit else 0x01,
            error_code,
        )
    else:
        param = struct.pack(
            "!BBBBBBBB",
            0x00,
            0x01,
            0x12,
            4,
            0x11,
            _UD_TYPE_REQUEST << 4 | (group & 0x0F),
            subfunction,
            seq,
        )
    return cotp_dt(s7_pdu(ROSCTR_USERDATA, pdu_ref, param, data))


def _ud_data(payload: bytes, return_code: int = RC_SUCCESS) -> bytes:
    return struct.pack("!BBH", return_code, DATA_TS_OCTET_STRING, len(payload)) + payload


_NO_DATA = bytes([RC_OBJECT_DOES_NOT_EXIST, 0, 0, 0])  # a request / answer without data


def szl_read_request(pdu_ref: int, szl_id: int, szl_index: int = 0, seq: int = 0) -> bytes:
    """Userdata CPU functions / Read SZL request for list ``szl_id``, index ``szl_index``."""
    return userdata(
        pdu_ref,
        UD_GROUP_CPU,
        UD_SUBF_READ_SZL,
        _ud_data(struct.pack("!HH", szl_id, szl_index)),
        seq=seq,
    )


def szl_read_response(
    pdu_ref: int,
    szl_id: int,
    szl_index: int,
    records: Sequence[bytes],
    seq: int = 0,
    data_unit_ref: int = 0,
    last_unit: bool = True,
    error_code: int = 0,
) -> bytes:
    """Read SZL answer with equal-length ``records`` (index first); with a non-zero
    ``error_code`` (e.g. 0xD402 information function unavailable) no data is returned."""
    if error_code:
        data = _NO_DATA
    else:
        rlen = len(records[0]) if records else 0
        if any(len(r) != rlen for r in records):
            raise ValueError("SZL records must have one length")
        body = struct.pack("!HHHH", szl_id, szl_index, rlen, len(records)) + b"".join(records)
        data = _ud_data(body)
    return userdata(
        pdu_ref,
        UD_GROUP_CPU,
        UD_SUBF_READ_SZL,
        data,
        response=True,
        seq=seq,
        data_unit_ref=data_unit_ref,
        last_unit=last_unit,
        error_code=error_code,
    )


def _text(value: str, size: int, fill: bytes = b"\x00") -> bytes:
    raw = value.encode("latin-1")[:size]
    return raw + fill * (size - len(raw))


def _version(version: tuple[int, int, int], letter: str = "V") -> tuple[int, int]:
    major, minor, patch = version
    return ord(letter) << 8 | (major & 0xFF), (minor & 0xFF) << 8 | (patch & 0xFF)


def _szl11(index: int, mlfb: str, module_type: int, ausbg: int, ausbe: int) -> bytes:
    return (
        struct.pack("!H", index)
        + _text(mlfb, 20, b" ")
        + struct.pack("!HHH", module_type, ausbg, ausbe)
    )


def module_identification_records(
    order_number: str,
    hardware_version: int = 1,
    firmware_version: tuple[int, int, int] = (3, 2, 6),
    boot_loader_version: tuple[int, int, int] | None = None,
    module_version: int = 4,
) -> list[bytes]:
    """SZL 0x0011 records (28 bytes: index, 20-character order number, module type id,
    Ausbg, Ausbe): index 1 module and 6 basic hardware (order number, ``module_version``,
    ``hardware_version``), 7 basic firmware (``V3.2.6``), optionally 0x81 boot loader
    (``A32.9.9``), as an S7-300 answers."""
    out = [
        _szl11(0x0001, order_number, 0x00C0, module_version, hardware_version),
        _szl11(0x0006, order_number, 0x00C0, module_version, hardware_version),
        _szl11(0x0007, "", 0x00C0, *_version(firmware_version)),
    ]
    if boot_loader_version is not None:
        out.append(_szl11(0x0081, "Boot Loader", 0x0000, *_version(boot_loader_version, "A")))
    return out


def component_identification_records(
    plc_name: str,
    module_name: str,
    plant_id: str = "",
    copyright: str = "Original Siemens Equipment",
    serial_number: str = "",
    module_type: str = "",
    memory_card_serial: str = "",
    location: str = "",
) -> list[bytes]:
    """SZL 0x001C records (34 bytes: index + 32 bytes) as a CPU answers index 0: 1 PLC
    name, 2 module name, 3 plant id, 4 copyright, 5 serial number, 7 module type name
    (defaults to the module name), 8 memory card serial, 9 manufacturer / profile ids
    (Siemens 0x002A, profile 0xF600), 0x0A OEM ids (none), 0x0B location."""
    texts = (
        (1, plc_name),
        (2, module_name),
        (3, plant_id),
        (4, copyright),
        (5, serial_number),
        (7, module_type or module_name),
        (8, memory_card_serial),
    )
    out = [struct.pack("!H", k) + _text(v, 32) for k, v in texts]
    out.append(struct.pack("!HHHH", 9, 0x002A, 0xF600, 0x0001) + bytes(26))
    out.append(struct.pack("!H", 0x0A) + bytes(32))
    out.append(struct.pack("!H", 0x0B) + _text(location, 32))
    return out


def list_blocks_request(pdu_ref: int, seq: int = 0) -> bytes:
    """Userdata block functions / List blocks request."""
    return userdata(pdu_ref, UD_GROUP_BLOCK, UD_SUBF_LIST_BLOCKS, _NO_DATA, seq=seq)


def list_blocks_response(pdu_ref: int, counts: Mapping[str, int], seq: int = 0) -> bytes:
    """List blocks answer: number of blocks per type, e.g. ``{BLOCK_OB: 3, BLOCK_DB: 12}``."""
    body = b"".join(t.encode("ascii") + struct.pack("!H", n) for t, n in counts.items())
    return userdata(
        pdu_ref, UD_GROUP_BLOCK, UD_SUBF_LIST_BLOCKS, _ud_data(body), response=True, seq=seq
    )


def encode_password(password: str) -> bytes:
    """The 8-byte obfuscation Step 7 applies to a PLC password (space padded, XOR 0x55
    chained over the byte two places before)."""
    raw = bytearray(_text(password, 8, b" "))
    raw[0] ^= 0x55
    raw[1] ^= 0x55
    for i in range(2, 8):
        raw[i] ^= 0x55 ^ raw[i - 2]
    return bytes(raw)


def password_request(pdu_ref: int, password: str, seq: int = 0) -> bytes:
    """Userdata security / PLC password request carrying the encoded password."""
    return userdata(
        pdu_ref, UD_GROUP_SECURITY, UD_SUBF_PASSWORD, _ud_data(encode_password(password)), seq=seq
    )


def password_response(
    pdu_ref: int, error_code: int = 0, seq: int = 0, data_unit_ref: int = 0
) -> bytes:
    """PLC password answer; ``error_code`` 0xD602 means "incorrect password entered"."""
    return userdata(
        pdu_ref,
        UD_GROUP_SECURITY,
        UD_SUBF_PASSWORD,
        _NO_DATA,
        response=True,
        seq=seq,
        data_unit_ref=data_unit_ref,
        error_code=error_code,
    )


# ---- S7comm-plus -----------------------------------------------------------------------------
def plus_frame(
    version: int,
    opcode: int,
    function: int,
    seq: int,
    session_id: int | None = None,
    body: bytes = b"",
    digest: bytes | None = None,
    trailer: bool = True,
) -> bytes:
    """TPKT + COTP DT + S7comm-plus PDU (protocol id 0x72).

    Header ``72 version length``; for version 3 an integrity part (length byte + digest,
    default 32 zero bytes); then opcode, 2 reserved bytes, function, 2 reserved bytes,
    sequence number, for requests the 4-byte session id, then ``body``; trailer
    ``72 version 00 00``. ``trailer=False`` gives a fragment continued in the next PDU.
    """
    integrity = b""
    if version == 3:
        d = bytes(32) if digest is None else digest
        integrity = bytes([len(d)]) + d
    part = integrity + struct.pack("!BHHHH", opcode, 0, function, 0, seq & 0xFFFF)
    if session_id is not None:
        part += struct.pack("!I", session_id)
    part += body
    pdu = struct.pack("!BBH", _PLUS_ID, version, len(part)) + part
    if trailer:
        pdu += struct.pack("!BBH", _PLUS_ID, version, 0)
    return cotp_dt(pdu)
