"""GOOSE: field-exact against Wireshark over every IEC 61850 corpus capture; malformed
frames (corpus and crafted) become weird rows with what was present kept; 802.1Q / QinQ."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from otsight.dissect import goose as G
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
    "reserved1",
    "reserved2",
    "s_bit",
    "gocb_ref",
    "time_allowed_to_live",
    "dat_set",
    "go_id",
    "t",
    "st_num",
    "sq_num",
    "simulation",
    "conf_rev",
    "nds_com",
    "num_dat_set_entries",
    "data_count",
    "data",
]


def _pdu(p):
    return p["goose"].get("goose.goosePdu_element", {})


def _hdr(name):
    return lambda p: as_int(first(p["goose"], name))


def _field(name, conv=lambda v: v):
    def get(p):
        v = _pdu(p).get(name)
        return None if v is None else conv(v)

    return get


def _bool(v: str) -> bool:
    return v in ("1", "True", "true")


def _vlan(name):
    def get(p):
        return as_int(first(p["vlan"], name)) if p["vlan"] else None

    return get


def _hex(v: str) -> str:
    return v.replace(":", "").lower()


def _norm_value(kind: str, value: str | None) -> object:
    """One value in a form both sides share (numbers as numbers, bytes as hex)."""
    if value is None:
        return None
    if kind == "boolean":
        return value in ("1", "true", "True")
    if kind in ("integer", "unsigned", "bcd"):
        return int(value)
    if kind in ("floating-point", "real"):
        try:
            v = float(value)
        except ValueError:
            return value
        return round(v, 5) if math.isfinite(v) else str(v)
    if kind in ("octet-string", "binary-time"):
        return _hex(value.removeprefix("0x"))
    return value


_TS_KEYS = {
    "boolean": "goose.boolean",
    "integer": "goose.integer",
    "unsigned": "goose.unsigned",
    "floating-point": "goose.float_value",
    "real": "goose.real",
    "octet-string": "goose.octet_string",
    "visible-string": "goose.visible_string",
    "binary-time": "goose.binary_time",
    "bcd": "goose.bcd",
    "objId": "goose.objId",
    "mMSString": "goose.mMSString",
    "utc-time": "goose.utc_time",
}


def _tshark_data(p):
    """allData as (type, value) per top-level entry (values of arrays / structures: None)."""
    tree = _pdu(p).get("goose.allData_tree")
    if tree is None:
        return None
    kinds = tree.get("goose.Data", [])
    kinds = kinds if isinstance(kinds, list) else [kinds]
    subs = tree.get("goose.Data_tree", [])
    subs = subs if isinstance(subs, list) else [subs]
    out = []
    for k, code in enumerate(kinds):
        kind = G.DATA_TYPES.name(int(code))
        sub = subs[k] if k < len(subs) else {}
        if kind in ("bit-string", "booleanArray"):
            key = "goose.bit_string" if kind == "bit-string" else "goose.booleanArray"
            raw = sub.get(key)
            pad = sub.get("ber.bitstring.padding")
            value = None if raw is None else f"{_hex(raw)}/{pad}"
        elif kind == "utc-time":
            value = sub.get("goose.utc_time")
        else:
            value = sub.get(_TS_KEYS.get(kind, ""))
        out.append((kind, _norm_value(kind, value)))
    return out


def _ours_data(entries):
    if entries is None:
        return None
    out = []
    for e in entries:
        kind, _, value = e.partition(":")
        if kind in ("array", "structure"):
            out.append((kind, None))
        elif kind == "utc-time":
            out.append((kind, _wireshark_time(value)))
        else:
            out.append((kind, _norm_value(kind, value)))
    return out


def _wireshark_time(iso: str) -> str | None:
    """'2000-01-02T02:46:11.258165836Z' → 'Jan  2, 2000 02:46:11.258165836 UTC'."""
    try:
        head, frac = iso.rstrip("Z").split(".")
        dt = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return iso
    return f"{dt:%b} {dt.day:2d}, {dt:%Y %H:%M:%S}.{frac} UTC"


def _t_from_ns(ns: int | None) -> str | None:
    if ns is None:
        return None
    secs, rem = divmod(ns, 1_000_000_000)
    dt = datetime.fromtimestamp(secs, UTC)
    return f"{dt:%b} {dt.day:2d}, {dt:%Y %H:%M:%S}.{rem:09d} UTC"


def _data_count(p):
    v = _pdu(p).get("goose.allData")
    return None if v is None else int(v)


def _t(p):
    v = _pdu(p).get("goose.t")
    return None if v in (None, "????") else v


FIELDS = {
    "vlan": _vlan("vlan.id"),
    "vlan_priority": _vlan("vlan.priority"),
    "appid": _hdr("goose.appid"),
    "length": _hdr("goose.length"),
    "reserved1": _hdr("goose.reserve1"),
    "reserved2": _hdr("goose.reserve2"),
    "s_bit": lambda p: _bool(first(p["goose"], "goose.reserve1.s_bit") or "0"),
    "gocb_ref": _field("goose.gocbRef"),
    "time_allowed_to_live": _field("goose.timeAllowedtoLive", int),
    "dat_set": _field("goose.datSet"),
    "go_id": _field("goose.goID"),
    "t": _t,
    "st_num": _field("goose.stNum", int),
    "sq_num": _field("goose.sqNum", int),
    "simulation": _field("goose.simulation", _bool),
    "conf_rev": _field("goose.confRev", int),
    "nds_com": _field("goose.ndsCom", _bool),
    "num_dat_set_entries": _field("goose.numDatSetEntries", int),
    "data_count": _data_count,
    "data": _tshark_data,
}


def _ours(table: pa.Table):
    table = table.set_column(
        table.schema.get_field_index("t"), "t", table.column("t").cast(pa.int64())
    )
    rows = ours_by_frame(table, COLUMNS)
    for pdus in rows.values():
        for r in pdus:
            r["t"] = _t_from_ns(r["t"])
            r["data"] = _ours_data(r["data"])
    return rows


def test_goose_fields_match_wireshark(corpus, tshark):
    cmp = Comparison("goose")
    frames = 0
    for row, path, d in decoded_corpus(corpus, "iec61850", at_least=40):
        theirs = tshark_pdus(tshark, path, ["vlan", "goose"], "goose", row.get("decode_as", ""))
        frames += len(theirs)
        cmp.join(row["local_path"], _ours(d.tables["goose"]), theirs, FIELDS)
    assert frames >= 500
    cmp.assert_target()


# ---- known values -----------------------------------------------------------------------------
CORPUS_GOOSE = "iec61850/icsnpp-iec61850-goose__GOOSE_{}.pcap"


def _one(corpus, name):
    d = decode(Path(corpus) / CORPUS_GOOSE.format(name))
    assert not d.failures
    rows = _rows(d.tables["goose"])
    weird = sorted(d.tables["weird"].column("name").to_pylist())
    return rows, weird, d


def _rows(table: pa.Table) -> list[dict]:
    for c in ("t", "ts"):
        table = table.set_column(
            table.schema.get_field_index(c), c, table.column(c).cast(pa.int64())
        )
    return table.to_pylist()


def test_every_field_of_a_goose_frame(corpus):
    rows, weird, _ = _one(corpus, "all_data_primitives_fallbacks")
    assert weird == []
    r = rows[0]
    assert (r["gocb_ref"], r["dat_set"], r["go_id"]) == (
        "GEDeviceF650/LLN0$GO$gcb01",
        "GEDeviceF650/LLN0$GOOSE1",
        "F650_GOOSE1",
    )
    assert (r["st_num"], r["sq_num"], r["conf_rev"], r["time_allowed_to_live"]) == (1, 20, 1, 40000)
    assert r["simulation"] is False and r["nds_com"] is False
    assert r["num_dat_set_entries"] == r["data_count"] == 12
    assert r["data"] == [
        "boolean:true",
        "bit-string:80/7",
        "integer:-1",
        "unsigned:500",
        "floating-point:1.0",
        "octet-string:0xdeadbe",
        "visible-string:OK",
        "real:0.0",
        "bcd:18",
        "booleanArray:80/7",
        "objId:1.3.1",
        "mMSString:M",
    ]
    assert r["t"] == 1698889728_250000000
    assert r["category"] == "control" and r["techniques"] == ["T0855", "T0856"]


def test_vlan_priority_and_id(corpus):
    d = decode(Path(corpus) / "iec61850/ICS-Security-Tools__GOOSE_DEMO.pcap")
    r = _rows(d.tables["goose"])[0]
    assert (r["vlan"], r["vlan_priority"], r["appid"]) == (10, 4, 0x2000)
    assert r["t"] == 1306371354_859000027  # fraction truncated to whole ns, as Wireshark


def test_malformed_corpus_frames_keep_what_is_present(corpus):
    cases = {
        "missing_gocb_ref": ("gocb_ref", ["goose_missing_field"]),
        "missing_dataset": ("dat_set", ["goose_missing_field"]),
        "missing_conf_rev": ("conf_rev", ["goose_missing_field"]),
        "missing_timestamp": ("t", ["goose_missing_field"]),
        "missing_num_dat_set_entries": ("num_dat_set_entries", ["goose_missing_field"]),
        "missing_all_data": ("data", ["goose_missing_field"]),
    }
    for name, (absent, weird) in cases.items():
        rows, got, _ = _one(corpus, name)
        assert got == weird, name
        r = rows[0]
        assert r[absent] is None, name
        # stNum / sqNum stay exact whatever else is missing
        assert (r["st_num"], r["sq_num"]) == (1, 10), name
        present = {"go_id", "st_num", "sq_num", "dat_set", "gocb_ref", "conf_rev"} - {absent}
        assert all(r[c] is not None for c in present), name
    rows, got, _ = _one(corpus, "missing_go_id")  # goID is optional: not a problem
    assert got == [] and rows[0]["go_id"] is None
    rows, got, d = _one(corpus, "truncated")
    assert got == ["goose_truncated"]
    assert rows[0]["num_dat_set_entries"] == 8 and rows[0]["data_count"] == 5  # whole ones
    rows, got, _ = _one(corpus, "unsupported_tlv")  # [12] before allData
    assert got == ["goose_field_out_of_order"] and rows[0]["data_count"] == 8
    rows, got, d = _one(corpus, "malformed_asn1")
    assert "goose_missing_field" in got and len(rows) == 1
    details = d.tables["weird"].column("detail").to_pylist()
    assert any("missing gocbRef" in x for x in details)


# ---- crafted frames ---------------------------------------------------------------------------
PUB = "00:50:c2:4f:00:01"
DST = "01:0c:cd:01:00:01"


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    if n < 0x100:
        return bytes([tag, 0x81, n]) + value
    return bytes([tag, 0x82]) + struct.pack("!H", n) + value


def _uint(v: int) -> bytes:
    return v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")


def goose_pdu(st: int, sq: int, values: list[bytes], sim: bool = False, **skip) -> bytes:
    fields = [
        (0x80, b"IED1LD0/LLN0$GO$gcb1"),
        (0x81, _uint(2000)),
        (0x82, b"IED1LD0/LLN0$DS1"),
        (0x83, b"IED1_GOOSE"),
        (0x84, struct.pack("!IBBBB", 1_700_000_000, 0x80, 0, 0, 0x0A)),
        (0x85, _uint(st)),
        (0x86, _uint(sq)),
        (0x87, b"\xff" if sim else b"\x00"),
        (0x88, _uint(3)),
        (0x89, b"\x00"),
        (0x8A, _uint(len(values))),
        (0xAB, b"".join(values)),
    ]
    over = skip.get("override", {})
    fields = [(t, over.get(t, v)) for t, v in fields]
    body = b"".join(_tlv(t, v) for t, v in fields if t not in skip.get("without", ()))
    pdu = _tlv(0x61, body)
    return struct.pack("!HHHH", 0x3001, 8 + len(pdu), 0x8000 if sim else 0, 0) + pdu


def _write(path: Path, payloads: list[tuple[bytes, list]], pad: bool = True) -> Path:
    with open(path, "wb") as fh:
        w = PcapWriter(fh)
        for k, (payload, vlans) in enumerate(payloads):
            w.write(
                1_700_000_000_000_000_000 + k * 1_000_000,
                pk.ethernet(DST, PUB, 0x88B8, payload, vlans=vlans, pad=pad),
            )
    return path


BOOL_T = _tlv(0x83, b"\x01")
QUALITY = _tlv(0x84, b"\x03\x00\x00")
STRUCT = _tlv(0xA2, BOOL_T + QUALITY + _tlv(0x91, struct.pack("!IBBBB", 1_700_000_000, 0, 0, 0, 0)))


def test_crafted_vlan_qinq_and_big_counters(tmp_path):
    frames = [
        (goose_pdu(1, 0, [BOOL_T, QUALITY]), []),
        (goose_pdu(2, 0, [STRUCT]), [(0x8100, 5, 6)]),
        (goose_pdu(0xFFFFFFFF, 0xFFFFFFFE, [BOOL_T]), [(0x88A8, 100, 3), (0x8100, 7, 4)]),
        (goose_pdu(7, 1, [BOOL_T], sim=True), []),
    ]
    d = decode(_write(tmp_path / "g.pcap", frames))
    rows = _rows(d.tables["goose"])
    assert [(r["vlan"], r["vlan_priority"]) for r in rows] == [
        (None, None),
        (5, 6),
        (100, 3),
        (None, None),
    ]
    assert [(r["st_num"], r["sq_num"]) for r in rows] == [
        (1, 0),
        (2, 0),
        (0xFFFFFFFF, 0xFFFFFFFE),
        (7, 1),
    ]
    assert rows[1]["data"] == [
        "structure:{boolean:true,bit-string:0000/3,utc-time:2023-11-14T22:13:20.000000000Z}"
    ]
    assert rows[3]["simulation"] is True and rows[3]["s_bit"] is True
    assert rows[0]["t"] == 1_700_000_000_500_000_000 and rows[0]["t_quality"] == 0x0A
    assert d.tables["weird"].num_rows == 0


def test_crafted_malformed_frames_become_weird(tmp_path):
    good = goose_pdu(5, 9, [BOOL_T, QUALITY])
    lie = bytearray(good)
    lie[2:4] = struct.pack("!H", 400)  # length field beyond the frame
    bad_count = goose_pdu(5, 9, [BOOL_T], override={0x8A: _uint(4)})
    frames = [
        (bytes(lie), []),
        (goose_pdu(5, 9, [BOOL_T], without=(0x85,)), []),  # no stNum
        (bad_count, []),
        (good[:6], []),  # cut inside the header
        (struct.pack("!HHHH", 0x3001, 10, 0, 0) + b"\x30\x00", []),  # not an IECGoosePdu
        (goose_pdu(5, 9, [BOOL_T], override={0x86: b""}), []),  # empty sqNum
        (goose_pdu(5, 9, [_tlv(0xB5, b"\x01")]), []),  # an unknown Data type
    ]
    d = decode(_write(tmp_path / "m.pcap", frames, pad=False))  # padding would hide cuts
    assert not d.failures
    names = sorted(d.tables["weird"].column("name").to_pylist())
    assert names == sorted(
        [
            "goose_truncated",
            "goose_missing_field",
            "goose_num_entries_mismatch",
            "goose_header_too_short",
            "goose_not_a_goose_pdu",
            "goose_bad_integer",
            "goose_missing_field",
            "goose_bad_data_value",
        ]
    )
    rows = {r["frame"]: r for r in _rows(d.tables["goose"])}
    assert 4 not in rows  # no row for a frame without the 8-byte header
    assert rows[1]["st_num"] == 5 and rows[1]["data_count"] == 2
    assert rows[2]["st_num"] is None and rows[2]["sq_num"] == 9
    assert rows[6]["sq_num"] is None and rows[6]["st_num"] == 5
    assert rows[7]["data"] == ["tag_21:0x01"]


def test_non_goose_ethertype_and_udp_are_ignored(tmp_path):
    payload = goose_pdu(1, 1, [BOOL_T])
    path = tmp_path / "n.pcap"
    with open(path, "wb") as fh:
        w = PcapWriter(fh)
        w.write(1, pk.ethernet(DST, PUB, 0x88B9, payload))  # GSE management
        udp = pk.udp("10.0.0.1", "10.0.0.2", 102, 102, payload)
        w.write(2, pk.ethernet(DST, PUB, 0x0800, pk.ipv4("10.0.0.1", "10.0.0.2", 17, udp)))
    d = decode(path)
    assert d.tables["goose"].num_rows == 0 and not d.failures
