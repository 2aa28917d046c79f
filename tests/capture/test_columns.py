"""The small column kernels of the foundation tables against their naive twins."""

from __future__ import annotations

import numpy as np

from otsight.capture._text import two_ints_text
from otsight.capture.packet_scan import scan_packets
from otsight.dissect import _l2l4 as L


def test_two_ints_text_matches_f_strings():
    big = np.iinfo(np.int64)
    a = np.array([0, 7, -1, 10, 99, 100, big.max, big.min, 4294967295], np.int64)
    b = a[::-1].copy()
    got = two_ints_text(a, b, "seq ", ", ", " bytes").to_pylist()
    assert got == [f"seq {x}, {y} bytes" for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    assert two_ints_text(a[:0], b[:0], "x", "y", "z").to_pylist() == []


def test_scan_packets_matches_column_reads():
    rng = np.random.default_rng(1)
    cols = rng.integers(0, 3, size=(1000, L.NCOLS)).astype(np.int64)
    cols[:, L.ETHERTYPE] = rng.choice([L.ETH_IPV4, L.ETH_ARP, L.ETH_LLDP, -1, 0x8892], 1000)
    cols[:, L.PROTO] = rng.choice([6, 17, 1], 1000)
    et, bad, arp, lldp, udp, udp_len, non_ip = scan_packets(cols)
    is_ip = (cols[:, L.ETHERTYPE] == L.ETH_IPV4) | (cols[:, L.ETHERTYPE] == L.ETH_IPV6)
    assert np.array_equal(non_ip, np.flatnonzero(~is_ip))
    assert np.array_equal(et, cols[:, L.ETHERTYPE])
    assert np.array_equal(bad, np.flatnonzero(cols[:, L.STATUS] != 0))
    assert np.array_equal(arp, np.flatnonzero(cols[:, L.ETHERTYPE] == L.ETH_ARP))
    assert np.array_equal(lldp, np.flatnonzero(cols[:, L.ETHERTYPE] == L.ETH_LLDP))
    is_udp = (cols[:, L.PROTO] == 17) & (cols[:, L.IPVER] != 0)
    assert 0 < is_udp.sum() < 1000
    assert np.array_equal(udp, np.flatnonzero(is_udp))
    assert np.array_equal(udp_len, cols[is_udp, L.PAY_LEN])
    assert all(x.shape == (0,) for x in scan_packets(cols[:0]))


def test_pdu_fields_gathered_from_the_chunk_columns_match_the_matrix_rows():
    """Dissectors read their PDUs' fields from the columns the ``pdus`` table was made of;
    they must be those of the matrix rows, field by field and type by type."""
    from otsight.capture import _track as T
    from otsight.capture.pdu_columns import gather_pdu_columns, pdu_columns

    rng = np.random.default_rng(2)
    P = rng.integers(0, 1 << 40, (5000, T.NPC)).astype(np.int64)
    P[:, T.P_SPORT] &= 0xFFFF
    P[:, T.P_DPORT] &= 0xFFFF
    P[:, T.P_FRAMER] &= 7
    P[:, T.P_ORIG] &= 1
    idx = np.flatnonzero(P[:, T.P_FRAMER] == 3)
    want = pdu_columns(P, idx, addresses=False)
    got = gather_pdu_columns(pdu_columns(P), idx)
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k].dtype == v.dtype and np.array_equal(got[k], v), k


def test_the_decode_scans_its_rows_as_scan_packets_does(tmp_path):
    """The pipeline takes the packet lists from the decode pass itself; they must be what a
    separate scan of the decoded rows finds (generated plant capture: ARP, LLDP, UDP,
    several ethertypes, and rows cut short to give decode problems)."""
    from otsight.capture.pcap import CaptureReader
    from otsight.testing.samples import write_sample_capture

    path = tmp_path / "plant.pcap"
    write_sample_capture(path, seed=3)
    seen = 0
    for chunk in CaptureReader(path).chunks():
        caplen = chunk.caplen.copy()
        caplen[::7] = np.minimum(caplen[::7], 30)  # IPv4 headers cut: decode problems
        cols, addrs, scan = L.decode_l2l4_scanned(chunk.buf, chunk.offset, caplen, chunk.linktype)
        want = scan_packets(cols)
        assert len(scan) == len(want)
        for got, expect in zip(scan, want, strict=True):
            assert np.array_equal(got, expect)
        assert all(part.shape[0] for part in scan)  # every list has rows
        seen += cols.shape[0]
    assert seen > 400
