"""Shared helpers of the application-encoder tests: frames into a pcap, tshark queries.

A test builds a conversation step by step with :class:`Capture`, remembering the frame
number of every message, writes the pcap, then asks tshark (and otsight) what is in it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from otsight.encode import packets as pk
from otsight.encode.pcapfile import PcapWriter
from otsight.encode.tcp_session import TcpConversation

TSHARK_OPTS = (
    "-o",
    "tcp.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
    "-o",
    "ip.check_checksum:TRUE",
)
BAD = "_ws.malformed || _ws.expert.severity >= error"
T0 = 1_700_000_000_000_000_000


class Capture:
    """Frames in capture order; every ``tcp`` / ``udp`` call returns its last frame number."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def add(self, frames: Iterable[bytes]) -> int:
        self.frames.extend(frames)
        return len(self.frames)

    def tcp(self, conv: TcpConversation, from_client: bool, payload: bytes) -> int:
        return self.add(conv.send(from_client, payload))

    def udp(
        self,
        src: tuple[str, str, int],
        dst: tuple[str, str, int],
        payload: bytes,
    ) -> int:
        """One UDP/IPv4 datagram; ``src`` / ``dst`` are (mac, ip, port)."""
        (smac, sip, sport), (dmac, dip, dport) = src, dst
        seg = pk.udp(sip, dip, sport, dport, payload)
        packet = pk.ipv4(sip, dip, pk.IPPROTO_UDP, seg, ident=len(self.frames))
        return self.add([pk.ethernet(dmac, smac, pk.ETH_IPV4, packet)])

    def write(self, path: Path) -> Path:
        with PcapWriter(path) as w:
            for k, frame in enumerate(self.frames):
                w.write(T0 + k * 1_000_000, frame)
        return path


def write_tcp_exchanges(
    path: Path,
    exchanges: Iterable[tuple[bool, bytes]],
    port: int,
    client_ip: str = "10.1.0.1",
    server_ip: str = "10.1.0.2",
    isn: tuple[int, int] = (1000, 5000),
    gap_ns: int = 10_000_000,
) -> Path:
    """One TCP conversation into a pcap: the handshake 1 ms apart, then every
    ``(from_client, payload)`` segment ``gap_ns`` after the one before."""
    conv = TcpConversation(
        "02:00:00:00:00:01", client_ip, 40001, "02:00:00:00:00:02", server_ip, port, *isn
    )
    ts = T0
    with PcapWriter(path) as w:
        for frame in conv.handshake():
            ts += 1_000_000
            w.write(ts, frame)
        for from_client, payload in exchanges:
            for frame in conv.send(from_client, payload):
                ts += gap_ns
                w.write(ts, frame)
    return path


def tshark(binary: str, path: Path, *args: str) -> str:
    return subprocess.run(
        [binary, "-r", str(path), *TSHARK_OPTS, *args], check=True, capture_output=True, text=True
    ).stdout


def problems(binary: str, path: Path, *args: str) -> str:
    """tshark's list of malformed frames and error-level expert infos (empty when clean)."""
    return tshark(binary, path, *args, "-Y", BAD).strip()


def fields(
    binary: str, path: Path, names: Sequence[str], *args: str, dfilter: str | None = None
) -> dict[int, dict[str, str]]:
    """``{frame: {field: value}}`` for every frame (or those matching ``dfilter``); repeated
    occurrences are joined by ',' and absent fields are ''."""
    cmd = [*args, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,", "-e", "frame.number"]
    for n in names:
        cmd += ["-e", n]
    if dfilter:
        cmd += ["-Y", dfilter]
    out: dict[int, dict[str, str]] = {}
    for line in tshark(binary, path, *cmd).splitlines():
        cols = line.split("\t")
        out[int(cols[0])] = dict(zip(names, cols[1:], strict=True))
    return out
