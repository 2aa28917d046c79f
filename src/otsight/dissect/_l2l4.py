"""L2–L4 decoding kernel: link layer, VLANs, IPv4/IPv6, TCP/UDP/ICMP, one row per packet.

The kernel writes into a column-major int64 matrix (``cols[COLUMN, packet]``) and a uint64
matrix of addresses (``addrs[SRC_HI|SRC_LO|DST_HI|DST_LO, packet]``). IPv4 addresses are
stored IPv4-mapped (::ffff:a.b.c.d) so that every address is 128 bits and one flow table
serves both families. Offsets are absolute within the chunk's window.
"""

from __future__ import annotations

import numpy as np

from otsight._jit import njit

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


@njit(cache=True)
def _decode_l2l4(buf, off, caplen, linktype, cols, addrs):
    n = off.shape[0]
    for i in range(n):
        p = off[i]
        end = p + caplen[i]
        for c in range(NCOLS):
            cols[c, i] = 0
        cols[VLAN1, i] = -1
        cols[VLAN2, i] = -1
        for c in range(4):
            addrs[c, i] = 0
        lt = linktype[i]
        et = np.int64(-1)
        if lt == 1:
            if p + 14 > end:
                cols[STATUS, i] = TRUNCATED_L2
                continue
            cols[ETH_DST, i] = _be48(buf, p)
            cols[ETH_SRC, i] = _be48(buf, p + 6)
            et = _be16(buf, p + 12)
            p += 14
            nv = 0
            while et == 0x8100 or et == 0x88A8 or et == 0x9100:
                if p + 4 > end:
                    break
                vid = _be16(buf, p) & 0xFFF
                if nv == 0:
                    cols[VLAN1, i] = vid
                elif nv == 1:
                    cols[VLAN2, i] = vid
                nv += 1
                et = _be16(buf, p + 2)
                p += 4
            if et == 0x8100 or et == 0x88A8 or et == 0x9100:
                cols[STATUS, i] = TRUNCATED_L2
                continue
            if et < 0x0600:
                et = 0  # IEEE 802.3 length field: LLC follows
        elif lt == 113:
            if p + 16 > end:
                cols[STATUS, i] = TRUNCATED_L2
                continue
            et = _be16(buf, p + 14)
            if _be16(buf, p + 2) == 1:  # ARPHRD_ETHER: the address is a MAC
                cols[ETH_SRC, i] = _be48(buf, p + 6)
            p += 16
        elif lt == 276:
            if p + 20 > end:
                cols[STATUS, i] = TRUNCATED_L2
                continue
            et = _be16(buf, p)
            if _be16(buf, p + 8) == 1:
                cols[ETH_SRC, i] = _be48(buf, p + 12)
            p += 20
        elif lt == 0 or lt == 108:
            if p + 4 > end:
                cols[STATUS, i] = TRUNCATED_L2
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
                cols[STATUS, i] = UNKNOWN_NULL_FAMILY
                cols[L3_OFF, i] = p
                continue
        elif lt == 101 or lt == 12 or lt == 14 or lt == 228 or lt == 229:
            if p >= end:
                cols[STATUS, i] = TRUNCATED_IP
                continue
            ver = np.int64(buf[p]) >> 4
            et = ETH_IPV6 if ver == 6 else ETH_IPV4
        else:
            cols[STATUS, i] = UNSUPPORTED_LINKTYPE
            continue
        cols[ETHERTYPE, i] = et
        cols[L3_OFF, i] = p
        if et == ETH_IPV4:
            if p + 20 > end:
                cols[STATUS, i] = TRUNCATED_IP
                continue
            vihl = np.int64(buf[p])
            ihl = (vihl & 0xF) * 4
            if (vihl >> 4) != 4 or ihl < 20:
                cols[STATUS, i] = BAD_IP_HEADER
                continue
            if p + ihl > end:
                cols[STATUS, i] = TRUNCATED_IP
                continue
            tot = _be16(buf, p + 2)
            if tot == 0:
                tot = end - p  # TSO captures report 0; trust what was captured
            if tot < ihl:
                cols[STATUS, i] = BAD_IP_LENGTH
                continue
            ip_end = p + tot
            cols[IPVER, i] = 4
            proto = np.int64(buf[p + 9])
            cols[PROTO, i] = proto
            cols[TTL, i] = buf[p + 8]
            fo = _be16(buf, p + 6)
            frag_off = fo & 0x1FFF
            if (fo & 0x2000) != 0 or frag_off != 0:
                cols[FRAG, i] = FRAG_ANY | (FRAG_NOT_FIRST if frag_off != 0 else 0)
            addrs[SRC_LO, i] = V4_MAPPED | np.uint64(_be32(buf, p + 12))
            addrs[DST_LO, i] = V4_MAPPED | np.uint64(_be32(buf, p + 16))
            q = p + ihl
            if frag_off != 0:
                proto = -1  # no transport header in a later fragment
        elif et == ETH_IPV6:
            if p + 40 > end:
                cols[STATUS, i] = TRUNCATED_IP
                continue
            if (np.int64(buf[p]) >> 4) != 6:
                cols[STATUS, i] = BAD_IP_HEADER
                continue
            plen = _be16(buf, p + 4)
            ip_end = p + 40 + plen if plen > 0 else end
            cols[IPVER, i] = 6
            cols[TTL, i] = buf[p + 7]
            addrs[SRC_HI, i] = _be64u(buf, p + 8)
            addrs[SRC_LO, i] = _be64u(buf, p + 16)
            addrs[DST_HI, i] = _be64u(buf, p + 24)
            addrs[DST_LO, i] = _be64u(buf, p + 32)
            proto = np.int64(buf[p + 6])
            q = p + 40
            bad = False
            while proto == 0 or proto == 43 or proto == 60 or proto == 44 or proto == 51 or proto == 135:
                if q + 8 > end:
                    bad = True
                    break
                nxt = np.int64(buf[q])
                if proto == 44:
                    fo = _be16(buf, q + 2)
                    cols[FRAG, i] = FRAG_ANY | (FRAG_NOT_FIRST if (fo >> 3) != 0 else 0)
                    q += 8
                    if (fo >> 3) != 0:
                        cols[PROTO, i] = nxt
                        proto = -1
                        break
                elif proto == 51:
                    q += (np.int64(buf[q + 1]) + 2) * 4
                else:
                    q += (np.int64(buf[q + 1]) + 1) * 8
                proto = nxt
            if bad:
                cols[STATUS, i] = TRUNCATED_IP
                continue
            if proto >= 0:
                cols[PROTO, i] = proto
        else:
            continue  # non-IP ethertype: routed by ETHERTYPE and L3_OFF
        cols[L4_OFF, i] = q
        cap_end = ip_end if ip_end < end else end
        if proto == 6:
            if q + 20 > cap_end:
                cols[STATUS, i] = TRUNCATED_L4
                continue
            cols[SPORT, i] = _be16(buf, q)
            cols[DPORT, i] = _be16(buf, q + 2)
            cols[SEQ, i] = _be32(buf, q + 4)
            cols[ACK, i] = _be32(buf, q + 8)
            doff = (np.int64(buf[q + 12]) >> 4) * 4
            cols[TCP_FLAGS, i] = ((np.int64(buf[q + 12]) & 1) << 8) | np.int64(buf[q + 13])
            cols[WIN, i] = _be16(buf, q + 14)
            if doff < 20 or q + doff > ip_end:
                cols[STATUS, i] = BAD_TCP_OFFSET
                continue
            po = q + doff
        elif proto == 17 or proto == 136:
            if q + 8 > cap_end:
                cols[STATUS, i] = TRUNCATED_L4
                continue
            cols[SPORT, i] = _be16(buf, q)
            cols[DPORT, i] = _be16(buf, q + 2)
            ulen = _be16(buf, q + 4)
            po = q + 8
            if ulen >= 8 and q + ulen < ip_end:
                ip_end = q + ulen  # trailing bytes beyond the UDP length are padding
            elif ulen < 8 and ulen != 0:
                cols[STATUS, i] = BAD_UDP_LENGTH
        elif proto == 1 or proto == 58:
            if q + 4 > cap_end:
                cols[STATUS, i] = TRUNCATED_L4
                continue
            cols[SPORT, i] = buf[q]  # ICMP type and code stand in the port columns (as Zeek)
            cols[DPORT, i] = buf[q + 1]
            po = q + 4
        elif proto == 132:
            if q + 12 > cap_end:
                cols[STATUS, i] = TRUNCATED_L4
                continue
            cols[SPORT, i] = _be16(buf, q)
            cols[DPORT, i] = _be16(buf, q + 2)
            po = q + 12
        else:
            po = q
        cap_end = ip_end if ip_end < end else end
        seg = ip_end - po
        cols[PAY_OFF, i] = po
        cols[SEG_LEN, i] = seg if seg > 0 else 0
        got = cap_end - po
        cols[PAY_LEN, i] = got if got > 0 else 0
        if ip_end > end and cols[STATUS, i] == 0:
            cols[STATUS, i] = SNAPLEN_CUT


def decode_l2l4(buf: np.ndarray, off: np.ndarray, caplen: np.ndarray, linktype: np.ndarray):
    """Decode a chunk's packets; returns (cols, addrs) as described in the module doc."""
    n = off.shape[0]
    cols = np.empty((NCOLS, n), dtype=np.int64)
    addrs = np.empty((4, n), dtype=np.uint64)
    _decode_l2l4(buf, off, caplen, linktype.astype(np.int64), cols, addrs)
    return cols, addrs
