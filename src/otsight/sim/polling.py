"""Cyclic polling: the steady heartbeat of a plant's network.

Each master keeps one TCP connection per (master, outstation, protocol), opened during
start-up; every poll of the plant description is a stream on it with its own interval and
jitter, and the outstation answers after a device-specific latency. Transaction ids count up
in time order per connection, as real masters do.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from otsight.sim import cyclic, tcp
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
