"""Cyclic polling: the steady heartbeat of a plant's network.

Each master keeps one TCP connection per (master, outstation, protocol), opened during
start-up; every poll of the plant description is a stream on it with its own interval and
jitter, and the outstation answers after a device-specific latency. Transaction ids count up
in time order per connection, as real masters do.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from otsight.encode import iec104 as i104
from otsight.sim import cyclic, tcp
from otsight.sim import iec104 as iec
from otsight.sim.model import parse_duration
from otsight.sim.world import MS, S, World

PORTS = {"modbus": 502, "dnp3": 20000, "s7comm": 102, "enip": 44818, "iec104": 2404}


def poll_times(w: World, interval: int, jitter: float, start: int) -> np.ndarray:
    n = max(int((w.end - start) // interval), 0)
    t = start + np.arange(n, dtype=np.int64) * interval
    noise = w.rng.normal(0.0, jitter * interval, n).astype(np.int64)
    t = t + np.clip(noise, -interval // 3, interval // 3)
    return np.sort(t[t < w.end])


def device_latency(w: World, n: int, mean_ms: float) -> np.ndarray:
    """Outstation response times: log-normal around the device's typical latency."""
    return (w.rng.lognormal(np.log(mean_ms), 0.35, n) * MS).astype(np.int64)


def build_polls(w: World) -> None:
    by_conn: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for p in w.plant.polls:
        by_conn[(p["master"], p["slave"], p["protocol"])].append(p)
    for (master, slave, proto), polls in by_conn.items():
        build = _BUILDERS.get(proto)
        if build is None:
            raise NotImplementedError(f"cyclic polling over {proto} is not built yet")
        opened = w.t0 + int(w.rng.integers(200 * MS, 5 * S))
        build(w, master, slave, polls, opened)


def _connection(
    w: World,
    master: str,
    slave: str,
    port: int,
    opened: int,
    req_ts: np.ndarray,
    reqs: np.ndarray,
    resp_ts: np.ndarray,
    resps: np.ndarray,
) -> None:
    qo, ql = w.payload.add_matrix(reqs)
    ro, rl = w.payload.add_matrix(resps)
    client = w.host(master)
    tcp.conversation(
        w.packets,
        tcp.Endpoints(client, w.host(slave), w.ephemeral_port(client), port),
        np.concatenate([req_ts, resp_ts]),
        np.concatenate([np.ones(req_ts.shape[0], bool), np.zeros(resp_ts.shape[0], bool)]),
        np.concatenate([qo, ro]),
        np.concatenate([ql, rl]),
        0,
        w.rng,
        open_at=opened,
    )


def _streams(w: World, polls: list[dict], opened: int) -> list[np.ndarray]:
    out = []
    for p in polls:
        interval = p["interval_ns"]
        first = opened + 20 * MS + int(w.rng.integers(0, interval))
        out.append(poll_times(w, interval, float(p.get("jitter", 0.01)), first))
    return out


def _modbus(w: World, master: str, slave: str, polls: list[dict], opened: int) -> None:
    dev = w.device(slave)
    unit = int(dev.params.get("unit_id", 1))
    times = _streams(w, polls, opened)
    allt = np.concatenate(times)
    rank = np.empty(allt.shape[0], np.int64)
    rank[np.argsort(allt, kind="stable")] = np.arange(allt.shape[0])
    first_tid = int(w.rng.integers(0, 65536))
    at = 0
    for p, t in zip(polls, times, strict=True):
        n = t.shape[0]
        tids = (first_tid + rank[at : at + n]) & 0xFFFF
        at += n
        count, address = int(p["count"]), int(p["address"])
        fc = int(p.get("function", 3))
        values = (
            np.stack([w.register_value(slave, address + k, t) for k in range(count)], axis=1)
            if n
            else np.zeros((0, count), np.int64)
        )
        req, resp = cyclic.modbus_read(tids, unit, fc, address, values)
        lat = device_latency(w, n, float(dev.params.get("latency_ms", 4.0)))
        _connection(w, master, slave, PORTS["modbus"], opened, t, req, t + lat, resp)


def _dnp3(w: World, master: str, slave: str, polls: list[dict], opened: int) -> None:
    dev, mdev = w.device(slave), w.device(master)
    points = dev.params.get("points", {})
    times = _streams(w, polls, opened)
    t = np.sort(np.concatenate(times))
    n = t.shape[0]
    assert w.signals is not None
    analogs = (
        np.stack(
            [
                np.rint(w.signals.sample(a["signal"], t) * float(a.get("scale", 1))).astype(
                    np.int64
                )
                for a in points.get("analog", [])
            ],
            axis=1,
        )
        if points.get("analog")
        else np.zeros((n, 0), np.int64)
    )
    binaries = (
        np.stack([w.signals.sample(b["signal"], t) > 0.5 for b in points.get("binary", [])], axis=1)
        if points.get("binary")
        else np.zeros((n, 0), bool)
    )
    seq = np.arange(n, dtype=np.int64)
    req, resp = cyclic.dnp3_class_poll(
        int(mdev.params.get("dnp3_address", 1)),
        int(dev.params.get("dnp3_address", 10)),
        seq,
        seq,
        analogs,
        binaries,
    )
    lat = device_latency(w, n, float(dev.params.get("latency_ms", 12.0)))
    _connection(w, master, slave, PORTS["dnp3"], opened, t, req, t + lat, resp)


_BUILDERS = {"modbus": _modbus, "dnp3": _dnp3}


# ---- IEC 60870-5-104 ----------------------------------------------------------------------


def _iec104(w: World, master: str, slave: str, polls: list[dict], opened: int) -> None:
    """One 104 connection: STARTDT, a station interrogation at once and every
    ``interrogation`` (default 15m), clock synchronisation every ``clock_sync`` if given, the
    measured values each entry asks for — ``report: periodic`` sends every float with COT 1
    each interval, ``spontaneous`` (the default) checks them each interval and sends those
    that left their deadband with COT 3 — time-tagged changes of the discrete points, and
    what an adversary in the middle slipped in. The link numbers it all and adds S-frames
    and TESTFRs."""
    dev = w.device(slave)
    ca = iec.common_address(w.plant, slave)
    pts = iec.points(w.plant, slave)
    ov = iec.overrides(w)
    conf = {k: v for p in polls for k, v in p.items()}
    where = f"{w.plant.source}: polls {master} → {slave}"
    lat_ms = float(dev.params.get("latency_ms", 4.0))
    link = iec.Link()
    up = opened + 2 * MS
    ready = up + int(device_latency(w, 1, lat_ms)[0])
    link.u_frames(np.array([up]), True, i104.U_STARTDT_ACT)
    link.u_frames(np.array([ready]), False, i104.U_STARTDT_CON)
    every = parse_duration(conf.get("interrogation", "15m"), f"{where}: interrogation")
    gi = np.arange(ready + 30 * MS, w.end, every, dtype=np.int64)
    gi[1:] += w.rng.integers(0, 2 * S, gi.shape[0] - 1)
    iec.interrogations(link, w, slave, gi, lat_ms, ov=ov)
    if "clock_sync" in conf:
        every = parse_duration(conf["clock_sync"], f"{where}: clock_sync")
        iec.clock_syncs(link, w, ca, np.arange(ready + 2 * S, w.end, every, dtype=np.int64), lat_ms)
    floats = [p for p in pts if p.kind == "float"]
    for p in polls:
        interval = p["interval_ns"]
        first = ready + 100 * MS + int(w.rng.integers(0, interval))
        if p.get("report", "spontaneous") == "periodic":
            t = poll_times(w, interval, float(p.get("jitter", 0.01)), first)
            size = iec.per_asdu("float")
            for k in range(0, len(floats), size):
                chunk = floats[k : k + size]
                vals = np.stack([iec.values(w, q, t, ov) for q in chunk], axis=1)
                ioas = [q.ioa for q in chunk]
                link.i_frames(t, False, iec.report_rows("float", ca, ioas, vals, i104.COT_PERIODIC))
                t = t + device_latency(w, t.shape[0], 0.5)
            continue
        for q in floats:
            grid = iec.scan_grid(w, q.device, interval)
            v = iec.values(w, q, grid, ov)
            band = q.deadband or max(0.01 * float(np.abs(v).mean()), 1e-3)
            sent = iec.deadband(v, band) & (grid > first)
            delay = device_latency(w, int(sent.sum()), lat_ms)
            if q.device != slave:  # a gateway passes on what its bay reported
                delay += device_latency(w, delay.shape[0], 20.0)
            rows = iec.report_rows("float", ca, [q.ioa], v[sent][:, None], i104.COT_SPONTANEOUS)
            link.i_frames(grid[sent] + delay, False, rows)
    for q in pts:
        if q.kind == "float":
            continue
        t, v = iec.changes(w, q, ready, w.end, ov)
        delay = device_latency(w, t.shape[0], lat_ms)
        if q.device != slave:  # a gateway passes on what its bay reported
            delay += device_latency(w, t.shape[0], 20.0)
        frames = [
            iec.event_frame(q.kind, ca, q.ioa, float(x), int(at) // MS, i104.COT_SPONTANEOUS)
            for at, x in zip(t, v, strict=True)
        ]
        link.i_frames(t + delay, False, iec.frame_rows(frames))
    for at, from_master, payload, label, sender in w.injected.get((master, slave), []):
        link.i_frames(np.array([at]), from_master, iec.frame_rows([payload]), label, sender)
    msgs = link.finish(ready, w.end, w.rng)
    off, ln = w.payload.add_rows_flat(msgs.flat, msgs.lens)
    client, server = w.host(master), w.host(slave)
    tcp.conversation(
        w.packets,
        tcp.Endpoints(client, server, w.ephemeral_port(client), PORTS["iec104"]),
        msgs.ts,
        msgs.from_master,
        off,
        ln,
        msgs.label,
        w.rng,
        open_at=opened,
    )
    spoofed = msgs.sender >= 0
    if spoofed.any():  # their frames carry the adversary's MAC: its own host entry
        src, pay_off = w.packets.cols["src"][-1], w.packets.cols["pay_off"][-1]
        for sender in np.unique(msgs.sender[spoofed]):
            mine = off[msgs.sender == sender]
            src[np.isin(pay_off, mine) & (w.packets.cols["pay_len"][-1] > 0)] = sender


_BUILDERS["iec104"] = _iec104
