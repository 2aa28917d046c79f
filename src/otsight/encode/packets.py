"""Byte builders for link, network and transport headers, with correct checksums.

Each builder returns ``header + payload`` as bytes; compose them inside-out, e.g.::

    ethernet(dst_mac, src_mac, ETH_IPV4,
             ipv4(src, dst, IPPROTO_UDP, udp(src, dst, 5000, 53, query)))

Addresses are strings ("10.0.0.1", "fe80::1", "00:1d:9c:c1:23:45"); already packed
``bytes`` are accepted too.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence

__all__ = [
    "AF_INET",
    "AF_INET6_BSD",
    "AF_INET6_DARWIN",
    "AF_INET6_FREEBSD",
    "BROADCAST_MAC",
    "ETH_8021AD",
    "ETH_8021Q",
    "ETH_ARP",
    "ETH_IPV4",
    "ETH_IPV6",
    "ETH_LLDP",
    "IPPROTO_ICMP",
    "IPPROTO_ICMPV6",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "IPV6_DSTOPTS",
    "IPV6_FRAGMENT",
    "IPV6_HOPOPTS",
    "IPV6_ROUTING",
    "LLDP_MULTICAST",
    "arp",
    "bsd_null",
    "checksum",
    "ethernet",
    "icmp_echo",
    "icmpv6_echo",
    "ip",
    "ipv4",
    "ipv6",
    "ipv6_fragment_header",
    "linux_sll",
    "linux_sll2",
    "lldp",
    "lldpdu",
    "mac",
    "tcp",
    "tcp_flags",
    "udp",
]

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_8021Q = 0x8100
ETH_IPV6 = 0x86DD
ETH_8021AD = 0x88A8
ETH_LLDP = 0x88CC

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
IPV6_HOPOPTS = 0
IPV6_ROUTING = 43
IPV6_FRAGMENT = 44
IPV6_DSTOPTS = 60

AF_INET = 2
AF_INET6_BSD = 24  # NetBSD, OpenBSD
AF_INET6_FREEBSD = 28
AF_INET6_DARWIN = 30

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
LLDP_MULTICAST = "01:80:c2:00:00:0e"

MacLike = str | bytes
IpLike = str | bytes


# --------------------------------------------------------------------------- helpers


def mac(addr: MacLike) -> bytes:
    """Pack a MAC address given as "aa:bb:cc:dd:ee:ff" (':' / '-' / '.' separated)."""
    if isinstance(addr, bytes):
        if len(addr) != 6:
            raise ValueError("MAC address must be 6 bytes")
        return addr
    hexdigits = addr.replace(":", "").replace("-", "").replace(".", "")
    if len(hexdigits) != 12:
        raise ValueError(f"bad MAC address {addr!r}")
    return bytes.fromhex(hexdigits)


def ip(addr: IpLike) -> bytes:
    """Pack an IPv4 (4 bytes) or IPv6 (16 bytes) address."""
    if isinstance(addr, bytes):
        if len(addr) not in (4, 16):
            raise ValueError("IP address must be 4 or 16 bytes")
        return addr
    return ipaddress.ip_address(addr).packed


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum (ones' complement of the ones' complement sum)."""
    if len(data) & 1:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def _l4_checksum(src_ip: IpLike, dst_ip: IpLike, proto: int, segment: bytes) -> int:
    src, dst = ip(src_ip), ip(dst_ip)
    if len(src) != len(dst):
        raise ValueError("source and destination must be the same IP version")
    return checksum(_pseudo_header(src, dst, proto, len(segment)) + segment)


# --------------------------------------------------------------------------- link layer


def ethernet(
    dst: MacLike,
    src: MacLike,
    ethertype: int,
    payload: bytes,
    vlans: Iterable[tuple[int, int, int]] = (),
    pad: bool = True,
) -> bytes:
    """Ethernet II frame (no FCS), optionally VLAN-tagged.

    ``vlans`` lists tags outermost first as ``(tpid, vid, pcp)``; use ``ETH_8021AD``
    (0x88a8) for the service tag and ``ETH_8021Q`` (0x8100) for customer tags.  With
    ``pad`` the frame is zero-padded to the 60-byte Ethernet minimum.
    """
    tags = b"".join(
        struct.pack("!HH", tpid, (pcp & 7) << 13 | (vid & 0xFFF)) for tpid, vid, pcp in vlans
    )
    frame = mac(dst) + mac(src) + tags + struct.pack("!H", ethertype) + payload
    if pad and len(frame) < 60:
        frame += bytes(60 - len(frame))
    return frame


def linux_sll(
    protocol: int,
    payload: bytes,
    pkttype: int = 0,
    hatype: int = 1,
    addr: MacLike = b"",
) -> bytes:
    """Linux "cooked" v1 header (LINKTYPE_LINUX_SLL, 16 bytes).

    ``pkttype``: 0 to us, 1 broadcast, 2 multicast, 3 other host, 4 outgoing.
    """
    a = mac(addr) if isinstance(addr, str) else addr
    return struct.pack("!HHH8sH", pkttype, hatype, len(a), a, protocol) + payload


def linux_sll2(
    protocol: int,
    payload: bytes,
    ifindex: int = 1,
    pkttype: int = 0,
    hatype: int = 1,
    addr: MacLike = b"",
) -> bytes:
    """Linux "cooked" v2 header (LINKTYPE_LINUX_SLL2, 20 bytes)."""
    a = mac(addr) if isinstance(addr, str) else addr
    return struct.pack("!HHIHBB8s", protocol, 0, ifindex, hatype, pkttype, len(a), a) + payload


def bsd_null(af: int, payload: bytes) -> bytes:
    """BSD loopback header (LINKTYPE_NULL): 4-byte address family in host (little) order."""
    return struct.pack("<I", af) + payload


def arp(
    op: int,
    sender_mac: MacLike,
    sender_ip: IpLike,
    target_mac: MacLike,
    target_ip: IpLike,
) -> bytes:
    """ARP payload for Ethernet/IPv4 (op 1 = request, 2 = reply); wrap with ``ETH_ARP``."""
    return (
        struct.pack("!HHBBH", 1, ETH_IPV4, 6, 4, op)
        + mac(sender_mac)
        + ip(sender_ip)
        + mac(target_mac)
        + ip(target_ip)
    )


def _tlv(tlv_type: int, value: bytes) -> bytes:
    return struct.pack("!H", tlv_type << 9 | len(value)) + value


def lldpdu(
    chassis_mac: MacLike,
    port_id: str,
    system_name: str,
    ttl: int = 120,
    port_description: str | None = None,
    system_description: str | None = None,
    capabilities: tuple[int, int] | None = None,
) -> bytes:
    """LLDP data unit: chassis id (MAC), port id (locally assigned), TTL, optional TLVs, end.

    ``capabilities`` is ``(available, enabled)`` bitmaps (e.g. 0x0004 = bridge).
    """
    tlvs = [
        _tlv(1, b"\x04" + mac(chassis_mac)),
        _tlv(2, b"\x07" + port_id.encode()),
        _tlv(3, struct.pack("!H", ttl)),
    ]
    if port_description is not None:
        tlvs.append(_tlv(4, port_description.encode()))
    tlvs.append(_tlv(5, system_name.encode()))
    if system_description is not None:
        tlvs.append(_tlv(6, system_description.encode()))
    if capabilities is not None:
        tlvs.append(_tlv(7, struct.pack("!HH", *capabilities)))
    tlvs.append(_tlv(0, b""))
    return b"".join(tlvs)


def lldp(
    chassis_mac: MacLike,
    port_id: str,
    system_name: str,
    ttl: int = 120,
    port_description: str | None = None,
    system_description: str | None = None,
    capabilities: tuple[int, int] | None = None,
    src_mac: MacLike | None = None,
) -> bytes:
    """Complete LLDP Ethernet frame to 01:80:c2:00:00:0e (source defaults to chassis MAC)."""
    du = lldpdu(
        chassis_mac, port_id, system_name, ttl, port_description, system_description, capabilities
    )
    return ethernet(LLDP_MULTICAST, src_mac or chassis_mac, ETH_LLDP, du)


# --------------------------------------------------------------------------- network layer


def ipv4(
    src: IpLike,
    dst: IpLike,
    proto: int,
    payload: bytes,
    ident: int = 0,
    ttl: int = 64,
    dont_fragment: bool = True,
    more_fragments: bool = False,
    frag_offset: int = 0,
    tos: int = 0,
) -> bytes:
    """IPv4 header (no options) + payload.  ``frag_offset`` is in bytes (multiple of 8)."""
    if frag_offset & 7:
        raise ValueError("frag_offset must be a multiple of 8 bytes")
    flags_frag = (dont_fragment << 14) | (more_fragments << 13) | (frag_offset >> 3)
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        tos,
        20 + len(payload),
        ident & 0xFFFF,
        flags_frag,
        ttl,
        proto,
        0,
        ip(src),
        ip(dst),
    )
    csum = checksum(hdr)
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + payload


def ipv6_fragment_header(offset: int, more: bool, ident: int) -> bytes:
    """Body for an ``IPV6_FRAGMENT`` entry of :func:`ipv6` ``ext_headers``.

    7 bytes: reserved, offset (bytes, multiple of 8) | M flag, identification.
    """
    if offset & 7:
        raise ValueError("fragment offset must be a multiple of 8 bytes")
    return struct.pack("!xHI", offset | more, ident)


def _ext_header(nh_type: int, next_header: int, body: bytes) -> bytes:
    if nh_type == IPV6_FRAGMENT:
        if len(body) != 7:
            raise ValueError("fragment header body must be 7 bytes")
        return bytes([next_header]) + body
    if nh_type in (IPV6_HOPOPTS, IPV6_DSTOPTS):
        missing = -(len(body) + 2) % 8
        if missing == 1:
            body += b"\x00"  # Pad1
        elif missing:
            body += bytes([1, missing - 2]) + bytes(missing - 2)  # PadN
    elif nh_type == IPV6_ROUTING:
        body += bytes(-(len(body) + 2) % 8)
    else:
        raise ValueError(f"unsupported IPv6 extension header {nh_type}")
    return bytes([next_header, (len(body) + 2) // 8 - 1]) + body


def ipv6(
    src: IpLike,
    dst: IpLike,
    next_header: int,
    payload: bytes,
    hop_limit: int = 64,
    ext_headers: Sequence[tuple[int, bytes]] = (),
    traffic_class: int = 0,
    flow_label: int = 0,
) -> bytes:
    """IPv6 header + extension header chain + payload.

    ``ext_headers`` is ``[(type, body), ...]`` in wire order, for hop-by-hop (0), routing
    (43), fragment (44, body from :func:`ipv6_fragment_header`) and destination options
    (60).  Body excludes the next-header/length bytes; options headers are padded with
    Pad1/PadN to a multiple of 8.  ``next_header`` is the upper-layer protocol.
    """
    chain = b""
    for i in range(len(ext_headers) - 1, -1, -1):
        nh_type, body = ext_headers[i]
        following = ext_headers[i + 1][0] if i + 1 < len(ext_headers) else next_header
        chain = _ext_header(nh_type, following, body) + chain
    first = ext_headers[0][0] if ext_headers else next_header
    vtf = 6 << 28 | (traffic_class & 0xFF) << 20 | (flow_label & 0xFFFFF)
    body = chain + payload
    return struct.pack("!IHBB", vtf, len(body), first, hop_limit) + ip(src) + ip(dst) + body


# --------------------------------------------------------------------------- transport


_TCP_FLAG_BITS = {
    "F": 0x01,
    "S": 0x02,
    "R": 0x04,
    "P": 0x08,
    "A": 0x10,
    "U": 0x20,
    "E": 0x40,
    "C": 0x80,
}


def tcp_flags(flags: str) -> int:
    """Convert a flag string such as "SA" or "PA" to the TCP flags byte (FSRPAUEC)."""
    try:
        return sum({_TCP_FLAG_BITS[c] for c in flags.upper()})
    except KeyError as exc:
        raise ValueError(f"unknown TCP flag in {flags!r}") from exc


def tcp(
    src_ip: IpLike,
    dst_ip: IpLike,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: str,
    window: int = 8192,
    payload: bytes = b"",
    options: bytes = b"",
    urgent: int = 0,
) -> bytes:
    """TCP segment with checksum over the IPv4 or IPv6 pseudo-header.

    ``options`` are raw option bytes, zero-padded (EOL) to a multiple of 4.
    """
    options += bytes(-len(options) % 4)
    offset = (20 + len(options)) // 4
    hdr = struct.pack(
        "!HHIIBBHHH",
        sport,
        dport,
        seq & 0xFFFFFFFF,
        ack & 0xFFFFFFFF,
        offset << 4,
        tcp_flags(flags),
        window,
        0,
        urgent,
    )
    seg = hdr + options + payload
    csum = _l4_checksum(src_ip, dst_ip, IPPROTO_TCP, seg)
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def udp(src_ip: IpLike, dst_ip: IpLike, sport: int, dport: int, payload: bytes) -> bytes:
    """UDP datagram with checksum over the IPv4 or IPv6 pseudo-header."""
    length = 8 + len(payload)
    dgram = struct.pack("!HHHH", sport, dport, length, 0) + payload
    csum = _l4_checksum(src_ip, dst_ip, IPPROTO_UDP, dgram) or 0xFFFF
    return dgram[:6] + struct.pack("!H", csum) + dgram[8:]


def icmp_echo(ident: int, seq: int, payload: bytes = b"", reply: bool = False) -> bytes:
    """ICMPv4 echo request (type 8) or reply (type 0); wrap with ``IPPROTO_ICMP``."""
    msg = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + payload
    return msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]


def icmpv6_echo(
    src_ip: IpLike,
    dst_ip: IpLike,
    ident: int,
    seq: int,
    payload: bytes = b"",
    reply: bool = False,
) -> bytes:
    """ICMPv6 echo request (128) or reply (129) with pseudo-header checksum."""
    msg = struct.pack("!BBHHH", 129 if reply else 128, 0, 0, ident, seq) + payload
    csum = _l4_checksum(src_ip, dst_ip, IPPROTO_ICMPV6, msg)
    return msg[:2] + struct.pack("!H", csum) + msg[4:]
