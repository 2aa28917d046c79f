"""Cyclic polls in bulk: one encoded template, many stamped copies.

Polling is most of an industrial network's traffic: the same request every cycle, answered
with the same layout and new values. Each poll stream is therefore built by encoding one
request and one response with the project's encoders (``otsight.encode``), finding where
the varying fields sit (by encoding sentinel values and locating them — the encoder stays the
only authority on layout), then writing transaction ids and process values into copies of
the template as numpy columns. DNP3 frames carry CRCs per 16-byte block, recomputed by a
kernel after stamping.
"""

from __future__ import annotations

import struct

import numpy as np

from otsight._jit import njit
from otsight.capture.framing import _dnp3_crc  # the link-layer CRC the framer checks
from otsight.encode import dnp3 as dnp
from otsight.encode import enip as en
from otsight.encode import iec104 as i104
from otsight.encode import modbus as mb
from otsight.encode import packets as pk
from otsight.encode import profinet_dcp as pn
from otsight.encode import s7comm as s7


def locate(template: bytes, sentinel: bytes) -> int:
    """Offset of ``sentinel`` in ``template``; it must occur exactly once."""
    at = template.find(sentinel)
    if at < 0 or template.find(sentinel, at + 1) >= 0:
        raise ValueError(f"sentinel {sentinel.hex()} not unique in template {template.hex()}")
    return at


def copies(template: bytes, n: int) -> np.ndarray:
    return np.tile(np.frombuffer(template, np.uint8), (n, 1))


def stamp(rows: np.ndarray, offset: int, values: np.ndarray, width: int, fmt: str) -> None:
    """Write ``values`` (one per row) at ``offset`` as ``fmt`` ('>u2', '<f4', ...)."""
    raw = np.ascontiguousarray(np.asarray(values).astype(fmt)).view(np.uint8)
    rows[:, offset : offset + width] = raw.reshape(rows.shape[0], width)


# ---- Modbus/TCP ---------------------------------------------------------------------------


def modbus_read(
    trans_ids: np.ndarray, unit: int, function: int, address: int, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Read requests and their responses; ``values`` is [n, count] register (or bit) values."""
    n, count = values.shape
    req = copies(mb.read_request(0, unit, function, address, count), n)
    stamp(req, 0, trans_ids & 0xFFFF, 2, ">u2")
    if function in (mb.FC_READ_COILS, mb.FC_READ_DISCRETE_INPUTS):
        resp = copies(mb.read_bits_response(0, unit, function, [0] * count), n)
        packed = np.packbits(values.astype(bool), axis=1, bitorder="little")
        resp[:, 9 : 9 + packed.shape[1]] = packed
    else:
        resp = copies(mb.read_registers_response(0, unit, function, [0] * count), n)
        stamp_many(resp, 9, values & 0xFFFF, ">u2")
    stamp(resp, 0, trans_ids & 0xFFFF, 2, ">u2")
    return req, resp


def stamp_many(rows: np.ndarray, offset: int, values: np.ndarray, fmt: str) -> None:
    """Write a [n, k] block of consecutive values of one type at ``offset``."""
    width = np.dtype(fmt).itemsize
    raw = np.ascontiguousarray(values.astype(fmt)).view(np.uint8)
    rows[:, offset : offset + width * values.shape[1]] = raw.reshape(rows.shape[0], -1)


# ---- S7comm -------------------------------------------------------------------------------


def s7_read_db(
    pdu_refs: np.ndarray, db: int, start: int, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Read Var of ``k`` consecutive REALs of a data block; ``values`` is [n, k] floats."""
    n, k = values.shape
    item = s7.VarItem(area=s7.AREA_DB, db=db, byte=start, transport_size=s7.TS_BYTE, length=4 * k)
    req = copies(s7.read_var_request(0x7A7A, [item]), n)
    stamp(req, locate(bytes(req[0]), b"\x7a\x7a"), pdu_refs & 0xFFFF, 2, ">u2")
    marker = b"".join(struct.pack(">f", 1000.0 + i) for i in range(k))
    tmpl = s7.read_var_response(0x7A7A, [s7.data_for(item, marker)])
    resp = copies(tmpl, n)
    stamp(resp, locate(tmpl, b"\x7a\x7a"), pdu_refs & 0xFFFF, 2, ">u2")
    stamp_many(resp, locate(tmpl, marker), values, ">f4")
    return req, resp


# ---- DNP3 ---------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _dnp3_fix(rows):
    """Recompute the header CRC and every block CRC of single link frames, one per row."""
    for r in range(rows.shape[0]):
        b = rows[r]
        c = _dnp3_crc(b, 0, 8)
        b[8] = c & 0xFF
        b[9] = c >> 8
        user = np.int64(b[2]) - 5
        p = 10
        while user > 0:
            k = 16 if user > 16 else user
            c = _dnp3_crc(b, p, k)
            b[p + k] = c & 0xFF
            b[p + k + 1] = c >> 8
            p += k + 2
            user -= k


def _user_offset(i: int) -> int:
    """Position in a link frame of user-data octet ``i`` (CRCs after each 16 octets)."""
    return 10 + i + 2 * (i // 16)


def _stamp_user(rows: np.ndarray, at: int, values: np.ndarray, fmt: str) -> None:
    """Write ``values`` at user-data offset ``at`` octet by octet (blocks may split them)."""
    raw = np.ascontiguousarray(np.asarray(values).astype(fmt)).view(np.uint8)
    raw = raw.reshape(rows.shape[0], -1)
    for j in range(raw.shape[1]):
        rows[:, _user_offset(at + j)] = raw[:, j]


def dnp3_class_poll(
    master: int,
    outstation: int,
    app_seq: np.ndarray,
    transport_seq: np.ndarray,
    analogs: np.ndarray,
    binaries: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Class 0 (integrity) polls and responses with analog inputs g30v1 and binary inputs
    g1v2; ``analogs`` [n, a] ints, ``binaries`` [n, b] bools."""
    n, na = analogs.shape
    nb = binaries.shape[1]
    frag = dnp.read_class(0, (0,))
    req = copies(dnp.frames(outstation, master, frag)[0], n)
    # user data = transport octet + fragment; app control is fragment octet 0
    _stamp_user(req, 0, 0xC0 | (transport_seq & 0x3F), "u1")
    _stamp_user(req, 1, 0xC0 | (app_seq & 0x0F), "u1")
    marker = [0x3A3A0000 + i for i in range(na)]
    objects = dnp.analog_inputs(0, marker, variation=1)
    if nb:
        objects += dnp.binary_inputs(0, [False] * nb, variation=2)
    frag = dnp.response(0, 0, objects)
    if len(frag) + 1 > 249:
        raise ValueError("a cyclic DNP3 response must fit one transport segment")
    resp = copies(dnp.frames(master, outstation, frag, from_master=False)[0], n)
    _stamp_user(resp, 0, 0xC0 | (transport_seq & 0x3F), "u1")
    _stamp_user(resp, 1, 0xC0 | (app_seq & 0x0F), "u1")
    at = locate(frag, struct.pack("<i", marker[0]))
    for i in range(na):  # flag octet then int32, five octets per point
        _stamp_user(resp, 1 + at + 5 * i, analogs[:, i], "<i4")
    if nb:
        first_bi = len(frag) - nb
        states = np.where(binaries, dnp.BI_ONLINE | dnp.BI_STATE, dnp.BI_ONLINE)
        for i in range(nb):
            _stamp_user(resp, 1 + first_bi + i, states[:, i], "u1")
    _dnp3_fix(req)
    _dnp3_fix(resp)
    return req, resp


# ---- IEC 60870-5-104 ----------------------------------------------------------------------


def iec104_measurements(
    ca: int, ioas: list[int], values: np.ndarray, cot: int = 3
) -> tuple[np.ndarray, int, int]:
    """Spontaneous/periodic M_ME_NC_1 I-frames (floats) for [n, k] ``values``; returns the
    rows and the offsets of the send and receive sequence fields (stamped by the stream)."""
    n, k = values.shape
    marker = [1000.5 + i for i in range(k)]
    tmpl = i104.i_frame(
        0x1234, 0x0567, i104.m_me_nc_1(ca, list(zip(ioas, marker, strict=True)), cot=cot)
    )
    rows = copies(tmpl, n)
    for i in range(k):
        at = locate(tmpl, struct.pack("<f", marker[i]))
        stamp(rows, at, values[:, i], 4, "<f4")
    return rows, 2, 4  # APCI: start, length, then N(S) and N(R) (each shifted left by one)


# ---- byte layouts of mixed-type records ---------------------------------------------------


def pack_columns(n: int, width: int, columns: list[tuple[int, str, np.ndarray]]) -> np.ndarray:
    """An [n, width] octet matrix with each (offset, numpy format, [n] values) written at its
    offset: the data of a DB range, an I/O image or an assembly, one row per cycle."""
    rows = np.zeros((n, width), np.uint8)
    for offset, fmt, values in columns:
        size = np.dtype(fmt).itemsize
        if offset < 0 or offset + size > width:
            raise ValueError(f"a {fmt} at offset {offset} does not fit {width} octets")
        stamp(rows, offset, values, size, fmt)
    return rows


def _marker(width: int, first: int) -> bytes:
    return bytes((first + i) & 0xFF for i in range(width))


# ---- S7comm: DB byte ranges ---------------------------------------------------------------


def s7_read_db_bytes(
    pdu_refs: np.ndarray, db: int, start: int, data: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Read Var of one byte range of a data block (one BYTE-typed S7ANY item) and its
    answers; ``data`` is the [n, length] content read (see :func:`pack_columns`)."""
    n, length = data.shape
    item = s7.VarItem(area=s7.AREA_DB, db=db, byte=start, transport_size=s7.TS_BYTE, length=length)
    req = copies(s7.read_var_request(0x7A7A, [item]), n)
    stamp(req, locate(bytes(req[0]), b"\x7a\x7a"), pdu_refs & 0xFFFF, 2, ">u2")
    marker = _marker(length, 0xA0)
    tmpl = s7.read_var_response(0x7A7A, [s7.data_for(item, marker)])
    resp = copies(tmpl, n)
    stamp(resp, locate(tmpl, b"\x7a\x7a"), pdu_refs & 0xFFFF, 2, ">u2")
    at = locate(tmpl, marker)
    resp[:, at : at + length] = data
    return req, resp


# ---- EtherNet/IP --------------------------------------------------------------------------


def enip_read_tag(
    session: int,
    contexts: np.ndarray,
    tag: str,
    data_type: int,
    fmt: str,
    values: np.ndarray,
    route: bytes | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """SendRRData Logix Read Tag requests (wrapped in an Unconnected Send when ``route`` is
    given) and their replies; each pair carries its sender context (8 octets, little-endian),
    ``values`` the tag's value in ``fmt`` ('<f4', '<i4', ...)."""
    n = contexts.shape[0]
    msg = en.read_tag_request(tag)
    if route is not None:
        msg = en.unconnected_send(msg, route)
    ctx = 0x5C5C5C5C5C5C5C5C
    req_t = en.send_rr_data(session, msg, context=ctx)
    req = copies(req_t, n)
    stamp(req, locate(req_t, b"\x5c" * 8), contexts, 8, "<u8")
    width = np.dtype(fmt).itemsize
    marker = _marker(width, 0xB0)
    resp_t = en.send_rr_data(session, en.read_tag_response(data_type, marker), context=ctx)
    resp = copies(resp_t, n)
    stamp(resp, locate(resp_t, b"\x5c" * 8), contexts, 8, "<u8")
    stamp(resp, locate(resp_t, marker), values, width, fmt)
    return req, resp


def enip_io(
    connection_id: int, sequences: np.ndarray, data: np.ndarray, run_idle: bool = False
) -> np.ndarray:
    """Class 1 implicit I/O datagrams (UDP 2222) of one connection: the encapsulation
    sequence number and the 16-bit CIP sequence count follow ``sequences``; ``data`` [n, k]
    is the assembly, behind a 32-bit run/idle header (run) for originator-to-target data
    when ``run_idle``."""
    n, k = data.shape
    marker = _marker(k, 0xC0)
    head = b"\x01\x00\x00\x00" if run_idle else b""
    # fields located on a probe whose connection id cannot collide with the sentinels
    probe = en.io_datagram(0, 0x5D5D5D5D, head + marker, cip_sequence=0x5E5E)
    rows = copies(en.io_datagram(connection_id, 0, head + bytes(k), cip_sequence=0), n)
    stamp(rows, locate(probe, b"\x5d" * 4), sequences & 0xFFFFFFFF, 4, "<u4")
    stamp(rows, locate(probe, b"\x5e\x5e"), sequences & 0xFFFF, 2, "<u2")
    if k:
        at = locate(probe, marker)
        rows[:, at : at + k] = data
    return rows


# ---- PROFINET RT --------------------------------------------------------------------------


def pn_rt_frames(
    dst_mac: str,
    src_mac: str,
    frame_id: int,
    data: np.ndarray,
    cycle_counters: np.ndarray,
    data_status: np.ndarray | int,
    vlan_priority: int | None = 6,
) -> np.ndarray:
    """Whole Ethernet frames of one cyclic RT communication relation: ``data`` [n, k] is the
    C_SDU (values with their IOPS, IOCS of the other direction), then the cycle counter and
    data status of each frame. Priority-tagged (VLAN 0, PCP 6) as PROFINET stacks send them."""
    n, k = data.shape
    payload = pn.rt_cyclic(frame_id, bytes(k), 0)
    vlans = [(0x8100, 0, vlan_priority)] if vlan_priority is not None else []
    tmpl = pk.ethernet(dst_mac, src_mac, pn.ETH_PROFINET, payload, vlans=vlans)
    rows = copies(tmpl, n)
    start = len(tmpl) - len(payload)  # the RT payload ends the frame (C_SDU >= 40: no pad)
    rows[:, start + 2 : start + 2 + k] = data
    tail = len(tmpl) - 4  # cycle counter, data status, transfer status
    stamp(rows, tail, cycle_counters & 0xFFFF, 2, ">u2")
    rows[:, tail + 2] = np.asarray(data_status, np.uint8)
    return rows
