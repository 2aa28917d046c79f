"""Decode a capture in memory and keep everything tests need, PDU bytes included.

Runs the same :class:`otsight.pipeline.CapturePipeline` as ``otsight analyze`` but keeps
the tables in memory and records every framed PDU's bytes. Slower than ``analyze`` (PDU
bytes become Python objects); meant for tests and plugin authors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from otsight.analyze import all_schemas
from otsight.capture import _track as T
from otsight.capture.addresses import format_ip
from otsight.capture.framing import FRAMER_NAMES
from otsight.capture.pcap import CaptureIssue, CaptureReader
from otsight.dissect.base import ChunkContext
from otsight.dissect.registry import registry
from otsight.pipeline import FOUNDATION_TABLES, CapturePipeline

_U64 = 2**64 - 1


@dataclass(frozen=True)
class Pdu:
    frame: int
    first_frame: int
    flow_id: int
    is_orig: bool
    protocol: str
    src: tuple[str | None, int]
    dst: tuple[str | None, int]
    data: bytes


@dataclass
class Decoded:
    packets: int = 0
    pdus: list[Pdu] = field(default_factory=list)
    tables: dict[str, pa.Table] = field(default_factory=dict)
    issues: list[CaptureIssue] = field(default_factory=list)
    linktypes: set[int] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)

    @property
    def flows(self) -> pa.Table:
        return self.tables["flows"]

    @property
    def packet_table(self) -> pa.Table:
        return self.tables["packets"]


def _collect_pdus(ctx: ChunkContext, into: list[Pdu]) -> None:
    P = ctx.track.pdus
    for j in range(P.shape[0]):
        row = P[j]
        src = format_ip(int(row[T.P_SRC_HI]) & _U64, int(row[T.P_SRC_LO]) & _U64)
        dst = format_ip(int(row[T.P_DST_HI]) & _U64, int(row[T.P_DST_LO]) & _U64)
        into.append(
            Pdu(
                int(row[T.P_FRAME]),
                int(row[T.P_FIRST_FRAME]),
                int(row[T.P_FLOW]),
                bool(row[T.P_ORIG]),
                FRAMER_NAMES[int(row[T.P_FRAMER])],
                (src, int(row[T.P_SPORT])),
                (dst, int(row[T.P_DPORT])),
                ctx.pdu_bytes(j),
            )
        )


def decode(
    path: str | Path,
    packets: bool = False,
    reader: CaptureReader | None = None,
    dissect: bool = True,
) -> Decoded:
    """Decode ``path`` completely; ``packets=True`` also keeps the per-packet table."""
    schemas = all_schemas()
    tables = set(FOUNDATION_TABLES) - ({"packets"} if not packets else set())
    dissectors = list(registry().dissectors.values()) if dissect else []
    if dissect:
        tables |= set(registry().tables())
    result = Decoded()
    pipe = CapturePipeline(
        Path(path),
        Path(path).name,
        tables,
        dissectors,
        reader=reader,
        on_chunk=lambda ctx: _collect_pdus(ctx, result.pdus),
    )
    got: dict[str, list[pa.RecordBatch]] = {t: [] for t in tables}
    for table, batch in pipe.batches():
        got[table].append(batch)
    result.packets = pipe.reader.packets
    result.issues = list(pipe.reader.issues)
    result.linktypes = set(pipe.reader.linktypes)
    result.failures = pipe.failures
    for name, batches in got.items():
        result.tables[name] = pa.Table.from_batches(batches, schema=schemas[name])
    return result
