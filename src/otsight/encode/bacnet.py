"""BACnet/IP encoders (ASHRAE 135): BVLC (Annex J), NPDU and APDU with tagged parameters.

Layers compose inside-out; :func:`message` does the usual combination (B/IP unicast or
broadcast, NPDU with the expecting-reply bit set for confirmed requests)::

    apdu = read_property(invoke_id=1, object_type=OBJ_DEVICE, instance=1001,
                         prop=PROP_VENDOR_NAME)
    payload = message(apdu)                         # UDP port 47808 payload

Parameters are built from tag helpers: ``app_*`` give application-tagged values (for the
value of ReadProperty-ACK / WriteProperty and the I-Am parameters), ``ctx_*`` give
context-tagged ones.  Integers are big endian with the fewest octets (at least one).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

__all__ = [
    "ABORT_OTHER",
    "ABORT_SEGMENTATION_NOT_SUPPORTED",
    "APDU_ABORT",
    "APDU_COMPLEX_ACK",
    "APDU_CONFIRMED_REQUEST",
    "APDU_ERROR",
    "APDU_REJECT",
    "APDU_SIMPLE_ACK",
    "APDU_UNCONFIRMED_REQUEST",
    "BVLC_FORWARDED_NPDU",
    "BVLC_ORIGINAL_BROADCAST",
    "BVLC_ORIGINAL_UNICAST",
    "BVLC_TYPE",
    "DCC_DISABLE",
    "DCC_DISABLE_INITIATION",
    "DCC_ENABLE",
    "ERROR_CLASS_DEVICE",
    "ERROR_CLASS_OBJECT",
    "ERROR_CLASS_PROPERTY",
    "ERROR_CLASS_SECURITY",
    "ERROR_CLASS_SERVICES",
    "ERROR_PASSWORD_FAILURE",
    "ERROR_SERVICE_REQUEST_DENIED",
    "ERROR_UNKNOWN_OBJECT",
    "ERROR_UNKNOWN_PROPERTY",
    "ERROR_VALUE_OUT_OF_RANGE",
    "ERROR_WRITE_ACCESS_DENIED",
    "MAX_APDU_1476",
    "OBJ_ANALOG_INPUT",
    "OBJ_ANALOG_OUTPUT",
    "OBJ_ANALOG_VALUE",
    "OBJ_BINARY_INPUT",
    "OBJ_BINARY_OUTPUT",
    "OBJ_BINARY_VALUE",
    "OBJ_DEVICE",
    "OBJ_MULTI_STATE_VALUE",
    "PORT",
    "PROP_APPLICATION_SOFTWARE_VERSION",
    "PROP_DESCRIPTION",
    "PROP_FIRMWARE_REVISION",
    "PROP_LOCATION",
    "PROP_MODEL_NAME",
    "PROP_OBJECT_IDENTIFIER",
    "PROP_OBJECT_NAME",
    "PROP_PRESENT_VALUE",
    "PROP_PRIORITY_ARRAY",
    "PROP_VENDOR_IDENTIFIER",
    "PROP_VENDOR_NAME",
    "REINIT_COLDSTART",
    "REINIT_WARMSTART",
    "REJECT_OTHER",
    "REJECT_UNRECOGNIZED_SERVICE",
    "SEGMENTATION_BOTH",
    "SEGMENTATION_NONE",
    "SERVICE_DEVICE_COMMUNICATION_CONTROL",
    "SERVICE_I_AM",
    "SERVICE_READ_PROPERTY",
    "SERVICE_REINITIALIZE_DEVICE",
    "SERVICE_WHO_IS",
    "SERVICE_WRITE_PROPERTY",
    "abort",
    "app_boolean",
    "app_character_string",
    "app_double",
    "app_enumerated",
    "app_null",
    "app_object_id",
    "app_octet_string",
    "app_real",
    "app_signed",
    "app_unsigned",
    "application_tag",
    "bvlc",
    "closing_tag",
    "complex_ack",
    "confirmed_request",
    "context_tag",
    "ctx_character_string",
    "ctx_enumerated",
    "ctx_object_id",
    "ctx_unsigned",
    "device_communication_control",
    "error",
    "i_am",
    "message",
    "npdu",
    "object_id",
    "opening_tag",
    "read_property",
    "read_property_ack",
    "reinitialize_device",
    "reject",
    "simple_ack",
    "unconfirmed_request",
    "who_is",
    "write_property",
]

PORT = 47808  # 0xBAC0

# BVLC (Annex J)
BVLC_TYPE = 0x81
BVLC_FORWARDED_NPDU = 0x04
BVLC_ORIGINAL_UNICAST = 0x0A
BVLC_ORIGINAL_BROADCAST = 0x0B

# APDU types (high nibble of the first octet)
APDU_CONFIRMED_REQUEST = 0
APDU_UNCONFIRMED_REQUEST = 1
APDU_SIMPLE_ACK = 2
APDU_COMPLEX_ACK = 3
APDU_ERROR = 5
APDU_REJECT = 6
APDU_ABORT = 7

# service choices: confirmed ...
SERVICE_READ_PROPERTY = 12
SERVICE_WRITE_PROPERTY = 15
SERVICE_DEVICE_COMMUNICATION_CONTROL = 17
SERVICE_REINITIALIZE_DEVICE = 20
# ... and unconfirmed
SERVICE_I_AM = 0
SERVICE_WHO_IS = 8

# object types
OBJ_ANALOG_INPUT = 0
OBJ_ANALOG_OUTPUT = 1
OBJ_ANALOG_VALUE = 2
OBJ_BINARY_INPUT = 3
OBJ_BINARY_OUTPUT = 4
OBJ_BINARY_VALUE = 5
OBJ_DEVICE = 8
OBJ_MULTI_STATE_VALUE = 19

# property identifiers
PROP_APPLICATION_SOFTWARE_VERSION = 12
PROP_DESCRIPTION = 28
PROP_FIRMWARE_REVISION = 44
PROP_LOCATION = 58
PROP_MODEL_NAME = 70
PROP_OBJECT_IDENTIFIER = 75
PROP_OBJECT_NAME = 77
PROP_PRESENT_VALUE = 85
PROP_PRIORITY_ARRAY = 87
PROP_VENDOR_IDENTIFIER = 120
PROP_VENDOR_NAME = 121

# ReinitializeDevice states and DeviceCommunicationControl enable-disable
REINIT_COLDSTART = 0
REINIT_WARMSTART = 1
DCC_ENABLE = 0
DCC_DISABLE = 1
DCC_DISABLE_INITIATION = 2

# segmentation supported (I-Am) and the max-APDU code of confirmed requests
SEGMENTATION_BOTH = 0
SEGMENTATION_NONE = 3
MAX_APDU_1476 = 5  # codes: 0 = 50, 1 = 128, 2 = 206, 3 = 480, 4 = 1024, 5 = 1476 octets

# error classes and a few error codes
ERROR_CLASS_DEVICE = 0
ERROR_CLASS_OBJECT = 1
ERROR_CLASS_PROPERTY = 2
ERROR_CLASS_SECURITY = 4
ERROR_CLASS_SERVICES = 5
ERROR_PASSWORD_FAILURE = 26
ERROR_SERVICE_REQUEST_DENIED = 29
ERROR_UNKNOWN_OBJECT = 31
ERROR_UNKNOWN_PROPERTY = 32
ERROR_VALUE_OUT_OF_RANGE = 37
ERROR_WRITE_ACCESS_DENIED = 40

REJECT_OTHER = 0
REJECT_UNRECOGNIZED_SERVICE = 9
ABORT_OTHER = 0
ABORT_SEGMENTATION_NOT_SUPPORTED = 4

# application tag numbers
_NULL, _BOOLEAN, _UNSIGNED, _SIGNED, _REAL, _DOUBLE = 0, 1, 2, 3, 4, 5
_OCTET_STRING, _CHARACTER_STRING, _ENUMERATED, _OBJECT_ID = 6, 7, 9, 12
_CHARSET_UTF8 = 0


# ---- tags ---------------------------------------------------------------------------------


def _tag(number: int, context: bool, content: bytes) -> bytes:
    """Tag octet(s) with the length/value/type field, then the content."""
    head = bytearray(1)
    if number < 15:
        head[0] = number << 4
    else:  # extended tag number in the next octet
        head[0] = 0xF0
        head.append(number)
    if context:
        head[0] |= 0x08
    n = len(content)
    if n <= 4:
        head[0] |= n
    else:
        head[0] |= 5
        if n <= 253:
            head.append(n)
        elif n <= 0xFFFF:
            head += b"\xfe" + struct.pack(">H", n)
        else:
            head += b"\xff" + struct.pack(">I", n)
    return bytes(head) + content


def application_tag(number: int, content: bytes) -> bytes:
    """An application-tagged value (class bit 0) with any content."""
    return _tag(number, False, content)


def context_tag(number: int, content: bytes) -> bytes:
    """A context-tagged value (class bit 1) with any content."""
    return _tag(number, True, content)


def opening_tag(number: int) -> bytes:
    """Opening context tag (LVT 6) of a constructed parameter."""
    return bytes([number << 4 | 0x0E]) if number < 15 else bytes([0xFE, number])


def closing_tag(number: int) -> bytes:
    """Closing context tag (LVT 7)."""
    return bytes([number << 4 | 0x0F]) if number < 15 else bytes([0xFF, number])


def _uint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"unsigned value {value} < 0")
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _sint(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)


def object_id(object_type: int, instance: int) -> bytes:
    """The four-octet object identifier: type (10 bits) and instance (22 bits)."""
    if not (0 <= object_type < 1 << 10 and 0 <= instance < 1 << 22):
        raise ValueError(f"object ({object_type}, {instance}) out of range")
    return struct.pack(">I", object_type << 22 | instance)


def _string(text: str) -> bytes:
    return bytes([_CHARSET_UTF8]) + text.encode()


def app_null() -> bytes:
    """Application Null (relinquishes a commanded value when written with a priority)."""
    return application_tag(_NULL, b"")


def app_boolean(value: bool) -> bytes:
    """Application Boolean: the value sits in the LVT field, no content octet."""
    return bytes([_BOOLEAN << 4 | (1 if value else 0)])


def app_unsigned(value: int) -> bytes:
    """Application Unsigned Integer."""
    return application_tag(_UNSIGNED, _uint(value))


def app_signed(value: int) -> bytes:
    """Application Signed Integer (two's complement, fewest octets)."""
    return application_tag(_SIGNED, _sint(value))


def app_real(value: float) -> bytes:
    """Application Real (IEEE 754 single precision)."""
    return application_tag(_REAL, struct.pack(">f", value))


def app_double(value: float) -> bytes:
    """Application Double (IEEE 754 double precision)."""
    return application_tag(_DOUBLE, struct.pack(">d", value))


def app_octet_string(value: bytes) -> bytes:
    """Application Octet String."""
    return application_tag(_OCTET_STRING, value)


def app_character_string(text: str) -> bytes:
    """Application Character String, character set 0 (ISO 10646 UTF-8)."""
    return application_tag(_CHARACTER_STRING, _string(text))


def app_enumerated(value: int) -> bytes:
    """Application Enumerated (e.g. binary present-value: 0 inactive, 1 active)."""
    return application_tag(_ENUMERATED, _uint(value))


def app_object_id(object_type: int, instance: int) -> bytes:
    """Application BACnetObjectIdentifier."""
    return application_tag(_OBJECT_ID, object_id(object_type, instance))


def ctx_unsigned(number: int, value: int) -> bytes:
    """Context-tagged Unsigned Integer."""
    return context_tag(number, _uint(value))


def ctx_enumerated(number: int, value: int) -> bytes:
    """Context-tagged Enumerated (same content as unsigned)."""
    return context_tag(number, _uint(value))


def ctx_object_id(number: int, object_type: int, instance: int) -> bytes:
    """Context-tagged object identifier."""
    return context_tag(number, object_id(object_type, instance))


def ctx_character_string(number: int, text: str) -> bytes:
    """Context-tagged Character String (UTF-8), e.g. a password."""
    return context_tag(number, _string(text))


# ---- BVLC and NPDU ------------------------------------------------------------------------


def bvlc(function: int, payload: bytes, forwarded_from: tuple[str, int] | None = None) -> bytes:
    """A BVLC message: type 0x81, function, length of the whole message, then the NPDU.

    ``forwarded_from`` (IPv4 address, UDP port) adds the originating B/IP address of a
    Forwarded-NPDU (function 0x04).
    """
    if (function == BVLC_FORWARDED_NPDU) != (forwarded_from is not None):
        raise ValueError("Forwarded-NPDU needs forwarded_from, and only it")
    if forwarded_from is not None:
        ip, port = forwarded_from
        payload = ipaddress.IPv4Address(ip).packed + struct.pack(">H", port) + payload
    return struct.pack(">BBH", BVLC_TYPE, function, 4 + len(payload)) + payload


def _net_address(net: int, addr: bytes) -> bytes:
    return struct.pack(">HB", net, len(addr)) + addr


def npdu(
    apdu: bytes,
    expecting_reply: bool = False,
    priority: int = 0,
    dnet: int | None = None,
    dadr: bytes = b"",
    snet: int | None = None,
    sadr: bytes = b"",
    hop_count: int = 255,
) -> bytes:
    """An NPDU carrying an APDU: version 1, control, optional DNET/DADR and SNET/SADR
    (empty DADR = broadcast on DNET; DNET 0xFFFF = global broadcast), hop count when
    DNET is present."""
    control = (0x20 if dnet is not None else 0) | (0x08 if snet is not None else 0)
    control |= (0x04 if expecting_reply else 0) | (priority & 3)
    out = bytes([1, control])
    if dnet is not None:
        out += _net_address(dnet, dadr)
    if snet is not None:
        if not sadr:
            raise ValueError("SNET needs a non-empty SADR")
        out += _net_address(snet, sadr)
    if dnet is not None:
        out += bytes([hop_count])
    return out + apdu


def message(
    apdu: bytes,
    broadcast: bool = False,
    forwarded_from: tuple[str, int] | None = None,
    *,
    priority: int = 0,
    dnet: int | None = None,
    dadr: bytes = b"",
    snet: int | None = None,
    sadr: bytes = b"",
) -> bytes:
    """A B/IP message: Original-Unicast (or -Broadcast, or Forwarded-NPDU when
    ``forwarded_from`` is given) around an NPDU whose expecting-reply bit is set for
    confirmed requests."""
    expecting = bool(apdu) and apdu[0] >> 4 == APDU_CONFIRMED_REQUEST
    body = npdu(apdu, expecting, priority, dnet, dadr, snet, sadr)
    if forwarded_from is not None:
        return bvlc(BVLC_FORWARDED_NPDU, body, forwarded_from)
    return bvlc(BVLC_ORIGINAL_BROADCAST if broadcast else BVLC_ORIGINAL_UNICAST, body)


# ---- APDU headers -------------------------------------------------------------------------


def confirmed_request(
    invoke_id: int,
    service: int,
    parameters: bytes = b"",
    max_apdu: int = MAX_APDU_1476,
    max_segments: int = 0,
    segmented_response_accepted: bool = False,
) -> bytes:
    """Confirmed-Request APDU (unsegmented): flags, max segments / max APDU codes,
    invoke id, service choice, parameters."""
    flags = 0x02 if segmented_response_accepted else 0
    return bytes(
        [APDU_CONFIRMED_REQUEST << 4 | flags, (max_segments & 7) << 4 | (max_apdu & 15),
         invoke_id & 0xFF, service]
    ) + parameters  # fmt: skip


def unconfirmed_request(service: int, parameters: bytes = b"") -> bytes:
    """Unconfirmed-Request APDU: service choice, parameters."""
    return bytes([APDU_UNCONFIRMED_REQUEST << 4, service]) + parameters


def simple_ack(invoke_id: int, service: int) -> bytes:
    """SimpleACK: success of a confirmed service without results (WriteProperty, DCC ...)."""
    return bytes([APDU_SIMPLE_ACK << 4, invoke_id & 0xFF, service])


def complex_ack(invoke_id: int, service: int, parameters: bytes) -> bytes:
    """ComplexACK (unsegmented) carrying the service's results."""
    return bytes([APDU_COMPLEX_ACK << 4, invoke_id & 0xFF, service]) + parameters


def error(invoke_id: int, service: int, error_class: int, error_code: int) -> bytes:
    """Error APDU: the failed service, then error class and code (application enumerated)."""
    head = bytes([APDU_ERROR << 4, invoke_id & 0xFF, service])
    return head + app_enumerated(error_class) + app_enumerated(error_code)


def reject(invoke_id: int, reason: int) -> bytes:
    """Reject APDU: a confirmed request refused for a protocol reason (no service choice)."""
    return bytes([APDU_REJECT << 4, invoke_id & 0xFF, reason])


def abort(invoke_id: int, reason: int, from_server: bool = True) -> bytes:
    """Abort APDU; the SRV bit says the server (not the client) aborts."""
    return bytes([APDU_ABORT << 4 | (1 if from_server else 0), invoke_id & 0xFF, reason])


# ---- services -----------------------------------------------------------------------------


def who_is(low: int | None = None, high: int | None = None) -> bytes:
    """Who-Is, for all devices or for device instances ``low..high``."""
    if (low is None) != (high is None):
        raise ValueError("Who-Is takes both limits or neither")
    params = b"" if low is None else ctx_unsigned(0, low) + ctx_unsigned(1, high or 0)
    return unconfirmed_request(SERVICE_WHO_IS, params)


def i_am(
    device_instance: int,
    vendor_id: int,
    max_apdu: int = 1476,
    segmentation: int = SEGMENTATION_NONE,
) -> bytes:
    """I-Am: device object identifier, max APDU length accepted, segmentation supported,
    vendor identifier."""
    params = (
        app_object_id(OBJ_DEVICE, device_instance)
        + app_unsigned(max_apdu)
        + app_enumerated(segmentation)
        + app_unsigned(vendor_id)
    )
    return unconfirmed_request(SERVICE_I_AM, params)


def _object_property(object_type: int, instance: int, prop: int, array_index: int | None) -> bytes:
    out = ctx_object_id(0, object_type, instance) + ctx_enumerated(1, prop)
    return out if array_index is None else out + ctx_unsigned(2, array_index)


def read_property(
    invoke_id: int,
    object_type: int,
    instance: int,
    prop: int,
    array_index: int | None = None,
) -> bytes:
    """ReadProperty request: [0] object, [1] property, optional [2] array index."""
    params = _object_property(object_type, instance, prop, array_index)
    return confirmed_request(invoke_id, SERVICE_READ_PROPERTY, params)


def read_property_ack(
    invoke_id: int,
    object_type: int,
    instance: int,
    prop: int,
    value: bytes | Sequence[bytes],
    array_index: int | None = None,
) -> bytes:
    """ReadProperty-ACK: object, property, [3] value(s), each an application-tagged value
    (e.g. ``app_character_string("ACME")``)."""
    values = value if isinstance(value, bytes) else b"".join(value)
    params = (
        _object_property(object_type, instance, prop, array_index)
        + opening_tag(3)
        + values
        + closing_tag(3)
    )
    return complex_ack(invoke_id, SERVICE_READ_PROPERTY, params)


def write_property(
    invoke_id: int,
    object_type: int,
    instance: int,
    prop: int,
    value: bytes,
    priority: int | None = None,
    array_index: int | None = None,
) -> bytes:
    """WriteProperty: object, property, [3] value (application-tagged), optional [4]
    priority 1..16 (commandable objects: 8 = manual operator)."""
    params = (
        _object_property(object_type, instance, prop, array_index)
        + opening_tag(3)
        + value
        + closing_tag(3)
    )
    if priority is not None:
        if not 1 <= priority <= 16:
            raise ValueError(f"priority {priority} outside 1..16")
        params += ctx_unsigned(4, priority)
    return confirmed_request(invoke_id, SERVICE_WRITE_PROPERTY, params)


def reinitialize_device(invoke_id: int, state: int, password: str | None = None) -> bytes:
    """ReinitializeDevice: [0] state (REINIT_COLDSTART, REINIT_WARMSTART ...), optional
    [1] password."""
    params = ctx_enumerated(0, state)
    if password is not None:
        params += ctx_character_string(1, password)
    return confirmed_request(invoke_id, SERVICE_REINITIALIZE_DEVICE, params)


def device_communication_control(
    invoke_id: int,
    enable_disable: int,
    duration_minutes: int | None = None,
    password: str | None = None,
) -> bytes:
    """DeviceCommunicationControl: optional [0] duration (minutes), [1] DCC_ENABLE /
    DCC_DISABLE / DCC_DISABLE_INITIATION, optional [2] password."""
    params = b"" if duration_minutes is None else ctx_unsigned(0, duration_minutes)
    params += ctx_enumerated(1, enable_disable)
    if password is not None:
        params += ctx_character_string(2, password)
    return confirmed_request(invoke_id, SERVICE_DEVICE_COMMUNICATION_CONTROL, params)
