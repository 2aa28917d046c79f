"""EtherNet/IP encapsulation and CIP encoders (TCP/UDP 44818, implicit I/O on UDP 2222).

Three layers, composed inside-out::

    send_rr_data(session, unconnected_send(get_attributes_all(0x01, 1), port_segment(1, 0)))

* CIP messages (:func:`cip_request` / :func:`cip_response` and the services built on them):
  service byte, EPATH (8/16/32-bit logical segments, ANSI symbolic segments, port
  segments), service data.  Services follow CIP Vol. 1 and, for Read / Write Tag, Rockwell's
  Logix data access manual (1756-PM020).
* Common Packet Format items carrying them: SendRRData (null address + unconnected data),
  SendUnitData (connected address + connected data with the CIP sequence count) and the
  UDP implicit I/O datagram (sequenced address + connected data).
* The 24-byte encapsulation header: RegisterSession, UnRegisterSession, ListIdentity,
  ListServices, SendRRData, SendUnitData.

Everything on the wire is little-endian except the socket address of ListIdentity, which is
big-endian (sockaddr_in).  Sender contexts are 8 bytes; an ``int`` is packed little-endian.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Sequence

__all__ = [
    "CLASS_ASSEMBLY",
    "CLASS_CONNECTION_MANAGER",
    "CLASS_IDENTITY",
    "CLASS_MESSAGE_ROUTER",
    "CLASS_TCPIP",
    "CMD_LIST_IDENTITY",
    "CMD_LIST_INTERFACES",
    "CMD_LIST_SERVICES",
    "CMD_NOP",
    "CMD_REGISTER_SESSION",
    "CMD_SEND_RR_DATA",
    "CMD_SEND_UNIT_DATA",
    "CMD_UNREGISTER_SESSION",
    "DEVICE_TYPE_COMMUNICATIONS_ADAPTER",
    "DEVICE_TYPE_GENERAL_PURPOSE_IO",
    "DEVICE_TYPE_HMI",
    "DEVICE_TYPE_PLC",
    "ENIP_PORT",
    "IO_PORT",
    "ITEM_CONNECTED_ADDRESS",
    "ITEM_CONNECTED_DATA",
    "ITEM_LIST_IDENTITY",
    "ITEM_LIST_SERVICES",
    "ITEM_NULL_ADDRESS",
    "ITEM_SEQUENCED_ADDRESS",
    "ITEM_UNCONNECTED_DATA",
    "SC_FORWARD_CLOSE",
    "SC_FORWARD_OPEN",
    "SC_GET_ATTRIBUTES_ALL",
    "SC_GET_ATTRIBUTE_LIST",
    "SC_GET_ATTRIBUTE_SINGLE",
    "SC_LARGE_FORWARD_OPEN",
    "SC_MULTIPLE_SERVICE_PACKET",
    "SC_READ_TAG",
    "SC_READ_TAG_FRAGMENTED",
    "SC_RESET",
    "SC_SET_ATTRIBUTES_ALL",
    "SC_SET_ATTRIBUTE_SINGLE",
    "SC_START",
    "SC_STOP",
    "SC_UNCONNECTED_SEND",
    "SC_WRITE_TAG",
    "STATE_OPERATIONAL",
    "STATUS_CONNECTION_FAILURE",
    "STATUS_EMBEDDED_SERVICE_ERROR",
    "STATUS_OBJECT_DOES_NOT_EXIST",
    "STATUS_PATH_DESTINATION_UNKNOWN",
    "STATUS_PATH_SEGMENT_ERROR",
    "STATUS_PRIVILEGE_VIOLATION",
    "STATUS_SERVICE_NOT_SUPPORTED",
    "STATUS_SUCCESS",
    "TYPE_BOOL",
    "TYPE_DINT",
    "TYPE_INT",
    "TYPE_REAL",
    "TYPE_SINT",
    "attribute_segment",
    "cip_request",
    "cip_response",
    "class_segment",
    "connection_path",
    "cpf",
    "encap",
    "epath",
    "forward_close_request",
    "forward_close_response",
    "forward_open_error",
    "forward_open_request",
    "forward_open_response",
    "get_attribute_single",
    "get_attributes_all",
    "identity_attributes",
    "instance_segment",
    "io_datagram",
    "list_identity_request",
    "list_identity_response",
    "list_services_request",
    "list_services_response",
    "member_segment",
    "multiple_service_request",
    "multiple_service_response",
    "port_segment",
    "read_tag_request",
    "read_tag_response",
    "register_session_request",
    "register_session_response",
    "reset_request",
    "send_rr_data",
    "send_unit_data",
    "set_attribute_single",
    "symbol_segment",
    "symbolic_path",
    "unconnected_send",
    "unconnected_send_error",
    "unregister_session",
    "write_tag_request",
    "write_tag_response",
]

ENIP_PORT = 44818
IO_PORT = 2222

# ---- encapsulation -----------------------------------------------------------------------------
CMD_NOP = 0x0000
CMD_LIST_SERVICES = 0x0004
CMD_LIST_IDENTITY = 0x0063
CMD_LIST_INTERFACES = 0x0064
CMD_REGISTER_SESSION = 0x0065
CMD_UNREGISTER_SESSION = 0x0066
CMD_SEND_RR_DATA = 0x006F
CMD_SEND_UNIT_DATA = 0x0070

# Common Packet Format item types
ITEM_NULL_ADDRESS = 0x0000
ITEM_LIST_IDENTITY = 0x000C
ITEM_CONNECTED_ADDRESS = 0x00A1
ITEM_CONNECTED_DATA = 0x00B1
ITEM_UNCONNECTED_DATA = 0x00B2
ITEM_LIST_SERVICES = 0x0100
ITEM_SEQUENCED_ADDRESS = 0x8002

# ---- CIP ---------------------------------------------------------------------------------------
SC_GET_ATTRIBUTES_ALL = 0x01
SC_SET_ATTRIBUTES_ALL = 0x02
SC_GET_ATTRIBUTE_LIST = 0x03
SC_RESET = 0x05
SC_START = 0x06
SC_STOP = 0x07
SC_MULTIPLE_SERVICE_PACKET = 0x0A
SC_GET_ATTRIBUTE_SINGLE = 0x0E
SC_SET_ATTRIBUTE_SINGLE = 0x10
SC_READ_TAG = 0x4C  # Logix, symbolic path
SC_WRITE_TAG = 0x4D
SC_READ_TAG_FRAGMENTED = 0x52
SC_FORWARD_CLOSE = 0x4E  # Connection Manager
SC_UNCONNECTED_SEND = 0x52
SC_FORWARD_OPEN = 0x54
SC_LARGE_FORWARD_OPEN = 0x5B

CLASS_IDENTITY = 0x01
CLASS_MESSAGE_ROUTER = 0x02
CLASS_ASSEMBLY = 0x04
CLASS_CONNECTION_MANAGER = 0x06
CLASS_TCPIP = 0xF5

STATUS_SUCCESS = 0x00
STATUS_CONNECTION_FAILURE = 0x01
STATUS_PATH_SEGMENT_ERROR = 0x04
STATUS_PATH_DESTINATION_UNKNOWN = 0x05
STATUS_SERVICE_NOT_SUPPORTED = 0x08
STATUS_PRIVILEGE_VIOLATION = 0x0F
STATUS_OBJECT_DOES_NOT_EXIST = 0x16
STATUS_EMBEDDED_SERVICE_ERROR = 0x1E

# Logix atomic data types (Read / Write Tag)
TYPE_BOOL = 0xC1
TYPE_SINT = 0xC2
TYPE_INT = 0xC3
TYPE_DINT = 0xC4
TYPE_REAL = 0xCA

DEVICE_TYPE_GENERAL_PURPOSE_IO = 7
DEVICE_TYPE_COMMUNICATIONS_ADAPTER = 12
DEVICE_TYPE_PLC = 14
DEVICE_TYPE_HMI = 24
STATE_OPERATIONAL = 3

Context = bytes | int


def _context(context: Context) -> bytes:
    if isinstance(context, int):
        return struct.pack("<Q", context & 0xFFFFFFFFFFFFFFFF)
    if len(context) != 8:
        raise ValueError("sender context is 8 bytes")
    return context


def encap(
    command: int,
    data: bytes = b"",
    session: int = 0,
    status: int = 0,
    context: Context = 0,
    options: int = 0,
) -> bytes:
    """Encapsulation header (command, length, session handle, status, sender context,
    options) + ``data``."""
    return (
        struct.pack("<HHII", command, len(data), session, status)
        + _context(context)
        + struct.pack("<I", options)
        + data
    )


def cpf(items: Sequence[tuple[int, bytes]]) -> bytes:
    """Common Packet Format: item count, then (type, length, data) per item."""
    return struct.pack("<H", len(items)) + b"".join(
        struct.pack("<HH", t, len(d)) + d for t, d in items
    )


def register_session_request(context: Context = 0) -> bytes:
    """RegisterSession (protocol version 1, no options); the session handle is 0."""
    return encap(CMD_REGISTER_SESSION, struct.pack("<HH", 1, 0), context=context)


def register_session_response(session: int, context: Context = 0, status: int = 0) -> bytes:
    """RegisterSession reply carrying the session handle the target assigned."""
    return encap(CMD_REGISTER_SESSION, struct.pack("<HH", 1, 0), session, status, context)


def unregister_session(session: int, context: Context = 0) -> bytes:
    """UnRegisterSession (no reply is sent; the originator closes the TCP connection)."""
    return encap(CMD_UNREGISTER_SESSION, session=session, context=context)


def list_identity_request(context: Context = 0) -> bytes:
    """ListIdentity request (usually a UDP broadcast to port 44818)."""
    return encap(CMD_LIST_IDENTITY, context=context)


def list_identity_response(
    vendor_id: int,
    device_type: int,
    product_code: int,
    revision: tuple[int, int],
    serial_number: int,
    product_name: str,
    ip: str,
    port: int = ENIP_PORT,
    status: int = 0x0030,
    state: int = STATE_OPERATIONAL,
    context: Context = 0,
) -> bytes:
    """ListIdentity reply with one CIP identity item (protocol version 1, socket address,
    vendor, device type, product code, revision major.minor, status word, serial number,
    product name, state)."""
    item = (
        struct.pack("<H", 1)
        + struct.pack("!HH4s8x", 2, port, ipaddress.IPv4Address(ip).packed)
        + identity_attributes(
            vendor_id, device_type, product_code, revision, serial_number, product_name, status
        )
        + bytes([state])
    )
    return encap(CMD_LIST_IDENTITY, cpf([(ITEM_LIST_IDENTITY, item)]), context=context)


def list_services_request(context: Context = 0) -> bytes:
    """ListServices request."""
    return encap(CMD_LIST_SERVICES, context=context)


def list_services_response(
    context: Context = 0, capabilities: int = 0x0120, name: str = "Communications"
) -> bytes:
    """ListServices reply: the "Communications" service (CIP over TCP, class 0/1 over UDP)."""
    item = struct.pack("<HH", 1, capabilities) + name.encode("ascii")[:15].ljust(16, b"\0")
    return encap(CMD_LIST_SERVICES, cpf([(ITEM_LIST_SERVICES, item)]), context=context)


def send_rr_data(
    session: int, message: bytes, context: Context = 0, timeout: int = 0, status: int = 0
) -> bytes:
    """SendRRData: interface handle 0, timeout, CPF null address + unconnected data item
    carrying the CIP ``message`` (unconnected explicit messaging)."""
    body = struct.pack("<IH", 0, timeout) + cpf(
        [(ITEM_NULL_ADDRESS, b""), (ITEM_UNCONNECTED_DATA, message)]
    )
    return encap(CMD_SEND_RR_DATA, body, session, status, context)


def send_unit_data(
    session: int,
    connection_id: int,
    sequence: int,
    message: bytes,
    context: Context = 0,
    timeout: int = 0,
) -> bytes:
    """SendUnitData: CPF connected address item (the connection id of the receiving side)
    + connected data item (16-bit CIP sequence count, then the CIP ``message``)."""
    body = struct.pack("<IH", 0, timeout) + cpf(
        [
            (ITEM_CONNECTED_ADDRESS, struct.pack("<I", connection_id)),
            (ITEM_CONNECTED_DATA, struct.pack("<H", sequence & 0xFFFF) + message),
        ]
    )
    return encap(CMD_SEND_UNIT_DATA, body, session, context=context)


def io_datagram(
    connection_id: int, sequence: int, data: bytes, cip_sequence: int | None = None
) -> bytes:
    """Implicit I/O payload for UDP 2222: CPF sequenced address item (connection id,
    encapsulation sequence number) + connected data item; class 1 transports put the
    16-bit CIP sequence count (``cip_sequence``) before the data."""
    payload = data if cip_sequence is None else struct.pack("<H", cip_sequence & 0xFFFF) + data
    return cpf(
        [
            (ITEM_SEQUENCED_ADDRESS, struct.pack("<II", connection_id, sequence & 0xFFFFFFFF)),
            (ITEM_CONNECTED_DATA, payload),
        ]
    )


# ---- EPATH -------------------------------------------------------------------------------------
def _logical(kind: int, value: int) -> bytes:
    if value < 0x100:
        return bytes([0x20 | kind << 2, value])
    if value < 0x10000:
        return bytes([0x21 | kind << 2, 0]) + struct.pack("<H", value)
    return bytes([0x22 | kind << 2, 0]) + struct.pack("<I", value)


def class_segment(class_id: int) -> bytes:
    """Logical class segment, 8-bit (0x20) or 16-bit (0x21 + pad) as the value needs."""
    return _logical(0, class_id)


def instance_segment(instance: int) -> bytes:
    """Logical instance segment (0x24 / 0x25 / 0x26)."""
    return _logical(1, instance)


def member_segment(member: int) -> bytes:
    """Logical member segment (0x28 / 0x29 / 0x2A), also an array index after a symbol."""
    return _logical(2, member)


def attribute_segment(attribute: int) -> bytes:
    """Logical attribute segment (0x30 / 0x31)."""
    return _logical(4, attribute)


def symbol_segment(name: str) -> bytes:
    """ANSI extended symbolic segment (0x91, length, name, pad to even)."""
    raw = name.encode("ascii")
    return bytes([0x91, len(raw)]) + raw + bytes(len(raw) & 1)


def port_segment(port: int, link: int) -> bytes:
    """Port segment for a route path: port 1 (backplane) and slot ``link``."""
    if port > 14 or link > 0xFF:
        raise ValueError("only short port segments (port < 15, one-byte link)")
    return bytes([port, link])


def epath(class_id: int, instance: int | None = None, attribute: int | None = None) -> bytes:
    """Class / instance / attribute path; each segment in its shortest form."""
    path = class_segment(class_id)
    if instance is not None:
        path += instance_segment(instance)
    if attribute is not None:
        path += attribute_segment(attribute)
    return path


_ELEMENT = re.compile(r"\[(\d+)\]")


def symbolic_path(tag: str) -> bytes:
    """Logix tag name as symbolic segments: ``Program:Main.Tank[3].Level`` becomes one
    symbol segment per dotted part and a member segment per array index."""
    out = b""
    for part in tag.split("."):
        name, _, rest = part.partition("[")
        out += symbol_segment(name)
        for index in _ELEMENT.findall("[" + rest if rest else ""):
            out += member_segment(int(index))
    return out


def connection_path(
    slot: int = 0, class_id: int = CLASS_MESSAGE_ROUTER, instance: int = 1
) -> bytes:
    """A Forward Open connection path: backplane port 1, ``slot``, then class / instance
    (the Message Router for explicit connections, an assembly for I/O)."""
    return port_segment(1, slot) + epath(class_id, instance)


# ---- CIP messages ------------------------------------------------------------------------------
def cip_request(service: int, path: bytes, data: bytes = b"") -> bytes:
    """CIP request: service, path size in 16-bit words, EPATH (padded to even), data."""
    if len(path) & 1:
        path += b"\x00"
    return bytes([service & 0x7F, len(path) // 2]) + path + data


def cip_response(
    service: int, general_status: int = 0, extended: Sequence[int] = (), data: bytes = b""
) -> bytes:
    """CIP response: service | 0x80, reserved, general status, additional status words."""
    head = bytes([service | 0x80, 0, general_status, len(extended)])
    return head + b"".join(struct.pack("<H", w) for w in extended) + data


def identity_attributes(
    vendor_id: int,
    device_type: int,
    product_code: int,
    revision: tuple[int, int],
    serial_number: int,
    product_name: str,
    status: int = 0x0030,
) -> bytes:
    """Identity object instance attributes 1-7 as a Get_Attributes_All reply carries them
    (vendor, device type, product code, revision, status, serial number, product name)."""
    name = product_name.encode("latin-1")
    return (
        struct.pack(
            "<HHHBBHI",
            vendor_id,
            device_type,
            product_code,
            revision[0],
            revision[1],
            status,
            serial_number,
        )
        + bytes([len(name)])
        + name
    )


def get_attributes_all(class_id: int, instance: int) -> bytes:
    """Get_Attributes_All (0x01) request."""
    return cip_request(SC_GET_ATTRIBUTES_ALL, epath(class_id, instance))


def get_attribute_single(class_id: int, instance: int, attribute: int) -> bytes:
    """Get_Attribute_Single (0x0E) request."""
    return cip_request(SC_GET_ATTRIBUTE_SINGLE, epath(class_id, instance, attribute))


def set_attribute_single(class_id: int, instance: int, attribute: int, value: bytes) -> bytes:
    """Set_Attribute_Single (0x10) request with the new attribute value."""
    return cip_request(SC_SET_ATTRIBUTE_SINGLE, epath(class_id, instance, attribute), value)


def reset_request(reset_type: int | None = None, instance: int = 1) -> bytes:
    """Reset (0x05) of the Identity object; type 0 power cycle, 1 factory defaults
    (no type byte: the device's default, a power-cycle emulation)."""
    data = b"" if reset_type is None else bytes([reset_type])
    return cip_request(SC_RESET, epath(CLASS_IDENTITY, instance), data)


def read_tag_request(tag: str, elements: int = 1) -> bytes:
    """Logix Read Tag (0x4C) of ``tag`` (symbolic path), ``elements`` array elements."""
    return cip_request(SC_READ_TAG, symbolic_path(tag), struct.pack("<H", elements))


def read_tag_response(data_type: int, value: bytes, general_status: int = 0) -> bytes:
    """Read Tag reply: the data type (16-bit) then the value bytes."""
    if general_status:
        return cip_response(SC_READ_TAG, general_status)
    return cip_response(SC_READ_TAG, data=struct.pack("<H", data_type) + value)


def write_tag_request(tag: str, data_type: int, value: bytes, elements: int = 1) -> bytes:
    """Logix Write Tag (0x4D): data type, element count, value bytes."""
    return cip_request(
        SC_WRITE_TAG, symbolic_path(tag), struct.pack("<HH", data_type, elements) + value
    )


def write_tag_response(general_status: int = 0, extended: Sequence[int] = ()) -> bytes:
    """Write Tag reply (no data)."""
    return cip_response(SC_WRITE_TAG, general_status, extended)


def multiple_service_request(requests: Sequence[bytes]) -> bytes:
    """Multiple Service Packet (0x0A) to the Message Router: count, offsets (from the count
    field), then the embedded requests."""
    return cip_request(
        SC_MULTIPLE_SERVICE_PACKET, epath(CLASS_MESSAGE_ROUTER, 1), _bundle(requests)
    )


def multiple_service_response(
    responses: Sequence[bytes], general_status: int | None = None
) -> bytes:
    """Multiple Service Packet reply; the general status is 0x1E (embedded service error)
    when one of the embedded responses failed, unless given."""
    if general_status is None:
        failed = any(len(r) >= 3 and r[2] != 0 for r in responses)
        general_status = STATUS_EMBEDDED_SERVICE_ERROR if failed else STATUS_SUCCESS
    return cip_response(SC_MULTIPLE_SERVICE_PACKET, general_status, data=_bundle(responses))


def _bundle(messages: Sequence[bytes]) -> bytes:
    offsets = []
    pos = 2 + 2 * len(messages)
    for m in messages:
        offsets.append(pos)
        pos += len(m)
    return struct.pack(f"<H{len(messages)}H", len(messages), *offsets) + b"".join(messages)


def unconnected_send(
    request: bytes,
    route_path: bytes,
    priority_tick: int = 0x07,
    timeout_ticks: int = 0xF9,
) -> bytes:
    """Unconnected Send (0x52) to the Connection Manager wrapping ``request`` for the
    target at ``route_path`` (e.g. ``port_segment(1, 0)``: backplane slot 0)."""
    if len(route_path) & 1:
        route_path += b"\x00"
    data = (
        struct.pack("<BBH", priority_tick, timeout_ticks, len(request))
        + request
        + bytes(len(request) & 1)
        + bytes([len(route_path) // 2, 0])
        + route_path
    )
    return cip_request(SC_UNCONNECTED_SEND, epath(CLASS_CONNECTION_MANAGER, 1), data)


def unconnected_send_error(
    general_status: int = STATUS_CONNECTION_FAILURE,
    extended_status: int = 0x0204,
    remaining_path_size: int = 0,
) -> bytes:
    """The Connection Manager's own reply when an Unconnected Send could not be delivered
    (0x0204: unconnected request timed out, 0x0311: invalid port, 0x0312: invalid link
    address): general / extended status, the remaining route path size in words and a
    reserved byte."""
    return cip_response(
        SC_UNCONNECTED_SEND, general_status, (extended_status,), bytes([remaining_path_size, 0])
    )


def forward_open_request(
    ot_connection_id: int,
    to_connection_id: int,
    connection_serial: int,
    originator_vendor: int,
    originator_serial: int,
    ot_rpi: int,
    to_rpi: int,
    path: bytes,
    ot_parameters: int = 0x43F4,
    to_parameters: int = 0x43F4,
    transport_trigger: int = 0xA3,
    timeout_multiplier: int = 0,
    priority_tick: int = 0x07,
    timeout_ticks: int = 0xF9,
) -> bytes:
    """Forward Open (0x54): connection ids, connection serial, originator vendor / serial,
    RPIs in microseconds with their network connection parameters, transport class and
    trigger (0xA3: class 3 server, application trigger), connection ``path``."""
    if len(path) & 1:
        path += b"\x00"
    data = struct.pack(
        "<BBIIHHIB3xIHIHBB",
        priority_tick,
        timeout_ticks,
        ot_connection_id,
        to_connection_id,
        connection_serial,
        originator_vendor,
        originator_serial,
        timeout_multiplier,
        ot_rpi,
        ot_parameters,
        to_rpi,
        to_parameters,
        transport_trigger,
        len(path) // 2,
    )
    return cip_request(SC_FORWARD_OPEN, epath(CLASS_CONNECTION_MANAGER, 1), data + path)


def forward_open_response(
    ot_connection_id: int,
    to_connection_id: int,
    connection_serial: int,
    originator_vendor: int,
    originator_serial: int,
    ot_api: int,
    to_api: int,
    application_reply: bytes = b"",
) -> bytes:
    """Successful Forward Open reply: the ids the target chose, the connection triad and
    the actual packet intervals (microseconds)."""
    data = struct.pack(
        "<IIHHIIIBB",
        ot_connection_id,
        to_connection_id,
        connection_serial,
        originator_vendor,
        originator_serial,
        ot_api,
        to_api,
        len(application_reply) // 2,
        0,
    )
    return cip_response(SC_FORWARD_OPEN, data=data + application_reply)


def forward_open_error(
    connection_serial: int,
    originator_vendor: int,
    originator_serial: int,
    general_status: int = STATUS_CONNECTION_FAILURE,
    extended_status: int = 0x0100,
    service: int = SC_FORWARD_OPEN,
) -> bytes:
    """Failed Forward Open (or Forward Close) reply: general status (0x01 connection
    failure) with an extended status (0x0100 connection in use, 0x0106 ownership
    conflict, 0x0315 invalid segment in path, ...), the connection triad, remaining path
    size."""
    data = struct.pack("<HHIBB", connection_serial, originator_vendor, originator_serial, 0, 0)
    return cip_response(service, general_status, (extended_status,), data)


def forward_close_request(
    connection_serial: int,
    originator_vendor: int,
    originator_serial: int,
    path: bytes,
    priority_tick: int = 0x07,
    timeout_ticks: int = 0xF9,
) -> bytes:
    """Forward Close (0x4E on the Connection Manager) of the connection identified by its
    triad (serial, originator vendor, originator serial)."""
    if len(path) & 1:
        path += b"\x00"
    data = struct.pack(
        "<BBHHIBB",
        priority_tick,
        timeout_ticks,
        connection_serial,
        originator_vendor,
        originator_serial,
        len(path) // 2,
        0,
    )
    return cip_request(SC_FORWARD_CLOSE, epath(CLASS_CONNECTION_MANAGER, 1), data + path)


def forward_close_response(
    connection_serial: int, originator_vendor: int, originator_serial: int
) -> bytes:
    """Successful Forward Close reply: the triad and an empty application reply."""
    data = struct.pack("<HHIBB", connection_serial, originator_vendor, originator_serial, 0, 0)
    return cip_response(SC_FORWARD_CLOSE, data=data)
