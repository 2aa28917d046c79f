"""Run a scenario: plant traffic plus attacks, written as a pcap with per-frame labels.

Order matters: attacks and engineering sessions run first because a write changes what the
polls read afterwards (the register overrides); then the cyclic polls, the IT background and
the link-layer chatter. Everything is assembled and sorted once, at the end.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from otsight.sim import attacks as attack_library
from otsight.sim import background, engineering, polling
from otsight.sim.model import Scenario, load_named_plant
from otsight.sim.wire import assemble
from otsight.sim.world import World


@dataclass
class SimResult:
    scenario: str
    plant: str
    seed: int
    packets: int
    start_ns: int
    duration_ns: int
    attacks: list[dict]
    pcap: str
    labels: str | None
    attacks_json: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def simulate(
    scenario: Scenario,
    out: Path,
    labels: Path | None = None,
    duration: int | None = None,
    seed: int = 1,
) -> SimResult:
    plant = load_named_plant(scenario.plant)
    duration = duration or scenario.duration
    w = World.create(plant, duration, seed)
    for spec in scenario.attacks:
        if spec.at >= duration:
            continue  # outside a shortened run: not injected, and so not labelled
        attack_library.inject(w, spec)
    engineering.build_sessions(w)
    polling.build_polls(w)
    background.build(w)

    cols = w.packets.arrays()
    keep = (cols["ts"] >= w.t0) & (cols["ts"] < w.end)
    cols = {k: v[keep] for k, v in cols.items()}
    image, frame_labels, frame_ts = assemble(cols, w.hosts, w.payload.array())
    out.parent.mkdir(parents=True, exist_ok=True)
    image.tofile(out)

    records = []
    for a in w.attacks:
        frames = np.flatnonzero(frame_labels == a.label) + 1
        if frames.shape[0] == 0:
            continue
        records.append(
            {
                "name": a.name,
                "attack": a.attack,
                "techniques": list(a.techniques),
                "description": a.description,
                "start": int(frame_ts[frames[0] - 1]),
                "end": int(frame_ts[frames[-1] - 1]),
                "frames": [int(frames[0]), int(frames[-1])],
                "frame_count": int(frames.shape[0]),
            }
        )
    attacks_json = None
    if labels is not None:
        names = np.array(["normal"] + [a.name for a in w.attacks], dtype=object)
        labels.parent.mkdir(parents=True, exist_ok=True)
        with open(labels, "w", newline="") as fh:
            wr = csv.writer(fh, delimiter=";", lineterminator="\n")
            wr.writerow(["frame", "label"])
            wr.writerows(zip(range(1, frame_labels.shape[0] + 1), names[frame_labels], strict=True))
        aj = labels.with_name(labels.name.removesuffix(".csv").removesuffix(".labels"))
        attacks_json = str(aj.with_suffix(".attacks.json"))
        Path(attacks_json).write_text(json.dumps(records, indent=2) + "\n")
    return SimResult(
        scenario=scenario.name,
        plant=plant.name,
        seed=seed,
        packets=int(frame_labels.shape[0]),
        start_ns=w.t0,
        duration_ns=duration,
        attacks=records,
        pcap=str(out),
        labels=str(labels) if labels else None,
        attacks_json=attacks_json,
    )
