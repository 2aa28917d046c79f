"""otsight.encode.iec104: every encoder's APDUs read back by tshark and by otsight.

One TCP conversation on port 2404 (client = controlling station) carries one APDU per
case.  Expected values come from the encoders' inputs, never from a decoder's output.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from otsight.encode import iec104 as I
from tests.encode.wire import (
    Built,
    Capture,
    decode_clean,
    expert,
    fields,
    ints,
    problems,
    protocols,
    rows_by_frame,
    tcp_conversation,
    ws_time_ms,
)

CA = 7
T1 = 1_700_000_000_123  # 2023-11-14 22:13:20.123 UTC (a Tuesday)
T2 = 1_719_791_999_999  # 2024-06-30 23:59:59.999 UTC (a Sunday)


@dataclass
class Case:
    """One APDU and what both decoders should read from it."""

    name: str
    from_client: bool
    apdu: bytes
    apci: str  # I, S or U
    tx: int | None = None
    rx: int | None = None
    u: int | None = None  # first control octet of a U-frame
    type_id: int | None = None
    cot: int | None = None
    ioas: list[int] = field(default_factory=list)
    sq: bool = False
    negative: bool = False
    test: bool = False
    originator: int = 0
    ws: dict[str, list[Any]] = field(default_factory=dict)  # tshark field -> values
    ours: dict[str, Any] = field(default_factory=dict)  # otsight iec104 column -> value


def _i(name: str, from_client: bool, tx: int, rx: int, asdu: bytes, **kw: Any) -> Case:
    return Case(name, from_client, I.i_frame(tx, rx, asdu), "I", tx, rx, **kw)


def _u(name: str, from_client: bool, function: int, apdu: bytes) -> Case:
    return Case(name, from_client, apdu, "U", u=function)


def _cases() -> list[Case]:
    sp = [(100, True), (101, False), (102, True)]
    dp = [(110, I.DP_ON), (111, I.DP_OFF), (115, I.DP_INDETERMINATE)]
    norm = [(200, 0.5), (205, -0.25), (206, 0.999969482421875)]  # 32767 / 32768
    scaled = [(210, -300), (211, 32767)]
    floats = [(220, 49.5), (221, -3.25), (222, 1e6)]
    bad = I.QDS_IV | I.QDS_NT
    mixed = I.asdu(
        I.M_SP_NA_1,
        I.COT_SPONTANEOUS,
        CA,
        [(130, I.siq(True, I.QDS_BL)), (131, I.siq(False, I.QDS_SB | I.QDS_IV))],
    )
    return [
        _u("startdt_act", True, I.U_STARTDT_ACT, I.startdt()),
        _u("startdt_con", False, I.U_STARTDT_CON, I.startdt(con=True)),
        _i("interrogation", True, 0, 0, I.c_ic_na_1(CA), type_id=I.C_IC_NA_1,
           cot=I.COT_ACTIVATION, ioas=[0], ws={"iec60870_asdu.qoi": [I.QOI_STATION]},
           ours={"qualifier": [I.QOI_STATION]}),
        _i("interrogation_con", False, 0, 1, I.c_ic_na_1(CA, cot=I.COT_ACTIVATION_CON),
           type_id=I.C_IC_NA_1, cot=I.COT_ACTIVATION_CON, ioas=[0]),
        _i("single_points_sq", False, 1, 1, I.m_sp_na_1(CA, sp, I.COT_INTERROGATED, sq=True),
           type_id=I.M_SP_NA_1, cot=I.COT_INTERROGATED, ioas=[100, 101, 102], sq=True,
           ws={"iec60870_asdu.siq.spi": [v for _, v in sp]},
           ours={"value_int": [int(v) for _, v in sp], "quality": [0, 0, 0]}),
        _i("single_points_quality", False, 2, 1, mixed, type_id=I.M_SP_NA_1,
           cot=I.COT_SPONTANEOUS, ioas=[130, 131],
           ws={"iec60870_asdu.siq.spi": [1, 0], "iec60870_asdu.siq.bl": [1, 0],
               "iec60870_asdu.siq.iv": [0, 1]},
           ours={"value_int": [1, 0], "quality": [I.QDS_BL, I.QDS_SB | I.QDS_IV],
                 "quality_flags": [["BL"], ["IV", "SB"]]}),
        _i("double_points", False, 3, 1, I.m_dp_na_1(CA, dp, I.COT_INTERROGATED),
           type_id=I.M_DP_NA_1, cot=I.COT_INTERROGATED, ioas=[110, 111, 115],
           ws={"iec60870_asdu.diq.dpi": [s for _, s in dp]},
           ours={"value_int": [s for _, s in dp]}),
        _i("normalized", False, 4, 1, I.m_me_na_1(CA, norm, I.COT_PERIODIC, quality=I.QDS_OV),
           type_id=I.M_ME_NA_1, cot=I.COT_PERIODIC, ioas=[200, 205, 206],
           ws={"iec60870_asdu.normval": [v for _, v in norm], "iec60870_asdu.qds.ov": [1] * 3},
           ours={"value": [v for _, v in norm], "quality": [I.QDS_OV] * 3}),
        _i("scaled", False, 5, 1, I.m_me_nb_1(CA, scaled, I.COT_BACKGROUND, quality=bad),
           type_id=I.M_ME_NB_1, cot=I.COT_BACKGROUND, ioas=[210, 211],
           ws={"iec60870_asdu.scalval": [v for _, v in scaled], "iec60870_asdu.qds.iv": [1, 1],
               "iec60870_asdu.qds.nt": [1, 1]},
           ours={"value_int": [v for _, v in scaled], "quality": [bad, bad]}),
        _i("float_sq", False, 6, 1, I.m_me_nc_1(CA, floats, I.COT_SPONTANEOUS, sq=True),
           type_id=I.M_ME_NC_1, cot=I.COT_SPONTANEOUS, ioas=[220, 221, 222], sq=True,
           ws={"iec60870_asdu.float": [v for _, v in floats]},
           ours={"value": [v for _, v in floats]}),
        _i("single_point_time", False, 7, 1, I.m_sp_tb_1(CA, [(100, False, T1), (102, True, T2)]),
           type_id=I.M_SP_TB_1, cot=I.COT_SPONTANEOUS, ioas=[100, 102],
           ws={"iec60870_asdu.siq.spi": [0, 1], "iec60870_asdu.cp56time": [T1, T2],
               "iec60870_asdu.cp56time.dow": [2, 7]},
           ours={"value_int": [0, 1], "time": [T1, T2]}),
        _i("double_point_time", False, 8, 1, I.m_dp_tb_1(CA, [(111, I.DP_ON, T1)]),
           type_id=I.M_DP_TB_1, cot=I.COT_SPONTANEOUS, ioas=[111],
           ws={"iec60870_asdu.diq.dpi": [I.DP_ON], "iec60870_asdu.cp56time": [T1]},
           ours={"value_int": [I.DP_ON], "time": [T1]}),
        _i("float_time", False, 9, 1, I.m_me_tf_1(CA, [(220, 50.25, T2)], quality=I.QDS_SB),
           type_id=I.M_ME_TF_1, cot=I.COT_SPONTANEOUS, ioas=[220],
           ws={"iec60870_asdu.float": [50.25], "iec60870_asdu.qds.sb": [1],
               "iec60870_asdu.cp56time": [T2]},
           ours={"value": [50.25], "quality": [I.QDS_SB], "time": [T2]}),
        _i("interrogation_term", False, 10, 1,
           I.c_ic_na_1(CA, cot=I.COT_ACTIVATION_TERMINATION), type_id=I.C_IC_NA_1,
           cot=I.COT_ACTIVATION_TERMINATION, ioas=[0]),
        Case("s_frame", True, I.s_frame(11), "S", rx=11),
        _i("single_select", True, 1, 11, I.c_sc_na_1(CA, 5000, True, select=True, qu=1),
           type_id=I.C_SC_NA_1, cot=I.COT_ACTIVATION, ioas=[5000],
           ws={"iec60870_asdu.sco.on": [1], "iec60870_asdu.sco.se": [1],
               "iec60870_asdu.sco.qu": [1]},
           ours={"value_int": [1], "select": [True], "qualifier": [1]}),
        _i("single_select_con", False, 11, 2,
           I.c_sc_na_1(CA, 5000, True, select=True, qu=1, cot=I.COT_ACTIVATION_CON),
           type_id=I.C_SC_NA_1, cot=I.COT_ACTIVATION_CON, ioas=[5000],
           ours={"select": [True]}),
        _i("single_execute", True, 2, 12, I.c_sc_na_1(CA, 5000, True, qu=1),
           type_id=I.C_SC_NA_1, cot=I.COT_ACTIVATION, ioas=[5000],
           ws={"iec60870_asdu.sco.on": [1], "iec60870_asdu.sco.se": [0]},
           ours={"value_int": [1], "select": [False]}),
        _i("single_execute_term", False, 12, 3,
           I.c_sc_na_1(CA, 5000, True, qu=1, cot=I.COT_ACTIVATION_TERMINATION),
           type_id=I.C_SC_NA_1, cot=I.COT_ACTIVATION_TERMINATION, ioas=[5000]),
        _i("single_time", True, 3, 13, I.c_sc_ta_1(CA, 5001, False, T1),
           type_id=I.C_SC_TA_1, cot=I.COT_ACTIVATION, ioas=[5001],
           ws={"iec60870_asdu.sco.on": [0], "iec60870_asdu.cp56time": [T1]},
           ours={"value_int": [0], "time": [T1]}),
        _i("double_select", True, 4, 13, I.c_dc_na_1(CA, 5100, I.DP_OFF, select=True),
           type_id=I.C_DC_NA_1, cot=I.COT_ACTIVATION, ioas=[5100],
           ws={"iec60870_asdu.dco.on": [I.DP_OFF], "iec60870_asdu.dco.se": [1]},
           ours={"value_int": [I.DP_OFF], "select": [True]}),
        _i("double_execute", True, 5, 13, I.c_dc_na_1(CA, 5100, I.DP_ON, qu=2),
           type_id=I.C_DC_NA_1, cot=I.COT_ACTIVATION, ioas=[5100],
           ws={"iec60870_asdu.dco.on": [I.DP_ON], "iec60870_asdu.dco.qu": [2]},
           ours={"value_int": [I.DP_ON], "select": [False], "qualifier": [2]}),
        _i("setpoint_normalized", True, 6, 13, I.c_se_na_1(CA, 6000, -0.5, select=True),
           type_id=I.C_SE_NA_1, cot=I.COT_ACTIVATION, ioas=[6000],
           ws={"iec60870_asdu.normval": [-0.5], "iec60870_asdu.qos.se": [1]},
           ours={"value": [-0.5], "select": [True]}),
        _i("setpoint_scaled", True, 7, 13, I.c_se_nb_1(CA, 6001, 1234, ql=5),
           type_id=I.C_SE_NB_1, cot=I.COT_ACTIVATION, ioas=[6001],
           ws={"iec60870_asdu.scalval": [1234], "iec60870_asdu.qos.ql": [5],
               "iec60870_asdu.qos.se": [0]},
           ours={"value_int": [1234], "qualifier": [5], "select": [False]}),
        _i("setpoint_float", True, 8, 13, I.c_se_nc_1(CA, 6002, 12.5),
           type_id=I.C_SE_NC_1, cot=I.COT_ACTIVATION, ioas=[6002],
           ws={"iec60870_asdu.float": [12.5]}, ours={"value": [12.5]}),
        _i("setpoint_rejected", False, 13, 9,
           I.c_se_nc_1(CA, 6002, 12.5, cot=I.COT_ACTIVATION_CON, negative=True, originator=3,
                       test=True),
           type_id=I.C_SE_NC_1, cot=I.COT_ACTIVATION_CON, ioas=[6002], negative=True,
           test=True, originator=3),
        _i("unknown_ioa", False, 14, 9, I.c_se_nc_1(CA, 6999, 1.0, cot=I.COT_UNKNOWN_IOA,
                                                     negative=True),
           type_id=I.C_SE_NC_1, cot=I.COT_UNKNOWN_IOA, ioas=[6999], negative=True,
           ours={"cot_name": "UkIOA"}),
        _i("clock_sync", True, 9, 15, I.c_cs_na_1(CA, T2), type_id=I.C_CS_NA_1,
           cot=I.COT_ACTIVATION, ioas=[0], ws={"iec60870_asdu.cp56time": [T2]},
           ours={"time": [T2]}),
        _i("reset_process", True, 10, 15, I.c_rp_na_1(CA, I.QRP_RESET_EVENTS),
           type_id=I.C_RP_NA_1, cot=I.COT_ACTIVATION, ioas=[0],
           ws={"iec60870_asdu.qrp": [I.QRP_RESET_EVENTS]},
           ours={"qualifier": [I.QRP_RESET_EVENTS]}),
        _i("end_of_init", False, 15, 11, I.m_ei_na_1(CA, coi=2), type_id=I.M_EI_NA_1,
           cot=I.COT_INITIALIZED, ioas=[0], ours={"qualifier": [2]}),
        _i("sequence_wrap", False, 32767, 16383, I.m_sp_na_1(CA, [(1, True)]),
           type_id=I.M_SP_NA_1, cot=I.COT_SPONTANEOUS, ioas=[1]),
        _u("testfr_act", True, I.U_TESTFR_ACT, I.testfr()),
        _u("testfr_con", False, I.U_TESTFR_CON, I.testfr(con=True)),
        _u("stopdt_act", True, I.U_STOPDT_ACT, I.stopdt()),
        _u("stopdt_con", False, I.U_STOPDT_CON, I.stopdt(con=True)),
    ]  # fmt: skip


CASES = _cases()
BY_NAME = {c.name: c for c in CASES}
WS_FIELDS = sorted(
    {"iec60870_104.type", "iec60870_104.utype", "iec60870_104.tx", "iec60870_104.rx",
     "iec60870_104.apdulen", "iec60870_asdu.typeid", "iec60870_asdu.sq",
     "iec60870_asdu.numix", "iec60870_asdu.causetx", "iec60870_asdu.nega",
     "iec60870_asdu.test", "iec60870_asdu.oa", "iec60870_asdu.addr", "iec60870_asdu.ioa"}
    | {f for case in CASES for f in case.ws}
)  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    cap = Capture()
    conv = tcp_conversation(2404)
    cap.add(conv.handshake())
    frame_of = {}
    for case in CASES:
        (frame_of[case.name],) = cap.add(conv.send(case.from_client, case.apdu))
    return Built(cap.write(tmp_path_factory.mktemp("iec104") / "iec104.pcap"), frame_of)


@pytest.fixture(scope="module")
def ws(tshark: str, built: Built) -> dict[int, dict[str, list[str]]]:
    return fields(tshark, built.path, WS_FIELDS)


@pytest.fixture(scope="module")
def ours(built: Built) -> dict[int, dict[str, Any]]:
    return rows_by_frame(decode_clean(built.path).tables["iec104"])


# ---- tshark ------------------------------------------------------------------------------


@pytest.mark.tshark
def test_tshark_finds_no_problems(tshark: str, built: Built) -> None:
    assert problems(tshark, built.path) == ""
    assert expert(tshark, built.path, "warning") == {}


@pytest.mark.tshark
def test_tshark_shows_iec104_on_every_frame(tshark: str, built: Built) -> None:
    stacks = protocols(tshark, built.path)
    for name, n in built.frame_of.items():
        want = "iec60870_asdu" if BY_NAME[name].apci == "I" else "iec60870_104"
        assert want in stacks[n], (name, stacks[n])


def _ws_value(name: str, text: str) -> Any:
    if name == "iec60870_asdu.cp56time":
        return ws_time_ms(text)
    if name in ("iec60870_asdu.float", "iec60870_asdu.normval"):
        return pytest.approx(float(text), rel=1e-5)  # tshark prints six digits
    return int(text, 0)


@pytest.mark.tshark
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tshark_reads_encoded_values(case: Case, ws: dict, built: Built) -> None:
    got = ws[built.frame_of[case.name]]
    assert ints(got["iec60870_104.apdulen"]) == [len(case.apdu) - 2]
    assert ints(got["iec60870_104.type"]) == [{"I": 0, "S": 1, "U": 3}[case.apci]]
    assert ints(got["iec60870_104.utype"]) == ([] if case.u is None else [case.u >> 2])
    assert ints(got["iec60870_104.tx"]) == ([] if case.tx is None else [case.tx])
    assert ints(got["iec60870_104.rx"]) == ([] if case.rx is None else [case.rx])
    if case.apci != "I":
        assert got["iec60870_asdu.typeid"] == []
        return
    assert ints(got["iec60870_asdu.typeid"]) == [case.type_id]
    assert ints(got["iec60870_asdu.sq"]) == [int(case.sq)]
    assert ints(got["iec60870_asdu.numix"]) == [len(case.ioas)]
    assert ints(got["iec60870_asdu.causetx"]) == [case.cot]
    assert ints(got["iec60870_asdu.nega"]) == [int(case.negative)]
    assert ints(got["iec60870_asdu.test"]) == [int(case.test)]
    assert ints(got["iec60870_asdu.oa"]) == [case.originator]
    assert ints(got["iec60870_asdu.addr"]) == [CA]
    assert ints(got["iec60870_asdu.ioa"]) == case.ioas
    for name, want in case.ws.items():
        assert [_ws_value(name, t) for t in got[name]] == [
            int(w) if isinstance(w, bool) else w for w in want
        ], name


# ---- otsight -----------------------------------------------------------------------------


def _ms(stamp: datetime | None) -> int | None:
    return None if stamp is None else round(stamp.timestamp() * 1000)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_otsight_reads_encoded_values(case: Case, ours: dict, built: Built) -> None:
    row = ours[built.frame_of[case.name]]
    assert row["apci_type"] == case.apci
    assert (row["tx"], row["rx"]) == (case.tx, case.rx)
    assert row["u_function"] == (None if case.u is None else case.u >> 2)
    if case.apci != "I":
        assert row["type_id"] is None and row["ioa"] in (None, [])
        return
    assert (row["type_id"], row["cot"], row["common_address"]) == (case.type_id, case.cot, CA)
    assert (row["sq"], row["count"]) == (case.sq, len(case.ioas))
    assert (row["negative"], row["test"]) == (case.negative, case.test)
    assert row["originator_address"] == case.originator
    assert row["ioa"] == case.ioas
    for name, want in case.ours.items():
        got = row[name]
        if name == "time":
            got = [_ms(t) for t in got]
        if name == "quality_flags":
            got = [sorted(f.split("|")) if f else [] for f in got]
        assert got == want, name


def test_every_apdu_is_one_otsight_row(ours: dict, built: Built) -> None:
    assert sorted(ours) == sorted(built.frame_of.values())


def test_otsight_pairs_commands_with_confirmations(ours: dict, built: Built) -> None:
    f = built.frame_of
    assert ours[f["interrogation_con"]]["request_frame"] == f["interrogation"]
    assert ours[f["single_select_con"]]["request_frame"] == f["single_select"]
    assert ours[f["startdt_con"]]["request_frame"] == f["startdt_act"]
    assert ours[f["stopdt_con"]]["request_frame"] == f["stopdt_act"]


# ---- encoder units -----------------------------------------------------------------------


def test_apci_octets() -> None:
    assert I.startdt() == bytes([0x68, 4, 0x07, 0, 0, 0])
    assert I.testfr(con=True) == bytes([0x68, 4, 0x83, 0, 0, 0])
    assert I.s_frame(0x1234) == bytes([0x68, 4, 0x01, 0]) + struct.pack("<H", 0x1234 << 1)
    frame = I.i_frame(0x7FFF, 1, b"\x01\x01\x03\x00\x01\x00" + bytes(4))
    assert frame[:6] == bytes([0x68, 14, 0xFE, 0xFF, 0x02, 0x00])
    with pytest.raises(ValueError):
        I.u_frame(0x05)
    with pytest.raises(ValueError):
        I.apdu(b"\x00\x00\x00\x00", bytes(250))


def test_cp56time2a_fields() -> None:
    # 2024-06-30 23:59:59.999, a Sunday (day of week 7), summer time and invalid flags
    got = I.cp56time2a(T2, invalid=True, summer_time=True)
    assert got == struct.pack("<H", 59_999) + bytes([59 | 0x80, 23 | 0x80, 30 | 7 << 5, 6, 24])
    assert I.cp56time2a(0)[2:] == bytes([0, 0, 1 | 4 << 5, 1, 70])  # 1970-01-01, Thursday


def test_asdu_header_and_sq_rules() -> None:
    a = I.asdu(I.M_SP_NA_1, I.COT_SPONTANEOUS, 0x0102, [(0x030201, b"\x01")], originator=9,
               negative=True, test=True)  # fmt: skip
    assert a == bytes([1, 1, 0xC3, 9, 0x02, 0x01, 0x01, 0x02, 0x03, 0x01])
    sq = I.asdu(I.M_SP_NA_1, 3, 1, [(10, b"\x01"), (11, b"\x00")], sq=True)
    assert sq[1] == 0x82 and sq[6:] == bytes([10, 0, 0, 1, 0])
    with pytest.raises(ValueError):
        I.asdu(I.M_SP_NA_1, 3, 1, [(10, b"\x01"), (12, b"\x00")], sq=True)
    with pytest.raises(ValueError):
        I.asdu(I.M_SP_NA_1, 3, 1, [(1 << 24, b"\x01")])
    with pytest.raises(ValueError):
        I.nva(1.0)
    assert I.nva(-1.0) == b"\x00\x80"


def test_elements() -> None:
    assert I.sco(True, select=True, qu=3) == bytes([0x80 | 3 << 2 | 1])
    assert I.dco(I.DP_ON, qu=1) == bytes([1 << 2 | 2])
    assert I.qos(True, 5) == bytes([0x85])
    assert I.siq(True, I.QDS_IV | I.QDS_OV) == bytes([0x81])  # OV is not a SIQ bit
    assert I.diq(I.DP_OFF, I.QDS_NT) == bytes([0x41])
