"""Build Arrow record batches of the foundation's event tables from kernel outputs.

Everything here is vectorised over a chunk; the only per-row Python is for LLDP frames,
which are a handful per switch per half-minute.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight.capture import _track as T
from otsight.capture import framing
from otsight.capture._text import two_ints_text
from otsight.capture.addresses import constant_string, ip_array, mac_array, names_array
from otsight.capture.lldp import parse_lldp_cached
from otsight.dissect import _l2l4 as L
from otsight.dissect.routing import ETHERTYPE_PROTOCOLS

TRANSPORTS = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp", 136: "udplite"}
_HOW = {T.HOW_SYN: "syn", T.HOW_SYNACK: "synack", T.HOW_PORT: "port", T.HOW_FIRST: "first"}
_ARP_OPS = {1: "request", 2: "reply", 3: "rarp_request", 4: "rarp_reply"}

# ethertypes of the l2_frames table, as a look-up table (one pass, no sort)
_L2_KNOWN = np.zeros(0x10000, np.bool_)
_L2_KNOWN[sorted(ETHERTYPE_PROTOCOLS)] = True

# the pdus table's protocol dictionary: every framer's name, indexed by framer code
_FRAMER_VALUES = pa.array(
    [framing.FRAMER_NAMES.get(k, str(k)) for k in range(max(framing.FRAMER_NAMES) + 1)]
)

# conn_state codes, indexed by the small integer computed in _conn_state
_STATES = [
    "OTH",
    "S0",
    "S1",
    "SF",
    "REJ",
    "S2",
    "S3",
    "RSTO",
    "RSTR",
    "RSTOS0",
    "RSTRH",
    "SH",
    "SHR",
]


def _ts(ns: np.ndarray) -> pa.Array:
    return pa.array(ns.astype(np.int64, copy=False), type=pa.timestamp("ns", tz="UTC"))


def _conn_state(proto: np.ndarray, of: np.ndarray, rf: np.ndarray, resp_pkts: np.ndarray):
    syn_o, fin_o, rst_o = (of & 2) != 0, (of & 1) != 0, (of & 4) != 0
    syn_r, fin_r, rst_r = (rf & 2) != 0, (rf & 1) != 0, (rf & 4) != 0
    est = syn_o & syn_r
    code = np.zeros(proto.shape[0], dtype=np.int64)  # OTH
    only_o = syn_o & ~syn_r
    code = np.where(only_o, np.select([rst_o, fin_o, rst_r], [9, 11, 4], 1), code)
    only_r = syn_r & ~syn_o
    code = np.where(only_r, np.select([rst_r, fin_r], [10, 12], 0), code)
    code = np.where(
        est, np.select([rst_o, rst_r, fin_o & fin_r, fin_o, fin_r], [7, 8, 3, 5, 6], 2), code
    )
    code = np.where(proto != 6, np.where(resp_pkts > 0, 3, 1), code)
    return names_array(code, dict(enumerate(_STATES)))


def flows_batch(F: np.ndarray, K: np.ndarray, capture: str) -> pa.RecordBatch:
    n = F.shape[0]
    client = F[:, T.F_CLIENT]
    c0 = client == 0  # the client is canonical side 0
    src_hi = np.where(c0, K[:, 0], K[:, 2])
    src_lo = np.where(c0, K[:, 1], K[:, 3])
    dst_hi = np.where(c0, K[:, 2], K[:, 0])
    dst_lo = np.where(c0, K[:, 3], K[:, 1])
    pa_ = ((K[:, 4] >> np.uint64(24)) & np.uint64(0xFFFF)).astype(np.int32)
    pb_ = ((K[:, 4] >> np.uint64(8)) & np.uint64(0xFFFF)).astype(np.int32)
    proto = (K[:, 4] & np.uint64(0xFF)).astype(np.int16)

    def by_side(f0: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = F[:, f0], F[:, f0 + 1]
        return np.where(c0, a, b), np.where(c0, b, a)

    orig_pkts, resp_pkts = by_side(T.F_PKTS0)
    orig_bytes, resp_bytes = by_side(T.F_BYTES0)
    orig_pay, resp_pay = by_side(T.F_PAY0)
    orig_stream, resp_stream = by_side(T.F_STREAM0)
    of, rf = by_side(T.F_FLAGS0)
    omac, rmac = by_side(T.F_ETH0)
    framer = np.maximum(F[:, T.F_FRAMER], 0)
    cols = {
        "capture": constant_string(capture, n),
        "frame": pa.array(F[:, T.F_FIRST_FRAME]),
        "ts": _ts(F[:, T.F_FIRST_TS]),
        "flow_id": pa.array(F[:, T.F_ID]),
        "last_frame": pa.array(F[:, T.F_LAST_FRAME]),
        "last_ts": _ts(F[:, T.F_LAST_TS]),
        "duration": pa.array((F[:, T.F_LAST_TS] - F[:, T.F_FIRST_TS]) / 1e9),
        "transport": names_array(proto.astype(np.int64), TRANSPORTS),
        "ip_proto": pa.array(proto),
        "src_ip": ip_array(src_hi, src_lo),
        "dst_ip": ip_array(dst_hi, dst_lo),
        "src_port": pa.array(np.where(c0, pa_, pb_)),
        "dst_port": pa.array(np.where(c0, pb_, pa_)),
        "src_mac": mac_array(omac),
        "dst_mac": mac_array(rmac),
        "vlan": pa.array(F[:, T.F_VLAN].astype(np.int32), mask=F[:, T.F_VLAN] < 0),
        "client_by": names_array(F[:, T.F_HOW], _HOW),
        "conn_state": _conn_state(proto, of, rf, resp_pkts),
        "orig_pkts": pa.array(orig_pkts),
        "orig_bytes": pa.array(orig_bytes),
        "resp_pkts": pa.array(resp_pkts),
        "resp_bytes": pa.array(resp_bytes),
        "orig_payload_bytes": pa.array(orig_pay),
        "resp_payload_bytes": pa.array(resp_pay),
        "orig_stream_bytes": pa.array(orig_stream),
        "resp_stream_bytes": pa.array(resp_stream),
        "orig_tcp_flags": pa.array(of.astype(np.int32)),
        "resp_tcp_flags": pa.array(rf.astype(np.int32)),
        "app_protocol": names_array(framer, framing.FRAMER_NAMES),
        "pdus": pa.array(F[:, T.F_PDUS]),
        "gaps": pa.array(F[:, T.F_GAPS]),
        "gap_bytes": pa.array(F[:, T.F_GAP_BYTES]),
        "retransmissions": pa.array(F[:, T.F_RETX]),
    }
    return pa.RecordBatch.from_pydict(cols, schema=E.FLOWS)


def pdus_batch(c: dict[str, np.ndarray], capture: str) -> pa.RecordBatch:
    """The ``pdus`` table of a chunk, from its PDU matrix's :func:`pdu_columns` ``c``
    (which the dissectors then read too)."""
    n = c["frame"].shape[0]
    cols = {
        "capture": constant_string(capture, n),
        "frame": pa.array(c["frame"]),
        "ts": _ts(c["ts"]),
        "first_frame": pa.array(c["first_frame"]),
        "flow_id": pa.array(c["flow"]),
        "src_ip": ip_array(c["src_hi"], c["src_lo"]),
        "dst_ip": ip_array(c["dst_hi"], c["dst_lo"]),
        "src_port": pa.array(c["sport"]),
        "dst_port": pa.array(c["dport"]),
        "is_orig": pa.array(c["orig"]),
        "protocol": pa.DictionaryArray.from_arrays(pa.array(c["framer"]), _FRAMER_VALUES),
        "length": pa.array(c["length"].astype(np.int32)),
    }
    return pa.RecordBatch.from_pydict(cols, schema=E.PDUS)


def _ports(cols: np.ndarray, idx: np.ndarray, which: int) -> pa.Array:
    proto = cols[idx, L.PROTO]
    has = (proto == 6) | (proto == 17) | (proto == 132) | (proto == 136)
    return pa.array(cols[idx, which].astype(np.int32), mask=~has)


WEIRD_NAMES = dict(L.WEIRD_REASONS)
STREAM_WEIRD_BASE = 1000  # stream anomaly kinds are numbered after the packet ones
WEIRD_NAMES.update({STREAM_WEIRD_BASE + k: v for k, v in T.GAP_KINDS.items()})


def packet_weird_batch(capture: str, chunk, cols, addrs, pkt_flow, bad) -> pa.RecordBatch:
    """Packets the L2–L4 kernel could not decode in full, one row each with the reason.
    ``bad``: their indices (the rows whose status is not OK)."""
    codes = cols[bad, L.STATUS]
    unsupported = codes == L.UNSUPPORTED_LINKTYPE
    details: list[str | None] = [None] * bad.shape[0]
    for j in np.flatnonzero(unsupported):
        details[int(j)] = f"link type {int(chunk.linktype[bad[j]])}"
    flow = pkt_flow[bad]
    batch = {
        "capture": constant_string(capture, bad.shape[0]),
        "frame": pa.array(chunk.first_frame + bad),
        "ts": _ts(chunk.ts[bad]),
        "src_ip": ip_array(addrs[bad, L.SRC_HI], addrs[bad, L.SRC_LO], cols[bad, L.IPVER] != 0),
        "dst_ip": ip_array(addrs[bad, L.DST_HI], addrs[bad, L.DST_LO], cols[bad, L.IPVER] != 0),
        "src_port": _ports(cols, bad, L.SPORT),
        "dst_port": _ports(cols, bad, L.DPORT),
        "flow_id": pa.array(flow, mask=flow < 0),
        "name": names_array(codes, WEIRD_NAMES),
        "detail": pa.array(details, type=pa.string()),
        "layer": constant_string("packet", bad.shape[0]),
    }
    return pa.RecordBatch.from_pydict(batch, schema=E.WEIRD)


def named_packet_weird(
    capture: str,
    chunk,
    cols,
    addrs,
    idx: np.ndarray,
    name: str,
    layer: str,
    details: list[str] | None = None,
) -> pa.RecordBatch:
    """Weird rows for packets ``idx`` that a later stage (ARP, LLDP) found malformed."""
    n = idx.shape[0]
    batch = {
        "capture": constant_string(capture, n),
        "frame": pa.array(chunk.first_frame + idx),
        "ts": _ts(chunk.ts[idx]),
        "src_ip": ip_array(addrs[idx, L.SRC_HI], addrs[idx, L.SRC_LO], cols[idx, L.IPVER] != 0),
        "dst_ip": ip_array(addrs[idx, L.DST_HI], addrs[idx, L.DST_LO], cols[idx, L.IPVER] != 0),
        "src_port": _ports(cols, idx, L.SPORT),
        "dst_port": _ports(cols, idx, L.DPORT),
        "flow_id": pa.nulls(n, pa.int64()),
        "name": constant_string(name, n),
        "detail": pa.array(details if details is not None else [None] * n, type=pa.string()),
        "layer": constant_string(layer, n),
    }
    return pa.RecordBatch.from_pydict(batch, schema=E.WEIRD)


def stream_weird_batch(capture: str, G: np.ndarray) -> pa.RecordBatch:
    """TCP stream anomalies: gaps, PDUs cut by a gap, bad PDU headers, bytes not captured."""
    n = G.shape[0]
    batch = {
        "capture": constant_string(capture, n),
        "frame": pa.array(G[:, T.G_FRAME]),
        "ts": _ts(G[:, T.G_TS]),
        "src_ip": ip_array(G[:, T.G_SRC_HI].view(np.uint64), G[:, T.G_SRC_LO].view(np.uint64)),
        "dst_ip": ip_array(G[:, T.G_DST_HI].view(np.uint64), G[:, T.G_DST_LO].view(np.uint64)),
        "src_port": pa.array(G[:, T.G_SPORT].astype(np.int32)),
        "dst_port": pa.array(G[:, T.G_DPORT].astype(np.int32)),
        "flow_id": pa.array(G[:, T.G_FLOW]),
        "name": names_array(STREAM_WEIRD_BASE + G[:, T.G_KIND], WEIRD_NAMES),
        "detail": two_ints_text(G[:, T.G_SEQ], G[:, T.G_LEN], "seq ", ", ", " bytes"),
        "layer": constant_string("tcp_stream", n),
    }
    return pa.RecordBatch.from_pydict(batch, schema=E.WEIRD)


def _gather(buf: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """Big-endian integers of ``width`` bytes at each start offset."""
    out = np.zeros(starts.shape[0], dtype=np.uint64)
    for k in range(width):
        out = (out << np.uint64(8)) | buf[starts + k].astype(np.uint64)
    return out


def arp_batch(
    capture: str, chunk, cols: np.ndarray, idx: np.ndarray
) -> tuple[pa.RecordBatch, np.ndarray]:
    """ARP over Ethernet/IPv4 in frames ``idx`` (ethertype 0x0806). Returns the batch and
    the indices of ARP frames too short."""
    l3 = cols[idx, L.L3_OFF]
    end = chunk.offset[idx] + chunk.caplen[idx]
    ok = l3 + 28 <= end
    if ok.any():
        ok &= (_gather(chunk.buf, l3, 2) == 1) & (chunk.buf[l3 + 4] == 6) & (chunk.buf[l3 + 5] == 4)
    short = idx[~ok]
    idx, l3 = idx[ok], l3[ok]
    n = idx.shape[0]
    mapped = np.uint64(0xFFFF00000000)
    zeros = np.zeros(n, dtype=np.uint64)
    op = _gather(chunk.buf, l3 + 6, 2).astype(np.int64)
    batch = {
        "capture": constant_string(capture, n),
        "frame": pa.array(chunk.first_frame + idx),
        "ts": _ts(chunk.ts[idx]),
        "src_mac": mac_array(cols[idx, L.ETH_SRC]),
        "dst_mac": mac_array(cols[idx, L.ETH_DST]),
        "vlan": pa.array(cols[idx, L.VLAN1].astype(np.int32), mask=cols[idx, L.VLAN1] < 0),
        "op": pa.array(op.astype(np.int16)),
        "op_name": names_array(op, _ARP_OPS),
        "sender_mac": mac_array(_gather(chunk.buf, l3 + 8, 6).astype(np.int64)),
        "sender_ip": ip_array(zeros, mapped | _gather(chunk.buf, l3 + 14, 4)),
        "target_mac": mac_array(_gather(chunk.buf, l3 + 18, 6).astype(np.int64)),
        "target_ip": ip_array(zeros, mapped | _gather(chunk.buf, l3 + 24, 4)),
    }
    return pa.RecordBatch.from_pydict(batch, schema=E.ARP), short


def lldp_batch(
    capture: str, chunk, cols: np.ndarray, idx: np.ndarray
) -> tuple[pa.RecordBatch, list[tuple[int, str]]]:
    """LLDP frames ``idx`` (ethertype 0x88CC) decoded in Python (rare). Returns the batch and
    (index, reason) problems."""
    problems: list[tuple[int, str]] = []
    infos: list[dict] = []
    starts = cols[idx, L.L3_OFF].tolist()
    ends = (chunk.offset[idx] + chunk.caplen[idx]).tolist()
    for i, start, end in zip(idx.tolist(), starts, ends, strict=True):
        info, problem = parse_lldp_cached(bytes(chunk.buf[start:end]))
        if problem:
            problems.append((i, problem))
        infos.append(info)
    n = idx.shape[0]
    vlan = cols[idx, L.VLAN1]
    batch = {
        "capture": constant_string(capture, n),
        "frame": pa.array(chunk.first_frame + idx),
        "ts": _ts(chunk.ts[idx]),
        "src_mac": mac_array(cols[idx, L.ETH_SRC].astype(np.int64)),
        "vlan": pa.array(vlan.astype(np.int32), mask=vlan < 0),
    }
    for key in _LLDP_FIELDS:
        batch[key] = pa.array([info.get(key) for info in infos], E.LLDP.field(key).type)
    return pa.RecordBatch.from_pydict(batch, schema=E.LLDP), problems


_LLDP_FIELDS = (
    "chassis_id",
    "chassis_id_subtype",
    "port_id",
    "port_id_subtype",
    "ttl",
    "port_description",
    "system_name",
    "system_description",
    "management_address",
)


def l2_frames_batch(
    capture: str, chunk, cols: np.ndarray, et: np.ndarray | None = None
) -> pa.RecordBatch:
    et = cols[:, L.ETHERTYPE] if et is None else et
    idx = np.flatnonzero(_L2_KNOWN[np.clip(et, 0, 0xFFFF)])
    n = idx.shape[0]
    batch = {
        "capture": constant_string(capture, n),
        "frame": pa.array(chunk.first_frame + idx),
        "ts": _ts(chunk.ts[idx]),
        "src_mac": mac_array(cols[idx, L.ETH_SRC]),
        "dst_mac": mac_array(cols[idx, L.ETH_DST]),
        "vlan": pa.array(cols[idx, L.VLAN1].astype(np.int32), mask=cols[idx, L.VLAN1] < 0),
        "ethertype": pa.array(et[idx].astype(np.int32)),
        "protocol": names_array(et[idx], ETHERTYPE_PROTOCOLS),
        "length": pa.array(chunk.wirelen[idx].astype(np.int32)),
    }
    return pa.RecordBatch.from_pydict(batch, schema=E.L2_FRAMES)


def packets_batch(capture: str, chunk, cols, addrs, pkt_flow, pkt_orig) -> pa.RecordBatch:
    n = chunk.count
    allidx = np.arange(n)
    batch = {
        "capture": constant_string(capture, n),
        "frame": pa.array(chunk.frames),
        "ts": _ts(chunk.ts),
        "length": pa.array(chunk.wirelen.astype(np.int32)),
        "caplen": pa.array(chunk.caplen.astype(np.int32)),
        "linktype": pa.array(chunk.linktype.astype(np.int32)),
        "src_mac": mac_array(cols[:, L.ETH_SRC]),
        "dst_mac": mac_array(cols[:, L.ETH_DST]),
        "vlan": pa.array(cols[:, L.VLAN1].astype(np.int32), mask=cols[:, L.VLAN1] < 0),
        "vlan_inner": pa.array(cols[:, L.VLAN2].astype(np.int32), mask=cols[:, L.VLAN2] < 0),
        "ethertype": pa.array(cols[:, L.ETHERTYPE].astype(np.int32)),
        "ip_version": pa.array(cols[:, L.IPVER].astype(np.int8)),
        "ip_proto": pa.array(cols[:, L.PROTO].astype(np.int16), mask=cols[:, L.IPVER] == 0),
        "ttl": pa.array(cols[:, L.TTL].astype(np.int16), mask=cols[:, L.IPVER] == 0),
        "fragment": pa.array((cols[:, L.FRAG] & L.FRAG_ANY) != 0),
        "src_ip": ip_array(addrs[:, L.SRC_HI], addrs[:, L.SRC_LO], cols[:, L.IPVER] != 0),
        "dst_ip": ip_array(addrs[:, L.DST_HI], addrs[:, L.DST_LO], cols[:, L.IPVER] != 0),
        "src_port": _ports(cols, allidx, L.SPORT),
        "dst_port": _ports(cols, allidx, L.DPORT),
        "tcp_flags": pa.array(cols[:, L.TCP_FLAGS].astype(np.int32), mask=cols[:, L.PROTO] != 6),
        "seq": pa.array(cols[:, L.SEQ], mask=cols[:, L.PROTO] != 6),
        "ack": pa.array(cols[:, L.ACK], mask=cols[:, L.PROTO] != 6),
        "window": pa.array(cols[:, L.WIN].astype(np.int32), mask=cols[:, L.PROTO] != 6),
        "payload_len": pa.array(cols[:, L.SEG_LEN].astype(np.int32)),
        "flow_id": pa.array(pkt_flow, mask=pkt_flow < 0),
        "is_orig": pa.array(pkt_orig != 0),
    }
    return pa.RecordBatch.from_pydict(batch, schema=E.PACKETS)
