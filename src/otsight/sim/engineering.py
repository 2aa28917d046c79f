"""Legitimate engineering: the maintenance windows in which engineers touch controllers.

This is the traffic a naive detector confuses with an attack — device identification,
bulk reads, a set-point adjusted inside its normal range — at the hours and from the
workstation the plant description allows. Attacks that look like it happen elsewhere
(another hour, another source, values outside the range) and are labelled by the scenario.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np

from otsight.encode import dnp3 as dnp
from otsight.encode import modbus as mb
from otsight.encode import s7comm as s7
from otsight.sim.model import parse_duration
from otsight.sim.world import MS, S, World


def windows(w: World) -> list[tuple[int, int, list[str]]]:
    """(start ns, end ns, targets) of the maintenance windows inside the run."""
    eng = w.plant.engineering
    out = []
    if not eng:
        return out
    day0 = dt.datetime.fromtimestamp(w.t0 // S, dt.UTC).replace(hour=0, minute=0, second=0)
    days = int(w.duration // (86400 * S)) + 2
    for win in eng.get("windows", []):
        hh, mm = (int(x) for x in str(win["start"]).split(":"))
        length = parse_duration(win.get("duration", "30m"), "engineering.windows.duration")
        for d in range(days):
            day = day0 + dt.timedelta(days=d)
            if day.weekday() not in win.get("days", range(7)):
                continue
            start = int(day.replace(hour=hh, minute=mm).timestamp()) * S
            if start + length <= w.t0 or start >= w.end:
                continue
            out.append((start, start + length, list(win.get("targets", []))))
    return out


def build_sessions(w: World) -> None:
    eng = w.plant.engineering
    for start, end, targets in windows(w):
        t = start + int(w.rng.integers(0, 5 * 60 * S))
        for target in targets:
            if t >= end:
                break
            dev = w.device(target)
            if "modbus" in dev.protocols:
                t = modbus_session(w, eng["workstation"], target, t, label=0, legitimate=True)
            elif "dnp3" in dev.protocols:
                t = dnp3_session(w, eng["workstation"], target, t, label=0)
            elif "s7comm" in dev.protocols:
                t = s7_session(w, eng["workstation"], target, t, label=0)
            t += int(w.rng.integers(60 * S, 6 * 60 * S))


def modbus_session(
    w: World, ews: str, target: str, start: int, label: int, legitimate: bool = True
) -> int:
    """Identify the PLC, read its whole map, adjust one set-point (inside its normal range
    when ``legitimate``). Returns when the session ends."""
    dev = w.device(target)
    unit = int(dev.params.get("unit_id", 1))
    regs = dev.params.get("registers", [])
    top = max((int(r["address"]) for r in regs), default=0) + 1
    objects = {0: dev.vendor, 1: dev.model.split()[-1] if dev.model else "", 2: dev.firmware}
    msgs: list[tuple[int, bool, bytes]] = []
    t, tid = 0, int(w.rng.integers(1, 60000))

    def exchange(req: bytes, resp: bytes, think_ms: float) -> None:
        nonlocal t, tid
        t += int(think_ms * MS)
        msgs.append((t, True, req))
        msgs.append((t + int(w.rng.integers(2, 9)) * MS, False, resp))
        tid += 1

    exchange(
        mb.read_device_id_request(tid, unit, 1),
        mb.read_device_id_response(tid + 0, unit, objects, 1),
        50,
    )
    for base in range(0, top, 50):
        count = min(50, top - base)
        values = [int(w.register_value(target, base + k, _at(start + t))[0]) for k in range(count)]
        exchange(
            mb.read_request(tid, unit, 3, base, count),
            mb.read_registers_response(tid, unit, 3, values),
            400,
        )
    setpoints = [r for r in regs if "setpoint" in r]
    if setpoints:
        r = setpoints[int(w.rng.integers(0, len(setpoints)))]
        lo, hi = r.get("normal", [r["setpoint"], r["setpoint"]])
        value = int(w.rng.integers(int(lo), int(hi) + 1)) if legitimate else int(hi) * 3
        exchange(
            mb.write_single_register(tid, unit, int(r["address"]), value),
            mb.write_single_register(tid, unit, int(r["address"]), value),
            8000,
        )
        w.overrides[(target, int(r["address"]))].append((start + t, value))
    return w.session(w.host(ews), w.host(target), 502, start, msgs, label)


def _at(t: int) -> np.ndarray:
    return np.array([t], np.int64)


def dnp3_session(w: World, ews: str, target: str, start: int, label: int) -> int:
    """Integrity poll, time synchronisation and an event poll from the workstation."""
    dev, ewsd = w.device(target), w.device(ews)
    out_addr, m_addr = (
        int(dev.params.get("dnp3_address", 10)),
        int(ewsd.params.get("dnp3_address", 3)),
    )
    msgs: list[tuple[int, bool, bytes]] = []
    t = 0
    for seq, (req, resp) in enumerate(
        [
            (dnp.read_class(0, (0,)), dnp.response(0, 0)),
            (dnp.write_time(1, (start // MS) + 2000), dnp.response(1, 0)),
            (dnp.read_class(2, (1, 2, 3)), dnp.response(2, 0)),
        ]
    ):
        t += int(w.rng.integers(500, 3000)) * MS
        msgs.append((t, True, b"".join(dnp.frames(out_addr, m_addr, req, transport_seq=seq))))
        msgs.append(
            (
                t + 15 * MS,
                False,
                b"".join(dnp.frames(m_addr, out_addr, resp, from_master=False, transport_seq=seq)),
            )
        )
    return w.session(w.host(ews), w.host(target), 20000, start, msgs, label)


# ---- S7comm: what TIA Portal / Step 7 do online --------------------------------------------
#
# Shared with the attack library: an intruder's tools (plcscan, snap7-based scripts) speak the
# same PDUs; only the source, the time and what follows differ.

S7_BLOCK_TYPES = {"OB": s7.BLOCK_OB, "DB": s7.BLOCK_DB, "SDB": s7.BLOCK_SDB, "FC": s7.BLOCK_FC,
                  "FB": s7.BLOCK_FB, "SFC": s7.BLOCK_SFC, "SFB": s7.BLOCK_SFB}  # fmt: skip


class S7Script:
    """The messages of one S7 session, (ns after start, from the client, payload): jobs and
    their answers with a think time before each job; the PLC answers after its latency and
    the client counts PDU references up (the PLC's own jobs, in a download, count its own)."""

    def __init__(self, w: World, target: str) -> None:
        self.w = w
        self.dev = w.device(target)
        self.msgs: list[tuple[int, bool, bytes]] = []
        self.t = 0
        self.ref = int(w.rng.integers(1, 60000))
        self.plc_ref = int(w.rng.integers(1, 60000))
        self.pdu = min(480, int(self.dev.params.get("pdu_size", 240)))
        self.latency_ms = float(self.dev.params.get("latency_ms", 5.0))

    def next_ref(self) -> int:
        self.ref = (self.ref + 1) & 0xFFFF
        return self.ref

    def _answer_delay(self) -> int:
        return int(self.w.rng.lognormal(np.log(self.latency_ms), 0.3) * MS)

    def job(self, think_ms: float, request: bytes, answer: bytes, from_client: bool = True):
        self.t += int(think_ms * MS)
        self.msgs.append((self.t, from_client, request))
        self.t += self._answer_delay() if from_client else int(self.w.rng.integers(1, 4)) * MS
        self.msgs.append((self.t, not from_client, answer))

    def connect(self, connection_type: int = s7.CONN_PG) -> None:
        """COTP connection to the CPU's rack/slot, then Setup Communication."""
        rack, slot = int(self.dev.params.get("rack", 0)), int(self.dev.params.get("slot", 2))
        src_ref = int(self.w.rng.integers(1, 0x7FFF))
        self.job(
            1,
            s7.connection_request(rack, slot, connection_type, src_ref=src_ref),
            s7.connection_confirm(rack, slot, connection_type, src_ref, 0x0001 + slot),
        )
        ref = self.next_ref()
        self.job(
            2,
            s7.setup_communication_request(ref, 480),
            s7.setup_communication_response(ref, self.pdu),
        )

    def identify(self, think_ms: float = 80) -> None:
        """Read SZL 0x0011 (module identification) and 0x001C (component identification;
        the records that fit one PDU)."""
        dev = self.dev
        digits = [int(x) for x in re.findall(r"\d+", dev.firmware)[:3]] + [0, 0, 0]
        order = str(dev.params.get("order_number", ""))
        szl11 = s7.module_identification_records(
            order, firmware_version=(digits[0], digits[1], digits[2])
        )
        szl1c = s7.component_identification_records(
            str(dev.params.get("station_name", dev.name)),
            "CPU " + dev.model.split(" CPU ")[-1] if " CPU " in dev.model else dev.model,
            plant_id=self.w.plant.name,
            serial_number=dev.serial,
            module_type=dev.model,
        )[: (self.pdu - 40) // 34]
        for szl_id, records in ((0x0011, szl11), (0x001C, szl1c)):
            ref = self.next_ref()
            self.job(
                think_ms,
                s7.szl_read_request(ref, szl_id, 0),
                s7.szl_read_response(ref, szl_id, 0, records, seq=int(self.w.rng.integers(1, 255))),
            )

    def blocks(self) -> list[tuple[str, int]]:
        return [(str(b[0]).upper(), int(b[1])) for b in self.dev.params.get("blocks", [])]

    def upload(self, block_type: str, number: int, length: int, think_ms: float = 30) -> None:
        """Start upload, Upload parts of at most one PDU, End upload (T0845 when unexpected)."""
        code = S7_BLOCK_TYPES[block_type]
        upload_id = int(self.w.rng.integers(1, 2**31))
        ref = self.next_ref()
        self.job(
            think_ms,
            s7.start_upload_request(ref, code, number),
            s7.start_upload_response(ref, upload_id, length),
        )
        body = self.w.rng.integers(0, 256, length, dtype=np.uint8).tobytes()
        part = self.pdu - 32
        for at in range(0, length, part):
            ref = self.next_ref()
            chunk = body[at : at + part]
            more = at + part < length
            self.job(5, s7.upload_request(ref, upload_id), s7.upload_response(ref, chunk, more))
        ref = self.next_ref()
        self.job(5, s7.end_upload_request(ref, upload_id), s7.end_upload_response(ref))

    def download(self, block_type: str, number: int, length: int) -> None:
        """Request download; the PLC then pulls the block with its own Download block jobs
        and closes with Download ended; finally PI _INSE activates it."""
        code = S7_BLOCK_TYPES[block_type]
        ref = self.next_ref()
        self.job(
            60,
            s7.request_download_request(ref, code, number, length + 36, length),
            s7.request_download_response(ref),
        )
        body = self.w.rng.integers(0, 256, length, dtype=np.uint8).tobytes()
        part = self.pdu - 32
        for at in range(0, length, part):
            self.plc_ref = (self.plc_ref + 1) & 0xFFFF
            more = at + part < length
            self.job(
                1,
                s7.download_block_request(self.plc_ref, code, number),
                s7.download_block_response(self.plc_ref, body[at : at + part], more),
                from_client=False,
            )
        self.plc_ref = (self.plc_ref + 1) & 0xFFFF
        self.job(
            1,
            s7.download_ended_request(self.plc_ref, code, number),
            s7.download_ended_response(self.plc_ref),
            from_client=False,
        )
        ref = self.next_ref()
        self.job(40, s7.pi_insert_request(ref, [(code, number)]), s7.pi_service_response(ref))


def _block_length(w: World, block_type: str) -> int:
    low, high = (60, 400) if block_type in ("DB", "SDB") else (300, 1800)
    return int(w.rng.integers(low, high))


def s7_session(w: World, ews: str, target: str, start: int, label: int) -> int:
    """Going online from TIA Portal / Step 7: PG connection, module and component
    identification, list of blocks, then upload of every block of the program (a backup,
    or a comparison before a change). Returns when the session ends."""
    sc = S7Script(w, target)
    sc.connect(s7.CONN_PG)
    sc.identify(think_ms=120)
    counts: dict[str, int] = {}
    for kind, _ in sc.blocks():
        counts[S7_BLOCK_TYPES[kind]] = counts.get(S7_BLOCK_TYPES[kind], 0) + 1
    ref = sc.next_ref()
    sc.job(400, s7.list_blocks_request(ref), s7.list_blocks_response(ref, counts))
    for kind, number in sc.blocks():
        sc.upload(kind, number, _block_length(w, kind), think_ms=int(w.rng.integers(20, 200)))
    return w.session(w.host(ews), w.host(target), 102, start, sc.msgs, label)
