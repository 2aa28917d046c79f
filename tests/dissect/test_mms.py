"""MMS over ISO-on-TCP: field-exact against Wireshark over every IEC 61850 corpus capture
(MMS PDUs and the ACSE association around them); recognition by content (S7 on port 102 is
not MMS, MMS is not S7); COTP segmentation; truncated and mutated PDUs."""

from __future__ import annotations

import math
import random
import struct
from pathlib import Path
from typing import Any

from otsight.dissect import mms as M
from otsight.encode.pcapfile import PcapWriter
from otsight.encode.tcp_session import TcpConversation
from otsight.testing.decode import decode
from tests.dissect.tshark_diff import (
    SKIP,
    Comparison,
    as_int,
    corpus_files,
    decoded_corpus,
    first,
    ours_by_frame,
    tshark_pdus,
    values,
)

COLUMNS = [
    "pdu_type",
    "invoke_id",
    "service",
    "unconfirmed_service",
    "object_names",
    "domain",
    "program_invocation",
    "object_class",
    "identifiers",
    "more_follows",
    "data_count",
    "data",
    "data_access_errors",
    "error_class",
    "error_code",
    "reject_type",
    "reject_code",
    "vendor_name",
    "model_name",
    "revision",
    "local_detail",
    "max_serv_outstanding_calling",
    "max_serv_outstanding_called",
    "data_structure_nesting_level",
    "version_number",
    "parameter_cbb",
    "services_supported",
]

PDU_KEYS = {
    "mms.confirmed_RequestPDU_element": 0,
    "mms.confirmed_ResponsePDU_element": 1,
    "mms.confirmed_ErrorPDU_element": 2,
    "mms.unconfirmed_PDU_element": 3,
    "mms.rejectPDU_element": 4,
    "mms.cancel_RequestPDU": 5,
    "mms.cancel_ResponsePDU": 6,
    "mms.cancel_ErrorPDU_element": 7,
    "mms.initiate_RequestPDU_element": 8,
    "mms.initiate_ResponsePDU_element": 9,
    "mms.initiate_ErrorPDU_element": 10,
    "mms.conclude_RequestPDU_element": 11,
    "mms.conclude_ResponsePDU_element": 12,
    "mms.conclude_ErrorPDU_element": 13,
}


def _top(p) -> tuple[int | None, Any]:
    for key, val in p["mms"].items():
        if key in PDU_KEYS:
            return PDU_KEYS[key], val
    return None, None


def _pdu_type(p):
    return _top(p)[0]


def _invoke(p):
    kind, body = _top(p)
    if kind in (5, 6):
        return as_int(body)
    if kind in (0, 1, 2):
        return as_int(first(body, "mms.invokeID"))
    if kind in (4, 7):
        return as_int(first(body, "mms.originalInvokeID"))
    return None


def _service(p):
    kind, body = _top(p)
    if kind == 2:
        return SKIP  # Wireshark does not pair errors with requests; otsight fills it in
    if kind not in (0, 1):
        return None
    key = "mms.confirmedServiceRequest" if kind == 0 else "mms.confirmedServiceResponse"
    return as_int(body.get(key)) if isinstance(body, dict) else None


def _unconfirmed(p):
    kind, body = _top(p)
    return as_int(body.get("mms.unconfirmedService")) if kind == 3 else None


def _object_names(p):
    """Every ObjectName (vmd-specific, domain-specific, aa-specific) in document order."""
    found: list[str] = []

    def walk(n: Any) -> None:
        if isinstance(n, dict):
            for k, v in n.items():
                if k == "mms.vmd_specific":
                    found.extend(v if isinstance(v, list) else [v])
                elif k == "mms.aa_specific":
                    found.extend("@aa/" + x for x in (v if isinstance(v, list) else [v]))
                elif k == "mms.domain_specific_element":
                    for d in v if isinstance(v, list) else [v]:
                        found.append(f"{d.get('mms.domainId')}/{d.get('mms.itemId')}")
                else:
                    walk(v)
        elif isinstance(n, list):
            for x in n:
                walk(x)

    walk(p["mms"])
    return found or None


_DOMAIN_KEYS = (
    "mms.domainSpecific",
    "mms.domainName",
    "mms.deleteDomain",
    "mms.getDomainAttributes",
    "mms.initiateUploadSequence",
    "mms.downloadSegment",
)
_PI_KEYS = (
    "mms.programInvocationName",
    "mms.deleteProgramInvocation",
    "mms.getProgramInvocationAttributes",
)


def _request_string(keys):
    def get(p):
        kind, body = _top(p)
        if kind != 0:
            return None
        for k in keys:
            v = first(body, k)
            if v is not None:
                return v
        return None

    return get


def _object_class(p):
    kind, body = _top(p)
    return as_int(first(body, "mms.objectClass")) if kind == 0 else None


def _identifiers(p):
    kind, body = _top(p)
    if kind != 1:
        return None
    tree = first_dict(body, "mms.listOfIdentifier_tree")
    if tree is None:
        return None
    return values(tree, "mms.Identifier")


def first_dict(node: Any, name: str) -> Any:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == name:
                return v
            got = first_dict(v, name)
            if got is not None:
                return got
    elif isinstance(node, list):
        for x in node:
            got = first_dict(x, name)
            if got is not None:
                return got
    return None


def _more_follows(p):
    kind, body = _top(p)
    v = first(body, "mms.moreFollows") if kind == 1 else None
    return None if v is None else v == "1"


def _data_count(p):
    kind, body = _top(p)
    svc = _service(p)
    if kind == 0 and svc == 5:
        return as_int(first(body, "mms.listOfData"))
    if (kind == 1 and svc == 4) or kind == 3:
        return as_int(first(body, "mms.listOfAccessResult"))
    if kind == 1 and svc == 5:
        return as_int(first(body, "mms.write"))
    return None


def _failures(p):
    kind, body = _top(p)
    if kind not in (1, 3):
        return None
    errs = [int(v) for v in values(body, "mms.failure")]
    return errs or None


DATA_KEYS = {
    "boolean": "mms.boolean",
    "integer": "mms.integer",
    "unsigned": "mms.unsigned",
    "bcd": "mms.bcd",
    "visible-string": "mms.data.visible-string",
    "mMSString": "mms.mMSString",
    "octet-string": "mms.data.octet-string",
    "objId": "mms.objId",
}


def _norm(kind: str, value: str | None) -> Any:
    if value is None:
        return None
    if kind == "boolean":
        return value in ("1", "true", "True")
    if kind in ("integer", "unsigned", "bcd"):
        return int(value)
    if kind == "octet-string":
        return value.removeprefix("0x").replace(":", "").lower()
    if kind == "floating-point":
        try:
            v = float(value)
        except ValueError:
            return value
        return round(v, 4) if math.isfinite(v) else str(v)
    return value


def _ws_float(raw: str | None) -> Any:
    if raw is None:
        return None
    b = bytes.fromhex(raw.replace(":", ""))
    if len(b) == 5 and b[0] == 8:
        return _norm("floating-point", repr(struct.unpack(">f", b[1:])[0]))
    return "0x" + b.hex()


def _ws_entry(code: str, sub: dict) -> tuple[str, Any]:
    kind = M._ber.DATA_TYPES.get(int(code), f"tag_{code}")
    if kind == "bit-string":
        raw = sub.get("mms.data_bit-string")
        pad = sub.get("ber.bitstring.padding")
        return kind, None if raw is None else f"{raw.replace(':', '')}/{pad}"
    if kind == "floating-point":
        return kind, _ws_float(sub.get("mms.floating_point"))
    key = DATA_KEYS.get(kind)
    return kind, _norm(kind, sub.get(key)) if key else None


def _data(p):
    """Values written (write request) or read / reported (success results), as
    (type, value) for scalar types and (type, None) for the others."""
    kind, body = _top(p)
    svc = _service(p)
    out: list[tuple[str, Any]] = []
    if kind == 0 and svc == 5:
        tree = first_dict(body, "mms.listOfData_tree") or {}
        codes = tree.get("mms.Data", [])
        subs = tree.get("mms.Data_tree", [])
        codes = codes if isinstance(codes, list) else [codes]
        subs = subs if isinstance(subs, list) else [subs]
        for k, code in enumerate(codes):
            out.append(_ws_entry(code, subs[k] if k < len(subs) else {}))
    elif (kind == 1 and svc == 4) or kind == 3:
        tree = first_dict(body, "mms.listOfAccessResult_tree") or {}
        subs = tree.get("mms.AccessResult_tree", [])
        subs = subs if isinstance(subs, list) else [subs]
        for sub in subs:
            if "mms.success" in sub:
                out.append(_ws_entry(sub["mms.success"], sub.get("mms.success_tree", {})))
    else:
        return None
    return out


def _ours_data(entries):
    if entries is None:
        return None
    out = []
    for e in entries:
        kind, _, value = e.partition(":")
        if kind == "bit-string":
            out.append((kind, value))
        elif kind in DATA_KEYS or kind == "floating-point":
            out.append((kind, _norm(kind, value)))
        else:
            out.append((kind, None))
    return out


def _error(name):
    def get(p):
        kind, body = _top(p)
        if kind not in (2, 7, 10, 13):
            return None
        cls = first(body, "mms.errorClass")
        if name == "error_class":
            return as_int(cls)
        tree = first_dict(body, "mms.errorClass_tree") or {}
        return as_int(next(iter(tree.values()), None)) if tree else None

    return get


def _reject(name):
    def get(p):
        kind, body = _top(p)
        if kind != 4:
            return None
        reason = as_int(first(body, "mms.rejectReason"))
        if name == "reject_type":
            return reason
        tree = first_dict(body, "mms.rejectReason_tree") or {}
        return as_int(next(iter(tree.values()), None)) if tree else None

    return get


def _init(req_key, resp_key, conv=as_int):
    def get(p):
        kind, body = _top(p)
        key = req_key if kind == 8 else resp_key if kind == 9 else None
        if key is None:
            return None
        v = first(body, key)
        return None if v is None else conv(v)

    return get


def _bits(v: str) -> str:
    return v.replace(":", "").lower()


def _identify(key):
    def get(p):
        kind, body = _top(p)
        return first(body, key) if kind == 1 else None

    return get


FIELDS = {
    "pdu_type": _pdu_type,
    "invoke_id": _invoke,
    "service": _service,
    "unconfirmed_service": _unconfirmed,
    "object_names": _object_names,
    "domain": _request_string(_DOMAIN_KEYS),
    "program_invocation": _request_string(_PI_KEYS),
    "object_class": _object_class,
    "identifiers": _identifiers,
    "more_follows": _more_follows,
    "data_count": _data_count,
    "data": _data,
    "data_access_errors": _failures,
    "error_class": _error("error_class"),
    "error_code": _error("error_code"),
    "reject_type": _reject("reject_type"),
    "reject_code": _reject("reject_code"),
    "vendor_name": _identify("mms.vendorName"),
    "model_name": _identify("mms.modelName"),
    "revision": _identify("mms.revision"),
    "local_detail": _init("mms.localDetailCalling", "mms.localDetailCalled"),
    "max_serv_outstanding_calling": _init(
        "mms.proposedMaxServOutstandingCalling", "mms.negociatedMaxServOutstandingCalling"
    ),
    "max_serv_outstanding_called": _init(
        "mms.proposedMaxServOutstandingCalled", "mms.negociatedMaxServOutstandingCalled"
    ),
    "data_structure_nesting_level": _init(
        "mms.proposedDataStructureNestingLevel", "mms.negociatedDataStructureNestingLevel"
    ),
    "version_number": _init("mms.proposedVersionNumber", "mms.negociatedVersionNumber"),
    "parameter_cbb": _init("mms.proposedParameterCBB", "mms.negociatedParameterCBB", _bits),
    "services_supported": _init(
        "mms.servicesSupportedCalling", "mms.servicesSupportedCalled", _bits
    ),
}

ACSE_COLUMNS = [
    "acse_pdu",
    "application_context",
    "acse_result",
    "acse_reason",
    "called_ap_title",
    "called_ae_qualifier",
    "calling_ap_title",
    "calling_ae_qualifier",
]
ACSE_KEYS = {
    "acse.aarq_element": "aarq",
    "acse.aare_element": "aare",
    "acse.rlrq_element": "rlrq",
    "acse.rlre_element": "rlre",
    "acse.abrt_element": "abrt",
}


def _acse_top(p):
    for k, v in p["acse"].items():
        if k in ACSE_KEYS:
            return ACSE_KEYS[k], v
    return None, {}


def _node(body, name: str, kind: str | None):
    if kind == "aare":  # otsight puts the responder's title in called_*
        name = name.replace("called", "responding")
    return first_dict(body, name + "_tree")


def _title(name):
    def get(p):
        kind, body = _acse_top(p)
        node = _node(body, name, kind)
        return first(node, "acse.ap_title_form2") if node is not None else None

    return get


def _qualifier(name):
    def get(p):
        kind, body = _acse_top(p)
        node = _node(body, name, kind)
        return as_int(first(node, "acse.aso_qualifier_form2")) if node is not None else None

    return get


ACSE_FIELDS = {
    "acse_pdu": lambda p: _acse_top(p)[0],
    "application_context": lambda p: first(_acse_top(p)[1], "acse.aSO_context_name"),
    "acse_result": lambda p: as_int(first(_acse_top(p)[1], "acse.result")),
    "acse_reason": lambda p: (
        as_int(first(_acse_top(p)[1], "acse.reason"))
        if _acse_top(p)[0] in ("rlrq", "rlre")
        else as_int(first(_acse_top(p)[1], "acse.abort_source"))
        if _acse_top(p)[0] == "abrt"
        else None
    ),
    "called_ap_title": _title("acse.called_AP_title"),
    "called_ae_qualifier": _qualifier("acse.called_AE_qualifier"),
    "calling_ap_title": _title("acse.calling_AP_title"),
    "calling_ae_qualifier": _qualifier("acse.calling_AE_qualifier"),
}


def _ours(table):
    mms = table.filter(table.column("pdu_type").is_valid())
    rows = ours_by_frame(mms, COLUMNS)
    for pdus in rows.values():
        for r in pdus:
            r["data"] = _ours_data(r["data"])
    acse = table.filter(table.column("acse_pdu").is_valid())
    return rows, ours_by_frame(acse, ACSE_COLUMNS)


def test_mms_fields_match_wireshark(corpus, tshark):
    cmp = Comparison("mms")
    acse_cmp = Comparison("mms")
    pdus = 0
    for row, path, d in decoded_corpus(corpus, "iec61850", at_least=40):
        decode_as = row.get("decode_as", "")
        theirs = tshark_pdus(tshark, path, ["mms"], "mms", decode_as)
        theirs_acse = tshark_pdus(tshark, path, ["acse"], "acse", decode_as)
        pdus += sum(len(v) for v in theirs.values())
        ours, ours_acse = _ours(d.tables["mms"])
        cmp.join(row["local_path"], ours, theirs, FIELDS)
        acse_cmp.join(row["local_path"], ours_acse, theirs_acse, ACSE_FIELDS)
    assert pdus >= 200
    print("== MMS PDUs")
    cmp.assert_target()
    print("== ACSE APDUs of the MMS associations")
    acse_cmp.assert_target()


# ---- recognition by content -------------------------------------------------------------------
def test_s7_on_port_102_is_not_mms(corpus):
    """Every S7comm capture of the corpus: S7 PDUs (and S7comm-plus, COTP connection
    management) on TCP 102 produce no mms row and no mms weird row."""
    rows = corpus_files("s7comm")
    assert len(rows) >= 50
    s7_rows = 0
    for row in rows:
        d = decode(Path(corpus) / row["local_path"])
        assert not d.failures, d.failures
        assert d.tables["mms"].num_rows == 0, row["local_path"]
        layers = set(d.tables["weird"].column("layer").to_pylist())
        assert "mms" not in layers, row["local_path"]
        s7_rows += d.tables["s7comm"].num_rows
    assert s7_rows > 1000


def test_mms_is_not_s7(corpus):
    """Every IEC 61850 capture: no S7 row, and no S7 / COTP weird row on a PDU that is MMS
    (the only COTP weird rows are the broken TPDUs with length indicator 0 that the
    generated mms-* captures contain, which are not MMS either)."""
    for row in corpus_files("iec61850"):
        d = decode(Path(corpus) / row["local_path"])
        assert d.tables["s7comm"].num_rows == 0 and d.tables["s7comm_plus"].num_rows == 0
        mms_frames = set(d.tables["mms"].column("frame").to_pylist())
        w = d.tables["weird"].select(["frame", "name", "layer"]).to_pylist()
        s7_weird = [x for x in w if x["layer"] in ("s7comm", "cotp")]
        assert not [x for x in s7_weird if x["frame"] in mms_frames], row["local_path"]
        assert {x["name"] for x in s7_weird} <= {"cotp_bad_length_indicator"}


def test_snaplen_cut_substation_capture(corpus):
    """testing_tools__mms_hdz.pcap (17,453 frames, snap length cut): 15,779 frames are TCP
    ACKs cut inside their TCP header (Wireshark: malformed); the 1,674 frames of 98 bytes
    carry the first 32 bytes of a 39-byte TPKT (COTP DT, session GT+DT, presentation PDV,
    an MMS confirmed-RequestPDU getNameList) — the rest was never captured. Nothing whole
    is left to decode: no mms row, each cut PDU is a stream-layer weird row, no failure."""
    d = decode(Path(corpus) / "iec61850/testing_tools__mms_hdz.pcap")
    assert not d.failures and d.packets == 17_453
    assert d.tables["mms"].num_rows == 0 and d.tables["s7comm"].num_rows == 0
    names = d.tables["weird"].column("name").to_pylist()
    assert names.count("tcp_header_cut_by_snaplen") == 15_779
    assert names.count("pdu_incomplete") == 1_674


# ---- known values -----------------------------------------------------------------------------
def _mms_rows(path):
    d = decode(path)
    assert not d.failures
    return d, d.tables["mms"].drop_columns(["ts"]).to_pylist()


def test_iccp_association_and_services(corpus):
    d, rows = _mms_rows(
        Path(corpus) / "iec61850/ICS-Security-Tools__8d7c7db0-9804-012b-b2a6-0016cb8cea27.pcap"
    )
    by = {r["frame"]: r for r in rows}
    aarq = by[11]
    assert aarq["acse_pdu"] == "aarq" and aarq["pdu_type_name"] == "initiate_request"
    assert aarq["application_context"] == "1.0.9506.1.1" and aarq["category"] == "session"
    assert by[14]["acse_result"] == 0 and by[14]["request_frame"] == 11
    ident = by[29]
    assert ident["vendor_name"] == "AREVA T&D Corporation" and ident["model_name"] == "e-terracomm"
    assert ident["request_frame"] == 17 and ident["latency"] > 0
    assert by[35]["service_name"] == "get_name_list" and by[35]["domain"] == "KIRKLAND"
    assert by[35]["category"] == "discovery" and "T0861" in by[35]["techniques"]
    assert by[38]["identifiers"] == ["EMS_ANALOG_ICCP_IN", "EMS_STATUS_ICCP_IN"]
    w = by[59]
    assert w["service_name"] == "write" and w["object_names"] == ["KIRKLAND/CITEC_TS0"]
    assert w["category"] == "write" and w["techniques"] == ["T0855", "T0836"]
    assert w["data_count"] == 1 and w["data"][0].startswith("structure:{")
    rep = by[68]
    assert rep["unconfirmed_service_name"] == "information_report"
    assert rep["object_names"] == ["KIRKLAND/EMS_ANALOG_ICCP_IN"] and rep["data_count"] == 19


def test_program_invocation_and_domain_services(corpus):
    expect = {
        "mms-killRequest": ("kill", "program_invocation", "R395024397Application_1", "T0816"),
        "mms-resetRequest": ("reset", "program_invocation", "R395024397Application_1", "T0816"),
        "mms-deleteProgramInvocation": (
            "delete_program_invocation",
            "program_invocation",
            "MuSecurity_Application_1",
            "T0843",
        ),
        "mms-getDomainAttributes": ("get_domain_attributes", "domain", "DTLogFilesDomain", "T0888"),
        "mms-initiateUploadSequence": (
            "initiate_upload_sequence",
            "domain",
            "DTLogFilesDomain",
            "T0845",
        ),
    }
    for name, (svc, col, value, tech) in expect.items():
        _, rows = _mms_rows(Path(corpus) / f"iec61850/ICS-Security-Tools__{name}.pcap")
        r = next(r for r in rows if r["service_name"] == svc)
        assert r[col] == value and tech in r["techniques"], name
        assert r["carried_by"] == "cotp"
    _, rows = _mms_rows(Path(corpus) / "iec61850/ICS-Security-Tools__mms-stopRequest.pcap")
    stop = next(r for r in rows if r["service_name"] == "stop")
    assert stop["category"] == "control" and stop["techniques"] == ["T0858", "T0816"]


def test_service_error_is_paired_with_its_request(corpus):
    _, rows = _mms_rows(Path(corpus) / "iec61850/nDPI__iso9506-1-mms.pcap")
    by = {r["frame"]: r for r in rows}
    err = by[12]
    assert err["pdu_type_name"] == "confirmed_error" and err["request_frame"] == 10
    assert err["service_name"] == "get_variable_access_attributes"  # from the request
    assert (err["error_class_name"], err["error_code"]) == ("access", 2)
    assert [by[f]["acse_pdu"] for f in (17, 18)] == ["rlrq", "rlre"]
    assert by[17]["pdu_type"] is None and by[17]["is_request"] is True


# ---- crafted PDUs ---------------------------------------------------------------------------
def _tlv(tag: int | bytes, value: bytes) -> bytes:
    t = bytes([tag]) if isinstance(tag, int) else tag
    n = len(value)
    if n < 0x80:
        return t + bytes([n]) + value
    if n < 0x100:
        return t + bytes([0x81, n]) + value
    return t + b"\x82" + struct.pack("!H", n) + value


def _int(v: int) -> bytes:
    return v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True)


def tpkt(payload: bytes, eot: bool = True) -> bytes:
    body = b"\x02\xf0" + (b"\x80" if eot else b"\x00") + payload
    return b"\x03\x00" + struct.pack("!H", 4 + len(body)) + body


def session_dt(mms_pdu: bytes, ctx: int = 3) -> bytes:
    pdv = _tlv(0x30, _tlv(0x02, _int(ctx)) + _tlv(0xA0, mms_pdu))
    return b"\x01\x00\x01\x00" + _tlv(0x61, pdv)


def confirmed_request(invoke: int, service: bytes) -> bytes:
    return _tlv(0xA0, _tlv(0x02, _int(invoke)) + service)


def confirmed_response(invoke: int, service: bytes) -> bytes:
    return _tlv(0xA1, _tlv(0x02, _int(invoke)) + service)


def domain_name(domain: bytes, item: bytes) -> bytes:
    return _tlv(0xA1, _tlv(0x1A, domain) + _tlv(0x1A, item))


def _var(domain: bytes, item: bytes) -> bytes:
    return _tlv(0x30, _tlv(0xA0, domain_name(domain, item)))


def _conversation(tmp_path: Path, exchanges: list[tuple[bool, bytes]], name="c.pcap") -> Path:
    path = tmp_path / name
    conv = TcpConversation(
        "00:00:00:00:00:01", "10.0.0.1", 50000, "00:00:00:00:00:02", "10.0.0.2", 102, 1, 1
    )
    with open(path, "wb") as fh:
        w = PcapWriter(fh)
        ts = 1_700_000_000_000_000_000
        for f in conv.handshake():
            w.write(ts, f)
        for k, (from_client, data) in enumerate(exchanges):
            for f in conv.send(from_client, data):
                w.write(ts + (k + 1) * 1_000_000, f)
    return path


WRITE_REQ = confirmed_request(
    7,
    _tlv(
        0xA5,
        _tlv(0xA0, _var(b"IED1CTRL", b"CSWI1$CO$Pos$Oper") + _var(b"IED1CTRL", b"GGIO1$SP$x"))
        + _tlv(0xA0, _tlv(0x83, b"\x01") + _tlv(0x85, _int(-5))),
    ),
)
WRITE_RESP = confirmed_response(7, _tlv(0xA5, _tlv(0x81, b"") + _tlv(0x80, _int(3))))


def test_crafted_write_with_failure_and_pairing(tmp_path):
    path = _conversation(
        tmp_path, [(True, tpkt(session_dt(WRITE_REQ))), (False, tpkt(session_dt(WRITE_RESP)))]
    )
    _, rows = _mms_rows(path)
    req, resp = rows
    assert req["object_names"] == ["IED1CTRL/CSWI1$CO$Pos$Oper", "IED1CTRL/GGIO1$SP$x"]
    assert req["data"] == ["boolean:true", "integer:-5"] and req["data_count"] == 2
    assert resp["data_access_errors"] == [3] and resp["data_count"] == 2
    assert resp["data_access_error_names"] == ["object_access_denied"]
    assert resp["request_frame"] == req["frame"] and resp["service_name"] == "write"


def test_crafted_rare_pdus(tmp_path):
    reject = _tlv(0xA4, _tlv(0x80, _int(9)) + _tlv(0x81, _int(2)))
    cancel_err = _tlv(0xA7, _tlv(0x80, _int(4)) + _tlv(0xA1, _tlv(0xA0, _tlv(0x8A, _int(1)))))
    delete_domain = confirmed_request(10, _tlv(b"\x9f\x24", b"PROGRAM1"))
    file_open = confirmed_request(
        11,
        _tlv(
            b"\xbf\x48",
            _tlv(0xA0, _tlv(0x19, b"/cfg/") + _tlv(0x19, b"ied.cid")) + _tlv(0x81, b"\x00"),
        ),
    )
    gnl_resp = confirmed_response(
        12, _tlv(0xA1, _tlv(0xA0, _tlv(0x1A, b"LD0") + _tlv(0x1A, b"CTRL")) + _tlv(0x81, b"\xff"))
    )
    info = _tlv(
        0xA3,
        _tlv(
            0xA0,
            _tlv(0xA1, _tlv(0x80, b"RPT"))
            + _tlv(0xA0, _tlv(0x8A, b"brcb01") + _tlv(0x84, b"\x02\x40") + _tlv(0x80, _int(10))),
        ),
    )
    path = _conversation(
        tmp_path,
        [
            (False, tpkt(session_dt(reject))),
            (False, tpkt(session_dt(cancel_err))),
            (True, tpkt(session_dt(delete_domain))),
            (True, tpkt(session_dt(file_open))),
            (False, tpkt(session_dt(gnl_resp))),
            (False, tpkt(session_dt(info))),
        ],
    )
    d, rows = _mms_rows(path)
    r, ce, dd, fo, gnl, rep = rows
    assert (r["pdu_type_name"], r["invoke_id"], r["reject_type_name"], r["reject_code"]) == (
        "reject",
        9,
        "confirmed_request_pdu",
        2,
    )
    assert (ce["pdu_type_name"], ce["invoke_id"], ce["error_class_name"], ce["error_code"]) == (
        "cancel_error",
        4,
        "cancel",
        1,
    )
    assert dd["service_name"] == "delete_domain" and dd["domain"] == "PROGRAM1"
    assert dd["category"] == "program" and "T0843" in dd["techniques"]
    assert fo["service_name"] == "file_open" and fo["file_name"] == "/cfg/ied.cid"
    assert gnl["identifiers"] == ["LD0", "CTRL"] and gnl["more_follows"] is True
    assert rep["object_names"] == ["RPT"] and rep["data_count"] == 3
    assert rep["data"] == ["visible-string:brcb01", "bit-string:40/2"]
    assert rep["data_access_errors"] == [10]
    assert d.tables["weird"].num_rows == 0


def test_tsdu_in_several_cotp_tpdus(tmp_path):
    """An MMS PDU larger than the TPDU size arrives in three DT TPDUs (EOT on the last)."""
    big = confirmed_response(
        20, _tlv(0xA1, _tlv(0xA0, b"".join(_tlv(0x1A, b"LD%04d" % k) for k in range(150))))
    )
    tsdu = session_dt(big)
    third = len(tsdu) // 3
    parts = [tsdu[:third], tsdu[third : 2 * third], tsdu[2 * third :]]
    path = _conversation(
        tmp_path,
        [
            (
                True,
                tpkt(
                    session_dt(confirmed_request(20, _tlv(0xA1, _tlv(0xA0, _tlv(0x80, b"\x09")))))
                ),
            ),
            (False, tpkt(parts[0], eot=False)),
            (False, tpkt(parts[1], eot=False)),
            (False, tpkt(parts[2])),
        ],
    )
    d, rows = _mms_rows(path)
    assert len(rows) == 2
    resp = rows[1]
    assert resp["frame"] == 7 and resp["request_frame"] == rows[0]["frame"]
    assert len(resp["identifiers"]) == 150 and resp["identifiers"][-1] == "LD0149"
    assert rows[0]["object_class_name"] == "domain"
    assert d.tables["weird"].num_rows == 0


def test_truncated_and_malformed_pdus_become_weird(tmp_path):
    cut = WRITE_REQ[:-4]  # inner lengths point past the TSDU
    bad_pres = b"\x01\x00\x01\x00" + _tlv(0x61, _tlv(0x30, _tlv(0x02, b"\x03")))  # no PDV
    bad_ses = b"\x0d\x40\x05\x06"  # Connect SPDU whose parameters run past the TSDU
    path = _conversation(
        tmp_path,
        [
            (True, tpkt(session_dt(cut))),
            (True, tpkt(bad_pres)),
            (True, tpkt(bad_ses)),
        ],
    )
    d, rows = _mms_rows(path)
    names = sorted(d.tables["weird"].column("name").to_pylist())
    assert names == ["iso_presentation_malformed", "iso_session_malformed", "mms_truncated"]
    assert len(rows) == 1 and rows[0]["pdu_type_name"] == "confirmed_request"
    assert rows[0]["invoke_id"] == 7 and rows[0]["service_name"] == "write"


def test_decoders_never_raise_on_mutated_pdus(corpus):
    """The Python decoders alone, on 20,000 mutants of real MMS and ACSE PDUs."""
    from otsight.dissect._ber import tlv

    seeds: list[bytes] = []
    for local in (
        "iec61850/ICS-Security-Tools__8d7c7db0-9804-012b-b2a6-0016cb8cea27.pcap",
        "iec61850/nDPI__iso9506-1-mms.pcap",
    ):
        for pdu in decode(Path(corpus) / local).pdus:
            data = pdu.data
            for start in range(7, min(len(data), 60)):
                t = tlv(data, start, len(data))
                if (
                    t is not None
                    and t[4] == len(data)
                    and data[start] in (0xA0, 0xA1, 0xA2, 0xA3, 0xA8, 0xA9, 0x60, 0x61, 0x62, 0x63)
                ):
                    seeds.append(data[start:])
                    break
    assert len(seeds) >= 100
    rng = random.Random(61850)
    for _ in range(20_000):
        b = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            how = rng.randrange(4)
            if how == 0 and b:
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            elif how == 1 and b:
                b[rng.randrange(len(b))] = rng.choice((0, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF))
            elif how == 2:
                del b[rng.randrange(len(b) + 1) :]
            elif b:
                a = rng.randrange(len(b))
                b[a:a] = bytes(b[a : a + 8]) * rng.randint(2, 30)
        rows = M._Rows(1)
        M.decode_mms(rows, 0, bytes(b))
        M.decode_acse(rows, 0, bytes(b))


def test_lying_integers_are_left_null(tmp_path):
    """Found by the fuzzer: integers wider than their column (error code, object class,
    service tag) must not fail the batch nor wrap around."""
    err = _tlv(0xA2, _tlv(0x80, _int(1)) + _tlv(0xA2, _tlv(0xA0, _tlv(0x87, _int(1 << 35)))))
    gnl = confirmed_request(2, _tlv(0xA1, _tlv(0xA0, _tlv(0x80, _int(70_000)))))
    odd = confirmed_request(3, _tlv(b"\xbf\x84\x80\x00", b""))  # service tag 65536
    path = _conversation(
        tmp_path,
        [
            (False, tpkt(session_dt(err))),
            (True, tpkt(session_dt(gnl))),
            (True, tpkt(session_dt(odd))),
        ],
    )
    d, rows = _mms_rows(path)
    e, g, o = rows
    assert e["error_class"] == 7 and e["error_code"] is None
    assert g["service_name"] == "get_name_list" and g["object_class"] is None
    assert o["invoke_id"] == 3 and o["service"] is None and o["service_name"] is None
