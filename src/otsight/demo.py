"""``otsight demo``: a plant with attacks, simulated, analysed and summarised in one go.

The demo shows only what otsight actually does today: the protocols and flows it decoded,
the industrial operations it saw (by protocol, operation and category), and the attacks the
scenario injected (from the simulator's labels — ground truth, not detections). Capabilities
that are not built yet are not shown.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

DEMO_SCENARIO = "water_frostygoop"

# the operation-name column of each protocol table (first present wins)
_OPERATION_COLUMNS = ("func_name", "service_name", "command_name", "type_name")


def operations(out: Path) -> list[dict[str, Any]]:
    """(protocol, operation, category, requests) seen, from the analysis archive."""
    import duckdb
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    con = duckdb.connect()
    for path in sorted(out.glob("*/*.parquet")):  # <out>/<table>/part-N.parquet
        table = path.parent.name
        names = pq.read_schema(path).names
        op = next((c for c in _OPERATION_COLUMNS if c in names), None)
        if op is None or "category" not in names:
            continue
        where = "WHERE is_request" if "is_request" in names else ""
        for protocol_op, category, n in con.execute(
            f"SELECT {op}, category, count(*) FROM read_parquet('{path}') {where} "
            "GROUP BY 1, 2 ORDER BY 3 DESC"
        ).fetchall():
            rows.append(
                {"protocol": table, "operation": protocol_op, "category": category, "count": n}
            )
    merged: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r["protocol"], r["operation"], r["category"])
        if key in merged:
            merged[key]["count"] += r["count"]
        else:
            merged[key] = dict(r)
    return sorted(merged.values(), key=lambda r: (r["protocol"], -r["count"]))


def run_demo(out: Path, scenario: str = DEMO_SCENARIO, seed: int = 1) -> dict[str, Any]:
    from otsight.analyze import analyze, default_tables
    from otsight.sim.generate import simulate
    from otsight.sim.model import load_scenarios

    started = time.perf_counter()
    scenarios = load_scenarios()
    sim = simulate(
        scenarios[scenario],
        out / f"{scenario}.pcap",
        out / f"{scenario}.labels.csv",
        seed=seed,
    )
    simulated = time.perf_counter() - started
    analysis = out / "analysis"
    summary = analyze([Path(sim.pcap)], analysis, default_tables(), None, command="demo")
    return {
        "scenario": scenario,
        "plant": sim.plant,
        "seed": seed,
        "capture": sim.pcap,
        "labels": sim.labels,
        "attacks_json": sim.attacks_json,
        "packets": summary["packets"],
        "flows": summary["flows"],
        "transports": summary["transports"],
        "protocols": {k: v for k, v in summary.get("protocols", {}).items() if v},
        "operations": operations(analysis),
        "attacks_injected": sim.attacks,
        "analysis": str(analysis),
        "warnings": summary["warnings"],
        "errors": summary["errors"],
        "simulate_s": round(simulated, 2),
        "elapsed_s": round(time.perf_counter() - started, 2),
    }
