"""The water treatment plant: tshark-clean captures, values otsight and tshark agree on,
labels on exactly the attack frames, writes that change what polls read, determinism."""

from __future__ import annotations

import csv
import json
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from otsight.sim.generate import simulate
from otsight.sim.model import load_named_plant, load_scenarios
from otsight.testing.decode import decode

# every water-plant attack, packed into a short run
SCENARIO = """
- name: water_test
  plant: water_treatment
  duration: 150s
  attacks:
    - {attack: network_scan, at: 10s, name: scan, hosts: 24}
    - {attack: modbus_device_id_recon, at: 20s, name: recon}
    - {attack: modbus_write_burst, at: 35s, target: plc-clearwell, writes: 12, name: burst}
    - {attack: setpoint_out_of_range, at: 50s, target: plc-intake,
       register: raw_high_level_sp, value: 2600, name: sp_high}
    - {attack: setpoint_in_range, at: 60s, target: plc-filter, from: historian, name: sp_quiet}
    - {attack: dnp3_cold_restart, at: 70s, target: rtu-north, name: restart}
    - {attack: dnp3_disable_unsolicited, at: 80s, target: rtu-south, name: unsol_off}
    - {attack: dnp3_firmware_transfer, at: 90s, target: rtu-east, size: 1200, name: firmware}
    - {attack: engineering_session_0300, at: 100s, target: plc-chem, name: night_eng}
    - {attack: smb_copy_to_ews, at: 110s, from: office-1, size: 70000, name: smb_tool}
    - {attack: rdp_it_to_control, at: 120s, from: office-1, target: ews-1, name: rdp_in}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("water")
    (d / "s.yaml").write_text(SCENARIO)
    sc = load_scenarios(d / "s.yaml")["water_test"]
    res = simulate(sc, d / "w.pcap", d / "w.labels.csv", seed=7)
    return res, d


@pytest.fixture(scope="module")
def tables(run):
    """otsight's tables of the run, as lists of rows (timestamps left out)."""
    res, _ = run
    t = decode(res.pcap).tables
    out = {}
    for name in ("modbus", "dnp3"):
        table = t[name]
        stamps = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        out[name] = table.drop_columns(stamps).to_pylist()
    return out


def _labels(path: str) -> list[str]:
    with open(path) as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    assert rows[0] == ["frame", "label"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, len(rows)))
    return [r[1] for r in rows[1:]]


def test_plant_has_twenty_devices_on_four_levels():
    plant = load_named_plant("water_treatment")
    assert len(plant.devices) == 20
    assert {plant.level(d) for d in plant.devices} == {1, 2, 3, 4}


def test_every_attack_is_labelled_and_documented(run):
    res, _ = run
    names = [a["name"] for a in res.attacks]
    assert names == [
        "scan",
        "recon",
        "burst",
        "sp_high",
        "sp_quiet",
        "restart",
        "unsol_off",
        "firmware",
        "night_eng",
        "smb_tool",
        "rdp_in",
    ]
    labels = _labels(res.labels)
    assert len(labels) == res.packets
    counts = Counter(labels)
    for a in res.attacks:
        assert counts[a["name"]] == a["frame_count"] > 0
        assert a["techniques"] and all(t.startswith("T0") for t in a["techniques"])
        first, last = a["frames"]
        assert labels[first - 1] == labels[last - 1] == a["name"]
    sidecar = json.loads(Path(res.attacks_json).read_text())
    assert [a["name"] for a in sidecar] == names


def test_tshark_decodes_without_errors(run, tshark):
    res, _ = run
    bad = subprocess.run(
        [tshark, "-n", "-r", res.pcap, "-Y", "_ws.malformed || _ws.expert.severity >= error"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert bad == ""
    n = subprocess.run(
        [tshark, "-n", "-r", res.pcap, "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(n) == res.packets


def _tshark_fields(tshark, pcap, filt, fields):
    out = subprocess.run(
        [
            tshark,
            "-n",
            "-r",
            pcap,
            "-Y",
            filt,
            "-T",
            "fields",
            "-E",
            "occurrence=f",
            *sum((["-e", f] for f in fields), []),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines()]


def test_modbus_fields_agree_with_tshark(run, tables, tshark):
    res, _ = run
    mine = {r["frame"]: r for r in tables["modbus"]}
    theirs = _tshark_fields(
        tshark,
        res.pcap,
        "modbus",
        [
            "frame.number",
            "mbtcp.trans_id",
            "mbtcp.unit_id",
            "modbus.func_code",
            "modbus.request_frame",
        ],
    )
    assert len(theirs) == len(mine) > 1000
    for frame, tid, unit, fc, req in theirs:
        r = mine[int(frame)]
        assert (r["trans_id"], r["unit_id"], r["func_code"]) == (int(tid), int(unit), int(fc))
        if req:
            assert r["request_frame"] == int(req)


def test_dnp3_fields_agree_with_tshark(run, tables, tshark):
    res, _ = run
    mine = {r["frame"]: r for r in tables["dnp3"]}
    theirs = _tshark_fields(
        tshark,
        res.pcap,
        "dnp3.al.func",
        ["frame.number", "dnp3.src", "dnp3.dst", "dnp3.al.func", "dnp3.al.seq"],
    )
    assert len(theirs) > 100
    for frame, src, dst, fc, seq in theirs:
        r = mine[int(frame)]
        assert (r["src_addr"], r["dst_addr"], r["func_code"], r["app_seq"]) == (
            int(src),
            int(dst),
            int(fc),
            int(seq),
        )


def test_attack_frames_carry_the_attack(run, tables):
    res, _ = run
    labels = np.array(_labels(res.labels), dtype=object)
    mb = tables["modbus"]
    burst = [r for r in mb if labels[r["frame"] - 1] == "burst" and r["is_request"]]
    assert len(burst) == 12 and {r["func_code"] for r in burst} == {16}
    assert not [
        r
        for r in mb
        if r["func_code"] in (6, 16)
        and labels[r["frame"] - 1] == "normal"
        and r["src_ip"] != "10.30.0.50"
    ]  # benign writes come only from the EWS
    recon = {r["func_code"] for r in mb if labels[r["frame"] - 1] == "recon"}
    assert recon == {43}
    dnp = tables["dnp3"]
    assert {
        r["func_code"] for r in dnp if labels[r["frame"] - 1] == "restart" and r["is_request"]
    } == {13}
    assert {
        r["func_code"] for r in dnp if labels[r["frame"] - 1] == "unsol_off" and r["is_request"]
    } == {21}


def test_a_write_changes_what_the_polls_read(run, tables):
    """The HMI polls plc-intake registers 20–21 every 10 s; after sp_high wrote 2600 to
    register 20, the polls read 2600 instead of the configured 650."""
    mb = tables["modbus"]
    write = next(r for r in mb if r["func_code"] == 6 and r["dst_ip"] == "10.40.1.11")
    polls = [
        r
        for r in mb
        if not r["is_request"]
        and r["func_code"] == 3
        and r["start_address"] == 20
        and r["src_ip"] == "10.40.1.11"
    ]
    before = {r["values"][0] for r in polls if r["frame"] < write["frame"]}
    after = {r["values"][0] for r in polls if r["frame"] > write["frame"] + 10}
    assert before == {650} and after == {2600}


def test_same_seed_same_bytes(tmp_path):
    sc = load_scenarios()["water_frostygoop"]
    a = simulate(sc, tmp_path / "a.pcap", None, duration=90 * 10**9, seed=3)
    b = simulate(sc, tmp_path / "b.pcap", None, duration=90 * 10**9, seed=3)
    c = simulate(sc, tmp_path / "c.pcap", None, duration=90 * 10**9, seed=4)
    assert Path(a.pcap).read_bytes() == Path(b.pcap).read_bytes()
    assert Path(a.pcap).read_bytes() != Path(c.pcap).read_bytes()
