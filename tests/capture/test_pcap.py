"""Capture reading: every corpus file, every format variant, and damaged input."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from otsight.capture.pcap import CaptureError, CaptureReader
from otsight.encode import packets as pk
from otsight.encode.pcapfile import PcapngWriter, PcapWriter
from otsight.testing.decode import decode
from tests.conftest import corpus_captures


def _count(path: Path, **kw) -> tuple[int, CaptureReader, np.ndarray]:
    reader = CaptureReader(path, **kw)
    ts = [c.ts.copy() for c in reader.chunks()]
    return reader.packets, reader, np.concatenate(ts) if ts else np.zeros(0, np.int64)


def test_every_corpus_capture_opens_with_capinfos_count(corpus):
    rows = corpus_captures()
    assert len(rows) > 600
    wrong = []
    for row in rows:
        path = corpus / row["local_path"]
        d = decode(path)  # the whole pipeline, not only the record index
        if d.packets != int(row["packets"]):
            wrong.append((row["local_path"], d.packets, row["packets"]))
    assert not wrong, f"packet counts differ from capinfos: {wrong[:10]}"


@pytest.mark.parametrize("nanosecond", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
def test_classic_pcap_variants(tmp_path, nanosecond, big_endian):
    path = tmp_path / "v.pcap"
    stamps = [1_700_000_000_123_456_789 + k * 1_001_001 for k in range(50)]
    frame = pk.ethernet(
        "00:00:00:00:00:02",
        "00:00:00:00:00:01",
        pk.ETH_IPV4,
        pk.ipv4("10.0.0.1", "10.0.0.2", 17, pk.udp("10.0.0.1", "10.0.0.2", 1, 2, b"x")),
    )
    with PcapWriter(path, nanosecond=nanosecond, big_endian=big_endian) as w:
        for t in stamps:
            w.write(t, frame)
    n, reader, ts = _count(path)
    assert n == 50 and not reader.issues
    expect = np.array(stamps) if nanosecond else np.array(stamps) // 1000 * 1000
    assert (ts == expect).all()


def test_pcapng_interfaces_resolutions_and_unknown_blocks(tmp_path):
    path = tmp_path / "multi.pcapng"
    eth = pk.ethernet(
        "00:00:00:00:00:02",
        "00:00:00:00:00:01",
        pk.ETH_IPV4,
        pk.ipv4("10.0.0.1", "10.0.0.2", 17, pk.udp("10.0.0.1", "10.0.0.2", 1, 2, b"x")),
    )
    raw = pk.ipv4("10.0.0.3", "10.0.0.4", 17, pk.udp("10.0.0.3", "10.0.0.4", 3, 4, b"yy"))
    t0 = 1_700_000_000_000_000_000
    with PcapngWriter(path) as w:
        a = w.add_interface(1, tsresol_exp10=6)
        b = w.add_interface(101, tsresol_exp10=9)
        c = w.add_interface(1, tsresol_exp2=20)
        w.write(a, t0 + 1_000, eth)
        w.write_custom_block(0x80000A5A, b"opaque local block")
        w.write(b, t0 + 2_345, raw)
        w.write(c, t0 + 3_000_000, eth)
    d = decode(path, packets=True)
    assert d.packets == 3 and d.linktypes == {1, 101}
    table = d.packet_table.select(["linktype", "src_ip"]).to_pydict()
    assert table["linktype"] == [1, 101, 1]
    assert table["src_ip"] == ["10.0.0.1", "10.0.0.3", "10.0.0.1"]
    ts = d.packet_table.column("ts").cast(pa.int64()).to_pylist()
    assert ts[0] == t0 + 1_000 and ts[1] == t0 + 2_345
    assert abs(ts[2] - (t0 + 3_000_000)) < 1_000  # 2^-20 s ticks


def test_simple_packet_blocks_take_the_previous_time(tmp_path):
    path = tmp_path / "spb.pcapng"
    frame = pk.ethernet(
        "00:00:00:00:00:02",
        "00:00:00:00:00:01",
        pk.ETH_IPV4,
        pk.ipv4("10.0.0.1", "10.0.0.2", 17, pk.udp("10.0.0.1", "10.0.0.2", 1, 2, b"x")),
    )
    with PcapngWriter(path) as w:
        w.add_interface(1)
        w.write(0, 5_000_000_000, frame)
        w.write(0, 0, frame, kind="spb")
    n, reader, ts = _count(path)
    assert n == 2 and list(ts) == [5_000_000_000, 5_000_000_000]


def test_gzip_and_plain_agree(samples):
    plain, _, ts1 = _count(samples["pcap"])
    zipped, reader, ts2 = _count(samples["gz"])
    assert reader.compressed and plain == zipped == samples["truth"].packet_count
    assert (ts1 == ts2).all()


def test_tiny_windows_and_chunks_see_every_record(samples):
    full, _, ts = _count(samples["pcapng"])
    small, reader, ts_small = _count(samples["pcapng"], chunk_records=5, window_bytes=4096)
    assert small == full and (ts == ts_small).all() and not reader.issues


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_a_window_end_does_not_cut_a_short_chunk(samples, fmt):
    # Windows of about a chunk and a half: a chunk that continued in its window would end
    # at the window's end with the records left there; each full chunk starts a window
    # of its own instead, so only the last chunk is short.
    path = samples[fmt]
    records = samples["truth"].packet_count
    per_record = path.stat().st_size // records
    reader = CaptureReader(path, chunk_records=50, window_bytes=8192 + 75 * per_record)
    counts = [c.count for c in reader.chunks()]
    assert sum(counts) == records > 200 and not reader.issues
    assert all(n == 50 for n in counts[:-1]) and 0 < counts[-1] <= 50


# ---- damaged input -------------------------------------------------------------------------
def test_cut_mid_record_keeps_every_complete_record(samples, tmp_path):
    data = samples["pcap"].read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])
    n, reader, _ = _count(cut)
    assert n == samples["truth"].packet_count - 1
    [issue] = reader.issues
    assert "cut mid-record" in issue.message and 0 < issue.offset < len(data)


def test_cut_pcapng_and_gzip(samples, tmp_path):
    data = samples["pcapng"].read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[:-10])
    n, reader, _ = _count(cut)
    assert n == samples["truth"].packet_count - 1 and "cut mid-block" in reader.issues[0].message
    gz = gzip.compress(samples["pcap"].read_bytes())
    cutgz = tmp_path / "cut.pcap.gz"
    cutgz.write_bytes(gz[: len(gz) // 2])
    n, reader, _ = _count(cutgz)
    assert 0 < n < samples["truth"].packet_count
    assert any("gzip" in i.message for i in reader.issues)


def test_corrupt_record_length_stops_with_offset(samples, tmp_path):
    data = bytearray(samples["pcap"].read_bytes())
    # the 11th record header: walk the records to find it
    pos = 24
    for _ in range(10):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    struct.pack_into("<I", data, pos + 8, 0x7FFFFFFF)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(bytes(data))
    n, reader, _ = _count(bad)
    assert n == 10
    assert reader.issues[0].offset == pos and "corrupt" in reader.issues[0].message


@pytest.mark.parametrize("content", [b"", b"hello, this is not a capture\n", b"\x1f\x8b\x08junk"])
def test_not_a_capture_raises_capture_error(tmp_path, content):
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError):
        _count(path)
