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
from otsight.dissect.base import (
    ChunkContext,
    Dissector,
    Semantics,
    null_negative_rows,
    paired_columns,
    take_envelope,
)
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
# rows of the kernel's int32 output, one per field (-1 = absent; VAL_AT is an offset in the
# PDU). START, QTY, FC lead: they are the payload a request hands to its response, passed to
# the matcher as a view.
START, QTY, FC, KEY, TRANS, UNIT, EXC, BYTES, SUB, MEI, DEVID, OBJID, UMAS_C = range(13)
WSTART, WQTY, AND_MASK, OR_MASK, NVALS, VAL_AT, STATUS, KIND = range(13, 21)
NCOL = 21

# output columns built from those rows, by Arrow type
INT32_COLS = (
    ("trans_id", TRANS),
    ("start_address", START),
    ("quantity", QTY),
    ("byte_count", BYTES),
    ("write_address", WSTART),
    ("write_quantity", WQTY),
    ("and_mask", AND_MASK),
    ("or_mask", OR_MASK),
    ("sub_function", SUB),
)
INT16_COLS = (
    ("unit_id", UNIT),
    ("func_code", FC),
    ("exception_code", EXC),
    ("mei_type", MEI),
    ("read_device_id_code", DEVID),
    ("object_id", OBJID),
    ("umas_code", UMAS_C),
)

# rows of the PDU columns read from the track table

# kinds of values lists
V_NONE, V_REGS, V_BITS = 0, 1, 2

OK, TRUNCATED, BAD_BYTE_COUNT = 0, 1, 2
WEIRD = {TRUNCATED: "modbus_pdu_too_short", BAD_BYTE_COUNT: "modbus_bad_byte_count"}


@njit(cache=True, inline="always")
def _b16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(cache=True, nogil=True, _nrt=False)
def _fields(buf, arena, in_arena, off, length, sport, dport, orig, is_req, out):
    """Fixed fields of PDU ``j`` (at ``off[j]`` of the arena or the chunk) into ``out[:, j]``
    (the caller fills ``out`` with -1); ``out[NVALS, j]`` = number of values it carries,
    from its byte ``out[VAL_AT, j]`` on. ``is_req``: to port 502, or from the originator
    when neither side is 502. Returns the number of values of all PDUs."""
    n = off.shape[0]
    total = 0
    for j in range(n):
        is_req[j] = dport[j] == 502 or (sport[j] != 502 and orig[j])
        b = arena if in_arena[j] else buf
        p = off[j]
        ln = length[j]
        out[NVALS, j] = 0
        out[STATUS, j] = OK
        out[KIND, j] = V_NONE
        out[TRANS, j] = _b16(b, p)
        out[UNIT, j] = b[p + 6]
        out[KEY, j] = (out[TRANS, j] << 8) | out[UNIT, j]  # pairing key
        raw = np.int64(b[p + 7])
        out[FC, j] = raw & 0x7F
        q = p + 8  # first byte after the function code
        rem = ln - 8
        if raw & 0x80:
            if rem >= 1:
                out[EXC, j] = b[q]
            else:
                out[STATUS, j] = TRUNCATED
            continue
        fc = raw
        req = is_req[j]
        if fc >= 1 and fc <= 4:
            if req:
                # decode what is there, as Wireshark does, and flag what is missing
                if rem >= 2:
                    out[START, j] = _b16(b, q)
                if rem < 4:
                    out[STATUS, j] = TRUNCATED
                    continue
                out[QTY, j] = _b16(b, q + 2)
            else:
                if rem < 1:
                    out[STATUS, j] = TRUNCATED
                    continue
                bc = np.int64(b[q])
                out[BYTES, j] = bc
                if bc > rem - 1:
                    out[STATUS, j] = BAD_BYTE_COUNT
                    bc = rem - 1
                out[VAL_AT, j] = q - p + 1
                if fc <= 2:
                    out[KIND, j] = V_BITS
                    out[NVALS, j] = bc * 8
                else:
                    out[KIND, j] = V_REGS
                    out[NVALS, j] = bc // 2
        elif fc == 5 or fc == 6:
            if rem >= 2:
                out[START, j] = _b16(b, q)
            if rem < 4:
                out[STATUS, j] = TRUNCATED
                continue
            out[QTY, j] = 1
            out[KIND, j] = V_REGS if fc == 6 else V_BITS
            out[NVALS, j] = 1
            out[VAL_AT, j] = q - p + 2
        elif fc == 15 or fc == 16:
            if rem >= 2:
                out[START, j] = _b16(b, q)
            if rem < 4:
                out[STATUS, j] = TRUNCATED
                continue
            qty = _b16(b, q + 2)
            out[QTY, j] = qty
            if req:
                if rem < 5:
                    out[STATUS, j] = TRUNCATED
                    continue
                bc = np.int64(b[q + 4])
                out[BYTES, j] = bc
                if bc > rem - 5:
                    out[STATUS, j] = BAD_BYTE_COUNT
                    bc = rem - 5
                out[VAL_AT, j] = q - p + 5
                if fc == 15:
                    out[KIND, j] = V_BITS
                    out[NVALS, j] = min(qty, bc * 8)
                else:
                    out[KIND, j] = V_REGS
                    out[NVALS, j] = min(qty, bc // 2)
        elif fc == 22:
            if rem >= 2:
                out[START, j] = _b16(b, q)
            if rem < 6:
                out[STATUS, j] = TRUNCATED
                continue
            out[AND_MASK, j] = _b16(b, q + 2)
            out[OR_MASK, j] = _b16(b, q + 4)
        elif fc == 23:
            if req:
                if rem >= 4:
                    out[START, j] = _b16(b, q)
                    out[QTY, j] = _b16(b, q + 2)
                if rem < 9:
                    out[STATUS, j] = TRUNCATED
                    continue
                out[WSTART, j] = _b16(b, q + 4)
                wq = _b16(b, q + 6)
                out[WQTY, j] = wq
                bc = np.int64(b[q + 8])
                out[BYTES, j] = bc
                if bc > rem - 9:
                    out[STATUS, j] = BAD_BYTE_COUNT
                    bc = rem - 9
                out[KIND, j] = V_REGS
                out[NVALS, j] = min(wq, bc // 2)
                out[VAL_AT, j] = q - p + 9
            else:
                if rem < 1:
                    out[STATUS, j] = TRUNCATED
                    continue
                bc = np.int64(b[q])
                out[BYTES, j] = bc
                if bc > rem - 1:
                    out[STATUS, j] = BAD_BYTE_COUNT
                    bc = rem - 1
                out[KIND, j] = V_REGS
                out[NVALS, j] = bc // 2
                out[VAL_AT, j] = q - p + 1
        elif fc == 24:
            if req:
                if rem < 2:
                    out[STATUS, j] = TRUNCATED
                    continue
                out[START, j] = _b16(b, q)  # FIFO pointer address
            else:
                if rem < 4:
                    out[STATUS, j] = TRUNCATED
                    continue
                out[BYTES, j] = _b16(b, q)
                cnt = _b16(b, q + 2)
                out[QTY, j] = cnt
                if 4 + 2 * cnt > rem:
                    out[STATUS, j] = BAD_BYTE_COUNT
                    cnt = (rem - 4) // 2
                out[KIND, j] = V_REGS
                out[NVALS, j] = cnt
                out[VAL_AT, j] = q - p + 4
        elif fc == 8:
            if rem < 2:
                out[STATUS, j] = TRUNCATED
                continue
            out[SUB, j] = _b16(b, q)
        elif fc == 43:
            if rem < 1:
                out[STATUS, j] = TRUNCATED
                continue
            out[MEI, j] = b[q]
            if b[q] == 14 and rem >= 3:
                out[DEVID, j] = b[q + 1]
                if req:
                    out[OBJID, j] = b[q + 2]
        elif fc == 90:
            if rem >= 2:
                out[UMAS_C, j] = b[q + 1]  # after the session (pairing) byte
            else:
                out[STATUS, j] = TRUNCATED
    for j in range(n):
        total += out[NVALS, j]
    return total


@njit(cache=True, nogil=True, _nrt=False)
def _complete(buf, arena, in_arena, off, out, matched, src, carried, carried_pl, cat_luts, cat,
              starts, values):  # fmt: skip
    """After pairing, for each PDU: a response takes its request's start address and
    quantity, and its coil / input bits are cut to the requested quantity; then its values
    go to ``values[starts[j]:starts[j + 1]]`` and its category (by function, refined by FC 8
    sub-function and UMAS code; 0 = none) to ``cat[j]``. ``matched`` is narrowed to
    responses of the same function (exceptions carry it too).

    A matched row's request is ``src[j]``: one of the ``carried`` requests of earlier chunks
    (``carried_pl``: start, quantity, function), else a column of ``out`` read in place
    (this loop changes responses only)."""
    n = out.shape[1]
    starts[0] = 0
    for j in range(n):
        fc = out[FC, j]
        m = matched[j]
        rstart = rqty = rfc = np.int64(-1)
        if m:
            r = src[j]
            if r < carried:
                rstart, rqty, rfc = carried_pl[r, 0], carried_pl[r, 1], carried_pl[r, 2]
            else:
                r -= carried
                rstart, rqty, rfc = out[START, r], out[QTY, r], out[FC, r]
            m = rfc == fc
        matched[j] = m
        cnt = out[NVALS, j]
        if m:
            if out[START, j] < 0:
                out[START, j] = rstart
            if out[QTY, j] < 0:
                out[QTY, j] = rqty
            if out[KIND, j] == V_BITS and fc <= 2:
                cnt = min(cnt, max(rqty, 0))
        s = starts[j]
        starts[j + 1] = s + cnt
        if cnt > 0:
            b = arena if in_arena[j] else buf
            q = off[j] + out[VAL_AT, j]
            if fc == 5:
                values[s] = 1 if _b16(b, q) == 0xFF00 else 0
            elif out[KIND, j] == V_BITS:
                for k in range(cnt):
                    values[s + k] = (b[q + (k >> 3)] >> (k & 7)) & 1
            else:
                for k in range(cnt):
                    values[s + k] = _b16(b, q + 2 * k)
        c = cat_luts[0, fc & 0xFF]
        if fc == 8:
            sub = out[SUB, j]
            if sub >= 0 and sub < 256 and cat_luts[1, sub] > 0:
                c = cat_luts[1, sub]
        elif fc == 90:
            u = out[UMAS_C, j]
            if u >= 0 and u < 256 and cat_luts[2, u] > 0:
                c = cat_luts[2, u]
        cat[j] = c


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


def _category_tables() -> tuple[np.ndarray, pa.Array]:
    """Category code of each function code, FC 8 sub-function and UMAS code (rows 0, 1, 2;
    0 = none), and the category names they index."""
    cat = {int(k): (m.category or "") for k, m in FUNCTIONS.rows.items()}  # type: ignore[call-overload]
    sub_cat = {int(k): (m.category or "") for k, m in DIAGNOSTICS.rows.items()}  # type: ignore[call-overload]
    umas_cat = {int(k): (m.category or "") for k, m in UMAS.rows.items()}  # type: ignore[call-overload]
    names = ["", *sorted(set(cat.values()) | set(sub_cat.values()) | set(umas_cat.values()) - {""})]
    code_of = {name: i for i, name in enumerate(names)}
    luts = np.zeros((3, 256), dtype=np.int32)
    for row, table in enumerate((cat, sub_cat, umas_cat)):
        for k, c in table.items():
            luts[row, k] = code_of[c]
    return luts, pa.array(names, pa.string())


CATEGORY_LUTS, CATEGORY_NAMES = _category_tables()
DEVICE_OBJECTS_TYPE = E.MODBUS.field("device_objects").type


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
        buf, arena = ctx.chunk.buf, ctx.track.arena
        f = ctx.pdu_fields(idx)
        is_req = np.empty(n, np.bool_)
        out = np.full((NCOL, n), -1, dtype=np.int32)
        total = _fields(
            buf, arena, f["in_arena"], f["off"], f["length"], f["sport"], f["dport"], f["orig"],
            is_req, out,
        )  # fmt: skip

        # pair responses with requests: (flow, transaction id + unit)
        ts = f["ts"]
        paired = self.matcher.pair(
            f["flow"], out[KEY], is_req, f["frame"], ts, out[START : FC + 1].T
        )
        matched = paired.matched
        cat = np.empty(n, np.int32)
        starts = np.empty(n + 1, np.int32)
        values = np.empty(total, np.int32)  # trimming bits only shortens lists
        _complete(
            buf,
            arena,
            f["in_arena"],
            f["off"],
            out,
            matched,
            paired.src,
            paired.carried,
            paired.carried_payload,
            CATEGORY_LUTS,
            cat,
            starts,
            values,
        )
        values = values[: starts[-1]]

        fc = out[FC]
        batch = dict(env)
        batch["is_request"] = pa.array(is_req)
        batch.update(null_negative_rows(out, INT32_COLS, np.int32))
        batch.update(null_negative_rows(out, INT16_COLS, np.int16))
        batch.update(
            {
                "func_name": FUNCTIONS.names(fc),
                "category": pa.DictionaryArray.from_arrays(
                    pa.array(cat, mask=cat == 0), CATEGORY_NAMES
                ),
                "exception_name": EXCEPTIONS.optional_names(out[EXC]),
                "values": pa.ListArray.from_arrays(pa.array(starts), pa.array(values)),
                "sub_function_name": DIAGNOSTICS.optional_names(out[SUB]),
                "device_objects": self._objects(ctx, idx, out, is_req),
                "umas_name": UMAS.optional_names(out[UMAS_C]),
                **paired_columns(paired, ts),
            }
        )
        bad = np.flatnonzero(out[STATUS] != OK)
        if bad.shape[0]:
            ctx.weird(
                take_envelope(env, bad),
                [WEIRD[int(s)] for s in out[STATUS, bad]],
                [
                    f"function {int(fn)}, {int(ln)} bytes"
                    for fn, ln in zip(fc[bad], f["length"][bad], strict=True)
                ],
                "modbus",
            )
        return {"modbus": pa.RecordBatch.from_pydict(batch, schema=E.MODBUS)}

    @staticmethod
    def _objects(ctx: ChunkContext, idx, out, is_req) -> pa.Array:
        """Read Device Identification objects of the (rare) FC 43/14 responses: decoded in
        Python, placed at their rows of an otherwise null column."""
        n = idx.shape[0]
        found = np.flatnonzero((out[MEI] == 14) & ~is_req & (out[EXC] < 0))
        if found.shape[0] == 0:
            return pa.nulls(n, DEVICE_OBJECTS_TYPE)
        rows = []
        for k in found.tolist():
            objects = _device_objects(ctx.pdu_bytes(idx[k]))
            if objects is None:
                ctx.weird(
                    take_envelope(ctx.pdu_envelope(idx[k : k + 1]), np.array([0])),
                    ["modbus_bad_device_identification"],
                    [None],
                    "modbus",
                )
            rows.append(objects)
        # the few lists, spread to their rows by offsets (no take over the whole column)
        small = pa.array(rows, DEVICE_OBJECTS_TYPE)
        lengths = np.zeros(n + 1, np.int32)
        lengths[found + 1] = np.diff(small.offsets.to_numpy())
        valid = np.zeros(n, np.bool_)
        valid[found] = [r is not None for r in rows]
        return pa.ListArray.from_arrays(
            pa.array(np.cumsum(lengths, dtype=np.int32)),
            small.values,
            type=DEVICE_OBJECTS_TYPE,
            mask=pa.array(~valid),
        )


DISSECTOR = ModbusDissector
