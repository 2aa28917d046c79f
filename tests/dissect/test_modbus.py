"""Modbus/TCP: field-exact against Wireshark over the corpus; known values; semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

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

COLUMNS = [
    "trans_id",
    "unit_id",
    "func_code",
    "exception_code",
    "start_address",
    "quantity",
    "values",
    "sub_function",
    "mei_type",
    "request_frame",
    "is_request",
]

REGISTER_FCS = {3, 4, 6, 16, 23}


def _start(pdu):
    m = pdu["modbus"]
    ref = first(m, "modbus.reference_num") or first(m, "modbus.read_reference_num")
    if ref is not None:
        return as_int(ref)
    regs = values(m, "modbus.regnum16")
    # a response's register numbers mean something only when tshark saw the request
    if not regs or first(m, "modbus.request_frame") is None:
        return SKIP
    return as_int(regs[0])


def _quantity(pdu):
    m = pdu["modbus"]
    if as_int(first(m, "modbus.func_code")) in (20, 21):
        return SKIP  # file-record sub-requests: see exceptions/modbus.yaml
    q = (
        first(m, "modbus.word_cnt")
        or first(m, "modbus.bit_cnt")
        or first(m, "modbus.read_word_cnt")
    )
    return as_int(q) if q is not None else SKIP


def _values(pdu):
    m = pdu["modbus"]
    fc = as_int(first(m, "modbus.func_code"))
    regs = values(m, "modbus.regval_uint16")
    if fc not in REGISTER_FCS or not regs or first(m, "modbus.exception_code") is not None:
        return SKIP
    return [int(v) for v in regs]


FIELDS = {
    "trans_id": lambda p: as_int(first(p["mbtcp"], "mbtcp.trans_id")),
    "unit_id": lambda p: as_int(first(p["mbtcp"], "mbtcp.unit_id")),
    "func_code": lambda p: as_int(first(p["modbus"], "modbus.func_code")),
    "exception_code": lambda p: as_int(first(p["modbus"], "modbus.exception_code")),
    "start_address": _start,
    "quantity": _quantity,
    "values": _values,
    "sub_function": lambda p: as_int(first(p["modbus"], "modbus.diagnostic_code")),
    "mei_type": lambda p: as_int(first(p["modbus"], "modbus.mei")),
    "request_frame": lambda p: as_int(first(p["modbus"], "modbus.request_frame")) or SKIP,
}


def _ours(table):
    rows = ours_by_frame(table, COLUMNS)
    for pdus in rows.values():
        for r in pdus:
            if r["quantity"] is not None and not r["is_request"] and r["func_code"] not in (15, 16):
                r["quantity"] = r["quantity"]  # responses carry the request's quantity
            if not r["values"]:
                r["values"] = None
    return rows


def test_modbus_fields_match_wireshark(corpus, tshark):
    rows = corpus_files("modbus")
    assert len(rows) >= 40
    cmp = Comparison("modbus")
    for row in rows:
        path = Path(corpus) / row["local_path"]
        d = decode(path)
        assert not d.failures, d.failures
        theirs = tshark_pdus(tshark, path, ["mbtcp", "modbus"], "modbus", row.get("decode_as", ""))
        fields = dict(FIELDS)
        # tshark shows a response's quantity only when it can infer it from the request
        cmp.join(row["local_path"], _ours(d.tables["modbus"]), theirs, fields)
    cmp.assert_target()


def test_device_identification_answers(corpus):
    d = decode(Path(corpus) / "modbus/testing_tools__mod_43.pcap")
    t = d.tables["modbus"]
    answers = [o for o in t.column("device_objects").to_pylist() if o]
    assert answers, "no FC 43/14 answer decoded"
    names = {obj["name"] for objs in answers for obj in objs}
    assert "vendor_name" in names


@pytest.mark.parametrize(
    "fc,name,category",
    [(3, "read_holding_registers", "read"), (16, "write_multiple_registers", "write")],
)
def test_names_and_categories_on_generated_capture(samples, fc, name, category):
    t = decode(samples["pcap"]).tables["modbus"]
    rows = [
        r
        for r in t.select(["func_code", "func_name", "category"]).to_pylist()
        if r["func_code"] == fc
    ]
    assert rows and all(r["func_name"] == name and r["category"] == category for r in rows)


def test_generated_modbus_matches_truth(samples):
    truth = samples["truth"]
    t = decode(samples["pcap"]).tables["modbus"]
    got = list(
        zip(
            t.column("frame").to_pylist(),
            t.column("trans_id").to_pylist(),
            t.column("func_code").to_pylist(),
            strict=True,
        )
    )
    want = [(m.frame, m.trans_id, m.function & 0x7F) for m in truth.modbus]
    assert got == want


def test_non_modbus_on_port_502_is_not_modbus(corpus):
    """A DCE/RPC scan of port 502 (second connection) yields no Modbus rows."""
    d = decode(Path(corpus) / "modbus/zeek__modbus-and-non-modbus-p502.pcap")
    t = d.tables["modbus"]
    frames = t.column("frame").to_pylist()
    assert frames == [4, 5, 7, 8, 10, 11, 13, 14, 16, 17, 19, 20]
    flows = {
        r["src_port"]: r["app_protocol"]
        for r in d.flows.select(["src_port", "app_protocol"]).to_pylist()
    }
    assert flows[3082] == "modbus" and flows[38129] == ""
