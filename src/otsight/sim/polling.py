"""Cyclic polling: the steady heartbeat of a plant's network.

Each master keeps one TCP connection per (master, outstation, protocol), opened during
start-up; every poll of the plant description is a stream on it with its own interval and
jitter, and the outstation answers after a device-specific latency. Transaction ids count up
in time order per connection, as real masters do.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict

import numpy as np

from otsight.encode import enip as en
from otsight.encode import iec104 as i104
from otsight.encode import packets as pk
from otsight.encode import profinet_dcp as pn
from otsight.encode import s7comm as s7
from otsight.sim import cyclic, tcp
from otsight.sim import iec104 as iec
from otsight.sim.model import parse_duration
from otsight.sim.wire import RAW
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


# ---- S7comm, EtherNet/IP and PROFINET IO --------------------------------------------------
#
# Device ``tags`` carry the values: an S7 PLC's tags sit in data blocks (db, offset, type), a
# Logix controller's are named (type REAL/DINT/...), an IO device's or adapter's are its I/O
# image (direction input/output, type u16/i16/u32/f32). Each tag shows a process signal
# (scaled) or a constant set-point. Attacks leave marks that later cycles must show, in
# ``World.overrides`` under the keys below.

TAG_KEY = 1 << 20  # (device, TAG_KEY + tag index) → [(from ns, float64 bits)]: a write
AR_LOST = -1  # (io device, AR_LOST) → [(from ns, 0)]: the device left data exchange
CPU_STOP = -2  # (plc, CPU_STOP) → [(from ns, 0)]: the CPU went to STOP

_S7_FMT = {"real": ">f4", "dint": ">i4", "int": ">i2", "word": ">u2", "dword": ">u4", "byte": ">u1"}
LOGIX_TYPES = {  # Logix atomic type → (CIP data type, little-endian format)
    "REAL": (0xCA, "<f4"),
    "DINT": (0xC4, "<i4"),
    "INT": (0xC3, "<i2"),
    "SINT": (0xC2, "<i1"),
    "BOOL": (0xC1, "<u1"),
}
_IO_FMT = {"u8": "u1", "u16": "u2", "i16": "i2", "u32": "u4", "i32": "i4", "f32": "f4"}


def tag_values(w: World, device: str, index: int, ts: np.ndarray) -> np.ndarray:
    """What tag ``index`` of ``device`` holds at ``ts`` (signal or set-point, then writes)."""
    tag = w.device(device).params["tags"][index]
    if "signal" in tag:
        assert w.signals is not None
        v = w.signals.sample(tag["signal"], ts) * float(tag.get("scale", 1))
    else:
        v = np.full(ts.shape[0], float(tag.get("setpoint", 0)))
    for t_from, bits in sorted(w.overrides.get((device, TAG_KEY + index), [])):
        v[ts >= t_from] = np.int64(bits).view(np.float64)
    return v


def write_tag(w: World, device: str, index: int, at: int, value: float) -> None:
    """From ``at`` on, tag ``index`` of ``device`` holds ``value`` (a write). Overrides hold
    integers, so the value is kept as the bits of a float64."""
    bits = int(np.float64(value).view(np.int64))
    w.overrides[(device, TAG_KEY + index)].append((at, bits))


def _as(values: np.ndarray, fmt: str) -> np.ndarray:
    """Values in a wire format: integers rounded (and wrapped as the PLC's type would)."""
    if np.dtype(fmt).kind == "f":
        return values.astype(fmt)
    return np.rint(values).astype(np.int64).astype(fmt)


def event_time(w: World, device: str, key: int) -> int | None:
    """When an attack's mark ``key`` (AR_LOST, CPU_STOP) took effect on ``device``."""
    marks = w.overrides.get((device, key))
    return min(t for t, _ in marks) if marks else None


def _serialised(t: np.ndarray, lat: np.ndarray, gap: int = 200_000) -> np.ndarray:
    """Request times of a client that waits for each answer before the next job
    (s_i = max(t_i, s_{i-1} + lat_{i-1} + gap)), solved as a running maximum."""
    if t.shape[0] == 0:
        return t
    step = np.concatenate([[0], np.cumsum(lat[:-1] + gap)])
    return step + np.maximum.accumulate(t - step)


def _tcp_blocks(
    w: World,
    client: int,
    server: int,
    port: int,
    opened: int,
    blocks: list[tuple[np.ndarray, bool, np.ndarray]],
) -> None:
    """One TCP connection carrying blocks of equal-length messages: (times, sent by the
    client, [n, width] payload rows)."""
    ts, fc, off, ln = [], [], [], []
    for times, from_client, rows in blocks:
        o, n_ = w.payload.add_matrix(rows)
        ts.append(times)
        fc.append(np.full(times.shape[0], from_client))
        off.append(o)
        ln.append(n_)
    tcp.conversation(
        w.packets,
        tcp.Endpoints(client, server, w.ephemeral_port(client), port),
        np.concatenate(ts),
        np.concatenate(fc),
        np.concatenate(off),
        np.concatenate(ln),
        0,
        w.rng,
        open_at=opened,
    )


def _one(t: int, from_client: bool, payload: bytes) -> tuple[np.ndarray, bool, np.ndarray]:
    return np.array([t], np.int64), from_client, np.frombuffer(payload, np.uint8)[None, :]


def _rank(times: list[np.ndarray]) -> list[np.ndarray]:
    """Per stream, the position of each message in the connection's time order."""
    allt = np.concatenate(times) if times else np.zeros(0, np.int64)
    rank = np.empty(allt.shape[0], np.int64)
    rank[np.argsort(allt, kind="stable")] = np.arange(allt.shape[0])
    out, at = [], 0
    for t in times:
        out.append(rank[at : at + t.shape[0]])
        at += t.shape[0]
    return out


def _s7comm(w: World, master: str, slave: str, polls: list[dict], opened: int) -> None:
    """COTP connect and Setup Communication at start-up, then Read Var of DB byte ranges;
    the client waits for each answer (one job in flight) and counts PDU references up."""
    dev = w.device(slave)
    rack, slot = int(dev.params.get("rack", 0)), int(dev.params.get("slot", 2))
    ctype = s7.CONN_OP if w.device(master).role in ("hmi", "scada") else s7.CONN_S7_BASIC
    mean_lat = float(dev.params.get("latency_ms", 5.0))
    first_ref = int(w.rng.integers(1, 60000))
    src_ref = int(w.rng.integers(1, 0x7FFF))
    pdu = min(480, int(dev.params.get("pdu_size", 240)))
    t_cr = opened + MS
    t_cc = t_cr + int(1.5 * MS)
    t_su = t_cc + MS
    t_sa = t_su + min(int(device_latency(w, 1, mean_lat)[0]), 12 * MS)
    blocks = [
        _one(t_cr, True, s7.connection_request(rack, slot, ctype, src_ref=src_ref)),
        _one(t_cc, False, s7.connection_confirm(rack, slot, ctype, src_ref, 0x0001 + slot)),
        _one(t_su, True, s7.setup_communication_request(first_ref, 480)),
        _one(t_sa, False, s7.setup_communication_response(first_ref, pdu)),
    ]
    times = _streams(w, polls, opened)
    merged = np.concatenate(times)
    order = np.argsort(merged, kind="stable")
    lat_all = device_latency(w, merged.shape[0], mean_lat)
    sent = np.empty_like(merged)
    sent[order] = _serialised(merged[order], lat_all[order])
    ranks = _rank([sent])[0]
    tags = dev.params.get("tags", [])
    at = 0
    for p, t in zip(polls, times, strict=True):
        n = t.shape[0]
        ts = sent[at : at + n]
        refs = first_ref + 1 + ranks[at : at + n]
        lat = lat_all[at : at + n]
        at += n
        db, start, length = int(p["db"]), int(p.get("start", 0)), int(p["length"])
        cols = []
        for i, tag in enumerate(tags):
            off = int(tag.get("offset", -1)) - start
            if int(tag.get("db", -1)) == db and 0 <= off < length:
                fmt = _S7_FMT[str(tag.get("type", "real")).lower()]
                cols.append((off, fmt, _as(tag_values(w, slave, i, ts), fmt)))
        data = cyclic.pack_columns(n, length, cols)
        req, resp = cyclic.s7_read_db_bytes(refs, db, start, data)
        blocks += [(ts, True, req), (ts + lat, False, resp)]
    _tcp_blocks(w, w.host(master), w.host(slave), PORTS["s7comm"], opened, blocks)


def _enip(w: World, master: str, slave: str, polls: list[dict], opened: int) -> None:
    """Explicit polls (``tag``): RegisterSession, then SendRRData Read Tag exchanges with
    counting sender contexts. Implicit I/O polls (``io: true``): see :func:`_enip_io`."""
    io = [p for p in polls if p.get("io")]
    explicit = [p for p in polls if not p.get("io")]
    for p in io:
        _enip_io(w, master, slave, p, opened)
    if not explicit:
        return
    dev = w.device(slave)
    mean_lat = float(dev.params.get("latency_ms", 3.0))
    session = int(w.rng.integers(0x1000, 0x7FFFFFFF))
    first_ctx = int(w.rng.integers(1, 2**40))
    route = dev.params.get("route")
    path = en.port_segment(int(route[0]), int(route[1])) if route else None
    t_reg = opened + MS
    t_ack = t_reg + min(int(device_latency(w, 1, mean_lat)[0]), 10 * MS)
    blocks = [
        _one(t_reg, True, en.register_session_request(first_ctx)),
        _one(t_ack, False, en.register_session_response(session, first_ctx)),
    ]
    times = _streams(w, explicit, opened)
    ranks = _rank(times)
    tags = {t["name"]: (i, t) for i, t in enumerate(dev.params.get("tags", []))}
    for p, t, rank in zip(explicit, times, ranks, strict=True):
        if p["tag"] not in tags:
            raise ValueError(f"poll of {slave}: no tag {p['tag']!r}")
        i, tag = tags[p["tag"]]
        dtype, fmt = LOGIX_TYPES[str(tag.get("type", "REAL")).upper()]
        values = _as(tag_values(w, slave, i, t), fmt)
        contexts = first_ctx + 1 + rank
        req, resp = cyclic.enip_read_tag(session, contexts, p["tag"], dtype, fmt, values, path)
        lat = device_latency(w, t.shape[0], mean_lat)
        blocks += [(t, True, req), (t + lat, False, resp)]
    _tcp_blocks(w, w.host(master), w.host(slave), PORTS["enip"], opened, blocks)


def _io_image(
    w: World, device: str, direction: str, ts: np.ndarray, byteorder: str
) -> tuple[list[tuple[int, str, np.ndarray]], int, int]:
    """The (offset, format, values) columns of a device's ``direction`` tags laid out one
    after the other, their total size and how many tags (submodules) there are."""
    cols, at, count = [], 0, 0
    for i, tag in enumerate(w.device(device).params.get("tags", [])):
        if tag.get("direction") != direction:
            continue
        fmt = byteorder + _IO_FMT[str(tag.get("type", "u16"))]
        cols.append((at, fmt, _as(tag_values(w, device, i, ts), fmt)))
        at += np.dtype(fmt).itemsize
        count += 1
    return cols, at, count


def _enip_io(w: World, scanner: str, adapter: str, p: dict, opened: int) -> None:
    """Class 1 I/O between a controller (originator) and an adapter: RegisterSession and a
    Forward Open on TCP 44818, then UDP 2222 datagrams both ways each RPI, sequence numbers
    counting from 1; the TCP session stays open."""
    sdev = w.device(scanner)
    rpi = int(p["interval_ns"])
    rpi_us = rpi // 1000
    s, a = w.host(scanner), w.host(adapter)
    _, out_size, _ = _io_image(w, adapter, "output", np.zeros(0, np.int64), "<")
    _, in_size, _ = _io_image(w, adapter, "input", np.zeros(0, np.int64), "<")
    ot_id, to_id = (int(x) for x in w.rng.integers(0x10000000, 0x7FFFFFFF, 2))
    serial = int(w.rng.integers(1, 0xFFFF))
    orig_serial = int(str(sdev.serial or "1"), 16) & 0xFFFFFFFF
    session = int(w.rng.integers(0x1000, 0x7FFFFFFF))
    # assembly class 4: configuration instance 6, connection points O→T 2 and T→O 1
    path = bytes([0x20, 0x04, 0x24, 0x06, 0x2C, 0x02, 0x2C, 0x01])
    fo = en.forward_open_request(
        0, to_id, serial, 1, orig_serial, rpi_us, rpi_us, path,
        ot_parameters=0x4800 | (out_size + 6), to_parameters=0x4800 | (in_size + 2),
        transport_trigger=0x01, timeout_multiplier=2,
    )  # fmt: skip
    fo_reply = en.forward_open_response(ot_id, to_id, serial, 1, orig_serial, rpi_us, rpi_us)
    msgs = [
        (0, True, en.register_session_request()),
        (2 * MS, False, en.register_session_response(session)),
        (5 * MS, True, en.send_rr_data(session, fo, context=1)),
        (12 * MS, False, en.send_rr_data(session, fo_reply, context=1)),
    ]
    first = w.session(s, a, PORTS["enip"], opened, msgs, close=False)
    for src, dst, conn, direction, run_idle in (
        (s, a, ot_id, "output", True),
        (a, s, to_id, "input", False),
    ):
        start = first + int(w.rng.integers(0, rpi))
        n = max(int((w.end - start) // rpi), 0)
        ts = start + np.arange(n, dtype=np.int64) * rpi
        ts += np.clip(w.rng.normal(0, 0.002 * rpi, n), -rpi // 10, rpi // 10).astype(np.int64)
        cols, size, _ = _io_image(w, adapter, direction, ts, "<")
        rows = cyclic.enip_io(conn, np.arange(1, n + 1, dtype=np.int64),
                              cyclic.pack_columns(n, size, cols), run_idle)  # fmt: skip
        off, ln = w.payload.add_matrix(rows)
        tcp.udp(w.packets, src, dst, en.IO_PORT, en.IO_PORT, ts, off, ln)


def dcp_identity(w: World, device: str, xid: int) -> bytes:
    """A PROFINET device's DCP Identify response (FrameID and DCP PDU; no Ethernet header)."""
    dev = w.device(device)
    net = ipaddress.IPv4Network(w.plant.networks[dev.network]["subnet"])
    role = pn.ROLE_IO_CONTROLLER if dev.role == "plc" else pn.ROLE_IO_DEVICE
    return pn.identify_response(
        xid,
        str(dev.params.get("station_name", dev.name)),
        str(dev.params.get("type_of_station", dev.model)),
        int(dev.params.get("pn_vendor_id", 0x002A)),
        int(dev.params.get("pn_device_id", 0x0001)),
        dev.ip or "0.0.0.0",
        str(net.netmask),
        role=role,
    )


def _profinet(w: World, master: str, slave: str, polls: list[dict], opened: int) -> None:
    """PROFINET IO: the controller finds its device by name (DCP Identify and the answer),
    then both exchange cyclic RT frames every cycle (input CR from the device, output CR
    from the controller), cycle counters in 31.25 µs ticks. A CPU in STOP sends
    ProviderState STOP; a device that lost its AR (renamed, reset) goes silent, the
    controller's frames stop after the watchdog and it looks for the device again."""
    controller, device = master, slave
    cdev, ddev = w.device(controller), w.device(device)
    cycle = int(polls[0]["interval_ns"])
    ticks = cycle // 31_250
    name = str(ddev.params.get("station_name", ddev.name))
    xid = int(w.rng.integers(0x100, 0xFFFFFF))
    ident = pk.ethernet(pn.MULTICAST_IDENTIFY, cdev.mac, pn.ETH_PROFINET,
                        pn.identify_request(xid, name_of_station=name))  # fmt: skip
    answer = pk.ethernet(cdev.mac, ddev.mac, pn.ETH_PROFINET, dcp_identity(w, device, xid))
    w.frames(np.array([opened, opened + int(w.rng.integers(1, 8)) * MS]), [ident, answer])
    lost = event_time(w, device, AR_LOST)
    stop = event_time(w, controller, CPU_STOP)
    base = int(ddev.params.get("pn_frame_base", pn.FRAME_ID_RT_CLASS1))
    t_rt = opened + 600 * MS + int(w.rng.integers(0, 200 * MS))
    for src, dst, frame_id, direction, other in (
        (ddev, cdev, base, "input", "output"),
        (cdev, ddev, base + 1, "output", "input"),
    ):
        start = t_rt + int(w.rng.integers(0, cycle))
        end = w.end if lost is None else min(w.end, lost + (3 * cycle if src is cdev else 0))
        n = max(int((end - start) // cycle), 0)
        ts = start + np.arange(n, dtype=np.int64) * cycle
        ts += np.clip(w.rng.normal(0, 20_000, n), -100_000, 100_000).astype(np.int64)
        cols, _, _ = _io_image(w, device, direction, ts, ">")
        # each value followed by its IOPS, then one IOCS per submodule of the other direction
        laid, at = [], 0
        for _, fmt, values in cols:
            laid.append((at, fmt, values))
            laid.append((at + np.dtype(fmt).itemsize, "u1", np.full(n, pn.IOXS_GOOD)))
            at += np.dtype(fmt).itemsize + 1
        _, _, n_other = _io_image(w, device, other, ts[:0], ">")
        laid += [(at + k, "u1", np.full(n, pn.IOXS_GOOD)) for k in range(n_other)]
        data = cyclic.pack_columns(n, max(at + n_other, 1), laid)
        status = np.full(n, pn.DATA_STATUS_OK, np.int64)
        if src is cdev and stop is not None:
            status[ts >= stop] &= ~pn.DS_RUN
        counters = int(w.rng.integers(0, 65536)) + np.arange(n, dtype=np.int64) * ticks
        rows = cyclic.pn_rt_frames(dst.mac, src.mac, frame_id, data, counters, status)
        off, ln = w.payload.add_matrix(rows)
        w.packets.add(ts=ts, kind=RAW, pay_off=off, pay_len=ln)
    if lost is not None:  # the controller searches for its device every few seconds
        ts = np.arange(lost + 3 * cycle + 500 * MS, w.end, 3 * S, dtype=np.int64)
        frames = [
            pk.ethernet(pn.MULTICAST_IDENTIFY, cdev.mac, pn.ETH_PROFINET,
                        pn.identify_request(xid + 1 + k, name_of_station=name))
            for k in range(ts.shape[0])
        ]  # fmt: skip
        w.frames(ts, frames)


_BUILDERS.update({"s7comm": _s7comm, "enip": _enip, "profinet": _profinet})


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
