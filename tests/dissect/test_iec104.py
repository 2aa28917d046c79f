"""IEC 60870-5-104: field-exact against Wireshark over the corpus; known values; robustness."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from otsight.dissect import iec104 as I
from otsight.testing.decode import decode
from tests.dissect.tshark_diff import (
    SKIP,
    Comparison,
    as_int,
    corpus_files,
    first,
    ours_by_frame,
    tshark_pdus,
    values,
)
from tests.encode_capture import write_tcp_exchanges

COLUMNS = [
    "apci_type",
    "tx",
    "rx",
    "u_function",
    "type_id",
    "sq",
    "count",
    "cot",
    "negative",
    "test",
    "originator_address",
    "common_address",
    "ioa",
    "value",
    "value_int",
    "quality",
    "select",
    "qualifier",
    "time",
]

# Types whose information objects Wireshark 4.0 decodes one by one (its ASDU switch); for
# the others it shows the first IOA only, followed by raw bytes.
WS_OBJECTS = set(range(1, 17)) | {21} | set(range(30, 38)) | {45, 46, 47, 48, 49, 50, 51}
WS_OBJECTS |= set(range(58, 65)) | {70, 100, 101, 103, 105, 107, 110, 111, 112}
APCI_NAMES = {0: "I", 1: "S", 3: "U"}


def _asdu(p):
    return p.get("iec60870_asdu") or {}


def _type(p):
    return as_int(first(_asdu(p), "iec60870_asdu.typeid"))


def _apci(p):
    t = as_int(first(p["iec60870_104"], "iec60870_104.type"))
    return APCI_NAMES.get(t) if t is not None else None


def _bool(name):
    def get(p):
        v = first(_asdu(p), name)
        return None if v is None else v not in ("0", "False", "false")

    return get


def _ioa(p):
    t = _type(p)
    if t is None:
        return SKIP
    ioas = [int(v) for v in values(_asdu(p), "iec60870_asdu.ioa")]
    if t not in WS_OBJECTS:
        return ("first", ioas[:1])
    return ioas


def _float6(value) -> float | str:
    v = float(value)
    return "nan" if v != v else float(f"{v:.6g}")  # NaN compares equal to itself as text


def _value(p):
    a = _asdu(p)
    if _type(p) not in WS_OBJECTS:
        return SKIP
    got = (
        values(a, "iec60870_asdu.float")
        or values(a, "iec60870_asdu.normval")
        or values(a, "iec60870_asdu.scalval")
    )
    return [_float6(v) for v in got] if got else SKIP


def _bitstring(text: str) -> int:
    # Wireshark shows the four octets in transmission order; IEC 60870-5-4 sends the
    # low-order octet first, so the number is the same octets read little-endian.
    return int.from_bytes(int(text, 16).to_bytes(4, "big"), "little")


def _value_int(p):
    a = _asdu(p)
    t = _type(p)
    if t not in WS_OBJECTS:
        return SKIP
    for name in (
        "iec60870_asdu.siq.spi",
        "iec60870_asdu.diq.dpi",
        "iec60870_asdu.vti.v",
        "iec60870_asdu.bcr.count",
        "iec60870_asdu.sco.on",
        "iec60870_asdu.dco.on",
        "iec60870_asdu.rco.up",
        "iec60870_asdu.scalval",
    ):
        got = values(a, name)
        if got:
            return [int(v) if v not in ("True", "False") else int(v == "True") for v in got]
    got = values(a, "iec60870_asdu.bitstring")
    return [_bitstring(v) for v in got] if got else SKIP


def _quality(p):
    a = _asdu(p)
    if _type(p) not in WS_OBJECTS:
        return SKIP
    if values(a, "iec60870_asdu.bcr.count"):
        return SKIP  # counters: CY/CA/IV are mapped to otsight's own bits (known-value test)
    siq = values(a, "iec60870_asdu.siq") or values(a, "iec60870_asdu.diq")
    if siq:
        return [as_int(v) & 0xF0 for v in siq]
    qds = values(a, "iec60870_asdu.qds")
    if not qds:
        return SKIP
    return [as_int(v) & 0xF1 for v in qds]


def _select(p):
    a = _asdu(p)
    for name in (
        "iec60870_asdu.sco.se",
        "iec60870_asdu.dco.se",
        "iec60870_asdu.rco.se",
        "iec60870_asdu.qos.se",
    ):
        got = values(a, name)
        if got:
            return [v not in ("0", "False") for v in got]
    return SKIP


def _qualifier(p):
    a = _asdu(p)
    for name in (
        "iec60870_asdu.sco.qu",
        "iec60870_asdu.dco.qu",
        "iec60870_asdu.rco.qu",
        "iec60870_asdu.qos.ql",
        "iec60870_asdu.qoi",
        "iec60870_asdu.qcc",
        "iec60870_asdu.qrp",
        "iec60870_asdu.coi",
        "iec60870_asdu.qpm",
    ):
        got = values(a, name)
        if got:
            return [as_int(v) for v in got]
    return SKIP


def _cp56(text: str) -> int:
    # "Aug 13, 2009 19:23:00.008000000 UTC" (tshark run with TZ=UTC)
    stamp, frac = text.rsplit(" ", 1)[0].split(".")
    dt = datetime.strptime(stamp, "%b %d, %Y %H:%M:%S").replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1000 + int(frac[:3])


def _time(p):
    got = values(_asdu(p), "iec60870_asdu.cp56time")
    if not got or _type(p) not in WS_OBJECTS:
        return SKIP
    return [_cp56(v) for v in got]


FIELDS = {
    "apci_type": _apci,
    "tx": lambda p: as_int(first(p["iec60870_104"], "iec60870_104.tx")),
    "rx": lambda p: as_int(first(p["iec60870_104"], "iec60870_104.rx")),
    "u_function": lambda p: as_int(first(p["iec60870_104"], "iec60870_104.utype")),
    "type_id": _type,
    "sq": _bool("iec60870_asdu.sq"),
    "count": lambda p: as_int(first(_asdu(p), "iec60870_asdu.numix")),
    "cot": lambda p: as_int(first(_asdu(p), "iec60870_asdu.causetx")),
    "negative": _bool("iec60870_asdu.nega"),
    "test": _bool("iec60870_asdu.test"),
    "originator_address": lambda p: as_int(first(_asdu(p), "iec60870_asdu.oa")),
    "common_address": lambda p: as_int(first(_asdu(p), "iec60870_asdu.addr")),
    "ioa": _ioa,
    "value": _value,
    "value_int": _value_int,
    "quality": _quality,
    "select": _select,
    "qualifier": _qualifier,
    "time": _time,
}


def _theirs(tshark: str, path: Path, decode_as: str) -> dict:
    """tshark's APDUs per frame, each with the ASDU that belongs to it.

    ``tshark_pdus`` aligns layers by occurrence, but S- and U-frames have no ASDU layer:
    re-attach the n-th ASDU of a frame to its n-th I-frame.
    """
    raw = tshark_pdus(tshark, path, ["iec60870_104", "iec60870_asdu"], "iec60870_104", decode_as)
    out = {}
    for frame, pdus in raw.items():
        apcis = [p["iec60870_104"] for p in pdus if p["iec60870_104"]]
        asdus = [p["iec60870_asdu"] for p in pdus if p["iec60870_asdu"]]
        rows = []
        for apci in apcis:
            row = {"iec60870_104": apci, "iec60870_asdu": {}}
            if _apci(row) == "I" and asdus:
                row["iec60870_asdu"] = asdus.pop(0)
            rows.append(row)
        out[frame] = rows
    return out


def _ours(table):
    rows = ours_by_frame(table, COLUMNS)
    for pdus in rows.values():
        for r in pdus:
            if r["value"] is not None:
                r["value"] = [_float6(v) for v in r["value"]]
            if r["time"] is not None:
                r["time"] = [int(t.timestamp() * 1000) for t in r["time"]]
            if r["select"] is not None:
                r["select"] = list(r["select"])
    return rows


class _Counts(defaultdict):
    """A count table that is empty when every count is zero.

    ``Comparison.report`` reads ``differ[name]`` for every field, which inserts zeros into
    the defaultdict; ``assert not self.differ`` would then fail with nothing differing.
    """

    def __bool__(self) -> bool:
        return any(self.values())


class _FirstIoa(Comparison):
    def __post_init__(self) -> None:
        self.differ = _Counts(int)

    def join(self, capture, ours_by_frame, theirs_by_frame, fields):  # noqa: D102
        # Fields are compared PDU by PDU only in frames to which both attribute the same
        # number of APDUs; elsewhere zip() would pair unrelated APDUs. A count mismatch is
        # still a difference (pdu_count) that must be fixed or excepted.
        same = {f: v for f, v in ours_by_frame.items() if len(v) == len(theirs_by_frame.get(f, []))}
        for frame in sorted(set(ours_by_frame) | set(theirs_by_frame)):
            if frame not in same:
                self.check(
                    capture,
                    frame,
                    "pdu_count",
                    len(ours_by_frame.get(frame, [])),
                    len(theirs_by_frame.get(frame, [])),
                )
        super().join(
            capture, same, {f: theirs_by_frame[f] for f in same if f in theirs_by_frame}, fields
        )

    def check(self, capture, frame, name, ours, theirs):  # noqa: D102
        if name == "ioa" and isinstance(theirs, tuple) and theirs and theirs[0] == "first":
            ours, theirs = (ours or [])[:1], theirs[1]
        super().check(capture, frame, name, ours, theirs)


def test_iec104_fields_match_wireshark(corpus, tshark, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    rows = corpus_files("iec104")
    assert len(rows) >= 18
    cmp = _FirstIoa("iec104")
    for row in rows:
        path = Path(corpus) / row["local_path"]
        d = decode(path)
        assert not d.failures, d.failures
        theirs = _theirs(tshark, path, row.get("decode_as", ""))
        cmp.join(row["local_path"], _ours(d.tables["iec104"]), theirs, FIELDS)
    cmp.assert_target()


# ---- known values (crafted APDUs; Wireshark cannot check pairing, epoch times, etc.) -------
def _apci_i(tx: int, rx: int, asdu: bytes) -> bytes:
    return (
        bytes([0x68, 4 + len(asdu)])
        + (tx << 1).to_bytes(2, "little")
        + (rx << 1).to_bytes(2, "little")
        + asdu
    )


def _mk_asdu(type_id, objects: bytes, n=1, cot=6, ca=1, sq=False, oa=0, neg=False, test=False):
    vsq = (0x80 if sq else 0) | n
    c = cot | (0x40 if neg else 0) | (0x80 if test else 0)
    return bytes([type_id, vsq, c, oa]) + ca.to_bytes(2, "little") + objects


def _ioa3(v: int) -> bytes:
    return v.to_bytes(3, "little")


def _cp56_bytes(dt: datetime, iv=False) -> bytes:
    ms = dt.second * 1000 + dt.microsecond // 1000
    return ms.to_bytes(2, "little") + bytes(
        [
            dt.minute | (0x80 if iv else 0),
            dt.hour,
            dt.day | (dt.isoweekday() << 5),
            dt.month,
            dt.year % 100,
        ]
    )


def _write(path: Path, exchanges: list[tuple[bool, bytes]], port: int = 2404) -> None:
    write_tcp_exchanges(path, exchanges, port)


WHEN = datetime(2024, 3, 5, 14, 7, 9, 123000, tzinfo=UTC)


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    path = tmp_path_factory.mktemp("iec104") / "crafted.pcap"
    f = 3.5
    exchanges = [
        (True, bytes([0x68, 4, 0x07, 0, 0, 0])),  # 1 STARTDT act
        (False, bytes([0x68, 4, 0x0B, 0, 0, 0])),  # 2 STARTDT con
        # 3 single command, select, QU=1, activation; 4 its confirmation; 5 termination
        (True, _apci_i(0, 0, _mk_asdu(45, _ioa3(4501) + bytes([0x80 | (1 << 2) | 1])))),
        (False, _apci_i(0, 1, _mk_asdu(45, _ioa3(4501) + bytes([0x80 | (1 << 2) | 1]), cot=7))),
        (False, _apci_i(1, 1, _mk_asdu(45, _ioa3(4501) + bytes([0x05]), cot=10))),
        # 6 floats as a sequence (SQ=1), IOA 100, 101, 102, quality IV on the second
        (
            False,
            _apci_i(
                2,
                1,
                _mk_asdu(
                    13,
                    _ioa3(100)
                    + b"".join(
                        np.float32(v).tobytes() + bytes([q])
                        for v, q in ((f, 0), (-1.25, 0x80), (1e6, 0x01))
                    ),
                    n=3,
                    cot=3,
                    sq=True,
                ),
            ),
        ),
        # 7 bitstring 0x01020304 sent low-order octet first, counter with carry, scaled
        (False, _apci_i(3, 1, _mk_asdu(7, _ioa3(7) + bytes([4, 3, 2, 1, 0x10]), cot=3))),
        (
            False,
            _apci_i(
                4,
                1,
                _mk_asdu(
                    15,
                    _ioa3(15) + (-5).to_bytes(4, "little", signed=True) + bytes([0x20 | 0x80 | 3]),
                    cot=37,
                ),
            ),
        ),
        # 9 clock sync activation with a CP56Time2a; 10 reset process (QRP 1)
        (True, _apci_i(1, 5, _mk_asdu(103, _ioa3(0) + _cp56_bytes(WHEN), ca=0xFFFF))),
        (True, _apci_i(2, 5, _mk_asdu(105, _ioa3(0) + b"\x01"))),
        # 11 double point with CP56 time (ON, blocked), time marked invalid
        (
            False,
            _apci_i(
                5, 3, _mk_asdu(31, _ioa3(31) + bytes([0x12]) + _cp56_bytes(WHEN, iv=True), cot=3)
            ),
        ),
        # 12 file ready (F_FR_NA_1): Wireshark shows raw bytes only
        (False, _apci_i(6, 3, _mk_asdu(120, _ioa3(9) + b"\x05\x00\x10\x00\x00\x00", cot=13))),
        # 13 truncated: 3 objects announced, 1 fits → weird; 14 S-frame; 15 bad U function
        (False, _apci_i(7, 3, _mk_asdu(1, _ioa3(1) + b"\x01" + _ioa3(2), n=3, cot=3))),
        (True, bytes([0x68, 4, 0x01, 0, 16, 0])),
        (True, bytes([0x68, 4, 0x0F, 0, 0, 0])),
        # 16 interrogation, negative confirmation with unknown common address
        (True, _apci_i(3, 8, _mk_asdu(100, _ioa3(0) + bytes([20]), ca=7))),
        (False, _apci_i(8, 4, _mk_asdu(100, _ioa3(0) + bytes([20]), cot=46, ca=7, neg=True))),
    ]
    _write(path, exchanges)
    d = decode(path)
    assert not d.failures, d.failures
    return d


def _rows(d):
    return d.tables["iec104"].to_pylist()


def test_crafted_apci_and_pairing(crafted):
    rows = _rows(crafted)
    assert len(rows) == 17
    assert [r["apci_type"] for r in rows[:3]] == ["U", "U", "I"]
    assert rows[0]["u_function_name"] == "STARTDT act" and rows[0]["category"] == "session"
    assert rows[1]["request_frame"] == rows[0]["frame"]
    assert rows[1]["latency"] == pytest.approx(0.01)
    cmd, con, term = rows[2:5]
    assert cmd["type_name"] == "C_SC_NA_1" and cmd["category"] == "control"
    assert cmd["cot_name"] == "Act" and cmd["ioa"] == [4501]
    assert cmd["value_int"] == [1] and cmd["select"] == [True] and cmd["qualifier"] == [1]
    assert cmd["request_frame"] is None
    assert con["request_frame"] == cmd["frame"] and con["latency"] == pytest.approx(0.01)
    assert term["cot_name"] == "ActTerm" and term["request_frame"] == cmd["frame"]
    assert term["select"] == [False]
    neg = rows[16]
    assert neg["negative"] and neg["cot_name"] == "UkComAdrASDU"
    assert neg["request_frame"] == rows[15]["frame"]
    assert rows[13]["apci_type"] == "S" and rows[13]["rx"] == 8 and rows[13]["tx"] is None


def test_crafted_values(crafted):
    rows = _rows(crafted)
    seq = rows[5]
    assert seq["sq"] and seq["count"] == 3 and seq["ioa"] == [100, 101, 102]
    assert seq["value"] == [3.5, -1.25, 1e6]
    assert seq["quality"] == [0, 0x80, 0x01] and seq["quality_flags"] == ["", "IV", "OV"]
    bits = rows[6]
    assert bits["value_int"] == [0x01020304] and bits["quality_flags"] == ["BL"]
    counter = rows[7]
    assert counter["value_int"] == [-5] and counter["value"] == [-5.0]
    assert counter["qualifier"] == [3] and set(counter["quality_flags"][0].split("|")) == {
        "IV",
        "CY",
    }
    clock = rows[8]
    assert clock["type_name"] == "C_CS_NA_1" and clock["common_address"] == 0xFFFF
    assert clock["time"] == [WHEN]
    assert rows[9]["type_name"] == "C_RP_NA_1" and rows[9]["qualifier"] == [1]
    assert rows[9]["category"] == "control"
    dp = rows[10]
    assert dp["value_int"] == [2] and dp["time"] == [WHEN]
    assert set(dp["quality_flags"][0].split("|")) == {"BL", "TIME_IV"}
    f = rows[11]
    assert f["type_name"] == "F_FR_NA_1" and f["category"] == "program"
    assert f["ioa"] == [9] and f["value_int"] == [5] and f["qualifier"] == [0]


def test_crafted_malformed_become_weird(crafted):
    rows = _rows(crafted)
    short = rows[12]
    assert short["count"] == 3 and short["ioa"] == [1] and short["value_int"] == [1]
    assert rows[14]["u_function"] == 0x03 and rows[14]["u_function_name"] == "unknown_3"
    weird = [w for w in crafted.tables["weird"].to_pylist() if w["layer"] == "iec104"]
    by_frame = {w["frame"]: w["name"] for w in weird}
    assert by_frame == {
        short["frame"]: "iec104_short_asdu",
        rows[14]["frame"]: "iec104_bad_u_function",
    }


def test_cp56_normalisation_like_mktime():
    # day 0 of month 0 of 2021 → 30 Nov 2020 (mktime rolls back), 19:00, 65.535 s
    b = np.frombuffer(bytes([0xFF, 0xFF, 0, 19, 0, 0, 21]), np.uint8)
    ms = I._cp56(b, 0)
    want = datetime(2020, 11, 30, 19, 1, 5, 535000, tzinfo=UTC)
    assert ms == int(want.timestamp() * 1000)


def test_semantics_cover_protocols_md():
    for t in (
        1,
        13,
        30,
        40,
        45,
        46,
        47,
        48,
        49,
        50,
        51,
        58,
        63,
        64,
        100,
        101,
        102,
        103,
        105,
        107,
        110,
        113,
        120,
        127,
        81,
        95,
    ):
        assert t in I.TYPE_IDS, t
    assert "T0855" in I.TYPE_IDS[45].techniques and "T0816" in I.TYPE_IDS[105].techniques
    assert "T0836" in I.TYPE_IDS[50].techniques and I.TYPE_IDS[100].category == "read"
    assert "T0804" in I.U_FUNCTIONS[0x04].techniques
    for cot in (6, 7, 8, 10, 44, 45, 46, 47):
        assert cot in I.COTS
    import json

    attack = Path(__file__).resolve().parents[3] / "shared" / "data" / "attack" / "ics-attack.json"
    if attack.is_file():
        ids = {
            r["external_id"]
            for o in json.loads(attack.read_text())["objects"]
            if o.get("type") == "attack-pattern"
            for r in o.get("external_references", [])
            if r.get("source_name") == "mitre-attack"
        }
        for sem in I.Iec104Dissector.semantics:
            assert sem.techniques() <= ids


# ---- not IEC 104 on port 2404 ----------------------------------------------------------------
def test_non_iec104_on_port_2404(tmp_path):
    path = tmp_path / "other.pcap"
    _write(
        path,
        [
            (True, b"GET / HTTP/1.1\r\nHost: rtu\r\n\r\n"),
            (False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (True, b"\x16\x03\x01\x00\x2a" + bytes(42)),  # TLS record
            (False, b"SSH-2.0-OpenSSH_9.2\r\n"),
        ],
    )
    d = decode(path)
    assert not d.failures
    assert d.tables["iec104"].num_rows == 0


def test_manipulated_fkie_captures_decode(corpus):
    """Cloned, removed and swapped packets (listed in .backtrack.txt) decode without failure."""
    base = Path(corpus) / "labeled" / "fkie_energydataset_iec104" / "raw"
    for name in ("C-0.1-0.pcap", "R-0.1-0.pcap", "S-0.1-0.pcap"):
        d = decode(base / name)
        assert not d.failures, d.failures
        t = d.tables["iec104"]
        assert t.num_rows > 300
        listed = (base / f"{name}.backtrack.txt").read_text()
        assert "packet" in listed


# ---- robustness ----------------------------------------------------------------------------
def _run_kernels(datas: list[bytes]) -> np.ndarray:
    buf = np.frombuffer(b"".join(datas), np.uint8)  # read-only, as a capture chunk is
    arena = np.zeros(1, np.uint8)  # never read: every PDU is in ``buf``
    lengths = np.array([len(x) for x in datas], np.int64)
    off = np.zeros(len(datas), np.int64)
    np.cumsum(lengths[:-1], out=off[1:])
    in_arena = np.zeros(len(datas), np.int64)
    n = len(datas)
    out = np.empty((n, I.NCOL), np.int64)
    I._fields(buf, arena, in_arena, off, lengths, I.ELEMENT_LENGTH, out)
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(out[:, I.NOBJ], out=starts[1:])
    m = int(starts[-1])
    arrays = I.object_arrays(m)
    # the last PDU ends exactly at the end of ``buf``: a read past a PDU would be caught by
    # the end-of-object check below (and by NUMBA_BOUNDSCHECK=1 at the buffer's end)
    I._objects(buf, arena, in_arena, off, out, I.ELEMENT_LENGTH, starts, *arrays)
    return out


def test_kernels_survive_mutated_real_apdus(corpus):
    seeds = [
        p.data
        for name in (
            "iec104/ICS-Security-Tools__TestDissectIec104.pcap",
            "iec104/ICS-Security-Tools__090813_diverse.pcap",
            "iec104/epf-parameter-screening__iec104.pcap",
        )
        for p in decode(Path(corpus) / name, dissect=False).pdus
        if p.protocol == "iec104"
    ]
    assert len(seeds) > 100
    rng = random.Random(104)
    mutants = []
    for _ in range(5000):
        d = bytearray(rng.choice(seeds))
        how = rng.randrange(5)
        if how == 0:
            for _ in range(rng.randrange(1, 4)):
                k = rng.randrange(len(d))
                d[k] ^= 1 << rng.randrange(8)
        elif how == 1 and len(d) > 6:
            d = d[: rng.randrange(6, len(d))]
        elif how == 2:
            d[1] = rng.choice([0, 4, 5, 9, 10, 253, 254, 255])  # lying APDU length
        elif how == 3 and len(d) > 7:
            d[7] = rng.randrange(256)  # VSQ: count and SQ
        elif len(d) > 6:
            d[6] = rng.randrange(256)  # type id
        d[1] = min(d[1], 255)
        if len(d) < 6:
            d += bytes(6 - len(d))
        mutants.append(bytes(d))
    out = _run_kernels(mutants)
    assert (out[:, I.STATUS] != I.OK).any()
    for k, data in enumerate(mutants):  # every object the kernel counted lies inside the PDU
        if out[k, I.NOBJ] > 0 and I.ELEMENT_LENGTH[out[k, I.TYPE]] > 0:
            el = I.ELEMENT_LENGTH[out[k, I.TYPE]]
            n = out[k, I.NOBJ]
            end = 12 + (3 + n * el if out[k, I.SQ] == 1 else n * (3 + el))
            assert end <= len(data), (k, data.hex())


def test_pipeline_survives_mutations(corpus):
    from otsight.testing.fuzz import run

    report = run([Path(corpus) / "iec104/ICS-Security-Tools__090813_diverse.pcap"], 2000, 7)
    assert report["mutations"] == 2000 and not report["failures"], report["failures"]
    assert any(name.startswith("iec104_") for name in report["weird"])
