"""Frames on the wire, assembled in bulk: the simulator's packet writer.

A simulated day is millions of packets, so nothing here builds a Python object per packet.
Traffic is described as columns (:class:`Packets`): timestamp, kind, endpoints, ports, TCP
sequence numbers and flags, and a slice of one shared payload buffer. A numba kernel writes
every frame — Ethernet, IPv4 with its checksum, TCP/UDP with their checksums — and its pcap
record header straight into one output buffer, in timestamp order.

Hosts are (MAC, IPv4) pairs in a :class:`HostTable`; a spoofed sender is simply another
entry (the attacker's MAC with the victim's IP). Non-IP frames (PROFINET DCP, LLDP, GOOSE,
ARP) are given whole, as ``RAW`` packets.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

import numpy as np

from otsight._jit import njit

RAW, TCP, UDP = 0, 1, 2
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

PCAP_MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535

# header sizes: Ethernet 14, IPv4 20 (no options), TCP 20 (no options), UDP 8
_ETH, _IP, _TCP, _UDP = 14, 20, 20, 8


class HostTable:
    """Endpoints by index: MAC and IPv4 address (0 for hosts without one)."""

    def __init__(self) -> None:
        self._macs: list[bytes] = []
        self._ips: list[int] = []
        self._index: dict[tuple[bytes, int], int] = {}

    def add(self, mac: str | bytes, ip: str | int | None = None) -> int:
        m = mac if isinstance(mac, bytes) else bytes.fromhex(mac.replace(":", "").replace("-", ""))
        if len(m) != 6:
            raise ValueError(f"not a MAC address: {mac!r}")
        a = int(ipaddress.IPv4Address(ip)) if ip is not None else 0
        key = (m, a)
        if key not in self._index:
            self._index[key] = len(self._macs)
            self._macs.append(m)
            self._ips.append(a)
        return self._index[key]

    def mac(self, host: int) -> bytes:
        return self._macs[host]

    def ip(self, host: int) -> str:
        return str(ipaddress.IPv4Address(self._ips[host]))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        macs = np.frombuffer(b"".join(self._macs) or b"\0" * 6, np.uint8).reshape(-1, 6)
        return macs.copy(), np.array(self._ips or [0], np.int64)


class PayloadBuffer:
    """One growing byte buffer that every packet's payload is a slice of."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self.size = 0

    def add(self, data: bytes) -> tuple[int, int]:
        """Append one payload; returns (offset, length)."""
        off = self.size
        self._parts.append(np.frombuffer(data, np.uint8))
        self.size += len(data)
        return off, len(data)

    def add_many(self, data: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        lens = np.fromiter((len(d) for d in data), np.int64, len(data))
        return self.add_rows_flat(np.frombuffer(b"".join(data), np.uint8), lens)

    def add_matrix(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append equal-length payloads given as a uint8 matrix (one row per payload)."""
        n, width = rows.shape
        return self.add_rows_flat(rows.reshape(-1), np.full(n, width, np.int64))

    def add_rows_flat(self, flat: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        offs = np.empty(lens.shape[0], np.int64)
        if lens.shape[0]:
            offs[0] = self.size
            np.cumsum(lens[:-1], out=offs[1:])
            offs[1:] += self.size
        self._parts.append(np.ascontiguousarray(flat, np.uint8))
        self.size += int(lens.sum())
        return offs, lens

    def array(self) -> np.ndarray:
        if not self._parts:
            return np.zeros(1, np.uint8)
        return np.concatenate(self._parts)


COLUMNS = (
    "ts",
    "kind",
    "src",
    "dst",
    "sport",
    "dport",
    "seq",
    "ack",
    "flags",
    "window",
    "ip_id",
    "ttl",
    "pay_off",
    "pay_len",
    "label",
)


@dataclass
class Packets:
    """Columns of packets (any order); ``label`` is 0 for benign traffic, else the attack
    instance number."""

    cols: dict[str, list[np.ndarray]] = field(default_factory=lambda: {c: [] for c in COLUMNS})

    def add(self, **columns: np.ndarray | int) -> None:
        sizes = [np.shape(v)[0] for v in columns.values() if np.ndim(v) > 0]
        n = min(sizes) if sizes else 1
        if sizes and max(sizes) != n:
            raise ValueError(f"packet columns of different lengths: {sorted(set(sizes))}")
        if n == 0:
            return
        for c in COLUMNS:
            v = columns.get(c, 0 if c != "ttl" else 64)
            self.cols[c].append(np.broadcast_to(np.asarray(v, np.int64), (n,)).copy())

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            c: (np.concatenate(v) if v else np.zeros(0, np.int64)) for c, v in self.cols.items()
        }


@njit(cache=True, nogil=True)
def _sum16(b, p, n, acc):
    i = 0
    while i + 1 < n:
        acc += (np.int64(b[p + i]) << 8) | np.int64(b[p + i + 1])
        i += 2
    if i < n:
        acc += np.int64(b[p + i]) << 8
    return acc


@njit(cache=True, inline="always")
def _fold(acc):
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return (~acc) & 0xFFFF


@njit(cache=True, inline="always")
def _put16(o, p, v):
    o[p] = (v >> 8) & 0xFF
    o[p + 1] = v & 0xFF


@njit(cache=True, inline="always")
def _put32(o, p, v):
    o[p] = (v >> 24) & 0xFF
    o[p + 1] = (v >> 16) & 0xFF
    o[p + 2] = (v >> 8) & 0xFF
    o[p + 3] = v & 0xFF


@njit(cache=True, inline="always")
def _put32le(o, p, v):
    o[p] = v & 0xFF
    o[p + 1] = (v >> 8) & 0xFF
    o[p + 2] = (v >> 16) & 0xFF
    o[p + 3] = (v >> 24) & 0xFF


@njit(cache=True, nogil=True)
def _frame_sizes(order, kind, pay_len):
    n = order.shape[0]
    sizes = np.empty(n, np.int64)
    for r in range(n):
        i = order[r]
        k = kind[i]
        if k == TCP:
            sizes[r] = _ETH + _IP + _TCP + pay_len[i]
        elif k == UDP:
            sizes[r] = _ETH + _IP + _UDP + pay_len[i]
        else:
            sizes[r] = pay_len[i]
    return sizes


@njit(cache=True, nogil=True)
def _write_frames(order, starts, sizes, cols, macs, ips, payload, out):
    """Write pcap record headers and frames of packets ``order`` at ``starts`` in ``out``."""
    for r in range(order.shape[0]):
        i = order[r]
        ts, kind, src, dst = cols[0, i], cols[1, i], cols[2, i], cols[3, i]
        po, pl = cols[12, i], cols[13, i]
        p = starts[r]
        size = sizes[r]
        _put32le(out, p, ts // 1_000_000_000)
        _put32le(out, p + 4, ts % 1_000_000_000)
        _put32le(out, p + 8, size)
        _put32le(out, p + 12, size)
        f = p + 16
        if kind == RAW:
            for k in range(pl):
                out[f + k] = payload[po + k]
            continue
        for k in range(6):
            out[f + k] = macs[dst, k]
            out[f + 6 + k] = macs[src, k]
        out[f + 12] = 0x08
        out[f + 13] = 0x00
        q = f + _ETH
        l4 = _TCP if kind == TCP else _UDP
        total = _IP + l4 + pl
        out[q] = 0x45
        out[q + 1] = 0
        _put16(out, q + 2, total)
        _put16(out, q + 4, cols[10, i] & 0xFFFF)
        out[q + 6] = 0x40  # don't fragment
        out[q + 7] = 0
        out[q + 8] = cols[11, i] & 0xFF
        out[q + 9] = 6 if kind == TCP else 17
        out[q + 10] = 0
        out[q + 11] = 0
        _put32(out, q + 12, ips[src])
        _put32(out, q + 16, ips[dst])
        _put16(out, q + 10, _fold(_sum16(out, q, _IP, 0)))
        t = q + _IP
        _put16(out, t, cols[4, i])
        _put16(out, t + 2, cols[5, i])
        if kind == TCP:
            _put32(out, t + 4, cols[6, i] & 0xFFFFFFFF)
            _put32(out, t + 8, cols[7, i] & 0xFFFFFFFF)
            out[t + 12] = 0x50
            out[t + 13] = cols[8, i] & 0xFF
            _put16(out, t + 14, cols[9, i] & 0xFFFF)
            out[t + 16] = 0
            out[t + 17] = 0
            out[t + 18] = 0
            out[t + 19] = 0
        else:
            _put16(out, t + 4, _UDP + pl)
            out[t + 6] = 0
            out[t + 7] = 0
        d = t + l4
        for k in range(pl):
            out[d + k] = payload[po + k]
        # pseudo header + segment
        acc = (ips[src] >> 16) + (ips[src] & 0xFFFF) + (ips[dst] >> 16) + (ips[dst] & 0xFFFF)
        acc += (6 if kind == TCP else 17) + l4 + pl
        acc = _sum16(out, t, l4 + pl, acc)
        c = _fold(acc)
        if kind == UDP and c == 0:
            c = 0xFFFF
        _put16(out, t + (16 if kind == TCP else 6), c)


def pcap_header() -> bytes:
    return struct.pack("<IHHiIII", PCAP_MAGIC_NS, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)


def assemble(
    packets: dict[str, np.ndarray], hosts: HostTable, payload: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pcap file image of ``packets`` in timestamp order.

    Returns (file bytes as uint8, per-frame label in file order, per-frame timestamp).
    Packets with equal timestamps keep the order in which they were added.
    """
    ts = packets["ts"]
    order = np.argsort(ts, kind="stable")
    sizes = _frame_sizes(order, packets["kind"], packets["pay_len"])
    rec = sizes + 16
    starts = np.empty(order.shape[0], np.int64)
    head = pcap_header()
    if order.shape[0]:
        starts[0] = len(head)
        np.cumsum(rec[:-1], out=starts[1:])
        starts[1:] += len(head)
    total = len(head) + int(rec.sum())
    out = np.empty(total, np.uint8)
    out[: len(head)] = np.frombuffer(head, np.uint8)
    cols = np.stack([packets[c] for c in COLUMNS])
    macs, ips = hosts.arrays()
    _write_frames(order, starts, sizes, cols, macs, ips, payload, out)
    return out, packets["label"][order], ts[order]
