"""Writers for classic pcap and pcapng capture files.

Timestamps are always given as integer nanoseconds since the Unix epoch and are
converted (truncated) to the resolution of the file or interface.  A path ending in
``.gz`` is written gzip-compressed with a fixed header mtime, so output bytes are
deterministic.  When a file object is passed instead of a path it is written to but
never closed.
"""

from __future__ import annotations

import gzip
import os
import struct
from types import TracebackType
from typing import BinaryIO, Self

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "PcapWriter",
    "PcapngWriter",
]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

Destination = str | os.PathLike[str] | BinaryIO


class _Output:
    """Owns (or borrows) the binary stream a writer emits into."""

    def __init__(self, dest: Destination) -> None:
        self._owned: list[BinaryIO] = []
        if isinstance(dest, str | os.PathLike):
            path = os.fspath(dest)
            raw: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
            self._owned.append(raw)
            if path.endswith(".gz"):
                gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
                self._owned.insert(0, gz)  # type: ignore[arg-type]
                self.stream: BinaryIO = gz  # type: ignore[assignment]
            else:
                self.stream = raw
        else:
            self.stream = dest

    def close(self) -> None:
        for f in self._owned:  # innermost (gzip) first, then the raw file
            f.close()
        self._owned.clear()


class _WriterBase:
    def __init__(self, dest: Destination) -> None:
        self._out = _Output(dest)
        self._write = self._out.stream.write

    def close(self) -> None:
        """Flush and close the file (a caller-supplied file object is left open)."""
        self._out.stream.flush()
        self._out.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class PcapWriter(_WriterBase):
    """Classic libpcap file writer (micro- or nanosecond magic, either byte order).

    Packets longer than ``snaplen`` are truncated; ``orig_len`` defaults to ``len(data)``.
    """

    def __init__(
        self,
        dest: Destination,
        linktype: int = LINKTYPE_ETHERNET,
        nanosecond: bool = False,
        big_endian: bool = False,
        snaplen: int = 262144,
    ) -> None:
        super().__init__(dest)
        bo = ">" if big_endian else "<"
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        self._frac_per_sec = 1_000_000_000 if nanosecond else 1_000_000
        self._ns_per_frac = 1 if nanosecond else 1000
        self._record = struct.Struct(bo + "IIII")
        self.snaplen = snaplen
        self.linktype = linktype
        self._write(struct.pack(bo + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, ts_ns: int, data: bytes, orig_len: int | None = None) -> None:
        """Append one packet record captured at ``ts_ns`` nanoseconds since the epoch."""
        sec, frac = divmod(ts_ns // self._ns_per_frac, self._frac_per_sec)
        if orig_len is None:
            orig_len = len(data)
        if len(data) > self.snaplen:
            data = data[: self.snaplen]
        self._write(self._record.pack(sec, frac, len(data), orig_len) + data)


# pcapng block types and option codes
BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_SPB = 0x00000003
BT_EPB = 0x00000006
BT_CUSTOM = 0x00000BAD  # custom block, may be copied
BT_CUSTOM_NOCOPY = 0x40000BAD  # custom block, must not be copied
OPT_ENDOFOPT = 0
OPT_COMMENT = 1
OPT_SHB_HARDWARE = 2
OPT_SHB_OS = 3
OPT_SHB_USERAPPL = 4
OPT_IF_NAME = 2
OPT_IF_DESCRIPTION = 3
OPT_IF_TSRESOL = 9

_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")


def _pad4(data: bytes) -> bytes:
    return data + _PAD[len(data) & 3]


class PcapngWriter(_WriterBase):
    """pcapng writer: one section, any number of interfaces, EPB/SPB and custom blocks.

    Call :meth:`add_interface` before writing packets on that interface.
    """

    def __init__(
        self,
        dest: Destination,
        big_endian: bool = False,
        user_application: str | None = "otsight",
    ) -> None:
        super().__init__(dest)
        self._bo = ">" if big_endian else "<"
        self._u32 = struct.Struct(self._bo + "I")
        self._epb_hdr = struct.Struct(self._bo + "IIIIIII")
        self._spb_hdr = struct.Struct(self._bo + "III")
        # per interface: (numerator, denominator) so that units = ts_ns * num // den
        self._ifaces: list[tuple[int, int, int]] = []  # (num, den, snaplen)
        opts: list[tuple[int, bytes]] = []
        if user_application:
            opts.append((OPT_SHB_USERAPPL, user_application.encode()))
        body = struct.pack(self._bo + "IHHq", 0x1A2B3C4D, 1, 0, -1) + self._options(opts)
        self._block(BT_SHB, body)

    def _options(self, opts: list[tuple[int, bytes]]) -> bytes:
        if not opts:
            return b""
        parts = [struct.pack(self._bo + "HH", code, len(val)) + _pad4(val) for code, val in opts]
        parts.append(struct.pack(self._bo + "HH", OPT_ENDOFOPT, 0))
        return b"".join(parts)

    def _block(self, block_type: int, body: bytes) -> None:
        body = _pad4(body)
        total = len(body) + 12
        self._write(struct.pack(self._bo + "II", block_type, total) + body + self._u32.pack(total))

    def add_interface(
        self,
        linktype: int = LINKTYPE_ETHERNET,
        tsresol_exp10: int = 6,
        snaplen: int = 262144,
        name: str | None = None,
        *,
        tsresol_exp2: int | None = None,
        description: str | None = None,
    ) -> int:
        """Write an Interface Description Block and return its interface id.

        Resolution is ``10**-tsresol_exp10`` seconds, or ``2**-tsresol_exp2`` seconds when
        ``tsresol_exp2`` is given.  The if_tsresol option is omitted for the default (µs).
        """
        opts: list[tuple[int, bytes]] = []
        if name is not None:
            opts.append((OPT_IF_NAME, name.encode()))
        if description is not None:
            opts.append((OPT_IF_DESCRIPTION, description.encode()))
        if tsresol_exp2 is not None:
            if not 0 <= tsresol_exp2 <= 127:
                raise ValueError("tsresol_exp2 must be in 0..127")
            opts.append((OPT_IF_TSRESOL, bytes([0x80 | tsresol_exp2])))
            num, den = 1 << tsresol_exp2, 1_000_000_000
        else:
            if not 0 <= tsresol_exp10 <= 127:
                raise ValueError("tsresol_exp10 must be in 0..127")
            if tsresol_exp10 != 6:
                opts.append((OPT_IF_TSRESOL, bytes([tsresol_exp10])))
            num, den = 10**tsresol_exp10, 1_000_000_000
        self._block(
            BT_IDB, struct.pack(self._bo + "HHI", linktype, 0, snaplen) + self._options(opts)
        )
        self._ifaces.append((num, den, snaplen))
        return len(self._ifaces) - 1

    def write(
        self,
        iface: int,
        ts_ns: int,
        data: bytes,
        orig_len: int | None = None,
        kind: str = "epb",
    ) -> None:
        """Write one packet as an Enhanced ("epb") or Simple ("spb") Packet Block.

        A Simple Packet Block has no timestamp or interface id and always refers to
        interface 0, so ``iface`` must be 0 and ``ts_ns`` is ignored.
        """
        num, den, snaplen = self._ifaces[iface]
        if orig_len is None:
            orig_len = len(data)
        if len(data) > snaplen:
            data = data[:snaplen]
        pad = _PAD[len(data) & 3]
        if kind == "epb":
            units = ts_ns * num // den
            total = 32 + len(data) + len(pad)
            hdr = self._epb_hdr.pack(
                BT_EPB, total, iface, units >> 32, units & 0xFFFFFFFF, len(data), orig_len
            )
        elif kind == "spb":
            if iface != 0:
                raise ValueError("Simple Packet Blocks always belong to interface 0")
            total = 16 + len(data) + len(pad)
            hdr = self._spb_hdr.pack(BT_SPB, total, orig_len)
        else:
            raise ValueError(f"unknown packet block kind {kind!r}")
        self._write(hdr + data + pad + self._u32.pack(total))

    def write_custom_block(self, block_type: int, body: bytes) -> None:
        """Write an arbitrary block (body padded to 32 bits) that readers should skip.

        For real custom blocks use ``BT_CUSTOM``/``BT_CUSTOM_NOCOPY`` and start ``body``
        with a 4-byte Private Enterprise Number in the file's byte order.
        """
        self._block(block_type, body)
