"""The 110/20 kV substation on IEC 104: tshark-clean captures, fields otsight and tshark
agree on, sequence numbers, acknowledgements and keep-alives exactly as IEC 60870-5-104
requires, labels on the attack frames, commands that open breakers, determinism."""

from __future__ import annotations

import csv
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from otsight.sim import iec104 as iec
from otsight.sim.generate import simulate
from otsight.sim.model import load_named_plant, load_scenarios
from otsight.testing.decode import decode

# every substation attack, packed into a short run
SCENARIO = """
- name: substation_test
  plant: substation
  duration: 180s
  attacks:
    - {attack: network_scan, at: 10s, network: bay, intruder_ip: 10.130.1.200, hosts: 40,
       name: scan}
    - {attack: iec104_interrogation_recon, at: 25s, intruder_ip: 10.130.1.200,
       targets: [rtu-gw, ied-f1], name: recon}
    - {attack: iec104_spoofed_reporting, at: 60s, target: rtu-gw, master: scada-fe,
       duration: 100s, name: spoof}
    - {attack: iec104_command_storm, at: 90s, target: rtu-gw, from: ews, ioas: [11010, 31010],
       name: storm}
"""
ATTACKER_MAC = "3c:52:82:6e:1f:07"
GATEWAY, SCADA, EWS = "10.130.1.10", "10.120.0.10", "10.130.1.50"
BREAKERS = [11001, 12001, 21001, 21002, 22001, 22002, 31001, 32001, 33001]
W, K = 8, 12


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("substation")
    (d / "s.yaml").write_text(SCENARIO)
    sc = load_scenarios(d / "s.yaml")["substation_test"]
    return simulate(sc, d / "s.pcap", d / "s.labels.csv", seed=5)


@pytest.fixture(scope="module")
def rows(run):
    """otsight's iec104 table of the run (timestamps left out), in frame order."""
    table = decode(run.pcap).tables["iec104"]
    stamps = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
    return sorted(table.drop_columns(stamps).to_pylist(), key=lambda r: r["frame"])


@pytest.fixture(scope="module")
def labels(run) -> list[str]:
    with open(run.labels) as fh:
        got = list(csv.reader(fh, delimiter=";"))
    assert got[0] == ["frame", "label"]
    return [r[1] for r in got[1:]]


def _tshark(tshark: str, pcap: str, filt: str, fields: list[str]) -> list[list[str]]:
    out = subprocess.run(
        [tshark, "-n", "-r", pcap, "-Y", filt, "-T", "fields", "-E", "occurrence=a"]
        + sum((["-e", f] for f in fields), []),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines()]


def test_plant_loads_with_vendor_identities():
    plant = load_named_plant("substation")
    assert 12 <= len(plant.devices) <= 15
    assert {plant.level(d) for d in plant.devices} == {1, 2, 3}
    for d in plant.devices.values():
        assert d.vendor and d.model, d.name
    outstations = [d.name for d in plant.devices.values() if d.role in ("rtu", "ied")]
    cas = [iec.common_address(plant, d) for d in outstations]
    assert len(set(cas)) == len(cas) == 8
    gateway = iec.points(plant, "rtu-gw")
    assert Counter(p.kind for p in gateway) == {
        "double": 21,
        "single": 18,
        "float": 34,
        "scaled": 2,
    }
    assert [p.ioa for p in gateway if p.command] == BREAKERS


def test_deadband_matches_its_naive_twin():
    rng = np.random.default_rng(0)
    v = np.cumsum(rng.normal(0, 1, 5000))

    def naive(v, band):
        out, last = [False], v[0]
        for x in v[1:]:
            out.append(abs(x - last) >= band)
            last = x if out[-1] else last
        return np.array(out)

    for band in (0.5, 2.0, 7.5):
        assert (iec.deadband(v, band) == naive(v, band)).all()


def test_every_attack_is_labelled(run, labels):
    assert [a["name"] for a in run.attacks] == ["scan", "recon", "spoof", "storm"]
    assert len(labels) == run.packets
    counts = Counter(labels)
    for a in run.attacks:
        assert counts[a["name"]] == a["frame_count"] > 0
        first, last = a["frames"]
        assert labels[first - 1] == labels[last - 1] == a["name"]
        assert a["techniques"] and all(t.startswith("T0") for t in a["techniques"])


def test_tshark_decodes_without_errors(run, tshark):
    bad = _tshark(
        tshark, run.pcap, "_ws.malformed || _ws.expert.severity >= error", ["frame.number"]
    )
    assert bad == []
    assert len(_tshark(tshark, run.pcap, "", ["frame.number"])) == run.packets


def test_iec104_fields_agree_with_tshark(run, rows, tshark):
    mine = {r["frame"]: r for r in rows}
    fields = ["frame.number", "iec60870_104.type", "iec60870_104.tx", "iec60870_104.rx"]
    fields += ["iec60870_asdu.typeid", "iec60870_asdu.causetx", "iec60870_asdu.addr"]
    fields += ["iec60870_asdu.ioa", "iec60870_asdu.float"]
    theirs = _tshark(tshark, run.pcap, "iec60870_104", fields)
    assert len(theirs) == len(mine) > 500  # one APDU per frame
    apci = {0: "I", 1: "S", 3: "U"}
    for frame, kind, tx, rx, tid, cot, ca, ioa, floats in theirs:
        r = mine[int(frame)]
        assert r["apci_type"] == apci[int(kind, 0)]
        if r["apci_type"] != "U":
            assert r["rx"] == int(rx)
        if r["apci_type"] == "I":
            assert (r["tx"], r["type_id"], r["cot"], r["common_address"]) == (
                int(tx),
                int(tid),
                int(cot),
                int(ca),
            )
            assert r["ioa"] == [int(x) for x in ioa.split(",")]
            if floats:
                got = [float(f"{v:.6g}") for v in r["value"]]
                assert got == [float(f"{float(x):.6g}") for x in floats.split(",")]


def test_sequence_numbers_acknowledgements_and_keepalives_are_exact(rows):
    """Per connection and direction: N(S) counts I-frames from 0; every N(R) acknowledges
    only I-frames already received, an I-frame's N(R) all of them; the receiver never holds
    more than w unacknowledged I-frames beyond a short ack delay (nor k ever); a side that
    hears nothing for t3 (20 s) tests the link with TESTFR act, answered by con."""
    flows = defaultdict(list)
    for r in rows:
        flows[r["flow_id"]].append(r)
    assert len(flows) >= 9 + 3  # the plant's links and the intruders' sessions
    for flow in flows.values():
        sent = {True: 0, False: 0}  # I-frames sent by the originator / the responder
        acked = {True: 0, False: 0}  # ... last N(R) each side sent
        pending_test = None
        for r in flow:
            me, peer = r["is_orig"], not r["is_orig"]
            if r["apci_type"] == "I":
                assert r["tx"] == sent[me] % 32768
                assert r["rx"] == sent[peer] % 32768  # acknowledges all it received
                sent[me] += 1
                acked[me] = sent[peer]
            elif r["apci_type"] == "S":
                assert acked[me] <= r["rx"] <= sent[peer]
                acked[me] = r["rx"]
            else:
                if r["u_function"] == 0x10:
                    pending_test = me
                elif r["u_function"] == 0x20:
                    assert pending_test == peer  # con answers the peer's act
                    pending_test = None
            assert sent[me] - acked[peer] <= K  # the sender never runs k ahead
            assert sent[peer] - acked[me] <= W + 3  # the receiver acks after w (+ in flight)
        assert sent[True] > 0 and sent[False] > 0


def test_link_timers_in_time(run, rows, tshark):
    """S-frames within t2 (10 s) of the I-frames they acknowledge; TESTFR only after 20 s
    without traffic towards its sender."""
    times = {
        int(f): float(t)
        for f, t in _tshark(tshark, run.pcap, "iec60870_104", ["frame.number", "frame.time_epoch"])
    }
    flows = defaultdict(list)
    for r in rows:
        flows[r["flow_id"]].append(r)
    tests = 0
    for flow in flows.values():
        last_heard = {True: times[flow[0]["frame"]], False: times[flow[0]["frame"]]}
        unacked_since = {True: None, False: None}
        for r in flow:
            me, peer, t = r["is_orig"], not r["is_orig"], times[r["frame"]]
            if r["apci_type"] == "U" and r["u_function"] == 0x10 and len(flow) > 40:
                assert t - last_heard[me] >= 19.99
                tests += 1
            if r["apci_type"] in ("I", "S") and unacked_since[me] is not None:
                assert t - unacked_since[me] <= 10.01
                unacked_since[me] = None
            if r["apci_type"] == "I" and unacked_since[peer] is None:
                unacked_since[peer] = t
            last_heard[peer] = t
    assert tests > 5


def test_storm_opens_the_breakers_and_the_masters_see_it(rows, labels):
    storm = [r for r in rows if labels[r["frame"] - 1] == "storm"]
    commands = [r for r in storm if r["src_ip"] == EWS and r["type_id"] in (45, 46)]
    executed = [r["ioa"][0] for r in commands if r["type_id"] == 46 and not r["select"][0]]
    assert executed == BREAKERS
    refused = {r["ioa"][0] for r in storm if r["negative"] and r["cot"] == 47}
    assert {11010, 31010} <= refused and 11002 in refused
    terms = [r for r in storm if r["src_ip"] == GATEWAY and r["cot"] == 10 and r["dst_ip"] == EWS]
    assert len(terms) == len(BREAKERS)
    # the gateway passes the commands to the bays
    bays = {
        r["dst_ip"]
        for r in storm
        if r["src_ip"] == GATEWAY and r["type_id"] == 46 and r["cot"] == 6
    }
    assert len(bays) == 7
    # the control centre then sees every breaker open (benign, spontaneous, time-tagged) ...
    seen = {
        r["ioa"][0]
        for r in rows
        if r["dst_ip"] == SCADA and r["type_id"] == 31 and r["cot"] == 3 and r["value_int"][0] == 1
    }
    assert seen == set(BREAKERS)
    # ... and feeder F1's current (IOA 31201) in its periodic reports drop to zero
    last_cmd = max(r["frame"] for r in commands)
    periodic = [r for r in rows if r["dst_ip"] == SCADA and r["cot"] == 1 and 31201 in r["ioa"]]
    real = [r for r in periodic if labels[r["frame"] - 1] == "normal"]
    f1 = [(r["frame"], r["value"][r["ioa"].index(31201)]) for r in real]
    assert all(v > 50 for f, v in f1 if f < commands[0]["frame"])
    after = [v for f, v in f1 if f > last_cmd + 50]
    assert after and all(v == 0 for v in after)


def test_spoofed_reports_carry_the_attackers_mac(run, rows, labels, tshark):
    macs = {
        int(f): (mac, ip)
        for f, mac, ip in _tshark(
            tshark, run.pcap, f"ip.src == {GATEWAY} || arp", ["frame.number", "eth.src", "ip.src"]
        )
    }
    spoof = [r for r in rows if labels[r["frame"] - 1] == "spoof"]
    assert len(spoof) > 40
    assert all(r["src_ip"] == GATEWAY and r["dst_ip"] == SCADA for r in spoof)
    assert all(macs[r["frame"]] == (ATTACKER_MAC, GATEWAY) for r in spoof)
    assert {r["type_id"] for r in spoof} == {13, 3}
    window = range(spoof[0]["frame"], spoof[-1]["frame"])
    real = [
        r
        for r in rows
        if r["frame"] in window
        and r["src_ip"] == GATEWAY
        and r["dst_ip"] == SCADA
        and labels[r["frame"] - 1] == "normal"
        and r["apci_type"] == "I"
    ]
    assert len(real) > 10 and all(macs[r["frame"]][0] != ATTACKER_MAC for r in real)
    # the replayed F1 current stays at its recorded value while the real one drops
    replay = [r["value"][r["ioa"].index(31201)] for r in spoof if 31201 in r["ioa"]]
    assert min(replay) > 50
    arp = [f for f, (mac, ip) in macs.items() if not ip and labels[f - 1] == "spoof"]
    assert arp and all(macs[f][0] == ATTACKER_MAC for f in arp)


def test_recon_reads_the_point_table(rows, labels):
    recon = [r for r in rows if labels[r["frame"] - 1] == "recon"]
    asks = [r for r in recon if r["type_id"] == 100 and r["cot"] == 6]
    assert {r["common_address"] for r in asks} >= {65535, 2, 3}
    gi = [r for r in recon if r["cot"] == 20 and r["src_ip"] == GATEWAY]
    assert sum(len(r["ioa"]) for r in gi) == len(
        iec.points(load_named_plant("substation"), "rtu-gw")
    )
    assert any(r["negative"] and r["cot"] == 46 for r in recon)


def test_same_seed_same_bytes(tmp_path):
    (tmp_path / "s.yaml").write_text(SCENARIO)
    sc = load_scenarios(tmp_path / "s.yaml")["substation_test"]
    a = simulate(sc, tmp_path / "a.pcap", None, duration=100 * 10**9, seed=3)
    b = simulate(sc, tmp_path / "b.pcap", None, duration=100 * 10**9, seed=3)
    c = simulate(sc, tmp_path / "c.pcap", None, duration=100 * 10**9, seed=4)
    assert Path(a.pcap).read_bytes() == Path(b.pcap).read_bytes()
    assert Path(a.pcap).read_bytes() != Path(c.pcap).read_bytes()
