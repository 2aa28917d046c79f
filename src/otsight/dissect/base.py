"""What every protocol dissector is made of, and what it is given.

A dissector is a class with class-level declarations (its name, the tables it writes, the
TCP framers whose PDUs it takes, whether it wants UDP datagrams or Ethernet frames) and two
methods: :meth:`Dissector.process` for each chunk and :meth:`Dissector.finish` at the end
of a capture. It receives a :class:`ChunkContext`: the chunk's bytes, the L2–L4 columns, the
framed PDUs, and helpers that build the common envelope of every event row. Hot fields are
decoded by a numba kernel over arrays of offsets; rare rich PDUs in plain Python.

A dissector never raises on bad bytes: a malformed PDU becomes a ``weird`` row with a reason
(:meth:`ChunkContext.weird`) and the dissector carries on.

Protocol semantics (code → name, category, ATT&CK for ICS techniques) are declared as
:class:`Semantics` tables, one per code space, next to the dissector.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight._memory import zeroed
from otsight.attack import check_ids
from otsight.capture import _track as T
from otsight.capture.addresses import constant_string, ip_array
from otsight.capture.packet_scan import scan_packets
from otsight.capture.pdu_columns import gather_pdu_columns, pdu_columns
from otsight.dissect import _l2l4 as L
from otsight.dissect.matching import Pairing

# Codes below this get a table entry (named codes and unknown codes seen so far).
_LUT_MAX = 1 << 20
# Unknown codes remembered per code space before the memory is reset.
_MAX_UNKNOWN = 4096
_NO_ROWS = np.zeros(0, np.bool_)


@njit(cache=True, nogil=True, _nrt=False)
def _lut_indices(lut, codes, missing, negative_missing, idx, bits):
    """``idx`` = table index of each code (0 where ``missing``, or negative when
    ``negative_missing``), ``bits`` = Arrow validity. Returns (null count, whether some
    code has no entry yet)."""
    n = codes.shape[0]
    has_missing = missing.shape[0] > 0
    nulls = 0
    todo = False
    bits[:] = 0
    for i in range(n):
        if (has_missing and missing[i]) or (negative_missing and codes[i] < 0):
            idx[i] = 0
            nulls += 1
            continue
        bits[i >> 3] |= np.uint8(1 << (i & 7))
        c = codes[i]
        k = lut[c] if 0 <= c < lut.shape[0] else -1
        idx[i] = k
        if k < 0:
            todo = True
    return nulls, todo


CATEGORIES = (
    "read",
    "write",
    "control",
    "program",
    "firmware",
    "diagnostic",
    "discovery",
    "session",
)


@dataclass(frozen=True)
class Meaning:
    """What one protocol code means."""

    name: str
    category: str | None = None  # None: informative only (e.g. a response code)
    techniques: tuple[str, ...] = ()


class Semantics:
    """One code space of one protocol (e.g. Modbus function codes), declared as data."""

    # the look-up table of integer codes and what it names (built on first use)
    _lut: np.ndarray
    _names: list[str]
    _known: int  # names of declared codes; learnt unknown codes come after them
    _values: pa.Array | None  # ``_names`` as Arrow, rebuilt when it grows
    _extra: dict[int, int]  # codes past the table's reach → name index

    def __init__(self, protocol: str, space: str, rows: dict[Hashable, Any]) -> None:
        self.protocol = protocol
        self.space = space
        self.rows: dict[Hashable, Meaning] = {}
        for code, value in rows.items():
            if isinstance(value, Meaning):
                meaning = value
            elif isinstance(value, str):
                meaning = Meaning(value)
            else:
                name, category, *rest = value
                techniques = tuple(rest[0]) if rest else ()
                meaning = Meaning(name, category, techniques)
            if meaning.category is not None and meaning.category not in CATEGORIES:
                raise ValueError(
                    f"{protocol}.{space}[{code!r}]: unknown category {meaning.category!r}"
                )
            self.rows[code] = meaning
        # Technique ids are checked against the ATT&CK for ICS data at load (DESIGN, decision 3)
        check_ids(self.techniques(), f"semantics {protocol}.{space}")

    def __contains__(self, code: Hashable) -> bool:
        return code in self.rows

    def __getitem__(self, code: Hashable) -> Meaning:
        return self.rows[code]

    def name(self, code: Hashable, default: str | None = None) -> str:
        m = self.rows.get(code)
        if m is not None:
            return m.name
        return default if default is not None else f"unknown_{code}"

    def names(
        self, codes: np.ndarray, missing: np.ndarray | None = None, negative_missing: bool = False
    ) -> pa.DictionaryArray:
        """Vectorised: integer codes → names (unknown codes as 'unknown_N'); rows where
        ``missing`` is true (or, with ``negative_missing``, the code is negative) are null.
        A lookup table, not a sort: this runs on every row.

        Codes the table does not name get an entry the first time they are seen, so later
        chunks find them in the table too; the dictionary only ever grows, hence a batch's
        dictionary may hold names no row of it uses."""
        codes = np.asarray(codes, np.int64)
        n = codes.shape[0]
        lut = self._lookup()
        if missing is None:
            missing = _NO_ROWS
        idx = np.empty(n, np.int32)
        bits = np.empty((n + 7) // 8, np.uint8)
        nulls, todo = _lut_indices(lut, codes, missing, negative_missing, idx, bits)
        if todo:
            if negative_missing:
                missing = codes < 0
            lut = self._name_new_codes(codes, missing, idx)
        if self._values is None:
            self._values = pa.array(self._names, pa.string())
        validity = pa.py_buffer(bits) if nulls else None
        indices = pa.Array.from_buffers(
            pa.int32(), n, [validity, pa.py_buffer(idx)], null_count=nulls
        )
        return pa.DictionaryArray.from_arrays(indices, self._values, safe=False)

    def optional_names(self, codes: np.ndarray) -> pa.DictionaryArray:
        """Names of codes, null where the code is absent (negative)."""
        return self.names(codes, negative_missing=True)

    def _lookup(self) -> np.ndarray:
        lut = self.__dict__.get("_lut")
        if lut is None:
            ints = {int(k): m.name for k, m in self.rows.items() if isinstance(k, int) and k >= 0}
            size = min(max(ints, default=0) + 1, _LUT_MAX)
            self._names = sorted(set(ints.values()))
            at = {n: i for i, n in enumerate(self._names)}
            lut = np.full(size, -1, np.int32)
            for k, name in ints.items():
                if k < size:
                    lut[k] = at[name]
            self._lut = lut
            self._known = len(self._names)
            self._values = None
            self._extra = {}
        return lut

    def _name_new_codes(self, codes: np.ndarray, missing: np.ndarray, idx: np.ndarray):
        """Give the codes the table did not know a name (and a table entry when in reach)."""
        todo = (idx < 0) & ~missing if missing.shape[0] else idx < 0
        new, inverse = np.unique(codes[todo], return_inverse=True)
        lut = self._lut
        if len(self._names) + new.shape[0] > self._known + _MAX_UNKNOWN:
            # hostile traffic (random codes) must not grow every later batch's dictionary:
            # forget the unknown codes named so far
            lut[lut >= self._known] = -1
            del self._names[self._known :]
            self._extra.clear()
            self._values = None
        top = int(new.max())
        if top >= lut.shape[0] and top < _LUT_MAX:
            size = lut.shape[0]
            while size <= top:
                size *= 2
            grown = np.full(min(size, _LUT_MAX), -1, np.int32)
            grown[: lut.shape[0]] = lut
            lut = self._lut = grown
        slot = np.empty(new.shape[0], np.int32)
        for i, code in enumerate(new.tolist()):
            at = lut[code] if 0 <= code < lut.shape[0] else self._extra.get(code, -1)
            if at < 0:
                at = len(self._names)
                self._names.append(self.name(code))
                self._values = None
                if 0 <= code < lut.shape[0]:
                    lut[code] = at
                else:
                    self._extra[code] = at
            slot[i] = at
        idx[todo] = slot[inverse.reshape(-1)]
        return lut

    def techniques(self) -> set[str]:
        return {t for m in self.rows.values() for t in m.techniques}


@dataclass
class ChunkContext:
    """Everything a dissector may read for one chunk of one capture."""

    capture: str
    chunk: Any  # otsight.capture.pcap.Chunk
    cols: np.ndarray
    addrs: np.ndarray
    track: Any  # otsight.capture.flows.TrackResult
    # the chunk's ``pdus`` table (one row per framed PDU, in ``track.pdus`` order) when the
    # run makes it: its framer and address columns are reused rather than computed again
    pdu_table: pa.RecordBatch | None = None
    # the columns (``pdu_columns``) the ``pdus`` table was made of, with it
    pdu_cols: dict[str, np.ndarray] | None = None
    ethertypes: np.ndarray | None = None  # the ethertype column, when the caller has it
    # rows of UDP-over-IP packets and their payload lengths, when the caller has them
    udp_packets: tuple[np.ndarray, np.ndarray] | None = None
    # rows whose ethertype is neither IPv4 nor IPv6, when the caller has them
    non_ip: np.ndarray | None = None
    weird_batches: list[pa.RecordBatch] = field(default_factory=list)
    _memo: dict = field(default_factory=dict, repr=False)

    # -- selecting what to decode ------------------------------------------------------------
    def pdus(self, framer: int) -> np.ndarray:
        """Indices (into ``track.pdus``) of the framed PDUs of one framer."""
        framers = self._memo.get("framers")
        if framers is None:  # shared by every dissector
            if self.pdu_table is not None:  # the protocol column's indices are the framers
                framers = self.pdu_table.column("protocol").indices.to_numpy()
            else:  # one strided read of the matrix's column
                framers = np.ascontiguousarray(self.track.pdus[:, T.P_FRAMER])
            self._memo["framers"] = framers
        return np.flatnonzero(framers == framer)

    def pdu_bytes(self, j: int) -> bytes:
        return self.track.pdu_bytes(int(j), self.chunk.buf)

    def pdu_fields(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Common fields of PDUs ``idx`` (see :func:`pdu_columns`), read in one pass and kept
        for the next call with the same index array (locations, then envelope)."""
        memo = self._memo.get("pdu_fields")
        if memo is not None and memo[0] is idx:
            return memo[1]
        # With the pdus table at hand the addresses are taken from its columns instead.
        if self.pdu_cols is not None and self.pdu_table is not None:
            fields = gather_pdu_columns(self.pdu_cols, idx)
        else:
            fields = pdu_columns(self.track.pdus, idx, addresses=self.pdu_table is None)
        self._memo["pdu_fields"] = (idx, fields)
        return fields

    def pdu_locations(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(in_arena, offset, length) of PDUs ``idx``: kernels read ``arena`` or ``buf``."""
        f = self.pdu_fields(idx)
        return f["in_arena"], f["off"], f["length"]

    def udp(self, min_payload: int = 1) -> np.ndarray:
        """Packet indices of UDP datagrams with a payload (dissectors probe the content)."""
        key = ("udp", min_payload)
        if key not in self._memo:  # several dissectors ask; the scan is over every packet once
            base = self._memo.get("udp_all")
            if base is None:
                base, length = self.udp_packets or scan_packets(self.cols)[4:6]
                self._memo["udp_all"] = base
                self._memo["udp_len"] = length
            self._memo[key] = base[self._memo["udp_len"] >= min_payload]
        return self._memo[key]

    def ethertype(self, value: int) -> np.ndarray:
        if self.ethertypes is None:  # one strided read of the column, for every L2 dissector
            self.ethertypes = np.ascontiguousarray(self.cols[:, L.ETHERTYPE])
        if self.non_ip is not None and value != L.ETH_IPV4 and value != L.ETH_IPV6:
            # the L2 protocols are among the few non-IP rows: no pass over every packet
            return self.non_ip[self.ethertypes[self.non_ip] == value]
        return np.flatnonzero(self.ethertypes == value)

    # -- building rows ----------------------------------------------------------------------
    def pdu_envelope(self, idx: np.ndarray) -> dict[str, pa.Array]:
        """The common columns of rows that come from framed PDUs ``idx``."""
        c = self.pdu_fields(idx)
        if self.pdu_table is not None:  # taking indices costs less than encoding addresses
            ix = pa.array(idx)
            src_ip = self.pdu_table.column("src_ip").take(ix)
            dst_ip = self.pdu_table.column("dst_ip").take(ix)
        else:
            src_ip = ip_array(c["src_hi"], c["src_lo"])
            dst_ip = ip_array(c["dst_hi"], c["dst_lo"])
        return {
            "capture": constant_string(self.capture, idx.shape[0]),
            "frame": pa.array(c["frame"]),
            "ts": timestamps(c["ts"]),
            "src_ip": src_ip,
            "dst_ip": dst_ip,
            "src_port": pa.array(c["sport"]),
            "dst_port": pa.array(c["dport"]),
            "flow_id": pa.array(c["flow"]),
            "is_orig": pa.array(c["orig"]),
        }

    def packet_envelope(self, pkt: np.ndarray) -> dict[str, pa.Array]:
        """The common columns of rows that come from whole packets ``pkt`` (UDP, L2)."""
        c, a = self.cols, self.addrs
        n = pkt.shape[0]
        has_ports = (c[pkt, L.PROTO] == 6) | (c[pkt, L.PROTO] == 17)
        flow = self.track.pkt_flow[pkt]
        return {
            "capture": constant_string(self.capture, n),
            "frame": pa.array(self.chunk.first_frame + pkt),
            "ts": timestamps(self.chunk.ts[pkt]),
            "src_ip": ip_array(a[pkt, L.SRC_HI], a[pkt, L.SRC_LO], c[pkt, L.IPVER] != 0),
            "dst_ip": ip_array(a[pkt, L.DST_HI], a[pkt, L.DST_LO], c[pkt, L.IPVER] != 0),
            "src_port": pa.array(c[pkt, L.SPORT].astype(np.int32), mask=~has_ports),
            "dst_port": pa.array(c[pkt, L.DPORT].astype(np.int32), mask=~has_ports),
            "flow_id": pa.array(flow, mask=flow < 0),
            "is_orig": pa.array(self.track.pkt_orig[pkt] != 0),
        }

    def weird(
        self,
        envelope: dict[str, pa.Array],
        names: Iterable[str] | pa.Array,
        details: Iterable[str | None] | pa.Array,
        layer: str,
    ) -> None:
        """Record malformed PDUs (rows of ``envelope``) as weird rows with reasons (lists of
        strings, or Arrow string arrays such as ``distinct_strings`` makes)."""
        name_array = names if isinstance(names, pa.Array) else pa.array(list(names), pa.string())
        if not isinstance(details, pa.Array):
            details = pa.array(list(details), type=pa.string())
        n = len(name_array)
        if n == 0:
            return
        batch = {
            k: envelope[k]
            for k in (
                "capture",
                "frame",
                "ts",
                "src_ip",
                "dst_ip",
                "src_port",
                "dst_port",
                "flow_id",
            )
        }
        batch["name"] = name_array.dictionary_encode()
        batch["detail"] = details
        batch["layer"] = constant_string(layer, n)
        self.weird_batches.append(pa.RecordBatch.from_pydict(batch, schema=E.WEIRD))


def timestamps(ns: np.ndarray) -> pa.Array:
    return pa.array(ns.astype(np.int64, copy=False), type=pa.timestamp("ns", tz="UTC"))


@njit(cache=True, nogil=True, _nrt=False)
def _pairing(matched, req_frame, req_ts, ts, frame_out, latency, bits):
    nulls = 0
    bits[:] = 0
    for i in range(matched.shape[0]):
        if matched[i]:
            bits[i >> 3] |= np.uint8(1 << (i & 7))
            frame_out[i] = req_frame[i]
            latency[i] = (ts[i] - req_ts[i]) / 1e9
        else:
            nulls += 1
            frame_out[i] = 0
            latency[i] = 0.0
    return nulls


def _pairing_arrays(frame, latency, bits, nulls) -> dict[str, pa.Array]:
    n = frame.shape[0]
    validity = pa.py_buffer(bits) if nulls else None
    return {
        "request_frame": pa.Array.from_buffers(
            pa.int64(), n, [validity, pa.py_buffer(frame)], null_count=nulls
        ),
        "latency": pa.Array.from_buffers(
            pa.float64(), n, [validity, pa.py_buffer(latency)], null_count=nulls
        ),
    }


def pairing_columns(
    matched: np.ndarray, req_frame: np.ndarray, req_ts: np.ndarray, ts: np.ndarray
) -> dict[str, pa.Array]:
    """``request_frame`` and ``latency`` (seconds) of responses paired by a RequestMatcher;
    null where a row was not paired."""
    n = matched.shape[0]
    frame = np.empty(n, np.int64)
    latency = np.empty(n, np.float64)
    bits = np.empty((n + 7) // 8, np.uint8)
    nulls = _pairing(
        np.asarray(matched, np.bool_), np.asarray(req_frame, np.int64),
        np.asarray(req_ts, np.int64), np.asarray(ts, np.int64), frame, latency, bits,
    )  # fmt: skip
    return _pairing_arrays(frame, latency, bits, nulls)


@njit(cache=True, nogil=True, _nrt=False)
def _pairing_src(matched, src, carried, carried_frame, carried_ts, frame, ts, row_ts,
                 frame_out, latency, bits):  # fmt: skip
    """``_pairing`` reading each request where the matcher found it (no gathered copy)."""
    nulls = 0
    bits[:] = 0
    for i in range(matched.shape[0]):
        if matched[i]:
            r = src[i]
            if r < carried:
                f, t = carried_frame[r], carried_ts[r]
            else:
                f, t = frame[r - carried], ts[r - carried]
            bits[i >> 3] |= np.uint8(1 << (i & 7))
            frame_out[i] = f
            latency[i] = (row_ts[i] - t) / 1e9
        else:
            nulls += 1
            frame_out[i] = 0
            latency[i] = 0.0
    return nulls


def paired_columns(p: Pairing, row_ts: np.ndarray) -> dict[str, pa.Array]:
    """``pairing_columns`` from a ``RequestMatcher.pair`` outcome."""
    n = p.matched.shape[0]
    frame = np.empty(n, np.int64)
    latency = np.empty(n, np.float64)
    bits = np.empty((n + 7) // 8, np.uint8)
    nulls = _pairing_src(
        p.matched, p.src, p.carried, p.carried_frame, p.carried_ts, p.frame, p.ts,
        np.asarray(row_ts, np.int64), frame, latency, bits,
    )  # fmt: skip
    return _pairing_arrays(frame, latency, bits, nulls)


def distinct_strings(keys: np.ndarray, text: Callable[[int], str]) -> pa.Array:
    """``text(key)`` for each integer key, formatted once per distinct key: malformed
    rows come by the thousand with a handful of distinct reasons."""
    uniq, inverse = np.unique(np.asarray(keys, np.int64), return_inverse=True)
    strings = pa.array([text(k) for k in uniq.tolist()], pa.string())
    return strings.take(pa.array(inverse.reshape(-1).astype(np.int32)))


def take_envelope(
    envelope: dict[str, pa.Array], rows: np.ndarray, known: dict[str, pa.Array] | None = None
) -> dict[str, pa.Array]:
    """The envelope restricted to some of its rows; ``known`` columns, which the caller
    already has for those rows, are used as they are instead of being taken."""
    rows = np.asarray(rows, np.int64)
    known = dict(known or {})
    known.update(_gathered(envelope, rows, known))
    ix = pa.array(rows)
    return {k: known[k] if k in known else _take(v, ix) for k, v in envelope.items()}


_GATHERED = ("src_ip", "dst_ip", "src_port", "dst_port", "is_orig")


@njit(cache=True, nogil=True, _nrt=False)
def _gather_envelope(rows, src, dst, sport, dport, orig, orig_at, o_src, o_dst, o_sport, o_dport,
                     o_orig):  # fmt: skip
    """Row ``rows[i]`` of the address indices, ports and direction bit (Arrow bitmap
    ``orig`` from bit ``orig_at``) into row ``i`` of the outputs, in one pass."""
    for b in range(o_orig.shape[0]):
        o_orig[b] = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        o_src[i] = src[r]
        o_dst[i] = dst[r]
        o_sport[i] = sport[r]
        o_dport[i] = dport[r]
        q = r + orig_at
        o_orig[i >> 3] |= np.uint8(((orig[q >> 3] >> (q & 7)) & 1) << (i & 7))


def _gathered(envelope: dict[str, pa.Array], rows: np.ndarray, known) -> dict[str, pa.Array]:
    """The address, port and direction columns of an envelope of framed PDUs (no nulls:
    every PDU has them) taken in one kernel pass, about twice as fast as five Arrow takes
    (each checks every index first); {} when the envelope is not of that shape."""
    cols = [envelope.get(k) for k in _GATHERED]
    if (
        rows.shape[0] < 1024
        or any(k in known for k in _GATHERED)
        or any(c is None or c.null_count for c in cols)
    ):
        return {}
    src, dst, sport, dport, orig = cols
    if not (
        isinstance(src, pa.DictionaryArray)
        and isinstance(dst, pa.DictionaryArray)
        and src.type.index_type == dst.type.index_type == pa.int32()
        and sport.type == dport.type == pa.int32()
        and orig.type == pa.bool_()
    ):
        return {}
    if rows.min() < 0 or rows.max() >= len(src):  # Arrow's take says what is wrong
        return {}
    n = rows.shape[0]
    o_src, o_dst, o_sport, o_dport = (np.empty(n, np.int32) for _ in range(4))
    o_orig = np.empty((n + 7) >> 3, np.uint8)
    bits = np.frombuffer(orig.buffers()[1], np.uint8)
    _gather_envelope(
        rows, src.indices.to_numpy(), dst.indices.to_numpy(), sport.to_numpy(),
        dport.to_numpy(), bits, orig.offset, o_src, o_dst, o_sport, o_dport, o_orig,
    )  # fmt: skip
    return {
        "src_ip": pa.DictionaryArray.from_arrays(pa.array(o_src), src.dictionary, safe=False),
        "dst_ip": pa.DictionaryArray.from_arrays(pa.array(o_dst), dst.dictionary, safe=False),
        "src_port": pa.array(o_sport),
        "dst_port": pa.array(o_dport),
        "is_orig": pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(o_orig)]),
    }


def _take(column: pa.Array, ix: pa.Array) -> pa.Array:
    """``column.take(ix)``; a dictionary column of one value without nulls (the capture
    name) is made anew, about ten times faster than Arrow's take of it."""
    if (
        isinstance(column, pa.DictionaryArray)
        and column.type.index_type == pa.int32()
        and len(column.dictionary) == 1
        and column.null_count == 0
        and (len(ix) == 0 or len(column) > 0)
    ):
        zeros = pa.array(np.zeros(len(ix), np.int32))
        return pa.DictionaryArray.from_arrays(zeros, column.dictionary, safe=False)
    return column.take(ix)


def null_negative(v: np.ndarray, dtype: Any) -> pa.Array:
    """Integer column ``v`` as ``dtype``, null where negative (absent): see
    :func:`null_negative_rows`."""
    return null_negative_rows(np.asarray(v).reshape(1, -1), (("v", 0),), dtype)["v"]


def sparse_column(n: int, rows: np.ndarray, values: np.ndarray, dtype: Any) -> pa.Array:
    """A column of ``n`` rows of ``dtype``, null except at ``rows`` (distinct), which hold
    ``values``: for fields that a row in thousands has, without a pass over a full
    column of absent markers."""
    if rows.shape[0] == 0:
        return pa.nulls(n, pa.from_numpy_dtype(dtype))
    # Zeroed pages straight from the system, touched only where a value goes: a heap
    # allocation would be cleared in full (the heap keeps freed memory, see _memory).
    dtype = np.dtype(dtype)
    v = zeroed(n, dtype)
    v[rows] = values
    bits = np.zeros((n + 7) >> 3, np.uint8)
    np.bitwise_or.at(bits, rows >> 3, np.left_shift(1, rows & 7).astype(np.uint8))
    return from_validity(v, dtype, n, rows.shape[0], bits)


def from_validity(v: np.ndarray, dtype: Any, n: int, valid: int, bits: np.ndarray) -> pa.Array:
    """``v`` (contiguous, of ``dtype``) with validity ``bits`` (``valid`` of ``n`` set). A
    null keeps whatever value the kernel wrote under it (Arrow never reads it): no pass to
    zero them."""
    atype = pa.from_numpy_dtype(dtype)
    if valid == 0 and n:
        return pa.nulls(n, atype)
    validity = pa.py_buffer(bits) if valid < n else None
    return pa.Array.from_buffers(atype, n, [validity, pa.py_buffer(v)], null_count=n - valid)


@njit(cache=True, nogil=True, _nrt=False)
def _narrowed_validities(out, rows, dst, bits, valid):
    """Row ``rows[k]`` of ``out`` (negative = absent) copied into ``dst[k]`` (the column's
    type, often narrower), with its Arrow validity bitmap ``bits[k]`` and valid count
    ``valid[k]``, all the rows in one call: each value is read once, instead of once for
    the bitmap and once more for the conversion. Eight values per byte without a branch,
    so columns mixing present and absent cost no mispredictions."""
    n = out.shape[1]
    full = n >> 3
    for k in range(rows.shape[0]):
        v = out[rows[k]]
        d = dst[k]
        b = bits[k]
        count = 0
        for i in range(full):
            byte = 0
            for t in range(8):
                x = v[8 * i + t]
                d[8 * i + t] = x
                ok = x >= 0
                byte |= ok << t
                count += ok
            b[i] = byte
        if n & 7:
            byte = 0
            for j in range(full * 8, n):
                x = v[j]
                d[j] = x
                ok = x >= 0
                byte |= ok << (j & 7)
                count += ok
            b[full] = byte
        valid[k] = count


def null_negative_rows(out: np.ndarray, cols, dtype) -> dict[str, pa.Array]:
    """Columns ``cols`` ((name, row) pairs) of ``out`` (a kernel's output with one row per
    field, one column per PDU) as Arrow arrays of ``dtype``, null where negative. Built
    from buffers of one new matrix (the batch must not keep the kernel's, larger and
    wider, alive); a column absent from every row of the chunk (most of the rare fields)
    is a plain null array."""
    n = out.shape[1]
    rows = np.array([r for _, r in cols], np.int64)
    dst = np.empty((rows.shape[0], n), dtype)
    bits = np.empty((rows.shape[0], (n + 7) >> 3), np.uint8)
    valid = np.zeros(rows.shape[0], np.int64)
    if n:
        _narrowed_validities(out, rows, dst, bits, valid)
    return {
        name: from_validity(dst[k], dtype, n, int(valid[k]), bits[k])
        for k, (name, r) in enumerate(cols)
    }


@njit(cache=True, nogil=True, _nrt=False)
def _category_techniques(midx, cat_lut, t_len, t_start, t_flat, cat, bits, offsets, values):
    """Category index (with validity ``bits``) and technique list (``offsets`` into
    ``values``, sized for the longest list on every row) of each meaning in ``midx`` (-1:
    none), in one pass. Returns the null count."""
    n = midx.shape[0]
    none = cat_lut.shape[0] - 1
    nulls = 0
    offsets[0] = 0
    for i in range(bits.shape[0]):
        bits[i] = 0
    at = 0
    for j in range(n):
        mi = midx[j] if midx[j] >= 0 else none
        c = cat_lut[mi]
        if c >= 0:
            cat[j] = c
            bits[j >> 3] |= np.uint8(1 << (j & 7))
        else:
            cat[j] = 0
            nulls += 1
        t0 = t_start[mi]
        for k in range(t_len[mi]):
            values[at + k] = t_flat[t0 + k]
        at += t_len[mi]
        offsets[j + 1] = at
    return nulls


class MeaningColumns:
    """``category`` and ``techniques`` columns of rows, from the index of each row's
    :class:`Meaning` in ``items`` (-1: none); one kernel pass, fixed dictionaries."""

    def __init__(self, items: list[Meaning]) -> None:
        cats = sorted({m.category for m in items if m.category})
        at = {c: i for i, c in enumerate(cats)}
        self.cat_lut = np.array([at[m.category] if m.category else -1 for m in items] + [-1])
        techs = sorted({t for m in items for t in m.techniques})
        t_of = {t: i for i, t in enumerate(techs)}
        self.t_len = np.array([len(m.techniques) for m in items] + [0], np.int64)
        self.t_start = np.zeros(self.t_len.shape[0] + 1, np.int64)
        np.cumsum(self.t_len, out=self.t_start[1:])
        self.t_flat = np.array([t_of[t] for m in items for t in m.techniques], np.int32)
        self.longest = int(self.t_len.max())
        self.category_names = pa.array(cats, pa.string())
        self.technique_names = pa.array(techs, pa.string())

    def __call__(self, midx: np.ndarray) -> tuple[pa.Array, pa.Array]:
        n = midx.shape[0]
        cat = np.empty(n, np.int32)
        bits = np.empty((n + 7) >> 3, np.uint8)
        offsets = np.empty(n + 1, np.int32)
        values = np.empty(n * self.longest, np.int32)
        nulls = _category_techniques(
            midx, self.cat_lut, self.t_len, self.t_start, self.t_flat, cat, bits, offsets, values
        )
        values = values[: offsets[n]]
        indices = pa.Array.from_buffers(
            pa.int32(), n, [pa.py_buffer(bits) if nulls else None, pa.py_buffer(cat)], nulls
        )
        category = pa.DictionaryArray.from_arrays(indices, self.category_names, safe=False)
        techniques = pa.DictionaryArray.from_arrays(
            pa.array(values), self.technique_names, safe=False
        )
        return category, pa.ListArray.from_arrays(pa.array(offsets), techniques)


def dictionary_column(indices: np.ndarray, strings: list[str]) -> pa.DictionaryArray:
    """Indices into ``strings`` (-1 = null)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.maximum(indices, 0).astype(np.int32), mask=indices < 0),
        pa.array(strings, type=pa.string()),
    )


def int_names(sem: Semantics) -> dict[int, str]:
    """Names of the integer codes of ``sem``."""
    return {int(k): m.name for k, m in sem.rows.items() if isinstance(k, int)}


def category_codes(sem: Semantics, size: int) -> np.ndarray:
    """Index into :data:`CATEGORIES` of each integer code below ``size`` (-1: none)."""
    out = np.full(size, -1, dtype=np.int64)
    for k, m in sem.rows.items():
        if isinstance(k, int) and 0 <= k < size and m.category:
            out[k] = CATEGORIES.index(m.category)
    return out


class CodeNames:
    """Integer codes → names through a lookup table, vectorised (negative codes are null).

    ``key`` maps codes to table keys (a mask, a shift); ``unknown`` names a code the table
    does not hold (``unknown_N`` by default).
    """

    def __init__(
        self,
        names: dict[int, str],
        key: Callable[[np.ndarray], np.ndarray] | None = None,
        unknown: Callable[[int], str] | None = None,
    ) -> None:
        self.key = key or (lambda codes: codes)
        self.unknown = unknown or (lambda code: f"unknown_{code}")
        self.strings = sorted(set(names.values()))
        at = {s: i for i, s in enumerate(self.strings)}
        self.lut = np.full(max(names, default=-1) + 1, -1, dtype=np.int64)
        for k, v in names.items():
            self.lut[k] = at[v]

    def __call__(self, codes: np.ndarray) -> pa.DictionaryArray:
        codes = np.asarray(codes, np.int64)
        present = codes >= 0
        keys = self.key(np.where(present, codes, 0))
        idx = np.full(codes.shape[0], -1, dtype=np.int64)
        inside = present & (keys < self.lut.shape[0])
        idx[inside] = self.lut[keys[inside]]
        unknown = present & (idx < 0)
        strings = self.strings
        if unknown.any():
            extra, inverse = np.unique(codes[unknown], return_inverse=True)
            idx[unknown] = len(strings) + inverse.reshape(-1)
            strings = strings + [self.unknown(int(c)) for c in extra]
        return dictionary_column(idx, strings)


class Dissector:
    """Base class of protocol dissectors (see the module docstring)."""

    name: ClassVar[str]
    tables: ClassVar[dict[str, pa.Schema]]
    framers: ClassVar[tuple[int, ...]] = ()
    wants_udp: ClassVar[bool] = False
    ethertypes: ClassVar[tuple[int, ...]] = ()
    semantics: ClassVar[tuple[Semantics, ...]] = ()

    def process(self, ctx: ChunkContext) -> dict[str, pa.RecordBatch | list[pa.RecordBatch]]:
        """Rows of this chunk per table: one batch, or several of the same schema."""
        raise NotImplementedError

    def finish(self, capture: str) -> dict[str, pa.RecordBatch]:
        """Rows held back until the end of the capture (e.g. unanswered requests)."""
        return {}
