#!/usr/bin/env python3
"""Whole-process decode throughput of ``otsight analyze`` vs tshark vs a dpkt loop.

Method
------
For every capture given on the command line each tool runs as a separate child
process, launched through a tiny Python wrapper (``python -c``) that starts a clock,
``fork``/``exec``s the tool, reaps it with ``os.wait4`` and reports the wall time
plus that child's own ``ru_maxrss`` (peak RSS), user and system CPU.  Wrapper
start-up is therefore not counted, while the tool's own start-up (interpreter,
imports, JIT cache loading ...) is, hence "whole-process".

Tools
  otsight  ``OTSIGHT analyze CAPTURE --out TMPDIR --json`` (``--no-archive``: no
           ``--out``, every table decoded and counted, none written); stdout is parsed as JSON
           and must contain ``"packets"``; stderr (progress) goes to /dev/null.
           Before timing, otsight is run once on the smallest capture (warm-up:
           numba's on-disk cache is populated so that JIT compilation does not
           pollute the first measurement); disable with ``--no-warmup``.
  tshark   ``tshark -n -r CAPTURE -T fields -E separator=, -e frame.number ...``
           with the layer-2/3/4 fields otsight's decoder produces (incl. the
           ``tcp.stream`` / ``udp.stream`` conversation indices); stdout to
           /dev/null (``--tshark-count`` pipes it to the wrapper, which counts
           lines, to verify the packet count).
  dpkt     a minimal ``dpkt.pcap.UniversalReader`` loop (pcap/pcapng; Ethernet, 802.1Q, IPv4/IPv6,
           TCP/UDP; touches the same fields except the stream indices), run with
           this interpreter.

Each capture is read again (untimed) right before every run so every tool sees a warm page
cache: a host may page out idle file pages between runs (the 2026-11 benchmark VM runs DAMON
pageout), and a run that found them gone read the disk (about 2 s more for 4 M packets).
With ``--repeat N`` the minimum wall time of N runs is kept.

Figures
  packets/s  = packets / whole-process wall seconds (start-up included), and the
  ratios otsight/tshark and otsight/dpkt of those throughputs (> 1: otsight faster).
  With two or more captures also the *marginal* throughput between the smallest
  and the largest capture: (packets_large - packets_small) / (time_large -
  time_small), per tool, and the marginal ratios.  Start-up cost cancels out, so
  this is the headline figure for steady-state decode speed.

Packet counts come from otsight's JSON ``packets`` and are checked against a fast
independent count (walking pcap record headers / pcapng blocks); a mismatch is
reported loudly.  The figures use otsight's count (the walk's count when otsight
is not run or reports none).
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import platform
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

TSHARK_FIELDS = (
    "frame.number frame.time_epoch frame.len eth.src eth.dst vlan.id ip.src ip.dst "
    "ipv6.src ipv6.dst ip.proto tcp.srcport tcp.dstport tcp.flags tcp.seq_raw "
    "tcp.ack_raw tcp.len tcp.stream udp.srcport udp.dstport udp.stream"
).split()

# The protocol fields of the dissector tables (issue 3: "with the equivalent fields"),
# added by --tshark-fields=ics to the layer-2/3/4 ones.
TSHARK_ICS_FIELDS = (
    "mbtcp.trans_id mbtcp.unit_id modbus.func_code modbus.exception_code modbus.reference_num "
    "modbus.word_cnt modbus.regval_uint16 modbus.request_frame "
    "enip.command enip.session enip.status enip.context cip.sc cip.class cip.instance "
    "cip.attribute cip.symbol cip.genstat cip.cm.ot_connid cip.cm.to_connid "
    "s7comm.header.rosctr s7comm.header.pduref s7comm.param.func s7comm.param.item.area "
    "s7comm.param.item.db s7comm.param.item.address s7comm.data.returncode "
    "s7comm.data.userdata.szl_id cotp.type "
    "dnp3.src dnp3.dst dnp3.ctl.dir dnp3.al.func dnp3.al.seq dnp3.al.obj "
    "iec60870_104.type iec60870_asdu.typeid iec60870_asdu.causetx iec60870_asdu.addr "
    "iec60870_asdu.ioa bacapp.type bacapp.confirmed_service bacapp.invoke_id "
    "pn_dcp.service_id pn_dcp.xid opcua.transport.type opcua.servicenodeid.numeric "
    "goose.stNum goose.sqNum"
).split()

# The wrapper: argv = [stdout_path | "-count", stderr_path, cmd...]; prints one JSON line.
WRAPPER = r"""
import json, os, sys, time
out, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
count = out == "-count"
if count:
    r, w = os.pipe()
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        if count:
            os.close(r); os.dup2(w, 1); os.close(w)
        else:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644); os.dup2(fd, 1)
        fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644); os.dup2(fd, 2)
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
lines = None
if count:
    os.close(w); lines = 0
    while True:
        b = os.read(r, 1 << 20)
        if not b:
            break
        lines += b.count(b"\n")
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "max_rss_kb": ru.ru_maxrss, "user_s": ru.ru_utime,
                  "sys_s": ru.ru_stime, "rc": os.waitstatus_to_exitcode(status),
                  "lines": lines}))
"""

# Minimal dpkt decode loop; argv[1] = capture.  Prints the packet count.
DPKT_LOOP = r"""
import socket, sys
import dpkt
n = 0
acc = 0
with open(sys.argv[1], "rb") as f:
    for ts, buf in dpkt.pcap.UniversalReader(f):
        n += 1
        flen = len(buf)
        try:
            eth = dpkt.ethernet.Ethernet(buf)
        except (dpkt.UnpackError, IndexError):
            continue
        src, dst = eth.src, eth.dst
        tags = getattr(eth, "vlan_tags", None)
        vid = tags[0].id if tags else None
        ip = eth.data
        if isinstance(ip, dpkt.ip.IP):
            a, b, proto = ip.src, ip.dst, ip.p
        elif isinstance(ip, dpkt.ip6.IP6):
            a, b, proto = ip.src, ip.dst, ip.nxt
        else:
            continue
        l4 = ip.data
        if isinstance(l4, dpkt.tcp.TCP):
            acc += l4.sport + l4.dport + l4.flags + l4.seq + l4.ack + len(l4.data)
        elif isinstance(l4, dpkt.udp.UDP):
            acc += l4.sport + l4.dport
print(n)
"""


# --------------------------------------------------------------------------- helpers


def count_packets(path: str) -> int:
    """Independent packet count: walk pcap record headers or pcapng blocks."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 24:
            return 0
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            magic = m[:4]
            if magic == b"\x0a\x0d\x0d\x0a":
                return _count_pcapng(m, size)
            if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
                endian = "<"
            elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
                endian = ">"
            else:
                raise ValueError(f"{path}: not a pcap/pcapng file")
            unpack = struct.Struct(endian + "I").unpack_from
            off, n = 24, 0
            while off + 16 <= size:
                off += 16 + unpack(m, off + 8)[0]
                if off > size:
                    break
                n += 1
            return n


def _count_pcapng(m: mmap.mmap, size: int) -> int:
    off, n, endian = 0, 0, "<"
    while off + 12 <= size:
        btype = struct.unpack_from(endian + "I", m, off)[0]
        if btype == 0x0A0D0D0A:
            endian = "<" if m[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        blen = struct.unpack_from(endian + "I", m, off + 4)[0]
        if blen < 12:
            break
        if btype in (2, 3, 6):
            n += 1
        off += blen
    return n


def warm_cache(path: str) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def default_otsight_cmd() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "otsight")
    if os.path.exists(here):
        return here
    return shutil.which("otsight") or "otsight"


@dataclass
class Run:
    wall_s: float
    max_rss_kb: int
    user_s: float
    sys_s: float
    rc: int
    lines: int | None = None


def run_measured(cmd: list[str], stdout_path: str | None, count_lines: bool = False) -> Run:
    out = "-count" if count_lines else (stdout_path or os.devnull)
    p = subprocess.run(
        [sys.executable, "-c", WRAPPER, out, os.devnull, *cmd],
        stdout=subprocess.PIPE,
        check=True,
        text=True,
    )
    return Run(**json.loads(p.stdout.strip().splitlines()[-1]))


def find_packets(obj: Any) -> int | None:
    """First integer ``packets`` value, breadth-first (top level preferred)."""
    queue = [obj]
    while queue:
        cur = queue.pop(0)
        if isinstance(cur, dict):
            v = cur.get("packets")
            if isinstance(v, int) and not isinstance(v, bool):
                return v
            queue.extend(cur.values())
        elif isinstance(cur, list):
            queue.extend(cur)
    return None


def parse_json_stdout(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for line in reversed(text.splitlines()):  # e.g. a log line before the JSON
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    start = text.find("{")
    if start >= 0:
        try:
            return json.loads(text[start:])
        except json.JSONDecodeError:
            pass
    return None


def loud(msg: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n!!! {msg}\n{bar}\n", file=sys.stderr)


# --------------------------------------------------------------------------- tools


OTSIGHT_ARGS: list[str] = []  # extra `otsight analyze` options (--otsight-arg)
ARCHIVE = [True]  # False with --no-archive: decode and summarise, write no Parquet


def run_otsight(otsight: list[str], capture: str) -> tuple[Run, int | None]:
    with tempfile.TemporaryDirectory(prefix="otsight-bench-") as tmp:
        out_dir = os.path.join(tmp, "out")
        stdout_path = os.path.join(tmp, "stdout.json")
        out = ["--out", out_dir] if ARCHIVE[0] else []
        cmd = [*otsight, "analyze", capture, *out, "--json", *OTSIGHT_ARGS]
        run = run_measured(cmd, stdout_path)
        with open(stdout_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    packets = find_packets(parse_json_stdout(text))
    if run.rc != 0:
        loud(f"otsight exited with {run.rc} on {capture}; stdout head: {text[:300]!r}")
    elif packets is None:
        loud(f"otsight JSON output has no 'packets' for {capture}: {text[:300]!r}")
    return run, packets


def run_tshark(capture: str, count_lines: bool, ics: bool = False) -> Run:
    cmd = ["tshark", "-n", "-r", capture, "-T", "fields", "-E", "separator=,"]
    for fld in TSHARK_FIELDS + (TSHARK_ICS_FIELDS if ics else ()):
        cmd += ["-e", fld]
    run = run_measured(cmd, None, count_lines)
    if run.rc != 0:
        loud(f"tshark exited with {run.rc} on {capture}")
    return run


def run_dpkt(capture: str) -> tuple[Run, int | None]:
    with tempfile.NamedTemporaryFile(prefix="dpkt-bench-", suffix=".txt") as tmp:
        run = run_measured([sys.executable, "-c", DPKT_LOOP, capture], tmp.name)
        tmp.seek(0)
        txt = tmp.read().decode().strip()
    if run.rc != 0:
        loud(f"dpkt loop exited with {run.rc} on {capture}")
    return run, int(txt) if txt.isdigit() else None


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.wall_s)


# --------------------------------------------------------------------------- report


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("captures", nargs="+", metavar="CAPTURE")
    ap.add_argument("--otsight-cmd", default=None, help="otsight command (shell-split)")
    ap.add_argument(
        "--otsight-arg",
        action="append",
        default=[],
        help="extra option for `otsight analyze`, repeatable (e.g. --otsight-arg=--tables=flows)",
    )
    ap.add_argument(
        "--no-archive",
        action="store_true",
        help="run otsight without --out: every table decoded and counted, none written",
    )
    ap.add_argument("--no-otsight", action="store_true")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--no-dpkt", action="store_true")
    ap.add_argument("--no-warmup", action="store_true", help="skip the otsight warm-up run")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; min wall kept")
    ap.add_argument("--tshark-count", action="store_true", help="verify tshark line count")
    ap.add_argument(
        "--tshark-fields",
        choices=("l2l4", "ics"),
        default="l2l4",
        help="tshark's fields: layer 2-4 only, or also the industrial protocol fields",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    otsight = None if args.no_otsight else shlex.split(args.otsight_cmd or default_otsight_cmd())
    OTSIGHT_ARGS.extend(args.otsight_arg)
    ARCHIVE[0] = not args.no_archive
    tools = [
        t
        for t, on in (
            ("otsight", otsight),
            ("tshark", not args.no_tshark),
            ("dpkt", not args.no_dpkt),
        )
        if on
    ]
    progress = sys.stderr

    counted = {c: count_packets(c) for c in args.captures}
    if otsight and not args.no_warmup:
        smallest = min(args.captures, key=lambda c: counted[c])
        print(f"warm-up: otsight on {smallest}", file=progress)
        run_otsight(otsight, smallest)

    results: list[dict[str, Any]] = []
    for cap in args.captures:
        rec: dict[str, Any] = {
            "capture": cap,
            "bytes": os.path.getsize(cap),
            "packets_counted": counted[cap],
            "packets_otsight": None,
            "tools": {},
        }
        for tool in tools:
            runs: list[Run] = []
            for i in range(args.repeat):
                print(f"{tool:8s} {cap} (run {i + 1}/{args.repeat})", file=progress)
                warm_cache(cap)
                if tool == "otsight":
                    assert otsight is not None
                    r, pk = run_otsight(otsight, cap)
                    rec["packets_otsight"] = pk
                elif tool == "tshark":
                    r = run_tshark(cap, args.tshark_count, args.tshark_fields == "ics")
                    if r.lines is not None and r.lines != counted[cap]:
                        loud(f"tshark printed {r.lines} lines, expected {counted[cap]} ({cap})")
                else:
                    r, pk = run_dpkt(cap)
                    if pk is not None and pk != counted[cap]:
                        loud(f"dpkt saw {pk} packets, expected {counted[cap]} ({cap})")
                runs.append(r)
            rec["tools"][tool] = asdict(best(runs))
        pk = rec["packets_otsight"]
        if "otsight" in tools and pk is not None and pk != counted[cap]:
            loud(
                f"PACKET COUNT MISMATCH for {cap}: otsight says {pk}, "
                f"record walk says {counted[cap]}"
            )
        rec["packets"] = pk if pk is not None else counted[cap]
        for t in rec["tools"].values():
            ok = t["wall_s"] > 0 and t["rc"] == 0
            t["packets_per_s"] = rec["packets"] / t["wall_s"] if ok else None
        tp = {k: v["packets_per_s"] for k, v in rec["tools"].items()}
        rec["ratios"] = {
            "otsight/tshark": ratio(tp.get("otsight"), tp.get("tshark")),
            "otsight/dpkt": ratio(tp.get("otsight"), tp.get("dpkt")),
        }
        results.append(rec)

    marginal: dict[str, Any] | None = None
    if len(results) >= 2:
        small = min(results, key=lambda r: r["packets"])
        large = max(results, key=lambda r: r["packets"])
        if large["packets"] > small["packets"]:
            dp = large["packets"] - small["packets"]
            mt: dict[str, Any] = {}
            for tool in tools:
                dt = large["tools"][tool]["wall_s"] - small["tools"][tool]["wall_s"]
                ok = dt > 0 and large["tools"][tool]["rc"] == 0 == small["tools"][tool]["rc"]
                mt[tool] = {
                    "delta_packets": dp,
                    "delta_s": dt,
                    "packets_per_s": dp / dt if ok else None,
                }
            mp = {k: v["packets_per_s"] for k, v in mt.items()}
            marginal = {
                "small": small["capture"],
                "large": large["capture"],
                "tools": mt,
                "ratios": {
                    "otsight/tshark": ratio(mp.get("otsight"), mp.get("tshark")),
                    "otsight/dpkt": ratio(mp.get("otsight"), mp.get("dpkt")),
                },
            }

    meta = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "otsight_cmd": otsight,
        "repeat": args.repeat,
    }
    if not args.no_tshark:
        v = subprocess.run(["tshark", "-v"], capture_output=True, text=True).stdout
        meta["tshark"] = v.splitlines()[0] if v else None
    if not args.no_dpkt:
        import dpkt

        meta["dpkt"] = dpkt.__version__

    if args.json:
        print(json.dumps({"meta": meta, "captures": results, "marginal": marginal}, indent=2))
        return 0

    print(
        f"\n{'capture':40s} {'tool':8s} {'packets':>10s} {'wall s':>8s} "
        f"{'pkts/s':>12s} {'maxRSS MB':>10s} {'cpu s':>7s}"
    )
    for rec in results:
        name = os.path.basename(rec["capture"])[-40:]
        for tool, t in rec["tools"].items():
            print(
                f"{name:40s} {tool:8s} {rec['packets']:10d} {t['wall_s']:8.2f} "
                f"{fmt(t['packets_per_s'], ',.0f'):>12s} {t['max_rss_kb'] / 1024:10.1f} "
                f"{t['user_s'] + t['sys_s']:7.2f}"
            )
        r = rec["ratios"]
        print(
            f"{'':40s} ratio otsight/tshark = {fmt(r['otsight/tshark'], '.2f')}, "
            f"otsight/dpkt = {fmt(r['otsight/dpkt'], '.2f')}"
        )
    if marginal:
        print(
            f"\nmarginal throughput {os.path.basename(marginal['small'])} -> "
            f"{os.path.basename(marginal['large'])} (start-up cancels out):"
        )
        for tool, m in marginal["tools"].items():
            print(
                f"  {tool:8s} {m['delta_packets']:10d} packets in {m['delta_s']:8.2f} s "
                f"= {fmt(m['packets_per_s'], ',.0f'):>12s} packets/s"
            )
        r = marginal["ratios"]
        print(
            f"  marginal ratio otsight/tshark = {fmt(r['otsight/tshark'], '.2f')}, "
            f"otsight/dpkt = {fmt(r['otsight/dpkt'], '.2f')}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
