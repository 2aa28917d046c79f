"""Decode a capture in memory and keep everything tests need, PDU bytes included.

This runs the same stages as ``otsight analyze`` (reader → L2–L4 → flows/reassembly →
batches) but keeps the results in memory instead of writing an archive. It is slower than
``analyze`` (PDU bytes become Python objects) and meant for tests and plugin authors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from otsight import events as E
from otsight.capture import _track as T
from otsight.capture import batches as B
from otsight.capture.addresses import format_ip
from otsight.capture.flows import FlowTable
from otsight.capture.framing import FRAMER_NAMES
from otsight.capture.pcap import CaptureIssue, CaptureReader
from otsight.dissect import _l2l4 as L


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

    @property
    def flows(self) -> pa.Table:
        return self.tables["flows"]

    @property
    def packet_table(self) -> pa.Table:
        return self.tables["packets"]


def _pdus(res, buf) -> list[Pdu]:
    out = []
    P = res.pdus
    for j in range(P.shape[0]):
        row = P[j]
        src = format_ip(int(row[T.P_SRC_HI]) & (2**64 - 1), int(row[T.P_SRC_LO]) & (2**64 - 1))
        dst = format_ip(int(row[T.P_DST_HI]) & (2**64 - 1), int(row[T.P_DST_LO]) & (2**64 - 1))
        out.append(
            Pdu(
                int(row[T.P_FRAME]),
                int(row[T.P_FIRST_FRAME]),
                int(row[T.P_FLOW]),
                bool(row[T.P_ORIG]),
                FRAMER_NAMES[int(row[T.P_FRAMER])],
                (src, int(row[T.P_SPORT])),
                (dst, int(row[T.P_DPORT])),
                res.pdu_bytes(j, buf),
            )
        )
    return out


def decode(path: str | Path, packets: bool = False) -> Decoded:
    """Decode ``path`` completely; ``packets=True`` also keeps the per-packet table."""
    reader = CaptureReader(Path(path))
    flows = FlowTable()
    got: dict[str, list[pa.RecordBatch]] = {n: [] for n in E.TABLES}
    result = Decoded()
    label = Path(path).name
    for chunk in reader.chunks():
        cols, addrs = L.decode_l2l4(chunk.buf, chunk.offset, chunk.caplen, chunk.linktype)
        res = flows.process(chunk, cols, addrs)
        result.pdus += _pdus(res, chunk.buf)
        got["flows"].append(B.flows_batch(res.flows, res.flow_keys, label))
        got["weird"].append(B.packet_weird_batch(label, chunk, cols, addrs, res.pkt_flow))
        got["weird"].append(B.stream_weird_batch(label, res.gaps))
        got["arp"].append(B.arp_batch(label, chunk, cols)[0])
        got["lldp"].append(B.lldp_batch(label, chunk, cols)[0])
        got["l2_frames"].append(B.l2_frames_batch(label, chunk, cols))
        if packets:
            got["packets"].append(
                B.packets_batch(label, chunk, cols, addrs, res.pkt_flow, res.pkt_orig)
            )
    res = flows.finish()
    result.pdus += _pdus(res, res.arena)
    got["flows"].append(B.flows_batch(res.flows, res.flow_keys, label))
    got["weird"].append(B.stream_weird_batch(label, res.gaps))
    result.packets = reader.packets
    result.issues = list(reader.issues)
    result.linktypes = set(reader.linktypes)
    for name, batches in got.items():
        result.tables[name] = pa.Table.from_batches(batches, schema=E.TABLES[name])
    return result
