"""The decode pipeline: captures → L2–L4 → flows and reassembly → event tables.

``analyze`` runs every stage chunk by chunk and returns a summary dict (what the CLI prints
with ``--json``). With an output folder it also writes the event archive and the state
database. Problems with the input are collected, never raised past the good part.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from otsight import __version__
from otsight.capture import _track as T
from otsight.capture import batches as B
from otsight.capture.flows import FlowTable
from otsight.capture.framing import FRAMER_NAMES
from otsight.capture.linktypes import is_decoded, linktype_name
from otsight.capture.pcap import CaptureError, CaptureReader
from otsight.dissect import _l2l4 as L
from otsight.dissect.routing import ETHERTYPE_PROTOCOLS

DEFAULT_TABLES = ["flows", "pdus", "weird", "arp", "lldp", "l2_frames"]

Progress = Callable[[int, int], None]  # (packets done in this capture, bytes done)


@dataclass
class _Totals:
    packets: int = 0
    bytes: int = 0
    flows: int = 0
    pdus: Counter = field(default_factory=Counter)
    transports: Counter = field(default_factory=Counter)
    ethertypes: Counter = field(default_factory=Counter)
    weird: Counter = field(default_factory=Counter)
    arp: int = 0
    lldp_systems: set = field(default_factory=set)
    l2_frames: Counter = field(default_factory=Counter)
    max_live_flows: int = 0


class _Sink:
    """Where batches go: the archive when there is one, and the running totals always."""

    def __init__(self, archive, totals: _Totals) -> None:
        self.archive = archive
        self.totals = totals

    def write(self, table: str, batch) -> None:
        if self.archive is not None:
            self.archive.write(table, batch)


def _count_codes(counter: Counter, codes: np.ndarray, names: dict[int, str]) -> None:
    if codes.shape[0] == 0:
        return
    uniq, counts = np.unique(codes, return_counts=True)
    for u, c in zip(uniq, counts, strict=False):
        counter[names.get(int(u), str(int(u)))] += int(c)


def _analyze_capture(
    path: Path, label: str, sink: _Sink, tables: set[str], progress: Progress | None
) -> dict[str, Any]:
    reader = CaptureReader(path)
    flows = FlowTable()
    tot = sink.totals
    info: dict[str, Any] = {"capture": label, "path": str(path), "status": "ok"}
    lt_packets: Counter = Counter()
    first_ts = last_ts = None
    nbytes = 0
    lldp_weird: list[str] = []

    def consume(res) -> None:
        """Tables that come from flow tracking: ended flows, PDUs, stream anomalies."""
        if res.flows.shape[0]:
            tot.flows += res.flows.shape[0]
            proto = (res.flow_keys[:, 4] & np.uint64(0xFF)).astype(np.int64)
            _count_codes(tot.transports, proto, B.TRANSPORTS)
            sink.write("flows", B.flows_batch(res.flows, res.flow_keys, label))
        if res.pdus.shape[0]:
            _count_codes(tot.pdus, res.pdus[:, T.P_FRAMER], FRAMER_NAMES)
            if "pdus" in tables:
                sink.write("pdus", B.pdus_batch(res.pdus, label))
        if res.gaps.shape[0]:
            _count_codes(tot.weird, B.STREAM_WEIRD_BASE + res.gaps[:, T.G_KIND], B.WEIRD_NAMES)
            sink.write("weird", B.stream_weird_batch(label, res.gaps))

    try:
        for chunk in reader.chunks():
            n = chunk.count
            cols, addrs = L.decode_l2l4(chunk.buf, chunk.offset, chunk.caplen, chunk.linktype)
            res = flows.process(chunk, cols, addrs)
            consume(res)
            status = cols[:, L.STATUS]
            if status.any():
                _count_codes(tot.weird, status[status != 0], B.WEIRD_NAMES)
                sink.write("weird", B.packet_weird_batch(label, chunk, cols, addrs, res.pkt_flow))
            et = cols[:, L.ETHERTYPE]
            if (et == L.ETH_ARP).any():
                arp, short = B.arp_batch(label, chunk, cols)
                tot.arp += arp.num_rows
                sink.write("arp", arp)
                if short.shape[0]:
                    tot.weird["bad_arp"] += int(short.shape[0])
            if (et == L.ETH_LLDP).any():
                lldp, problems = B.lldp_batch(label, chunk, cols)
                for name in lldp.column("system_name").to_pylist():
                    if name:
                        tot.lldp_systems.add(name)
                lldp_weird += [p for _, p in problems]
                tot.weird.update("bad_lldp" for _ in problems)
                sink.write("lldp", lldp)
            l2 = B.l2_frames_batch(label, chunk, cols)
            if l2.num_rows:
                _count_codes(
                    tot.l2_frames, et[np.isin(et, list(ETHERTYPE_PROTOCOLS))], ETHERTYPE_PROTOCOLS
                )
                sink.write("l2_frames", l2)
            if "packets" in tables:
                sink.write(
                    "packets",
                    B.packets_batch(label, chunk, cols, addrs, res.pkt_flow, res.pkt_orig),
                )
            _count_codes(
                tot.ethertypes,
                et[cols[:, L.STATUS] != L.UNSUPPORTED_LINKTYPE],
                {0x0800: "ipv4", 0x86DD: "ipv6", 0x0806: "arp", 0x88CC: "lldp", 0: "llc"}
                | ETHERTYPE_PROTOCOLS,
            )
            lts, counts = np.unique(chunk.linktype, return_counts=True)
            for lt, c in zip(lts, counts, strict=False):
                lt_packets[int(lt)] += int(c)
            if n:
                lo, hi = int(chunk.ts.min()), int(chunk.ts.max())
                first_ts = lo if first_ts is None else min(first_ts, lo)
                last_ts = hi if last_ts is None else max(last_ts, hi)
                nbytes += int(chunk.wirelen.sum())
            tot.packets += n
            if progress:
                progress(reader.packets, 0)
        consume(flows.finish())
    except CaptureError as exc:
        info["status"] = "error"
        info["error"] = str(exc)
    tot.bytes += nbytes
    tot.max_live_flows = max(tot.max_live_flows, flows.max_live)
    unsupported = {lt: c for lt, c in lt_packets.items() if not is_decoded(lt)}
    issues = [
        {"severity": i.severity, "offset": i.offset, "message": i.message} for i in reader.issues
    ]
    for lt, c in sorted(unsupported.items()):
        issues.append(
            {
                "severity": "error",
                "offset": None,
                "message": f"unsupported link type {lt} ({linktype_name(lt)}): {c} packets counted "
                "but not decoded",
            }
        )
    if unsupported:
        info["status"] = "error"  # the rest of the capture is still decoded and written
    info.update(
        format=reader.format,
        compressed=reader.compressed,
        packets=reader.packets,
        bytes=nbytes,
        linktypes=[
            {"linktype": lt, "name": linktype_name(lt), "packets": c}
            for lt, c in sorted(lt_packets.items())
        ],
        first_ts=first_ts / 1e9 if first_ts is not None else None,
        last_ts=last_ts / 1e9 if last_ts is not None else None,
        issues=issues,
    )
    return info


def analyze(
    paths: Sequence[Path],
    out_dir: Path | None = None,
    tables: Sequence[str] = DEFAULT_TABLES,
    progress: Progress | None = None,
    command: str = "analyze",
) -> dict[str, Any]:
    """Decode ``paths`` and return the run summary; write tables when ``out_dir`` is given."""
    started = time.perf_counter()
    totals = _Totals()
    archive = state = None
    run_id = 0
    if out_dir is not None:
        from otsight.store.archive import Archive
        from otsight.store.state import StateDB

        archive = Archive(Path(out_dir), list(tables))
        state = StateDB(Path(out_dir))
        run_id = state.start_run(__version__, command)
    sink = _Sink(archive, totals)
    captures = []
    labels = _labels(paths)
    try:
        for path, label in zip(paths, labels, strict=False):
            info = _analyze_capture(Path(path), label, sink, set(tables), progress)
            captures.append(info)
            if state is not None:
                state.add_capture(run_id, info)
    finally:
        if archive is not None:
            archive.close()
    elapsed = time.perf_counter() - started
    summary: dict[str, Any] = {
        "otsight_version": __version__,
        "captures": captures,
        "packets": totals.packets,
        "bytes": totals.bytes,
        "flows": totals.flows,
        "transports": dict(totals.transports),
        "ethertypes": dict(totals.ethertypes),
        "pdus": dict(totals.pdus),
        "arp": totals.arp,
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
            f"{c['capture']}: {i['message']} (byte offset {i['offset']})"
            for c in captures
            for i in c["issues"]
            if i["severity"] == "warning"
        ],
        "elapsed_s": round(elapsed, 4),
        "packets_per_s": round(totals.packets / elapsed) if elapsed > 0 else None,
        "max_live_flows": totals.max_live_flows,
    }
    if out_dir is not None:
        summary["out"] = str(out_dir)
        summary["tables"] = dict(archive.rows) if archive else {}
    if state is not None:
        state.finish_run(run_id, summary)
        state.close()
    return summary


def _labels(paths: Sequence[Path]) -> list[str]:
    """Name each capture by its file name, made unique with its parent folder if needed."""
    names = [Path(p).name for p in paths]
    dup = {n for n in names if names.count(n) > 1}
    return [str(Path(p)) if Path(p).name in dup else Path(p).name for p in paths]
