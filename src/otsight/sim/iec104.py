"""IEC 60870-5-104 on the simulated wire: point tables, their values, numbered links.

An outstation (bay controller, protection IED, station gateway) describes its points in the
plant file by kind — ``double`` (switchgear positions), ``single`` (alarms), ``float``
(measured values, M_ME_NC_1) and ``scaled`` (tap positions, M_ME_NB_1) — each with an IOA
and either a process ``signal`` (with ``scale``, an optional breaker ``gate`` that zeroes a
feeder's measurements while it is open, a ``deadband`` for spontaneous reporting and, for
single points, an ``above`` threshold) or a fixed ``value``. A gateway lists the devices it
``forwards``: their points appear under its own common address with IOA ``1000 * ca + ioa``.

Values are read from the process signals, then from the World's overrides: an override
``(device, ioa) → [(ns, value)]`` on any point sets, from that time on, the signal the point
shows — so a breaker opened by a command at a gateway shows open on the bay controller too,
and its feeder's currents drop to zero wherever they are reported.

A :class:`Link` gathers the APDUs of one connection as blocks of stamped rows and numbers
them when finished: send and receive sequence numbers are cumulative counts per direction;
a numba kernel walks the I-frames once to add the S-frames a receiver sends after ``w``
unacknowledged I-frames or ``t2`` without traffic of its own, and the TESTFR act/con pairs a
side sends when it has received nothing for ``t3``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from otsight._jit import njit
from otsight.encode import iec104 as i104
from otsight.sim import cyclic
from otsight.sim.model import ModelError, Plant
from otsight.sim.physics import STEP_NS
from otsight.sim.world import MS, S, World

KINDS = ("double", "single", "float", "scaled")
# IEC 60870-5-104 §9.6 defaults: acknowledge after w I-frames or t2, test an idle link after t3
W, T2, T3 = 8, 10 * S, 20 * S
FORWARD_BLOCK = 1000  # a gateway shows bay point ``ioa`` of common address ``ca`` as 1000*ca+ioa
PORT = 2404
COT_RETURN_REMOTE = 11  # return information caused by a remote command


@dataclass(frozen=True)
class Point:
    ioa: int
    kind: str
    name: str = ""
    signal: str | None = None
    value: float = 0.0  # when there is no signal
    scale: float = 1.0
    gate: str | None = None  # breaker state signal: the value reads 0 while it is open
    deadband: float = 0.0
    above: float = 0.5  # single points from a signal: on while the signal is above this
    command: bool = False  # accepts select/execute commands (a breaker)
    device: str = ""  # where the point is measured, and its IOA there
    local_ioa: int = 0


def common_address(plant: Plant, device: str) -> int:
    return int(plant.devices[device].params.get("common_address", 1))


def points(plant: Plant, device: str) -> list[Point]:
    """The outstation's points in IOA order: its own, then those of the devices it forwards."""
    dev = plant.devices[device]
    out = _own(plant, device)
    for bay in dev.params.get("forwards", []) or []:
        if bay not in plant.devices:
            raise ModelError(f"{plant.source}: devices.{device}.forwards: unknown device {bay!r}")
        base = FORWARD_BLOCK * common_address(plant, bay)
        out += [Point(**{**p.__dict__, "ioa": base + p.ioa}) for p in _own(plant, bay)]
    ioas = [p.ioa for p in out]
    if len(set(ioas)) != len(ioas):
        raise ModelError(f"{plant.source}: devices.{device}: duplicate IOAs in its point table")
    return sorted(out, key=lambda p: p.ioa)


def _own(plant: Plant, device: str) -> list[Point]:
    where = f"{plant.source}: devices.{device}.points"
    out = []
    for kind, entries in (plant.devices[device].params.get("points") or {}).items():
        if kind not in KINDS:
            raise ModelError(f"{where}.{kind}: IEC 104 point kinds are {', '.join(KINDS)}")
        for j, e in enumerate(entries):
            if "ioa" not in e or ("signal" not in e and "value" not in e):
                raise ModelError(f"{where}.{kind}[{j}]: needs an ioa and a signal or a value")
            out.append(
                Point(
                    ioa=int(e["ioa"]),
                    kind=kind,
                    name=str(e.get("name", "")),
                    signal=e.get("signal"),
                    value=float(e.get("value", 0)),
                    scale=float(e.get("scale", 1)),
                    gate=e.get("gate"),
                    deadband=float(e.get("deadband", 0)),
                    above=float(e.get("above", 0.5)),
                    command=bool(e.get("command", False)),
                    device=device,
                    local_ioa=int(e["ioa"]),
                )
            )
    return out


# ---- values -------------------------------------------------------------------------------


def overrides(w: World) -> dict[str, list[tuple[int, float]]]:
    """Signal → [(ns, value)] from the overrides written on any IEC 104 point."""
    out: dict[str, list[tuple[int, float]]] = {}
    tables: dict[str, dict[int, Point]] = {}
    for (device, ioa), marks in w.overrides.items():
        dev = w.plant.devices.get(device)
        if dev is None or "iec104" not in dev.protocols or not marks:
            continue
        if device not in tables:
            tables[device] = {p.ioa: p for p in points(w.plant, device)}
        p = tables[device].get(ioa)
        if p is not None and p.signal:
            out.setdefault(p.signal, []).extend(marks)
    return {k: sorted(v) for k, v in out.items()}


def signal(w: World, name: str, ts: np.ndarray, ov: dict | None = None) -> np.ndarray:
    """A process signal at ``ts``, with the overrides written on it."""
    assert w.signals is not None
    out = np.array(w.signals.sample(name, ts), np.float64)
    for t_from, value in (ov if ov is not None else overrides(w)).get(name, []):
        out[ts >= t_from] = value
    return out


def values(w: World, p: Point, ts: np.ndarray, ov: dict | None = None) -> np.ndarray:
    """What the point shows at ``ts``: DP_OFF/DP_ON for double points, 0/1 for single points,
    engineering values for measurements (integers for scaled ones)."""
    ov = ov if ov is not None else overrides(w)
    if p.signal is None:
        v = np.full(ts.shape[0], p.value)
    else:
        v = signal(w, p.signal, ts, ov)
    if p.kind == "double":
        return np.where(v > 0.5, i104.DP_ON, i104.DP_OFF).astype(np.float64)
    if p.kind == "single":
        return (v > p.above).astype(np.float64) if p.signal else v
    v = v * p.scale
    if p.gate:
        v = np.where(signal(w, p.gate, ts, ov) > 0.5, v, 0.0)
    return np.rint(v) if p.kind == "scaled" else v


def changes(
    w: World, p: Point, start: int, end: int, ov: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Times in (start, end) at which a point's value changes, and the values it takes."""
    assert w.signals is not None
    ov = ov if ov is not None else overrides(w)
    cand = []
    for name in (p.signal, p.gate):
        if not name:
            continue
        v = w.signals.values[name]
        steps = np.flatnonzero(v[1:] != v[:-1]) + 1
        cand.append(w.signals.t0_ns + steps.astype(np.int64) * STEP_NS)
        cand.append(np.array([t for t, _ in ov.get(name, [])], np.int64))
    if not cand:
        return np.zeros(0, np.int64), np.zeros(0)
    t = np.unique(np.concatenate(cand))
    t = t[(t > start) & (t < end)]
    before, after = values(w, p, t - 1, ov), values(w, p, t, ov)
    moved = before != after
    return t[moved], after[moved]


@njit(cache=True, nogil=True)
def _deadband(v, band):
    """Samples a deadband reporter sends: those that moved by ``band`` or more from the last
    value it reported (the first sample is the reference the interrogation gave)."""
    out = np.zeros(v.shape[0], np.bool_)
    if v.shape[0] == 0:
        return out
    last = v[0]
    for i in range(1, v.shape[0]):
        if abs(v[i] - last) >= band:
            out[i] = True
            last = v[i]
    return out


def scan_grid(w: World, device: str, interval: int) -> np.ndarray:
    """When ``device`` checks its measurements against their deadbands: every ``interval``
    from power-up, at a phase of its own — the same for every master it reports to, and
    for the gateway that passes its reports on."""
    phase = zlib.crc32(device.encode()) % interval
    return np.arange(w.t0 + phase, w.end, interval, dtype=np.int64)


def deadband(v: np.ndarray, band: float) -> np.ndarray:
    """Mask of the samples of ``v`` a reporter with deadband ``band`` (> 0) sends."""
    if band <= 0:
        raise ValueError("a deadband must be positive")
    return _deadband(np.ascontiguousarray(v, np.float64), float(band))


# ---- APDU templates -----------------------------------------------------------------------

_ENCODERS: dict[str, Callable[..., bytes]] = {
    "double": i104.m_dp_na_1,
    "single": i104.m_sp_na_1,
    "float": i104.m_me_nc_1,
    "scaled": i104.m_me_nb_1,
}
# two values per kind whose encodings differ in every octet of the value field
_PROBES: dict[str, tuple[object, object, str]] = {
    "double": (i104.DP_OFF, i104.DP_ON, "u1"),
    "single": (False, True, "u1"),
    "scaled": (0x1111, 0x2222, "<i2"),
}


def per_asdu(kind: str) -> int:
    """Most objects of ``kind`` one ASDU carries (non-sequence form)."""
    one = len(_ENCODERS[kind](1, [(1, 0)]))
    two = len(_ENCODERS[kind](1, [(1, 0), (2, 0)]))
    return min(127, (i104.MAX_ASDU - (2 * one - two)) // (two - one))


def report_rows(kind: str, ca: int, ioas: list[int], vals: np.ndarray, cot: int) -> np.ndarray:
    """I-frames (sequence numbers 0, stamped by the link) of one ASDU of ``kind`` with the
    points ``ioas``; ``vals`` is [n, len(ioas)]."""
    if kind == "float":
        rows, _, _ = cyclic.iec104_measurements(ca, ioas, vals, cot=cot)
        return rows
    a, b, fmt = _PROBES[kind]
    enc = _ENCODERS[kind]
    ta = i104.i_frame(0, 0, enc(ca, [(i, a) for i in ioas], cot=cot))
    tb = i104.i_frame(0, 0, enc(ca, [(i, b) for i in ioas], cot=cot))
    width = np.dtype(fmt).itemsize
    diff = np.flatnonzero(np.frombuffer(ta, np.uint8) != np.frombuffer(tb, np.uint8))
    if diff.shape[0] != width * len(ioas):
        raise ValueError(f"cannot locate the {kind} values in {ta.hex()}")
    rows = cyclic.copies(ta, vals.shape[0])
    for i, at in enumerate(diff[::width]):
        cyclic.stamp(rows, int(at), vals[:, i], width, fmt)
    return rows


def frame_rows(frames: list[bytes]) -> np.ndarray:
    """Equal-length frames as a matrix."""
    if not frames:
        return np.zeros((0, 0), np.uint8)
    return np.frombuffer(b"".join(frames), np.uint8).reshape(len(frames), -1).copy()


def event_frame(kind: str, ca: int, ioa: int, value: float, time_ms: int, cot: int) -> bytes:
    """A spontaneous change of a discrete point: with its time tag (M_DP_TB_1 / M_SP_TB_1)
    or, for a step position shown as a scaled value, M_ME_NB_1."""
    if kind == "double":
        asdu = i104.m_dp_tb_1(ca, [(ioa, int(value), time_ms)], cot=cot)
    elif kind == "single":
        asdu = i104.m_sp_tb_1(ca, [(ioa, bool(value), time_ms)], cot=cot)
    elif kind == "scaled":
        asdu = i104.m_me_nb_1(ca, [(ioa, int(value))], cot=cot)
    else:
        asdu = i104.m_me_nc_1(ca, [(ioa, float(value))], cot=cot)
    return i104.i_frame(0, 0, asdu)


# ---- a numbered link -----------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _supervise(ts, from_master, w, t2, t3, delays, idle_from, end):
    """S-frames and TESTFR exchanges of a link whose I-frames are ``ts`` (sorted).

    Returns columns: time, from master, kind (0 = S, 1 = TESTFR act, 2 = TESTFR con), N(R).
    Side 0 is the master, 1 the outstation.
    """
    n = ts.shape[0]
    cap = n + 4 * ((end - idle_from) // t3 + 2)
    o_ts = np.empty(cap, np.int64)
    o_fm = np.empty(cap, np.bool_)
    o_kind = np.empty(cap, np.int64)
    o_rx = np.zeros(cap, np.int64)
    received = np.zeros(2, np.int64)  # I-frames each side has received
    acked = np.zeros(2, np.int64)  # ... and acknowledged (its last N(R))
    first = np.zeros(2, np.int64)  # when the oldest unacknowledged one arrived (t2 start)
    last = np.full(2, idle_from)  # when it last received anything (t3 start)
    c = 0
    i = 0
    while True:
        nxt = ts[i] if i < n else end
        best, what, side = nxt, -1, -1
        for x in range(2):
            if received[x] > acked[x] and first[x] + t2 < best:
                best, what, side = first[x] + t2, 0, x
            if last[x] + t3 < best:
                best, what, side = last[x] + t3, 1, x
        if what == 0:  # t2 ran out: acknowledge with an S-frame
            o_ts[c], o_fm[c], o_kind[c], o_rx[c] = best, side == 0, 0, received[side]
            c += 1
            acked[side] = received[side]
            last[1 - side] = max(last[1 - side], best)
            continue
        if what == 1:  # t3 ran out: TESTFR act, the peer confirms
            d = delays[c % delays.shape[0]]
            o_ts[c], o_fm[c], o_kind[c] = best, side == 0, 1
            o_ts[c + 1], o_fm[c + 1], o_kind[c + 1] = best + d, side != 0, 2
            c += 2
            last[1 - side] = max(last[1 - side], best)
            last[side] = max(last[side], best + d)
            continue
        if i >= n:
            break
        x = 0 if from_master[i] else 1
        y = 1 - x
        t = ts[i]
        if received[y] == acked[y]:
            first[y] = t
        received[y] += 1
        last[y] = max(last[y], t)
        acked[x] = received[x]  # the I-frame carries N(R)
        if received[y] - acked[y] >= w:
            d = delays[c % delays.shape[0]]
            o_ts[c], o_fm[c], o_kind[c], o_rx[c] = t + d, y == 0, 0, received[y]
            c += 1
            acked[y] = received[y]
            last[x] = max(last[x], t + d)
        i += 1
    return o_ts[:c], o_fm[:c], o_kind[:c], o_rx[:c]


@dataclass
class Messages:
    """One link's APDUs as columns (any order); payloads are consecutive slices of ``flat``."""

    ts: np.ndarray
    from_master: np.ndarray
    flat: np.ndarray
    lens: np.ndarray
    label: np.ndarray
    sender: np.ndarray  # host index of a spoofed sender, -1 for the endpoint itself

    def payloads(self) -> list[bytes]:
        ends = np.cumsum(self.lens)
        return [bytes(self.flat[e - n : e]) for e, n in zip(ends, self.lens, strict=True)]


@dataclass
class Link:
    """The APDUs of one IEC 104 connection, gathered as blocks and numbered by :meth:`finish`."""

    blocks: list[tuple[np.ndarray, bool, np.ndarray, int, int]] = field(default_factory=list)
    others: list[tuple[np.ndarray, bool, np.ndarray, int]] = field(default_factory=list)

    def i_frames(
        self, ts: np.ndarray, from_master: bool, rows: np.ndarray, label: int = 0, sender: int = -1
    ) -> None:
        ts = np.asarray(ts, np.int64)
        if ts.shape[0]:
            self.blocks.append((ts, from_master, rows, label, sender))

    def one(self, t: int, from_master: bool, apdu: bytes, label: int = 0, sender: int = -1) -> None:
        """A single I-frame (sequence numbers left 0) or, for a U-frame, as given."""
        rows = frame_rows([apdu])
        if apdu[2] & 1:
            self.others.append((np.array([t], np.int64), from_master, rows, label))
        else:
            self.i_frames(np.array([t], np.int64), from_master, rows, label, sender)

    def u_frames(self, ts: np.ndarray, from_master: bool, function: int, label: int = 0) -> None:
        ts = np.asarray(ts, np.int64)
        self.others.append(
            (ts, from_master, cyclic.copies(i104.u_frame(function), ts.shape[0]), label)
        )

    def finish(
        self,
        idle_from: int,
        end: int,
        rng: np.random.Generator,
        w: int = W,
        t2: int = T2,
        t3: int = T3,
        label: int = 0,
    ) -> Messages:
        """Number the I-frames, add S-frames and TESTFRs (labelled ``label``) from
        ``idle_from`` (STARTDT confirmed) to ``end``."""
        if self.blocks:
            ts = np.concatenate([b[0] for b in self.blocks])
            fm = np.concatenate([np.full(b[0].shape[0], b[1]) for b in self.blocks])
        else:
            ts, fm = np.zeros(0, np.int64), np.zeros(0, bool)
        order = np.argsort(ts, kind="stable")
        fs = fm[order]
        from_m = np.cumsum(fs) - fs  # master I-frames sent before each one
        from_o = np.cumsum(~fs) - ~fs
        ns, nr = np.empty_like(ts), np.empty_like(ts)
        ns[order] = np.where(fs, from_m, from_o)
        nr[order] = np.where(fs, from_o, from_m)
        at = 0
        for b_ts, _, rows, _, _ in self.blocks:
            k = b_ts.shape[0]
            cyclic.stamp(rows, 2, (ns[at : at + k] & 0x7FFF) << 1, 2, "<u2")
            cyclic.stamp(rows, 4, (nr[at : at + k] & 0x7FFF) << 1, 2, "<u2")
            at += k
        delays = (rng.lognormal(np.log(0.8), 0.4, 64) * MS).astype(np.int64)
        s_ts, s_fm, kind, rx = _supervise(
            ts[order], fs, w, t2, t3, delays, np.int64(idle_from), np.int64(end)
        )
        supervisory = np.where(
            kind[:, None] == 0,
            np.frombuffer(i104.s_frame(0), np.uint8),
            np.where(
                kind[:, None] == 1,
                np.frombuffer(i104.testfr(), np.uint8),
                np.frombuffer(i104.testfr(con=True), np.uint8),
            ),
        ).astype(np.uint8)
        cyclic.stamp(supervisory, 4, (rx & 0x7FFF) << 1, 2, "<u2")
        parts = [(b[0], b[1], b[2], b[3], b[4]) for b in self.blocks]
        parts += [(t, f, r, lb, -1) for t, f, r, lb in self.others]
        parts.append((s_ts, s_fm, supervisory, label, -1))
        return Messages(
            ts=np.concatenate([p[0] for p in parts]),
            from_master=np.concatenate(
                [np.broadcast_to(np.asarray(p[1], bool), p[0].shape) for p in parts]
            ),
            flat=np.concatenate([p[2].reshape(-1) for p in parts]),
            lens=np.concatenate([np.full(p[0].shape[0], p[2].shape[1], np.int64) for p in parts]),
            label=np.concatenate([np.full(p[0].shape[0], p[3], np.int64) for p in parts]),
            sender=np.concatenate([np.full(p[0].shape[0], p[4], np.int64) for p in parts]),
        )


# ---- exchanges ------------------------------------------------------------------------------


def delays(w: World, mean_ms: float, n: int) -> np.ndarray:
    """``n`` processing or transit delays (ns), log-normal around ``mean_ms``."""
    return (np.asarray(w.rng.lognormal(np.log(mean_ms), 0.3, n)) * MS).astype(np.int64)


def interrogations(
    link: Link,
    w: World,
    device: str,
    ts: np.ndarray,
    latency_ms: float,
    label: int = 0,
    asked_ca: int | None = None,
    ov: dict | None = None,
) -> int:
    """Station interrogations at ``ts``: C_IC_NA_1 act from the master, then act-con, the
    points with COT 20 (one ASDU per kind, split when they do not fit) and act-term.
    Returns when the last one ends."""
    ts = np.asarray(ts, np.int64)
    n = ts.shape[0]
    if not n:
        return 0
    ca = common_address(w.plant, device)
    ask = ca if asked_ca is None else asked_ca
    link.i_frames(ts, True, cyclic.copies(i104.i_frame(0, 0, i104.c_ic_na_1(ask)), n), label)
    lat = delays(w, latency_ms, n)
    t = ts + lat
    con = i104.c_ic_na_1(ca, cot=i104.COT_ACTIVATION_CON)
    link.i_frames(t, False, cyclic.copies(i104.i_frame(0, 0, con), n), label)
    pts = points(w.plant, device)
    ov = ov if ov is not None else overrides(w)
    for kind in KINDS:
        group = [p for p in pts if p.kind == kind]
        size = per_asdu(kind)
        for k in range(0, len(group), size):
            chunk = group[k : k + size]
            vals = np.stack([values(w, p, t, ov) for p in chunk], axis=1)
            t = t + delays(w, 0.6, n)
            rows = report_rows(kind, ca, [p.ioa for p in chunk], vals, i104.COT_INTERROGATED)
            link.i_frames(t, False, rows, label)
    t = t + delays(w, 0.6, n)
    term = i104.c_ic_na_1(ca, cot=i104.COT_ACTIVATION_TERMINATION)
    link.i_frames(t, False, cyclic.copies(i104.i_frame(0, 0, term), n), label)
    return int(t.max())


def clock_syncs(link: Link, w: World, ca: int, ts: np.ndarray, latency_ms: float) -> None:
    """C_CS_NA_1 act with the master's time and the outstation's act-con echoing it."""
    act = [i104.i_frame(0, 0, i104.c_cs_na_1(ca, int(t) // MS)) for t in ts]
    con = [
        i104.i_frame(0, 0, i104.c_cs_na_1(ca, int(t) // MS, cot=i104.COT_ACTIVATION_CON))
        for t in ts
    ]
    lat = delays(w, latency_ms, len(act))
    link.i_frames(ts, True, frame_rows(act))
    link.i_frames(ts + lat, False, frame_rows(con))


def session(
    w: World, client: int, server: str, start: int, link: Link, ready: int, label: int
) -> int:
    """Write a short link (an intruder's) as its own TCP session to ``server`` opened at
    ``start`` and closed after its last frame; returns when it ends."""
    last = max(int(ts.max()) for ts in [b[0] for b in link.blocks] + [o[0] for o in link.others])
    msgs = link.finish(ready, last + 50 * MS, w.rng, label=label)
    rtt = 2 * MS  # World.session sends the first message after its handshake
    payloads = msgs.payloads()
    out = [
        (int(t) - start - rtt, bool(fm), data)
        for t, fm, data in zip(msgs.ts, msgs.from_master, payloads, strict=True)
    ]
    return w.session(client, w.host(server), PORT, start, out, label)
