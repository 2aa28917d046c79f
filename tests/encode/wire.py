"""Helpers for the application encoder tests: write frames to a pcap, ask tshark about it.

Each encoder test module builds one capture holding every case, runs tshark on it a few
times (problems, protocols, fields) and decodes it with otsight; values are compared with
what the test encoded.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from otsight.encode import packets as pk
from otsight.encode.pcapfile import PcapWriter
from otsight.encode.tcp_session import TcpConversation
from otsight.testing.decode import decode

CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
CLIENT_IP, SERVER_IP = "10.0.0.1", "10.0.0.2"
T0 = 1_700_000_000_000_000_000
PROBLEMS = "_ws.malformed || _ws.expert.severity >= {level}"


class Capture:
    """Frames collected in order (1 ms apart) and written to a pcap with :meth:`write`.

    ``marks`` records, per case name, the frame numbers (1-based, as tshark counts) that
    the case added, so tests can look up exactly the frames they built.
    """

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.marks: dict[str, list[int]] = {}

    def add(self, frames: Iterable[bytes], name: str | None = None) -> list[int]:
        numbers = []
        for frame in frames:
            self.frames.append(frame)
            numbers.append(len(self.frames))
        if name is not None:
            self.marks.setdefault(name, []).extend(numbers)
        return numbers

    def write(self, path: Path) -> Path:
        with PcapWriter(path) as w:
            for k, frame in enumerate(self.frames):
                w.write(T0 + k * 1_000_000, frame)
        return path


@dataclass
class Built:
    """The capture a test module wrote, and the frame number of each case."""

    path: Path
    frame_of: dict[str, int]


def decode_clean(path: Path) -> Any:
    """otsight's decode of ``path``, which must hold no failure and no weird row."""
    d = decode(path)
    assert not d.failures, d.failures
    assert d.tables["weird"].num_rows == 0, d.tables["weird"].to_pylist()
    return d


def rows_by_frame(table: Any) -> dict[int, dict[str, Any]]:
    """Rows of an otsight table by frame number (one row per frame)."""
    return {row["frame"]: row for row in table.to_pylist()}


def tcp_conversation(server_port: int, client_port: int = 40000) -> TcpConversation:
    return TcpConversation(
        CLIENT_MAC, CLIENT_IP, client_port, SERVER_MAC, SERVER_IP, server_port, 1000, 5000
    )


def udp_frame(
    sport: int,
    dport: int,
    payload: bytes,
    from_client: bool = True,
    dst_ip: str | None = None,
    dst_mac: str | None = None,
) -> bytes:
    """An Ethernet/IPv4/UDP frame between the client and server hosts (or to ``dst_ip``)."""
    src_ip, dst = (CLIENT_IP, SERVER_IP) if from_client else (SERVER_IP, CLIENT_IP)
    src_mac, dmac = (CLIENT_MAC, SERVER_MAC) if from_client else (SERVER_MAC, CLIENT_MAC)
    dst = dst_ip or dst
    dmac = dst_mac or dmac
    segment = pk.udp(src_ip, dst, sport, dport, payload)
    return pk.ethernet(dmac, src_mac, pk.ETH_IPV4, pk.ipv4(src_ip, dst, pk.IPPROTO_UDP, segment))


def _tshark(tshark: str, path: Path, args: Sequence[str]) -> str:
    proc = subprocess.run(
        [tshark, "-n", "-r", str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": "UTC"},  # absolute times print in UTC
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def problems(tshark: str, path: Path, extra: Sequence[str] = (), level: str = "error") -> str:
    """tshark's summary lines of frames that are malformed or carry expert info of ``level``
    or worse (empty when all is well); two passes (-2) so reassembly is reported too."""
    return _tshark(tshark, path, ["-2", "-Y", PROBLEMS.format(level=level), *extra]).strip()


def fields(
    tshark: str,
    path: Path,
    names: Sequence[str],
    display_filter: str | None = None,
    extra: Sequence[str] = (),
) -> dict[int, dict[str, list[str]]]:
    """frame number -> {field: [every occurrence]} for the frames ``display_filter`` keeps."""
    args = [
        "-2",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=\x1f",
        "-e",
        "frame.number",
    ]
    for name in names:
        args += ["-e", name]
    if display_filter:
        args += ["-Y", display_filter]
    out: dict[int, dict[str, list[str]]] = {}
    for line in _tshark(tshark, path, [*args, *extra]).splitlines():
        cols = line.split("\t")
        out[int(cols[0])] = {
            name: (col.split("\x1f") if col else [])
            for name, col in zip(names, cols[1:], strict=True)
        }
    return out


_SEVERITY = {"note": 0x00400000, "warning": 0x00600000, "error": 0x00800000}


def expert(tshark: str, path: Path, level: str = "warning") -> dict[int, list[str]]:
    """frame number -> messages of the expert infos at ``level`` or worse."""
    got = fields(
        tshark,
        path,
        ["_ws.expert.message", "_ws.expert.severity"],
        f"_ws.expert.severity >= {level}",
    )
    out: dict[int, list[str]] = {}
    for n, f in got.items():
        pairs = zip(f["_ws.expert.message"], ints(f["_ws.expert.severity"]), strict=True)
        out[n] = [m for m, sev in pairs if sev >= _SEVERITY[level]]
    return out


def protocols(tshark: str, path: Path, extra: Sequence[str] = ()) -> dict[int, list[str]]:
    """frame number -> the protocol stack tshark shows (frame.protocols split on ':')."""
    got = fields(tshark, path, ["frame.protocols"], extra=extra)
    return {n: f["frame.protocols"][0].split(":") for n, f in got.items()}


def labels(tshark: str, path: Path, display_filter: str | None = None) -> dict[int, list[str]]:
    """frame number -> the text of every tree item with a label (Wireshark shows many
    values only as text, e.g. BACnet character strings), from ``-T json``."""
    args = ["-2", "-T", "json", "--no-duplicate-keys"]
    if display_filter:
        args += ["-Y", display_filter]
    out: dict[int, list[str]] = {}

    def walk(node: object, into: list[str]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if " " in key:  # text items are keyed by their label, fields by filter name
                    into.append(key)
                walk(value, into)
        elif isinstance(node, list):
            for item in node:
                walk(item, into)

    for pkt in json.loads(_tshark(tshark, path, args) or "[]"):
        layers = pkt["_source"]["layers"]
        number = layers["frame"]["frame.number"]
        into = out.setdefault(int(number[0] if isinstance(number, list) else number), [])
        walk(layers, into)
    return out


def ws_time_ms(text: str) -> int:
    """A tshark absolute time ("Nov 14, 2023 22:13:20.123000000 UTC") as ms since the epoch."""
    stamp = datetime.strptime(text[:-7], "%b %d, %Y %H:%M:%S.%f").replace(tzinfo=UTC)
    return round(stamp.timestamp() * 1000)


def ints(values: Sequence[str]) -> list[int]:
    """tshark integers (decimal, or hex when prefixed 0x) as ints."""
    return [int(v, 0) for v in values]
