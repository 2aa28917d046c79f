"""Sampled Values: field-exact against Wireshark over every IEC 61850 corpus capture, one row
per ASDU; malformed frames become weird rows."""

from __future__ import annotations

import struct
from operator import itemgetter

from otsight.encode import packets as pk
from otsight.encode.pcapfile import PcapWriter
from otsight.testing.decode import decode
from tests.dissect.tshark_diff import (
    Comparison,
    as_int,
    decoded_corpus,
    first,
    ours_by_frame,
    tshark_pdus,
)

COLUMNS = [
    "vlan",
    "vlan_priority",
    "appid",
    "length",
    "no_asdu",
    "asdu_index",
    "sv_id",
    "dat_set",
    "smp_cnt",
    "conf_rev",
    "smp_synch",
    "smp_rate",
    "smp_mod",
    "sample_bytes",
]


def _asdus(p):
    sv = p["sv"]
    pdu = sv.get("sv.savPdu_element", {})
    tree = pdu.get("sv.seqASDU_tree", {})
    items = tree.get("sv.ASDU_element", [])
    return pdu, items if isinstance(items, list) else [items]


def _theirs(raw):
    """tshark's SV frames as one entry per ASDU (the harness joins on frame and index)."""
    out = {}
    for frame, pdus in raw.items():
        rows = []
        for p in pdus:
            pdu, items = _asdus(p)
            vlan = p["vlan"]
            for k, a in enumerate(items):
                rows.append(
                    {
                        "vlan": as_int(first(vlan, "vlan.id")) if vlan else None,
                        "vlan_priority": as_int(first(vlan, "vlan.priority")) if vlan else None,
                        "appid": as_int(first(p["sv"], "sv.appid")),
                        "length": as_int(first(p["sv"], "sv.length")),
                        "no_asdu": as_int(pdu.get("sv.noASDU")),
                        "asdu_index": k,
                        "sv_id": a.get("sv.svID"),
                        "dat_set": a.get("sv.datSet"),
                        "smp_cnt": as_int(a.get("sv.smpCnt")),
                        "conf_rev": as_int(a.get("sv.confRev")),
                        "smp_synch": as_int(a.get("sv.smpSynch")),
                        "smp_rate": as_int(a.get("sv.smpRate")),
                        "smp_mod": as_int(a.get("sv.smpMod")),
                        "sample_bytes": len(a["sv.seqData"].replace(":", "")) // 2
                        if "sv.seqData" in a
                        else None,
                    }
                )
        out[frame] = rows
    return out


FIELDS = {c: itemgetter(c) for c in COLUMNS}


def test_sv_fields_match_wireshark(corpus, tshark):
    cmp = Comparison("sv")
    asdus = 0
    for row, path, d in decoded_corpus(corpus, "iec61850"):
        theirs = _theirs(tshark_pdus(tshark, path, ["vlan", "sv"], "sv", row.get("decode_as", "")))
        asdus += sum(len(v) for v in theirs.values())
        cmp.join(row["local_path"], ours_by_frame(d.tables["sv"], COLUMNS), theirs, FIELDS)
    assert asdus >= 10_000
    cmp.assert_target()


def _sv_frame(asdus: list[bytes], no_asdu: int | None = None) -> bytes:
    def tlv(tag, v):
        return bytes([tag, len(v)]) + v if len(v) < 0x80 else bytes([tag, 0x81, len(v)]) + v

    seq = tlv(0xA2, b"".join(tlv(0x30, a) for a in asdus))
    pdu = tlv(0x60, tlv(0x80, bytes([len(asdus) if no_asdu is None else no_asdu])) + seq)
    return struct.pack("!HHHH", 0x4000, 8 + len(pdu), 0, 0) + pdu


def _asdu(cnt: int, sv_id: bytes = b"MU01", synch: int = 2, without: int = -1) -> bytes:
    parts = [
        (0x80, sv_id),
        (0x82, struct.pack("!H", cnt)),
        (0x83, struct.pack("!I", 1)),
        (0x85, bytes([synch])),
        (0x87, bytes(64)),
    ]
    return b"".join(bytes([t, len(v)]) + v for t, v in parts if t != without)


def test_crafted_sv_rows_and_weird(tmp_path):
    frames = [
        _sv_frame([_asdu(1), _asdu(2)]),
        _sv_frame([_asdu(3)], no_asdu=2),  # noASDU lies
        _sv_frame([_asdu(4, without=0x82)]),  # no smpCnt
        _sv_frame([_asdu(5)])[:40],  # cut
    ]
    path = tmp_path / "sv.pcap"
    with open(path, "wb") as fh:
        w = PcapWriter(fh)
        for k, f in enumerate(frames):
            w.write(k + 1, pk.ethernet("01:0c:cd:04:00:01", "00:11:22:33:44:55", 0x88BA, f))
    d = decode(path)
    assert not d.failures
    rows = d.tables["sv"].select(["frame", "asdu_index", "sv_id", "smp_cnt"]).to_pylist()
    assert [(r["frame"], r["asdu_index"], r["smp_cnt"]) for r in rows] == [
        (1, 0, 1),
        (1, 1, 2),
        (2, 0, 3),
        (3, 0, None),
    ]
    assert {r["sv_id"] for r in rows} == {"MU01"}
    names = sorted(d.tables["weird"].column("name").to_pylist())
    assert names == ["sv_missing_field", "sv_no_asdu_mismatch", "sv_truncated"]
