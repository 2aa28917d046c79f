"""otsight.encode.bacnet: every encoder's B/IP messages read back by tshark and by otsight.

Each case is one UDP datagram on port 47808 between a workstation (client) and a
controller, or a broadcast.  Expected values come from the encoders' inputs.  Wireshark
shows many BACnet values only as tree-item text (character strings, priorities, DCC and
reinitialize parameters); those are checked as labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from otsight.encode import bacnet as B
from tests.encode.wire import (
    Built,
    Capture,
    decode_clean,
    expert,
    fields,
    ints,
    labels,
    problems,
    protocols,
    rows_by_frame,
    udp_frame,
)

DEVICE, VENDOR = 1001, 260
BROADCAST_IP, BROADCAST_MAC = "10.0.0.255", "ff:ff:ff:ff:ff:ff"
IDENTITY = [
    (B.PROP_OBJECT_NAME, "object-name", "AHU-1 Controller"),
    (B.PROP_VENDOR_NAME, "vendor-name", "ACME Controls"),
    (B.PROP_MODEL_NAME, "model-name", "AC-5000 Ünit"),  # non-ASCII: UTF-8 on the wire
    (B.PROP_FIRMWARE_REVISION, "firmware-revision", "4.2.17"),
    (B.PROP_APPLICATION_SOFTWARE_VERSION, "application-software-version", "build 2024-05"),
]


@dataclass
class Case:
    """One B/IP message and what both decoders should read from it."""

    name: str
    from_client: bool
    payload: bytes
    apdu_type: int
    service: int | None = None
    invoke_id: int | None = None
    broadcast: bool = False
    bvlc_function: int = B.BVLC_ORIGINAL_UNICAST
    ws: dict[str, list[Any]] = field(default_factory=dict)  # tshark field -> values
    texts: list[str] = field(default_factory=list)  # tshark tree labels that must appear
    ours: dict[str, Any] = field(default_factory=dict)  # otsight bacnet column -> value


def _obj(object_type: int, instance: int) -> dict[str, list[Any]]:
    return {"bacapp.objectType": [object_type], "bacapp.instance_number": [instance]}


def _cases() -> list[Case]:
    cases = [
        Case(
            "who_is_all",
            True,
            B.message(B.who_is(), broadcast=True),
            1,
            B.SERVICE_WHO_IS,
            broadcast=True,
            bvlc_function=B.BVLC_ORIGINAL_BROADCAST,
            ws={"bacapp.who_is.low_limit": []},
            ours={"low_limit": None},
        ),
        Case(
            "who_is_range",
            True,
            B.message(B.who_is(1000, 1999), broadcast=True),
            1,
            B.SERVICE_WHO_IS,
            broadcast=True,
            bvlc_function=B.BVLC_ORIGINAL_BROADCAST,
            ws={"bacapp.who_is.low_limit": [1000], "bacapp.who_is.high_limit": [1999]},
            ours={"low_limit": 1000, "high_limit": 1999},
        ),
        Case(
            "who_is_global_route",
            True,
            B.message(B.who_is(5, 5), broadcast=True, dnet=0xFFFF),
            1,
            B.SERVICE_WHO_IS,
            broadcast=True,
            bvlc_function=B.BVLC_ORIGINAL_BROADCAST,
            ws={"bacnet.dnet": [0xFFFF], "bacnet.dlen": [0], "bacnet.hopc": [255]},
            ours={"dnet": 0xFFFF, "dadr": "", "hop_count": 255},
        ),
        Case(
            "i_am",
            False,
            B.message(B.i_am(DEVICE, VENDOR, 1476, B.SEGMENTATION_NONE), broadcast=True),
            1,
            B.SERVICE_I_AM,
            broadcast=True,
            bvlc_function=B.BVLC_ORIGINAL_BROADCAST,
            ws={**_obj(B.OBJ_DEVICE, DEVICE), "bacapp.vendor_identifier": [VENDOR]},
            texts=[
                "Maximum ADPU Length Accepted: (Unsigned) 1476",
                "Segmentation Supported:  no-segmentation (3)",
            ],
            ours={
                "device_instance": DEVICE,
                "vendor_id": VENDOR,
                "max_apdu_accepted": 1476,
                "segmentation_supported": B.SEGMENTATION_NONE,
            },
        ),
        Case(
            "i_am_forwarded",
            False,
            B.message(
                B.i_am(DEVICE + 1, VENDOR, 480, B.SEGMENTATION_BOTH),
                forwarded_from=("192.168.5.10", 47809),
            ),
            1,
            B.SERVICE_I_AM,
            broadcast=True,
            bvlc_function=B.BVLC_FORWARDED_NPDU,
            ws={
                "bvlc.fwd_ip": ["192.168.5.10"],
                "bvlc.fwd_port": [47809],
                **_obj(B.OBJ_DEVICE, DEVICE + 1),
            },
            ours={
                "forwarded_ip": "192.168.5.10",
                "forwarded_port": 47809,
                "device_instance": DEVICE + 1,
                "max_apdu_accepted": 480,
                "segmentation_supported": B.SEGMENTATION_BOTH,
            },
        ),
    ]
    for k, (prop, label, text) in enumerate(IDENTITY):
        invoke = 10 + k
        cases.append(
            Case(
                f"read_{label}",
                True,
                B.message(B.read_property(invoke, B.OBJ_DEVICE, DEVICE, prop)),
                0,
                B.SERVICE_READ_PROPERTY,
                invoke,
                ws={**_obj(B.OBJ_DEVICE, DEVICE), "bacapp.property_identifier": [prop]},
                ours={"property_id": prop, "object_instance": DEVICE},
            )
        )
        ack = B.read_property_ack(invoke, B.OBJ_DEVICE, DEVICE, prop, B.app_character_string(text))
        ws: dict[str, list[Any]] = {
            **_obj(B.OBJ_DEVICE, DEVICE),
            "bacapp.property_identifier": [prop],
        }
        if prop == B.PROP_OBJECT_NAME:  # the one identity string Wireshark has a field for
            ws["bacapp.object_name"] = [text]
        else:
            ws["bacapp.string_character_set"] = [0]
        cases.append(
            Case(
                f"ack_{label}",
                False,
                B.message(ack),
                3,
                B.SERVICE_READ_PROPERTY,
                invoke,
                ws=ws,
                texts=[] if prop == B.PROP_OBJECT_NAME else [f"{label}: UTF-8 '{text}'"],
                ours={"property_id": prop, "value": text},
            )
        )
    cases += [
        Case("read_av", True, B.message(B.read_property(20, B.OBJ_ANALOG_VALUE, 3,
                                                        B.PROP_PRESENT_VALUE)),
             0, B.SERVICE_READ_PROPERTY, 20, ws=_obj(B.OBJ_ANALOG_VALUE, 3),
             ours={"object_type": B.OBJ_ANALOG_VALUE, "property_id": B.PROP_PRESENT_VALUE}),
        Case("ack_av", False, B.message(B.read_property_ack(20, B.OBJ_ANALOG_VALUE, 3,
                                                            B.PROP_PRESENT_VALUE,
                                                            B.app_real(21.5))),
             3, B.SERVICE_READ_PROPERTY, 20, ws={"bacapp.present_value.real": [21.5]},
             ours={"object_type": B.OBJ_ANALOG_VALUE, "object_instance": 3}),
        Case("read_bv", True, B.message(B.read_property(21, B.OBJ_BINARY_VALUE, 4,
                                                        B.PROP_PRESENT_VALUE)),
             0, B.SERVICE_READ_PROPERTY, 21, ws=_obj(B.OBJ_BINARY_VALUE, 4)),
        Case("ack_bv", False, B.message(B.read_property_ack(21, B.OBJ_BINARY_VALUE, 4,
                                                            B.PROP_PRESENT_VALUE,
                                                            B.app_enumerated(1))),
             3, B.SERVICE_READ_PROPERTY, 21, ws={"bacapp.present_value.enum_index": [1]}),
        Case("read_priority_slot", True,
             B.message(B.read_property(22, B.OBJ_ANALOG_OUTPUT, 1, B.PROP_PRIORITY_ARRAY,
                                       array_index=8)),
             0, B.SERVICE_READ_PROPERTY, 22, texts=["property Array Index (Unsigned) 8"],
             ours={"property_id": B.PROP_PRIORITY_ARRAY, "array_index": 8}),
        Case("ack_priority_slot", False,
             B.message(B.read_property_ack(22, B.OBJ_ANALOG_OUTPUT, 1, B.PROP_PRIORITY_ARRAY,
                                           B.app_null(), array_index=8)),
             3, B.SERVICE_READ_PROPERTY, 22, ours={"array_index": 8}),
        Case("write_av", True,
             B.message(B.write_property(23, B.OBJ_ANALOG_VALUE, 3, B.PROP_PRESENT_VALUE,
                                        B.app_real(30.25), priority=8)),
             0, B.SERVICE_WRITE_PROPERTY, 23,
             ws={**_obj(B.OBJ_ANALOG_VALUE, 3), "bacapp.present_value.real": [30.25]},
             texts=["Priority: (Unsigned) 8"],
             ours={"object_type": B.OBJ_ANALOG_VALUE, "property_id": B.PROP_PRESENT_VALUE}),
        Case("write_ack", False, B.message(B.simple_ack(23, B.SERVICE_WRITE_PROPERTY)), 2,
             B.SERVICE_WRITE_PROPERTY, 23, ours={"request_frame": "write_av"}),
        Case("write_bv", True,
             B.message(B.write_property(24, B.OBJ_BINARY_VALUE, 4, B.PROP_PRESENT_VALUE,
                                        B.app_enumerated(0), priority=1)),
             0, B.SERVICE_WRITE_PROPERTY, 24, ws={"bacapp.present_value.enum_index": [0]},
             texts=["Priority: (Unsigned) 1"]),
        Case("write_denied", False,
             B.message(B.error(24, B.SERVICE_WRITE_PROPERTY, B.ERROR_CLASS_PROPERTY,
                               B.ERROR_WRITE_ACCESS_DENIED)),
             5, B.SERVICE_WRITE_PROPERTY, 24,
             ws={"bacapp.error_class": [B.ERROR_CLASS_PROPERTY],
                 "bacapp.error_code": [B.ERROR_WRITE_ACCESS_DENIED]},
             ours={"error_class": B.ERROR_CLASS_PROPERTY,
                   "error_code": B.ERROR_WRITE_ACCESS_DENIED, "request_frame": "write_bv"}),
        Case("relinquish", True,
             B.message(B.write_property(25, B.OBJ_ANALOG_OUTPUT, 1, B.PROP_PRESENT_VALUE,
                                        B.app_null(), priority=8)),
             0, B.SERVICE_WRITE_PROPERTY, 25, ws={"bacapp.present_value.null": ["NULL"]}),
        Case("reinit_cold", True,
             B.message(B.reinitialize_device(30, B.REINIT_COLDSTART, "secret")), 0,
             B.SERVICE_REINITIALIZE_DEVICE, 30,
             texts=["reinitialized State Of Device:  coldstart (0)", "Password: UTF-8 'secret'"],
             ours={"reinit_state": B.REINIT_COLDSTART, "password_present": True}),
        Case("reinit_bad_password", False,
             B.message(B.error(30, B.SERVICE_REINITIALIZE_DEVICE, B.ERROR_CLASS_SECURITY,
                               B.ERROR_PASSWORD_FAILURE)),
             5, B.SERVICE_REINITIALIZE_DEVICE, 30,
             ws={"bacapp.error_class": [B.ERROR_CLASS_SECURITY],
                 "bacapp.error_code": [B.ERROR_PASSWORD_FAILURE]},
             ours={"error_code": B.ERROR_PASSWORD_FAILURE, "request_frame": "reinit_cold"}),
        Case("reinit_warm", True, B.message(B.reinitialize_device(31, B.REINIT_WARMSTART)), 0,
             B.SERVICE_REINITIALIZE_DEVICE, 31,
             texts=["reinitialized State Of Device:  warmstart (1)"],
             ours={"reinit_state": B.REINIT_WARMSTART, "password_present": False}),
        Case("reinit_ack", False, B.message(B.simple_ack(31, B.SERVICE_REINITIALIZE_DEVICE)),
             2, B.SERVICE_REINITIALIZE_DEVICE, 31),
        Case("dcc_disable", True,
             B.message(B.device_communication_control(32, B.DCC_DISABLE, 60, "secret")), 0,
             B.SERVICE_DEVICE_COMMUNICATION_CONTROL, 32,
             texts=["time Duration: (Unsigned) 60", "enable-disable:  disable (1)",
                    "Password: UTF-8 'secret'"],
             ours={"dcc_duration": 60, "dcc_state": B.DCC_DISABLE, "password_present": True}),
        Case("dcc_ack", False,
             B.message(B.simple_ack(32, B.SERVICE_DEVICE_COMMUNICATION_CONTROL)), 2,
             B.SERVICE_DEVICE_COMMUNICATION_CONTROL, 32, ours={"request_frame": "dcc_disable"}),
        Case("dcc_enable", True,
             B.message(B.device_communication_control(33, B.DCC_ENABLE)), 0,
             B.SERVICE_DEVICE_COMMUNICATION_CONTROL, 33, texts=["enable-disable:  enable (0)"],
             ours={"dcc_duration": None, "dcc_state": B.DCC_ENABLE, "password_present": False}),
        Case("dcc_initiation", True,
             B.message(B.device_communication_control(34, B.DCC_DISABLE_INITIATION, 5)), 0,
             B.SERVICE_DEVICE_COMMUNICATION_CONTROL, 34,
             texts=["enable-disable:  disable-initiation (2)"],
             ours={"dcc_duration": 5, "dcc_state": B.DCC_DISABLE_INITIATION}),
        Case("reject", False, B.message(B.reject(34, B.REJECT_UNRECOGNIZED_SERVICE)), 6,
             None, 34, ws={"bacapp.reject_reason": [B.REJECT_UNRECOGNIZED_SERVICE]},
             ours={"reject_reason": B.REJECT_UNRECOGNIZED_SERVICE,
                   "request_frame": "dcc_initiation"}),
        Case("read_unknown", True, B.message(B.read_property(35, B.OBJ_ANALOG_INPUT, 99,
                                                             B.PROP_PRESENT_VALUE)),
             0, B.SERVICE_READ_PROPERTY, 35),
        Case("error_unknown_object", False,
             B.message(B.error(35, B.SERVICE_READ_PROPERTY, B.ERROR_CLASS_OBJECT,
                               B.ERROR_UNKNOWN_OBJECT)),
             5, B.SERVICE_READ_PROPERTY, 35,
             ws={"bacapp.error_code": [B.ERROR_UNKNOWN_OBJECT]},
             ours={"error_class": B.ERROR_CLASS_OBJECT, "error_code": B.ERROR_UNKNOWN_OBJECT}),
        Case("segmented_accepted", True,
             B.message(B.confirmed_request(36, B.SERVICE_READ_PROPERTY,
                                           B.ctx_object_id(0, B.OBJ_DEVICE, DEVICE)
                                           + B.ctx_enumerated(1, B.PROP_OBJECT_IDENTIFIER),
                                           max_apdu=3, max_segments=2,
                                           segmented_response_accepted=True)),
             0, B.SERVICE_READ_PROPERTY, 36,
             ws={"bacapp.SA": [1], "bacapp.response_segments": [2],
                 "bacapp.max_adpu_size": [3]},
             ours={"segmented_response_accepted": True, "max_segments_code": 2,
                   "max_apdu_code": 3, "property_id": B.PROP_OBJECT_IDENTIFIER}),
        Case("abort_server", False,
             B.message(B.abort(36, B.ABORT_SEGMENTATION_NOT_SUPPORTED)), 7, None, 36,
             ws={"bacapp.SRV": [1], "bacapp.abort_reason": [B.ABORT_SEGMENTATION_NOT_SUPPORTED]},
             ours={"abort_reason": B.ABORT_SEGMENTATION_NOT_SUPPORTED, "abort_by_server": True}),
        Case("abort_client", True, B.message(B.abort(37, B.ABORT_OTHER, from_server=False)), 7,
             None, 37, ws={"bacapp.SRV": [0], "bacapp.abort_reason": [B.ABORT_OTHER]},
             ours={"abort_by_server": False}),
        Case("routed_read", True,
             B.message(B.read_property(40, B.OBJ_DEVICE, 5005, B.PROP_OBJECT_NAME), dnet=5,
                       dadr=b"\x07", priority=2),
             0, B.SERVICE_READ_PROPERTY, 40,
             ws={"bacnet.dnet": [5], "bacnet.dlen": [1], "bacnet.dadr_mstp": [7],
                 "bacnet.hopc": [255], "bacnet.control_prio_high": [1],
                 "bacnet.control_prio_low": [0]},
             ours={"dnet": 5, "dadr": "07", "priority": 2, "object_instance": 5005}),
        Case("routed_ack", False,
             B.message(B.read_property_ack(40, B.OBJ_DEVICE, 5005, B.PROP_OBJECT_NAME,
                                           B.app_character_string("VAV-7")),
                       snet=5, sadr=b"\x07"),
             3, B.SERVICE_READ_PROPERTY, 40,
             ws={"bacnet.snet": [5], "bacnet.slen": [1], "bacnet.sadr_mstp": [7],
                 "bacapp.object_name": ["VAV-7"]},
             ours={"snet": 5, "sadr": "07", "value": "VAV-7", "request_frame": "routed_read"}),
        Case("routed_ethernet", True,
             B.message(B.read_property(41, B.OBJ_DEVICE, 6006, B.PROP_VENDOR_IDENTIFIER),
                       dnet=7, dadr=bytes.fromhex("00a0c4112233")),
             0, B.SERVICE_READ_PROPERTY, 41,
             ws={"bacnet.dnet": [7], "bacnet.dadr_eth": ["00:a0:c4:11:22:33"]},
             ours={"dnet": 7, "dadr": "00:a0:c4:11:22:33"}),
    ]  # fmt: skip
    return cases


CASES = _cases()
WS_FIELDS = sorted(
    {"bvlc.type", "bvlc.function", "bacnet.version", "bacnet.control_expect", "bacapp.type",
     "bacapp.confirmed_service", "bacapp.unconfirmed_service", "bacapp.invoke_id"}
    | {f for case in CASES for f in case.ws}
)  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    cap = Capture()
    frame_of = {}
    for case in CASES:
        frame = udp_frame(
            B.PORT,
            B.PORT,
            case.payload,
            case.from_client,
            dst_ip=BROADCAST_IP if case.broadcast else None,
            dst_mac=BROADCAST_MAC if case.broadcast else None,
        )
        (frame_of[case.name],) = cap.add([frame])
    return Built(cap.write(tmp_path_factory.mktemp("bacnet") / "bacnet.pcap"), frame_of)


@pytest.fixture(scope="module")
def ws(tshark: str, built: Built) -> dict[int, dict[str, list[str]]]:
    return fields(tshark, built.path, WS_FIELDS)


@pytest.fixture(scope="module")
def texts(tshark: str, built: Built) -> dict[int, list[str]]:
    return labels(tshark, built.path)


@pytest.fixture(scope="module")
def ours(built: Built) -> dict[int, dict[str, Any]]:
    return rows_by_frame(decode_clean(built.path).tables["bacnet"])


# ---- tshark ------------------------------------------------------------------------------


@pytest.mark.tshark
def test_tshark_finds_no_problems(tshark: str, built: Built) -> None:
    assert problems(tshark, built.path) == ""
    assert expert(tshark, built.path, "warning") == {}


@pytest.mark.tshark
def test_tshark_shows_bacapp_on_every_frame(tshark: str, built: Built) -> None:
    stacks = protocols(tshark, built.path)
    for name, n in built.frame_of.items():
        assert stacks[n][-3:] == ["bvlc", "bacnet", "bacapp"], (name, stacks[n])


@pytest.mark.tshark
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tshark_reads_encoded_values(case: Case, ws: dict, texts: dict, built: Built) -> None:
    got = ws[built.frame_of[case.name]]
    assert ints(got["bvlc.type"]) == [B.BVLC_TYPE]
    assert ints(got["bvlc.function"]) == [case.bvlc_function]
    assert ints(got["bacnet.version"]) == [1]
    assert ints(got["bacnet.control_expect"]) == [int(case.apdu_type == 0)]
    assert ints(got["bacapp.type"]) == [case.apdu_type]
    service = ints(got["bacapp.unconfirmed_service"] or got["bacapp.confirmed_service"])
    assert service == ([] if case.service is None else [case.service])
    assert ints(got["bacapp.invoke_id"]) == ([] if case.invoke_id is None else [case.invoke_id])
    for name, want in case.ws.items():
        values = got[name]
        if name == "bacapp.present_value.real":
            assert [float(v) for v in values] == want, name
        elif want and isinstance(want[0], str):
            assert values == want, name
        else:
            assert ints(values) == want, name
    shown = texts[built.frame_of[case.name]]
    for text in case.texts:
        assert text in shown, (text, shown)


# ---- otsight -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_otsight_reads_encoded_values(case: Case, ours: dict, built: Built) -> None:
    row = ours[built.frame_of[case.name]]
    assert row["link"] == "bacnet_ip"
    assert row["bvlc_function"] == case.bvlc_function
    assert row["bvlc_length"] == len(case.payload)
    assert row["npdu_version"] == 1
    assert row["expecting_reply"] == (case.apdu_type == 0)
    assert row["apdu_type"] == case.apdu_type
    assert row["is_request"] == (case.apdu_type in (0, 1))
    assert row["service_choice"] == case.service
    assert row["invoke_id"] == case.invoke_id
    for name, want in case.ours.items():
        if name == "request_frame":
            want = built.frame_of[want]
        assert row[name] == want, name


def test_every_message_is_one_otsight_row(ours: dict, built: Built) -> None:
    assert sorted(ours) == sorted(built.frame_of.values())


# ---- encoder units -----------------------------------------------------------------------


def test_tag_encoding() -> None:
    assert B.app_unsigned(0) == b"\x21\x00"
    assert B.app_unsigned(1476) == b"\x22\x05\xc4"
    assert B.app_signed(-1) == b"\x31\xff" and B.app_signed(128) == b"\x32\x00\x80"
    assert B.app_boolean(True) == b"\x11" and B.app_null() == b"\x00"
    assert B.app_real(1.0) == b"\x44\x3f\x80\x00\x00"
    assert B.app_object_id(B.OBJ_DEVICE, 1001) == b"\xc4\x02\x00\x03\xe9"
    assert B.ctx_unsigned(1, 5) == b"\x19\x05"
    assert B.opening_tag(3) == b"\x3e" and B.closing_tag(3) == b"\x3f"
    # lengths above 4 go into extra octets: 5..253 one octet, then 254 + two octets
    assert B.app_character_string("hello")[:2] == b"\x75\x06"
    assert B.app_octet_string(bytes(300))[:4] == b"\x65\xfe\x01\x2c"
    assert B.context_tag(20, b"\x01") == b"\xf9\x14\x01"  # extended tag number


def test_npdu_and_bvlc_layout() -> None:
    apdu = B.who_is()
    routed = B.npdu(apdu, dnet=0xFFFF, hop_count=200)
    assert routed == bytes([1, 0x20, 0xFF, 0xFF, 0, 200]) + apdu
    both = B.npdu(apdu, True, 3, dnet=5, dadr=b"\x07", snet=9, sadr=b"\x01\x02")
    assert both == bytes([1, 0x2F, 0, 5, 1, 7, 0, 9, 2, 1, 2, 255]) + apdu
    fwd = B.bvlc(B.BVLC_FORWARDED_NPDU, b"xy", ("10.1.2.3", 47808))
    assert fwd == bytes([0x81, 0x04, 0, 12, 10, 1, 2, 3, 0xBA, 0xC0]) + b"xy"
    with pytest.raises(ValueError):
        B.bvlc(B.BVLC_FORWARDED_NPDU, b"")
    with pytest.raises(ValueError):
        B.npdu(apdu, snet=3)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        B.who_is(1)
    with pytest.raises(ValueError):
        B.object_id(B.OBJ_DEVICE, 1 << 22)
    with pytest.raises(ValueError):
        B.write_property(1, B.OBJ_ANALOG_VALUE, 1, B.PROP_PRESENT_VALUE, B.app_real(1), 17)
    with pytest.raises(ValueError):
        B.app_unsigned(-1)
