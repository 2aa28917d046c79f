"""Arrow schemas of every event table: the contract between otsight's stages.

Each table has one schema here and nowhere else. Every event row carries the common
envelope: ``capture`` (file it came from), ``frame`` (1-based frame number in that capture,
as Wireshark counts; for a PDU assembled from several segments, the frame that completed
it), ``ts`` and the addresses and ports it concerns. Field names follow Zeek/ICSNPP and ECS
where those have one.
"""

from __future__ import annotations

import pyarrow as pa

_STR = pa.dictionary(pa.int32(), pa.string())  # repeated strings (addresses, names)
_TS = pa.timestamp("ns", tz="UTC")

ENVELOPE = [
    pa.field("capture", _STR, nullable=False),
    pa.field("frame", pa.int64(), nullable=False),
    pa.field("ts", _TS, nullable=False),
]
ADDRESSES = [
    pa.field("src_ip", _STR),
    pa.field("dst_ip", _STR),
    pa.field("src_port", pa.int32()),
    pa.field("dst_port", pa.int32()),
]


def _schema(name: str, fields: list[pa.Field], doc: str) -> pa.Schema:
    return pa.schema(fields, metadata={"otsight.table": name, "otsight.doc": doc})


FLOWS = _schema(
    "flows",
    ENVELOPE
    + [
        pa.field("flow_id", pa.int64(), nullable=False),
        pa.field("last_frame", pa.int64()),
        pa.field("last_ts", _TS),
        pa.field("duration", pa.float64()),
        pa.field("transport", _STR),
        pa.field("ip_proto", pa.int16()),
    ]
    + ADDRESSES
    + [
        pa.field("src_mac", _STR),
        pa.field("dst_mac", _STR),
        pa.field("vlan", pa.int32()),
        pa.field("client_by", _STR),  # how the initiator was decided: syn, synack, port, first
        pa.field("conn_state", _STR),  # Zeek's conn_state codes (S0, SF, REJ, RSTO, ... OTH)
        pa.field("orig_pkts", pa.int64()),
        pa.field("orig_bytes", pa.int64()),  # wire bytes (frame lengths)
        pa.field("resp_pkts", pa.int64()),
        pa.field("resp_bytes", pa.int64()),
        pa.field("orig_payload_bytes", pa.int64()),  # TCP/UDP payload, retransmissions included
        pa.field("resp_payload_bytes", pa.int64()),
        pa.field("orig_stream_bytes", pa.int64()),  # reassembled, each byte once
        pa.field("resp_stream_bytes", pa.int64()),
        pa.field("orig_tcp_flags", pa.int32()),
        pa.field("resp_tcp_flags", pa.int32()),
        pa.field("app_protocol", _STR),  # framer chosen by content ("" when none)
        pa.field("pdus", pa.int64()),
        pa.field("gaps", pa.int64()),
        pa.field("gap_bytes", pa.int64()),
        pa.field("retransmissions", pa.int64()),
    ],
    "One row per bidirectional flow; src is the initiator (client).",
)

PDUS = _schema(
    "pdus",
    ENVELOPE
    + [
        pa.field("first_frame", pa.int64()),
        pa.field("flow_id", pa.int64()),
    ]
    + ADDRESSES
    + [
        pa.field("is_orig", pa.bool_()),
        pa.field("protocol", _STR),
        pa.field("length", pa.int32()),
    ],
    "One row per framed application PDU cut from a reassembled TCP stream.",
)

WEIRD = _schema(
    "weird",
    ENVELOPE
    + ADDRESSES
    + [
        pa.field("flow_id", pa.int64()),
        pa.field("name", _STR),
        pa.field("detail", pa.string()),
        pa.field("layer", _STR),
    ],
    "Malformed or unexpected traffic: one row per problem, with a reason.",
)

ARP = _schema(
    "arp",
    ENVELOPE
    + [
        pa.field("src_mac", _STR),
        pa.field("dst_mac", _STR),
        pa.field("vlan", pa.int32()),
        pa.field("op", pa.int16()),
        pa.field("op_name", _STR),
        pa.field("sender_mac", _STR),
        pa.field("sender_ip", _STR),
        pa.field("target_mac", _STR),
        pa.field("target_ip", _STR),
    ],
    "ARP requests and replies (who claims which IP address).",
)

LLDP = _schema(
    "lldp",
    ENVELOPE
    + [
        pa.field("src_mac", _STR),
        pa.field("vlan", pa.int32()),
        pa.field("chassis_id", pa.string()),
        pa.field("chassis_id_subtype", pa.int16()),
        pa.field("port_id", pa.string()),
        pa.field("port_id_subtype", pa.int16()),
        pa.field("ttl", pa.int32()),
        pa.field("port_description", pa.string()),
        pa.field("system_name", pa.string()),
        pa.field("system_description", pa.string()),
        pa.field("management_address", pa.string()),
    ],
    "LLDP advertisements: switch and device names and ports, for the asset inventory.",
)

L2_FRAMES = _schema(
    "l2_frames",
    ENVELOPE
    + [
        pa.field("src_mac", _STR),
        pa.field("dst_mac", _STR),
        pa.field("vlan", pa.int32()),
        pa.field("ethertype", pa.int32()),
        pa.field("protocol", _STR),
        pa.field("length", pa.int32()),
    ],
    "Industrial frames carried directly on Ethernet (PROFINET, GOOSE, SV, EtherCAT, PTP), "
    "routed by ethertype to their dissectors.",
)

PACKETS = _schema(
    "packets",
    ENVELOPE
    + [
        pa.field("length", pa.int32()),
        pa.field("caplen", pa.int32()),
        pa.field("linktype", pa.int32()),
        pa.field("src_mac", _STR),
        pa.field("dst_mac", _STR),
        pa.field("vlan", pa.int32()),
        pa.field("vlan_inner", pa.int32()),
        pa.field("ethertype", pa.int32()),
        pa.field("ip_version", pa.int8()),
        pa.field("ip_proto", pa.int16()),
        pa.field("ttl", pa.int16()),
        pa.field("fragment", pa.bool_()),
    ]
    + ADDRESSES
    + [
        pa.field("tcp_flags", pa.int32()),
        pa.field("seq", pa.int64()),
        pa.field("ack", pa.int64()),
        pa.field("window", pa.int32()),
        pa.field("payload_len", pa.int32()),
        pa.field("flow_id", pa.int64()),
        pa.field("is_orig", pa.bool_()),
    ],
    "Per-packet L2–L4 fields (written only with --packets: large).",
)

# ---- industrial protocol tables -----------------------------------------------------------
# Every protocol row carries the envelope, the addresses, the flow and its direction.
PDU_COMMON = (
    ENVELOPE
    + ADDRESSES
    + [
        pa.field("flow_id", pa.int64()),
        pa.field("is_orig", pa.bool_()),  # sent by the flow's initiator
    ]
)
_REQUEST_MATCH = [
    pa.field("request_frame", pa.int64()),  # on responses: the frame of the request
    pa.field("latency", pa.float64()),  # on responses: seconds since the request
]

MODBUS = _schema(
    "modbus",
    PDU_COMMON
    + [
        pa.field("is_request", pa.bool_()),
        pa.field("trans_id", pa.int32()),
        pa.field("unit_id", pa.int16()),
        pa.field("func_code", pa.int16()),  # 7-bit; exceptions set exception_code
        pa.field("func_name", _STR),
        pa.field("category", _STR),
        pa.field("exception_code", pa.int16()),
        pa.field("exception_name", _STR),
        pa.field("start_address", pa.int32()),  # responses carry their request's
        pa.field("quantity", pa.int32()),
        pa.field("byte_count", pa.int32()),
        pa.field("values", pa.list_(pa.int32())),  # registers or coil bits, read or written
        pa.field("write_address", pa.int32()),  # FC 23
        pa.field("write_quantity", pa.int32()),
        pa.field("and_mask", pa.int32()),  # FC 22
        pa.field("or_mask", pa.int32()),
        pa.field("sub_function", pa.int32()),  # FC 8
        pa.field("sub_function_name", _STR),
        pa.field("mei_type", pa.int16()),  # FC 43
        pa.field("read_device_id_code", pa.int16()),
        pa.field("object_id", pa.int16()),
        pa.field(
            "device_objects",
            pa.list_(
                pa.struct([("id", pa.int16()), ("name", pa.string()), ("value", pa.string())])
            ),
        ),
        pa.field("umas_code", pa.int16()),  # FC 90
        pa.field("umas_name", _STR),
    ]
    + _REQUEST_MATCH,
    "Modbus/TCP PDUs, requests and responses.",
)

TABLES: dict[str, pa.Schema] = {
    s.metadata[b"otsight.table"].decode(): s
    for s in (FLOWS, PDUS, WEIRD, ARP, LLDP, L2_FRAMES, PACKETS)
}
