#!/usr/bin/env python3
"""Build a large classic pcap by replicating real ICS captures (benchmark input).

Method
------
1. *Template.*  The source captures (by default every Modbus/TCP, EtherNet/IP and
   S7comm capture in the corpus, i.e. ``CORPUS/{modbus,enip,s7comm}/*``; pcap or
   pcapng, detected by magic, not by file name) are read once.  Only frames on an
   Ethernet interface (link type 1) are kept; byte-identical source files are
   used once.  Every source's timestamps are made monotonic (running maximum) and
   idle gaps longer than ``--max-gap`` are shortened to ``--max-gap`` (some corpus
   files span years because of bogus clocks); the sources are then laid end to end
   (``--gap`` apart).  The result is one ``bytes`` blob holding the pcap records
   (16-byte little-endian record header + frame) plus per-packet numpy arrays:
   record offset, relative timestamp (µs), offsets of the IPv4 source/destination
   address, IPv4 header checksum and TCP/UDP checksum, and the Ethernet MACs.
   802.1Q / 802.1ad / QinQ tags are skipped to find the IP header.

2. *Copies.*  Copy ``k`` is the template with
   - timestamps shifted so copy ``k`` starts ``--gap`` after copy ``k-1`` ends
     (the output is globally monotonic);
   - every unicast IPv4 address (first octet 1..223, loopback included) moved to a new /16:
     the distinct /16 prefixes of the template are numbered ``j = 0..P-1`` and copy
     ``k`` maps prefix ``j`` to block ``k*P + j`` of a fixed list of ~56 800 /16
     blocks (10.0/16 … 10.255/16 first, then every other unicast /16).  The last two
     octets are kept, so a copy's hosts stay distinct, and no two copies share a
     host, hence copies are new hosts and new flows, never retransmissions.  When
     more than ~56 800/P copies are needed the block list wraps and the third octet
     is additionally XOR-ed with the wrap count (distinct for 256 wraps, i.e. far
     beyond 10 M packets for any realistic template).  Broadcast, multicast
     and 0.0.0.0 are kept (IPv6 addresses are not rewritten);
   - the IPv4 header checksum and the TCP/UDP checksum (pseudo-header covers the
     addresses) updated incrementally per RFC 1624 eqn. 3 (HC' = ~(~HC + ~m + m')).
     Incremental update preserves the validity of the original checksum (a frame
     captured with a bad/offloaded checksum stays exactly as "bad"); UDP checksum 0
     (not computed) is left 0, and a computed 0 becomes 0xFFFF; non-first fragments
     and truncated frames whose checksum field was not captured are not touched;
   - unless ``--keep-macs``: the NIC-specific part (last 3 bytes) of unicast MACs
     XOR-ed with the copy number (the OUI, used for vendor identification, is kept).
   Non-IPv4 frames are otherwise copied unchanged (embedded addresses in ARP,
   ICMP errors or application payloads are not rewritten).

   Each copy is produced by ``numpy`` fancy-index patching of one ``uint8`` copy of
   the template blob and written with a single ``write``; the last copy is cut to
   give exactly ``--packets`` records.

Output: classic pcap, little-endian, microsecond timestamps, link type 1
(Ethernet).  Only the standard library and numpy are used.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

LINKTYPE_ETHERNET = 1
DEFAULT_START_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z, keeps output deterministic
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")


# --------------------------------------------------------------------------- readers


@dataclass
class Frame:
    ts_us: int
    orig_len: int
    data: bytes


def _read_pcap(buf: bytes, path: str) -> Iterator[Frame]:
    magic = buf[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:  # pragma: no cover - guarded by caller
        raise ValueError(f"{path}: not a pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(endian + "I", buf, 20)[0] & 0x0FFFFFFF
    if linktype != LINKTYPE_ETHERNET:
        print(f"  skip {path}: link type {linktype} is not Ethernet", file=sys.stderr)
        return
    rec = struct.Struct(endian + "IIII")
    off, n = 24, len(buf)
    while off + 16 <= n:
        sec, frac, caplen, origlen = rec.unpack_from(buf, off)
        off += 16
        if off + caplen > n:
            print(f"  {path}: truncated last record ignored", file=sys.stderr)
            break
        ts = sec * 1_000_000 + (frac // 1000 if nano else frac)
        yield Frame(ts, origlen, buf[off : off + caplen])
        off += caplen


def _units_to_us(ts: int, units_per_s: int) -> int:
    if units_per_s == 1_000_000:
        return ts
    return ts * 1_000_000 // units_per_s


def _read_pcapng(buf: bytes, path: str) -> Iterator[Frame]:
    off, n = 0, len(buf)
    endian = "<"
    ifaces: list[tuple[int, int, int, int]] = []  # linktype, snaplen, units/s, offset_s
    last_ts = 0
    skipped_iface_warned = False
    while off + 12 <= n:
        btype = struct.unpack_from(endian + "I", buf, off)[0]
        if btype == 0x0A0D0D0A:  # section header: (re)determine byte order
            bom = buf[off + 8 : off + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        blen = struct.unpack_from(endian + "I", buf, off + 4)[0]
        if blen < 12 or off + blen > n:
            print(f"  {path}: bad/truncated block at {off}, stopping", file=sys.stderr)
            break
        body = off + 8
        if btype == 1:  # interface description
            lt, _res, snap = struct.unpack_from(endian + "HHI", buf, body)
            units, tsoff = 1_000_000, 0
            o = body + 8
            end = off + blen - 4
            while o + 4 <= end:
                code, olen = struct.unpack_from(endian + "HH", buf, o)
                if code == 0:
                    break
                val = buf[o + 4 : o + 4 + olen]
                if code == 9 and olen >= 1:
                    r = val[0]
                    units = 2 ** (r & 0x7F) if r & 0x80 else 10**r
                elif code == 14 and olen >= 8:
                    tsoff = struct.unpack_from(endian + "q", val)[0]
                o += 4 + ((olen + 3) & ~3)
            ifaces.append((lt, snap, units, tsoff))
        elif btype in (6, 2):  # enhanced packet / obsolete packet
            if btype == 6:
                iid, hi, lo, caplen, origlen = struct.unpack_from(endian + "IIIII", buf, body)
            else:
                iid, _drops, hi, lo, caplen, origlen = struct.unpack_from(
                    endian + "HHIIII", buf, body
                )
            data_off = body + 20
            lt, _snap, units, tsoff = ifaces[iid] if iid < len(ifaces) else (1, 0, 10**6, 0)
            ts = _units_to_us((hi << 32) | lo, units) + tsoff * 1_000_000
            last_ts = ts
            if lt == LINKTYPE_ETHERNET:
                yield Frame(ts, origlen, buf[data_off : data_off + caplen])
            elif not skipped_iface_warned:
                print(f"  {path}: frames on non-Ethernet interface skipped", file=sys.stderr)
                skipped_iface_warned = True
        elif btype == 3:  # simple packet: no timestamp, interface 0
            origlen = struct.unpack_from(endian + "I", buf, body)[0]
            lt, snap, _u, _o = ifaces[0] if ifaces else (1, 0, 10**6, 0)
            caplen = min(origlen, snap) if snap else origlen
            caplen = min(caplen, blen - 16)
            if lt == LINKTYPE_ETHERNET:
                yield Frame(last_ts, origlen, buf[body + 4 : body + 4 + caplen])
        off += blen


def read_capture(path: str) -> list[Frame]:
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 24:
        return []
    if buf[:4] == b"\x0a\x0d\x0d\x0a":
        return list(_read_pcapng(buf, path))
    if buf[:4] in PCAP_MAGICS:
        return list(_read_pcap(buf, path))
    print(f"  skip {path}: unknown file format", file=sys.stderr)
    return []


# --------------------------------------------------------------------------- template


def _rewritable(first_octet: int) -> bool:
    # loopback is rewritten too: corpus Modbus captures taken on `lo` must not repeat
    return 1 <= first_octet <= 223


@dataclass
class Template:
    blob: np.ndarray  # uint8: concatenated pcap records
    rec_off: np.ndarray  # int64 [n] start of each record in blob
    rec_end: np.ndarray  # int64 [n] end of each record
    ts_us: np.ndarray  # int64 [n] timestamp relative to template start
    duration_us: int
    # IPv4 address rewriting; one entry per (packet, address) pair that is rewritten
    addr_off: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # blob offset
    addr_prefix: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # j index
    addr_pkt: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # ip-pkt index
    # per IPv4 packet with >= 1 rewritten address
    ip_csum_off: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # -1: none
    l4_csum_off: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # -1: none
    l4_is_udp: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    n_prefixes: int = 0
    mac_off: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # unicast MACs


def build_template(paths: list[str], max_gap_us: int, gap_us: int) -> Template:
    parts: list[bytes] = []
    rec_off: list[int] = []
    ts_list: list[int] = []
    addr_off: list[int] = []
    addr_hi16: list[int] = []
    addr_pkt: list[int] = []
    ip_csum: list[int] = []
    l4_csum: list[int] = []
    l4_udp: list[bool] = []
    mac_off: list[int] = []
    pos = 0
    t_base = 0  # template-relative time at which the next source starts
    seen: set[str] = set()
    hdr = struct.Struct("<IIII")
    for path in paths:
        digest = hashlib.sha1(open(path, "rb").read()).hexdigest()
        if digest in seen:
            print(f"  skip {path}: duplicate content", file=sys.stderr)
            continue
        seen.add(digest)
        frames = read_capture(path)
        if not frames:
            continue
        prev_src: int | None = None
        t = t_base
        for fr in frames:
            if prev_src is not None:
                t += min(max(fr.ts_us - prev_src, 0), max_gap_us)
            prev_src = fr.ts_us if prev_src is None else max(prev_src, fr.ts_us)
            d = fr.data
            rec_off.append(pos)
            ts_list.append(t)
            parts.append(hdr.pack(0, 0, len(d), max(fr.orig_len, len(d))))
            base = pos + 16  # blob offset of the frame
            parts.append(d)
            pos += 16 + len(d)
            if len(d) < 14:
                continue
            for m in (0, 6):  # dst, src MAC; unicast only (group bit clear)
                if not d[m] & 1:
                    mac_off.append(base + m + 3)
            et = (d[12] << 8) | d[13]
            o = 14
            while et in VLAN_TPIDS and len(d) >= o + 4:
                et = (d[o + 2] << 8) | d[o + 3]
                o += 4
            if et != 0x0800 or len(d) < o + 20 or d[o] >> 4 != 4:
                continue
            ihl = (d[o] & 0x0F) * 4
            if ihl < 20 or len(d) < o + ihl:
                continue
            src_first, dst_first = d[o + 12], d[o + 16]
            rw = [(o + 12, src_first), (o + 16, dst_first)]
            rw = [(ao, f) for ao, f in rw if _rewritable(f)]
            if not rw:
                continue
            pkt_idx = len(ip_csum)
            for ao, _f in rw:
                addr_off.append(base + ao)
                addr_hi16.append((d[ao] << 8) | d[ao + 1])
                addr_pkt.append(pkt_idx)
            ip_csum.append(base + o + 10)
            proto = d[o + 9]
            frag = ((d[o + 6] << 8) | d[o + 7]) & 0x1FFF
            l4 = o + ihl
            co = -1
            if frag == 0:
                if proto == 6 and len(d) >= l4 + 18:
                    co = l4 + 16
                elif proto == 17 and len(d) >= l4 + 8 and (d[l4 + 6] or d[l4 + 7]):
                    co = l4 + 6
            l4_csum.append(base + co if co >= 0 else -1)
            l4_udp.append(proto == 17)
        t_base = t + gap_us
    if not rec_off:
        raise SystemExit("no usable Ethernet frames in the sources")
    blob = np.frombuffer(b"".join(parts), dtype=np.uint8)
    offs = np.asarray(rec_off, dtype=np.int64)
    ends = np.append(offs[1:], len(blob)).astype(np.int64)
    hi16 = np.asarray(addr_hi16, dtype=np.int64)
    prefixes, inverse = np.unique(hi16, return_inverse=True)
    return Template(
        blob=blob,
        rec_off=offs,
        rec_end=ends,
        ts_us=np.asarray(ts_list, dtype=np.int64),
        duration_us=ts_list[-1] - ts_list[0],
        addr_off=np.asarray(addr_off, dtype=np.int64),
        addr_prefix=inverse.astype(np.int64).reshape(-1),
        addr_pkt=np.asarray(addr_pkt, dtype=np.int64),
        ip_csum_off=np.asarray(ip_csum, dtype=np.int64),
        l4_csum_off=np.asarray(l4_csum, dtype=np.int64),
        l4_is_udp=np.asarray(l4_udp, dtype=bool),
        n_prefixes=len(prefixes),
        mac_off=np.asarray(mac_off, dtype=np.int64),
    )


def block_list() -> np.ndarray:
    """Unicast /16 blocks as 16-bit values: 10.x first, then every other allowed /16."""
    firsts = [10] + [f for f in range(1, 224) if f not in (10, 127)]
    return np.asarray([(f << 8) | s for f in firsts for s in range(256)], dtype=np.int64)


# --------------------------------------------------------------------------- patching


def _fold(x: np.ndarray) -> np.ndarray:
    x = (x & 0xFFFF) + (x >> 16)
    x = (x & 0xFFFF) + (x >> 16)
    return (x & 0xFFFF) + (x >> 16)


def _read16(buf: np.ndarray, off: np.ndarray) -> np.ndarray:
    return (buf[off].astype(np.int64) << 8) | buf[off + 1]


def _write16(buf: np.ndarray, off: np.ndarray, val: np.ndarray) -> None:
    buf[off] = (val >> 8) & 0xFF
    buf[off + 1] = val & 0xFF


class Patcher:
    """Precomputed index arrays; ``emit(k)`` returns copy k as a uint8 array."""

    def __init__(self, tpl: Template, start_us: int, gap_us: int, rewrite_macs: bool) -> None:
        self.tpl = tpl
        self.blocks = block_list()
        self.period_us = tpl.duration_us + gap_us
        self.start_us = start_us
        self.rewrite_macs = rewrite_macs
        b = tpl.blob
        # timestamp byte offsets (sec: +0..3, usec: +4..7 of each record header)
        self.ts_idx = tpl.rec_off[:, None] + np.arange(8, dtype=np.int64)[None, :]
        # original address words (big-endian 16-bit): hi (octets 1-2), lo (octets 3-4)
        self.a_hi = _read16(b, tpl.addr_off)
        self.a_lo = _read16(b, tpl.addr_off + 2)
        self.ip_ck = _read16(b, tpl.ip_csum_off)
        has_l4 = tpl.l4_csum_off >= 0
        self.l4_sel = np.nonzero(has_l4)[0]
        self.l4_off = tpl.l4_csum_off[self.l4_sel]
        self.l4_ck = _read16(b, self.l4_off)
        self.l4_udp = tpl.l4_is_udp[self.l4_sel]
        self.n_ip = len(tpl.ip_csum_off)
        self.mac_idx = tpl.mac_off[:, None] + np.arange(3, dtype=np.int64)[None, :]
        self.mac_orig = b[self.mac_idx]

    def emit(self, k: int) -> np.ndarray:
        tpl = self.tpl
        out = tpl.blob.copy()
        # timestamps
        ts = tpl.ts_us + (self.start_us + k * self.period_us)
        hdr = np.empty((len(ts), 2), dtype="<u4")
        hdr[:, 0] = ts // 1_000_000
        hdr[:, 1] = ts % 1_000_000
        out[self.ts_idx] = hdr.view(np.uint8).reshape(-1, 8)
        # IPv4 addresses
        if self.n_ip:
            nb = len(self.blocks)
            block_id = k * tpl.n_prefixes + tpl.addr_prefix
            new_hi = self.blocks[block_id % nb]
            wrap = block_id // nb
            new_lo = self.a_lo ^ ((wrap & 0xFF) << 8)
            _write16(out, tpl.addr_off, new_hi)
            _write16(out, tpl.addr_off + 2, new_lo)
            # RFC 1624: delta = sum(~m + m') over changed 16-bit words, per packet
            per_addr = (~self.a_hi & 0xFFFF) + new_hi + (~self.a_lo & 0xFFFF) + new_lo
            delta = np.bincount(tpl.addr_pkt, weights=per_addr, minlength=self.n_ip)
            delta = _fold(delta.astype(np.int64))
            ip_new = ~_fold((~self.ip_ck & 0xFFFF) + delta) & 0xFFFF
            _write16(out, tpl.ip_csum_off, ip_new)
            if len(self.l4_sel):
                l4_new = ~_fold((~self.l4_ck & 0xFFFF) + delta[self.l4_sel]) & 0xFFFF
                l4_new = np.where(self.l4_udp & (l4_new == 0), 0xFFFF, l4_new)
                _write16(out, self.l4_off, l4_new)
        if self.rewrite_macs and len(self.mac_idx):
            kk = np.array([(k >> 16) & 0xFF, (k >> 8) & 0xFF, k & 0xFF], dtype=np.uint8)
            out[self.mac_idx] = self.mac_orig ^ kk[None, :]
        return out


# --------------------------------------------------------------------------- main


def default_sources(corpus: str) -> list[str]:
    files: list[str] = []
    for sub in ("modbus", "enip", "s7comm"):
        files += sorted(glob.glob(os.path.join(corpus, sub, "*.pcap")))
        files += sorted(glob.glob(os.path.join(corpus, sub, "*.pcapng")))
    return files


def expand_sources(specs: list[str]) -> list[str]:
    out: list[str] = []
    for s in specs:
        hits = sorted(glob.glob(s)) if any(c in s for c in "*?[") else [s]
        if not hits:
            print(f"  warning: {s} matched nothing", file=sys.stderr)
        out += [h for h in hits if os.path.isfile(h)]
    return out


def main(argv: list[str] | None = None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, required=True, help="exact number of packets")
    ap.add_argument("--out", required=True, help="output pcap path")
    ap.add_argument("--sources", nargs="+", default=None, help="source captures or globs")
    ap.add_argument(
        "--corpus",
        default=os.path.normpath(os.path.join(here, "..", "..", "shared", "corpus")),
        help="corpus directory for the default sources (default: ../shared/corpus)",
    )
    ap.add_argument("--max-gap", type=float, default=1.0, help="cap idle gaps (s), default 1")
    ap.add_argument("--gap", type=float, default=0.001, help="gap between copies (s)")
    ap.add_argument("--start-epoch", type=float, default=DEFAULT_START_EPOCH)
    ap.add_argument("--keep-macs", action="store_true", help="do not rewrite MAC addresses")
    args = ap.parse_args(argv)
    if args.packets <= 0:
        ap.error("--packets must be positive")

    t0 = time.perf_counter()
    paths = expand_sources(args.sources) if args.sources else default_sources(args.corpus)
    if not paths:
        ap.error("no source captures found")
    gap_us = max(1, round(args.gap * 1e6))
    tpl = build_template(paths, round(args.max_gap * 1e6), gap_us)
    n_tpl = len(tpl.rec_off)
    n_copies = -(-args.packets // n_tpl)
    t1 = time.perf_counter()
    print(
        f"template: {n_tpl} packets, {len(tpl.blob)} bytes, {len(tpl.ip_csum_off)} IPv4 "
        f"packets, {tpl.n_prefixes} /16 prefixes, {tpl.duration_us / 1e6:.1f} s "
        f"from {len(paths)} files ({t1 - t0:.2f} s); {n_copies} copies",
        file=sys.stderr,
    )
    if n_copies * tpl.n_prefixes > len(block_list()) * 256:
        print("  warning: address blocks exhausted; later copies reuse hosts", file=sys.stderr)
    patcher = Patcher(tpl, round(args.start_epoch * 1e6), gap_us, not args.keep_macs)
    snaplen = max(262144, int((tpl.rec_end - tpl.rec_off).max()) - 16)
    written = 24
    remaining = args.packets
    with open(args.out, "wb", buffering=0) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))
        for k in range(n_copies):
            arr = patcher.emit(k)
            take = min(remaining, n_tpl)
            end = int(tpl.rec_end[take - 1])
            f.write(memoryview(arr[:end]))
            written += end
            remaining -= take
    dt = time.perf_counter() - t0
    print(
        f"wrote {args.packets} packets, {written} bytes to {args.out} in {dt:.2f} s "
        f"({args.packets / dt / 1e6:.2f} M packets/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
