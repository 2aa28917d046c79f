"""L2–L4 decoding kernel: link layer, VLANs, IPv4/IPv6, TCP/UDP/ICMP, one row per packet.

The kernel writes into a packet-major int64 matrix (``cols[packet, COLUMN]``: one packet's
fields share a cache line) and a uint64 matrix of addresses
(``addrs[packet, SRC_HI|SRC_LO|DST_HI|DST_LO]``). IPv4 addresses are
stored IPv4-mapped (::ffff:a.b.c.d) so that every address is 128 bits and one flow table
serves both families. Offsets are absolute within the chunk's window.
"""

from __future__ import annotations

import numpy as np

from otsight._jit import njit
from otsight.capture._prefetch import prefetch, prefetch_write

# Column indices of ``cols``.
ETH_SRC, ETH_DST, VLAN1, VLAN2, ETHERTYPE, L3_OFF = 0, 1, 2, 3, 4, 5
IPVER, PROTO, TTL, FRAG, L4_OFF, SPORT, DPORT = 6, 7, 8, 9, 10, 11, 12
TCP_FLAGS, SEQ, ACK, WIN, PAY_OFF, PAY_LEN, SEG_LEN, STATUS = 13, 14, 15, 16, 17, 18, 19, 20
NCOLS = 21

SRC_HI, SRC_LO, DST_HI, DST_LO = 0, 1, 2, 3

# FRAG bits
FRAG_ANY = 1  # the packet is an IP fragment
FRAG_NOT_FIRST = 2  # ...and not the first one: it carries no L4 header

# STATUS codes: why a packet could not be decoded in full (see WEIRD_REASONS).
OK = 0
UNSUPPORTED_LINKTYPE = 1
TRUNCATED_L2 = 2
TRUNCATED_IP = 3
BAD_IP_HEADER = 4
TRUNCATED_L4 = 5
BAD_TCP_OFFSET = 6
SNAPLEN_CUT = 7  # headers complete, payload cut by the capture's snap length
BAD_IP_LENGTH = 8
BAD_UDP_LENGTH = 9
UNKNOWN_NULL_FAMILY = 10
TCP_HEADER_CUT = 11  # fewer than 20 TCP header bytes captured, but the ports are there
FRAGMENT = 12  # a later IP fragment: no transport header (fragments are not reassembled)

WEIRD_REASONS = {
    UNSUPPORTED_LINKTYPE: "unsupported_link_type",
    TRUNCATED_L2: "truncated_link_header",
    TRUNCATED_IP: "truncated_ip_header",
    BAD_IP_HEADER: "bad_ip_header",
    TRUNCATED_L4: "truncated_transport_header",
    BAD_TCP_OFFSET: "bad_tcp_data_offset",
    SNAPLEN_CUT: "payload_cut_by_snaplen",
    BAD_IP_LENGTH: "ip_length_below_header",
    BAD_UDP_LENGTH: "bad_udp_length",
    UNKNOWN_NULL_FAMILY: "unknown_loopback_family",
    TCP_HEADER_CUT: "tcp_header_cut_by_snaplen",
    FRAGMENT: "ip_fragment_not_reassembled",
}

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
ETH_LLDP = 0x88CC
V4_MAPPED = np.uint64(0xFFFF00000000)


@njit(cache=True, inline="always")
def _be16(buf, p):
    return (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])


@njit(cache=True, inline="always")
def _be32(buf, p):
    return (
        (np.int64(buf[p]) << 24)
        | (np.int64(buf[p + 1]) << 16)
        | (np.int64(buf[p + 2]) << 8)
        | np.int64(buf[p + 3])
    )


@njit(cache=True, inline="always")
def _be48(buf, p):
    return (_be16(buf, p) << 32) | _be32(buf, p + 2)


@njit(cache=True, inline="always")
def _be64u(buf, p):
    v = np.uint64(0)
    for k in range(8):
        v = (v << np.uint64(8)) | np.uint64(buf[p + k])
    return v


# Packets ahead whose first bytes are asked for: records vary in length, so the hardware
# cannot guess where the next headers are (measured: 185 -> 155 ms per 4 M packets).
PREFETCH_AHEAD = 16


@njit(cache=True, inline="always")
def _scan_row(cols, i, ethertype, bad, arp, lldp, udp, udp_len, non_ip, counts):
    """What the packet tables and the UDP and L2 dissectors want of row ``i``: its
    ethertype, and the row listed among the decode problems, ARP, LLDP, UDP-over-IP and
    non-IP rows (``counts``: how many of each so far)."""
    et = cols[i, ETHERTYPE]
    ethertype[i] = et
    if et != ETH_IPV4 and et != ETH_IPV6:
        non_ip[counts[4]] = i
        counts[4] += 1
    if cols[i, STATUS] != 0:
        bad[counts[0]] = i
        counts[0] += 1
    if et == ETH_ARP:
        arp[counts[1]] = i
        counts[1] += 1
    elif et == ETH_LLDP:
        lldp[counts[2]] = i
        counts[2] += 1
    if cols[i, PROTO] == 17 and cols[i, IPVER] != 0:
        udp[counts[3]] = i
        udp_len[counts[3]] = cols[i, PAY_LEN]
        counts[3] += 1


@njit(cache=True, nogil=True, _nrt=False)
def _decode_l2l4(buf, off, caplen, wirelen, linktype, cols, addrs, s_et, s_bad, s_arp, s_lldp,
                 s_udp, s_udp_len, s_non_ip, s_counts):  # fmt: skip
    """Decode packets into ``cols`` and ``addrs``. Each row, once complete, is scanned into
    the ``s_`` outputs (see ``_scan_row``) at the start of the next packet, while it is
    still in the cache (the decode of a packet ends at many places)."""
    n = off.shape[0]
    for c in range(s_counts.shape[0]):
        s_counts[c] = 0
    for i in range(n):
        if i > 0:
            _scan_row(cols, i - 1, s_et, s_bad, s_arp, s_lldp, s_udp, s_udp_len, s_non_ip, s_counts)
        if i + PREFETCH_AHEAD < n:
            prefetch(buf, off[i + PREFETCH_AHEAD])
        if i + 2 * PREFETCH_AHEAD < n:
            # The output rows are new lines: without the hint each row's stores wait for
            # its lines to be fetched (write-allocate), and the store buffer fills.
            r = i + 2 * PREFETCH_AHEAD
            prefetch_write(cols, (r, 0))
            prefetch_write(cols, (r, 8))
            prefetch_write(cols, (r, 16))
            prefetch_write(cols, (r, NCOLS - 1))
            prefetch_write(addrs, (r, 0))
            prefetch_write(addrs, (r, 3))
        p = off[i]
        end = p + caplen[i]
        wire_end = p + wirelen[i]  # a lying IP length cannot claim more than the frame had
        for c in range(NCOLS):
            cols[i, c] = 0
        cols[i, VLAN1] = -1
        cols[i, VLAN2] = -1
        for c in range(4):
            addrs[i, c] = 0
        lt = linktype[i]
        et = np.int64(-1)
        if lt == 1:
            if p + 14 > end:
                cols[i, STATUS] = TRUNCATED_L2
                continue
            cols[i, ETH_DST] = _be48(buf, p)
            cols[i, ETH_SRC] = _be48(buf, p + 6)
            et = _be16(buf, p + 12)
            p += 14
            nv = 0
            while et == 0x8100 or et == 0x88A8 or et == 0x9100:
                if p + 4 > end:
                    break
                vid = _be16(buf, p) & 0xFFF
                if nv == 0:
                    cols[i, VLAN1] = vid
                elif nv == 1:
                    cols[i, VLAN2] = vid
                nv += 1
                et = _be16(buf, p + 2)
                p += 4
            if et == 0x8100 or et == 0x88A8 or et == 0x9100:
                cols[i, STATUS] = TRUNCATED_L2
                continue
            if et < 0x0600:
                et = 0  # IEEE 802.3 length field: LLC follows
        elif lt == 113:
            if p + 16 > end:
                cols[i, STATUS] = TRUNCATED_L2
                continue
            et = _be16(buf, p + 14)
            if _be16(buf, p + 2) == 1:  # ARPHRD_ETHER: the address is a MAC
                cols[i, ETH_SRC] = _be48(buf, p + 6)
            p += 16
        elif lt == 276:
            if p + 20 > end:
                cols[i, STATUS] = TRUNCATED_L2
                continue
            et = _be16(buf, p)
            if _be16(buf, p + 8) == 1:
                cols[i, ETH_SRC] = _be48(buf, p + 12)
            p += 20
        elif lt == 0 or lt == 108:
            if p + 4 > end:
                cols[i, STATUS] = TRUNCATED_L2
                continue
            if lt == 108:
                fam = _be32(buf, p)
            else:
                fam = (
                    np.int64(buf[p])
                    | (np.int64(buf[p + 1]) << 8)
                    | (np.int64(buf[p + 2]) << 16)
                    | (np.int64(buf[p + 3]) << 24)
                )
                if fam > 0xFFFF:  # written by a big-endian host
                    fam = _be32(buf, p)
            p += 4
            if fam == 2:
                et = ETH_IPV4
            elif fam == 10 or fam == 24 or fam == 28 or fam == 30:
                et = ETH_IPV6
            else:
                cols[i, STATUS] = UNKNOWN_NULL_FAMILY
                cols[i, L3_OFF] = p
                continue
        elif lt == 101 or lt == 12 or lt == 14 or lt == 228 or lt == 229:
            if p >= end:
                cols[i, STATUS] = TRUNCATED_IP
                continue
            ver = np.int64(buf[p]) >> 4
            et = ETH_IPV6 if ver == 6 else ETH_IPV4
        else:
            cols[i, STATUS] = UNSUPPORTED_LINKTYPE
            continue
        cols[i, ETHERTYPE] = et
        cols[i, L3_OFF] = p
        if et == ETH_IPV4:
            if p + 20 > end:
                cols[i, STATUS] = TRUNCATED_IP
                continue
            vihl = np.int64(buf[p])
            ihl = (vihl & 0xF) * 4
            if (vihl >> 4) != 4 or ihl < 20:
                cols[i, STATUS] = BAD_IP_HEADER
                continue
            if p + ihl > end:
                cols[i, STATUS] = TRUNCATED_IP
                continue
            tot = _be16(buf, p + 2)
            if tot == 0:
                tot = end - p  # TSO captures report 0; trust what was captured
            if tot < ihl:
                cols[i, STATUS] = BAD_IP_LENGTH
                continue
            ip_end = p + tot
            if ip_end > wire_end:
                ip_end = wire_end
            cols[i, IPVER] = 4
            proto = np.int64(buf[p + 9])
            cols[i, PROTO] = proto
            cols[i, TTL] = buf[p + 8]
            fo = _be16(buf, p + 6)
            frag_off = fo & 0x1FFF
            if (fo & 0x2000) != 0 or frag_off != 0:
                cols[i, FRAG] = FRAG_ANY | (FRAG_NOT_FIRST if frag_off != 0 else 0)
            addrs[i, SRC_LO] = V4_MAPPED | np.uint64(_be32(buf, p + 12))
            addrs[i, DST_LO] = V4_MAPPED | np.uint64(_be32(buf, p + 16))
            q = p + ihl
            if frag_off != 0:
                proto = -1  # no transport header in a later fragment
                cols[i, STATUS] = FRAGMENT
        elif et == ETH_IPV6:
            if p + 40 > end:
                cols[i, STATUS] = TRUNCATED_IP
                continue
            if (np.int64(buf[p]) >> 4) != 6:
                cols[i, STATUS] = BAD_IP_HEADER
                continue
            plen = _be16(buf, p + 4)
            ip_end = p + 40 + plen if plen > 0 else end
            if ip_end > wire_end:
                ip_end = wire_end
            cols[i, IPVER] = 6
            cols[i, TTL] = buf[p + 7]
            addrs[i, SRC_HI] = _be64u(buf, p + 8)
            addrs[i, SRC_LO] = _be64u(buf, p + 16)
            addrs[i, DST_HI] = _be64u(buf, p + 24)
            addrs[i, DST_LO] = _be64u(buf, p + 32)
            proto = np.int64(buf[p + 6])
            q = p + 40
            bad = False
            while (
                proto == 0
                or proto == 43
                or proto == 60
                or proto == 44
                or proto == 51
                or proto == 135
            ):
                if q + 8 > end:
                    bad = True
                    break
                nxt = np.int64(buf[q])
                if proto == 44:
                    fo = _be16(buf, q + 2)
                    cols[i, FRAG] = FRAG_ANY | (FRAG_NOT_FIRST if (fo >> 3) != 0 else 0)
                    q += 8
                    if (fo >> 3) != 0:
                        cols[i, PROTO] = nxt
                        cols[i, STATUS] = FRAGMENT
                        proto = -1
                        break
                elif proto == 51:
                    q += (np.int64(buf[q + 1]) + 2) * 4
                else:
                    q += (np.int64(buf[q + 1]) + 1) * 8
                proto = nxt
            if bad:
                cols[i, STATUS] = TRUNCATED_IP
                continue
            if proto >= 0:
                cols[i, PROTO] = proto
        else:
            continue  # non-IP ethertype: routed by ETHERTYPE and L3_OFF
        cols[i, L4_OFF] = q
        cap_end = ip_end if ip_end < end else end
        if proto == 6:
            if q + 20 > cap_end:
                # Keep what the short capture has: ports (and flags) still place the packet
                # in its flow, and the data offset tells how much payload it carried.
                if q + 4 > cap_end:
                    cols[i, STATUS] = TRUNCATED_L4
                    continue
                cols[i, STATUS] = TCP_HEADER_CUT
                cols[i, SPORT] = _be16(buf, q)
                cols[i, DPORT] = _be16(buf, q + 2)
                if q + 8 <= cap_end:
                    cols[i, SEQ] = _be32(buf, q + 4)
                if q + 12 <= cap_end:
                    cols[i, ACK] = _be32(buf, q + 8)
                if q + 14 <= cap_end:
                    cols[i, TCP_FLAGS] = ((np.int64(buf[q + 12]) & 1) << 8) | np.int64(buf[q + 13])
                    doff = (np.int64(buf[q + 12]) >> 4) * 4
                    if doff >= 20 and q + doff <= ip_end:
                        cols[i, PAY_OFF] = q + doff
                        cols[i, SEG_LEN] = ip_end - (q + doff)
                if q + 16 <= cap_end:
                    cols[i, WIN] = _be16(buf, q + 14)
                continue
            cols[i, SPORT] = _be16(buf, q)
            cols[i, DPORT] = _be16(buf, q + 2)
            cols[i, SEQ] = _be32(buf, q + 4)
            cols[i, ACK] = _be32(buf, q + 8)
            doff = (np.int64(buf[q + 12]) >> 4) * 4
            cols[i, TCP_FLAGS] = ((np.int64(buf[q + 12]) & 1) << 8) | np.int64(buf[q + 13])
            cols[i, WIN] = _be16(buf, q + 14)
            if doff < 20:
                cols[i, STATUS] = BAD_TCP_OFFSET
                continue
            if q + doff > ip_end:  # options run past the frame: no payload, still in its flow
                cols[i, STATUS] = TCP_HEADER_CUT
                cols[i, PAY_OFF] = ip_end
                continue
            po = q + doff
        elif proto == 17 or proto == 136:
            if q + 8 > cap_end:
                cols[i, STATUS] = TRUNCATED_L4
                continue
            cols[i, SPORT] = _be16(buf, q)
            cols[i, DPORT] = _be16(buf, q + 2)
            ulen = _be16(buf, q + 4)
            po = q + 8
            if ulen >= 8 and q + ulen < ip_end:
                ip_end = q + ulen  # trailing bytes beyond the UDP length are padding
            elif ulen < 8 and ulen != 0:
                cols[i, STATUS] = BAD_UDP_LENGTH
        elif proto == 1 or proto == 58:
            if q + 4 > cap_end:
                cols[i, STATUS] = TRUNCATED_L4
                continue
            cols[i, SPORT] = buf[q]  # ICMP type and code stand in the port columns (as Zeek)
            cols[i, DPORT] = buf[q + 1]
            po = q + 4
        elif proto == 132:
            if q + 12 > cap_end:
                cols[i, STATUS] = TRUNCATED_L4
                continue
            cols[i, SPORT] = _be16(buf, q)
            cols[i, DPORT] = _be16(buf, q + 2)
            po = q + 12
        else:
            po = q
        cap_end = ip_end if ip_end < end else end
        seg = ip_end - po
        cols[i, PAY_OFF] = po
        cols[i, SEG_LEN] = seg if seg > 0 else 0
        got = cap_end - po
        cols[i, PAY_LEN] = got if got > 0 else 0
        if ip_end > end and cols[i, STATUS] == 0:
            cols[i, STATUS] = SNAPLEN_CUT
    if n > 0:
        _scan_row(cols, n - 1, s_et, s_bad, s_arp, s_lldp, s_udp, s_udp_len, s_non_ip, s_counts)


def decode_l2l4(
    buf: np.ndarray,
    off: np.ndarray,
    caplen: np.ndarray,
    linktype: np.ndarray,
    wirelen: np.ndarray | None = None,
):
    """Decode a chunk's packets; returns (cols, addrs) as described in the module doc."""
    cols, addrs, _ = decode_l2l4_scanned(buf, off, caplen, linktype, wirelen)
    return cols, addrs


def decode_l2l4_scanned(
    buf: np.ndarray,
    off: np.ndarray,
    caplen: np.ndarray,
    linktype: np.ndarray,
    wirelen: np.ndarray | None = None,
):
    """(cols, addrs, scan): :func:`decode_l2l4`, and in ``scan`` what
    ``otsight.capture.packet_scan.scan_packets(cols)`` returns, from the same pass: a
    later pass over the rows would miss the cache on each of them."""
    if wirelen is None:
        wirelen = caplen
    n = off.shape[0]
    cols = np.empty((n, NCOLS), dtype=np.int64)
    addrs = np.empty((n, 4), dtype=np.uint64)
    outputs = scan_outputs(n)
    _decode_l2l4(buf, off, caplen, wirelen, linktype.astype(np.int64), cols, addrs, *outputs)
    return cols, addrs, scan_result(outputs)


def scan_outputs(n: int) -> tuple[np.ndarray, ...]:
    """The arrays ``_scan_row`` writes for ``n`` rows: ethertype; lists of decode-problem,
    ARP, LLDP and UDP rows, UDP payload lengths, non-IP rows; the lists' counts."""
    return (*(np.empty(n, np.int64) for _ in range(7)), np.zeros(5, np.int64))


def scan_result(outputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """(ethertype, bad, arp, lldp, udp, udp_len, non_ip) from :func:`scan_outputs` once
    written: each list cut to its count (a copy, so the full-size buffers go)."""
    ethertype, bad, arp, lldp, udp, udp_len, non_ip, counts = outputs
    nb, na, nl, nu, nn = counts.tolist()
    lists = (bad[:nb], arp[:na], lldp[:nl], udp[:nu], udp_len[:nu], non_ip[:nn])
    return (ethertype, *(x.copy() for x in lists))
