"""Omron FINS (UDP and FINS/TCP): field-exact against Wireshark over the corpus; crafted
frames Wireshark cannot check (pairing, identity, detection off port 9600); content
detection; robustness on mutated real frames."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from otsight.capture import framing
from otsight.dissect import fins as F
from otsight.encode import packets as pk
from otsight.encode.pcapfile import PcapWriter
from otsight.testing.decode import decode
from tests.dissect.tshark_diff import (
    SKIP,
    Comparison,
    as_int,
    decoded_corpus,
    field_int,
    field_present,
    first,
    ours_by_frame,
    tshark_pdus,
)
from tests.encode_capture import write_tcp_exchanges

COLUMNS = [
    "tcp_command",
    "tcp_error_code",
    "client_node",
    "server_node",
    "icf",
    "gateway_count",
    "dst_network",
    "dst_node",
    "dst_unit",
    "src_network",
    "src_node",
    "src_unit",
    "sid",
    "command_code",
    "end_code",
    "memory_area",
    "memory_address",
    "memory_bit",
    "item_count",
    "parameter_area",
    "program_number",
    "mode_code",
    "controller_status",
    "controller_model",
    "controller_version",
    "is_request",
]


def _o(p):
    return p["omron"]


_int = partial(field_int, "omron")
_present = partial(field_present, "omron")


def _is_command(p):
    icf = as_int(first(_o(p), "omron.icf"))
    return icf is not None and not icf & 0x40


def _request_field(name):
    """Parameters of a command: tshark decodes them only where the length is what it expects."""
    return _present(name, when=_is_command)


FIELDS = {
    "tcp_command": _int("omron.tcp.command"),
    "tcp_error_code": _int("omron.tcp.error_code"),
    "client_node": _int("omron.tcp.client_node_address"),
    "server_node": _int("omron.tcp.server_node_address"),
    "icf": _int("omron.icf"),
    "gateway_count": _int("omron.gct"),
    "dst_network": _int("omron.dna"),
    "dst_node": _int("omron.da1"),
    "dst_unit": _int("omron.da2"),
    "src_network": _int("omron.sna"),
    "src_node": _int("omron.sa1"),
    "src_unit": _int("omron.sa2"),
    "sid": _int("omron.sid"),
    "command_code": _int("omron.command"),
    "end_code": _present("omron.response.code"),
    "memory_area": _request_field("omron.memory.area.read"),
    "memory_address": _request_field("omron.memory.address"),
    "memory_bit": _request_field("omron.memory.address.bits"),
    "item_count": _request_field("omron.memory.numitems"),
    "parameter_area": _request_field("omron.parameter_area_code"),
    "program_number": _present("omron.program_number"),
    "mode_code": _present("omron.mode_code"),
    "controller_status": _present("omron.status"),
    "controller_model": _present("omron.controller.model", str),
    "controller_version": _present("omron.controller.version", str),
    "is_request": lambda p: (
        (
            None
            if first(_o(p), "omron.icf") is None
            else not as_int(first(_o(p), "omron.icf")) & 0x40
        )
        if first(_o(p), "omron.icf") is not None
        else SKIP
    ),
}


def test_fins_fields_match_wireshark(corpus, tshark):
    cmp = Comparison("fins")
    for row, path, d in decoded_corpus(corpus, "fins", at_least=5):
        theirs = tshark_pdus(tshark, path, ["omron"], "omron", row.get("decode_as", ""))
        cmp.join(row["local_path"], ours_by_frame(d.tables["fins"], COLUMNS), theirs, FIELDS)
    cmp.assert_target()


# ---- crafted frames (pairing, identity, detection: what Wireshark cannot check) -------------
def _fins(cmd: int, data: bytes = b"", response=False, sid=7, src=(0, 0x10, 0), dst=(0, 0x20, 0)):
    icf = 0xC0 if response else 0x80
    return bytes([icf, 0, 2, *dst, *src, sid]) + struct.pack(">H", cmd) + data


def _reply(cmd: int, end: int = 0, data: bytes = b"", sid=7):
    # the answer swaps the addresses of the command it answers
    return _fins(cmd, struct.pack(">H", end) + data, True, sid, src=(0, 0x20, 0), dst=(0, 0x10, 0))


def _tcp(cmd: int, payload: bytes = b"", err: int = 0) -> bytes:
    return b"FINS" + struct.pack(">III", 8 + len(payload), cmd, err) + payload


def _udp_capture(path: Path, datagrams: list[tuple[bool, bytes]], port: int = 9600) -> None:
    ts = 1_700_000_000_000_000_000
    with PcapWriter(path) as w:
        for to_plc, payload in datagrams:
            src, dst = ("10.2.0.1", "10.2.0.9") if to_plc else ("10.2.0.9", "10.2.0.1")
            sport, dport = (50001, port) if to_plc else (port, 50001)
            ip = pk.ipv4(src, dst, 17, pk.udp(src, dst, sport, dport, payload))
            ts += 5_000_000
            w.write(ts, pk.ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", pk.ETH_IPV4, ip))


def _tcp_capture(path: Path, exchanges: list[tuple[bool, bytes]], port: int = 9600) -> None:
    write_tcp_exchanges(path, exchanges, port, "10.2.0.1", "10.2.0.9", (10, 20), 5_000_000)


def _rows(d) -> list[dict]:
    return d.tables["fins"].to_pylist()


MODEL = b"CJ2M-CPU31".ljust(20, b" ") + b"02.01".ljust(20, b"\0")


@pytest.fixture(scope="module")
def crafted_udp(tmp_path_factory):
    path = tmp_path_factory.mktemp("fins") / "udp.pcap"
    _udp_capture(
        path,
        [
            (True, _fins(0x0101, bytes([0x82, 0x00, 0x64, 0, 0, 3]))),  # 1 read DM100, 3 words
            (False, _reply(0x0101, 0, bytes(6))),  # 2
            (True, _fins(0x0102, bytes([0xB0, 0, 10, 0, 0, 1, 0x12, 0x34]), sid=8)),  # 3 write
            (False, _reply(0x0102, 0x2101, sid=8)),  # 4 read-only area
            (True, _fins(0x0401, bytes([0, 0, 2]), sid=9)),  # 5 run, monitor mode
            (True, _fins(0x0402, bytes([0, 0]), sid=10)),  # 6 stop
            (True, _fins(0x0307, bytes([0, 0]) + bytes(6) + b"\x01\x02", sid=11)),  # 7 download
            (True, _fins(0x0601, sid=12)),  # 8 status read; 9 answer: run, monitor
            (False, _reply(0x0601, 0, bytes([0x01, 0x02]) + bytes(24), sid=12)),
            (True, _fins(0x0501, sid=13)),  # 10 controller data read; 11 answer
            (False, _reply(0x0501, 0, MODEL + bytes(40), sid=13)),
            (True, _fins(0x0101, bytes([0x82, 0x00, 0x64]), sid=14)),  # 12 too short
            (False, bytes([0xC0, 0, 2, 0, 0x10, 0, 0, 0x20, 0, 15, 0x01, 0x01])),  # 13 no end code
            (True, _fins(0x7777, sid=16)),  # 14 unknown command: port 9600 breaks the tie
        ],
    )
    d = decode(path)
    assert not d.failures, d.failures
    return d


def test_crafted_pairing_and_memory(crafted_udp):
    rows = _rows(crafted_udp)
    assert len(rows) == 14 and {r["transport"] for r in rows} == {"udp"}
    read, answer, write, denied = rows[:4]
    assert read["command_name"] == "memory_area_read" and read["category"] == "read"
    assert (read["memory_area"], read["memory_address"], read["item_count"]) == (0x82, 100, 3)
    assert read["memory_area_name"] == "DM : Word contents" and read["is_request"]
    assert read["response_required"] and read["gateway_count"] == 2
    assert answer["request_frame"] == read["frame"] and answer["latency"] == pytest.approx(0.005)
    assert (answer["memory_area"], answer["memory_address"], answer["item_count"]) == (0x82, 100, 3)
    assert answer["end_code_name"] == "Normal completion" and answer["data_length"] == 6
    assert write["category"] == "write" and write["memory_area"] == 0xB0
    assert write["data_length"] == 8
    assert denied["end_code"] == 0x2101 and denied["request_frame"] == write["frame"]
    assert denied["end_code_name"] == "Specified area is read-only"


def test_crafted_control_program_and_identity(crafted_udp):
    rows = _rows(crafted_udp)
    run, stop, download, status, status_answer, data, data_answer = rows[4:11]
    assert run["command_name"] == "run" and run["category"] == "control"
    assert run["mode_name"] == "monitor" and run["program_number"] == 0
    assert "T0858" in F.COMMANDS[0x0401].techniques and "T0858" in F.COMMANDS[0x0402].techniques
    assert stop["command_name"] == "stop" and stop["category"] == "control"
    assert download["command_name"] == "program_area_write" and download["category"] == "program"
    assert "T0843" in F.COMMANDS[0x0307].techniques
    assert status_answer["controller_status_name"] == "run"
    assert (
        status_answer["mode_name"] == "monitor"
        and status_answer["request_frame"] == status["frame"]
    )
    assert data_answer["controller_model"] == "CJ2M-CPU31"
    assert data_answer["controller_version"] == "02.01" and data["category"] == "discovery"


def test_crafted_malformed_become_weird(crafted_udp):
    rows = _rows(crafted_udp)
    short, no_end, unknown = rows[11:14]
    assert short["memory_area"] is None and short["command_name"] == "memory_area_read"
    assert no_end["end_code"] is None and not no_end["is_request"]
    assert unknown["command_name"] == "unknown_0x7777" and unknown["category"] is None
    weird = [w for w in crafted_udp.tables["weird"].to_pylist() if w["layer"] == "fins"]
    assert {w["frame"]: w["name"] for w in weird} == {
        short["frame"]: "fins_bad_parameter_length",
        no_end["frame"]: "fins_response_without_end_code",
    }


def test_fins_tcp_handshake_frames_and_errors(tmp_path):
    path = tmp_path / "tcp.pcap"
    _tcp_capture(
        path,
        [
            (True, _tcp(0, struct.pack(">I", 0))),
            (False, _tcp(1, struct.pack(">II", 0xFB, 0xC8))),
            (True, _tcp(2, _fins(0x0402, b"\0\0", src=(0, 0, 0xFB)))),
            # the answer goes to the node the server assigned, not to the node 0 asked from
            (
                False,
                _tcp(2, _fins(0x0402, b"\0\0", True, 7, src=(0, 0x20, 0), dst=(0, 0xFB, 0xFB))),
            ),
            (True, _tcp(2, b"\x80\x00\x02")),  # a frame too short for a FINS header
            (False, _tcp(3, err=0x21)),
        ],
        port=9601,  # off the usual port: the "FINS" magic alone decides
    )
    d = decode(path)
    assert not d.failures
    rows = _rows(d)
    assert [r["tcp_command_name"] for r in rows] == [
        "node_address_data_send_client",
        "node_address_data_send_server",
        "frame_send",
        "frame_send",
        "frame_send",
        "frame_send_error_notification",
    ]
    hello, ready, stop, ack, short, err = rows
    assert hello["category"] == "session" and hello["is_request"]
    assert ready["client_node"] == 0xFB and ready["server_node"] == 0xC8
    assert ready["request_frame"] == hello["frame"]
    assert stop["command_name"] == "stop" and stop["transport"] == "tcp"
    assert ack["request_frame"] == stop["frame"]  # the server answers the node it assigned
    assert err["tcp_error_code"] == 0x21 and err["tcp_error_name"] == "node_already_connected"
    weird = [w for w in d.tables["weird"].to_pylist() if w["layer"] == "fins"]
    assert [(w["frame"], w["name"]) for w in weird] == [(short["frame"], "fins_frame_too_short")]


# ---- content detection ----------------------------------------------------------------------
def test_fins_udp_found_off_port_by_its_command(tmp_path):
    path = tmp_path / "off.pcap"
    _udp_capture(path, [(True, _fins(0x0101, bytes([0x82, 0, 1, 0, 0, 1]))), (True, _fins(0x7777))],
                 port=19600)  # fmt: skip
    rows = _rows(decode(path))
    assert [r["command_code"] for r in rows] == [0x0101]  # an unknown code needs the port


def test_non_fins_on_port_9600(tmp_path):
    rng = random.Random(9600)
    udp = tmp_path / "udp.pcap"
    _udp_capture(
        udp,
        [
            (True, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01"),
            (True, b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n"),
            (False, bytes([0x81, 0x0A, 0x00, 0x0C]) + bytes(8)),  # BACnet/IP, RSV not 0
            *[(True, bytes([0x80, 0x55]) + rng.randbytes(30)) for _ in range(20)],
            (True, bytes([0x80, 0x00, 0x40]) + bytes(20)),  # RSV 0 but 64 gateways
        ],
    )
    tcp = tmp_path / "tcp.pcap"
    _tcp_capture(
        tcp,
        [
            (True, b"GET / HTTP/1.1\r\nHost: plc\r\n\r\n"),
            (False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (True, _fins(0x0101, bytes([0x82, 0, 1, 0, 0, 1]))),  # FINS without FINS/TCP
        ],
    )
    for path in (udp, tcp):
        d = decode(path)
        assert not d.failures
        assert d.tables["fins"].num_rows == 0


# ---- robustness ----------------------------------------------------------------------------
def _run_kernel(datas: list[bytes], tcp: list[bool]) -> np.ndarray:
    buf = np.frombuffer(b"".join(datas), np.uint8)
    lengths = np.array([len(x) for x in datas], np.int64)
    off = np.zeros(len(datas), np.int64)
    np.cumsum(lengths[:-1], out=off[1:])
    is_tcp = np.array(tcp)
    out = np.empty((len(datas), F.NCOL), np.int64)
    F._fields(buf, np.zeros(1, np.uint8), np.zeros(len(datas), np.int64),
              np.where(is_tcp, off, -1), np.where(is_tcp, -1, off), off + lengths, out)  # fmt: skip
    return out


def _mutants(corpus, count: int, seed: int) -> tuple[list[bytes], list[bool]]:
    from otsight.testing.fuzz import seeds_from

    seeds: list[tuple[bytes, bool]] = []
    for name in ("fins/icsnpp-omron-fins__omron.pcap", "fins/icsnpp-omron-fins__omron_test.pcap"):
        for seed_ in seeds_from(Path(corpus) / name):
            if seed_.kind == "tcp" and seed_.protocol == "fins":
                seeds.append((seed_.data, True))
            elif seed_.kind == "udp" and 9600 in (seed_.sport, seed_.dport):
                seeds.append((seed_.data, False))
    assert len(seeds) > 200 and any(tcp for _, tcp in seeds)
    rng = random.Random(seed)
    mutants, tcp = [], []
    for _ in range(count):
        data, is_tcp = rng.choice(seeds)
        d = bytearray(data)
        keep = 8 if is_tcp else 12  # the framer checked the FINS/TCP header; UDP has >= 12
        how = rng.randrange(3)
        if how == 0:
            for _ in range(rng.randrange(1, 6)):
                k = rng.randrange(8 if is_tcp else 0, len(d))
                d[k] ^= 1 << rng.randrange(8)
        elif how == 1:
            d = d[: rng.randrange(keep, len(d) + 1)]
        else:
            d += rng.randbytes(rng.randrange(1, 40))
        if is_tcp:
            struct.pack_into(">I", d, 4, len(d) - 8)
        mutants.append(bytes(d))
        tcp.append(is_tcp)
    return mutants, tcp


def test_kernel_survives_mutated_real_frames(corpus):
    mutants, tcp = _mutants(corpus, 5000, 9600)
    out = _run_kernel(mutants, tcp)
    assert (out[:, F.STATUS] != F.OK).any()
    lengths = np.array([len(m) for m in mutants])
    inside = out[:, F.DATA_OFF] < 0
    inside |= out[:, F.DATA_OFF] + out[:, F.DATA_LEN] <= np.cumsum(lengths)
    assert inside.all()


def test_framer_bounds():
    ok = np.frombuffer(_tcp(2, _fins(0x0101)), np.uint8)
    assert framing.pdu_length(framing.FINS_TCP, ok, 0, ok.shape[0]) == ok.shape[0]
    for bad in (
        b"FINX" + bytes(12),
        b"FINS\0\0\0\x07" + bytes(8),
        b"FINS\x00\x01\x00\x00" + bytes(8),
    ):
        b = np.frombuffer(bad, np.uint8)
        assert framing.pdu_length(framing.FINS_TCP, b, 0, b.shape[0]) == framing.INVALID


def test_semantics_cover_the_command_set():
    for code in (0x0101, 0x0102, 0x0104, 0x0306, 0x0307, 0x0401, 0x0402, 0x0501, 0x2301):
        assert code in F.COMMANDS
    assert F.COMMANDS[0x0102].category == "write" and "T0836" in F.COMMANDS[0x0102].techniques
    assert "T0845" in F.COMMANDS[0x0306].techniques and "T0816" in F.COMMANDS[0x0403].techniques
    assert F.COMMANDS[0x0501].category == "discovery" and F.COMMANDS[0x0C01].category == "session"
    used = {F.COMMANDS[c].category for c in F.COMMANDS.rows}
    assert used >= {"read", "write", "control", "program", "diagnostic", "discovery", "session"}


_PURE_PYTHON_CHECK = """
import sys
import numpy as np
from otsight.dissect import fins as F

blob = open(sys.argv[1], "rb").read()
p = n = 0
while p < len(blob):
    tcp = blob[p] == 1
    size = int.from_bytes(blob[p + 1 : p + 5], "big")
    buf = np.frombuffer(blob[p + 5 : p + 5 + size], np.uint8)  # exactly the frame: no slack
    p += 5 + size
    out = np.empty((1, F.NCOL), np.int64)
    zero = np.zeros(1, np.int64)
    F._fields(buf, np.zeros(0, np.uint8), zero, zero if tcp else zero - 1,
              zero - 1 if tcp else zero, zero + size, out)
    n += 1
print(n)
"""


def test_kernel_never_reads_past_a_frame(corpus, tmp_path):
    """Pure-Python run of the kernel (NUMBA_DISABLE_JIT): numpy raises on any read past end."""
    mutants, tcp = _mutants(corpus, 3000, 1)
    blob = b"".join(
        bytes([t]) + len(m).to_bytes(4, "big") + m for m, t in zip(mutants, tcp, strict=True)
    )
    (tmp_path / "mutants.bin").write_bytes(blob)
    proc = subprocess.run(
        [sys.executable, "-c", _PURE_PYTHON_CHECK, str(tmp_path / "mutants.bin")],
        capture_output=True,
        text=True,
        env=dict(os.environ, NUMBA_DISABLE_JIT="1"),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.strip()) == 3000


def test_registered_and_listed():
    from otsight.analyze import all_schemas
    from otsight.dissect.registry import registry

    assert registry().dissectors["fins"] is F.FinsDissector
    assert all_schemas()["fins"] is F.SCHEMA
