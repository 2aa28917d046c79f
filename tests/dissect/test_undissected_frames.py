"""Every frame Wireshark leaves undissected on an ICS port is accounted for by otsight.

For each manifest row with ``undissected_ics_port_frames`` > 0, tshark (once per capture,
with the row's ``decode_as`` flags) lists the TCP/UDP frames with a payload to or from a
well-known ICS port that carry no ICS protocol layer, or whose COTP payload tshark shows as
plain ``data`` (S7comm-plus: Wireshark 4.0 has no dissector for it). Each such frame must end
up in one of these categories, or the test fails with the frame as a silent drop:

``decoded``
    its new bytes lie in PDUs otsight framed, and each of those PDUs has its row in a
    protocol table (joined on frame, flow and direction; a frame that completed N PDUs needs
    N rows in the framer's one-row-per-PDU tables, or weird rows from the dissector); bytes
    of the frame in no PDU must be explained by a weird row as below;
``weird``
    a ``weird`` row with a reason covers its bytes: a stream row (``pdu_bad_header``,
    ``pdu_incomplete``, ``tcp_gap``, ``tcp_bytes_not_captured``) naming these bytes, or the
    stream row after which reassembly skipped everything up to the next valid header; or
    a dissector's row for the PDU;
``not_ics``
    its flow has no framer: content detection found no industrial protocol
    (``flows.app_protocol`` is empty), e.g. the DCE/RPC, TLS and HTTP probes of port 502;
``retransmitted``
    every byte was seen earlier in that direction, or lies before the first byte of the
    stream (reassembly keeps the first copy; tshark flags nearly all of these as
    retransmissions too); the first copies themselves must not be silent.

Where the bytes went is worked out from the stream, not from frame numbers alone: each
direction's bytes are laid out by (unwrapped) sequence number, and each PDU otsight framed is
placed where its bytes are, after the previous PDU and ending in a frame that was delivered
when the PDU was completed (an out-of-order segment is delivered when the hole before it
closes). So PDUs completed late (out-of-order segments, bytes held while the protocol was
being detected) are credited to the frames that carried them.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from otsight.dissect.registry import registry
from otsight.testing.decode import decode
from tests.conftest import manifest_rows

ICS_PORTS = {502, 20000, 44818, 2222, 102, 2404, 47808, 4840, 9600, 34962, 34963, 34964}
# tshark layers that count as an industrial decode (COTP only when it has no ``data`` child)
ICS_LAYERS = {
    "mbtcp", "modbus", "dnp3", "enip", "cip", "cipcls", "cipcm", "cipsafety", "cipmotion",
    "cipio", "s7comm", "s7comm-plus", "iec60870_104", "iec60870_asdu", "bvlc", "bacnet",
    "bacapp", "opcua", "omron", "pn_io", "pn_rt", "pn_dcp", "tpkt", "cotp", "ses", "pres",
    "acse", "mms",
}  # fmt: skip
TSHARK_RETRANSMISSION = (
    "tcp.analysis.retransmission",
    "tcp.analysis.fast_retransmission",
    "tcp.analysis.spurious_retransmission",
    "tcp.analysis.keep_alive",
)
# the tables with one row per PDU of their framer (ENIP's cip table has one per CIP message;
# TPKT PDUs go to cotp, s7comm, s7comm_plus or mms)
ONE_ROW_PER_PDU = ("modbus", "enip", "cotp", "s7comm", "s7comm_plus", "mms", "dnp3", "iec104",
                   "opcua", "fins")  # fmt: skip
STREAM_DESYNC = {"pdu_bad_header", "tcp_gap", "tcp_bytes_not_captured", "pdu_incomplete"}
M32 = 0xFFFFFFFF
CATEGORIES = ("decoded", "weird", "not_ics", "retransmitted", "silent")


def undissected_rows() -> list[dict[str, str]]:
    return [r for r in manifest_rows() if int(r.get("undissected_ics_port_frames") or 0) > 0]


# ---- tshark ---------------------------------------------------------------------------------
@dataclass
class TsharkFrame:
    transport: str
    protocols: str
    payload: bytes
    retransmission: bool


def tshark_frames(tshark: str, path: Path, decode_as: str = "") -> dict[int, TsharkFrame]:
    """Every TCP/UDP frame with a payload to or from an ICS port (ICMP quotes excluded)."""
    fields = [
        "frame.number",
        "frame.protocols",
        "tcp.srcport",
        "tcp.dstport",
        "udp.srcport",
        "udp.dstport",
        "tcp.payload",
        "udp.payload",
        *TSHARK_RETRANSMISSION,
    ]
    cmd = [tshark, "-n", "-r", str(path), "-T", "fields", "-E", "separator=|", "-E",
           "occurrence=f", *shlex.split(decode_as)]  # fmt: skip
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    frames: dict[int, TsharkFrame] = {}
    for line in out.splitlines():
        num, protos, ts, td, us, ud, tp, up, *flags = line.split("|")
        layers = protos.split(":")
        if "icmp" in layers or "icmpv6" in layers:
            continue
        if ts:
            transport, ports, payload = "tcp", (int(ts), int(td)), tp
        elif us:
            transport, ports, payload = "udp", (int(us), int(ud)), up
        else:
            continue
        if not payload or not set(ports) & ICS_PORTS:
            continue
        frames[int(num)] = TsharkFrame(
            transport, protos, bytes.fromhex(payload.replace(":", "")), any(flags)
        )
    return frames


def is_undissected(protocols: str) -> bool:
    layers = protocols.split(":")
    cotp_data = any(a == "cotp" and b == "data" for a, b in zip(layers, layers[1:], strict=False))
    return cotp_data or not (set(layers) & ICS_LAYERS)


# ---- otsight --------------------------------------------------------------------------------
@dataclass
class Verdict:
    category: str
    detail: object = None
    tables: tuple[str, ...] = ()


@dataclass
class Direction:
    """One direction of one TCP flow: its payload frames (byte ranges in unwrapped sequence
    space, relative to the first payload byte seen), the bytes captured, otsight's PDUs
    placed back at their stream positions, and the stream ``weird`` rows."""

    frames: list[int] = field(default_factory=list)  # capture order
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    new: dict[int, tuple[int, int]] = field(default_factory=dict)  # bytes not seen before
    blocks: list[tuple[int, bytearray]] = field(default_factory=list)  # contiguous bytes
    delivered: dict[int, int] = field(default_factory=dict)  # frame → frame closing its hole
    pdu_frames: list[int] = field(default_factory=list)
    pdu_data: list[bytes] = field(default_factory=list)
    pdu_at: list[int | None] = field(default_factory=list)  # stream position (None: unplaced)
    weird: list[tuple[int, str, int, int]] = field(default_factory=list)  # frame, name, at, n

    def prepare(self, payloads: dict[int, bytes]) -> None:
        """New bytes per frame (reassembly keeps the first copy; bytes before the first one
        seen belong to no stream), contiguous captured blocks, and where each frame's bytes
        were delivered (the frame after which nothing before them was missing)."""
        covered: list[tuple[int, int]] = []  # sorted disjoint intervals seen so far
        pieces: list[tuple[int, bytes]] = []
        nxt, pending = 0, []
        for g in self.frames:
            lo, hi = self.ranges[g]
            a = max(lo, 0)
            for x, y in covered:  # the prefix already seen
                if x <= a < y:
                    a = y
            a = min(a, hi)
            self.new[g] = (a, hi)
            if a < hi:
                data = payloads.get(g, b"")[a - lo : hi - lo]
                pieces.append((a, data))
                covered = _merge(covered, (a, a + len(data)))
            pending.append(g)
            moved = True
            while moved:
                moved = False
                for q in list(pending):
                    if self.ranges[q][0] <= nxt:
                        nxt = max(nxt, self.ranges[q][1])
                        self.delivered[q] = g
                        pending.remove(q)
                        moved = True
        for a, data in sorted(pieces, key=lambda x: x[0]):
            if self.blocks and a <= self.blocks[-1][0] + len(self.blocks[-1][1]):
                start, buf = self.blocks[-1]
                buf += data[start + len(buf) - a :]
            elif data:
                self.blocks.append((a, bytearray(data)))

    def place_pdus(self) -> None:
        """Each PDU's stream position: PDUs come out in stream order, and a PDU completed
        at frame F ends inside the new bytes of F or of a frame delivered at F (an
        out-of-order segment); failing that (bytes held while the protocol was detected), at
        the first match after the previous PDU among the bytes that had arrived by F."""
        anchors: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
        for g in self.frames:
            anchors[g].append(self.new[g])
            if self.delivered.get(g, g) != g:
                anchors[self.delivered[g]].append(self.new[g])
        order = sorted(self.frames)  # frame numbers, and the furthest byte seen by each
        reach = list(itertools.accumulate((self.new[f][1] for f in order), max))
        cursor = 0
        for frame, pdu in zip(self.pdu_frames, self.pdu_data, strict=True):
            at = None
            for a, b in sorted(anchors.get(frame, [])):
                at = self._find(pdu, max(cursor, a + 1 - len(pdu)), b)
                if at is not None:
                    break
            if at is None:
                i = bisect.bisect_right(order, frame)
                at = self._find(pdu, cursor, reach[i - 1] if i else 0)
            self.pdu_at.append(at)
            if at is not None:
                cursor = at + len(pdu)

    def _find(self, pdu: bytes, start: int, end: int) -> int | None:
        """First position >= start where ``pdu`` lies wholly in one block, ending <= end."""
        for b0, buf in self.blocks:
            b1 = b0 + len(buf)
            if b1 <= start or b0 >= end:
                continue
            pos = buf.find(pdu, max(start, b0) - b0, min(end, b1) - b0)
            if pos >= 0:
                return b0 + pos
        return None


class Otsight:
    """What otsight made of one capture, indexed for the frame-by-frame verdicts."""

    def __init__(self, path: Path, wire: dict[int, TsharkFrame]) -> None:
        d = decode(path, packets=True)
        t = self.tables = d.tables
        self.wire = wire
        cols = ["frame", "flow_id", "is_orig", "seq", "payload_len", "ip_proto", "src_port"]
        self.packets = {r["frame"]: r for r in t["packets"].select(cols).to_pylist()}
        self.framer = {
            r["flow_id"]: r["app_protocol"]
            for r in t["flows"].select(["flow_id", "app_protocol"]).to_pylist()
        }
        self.rows: dict[tuple[int, int, bool], set[str]] = collections.defaultdict(set)
        for name in registry().tables():
            for r in t[name].select(["frame", "flow_id", "is_orig"]).to_pylist():
                self.rows[(r["frame"], r["flow_id"], r["is_orig"])].add(name)
        self.dissector_weird: dict[tuple[int, int | None], list[str]] = collections.defaultdict(
            list
        )
        stream_weird = []
        cols = ["frame", "flow_id", "src_port", "name", "detail", "layer"]
        for w in t["weird"].select(cols).to_pylist():
            if w["layer"] == "tcp_stream":
                stream_weird.append(w)
            else:
                self.dissector_weird[(w["frame"], w["flow_id"])].append(w["name"])
        self.dirs: dict[tuple[int, bool], Direction] = collections.defaultdict(Direction)
        last: dict[tuple[int, bool], int] = {}
        base: dict[tuple[int, bool], int] = {}
        src_port: dict[tuple[int, bool], int] = {}
        for f, r in sorted(self.packets.items()):
            if r["ip_proto"] != 6 or r["flow_id"] is None or not r["payload_len"]:
                continue
            key = (r["flow_id"], r["is_orig"])
            if key not in base:
                base[key] = last[key] = r["seq"]
                src_port[key] = r["src_port"]
            seq = last[key] + _signed(r["seq"] - last[key])
            last[key] = seq
            dr = self.dirs[key]
            dr.frames.append(f)
            dr.ranges[f] = (seq - base[key], seq - base[key] + r["payload_len"])
        # every PDU of a framer gives one row in one of its tables (or a weird row)
        self.pdu_need: dict[tuple[int, int, bool], int] = collections.Counter()
        self.pdu_rows: dict[tuple[int, int, bool], int] = collections.Counter()
        for p in d.pdus:
            dr = self.dirs[(p.flow_id, p.is_orig)]
            dr.pdu_frames.append(p.frame)
            dr.pdu_data.append(p.data)
            if not _empty_cotp_data(p.data):
                self.pdu_need[(p.frame, p.flow_id, p.is_orig)] += 1
        for name in ONE_ROW_PER_PDU:
            for r in t[name].select(["frame", "flow_id", "is_orig"]).to_pylist():
                self.pdu_rows[(r["frame"], r["flow_id"], r["is_orig"])] += 1
        for dr in self.dirs.values():
            dr.prepare({f: wire[f].payload for f in dr.frames if f in wire})
            dr.place_pdus()
        for w in stream_weird:
            sides = [k for k in ((w["flow_id"], True), (w["flow_id"], False))
                     if src_port.get(k) == w["src_port"]]  # fmt: skip
            if not sides:
                continue
            key = sides[0]
            dr = self.dirs[key]
            seq_text, n_text = w["detail"].removeprefix("seq ").removesuffix(" bytes").split(", ")
            # unwrap relative to the payload frame nearest the row
            i = max(bisect.bisect_right(dr.frames, w["frame"]) - 1, 0)
            ref = dr.ranges[dr.frames[i]][0]
            at = ref + _signed(int(seq_text) - ((base[key] + ref) & M32))
            dr.weird.append((w["frame"], w["name"], at, int(n_text)))

    # -- verdicts ------------------------------------------------------------------------------
    def verdict(self, frame: int) -> Verdict:
        r = self.packets[frame]
        flow, orig = r["flow_id"], r["is_orig"]
        if self.wire[frame].transport == "udp":
            if got := self.rows.get((frame, flow, orig)):
                return Verdict("decoded", None, tuple(sorted(got)))
            names = self.dissector_weird.get((frame, flow))
            return Verdict("weird", names) if names else Verdict("silent")
        dr = self.dirs[(flow, orig)]
        lo, hi = dr.ranges[frame]
        a, b = dr.new[frame]
        if a > max(lo, 0):  # a retransmitted prefix: its first copies must not be silent
            firsts = [g for g in dr.frames if g < frame and _overlap(dr.ranges[g], (lo, a))]
            bad = [g for g in firsts if self.verdict(g).category == "silent"]
            if bad:
                return Verdict("silent", f"retransmission of silently dropped frames {bad}")
        if a >= b:
            return Verdict("retransmitted")
        tables: set[str] = set()
        pdus, holes, pos = [], [], a
        for k, at in enumerate(dr.pdu_at):
            if at is None or at + len(dr.pdu_data[k]) <= a or at >= b:
                continue
            pdus.append(dr.pdu_frames[k])
            if at > pos:
                holes.append((pos, at))
            pos = max(pos, at + len(dr.pdu_data[k]))
            if _empty_cotp_data(dr.pdu_data[k]):
                tables.add("(COTP DT without user data)")
                continue
            key = (dr.pdu_frames[k], flow, orig)
            names = self.dissector_weird.get((dr.pdu_frames[k], flow), [])
            if self.pdu_rows[key] + len(names) < self.pdu_need[key]:
                return Verdict(
                    "silent",
                    f"{self.pdu_need[key]} PDUs completed at frame {key[0]}, "
                    f"{self.pdu_rows[key]} rows, {len(names)} weird",
                )
            if key in self.rows:
                tables |= self.rows[key]
            else:
                return Verdict("weird", names)
        if pos < b:
            holes.append((pos, b))
        reasons = [self._weird_at(dr, h) for h in holes]
        if all(reasons):
            if pdus:
                return Verdict("decoded", pdus, tuple(sorted(tables)))
            return Verdict("weird", sorted({w for ws in reasons for w in ws}))
        if self.framer.get(flow, "") == "":
            return Verdict("not_ics")
        return Verdict("silent", f"bytes {holes} of the stream are in no PDU and no weird row")

    @staticmethod
    def _weird_at(dr: Direction, hole: tuple[int, int]) -> list[tuple[int, str, int, int]]:
        """Weird rows that account for a stretch of stream bytes in no PDU: rows naming
        these bytes, or the row after which reassembly skipped every byte until a valid
        header (no PDU starts between that row and the stretch)."""
        # a row's seq is where reassembly noticed the problem: the bytes it names lie after
        # it (gap, bad header) or before it (a PDU cut short; a bad header whose first bytes
        # were carried from earlier segments)
        rows = [w for w in dr.weird if _overlap((w[2] - w[3], w[2] + w[3]), hole)]
        if rows:
            return rows
        starts = [at for at in dr.pdu_at if at is not None]
        before = [w for w in dr.weird if w[1] in STREAM_DESYNC and w[2] <= hole[0]]
        if before:
            w = max(before, key=lambda w: w[2])
            if not any(w[2] <= s <= hole[0] for s in starts):
                return [w]
        return []


def _merge(intervals: list[tuple[int, int]], new: tuple[int, int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    a, b = new
    for x, y in intervals:
        if y < a or x > b:
            out.append((x, y))
        else:
            a, b = min(a, x), max(b, y)
    return sorted([*out, (a, b)])


def _empty_cotp_data(pdu: bytes) -> bool:
    """TPKT + COTP DT TPDU with no user data (S7comm-plus clients send one, without EOT,
    after each request): a transport PDU with nothing for a protocol table."""
    return len(pdu) >= 7 and pdu[0] == 3 and pdu[5] & 0xF0 == 0xF0 and 5 + pdu[4] == len(pdu)


def _signed(x: int) -> int:
    return ((x + 0x80000000) & M32) - 0x80000000


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# ---- the tests ------------------------------------------------------------------------------
def account(tshark: str, path: Path, decode_as: str = "") -> tuple[dict[int, Verdict], Otsight]:
    wire = tshark_frames(tshark, path, decode_as)
    ours = Otsight(path, wire)
    todo = [f for f, w in wire.items() if is_undissected(w.protocols)]
    return {f: ours.verdict(f) for f in sorted(todo)}, ours


@pytest.mark.corpus
@pytest.mark.tshark
@pytest.mark.parametrize("row", undissected_rows(), ids=lambda r: r["local_path"])
def test_undissected_frames_are_accounted_for(corpus, tshark, row):
    verdicts, ours = account(tshark, Path(corpus) / row["local_path"], row["decode_as"])
    by = collections.defaultdict(list)
    for f, v in verdicts.items():
        by[v.category].append(f)
    tables = sorted({t for v in verdicts.values() for t in v.tables})
    flagged = sum(ours.wire[f].retransmission for f in by["retransmitted"])
    print(
        f"\n{row['local_path']}: {len(verdicts)} frames undissected by tshark (manifest: "
        f"{row['undissected_ics_port_frames']})\n"
        f"  decoded {len(by['decoded']):5d}  {', '.join(tables)}\n"
        f"  weird   {len(by['weird']):5d}\n"
        f"  not ICS {len(by['not_ics']):5d}\n"
        f"  retrans {len(by['retransmitted']):5d}  (tshark flags {flagged})\n"
        f"  silent  {len(by['silent']):5d}"
    )
    silent = {f: verdicts[f].detail for f in by["silent"]}
    assert not silent, f"frames silently dropped: {silent}"


def _rows(ours: Otsight, table: str, frame: int) -> list[dict]:
    return [r for r in ours.tables[table].to_pylist() if r["frame"] == frame]


@pytest.mark.corpus
@pytest.mark.tshark
def test_known_frames_decoded_by_content(corpus, tshark):
    """Values read from the bytes of frames Wireshark leaves undissected."""
    # S7comm-plus (no dissector in Wireshark 4.0). Frame 9: 0300 00f3 | 02 f0 80 | 72 01 00e4
    # 31 0000 04ca 0000 0001 00000120: v1, 228 bytes, request, CreateObject, seq 1, session
    # 0x120; frame 11: 72 01 00c8 32 0000 04ca 0000 0001: its response
    v, ours = account(
        tshark, Path(corpus) / "s7comm/ICS-Security-Tools__S7-1511-opc-request-all-types.pcap"
    )
    assert (v[9].category, v[9].tables) == ("decoded", ("s7comm_plus",))
    (req,) = _rows(ours, "s7comm_plus", 9)
    assert (req["version"], req["data_length"], req["opcode_name"]) == (1, 228, "request")
    assert (req["function"], req["function_name"]) == (0x04CA, "create_object")
    assert (req["seq_num"], req["session_id"]) == (1, 0x120)
    (rsp,) = _rows(ours, "s7comm_plus", 11)
    assert (rsp["opcode_name"], rsp["seq_num"], rsp["request_frame"]) == ("response", 1, 9)
    # the empty COTP DT after each request (0300 0007 02 f0 00), retransmitted: accounted for
    assert v[13].category == "retransmitted"
    # S7comm-plus in a Modbus capture: frame 2 is 72 02 0012 33 (v2, 18 bytes, notification)
    v, ours = account(tshark, Path(corpus) / "modbus/ICS-Security-Tools__modbusBig.pcap")
    assert v[2].category == "decoded"
    (n,) = _rows(ours, "s7comm_plus", 2)
    assert (n["version"], n["data_length"], n["opcode_name"]) == (2, 18, "notification")
    # Modbus in segments tshark calls retransmissions: mb2 frame 1131 repeats request 0x57e9
    # and carries four new ones (57ea 0000 0006 ff 04 0001 0063: FC 4, address 1, 99 registers)
    v, ours = account(tshark, Path(corpus) / "mixed/ICS-Security-Tools__mb2.pcap")
    assert v[1131].category == "decoded" and ours.wire[1131].retransmission
    rows = _rows(ours, "modbus", 1131)
    assert [r["trans_id"] for r in rows] == [0x57EA, 0x57EB, 0x57EC, 0x57ED]
    assert (rows[0]["unit_id"], rows[0]["func_code"], rows[0]["start_address"]) == (255, 4, 1)
    assert rows[0]["quantity"] == 99
    # modbus_1 frame 29: request 0x0100 again, then 0x0200 (FC 3, address 0, 10 registers)
    v, ours = account(tshark, Path(corpus) / "modbus/testing_tools__modbus_1.pcap")
    assert v[29].category == "decoded" and v[30].category == "retransmitted"
    (r,) = _rows(ours, "modbus", 29)
    assert (r["trans_id"], r["func_code"], r["start_address"], r["quantity"]) == (0x200, 3, 0, 10)
    # each request once, however often it was retransmitted (frames 26-34)
    first = [
        x["trans_id"] for x in ours.tables["modbus"].to_pylist() if x["flow_id"] == r["flow_id"]
    ]
    assert first == [0x100, 0x200, 0x300, 0x400]


@pytest.mark.corpus
@pytest.mark.tshark
def test_known_frames_reported_as_weird(corpus, tshark):
    # DNP3-Read frame 6: the outstation sends one byte (00) and the connection is reset:
    # a PDU cut short, reported when the flow ends (frame 8)
    v, ours = account(tshark, Path(corpus) / "dnp3/ICS-Security-Tools__DNP3-Read.pcap")
    assert ours.wire[6].payload == b"\x00"
    assert v[6].category == "weird" and v[6].detail[0][:2] == (8, "pdu_incomplete")
    # IEC 104 frames 7 and 9 carry 00 | 01 68: not a start byte (0x68), a bad header
    v, ours = account(tshark, Path(corpus) / "iec104/ICS-Security-Tools__TestDissectIec104.pcap")
    assert (ours.wire[7].payload, ours.wire[9].payload) == (b"\x00", b"\x01\x68")
    for f in (7, 9):
        assert v[f].category == "weird" and v[f].detail[0][:2] == (9, "pdu_bad_header")


@pytest.mark.corpus
@pytest.mark.tshark
def test_non_ics_traffic_on_an_ics_port_is_not_that_protocol(corpus, tshark):
    """zeek's port-502 capture: one Modbus connection, then probes of port 502 (DCE/RPC bind,
    ONC RPC, TLS ClientHello, HTTP, a scanner's banner) that must not become Modbus."""
    v, ours = account(tshark, Path(corpus) / "modbus/zeek__modbus-and-non-modbus-p502.pcap")
    starts = {29: b"\x05\x00\x0b", 39: b"\x80\x00\x00\x28", 49: b"\x16\x03\x01",
              65: b"GET /", 70: b"MGLNDD_"}  # fmt: skip
    for f, head in starts.items():
        assert ours.wire[f].payload.startswith(head) and v[f].category == "not_ics", f
    assert len(v) == 11 and all(x.category == "not_ics" for x in v.values())
    probes = {ours.packets[f]["flow_id"] for f in v}
    modbus_flows = set(ours.tables["modbus"].column("flow_id").to_pylist())
    assert modbus_flows and not probes & modbus_flows
    assert all(ours.framer[f] == "" for f in probes)


@pytest.mark.corpus
@pytest.mark.tshark
def test_retransmissions_are_decoded_once(corpus, tshark):
    # EIP-FirmwareChange: frame 10597 (Identity Get_Attributes_All) is sent three more times
    v, ours = account(tshark, Path(corpus) / "enip/ICS-Security-Tools__EIP-FirmwareChange.pcap")
    again = [f for f in (10598, 10600) if ours.wire[f].payload == ours.wire[10597].payload]
    assert again == [10598, 10600]
    assert all(v[f].category == "retransmitted" for f in again)
    assert len(_rows(ours, "enip", 10597)) == 1
    assert not any(_rows(ours, t, f) for t in ("enip", "cip") for f in again)
