"""BACnet/IP and BACnet/Ethernet: field-exact against Wireshark over the corpus; known values
Wireshark shows only as text; content detection; robustness on mutated real messages."""

from __future__ import annotations

import json
import random
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from otsight.dissect import bacnet as B
from otsight.encode import packets as P
from otsight.encode.pcapfile import PcapWriter
from otsight.testing.decode import decode
from tests.dissect.tshark_diff import (
    SKIP,
    Comparison,
    as_int,
    corpus_files,
    first,
    ours_by_frame,
    tshark_pdus,
    values,
)

COLUMNS = [
    "link",
    "bvlc_function",
    "bvlc_length",
    "forwarded_ip",
    "forwarded_port",
    "npdu_version",
    "npdu_control",
    "dnet",
    "dadr",
    "snet",
    "sadr",
    "hop_count",
    "network_message",
    "apdu_type",
    "service_choice",
    "invoke_id",
    "segmented",
    "more_follows",
    "segmented_response_accepted",
    "sequence_number",
    "window_size",
    "object_type",
    "object_instance",
    "property_id",
    "value",
    "vendor_id",
    "low_limit",
    "high_limit",
    "error_class",
    "error_code",
    "reject_reason",
    "abort_reason",
    "abort_by_server",
]

# services whose first object identifier / property otsight reports (see bacnet._service)
OBJECT_SERVICES = {(0, 12), (0, 15), (0, 14), (0, 16), (3, 12), (3, 14), (0, 6), (0, 7)}
PROPERTY_SERVICES = {(0, 12), (0, 15), (0, 14), (0, 16), (3, 12), (3, 14)}


def _bool(node, name):
    v = first(node, name)
    return None if v is None else v == "1"


def _npdu(name, conv=as_int):
    return lambda p: conv(first(p["bacnet"], name)) if p["bacnet"] else None


def _apdu_key(p):
    a = p["bacapp"]
    typ = as_int(first(a, "bacapp.type"))
    svc = as_int(first(a, "bacapp.confirmed_service") or first(a, "bacapp.unconfirmed_service"))
    return typ, svc


def _unsegmented(p):
    # Wireshark decodes a segmented message's service data once, in the frame that completes
    # its reassembly; otsight reads what the first segment holds, in that segment's frame
    return first(p["bacapp"], "bacapp.segmented_request") != "1"


def _object(field):
    def get(p):
        key = _apdu_key(p)
        if not _unsegmented(p):
            return SKIP
        if key in OBJECT_SERVICES or key == (1, 0):
            return as_int(first(p["bacapp"], field))
        if key == (1, 1):  # I-Have: device, then the object
            v = values(p["bacapp"], field)
            return as_int(v[1]) if len(v) > 1 else SKIP
        return SKIP

    return get


def _property(p):
    if _apdu_key(p) not in PROPERTY_SERVICES or not _unsegmented(p):
        return SKIP
    return as_int(first(p["bacapp"], "bacapp.property_identifier"))


def _dadr(prefix):
    def get(p):
        n = p["bacnet"]
        if not n or first(n, f"bacnet.{prefix}len") is None:
            return None
        mstp = first(n, f"bacnet.{prefix}adr_mstp")
        if mstp is not None:
            return f"{int(mstp):02x}"
        other = first(n, f"bacnet.{prefix}adr_eth") or first(n, f"bacnet.{prefix}adr_tmp")
        return other.replace(":", "") if other is not None else ""

    return get


_LABEL = re.compile(r"^[\w-]+: [^']*'(.*)'$", re.S)


def _value(p):
    """Identity property values: Wireshark shows them only in a label ("name: charset 'v'")."""
    if _apdu_key(p) not in {(3, 12), (0, 15)}:
        return SKIP
    prop = as_int(first(p["bacapp"], "bacapp.property_identifier"))
    if prop not in B.IDENTITY_PROPERTIES:
        return SKIP
    for key in p["bacapp"]:
        m = _LABEL.match(key)
        if m and not key.startswith("Password"):
            return m.group(1)
    return SKIP


def _header_net(p, side):
    """DNET/SNET of the NPDU header (Wireshark also names network-message payloads dnet)."""
    n = p["bacnet"]
    flag = "bacnet.control_dest" if side == "d" else "bacnet.control_src"
    if not n or first(n, flag) != "1":
        return None
    return as_int(first(n, f"bacnet.{side}net"))


def _error(p, name):
    """Error-PDU class/code (Wireshark uses the same fields inside RPM-ACK access errors)."""
    if _apdu_key(p)[0] != 5:
        return SKIP
    return as_int(first(p["bacapp"], name))


def _segmented_response_accepted(p):
    if _apdu_key(p)[0] != 0:
        return None
    return _bool(p["bacapp"], "bacapp.SA")


def _abort_srv(p):
    if _apdu_key(p)[0] != 7:
        return None
    return _bool(p["bacapp"], "bacapp.SRV")


FIELDS = {
    "bvlc_function": lambda p: as_int(first(p["bvlc"], "bvlc.function")),
    "bvlc_length": lambda p: as_int(first(p["bvlc"], "bvlc.length")),
    "forwarded_ip": lambda p: first(p["bvlc"], "bvlc.fwd_ip"),
    "forwarded_port": lambda p: as_int(first(p["bvlc"], "bvlc.fwd_port")),
    "npdu_version": _npdu("bacnet.version"),
    "npdu_control": _npdu("bacnet.control"),
    "dnet": lambda p: _header_net(p, "d"),
    "dadr": _dadr("d"),
    "snet": lambda p: _header_net(p, "s"),
    "sadr": _dadr("s"),
    "hop_count": _npdu("bacnet.hopc"),
    "network_message": _npdu("bacnet.mesgtyp"),
    "apdu_type": lambda p: as_int(first(p["bacapp"], "bacapp.type")),
    "service_choice": lambda p: _apdu_key(p)[1],
    "invoke_id": lambda p: as_int(first(p["bacapp"], "bacapp.invoke_id")),
    "segmented": lambda p: _bool(p["bacapp"], "bacapp.segmented_request"),
    "more_follows": lambda p: _bool(p["bacapp"], "bacapp.more_segments"),
    "segmented_response_accepted": _segmented_response_accepted,
    "sequence_number": lambda p: as_int(first(p["bacapp"], "bacapp.sequence_number")),
    "window_size": lambda p: as_int(first(p["bacapp"], "bacapp.window_size")),
    "object_type": _object("bacapp.objectType"),
    "object_instance": _object("bacapp.instance_number"),
    "property_id": _property,
    "value": _value,
    "vendor_id": lambda p: (
        as_int(first(p["bacapp"], "bacapp.vendor_identifier")) if _apdu_key(p) == (1, 0) else SKIP
    ),
    "low_limit": lambda p: as_int(first(p["bacapp"], "bacapp.who_is.low_limit")),
    "high_limit": lambda p: as_int(first(p["bacapp"], "bacapp.who_is.high_limit")),
    "error_class": lambda p: _error(p, "bacapp.error_class"),
    "error_code": lambda p: _error(p, "bacapp.error_code"),
    "reject_reason": lambda p: as_int(first(p["bacapp"], "bacapp.reject_reason")),
    "abort_reason": lambda p: as_int(first(p["bacapp"], "bacapp.abort_reason")),
    "abort_by_server": _abort_srv,
}


def _ours(table):
    rows = ours_by_frame(table, COLUMNS)
    for pdus in rows.values():
        for r in pdus:
            fn = r["bvlc_function"]
            # Wireshark's bvlc.length is the BVLC header's length when an NPDU follows
            if fn == 0x04:
                r["bvlc_length"] = 10
            elif fn is not None and fn > 0x08:
                r["bvlc_length"] = 4
            for k in ("dadr", "sadr"):
                if r[k] is not None:
                    r[k] = r[k].replace(":", "")
            if r["link"] == "bacnet_ethernet":
                r["bvlc_length"] = None
    return rows


def test_bacnet_fields_match_wireshark(corpus, tshark):
    rows = corpus_files("bacnet")
    assert len(rows) >= 12
    cmp = Comparison("bacnet")
    for row in rows:
        path = Path(corpus) / row["local_path"]
        d = decode(path)
        assert not d.failures, d.failures
        theirs = tshark_pdus(
            tshark, path, ["bvlc", "bacnet", "bacapp"], "bvlc || bacnet", row.get("decode_as", "")
        )
        cmp.join(row["local_path"], _ours(d.tables["bacnet"]), theirs, FIELDS)
    # Comparison.rates() inserts zero counts into the ``differ`` defaultdict, so
    # assert_target's ``assert not self.differ`` fails even at full agreement: check counts
    nonzero = {k: v for k, v in cmp.differ.items() if v}
    cmp.differ.clear()
    cmp.differ.update(nonzero)
    if not nonzero:
        print(cmp.report())
        low = {n: r for n, r in cmp.rates().items() if r < 0.995}
        assert cmp.agree and not low and not any(cmp.differ.values()), cmp.report()
        return
    cmp.assert_target()


# ---- known values Wireshark shows only as text ------------------------------------------------
def _rows(corpus, name, frames=None):
    t = decode(Path(corpus) / "bacnet" / name).tables["bacnet"]
    rows = t.to_pylist()
    return {r["frame"]: r for r in rows if frames is None or r["frame"] in frames}


def test_identity_values_and_pairing(corpus):
    rows = _rows(corpus, "ICS-Security-Tools__bacnet_test.pcap")
    assert 1 not in rows and 2 not in rows  # empty datagrams to 47808 are not BACnet
    assert rows[8]["property_name"] == "vendor_name" and rows[8]["value"] == "JCI"
    assert rows[10]["value"] == "5.1.0.4400"  # UCS-2 firmware-revision
    assert rows[4]["object_type_name"] == "device" and rows[4]["object_instance"] == 4194303
    assert rows[4]["request_frame"] == 3
    assert rows[4]["latency"] == pytest.approx(0.054591, abs=1e-6)
    assert rows[3]["request_frame"] is None and rows[3]["is_request"]
    # BVLL-only messages: no NPDU, category from the BVLC function
    assert rows[21]["bvlc_function_name"] == "read_broadcast_distribution_table"
    assert rows[21]["category"] == "discovery" and rows[21]["npdu_version"] is None
    assert rows[25]["bvlc_function_name"] == "register_foreign_device"
    assert rows[25]["category"] == "session"
    assert rows[22]["bvlc_function_name"] == "bvlc_result"


def test_control_services(corpus):
    rows = _rows(corpus, "icsnpp-bacnet__bacnet_error_reject_abort.pcap")
    dcc, reinit, iam = rows[17], rows[19], rows[29]
    assert dcc["service_name"] == "device_communication_control" and dcc["category"] == "control"
    assert (dcc["dcc_duration"], dcc["dcc_state_name"], dcc["password_present"]) == (
        60,
        "disable",
        True,
    )
    assert reinit["reinit_state_name"] == "coldstart" and reinit["password_present"] is False
    assert (iam["device_instance"], iam["max_apdu_accepted"], iam["vendor_id"]) == (101, 1024, 1337)
    assert iam["segmentation_supported_name"] == "segmented_both"
    assert rows[43]["error_class_name"] == "services"
    assert rows[43]["error_code_name"] == "password_failure"
    assert rows[44]["reject_reason_name"] == "unrecognized_service"
    assert rows[45]["abort_reason_name"] == "other" and rows[45]["abort_by_server"]
    assert rows[8]["service_name"] == "atomic_write_file" and rows[8]["category"] == "program"
    assert rows[8]["dadr"] == "3d" and rows[8]["dnet"] == 13


def test_bacnet_over_ethernet_llc(corpus):
    rows = _rows(corpus, "testing_tools__bacnet-properties.cap")
    llc = [r for r in rows.values() if r["link"] == "bacnet_ethernet"]
    assert len(llc) == 4118
    assert all(r["src_ip"] is None and r["src_mac"] for r in llc)
    acks = [r for r in llc if r["apdu_type"] == 3]
    assert acks and sum(r["request_frame"] is not None for r in acks) >= 0.99 * len(acks)


def test_semantics_techniques_exist():
    data = json.loads(
        (Path(__file__).resolve().parents[3] / "shared/data/attack/ics-attack.json").read_text()
    )
    known = {
        ref["external_id"]
        for o in data["objects"]
        if o.get("type") == "attack-pattern" and not o.get("revoked")
        for ref in o.get("external_references", [])
        if ref.get("source_name") == "mitre-attack"
    }
    used = set().union(*(s.techniques() for s in B.BacnetDissector.semantics))
    assert used and used <= known, used - known
    assert B.CONFIRMED_SERVICES[20].techniques == ("T0816",)
    assert "T0836" in B.CONFIRMED_SERVICES[15].techniques


# ---- content detection ------------------------------------------------------------------------
def _write(path: Path, payloads: list[tuple[int, int, bytes]]) -> None:
    w = PcapWriter(str(path))
    for k, (sport, dport, data) in enumerate(payloads):
        seg = P.udp("10.0.0.1", "10.0.0.2", sport, dport, data)
        frame = P.ethernet(
            "02:00:00:00:00:02",
            "02:00:00:00:00:01",
            P.ETH_IPV4,
            P.ipv4("10.0.0.1", "10.0.0.2", P.IPPROTO_UDP, seg),
        )
        w.write(1_700_000_000_000_000_000 + k * 1_000_000, frame)
    w.close()


WHO_IS = bytes.fromhex("810b000c0120ffff00ff1008")


def test_non_bacnet_on_bacnet_port_is_not_reported(tmp_path):
    dns = bytes.fromhex("12340100000100000000000003777777076578616d706c6503636f6d0000010001")
    payloads = [
        (40000, 47808, dns),  # DNS-looking bytes on the BACnet port
        (40000, 47808, b"\x81\x0a\x00\x04"),  # BVLC header claiming an NPDU, on the port
        (5353, 5353, b"\x81\x0a\x00\x40" + bytes(10)),  # 0x81 with a wrong length, no hint
        (40001, 47809, b"\x82\x0a\x00\x04"),  # BACnet/IPv6 type: not decoded
        (40002, 12345, WHO_IS),  # a real Who-Is on an unusual port: found by content
    ]
    path = tmp_path / "mixed.pcap"
    _write(path, payloads)
    d = decode(path)
    t = d.tables["bacnet"].to_pylist()
    assert [r["frame"] for r in t] == [2, 5]
    assert t[1]["service_name"] == "who_is" and t[1]["dnet"] == 65535
    weird = d.tables["weird"].to_pylist()
    assert [(w["frame"], w["name"]) for w in weird] == [(2, "bacnet_npdu_truncated")]


# ---- robustness ---------------------------------------------------------------------------------
def _seed_messages(corpus) -> list[bytes]:
    from otsight.capture.pcap import CaptureReader
    from otsight.dissect import _l2l4 as L

    seeds: list[bytes] = []
    for name in (
        "icsnpp-bacnet__bacnet_error_reject_abort.pcap",
        "nDPI__bacnet.pcap",
        "icsnpp-bacnet__bacnet_segmented_data.pcap",
        "ICS-Security-Tools__bacnet_test.pcap",
    ):
        for chunk in CaptureReader(Path(corpus) / "bacnet" / name).chunks():
            cols, _ = L.decode_l2l4(chunk.buf, chunk.offset, chunk.caplen, chunk.linktype)
            for i in np.flatnonzero((cols[:, L.PROTO] == 17) & (cols[:, L.PAY_LEN] >= 4)):
                o, n = int(cols[i, L.PAY_OFF]), int(cols[i, L.PAY_LEN])
                if chunk.buf[o] == 0x81:
                    seeds.append(bytes(chunk.buf[o : o + n]))
    return seeds


def _mutate(seed: bytes, rng: random.Random) -> bytes:
    b = bytearray(seed)
    op = rng.randrange(5)
    if op == 0:
        for _ in range(rng.randint(1, 4)):
            k = rng.randrange(len(b))
            b[k] ^= 1 << rng.randrange(8)
    elif op == 1:
        b = b[: rng.randrange(4, len(b) + 1)]
    elif op == 2:  # lying BVLC length
        b[2:4] = struct.pack("!H", rng.choice([0, 4, len(b) - 1, len(b) + 7, 0xFFFF]))
    elif op == 3:  # lying NPDU address / tag lengths
        k = rng.randrange(4, len(b)) if len(b) > 4 else 3
        b[k] = rng.choice([0x00, 0x05, 0x0F, 0x25, 0x3D, 0xFE, 0xFF])
    else:
        k = rng.randrange(len(b))
        b[k:k] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
    if op != 2 and len(b) >= 4 and rng.random() < 0.7:
        b[2:4] = struct.pack("!H", len(b))  # keep the probe passing most of the time
    return bytes(b)


_PURE_PYTHON_CHECK = r"""
import sys, numpy as np
from otsight.dissect import bacnet as B
data = open(sys.argv[1], "rb").read()
n = 0
p = 0
while p < len(data):
    ln = int.from_bytes(data[p:p + 2], "big"); msg = data[p + 2:p + 2 + ln]; p += 2 + ln
    for link, body in ((0, msg), (1, msg[4:])):
        if link == 0 and (len(body) < 4 or body[0] != 0x81):
            continue
        # the buffer ends exactly where the message ends: a read past it raises IndexError
        buf = np.frombuffer(body, dtype=np.uint8)
        out = np.full((1, B.NCOL), -1, np.int64)
        one = lambda v: np.array([v], np.int64)
        B._decode(buf, one(0), one(len(body)), one(len(body)), one(link), out)
        if out[0, B.VAL_OFF] >= 0:
            B.decode_value(body[out[0, B.VAL_OFF]:])
        n += 1
print(n)
"""


def test_mutated_messages_never_read_past_their_end(corpus, tmp_path):
    """Pure-Python run of the kernel (NUMBA_DISABLE_JIT): numpy raises on any read past end."""
    import os
    import subprocess
    import sys

    rng = random.Random(1)
    seeds = _seed_messages(corpus)
    assert len(seeds) > 50
    mutants = [_mutate(rng.choice(seeds), rng) for _ in range(3000)]
    blob = b"".join(len(m).to_bytes(2, "big") + m for m in mutants)
    (tmp_path / "mutants.bin").write_bytes(blob)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    proc = subprocess.run(
        [sys.executable, "-c", _PURE_PYTHON_CHECK, str(tmp_path / "mutants.bin")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.strip()) > 3000


def test_mutated_captures_decode_with_weird_rows(corpus, tmp_path):
    rng = random.Random(2)
    seeds = _seed_messages(corpus)
    mutants = [_mutate(rng.choice(seeds), rng) for _ in range(3000)]
    path = tmp_path / "mutants.pcap"
    _write(path, [(47808, 47808, m) for m in mutants])
    d = decode(path)
    assert not d.failures, d.failures
    t = d.tables["bacnet"]
    assert t.num_rows > 2000
    names = set(d.tables["weird"].column("name").to_pylist())
    assert {"bacnet_bvlc_length_mismatch", "bacnet_apdu_truncated"} <= names
