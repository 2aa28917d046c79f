"""OPC UA binary: field-exact against Wireshark over the corpus; crafted chunks Wireshark
cannot check (chunking, aborts, encryption decisions, pairing); content detection;
robustness on mutated real chunks."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from otsight.capture import framing
from otsight.dissect import opcua as U
from otsight.testing.decode import decode
from tests.dissect.tshark_diff import (
    Comparison,
    as_int,
    decoded_corpus,
    field_int,
    field_present,
    first,
    ours_by_frame,
    tshark_pdus,
)
from tests.encode_capture import write_tcp_exchanges

COLUMNS = [
    "message_type",
    "chunk_type",
    "message_size",
    "secure_channel_id",
    "security_policy",
    "security_mode",
    "security_token_id",
    "sequence_number",
    "request_id",
    "service",
    "request_handle",
    "status_code",
    "token_request_type",
    "endpoint_url",
    "protocol_version",
    "receive_buffer_size",
    "send_buffer_size",
    "max_message_size",
    "max_chunk_count",
    "error_code",
    "error_reason",
]


def _o(p):
    return p["opcua"]


_int = partial(field_int, "opcua")
_present = partial(field_present, "opcua")


def _is_opn(p):
    return first(_o(p), "opcua.transport.type") == "OPN"


def _only_opn(name):
    """A field of the OpenSecureChannel body (GetEndpoints answers repeat some names)."""
    return _present(name, when=_is_opn)


def _token(p):
    v = first(_o(p), "opcua.security.tokenid")
    if v is None and first(_o(p), "opcua.transport.type") == "OPN":
        v = first(_o(p), "opcua.TokenId")  # the token an OpenSecureChannel response issues
    return as_int(v)


FIELDS = {
    "message_type": lambda p: first(_o(p), "opcua.transport.type"),
    "chunk_type": lambda p: first(_o(p), "opcua.transport.chunk"),
    "message_size": _int("opcua.transport.size"),
    "secure_channel_id": _int("opcua.transport.scid"),
    "security_policy": _present("opcua.security.spu", str),
    "security_mode": _only_opn("opcua.MessageSecurityMode"),  # declared in the OPN request
    "security_token_id": _token,
    "sequence_number": _int("opcua.security.seq"),
    "request_id": _int("opcua.security.rqid"),
    "service": _int("opcua.servicenodeid.numeric"),
    "request_handle": _int("opcua.RequestHandle"),
    "status_code": _int("opcua.ServiceResult"),
    "token_request_type": _only_opn("opcua.SecurityTokenRequestType"),
    "endpoint_url": _present("opcua.transport.endpoint", str),
    "protocol_version": _int("opcua.transport.ver"),
    "receive_buffer_size": _int("opcua.transport.rbs"),
    "send_buffer_size": _int("opcua.transport.sbs"),
    "max_message_size": _int("opcua.transport.mms"),
    "max_chunk_count": _int("opcua.transport.mcc"),
    "error_code": _int("opcua.transport.error"),
    "error_reason": _present("opcua.transport.reason", str),
}


def _ours(table):
    rows = ours_by_frame(table, COLUMNS)
    for pdus in rows.values():
        for r in pdus:
            if r["message_type"] != "OPN":
                r["security_mode"] = None  # otsight carries the channel's mode on every chunk
            if r["message_type"] == "ERR" and r["error_reason"] is None:
                r["error_reason"] = ""  # Wireshark shows an OPC UA null String as empty
    return rows


# OPC UA flows that otsight finds by content but the manifest's decode_as does not map for
# tshark (it maps only the port of the main flow); checked field by field too.
EXTRA_DECODE_AS = {
    "opcua/testing_tools__opcua.pcap": "-d tcp.port==40840,opcua -d tcp.port==51210,opcua",
}


def test_opcua_fields_match_wireshark(corpus, tshark):
    cmp = Comparison("opcua")
    for row, path, d in decoded_corpus(corpus, "opcua", at_least=30):
        decode_as = " ".join([row.get("decode_as", ""), EXTRA_DECODE_AS.get(row["local_path"], "")])
        theirs = tshark_pdus(tshark, path, ["opcua"], "opcua", decode_as)
        cmp.join(row["local_path"], _ours(d.tables["opcua"]), theirs, FIELDS)
    cmp.assert_target()


# ---- crafted chunks (what Wireshark cannot check: chunking, aborts, encryption, pairing) ----
def _string(text: str | bytes | None) -> bytes:
    if text is None:
        return struct.pack("<i", -1)
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<i", len(raw)) + raw


def _type_id(service: int) -> bytes:
    return bytes([0x01, 0]) + struct.pack("<H", service)


def _request(service: int, handle: int, payload: bytes = b"") -> bytes:
    header = (
        bytes([0x05, 0, 0]) + _string(b"token-bytes")  # AuthenticationToken: opaque, ns 0
        + bytes(8)  # Timestamp
        + struct.pack("<II", handle, 0)  # RequestHandle, ReturnDiagnostics
        + _string(None)  # AuditEntryId
        + struct.pack("<I", 10000)  # TimeoutHint
        + bytes([0, 0, 0])  # AdditionalHeader: null ExtensionObject
    )  # fmt: skip
    return _type_id(service) + header + payload


def _response(service: int, handle: int, result: int = 0, payload: bytes = b"") -> bytes:
    header = (
        bytes(8)
        + struct.pack("<II", handle, result)
        + bytes([0])  # ServiceDiagnostics: empty DiagnosticInfo
        + struct.pack("<i", -1)  # StringTable
        + bytes([0, 0, 0])
    )
    return _type_id(service) + header + payload


def _chunk(kind: bytes, chunk: bytes, body: bytes) -> bytes:
    return kind + chunk + struct.pack("<I", 8 + len(body)) + body


def _hel(url: str) -> bytes:
    return _chunk(b"HEL", b"F", struct.pack("<5I", 0, 65536, 65536, 0, 0) + _string(url))


def _ack() -> bytes:
    return _chunk(b"ACK", b"F", struct.pack("<5I", 0, 65536, 65536, 16777216, 5000))


def _opn(channel: int, policy: str, seq: int, rid: int, body: bytes) -> bytes:
    asym = _string(policy) + _string(None) + _string(None)
    return _chunk(
        b"OPN", b"F", struct.pack("<I", channel) + asym + struct.pack("<II", seq, rid) + body
    )


def _msg(chunk: bytes, channel: int, token: int, seq: int, rid: int, body: bytes, kind=b"MSG"):
    return _chunk(kind, chunk, struct.pack("<IIII", channel, token, seq, rid) + body)


NONE_URI = "http://opcfoundation.org/UA/SecurityPolicy#None"
B256 = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"


def _opn_request(handle: int, mode: int, renew: bool = False) -> bytes:
    return _request(
        446,
        handle,
        struct.pack("<III", 0, int(renew), mode) + _string(b"") + struct.pack("<I", 600000),
    )


def _opn_response(handle: int, channel: int, token: int) -> bytes:
    return _response(
        449, handle, 0, struct.pack("<IIIQI", 0, channel, token, 0, 600000) + _string(b"")
    )


def _write(path: Path, exchanges: list[tuple[bool, bytes]], port: int = 4840) -> None:
    write_tcp_exchanges(path, exchanges, port)


def _rows(d) -> list[dict]:
    return d.tables["opcua"].to_pylist()


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    path = tmp_path_factory.mktemp("opcua") / "crafted.pcap"
    big = bytes(range(256)) * 8
    exchanges = [
        (True, _hel("opc.tcp://plc.example:4840/UA")),  # 1
        (False, _ack()),  # 2
        (True, _opn(0, NONE_URI, 1, 1, _opn_request(0, 1))),  # 3
        (False, _opn(7, NONE_URI, 1, 1, _opn_response(0, 7, 3))),  # 4
        # 5-7: a WriteRequest in three chunks, C C F; 8 its response
        (True, _msg(b"C", 7, 3, 2, 2, _request(673, 11, big[:700]))),
        (True, _msg(b"C", 7, 3, 3, 2, big[700:1400])),
        (True, _msg(b"F", 7, 3, 4, 2, big[1400:1500])),
        (False, _msg(b"F", 7, 3, 2, 2, _response(676, 11))),
        # 9 a CallRequest answered by a ServiceFault (10) with BadUserAccessDenied
        (True, _msg(b"F", 7, 3, 5, 3, _request(712, 12))),
        (False, _msg(b"F", 7, 3, 3, 3, _response(397, 12, 0x801F0000))),
        # 11 a chunk begun and then aborted (12) with a reason
        (True, _msg(b"C", 7, 3, 6, 4, _request(631, 13, big[:300]))),
        (True, _msg(b"A", 7, 3, 7, 4, struct.pack("<I", 0x80800000) + _string("too large"))),
        # 13 an unknown type id on a readable channel; 14 an Error message
        (True, _msg(b"F", 7, 3, 8, 5, _type_id(9999) + bytes(20))),
        (False, _chunk(b"ERR", b"F", struct.pack("<I", 0x807E0000) + _string("bad type"))),
    ]
    _write(path, exchanges)
    d = decode(path)
    assert not d.failures, d.failures
    return d


def test_crafted_handshake_and_channel(crafted):
    rows = _rows(crafted)
    assert len(rows) == 14
    hel, ack, opn_req, opn_resp = rows[:4]
    assert hel["message_type"] == "HEL" and hel["is_request"] and hel["category"] == "session"
    assert hel["endpoint_url"] == "opc.tcp://plc.example:4840/UA"
    assert hel["receive_buffer_size"] == 65536 and hel["protocol_version"] == 0
    assert ack["max_message_size"] == 16777216 and ack["max_chunk_count"] == 5000
    assert opn_req["service_name"] == "OpenSecureChannelRequest"
    assert opn_req["security_policy"] == NONE_URI and opn_req["security_mode_name"] == "None"
    assert opn_req["token_request_type_name"] == "Issue" and not opn_req["encrypted"]
    assert opn_resp["secure_channel_id"] == 7 and opn_resp["security_token_id"] == 3
    assert opn_resp["request_frame"] == opn_req["frame"]
    assert opn_resp["latency"] == pytest.approx(0.01)


def test_crafted_chunked_message_reported_at_its_final_chunk(crafted):
    rows = _rows(crafted)
    first_, middle, final, resp = rows[4:8]
    assert [r["chunk_type"] for r in (first_, middle, final)] == ["C", "C", "F"]
    assert first_["service"] is None and middle["service"] is None
    assert first_["request_id"] == middle["request_id"] == final["request_id"] == 2
    assert final["service_name"] == "WriteRequest" and final["request_handle"] == 11
    assert final["category"] == "write" and final["is_request"]
    assert resp["service_name"] == "WriteResponse" and resp["request_frame"] == final["frame"]
    assert resp["security_policy"] == NONE_URI and resp["security_mode"] == 1


def test_crafted_fault_abort_error_and_weird(crafted):
    rows = _rows(crafted)
    call, fault = rows[8:10]
    assert call["service_name"] == "CallRequest" and call["category"] == "control"
    assert fault["service_name"] == "ServiceFault" and fault["request_frame"] == call["frame"]
    assert fault["status_code"] == 0x801F0000 and fault["status_name"] == "BadUserAccessDenied"
    begun, abort = rows[10:12]
    assert begun["service"] is None and abort["chunk_type"] == "A"
    assert abort["error_code"] == 0x80800000 and abort["error_name"] == "BadTcpMessageTooLarge"
    assert abort["error_reason"] == "too large"
    unknown, err = rows[12:14]
    assert unknown["service"] == 9999 and unknown["service_name"] == "unknown_9999"
    assert err["error_name"] == "BadTcpMessageTypeInvalid" and err["error_reason"] == "bad type"
    weird = [w for w in crafted.tables["weird"].to_pylist() if w["layer"] == "opcua"]
    assert [(w["frame"], w["name"]) for w in weird] == [(unknown["frame"], "opcua_unknown_type_id")]


def _secured(path: Path, sign_only: bool, with_opn: bool = True) -> list[dict]:
    cipher = random.Random(5).randbytes(200)
    body = _request(631, 21, bytes(30)) if sign_only else cipher
    exchanges = []
    if with_opn:
        exchanges += [
            (True, _opn(0, B256, 1, 1, cipher)),
            (False, _opn(9, B256, 1, 1, cipher[::-1])),
        ]
    exchanges += [
        (True, _msg(b"F", 9, 4, 2, 2, body + bytes(32))),  # 32-byte signature
        (False, _msg(b"F", 9, 4, 2, 2, (_response(634, 21) if sign_only else cipher[1:]))),
    ]
    _write(path, exchanges, port=48010)
    d = decode(path)
    assert not d.failures
    return _rows(d)


def test_encrypted_channel_reports_headers_only(tmp_path):
    opn_req, opn_resp, req, resp = _secured(tmp_path / "enc.pcap", sign_only=False)
    for r in (opn_req, opn_resp):
        assert r["encrypted"] and r["security_policy"] == B256
        assert r["sequence_number"] is None and r["request_id"] is None and r["service"] is None
    assert opn_resp["secure_channel_id"] == 9
    for r in (req, resp):
        assert r["encrypted"] and r["security_mode_name"] == "SignAndEncrypt"
        assert r["secure_channel_id"] == 9 and r["security_token_id"] == 4
        assert r["sequence_number"] is None and r["service"] is None
        assert r["is_request"] is None and r["security_policy"] == B256


def test_signed_channel_is_read(tmp_path):
    _, _, req, resp = _secured(tmp_path / "sign.pcap", sign_only=True)
    assert not req["encrypted"] and req["security_mode_name"] == "Sign"
    assert req["service_name"] == "ReadRequest" and req["request_handle"] == 21
    assert resp["service_name"] == "ReadResponse" and resp["request_frame"] == req["frame"]


def test_channel_without_captured_opn_is_never_guessed(tmp_path):
    plain = _secured(tmp_path / "plain.pcap", sign_only=True, with_opn=False)
    assert [r["service_name"] for r in plain] == ["ReadRequest", "ReadResponse"]
    assert all(r["encrypted"] is False and r["security_mode"] is None for r in plain)
    hidden = _secured(tmp_path / "hidden.pcap", sign_only=False, with_opn=False)
    assert all(r["encrypted"] is None and r["service"] is None for r in hidden)
    assert all(r["sequence_number"] is None for r in hidden)


# ---- content detection ----------------------------------------------------------------------
def test_non_opcua_on_port_4840(tmp_path):
    path = tmp_path / "other.pcap"
    _write(
        path,
        [
            (True, b"GET / HTTP/1.1\r\nHost: plc\r\n\r\n"),
            (False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (True, b"HELO mail.example\r\n"),  # "HEL" but no chunk type
            (False, b"\x16\x03\x01\x00\x2a" + bytes(42)),  # TLS record
        ],
    )
    d = decode(path)
    assert not d.failures
    assert d.tables["opcua"].num_rows == 0


def test_opcua_detected_on_any_port(tmp_path):
    path = tmp_path / "port.pcap"
    _write(path, [(True, _hel("opc.tcp://x:1234")), (False, _ack())], port=1234)
    assert [r["message_type"] for r in _rows(decode(path))] == ["HEL", "ACK"]


# ---- robustness ----------------------------------------------------------------------------
def _run_kernels(datas: list[bytes]) -> np.ndarray:
    buf = np.frombuffer(b"".join(datas), np.uint8)  # read-only, as a capture chunk is
    arena = np.zeros(1, np.uint8)
    lengths = np.array([len(x) for x in datas], np.int64)
    off = np.zeros(len(datas), np.int64)
    np.cumsum(lengths[:-1], out=off[1:])
    out = np.empty((len(datas), U.NCOL), np.int64)
    U._fields(buf, arena, np.zeros(len(datas), np.int64), off, lengths, U.SERVICE_KIND,
              U._POLICY_NONE_ARR, out)  # fmt: skip
    return out


_PURE_PYTHON_CHECK = """
import sys
import numpy as np
from otsight.dissect import opcua as U

blob = open(sys.argv[1], "rb").read()
p = n = 0
while p < len(blob):
    size = int.from_bytes(blob[p : p + 4], "big")
    buf = np.frombuffer(blob[p + 4 : p + 4 + size], np.uint8)  # exactly the chunk: no slack
    p += 4 + size
    out = np.empty((1, U.NCOL), np.int64)
    one = np.ones(1, np.int64)
    U._fields(buf, np.zeros(0, np.uint8), one * 0, one * 0, one * size, U.SERVICE_KIND,
              U._POLICY_NONE_ARR, out)
    n += 1
print(n)
"""


def _mutants(corpus, count: int, seed: int) -> list[bytes]:
    seeds = [
        p.data
        for name in (
            "opcua/icsnpp-opcua-binary__open62541_client-server_minimal.pcap",
            "opcua/ICS-Security-Tools__opc-ua-ap-method-wireshark-freeze.pcap",
        )
        for p in decode(Path(corpus) / name, dissect=False).pdus
        if p.protocol == "opcua"
    ]
    assert len(seeds) > 60
    rng = random.Random(seed)
    mutants = []
    for _ in range(count):
        d = bytearray(rng.choice(seeds))
        how = rng.randrange(4)
        if how == 0:
            for _ in range(rng.randrange(1, 6)):
                k = rng.randrange(8, len(d))
                d[k] ^= 1 << rng.randrange(8)
        elif how == 1 and len(d) > 9:
            d = d[: rng.randrange(8, len(d))]
        elif how == 2 and len(d) > 16:
            k = rng.randrange(8, len(d) - 4)
            d[k : k + 4] = rng.choice([b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\0\0\0\x80"])
        else:
            d += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        struct.pack_into("<I", d, 4, len(d))  # the framer has checked the size
        mutants.append(bytes(d))
    return mutants


def test_kernel_never_reads_past_a_chunk(corpus, tmp_path):
    """Pure-Python run of the kernel (NUMBA_DISABLE_JIT): numpy raises on any read past end."""
    mutants = _mutants(corpus, 3000, 1)
    blob = b"".join(len(m).to_bytes(4, "big") + m for m in mutants)
    (tmp_path / "mutants.bin").write_bytes(blob)
    proc = subprocess.run(
        [sys.executable, "-c", _PURE_PYTHON_CHECK, str(tmp_path / "mutants.bin")],
        capture_output=True,
        text=True,
        env=dict(os.environ, NUMBA_DISABLE_JIT="1"),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.strip()) == 3000


def test_kernel_survives_mutated_real_chunks(corpus):
    mutants = _mutants(corpus, 5000, 4840)
    out = _run_kernels(mutants)
    assert (out[:, U.STATUS] != U.OK).any()
    assert ((out[:, U.BODY] >= -1) & (out[:, U.BODY] <= np.array([len(m) for m in mutants]))).all()


def test_framer_bounds():
    ok = np.frombuffer(_hel("opc.tcp://a"), np.uint8)
    assert framing.pdu_length(framing.OPCUA, ok, 0, ok.shape[0]) == ok.shape[0]
    for bad in (b"HELX" + bytes(60), b"HELF\x07\0\0\0" + bytes(60), b"XYZF\x40\0\0\0" + bytes(60)):
        b = np.frombuffer(bad, np.uint8)
        assert framing.pdu_length(framing.OPCUA, b, 0, b.shape[0]) == framing.INVALID
    huge = np.frombuffer(
        b"MSGF" + struct.pack("<I", framing.OPCUA_MAX_LENGTH + 1) + bytes(8), np.uint8
    )
    assert framing.pdu_length(framing.OPCUA, huge, 0, 16) == framing.INVALID


def test_semantics_techniques_exist():
    for t in (631, 673, 712, 527, 461, 467, 446, 428):
        assert t in U.SERVICES
    assert U.SERVICES[673].category == "write" and "T0836" in U.SERVICES[673].techniques
    assert U.SERVICES[712].category == "control" and U.SERVICES[527].category == "discovery"
    assert U.SERVICES[461].category == U.SERVICES[467].category == "session"
    assert U.SERVICES[676].category == "write" and not U.SERVICES[676].techniques


def test_registered_and_listed():
    from otsight.analyze import all_schemas
    from otsight.dissect.registry import registry

    assert registry().dissectors["opcua"] is U.OpcuaDissector
    assert all_schemas()["opcua"] is U.SCHEMA
