"""One capture through every decode stage, as a stream of (table, record batch).

reader → L2–L4 kernel → flows and reassembly → foundation tables → protocol dissectors.
``otsight analyze`` writes the stream to the archive; tests keep it in memory. A dissector
that fails on some input is reported and switched off for the rest of the capture; the
other stages carry on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from otsight.capture import batches as B
from otsight.capture.flows import FlowTable, TrackResult
from otsight.capture.linktypes import is_decoded, linktype_name
from otsight.capture.pcap import CaptureReader
from otsight.capture.pdu_columns import pdu_columns
from otsight.dissect import _l2l4 as L
from otsight.dissect.base import ChunkContext, Dissector

FOUNDATION_TABLES = ["flows", "pdus", "weird", "arp", "lldp", "l2_frames", "packets"]

ChunkHook = Callable[[ChunkContext], None]


class CapturePipeline:
    """Decode one capture; iterate over :meth:`batches` to run it."""

    def __init__(
        self,
        path: Path,
        label: str,
        tables: set[str],
        dissectors: list[type[Dissector]],
        reader: CaptureReader | None = None,
        on_chunk: ChunkHook | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.label = label
        self.tables = tables
        self.reader = reader or CaptureReader(self.path)
        self.flows = FlowTable()
        self.dissectors = [d() for d in dissectors if any(t in tables for t in d.tables)]
        self.failures: list[str] = []
        self.on_chunk = on_chunk
        self.on_progress = on_progress
        self.linktype_packets: dict[int, int] = {}
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.bytes = 0

    # -- stages --------------------------------------------------------------------------
    def batches(self) -> Iterator[tuple[str, pa.RecordBatch]]:
        """Every batch of every table asked for, in capture order."""
        for table, batch in self._stages():
            if table in self.tables:
                yield table, batch

    def _stages(self) -> Iterator[tuple[str, pa.RecordBatch]]:
        for chunk in self.reader.chunks():
            cols, addrs, scan = L.decode_l2l4_scanned(
                chunk.buf, chunk.offset, chunk.caplen, chunk.linktype, chunk.wirelen
            )
            res = self.flows.process(chunk, cols, addrs)
            pdus, pdu_cols = self._pdus(res)
            yield from self._tracked(res, pdus)
            yield from self._packets(chunk, cols, addrs, res, scan)
            ctx = ChunkContext(
                self.label,
                chunk,
                cols,
                addrs,
                res,
                pdu_table=pdus,
                pdu_cols=pdu_cols,
                ethertypes=scan[0],
                udp_packets=(scan[4], scan[5]),
                non_ip=scan[6],
            )
            yield from self._dissect(ctx)
            if self.on_chunk is not None:
                self.on_chunk(ctx)
            self._account(chunk)
            if self.on_progress is not None:
                self.on_progress(self.reader.packets)
            # dropped before the next chunk is read, not when its arrays replace these: two
            # chunks' arrays live at once would raise the peak the heap has to grow to
            del chunk, cols, addrs, res, pdus, pdu_cols, scan, ctx
        # Flows still open end now; PDUs they held back (out-of-order data) come out here.
        res = self.flows.finish()
        pdus, pdu_cols = self._pdus(res)
        yield from self._tracked(res, pdus)
        ctx = ChunkContext(
            self.label,
            _NoPackets(res.arena),
            _EMPTY_COLS,
            _EMPTY_ADDRS,
            res,
            pdu_table=pdus,
            pdu_cols=pdu_cols,
        )
        yield from self._dissect(ctx)
        if self.on_chunk is not None:
            self.on_chunk(ctx)
        for d in self.dissectors:
            yield from self._guarded(d, lambda d=d: d.finish(self.label))

    def _pdus(self, res: TrackResult) -> tuple[pa.RecordBatch | None, dict | None]:
        """The chunk's ``pdus`` table and the columns it was made of, when asked for; the
        dissectors read its protocol and address columns, and their PDUs' fields from the
        columns, instead of working them out again."""
        if res.pdus.shape[0] and "pdus" in self.tables:
            cols = pdu_columns(res.pdus)
            return B.pdus_batch(cols, self.label), cols
        return None, None

    def _tracked(
        self, res: TrackResult, pdus: pa.RecordBatch | None
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        if res.flows.shape[0]:
            yield "flows", B.flows_batch(res.flows, res.flow_keys, self.label)
        if pdus is not None:
            yield "pdus", pdus
        if res.gaps.shape[0]:
            yield "weird", B.stream_weird_batch(self.label, res.gaps)

    def _packets(self, chunk, cols, addrs, res, scan) -> Iterator[tuple[str, pa.RecordBatch]]:
        et, bad, arp_rows, lldp_rows = scan[:4]
        if bad.shape[0]:
            yield "weird", B.packet_weird_batch(self.label, chunk, cols, addrs, res.pkt_flow, bad)
        if arp_rows.shape[0]:
            arp, short = B.arp_batch(self.label, chunk, cols, arp_rows)
            yield "arp", arp
            if short.shape[0]:
                yield (
                    "weird",
                    B.named_packet_weird(self.label, chunk, cols, addrs, short, "bad_arp", "arp"),
                )
        if lldp_rows.shape[0]:
            lldp, problems = B.lldp_batch(self.label, chunk, cols, lldp_rows)
            yield "lldp", lldp
            if problems:
                idx = np.array([i for i, _ in problems], dtype=np.int64)
                yield (
                    "weird",
                    B.named_packet_weird(
                        self.label,
                        chunk,
                        cols,
                        addrs,
                        idx,
                        "bad_lldp",
                        "lldp",
                        [p for _, p in problems],
                    ),
                )
        l2 = B.l2_frames_batch(self.label, chunk, cols, et)
        if l2.num_rows:
            yield "l2_frames", l2
        if "packets" in self.tables:
            yield (
                "packets",
                B.packets_batch(self.label, chunk, cols, addrs, res.pkt_flow, res.pkt_orig),
            )

    def _dissect(self, ctx: ChunkContext) -> Iterator[tuple[str, pa.RecordBatch]]:
        for d in self.dissectors:
            yield from self._guarded(d, lambda d=d: d.process(ctx))
        for batch in ctx.weird_batches:
            yield "weird", batch
        ctx.weird_batches.clear()

    def _guarded(self, d: Dissector, call) -> Iterator[tuple[str, pa.RecordBatch]]:
        if d in self._disabled:
            return
        try:
            out = call()
        except Exception as exc:  # noqa: BLE001 - one broken dissector must not stop the rest
            self._disabled.add(d)
            self.failures.append(
                f"dissector {d.name} failed ({type(exc).__name__}: {exc}); "
                f"switched off for the rest of {self.label}"
            )
            return
        for table, produced in out.items():
            if table not in self.tables:
                continue
            for batch in produced if isinstance(produced, list) else [produced]:
                if batch.num_rows:
                    yield table, batch

    @property
    def _disabled(self) -> set[Dissector]:
        if not hasattr(self, "_off"):
            self._off: set[Dissector] = set()
        return self._off

    def _account(self, chunk) -> None:
        if not chunk.count:
            return
        first = chunk.linktype[0]
        if (chunk.linktype == first).all():  # the common case, without np.unique's sort
            lts, counts = [int(first)], [chunk.count]
        else:
            lts, counts = np.unique(chunk.linktype, return_counts=True)
        for lt, c in zip(lts, counts, strict=True):
            self.linktype_packets[int(lt)] = self.linktype_packets.get(int(lt), 0) + int(c)
        lo, hi = int(chunk.ts.min()), int(chunk.ts.max())
        self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
        self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        self.bytes += int(chunk.wirelen.sum())

    # -- after the run -------------------------------------------------------------------
    def unsupported_linktypes(self) -> dict[int, int]:
        return {lt: c for lt, c in self.linktype_packets.items() if not is_decoded(lt)}

    def linktypes(self) -> list[dict]:
        return [
            {"linktype": lt, "name": linktype_name(lt), "packets": c}
            for lt, c in sorted(self.linktype_packets.items())
        ]


class _NoPackets:
    """The end-of-capture context: PDUs flushed from ended flows live in the arena only."""

    first_frame = 0
    count = 0

    def __init__(self, arena: np.ndarray) -> None:
        # Read-only, like every chunk's mapped file: a writable buffer is another type to
        # numba, and each dissector kernel would load (or compile) a second version of
        # itself for this one context.
        self.buf = arena.view()
        self.buf.flags.writeable = False
        self.ts = np.zeros(0, np.int64)
        self.linktype = np.zeros(0, np.int32)
        self.wirelen = np.zeros(0, np.int64)


_EMPTY_COLS = np.zeros((0, L.NCOLS), np.int64)
_EMPTY_ADDRS = np.zeros((0, 4), np.uint64)
