"""How fast the simulator writes a plant's day: ``python bench/simulate.py [--duration 24h]``.

Runs ``otsight simulate`` as a user would (a fresh process per scenario, kernels already
compiled by a short warm-up run) and prints packets, seconds and packets per second. The
issue's target: 24 hours of a 20-device plant in under 60 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(scenario: str, duration: str, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "otsight",
        "simulate",
        "--scenario",
        scenario,
        "--duration",
        duration,
        "--out",
        str(out),
        "--labels",
        str(out.with_suffix(".csv")),
        "--json",
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - t
    res = json.loads(proc.stdout)
    return {
        "scenario": scenario,
        "duration": duration,
        "packets": res["packets"],
        "seconds": round(elapsed, 2),
        "packets_per_s": int(res["packets"] / elapsed),
        "bytes": out.stat().st_size,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", default="24h")
    ap.add_argument("--scenarios", default="water_insider")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rows = []
        for sc in args.scenarios.split(","):
            run(sc, "1m", Path(d) / "warm.pcap")  # compile once, outside the measurement
            rows.append(run(sc, args.duration, Path(d) / f"{sc}.pcap"))
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
