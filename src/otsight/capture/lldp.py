"""LLDP (IEEE 802.1AB) TLV parsing: switch and device names and ports for the inventory.

LLDP frames are rare (one per port every ~30 s), so this is plain Python over the frame's
bytes, called with the offsets the L2 kernel found.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from otsight.capture.addresses import format_mac

_CHASSIS_MAC = 4
_CHASSIS_NETWORK = 5
_PORT_MAC = 3
_PORT_NETWORK = 4


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace").rstrip("\x00")


def _network_address(value: bytes) -> str | None:
    if len(value) == 5 and value[0] == 1:
        return str(ipaddress.IPv4Address(value[1:5]))
    if len(value) == 17 and value[0] == 2:
        return str(ipaddress.IPv6Address(value[1:17]))
    return None


def _id(subtype: int, value: bytes, mac_subtype: int, net_subtype: int) -> str:
    if subtype == mac_subtype and len(value) == 6:
        return format_mac(int.from_bytes(value, "big"))
    if subtype == net_subtype:
        return _network_address(value) or value.hex()
    return _text(value)


def parse_lldp(data: bytes) -> tuple[dict[str, Any], str | None]:
    """Decode an LLDPDU. Returns (fields, problem) where problem names what was malformed."""
    out: dict[str, Any] = {}
    p = 0
    while p + 2 <= len(data):
        head = int.from_bytes(data[p : p + 2], "big")
        kind, length = head >> 9, head & 0x1FF
        value = data[p + 2 : p + 2 + length]
        if len(value) < length:
            return out, f"lldp TLV type {kind} claims {length} bytes, {len(value)} present"
        p += 2 + length
        if kind == 0:
            return out, None
        if kind == 1 and length >= 2:
            out["chassis_id_subtype"] = value[0]
            out["chassis_id"] = _id(value[0], value[1:], _CHASSIS_MAC, _CHASSIS_NETWORK)
        elif kind == 2 and length >= 2:
            out["port_id_subtype"] = value[0]
            out["port_id"] = _id(value[0], value[1:], _PORT_MAC, _PORT_NETWORK)
        elif kind == 3 and length >= 2:
            out["ttl"] = int.from_bytes(value[:2], "big")
        elif kind == 4:
            out["port_description"] = _text(value)
        elif kind == 5:
            out["system_name"] = _text(value)
        elif kind == 6:
            out["system_description"] = _text(value)
        elif kind == 8 and length >= 2 and "management_address" not in out:
            alen = value[0]
            addr = _network_address(value[1 : 1 + alen])
            if addr:
                out["management_address"] = addr
    if "chassis_id" not in out:
        return out, "lldp frame without a chassis id TLV"
    return out, None


@functools.lru_cache(maxsize=4096)
def parse_lldp_cached(data: bytes) -> tuple[dict[str, Any], str | None]:
    """:func:`parse_lldp`, remembered: a device sends the same LLDPDU every 30 seconds or
    so, for as long as it runs. The fields returned are shared, not to be changed."""
    return parse_lldp(data)
