"""Process values that behave like a plant: tanks fill and drain, pumps cycle, loads follow
the day.

Each process is integrated once over the whole simulated period at a fixed step (one
second) by a numba kernel; a poll then samples the signal at its own timestamps. Signals are
plain float arrays, so a register map only says which signal a register shows and how it is
scaled. Models are deliberately simple — they exist so that values move the way an operator
(and an anomaly detector) expects: bounded, continuous, with daily rhythm and on/off cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from otsight._jit import njit

STEP_NS = 1_000_000_000  # integration step: one second
DAY_S = 86_400.0


@njit(cache=True, nogil=True)
def _tank(
    steps, t0_s, area, height, pump_flow, demand_mean, demand_swing, low, high, noise, level0
):
    """Level (m), inflow and outflow (m³/h), pump state (0/1) and outlet valve (%) of a tank
    whose inlet pump is switched by level hysteresis and whose outlet follows demand."""
    level = np.empty(steps)
    inflow = np.empty(steps)
    outflow = np.empty(steps)
    pump = np.empty(steps)
    valve = np.empty(steps)
    h = level0
    on = False
    for i in range(steps):
        tod = ((t0_s + i) % 86400.0) / 86400.0
        demand = demand_mean + demand_swing * np.sin(2.0 * np.pi * (tod - 0.3)) + noise[i]
        if demand < 0.0:
            demand = 0.0
        if h <= low:
            on = True
        elif h >= high:
            on = False
        q_in = pump_flow if on else 0.0
        q_out = demand if h > 0.05 else 0.0
        h += (q_in - q_out) / 3600.0 / area
        if h < 0.0:
            h = 0.0
        if h > height:
            h = height
        level[i] = h
        inflow[i] = q_in
        outflow[i] = q_out
        pump[i] = 1.0 if on else 0.0
        valve[i] = 100.0 * q_out / (demand_mean + demand_swing + 1e-9)
    return level, inflow, outflow, pump, valve


@dataclass
class Signals:
    """Named signals sampled every ``STEP_NS`` from ``t0_ns``."""

    t0_ns: int
    values: dict[str, np.ndarray]

    def sample(self, name: str, ts_ns: np.ndarray) -> np.ndarray:
        v = self.values[name]
        i = np.clip((ts_ns - self.t0_ns) // STEP_NS, 0, v.shape[0] - 1)
        return v[i]


def simulate_processes(
    processes: list[dict], t0_ns: int, duration_ns: int, rng: np.random.Generator
) -> Signals:
    """Integrate every process of a plant; signal names are ``process.output``."""
    steps = int(duration_ns // STEP_NS) + 2
    t0_s = t0_ns / 1e9
    out: dict[str, np.ndarray] = {}
    tod = ((t0_s + np.arange(steps)) % DAY_S) / DAY_S
    for p in processes:
        name, model = p["name"], p["model"]
        if model == "tank":
            noise = rng.normal(0.0, p.get("demand_noise", 2.0), steps)
            lo, hi = float(p["level_low"]), float(p["level_high"])
            level, q_in, q_out, pump, valve = _tank(
                steps,
                t0_s,
                float(p["area"]),
                float(p["height"]),
                float(p["pump_flow"]),
                float(p["demand_mean"]),
                float(p.get("demand_swing", 0.0)),
                lo,
                hi,
                noise,
                float(p.get("level_start", (lo + hi) / 2)),
            )
            out |= {
                f"{name}.level": level,
                f"{name}.inflow": q_in,
                f"{name}.outflow": q_out,
                f"{name}.pump": pump,
                f"{name}.valve": valve,
            }
        elif model == "daily":  # a load or temperature with a daily rhythm and noise
            mean, swing = float(p["mean"]), float(p.get("swing", 0.0))
            walk = np.cumsum(rng.normal(0.0, p.get("noise", 0.0), steps)) * 0.01
            value = mean + swing * np.sin(2 * np.pi * (tod - 0.3)) + walk
            if p.get("jitter"):  # measurement noise, second to second (deadbands see it)
                value = value + rng.normal(0.0, float(p["jitter"]), steps)
            out[f"{name}.value"] = value
        elif model == "counter":  # a totaliser: rises with a rate that follows the day
            rate = float(p["rate"]) * (1 + 0.3 * np.sin(2 * np.pi * (tod - 0.3)))
            out[f"{name}.value"] = np.cumsum(rate) % float(p.get("wrap", 65536))
        elif model == "breaker":  # a switchgear position: closed, rare planned operations
            state = np.ones(steps)
            for start in p.get("open_at_s", []):
                state[int(start) : int(start) + int(p.get("open_for_s", 600))] = 0
            out[f"{name}.state"] = state
        elif model == "constant":
            out[f"{name}.value"] = np.full(steps, float(p["value"]))
        else:
            raise ValueError(f"process {name!r}: unknown model {model!r}")
    return Signals(t0_ns, out)
