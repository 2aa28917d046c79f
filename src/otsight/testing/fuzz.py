"""Mutation fuzzing of the whole decode pipeline with real protocol data units as seeds.

Seeds are real PDUs taken from captures: TCP PDUs as framed by reassembly, UDP payloads,
and Ethernet payloads of non-IP industrial frames. Each mutant (bit flips, bytes forced to
boundary values, truncation, lying length fields, appended junk, repeated slices for deep
nesting) is written into a fresh capture — TCP mutants keep their framing header consistent
so that they reach the protocol dissectors — and the capture is decoded by every stage.
A run passes when nothing raises, no dissector is switched off, and it finishes.

    python -m otsight.testing.fuzz CAPTURE_OR_DIR... --mutations 1000000 --seed 1
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from otsight.capture.framing import FRAMERS
from otsight.encode import packets as pk
from otsight.encode.pcapfile import PcapWriter
from otsight.encode.tcp_session import TcpConversation

_FRAMER_BY_NAME = {name: fid for fid, (name, _, _) in FRAMERS.items()}
_HEADER = {name: hdr for name, hdr, _ in FRAMERS.values()}
MAX_TCP_PAYLOAD = 4000


@dataclass(frozen=True)
class Seed:
    kind: str  # "tcp", "udp" or "l2"
    protocol: str  # framer name for tcp, "udp:<dport>" or "l2:<ethertype>"
    data: bytes
    sport: int = 0
    dport: int = 0
    ethertype: int = 0


# ---- seeds ---------------------------------------------------------------------------------
def seeds_from(path: Path, limit: int = 400) -> list[Seed]:
    """Real PDUs of one capture: framed TCP PDUs, UDP payloads, non-IP industrial frames."""
    import numpy as np

    from otsight.capture.pcap import CaptureReader
    from otsight.dissect import _l2l4 as L
    from otsight.dissect.routing import ETHERTYPE_PROTOCOLS
    from otsight.testing.decode import decode

    out: list[Seed] = []
    for pdu in decode(path, dissect=False).pdus[:limit]:
        out.append(Seed("tcp", pdu.protocol, pdu.data, pdu.src[1], pdu.dst[1]))
    reader = CaptureReader(path)
    taken = 0
    for chunk in reader.chunks():
        cols, _ = L.decode_l2l4(
            chunk.buf, chunk.offset, chunk.caplen, chunk.linktype, chunk.wirelen
        )
        udp = np.flatnonzero((cols[:, L.PROTO] == 17) & (cols[:, L.PAY_LEN] > 0))
        for i in udp[: max(0, limit - taken)]:
            p, n = int(cols[i, L.PAY_OFF]), int(cols[i, L.PAY_LEN])
            out.append(
                Seed(
                    "udp",
                    f"udp:{int(cols[i, L.DPORT])}",
                    bytes(chunk.buf[p : p + n]),
                    int(cols[i, L.SPORT]),
                    int(cols[i, L.DPORT]),
                )
            )
            taken += 1
        l2 = np.flatnonzero(np.isin(cols[:, L.ETHERTYPE], list(ETHERTYPE_PROTOCOLS)))
        for i in l2[:limit]:
            p = int(cols[i, L.L3_OFF])
            end = int(chunk.offset[i] + chunk.caplen[i])
            et = int(cols[i, L.ETHERTYPE])
            out.append(Seed("l2", f"l2:{et:#06x}", bytes(chunk.buf[p:end]), ethertype=et))
    return out


def captures_under(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix in (".pcap", ".pcapng", ".cap"))
        elif p.is_file():
            found.append(p)
    return found


# ---- mutation -------------------------------------------------------------------------------
def _dnp3_user_data(frame: bytes) -> bytes | None:
    """A DNP3 link frame's user data without its CRCs (None if it is not one)."""
    if len(frame) < 10 or frame[:2] != b"\x05\x64":
        return None
    out = bytearray(frame[3:8])  # control, destination, source
    p = 10
    while p < len(frame):
        block = frame[p : p + 16]
        out += block
        p += len(block) + 2
    return bytes(out)


def _dnp3_crc(data: bytes) -> bytes:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
    return struct.pack("<H", ~crc & 0xFFFF)


def _dnp3_frame(user: bytes) -> bytes:
    """Rebuild a link frame (with correct CRCs) around control+addresses+data ``user``."""
    user = user[:255]
    if len(user) < 5:
        user = user + bytes(5 - len(user))
    head = b"\x05\x64" + bytes([len(user)]) + user[:5]
    out = bytearray(head + _dnp3_crc(head))
    body = user[5:]
    for k in range(0, len(body), 16):
        block = body[k : k + 16]
        out += block + _dnp3_crc(block)
    return bytes(out)


def _fix_header(protocol: str, data: bytearray) -> bytes:
    """Make the framing header agree with the mutant's length, so the framer accepts it."""
    n = len(data)
    if protocol == "modbus" and n >= 8:
        struct.pack_into(">H", data, 2, 0)
        struct.pack_into(">H", data, 4, min(n - 6, 2048))
        return bytes(data[: 6 + min(n - 6, 2048)])
    if protocol == "enip" and n >= 24:
        struct.pack_into("<H", data, 2, n - 24)
    elif protocol == "tpkt" and n >= 7:
        data[0], data[1] = 3, 0
        struct.pack_into(">H", data, 2, min(n, 65535))
    elif protocol == "iec104" and n >= 6:
        data[0] = 0x68
        data[1] = min(n - 2, 253)
        return bytes(data[: 2 + data[1]])
    elif protocol == "opcua" and n >= 8:
        struct.pack_into("<I", data, 4, n)  # message size counts the whole chunk
    elif protocol == "fins" and n >= 16:
        struct.pack_into(">I", data, 4, n - 8)  # length of what follows the length field
    return bytes(data)


def mutate(seed: Seed, rng: random.Random) -> tuple[str, bytes]:
    """One mutant of ``seed``: (mutation name, bytes)."""
    dnp3_user = _dnp3_user_data(seed.data) if seed.protocol == "dnp3" else None
    base = bytearray(dnp3_user if dnp3_user is not None else seed.data)
    keep = _HEADER.get(seed.protocol, 0) if seed.kind == "tcp" and dnp3_user is None else 0
    how = rng.choice(("bitflip", "boundary", "truncate", "lie16", "lie8", "extend", "repeat"))
    n = len(base)
    if n <= keep:
        how = "extend"
    if how == "bitflip":
        for _ in range(rng.randint(1, 8)):
            k = rng.randrange(keep, n)
            base[k] ^= 1 << rng.randrange(8)
    elif how == "boundary":
        for _ in range(rng.randint(1, 4)):
            base[rng.randrange(keep, n)] = rng.choice((0x00, 0xFF, 0x7F, 0x80, 0x01))
    elif how == "truncate":
        del base[rng.randint(keep, n - 1) :]
    elif how in ("lie16", "lie8"):
        k = rng.randrange(keep, n)
        if how == "lie16" and k + 2 <= n:
            struct.pack_into(
                ">H", base, k, rng.choice((0, 1, 0xFF, 0x100, 0x7FFF, 0xFFFF, rng.randrange(65536)))
            )
        else:
            base[k] = rng.choice((0, 1, 0x7F, 0xFF, rng.randrange(256)))
    elif how == "extend":
        base += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif how == "repeat" and n > keep + 1:
        a = rng.randrange(keep, n - 1)
        b = rng.randrange(a + 1, min(n, a + 32) + 1)
        base[b:b] = bytes(base[a:b]) * rng.randint(2, 40)
    if dnp3_user is not None:
        return how, _dnp3_frame(bytes(base))
    if seed.kind == "tcp":
        return how, _fix_header(seed.protocol, base)[:MAX_TCP_PAYLOAD]
    return how, bytes(base[:1400])


# ---- writing mutants as captures --------------------------------------------------------------
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def write_mutants(seeds: list[Seed], count: int, rng: random.Random, path: Path) -> Counter:
    """Write ``count`` mutants into one capture; returns counts per mutation kind."""
    kinds: Counter = Counter()
    ts = 1_700_000_000_000_000_000
    flows: dict[tuple[str, int, int], TcpConversation] = {}
    with PcapWriter(path) as w:
        for k in range(count):
            seed = seeds[rng.randrange(len(seeds))]
            how, data = mutate(seed, rng)
            kinds[how] += 1
            ts += 1_000
            if seed.kind == "tcp":
                key = (seed.protocol, seed.sport, seed.dport)
                conv = flows.get(key)
                if conv is None or k % 5000 == 0:
                    conv = TcpConversation(
                        MAC_A,
                        "10.9.0.1",
                        seed.sport or 40000,
                        MAC_B,
                        "10.9.0.2",
                        seed.dport or 502,
                        rng.randrange(2**32),
                        rng.randrange(2**32),
                    )
                    flows[key] = conv
                    for frame in conv.handshake():
                        w.write(ts, frame)
                    for frame in conv.send(True, seed.data):  # establishes the framer
                        w.write(ts, frame)
                for frame in conv.send(rng.random() < 0.5, data):
                    w.write(ts, frame)
            elif seed.kind == "udp":
                ip = pk.ipv4(
                    "10.9.1.1",
                    "10.9.1.2",
                    17,
                    pk.udp("10.9.1.1", "10.9.1.2", seed.sport, seed.dport, data),
                )
                w.write(ts, pk.ethernet(MAC_B, MAC_A, pk.ETH_IPV4, ip))
            else:
                w.write(ts, pk.ethernet(MAC_B, MAC_A, seed.ethertype, data))
    return kinds


def run(captures: list[Path], mutations: int, seed: int, batch: int = 20_000) -> dict:
    """Fuzz; returns a report. Raises nothing: failures are counted in the report."""
    from otsight.testing.decode import decode

    rng = random.Random(seed)
    seeds = [s for c in captures for s in seeds_from(c)]
    if not seeds:
        raise SystemExit("no seeds: give captures with TCP, UDP or industrial L2 traffic")
    report: dict = {
        "seeds": len(seeds),
        "mutations": 0,
        "kinds": Counter(),
        "failures": [],
        "weird": Counter(),
        "by_protocol": Counter(s.protocol for s in seeds),
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="otsight-fuzz-") as tmp:
        done = 0
        while done < mutations:
            n = min(batch, mutations - done)
            path = Path(tmp) / f"mutants-{done}.pcap"
            report["kinds"].update(write_mutants(seeds, n, rng, path))
            d = decode(path)
            report["failures"] += d.failures
            for name in d.tables["weird"].column("name").to_pylist():
                report["weird"][name] += 1
            path.unlink()
            done += n
            report["mutations"] = done
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["kinds"] = dict(report["kinds"])
    report["weird"] = dict(report["weird"].most_common(30))
    report["by_protocol"] = dict(report["by_protocol"])
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("captures", nargs="+", type=Path, help="captures or folders of seeds")
    ap.add_argument("--mutations", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    report = run(captures_under(args.captures), args.mutations, args.seed)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
