"""S7comm encoders: byte-exact against real PDUs, then every encoder in one ISO-on-TCP
conversation read back by tshark (no malformed frames, the encoded values) and by
otsight's S7comm dissector (S7comm-plus by otsight only: Wireshark 4.0 has no dissector)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from otsight.encode import s7comm as S
from otsight.encode.tcp_session import TcpConversation
from otsight.testing.decode import decode
from tests.encode_capture import Capture, fields, problems


# ---- byte vectors from real captures (Snap7 / Step 7 / S7-300, shared corpus) ------------------
def test_vectors_match_real_pdus() -> None:
    h = bytes.fromhex
    assert S.connection_request(0, 1) == h("0300001611e00000000100c0010ac1020100c2020101")
    assert S.connection_confirm(0, 1) == h("0300001611d00001000100c0010ac1020100c2020101")
    assert S.setup_communication_request(0) == h(
        "0300001902f08032010000000000080000f0000001000101e0"
    )
    assert S.plc_stop_request(2) == h(
        "0300002102f0803201000000020010000029000000000009505f50524f4752414d"
    )
    assert S.plc_stop_response(2) == h("0300001402f08032030000000200010000000029")
    assert S.szl_read_request(0x0100, 0x0011) == h(
        "0300002102f080320700000100000800080001120411440100ff09000400110000"
    )
    assert S.szl_read_response(0x0C00, 0x0424, 0, [], seq=1, error_code=0xD402) == h(
        "0300002102f080320700000c00000c000400011208128401010000d4020a000000"
    )
    assert S.list_blocks_request(0x3D00) == h(
        "0300001d02f080320700003d000008000400011204114301000a000000"
    )
    counts = {"08": 0, "0E": 0, "0C": 1, "0A": 0, "0B": 9, "0D": 77, "0F": 15}
    assert S.list_blocks_response(0x3D00, counts) == h(
        "0300003d02f080320700003d00000c0020000112081283010000000000ff09001c"
        "30380000304500003043000130410000304200093044004d3046000f"
    )
    assert S.encode_password("toor") == h("213a1b1d6e681b1d")
    assert S.password_request(0x0600, "toor") == h(
        "0300002502f0803207000006000008000c0001120411450100ff090008213a1b1d6e681b1d"
    )
    assert S.password_response(0x0600, seq=1) == h(
        "0300002102f080320700000600000c00040001120812850101000000000a000000"
    )
    assert S.request_download_request(0x8300, S.BLOCK_DB, 1, 216, 88) == h(
        "0300003102f080320100008300002000001a00010000000000095f30413030303031500d"
        "31303030323136303030303838"
    )
    assert S.request_download_response(0x8300) == h("0300001402f0803203000083000001000000001a")
    assert S.download_block_request(0x6501, S.BLOCK_DB, 1) == h(
        "0300002302f080320100006501001200001b00000000000000095f3041303030303150"
    )
    assert S.download_ended_request(0x6701, S.BLOCK_DB, 1) == h(
        "0300002302f080320100006701001200001c00000000000000095f3041303030303150"
    )
    assert S.pi_insert_request(0x8400, [(S.BLOCK_DB, 1)]) == h(
        "0300002b02f080320100008400001a000028000000000000fd000a01003041303030303150055f494e5345"
    )
    assert S.pi_service_request(0x0A00, "_MODU", b"EP") == h(
        "0300002302f080320100000a000012000028000000000000fd00024550055f4d4f4455"
    )
    assert S.pi_service_response(0x8400) == h("0300001402f08032030000840000010000000028")
    assert S.start_upload_request(0x0800, S.BLOCK_SDB, 0) == h(
        "0300002302f080320100000800001200001d00000000000000095f3042303030303041"
    )
    assert S.start_upload_response(0x0800, 7, 216) == h(
        "0300002302f0803203000008000010000000001d000100000000070730303030323136"
    )
    assert S.upload_request(0x0900, 7) == h("0300001902f080320100000900000800001e00000000000007")
    assert S.end_upload_request(0x0A00, 7) == h(
        "0300001902f080320100000a00000800001f00000000000007"
    )
    assert S.end_upload_response(0x0A00) == h("0300001402f080320300000a000001000000001f")
    assert S.ack_error(0x0600, 0xD2, 0x41) == h("0300001302f08032020000060000000000d241")
    assert S.ack_data_error(0x7A00, 0x28, 0xD2, 0xA9) == h(
        "0300001502f080320300007a0000020000d2a92802"
    )
    ident = S.szl_read_response(
        0x0200,
        0x001C,
        0,
        S.component_identification_records(
            "SNAP7-SERVER",
            "CPU 315-2 PN/DP",
            serial_number="S C-C2UR28922012",
            memory_card_serial="MMC 267FF11F",
        ),
    )
    assert ident.hex() == (
        "0300017d02f080320700000200000c0160000112081284010000000000ff09015c001c0000002200"
        "0a0001534e4150372d534552564552"
        + "00" * 20
        + "0002435055203331352d3220504e2f4450"
        + "00" * 17
        + "0003"
        + "00" * 32
        + "00044f726967696e616c205369656d656e7320457175697"
        "06d656e74"
        + "00" * 6
        + "00055320432d433255523238393232303132"
        + "00" * 16
        + "0007435055203331352d3220504e2f4450"
        + "00" * 17
        + "00084d4d4320323637464631314"
        "6" + "00" * 20 + "0009002af6000001" + "00" * 26 + "000a" + "00" * 32 + "000b" + "00" * 32
    )
    module = S.szl_read_response(
        0x0100,
        0x0011,
        0,
        S.module_identification_records("6ES7 315-2EH14-0AB0", 1, (3, 2, 6), (32, 9, 9)),
    )
    assert module.hex().endswith(
        "0007"
        + "20" * 20
        + "00c056030206"
        + "0081426f6f74204c6f61646572"
        + "20" * 9
        + "000041200909"
    )


# ---- one conversation through every encoder -------------------------------------------------
ITEMS = [
    S.VarItem(S.AREA_DB, 10, db=1, transport_size=S.TS_WORD),
    S.VarItem(S.AREA_Q, 0, bit=3, transport_size=S.TS_BIT),
    S.VarItem(S.AREA_M, 5, transport_size=S.TS_BYTE, length=3),
    S.VarItem(S.AREA_I, 1, transport_size=S.TS_BYTE),
]
DB, Q, M, I = ITEMS  # noqa: E741
PREV = object()  # expected request_frame: the frame of the step before


def _steps() -> list[tuple[bool, bytes, dict[str, str], dict[str, Any]]]:
    """(from client, PDU, tshark fields expected, otsight s7comm columns expected)."""
    read_rsp = [
        S.data_for(DB, b"\x12\x34"),
        S.data_for(Q, b"\x01"),
        S.data_for(M, b"abc"),
        S.DataItem(return_code=S.RC_OBJECT_DOES_NOT_EXIST, transport_size=S.DATA_TS_NULL),
    ]
    writes = [S.data_for(DB, b"\x00\x07"), S.data_for(Q, b"\x01"), S.data_for(M, b"xyz")]
    items_t = {
        "s7comm.param.item.area": "0x84,0x82,0x83,0x81",
        "s7comm.param.item.db": "1,0,0,0",
        "s7comm.param.item.address.byte": "10,0,5,1",
        "s7comm.param.item.address.bit": "0,3,0,0",
        "s7comm.param.item.transp_size": "4,1,2,2",
        "s7comm.param.item.length": "1,1,3,1",
    }
    items_o = {
        "item_area": [0x84, 0x82, 0x83, 0x81],
        "item_db": [1, 0, 0, 0],
        "item_byte": [10, 0, 5, 1],
        "item_bit": [0, 3, 0, 0],
        "item_transport_size": [4, 1, 2, 2],
        "item_length": [1, 1, 3, 1],
    }
    mlfb = "6ES7 315-2EH14-0AB0"
    return [
        (
            True,
            S.setup_communication_request(1, 480),
            {"s7comm.param.func": "0xf0", "s7comm.param.pdu_length": "480"},
            {"func_name": "setup_communication", "pdu_length": 480},
        ),
        (
            False,
            S.setup_communication_response(1, 240),
            {"s7comm.param.pdu_length": "240"},
            {"rosctr": 3, "pdu_length": 240, "request_frame": PREV},
        ),
        (
            True,
            S.read_var_request(2, ITEMS),
            {"s7comm.param.func": "0x04", **items_t},
            {"func_name": "read_var", "item_count": 4, **items_o},
        ),
        (
            False,
            S.read_var_response(2, read_rsp),
            {"s7comm.data.returncode": "0xff,0xff,0xff,0x0a", "s7comm.resp.data": "1234,01,616263"},
            {
                "item_return_code": [0xFF, 0xFF, 0xFF, 0x0A],
                "item_data": [b"\x12\x34", b"\x01", b"abc", b""],
                "request_frame": PREV,
            },
        ),
        (
            True,
            S.write_var_request(3, ITEMS[:3], writes),
            {
                "s7comm.param.func": "0x05",
                "s7comm.param.item.area": "0x84,0x82,0x83",
                "s7comm.resp.data": "0007,01,78797a",
            },
            {
                "func_name": "write_var",
                "item_db": [1, 0, 0],
                "item_byte": [10, 0, 5],
                "item_data": [b"\x00\x07", b"\x01", b"xyz"],
            },
        ),
        (
            False,
            S.write_var_response(3, [0xFF, 0xFF, S.RC_INVALID_ADDRESS]),
            {"s7comm.data.returncode": "0xff,0xff,0x05"},
            {
                "item_return_code": [0xFF, 0xFF, 5],
                "item_return_name": ["success", "success", "invalid_address"],
            },
        ),
        (
            True,
            S.szl_read_request(4, S.SZL_MODULE_IDENTIFICATION),
            {
                "s7comm.param.userdata.funcgroup": "4",
                "s7comm.param.userdata.subfunc": "1",
                "s7comm.data.userdata.szl_id": "0x0011",
            },
            {"ud_group": 4, "ud_subfunc": 1, "ud_type": 1, "szl_id": 0x11, "szl_index": 0},
        ),
        (
            False,
            S.szl_read_response(
                4, 0x0011, 0, S.module_identification_records(mlfb, 4, (3, 2, 6), (32, 9, 9))
            ),
            {
                "s7comm.szl.xy11.0001.anz": f"{mlfb} ,{mlfb} ,{' ' * 20},Boot Loader{' ' * 9}",
                "s7comm.szl.xy11.0001.ausbg": "4,4,22019,16672",
                "s7comm.param.userdata.type": "8",
            },
            {
                "order_number": mlfb,
                "hardware_version": "4",
                "firmware_version": "V3.2.6",
                "szl_id": 0x11,
                "ud_type": 2,
                "request_frame": PREV,
            },
        ),
        (
            True,
            S.szl_read_request(5, S.SZL_COMPONENT_IDENTIFICATION),
            {"s7comm.data.userdata.szl_id": "0x001c"},
            {"szl_name": "component_identification"},
        ),
        (
            False,
            S.szl_read_response(
                5,
                0x001C,
                0,
                S.component_identification_records(
                    "PLANT-PLC1",
                    "CPU 315-2 PN/DP",
                    "LINE3",
                    serial_number="S C-X4U421302009",
                    memory_card_serial="MMC 2A1B33C8",
                    location="Hall 2",
                ),
            ),
            {
                "s7comm.szl.001c.0001.name": "PLANT-PLC1",
                "s7comm.szl.001c.0003.tag": "LINE3",
                "s7comm.szl.001c.0005.serialn": "S C-X4U421302009",
                "s7comm.szl.001c.0008.snmcmmc": "MMC 2A1B33C8",
                "s7comm.szl.001c.000b.loc_id": "Hall 2",
                "s7comm.szl.001c.0009.manufacturer_id": "0x002a",
            },
            {
                "plc_name": "PLANT-PLC1",
                "module_name": "CPU 315-2 PN/DP",
                "plant_id": "LINE3",
                "copyright": "Original Siemens Equipment",
                "serial_number": "S C-X4U421302009",
                "module_type": "CPU 315-2 PN/DP",
            },
        ),
        (
            True,
            S.szl_read_request(6, 0x0424),
            {"s7comm.data.userdata.szl_id": "0x0424"},
            {"szl_id": 0x0424},
        ),
        (
            False,
            S.szl_read_response(6, 0x0424, 0, [], error_code=0xD402),
            {"s7comm.param.errcod": "0xd402"},
            {"ud_error_code": 0xD402, "ud_error_name": "information_function_unavailable"},
        ),
        (
            True,
            S.plc_stop_request(7),
            {"s7comm.param.func": "0x29", "s7comm.param.pistart.servicename": "P_PROGRAM"},
            {"func_name": "plc_stop", "pi_service": "P_PROGRAM", "category": "control"},
        ),
        (
            False,
            S.plc_stop_response(7),
            {"s7comm.param.func": "0x29"},
            {"func_code": 0x29, "error_class": 0, "request_frame": PREV},
        ),
        (
            True,
            S.plc_hot_restart_request(8),
            {"s7comm.param.func": "0x28", "s7comm.param.pistart.servicename": "P_PROGRAM"},
            {"pi_service": "P_PROGRAM", "pi_service_name": "plc_start_stop"},
        ),
        (False, S.pi_service_response(8), {"s7comm.param.func": "0x28"}, {"func_code": 0x28}),
        (
            True,
            S.plc_cold_restart_request(9),
            {"s7comm.param.pistart.servicename": "P_PROGRAM"},
            {"pi_service": "P_PROGRAM"},
        ),
        (
            False,
            S.ack_data_error(9, S.FUNC_PI_SERVICE, 0xD2, 0xA9),
            {"s7comm.header.errcls": "0xd2", "s7comm.header.errcod": "0xa9"},
            {"error_class": 0xD2, "error_code": 0xA9, "func_code": 0x28},
        ),
        (
            True,
            S.request_download_request(10, S.BLOCK_DB, 1, 216, 88),
            {
                "s7comm.param.func": "0x1a",
                "s7comm.param.blockcontrol.filename": "_0A00001P",
                "s7comm.data.blockcontrol.loadmem_len": "000216",
                "s7comm.data.blockcontrol.mc7code_len": "000088",
            },
            {
                "func_name": "request_download",
                "filename": "_0A00001P",
                "blocks": ["DB1"],
                "category": "program",
            },
        ),
        (
            False,
            S.request_download_response(10),
            {"s7comm.param.func": "0x1a"},
            {"func_code": 0x1A, "request_frame": PREV},
        ),
        (
            False,
            S.download_block_request(11, S.BLOCK_DB, 1),
            {"s7comm.param.func": "0x1b", "s7comm.data.blockcontrol.block_number": "00001"},
            {"func_name": "download_block", "blocks": ["DB1"]},
        ),
        (
            True,
            S.download_block_response(11, b"\x70\x70" + bytes(98), more=True),
            {"s7comm.param.blockcontrol.functionstatus.more": "1", "s7comm.data.length": "100"},
            {"func_code": 0x1B, "request_frame": PREV},
        ),
        (False, S.download_block_request(12, S.BLOCK_DB, 1), {}, {"func_code": 0x1B}),
        (
            True,
            S.download_block_response(12, bytes(50)),
            {"s7comm.param.blockcontrol.functionstatus.more": "0"},
            {"func_code": 0x1B},
        ),
        (
            False,
            S.download_ended_request(13, S.BLOCK_DB, 1),
            {"s7comm.param.func": "0x1c"},
            {"func_name": "download_ended", "filename": "_0A00001P"},
        ),
        (True, S.download_ended_response(13), {"s7comm.param.func": "0x1c"}, {"func_code": 0x1C}),
        (
            True,
            S.pi_insert_request(14, [(S.BLOCK_DB, 1), (S.BLOCK_OB, 35)]),
            {"s7comm.param.pistart.servicename": "_INSE", "s7comm.data.plccontrol.block_cnt": "2"},
            {"pi_service": "_INSE", "blocks": ["DB1", "OB35"], "category": "program"},
        ),
        (False, S.pi_service_response(14), {}, {"func_code": 0x28}),
        (
            True,
            S.start_upload_request(15, S.BLOCK_OB, 1),
            {"s7comm.param.func": "0x1d", "s7comm.param.blockcontrol.filename": "_0800001A"},
            {"func_name": "start_upload", "blocks": ["OB1"], "category": "program"},
        ),
        (
            False,
            S.start_upload_response(15, 7, 216),
            {
                "s7comm.data.blockcontrol.uploadid": "0x00000007",
                "s7comm.param.blockcontrol.upl_lenstring": "0000216",
            },
            {"func_code": 0x1D},
        ),
        (
            True,
            S.upload_request(16, 7),
            {"s7comm.data.blockcontrol.uploadid": "0x00000007"},
            {"func_name": "upload"},
        ),
        (
            False,
            S.upload_response(16, bytes(216)),
            {"s7comm.data.length": "216"},
            {"func_code": 0x1E},
        ),
        (
            True,
            S.end_upload_request(17, 7),
            {"s7comm.param.func": "0x1f"},
            {"func_name": "end_upload"},
        ),
        (False, S.end_upload_response(17), {}, {"func_code": 0x1F, "request_frame": PREV}),
        (
            True,
            S.list_blocks_request(18),
            {"s7comm.param.userdata.funcgroup": "3", "s7comm.param.userdata.subfunc": "1"},
            {"ud_subfunc_name": "list_blocks"},
        ),
        (
            False,
            S.list_blocks_response(18, {S.BLOCK_OB: 3, S.BLOCK_FC: 5, S.BLOCK_DB: 12}),
            {"s7comm.blockinfo.blocktype": "08,0C,0A", "s7comm.blockinfo.block_count": "3,5,12"},
            {"ud_group": 3, "ud_type": 2, "request_frame": PREV},
        ),
        (
            True,
            S.password_request(19, "secret"),
            {"s7comm.param.userdata.funcgroup": "5"},
            {"ud_subfunc_name": "plc_password", "category": "session"},
        ),
        (
            False,
            S.password_response(19, 0xD602),
            {"s7comm.param.errcod": "0xd602"},
            {"ud_error_code": 0xD602, "ud_error_name": "incorrect_password_entered"},
        ),
        (True, S.start_upload_request(20, S.BLOCK_SDB, 0), {}, {"blocks": ["SDB0"]}),
        (
            False,
            S.ack_error(20, 0xD2, 0x41),
            {
                "s7comm.header.rosctr": "2",
                "s7comm.header.errcls": "0xd2",
                "s7comm.header.errcod": "0x41",
            },
            {"rosctr": 2, "error_name": "function_not_permitted_in_protection_level"},
        ),
    ]


PLUS = [  # (from client, version, opcode, function, seq, session id)
    (True, 3, S.PLUS_REQUEST, S.PLUS_FUNC_SET_VARIABLE, 0x831A, 0x70000E4D),
    (False, 3, S.PLUS_RESPONSE, S.PLUS_FUNC_SET_VARIABLE, 0x831A, None),
    (True, 1, S.PLUS_REQUEST, S.PLUS_FUNC_CREATE_OBJECT, 1, 0x120),
    (False, 1, S.PLUS_RESPONSE, S.PLUS_FUNC_CREATE_OBJECT, 1, None),
    (True, 2, S.PLUS_REQUEST, S.PLUS_FUNC_GET_MULTI_VARIABLES, 2, 0x3A0),
]

RACK, SLOT = 0, 2


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, list]:
    cap = Capture()
    conv = TcpConversation(
        "00:1c:06:00:00:01", "10.10.1.50", 49200, "00:1b:1b:00:00:02", "10.10.1.10", 102, 7, 9
    )
    cap.add(conv.handshake())
    cr = cap.tcp(conv, True, S.connection_request(RACK, SLOT))
    cc = cap.tcp(conv, False, S.connection_confirm(RACK, SLOT))
    got = [(cap.tcp(conv, client, pdu), t, o) for client, pdu, t, o in _steps()]
    plus_conv = TcpConversation(
        "00:1c:06:00:00:01", "10.10.1.50", 49201, "00:1b:1b:00:00:03", "10.10.1.11", 102, 70, 90
    )
    cap.add(plus_conv.handshake())
    cap.tcp(plus_conv, True, S.cotp_cr(0x11, b"\x06\x00", b"SIMATIC-ROOT-ES"))
    cap.tcp(plus_conv, False, S.cotp_cc(0x11, 0x07, b"\x06\x00", b"SIMATIC-ROOT-ES"))
    plus = [
        (cap.tcp(plus_conv, c, S.plus_frame(v, op, fn, seq, sid, b"\x34" + bytes(6))), row)
        for c, v, op, fn, seq, sid in PLUS
        for row in [(v, op, fn, seq, sid)]
    ]
    cap.add(conv.close())
    path = cap.write(tmp_path_factory.mktemp("s7") / "s7comm.pcap")
    return path, [(cr, cc), *got], plus


def test_tshark_decodes_every_pdu(capture, tshark) -> None:
    path, (conn, *steps), plus = capture
    assert problems(tshark, path) == ""
    names = sorted({k for _, t, _ in steps for k in t} | {"cotp.type", "cotp.dst-tsap"})
    got = fields(tshark, path, ["frame.protocols", *names])
    cr, cc = conn
    assert got[cr]["cotp.type"] == "0x0e" and got[cr]["cotp.dst-tsap"] == "0x0102"
    assert got[cc]["cotp.type"] == "0x0d"
    for frame, want, _ in steps:
        assert got[frame]["frame.protocols"].endswith(":tpkt:cotp:s7comm"), frame
        for name, value in want.items():
            assert got[frame][name] == value, (frame, name)
    for frame, _ in plus:  # no S7comm-plus dissector in Wireshark 4.0: COTP data
        assert "s7comm" not in got[frame]["frame.protocols"]


def test_otsight_reads_the_encoded_values(capture) -> None:
    path, (conn, *steps), plus = capture
    d = decode(path)
    assert not d.failures
    assert d.tables["weird"].num_rows == 0, d.tables["weird"].to_pylist()
    rows = {r["frame"]: r for r in d.tables["s7comm"].to_pylist()}
    assert set(rows) == {f for f, _, _ in steps}
    for k, (frame, _, want) in enumerate(steps):
        row = rows[frame]
        assert (row["rack"], row["slot"], row["dst_tsap"]) == (RACK, SLOT, "0x0102")
        for col, value in want.items():
            if value is PREV:
                value = steps[k - 1][0]
            assert row[col] == value, (frame, col, row[col])
    cotp = d.tables["cotp"].to_pylist()
    assert [(r["frame"], r["tpdu_name"], r["rack"], r["slot"]) for r in cotp[:2]] == [
        (conn[0], "connection_request", RACK, SLOT),
        (conn[1], "connection_confirm", RACK, SLOT),
    ]
    assert cotp[0]["connection_type_name"] == "pg" and cotp[0]["tpdu_size"] == 1024


def test_otsight_reads_s7comm_plus(capture) -> None:
    path, _, plus = capture
    rows = {r["frame"]: r for r in decode(path).tables["s7comm_plus"].to_pylist()}
    assert set(rows) == {f for f, _ in plus}
    for frame, (version, opcode, function, seq, session) in plus:
        r = rows[frame]
        assert (r["version"], r["opcode"], r["function"], r["seq_num"]) == (
            version,
            opcode,
            function,
            seq,
        )
        assert r["session_id"] == session and not r["continued"]
        assert r["dst_tsap"] == "SIMATIC-ROOT-ES"
    frames = [f for f, _ in plus]
    assert rows[frames[1]]["request_frame"] == frames[0]
    assert rows[frames[0]]["function_name"] == "set_variable"
    assert rows[frames[0]]["data_length"] == 1 + 32 + 9 + 4 + 7  # digest, header, session id, body


def test_plus_fragment_without_trailer() -> None:
    frame = S.plus_frame(2, S.PLUS_REQUEST, S.PLUS_FUNC_EXPLORE, 5, 1, b"\x00", trailer=False)
    assert frame[7:9] == b"\x72\x02" and not frame.endswith(b"\x72\x02\x00\x00")
