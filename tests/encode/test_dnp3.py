"""otsight.encode.dnp3: every encoder's output read back by tshark and by otsight.

One capture holds one TCP conversation on port 20000 (master 1, outstation 10) with a
fragment per case; the link-only and UDP cases follow.  Expected values come from the
inputs given to the encoders, never from a decoder's output.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from otsight.encode import dnp3 as D
from tests.encode.wire import (
    Capture,
    decode_clean,
    expert,
    fields,
    ints,
    problems,
    protocols,
    rows_by_frame,
    tcp_conversation,
    udp_frame,
    ws_time_ms,
)

MASTER, OUTSTATION = 1, 10
TIME_MS = 1_700_000_000_123  # 2023-11-14 22:13:20.123 UTC
BI_STATES = [True, False, True, True]
AI32 = [123, -5, 70000]
AI16 = [-300, 4000]
AI_FLOAT = [1.5, -2.25]
BIG = list(range(0, 140_000, 1000))  # 140 g30v1 points: 702 application bytes, 3 segments
FILE_NAME = "/config/plant.cfg"
FILE_HANDLE, FILE_REQ, FILE_BLOCK_SIZE, FILE_SIZE = 0x1234, 7, 512, 4000
FILE_DATA = b"hello world"
CROB_SEL = dict(index=7, code=D.CROB_LATCH_ON | D.CROB_CLOSE, count=1, on_ms=100, off_ms=200)
FRAGMENTS = D.response_fragments(4, 0, [D.analog_inputs(0, AI32, 1), D.binary_inputs(0, BI_STATES)])
TWO_CROBS = [
    D.Crob(3, D.CROB_LATCH_ON),
    D.Crob(4, D.CROB_PULSE_OFF | D.CROB_TRIP, count=2, on_ms=50, off_ms=50),
]
CROB_PULSE = dict(index=9, code=D.CROB_PULSE_ON | D.CROB_TRIP, count=3, on_ms=250, off_ms=750)


@dataclass
class Case:
    """One application fragment: who sends it, what tshark and otsight should read."""

    name: str
    from_master: bool
    fragment: bytes
    func: int
    seq: int
    objects: list[tuple[int, int]] = field(default_factory=list)
    iin: int | None = None
    ws: dict[str, list[Any]] = field(default_factory=dict)  # tshark field -> values
    ours: dict[str, Any] = field(default_factory=dict)  # otsight dnp3 column -> value
    transport_seq: int = 0
    ws_no_reassembly: bool = False  # Wireshark 4.0 drops fragments whose seq wraps 63 -> 0


def _crob_ws(c: dict[str, int], status: int = 0) -> dict[str, list[Any]]:
    return {
        "dnp3.al.index": [c["index"]],
        "dnp3.ctl.op": [c["code"] & 0x0F],
        "dnp3.ctl.trip": [c["code"] >> 6],
        "dnp3.al.count": [c["count"]],
        "dnp3.al.on_time": [c["on_ms"]],
        "dnp3.al.off_time": [c["off_ms"]],
        "dnp3.al.ctrlstatus": [status],
    }


def _crob_ours(c: dict[str, int], status: int = 0) -> dict[str, Any]:
    return {
        "crob_index": [c["index"]],
        "crob_control_code": [c["code"]],
        "crob_count": [c["count"]],
        "crob_on_time": [c["on_ms"]],
        "crob_off_time": [c["off_ms"]],
        "crob_status": [status],
    }


def _cases() -> list[Case]:
    restart_iin = D.IIN_DEVICE_RESTART | D.IIN_NEED_TIME
    static = (
        D.binary_inputs(0, BI_STATES)
        + D.binary_inputs(20, BI_STATES, variation=1)
        + D.analog_inputs(0, AI32, 1)
        + D.analog_inputs(5, AI16, 2)
        + D.analog_inputs(10, AI_FLOAT, 5)
    )
    events = D.binary_input_events([(3, True), (4, False)], time_ms=TIME_MS)
    events += D.analog_input_events([(4, 99)], 1) + D.binary_input_events([(6, True)])
    return [
        Case("integrity_poll", True, D.read_class(0), D.FC_READ, 0,
             [(60, 2), (60, 3), (60, 4), (60, 1)], ours={"obj_qualifier": [6] * 4}),
        Case("static_response", False, D.response(0, restart_iin, static), D.FC_RESPONSE, 0,
             [(1, 2), (1, 1), (30, 1), (30, 2), (30, 5)], iin=restart_iin,
             ws={"dnp3.al.biq.b7": BI_STATES, "dnp3.al.ana.int": AI32 + AI16,
                 "dnp3.al.ana.float": AI_FLOAT,
                 "dnp3.al.point_index": [0, 1, 2, 3, 20, 21, 22, 23, 0, 1, 2, 5, 6, 10, 11]},
             ours={"obj_range_start": [0, 20, 0, 5, 10], "obj_range_stop": [3, 23, 2, 6, 11],
                   "iin_names": ["need_time", "device_restart"]}),
        Case("read_range16", True, D.read_range(1, 30, 5, 3, 300), D.FC_READ, 1, [(30, 5)],
             ws={"dnp3.al.range.start": [3], "dnp3.al.range.stop": [300]},
             ours={"obj_qualifier": [1], "obj_range_start": [3], "obj_range_stop": [300]}),
        Case("read_range8", True, D.read_range(2, 1, 2, 0, 15), D.FC_READ, 2, [(1, 2)],
             ws={"dnp3.al.range.start": [0], "dnp3.al.range.stop": [15]},
             ours={"obj_qualifier": [0], "obj_count": [16]}),
        Case("read_all", True, D.read(3, D.all_objects(30, 0)), D.FC_READ, 3, [(30, 0)],
             ours={"obj_qualifier": [6]}),
        Case("select", True, D.select(4, D.crob(**CROB_SEL)), D.FC_SELECT, 4, [(12, 1)],
             ws=_crob_ws(CROB_SEL), ours=_crob_ours(CROB_SEL)),
        Case("select_response", False, D.response(4, 0, D.crob(**CROB_SEL)), D.FC_RESPONSE, 4,
             [(12, 1)], iin=0, ws=_crob_ws(CROB_SEL), ours=_crob_ours(CROB_SEL)),
        Case("operate", True, D.operate(5, D.crob(**CROB_SEL)), D.FC_OPERATE, 5, [(12, 1)],
             ws=_crob_ws(CROB_SEL), ours=_crob_ours(CROB_SEL)),
        Case("direct_operate_crob", True, D.direct_operate(6, D.crob(**CROB_PULSE)),
             D.FC_DIRECT_OPERATE, 6, [(12, 1)], ws=_crob_ws(CROB_PULSE),
             ours=_crob_ours(CROB_PULSE)),
        Case("crob_rejected", False, D.response(6, D.IIN_PARAMETER_ERROR,
                                                D.crob(**CROB_PULSE, status=4)),
             D.FC_RESPONSE, 6, [(12, 1)], iin=D.IIN_PARAMETER_ERROR,
             ws=_crob_ws(CROB_PULSE, 4), ours=_crob_ours(CROB_PULSE, 4)),
        Case("direct_operate_ao_float", True, D.direct_operate(7, D.analog_output(3, 4.5, 3)),
             D.FC_DIRECT_OPERATE, 7, [(41, 3)],
             ws={"dnp3.al.index": [3], "dnp3.al.anaout.float": [4.5]},
             ours={"ao_index": [3], "ao_value": [4.5], "ao_status": [0]}),
        Case("direct_operate_no_ack_ao", True,
             D.direct_operate(8, D.analog_output(2, 1234, 2), no_ack=True),
             D.FC_DIRECT_OPERATE_NO_ACK, 8, [(41, 2)],
             ws={"dnp3.al.index": [2], "dnp3.al.anaout.int": [1234]},
             ours={"ao_index": [2], "ao_value": [1234.0]}),
        Case("two_crobs_index8", True, D.direct_operate(9, D.crobs(TWO_CROBS, index_size=1)),
             D.FC_DIRECT_OPERATE, 9, [(12, 1)],
             ws={"dnp3.al.index": [b.index for b in TWO_CROBS],
                 "dnp3.ctl.op": [b.code & 0x0F for b in TWO_CROBS],
                 "dnp3.ctl.trip": [b.code >> 6 for b in TWO_CROBS],
                 "dnp3.al.on_time": [b.on_ms for b in TWO_CROBS]},
             ours={"obj_qualifier": [D.Q_INDEX8_COUNT8], "obj_count": [2],
                   "crob_index": [b.index for b in TWO_CROBS],
                   "crob_control_code": [b.code for b in TWO_CROBS],
                   "crob_on_time": [b.on_ms for b in TWO_CROBS]}),
        Case("ao16_index8", True, D.operate(9, D.analog_output(5, -1234, 2, index_size=1)),
             D.FC_OPERATE, 9, [(41, 2)],
             ws={"dnp3.al.index": [5], "dnp3.al.anaout.int": [-1234]},
             ours={"obj_qualifier": [D.Q_INDEX8_COUNT8], "ao_index": [5],
                   "ao_value": [-1234.0]}),
        Case("float_events_index8", False,
             D.response(9, 0, D.analog_input_events([(9, 2.5), (200, -1.0)], 5, index_size=1)
                        + D.binary_input_events([(17, False)], index_size=1)),
             D.FC_RESPONSE, 9, [(32, 5), (2, 1)], iin=0,
             ws={"dnp3.al.index": [9, 200, 17], "dnp3.al.ana.float": [2.5, -1.0],
                 "dnp3.al.biq.b7": [0]},
             ours={"obj_qualifier": [D.Q_INDEX8_COUNT8] * 2, "obj_count": [2, 1]}),
        Case("select_ao32", True, D.select(9, D.analog_output(1, -70000, 1)), D.FC_SELECT, 9,
             [(41, 1)], ws={"dnp3.al.index": [1]}, ours={"ao_value": [-70000.0]}),
        Case("cold_restart", True, D.cold_restart(10), D.FC_COLD_RESTART, 10),
        Case("restart_response", False, D.restart_response(10, 1500), D.FC_RESPONSE, 10,
             [(52, 2)], iin=0, ws={"dnp3.al.time_delay": [1500]}, ours={"obj_count": [1]}),
        Case("warm_restart", True, D.warm_restart(11), D.FC_WARM_RESTART, 11),
        Case("restart_response_coarse", False, D.restart_response(11, 30_000, fine=False),
             D.FC_RESPONSE, 11, [(52, 1)], iin=0, ours={"obj_count": [1]}),
        Case("enable_unsolicited", True, D.enable_unsolicited(12), D.FC_ENABLE_UNSOLICITED, 12,
             [(60, 2), (60, 3), (60, 4)]),
        Case("disable_unsolicited", True, D.disable_unsolicited(13, (2, 3)),
             D.FC_DISABLE_UNSOLICITED, 13, [(60, 3), (60, 4)]),
        Case("write_time", True, D.write_time(14, TIME_MS), D.FC_WRITE, 14, [(50, 1)],
             ws={"dnp3.al.timestamp": [TIME_MS]}),
        Case("clear_restart", True, D.clear_restart(15), D.FC_WRITE, 15, [(80, 1)],
             ws={"dnp3.al.point_index": [7], "dnp3.al.bit": [0]},
             ours={"obj_range_start": [7], "obj_range_stop": [7]}),
        Case("file_open", True,
             D.file_open(0, FILE_NAME, D.FILE_MODE_READ, FILE_REQ, FILE_BLOCK_SIZE),
             D.FC_OPEN_FILE, 0, [(70, 3)],
             ws={"dnp3.al.file_name": [FILE_NAME], "dnp3.al.file.mode": [D.FILE_MODE_READ],
                 "dnp3.al.file.reqID": [FILE_REQ], "dnp3.al.file.maxblock": [FILE_BLOCK_SIZE]},
             ours={"file_name": FILE_NAME, "file_operation": "open_read"}),
        Case("file_open_write", True,
             D.file_open(3, "/fw/rtu.bin", D.FILE_MODE_WRITE, 8, 2048, file_size=65536),
             D.FC_OPEN_FILE, 3, [(70, 3)],
             ws={"dnp3.al.file_name": ["/fw/rtu.bin"], "dnp3.al.file.mode": [D.FILE_MODE_WRITE],
                 "dnp3.al.file.size": [65536], "dnp3.al.file.maxblock": [2048]},
             ours={"file_name": "/fw/rtu.bin", "file_operation": "open_write"}),
        Case("file_open_status", False,
             D.response(0, 0, D.file_command_status(FILE_HANDLE, FILE_SIZE, FILE_BLOCK_SIZE,
                                                    FILE_REQ)),
             D.FC_RESPONSE, 0, [(70, 4)], iin=0,
             ws={"dnp3.al.file.handle": [FILE_HANDLE], "dnp3.al.file.size": [FILE_SIZE],
                 "dnp3.al.file.maxblock": [FILE_BLOCK_SIZE], "dnp3.al.file.status": [0]},
             ours={"file_operation": "command_status"}),
        Case("file_read", True, D.file_read(1, FILE_HANDLE, 0), D.FC_READ, 1, [(70, 5)],
             ws={"dnp3.al.file.handle": [FILE_HANDLE], "dnp3.al.file.blocknum": [0],
                 "dnp3.al.file.lastblock": [0]},
             ours={"file_operation": "read_block"}),
        Case("file_block", False,
             D.response(1, 0, D.file_transport(FILE_HANDLE, 0, FILE_DATA, last=True)),
             D.FC_RESPONSE, 1, [(70, 5)], iin=0,
             ws={"dnp3.al.file.handle": [FILE_HANDLE], "dnp3.al.file.lastblock": [1],
                 "dnp3.al.file.data": [FILE_DATA.hex()]}),
        Case("file_close", True, D.file_close(2, FILE_HANDLE, FILE_REQ), D.FC_CLOSE_FILE, 2,
             [(70, 4)], ws={"dnp3.al.file.handle": [FILE_HANDLE], "dnp3.al.file.reqID": [FILE_REQ]},
             ours={"file_operation": "close"}),
        Case("unsolicited", False, D.unsolicited_response(5, D.IIN_CLASS1_EVENTS, events),
             D.FC_UNSOLICITED_RESPONSE, 5, [(2, 2), (32, 1), (2, 1)], iin=D.IIN_CLASS1_EVENTS,
             ws={"dnp3.al.uns": [1], "dnp3.al.con": [1], "dnp3.al.index": [3, 4, 4, 6],
                 "dnp3.al.biq.b7": [1, 0, 1], "dnp3.al.ana.int": [99],
                 "dnp3.al.timestamp": [TIME_MS, TIME_MS]},
             ours={"app_uns": True, "app_con": True, "obj_count": [2, 1, 1],
                   "iin_names": ["class_1_events"]}),
        Case("unsolicited_confirm", True, D.confirm(5, uns=True), D.FC_CONFIRM, 5,
             ws={"dnp3.al.uns": [1]}, ours={"app_uns": True}),
        Case("null_unsolicited", False, D.unsolicited_response(6, D.IIN_DEVICE_RESTART),
             D.FC_UNSOLICITED_RESPONSE, 6, iin=D.IIN_DEVICE_RESTART),
        Case("app_fragment_first", False, FRAGMENTS[0], D.FC_RESPONSE, 4, [(30, 1)], iin=0,
             ws={"dnp3.al.fir": [1], "dnp3.al.fin": [0], "dnp3.al.con": [1]},
             ours={"app_fir": True, "app_fin": False, "app_con": True}),
        Case("app_fragment_confirm", True, D.confirm(4), D.FC_CONFIRM, 4),
        Case("app_fragment_last", False, FRAGMENTS[1], D.FC_RESPONSE, 5, [(1, 2)], iin=0,
             ws={"dnp3.al.fir": [0], "dnp3.al.fin": [1], "dnp3.al.con": [0],
                 "dnp3.al.biq.b7": BI_STATES},
             ours={"app_fir": False, "app_fin": True, "app_con": False}),
        Case("multi_segment", False, D.response(2, 0, D.analog_inputs(0, BIG, 1)),
             D.FC_RESPONSE, 2, [(30, 1)], iin=0, transport_seq=61,
             ws={"dnp3.al.ana.int": BIG, "dnp3.al.fragment.count": [3]},
             ours={"tr_segments": 3, "obj_range_stop": [len(BIG) - 1]}),
        Case("multi_segment_wrap", False, D.response(3, 0, D.analog_inputs(0, BIG, 1)),
             D.FC_RESPONSE, 3, [(30, 1)], iin=0, transport_seq=63, ws_no_reassembly=True,
             ours={"tr_segments": 3, "obj_range_stop": [len(BIG) - 1]}),
    ]  # fmt: skip


CASES = _cases()
LINK_STATUS_REQUEST = D.link_frame(
    OUTSTATION, MASTER, D.link_control(D.LINK_REQUEST_STATUS, from_master=True, primary=True)
)
LINK_STATUS = D.link_frame(
    MASTER, OUTSTATION, D.link_control(D.LINK_STATUS, from_master=False, primary=False)
)


@dataclass
class Built:
    path: Path
    frame_of: dict[str, int]  # case name -> frame carrying the (last segment of the) fragment
    first_frame_of: dict[str, int]
    link_frames: list[int]
    udp_frame: int


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    cap = Capture()
    conv = tcp_conversation(20000)
    cap.add(conv.handshake())
    frame_of, first_of = {}, {}
    for case in CASES:
        dst, src = (OUTSTATION, MASTER) if case.from_master else (MASTER, OUTSTATION)
        links = D.frames(dst, src, case.fragment, case.from_master, case.transport_seq)
        # one link frame per TCP segment, so each segment shows in its own packet
        numbers = cap.add(
            conv.send(case.from_master, b"".join(links), [len(f) for f in links]), case.name
        )
        first_of[case.name], frame_of[case.name] = numbers[0], numbers[-1]
    link = cap.add(conv.send(True, LINK_STATUS_REQUEST)) + cap.add(conv.send(False, LINK_STATUS))
    confirmed = D.frames(OUTSTATION, MASTER, D.read_class(7, (1,)), confirmed=True, fcb=True)
    (udp,) = cap.add([udp_frame(20000, 20000, confirmed[0])])
    path = cap.write(tmp_path_factory.mktemp("dnp3") / "dnp3.pcap")
    return Built(path, frame_of, first_of, link, udp)


WS_FIELDS = sorted(
    {"dnp3.al.func", "dnp3.al.seq", "dnp3.al.obj", "dnp3.al.iin", "dnp3.src", "dnp3.dst",
     "dnp3.tr.fir", "dnp3.tr.fin", "dnp3.tr.seq", "dnp3.ctl.dir", "dnp3.ctl.prm",
     "dnp3.ctl.fcb", "dnp3.ctl.fcv", "dnp3.ctl.prifunc", "dnp3.ctl.secfunc"}
    | {f for case in CASES for f in case.ws}
)  # fmt: skip


@pytest.fixture(scope="module")
def ws(tshark: str, built: Built) -> dict[int, dict[str, list[str]]]:
    return fields(tshark, built.path, WS_FIELDS)


@pytest.fixture(scope="module")
def ours(built: Built) -> dict[int, dict[str, Any]]:
    return rows_by_frame(decode_clean(built.path).tables["dnp3"])


# ---- tshark ------------------------------------------------------------------------------


@pytest.mark.tshark
def test_tshark_finds_no_problems(tshark: str, built: Built) -> None:
    assert problems(tshark, built.path) == ""
    # Bad link CRCs are only warnings in Wireshark, so warnings are checked too; the two
    # expected ones: IIN2.2 set on purpose, and g52v1 which Wireshark 4.0 does not know.
    assert expert(tshark, built.path, "warning") == {
        built.frame_of["crob_rejected"]: ["IIN Abnormality"],
        built.frame_of["restart_response_coarse"]: ["Unknown Object\\Variation"],
    }


@pytest.mark.tshark
def test_tshark_shows_dnp3_on_every_data_frame(tshark: str, built: Built) -> None:
    stacks = protocols(tshark, built.path)
    numbers = [n for name in built.frame_of for n in range(built.first_frame_of[name],
                                                            built.frame_of[name] + 1)]  # fmt: skip
    numbers += [*built.link_frames, built.udp_frame]
    assert len(numbers) == len(CASES) + 2 * 2 + 2 + 1  # two cases have three segments
    for n in numbers:
        assert "dnp3" in stacks[n], (n, stacks[n])


def _ws_value(name: str, text: str) -> Any:
    if name == "dnp3.al.timestamp":
        return ws_time_ms(text)
    if name in ("dnp3.al.ana.float", "dnp3.al.anaout.float"):
        return float(text)
    if name in ("dnp3.al.file.data", "dnp3.al.file_name"):
        return text
    return int(text, 0)


@pytest.mark.tshark
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tshark_reads_encoded_values(case: Case, ws: dict, built: Built) -> None:
    got = ws[built.frame_of[case.name]]
    dst, src = (OUTSTATION, MASTER) if case.from_master else (MASTER, OUTSTATION)
    assert ints(got["dnp3.dst"])[-1] == dst and ints(got["dnp3.src"])[-1] == src
    assert ints(got["dnp3.ctl.dir"]) == [int(case.from_master)]
    assert ints(got["dnp3.ctl.prifunc"]) == [D.LINK_UNCONFIRMED_USER_DATA]
    assert ints(got["dnp3.tr.fin"]) == [1]
    assert ints(got["dnp3.tr.seq"])[-1] == (case.transport_seq + len(
        D.segments(case.fragment)) - 1) % 64  # fmt: skip
    if case.ws_no_reassembly:
        assert got["dnp3.al.func"] == []
        return
    assert ints(got["dnp3.al.func"]) == [case.func]
    assert ints(got["dnp3.al.seq"]) == [case.seq]
    assert ints(got["dnp3.al.obj"]) == [g << 8 | v for g, v in case.objects]
    assert ints(got["dnp3.al.iin"]) == ([] if case.iin is None else [case.iin])
    for name, want in case.ws.items():
        assert [_ws_value(name, t) for t in got[name]] == [
            int(w) if isinstance(w, bool) else w for w in want
        ], name


@pytest.mark.tshark
def test_tshark_link_only_and_confirmed_frames(ws: dict, built: Built) -> None:
    request, status = (ws[n] for n in built.link_frames)
    assert ints(request["dnp3.ctl.prifunc"]) == [D.LINK_REQUEST_STATUS]
    assert ints(request["dnp3.ctl.prm"]) == [1] and ints(request["dnp3.ctl.dir"]) == [1]
    assert ints(status["dnp3.ctl.secfunc"]) == [D.LINK_STATUS]
    assert ints(status["dnp3.ctl.prm"]) == [0] and ints(status["dnp3.ctl.dir"]) == [0]
    assert request["dnp3.al.func"] == [] and status["dnp3.al.func"] == []
    udp = ws[built.udp_frame]
    assert ints(udp["dnp3.ctl.prifunc"]) == [D.LINK_CONFIRMED_USER_DATA]
    assert ints(udp["dnp3.ctl.fcb"]) == [1] and ints(udp["dnp3.ctl.fcv"]) == [1]
    assert ints(udp["dnp3.al.func"]) == [D.FC_READ] and ints(udp["dnp3.al.seq"]) == [7]
    assert ints(udp["dnp3.al.obj"]) == [60 << 8 | 2]


@pytest.mark.tshark
@pytest.mark.parametrize("name", ["multi_segment", "multi_segment_wrap"])
def test_tshark_reads_each_transport_segment(name: str, ws: dict, built: Built) -> None:
    first, last = built.first_frame_of[name], built.frame_of[name]
    start = next(c.transport_seq for c in CASES if c.name == name)
    assert last - first == 2
    for k, n in enumerate(range(first, last + 1)):
        assert ints(ws[n]["dnp3.tr.fir"]) == [int(k == 0)]
        assert ints(ws[n]["dnp3.tr.fin"]) == [int(k == 2)]
        assert ints(ws[n]["dnp3.tr.seq"]) == [(start + k) % 64]
        if n != last:
            assert ws[n]["dnp3.al.func"] == []


# ---- otsight -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_otsight_reads_encoded_values(case: Case, ours: dict, built: Built) -> None:
    row = ours[built.frame_of[case.name]]
    dst, src = (OUTSTATION, MASTER) if case.from_master else (MASTER, OUTSTATION)
    assert (row["src_addr"], row["dst_addr"], row["link_dir"]) == (src, dst, case.from_master)
    assert row["link_func"] == D.LINK_UNCONFIRMED_USER_DATA and row["link_prm"]
    assert row["func_code"] == case.func and row["app_seq"] == case.seq
    assert row["is_request"] == (case.func < 128)
    assert list(zip(row["obj_group"], row["obj_variation"], strict=True)) == case.objects
    assert row["iin"] == case.iin
    if "tr_segments" not in case.ours:
        assert row["tr_segments"] == 1
    for name, want in case.ours.items():
        assert row[name] == want, name


def test_otsight_link_only_and_confirmed_frames(ours: dict, built: Built) -> None:
    request, status = (ours[n] for n in built.link_frames)
    assert request["link_func"] == D.LINK_REQUEST_STATUS and request["func_code"] is None
    assert (request["src_addr"], request["dst_addr"]) == (MASTER, OUTSTATION)
    assert status["link_func"] == D.LINK_STATUS and status["link_prm"] is False
    udp = ours[built.udp_frame]
    assert udp["link_func"] == D.LINK_CONFIRMED_USER_DATA
    assert udp["link_fcb"] and udp["link_fcv"]
    assert udp["func_code"] == D.FC_READ and udp["app_seq"] == 7


def test_every_frame_is_one_otsight_row(ours: dict, built: Built) -> None:
    assert sorted(ours) == sorted([*built.frame_of.values(), *built.link_frames, built.udp_frame])


# ---- encoder units -----------------------------------------------------------------------


def _naive_crc(data: bytes) -> int:
    """Bit-serial CRC-16/DNP: reflected polynomial 0xA6BC, initial 0, complemented."""
    c = 0
    for byte in data:
        c ^= byte
        for _ in range(8):
            c = (c >> 1) ^ 0xA6BC if c & 1 else c >> 1
    return ~c & 0xFFFF


def test_crc_matches_naive_twin_and_check_value() -> None:
    assert D.crc(b"123456789") == 0xEA82  # CRC-16/DNP check value
    for n in range(40):
        data = bytes((7 * k + n) & 0xFF for k in range(n))
        assert D.crc(data) == _naive_crc(data)


def test_link_frame_layout() -> None:
    user = bytes(range(40))
    frame = D.link_frame(0x1234, 0x0A0B, 0xC4, user)
    assert frame[:2] == D.START and frame[2] == 5 + 40 and frame[3] == 0xC4
    assert struct.unpack_from("<HH", frame, 4) == (0x1234, 0x0A0B)
    assert len(frame) == 10 + 40 + 2 * 3  # blocks of 16, 16, 8 octets, each + CRC
    assert struct.unpack_from("<H", frame, 8)[0] == _naive_crc(frame[:8])
    pos, data = 10, b""
    while pos < len(frame):
        block = frame[pos : pos + 16] if len(frame) - pos > 18 else frame[pos:-2]
        assert struct.unpack_from("<H", frame, pos + len(block))[0] == _naive_crc(block)
        data += block
        pos += len(block) + 2
    assert data == user
    with pytest.raises(ValueError):
        D.link_frame(1, 2, 0xC4, bytes(251))


def test_segments_split_at_249_octets() -> None:
    fragment = bytes(range(256)) * 3  # 768 octets: 249 + 249 + 249 + 21
    segs = D.segments(fragment, seq=61)
    assert [len(s) - 1 for s in segs] == [249, 249, 249, 21]
    assert [s[0] for s in segs] == [0x40 | 61, 62, 63, 0x80 | 0]
    assert b"".join(s[1:] for s in segs) == fragment
    assert D.segments(b"") == [bytes([0xC0])]
    assert all(len(f) <= 292 for f in D.frames(1, 2, fragment))  # 10 + 250 + 16 CRCs


def test_control_octets() -> None:
    assert D.app_control(3, fir=True, fin=True, con=True, uns=True) == 0xF3
    assert D.link_control(D.LINK_CONFIRMED_USER_DATA, True, True, True, True) == 0xF3
    assert D.link_control(D.LINK_ACK, False, False, fcb=True, fcv_dfc=True) == 0x10
    assert D.transport_header(True, False, 65) == 0x41


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        D.analog_inputs(0, [1], variation=7)
    with pytest.raises(ValueError):
        D.analog_output(0, 1, variation=5)
    with pytest.raises(ValueError):
        D.binary_inputs(0, [True], variation=3)
    with pytest.raises(ValueError):
        D.class_objects([4])
    with pytest.raises(ValueError):
        D.range_header(1, 2, 5, 4)
