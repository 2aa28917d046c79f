"""TCP reassembly and PDU framing under hostile segmentation, holes and chunk boundaries.

* Corpus captures are re-cut by :mod:`tests.capture.resegment` (1-byte segments, splits
  inside headers, PDUs over 3+ segments, coalesced PDUs, retransmissions, overlaps, reordering
  within a window of 8) and must frame into byte-identical PDUs, completed at the frame that
  completes them in the construction, with no weird rows.
* A deliberate hole: PDUs before it are intact, one ``tcp_gap`` (and one ``pdu_incomplete``
  for the PDU it cut) is reported, and framing resumes where a segment starts with a valid
  header.
* The project's sample capture: Modbus PDUs equal the generator's ground truth exactly.
* Chunk and window boundaries: tiny chunks and windows give the same PDUs as the default.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import replace
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import pytest

from otsight.capture import _track
from otsight.capture.framing import FRAMERS, OPCUA
from otsight.capture.pcap import CaptureReader
from otsight.encode import modbus as mb
from otsight.encode.pcapfile import PcapWriter
from otsight.encode.tcp_session import TcpConversation
from otsight.testing.decode import decode
from tests.capture.resegment import group_by_direction, resegment
from tests.conftest import CORPUS

ALL_FRAMERS = {name for name, _, _ in FRAMERS.values()}

# (capture, framers it must exercise). Chosen for many PDUs, several flows and every framer.
CASES = [
    ("modbus/ICS-Security-Tools__modbusBig.pcap", {"modbus", "tpkt"}),
    ("modbus/ICS-Security-Tools__modbus_test.pcap", {"modbus"}),
    ("modbus/ICS-Security-Tools__modbus_test_2.pcap", {"modbus"}),
    ("modbus/pcap-share__modbus.pcapng", {"modbus"}),
    ("modbus/testing_tools__modbus_1.pcap", {"modbus"}),
    ("enip/ICS-Security-Tools__EthernetIP-CIP.pcap", {"enip"}),
    ("enip/ICS-Security-Tools__EIP-ControlProtocolChangeAttempt.pcap", {"enip"}),
    ("enip/testing_tools__cip.pcap", {"enip"}),
    ("s7comm/ICS-Security-Tools__s7comm_varservice_libnodavedemo_bench.pcap", {"tpkt"}),
    ("s7comm/testing_tools__s7_all.pcap", {"tpkt"}),
    ("s7comm/ICS-Security-Tools__step7_s300_readDiagData.pcapng", {"tpkt"}),
    ("iec61850/ICS-Security-Tools__Sample_File_MMS_and_GOOSE.pcap", {"tpkt"}),
    ("dnp3/ICS-Security-Tools__dnp3_test_data_part1.pcap", {"dnp3"}),
    ("dnp3/icsnpp-dnp3__dnp3_example.pcap", {"dnp3"}),
    ("dnp3/suricata-verify__tests_dnp3_dnp3-eve__input.pcap", {"dnp3"}),
    ("iec104/ICS-Security-Tools__JavaRMI_and_IEC_Misc.pcap", {"iec104"}),
    ("iec104/ICS-Security-Tools__090813_diverse.pcap", {"iec104"}),
    ("iec104/epf-parameter-screening__iec104.pcap", {"iec104"}),
    ("opcua/icsnpp-opcua-binary__open62541_read_service_test_data.pcap", {"opcua"}),
    ("opcua/icsnpp-opcua-binary__opcua_with-gap_with-handshake.pcap", {"opcua"}),
]
# The corpus's only long FINS/TCP stream has 16 PDUs, too few for CASES: it is re-cut
# repeated (real PDUs, one flow) by test_recut_fins_tcp_stream.
FINS_TCP_STREAM = "fins/icsnpp-omron-fins__omron_fins_tcp_commands_responses.pcap"
SEEDS = [1, 2, 3]
MAX_PDUS = 2000  # per capture: the first PDUs in capture order (keeps the suite fast)
TRICKS = (
    "one_byte",
    "header_split",
    "pdu_3plus",
    "coalesced",
    "overlap",
    "retransmission",
    "reordered",
)


def _decode(path: Path, **kw):
    return decode(path, dissect=False, **kw)


@cache
def _original(rel: str) -> tuple:
    return tuple(_decode(CORPUS / rel).pdus)


def _weird(d) -> list[tuple[int, str, str]]:
    t = d.tables["weird"]
    return list(
        zip(
            t.column("frame").to_pylist(),
            t.column("name").to_pylist(),
            t.column("detail").to_pylist(),
            strict=True,
        )
    )


def _check_rebuilt(d, rb, source_pdus) -> None:
    """The decoded re-cut capture frames exactly what the construction says."""
    assert d.packets == rb.frames and not d.issues
    assert _weird(d) == [], "the re-cut capture is clean TCP: no weird rows"
    got = group_by_direction(d.pdus)
    assert sorted(got) == sorted(rb.streams)
    for key, expected in rb.streams.items():
        actual = got[key]
        assert len(actual) == len(expected), key
        for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert (a.data, a.protocol) == (e.data, e.protocol), (key, k)
            assert (a.frame, a.first_frame) == (e.frame, e.first_frame), (key, k)
    # independently of the construction's bookkeeping: same bytes, same order, per direction
    original = group_by_direction(source_pdus)
    assert {k: [p.data for p in v] for k, v in got.items()} == {
        k: [p.data for p in v] for k, v in original.items()
    }
    flows = d.tables["flows"]
    assert sum(flows.column("gaps").to_pylist()) == 0
    assert sum(flows.column("gap_bytes").to_pylist()) == 0
    assert sum(flows.column("pdus").to_pylist()) == len(d.pdus)
    if rb.stats["retransmission"] or rb.stats["overlap"]:
        assert sum(flows.column("retransmissions").to_pylist()) > 0


# --------------------------------------------------------------------------- corpus re-cut


def test_framer_maxima_fit_the_reassembly_slot():
    assert max(largest for _, _, largest in FRAMERS.values()) <= _track.BIG


def test_cases_cover_every_framer(corpus):
    seen = set()
    for rel, framers in CASES:
        protocols = {p.protocol for p in _original(rel)[:MAX_PDUS]}
        assert framers <= protocols, (rel, protocols)
        seen |= protocols
    seen |= {p.protocol for p in _original(FINS_TCP_STREAM)}
    assert seen >= ALL_FRAMERS
    assert len(CASES) >= 15


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("rel", [c[0] for c in CASES])
def test_recut_corpus_capture_frames_identically(corpus, tmp_path, rel, seed):
    pdus = list(_original(rel)[:MAX_PDUS])
    assert len(pdus) >= 40, "pick captures with many PDUs"
    rb = resegment(pdus, tmp_path / "recut.pcap", seed)
    for trick in TRICKS:
        assert rb.stats[trick] > 0, f"construction did not exercise {trick}: {rb.stats}"
    assert 1 <= rb.stats["max_ooo"] < 16
    _check_rebuilt(_decode(rb.path), rb, pdus)


@pytest.mark.parametrize("seed", SEEDS)
def test_recut_fins_tcp_stream(corpus, tmp_path, seed):
    stream = [p for p in _original(FINS_TCP_STREAM) if p.protocol == "fins"]
    assert len(stream) == 16
    # the same requests and answers three times over, in one flow (distinct objects: the
    # construction tells PDUs apart by identity)
    pdus = [replace(p) for _ in range(3) for p in stream]
    rb = resegment(pdus, tmp_path / "recut.pcap", seed)
    for trick in TRICKS:
        assert rb.stats[trick] > 0, f"construction did not exercise {trick}: {rb.stats}"
    _check_rebuilt(_decode(rb.path), rb, pdus)


def test_recut_without_tricks_is_one_segment_per_pdu_burst(corpus, tmp_path):
    """Control: the helper itself, with plain segmentation, round-trips too."""
    pdus = list(_original(CASES[0][0])[:MAX_PDUS])
    rb = resegment(pdus, tmp_path / "plain.pcap", seed=0, tricks=False)
    assert rb.stats["max_ooo"] == 0 and rb.stats["retransmission"] == 0
    _check_rebuilt(_decode(rb.path), rb, pdus)


# --------------------------------------------------------------------------- synthetic PDUs


def _fake(data: bytes, protocol: str, orig: bool, flow: int = 1, port: int = 40000):
    ports = {"tpkt": 102, "enip": 44818, "opcua": 4840}
    client, server = ("10.9.0.1", port), ("10.9.0.2", ports[protocol])
    src, dst = (client, server) if orig else (server, client)
    return SimpleNamespace(
        data=data, protocol=protocol, is_orig=orig, flow_id=flow, src=src, dst=dst
    )


def _tpkt(n: int, fill: int) -> bytes:
    body = bytes([2, 0xF0, 0x80]) + bytes([fill & 0xFF]) * (n - 7)
    return struct.pack("!BBH", 3, 0, n) + body


def _enip(n: int, fill: int) -> bytes:
    return struct.pack("<HHI4s8sI", 0x6F, n - 24, 0x1234, b"\0" * 4, b"ctx12345", 0) + (
        bytes([fill & 0xFF]) * (n - 24)
    )


def _opcua(n: int, fill: int) -> bytes:
    return b"MSGF" + struct.pack("<I", n) + bytes([fill & 0xFF]) * (n - 8)


@pytest.mark.parametrize("seed", [7, 8])
def test_recut_large_pdus_up_to_the_framer_maximum(tmp_path, seed):
    """PDUs far above one segment (and the small reassembly slot), up to 64 KiB."""
    pdus = []
    sizes = [7, 2049, 65535, 1500, 40000, 300, 65535, 8]
    for k, n in enumerate(sizes):
        # OPC UA chunks up to the largest the reassembly slot holds
        n_ua = FRAMERS[OPCUA][2] if n == 65535 else max(n, 8)
        pdus.append(_fake(_opcua(n_ua, k), "opcua", k % 2 == 1, flow=3, port=40003))
        pdus.append(_fake(_tpkt(max(n, 7), k), "tpkt", k % 3 != 1, flow=1, port=40001))
        pdus.append(
            _fake(
                _enip(max(n, 24) + 24 if n > 65000 else max(n, 24), k),
                "enip",
                k % 2 == 0,
                flow=2,
                port=40002,
            )
        )
    rb = resegment(pdus, tmp_path / "big.pcap", seed)
    _check_rebuilt(_decode(rb.path), rb, pdus)


# --------------------------------------------------------------------------- holes


def _valid_header(protocol: str, b: bytes) -> bool:
    """Independent restatement of 'a PDU header could start here' for the resyncing framers."""
    if protocol == "modbus":
        return len(b) < 6 or (b[2:4] == b"\0\0" and 2 <= struct.unpack("!H", b[4:6])[0] <= 254)
    if protocol == "tpkt":
        return len(b) < 4 or (b[:2] == b"\3\0" and struct.unpack("!H", b[2:4])[0] >= 7)
    if protocol == "dnp3":
        return len(b) < 3 or (b[:2] == b"\x05\x64" and b[2] >= 5)
    if protocol == "iec104":
        return len(b) < 2 or (b[0] == 0x68 and b[1] >= 4)
    if protocol == "opcua":
        types = (b"HEL", b"ACK", b"ERR", b"RHE", b"OPN", b"MSG", b"CLO")
        return len(b) < 8 or (b[:3] in types and b[3:4] in (b"F", b"C", b"A"))
    return True  # enip: any four bytes give a length


def _hole_capture(path, pdus: list[bytes], protocol: str, ends, k: int, tail_joins: bool = False):
    """One direction, one PDU per segment, except PDU ``k``: its first 3 bytes, then a dropped
    segment, then the rest (joined with PDU k+1 when ``tail_joins``). Returns bookkeeping."""
    client, server = ends
    isn = 0xFFFFFF00  # the stream wraps the 32-bit sequence space too
    conv = TcpConversation(
        "02:00:00:00:00:01",
        client[0],
        client[1],
        "02:00:00:00:00:02",
        server[0],
        server[1],
        isn,
        77,
    )
    frames = list(conv.handshake())
    pdu = pdus[k]
    # drop the middle; the tail must not look like a header, or the framer would (rightly)
    # resynchronise on it
    # (no such cut exists for EtherNet/IP, whose header has no invalid form: cut in the middle)
    cut = next(
        (c for c in range(4, len(pdu)) if not _valid_header(protocol, pdu[c:])), len(pdu) // 2
    )
    off = sum(len(p) for p in pdus[:k])
    carried = {}  # pdu index -> frame carrying it (whole PDUs only)
    for i, p in enumerate(pdus[:k]):
        frames.append(conv.segment(True, p, seq_offset=sum(len(q) for q in pdus[:i])))
        carried[i] = len(frames)
    frames.append(conv.segment(True, pdu[:3], seq_offset=off))
    tail_frame = len(frames) + 1
    tail = pdu[cut:] + (pdus[k + 1] if tail_joins else b"")
    frames.append(conv.segment(True, tail, seq_offset=off + cut))
    pos = off + len(pdu) + (len(pdus[k + 1]) if tail_joins else 0)
    for i in range(k + 2 if tail_joins else k + 1, len(pdus)):
        frames.append(conv.segment(True, pdus[i], seq_offset=pos))
        carried[i] = len(frames)
        pos += len(pdus[i])
    frames += conv.close(True)[1:2]  # the server's FIN only: the client's would be data-less
    with PcapWriter(path) as w:
        for i, f in enumerate(frames):
            w.write(1_700_000_000_000_000_000 + i * 1_000_000, f)
    hole_seq = (isn + 1 + off + 3) & 0xFFFFFFFF
    return SimpleNamespace(
        carried=carried,
        tail_frame=tail_frame,
        hole_seq=hole_seq,
        hole_len=cut - 3,
        frames=len(frames),
    )


def _modbus_stream(n: int) -> list[bytes]:
    out = []
    for t in range(n):
        if t % 3 == 0:
            out.append(mb.read_registers_response(t, 1, 3, [0x1111 * (1 + t % 9)] * (5 + t % 7)))
        elif t % 3 == 1:
            out.append(mb.write_multiple_registers_request(t, 1, 0x200 + t, [0x4242, t]))
        else:
            out.append(mb.read_request(t, 1, 3, 0x300 + t, 10))
    return out


def _check_hole(
    d, pdus: list[bytes], k: int, info, overflow: bool, protocol: str, joined: bool = False
) -> None:
    got = d.pdus
    assert all(p.protocol == protocol and p.is_orig for p in got)
    # the PDU cut by the hole is lost; so is the next one when it shares the tail's segment,
    # because framing resumes only where a segment starts with a valid header
    lost = {k, k + 1} if joined else {k}
    survivors = [i for i in range(len(pdus)) if i not in lost]
    assert [p.data for p in got] == [pdus[i] for i in survivors]
    # before the hole: each PDU completes in the frame carrying it
    for p, i in zip(got, survivors, strict=False):
        if i < k:
            assert (p.frame, p.first_frame) == (info.carried[i], info.carried[i])
    after = [(p, i) for p, i in zip(got, survivors, strict=True) if i > k]
    # Whether the gap is forced by a full out-of-order buffer (the 17th segment) or declared
    # when the flow ends with the hole open, each buffered segment's PDUs keep the frame
    # that carried them, and the gap is reported at the first segment after the hole.
    del overflow
    gap_frame = info.tail_frame
    for p, i in after:
        assert (p.frame, p.first_frame) == (info.carried[i], info.carried[i]), i
    assert sorted(_weird(d)) == sorted(
        [
            (gap_frame, "tcp_gap", f"seq {info.hole_seq}, {info.hole_len} bytes"),
            (gap_frame, "pdu_incomplete", f"seq {info.hole_seq}, 3 bytes"),
        ]
    )
    flows = d.tables["flows"]
    assert flows.column("gaps").to_pylist() == [1]
    assert flows.column("gap_bytes").to_pylist() == [info.hole_len]


@pytest.mark.parametrize("mode", ["overflow", "at_end", "tail_joins"])
def test_hole_keeps_earlier_pdus_and_resyncs_at_next_segment_header(tmp_path, mode):
    pdus = _modbus_stream(40 if mode != "at_end" else 12)
    k = 6
    ends = (("192.168.7.10", 50123), ("192.168.7.20", 502))
    info = _hole_capture(
        tmp_path / "hole.pcap", pdus, "modbus", ends, k, tail_joins=mode == "tail_joins"
    )
    d = _decode(tmp_path / "hole.pcap")
    assert d.packets == info.frames
    _check_hole(d, pdus, k, info, mode != "at_end", "modbus", joined=mode == "tail_joins")


HOLE_CASES = [
    ("modbus/ICS-Security-Tools__modbus_test.pcap", "modbus"),
    ("s7comm/ICS-Security-Tools__s7comm_clean.pcap", "tpkt"),
    ("dnp3/icsnpp-dnp3__dnp3_example.pcap", "dnp3"),
    ("iec104/ICS-Security-Tools__JavaRMI_and_IEC_Misc.pcap", "iec104"),
    ("enip/ICS-Security-Tools__EthernetIP-CIP.pcap", "enip"),
    ("opcua/icsnpp-opcua-binary__open62541_read_service_test_data.pcap", "opcua"),
]


@pytest.mark.parametrize("mode", ["overflow", "at_end"])
@pytest.mark.parametrize(("rel", "protocol"), HOLE_CASES)
def test_hole_in_corpus_stream_every_framer(corpus, tmp_path, rel, protocol, mode):
    groups = group_by_direction(_original(rel))
    key = max(
        (k for k in groups if groups[k][0].protocol == protocol), key=lambda k: len(groups[k])
    )
    pdus = [p.data for p in groups[key]][: 40 if mode == "overflow" else 14]
    assert len(pdus) >= 14
    client, server, _, orig = key
    ends = (client, server) if orig else (server, client)  # the sender plays the client
    k = 5
    info = _hole_capture(tmp_path / "hole.pcap", pdus, protocol, ends, k)
    d = _decode(tmp_path / "hole.pcap")
    _check_hole(d, pdus, k, info, mode == "overflow", protocol)


# --------------------------------------------------------------------------- sample capture


@pytest.mark.parametrize("fmt", ["pcap", "pcapng", "gz"])
def test_sample_modbus_pdus_equal_ground_truth(samples, fmt):
    truth = samples["truth"]
    d = _decode(samples[fmt])
    assert not d.issues
    assert not [w for w in _weird(d) if w[1].startswith(("tcp_", "pdu_"))]
    got = [p for p in d.pdus if p.protocol == "modbus"]
    assert len(got) == len(truth.modbus) > 300
    for p, t in zip(got, truth.modbus, strict=True):
        assert p.data == t.adu
        assert p.frame == t.frame
        assert (p.src, p.dst) == ((t.src_ip, t.src_port), (t.dst_ip, t.dst_port))
        assert p.is_orig == t.is_request
        assert p.first_frame <= p.frame
    by_frame = Counter(p.frame for p in got)
    ev = truth.events
    split_first, split_last = ev["split_pdu"]
    (split,) = [p for p in got if p.frame == split_last]
    assert split.first_frame == split_first < split.frame
    (coalesced,) = ev["coalesced_pdus"]
    assert by_frame[coalesced] == 2
    assert all(p.first_frame == coalesced for p in got if p.frame == coalesced)
    (retx,) = ev["retransmission"]
    assert by_frame[retx] == 0  # the retransmitted response was framed once, before it
    early, late = ev["out_of_order"]  # the second half was captured first
    assert by_frame[early] == 0
    (ooo,) = [p for p in got if p.frame == late]
    assert ooo.first_frame == late and len(ooo.data) > 64
    # every PDU framed once: no duplicates from the retransmission or the reordering
    assert len({(p.flow_id, p.is_orig, p.frame, p.data) for p in got}) == len(got)


def test_sample_recut_frames_identically(samples, tmp_path):
    """The re-cut test without the corpus: the sample's own PDUs."""
    pdus = _decode(samples["pcap"]).pdus
    for seed in (11, 12, 13):
        rb = resegment(pdus, tmp_path / f"sample-{seed}.pcap", seed)
        _check_rebuilt(_decode(rb.path), rb, pdus)


# --------------------------------------------------------------------------- chunk boundaries

READERS = [
    {"chunk_records": 7, "window_bytes": 4096},  # one mmap granule
    {"chunk_records": 7, "window_bytes": 1000},  # below the mmap granularity
    {"chunk_records": 1, "window_bytes": 1},
    {"chunk_records": 5, "window_bytes": 70_000},  # not a multiple of the granularity
]


def _same_decode(path: Path, reader_kw: dict) -> None:
    counts = [c.count for c in CaptureReader(path, **reader_kw).chunks()]
    assert max(counts) <= reader_kw["chunk_records"]
    assert len(counts) >= -(-sum(counts) // reader_kw["chunk_records"])
    base = _decode(path)
    tiny = _decode(path, reader=CaptureReader(path, **reader_kw))
    assert tiny.packets == base.packets and tiny.issues == base.issues
    assert len(tiny.pdus) == len(base.pdus)
    assert tiny.pdus == base.pdus  # bytes, frames, flow ids, directions, order
    assert sorted(_weird(tiny)) == sorted(_weird(base))


@pytest.mark.parametrize("reader_kw", READERS, ids=lambda kw: "-".join(map(str, kw.values())))
@pytest.mark.parametrize("fmt", ["pcap", "pcapng", "gz"])
def test_tiny_chunks_and_windows_sample(samples, fmt, reader_kw):
    _same_decode(samples[fmt], reader_kw)


def test_tiny_chunks_recut_capture(samples, tmp_path):
    """PDUs in carry, out-of-order buffers and retransmissions straddle chunk boundaries."""
    rb = resegment(_decode(samples["pcap"]).pdus, tmp_path / "recut.pcap", seed=5)
    for kw in READERS[:2]:
        _same_decode(rb.path, kw)
        tiny = _decode(rb.path, reader=CaptureReader(rb.path, **kw))
        assert sum(len(v) for v in rb.streams.values()) == len(tiny.pdus)


@pytest.mark.parametrize(
    "rel",
    [
        "s7comm/ICS-Security-Tools__step7_s300_readDiagData.pcapng",
        "s7comm/ICS-Security-Tools__wincc_s400_production.pcapng",  # has real gaps
        "enip/testing_tools__cip.pcap",  # has real gaps
        "dnp3/ICS-Security-Tools__dnp3_test_data_part1.pcap",
        "iec104/ICS-Security-Tools__TestDissectIec104.pcap",  # bad headers
        "modbus/ICS-Security-Tools__modbus_test.pcap",
    ],
)
def test_tiny_chunks_and_windows_corpus(corpus, rel):
    _same_decode(corpus / rel, READERS[0])
    _same_decode(corpus / rel, READERS[1])


def test_flow_idle_expiry_does_not_depend_on_chunk_size(tmp_path):
    """Modbus flow A idles two hours (idle timeout: one hour) while flow B sends a packet."""
    path = tmp_path / "idle.pcap"
    a = TcpConversation(
        "02:00:00:00:00:01", "10.1.1.1", 40000, "02:00:00:00:00:02", "10.1.1.2", 502, 1000, 2000
    )
    b = TcpConversation(
        "02:00:00:00:00:03", "10.1.1.3", 40001, "02:00:00:00:00:02", "10.1.1.2", 502, 3000, 4000
    )
    t = 1_700_000_000_000_000_000
    hour = 3600 * 10**9
    with PcapWriter(path) as w:
        for f in a.handshake():
            w.write(t, f)
        for f in a.send(True, mb.read_request(1, 1, 3, 0, 2)):
            w.write(t + 1_000_000, f)
        for f in b.send(True, mb.read_request(7, 1, 3, 0, 2)):
            w.write(t + 2 * hour, f)
        for f in a.send(True, mb.read_request(2, 1, 3, 0, 2)):
            w.write(t + 2 * hour + 1_000_000, f)
    base = _decode(path)
    tiny = _decode(path, reader=CaptureReader(path, chunk_records=1))
    assert len(base.pdus) == len(tiny.pdus) == 3
    assert [p.flow_id for p in base.pdus] == [p.flow_id for p in tiny.pdus]
    assert base.tables["flows"].num_rows == tiny.tables["flows"].num_rows
