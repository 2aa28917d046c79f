"""Legitimate engineering: the maintenance windows in which engineers touch controllers.

This is the traffic a naive detector confuses with an attack — device identification,
bulk reads, a set-point adjusted inside its normal range — at the hours and from the
workstation the plant description allows. Attacks that look like it happen elsewhere
(another hour, another source, values outside the range) and are labelled by the scenario.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from otsight.encode import dnp3 as dnp
from otsight.encode import modbus as mb
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
