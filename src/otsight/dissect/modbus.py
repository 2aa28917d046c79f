"""Modbus/TCP: MBAP + PDU fields, values, FC 8 / FC 43 / FC 90 (UMAS) details.

The kernel decodes the fields every PDU has (transaction, unit, function, exception,
addresses, quantities, sub-codes) and the register/coil values, for PDUs that reassembly
framed with the MBAP framer (content-detected, port 502 as a hint only). Read Device
Identification answers (FC 43/14) are rare and decoded in Python. Responses carry their
request's start address and quantity (paired by flow, transaction and unit) and latency.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.capture import framing
from otsight.dissect.base import ChunkContext, Dissector, Semantics, pairing_columns, take_envelope
from otsight.dissect.matching import RequestMatcher

# ---- semantics (seeded from shared/PROTOCOLS.md 3.1 and 3.1a) -----------------------------
FUNCTIONS = Semantics(
    "modbus",
    "func_code",
    {
        1: ("read_coils", "read", ["T0801"]),
        2: ("read_discrete_inputs", "read", ["T0801"]),
        3: ("read_holding_registers", "read", ["T0801"]),
        4: ("read_input_registers", "read", ["T0801"]),
        5: ("write_single_coil", "write", ["T0855", "T0831"]),
        6: ("write_single_register", "write", ["T0836", "T0855"]),
        7: ("read_exception_status", "diagnostic", ["T0888"]),
        8: ("diagnostics", "diagnostic", ["T0888"]),
        11: ("get_comm_event_counter", "diagnostic", ["T0888"]),
        12: ("get_comm_event_log", "diagnostic", ["T0888"]),
        15: ("write_multiple_coils", "write", ["T0855", "T0831", "T0806"]),
        16: ("write_multiple_registers", "write", ["T0836", "T0855"]),
        17: ("report_server_id", "discovery", ["T0888"]),
        20: ("read_file_record", "read", ["T0882"]),
        21: ("write_file_record", "write", ["T0836"]),
        22: ("mask_write_register", "write", ["T0836", "T0855"]),
        23: ("read_write_multiple_registers", "write", ["T0836", "T0855"]),
        24: ("read_fifo_queue", "read", ["T0888"]),
        43: ("encapsulated_interface_transport", "discovery", ["T0888", "T0846"]),
        90: ("umas", "program", ["T0843", "T0845", "T0858"]),
    },
)

DIAGNOSTICS = Semantics(
    "modbus",
    "sub_function",
    {
        0x00: ("return_query_data", "diagnostic"),
        0x01: ("restart_communications_option", "control", ["T0816"]),
        0x02: ("return_diagnostic_register", "diagnostic"),
        0x03: ("change_ascii_input_delimiter", "control"),
        0x04: ("force_listen_only_mode", "control", ["T0814", "T0804"]),
        0x0A: ("clear_counters_and_diagnostic_register", "diagnostic", ["T0872"]),
        0x0B: ("return_bus_message_count", "diagnostic"),
        0x0C: ("return_bus_communication_error_count", "diagnostic"),
        0x0D: ("return_bus_exception_error_count", "diagnostic"),
        0x0E: ("return_server_message_count", "diagnostic"),
        0x0F: ("return_server_no_response_count", "diagnostic"),
        0x10: ("return_server_nak_count", "diagnostic"),
        0x11: ("return_server_busy_count", "diagnostic"),
        0x12: ("return_bus_character_overrun_count", "diagnostic"),
        0x14: ("clear_overrun_counter_and_flag", "diagnostic", ["T0872"]),
    },
)

MEI_TYPES = Semantics(
    "modbus",
    "mei_type",
    {
        13: ("canopen_general_reference", "diagnostic"),
        14: ("read_device_identification", "discovery", ["T0888", "T0846"]),
    },
)

EXCEPTIONS = Semantics(
    "modbus",
    "exception_code",
    {
        1: "illegal_function",
        2: "illegal_data_address",
        3: "illegal_data_value",
        4: "server_device_failure",
        5: "acknowledge",
        6: "server_device_busy",
        8: "memory_parity_error",
        10: "gateway_path_unavailable",
        11: "gateway_target_device_failed_to_respond",
    },
)

DEVICE_OBJECTS = {
    0: "vendor_name",
    1: "product_code",
    2: "major_minor_revision",
    3: "vendor_url",
    4: "product_name",
    5: "model_name",
    6: "user_application_name",
}

UMAS = Semantics(
    "modbus",
    "umas_code",
    {
        0x01: ("init_comm", "session"),
        0x02: ("read_id", "discovery", ["T0888"]),
        0x03: ("read_project_info", "discovery", ["T0888"]),
        0x04: ("read_plc_info", "discovery", ["T0888", "T0868"]),
        0x06: ("read_card_info", "discovery", ["T0888"]),
        0x0A: ("repeat", "diagnostic"),
        0x10: ("take_plc_reservation", "session", ["T0886"]),
        0x11: ("release_plc_reservation", "session"),
        0x12: ("keep_alive", "diagnostic"),
        0x20: ("read_memory_block", "read", ["T0845", "T0882"]),
        0x22: ("read_variables", "read", ["T0801", "T0861"]),
        0x23: ("write_variables", "write", ["T0836", "T0855"]),
        0x24: ("read_coils_registers", "read", ["T0801"]),
        0x25: ("write_coils_registers", "write", ["T0836", "T0855"]),
        # 0x30-0x35: names are inverted between sources; direction is what matters (PROTOCOLS.md)
        0x30: ("strategy_transfer_pc_to_plc_begin", "program", ["T0843", "T0889"]),
        0x31: ("strategy_transfer_pc_to_plc_block", "program", ["T0843", "T0889"]),
        0x32: ("strategy_transfer_pc_to_plc_end", "program", ["T0843", "T0889"]),
        0x33: ("strategy_transfer_plc_to_pc_begin", "program", ["T0845"]),
        0x34: ("strategy_transfer_plc_to_pc_block", "program", ["T0845"]),
        0x35: ("strategy_transfer_plc_to_pc_end", "program", ["T0845"]),
        0x39: ("read_eth_master_data", "read", ["T0801"]),
        0x40: ("start_plc", "control", ["T0858"]),
        0x41: ("stop_plc", "control", ["T0858"]),
        0x50: ("monitor_plc", "read", ["T0801", "T0861"]),
        0x58: ("check_plc", "diagnostic"),
        0x70: ("read_io_object", "read", ["T0801"]),
        0x71: ("write_io_object", "write", ["T0835", "T0836"]),
        0x73: ("get_status_module", "diagnostic"),
        0xFD: ("response_error", None),
        0xFE: ("response_ok", None),
    },
)

# ---- kernel -----------------------------------------------------------------------------
# columns of the kernel's int64 output (-1 = absent)
TRANS, UNIT, FC, EXC, START, QTY, BYTES, SUB, MEI, DEVID, OBJID, UMAS_C, WSTART, WQTY = range(14)
AND_MASK, OR_MASK, NVALS, STATUS, KIND = 14, 15, 16, 17, 18
NCOL = 19

# kinds of values lists
V_NONE, V_REGS, V_BITS = 0, 1, 2

OK, TRUNCATED, BAD_BYTE_COUNT = 0, 1, 2
WEIRD = {TRUNCATED: "modbus_pdu_too_short", BAD_BYTE_COUNT: "modbus_bad_byte_count"}


@njit(cache=True, inline="always")
def _b16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(cache=True, nogil=True)
def _fields(buf, arena, in_arena, off, length, is_req, out):
    """Fixed fields of each PDU; ``out[j, NVALS]`` = number of values it carries."""
    n = off.shape[0]
    for j in range(n):
        b = arena if in_arena[j] else buf
        p = off[j]
        ln = length[j]
        for c in range(NCOL):
            out[j, c] = -1
        out[j, NVALS] = 0
        out[j, STATUS] = OK
        out[j, KIND] = V_NONE
        out[j, TRANS] = _b16(b, p)
        out[j, UNIT] = b[p + 6]
        raw = np.int64(b[p + 7])
        out[j, FC] = raw & 0x7F
        q = p + 8  # first byte after the function code
        rem = ln - 8
        if raw & 0x80:
            if rem >= 1:
                out[j, EXC] = b[q]
            else:
                out[j, STATUS] = TRUNCATED
            continue
        fc = raw
        req = is_req[j] != 0
        if fc >= 1 and fc <= 4:
            if req:
                # decode what is there, as Wireshark does, and flag what is missing
                if rem >= 2:
                    out[j, START] = _b16(b, q)
                if rem < 4:
                    out[j, STATUS] = TRUNCATED
                    continue
                out[j, QTY] = _b16(b, q + 2)
            else:
                if rem < 1:
                    out[j, STATUS] = TRUNCATED
                    continue
                bc = np.int64(b[q])
                out[j, BYTES] = bc
                if bc > rem - 1:
                    out[j, STATUS] = BAD_BYTE_COUNT
                    bc = rem - 1
                if fc <= 2:
                    out[j, KIND] = V_BITS
                    out[j, NVALS] = bc * 8
                else:
                    out[j, KIND] = V_REGS
                    out[j, NVALS] = bc // 2
        elif fc == 5 or fc == 6:
            if rem >= 2:
                out[j, START] = _b16(b, q)
            if rem < 4:
                out[j, STATUS] = TRUNCATED
                continue
            out[j, QTY] = 1
            out[j, KIND] = V_REGS if fc == 6 else V_BITS
            out[j, NVALS] = 1
        elif fc == 15 or fc == 16:
            if rem >= 2:
                out[j, START] = _b16(b, q)
            if rem < 4:
                out[j, STATUS] = TRUNCATED
                continue
            qty = _b16(b, q + 2)
            out[j, QTY] = qty
            if req:
                if rem < 5:
                    out[j, STATUS] = TRUNCATED
                    continue
                bc = np.int64(b[q + 4])
                out[j, BYTES] = bc
                if bc > rem - 5:
                    out[j, STATUS] = BAD_BYTE_COUNT
                    bc = rem - 5
                if fc == 15:
                    out[j, KIND] = V_BITS
                    out[j, NVALS] = min(qty, bc * 8)
                else:
                    out[j, KIND] = V_REGS
                    out[j, NVALS] = min(qty, bc // 2)
        elif fc == 22:
            if rem >= 2:
                out[j, START] = _b16(b, q)
            if rem < 6:
                out[j, STATUS] = TRUNCATED
                continue
            out[j, AND_MASK] = _b16(b, q + 2)
            out[j, OR_MASK] = _b16(b, q + 4)
        elif fc == 23:
            if req:
                if rem >= 4:
                    out[j, START] = _b16(b, q)
                    out[j, QTY] = _b16(b, q + 2)
                if rem < 9:
                    out[j, STATUS] = TRUNCATED
                    continue
                out[j, WSTART] = _b16(b, q + 4)
                wq = _b16(b, q + 6)
                out[j, WQTY] = wq
                bc = np.int64(b[q + 8])
                out[j, BYTES] = bc
                if bc > rem - 9:
                    out[j, STATUS] = BAD_BYTE_COUNT
                    bc = rem - 9
                out[j, KIND] = V_REGS
                out[j, NVALS] = min(wq, bc // 2)
            else:
                if rem < 1:
                    out[j, STATUS] = TRUNCATED
                    continue
                bc = np.int64(b[q])
                out[j, BYTES] = bc
                if bc > rem - 1:
                    out[j, STATUS] = BAD_BYTE_COUNT
                    bc = rem - 1
                out[j, KIND] = V_REGS
                out[j, NVALS] = bc // 2
        elif fc == 24:
            if req:
                if rem < 2:
                    out[j, STATUS] = TRUNCATED
                    continue
                out[j, START] = _b16(b, q)  # FIFO pointer address
            else:
                if rem < 4:
                    out[j, STATUS] = TRUNCATED
                    continue
                out[j, BYTES] = _b16(b, q)
                cnt = _b16(b, q + 2)
                out[j, QTY] = cnt
                if 4 + 2 * cnt > rem:
                    out[j, STATUS] = BAD_BYTE_COUNT
                    cnt = (rem - 4) // 2
                out[j, KIND] = V_REGS
                out[j, NVALS] = cnt
        elif fc == 8:
            if rem < 2:
                out[j, STATUS] = TRUNCATED
                continue
            out[j, SUB] = _b16(b, q)
        elif fc == 43:
            if rem < 1:
                out[j, STATUS] = TRUNCATED
                continue
            out[j, MEI] = b[q]
            if b[q] == 14 and rem >= 3:
                out[j, DEVID] = b[q + 1]
                if req:
                    out[j, OBJID] = b[q + 2]
        elif fc == 90:
            if rem >= 2:
                out[j, UMAS_C] = b[q + 1]  # after the session (pairing) byte
            else:
                out[j, STATUS] = TRUNCATED


@njit(cache=True, nogil=True)
def _values(buf, arena, in_arena, off, out, starts, values):
    """Register / coil values of each PDU into ``values[starts[j]:starts[j+1]]``."""
    n = off.shape[0]
    for j in range(n):
        cnt = out[j, NVALS]
        if cnt <= 0:
            continue
        b = arena if in_arena[j] else buf
        q = off[j] + 8
        fc = out[j, FC]
        s = starts[j]
        if fc == 5:
            values[s] = 1 if _b16(b, q + 2) == 0xFF00 else 0
            continue
        if fc == 6:
            values[s] = _b16(b, q + 2)
            continue
        if fc == 15 or fc == 16:
            q += 5
        elif fc == 23 and out[j, WSTART] >= 0:
            q += 9
        elif fc == 24:
            q += 4
        else:
            q += 1  # byte count
        if out[j, KIND] == 2:
            for k in range(cnt):
                values[s + k] = (b[q + (k >> 3)] >> (k & 7)) & 1
        else:
            for k in range(cnt):
                values[s + k] = _b16(b, q + 2 * k)


def _device_objects(data: bytes) -> list[dict[str, object]] | None:
    """Objects of a Read Device Identification response (MBAP included in ``data``)."""
    body = data[8:]
    if len(body) < 6:
        return None
    count = body[5]
    p = 6
    objects = []
    for _ in range(count):
        if p + 2 > len(body):
            return None
        oid, olen = body[p], body[p + 1]
        value = body[p + 2 : p + 2 + olen]
        if len(value) < olen:
            return None
        objects.append(
            {
                "id": oid,
                "name": DEVICE_OBJECTS.get(oid, f"object_{oid}"),
                "value": value.decode("latin-1"),
            }
        )
        p += 2 + olen
    return objects


def _col(out: np.ndarray, c: int, dtype) -> pa.Array:
    v = out[:, c]
    return pa.array(v.astype(dtype), mask=v < 0)


class ModbusDissector(Dissector):
    name = "modbus"
    tables = {"modbus": E.MODBUS}
    framers = (framing.MBAP,)
    semantics = (FUNCTIONS, DIAGNOSTICS, MEI_TYPES, EXCEPTIONS, UMAS)

    def __init__(self) -> None:
        self.matcher = RequestMatcher(width=3)

    def process(self, ctx: ChunkContext) -> dict[str, pa.RecordBatch]:
        idx = ctx.pdus(framing.MBAP)
        n = idx.shape[0]
        if n == 0:
            return {}
        env = ctx.pdu_envelope(idx)
        from otsight.capture import _track as T

        P = ctx.track.pdus
        sport, dport = P[idx, T.P_SPORT], P[idx, T.P_DPORT]
        is_orig = P[idx, T.P_ORIG] != 0
        is_req = (dport == 502) | ((sport != 502) & is_orig)
        in_arena, off, length = ctx.pdu_locations(idx)
        out = np.empty((n, NCOL), dtype=np.int64)
        _fields(ctx.chunk.buf, ctx.track.arena, in_arena, off, length, is_req.astype(np.int64), out)
        counts = out[:, NVALS]
        starts = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        values = np.empty(int(starts[-1]), dtype=np.int64)
        _values(ctx.chunk.buf, ctx.track.arena, in_arena, off, out, starts, values)

        # pair responses with requests: (flow, transaction id + unit)
        flow = P[idx, T.P_FLOW]
        key2 = (out[:, TRANS] << 8) | out[:, UNIT]
        payload = np.stack([out[:, START], out[:, QTY], out[:, FC]], axis=1)
        matched, req_frame, req_ts, req_pl = self.matcher.match(
            flow, key2, is_req, P[idx, T.P_FRAME], P[idx, T.P_TS], payload
        )
        matched &= req_pl[:, 2] == out[:, FC]  # same function (exceptions carry it too)
        resp_fill = matched & (out[:, START] < 0)
        out[resp_fill, START] = req_pl[resp_fill, 0]
        resp_qty = matched & (out[:, QTY] < 0)
        out[resp_qty, QTY] = req_pl[resp_qty, 1]
        # coil/input bits in a response: only the requested quantity is meaningful
        values_arr, starts = _trim_bits(values, starts, out, matched, req_pl[:, 1])

        fc = out[:, FC]
        batch = dict(env)
        batch.update(
            {
                "is_request": pa.array(is_req),
                "trans_id": pa.array(out[:, TRANS].astype(np.int32)),
                "unit_id": pa.array(out[:, UNIT].astype(np.int16)),
                "func_code": pa.array(fc.astype(np.int16)),
                "func_name": FUNCTIONS.names(fc),
                "category": _categories(FUNCTIONS, fc, out[:, SUB], out[:, UMAS_C]),
                "exception_code": _col(out, EXC, np.int16),
                "exception_name": EXCEPTIONS.optional_names(out[:, EXC]),
                "start_address": _col(out, START, np.int32),
                "quantity": _col(out, QTY, np.int32),
                "byte_count": _col(out, BYTES, np.int32),
                "values": pa.ListArray.from_arrays(
                    pa.array(starts.astype(np.int32)), pa.array(values_arr.astype(np.int32))
                ),
                "write_address": _col(out, WSTART, np.int32),
                "write_quantity": _col(out, WQTY, np.int32),
                "and_mask": _col(out, AND_MASK, np.int32),
                "or_mask": _col(out, OR_MASK, np.int32),
                "sub_function": _col(out, SUB, np.int32),
                "sub_function_name": DIAGNOSTICS.optional_names(out[:, SUB]),
                "mei_type": _col(out, MEI, np.int16),
                "read_device_id_code": _col(out, DEVID, np.int16),
                "object_id": _col(out, OBJID, np.int16),
                "device_objects": self._objects(ctx, idx, out, is_req),
                "umas_code": _col(out, UMAS_C, np.int16),
                "umas_name": UMAS.optional_names(out[:, UMAS_C]),
                **pairing_columns(matched, req_frame, req_ts, P[idx, T.P_TS]),
            }
        )
        bad = np.flatnonzero(out[:, STATUS] != OK)
        if bad.shape[0]:
            ctx.weird(
                take_envelope(env, bad),
                [WEIRD[int(s)] for s in out[bad, STATUS]],
                [
                    f"function {int(f)}, {int(ln)} bytes"
                    for f, ln in zip(fc[bad], length[bad], strict=True)
                ],
                "modbus",
            )
        return {"modbus": pa.RecordBatch.from_pydict(batch, schema=E.MODBUS)}

    @staticmethod
    def _objects(ctx: ChunkContext, idx, out, is_req) -> pa.Array:
        rows: list[list[dict[str, object]] | None] = [None] * idx.shape[0]
        for k in np.flatnonzero((out[:, MEI] == 14) & ~is_req & (out[:, EXC] < 0)):
            objects = _device_objects(ctx.pdu_bytes(idx[k]))
            if objects is None:
                ctx.weird(
                    take_envelope(ctx.pdu_envelope(idx[k : k + 1]), np.array([0])),
                    ["modbus_bad_device_identification"],
                    [None],
                    "modbus",
                )
            rows[int(k)] = objects
        return pa.array(rows, type=E.MODBUS.field("device_objects").type)


def _trim_bits(values, starts, out, matched, req_qty):
    is_bits_resp = matched & (out[:, KIND] == V_BITS) & (out[:, FC] <= 2)
    if not is_bits_resp.any():
        return values, starts
    lens = np.diff(starts)
    new_len = np.where(is_bits_resp, np.minimum(lens, np.maximum(req_qty, 0)), lens)
    pos = np.arange(values.shape[0]) - np.repeat(starts[:-1], lens)
    keep = pos < np.repeat(new_len, lens)
    new_starts = np.zeros_like(starts)
    np.cumsum(new_len, out=new_starts[1:])
    return values[keep], new_starts


def _categories(sem: Semantics, fc: np.ndarray, sub: np.ndarray, umas: np.ndarray) -> pa.Array:
    """Category of each PDU: by function code, refined by FC 8 sub-function and UMAS code."""
    cat = {int(k): (m.category or "") for k, m in sem.rows.items()}
    sub_cat = {int(k): (m.category or "") for k, m in DIAGNOSTICS.rows.items()}
    umas_cat = {int(k): (m.category or "") for k, m in UMAS.rows.items()}
    names = ["", *sorted(set(cat.values()) | set(sub_cat.values()) | set(umas_cat.values()) - {""})]
    code_of = {name: i for i, name in enumerate(names)}
    lut = np.zeros(256, dtype=np.int32)
    for k, c in cat.items():
        lut[k] = code_of[c]
    codes = lut[fc & 0xFF]
    for table, column, f in ((sub_cat, sub, 8), (umas_cat, umas, 90)):
        rows = np.flatnonzero(fc == f)  # few rows: refine only those
        if rows.shape[0] == 0:
            continue
        values = column[rows]
        for k, c in table.items():
            if c:
                codes[rows[values == k]] = code_of[c]
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes == 0), pa.array(names))


DISSECTOR = ModbusDissector
