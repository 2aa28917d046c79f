"""Deterministic sample capture of a small OT cell, with ground truth.

The plant: an HMI (10.10.1.10) polls two Modbus/TCP PLCs (10.10.1.20, 10.10.1.21)
every ~100 ms; an engineering workstation (10.10.1.50) resolves, pings and talks to
PLC1 (device identification, UMAS, diagnostics, writes, an exception); two switches
send LLDP and IPv6 syslog; PLC2 syncs time over double-tagged (QinQ) NTP.  The capture
deliberately contains TCP edge cases (split / coalesced PDUs, an exact retransmission,
an out-of-order pair, a connection already open when the capture starts).

:func:`write_sample_capture` returns a :class:`SampleTruth` describing what was written;
it is computed from the generated frames, independently of any project decoder.

Command line: ``python -m otsight.testing.samples OUT_DIR [--seed N]``.
"""

from __future__ import annotations

import argparse
import gzip as _gzip
import ipaddress
import os
import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from otsight.encode import modbus as mb
from otsight.encode import packets as pk
from otsight.encode.pcapfile import Destination, PcapngWriter, PcapWriter
from otsight.encode.tcp_session import TcpConversation

__all__ = ["FlowTruth", "ModbusPduTruth", "SampleTruth", "main", "write_sample_capture"]

T0_NS = 1_709_280_000 * 10**9  # 2024-03-01T08:00:00Z
MS = 1_000_000
US = 1_000

HMI_IP, HMI_MAC = "10.10.1.10", "00:1b:1b:10:01:0a"
PLC1_IP, PLC1_MAC = "10.10.1.20", "00:80:f4:01:00:14"
PLC2_IP, PLC2_MAC = "10.10.1.21", "00:80:f4:01:00:15"
EWS_IP, EWS_MAC = "10.10.1.50", "00:0c:29:01:00:32"
SRV_IP, SRV_MAC = "10.10.1.2", "00:50:56:01:00:02"
SW1_MAC, SW2_MAC = "00:1d:9c:c1:23:45", "28:63:36:aa:00:01"
SW1_IP6, SW2_IP6, LOG_IP6 = "fd00:10:10:1::f1", "fd00:10:10:1::f2", "fd00:10:10:1::2"
VLAN_PLC2 = [(pk.ETH_8021Q, 10, 3)]
VLAN_QINQ = [(pk.ETH_8021AD, 100, 0), (pk.ETH_8021Q, 10, 0)]
LOCAL_BLOCK_TYPE = 0x80000A5A  # "local use" pcapng block: readers skip it, no frame number
MODBUS_PORT = 502


# --------------------------------------------------------------------------- truth


@dataclass(frozen=True, slots=True)
class FlowTruth:
    """One TCP/UDP conversation; side A is the sender of its first captured packet."""

    proto: str  # "tcp" | "udp"
    a_ip: str
    a_port: int
    b_ip: str
    b_port: int
    first_frame: int
    packets_ab: int
    packets_ba: int
    bytes_ab: int  # frame (wire) bytes
    bytes_ba: int
    payload_ab: int  # L4 payload bytes, retransmitted bytes included
    payload_ba: int
    handshake_seen: bool  # SYN captured (always False for UDP)
    vlan_ids: tuple[int, ...]  # VLAN ids of the first frame, outermost first

    @property
    def packets(self) -> int:
        return self.packets_ab + self.packets_ba

    @property
    def wire_bytes(self) -> int:
        return self.bytes_ab + self.bytes_ba


@dataclass(frozen=True, slots=True)
class ModbusPduTruth:
    """A Modbus/TCP ADU in stream order, with the (1-based) frame that completes it."""

    frame: int
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    is_request: bool
    trans_id: int
    unit_id: int
    function: int
    adu: bytes  # MBAP header + PDU


@dataclass(slots=True)
class SampleTruth:
    """What a generated sample capture contains (frame numbers are 1-based)."""

    fmt: str
    packet_count: int
    first_ts_ns: int
    last_ts_ns: int
    flows: list[FlowTruth]
    modbus: list[ModbusPduTruth]
    arp_frames: int
    lldp_frames: int
    lldp_system_names: list[str]  # unique, in order of appearance
    lldp_port_ids: list[str]  # one per LLDP frame
    dns_frames: int
    icmp_frames: int
    ntp_frames: int
    vlan_tagged_frames: int  # frames with at least one VLAN tag
    qinq_frames: int  # frames with two or more tags
    ipv6_frames: int
    # scenario landmarks -> frame numbers: split_pdu, coalesced_pdus, retransmission,
    # out_of_order, midstream_first_frame, exception_response, ipv6_ext_headers
    events: dict[str, list[int]] = field(default_factory=dict)

    def tcp_flows(self) -> list[FlowTruth]:
        return [f for f in self.flows if f.proto == "tcp"]

    def udp_flows(self) -> list[FlowTruth]:
        return [f for f in self.flows if f.proto == "udp"]


# --------------------------------------------------------------------------- scenario


@dataclass(slots=True)
class _Event:
    ts_ns: int
    frame: bytes
    iface: int
    label: str | None


class _Timeline:
    """Events of one actor, emitted with strictly increasing timestamps."""

    def __init__(self, rng: random.Random, iface: int = 0) -> None:
        self.rng = rng
        self.iface = iface
        self.events: list[_Event] = []
        self.now = T0_NS

    def emit(
        self,
        ts_ns: int,
        frames: bytes | Iterable[bytes],
        label: str | None = None,
        gap_us: tuple[int, int] = (40, 400),
    ) -> int:
        """Emit frames starting at ``ts_ns`` (or just after the previous event)."""
        t = max(ts_ns, self.now + 1 * US)
        for frame in [frames] if isinstance(frames, bytes) else frames:
            self.events.append(_Event(t, frame, self.iface, label))
            self.now = t
            t += self.rng.randint(*gap_us) * US + self.rng.randrange(US)
        return self.now


def _jitter(rng: random.Random, ms: float, spread_ms: float) -> int:
    return int((ms + rng.uniform(-spread_ms, spread_ms)) * MS)


def _walk(rng: random.Random, values: list[int], lo: int, hi: int, step: int = 3) -> None:
    for i, v in enumerate(values):
        values[i] = min(hi, max(lo, v + rng.randint(-step, step)))


def _arp_pair(tl: _Timeline, t: int, who: tuple[str, str], target: tuple[str, str]) -> None:
    req = pk.arp(1, who[0], who[1], "00:00:00:00:00:00", target[1])
    rep = pk.arp(2, target[0], target[1], who[0], who[1])
    tl.emit(t, pk.ethernet(pk.BROADCAST_MAC, who[0], pk.ETH_ARP, req), "arp")
    tl.emit(tl.now + 300 * US, pk.ethernet(who[0], target[0], pk.ETH_ARP, rep), "arp")


def _poller(
    rng: random.Random,
    tl: _Timeline,
    conv: TcpConversation,
    start: int,
    cycles: int,
    trans0: int,
    regs: list[int],
    specials: dict[int, str],
) -> None:
    """HMI polling loop: FC3 every ~100 ms, occasional writes, scripted edge cases."""
    trans = trans0
    t = start
    for cycle in range(cycles):
        t += _jitter(rng, 100, 10)
        special = specials.get(cycle)
        _walk(rng, regs, 0, 4000)
        rtt = rng.randint(2, 8) * MS + rng.randrange(MS)
        if special == "coalesced":
            # two pipelined requests in one segment, answered separately
            r1 = mb.read_request(trans, 1, 3, 0, len(regs))
            r2 = mb.read_request(trans + 1, 1, 4, 200, 4)
            tl.emit(t, conv.send(True, r1 + r2), "coalesced_pdus")
            tl.emit(t + rtt, conv.send(False, mb.read_registers_response(trans, 1, 3, regs)))
            inputs = [rng.randrange(1000) for _ in range(4)]
            tl.emit(t + rtt, conv.send(False, mb.read_registers_response(trans + 1, 1, 4, inputs)))
            trans += 2
            continue
        if special == "write16":
            values = [rng.randrange(500, 900), rng.randrange(10, 60)]
            req = mb.write_multiple_registers_request(trans, 1, 100, values)
            rsp = mb.write_multiple_registers_response(trans, 1, 100, len(values))
        elif special == "write6":
            req = mb.write_single_register(trans, 1, 110, rng.randrange(0, 100))
            rsp = req
        elif special == "out_of_order":
            big = [rng.randrange(4000) for _ in range(60)]
            req = mb.read_request(trans, 1, 3, 1000, len(big))
            rsp = mb.read_registers_response(trans, 1, 3, big)
        else:
            req = mb.read_request(trans, 1, 3, 0, len(regs))
            rsp = mb.read_registers_response(trans, 1, 3, regs)
        tl.emit(t, conv.send(True, req))
        if special == "split":
            tl.emit(t + rtt, conv.send(False, rsp, segment_sizes=[9]), "split_pdu", (200, 900))
        elif special == "out_of_order":
            tl.emit(
                t + rtt, conv.send(False, rsp, segment_sizes=[64], order=[1, 0]), "out_of_order"
            )
        elif special == "retransmit":
            (frame,) = conv.send(False, rsp)
            tl.emit(t + rtt, frame)
            tl.emit(t + rtt + _jitter(rng, 30, 5), frame, "retransmission")
        else:
            tl.emit(t + rtt, conv.send(False, rsp))
        if rng.random() < 0.3:
            tl.emit(t + rtt + _jitter(rng, 40, 5), conv.ack(True))
        trans += 1


def _dns_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def _dns(qid: int, name: str, answer: str | None = None) -> bytes:
    question = _dns_name(name) + struct.pack("!HH", 1, 1)
    if answer is None:
        return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question
    rr = struct.pack("!HHHIH", 0xC00C, 1, 1, 300, 4) + pk.ip(answer)
    return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + rr


def _ntp_ts(ts_ns: int) -> bytes:
    sec, ns = divmod(ts_ns, 10**9)
    return struct.pack("!II", sec + 2_208_988_800, (ns << 32) // 10**9)


def _eth_ip4(
    smac: str, dmac: str, sip: str, dip: str, proto: int, payload: bytes, ident: int, ttl: int = 64
) -> bytes:
    packet = pk.ipv4(sip, dip, proto, payload, ident=ident, ttl=ttl)
    return pk.ethernet(dmac, smac, pk.ETH_IPV4, packet)


def _engineering(rng: random.Random, tl: _Timeline, start: int) -> None:
    """EWS: DNS lookup, ARP, ping, then a Modbus engineering session with PLC1."""
    sport = rng.randrange(49152, 65000)
    qid = rng.randrange(1 << 16)
    name = "plc1.cell-a.plant.local"
    query = pk.udp(EWS_IP, SRV_IP, sport, 53, _dns(qid, name))
    answer = pk.udp(SRV_IP, EWS_IP, 53, sport, _dns(qid, name, PLC1_IP))
    tl.emit(start, _eth_ip4(EWS_MAC, SRV_MAC, EWS_IP, SRV_IP, 17, query, ident=0x1001), "dns")
    tl.emit(
        tl.now + 700 * US,
        _eth_ip4(SRV_MAC, EWS_MAC, SRV_IP, EWS_IP, 17, answer, ident=0x5A01),
        "dns",
    )
    _arp_pair(tl, tl.now + 2 * MS, (EWS_MAC, EWS_IP), (PLC1_MAC, PLC1_IP))
    ping, ident = bytes(range(32)), rng.randrange(1 << 16)
    echo = pk.icmp_echo(ident, 1, ping)
    reply = pk.icmp_echo(ident, 1, ping, reply=True)
    tl.emit(
        tl.now + 1 * MS,
        _eth_ip4(EWS_MAC, PLC1_MAC, EWS_IP, PLC1_IP, 1, echo, ident=0x1002, ttl=128),
        "icmp",
    )
    tl.emit(
        tl.now + 900 * US,
        _eth_ip4(PLC1_MAC, EWS_MAC, PLC1_IP, EWS_IP, 1, reply, ident=0x0301),
        "icmp",
    )

    conv = TcpConversation(
        EWS_MAC,
        EWS_IP,
        rng.randrange(49152, 65000),
        PLC1_MAC,
        PLC1_IP,
        MODBUS_PORT,
        rng.getrandbits(32),
        rng.getrandbits(32),
        window=64240,
    )
    tl.emit(tl.now + 20 * MS, conv.handshake())
    u = 0xFF
    identity = {0: "Schneider Electric", 1: "BMX P34 2020", 2: "v3.20"}
    exchanges: list[tuple[bytes, bytes, str | None]] = [
        (mb.read_device_id_request(1, u), mb.read_device_id_response(1, u, identity), None),
        (
            mb.raw(2, u, 90, b"\x00\x02"),
            mb.raw(2, u, 90, b"\x00\xfe" + bytes.fromhex("0a1b2c3d04")),
            None,
        ),
        (mb.diagnostics(3, u, 0, b"\xa5\x37"), mb.diagnostics(3, u, 0, b"\xa5\x37"), None),
        (
            mb.read_request(4, u, 1, 0, 16),
            mb.read_bits_response(4, u, 1, [rng.random() < 0.5 for _ in range(16)]),
            None,
        ),
        (
            mb.read_request(5, u, 2, 0, 8),
            mb.read_bits_response(5, u, 2, [1, 0, 1, 1, 0, 0, 0, 1]),
            None,
        ),
        (
            mb.read_request(6, u, 4, 0, 4),
            mb.read_registers_response(6, u, 4, [215, 198, 1013, 7]),
            None,
        ),
        (
            mb.read_request(7, u, 3, 9000, 10),
            mb.exception_response(7, u, 3, 2),
            "exception_response",
        ),
        (
            mb.read_write_registers_request(8, u, 100, 2, 120, [1, 2, 3]),
            mb.read_write_registers_response(8, u, [640, 35]),
            None,
        ),
        (mb.write_single_coil(9, u, 12, True), mb.write_single_coil(9, u, 12, True), None),
        (
            mb.write_multiple_coils_request(10, u, 20, [1, 0, 1, 1, 0, 1, 0, 0, 1, 1]),
            mb.write_multiple_coils_response(10, u, 20, 10),
            None,
        ),
    ]
    for req, rsp, label in exchanges:
        tl.emit(tl.now + _jitter(rng, 250, 80), conv.send(True, req))
        tl.emit(tl.now + rng.randint(2, 9) * MS, conv.send(False, rsp), label)
        tl.emit(tl.now + _jitter(rng, 40, 5), conv.ack(True))
    tl.emit(tl.now + _jitter(rng, 500, 100), conv.close(from_client=True))


def _lldp(rng: random.Random, tl: _Timeline) -> None:
    """LLDP from two switches (three ports)."""
    caps = (0x0014, 0x0004)  # bridge+router available, bridge enabled
    lldps = [
        (50 * MS, SW1_MAC, "Gi1/0/1", "SW-CELL-A", "HMI uplink"),
        (62 * MS, SW1_MAC, "Gi1/0/2", "SW-CELL-A", "PLC1"),
        (4_020 * MS, SW2_MAC, "X1.P4", "SW-CELL-B", "Trunk to cell A"),
    ]
    for offset, chassis, port, name, desc in lldps:
        frame = pk.lldp(chassis, port, name, 120, desc, f"{name} industrial switch", caps)
        tl.emit(T0_NS + offset + rng.randrange(MS), frame, "lldp")


def _syslog(rng: random.Random, tl: _Timeline) -> None:
    """Switch syslog to the collector over IPv6, partly with extension headers."""
    messages = [
        (1_500, SW1_MAC, SW1_IP6, "SW-CELL-A", "Port Gi1/0/5 link up", ()),
        (3_700, SW2_MAC, SW2_IP6, "SW-CELL-B", "Port X1.P2 link down", [(pk.IPV6_DSTOPTS, b"")]),
        (
            6_900,
            SW1_MAC,
            SW1_IP6,
            "SW-CELL-A",
            "Config saved by admin",
            [(pk.IPV6_HOPOPTS, b""), (pk.IPV6_DSTOPTS, b"")],
        ),
    ]
    for offset_ms, smac, sip, host, text, ext in messages:
        t = T0_NS + offset_ms * MS + rng.randrange(MS)
        stamp = f"2024-03-01T08:00:{offset_ms // 1000:02d}.{offset_ms % 1000:03d}Z"
        msg = f"<134>1 {stamp} {host} swlogd - - - {text}".encode()
        packet = pk.ipv6(
            sip, LOG_IP6, pk.IPPROTO_UDP, pk.udp(sip, LOG_IP6, 514, 514, msg), ext_headers=ext
        )
        tl.emit(
            t, pk.ethernet(SRV_MAC, smac, pk.ETH_IPV6, packet), "ipv6_ext_headers" if ext else None
        )


def _ntp(rng: random.Random, tl: _Timeline) -> None:
    """PLC2 <-> NTP server over a QinQ (802.1ad + 802.1Q) trunk."""
    t = T0_NS + 5_000 * MS + rng.randrange(10 * MS)
    client = bytes([0x23, 0, 6, 0xEC]) + bytes(36) + _ntp_ts(t)
    rx = t + 400 * US
    server = (
        bytes([0x24, 2, 6, 0xE9])
        + struct.pack("!II", 0x0000_0300, 0x0000_0500)
        + pk.ip("192.0.2.123")
        + _ntp_ts(t - 20 * 10**9)
        + client[40:48]
        + _ntp_ts(rx)
        + _ntp_ts(rx + 30 * US)
    )
    for sm, dm, sip, dip, sp, dp, body in [
        (PLC2_MAC, SRV_MAC, PLC2_IP, SRV_IP, 123, 123, client),
        (SRV_MAC, PLC2_MAC, SRV_IP, PLC2_IP, 123, 123, server),
    ]:
        packet = pk.ipv4(
            sip, dip, pk.IPPROTO_UDP, pk.udp(sip, dip, sp, dp, body), rng.randrange(1 << 16)
        )
        tl.emit(t, pk.ethernet(dm, sm, pk.ETH_IPV4, packet, VLAN_QINQ), "ntp")
        t += 400 * US


def _build_events(seed: int) -> list[_Event]:
    rng = random.Random(seed)
    main = _Timeline(rng, iface=0)  # SPAN port, microsecond clock in pcapng
    trunk = _Timeline(rng, iface=1)  # VLAN trunk tap, nanosecond clock in pcapng
    eng = _Timeline(rng, iface=0)

    cycles = 80
    # HMI -> PLC1: full connection with scripted edge cases
    _arp_pair(main, T0_NS + 150 * MS, (HMI_MAC, HMI_IP), (PLC1_MAC, PLC1_IP))
    plc1 = TcpConversation(
        HMI_MAC,
        HMI_IP,
        rng.randrange(49152, 65000),
        PLC1_MAC,
        PLC1_IP,
        MODBUS_PORT,
        rng.getrandbits(32),
        rng.getrandbits(32),
    )
    main.emit(T0_NS + 200 * MS, plc1.handshake())
    specials = {10: "split", 20: "coalesced", 30: "retransmit", 40: "out_of_order"}
    for c in rng.sample(range(45, cycles), 6):
        specials[c] = rng.choice(["write16", "write6"])
    _poller(
        rng, main, plc1, main.now, cycles, 1, [rng.randrange(4000) for _ in range(10)], specials
    )

    # HMI -> PLC2 on VLAN 10: connection already established when the capture starts
    plc2 = TcpConversation(
        HMI_MAC,
        HMI_IP,
        rng.randrange(49152, 65000),
        PLC2_MAC,
        PLC2_IP,
        MODBUS_PORT,
        rng.getrandbits(32),
        rng.getrandbits(32),
        vlans=VLAN_PLC2,
    )
    trunk.now = T0_NS + 120 * MS
    first = len(trunk.events)
    writes = {c: "write6" for c in rng.sample(range(cycles), 3)}
    _poller(
        rng, trunk, plc2, trunk.now, cycles, 0x1200, [rng.randrange(4000) for _ in range(8)], writes
    )
    trunk.events[first].label = "midstream_first_frame"
    ntp = _Timeline(rng, iface=1)
    _ntp(rng, ntp)

    _engineering(rng, eng, T0_NS + 2_500 * MS + rng.randrange(100 * MS))
    lldp, syslog = _Timeline(rng), _Timeline(rng)
    _lldp(rng, lldp)
    _syslog(rng, syslog)

    events = [e for tl in (main, trunk, ntp, eng, lldp, syslog) for e in tl.events]
    events.sort(key=lambda e: e.ts_ns)  # stable: per-actor order is preserved on ties
    return events


# --------------------------------------------------------------------------- analysis


@dataclass(slots=True)
class _Parsed:
    vlans: tuple[int, ...]
    ethertype: int
    l3: int  # 4, 6 or 0
    src: str = ""
    dst: str = ""
    proto: int = -1
    sport: int = 0
    dport: int = 0
    seq: int = 0
    flags: int = 0
    payload: bytes = b""


def _parse(frame: bytes) -> _Parsed:
    """Minimal Ethernet/VLAN/IPv4/IPv6/TCP/UDP parser for ground-truth bookkeeping."""
    pos, vlans = 12, []
    (etype,) = struct.unpack_from("!H", frame, pos)
    while etype in (pk.ETH_8021Q, pk.ETH_8021AD):
        tci, etype = struct.unpack_from("!HH", frame, pos + 2)
        vlans.append(tci & 0xFFF)
        pos += 4
    pos += 2
    p = _Parsed(tuple(vlans), etype, 0)
    if etype == pk.ETH_IPV4:
        ihl = (frame[pos] & 15) * 4
        (total,) = struct.unpack_from("!H", frame, pos + 2)
        p.l3, p.proto = 4, frame[pos + 9]
        p.src = str(ipaddress.IPv4Address(frame[pos + 12 : pos + 16]))
        p.dst = str(ipaddress.IPv4Address(frame[pos + 16 : pos + 20]))
        l4, end = pos + ihl, pos + total
    elif etype == pk.ETH_IPV6:
        (plen,) = struct.unpack_from("!H", frame, pos + 4)
        nh, l4, end = frame[pos + 6], pos + 40, pos + 40 + plen
        p.l3 = 6
        p.src = str(ipaddress.IPv6Address(frame[pos + 8 : pos + 24]))
        p.dst = str(ipaddress.IPv6Address(frame[pos + 24 : pos + 40]))
        while nh in (pk.IPV6_HOPOPTS, pk.IPV6_ROUTING, pk.IPV6_DSTOPTS, pk.IPV6_FRAGMENT):
            step = 8 if nh == pk.IPV6_FRAGMENT else (frame[l4 + 1] + 1) * 8
            nh, l4 = frame[l4], l4 + step
        p.proto = nh
    else:
        return p
    if p.proto == pk.IPPROTO_TCP:
        p.sport, p.dport, p.seq = struct.unpack_from("!HHI", frame, l4)
        p.flags = frame[l4 + 13]
        p.payload = frame[l4 + (frame[l4 + 12] >> 4) * 4 : end]
    elif p.proto == pk.IPPROTO_UDP:
        p.sport, p.dport = struct.unpack_from("!HH", frame, l4)
        p.payload = frame[l4 + 8 : end]
    return p


class _Stream:
    """One direction of a TCP connection: in-order reassembly + MBAP framing."""

    def __init__(self) -> None:
        self.next_seq: int | None = None
        self.pending: dict[int, bytes] = {}
        self.buf = bytearray()

    def feed(self, seq: int, flags: int, payload: bytes) -> list[bytes]:
        if flags & 0x02:  # SYN
            self.next_seq = (seq + 1) & 0xFFFFFFFF
            return []
        if not payload:
            return []
        if self.next_seq is None:
            self.next_seq = seq  # mid-stream start, assumed at a PDU boundary
        self.pending.setdefault(seq, payload)
        while True:
            progressed = False
            for s, data in list(self.pending.items()):
                rel = (self.next_seq - s) & 0xFFFFFFFF
                if rel >= 1 << 31:  # still in the future
                    continue
                del self.pending[s]
                if rel < len(data):
                    self.buf += data[rel:]
                    self.next_seq = (s + len(data)) & 0xFFFFFFFF
                    progressed = True
            if not progressed:
                break
        adus = []
        while len(self.buf) >= 7:
            size = 6 + struct.unpack_from("!H", self.buf, 4)[0]
            if len(self.buf) < size:
                break
            adus.append(bytes(self.buf[:size]))
            del self.buf[:size]
        return adus


@dataclass(slots=True)
class _FlowAcc:
    proto: str
    a: tuple[str, int]
    b: tuple[str, int]
    first_frame: int
    vlans: tuple[int, ...]
    n: list[int] = field(default_factory=lambda: [0, 0])
    wire: list[int] = field(default_factory=lambda: [0, 0])
    payload: list[int] = field(default_factory=lambda: [0, 0])
    syn: bool = False

    def freeze(self) -> FlowTruth:
        return FlowTruth(
            self.proto,
            self.a[0],
            self.a[1],
            self.b[0],
            self.b[1],
            self.first_frame,
            self.n[0],
            self.n[1],
            self.wire[0],
            self.wire[1],
            self.payload[0],
            self.payload[1],
            self.syn,
            self.vlans,
        )


def _analyse(events: list[_Event], fmt: str) -> SampleTruth:
    flows: dict[tuple[str, tuple[str, int], tuple[str, int]], _FlowAcc] = {}
    streams: dict[tuple[str, int, str, int], _Stream] = {}
    modbus: list[ModbusPduTruth] = []
    events_by_label: dict[str, list[int]] = {}
    lldp_names: list[str] = []
    lldp_ports: list[str] = []
    counts = dict.fromkeys(("arp", "lldp", "dns", "icmp", "ntp", "vlan", "qinq", "ipv6"), 0)
    for number, ev in enumerate(events, start=1):
        if ev.label:
            events_by_label.setdefault(ev.label, []).append(number)
        p = _parse(ev.frame)
        counts["vlan"] += bool(p.vlans)
        counts["qinq"] += len(p.vlans) >= 2
        counts["ipv6"] += p.l3 == 6
        counts["arp"] += p.ethertype == pk.ETH_ARP
        counts["icmp"] += p.proto == pk.IPPROTO_ICMP
        if p.ethertype == pk.ETH_LLDP:
            counts["lldp"] += 1
            name, port = _lldp_fields(ev.frame[14:])
            lldp_ports.append(port)
            if name not in lldp_names:
                lldp_names.append(name)
        if p.proto not in (pk.IPPROTO_TCP, pk.IPPROTO_UDP):
            continue
        proto = "tcp" if p.proto == pk.IPPROTO_TCP else "udp"
        counts["dns"] += proto == "udp" and 53 in (p.sport, p.dport)
        counts["ntp"] += proto == "udp" and 123 in (p.sport, p.dport)
        src, dst = (p.src, p.sport), (p.dst, p.dport)
        lo, hi = sorted((src, dst))
        flow = flows.get((proto, lo, hi))
        if flow is None:
            flow = flows[(proto, lo, hi)] = _FlowAcc(proto, src, dst, number, p.vlans)
        d = 0 if src == flow.a else 1
        flow.n[d] += 1
        flow.wire[d] += len(ev.frame)
        flow.payload[d] += len(p.payload)
        if proto == "tcp":
            flow.syn |= bool(p.flags & 0x02)
            if MODBUS_PORT in (p.sport, p.dport):
                stream = streams.setdefault((p.src, p.sport, p.dst, p.dport), _Stream())
                for adu in stream.feed(p.seq, p.flags, p.payload):
                    tid, _, _, unit, fc = struct.unpack_from("!HHHBB", adu)
                    modbus.append(
                        ModbusPduTruth(
                            number,
                            p.src,
                            p.sport,
                            p.dst,
                            p.dport,
                            p.dport == MODBUS_PORT,
                            tid,
                            unit,
                            fc,
                            adu,
                        )
                    )
    flow_list = [f.freeze() for f in flows.values()]
    return SampleTruth(
        fmt=fmt,
        packet_count=len(events),
        first_ts_ns=events[0].ts_ns,
        last_ts_ns=events[-1].ts_ns,
        flows=flow_list,
        modbus=modbus,
        arp_frames=counts["arp"],
        lldp_frames=counts["lldp"],
        lldp_system_names=lldp_names,
        lldp_port_ids=lldp_ports,
        dns_frames=counts["dns"],
        icmp_frames=counts["icmp"],
        ntp_frames=counts["ntp"],
        vlan_tagged_frames=counts["vlan"],
        qinq_frames=counts["qinq"],
        ipv6_frames=counts["ipv6"],
        events=events_by_label,
    )


def _lldp_fields(du: bytes) -> tuple[str, str]:
    name = port = ""
    pos = 0
    while pos + 2 <= len(du):
        (head,) = struct.unpack_from("!H", du, pos)
        t, n = head >> 9, head & 0x1FF
        value = du[pos + 2 : pos + 2 + n]
        if t == 0:
            break
        if t == 2:
            port = value[1:].decode()
        elif t == 5:
            name = value.decode()
        pos += 2 + n
    return name, port


# --------------------------------------------------------------------------- output


def write_sample_capture(
    path: str | os.PathLike[str],
    seed: int = 0,
    fmt: str = "pcap",
    gzip: bool = False,
) -> SampleTruth:
    """Write the sample plant capture to ``path`` and return its ground truth.

    ``fmt`` is "pcap" (microsecond, Ethernet) or "pcapng" (two Ethernet interfaces:
    0 = SPAN port with µs resolution, 1 = VLAN trunk with ns resolution, plus one
    local-use block readers must skip).  With ``gzip`` the file is gzip-compressed
    (also implied by a ``.gz`` suffix).  Output bytes depend only on ``seed`` and ``fmt``.
    """
    if fmt not in ("pcap", "pcapng"):
        raise ValueError(f"unknown format {fmt!r}")
    events = _build_events(seed)
    if gzip and not os.fspath(path).endswith(".gz"):
        with (
            open(path, "wb") as raw,
            _gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        ):
            _write(gz, events, fmt)  # type: ignore[arg-type]
    else:
        _write(path, events, fmt)
    return _analyse(events, fmt)


def _write(dest: Destination, events: list[_Event], fmt: str) -> None:
    if fmt == "pcap":
        with PcapWriter(dest) as w:
            for ev in events:
                w.write(ev.ts_ns, ev.frame)
        return
    with PcapngWriter(dest) as ng:
        ng.add_interface(1, 6, name="eth0", description="SPAN port, cell A switch")
        ng.add_interface(1, 9, name="eth1", description="VLAN trunk tap")
        half = len(events) // 2
        for i, ev in enumerate(events):
            if i == half:
                ng.write_custom_block(LOCAL_BLOCK_TYPE, b"otsight sample: skip me")
            ng.write(ev.iface, ev.ts_ns, ev.frame)


def main(argv: list[str] | None = None) -> None:
    """CLI: write sample.pcap, sample.pcapng and sample.pcap.gz into OUT_DIR."""
    parser = argparse.ArgumentParser(
        prog="python -m otsight.testing.samples", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, fmt in (
        ("sample.pcap", "pcap"),
        ("sample.pcapng", "pcapng"),
        ("sample.pcap.gz", "pcap"),
    ):
        out = args.out_dir / name
        write_sample_capture(out, seed=args.seed, fmt=fmt)
        print(out)


if __name__ == "__main__":
    main()
