"""EtherNet/IP + CIP encoders: byte-exact against real PDUs, then a session through every
encoder (plus UDP ListIdentity and implicit I/O) read back by tshark and by otsight's
EtherNet/IP dissector."""

from __future__ import annotations

from typing import Any

import pytest

from otsight.encode import enip as E
from otsight.encode.tcp_session import TcpConversation
from otsight.testing.decode import decode
from tests.encode_capture import Capture, fields, problems

h = bytes.fromhex


# ---- byte vectors from real captures (shared corpus) --------------------------------------------
def test_vectors_match_real_pdus() -> None:
    ctx = h("00000000c1debed1")
    assert E.list_identity_request(ctx) == h("63000000000000000000000000000000c1debed100000000")
    assert E.list_identity_response(
        1, 12, 58, (4, 3), 0x00524D8E, "1756-ENBT/A", "10.1.1.164", context=ctx
    ) == h(
        "63003300000000000000000000000000c1debed10000000001000c002d0001000002af120a0101a400"
        "0000000000000001000c003a00040330008e4d52000b313735362d454e42542f4103"
    )
    # Unconnected Send of Identity Get_Attributes_All to backplane slot 0, and the answer
    session = 0x11020100
    assert E.send_rr_data(
        session,
        E.unconnected_send(E.get_attributes_all(E.CLASS_IDENTITY, 1), E.port_segment(1, 0)),
        h("b39b02002008e100"),
        timeout=0x20,
    ) == h(
        "6f0024000001021100000000b39b02002008e10000000000000000002000020000000000b20014005202"
        "2006240107f9060001022001240101000100"
    )
    ident = E.identity_attributes(1, 14, 0x36, (16, 20), 0x0051823F, "1756-L61/B LOGIX5561", 0x3060)
    assert E.send_rr_data(
        session, E.cip_response(E.SC_GET_ATTRIBUTES_ALL, data=ident), h("b39b02002008e100"), 0x20
    ) == h(
        "6f0037000001021100000000b39b02002008e10000000000000000002000020000000000b20027008100"
        "000001000e003600101460303f82510014313735362d4c36312f42204c4f47495835353631"
    )
    triad = (0x0014, 0x004D, 0x32952BF3)
    assert E.send_rr_data(
        session,
        E.forward_open_request(
            0x80000014, 0x80FE0013, *triad, 8_000_000, 8_000_000, E.connection_path(0)
        ),
        h("c69b02002008e100"),
        0x20,
    ) == h(
        "6f0040000001021100000000c69b02002008e10000000000000000002000020000000000b20030005402"
        "2006240107f9140000801300fe8014004d00f32b95320000000000127a00f44300127a00f443a30301"
        "0020022401"
    )
    assert E.forward_open_response(0x00790301, 0x80FE0013, *triad, 8_000_000, 8_000_000) == h(
        "d4000000010379001300fe8014004d00f32b953200127a0000127a000000"
    )
    # Multiple Service Packet over a connection (SendUnitData), and its answer
    reads = [
        E.cip_request(E.SC_READ_TAG, h("20722400"), h("00ce04000100")),
        E.cip_request(E.SC_READ_TAG, h("20722400"), h("2c3d04000100")),
    ]
    assert E.send_unit_data(
        0x10020100,
        0x00351309,
        0x6AE4,
        E.multiple_service_request(reads),
        h("1a392f0000000000"),
        timeout=0x0A,
    ) == h(
        "70003a0000010210000000001a392f000000000000000000000000000a000200a100040009133500b100"
        "2600e46a0a02200224010200060012004c022072240000ce040001004c02207224002c3d04000100"
    )
    answers = [E.cip_response(E.SC_READ_TAG, data=h(d)) for d in ("01000000", "05000000")]
    assert E.multiple_service_response(answers) == h(
        "8a000000020006000e00cc00000001000000cc00000005000000"
    )


def test_paths() -> None:
    assert E.epath(0x01, 1, 7) == h("2001240130 07".replace(" ", ""))
    assert E.epath(0x0300, 0x1234) == h("2100000325003412")
    assert E.symbolic_path("Tank1.Level") == h("910554616e6b3100") + h("91054c6576656c00")
    assert E.symbolic_path("Recipe[12]") == h("9106526563697065") + h("280c")
    assert E.cip_request(0x0E, h("2001"))[:2] == h("0e01")
    assert E.io_datagram(7, 1, b"\xaa", 5) == h("0200028008000700000001000000b10003000500aa")


# ---- one session through every encoder --------------------------------------------------------
SESSION = 0x0C0FFEE0
TRIAD = (0x0014, 0x004D, 0x32952BF3)  # connection serial, originator vendor / serial
PLC_IP, HMI_IP = "10.20.0.10", "10.20.0.5"
IDENT = (1, E.DEVICE_TYPE_PLC, 55, (20, 11), 0x00C0FFEE, "1756-L61/B LOGIX5561")
PREV = object()


def _cip(message: bytes, ctx: int) -> bytes:
    return E.send_rr_data(SESSION, message, ctx)


def _steps() -> list[tuple[bool, bytes, dict[str, str], dict[str, Any], list[dict[str, Any]]]]:
    """(from client, PDU, tshark fields, otsight enip columns, otsight cip rows)."""
    fo = E.forward_open_request(0, 0x80FE0013, *TRIAD, 2_000_000, 2_000_000, E.connection_path(0))
    fo_io = E.forward_open_request(
        0, 0x80FE0014, 0x15, 0x4D, 0x32952BF3, 10_000, 10_000, E.connection_path(0, 4, 100)
    )
    msp = E.multiple_service_request([E.read_tag_request("Pump1"), E.read_tag_request("Valve7")])
    msp_rsp = E.multiple_service_response(
        [
            E.read_tag_response(E.TYPE_BOOL, b"\x01"),
            E.read_tag_response(0, b"", E.STATUS_PATH_DESTINATION_UNKNOWN),
        ]
    )
    cm = {"class_id": 6, "instance_id": 1}
    return [
        (True, E.register_session_request(), {"enip.command": "0x0065"},
         {"command_name": "register_session", "session_handle": 0}, []),
        (False, E.register_session_response(SESSION), {"enip.session": f"0x{SESSION:08x}"},
         {"session_handle": SESSION, "request_frame": PREV}, []),
        (True, E.list_services_request(5), {"enip.command": "0x0004"},
         {"command_name": "list_services"}, []),
        (False, E.list_services_response(5), {"enip.lsr.servicename": "Communications",
         "enip.lsr.capaflags.tcp": "1"}, {"item_count": 1, "request_frame": PREV}, []),
        (True, E.list_identity_request(6), {"enip.command": "0x0063"}, {"is_request": True}, []),
        (False, E.list_identity_response(*IDENT, PLC_IP, context=6), {
            "enip.lir.vendor": "0x0001", "enip.lir.devtype": "14",
            "enip.lir.prodcode": "55", "enip.lir.serial": "0x00c0ffee",
            "enip.lir.name": "1756-L61/B LOGIX5561", "enip.lir.state": "0x03"},
         {"vendor_id": 1, "device_type": 14, "product_code": 55, "revision": "20.11",
          "serial_number": "00c0ffee", "product_name": "1756-L61/B LOGIX5561", "state": 3,
          "socket_address": f"{PLC_IP}:44818", "request_frame": PREV}, []),
        (True, _cip(E.get_attribute_single(E.CLASS_IDENTITY, 1, 7), 1), {"cip.sc": "0x0e",
         "cip.class": "0x01", "cip.instance": "0x01", "cip.attribute": "7"},
         {"cip_messages": 1}, [{"service_name": "get_attribute_single", "class_id": 1,
          "instance_id": 1, "attribute_id": 7, "category": "discovery"}]),
        (False, _cip(E.cip_response(E.SC_GET_ATTRIBUTE_SINGLE, data=b"\x04PLC1"), 1),
         {"cip.sc": "0x0e", "cip.genstat": "0x00"}, {"request_frame": PREV},
         [{"general_status": 0, "attribute_id": 7, "request_frame": PREV}]),
        (True, _cip(E.get_attributes_all(E.CLASS_IDENTITY, 1), 2), {"cip.sc": "0x01"}, {},
         [{"service_name": "get_attributes_all", "class_id": 1}]),
        (False, _cip(E.cip_response(E.SC_GET_ATTRIBUTES_ALL,
         data=E.identity_attributes(*IDENT) + bytes(4)), 2), {
            "cip.id.vendor_id": "0x0001", "cip.id.product_code": "55",
            "cip.id.product_name": "1756-L61/B LOGIX5561"}, {},
         [{"general_status": 0, "class_id": 1, "request_frame": PREV}]),
        (True, _cip(E.set_attribute_single(E.CLASS_TCPIP, 1, 3, b"\x02\x00\x00\x00"), 3), {
            "cip.sc": "0x10", "cip.class": "0xf5", "cip.attribute": "3"}, {},
         [{"service_name": "set_attribute_single", "class_id": 0xF5, "attribute_id": 3,
           "category": "write"}]),
        (False, _cip(E.cip_response(E.SC_SET_ATTRIBUTE_SINGLE, E.STATUS_PRIVILEGE_VIOLATION),
         3), {"cip.genstat": "0x0f"}, {},
         [{"general_status": 0x0F, "general_status_name": "privilege_violation"}]),
        (True, _cip(E.read_tag_request("Tank1.Level"), 4), {"cip.sc": "0x4c",
         "cip.symbol": "Tank1,Level"}, {},
         [{"service_name": "read_tag", "symbol": "Tank1.Level", "category": "read"}]),
        (False, _cip(E.read_tag_response(E.TYPE_REAL, b"\x00\x00\x48\x42"), 4),
         {"cip.sc": "0x4c", "cip.genstat": "0x00"}, {},
         [{"symbol": "Tank1.Level", "general_status": 0}]),
        (True, _cip(E.write_tag_request("Program:Main.Setpoint[3]", E.TYPE_DINT,
         b"\x64\x00\x00\x00"), 5), {"cip.sc": "0x4d", "cip.symbol": "Program:Main,Setpoint",
          "cip.member": "0x03"}, {},
         [{"service_name": "write_tag", "symbol": "Program:Main.Setpoint[3]", "member_id": 3,
           "category": "write"}]),
        (False, _cip(E.write_tag_response(), 5), {"cip.sc": "0x4d"}, {},
         [{"service_name": "write_tag", "general_status": 0}]),
        (True, _cip(msp, 6), {"cip.sc": "0x0a,0x4c,0x4c", "cip.msp.num_services": "2",
         "cip.symbol": "Pump1,Valve7"}, {"cip_messages": 3},
         [{"service_name": "multiple_service_packet", "class_id": 2},
          {"wrapper": "multiple_service_packet", "wrapper_index": 0, "symbol": "Pump1"},
          {"wrapper": "multiple_service_packet", "wrapper_index": 1, "symbol": "Valve7"}]),
        (False, _cip(msp_rsp, 6), {"cip.genstat": "0x1e,0x00,0x05"}, {"cip_messages": 3},
         [{"general_status": 0x1E}, {"symbol": "Pump1", "general_status": 0},
          {"symbol": "Valve7", "general_status": 5}]),
        (True, _cip(E.unconnected_send(E.get_attributes_all(E.CLASS_IDENTITY, 1),
         E.port_segment(1, 0)), 7), {"cip.sc": "0x52,0x01", "cip.cm.route_path_size": "1"},
         {"cip_messages": 2},
         [{"service_name": "unconnected_send", **cm},
          {"wrapper": "unconnected_send", "service_name": "get_attributes_all",
           "class_id": 1}]),
        (False, _cip(E.cip_response(E.SC_GET_ATTRIBUTES_ALL,
         data=E.identity_attributes(*IDENT)), 7), {"cip.id.serial_number": "0x00c0ffee"}, {},
         [{"service_name": "get_attributes_all", "class_id": 1, "general_status": 0}]),
        (True, _cip(fo, 8), {"cip.sc": "0x54", "cip.cm.to_connid": "0x80fe0013",
         "cip.cm.conn_serial_num": "0x0014", "cip.cm.vendor": "0x004d",
         "cip.cm.orig_serial_num": "0x32952bf3", "cip.cm.otrpi": "2000000"}, {},
         [{"service_name": "forward_open", **cm, "to_connection_id": 0x80FE0013,
           "connection_serial": 0x14, "originator_vendor": 0x4D,
           "originator_serial": 0x32952BF3, "ot_rpi": 2_000_000, "to_rpi": 2_000_000}]),
        (False, _cip(E.forward_open_response(0x00790301, 0x80FE0013, *TRIAD, 2_000_000,
         2_000_000), 8), {"cip.cm.ot_connid": "0x00790301", "cip.cm.otapi": "2000000"}, {},
         [{"ot_connection_id": 0x00790301, "to_connection_id": 0x80FE0013,
           "connection_serial": 0x14, "general_status": 0}]),
        (True, E.send_unit_data(SESSION, 0x00790301, 1, E.read_tag_request("Tank1.Level")), {
            "enip.cpf.cai.connid": "0x00790301", "cip.symbol": "Tank1,Level"},
         {"command_name": "send_unit_data", "connection_id": 0x00790301, "cip_sequence": 1},
         [{"service_name": "read_tag", "symbol": "Tank1.Level", "cip_sequence": 1}]),
        (False, E.send_unit_data(SESSION, 0x80FE0013, 1, E.read_tag_response(E.TYPE_REAL,
         b"\x00\x00\x48\x42")), {"enip.cpf.cai.connid": "0x80fe0013"},
         {"connection_id": 0x80FE0013, "cip_sequence": 1, "request_frame": PREV},
         [{"symbol": "Tank1.Level", "general_status": 0, "request_frame": PREV}]),
        (True, _cip(E.forward_close_request(*TRIAD, E.connection_path(0)), 9), {
            "cip.sc": "0x4e", "cip.cm.conn_serial_num": "0x0014"}, {},
         [{"service_name": "forward_close", **cm, "connection_serial": 0x14,
           "originator_serial": 0x32952BF3}]),
        (False, _cip(E.forward_close_response(*TRIAD), 9), {"cip.genstat": "0x00"}, {},
         [{"service_name": "forward_close", "connection_serial": 0x14}]),
        (True, _cip(fo_io, 10), {"cip.sc": "0x54", "cip.cm.otrpi": "10000"}, {},
         [{"service_name": "forward_open", "ot_rpi": 10_000}]),
        (False, _cip(E.forward_open_error(0x15, 0x4D, 0x32952BF3), 10), {
            "cip.genstat": "0x01", "cip.cm.ext_status": "0x0100"}, {},
         [{"general_status": 1, "extended_status": 0x0100, "connection_serial": 0x15}]),
        (True, _cip(E.reset_request(1), 11), {"cip.sc": "0x05", "cip.reset.type": "1"}, {},
         [{"service_name": "reset", "class_id": 1, "category": "control"}]),
        (False, _cip(E.cip_response(E.SC_RESET), 11), {"cip.genstat": "0x00"}, {},
         [{"service_name": "reset", "general_status": 0}]),
        # 16-bit instance and attribute segments
        (True, _cip(E.get_attribute_single(0x0F, 300, 0x105), 12), {"cip.class": "0x0f",
         "cip.instance": "0x012c", "cip.attribute": "261"}, {},
         [{"class_id": 0x0F, "instance_id": 300, "attribute_id": 0x105}]),
        (False, _cip(E.cip_response(E.SC_GET_ATTRIBUTE_SINGLE, data=b"\x01\x00"), 12),
         {"cip.genstat": "0x00"}, {}, [{"instance_id": 300, "request_frame": PREV}]),
        # an odd-length request (Reset with its type) routed to slot 2: pad byte
        (True, _cip(E.unconnected_send(E.reset_request(0), E.port_segment(1, 2)), 13), {
            "cip.sc": "0x52,0x05", "cip.cm.msg_req_size": "7"}, {"cip_messages": 2},
         [{"service_name": "unconnected_send"},
          {"wrapper": "unconnected_send", "service_name": "reset", "class_id": 1}]),
        (False, _cip(E.cip_response(E.SC_RESET), 13), {"cip.genstat": "0x00"}, {},
         [{"wrapper": "unconnected_send", "service_name": "reset", "request_frame": PREV}]),
        # a target that does not answer: the Connection Manager's own failure
        (True, _cip(E.unconnected_send(E.get_attributes_all(E.CLASS_IDENTITY, 1),
         E.port_segment(1, 3)), 14), {"cip.sc": "0x52,0x01"}, {}, [{}, {}]),
        (False, _cip(E.unconnected_send_error(), 14), {"cip.sc": "0x52", "cip.genstat": "0x01",
         "cip.cm.ext_status": "0x0204"}, {},
         [{"service_name": "unconnected_send", "class_id": 6, "general_status": 1,
           "extended_status": 0x0204, "request_frame": PREV}]),
        # a Multiple Service Packet routed through an Unconnected Send
        (True, _cip(E.unconnected_send(E.multiple_service_request(
         [E.read_tag_request("A"), E.read_tag_request("B[2]")]), E.port_segment(1, 0)), 15),
         {"cip.symbol": "A,B"}, {"cip_messages": 4},
         [{"service_name": "unconnected_send"}, {"service_name": "multiple_service_packet"},
          {"wrapper": "unconnected_send+multiple_service_packet", "symbol": "A"},
          {"wrapper": "unconnected_send+multiple_service_packet", "symbol": "B[2]",
           "member_id": 2}]),
        (False, _cip(E.multiple_service_response([E.read_tag_response(E.TYPE_INT, b"\x05\x00"),
         E.read_tag_response(E.TYPE_INT, b"\x06\x00")]), 15), {"cip.genstat": "0x00,0x00,0x00"},
         {"cip_messages": 3},
         [{"service_name": "multiple_service_packet", "wrapper": "unconnected_send"},
          {"symbol": "A", "request_frame": PREV,
           "wrapper": "unconnected_send+multiple_service_packet"},
          {"symbol": "B[2]", "request_frame": PREV,
           "wrapper": "unconnected_send+multiple_service_packet"}]),
        (True, E.unregister_session(SESSION), {"enip.command": "0x0066"},
         {"command_name": "unregister_session", "session_handle": SESSION}, []),
    ]  # fmt: skip


HMI = ("00:1d:9c:00:00:05", HMI_IP)
PLC = ("00:1d:9c:00:00:0a", PLC_IP)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cap = Capture()
    udp_req = cap.udp(
        (*HMI, 50000), ("ff:ff:ff:ff:ff:ff", "10.20.0.255", E.ENIP_PORT), E.list_identity_request(9)
    )
    udp_rsp = cap.udp(
        (*PLC, E.ENIP_PORT), (*HMI, 50000), E.list_identity_response(*IDENT, PLC_IP, context=9)
    )
    conv = TcpConversation(*HMI, 50001, *PLC, E.ENIP_PORT, 100, 200)
    cap.add(conv.handshake())
    steps = [(cap.tcp(conv, c, pdu), t, e, rows) for c, pdu, t, e, rows in _steps()]
    cap.add(conv.close())
    io = []
    for k in range(1, 4):
        o_t = E.io_datagram(0x11223344, k, b"\x01\x00\x00\x00" + bytes(8), k)
        t_o = E.io_datagram(0x55667788, k, bytes(6), k)
        io.append((cap.udp((*HMI, E.IO_PORT), (*PLC, E.IO_PORT), o_t), 0x11223344, k, 14))
        io.append((cap.udp((*PLC, E.IO_PORT), (*HMI, E.IO_PORT), t_o), 0x55667788, k, 8))
    path = cap.write(tmp_path_factory.mktemp("enip") / "enip.pcap")
    return {"path": path, "udp": (udp_req, udp_rsp), "steps": steps, "io": io}


def _prev(value: Any, steps: list, k: int) -> Any:
    return steps[k - 1][0] if value is PREV else value


def test_tshark_decodes_every_pdu(capture, tshark) -> None:
    path, steps = capture["path"], capture["steps"]
    assert problems(tshark, path) == ""
    names = sorted(
        {n for _, t, _, _ in steps for n in t} | {"enip.cpf.sai.connid", "enip.cpf.sai.seq"}
    )
    got = fields(tshark, path, ["frame.protocols", *names])
    req, rsp = capture["udp"]
    assert got[req]["frame.protocols"].endswith("udp:enip") and got[req]["enip.command"] == "0x0063"
    assert got[rsp]["enip.lir.name"] == "1756-L61/B LOGIX5561"
    for frame, want, _, cip_rows in steps:
        proto = got[frame]["frame.protocols"]
        assert ":tcp:enip" in proto and (":cip" in proto) == bool(cip_rows), frame
        for name, value in want.items():
            assert got[frame][name] == value, (frame, name)
    for frame, cid, seq, _ in capture["io"]:
        assert got[frame]["frame.protocols"].endswith("udp:cipio:cipio")  # ENIP I/O + CIP I/O
        assert got[frame]["enip.cpf.sai.connid"] == f"0x{cid:08x}"
        assert got[frame]["enip.cpf.sai.seq"] == str(seq)


def test_otsight_reads_the_encoded_values(capture) -> None:
    d = decode(capture["path"])
    assert not d.failures
    assert d.tables["weird"].num_rows == 0, d.tables["weird"].to_pylist()
    steps = capture["steps"]
    enip = {r["frame"]: r for r in d.tables["enip"].to_pylist()}
    cip: dict[int, list[dict[str, Any]]] = {}
    for r in d.tables["cip"].to_pylist():
        cip.setdefault(r["frame"], []).append(r)
    assert set(enip) == {f for f, *_ in steps} | set(capture["udp"])
    for k, (frame, _, want, want_cip) in enumerate(steps):
        row = enip[frame]
        assert row["is_request"] == (k % 2 == 0), frame
        for col, value in want.items():
            assert row[col] == _prev(value, steps, k), (frame, col, row[col])
        rows = cip.get(frame, [])
        assert len(rows) == len(want_cip), frame
        for got, exp in zip(rows, want_cip, strict=True):
            for col, value in exp.items():
                assert got[col] == _prev(value, steps, k), (frame, col, got[col])
    ident = enip[capture["udp"][1]]
    assert (ident["product_name"], ident["socket_address"]) == (IDENT[5], f"{PLC_IP}:44818")
    io = [(r["frame"], r["connection_id"], r["sequence"], r["data_length"]) for r in
          d.tables["enip_io"].to_pylist()]  # fmt: skip
    assert io == capture["io"]
