"""PROFINET on Ethernet (ethertype 0x8892): DCP PDUs and RT frame accounting.

Every PROFINET frame starts with a FrameID (after any VLAN tags, which the L2 kernel has
already skipped). One numba pass over all 0x8892 frames reads the FrameID, the DCP header
(service, type, Xid, response delay, data length) of DCP frames (FrameID 0xFEFC–0xFEFF) and
the cyclic trailer (cycle counter, data status, transfer status) of cyclic RT frames
(0x0100–0x0FFF, 0x8000–0xFBFF, as Wireshark); a second pass counts frames per
(source MAC, destination MAC, VLAN, FrameID) with a small hash table, so cyclic I/O traffic
costs no Python per frame. DCP blocks (NameOfStation, IP suite, DeviceID, role, vendor
string, Set requests, factory resets, Signal) are few and decoded in Python.

Tables: ``profinet_dcp`` (one row per DCP PDU; responses paired with their request by
requester MAC, Xid and service) and ``profinet_rt`` (frame counts per chunk and key).
"""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.capture.addresses import mac_array
from otsight.dissect import _l2l4 as L
from otsight.dissect.base import ChunkContext, Dissector, Semantics, pairing_columns
from otsight.dissect.matching import RequestMatcher

ETHERTYPE = 0x8892

# ---- semantics (seeded from shared/PROTOCOLS.md 3.5 and Wireshark's packet-pn-dcp.c) -------
SERVICES = Semantics(
    "profinet",
    "service_id",
    {
        1: ("manufacturer_specific", None),
        2: ("manufacturer_specific", None),
        3: ("get", "discovery", ["T0888"]),
        4: ("set", "write", ["T0836"]),
        5: ("identify", "discovery", ["T0846"]),
        6: ("hello", "session"),
    },
)

SERVICE_TYPES = Semantics(
    "profinet",
    "service_type",
    {0: "request", 1: "response_success", 5: "response_unsupported"},
)

OPTIONS = Semantics(
    "profinet",
    "option",
    {
        1: "ip",
        2: "device",
        3: "dhcp",
        4: "reserved",
        5: "control",
        6: "device_initiative",
        255: "all_selector",
    },
)

# (option, suboption): what a block carries; for Set requests, what is being changed.
BLOCKS = Semantics(
    "profinet",
    "block",
    {
        (1, 1): ("ip/mac_address", "write", ["T0836"]),
        (1, 2): ("ip/ip_parameter", "write", ["T0836", "T0814", "T0827"]),
        (1, 3): ("ip/full_ip_suite", "write", ["T0836", "T0814", "T0827"]),
        (2, 1): ("device/type_of_station", "write", ["T0836"]),
        (2, 2): ("device/name_of_station", "write", ["T0836", "T0814"]),
        (2, 3): ("device/device_id", "write", ["T0836"]),
        (2, 4): ("device/device_role", "write", ["T0836"]),
        (2, 5): ("device/device_options", "write", ["T0836"]),
        (2, 6): ("device/alias_name", "write", ["T0836"]),
        (2, 7): ("device/device_instance", "write", ["T0836"]),
        (2, 8): ("device/oem_device_id", "write", ["T0836"]),
        (2, 10): ("device/rsi_properties", "write", ["T0836"]),
        (3, 12): ("dhcp/host_name", "write", ["T0836"]),
        (3, 43): ("dhcp/vendor_specific", "write", ["T0836"]),
        (3, 54): ("dhcp/server_identifier", "write", ["T0836"]),
        (3, 55): ("dhcp/parameter_request_list", "write", ["T0836"]),
        (3, 60): ("dhcp/class_identifier", "write", ["T0836"]),
        (3, 61): ("dhcp/client_identifier", "write", ["T0836"]),
        (3, 81): ("dhcp/fqdn", "write", ["T0836"]),
        (3, 97): ("dhcp/uuid_client_identifier", "write", ["T0836"]),
        (3, 255): ("dhcp/control_dhcp_for_address_resolution", "write", ["T0836"]),
        (5, 1): ("control/start_transaction", "session"),  # framing of a multi-block Set
        (5, 2): ("control/end_transaction", "session"),
        (5, 3): ("control/signal", "control", ["T0888"]),
        (5, 4): ("control/response", None),
        (5, 5): ("control/reset_factory_settings", "control", ["T0816", "T0809"]),
        (5, 6): ("control/reset_to_factory", "control", ["T0816", "T0809"]),
        (6, 1): ("device_initiative/device_initiative", "write", ["T0836"]),
        (255, 255): ("all_selector/all", None),
    },
)

BLOCK_QUALIFIERS = Semantics("profinet", "block_qualifier", {0: "temporary", 1: "permanent"})

RESET_MODES = Semantics(
    "profinet",
    "reset_mode",
    {
        2: "reset_application_data",
        3: "reset_application_data",
        4: "reset_communication_parameter",
        5: "reset_communication_parameter",
        6: "reset_engineering_parameter",
        7: "reset_engineering_parameter",
        8: "reset_all_stored_data",
        9: "reset_all_stored_data",
        10: "reset_engineering_parameter",
        11: "reset_engineering_parameter",
        16: "reset_to_factory_values",
        17: "reset_to_factory_values",
        18: "reset_and_restore_data",
        19: "reset_and_restore_data",
    },
)

# The legacy Reset Factory Settings block (Control / 5) has its own BlockQualifier values:
# only 0, which Wireshark shows as "Default"; RESET_MODES names Reset to Factory (Control / 6).
FACTORY_SETTINGS_MODES = Semantics("profinet", "factory_settings_mode", {0: "default"})

BLOCK_ERRORS = Semantics(
    "profinet",
    "block_error",
    {
        0: "ok",
        1: "option_unsupported",
        2: "suboption_unsupported_or_no_dataset",
        3: "suboption_not_set",
        4: "resource_error",
        5: "set_not_possible_local_reasons",
        6: "in_operation_set_not_possible",
    },
)

IP_BLOCK_INFO = Semantics(
    "profinet",
    "ip_block_info",
    {
        0x00: "ip_not_set",
        0x01: "ip_set",
        0x02: "ip_set_by_dhcp",
        0x80: "ip_not_set_address_conflict",
        0x81: "ip_set_address_conflict",
        0x82: "ip_set_by_dhcp_address_conflict",
    },
)

DEVICE_ROLES = {
    0x01: "IO-Device",
    0x02: "IO-Controller",
    0x04: "IO-Multidevice",
    0x08: "PN-Supervisor",
}

# FrameID classes (ranges as Wireshark 4.0's packet-pn-rt.c; cyclic: RTC3/2/1)
(FC_RESERVED, FC_PTCP_SYNC_FU, FC_PTCP_SYNC, FC_RTC3, FC_RTC2, FC_RTC1, FC_RTC1_MC) = range(7)
(FC_ALARM_HIGH, FC_ALARM_LOW, FC_DCP_HELLO, FC_DCP_GET_SET, FC_DCP_IDENT_REQ) = range(7, 12)
(FC_DCP_IDENT_RES, FC_PTCP_ANNOUNCE, FC_PTCP_FOLLOW_UP, FC_PTCP_DELAY) = range(12, 16)
FC_FRAGMENT = 16

FRAME_CLASSES = Semantics(
    "profinet",
    "frame_class",
    {
        FC_RESERVED: "reserved",
        FC_PTCP_SYNC_FU: "ptcp_rtsync_with_follow_up",
        FC_PTCP_SYNC: "ptcp_rtsync",
        FC_RTC3: "rt_class_3",
        FC_RTC2: "rt_class_2",
        FC_RTC1: "rt_class_1",
        FC_RTC1_MC: "rt_class_1_multicast",
        FC_ALARM_HIGH: "alarm_high",
        FC_ALARM_LOW: "alarm_low",
        FC_DCP_HELLO: "dcp_hello",
        FC_DCP_GET_SET: "dcp_get_set",
        FC_DCP_IDENT_REQ: "dcp_identify_request",
        FC_DCP_IDENT_RES: "dcp_identify_response",
        FC_PTCP_ANNOUNCE: "ptcp_announce",
        FC_PTCP_FOLLOW_UP: "ptcp_follow_up",
        FC_PTCP_DELAY: "ptcp_delay",
        FC_FRAGMENT: "fragmentation",
    },
)

# ---- kernels ------------------------------------------------------------------------------
FID, CLASS, CYCLE, DSTAT, TSTAT, SID, STYPE, XID, DELAY, DLEN, STATUS, SIMPLE = range(12)
NCOL = 12

OK, RT_TOO_SHORT, DCP_TOO_SHORT, DCP_BAD_LENGTH, DCP_BAD_SERVICE, DCP_BAD_TYPE = range(6)
DCP_FRAME_ID_MISMATCH = 6
WEIRD = {
    RT_TOO_SHORT: "pn_rt_frame_too_short",
    DCP_TOO_SHORT: "pn_dcp_header_too_short",
    DCP_BAD_LENGTH: "pn_dcp_data_length_beyond_frame",
    DCP_BAD_SERVICE: "pn_dcp_unknown_service",
    DCP_BAD_TYPE: "pn_dcp_unknown_service_type",
    DCP_FRAME_ID_MISMATCH: "pn_dcp_service_does_not_match_frame_id",
}


@njit(cache=True, inline="always")
def _b16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(cache=True, inline="always")
def _frame_class(fid):
    if fid < 0x0100:
        if fid == 0x20 or fid == 0x21:
            return FC_PTCP_SYNC_FU
        if fid == 0x80 or fid == 0x81:
            return FC_PTCP_SYNC
        return FC_RESERVED
    if fid <= 0x0FFF:
        return FC_RTC3
    if fid < 0x8000:
        return FC_RESERVED
    if fid <= 0xBFFF:
        return FC_RTC2
    if fid <= 0xF7FF:
        return FC_RTC1
    if fid <= 0xFBFF:
        return FC_RTC1_MC
    if fid == 0xFC01:
        return FC_ALARM_HIGH
    if fid == 0xFE01:
        return FC_ALARM_LOW
    if fid >= 0xFEFC and fid <= 0xFEFF:
        return FC_DCP_HELLO + (fid - 0xFEFC)
    if fid == 0xFF00 or fid == 0xFF01:
        return FC_PTCP_ANNOUNCE
    if fid == 0xFF20 or fid == 0xFF21:
        return FC_PTCP_FOLLOW_UP
    if fid >= 0xFF40 and fid <= 0xFF43:
        return FC_PTCP_DELAY
    if fid >= 0xFF80 and fid <= 0xFF8F:
        return FC_FRAGMENT
    return FC_RESERVED


@njit(cache=True, nogil=True, _nrt=False)
def _scan(buf, cols, pkt, offset, caplen, wirelen, out):
    """Fixed fields of PROFINET frames ``pkt`` (the FrameID is at ``cols[i, L3_OFF]``)."""
    n = pkt.shape[0]
    for j in range(n):
        i = pkt[j]
        for c in range(NCOL):
            out[j, c] = -1
        out[j, STATUS] = OK
        out[j, SIMPLE] = 0
        p = cols[i, L.L3_OFF]
        end = offset[i] + caplen[i]
        complete = caplen[i] >= wirelen[i]
        ln = end - p
        if ln < 2 or (ln < 6 and complete):  # Wireshark: a PN-RT PDU has at least 6 bytes
            out[j, STATUS] = RT_TOO_SHORT
            if ln < 2:
                continue
        fid = _b16(buf, p)
        out[j, FID] = fid
        cls = _frame_class(fid)
        out[j, CLASS] = cls
        if cls == FC_RTC3 or cls == FC_RTC2 or cls == FC_RTC1 or cls == FC_RTC1_MC:
            if ln >= 6 and complete:  # the trailer: last 4 bytes of a whole frame
                q = end - 4
                out[j, CYCLE] = _b16(buf, q)
                out[j, DSTAT] = buf[q + 2]
                out[j, TSTAT] = buf[q + 3]
            continue
        if cls < FC_DCP_HELLO or cls > FC_DCP_IDENT_RES:
            continue
        q = p + 2
        if ln < 12:
            if out[j, STATUS] == OK:
                out[j, STATUS] = DCP_TOO_SHORT
            continue
        sid = np.int64(buf[q])
        st = np.int64(buf[q + 1])
        out[j, SID] = sid
        out[j, STYPE] = st
        out[j, XID] = (_b16(buf, q + 2) << 16) | _b16(buf, q + 4)
        if sid == 5 and st == 0:
            out[j, DELAY] = _b16(buf, q + 6)
        dlen = _b16(buf, q + 8)
        out[j, DLEN] = dlen
        if sid < 1 or sid > 6:
            out[j, STATUS] = DCP_BAD_SERVICE
        elif st != 0 and st != 1 and st != 5:
            out[j, STATUS] = DCP_BAD_TYPE
        elif dlen > ln - 12:
            out[j, STATUS] = DCP_BAD_LENGTH
        elif (
            (cls == FC_DCP_HELLO and sid != 6)
            or (cls == FC_DCP_GET_SET and sid != 3 and sid != 4)
            or (cls == FC_DCP_IDENT_REQ and (sid != 5 or st != 0))
            or (cls == FC_DCP_IDENT_RES and (sid != 5 or st == 0))
        ):
            out[j, STATUS] = DCP_FRAME_ID_MISMATCH
        # Identify-All request (the one frequent DCP PDU): nothing for Python to decode
        if sid == 5 and st == 0 and dlen == 4 and ln >= 16:
            r = q + 10
            if buf[r] == 0xFF and buf[r + 1] == 0xFF and buf[r + 2] == 0 and buf[r + 3] == 0:
                out[j, SIMPLE] = 1


# columns of the per-group output of _count
G_FIRST, G_LAST, G_FRAMES, G_BYTES, G_INVALID, G_STOP, G_PROBLEM, G_BACKUP, G_IGNORE = range(9)
G_FIRST_CYCLE, G_LAST_CYCLE, G_LAST_DS, G_SRC, G_DST, G_KEY = range(9, 15)
GCOL = 15


@njit(cache=True, inline="always")
def _slot(src, dst, key, mask):
    h = (src * 0x7E3779B97F4A7C15) ^ (dst * 0x42B2AE3D27D4EB4F) ^ (key * 0x165667B1)
    h ^= h >> 29
    return h & mask


@njit(cache=True, nogil=True)
def _count(cols, pkt, wirelen, fields, groups):
    """Count frames per (src MAC, dst MAC, VLAN, FrameID) with a growing open-addressing hash
    table (kept small: the keys are few). ``groups[g]`` aggregates group ``g``, in order of
    first appearance; returns the number of groups."""
    n = pkt.shape[0]
    cap = 256
    mask = cap - 1
    slots = np.full(cap, -1, np.int64)
    ng = 0
    for j in range(n):
        i = pkt[j]
        src = cols[i, L.ETH_SRC]
        dst = cols[i, L.ETH_DST]
        key = ((cols[i, L.VLAN1] + 1) << 17) | (fields[j, FID] + 1)
        s = _slot(src, dst, key, mask)
        while True:
            g = slots[s]
            if g < 0:
                break
            if groups[g, G_SRC] == src and groups[g, G_DST] == dst and groups[g, G_KEY] == key:
                break
            s = (s + 1) & mask
        if g < 0:
            g = ng
            ng += 1
            slots[s] = g
            groups[g, G_FIRST] = j
            for c in range(G_FRAMES, G_SRC):
                groups[g, c] = 0
            groups[g, G_FIRST_CYCLE] = -1
            groups[g, G_LAST_CYCLE] = -1
            groups[g, G_LAST_DS] = -1
            groups[g, G_SRC] = src
            groups[g, G_DST] = dst
            groups[g, G_KEY] = key
            if 2 * ng > cap:  # grow and re-insert every group
                cap *= 2
                mask = cap - 1
                slots = np.full(cap, -1, np.int64)
                for h in range(ng):
                    t = _slot(groups[h, G_SRC], groups[h, G_DST], groups[h, G_KEY], mask)
                    while slots[t] >= 0:
                        t = (t + 1) & mask
                    slots[t] = h
        groups[g, G_LAST] = j
        groups[g, G_FRAMES] += 1
        groups[g, G_BYTES] += wirelen[i]
        ds = fields[j, DSTAT]
        if ds >= 0:
            if groups[g, G_FIRST_CYCLE] < 0:
                groups[g, G_FIRST_CYCLE] = fields[j, CYCLE]
            groups[g, G_LAST_CYCLE] = fields[j, CYCLE]
            groups[g, G_LAST_DS] = ds
            if (ds & 0x04) == 0:
                groups[g, G_INVALID] += 1
            if (ds & 0x10) == 0:
                groups[g, G_STOP] += 1
            if (ds & 0x20) == 0:
                groups[g, G_PROBLEM] += 1
            if (ds & 0x01) == 0:
                groups[g, G_BACKUP] += 1
            if (ds & 0x80) != 0 or fields[j, TSTAT] != 0:
                groups[g, G_IGNORE] += 1
    return ng


# ---- schemas ------------------------------------------------------------------------------
_STR = E._STR
_MACS = [pa.field("src_mac", _STR), pa.field("dst_mac", _STR), pa.field("vlan", pa.int32())]

BLOCK_ERROR_TYPE = pa.struct(
    [("block", pa.string()), ("error", pa.int16()), ("error_name", pa.string())]
)

PROFINET_DCP = E._schema(
    "profinet_dcp",
    E.PDU_COMMON
    + _MACS
    + [
        pa.field("frame_id", pa.int32()),
        pa.field("is_request", pa.bool_()),
        pa.field("service_id", pa.int16()),
        pa.field("service_name", _STR),
        pa.field("service_type", pa.int16()),
        pa.field("service_type_name", _STR),
        pa.field("xid", pa.int64()),
        pa.field("response_delay", pa.int32()),  # Identify requests (multicast header)
        pa.field("dcp_data_length", pa.int32()),
        pa.field("category", _STR),
        pa.field("techniques", pa.list_(pa.string())),
        # blocks carried: Set = what is set, Get = what is asked, Identify = filters / answers
        pa.field("options", pa.list_(pa.string())),
        pa.field("station_name", pa.string()),  # NameOfStation
        pa.field("vendor_string", pa.string()),  # DeviceVendorValue ("type of station")
        pa.field("vendor_id", pa.int32()),
        pa.field("device_id", pa.int32()),
        pa.field("device_role", pa.int16()),
        pa.field("device_role_names", pa.list_(pa.string())),
        pa.field("device_instance", pa.int32()),  # high << 8 | low
        pa.field("alias_name", pa.string()),
        pa.field("mac_address", pa.string()),  # IP/MAC block
        pa.field("ip", pa.string()),
        pa.field("netmask", pa.string()),
        pa.field("gateway", pa.string()),
        pa.field("ip_block_info", pa.int32()),
        pa.field("ip_block_info_name", _STR),
        pa.field("ip_set", pa.bool_()),
        pa.field("ip_conflict", pa.bool_()),
        pa.field("block_qualifier", pa.int32()),  # Set: 0 temporary / 1 permanent
        pa.field("block_qualifier_name", _STR),
        pa.field("reset_mode", pa.int32()),  # Control reset: BlockQualifier reset mode
        pa.field("reset_mode_name", _STR),
        pa.field("signal_value", pa.int32()),  # Control/Signal (0x0100 flash once)
        pa.field("block_errors", pa.list_(BLOCK_ERROR_TYPE)),  # Set/Get responses
    ]
    + E._REQUEST_MATCH,
    "PROFINET DCP PDUs (discovery and basic configuration): one row per PDU.",
)

PROFINET_RT = E._schema(
    "profinet_rt",
    E.PDU_COMMON
    + _MACS
    + [
        pa.field("frame_id", pa.int32()),
        pa.field("frame_class", _STR),
        pa.field("cyclic", pa.bool_()),
        pa.field("last_frame", pa.int64()),
        pa.field("last_ts", pa.timestamp("ns", tz="UTC")),
        pa.field("frames", pa.int64()),
        pa.field("bytes", pa.int64()),
        pa.field("first_cycle_counter", pa.int32()),
        pa.field("last_cycle_counter", pa.int32()),
        pa.field("last_data_status", pa.int16()),
        pa.field("invalid_frames", pa.int64()),  # DataValid = 0
        pa.field("stop_frames", pa.int64()),  # ProviderState = Stop
        pa.field("problem_frames", pa.int64()),  # StationProblemIndicator = Problem
        pa.field("backup_frames", pa.int64()),  # State = Backup
        pa.field("ignore_frames", pa.int64()),  # DataStatus.Ignore or TransferStatus != 0
    ],
    "PROFINET frames counted per chunk and (src MAC, dst MAC, VLAN, FrameID): cyclic I/O, "
    "alarms, PTCP, DCP, fragments. `frame`/`ts` are the group's first frame in the chunk.",
)

SCHEMA = PROFINET_DCP  # the main table (see also PROFINET_RT)


# ---- DCP blocks (Python: few per device) -----------------------------------------------------
def _text(raw: bytes) -> str:
    """As Wireshark's ENC_ASCII strings: stop at NUL, non-ASCII bytes become U+FFFD."""
    cut = raw.split(b"\0", 1)[0]
    return cut.decode("ascii", errors="replace")


def _ipv4(raw: bytes) -> str:
    return str(ipaddress.IPv4Address(raw))


def _block_name(option: int, suboption: int) -> str:
    key = (option, suboption)
    if key in BLOCKS:
        return BLOCKS.name(key)
    return f"{OPTIONS.name(option, f'option_{option}')}/suboption_{suboption}"


def decode_blocks(data: bytes, service_id: int, service_type: int) -> tuple[dict, str | None]:
    """Blocks of one DCP PDU (``data``: the PDU from ServiceID on). Returns (fields, problem)."""
    f: dict = {"options": [], "block_errors": None}
    dlen = int.from_bytes(data[8:10], "big")
    body = data[10 : 10 + dlen]
    is_resp = service_type != 0
    with_info = (
        (service_id == 5 and is_resp)
        or (service_id == 6 and not is_resp)
        or (service_id == 3 and is_resp)
    )
    with_qualifier = service_id == 4 and not is_resp
    p = 0
    n = len(body)
    if service_id == 3 and not is_resp:  # Get request: bare option/suboption selectors
        while p + 2 <= n:
            f["options"].append(_block_name(body[p], body[p + 1]))
            p += 2
        return f, ("pn_dcp_odd_get_selectors" if p != n else None)
    problem = None
    while p < n:
        if p + 4 > n:
            problem = "pn_dcp_block_header_truncated"
            break
        opt, sub = body[p], body[p + 1]
        blen = int.from_bytes(body[p + 2 : p + 4], "big")
        v = body[p + 4 : p + 4 + blen]
        if len(v) < blen:
            problem = "pn_dcp_block_length_beyond_data"
        name = _block_name(opt, sub)
        f["options"].append(name)
        if not _block(f, opt, sub, v, with_info, with_qualifier):
            problem = problem or "pn_dcp_block_too_short"
        if problem == "pn_dcp_block_length_beyond_data":
            break
        p += 4 + blen
        if blen & 1 and p < n:
            p += 1  # padding to an even block size
    return f, problem


def _block(f: dict, opt: int, sub: int, v: bytes, with_info: bool, with_q: bool) -> bool:
    """Decode one block's value into ``f``; False if the value is too short for its type."""
    if opt in (1, 2, 3, 6):
        if with_info:
            if len(v) < 2:
                return False
            info = int.from_bytes(v[:2], "big")
            if opt == 1 and sub == 2 and f.get("ip_block_info") is None:
                f["ip_block_info"] = info
            v = v[2:]
        elif with_q:
            if len(v) < 2:
                return False
            f.setdefault("block_qualifier", int.from_bytes(v[:2], "big"))
            v = v[2:]
    if opt == 1:
        if sub == 1:
            if len(v) < 6:
                return False
            f.setdefault("mac_address", ":".join(f"{x:02x}" for x in v[:6]))
        elif sub in (2, 3):
            if len(v) < 12:
                return False
            f.setdefault("ip", _ipv4(v[0:4]))
            f.setdefault("netmask", _ipv4(v[4:8]))
            f.setdefault("gateway", _ipv4(v[8:12]))
    elif opt == 2:
        if sub == 1:
            f.setdefault("vendor_string", _text(v))
        elif sub == 2:
            f.setdefault("station_name", _text(v))
        elif sub == 3:
            if len(v) < 4:
                return False
            f.setdefault("vendor_id", int.from_bytes(v[0:2], "big"))
            f.setdefault("device_id", int.from_bytes(v[2:4], "big"))
        elif sub == 4:
            if len(v) < 1:
                return False
            f.setdefault("device_role", v[0])
        elif sub == 6:
            f.setdefault("alias_name", _text(v))
        elif sub == 7:
            if len(v) < 2:
                return False
            f.setdefault("device_instance", (v[0] << 8) | v[1])
    elif opt == 5:
        if sub in (1, 2, 3, 5, 6):
            if len(v) < 2:
                return False
            q = int.from_bytes(v[:2], "big")
            if sub in (5, 6):
                if "reset_mode" not in f:
                    f["reset_mode"], f["reset_suboption"] = q, sub
            else:
                if sub == 3:
                    f.setdefault("block_qualifier", q)
                    if len(v) < 4:
                        return False
                    f.setdefault("signal_value", int.from_bytes(v[2:4], "big"))
        elif sub == 4:
            if len(v) < 3:
                return False
            errs = f["block_errors"] if f["block_errors"] is not None else []
            errs.append(
                {
                    "block": _block_name(v[0], v[1]),
                    "error": v[2],
                    "error_name": BLOCK_ERRORS.name(v[2]),
                }
            )
            f["block_errors"] = errs
    return True


# ---- the dissector ------------------------------------------------------------------------
_CATEGORY_RANK = {"control": 4, "write": 3, "discovery": 2, "session": 1}


_BLOCK_BY_NAME = {m.name: m for m in BLOCKS.rows.values()}


def _classify(service_id: int, fields: dict, is_request: bool) -> tuple[str | None, list[str]]:
    """Category and ATT&CK techniques of one PDU: by service, refined by what a Set sets."""
    m = SERVICES.rows.get(service_id)
    cat = m.category if m else None
    techs = list(m.techniques) if m else []
    if service_id != 4:
        return cat, techs
    names = list(fields.get("options") or [])
    if not is_request:  # a Set response names what was set in its Control/Response blocks
        names = [e["block"] for e in fields.get("block_errors") or []]
    if names and all(nm.startswith("control/") for nm in names):
        cat, techs = "control", []  # Signal, transactions, resets: no parameter is changed
    for nm in names:
        bm = _BLOCK_BY_NAME.get(nm)
        if bm is None or bm.category is None:
            continue
        if _CATEGORY_RANK.get(bm.category, 0) > _CATEGORY_RANK.get(cat or "", 0):
            cat = bm.category
        techs += [t for t in bm.techniques if t not in techs]
    return cat, techs


def _null_str(n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()), pa.array([], pa.string()))


def _names(sem: Semantics, codes: np.ndarray) -> pa.Array:
    """Names of codes; negative codes (absent) are null."""
    names = sem.names(np.maximum(codes, 0))
    return pa.DictionaryArray.from_arrays(
        pa.array(names.indices.to_numpy(zero_copy_only=False), mask=codes < 0), names.dictionary
    )


def _reset_names(rows: list[dict], reset: np.ndarray) -> pa.Array:
    """Reset modes named by the block that carried them (Reset Factory Settings, the legacy
    block, or Reset to Factory); null where no reset block."""
    names = [
        None
        if q < 0
        else (FACTORY_SETTINGS_MODES if r.get("reset_suboption") == 5 else RESET_MODES).name(q)
        for r, q in zip(rows, reset.tolist(), strict=True)
    ]
    return pa.array(names, pa.string()).dictionary_encode()


def _col(v: np.ndarray, dtype) -> pa.Array:
    return pa.array(v.astype(dtype), mask=v < 0)


class ProfinetDissector(Dissector):
    name = "profinet"
    tables = {"profinet_dcp": PROFINET_DCP, "profinet_rt": PROFINET_RT}
    ethertypes = (ETHERTYPE,)
    semantics = (
        SERVICES,
        SERVICE_TYPES,
        OPTIONS,
        BLOCKS,
        BLOCK_QUALIFIERS,
        RESET_MODES,
        FACTORY_SETTINGS_MODES,
        BLOCK_ERRORS,
        IP_BLOCK_INFO,
        FRAME_CLASSES,
    )

    def __init__(self) -> None:
        self.matcher = RequestMatcher(width=1)

    def process(self, ctx: ChunkContext) -> dict[str, pa.RecordBatch]:
        pkt = ctx.ethertype(ETHERTYPE)
        n = pkt.shape[0]
        if n == 0:
            return {}
        chunk = ctx.chunk
        offset = chunk.offset.astype(np.int64, copy=False)
        caplen = chunk.caplen.astype(np.int64, copy=False)
        wirelen = chunk.wirelen.astype(np.int64, copy=False)
        out = np.empty((n, NCOL), dtype=np.int64)
        _scan(chunk.buf, ctx.cols, pkt, offset, caplen, wirelen, out)

        result: dict[str, pa.RecordBatch] = {}
        bad = np.flatnonzero(out[:, STATUS] != OK)
        if bad.shape[0]:
            ctx.weird(
                self._envelope(ctx, pkt[bad]),
                [WEIRD[int(s)] for s in out[bad, STATUS]],
                [
                    f"frame_id 0x{int(f) & 0xFFFF:04x}, {int(ln)} bytes"
                    for f, ln in zip(out[bad, FID], self._length(ctx, pkt[bad]), strict=True)
                ],
                "profinet",
            )
        result["profinet_rt"] = self._rt(ctx, pkt, out, wirelen)
        # content probe: a DCP row needs a known service and service type (else weird only)
        dcp = np.flatnonzero(
            (out[:, SID] >= 0)
            & (out[:, STATUS] != DCP_BAD_SERVICE)
            & (out[:, STATUS] != DCP_BAD_TYPE)
        )
        if dcp.shape[0]:
            result["profinet_dcp"] = self._dcp(ctx, pkt, out, dcp)
        return result

    @staticmethod
    def _length(ctx: ChunkContext, pkt: np.ndarray) -> np.ndarray:
        """Captured bytes of packets ``pkt`` from the FrameID on."""
        ch = ctx.chunk
        return ch.offset[pkt].astype(np.int64) + ch.caplen[pkt] - ctx.cols[pkt, L.L3_OFF]

    @staticmethod
    def _envelope(ctx: ChunkContext, pkt: np.ndarray) -> dict[str, pa.Array]:
        """Envelope of the rows of packets ``pkt`` (only rows written: never every RT frame)."""
        env = ctx.packet_envelope(pkt)
        n = pkt.shape[0]
        env["src_ip"] = _null_str(n)  # Ethernet frames: addresses are MACs
        env["dst_ip"] = _null_str(n)
        c = ctx.cols
        env["src_mac"] = mac_array(c[pkt, L.ETH_SRC])
        env["dst_mac"] = mac_array(c[pkt, L.ETH_DST])
        vlan = c[pkt, L.VLAN1]
        env["vlan"] = pa.array(vlan.astype(np.int32), mask=vlan < 0)
        return env

    def _rt(self, ctx, pkt, out, wirelen) -> pa.RecordBatch:
        groups = np.empty((pkt.shape[0], GCOL), dtype=np.int64)  # pages touched: groups only
        ng = _count(ctx.cols, pkt, wirelen, out, groups)
        g = groups[:ng]
        first = g[:, G_FIRST]
        last = g[:, G_LAST]
        fid = out[first, FID]
        cls = out[first, CLASS]
        cyclic = np.isin(cls, [FC_RTC3, FC_RTC2, FC_RTC1, FC_RTC1_MC])
        batch = self._envelope(ctx, pkt[first])
        batch.update(
            {
                "frame_id": _col(fid, np.int32),
                "frame_class": _names(FRAME_CLASSES, cls),
                "cyclic": pa.array(cyclic),
                "last_frame": pa.array(ctx.chunk.first_frame + pkt[last]),
                "last_ts": pa.array(
                    ctx.chunk.ts[pkt[last]].astype(np.int64), type=pa.timestamp("ns", tz="UTC")
                ),
                "frames": pa.array(g[:, G_FRAMES]),
                "bytes": pa.array(g[:, G_BYTES]),
                "first_cycle_counter": _col(g[:, G_FIRST_CYCLE], np.int32),
                "last_cycle_counter": _col(g[:, G_LAST_CYCLE], np.int32),
                "last_data_status": _col(g[:, G_LAST_DS], np.int16),
            }
        )
        for col, gc in (
            ("invalid_frames", G_INVALID),
            ("stop_frames", G_STOP),
            ("problem_frames", G_PROBLEM),
            ("backup_frames", G_BACKUP),
            ("ignore_frames", G_IGNORE),
        ):
            batch[col] = pa.array(g[:, gc])
        return pa.RecordBatch.from_pydict(batch, schema=PROFINET_RT)

    def _dcp(self, ctx, pkt, out, dcp) -> pa.RecordBatch:
        m = dcp.shape[0]
        o = out[dcp]
        sid, st = o[:, SID], o[:, STYPE]
        is_req = st == 0
        rows: list[dict] = [{} for _ in range(m)]
        categories: list[str | None] = []
        techniques: list[list[str]] = []
        problems: list[tuple[int, str, str]] = []
        buf = ctx.chunk.buf
        for k in range(m):
            s, t = int(sid[k]), int(st[k])
            f: dict = {"options": []}
            if o[k, SIMPLE]:
                f["options"] = ["all_selector/all"]
            else:
                i = int(dcp[k])
                q = int(pkt[i])
                a = int(ctx.cols[q, L.L3_OFF]) + 2
                data = bytes(buf[a : int(ctx.chunk.offset[q]) + int(ctx.chunk.caplen[q])])
                f, problem = decode_blocks(data, s, t)
                if problem is not None and o[k, STATUS] == OK:
                    problems.append((int(i), problem, f"service {s}, type {t}"))
            rows[k] = f
            cat, techs = _classify(s, f, t == 0)
            categories.append(cat)
            techniques.append(techs)

        # pair responses with requests: requester MAC, (Xid, service)
        c = ctx.cols
        p = pkt[dcp]
        requester = np.where(is_req, c[p, L.ETH_SRC], c[p, L.ETH_DST])
        key2 = (o[:, XID] << 8) | sid
        frame = ctx.chunk.first_frame + p
        ts = ctx.chunk.ts[p].astype(np.int64)
        matched, req_frame, req_ts, _ = self.matcher.match(
            requester, key2, is_req, frame, ts, np.zeros((m, 1), np.int64)
        )

        def opt(name: str, typ: pa.DataType) -> pa.Array:
            return pa.array([r.get(name) for r in rows], type=typ)

        role = np.array([r.get("device_role", -1) for r in rows], dtype=np.int64)
        ipinfo = np.array([r.get("ip_block_info", -1) for r in rows], dtype=np.int64)
        qual = np.array([r.get("block_qualifier", -1) for r in rows], dtype=np.int64)
        reset = np.array([r.get("reset_mode", -1) for r in rows], dtype=np.int64)
        batch = self._envelope(ctx, pkt[dcp])
        batch.update(
            {
                "frame_id": pa.array(o[:, FID].astype(np.int32)),
                "is_request": pa.array(is_req),
                "service_id": pa.array(sid.astype(np.int16)),
                "service_name": SERVICES.names(sid),
                "service_type": pa.array(st.astype(np.int16)),
                "service_type_name": SERVICE_TYPES.names(st),
                "xid": pa.array(o[:, XID]),
                "response_delay": _col(o[:, DELAY], np.int32),
                "dcp_data_length": pa.array(o[:, DLEN].astype(np.int32)),
                "category": pa.array(categories, type=pa.string()).dictionary_encode(),
                "techniques": pa.array(techniques, type=pa.list_(pa.string())),
                "options": pa.array([r.get("options") for r in rows], pa.list_(pa.string())),
                "station_name": opt("station_name", pa.string()),
                "vendor_string": opt("vendor_string", pa.string()),
                "vendor_id": opt("vendor_id", pa.int32()),
                "device_id": opt("device_id", pa.int32()),
                "device_role": _col(role, np.int16),
                "device_role_names": pa.array(
                    [
                        [nm for bit, nm in DEVICE_ROLES.items() if r & bit] if r >= 0 else None
                        for r in role.tolist()
                    ],
                    type=pa.list_(pa.string()),
                ),
                "device_instance": opt("device_instance", pa.int32()),
                "alias_name": opt("alias_name", pa.string()),
                "mac_address": opt("mac_address", pa.string()),
                "ip": opt("ip", pa.string()),
                "netmask": opt("netmask", pa.string()),
                "gateway": opt("gateway", pa.string()),
                "ip_block_info": _col(ipinfo, np.int32),
                "ip_block_info_name": _names(IP_BLOCK_INFO, ipinfo),
                "ip_set": pa.array((ipinfo & 0x03) != 0, mask=ipinfo < 0),
                "ip_conflict": pa.array((ipinfo & 0x80) != 0, mask=ipinfo < 0),
                "block_qualifier": _col(qual, np.int32),
                "block_qualifier_name": _names(BLOCK_QUALIFIERS, qual),
                "reset_mode": _col(reset, np.int32),
                "reset_mode_name": _reset_names(rows, reset),
                "signal_value": opt("signal_value", pa.int32()),
                "block_errors": pa.array(
                    [r.get("block_errors") for r in rows], type=pa.list_(BLOCK_ERROR_TYPE)
                ),
                **pairing_columns(matched, req_frame, req_ts, ts),
            }
        )
        if problems:
            idx = np.array([i for i, _, _ in problems], dtype=np.int64)
            ctx.weird(
                self._envelope(ctx, pkt[idx]),
                [pname for _, pname, _ in problems],
                [d for _, _, d in problems],
                "profinet",
            )
        return pa.RecordBatch.from_pydict(batch, schema=PROFINET_DCP)


DISSECTOR = ProfinetDissector
