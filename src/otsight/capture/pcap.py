"""Capture files: classic pcap and pcapng, plain or gzip-compressed, read in chunks.

The file is memory-mapped one window at a time; numba kernels (``_index``) index the
records of a window into arrays, and each :class:`Chunk` hands those arrays plus the window
to the decoders. Peak memory is one window plus one chunk of arrays, whatever the file size.

Damaged input never raises past the good part: a file that is not a capture raises
:class:`CaptureError` before anything is read; a record cut short or a corrupt header ends
reading with a :class:`CaptureIssue` naming the byte offset, after every complete record
before it has been delivered.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from otsight.capture import _index as K
from otsight.capture.linktypes import linktype_name

WINDOW_BYTES = 64 * 1024 * 1024
CHUNK_RECORDS = 1 << 18

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": (False, 1000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (True, 1000),
    b"\x4d\x3c\xb2\xa1": (False, 1),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (True, 1),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_GZIP_MAGIC = b"\x1f\x8b"


class CaptureError(ValueError):
    """The input cannot be read as a capture at all (exit code 2 at the CLI)."""


@dataclass(frozen=True)
class CaptureIssue:
    """Something wrong in a capture that did not stop the good part being processed."""

    path: str
    offset: int
    message: str
    severity: str = "warning"

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (byte offset {self.offset})"


@dataclass
class Chunk:
    """A run of consecutive packets and the window of bytes they live in."""

    buf: np.ndarray  # uint8 view of the mapped window
    offset: np.ndarray  # int64: packet data start within buf
    caplen: np.ndarray  # int64
    wirelen: np.ndarray  # int64
    ts: np.ndarray  # int64 nanoseconds since the epoch
    linktype: np.ndarray  # int32 per packet
    iface: np.ndarray  # int32 per packet
    first_frame: int  # 1-based frame number of the first packet

    @property
    def count(self) -> int:
        return int(self.offset.shape[0])

    @property
    def frames(self) -> np.ndarray:
        return np.arange(self.first_frame, self.first_frame + self.count, dtype=np.int64)

    def packet(self, i: int) -> bytes:
        """Bytes of packet ``i`` (for rare rich decoding and tests, not the hot path)."""
        start = int(self.offset[i])
        return bytes(self.buf[start : start + int(self.caplen[i])])


@dataclass
class _Interface:
    linktype: int
    snaplen: int
    mul: int = 1000  # default pcapng resolution: microseconds
    div: int = 1
    shift: int = 0
    offset_ns: int = 0


@dataclass
class CaptureReader:
    """Iterate over a capture file's packets in chunks.

    ``issues`` collects warnings as they are found; ``linktypes`` the link types seen.
    """

    path: Path
    window_bytes: int = WINDOW_BYTES
    chunk_records: int = CHUNK_RECORDS
    issues: list[CaptureIssue] = field(default_factory=list)
    packets: int = 0
    skipped_blocks: int = 0
    linktypes: set[int] = field(default_factory=set)
    compressed: bool = False
    format: str = ""

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._tmp: str | None = None

    # -- opening -------------------------------------------------------------------------
    def _open_plain(self) -> str:
        """Return the path of an uncompressed copy (the file itself unless gzip)."""
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(4)
        except OSError as exc:
            raise CaptureError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        if head[:2] != _GZIP_MAGIC:
            return str(self.path)
        self.compressed = True
        fd, tmp = tempfile.mkstemp(prefix="otsight-", suffix=".pcap")
        self._tmp = tmp
        with os.fdopen(fd, "wb") as out, open(self.path, "rb") as src:
            written, problem = _gunzip(src, out)
        if problem:
            self.issues.append(
                CaptureIssue(
                    str(self.path),
                    written,
                    f"gzip stream {problem}; the {written} bytes before it are read",
                )
            )
        return tmp

    def close(self) -> None:
        if self._tmp:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass
            self._tmp = None

    # -- iteration -----------------------------------------------------------------------
    def chunks(self) -> Iterator[Chunk]:
        plain = self._open_plain()
        try:
            size = os.path.getsize(plain)
            with open(plain, "rb") as fh:
                head = fh.read(24)
                if not head:
                    raise CaptureError(f"{self.path}: empty file, not a capture")
                if head[:4] in _PCAP_MAGICS:
                    yield from self._pcap(fh, size, head)
                elif head[:4] == _PCAPNG_SHB:
                    yield from self._pcapng(fh, size)
                else:
                    raise CaptureError(
                        f"{self.path}: not a capture file (starts with 0x{head[:4].hex()}; "
                        "expected pcap, pcapng or a gzip of either)"
                    )
        finally:
            self.close()

    def _issue(self, offset: int, message: str, severity: str = "warning") -> None:
        self.issues.append(CaptureIssue(str(self.path), offset, message, severity))

    def _arrays(self) -> tuple[np.ndarray, ...]:
        n = self.chunk_records
        return tuple(np.empty(n, dtype=np.int64) for _ in range(5))

    def _map(self, fh, size: int, pos: int, want: int) -> tuple[mmap.mmap, np.ndarray, int]:
        base = pos - pos % mmap.ALLOCATIONGRANULARITY
        length = min(max(want, self.window_bytes), size - base)
        # Not populated up front: a window is read only as far as its chunk goes (the next
        # chunk maps its own), and a fault maps 16 pages of a file at once.
        mm = mmap.mmap(fh.fileno(), length, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ, offset=base)
        return mm, np.frombuffer(mm, dtype=np.uint8), base

    @staticmethod
    def _unmap(mm: mmap.mmap) -> None:
        try:
            mm.close()
        except BufferError:
            pass  # a caller still holds a view; the mapping goes when it does

    def _emit(self, buf, arrays, n, linktype_of_iface) -> Chunk:
        # The chunk keeps the arrays the index kernel filled (no copy); the caller indexes the
        # next chunk into fresh ones.
        off, cap, wire, ts, iface = (a[:n] for a in arrays)
        if linktype_of_iface is None:
            lt = np.full(n, self._pcap_linktype, dtype=np.int32)
            iface32 = np.zeros(n, dtype=np.int32)
        else:
            iface32 = iface.astype(np.int32)
            lt = linktype_of_iface[iface32]
        chunk = Chunk(buf, off, cap, wire, ts, lt, iface32, self.packets + 1)
        self.packets += n
        return chunk

    def _pcap(self, fh, size: int, head: bytes) -> Iterator[Chunk]:
        self.format = "pcap"
        if len(head) < 24:
            raise CaptureError(f"{self.path}: pcap file header cut short ({len(head)} of 24 bytes)")
        big, frac = _PCAP_MAGICS[head[:4]]
        raw_lt = struct.unpack((">" if big else "<") + "I", head[20:24])[0]
        self._pcap_linktype = raw_lt & 0x0FFFFFFF  # upper bits may carry FCS length
        self.linktypes.add(self._pcap_linktype)
        arrays = self._arrays()
        pos = 24
        want = 0
        while pos < size:
            mm, buf, base = self._map(fh, size, pos, want)
            rel = pos - base
            n, rel_next, stop = K._index_pcap(buf, rel, big, frac, *arrays[:4])
            if n:
                yield self._emit(buf, arrays, n, None)
                arrays = self._arrays()
            progressed = rel_next != rel
            pos = base + rel_next
            at_eof = base + buf.shape[0] >= size
            del buf
            self._unmap(mm)
            if stop == K.STOP_FULL:
                # The next chunk starts a window of its own: continuing in this one would
                # end it at the window's end, a chunk of whatever records were left there.
                want = 0
                continue
            if stop == K.STOP_CORRUPT:
                self._issue(
                    pos, "corrupt pcap record header (impossible length); rest of file skipped"
                )
                return
            if at_eof:
                if pos < size:
                    self._issue(
                        pos,
                        f"capture cut mid-record: last {size - pos} bytes are an incomplete "
                        f"record after {self.packets} complete packets",
                    )
                return
            want = 0 if progressed else 2 * max(want, self.window_bytes)

    def _pcapng(self, fh, size: int) -> Iterator[Chunk]:
        self.format = "pcapng"
        arrays = self._arrays()
        counters = np.zeros(1, dtype=np.int64)
        ifaces: list[_Interface] = []
        big = False
        pos = 0
        want = 0
        iface_arrays = _iface_arrays(ifaces)
        while pos < size:
            mm, buf, base = self._map(fh, size, pos, want)
            rel = pos - base
            progressed = False
            while True:
                n, rel_next, stop = K._index_pcapng(
                    buf, rel, big, *iface_arrays[:5], len(ifaces), *arrays, counters
                )
                if n:
                    chunk = self._emit(buf, arrays, n, iface_arrays[5])
                    arrays = self._arrays()
                    _fill_spb_timestamps(chunk.ts, self._last_ts)
                    if chunk.count:
                        self._last_ts = int(chunk.ts[-1])
                    yield chunk
                progressed = progressed or rel_next != rel
                rel = rel_next
                if stop == K.STOP_META:
                    meta = self._meta_block(buf, rel, base, size, ifaces, big)
                    if meta is None:  # block does not fit in the window: remap
                        break
                    if meta == -1:
                        stop = K.STOP_CORRUPT
                        break
                    big, consumed = meta
                    iface_arrays = _iface_arrays(ifaces)
                    rel += consumed
                    progressed = True
                    continue
                break  # a full chunk (the next starts a window of its own), or the window's end
            pos = base + rel
            at_eof = base + buf.shape[0] >= size
            del buf
            self._unmap(mm)
            self.skipped_blocks = int(counters[0])
            if stop == K.STOP_FULL:
                want = 0
                continue
            if stop == K.STOP_CORRUPT:
                self._issue(
                    pos, "corrupt pcapng block (bad length or trailer); rest of file skipped"
                )
                return
            if stop == K.STOP_BAD_IFACE:
                self._issue(
                    pos,
                    "pcapng packet names an interface with no description block; "
                    "rest of file skipped",
                )
                return
            if at_eof:
                if pos < size:
                    self._issue(
                        pos,
                        f"capture cut mid-block: last {size - pos} bytes are an incomplete block "
                        f"after {self.packets} complete packets",
                    )
                return
            want = 0 if progressed else 2 * max(want, self.window_bytes)

    _last_ts: int = 0
    _pcap_linktype: int = 1

    def _meta_block(self, buf, rel, base, size, ifaces, big):
        """Parse an SHB or IDB at ``rel``. None = needs a bigger window, -1 = corrupt."""
        end = buf.shape[0]
        if rel + 12 > end:
            return None
        btype = bytes(buf[rel : rel + 4])
        if btype == _PCAPNG_SHB:
            magic = bytes(buf[rel + 8 : rel + 12])
            if magic == b"\x4d\x3c\x2b\x1a":
                big = False
            elif magic == b"\x1a\x2b\x3c\x4d":
                big = True
            else:
                self._issue(
                    base + rel, f"pcapng section header has bad byte-order magic 0x{magic.hex()}"
                )
                return -1
            ifaces.clear()  # a new section starts a new interface list
        e = ">" if big else "<"
        blen = struct.unpack(e + "I", bytes(buf[rel + 4 : rel + 8]))[0]
        if blen < 12 or blen % 4:
            return -1
        if rel + blen > end:
            return None if base + rel + blen <= size else -1
        if btype != _PCAPNG_SHB:
            body = bytes(buf[rel + 8 : rel + blen - 4])
            if len(body) < 8:
                return -1
            linktype, _, snaplen = struct.unpack(e + "HHI", body[:8])
            iface = _Interface(linktype=linktype, snaplen=snaplen)
            _parse_idb_options(body[8:], e, iface)
            ifaces.append(iface)
            self.linktypes.add(linktype)
        return big, blen


def _gunzip(src, out) -> tuple[int, str | None]:
    """Decompress every gzip member of ``src`` into ``out`` in blocks; keep what decodes.

    Returns (bytes written, problem or None). Streaming keeps memory flat and, unlike
    ``gzip.open``, hands over the good part of a damaged or cut file.
    """
    written = 0
    dec = zlib.decompressobj(wbits=31)
    fed = False  # has the current member received any input?
    while True:
        block = src.read(1 << 20)
        if not block:
            break
        while block:
            try:
                data = dec.decompress(block)
            except zlib.error as exc:
                return written, f"is damaged ({exc})"
            fed = True
            out.write(data)
            written += len(data)
            if not dec.eof:
                break
            block = dec.unused_data  # another member may follow
            dec = zlib.decompressobj(wbits=31)
            fed = False
            if block and block[:2] != _GZIP_MAGIC:
                return written, "has trailing garbage after the last member"
    if fed and not dec.eof:
        tail = dec.flush()
        out.write(tail)
        return written + len(tail), "ends early (the file was cut)"
    return written, None


def _parse_idb_options(opts: bytes, e: str, iface: _Interface) -> None:
    p = 0
    while p + 4 <= len(opts):
        code, length = struct.unpack(e + "HH", opts[p : p + 4])
        value = opts[p + 4 : p + 4 + length]
        if code == 0:
            break
        if code == 9 and length >= 1:
            raw = value[0]
            if raw & 0x80:
                iface.shift, iface.mul, iface.div = raw & 0x7F, 1, 1
            else:
                exp = raw
                if exp <= 9:
                    iface.mul, iface.div, iface.shift = 10 ** (9 - exp), 1, 0
                else:
                    iface.mul, iface.div, iface.shift = 1, 10 ** (exp - 9), 0
        elif code == 14 and length == 8:
            iface.offset_ns = struct.unpack(e + "q", value)[0] * 1_000_000_000
        p += 4 + length + ((4 - length % 4) % 4)


def _iface_arrays(ifaces: list[_Interface]) -> tuple[np.ndarray, ...]:
    n = max(len(ifaces), 1)
    mul = np.ones(n, dtype=np.int64)
    div = np.ones(n, dtype=np.int64)
    shift = np.zeros(n, dtype=np.int64)
    off = np.zeros(n, dtype=np.int64)
    snap = np.zeros(n, dtype=np.int64)
    lt = np.zeros(n, dtype=np.int32)
    for i, f in enumerate(ifaces):
        mul[i], div[i], shift[i], off[i], snap[i], lt[i] = (
            f.mul,
            f.div,
            f.shift,
            f.offset_ns,
            f.snaplen,
            f.linktype,
        )
    return mul, div, shift, off, snap, lt


def _fill_spb_timestamps(ts: np.ndarray, previous: int) -> None:
    """Simple packet blocks carry no time: give them the time of the packet before."""
    missing = ts < 0
    if not missing.any():
        return
    idx = np.where(missing, -1, np.arange(ts.shape[0]))
    np.maximum.accumulate(idx, out=idx)
    filled = np.where(idx >= 0, ts[np.maximum(idx, 0)], previous)
    ts[:] = filled


def describe_linktype(linktype: int) -> str:
    return f"{linktype} ({linktype_name(linktype)})"
