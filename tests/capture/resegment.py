"""Rebuild a capture's framed PDU streams as a new capture with hostile TCP segmentation.

Given otsight's framed PDUs for a capture (``decode(path).pdus``), :func:`resegment` writes a
new classic pcap in which every flow is a fresh :class:`TcpConversation` (same client and
server addresses and ports, handshake, FIN exchange) carrying exactly the same per-direction
byte streams, but cut and sent in the nastiest ways a reassembler must survive:

* random split points, including 1-byte segments and cuts inside PDU headers, and PDUs
  spread over three or more segments;
* several PDUs coalesced into one segment (a direction's PDUs are sometimes held back and
  sent together);
* exact retransmissions and partial overlaps (a segment re-sent together with new bytes; the
  repeated bytes are identical, so "first data wins" does not matter);
* segments reordered within a window of at most 8.

The first PDU of every flow is sent alone, whole and in order, because otsight picks a flow's
framer from the content of its first payload.

While building, a reference receiver (in-order delivery, out-of-order segments buffered
until the hole is filled) computes for every PDU the frame at which its first and last byte
became deliverable in order: ``frame`` is the frame that completes the PDU (for a PDU whose
tail arrived early, the frame that filled the hole, as Wireshark attributes reassembled
PDUs), ``first_frame`` the frame whose bytes started it.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from otsight.capture.framing import FRAMERS
from otsight.encode.pcapfile import PcapWriter
from otsight.encode.tcp_session import TcpConversation

HEADER_BYTES = {name: hdr for name, hdr, _ in FRAMERS.values()}
MAX_SEGMENT = 4000  # bytes of payload per segment (well under the IPv4 limit)
REORDER_WINDOW = 8
OOO_LIMIT = 16  # otsight buffers at most 16 out-of-order segments per direction
T0_NS = 1_700_000_000_000_000_000
STEP_NS = 100_000

Endpoint = tuple[str, int]
# (client, server, n-th connection between them)
FlowKey = tuple[Endpoint, Endpoint, int]
# (client, server, n-th connection between them, sent by the client)
DirKey = tuple[Endpoint, Endpoint, int, bool]


@dataclass(frozen=True)
class ExpectedPdu:
    data: bytes
    protocol: str
    frame: int
    first_frame: int


@dataclass
class Rebuilt:
    path: Path
    frames: int
    streams: dict[DirKey, list[ExpectedPdu]]
    stats: Counter


def direction_key(pdu) -> tuple[Endpoint, Endpoint]:
    """(client, server) of the flow carrying ``pdu``."""
    return (pdu.src, pdu.dst) if pdu.is_orig else (pdu.dst, pdu.src)


def group_by_direction(pdus) -> dict[DirKey, list]:
    """PDUs per (client, server, n-th flow between them, from client), in emission order.

    Flows between the same endpoints are numbered in the order of their first PDU.
    """
    tuple_of: dict[int, tuple[Endpoint, Endpoint]] = {}
    nth: dict[int, int] = {}
    seen: Counter = Counter()
    out: dict[DirKey, list] = {}
    for p in pdus:
        ends = direction_key(p)
        if p.flow_id not in tuple_of:
            tuple_of[p.flow_id] = ends
            nth[p.flow_id] = seen[ends]
            seen[ends] += 1
        assert tuple_of[p.flow_id] == ends, f"flow {p.flow_id} changed endpoints: {p}"
        out.setdefault((*ends, nth[p.flow_id], p.is_orig), []).append(p)
    return out


@dataclass
class _Receiver:
    """Reference in-order receiver of one direction; records when each PDU completes."""

    bounds: list[tuple[int, int]]  # PDU [start, end) in stream offsets
    nxt: int = 0
    ooo: list[tuple[int, int]] = field(default_factory=list)
    first_frame: list[int] = field(default_factory=list)
    last_frame: list[int] = field(default_factory=list)
    max_ooo: int = 0

    def receive(self, s: int, e: int, frame: int) -> None:
        if e <= self.nxt:
            return  # pure retransmission
        if s > self.nxt:
            assert len(self.ooo) < OOO_LIMIT, "construction exceeds otsight's reorder bound"
            self.ooo.append((s, e))
            self.max_ooo = max(self.max_ooo, len(self.ooo))
            return
        old = self.nxt
        self.nxt = e
        progressed = True
        while progressed:
            progressed = False
            for bs, be in sorted(self.ooo):
                if bs <= self.nxt:
                    self.ooo.remove((bs, be))
                    self.nxt = max(self.nxt, be)
                    progressed = True
                    break
        # every PDU byte in [old, nxt) became deliverable at `frame`
        while (
            len(self.first_frame) < len(self.bounds)
            and self.bounds[len(self.first_frame)][0] < self.nxt
        ):
            assert self.bounds[len(self.first_frame)][0] >= old
            self.first_frame.append(frame)
        while (
            len(self.last_frame) < len(self.bounds)
            and self.bounds[len(self.last_frame)][1] <= self.nxt
        ):
            self.last_frame.append(frame)


@dataclass
class _Direction:
    pdus: list  # original Pdu objects
    stream: bytes
    bounds: list[tuple[int, int]]
    rx: _Receiver
    queued: int = 0  # PDUs [0, queued) have been handed to the sender
    flushed: int = 0  # PDUs [0, flushed) have been put on the wire


@dataclass
class _Flow:
    ends: tuple[Endpoint, Endpoint]
    nth: int
    dirs: dict[bool, _Direction]
    conv: TcpConversation | None = None
    opened: bool = False
    closed: bool = False
    first_pdu: tuple[bool, int] | None = None


class _Builder:
    def __init__(self, pdus, seed: int, tricks: bool = True) -> None:
        self.rng = random.Random(seed)
        self.tricks = tricks
        self.frames: list[bytes] = []
        self.stats: Counter = Counter()
        self.flows: dict[FlowKey, _Flow] = {}
        self.order: list[tuple[FlowKey, bool, int]] = []
        grouped = group_by_direction(pdus)
        index: dict[int, int] = {}  # id(pdu) -> position in its direction
        for (client, server, nth, orig), plist in grouped.items():
            key: FlowKey = (client, server, nth)
            flow = self.flows.setdefault(key, _Flow((client, server), nth, {}))
            bounds, pos = [], 0
            for k, p in enumerate(plist):
                bounds.append((pos, pos + len(p.data)))
                pos += len(p.data)
                index[id(p)] = k
            flow.dirs[orig] = _Direction(
                list(plist), b"".join(p.data for p in plist), bounds, _Receiver(bounds)
            )
        # global emission order of the original PDUs
        nth_of: dict[int, FlowKey] = {}
        for (client, server, nth, _), plist in grouped.items():
            for p in plist:
                nth_of[p.flow_id] = (client, server, nth)
        for p in pdus:
            key = nth_of[p.flow_id]
            self.order.append((key, p.is_orig, index[id(p)]))
            flow = self.flows[key]
            if flow.first_pdu is None:
                flow.first_pdu = (p.is_orig, index[id(p)])
        self.open_by_ends: dict[tuple[Endpoint, Endpoint], FlowKey] = {}

    # -- wire ----------------------------------------------------------------------------
    def _emit(self, frame: bytes) -> int:
        self.frames.append(frame)
        return len(self.frames)

    def _send(self, flow: _Flow, orig: bool, s: int, e: int) -> None:
        d = flow.dirs[orig]
        assert flow.conv is not None and 0 <= s < e <= len(d.stream)
        n = self._emit(flow.conv.segment(orig, d.stream[s:e], seq_offset=s, flags="PA"))
        d.rx.receive(s, e, n)

    def _open(self, key) -> None:
        flow = self.flows[key]
        busy = self.open_by_ends.get(flow.ends)
        if busy is not None:
            self._finish(busy)  # the previous connection on these ports ends first
        rng = self.rng
        isn = [rng.getrandbits(32) for _ in range(2)]
        if rng.random() < 0.3:  # sequence numbers wrap inside the stream
            isn[0] = (2**32 - rng.randint(1, 300)) & 0xFFFFFFFF
        if rng.random() < 0.3:
            isn[1] = (2**32 - rng.randint(1, 300)) & 0xFFFFFFFF
        (cip, cport), (sip, sport) = flow.ends
        flow.conv = TcpConversation(
            "02:00:00:00:00:01", cip, cport, "02:00:00:00:00:02", sip, sport, isn[0], isn[1]
        )
        for f in flow.conv.handshake():
            self._emit(f)
        flow.opened = True
        self.open_by_ends[flow.ends] = key
        # the framer is detected on the first payload: send the first PDU alone and whole
        assert flow.first_pdu is not None
        orig, k = flow.first_pdu
        d = flow.dirs[orig]
        assert k == 0 and d.queued == 0
        self._send(flow, orig, *d.bounds[0])
        d.queued = d.flushed = 1

    def _finish(self, key) -> None:
        flow = self.flows[key]
        for orig in (True, False):
            d = flow.dirs.get(orig)
            if d is not None:
                d.queued = len(d.pdus)
                self._flush(flow, orig)
        conv = flow.conv
        assert conv is not None
        c_len = len(flow.dirs[True].stream) if True in flow.dirs else 0
        s_len = len(flow.dirs[False].stream) if False in flow.dirs else 0
        # FIN/ACK, FIN/ACK, ACK at the ends of both streams (bookkeeping-free)
        self._emit(conv.segment(True, b"", seq_offset=c_len, flags="FA"))
        self._emit(conv.segment(False, b"", seq_offset=s_len, flags="FA"))
        self._emit(conv.segment(True, b"", seq_offset=c_len + 1, flags="A"))
        flow.closed = True
        del self.open_by_ends[flow.ends]

    # -- segmentation ----------------------------------------------------------------------
    def _cuts(self, d: _Direction, first: int, last: int, hdr: int) -> list[int]:
        """Cut points (stream offsets) for PDUs [first, last) sent as one burst."""
        rng = self.rng
        bs, be = d.bounds[first][0], d.bounds[last - 1][1]
        cuts: set[int] = set()
        if self.tricks:
            mode = rng.random()
            if mode < 0.25:
                pass  # the whole burst in one segment
            elif mode < 0.35 and be - bs <= 48:
                cuts.update(range(bs + 1, be))  # byte by byte
            else:
                for _ in range(rng.randint(1, 4)):
                    pick = rng.random()
                    ps, pe = d.bounds[rng.randrange(first, last)]
                    if pick < 0.35 and pe - ps > 1:  # inside the header
                        cuts.add(ps + rng.randint(1, min(hdr, pe - ps) - 1 if hdr > 1 else 1))
                    elif pick < 0.55:  # a 1-byte segment
                        x = rng.randrange(ps, pe)
                        cuts.update((x, x + 1))
                    elif pick < 0.8 and pe - ps >= 3:  # a PDU over 3+ segments
                        cuts.update(rng.sample(range(ps + 1, pe), 2))
                    else:
                        cuts.add(rng.randrange(bs, be + 1))
        cuts = {c for c in cuts if bs < c < be}
        points = sorted(cuts | {bs, be})
        out = [points[0]]
        for p in points[1:]:  # keep segments below MAX_SEGMENT
            while p - out[-1] > MAX_SEGMENT:
                out.append(out[-1] + MAX_SEGMENT)
            out.append(p)
        return out

    def _flush(self, flow: _Flow, orig: bool) -> None:
        d = flow.dirs[orig]
        first, last = d.flushed, d.queued
        if first >= last:
            return
        rng = self.rng
        hdr = HEADER_BYTES[d.pdus[first].protocol]
        points = self._cuts(d, first, last, hdr)
        segs = list(zip(points[:-1], points[1:], strict=True))
        self._count(d, first, last, segs, hdr)
        if self.tricks:
            if len(segs) >= 2 and rng.random() < 0.25:  # re-send old bytes with new ones
                i = rng.randrange(1, len(segs))
                s, e = segs[i]
                segs[i] = (rng.randrange(segs[i - 1][0], s), e)
                self.stats["overlap"] += 1
            elif rng.random() < 0.1 and segs[0][0] > 0:  # overlap into the previous burst
                s, e = segs[0]
                segs[0] = (max(0, s - rng.randint(1, 40)), e)
                self.stats["overlap"] += 1
            if rng.random() < 0.2:  # an exact retransmission a little later
                j = rng.randrange(len(segs))
                segs.insert(rng.randint(j + 1, min(len(segs), j + 3)), segs[j])
                self.stats["retransmission"] += 1
            if len(segs) >= 2 and rng.random() < 0.3:  # reorder within a small window
                w = rng.uniform(1.0, REORDER_WINDOW - 1)
                keyed = sorted(range(len(segs)), key=lambda i: i + rng.uniform(0, w))
                assert all(abs(pos - i) < REORDER_WINDOW for pos, i in enumerate(keyed))
                if keyed != sorted(keyed):
                    self.stats["reordered"] += 1
                segs = [segs[i] for i in keyed]
        for s, e in segs:
            self._send(flow, orig, s, e)
        d.flushed = last

    def _count(self, d: _Direction, first: int, last: int, segs, hdr: int) -> None:
        starts = [s for s, _ in segs]
        for s, e in segs:
            self.stats["segments"] += 1
            self.stats["one_byte"] += e - s == 1
            whole = sum(
                1 for k in range(first, last) if s <= d.bounds[k][0] and d.bounds[k][1] <= e
            )
            self.stats["coalesced"] += whole >= 2
        for k in range(first, last):
            ps, pe = d.bounds[k]
            inner = [c for c in starts if ps < c < pe]
            self.stats["header_split"] += any(c < ps + hdr for c in inner)
            self.stats["pdu_3plus"] += len(inner) >= 2

    # -- driver ----------------------------------------------------------------------------
    def build(self) -> None:
        rng = self.rng
        for key, orig, k in self.order:
            flow = self.flows[key]
            if not flow.opened:
                self._open(key)
            d = flow.dirs[orig]
            if flow.closed:  # finished early: a later connection reused its ports
                assert k < d.queued
                continue
            if k < d.queued:
                continue  # already sent (first PDU of the flow)
            assert k == d.queued, "PDUs of one direction must come in order"
            d.queued = k + 1
            held = d.queued - d.flushed
            held_bytes = d.bounds[d.queued - 1][1] - d.bounds[d.flushed][0]
            if not self.tricks or rng.random() < 0.55 or held >= 8 or held_bytes >= 6000:
                self._flush(flow, orig)
        for key in list(self.open_by_ends.values()):
            self._finish(key)

    def expected(self) -> dict[DirKey, list[ExpectedPdu]]:
        out: dict[DirKey, list[ExpectedPdu]] = {}
        for (client, server, nth), flow in self.flows.items():
            for orig, d in flow.dirs.items():
                assert d.rx.nxt == len(d.stream) and not d.rx.ooo
                out[(client, server, nth, orig)] = [
                    ExpectedPdu(p.data, p.protocol, lf, ff)
                    for p, ff, lf in zip(d.pdus, d.rx.first_frame, d.rx.last_frame, strict=True)
                ]
        return out


def resegment(pdus, path: Path, seed: int, tricks: bool = True) -> Rebuilt:
    """Write ``pdus`` (otsight ``Pdu`` objects of one capture) re-cut as a pcap at ``path``."""
    b = _Builder(pdus, seed, tricks)
    b.build()
    with PcapWriter(path) as w:
        for i, frame in enumerate(b.frames):
            w.write(T0_NS + i * STEP_NS, frame)
    b.stats["max_ooo"] = max(
        (d.rx.max_ooo for f in b.flows.values() for d in f.dirs.values()), default=0
    )
    return Rebuilt(Path(path), len(b.frames), b.expected(), b.stats)
