"""``otsight analyze``: run the pipeline over captures, write the archive, summarise.

The summary (what ``--json`` prints) is computed from the batches as they pass, so it
always agrees with the tables written. Problems with the input are collected per capture,
never raised past the good part.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from otsight import __version__
from otsight import events as E
from otsight.capture.linktypes import linktype_name
from otsight.capture.pcap import CaptureError
from otsight.dissect.registry import registry
from otsight.pipeline import CapturePipeline

DEFAULT_TABLES = ["flows", "pdus", "weird", "arp", "lldp", "l2_frames"]

Progress = Callable[[int, int], None]  # (packets done in this capture, bytes done)


def all_schemas() -> dict[str, pa.Schema]:
    """Foundation tables and every registered dissector's tables."""
    return dict(E.TABLES) | registry().tables()


def default_tables() -> list[str]:
    return DEFAULT_TABLES + list(registry().tables())


class _Totals:
    """Running counts for the summary, read off the batches."""

    def __init__(self) -> None:
        self.rows: Counter = Counter()
        self.transports: Counter = Counter()
        self.pdus: Counter = Counter()
        self.weird: Counter = Counter()
        self.l2_frames: Counter = Counter()
        self.lldp_systems: set[str] = set()

    @staticmethod
    def _count(counter: Counter, column: pa.Array) -> None:
        if pa.types.is_dictionary(column.type):  # count the indices: no string per row
            counts = pc.value_counts(column.indices).to_pylist()
            names = column.dictionary.to_pylist()
            for item in counts:
                if item["values"] is not None:
                    counter[names[item["values"]]] += item["counts"]
            return
        for item in pc.value_counts(column.cast(pa.string())).to_pylist():
            if item["values"] is not None:
                counter[item["values"]] += item["counts"]

    def add(self, table: str, batch: pa.RecordBatch) -> None:
        self.rows[table] += batch.num_rows
        if table == "flows":
            self._count(self.transports, batch.column("transport"))
        elif table == "pdus":
            self._count(self.pdus, batch.column("protocol"))
        elif table == "weird":
            self._count(self.weird, batch.column("name"))
        elif table == "l2_frames":
            self._count(self.l2_frames, batch.column("protocol"))
        elif table == "lldp":
            self.lldp_systems.update(n for n in batch.column("system_name").to_pylist() if n)


def _run_capture(
    path: Path,
    label: str,
    tables: set[str],
    write: Callable[[str, pa.RecordBatch], None],
    totals: _Totals,
    progress: Progress | None,
) -> dict[str, Any]:
    reg = registry()
    pipe = CapturePipeline(
        path,
        label,
        tables,
        list(reg.dissectors.values()),
        on_progress=(lambda n: progress(n, 0)) if progress else None,
    )
    info: dict[str, Any] = {"capture": label, "path": str(path), "status": "ok"}
    try:
        for table, batch in pipe.batches():
            totals.add(table, batch)
            write(table, batch)
    except CaptureError as exc:
        info["status"] = "error"
        info["error"] = str(exc)
    reader = pipe.reader
    issues = [
        {"severity": i.severity, "offset": i.offset, "message": i.message} for i in reader.issues
    ]
    for lt, c in sorted(pipe.unsupported_linktypes().items()):
        issues.append(
            {
                "severity": "error",
                "offset": None,
                "message": f"unsupported link type {lt} ({linktype_name(lt)}): "
                f"{c} packets counted but not decoded",
            }
        )
        info["status"] = "error"  # the rest of the capture is still decoded and written
    for failure in pipe.failures:
        issues.append({"severity": "warning", "offset": None, "message": failure})
    info.update(
        format=reader.format,
        compressed=reader.compressed,
        packets=reader.packets,
        bytes=pipe.bytes,
        linktypes=pipe.linktypes(),
        first_ts=pipe.first_ts / 1e9 if pipe.first_ts is not None else None,
        last_ts=pipe.last_ts / 1e9 if pipe.last_ts is not None else None,
        max_live_flows=pipe.flows.max_live,
        issues=issues,
    )
    return info


def analyze(
    paths: Sequence[Path],
    out_dir: Path | None = None,
    tables: Sequence[str] | None = None,
    progress: Progress | None = None,
    command: str = "analyze",
) -> dict[str, Any]:
    """Decode ``paths`` and return the run summary; write tables when ``out_dir`` is given."""
    started = time.perf_counter()
    tables = list(tables) if tables is not None else default_tables()
    totals = _Totals()
    archive = state = None
    run_id = 0
    if out_dir is not None:
        from otsight.store.archive import Archive
        from otsight.store.state import StateDB

        archive = Archive(Path(out_dir), {t: all_schemas()[t] for t in tables})
        state = StateDB(Path(out_dir))
        run_id = state.start_run(__version__, command)

    def write(table: str, batch: pa.RecordBatch) -> None:
        if archive is not None:
            archive.write(table, batch)

    captures = []
    try:
        for path, label in zip(paths, _labels(paths), strict=True):
            info = _run_capture(Path(path), label, set(tables), write, totals, progress)
            captures.append(info)
            if state is not None:
                state.add_capture(run_id, info)
    finally:
        if archive is not None:
            archive.close()
    elapsed = time.perf_counter() - started
    packets = sum(c.get("packets", 0) for c in captures)
    protocol_tables = set(registry().tables())
    summary: dict[str, Any] = {
        "otsight_version": __version__,
        "captures": captures,
        "packets": packets,
        "bytes": sum(c.get("bytes", 0) for c in captures),
        "flows": totals.rows["flows"],
        "transports": dict(totals.transports),
        "pdus": dict(totals.pdus),
        "protocols": {t: n for t, n in totals.rows.items() if t in protocol_tables},
        "arp": totals.rows["arp"],
        "lldp_systems": sorted(totals.lldp_systems),
        "l2_frames": dict(totals.l2_frames),
        "weird": dict(totals.weird),
        "errors": [
            f"{c['capture']}: {i['message']}"
            for c in captures
            for i in c["issues"]
            if i["severity"] == "error"
        ]
        + [c["error"] for c in captures if "error" in c],
        "warnings": [
            f"{c['capture']}: {i['message']}"
            + (f" (byte offset {i['offset']})" if i["offset"] is not None else "")
            for c in captures
            for i in c["issues"]
            if i["severity"] == "warning"
        ],
        "elapsed_s": round(elapsed, 4),
        "packets_per_s": round(packets / elapsed) if elapsed > 0 else None,
        "max_live_flows": max((c.get("max_live_flows", 0) for c in captures), default=0),
    }
    if out_dir is not None:
        summary["out"] = str(out_dir)
        summary["tables"] = {t: totals.rows[t] for t in tables}
    if state is not None:
        state.finish_run(run_id, summary)
        state.close()
    return summary


def _labels(paths: Sequence[Path]) -> list[str]:
    """Name each capture by its file name, made unique with its parent folder if needed."""
    names = [Path(p).name for p in paths]
    dup = {n for n in names if names.count(n) > 1}
    return [str(Path(p)) if Path(p).name in dup else Path(p).name for p in paths]
