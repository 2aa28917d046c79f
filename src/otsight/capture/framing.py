"""PDU framing for length-prefixed industrial protocols carried over TCP.

A framer answers one question about the bytes at the start of a PDU: how long is this PDU?
Reassembly (``_track``) uses the answer to cut each direction's byte stream into whole PDUs,
so that a PDU split over segments, and several PDUs in one segment, each come out once.

The framers are declared in ``FRAMERS`` (name, bytes needed before the length is known,
largest legal PDU); the numba functions below implement them. Detection looks at content,
with the well-known port only as a tie-breaker for weak signatures.
"""

from __future__ import annotations

import numpy as np

from otsight._jit import njit

NONE, MBAP, ENIP, TPKT, DNP3, IEC104, OPCUA, FINS_TCP = 0, 1, 2, 3, 4, 5, 6, 7

# The largest PDU reassembly can hold (one big carry slot of ``_track``).
_SLOT_BYTES = 65664

# id: (name, header bytes needed to know the length, largest legal PDU)
FRAMERS: dict[int, tuple[str, int, int]] = {
    MBAP: ("modbus", 6, 6 + 2048),
    ENIP: ("enip", 24, 65535 + 24),
    TPKT: ("tpkt", 4, 65535),
    DNP3: ("dnp3", 3, 292),
    IEC104: ("iec104", 2, 255),
    OPCUA: ("opcua", 8, _SLOT_BYTES),
    FINS_TCP: ("fins", 8, 8 + 65535),
}
FRAMER_NAMES = {NONE: ""} | {k: v[0] for k, v in FRAMERS.items()}

MBAP_MAX_LENGTH = 2048
NEED_MORE = -1
INVALID = -2

# OPC UA Connection Protocol / UA Secure Conversation message types (ASCII, 3 octets), the
# chunk type that follows them, and the smallest message: the 8-octet header itself.
# Chunks are bounded by the buffer sizes agreed in Hello/Acknowledge (commonly 8 KiB-64 KiB);
# a chunk larger than reassembly can hold is refused like a bad header.
_OPCUA_TYPES = (
    (0x48, 0x45, 0x4C),  # HEL
    (0x41, 0x43, 0x4B),  # ACK
    (0x45, 0x52, 0x52),  # ERR
    (0x52, 0x48, 0x45),  # RHE
    (0x4F, 0x50, 0x4E),  # OPN
    (0x4D, 0x53, 0x47),  # MSG
    (0x43, 0x4C, 0x4F),  # CLO
)
OPCUA_MAX_LENGTH = _SLOT_BYTES
# FINS/TCP: "FINS", a big-endian length of what follows it (command, error code, data).
FINS_MAGIC = (0x46, 0x49, 0x4E, 0x53)
FINS_MAX_LENGTH = 65535

_ENIP_COMMANDS = (
    0x0000,
    0x0001,
    0x0004,
    0x0063,
    0x0064,
    0x0065,
    0x0066,
    0x006F,
    0x0070,
    0x0072,
    0x0073,
)


@njit(cache=True, inline="always")
def _be16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(cache=True, inline="always")
def _le16(b, p):
    return np.int64(b[p]) | (np.int64(b[p + 1]) << 8)


@njit(cache=True, inline="always")
def _le32(b, p):
    return (
        np.int64(b[p])
        | (np.int64(b[p + 1]) << 8)
        | (np.int64(b[p + 2]) << 16)
        | (np.int64(b[p + 3]) << 24)
    )


@njit(cache=True, inline="always")
def _be32(b, p):
    return (
        (np.int64(b[p]) << 24)
        | (np.int64(b[p + 1]) << 16)
        | (np.int64(b[p + 2]) << 8)
        | np.int64(b[p + 3])
    )


@njit(cache=True, inline="always")
def _opcua_length(b, p):
    """Message size of an OPC UA header at ``b[p]`` (8 octets), or INVALID."""
    known = False
    for t in _OPCUA_TYPES:
        if b[p] == t[0] and b[p + 1] == t[1] and b[p + 2] == t[2]:
            known = True
    c = b[p + 3]
    if not known or not (c == 0x46 or c == 0x43 or c == 0x41):  # F, C, A
        return INVALID
    n = _le32(b, p + 4)
    if n < 8 or n > OPCUA_MAX_LENGTH:
        return INVALID
    return n


@njit(cache=True, inline="always")
def _fins_length(b, p):
    """Total length of a FINS/TCP frame at ``b[p]`` (8 octets read), or INVALID."""
    for k in range(4):
        if b[p + k] != FINS_MAGIC[k]:
            return INVALID
    n = _be32(b, p + 4)
    if n < 8 or n > FINS_MAX_LENGTH:  # at least the command and error code
        return INVALID
    return 8 + n


@njit(cache=True, inline="always")
def header_bytes(framer):
    if framer == MBAP:
        return 6
    if framer == ENIP:
        return 24  # the whole header: its command and options fields validate it
    if framer == TPKT:
        return 4
    if framer == DNP3:
        return 3
    if framer == IEC104:
        return 2
    if framer == OPCUA or framer == FINS_TCP:
        return 8
    return 1


@njit(cache=True, inline="always")
def _enip_header_ok(b, p):
    cmd = _le16(b, p)
    opts = (
        np.int64(b[p + 20])
        | (np.int64(b[p + 21]) << 8)
        | (np.int64(b[p + 22]) << 16)
        | (np.int64(b[p + 23]) << 24)
    )
    if opts != 0:
        return False
    for c in _ENIP_COMMANDS:
        if cmd == c:
            return True
    return False


@njit(cache=True)
def pdu_length(framer, b, p, avail):
    """Total length of the PDU starting at ``b[p]``, NEED_MORE, or INVALID."""
    if avail < header_bytes(framer):
        return NEED_MORE
    if framer == MBAP:
        if _be16(b, p + 2) != 0:
            return INVALID
        n = _be16(b, p + 4)
        # The standard caps a PDU at 253 bytes, but Schneider's UMAS (FC 90) and others send
        # longer ones; Wireshark accepts them, and so do we, within a sane bound.
        if n < 2 or n > MBAP_MAX_LENGTH:
            return INVALID
        return 6 + n
    if framer == ENIP:
        if not _enip_header_ok(b, p):
            return INVALID
        return 24 + _le16(b, p + 2)
    if framer == TPKT:
        if b[p] != 3 or b[p + 1] != 0:
            return INVALID
        n = _be16(b, p + 2)
        if n < 7:
            return INVALID
        return n
    if framer == DNP3:
        if b[p] != 0x05 or b[p + 1] != 0x64:
            return INVALID
        n = np.int64(b[p + 2])
        if n < 5:
            return INVALID
        user = n - 5
        return 10 + user + 2 * ((user + 15) // 16)
    if framer == IEC104:
        if b[p] != 0x68:
            return INVALID
        n = np.int64(b[p + 1])
        if n < 4:
            return INVALID
        return 2 + n
    if framer == OPCUA:
        return _opcua_length(b, p)
    if framer == FINS_TCP:
        return _fins_length(b, p)
    return INVALID


@njit(cache=True)
def _dnp3_crc(b, p, n):
    crc = 0
    for k in range(n):
        crc ^= np.int64(b[p + k])
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0xA6BC
            else:
                crc >>= 1
    return (~crc) & 0xFFFF


@njit(cache=True)
def detect(b, p, n, sport, dport):
    """Which framer fits the first payload of a TCP flow (NONE when none does)."""
    if n >= 10 and b[p] == 0x05 and b[p + 1] == 0x64 and b[p + 2] >= 5:
        if _dnp3_crc(b, p, 8) == _le16(b, p + 8):
            return DNP3
        if sport == 20000 or dport == 20000:
            return DNP3  # registered port as tie-breaker: the bad CRC becomes a weird row
    if n >= 7 and b[p] == 3 and b[p + 1] == 0:
        tl = _be16(b, p + 2)
        li = np.int64(b[p + 4])
        code = np.int64(b[p + 5]) & 0xF0
        if (
            tl >= 7
            and li + 5 <= tl
            and (
                code == 0xE0
                or code == 0xD0
                or code == 0xF0
                or code == 0x80
                or code == 0xC0
                or code == 0x70
            )
        ):
            # A connection request/confirm's variable part holds ISO 8073 parameters (codes
            # >= 0x80: TPDU size, TSAPs). RDP reuses X.224 but puts its cookie or negotiation
            # (0x01/0x02) there and then switches to TLS: not ISO-on-TCP, so not framed.
            cr_cc = code == 0xE0 or code == 0xD0
            if cr_cc and li > 6 and n > 11 and (np.int64(b[p + 11]) & 0x80) == 0:
                return NONE
            return TPKT
    if n >= 24:
        cmd = _le16(b, p)
        ln = _le16(b, p + 2)
        opts = (
            np.int64(b[p + 20])
            | (np.int64(b[p + 21]) << 8)
            | (np.int64(b[p + 22]) << 16)
            | (np.int64(b[p + 23]) << 24)
        )
        known = False
        for c in _ENIP_COMMANDS:
            if cmd == c:
                known = True
        if known and opts == 0 and 24 + ln <= n + 65535:
            if (24 + ln == n) or sport == 44818 or dport == 44818:
                return ENIP
    if n >= 8 and _be16(b, p + 2) == 0:
        ln = _be16(b, p + 4)
        fc = np.int64(b[p + 7]) & 0x7F
        if 2 <= ln <= MBAP_MAX_LENGTH:
            if sport == 502 or dport == 502:
                return MBAP  # any function code: scanners and fuzzers send 0 and others
            if 1 <= fc <= 127 and 6 + ln == n:
                return MBAP
    if n >= 6 and b[p] == 0x68 and b[p + 1] >= 4 and 2 + np.int64(b[p + 1]) <= n:
        ln = 2 + np.int64(b[p + 1])
        ctl = np.int64(b[p + 2])
        ok = False
        if (ctl & 1) == 0:  # I-frame: plausible type id and cause of transmission
            ok = ln >= 12 and 1 <= b[p + 6] <= 127 and 1 <= (b[p + 8] & 0x3F) <= 47
        elif (ctl & 3) == 1:  # S-frame
            ok = ln == 6 and b[p + 3] == 0
        else:  # U-frame: exactly one function bit, the rest zero
            uf = ctl >> 2
            ok = (
                ln == 6
                and (uf == 1 or uf == 2 or uf == 4 or uf == 8 or uf == 16 or uf == 32)
                and b[p + 3] == 0
                and b[p + 4] == 0
                and b[p + 5] == 0
            )
        if ok and (ln == n or b[p + ln] == 0x68):
            if sport == 2404 or dport == 2404 or ln == n:
                return IEC104
    # Four ASCII octets (message type and chunk type) and a sane size: OPC UA on any port.
    if n >= 8 and _opcua_length(b, p) != INVALID:
        return OPCUA
    if n >= 8 and _fins_length(b, p) != INVALID:
        return FINS_TCP
    return NONE
