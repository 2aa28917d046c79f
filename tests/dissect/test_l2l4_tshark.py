"""Per-packet L2–L4 fields against tshark, joined on the frame number.

otsight's ``packets`` table (``decode(path, packets=True).packet_table``) is compared field by
field with ``tshark -n -T fields -E occurrence=f`` (the *first* occurrence of a field is the
outer header's: an ICMP error quotes an inner IP/TCP header that tshark dissects too, and
only the outer one is what otsight reports). The layers come from ``frame.protocols``:

* MACs: ``eth.src``/``eth.dst``; for Linux cooked captures ``sll.src.eth`` (no destination).
* VLANs: the ids of the ``ieee8021ad`` / ``vlan`` layers in stack order (outer, inner).
* Addresses, TTL: the first ``ip``/``ipv6`` layer (``ip.ttl`` / ``ipv6.hlim``).
* ``ip_proto``: ``ip.proto``, or for IPv6 the upper-layer protocol after extension headers
  (follow ``ipv6.nxt`` through ``ipv6.hopopts.nxt``, ``ipv6.routing.nxt``,
  ``ipv6.dstopts.nxt``, ``ipv6.fraghdr.nxt``).
* Ports: from the first transport layer after the outer IP, and only when it is TCP or UDP
  (for an ICMP error otsight has no ports; tshark's ``tcp.srcport`` would be the quoted one).
* TCP: ``tcp.flags`` (masked to the 9 flag bits otsight keeps: NS..FIN; tshark's 12-bit field
  adds the 3 reserved bits), ``tcp.seq_raw``, ``tcp.ack_raw`` (tshark shows it only when the
  ACK flag is set), ``tcp.window_size_value``, ``tcp.len``.
* UDP payload: ``udp.length - 8``.

Per file and field, agreement must be 100 % unless ``EXCEPTIONS`` documents the exact number
of disagreeing packets and why (the count is exact, so a fix or a regression both fail the
test and the entry must be updated). A per-field agreement table is printed (``pytest -s``).
"""

from __future__ import annotations

import ipaddress
import shlex
import subprocess
from pathlib import Path

import pytest

from otsight.testing.decode import decode
from tests.conftest import corpus_captures

pytestmark = [pytest.mark.corpus, pytest.mark.tshark]

COMPARED = ["src_mac", "dst_mac", "vlan", "vlan_inner", "src_ip", "dst_ip", "ip_proto", "ttl",
            "src_port", "dst_port", "tcp_flags", "seq", "ack", "window", "payload_len"]  # fmt: skip

# Chosen to cover each link type and header shape otsight decodes (see the comments).
CAPTURES = [
    # Ethernet with 802.1Q tags
    "iec61850/ICS-Security-Tools__Sample_File_GOOSE.pcap",
    "iec61850/ICS-Security-Tools__GOOSE_DEMO.pcap",
    "iec61850/testing_tools__sv.pcap",
    "profinet/ICS-Security-Tools__profinet-wireshark-bug.pcap",
    "enip/icsnpp-enip__set_attribute_single_service_cip.pcapng",
    # plain Ethernet: TCP and UDP ICS protocols
    "mixed/ICS-Security-Tools__mb2.pcap",
    "modbus/ICS-Security-Tools__ModbusTCP.pcap",
    "dnp3/ICS-Security-Tools__dnp3.pcap",
    "bacnet/testing_tools__bacnet-properties.cap",
    "s7comm/ICS-Security-Tools__tia_s300_goOnline.pcapng",
    "enip/ICS-Security-Tools__EIP-FirmwareChange.pcap",
    "iec104/ICS-Security-Tools__090813_diverse.pcap",
    # ICMP errors quoting IP + TCP/UDP headers
    "modbus/modbus-anomaly-detection__modbus.pcap",
    "niagara_fox/testing_tools__fox_nmap_scan.pcap",
    "pcworx/testing_tools__pcworx-info.pcap",
    # IPv6: TCP, and extension headers (hop-by-hop before ICMPv6/MLD)
    "opc_classic/testing_tools__opc_ae_1.pcap",
    "opc_classic/testing_tools__opcae_1.pcap",
    "c37118/ICS-Security-Tools__c37118_1100_unclean.pcap",
    "profinet/icsnpp-profinet-io-cm__profinet_io_cm_mixed_1.pcap",
    "ads_beckhoff/ICS-Security-Tools__addroute.pcapng",
    # BSD loopback (link type 0)
    "dnp3/ICS-Security-Tools__pcaps_dnp3_opendnp3-3_conformance_8.11.2.5__dump.pcap",
    "opcua/icsnpp-opcua-binary__open62541_browse_next.pcap",
    "opcua/icsnpp-opcua-binary__python_opcua-client-server_minimal.pcap",
    # Linux cooked capture (link type 113)
    "s7comm/icsnpp-s7comm__s7comm_plus.pcap",
    # raw IPv4 (link type 228)
    "dnp3/suricata-verify__tests_dnp3_dnp3-flood__input.pcap",
    "fins/icsnpp-omron-fins__omron_fins_tcp_commands_responses.pcap",
    # short snap lengths, sliced frames, a file cut short, fuzzed headers
    "iec61850/testing_tools__mms_hdz.pcap",
    "bacnet/ICS-Security-Tools__bacnet_test.pcap",
    "enip/ICS-Security-Tools__enip_test.pcap",
    "enip/nDPI__cip_io.pcap",
    "fins/icsnpp-omron-fins__omron_test.pcap",
    "melsec/ICS-Security-Tools__melsoft_129_clean.pcap",
    "modbus/ICS-Security-Tools__fuzz-72.pcap",
]

# file -> {field: (exact number of disagreeing packets, reason)}
EXCEPTIONS: dict[str, dict[str, tuple[int, str]]] = {}

FIELDS = [
    "frame.number", "frame.protocols", "eth.src", "eth.dst", "isl.src", "isl.dst",
    "sll.src.eth", "sll.hatype",
    "vlan.id", "ieee8021ad.id", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.proto",
    "ipv6.nxt", "ipv6.hopopts.nxt", "ipv6.routing.nxt", "ipv6.dstopts.nxt", "ipv6.fraghdr.nxt",
    "ip.ttl", "ipv6.hlim", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport",
    "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "tcp.window_size_value", "tcp.len", "udp.length",
]  # fmt: skip
MULTI = {"vlan.id", "ieee8021ad.id"}  # all occurrences, in order
IPV6_EXT = {0: "ipv6.hopopts.nxt", 43: "ipv6.routing.nxt", 60: "ipv6.dstopts.nxt",
            44: "ipv6.fraghdr.nxt"}  # fmt: skip
TRANSPORTS = {"tcp", "udp", "icmp", "icmpv6", "sctp", "udplite", "igmp", "gre", "esp", "ah"}
CUT_SHORT = "appears to have been cut short in the middle of a packet"


def _tshark_rows(tshark: str, path: Path, decode_as: list[str]) -> dict[int, dict[str, str]]:
    """One dict per frame; values are first occurrences except MULTI fields (comma list)."""
    cmd = [tshark, "-n", "-r", str(path), *decode_as, "-T", "fields", "-E", "separator=/t",
           "-E", "occurrence=a", "-E", "aggregator=|", "-E", "quote=n"]  # fmt: skip
    for f in FIELDS:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    ok = res.returncode == 0 or (res.returncode == 2 and CUT_SHORT in res.stderr)
    assert ok, f"{shlex.join(cmd)} failed: {res.stderr[-2000:]}"
    rows = {}
    for line in res.stdout.splitlines():
        values = line.split("\t")
        assert len(values) == len(FIELDS), line
        row = {}
        for name, v in zip(FIELDS, values, strict=True):
            parts = v.split("|") if v else []
            row[name] = parts if name in MULTI else (parts[0] if parts else "")
        rows[int(row["frame.number"])] = row
    return rows


def _int(v: str) -> int | None:
    return int(v, 0) if v else None


def expected(t: dict[str, str]) -> dict[str, object]:
    """otsight's fields as tshark sees the outer headers of one frame."""
    protos = t["frame.protocols"].split(":")
    e: dict[str, object] = dict.fromkeys(COMPARED)
    if protos and protos[0] == "eth" and t["isl.dst"]:
        # Cisco ISL (frames to 01:00:0c:00:00:00): tshark shows the outer header as isl.*
        # and the encapsulated frame as eth.*; otsight reports the outer header.
        e["src_mac"], e["dst_mac"] = t["isl.src"] or None, t["isl.dst"] or None
    elif protos and protos[0] == "eth":
        e["src_mac"], e["dst_mac"] = t["eth.src"] or None, t["eth.dst"] or None
    elif protos and protos[0] == "sll" and t["sll.hatype"] == "1":
        e["src_mac"] = t["sll.src.eth"] or None
    vlans, q, ad = [], iter(t["vlan.id"]), iter(t["ieee8021ad.id"])
    l3 = None
    for k, p in enumerate(protos):
        if p in ("ip", "ipv6"):
            l3 = k
            break
        if p == "vlan":
            vlans.append(int(next(q)))
        elif p == "ieee8021ad":
            vlans.append(int(next(ad)))
    e["vlan"] = vlans[0] if vlans else None
    e["vlan_inner"] = vlans[1] if len(vlans) > 1 else None
    if l3 is None:
        return e
    if protos[l3] == "ip":
        e["src_ip"], e["dst_ip"] = t["ip.src"] or None, t["ip.dst"] or None
        e["ip_proto"], e["ttl"] = _int(t["ip.proto"]), _int(t["ip.ttl"])
    else:
        e["src_ip"], e["dst_ip"] = t["ipv6.src"] or None, t["ipv6.dst"] or None
        e["ttl"] = _int(t["ipv6.hlim"])
        nxt = _int(t["ipv6.nxt"])
        while nxt in IPV6_EXT and t[IPV6_EXT[nxt]]:
            nxt = _int(t[IPV6_EXT[nxt]])
        e["ip_proto"] = nxt
    l4 = next((p for p in protos[l3 + 1 :] if p in TRANSPORTS), None)
    if l4 == "tcp":
        e["src_port"], e["dst_port"] = _int(t["tcp.srcport"]), _int(t["tcp.dstport"])
        flags = _int(t["tcp.flags"])
        e["tcp_flags"] = None if flags is None else flags & 0x1FF
        e["seq"], e["window"] = _int(t["tcp.seq_raw"]), _int(t["tcp.window_size_value"])
        e["ack"] = _int(t["tcp.ack_raw"])
        e["payload_len"] = _int(t["tcp.len"])
    elif l4 == "udp":
        e["src_port"], e["dst_port"] = _int(t["udp.srcport"]), _int(t["udp.dstport"])
        ulen = _int(t["udp.length"])
        e["payload_len"] = None if ulen is None else ulen - 8
    return e


def _norm_ip(v):
    return None if v is None else str(ipaddress.ip_address(v))


def compare_file(tshark: str, path: Path, decode_as: list[str]):
    """Per field: (compared, agreeing, first disagreements)."""
    d = decode(path, packets=True)
    ours = d.packet_table.drop(["ts", "capture"]).to_pylist()
    theirs = _tshark_rows(tshark, path, decode_as)
    assert d.packets == len(ours) == len(theirs), (
        f"otsight {d.packets} packets ({len(ours)} rows), tshark {len(theirs)} frames"
    )
    stats = {f: [0, 0, []] for f in COMPARED}
    for o in ours:
        t = theirs[o["frame"]]
        e = expected(t)
        for f in COMPARED:
            want, got = e[f], o[f]
            if f in ("src_ip", "dst_ip"):
                want, got = _norm_ip(want), _norm_ip(got)
            if f == "ack" and want is None and got is not None:
                # tshark omits tcp.ack_raw without the ACK flag: then nothing to compare.
                continue
            if f == "payload_len" and want is None:
                continue  # otsight's payload_len is 0, never null, outside TCP/UDP
            if want is None and got is None:
                continue  # neither has the layer
            s = stats[f]
            s[0] += 1
            if want == got:
                s[1] += 1
            else:
                s[2].append((o["frame"], want, got))
    return d, stats


REPORT: list[tuple[str, int, dict]] = []


@pytest.fixture(scope="module", autouse=True)
def _print_table():
    yield
    if not REPORT:
        return
    short = {"src_mac": "smac", "dst_mac": "dmac", "vlan": "vlan", "vlan_inner": "vlan2",
             "src_ip": "sip", "dst_ip": "dip", "ip_proto": "proto", "ttl": "ttl",
             "src_port": "sport", "dst_port": "dport", "tcp_flags": "flags", "seq": "seq",
             "ack": "ack", "window": "win", "payload_len": "plen"}  # fmt: skip
    print(
        "\n\nL2-L4 per-packet agreement with tshark (% of packets where the field exists; "
        "'-' = not present)"
    )
    head = f"{'capture':56} {'pkts':>6} " + " ".join(f"{short[f]:>6}" for f in COMPARED)
    print(head)
    print("-" * len(head))
    totals = {f: [0, 0] for f in COMPARED}
    for label, n, stats in REPORT:
        cells = []
        for f in COMPARED:
            c, a = stats[f][0], stats[f][1]
            totals[f][0] += c
            totals[f][1] += a
            cells.append("     -" if c == 0 else ("   100" if a == c else f"{100 * a / c:6.2f}"))
        print(f"{label[-56:]:56} {n:>6} " + " ".join(cells))
    print(
        f"{'ALL (compared values)':56} {sum(r[1] for r in REPORT):>6} "
        + " ".join(f"{totals[f][0]:>6}" for f in COMPARED)
    )
    print(
        f"{'ALL (agreement %)':56} {'':>6} "
        + " ".join(f"{100 * totals[f][1] / max(totals[f][0], 1):6.2f}" for f in COMPARED)
    )


def _check(tshark: str, path: Path, label: str, decode_as: list[str]):
    d, stats = compare_file(tshark, path, decode_as)
    REPORT.append((label, d.packets, stats))
    known = EXCEPTIONS.get(label, {})
    problems = []
    for f in COMPARED:
        compared, agree, bad = stats[f]
        want_bad = known.get(f, (0, ""))[0]
        if compared - agree != want_bad:
            sample = ", ".join(f"frame {fr}: tshark {w!r} otsight {g!r}" for fr, w, g in bad[:5])
            problems.append(
                f"{f}: {compared - agree} of {compared} disagree (expected {want_bad}); {sample}"
            )
    assert not problems, f"{label}:\n  " + "\n  ".join(problems)
    for f in known:  # an exception must not hide a field that was never compared
        assert stats[f][0] > 0, f"{label}: {f} never compared"


def _rows() -> list[dict[str, str]]:
    by_path = {r["local_path"]: r for r in corpus_captures()}
    return [by_path[p] for p in CAPTURES if p in by_path]


ROWS = _rows()


def test_captures_are_in_the_manifest(corpus):
    missing = sorted(set(CAPTURES) - {r["local_path"] for r in ROWS})
    assert not missing, f"not in the corpus manifest: {missing}"
    assert set(EXCEPTIONS) <= set(CAPTURES)


@pytest.mark.parametrize("row", ROWS, ids=[r["local_path"] for r in ROWS])
def test_l2l4_fields_match_tshark(corpus, tshark, row):
    _check(tshark, corpus / row["local_path"], row["local_path"], shlex.split(row["decode_as"]))


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_sample_l2l4_fields_match_tshark(samples, tshark, fmt):
    _check(tshark, samples[fmt], f"<generated sample.{fmt}>", [])
