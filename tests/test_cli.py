"""The command line as a user meets it: exit codes, messages, JSON, and no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otsight.encode import packets as pk
from otsight.encode.pcapfile import PcapngWriter, PcapWriter

VERBS = ["analyze", "query", "plugins", "simulate", "demo", "eval"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "otsight", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


@pytest.mark.parametrize("verb", [None, *VERBS])
def test_help_on_every_verb(verb):
    proc = run(*([verb] if verb else []), "--help")
    assert proc.returncode == 0 and "Usage" in proc.stdout


def test_analyze_json_and_query(samples, tmp_path):
    out = tmp_path / "out"
    proc = run("analyze", str(samples["pcap"]), "--out", str(out), "--json")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    truth = samples["truth"]
    assert summary["packets"] == truth.packet_count
    # the truth lists TCP and UDP flows; the ICMP echo exchange is one more flow
    expected = {"tcp": len(truth.tcp_flows()), "udp": len(truth.udp_flows()), "icmp": 1}
    assert truth.icmp_frames and summary["transports"] == expected
    assert summary["flows"] == len(truth.flows) + 1
    assert summary["pdus"] == {"modbus": len(truth.modbus)}
    assert summary["arp"] == truth.arp_frames
    assert summary["lldp_systems"] == sorted(truth.lldp_system_names)
    assert summary["protocols"]["modbus"] == len(truth.modbus)
    for table in ("flows", "pdus", "weird", "arp", "lldp", "l2_frames", "modbus", "dnp3", "cip"):
        assert (out / table / "part-0.parquet").is_file()
    assert (out / "state.sqlite").is_file()

    proc = run(
        "query",
        "--db",
        str(out),
        "--json",
        "SELECT protocol, count(*) AS n FROM pdus GROUP BY protocol",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"protocol": "modbus", "n": len(truth.modbus)}]

    proc = run(
        "query",
        "--db",
        str(out),
        "--json",
        "SELECT c.packets, count(f.flow_id) AS flows FROM captures c "
        "JOIN flows f ON f.capture = c.capture GROUP BY c.packets",
    )
    assert json.loads(proc.stdout) == [
        {"packets": truth.packet_count, "flows": len(truth.flows) + 1}
    ]

    proc = run(
        "query", "--db", str(out), "--json", "SELECT frame, ts FROM arp ORDER BY frame LIMIT 1"
    )
    [row] = json.loads(proc.stdout)
    assert row["frame"] == truth.events["arp"][0] and row["ts"].startswith("20")

    proc = run("query", "--db", str(out), "SELEC nonsense")
    assert proc.returncode == 2 and "SQL error" in proc.stderr
    no_traceback(proc)


def test_several_captures_in_one_run(samples, tmp_path):
    proc = run(
        "analyze", str(samples["pcap"]), str(samples["pcapng"]), str(samples["gz"]), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["packets"] == 3 * samples["truth"].packet_count
    assert [c["packets"] for c in summary["captures"]] == [samples["truth"].packet_count] * 3


def test_truncated_capture_warns_with_offset_and_exits_0(samples, tmp_path):
    data = samples["pcap"].read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-25])
    proc = run("analyze", str(cut), "--json")
    no_traceback(proc)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["packets"] == samples["truth"].packet_count - 1
    assert (
        "warning" in proc.stderr
        and "byte offset" in proc.stderr
        and "cut mid-record" in proc.stderr
    )


def test_not_a_capture_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("these are my notes, not a capture\n")
    proc = run("analyze", str(bad))
    no_traceback(proc)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not a capture file" in lines[0]


def test_missing_file_exit_2(tmp_path):
    proc = run("analyze", str(tmp_path / "nope.pcap"))
    assert proc.returncode == 2 and "no such capture file" in proc.stderr
    no_traceback(proc)


def test_unknown_link_type_is_named(tmp_path):
    path = tmp_path / "user0.pcap"
    with PcapWriter(path, linktype=147) as w:
        w.write(1_000_000_000, b"\x01\x02\x03\x04")
        w.write(2_000_000_000, b"\x05\x06")
    proc = run("analyze", str(path), "--json")
    no_traceback(proc)
    assert proc.returncode == 2
    assert "unsupported link type 147 (USER0)" in proc.stderr
    assert json.loads(proc.stdout)["packets"] == 2  # counted, not lost


def test_unknown_link_type_beside_a_good_interface(tmp_path):
    path = tmp_path / "mixed.pcapng"
    frame = pk.ethernet(
        "00:00:00:00:00:02",
        "00:00:00:00:00:01",
        pk.ETH_IPV4,
        pk.ipv4("10.0.0.1", "10.0.0.2", 17, pk.udp("10.0.0.1", "10.0.0.2", 1, 2, b"x")),
    )
    with PcapngWriter(path) as w:
        good = w.add_interface(1)
        odd = w.add_interface(195)
        w.write(good, 1_000, frame)
        w.write(odd, 2_000, b"\x41\x88\x00")
        w.write(good, 3_000, frame)
    proc = run("analyze", str(path), "--json")
    no_traceback(proc)
    summary = json.loads(proc.stdout)
    assert summary["packets"] == 3 and summary["flows"] == 1  # the good part is decoded
    assert "unsupported link type 195 (IEEE802_15_4_WITHFCS)" in proc.stderr
    assert proc.returncode == 2


def test_broken_output_folder_is_an_error_not_a_traceback(samples, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run("analyze", str(samples["pcap"]), "--out", str(blocker / "sub"))
    no_traceback(proc)
    assert proc.returncode in (1, 2) and "error" in proc.stderr


def test_plugins_lists_the_dissectors():
    proc = run("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    names = {row["name"] for row in json.loads(proc.stdout)}
    assert {"modbus", "dnp3", "enip", "s7comm", "profinet", "iec104", "bacnet"} <= names


def test_tables_option_limits_what_runs(samples, tmp_path):
    out = tmp_path / "out"
    proc = run(
        "analyze", str(samples["pcap"]), "--out", str(out), "--json", "--tables", "flows,modbus"
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(json.loads(proc.stdout)["tables"]) == ["flows", "modbus"]
    proc = run("analyze", str(samples["pcap"]), "--tables", "flows,nonsense")
    assert proc.returncode == 2 and "unknown table(s) nonsense" in proc.stderr


def test_keep_freed_memory_turns_off_numpy_huge_page_advice():
    """The decode keeps freed blocks in the heap and stops numpy's huge-page advice (slow
    first touches on lazily backed VM memory); both are process settings with no output."""
    import numpy as np

    from otsight._memory import keep_freed_memory

    keep_freed_memory()
    core = getattr(np, "_core", None) or np.core
    previous = core.multiarray._set_madvise_hugepage(False)  # returns the setting before
    assert previous is False
