"""otsight.encode.profinet_dcp: DCP PDUs and RT cyclic frames read back by tshark and otsight.

One Ethernet frame per case (ethertype 0x8892) between an engineering station, a PLC
(IO-Controller) and an ET 200SP-like IO-Device.  Expected values come from the encoders'
inputs, never from a decoder's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from otsight.encode import packets as pk
from otsight.encode import profinet_dcp as P
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
)

ES, PLC, DEV = "02:00:00:00:00:99", "02:00:00:00:00:10", "00:1b:1b:01:02:03"
SIEMENS, ET200SP = 0x002A, 0x0313
NAME, TYPE = "et200sp-tank-1", "ET 200SP"  # 14 characters: an even block; TYPE is odd
IP, MASK, GW = "192.168.0.10", "255.255.255.0", "192.168.0.1"
PRIO_TAG = [(pk.ETH_8021Q, 0, 6)]  # priority-tagged (VID 0, PCP 6) as PROFINET devices send


@dataclass
class Case:
    """One PROFINET frame and what both decoders should read from it."""

    name: str
    dst: str
    src: str
    payload: bytes
    frame_id: int
    service: int | None = None  # DCP service id (None: RT frame)
    service_type: int | None = None
    xid: int | None = None
    vlan: bool = False
    ws: dict[str, list[Any]] = field(default_factory=dict)  # tshark field -> values
    ours: dict[str, Any] = field(default_factory=dict)  # otsight column -> value


def _dcp(name: str, dst: str, src: str, payload: bytes, **kw: Any) -> Case:
    frame_id, service, stype, xid = (
        int.from_bytes(payload[0:2], "big"),
        payload[2],
        payload[3],
        int.from_bytes(payload[4:8], "big"),
    )
    return Case(name, dst, src, payload, frame_id, service, stype, xid, **kw)


def _cases() -> list[Case]:
    station_ws = {
        "pn_dcp.suboption_device_nameofstation": [NAME],
        "pn_dcp.suboption_device_devicevendorvalue": [TYPE],
        "pn_dcp.suboption_vendor_id": [SIEMENS],
        "pn_dcp.suboption_device_id": [ET200SP],
        "pn_dcp.suboption_ip_ip": [IP],
        "pn_dcp.suboption_ip_subnetmask": [MASK],
    }
    station_ours = {
        "station_name": NAME,
        "vendor_string": TYPE,
        "vendor_id": SIEMENS,
        "device_id": ET200SP,
        "ip": IP,
        "netmask": MASK,
    }
    extra = [P.alias_name_block("port-001.et200sp-tank-1"), P.mac_address_block(DEV),
             P.device_instance_block(1, 2)]  # fmt: skip
    return [
        _dcp("identify_all", P.MULTICAST_IDENTIFY, ES, P.identify_request(0x1001), vlan=True,
             ws={"pn_dcp.response_delay": [1], "pn_dcp.option": [P.OPT_ALL]},
             ours={"options": ["all_selector/all"], "response_delay": 1}),
        _dcp("identify_response", ES, DEV,
             P.identify_response(0x1001, NAME, TYPE, SIEMENS, ET200SP, IP, MASK, GW,
                                 instance=(0, 7)),
             ws={**station_ws, "pn_dcp.suboption_ip_standard_gateway": [GW],
                 "pn_dcp.suboption_device_role": [P.ROLE_IO_DEVICE],
                 "pn_dcp.suboption_ip_block_info": [P.IP_BLOCK_INFO_SET],
                 "pn_dcp.suboption_device_instance": [0, 7]},  # high, low: one name
             ours={**station_ours, "gateway": GW, "device_role": P.ROLE_IO_DEVICE,
                   "device_role_names": ["IO-Device"], "device_instance": 7,
                   "ip_set": True, "ip_conflict": False, "request_frame": "identify_all",
                   "options": ["device/device_options", "device/type_of_station",
                               "device/name_of_station", "device/device_id",
                               "device/device_role", "ip/ip_parameter",
                               "device/device_instance"]}),
        _dcp("identify_response_plc", ES, PLC,
             P.identify_response(0x1001, "plc-1", "S7-1500", SIEMENS, 0x010E, "192.168.0.1",
                                 role=P.ROLE_IO_CONTROLLER, options=[(2, 2), (1, 2)],
                                 instance=None, ip_block_info=0x81),
             ws={"pn_dcp.suboption_device_nameofstation": ["plc-1"],
                 "pn_dcp.suboption_device_role": [P.ROLE_IO_CONTROLLER],
                 "pn_dcp.suboption_ip_block_info": [0x81]},
             ours={"station_name": "plc-1", "device_role_names": ["IO-Controller"],
                   "ip_conflict": True, "device_instance": None}),
        _dcp("identify_by_name", P.MULTICAST_IDENTIFY, ES,
             P.identify_request(0x1002, NAME, response_delay=255),
             ws={"pn_dcp.suboption_device_nameofstation": [NAME],
                 "pn_dcp.response_delay": [255]},
             ours={"station_name": NAME, "options": ["device/name_of_station"]}),
        _dcp("set_name", DEV, ES, P.set_name_of_station(0x1003, "rogue"),
             ws={"pn_dcp.suboption_device_nameofstation": ["rogue"],
                 "pn_dcp.block_qualifier": [P.QUALIFIER_PERMANENT, 0]},
             ours={"station_name": "rogue", "block_qualifier": P.QUALIFIER_PERMANENT,
                   "options": ["device/name_of_station", "control/end_transaction"]}),
        _dcp("set_name_response", ES, DEV,
             P.set_response(0x1003, [(P.OPT_DEVICE, P.SUB_NAME_OF_STATION),
                                     (P.OPT_CONTROL, P.SUB_END_TRANSACTION)]),
             ws={"pn_dcp.suboption_control_option": [P.OPT_DEVICE, P.OPT_CONTROL],
                 "pn_dcp.block_error": [0, 0]},
             ours={"request_frame": "set_name", "block_errors": [
                 {"block": "device/name_of_station", "error": 0, "error_name": "ok"},
                 {"block": "control/end_transaction", "error": 0, "error_name": "ok"}]}),
        _dcp("set_ip_temporary", DEV, ES,
             P.set_ip_parameter(0x1004, "10.9.9.9", "255.0.0.0", "10.0.0.1",
                                P.QUALIFIER_TEMPORARY),
             ws={"pn_dcp.suboption_ip_ip": ["10.9.9.9"],
                 "pn_dcp.suboption_ip_subnetmask": ["255.0.0.0"],
                 "pn_dcp.suboption_ip_standard_gateway": ["10.0.0.1"],
                 "pn_dcp.block_qualifier": [P.QUALIFIER_TEMPORARY, 0]},
             ours={"ip": "10.9.9.9", "netmask": "255.0.0.0", "gateway": "10.0.0.1",
                   "block_qualifier": P.QUALIFIER_TEMPORARY}),
        _dcp("set_full_ip_suite", DEV, ES,
             P.set_request(0x100B, [P.full_ip_suite_block("172.16.1.5", "255.255.0.0",
                                                         "172.16.0.1", ["172.16.0.53"])]),
             # Wireshark 4.0 shows DNS servers 1..4 under the IP, mask, gateway, gateway fields
             ws={"pn_dcp.suboption_ip_ip": ["172.16.1.5", "172.16.0.53"],
                 "pn_dcp.suboption_ip_subnetmask": ["255.255.0.0", "0.0.0.0"],
                 "pn_dcp.suboption_ip_standard_gateway": ["172.16.0.1", "0.0.0.0", "0.0.0.0"],
                 "pn_dcp.block_qualifier": [P.QUALIFIER_PERMANENT, 0]},
             ours={"ip": "172.16.1.5", "netmask": "255.255.0.0", "gateway": "172.16.0.1",
                   "options": ["ip/full_ip_suite", "control/end_transaction"]}),
        _dcp("set_ip_refused", ES, DEV,
             P.set_response(0x1004, [(P.OPT_IP, P.SUB_IP_PARAMETER,
                                      P.BLOCK_ERROR_SET_NOT_POSSIBLE)]),
             ws={"pn_dcp.block_error": [P.BLOCK_ERROR_SET_NOT_POSSIBLE]},
             ours={"block_errors": [{"block": "ip/ip_parameter",
                                     "error": P.BLOCK_ERROR_SET_NOT_POSSIBLE,
                                     "error_name": "set_not_possible_local_reasons"}]}),
        _dcp("factory_reset", DEV, ES, P.factory_reset_request(0x1005, P.RESET_TO_FACTORY_VALUES),
             ws={"pn_dcp.block_qualifier_reset": [P.RESET_TO_FACTORY_VALUES]},
             ours={"reset_mode": P.RESET_TO_FACTORY_VALUES,
                   "options": ["control/reset_to_factory"]}),
        _dcp("factory_reset_comm", DEV, ES,
             P.factory_reset_request(0x1006, P.RESET_COMMUNICATION_PARAMETER),
             ws={"pn_dcp.block_qualifier_reset": [P.RESET_COMMUNICATION_PARAMETER]},
             ours={"reset_mode": P.RESET_COMMUNICATION_PARAMETER}),
        _dcp("factory_reset_legacy", DEV, ES, P.factory_reset_request(0x1007, legacy=True),
             ours={"options": ["control/reset_factory_settings"]}),
        _dcp("factory_reset_response", ES, DEV,
             P.set_response(0x1007, [(P.OPT_CONTROL, P.SUB_RESET_FACTORY_SETTINGS)]),
             ours={"request_frame": "factory_reset_legacy"}),
        _dcp("signal", DEV, ES, P.signal_request(0x1008),
             ws={"pn_dcp.suboption_control_signal_value": [P.SIGNAL_FLASH_ONCE]},
             ours={"signal_value": P.SIGNAL_FLASH_ONCE, "options": ["control/signal"]}),
        _dcp("hello", P.MULTICAST_HELLO, DEV,
             P.hello(0x1009, NAME, TYPE, SIEMENS, ET200SP, IP, MASK, GW), vlan=True,
             ws={**station_ws, "pn_dcp.suboption_ip_block_info": [P.IP_BLOCK_INFO_SET]},
             ours={**station_ours, "ip_set": True, "is_request": True}),
        _dcp("get", DEV, ES, P.get_request(0x100A, [(2, 6), (1, 1), (2, 7)]),
             ours={"options": ["device/alias_name", "ip/mac_address", "device/device_instance"]}),
        _dcp("get_response", ES, DEV, P.get_response(0x100A, extra),
             ws={"pn_dcp.suboption_device_aliasname": ["port-001.et200sp-tank-1"],
                 "pn_dcp.suboption_ip_mac_address": [DEV],
                 "pn_dcp.suboption_device_instance": [1, 2]},
             ours={"alias_name": "port-001.et200sp-tank-1", "mac_address": DEV,
                   "device_instance": 0x0102, "request_frame": "get"}),
        Case("rt_output", DEV, PLC, P.rt_cyclic(0xC001, bytes([1, 2, 3, 4, P.IOXS_GOOD]),
                                                0x1234), 0xC001, vlan=True,
             ws={"pn_rt.cycle_counter": [0x1234], "pn_rt.ds": [P.DATA_STATUS_OK],
                 "pn_rt.transfer_status": [0], "pn_rt.ds_operate": [1]},
             ours={"first_cycle_counter": 0x1234, "last_data_status": P.DATA_STATUS_OK,
                   "stop_frames": 0, "frame_class": "rt_class_1"}),
        Case("rt_input_stopped", PLC, DEV,
             P.rt_cyclic(0xC002, bytes(60), 0xFFFF, P.DATA_STATUS_OK & ~P.DS_RUN), 0xC002,
             ws={"pn_rt.cycle_counter": [0xFFFF], "pn_rt.ds_operate": [0],
                 "pn_rt.ds_valid": [1]},
             ours={"first_cycle_counter": 0xFFFF, "stop_frames": 1, "invalid_frames": 0,
                   "bytes": 14 + 2 + 60 + 4}),
        Case("rt_invalid_backup", PLC, DEV,
             P.rt_cyclic(0xC003, b"", 7, P.DS_RUN | P.DS_STATION_OK, transfer_status=1),
             0xC003, ws={"pn_rt.ds_valid": [0], "pn_rt.ds_primary": [0],
                         "pn_rt.transfer_status": [1]},
             ours={"invalid_frames": 1, "backup_frames": 1, "ignore_frames": 1}),
    ]  # fmt: skip


CASES = _cases()
WS_FIELDS = sorted(
    {"pn_rt.frame_id", "pn_dcp.service_id", "pn_dcp.service_type", "pn_dcp.xid",
     "pn_dcp.data_length", "eth.dst", "eth.src", "vlan.priority"}
    | {f for case in CASES for f in case.ws}
)  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    cap = Capture()
    frame_of = {}
    for case in CASES:
        tags = PRIO_TAG if case.vlan else []
        frame = pk.ethernet(case.dst, case.src, P.ETH_PROFINET, case.payload, tags)
        (frame_of[case.name],) = cap.add([frame])
    return Built(cap.write(tmp_path_factory.mktemp("pn") / "profinet.pcap"), frame_of)


@pytest.fixture(scope="module")
def ws(tshark: str, built: Built) -> dict[int, dict[str, list[str]]]:
    return fields(tshark, built.path, WS_FIELDS)


@pytest.fixture(scope="module")
def ours(built: Built) -> dict[str, dict[int, dict[str, Any]]]:
    d = decode_clean(built.path)
    return {t: rows_by_frame(d.tables[t]) for t in ("profinet_dcp", "profinet_rt")}


# ---- tshark ------------------------------------------------------------------------------


@pytest.mark.tshark
def test_tshark_finds_no_problems(tshark: str, built: Built) -> None:
    assert problems(tshark, built.path) == ""
    assert expert(tshark, built.path, "warning") == {}
    # the IP address conflict the PLC's Identify response reports is a note
    assert expert(tshark, built.path, "note") == {
        built.frame_of["identify_response_plc"]: ["IP address conflict detected!"]
    }


@pytest.mark.tshark
def test_tshark_shows_profinet_on_every_frame(tshark: str, built: Built) -> None:
    stacks = protocols(tshark, built.path)
    for case in CASES:
        want = "pn_dcp" if case.service is not None else "pn_io"
        assert stacks[built.frame_of[case.name]][-1] == want, (case.name, stacks)


_WS_TEXT = (
    "eth.dst",
    "eth.src",
    "pn_dcp.suboption_device_nameofstation",
    "pn_dcp.suboption_device_devicevendorvalue",
    "pn_dcp.suboption_device_aliasname",
    "pn_dcp.suboption_ip_ip",
    "pn_dcp.suboption_ip_subnetmask",
    "pn_dcp.suboption_ip_standard_gateway",
    "pn_dcp.suboption_ip_mac_address",
)


def _ws_ints(name: str) -> bool:
    return name not in _WS_TEXT


@pytest.mark.tshark
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tshark_reads_encoded_values(case: Case, ws: dict, built: Built) -> None:
    got = ws[built.frame_of[case.name]]
    assert got["eth.dst"] == [case.dst] and got["eth.src"] == [case.src]
    assert ints(got["vlan.priority"]) == ([6] if case.vlan else [])
    assert ints(got["pn_rt.frame_id"]) == [case.frame_id]
    if case.service is None:
        assert got["pn_dcp.service_id"] == []
    else:
        assert ints(got["pn_dcp.service_id"]) == [case.service]
        assert ints(got["pn_dcp.service_type"]) == [case.service_type]
        assert ints(got["pn_dcp.xid"]) == [case.xid]
        assert ints(got["pn_dcp.data_length"]) == [len(case.payload) - 12]
    for name, want in case.ws.items():
        assert (ints(got[name]) if _ws_ints(name) else got[name]) == want, name


# ---- otsight -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", [c for c in CASES if c.service is not None], ids=lambda c: c.name)
def test_otsight_reads_encoded_dcp(case: Case, ours: dict, built: Built) -> None:
    row = ours["profinet_dcp"][built.frame_of[case.name]]
    assert (row["dst_mac"], row["src_mac"]) == (case.dst, case.src)
    assert row["vlan"] == (0 if case.vlan else None)
    assert row["frame_id"] == case.frame_id
    assert (row["service_id"], row["service_type"]) == (case.service, case.service_type)
    assert row["xid"] == case.xid and row["dcp_data_length"] == len(case.payload) - 12
    assert row["is_request"] == (case.service_type == P.TYPE_REQUEST)
    for name, want in case.ours.items():
        if name == "request_frame":
            want = built.frame_of[want]
        assert row[name] == want, name


@pytest.mark.parametrize("case", [c for c in CASES if c.service is None], ids=lambda c: c.name)
def test_otsight_reads_encoded_rt(case: Case, ours: dict, built: Built) -> None:
    n = built.frame_of[case.name]
    row = ours["profinet_rt"][n]  # one frame per (src, dst, FrameID): its own group
    assert (row["dst_mac"], row["src_mac"], row["frame_id"]) == (case.dst, case.src, case.frame_id)
    assert row["cyclic"] and row["frames"] == 1 and row["last_frame"] == n
    for name, want in case.ours.items():
        assert row[name] == want, name


def test_every_dcp_pdu_is_one_otsight_row(ours: dict, built: Built) -> None:
    dcp = sorted(built.frame_of[c.name] for c in CASES if c.service is not None)
    assert sorted(ours["profinet_dcp"]) == dcp


# ---- encoder units -----------------------------------------------------------------------


def test_blocks_are_padded_to_even_length() -> None:
    assert P.block(2, 2, b"abc") == bytes([2, 2, 0, 3]) + b"abc\0"
    assert P.block(2, 2, b"ab") == bytes([2, 2, 0, 2]) + b"ab"
    pdu = P.identify_request(7, "abc")
    assert pdu[:12] == bytes.fromhex("fefe 05 00 00000007 0001 0008".replace(" ", ""))
    assert pdu[12:] == bytes([2, 2, 0, 3]) + b"abc\0"


def test_set_request_layout() -> None:
    pdu = P.set_name_of_station(0x01020304, "io1")
    assert pdu[:12] == bytes.fromhex("fefd0400010203040000" + "0010")
    # NameOfStation: qualifier 1 + 3 chars (odd: padded), then End Transaction, qualifier 0
    assert pdu[12:] == bytes([2, 2, 0, 5, 0, 1]) + b"io1\0" + bytes([5, 2, 0, 2, 0, 0])


def test_rt_cyclic_layout() -> None:
    payload = P.rt_cyclic(0xC001, b"\x01\x80", 0xABCD, 0x35, 0)
    assert len(payload) == 2 + 40 + 4
    assert payload[:4] == b"\xc0\x01\x01\x80" and payload[-4:] == b"\xab\xcd\x35\x00"
    assert len(P.rt_cyclic(0xC001, bytes(100), 0)) == 106


def test_bad_mac_raises() -> None:
    with pytest.raises(ValueError):
        P.mac_address_block("00:11:22")
