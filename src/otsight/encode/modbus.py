"""Modbus/TCP encoders: every function returns a complete MBAP ADU (header + PDU).

Requests and responses share the 7-byte MBAP header built by :func:`adu`.  Register
values are unsigned 16-bit; coil/discrete values are truthy items packed LSB first.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

__all__ = [
    "FC_DIAGNOSTICS",
    "FC_READ_COILS",
    "FC_READ_DEVICE_ID",
    "FC_READ_DISCRETE_INPUTS",
    "FC_READ_HOLDING_REGISTERS",
    "FC_READ_INPUT_REGISTERS",
    "FC_READ_WRITE_MULTIPLE_REGISTERS",
    "FC_UMAS",
    "FC_WRITE_MULTIPLE_COILS",
    "FC_WRITE_MULTIPLE_REGISTERS",
    "FC_WRITE_SINGLE_COIL",
    "FC_WRITE_SINGLE_REGISTER",
    "MEI_READ_DEVICE_ID",
    "adu",
    "diagnostics",
    "exception_response",
    "raw",
    "read_bits_response",
    "read_device_id_request",
    "read_device_id_response",
    "read_registers_response",
    "read_request",
    "read_write_registers_request",
    "read_write_registers_response",
    "write_multiple_coils_request",
    "write_multiple_coils_response",
    "write_multiple_registers_request",
    "write_multiple_registers_response",
    "write_single_coil",
    "write_single_register",
]

FC_READ_COILS = 1
FC_READ_DISCRETE_INPUTS = 2
FC_READ_HOLDING_REGISTERS = 3
FC_READ_INPUT_REGISTERS = 4
FC_WRITE_SINGLE_COIL = 5
FC_WRITE_SINGLE_REGISTER = 6
FC_DIAGNOSTICS = 8
FC_WRITE_MULTIPLE_COILS = 15
FC_WRITE_MULTIPLE_REGISTERS = 16
FC_READ_WRITE_MULTIPLE_REGISTERS = 23
FC_READ_DEVICE_ID = 43
FC_UMAS = 90
MEI_READ_DEVICE_ID = 14

_READS = (
    FC_READ_COILS,
    FC_READ_DISCRETE_INPUTS,
    FC_READ_HOLDING_REGISTERS,
    FC_READ_INPUT_REGISTERS,
)


def adu(trans_id: int, unit_id: int, pdu: bytes) -> bytes:
    """Prefix a PDU (function code + data) with the MBAP header."""
    return struct.pack("!HHHB", trans_id & 0xFFFF, 0, len(pdu) + 1, unit_id) + pdu


def _pack_bits(values: Sequence[object]) -> bytes:
    out = bytearray((len(values) + 7) // 8)
    for i, v in enumerate(values):
        if v:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def _pack_regs(values: Sequence[int]) -> bytes:
    return struct.pack(f"!{len(values)}H", *values)


def read_request(trans_id: int, unit_id: int, function: int, address: int, count: int) -> bytes:
    """Request for FC 1, 2, 3 or 4 (start address, quantity)."""
    if function not in _READS:
        raise ValueError(f"not a read function code: {function}")
    return adu(trans_id, unit_id, struct.pack("!BHH", function, address, count))


def read_bits_response(
    trans_id: int, unit_id: int, function: int, values: Sequence[object]
) -> bytes:
    """Response to FC 1/2 with coil or discrete-input states."""
    data = _pack_bits(values)
    return adu(trans_id, unit_id, struct.pack("!BB", function, len(data)) + data)


def read_registers_response(
    trans_id: int, unit_id: int, function: int, values: Sequence[int]
) -> bytes:
    """Response to FC 3/4 (or 23) with register values."""
    return adu(
        trans_id, unit_id, struct.pack("!BB", function, 2 * len(values)) + _pack_regs(values)
    )


def write_single_coil(trans_id: int, unit_id: int, address: int, value: bool) -> bytes:
    """FC 5 request; the normal response is an identical echo."""
    return adu(trans_id, unit_id, struct.pack("!BHH", 5, address, 0xFF00 if value else 0))


def write_single_register(trans_id: int, unit_id: int, address: int, value: int) -> bytes:
    """FC 6 request; the normal response is an identical echo."""
    return adu(trans_id, unit_id, struct.pack("!BHH", 6, address, value))


def write_multiple_coils_request(
    trans_id: int, unit_id: int, address: int, values: Sequence[object]
) -> bytes:
    """FC 15 request."""
    data = _pack_bits(values)
    return adu(trans_id, unit_id, struct.pack("!BHHB", 15, address, len(values), len(data)) + data)


def write_multiple_coils_response(trans_id: int, unit_id: int, address: int, count: int) -> bytes:
    """FC 15 response (address and quantity echo)."""
    return adu(trans_id, unit_id, struct.pack("!BHH", 15, address, count))


def write_multiple_registers_request(
    trans_id: int, unit_id: int, address: int, values: Sequence[int]
) -> bytes:
    """FC 16 request."""
    head = struct.pack("!BHHB", 16, address, len(values), 2 * len(values))
    return adu(trans_id, unit_id, head + _pack_regs(values))


def write_multiple_registers_response(
    trans_id: int, unit_id: int, address: int, count: int
) -> bytes:
    """FC 16 response (address and quantity echo)."""
    return adu(trans_id, unit_id, struct.pack("!BHH", 16, address, count))


def diagnostics(trans_id: int, unit_id: int, sub_function: int, data: bytes = b"\0\0") -> bytes:
    """FC 8 request with a sub-function; for most sub-functions the response echoes it."""
    return adu(trans_id, unit_id, struct.pack("!BH", 8, sub_function) + data)


def read_write_registers_request(
    trans_id: int,
    unit_id: int,
    read_address: int,
    read_count: int,
    write_address: int,
    values: Sequence[int],
) -> bytes:
    """FC 23 request."""
    head = struct.pack(
        "!BHHHHB", 23, read_address, read_count, write_address, len(values), 2 * len(values)
    )
    return adu(trans_id, unit_id, head + _pack_regs(values))


def read_write_registers_response(trans_id: int, unit_id: int, values: Sequence[int]) -> bytes:
    """FC 23 response with the registers read."""
    return read_registers_response(trans_id, unit_id, 23, values)


def read_device_id_request(
    trans_id: int, unit_id: int, read_code: int = 1, object_id: int = 0
) -> bytes:
    """FC 43 / MEI 14 request (read code 1 basic, 2 regular, 3 extended, 4 specific)."""
    return adu(trans_id, unit_id, struct.pack("!BBBB", 43, 14, read_code, object_id))


def read_device_id_response(
    trans_id: int,
    unit_id: int,
    objects: Mapping[int, str | bytes],
    read_code: int = 1,
    conformity: int = 0x81,
    more_follows: bool = False,
    next_object_id: int = 0,
) -> bytes:
    """FC 43 / MEI 14 response listing ``{object_id: value}`` (0 vendor, 1 product code,
    2 revision, 3 vendor URL, 4 product name, 5 model name, ...)."""
    body = bytearray(
        struct.pack(
            "!BBBBBBB",
            43,
            14,
            read_code,
            conformity,
            0xFF if more_follows else 0,
            next_object_id,
            len(objects),
        )
    )
    for obj_id, value in objects.items():
        raw_value = value.encode() if isinstance(value, str) else value
        body += struct.pack("!BB", obj_id, len(raw_value)) + raw_value
    return adu(trans_id, unit_id, bytes(body))


def exception_response(trans_id: int, unit_id: int, function: int, code: int) -> bytes:
    """Exception response: ``function | 0x80`` followed by the exception code."""
    return adu(trans_id, unit_id, struct.pack("!BB", (function | 0x80) & 0xFF, code))


def raw(trans_id: int, unit_id: int, function: int, payload: bytes = b"") -> bytes:
    """Any function code with an opaque payload (e.g. FC 90 / Schneider UMAS)."""
    return adu(trans_id, unit_id, bytes([function]) + payload)
