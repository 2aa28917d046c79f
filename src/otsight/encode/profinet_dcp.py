"""PROFINET encoders (ethertype 0x8892): DCP (discovery and basic configuration) and RT
cyclic frames.

Every function returns the Ethernet payload from the FrameID on; wrap it with
``packets.ethernet(dst, src, ETH_PROFINET, payload)`` (Identify requests go to
:data:`MULTICAST_IDENTIFY`, Hello to :data:`MULTICAST_HELLO`, everything else unicast)::

    payload = identify_request(xid=0x1001, name_of_station="plc-tank-1")
    frame = ethernet(MULTICAST_IDENTIFY, engineering_mac, ETH_PROFINET, payload)

DCP blocks are built by the ``*_block`` helpers and passed to the PDU builders: requests
other than Get carry them bare (Identify filters) or behind a BlockQualifier (Set);
responses and Hello carry them behind a BlockInfo.  Blocks of odd length are padded to
an even size (the pad octet is not counted in the block length).  Strings are ASCII.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence

__all__ = [
    "BLOCK_ERROR_OK",
    "BLOCK_ERROR_OPTION_UNSUPPORTED",
    "BLOCK_ERROR_SET_NOT_POSSIBLE",
    "BLOCK_ERROR_SUBOPTION_UNSUPPORTED",
    "DATA_STATUS_OK",
    "DS_DATA_VALID",
    "DS_PRIMARY",
    "DS_RUN",
    "DS_STATION_OK",
    "ETH_PROFINET",
    "FRAME_ID_GET_SET",
    "FRAME_ID_HELLO",
    "FRAME_ID_IDENTIFY_REQUEST",
    "FRAME_ID_IDENTIFY_RESPONSE",
    "FRAME_ID_RT_CLASS1",
    "IOXS_GOOD",
    "IP_BLOCK_INFO_SET",
    "MULTICAST_HELLO",
    "MULTICAST_IDENTIFY",
    "OPT_ALL",
    "OPT_CONTROL",
    "OPT_DEVICE",
    "OPT_IP",
    "QUALIFIER_PERMANENT",
    "QUALIFIER_TEMPORARY",
    "RESET_ALL_STORED_DATA",
    "RESET_APPLICATION_DATA",
    "RESET_COMMUNICATION_PARAMETER",
    "RESET_ENGINEERING_PARAMETER",
    "RESET_TO_FACTORY_VALUES",
    "ROLE_IO_CONTROLLER",
    "ROLE_IO_DEVICE",
    "ROLE_IO_MULTIDEVICE",
    "ROLE_PN_SUPERVISOR",
    "SERVICE_GET",
    "SERVICE_HELLO",
    "SERVICE_IDENTIFY",
    "SERVICE_SET",
    "SIGNAL_FLASH_ONCE",
    "SUB_ALIAS_NAME",
    "SUB_DEVICE_ID",
    "SUB_DEVICE_INSTANCE",
    "SUB_DEVICE_OPTIONS",
    "SUB_DEVICE_ROLE",
    "SUB_END_TRANSACTION",
    "SUB_FULL_IP_SUITE",
    "SUB_IP_PARAMETER",
    "SUB_MAC_ADDRESS",
    "SUB_NAME_OF_STATION",
    "SUB_RESET_FACTORY_SETTINGS",
    "SUB_RESET_TO_FACTORY",
    "SUB_RESPONSE",
    "SUB_SIGNAL",
    "SUB_START_TRANSACTION",
    "SUB_TYPE_OF_STATION",
    "TYPE_REQUEST",
    "TYPE_RESPONSE_SUCCESS",
    "TYPE_RESPONSE_UNSUPPORTED",
    "alias_name_block",
    "all_selector_block",
    "block",
    "dcp_pdu",
    "device_id_block",
    "device_instance_block",
    "device_options_block",
    "device_role_block",
    "end_transaction_block",
    "factory_reset_request",
    "full_ip_suite_block",
    "get_request",
    "get_response",
    "hello",
    "identify_request",
    "identify_response",
    "ip_parameter_block",
    "mac_address_block",
    "name_of_station_block",
    "response_block",
    "rt_cyclic",
    "set_ip_parameter",
    "set_name_of_station",
    "set_request",
    "set_response",
    "signal_request",
    "type_of_station_block",
]

ETH_PROFINET = 0x8892
MULTICAST_IDENTIFY = "01:0e:cf:00:00:00"
MULTICAST_HELLO = "01:0e:cf:00:00:01"

FRAME_ID_RT_CLASS1 = 0xC000  # first RT class 1 unicast FrameID (0xC000-0xF7FF)
FRAME_ID_HELLO = 0xFEFC
FRAME_ID_GET_SET = 0xFEFD
FRAME_ID_IDENTIFY_REQUEST = 0xFEFE
FRAME_ID_IDENTIFY_RESPONSE = 0xFEFF

SERVICE_GET = 3
SERVICE_SET = 4
SERVICE_IDENTIFY = 5
SERVICE_HELLO = 6
TYPE_REQUEST = 0
TYPE_RESPONSE_SUCCESS = 1
TYPE_RESPONSE_UNSUPPORTED = 5

# options and their suboptions
OPT_IP = 1
OPT_DEVICE = 2
OPT_CONTROL = 5
OPT_ALL = 0xFF
SUB_MAC_ADDRESS = 1  # IP
SUB_IP_PARAMETER = 2
SUB_FULL_IP_SUITE = 3
SUB_TYPE_OF_STATION = 1  # device properties: DeviceVendorValue
SUB_NAME_OF_STATION = 2
SUB_DEVICE_ID = 3
SUB_DEVICE_ROLE = 4
SUB_DEVICE_OPTIONS = 5
SUB_ALIAS_NAME = 6
SUB_DEVICE_INSTANCE = 7
SUB_START_TRANSACTION = 1  # control
SUB_END_TRANSACTION = 2
SUB_SIGNAL = 3
SUB_RESPONSE = 4
SUB_RESET_FACTORY_SETTINGS = 5
SUB_RESET_TO_FACTORY = 6

QUALIFIER_TEMPORARY = 0
QUALIFIER_PERMANENT = 1
# Reset to Factory: BlockQualifier reset modes
RESET_APPLICATION_DATA = 2
RESET_COMMUNICATION_PARAMETER = 4
RESET_ENGINEERING_PARAMETER = 6
RESET_ALL_STORED_DATA = 8
RESET_TO_FACTORY_VALUES = 16
SIGNAL_FLASH_ONCE = 0x0100

ROLE_IO_DEVICE = 0x01
ROLE_IO_CONTROLLER = 0x02
ROLE_IO_MULTIDEVICE = 0x04
ROLE_PN_SUPERVISOR = 0x08

IP_BLOCK_INFO_SET = 0x0001  # 0 = not set, 2 = set by DHCP; | 0x80 = address conflict

BLOCK_ERROR_OK = 0
BLOCK_ERROR_OPTION_UNSUPPORTED = 1
BLOCK_ERROR_SUBOPTION_UNSUPPORTED = 2
BLOCK_ERROR_SET_NOT_POSSIBLE = 5

# RT cyclic frames: DataStatus bits and the IO provider/consumer status "good"
DS_PRIMARY = 0x01
DS_DATA_VALID = 0x04
DS_RUN = 0x10
DS_STATION_OK = 0x20
DATA_STATUS_OK = DS_PRIMARY | DS_DATA_VALID | DS_RUN | DS_STATION_OK  # 0x35
IOXS_GOOD = 0x80

_MIN_C_SDU = 40  # keeps an untagged RT frame at the 60-octet Ethernet minimum


# ---- blocks -------------------------------------------------------------------------------


def block(option: int, suboption: int, value: bytes = b"") -> bytes:
    """A DCP block: option, suboption, length, value, and a pad octet when the length is odd.

    ``value`` includes the BlockInfo / BlockQualifier where the PDU has one.
    """
    out = struct.pack(">BBH", option, suboption, len(value)) + value
    return out + b"\0" if len(value) & 1 else out


def _ip(addr: str) -> bytes:
    return ipaddress.IPv4Address(addr).packed


def _mac(addr: str) -> bytes:
    raw = bytes.fromhex(addr.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {addr!r}")
    return raw


# Block values (without BlockInfo/BlockQualifier): the ``*_block`` helpers return
# (option, suboption, value) so that each PDU builder can insert what it needs.
Block = tuple[int, int, bytes]


def all_selector_block() -> Block:
    """All Selector (0xFF/0xFF): Identify request for every station."""
    return (OPT_ALL, 0xFF, b"")


def name_of_station_block(name: str) -> Block:
    """NameOfStation (2/2)."""
    return (OPT_DEVICE, SUB_NAME_OF_STATION, name.encode("ascii"))


def type_of_station_block(vendor_value: str) -> Block:
    """DeviceVendorValue, the "type of station" string (2/1), e.g. "S7-1500"."""
    return (OPT_DEVICE, SUB_TYPE_OF_STATION, vendor_value.encode("ascii"))


def device_id_block(vendor_id: int, device_id: int) -> Block:
    """DeviceID (2/3): VendorID and DeviceID (0x002A = Siemens)."""
    return (OPT_DEVICE, SUB_DEVICE_ID, struct.pack(">HH", vendor_id, device_id))


def device_role_block(role: int) -> Block:
    """DeviceRole (2/4): role bits (ROLE_IO_DEVICE ...) and a reserved octet."""
    return (OPT_DEVICE, SUB_DEVICE_ROLE, bytes([role, 0]))


def device_options_block(options: Iterable[tuple[int, int]]) -> Block:
    """DeviceOptions (2/5): the (option, suboption) pairs the device supports."""
    return (OPT_DEVICE, SUB_DEVICE_OPTIONS, b"".join(bytes(pair) for pair in options))


def alias_name_block(alias: str) -> Block:
    """AliasName (2/6): "port-xxx.chassis" alias used by neighbourhood detection."""
    return (OPT_DEVICE, SUB_ALIAS_NAME, alias.encode("ascii"))


def device_instance_block(high: int, low: int) -> Block:
    """DeviceInstance (2/7)."""
    return (OPT_DEVICE, SUB_DEVICE_INSTANCE, bytes([high, low]))


def mac_address_block(mac: str) -> Block:
    """MAC address (1/1)."""
    return (OPT_IP, SUB_MAC_ADDRESS, _mac(mac))


def ip_parameter_block(ip: str, netmask: str, gateway: str = "0.0.0.0") -> Block:
    """IP parameter (1/2): address, subnet mask, standard gateway."""
    return (OPT_IP, SUB_IP_PARAMETER, _ip(ip) + _ip(netmask) + _ip(gateway))


def full_ip_suite_block(
    ip: str, netmask: str, gateway: str = "0.0.0.0", dns: Sequence[str] = ()
) -> Block:
    """Full IP suite (1/3): IP parameter plus four DNS server addresses (unused: 0.0.0.0)."""
    servers = list(dns)[:4] + ["0.0.0.0"] * (4 - min(len(dns), 4))
    value = _ip(ip) + _ip(netmask) + _ip(gateway) + b"".join(_ip(d) for d in servers)
    return (OPT_IP, SUB_FULL_IP_SUITE, value)


def end_transaction_block() -> Block:
    """Control / End Transaction (5/2): closes a Set of several blocks."""
    return (OPT_CONTROL, SUB_END_TRANSACTION, b"")


def response_block(option: int, suboption: int, error: int = BLOCK_ERROR_OK) -> Block:
    """Control / Response (5/4) of a Set response: the answered block and its BlockError."""
    return (OPT_CONTROL, SUB_RESPONSE, bytes([option, suboption, error]))


# ---- PDUs ---------------------------------------------------------------------------------


def dcp_pdu(
    frame_id: int,
    service_id: int,
    service_type: int,
    xid: int,
    blocks: bytes,
    response_delay: int = 0,
) -> bytes:
    """FrameID and DCP header (service, type, Xid, response delay, data length), then the
    encoded blocks."""
    head = struct.pack(
        ">HBBIHH", frame_id, service_id, service_type, xid & 0xFFFFFFFF, response_delay,
        len(blocks),
    )  # fmt: skip
    return head + blocks


def _with_prefix(blocks: Iterable[Block], prefix: int) -> bytes:
    return b"".join(block(o, s, struct.pack(">H", prefix) + v) for o, s, v in blocks)


def _response_blocks(blocks: Iterable[Block], ip_block_info: int) -> bytes:
    """Blocks behind a BlockInfo (IP blocks carry ``ip_block_info``, others 0).  Control
    blocks have no BlockInfo."""
    out = b""
    for o, s, v in blocks:
        if o == OPT_CONTROL:
            out += block(o, s, v)
        else:
            info = ip_block_info if o == OPT_IP else 0
            out += block(o, s, struct.pack(">H", info) + v)
    return out


def identify_request(
    xid: int,
    name_of_station: str | None = None,
    response_delay: int = 1,
    filters: Sequence[Block] = (),
) -> bytes:
    """Identify request (FrameID 0xFEFE, multicast): All Selector, or the stations named
    ``name_of_station``, or any explicit filter blocks.  ``response_delay`` is the
    ResponseDelayFactor (1 = answer at once)."""
    if not filters:
        filters = [
            all_selector_block()
            if name_of_station is None
            else name_of_station_block(name_of_station)
        ]
    body = b"".join(block(o, s, v) for o, s, v in filters)
    return dcp_pdu(
        FRAME_ID_IDENTIFY_REQUEST, SERVICE_IDENTIFY, TYPE_REQUEST, xid, body, response_delay
    )


def _station_blocks(
    name_of_station: str,
    type_of_station: str,
    vendor_id: int,
    device_id: int,
    ip: str,
    netmask: str,
    gateway: str,
    role: int,
    options: Sequence[tuple[int, int]] | None,
    instance: tuple[int, int] | None,
) -> list[Block]:
    if options is None:
        options = [
            (OPT_IP, SUB_MAC_ADDRESS),
            (OPT_IP, SUB_IP_PARAMETER),
            (OPT_DEVICE, SUB_TYPE_OF_STATION),
            (OPT_DEVICE, SUB_NAME_OF_STATION),
            (OPT_DEVICE, SUB_DEVICE_ID),
            (OPT_DEVICE, SUB_DEVICE_ROLE),
            (OPT_DEVICE, SUB_DEVICE_OPTIONS),
            (OPT_CONTROL, SUB_START_TRANSACTION),
            (OPT_CONTROL, SUB_END_TRANSACTION),
            (OPT_CONTROL, SUB_SIGNAL),
            (OPT_CONTROL, SUB_RESPONSE),
            (OPT_CONTROL, SUB_RESET_TO_FACTORY),
        ]
    blocks = [
        device_options_block(options),
        type_of_station_block(type_of_station),
        name_of_station_block(name_of_station),
        device_id_block(vendor_id, device_id),
        device_role_block(role),
        ip_parameter_block(ip, netmask, gateway),
    ]
    if instance is not None:
        blocks.append(device_instance_block(*instance))
    return blocks


def identify_response(
    xid: int,
    name_of_station: str,
    type_of_station: str,
    vendor_id: int,
    device_id: int,
    ip: str,
    netmask: str = "255.255.255.0",
    gateway: str = "0.0.0.0",
    role: int = ROLE_IO_DEVICE,
    options: Sequence[tuple[int, int]] | None = None,
    instance: tuple[int, int] | None = (0, 1),
    ip_block_info: int = IP_BLOCK_INFO_SET,
) -> bytes:
    """Identify response (FrameID 0xFEFF, unicast to the requester, same Xid): device
    options, type of station, NameOfStation, DeviceID, role, IP parameter, instance."""
    blocks = _station_blocks(name_of_station, type_of_station, vendor_id, device_id, ip,
                             netmask, gateway, role, options, instance)  # fmt: skip
    body = _response_blocks(blocks, ip_block_info)
    return dcp_pdu(FRAME_ID_IDENTIFY_RESPONSE, SERVICE_IDENTIFY, TYPE_RESPONSE_SUCCESS, xid, body)


def hello(
    xid: int,
    name_of_station: str,
    type_of_station: str,
    vendor_id: int,
    device_id: int,
    ip: str,
    netmask: str = "255.255.255.0",
    gateway: str = "0.0.0.0",
    ip_block_info: int = IP_BLOCK_INFO_SET,
) -> bytes:
    """Hello request (FrameID 0xFEFC, multicast): a starting device announcing its
    NameOfStation, IP parameter, DeviceID and options (fast start-up)."""
    blocks = [
        name_of_station_block(name_of_station),
        ip_parameter_block(ip, netmask, gateway),
        device_id_block(vendor_id, device_id),
        type_of_station_block(type_of_station),
        device_role_block(ROLE_IO_DEVICE),
    ]
    body = _response_blocks(blocks, ip_block_info)
    return dcp_pdu(FRAME_ID_HELLO, SERVICE_HELLO, TYPE_REQUEST, xid, body)


def get_request(xid: int, selectors: Sequence[tuple[int, int]]) -> bytes:
    """Get request (FrameID 0xFEFD): bare (option, suboption) pairs to read."""
    body = b"".join(bytes(pair) for pair in selectors)
    return dcp_pdu(FRAME_ID_GET_SET, SERVICE_GET, TYPE_REQUEST, xid, body)


def get_response(
    xid: int, blocks: Sequence[Block], ip_block_info: int = IP_BLOCK_INFO_SET
) -> bytes:
    """Get response: the asked blocks, each behind a BlockInfo."""
    body = _response_blocks(blocks, ip_block_info)
    return dcp_pdu(FRAME_ID_GET_SET, SERVICE_GET, TYPE_RESPONSE_SUCCESS, xid, body)


def set_request(
    xid: int,
    blocks: Sequence[Block],
    qualifier: int = QUALIFIER_PERMANENT,
    end_transaction: bool = True,
) -> bytes:
    """Set request (FrameID 0xFEFD): each block behind a BlockQualifier (temporary or
    permanent), then Control/End Transaction unless told otherwise."""
    body = _with_prefix(blocks, qualifier)
    if end_transaction:
        body += _with_prefix([end_transaction_block()], 0)
    return dcp_pdu(FRAME_ID_GET_SET, SERVICE_SET, TYPE_REQUEST, xid, body)


def set_name_of_station(xid: int, name: str, qualifier: int = QUALIFIER_PERMANENT) -> bytes:
    """Set request renaming a station (what an engineering tool's "assign name" sends)."""
    return set_request(xid, [name_of_station_block(name)], qualifier)


def set_ip_parameter(
    xid: int,
    ip: str,
    netmask: str,
    gateway: str = "0.0.0.0",
    qualifier: int = QUALIFIER_PERMANENT,
) -> bytes:
    """Set request of the IP parameter (address, mask, gateway)."""
    return set_request(xid, [ip_parameter_block(ip, netmask, gateway)], qualifier)


def signal_request(xid: int, value: int = SIGNAL_FLASH_ONCE) -> bytes:
    """Set request of Control/Signal (5/3): flash the station's LED."""
    signal = (OPT_CONTROL, SUB_SIGNAL, struct.pack(">H", value))
    return set_request(xid, [signal], QUALIFIER_TEMPORARY, end_transaction=False)


def factory_reset_request(
    xid: int, mode: int = RESET_ALL_STORED_DATA, legacy: bool = False
) -> bytes:
    """Set request of Control/Reset to Factory (5/6) whose BlockQualifier is the reset mode,
    or with ``legacy`` the older Control/Reset Factory Settings (5/5, qualifier 0)."""
    if legacy:
        reset = (OPT_CONTROL, SUB_RESET_FACTORY_SETTINGS, b"")
        return set_request(xid, [reset], QUALIFIER_TEMPORARY, end_transaction=False)
    reset = (OPT_CONTROL, SUB_RESET_TO_FACTORY, b"")
    return set_request(xid, [reset], mode, end_transaction=False)


def set_response(
    xid: int,
    answered: Sequence[tuple[int, int]] | Sequence[tuple[int, int, int]],
) -> bytes:
    """Set response: one Control/Response block per answered (option, suboption) with its
    BlockError (0 = ok), given as (option, suboption) or (option, suboption, error)."""
    blocks = [response_block(*item) for item in answered]
    body = b"".join(block(o, s, v) for o, s, v in blocks)
    return dcp_pdu(FRAME_ID_GET_SET, SERVICE_SET, TYPE_RESPONSE_SUCCESS, xid, body)


# ---- RT -----------------------------------------------------------------------------------


def rt_cyclic(
    frame_id: int,
    data: bytes,
    cycle_counter: int,
    data_status: int = DATA_STATUS_OK,
    transfer_status: int = 0,
    min_data: int = _MIN_C_SDU,
) -> bytes:
    """A cyclic RT frame payload: FrameID, I/O data (zero-padded to ``min_data`` octets),
    CycleCounter (in 31.25 µs units), DataStatus, TransferStatus."""
    if len(data) < min_data:
        data += bytes(min_data - len(data))
    return (
        struct.pack(">H", frame_id)
        + data
        + struct.pack(">HBB", cycle_counter & 0xFFFF, data_status, transfer_status)
    )
