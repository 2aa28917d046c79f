"""The packaging line (S7comm, PROFINET, EtherNet/IP): a plant that loads, tshark-clean
captures whose key fields tshark and otsight agree on, every attack on exactly its frames,
attacks that change what the cyclic traffic shows afterwards, legitimate S7 engineering in
the maintenance window, determinism."""

from __future__ import annotations

import csv
import struct
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from otsight.sim import engineering
from otsight.sim.attacks import LIBRARY
from otsight.sim.generate import simulate
from otsight.sim.model import load_named_plant, load_scenarios
from otsight.sim.wire import assemble
from otsight.sim.world import S, World
from otsight.testing.decode import decode

# every manufacturing attack, packed into three minutes
SCENARIO = """
- name: manufacturing_test
  plant: manufacturing
  duration: 3m
  attacks:
    - {attack: dcp_identify_recon, at: 15s, name: dcp_recon}
    - {attack: s7_szl_recon, at: 25s, name: szl_recon}
    - {attack: enip_list_identity_recon, at: 40s, name: li_recon}
    - {attack: s7_program_download, at: 55s, target: plc-packer, name: download}
    - {attack: s7_plc_stop, at: 75s, target: plc-filler, name: stop}
    - {attack: dcp_set_station_name, at: 95s, target: io-packer, name: rename}
    - {attack: dcp_factory_reset, at: 115s, target: drv-filler, name: reset}
    - {attack: enip_unauthorized_write, at: 135s, target: plc-cell, tag: Speed_SP,
       value: 3000, name: write}
"""
NAMES = ["dcp_recon", "szl_recon", "li_recon", "download", "stop", "rename", "reset", "write"]
INTRUDER_MAC = "3c:52:82:6e:1f:07"
MAC = {"plc-filler": "28:63:36:90:01:0b", "plc-packer": "00:1b:1b:90:01:0c"}
MAC |= {"io-packer": "28:63:36:90:01:17", "drv-filler": "00:1f:f8:90:01:16"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("manufacturing")
    (d / "s.yaml").write_text(SCENARIO)
    sc = load_scenarios(d / "s.yaml")["manufacturing_test"]
    return simulate(sc, d / "m.pcap", d / "m.labels.csv", seed=7)


@pytest.fixture(scope="module")
def tables(run):
    """otsight's tables of the run as lists of rows (timestamps left out)."""
    t = decode(run.pcap).tables
    out = {}
    for name in ("s7comm", "cotp", "enip", "cip", "enip_io", "profinet_dcp", "profinet_rt"):
        table = t[name]
        stamps = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        out[name] = table.drop_columns(stamps).to_pylist()
    return out


@pytest.fixture(scope="module")
def labels(run) -> np.ndarray:
    with open(run.labels) as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    assert rows[0] == ["frame", "label"]
    return np.array([r[1] for r in rows[1:]], dtype=object)


def _fields(tshark, pcap, filt, fields, occurrence="f"):
    out = subprocess.run(
        [tshark, "-n", "-r", str(pcap), "-Y", filt, "-T", "fields",
         "-E", f"occurrence={occurrence}", *sum((["-e", f] for f in fields), [])],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [line.split("\t") for line in out.splitlines()]


def _int(text: str) -> int:
    return int(text, 0)


# ---- the plant ----------------------------------------------------------------------------


def test_plant_loads_with_identified_devices_and_all_three_protocols():
    plant = load_named_plant("manufacturing")
    assert 15 <= len(plant.devices) <= 20
    assert {plant.level(d) for d in plant.devices} == {1, 2, 3, 4}
    field = [d for d in plant.devices.values() if d.role in ("plc", "io_device")]
    assert len(field) == 9
    for d in field:
        assert d.vendor and d.model and d.firmware and d.serial, d.name
    assert {p["protocol"] for p in plant.polls} == {"s7comm", "enip", "profinet"}
    assert any(p.get("io") for p in plant.polls)
    scenarios = load_scenarios()
    for name in ("manufacturing_sabotage", "manufacturing_quiet"):
        assert scenarios[name].plant == "manufacturing"
    assert not scenarios["manufacturing_quiet"].attacks
    used = {a.attack for a in scenarios["manufacturing_sabotage"].attacks}
    assert used <= set(LIBRARY) and len(used) == 8


# ---- decoding -----------------------------------------------------------------------------


def test_tshark_decodes_without_errors(run, tshark):
    bad = _fields(
        tshark, run.pcap, "_ws.malformed || _ws.expert.severity >= error", ["frame.number"]
    )
    assert bad == []
    protocols = Counter()
    for (layers,) in _fields(tshark, run.pcap, "", ["frame.protocols"]):
        protocols.update(set(layers.split(":")))
    assert (
        sum(protocols.values())
        and len(_fields(tshark, run.pcap, "", ["frame.number"])) == run.packets
    )
    for p in ("s7comm", "cotp", "enip", "cipcm", "cipio", "pn_rt", "pn_dcp", "pn_io"):
        assert protocols[p] > 0, p


def test_s7comm_fields_agree_with_tshark(run, tables, tshark):
    mine = {r["frame"]: r for r in tables["s7comm"]}
    fields = ["frame.number", "s7comm.header.rosctr", "s7comm.header.pduref",
              "s7comm.param.func", "s7comm.data.userdata.szl_id"]  # fmt: skip
    theirs = _fields(tshark, run.pcap, "s7comm", fields)
    assert len(theirs) == len(mine) > 800
    for frame, rosctr, ref, func, szl in theirs:
        r = mine[int(frame)]
        assert (r["rosctr"], r["pdu_ref"]) == (int(rosctr), int(ref))
        if func:
            assert r["func_code"] == _int(func)
        if szl:
            assert r["szl_id"] == _int(szl)
    cr = [r for r in tables["cotp"] if r["tpdu_name"] == "connection_request"]
    assert {(r["dst_ip"], r["rack"], r["slot"]) for r in cr} >= {
        ("10.90.1.11", 0, 1),
        ("10.90.1.12", 0, 2),
        ("10.90.1.13", 0, 1),
    }


def test_enip_and_cip_fields_agree_with_tshark(run, tables, tshark):
    mine = {r["frame"]: r for r in tables["enip"]}
    fields = ["frame.number", "enip.command", "enip.context", "enip.session"]
    theirs = _fields(tshark, run.pcap, "enip.command", fields)
    assert len(theirs) == len(mine) > 300
    for frame, command, context, session in theirs:
        r = mine[int(frame)]
        assert r["command"] == _int(command)
        # ListIdentity requests: Wireshark shows the first two octets apart (the delay)
        request = r["command"] == 0x63 and r["is_request"]
        ctx = r["sender_context"][2:] if request else r["sender_context"]
        assert ctx.hex() == context
        assert r["session_handle"] == _int(session)
    services = defaultdict(set)
    for r in tables["cip"]:
        services[r["frame"]].add(r["service"])
    theirs = _fields(tshark, run.pcap, "cip", ["frame.number", "cip.sc"], occurrence="a")
    assert len(theirs) == len(services)
    for frame, sc in theirs:
        assert services[int(frame)] == {_int(s) for s in sc.split(",")}, frame
    io = {r["frame"]: r for r in tables["enip_io"]}
    fields = ["frame.number", "enip.cpf.sai.connid", "enip.cpf.sai.seq"]
    theirs = _fields(tshark, run.pcap, "enip.cpf.sai.connid", fields)
    assert len(theirs) == len(io) > 2000
    for frame, conn, seq in theirs:
        assert (io[int(frame)]["connection_id"], io[int(frame)]["sequence"]) == (
            _int(conn),
            int(seq),
        )
    # each I/O connection's sequence numbers count up by one from 1
    by_conn = defaultdict(list)
    for r in tables["enip_io"]:
        by_conn[r["connection_id"]].append(r["sequence"])
    assert len(by_conn) == 4
    for seqs in by_conn.values():
        assert seqs == list(range(1, len(seqs) + 1))


def test_profinet_fields_agree_with_tshark(run, tables, tshark):
    mine = {r["frame"]: r for r in tables["profinet_dcp"]}
    fields = ["frame.number", "pn_dcp.service_id", "pn_dcp.service_type", "pn_dcp.xid"]
    theirs = _fields(tshark, run.pcap, "pn_dcp", fields)
    assert len(theirs) == len(mine) > 10
    for frame, service, stype, xid in theirs:
        r = mine[int(frame)]
        assert (r["service_id"], r["service_type"], r["xid"]) == (
            _int(service),
            _int(stype),
            _int(xid),
        )
    # RT: frames, first and last cycle counter and data status per communication relation
    fields = ["eth.src", "pn_rt.frame_id", "pn_rt.cycle_counter", "pn_rt.ds"]
    per_cr: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for src, fid, counter, ds in _fields(tshark, run.pcap, "pn_rt.cycle_counter", fields):
        per_cr[(src, _int(fid))].append((int(counter), _int(ds)))
    rows = defaultdict(list)
    for r in sorted(tables["profinet_rt"], key=lambda r: r["frame"]):
        if r["cyclic"]:
            rows[(r["src_mac"], r["frame_id"])].append(r)
    assert set(rows) == set(per_cr) and len(per_cr) == 6
    for key, frames in per_cr.items():
        mine_rows = rows[key]
        assert sum(r["frames"] for r in mine_rows) == len(frames)
        assert mine_rows[0]["first_cycle_counter"] == frames[0][0]
        assert mine_rows[-1]["last_cycle_counter"] == frames[-1][0]
        assert mine_rows[-1]["last_data_status"] == frames[-1][1]
        # 128 ms update time: 4096 ticks of 31.25 µs per frame
        steps = {(b[0] - a[0]) & 0xFFFF for a, b in zip(frames, frames[1:], strict=False)}
        assert steps == {4096}


# ---- attacks ------------------------------------------------------------------------------


def test_every_attack_is_labelled(run, labels):
    assert [a["name"] for a in run.attacks] == NAMES
    assert len(labels) == run.packets
    counts = Counter(labels)
    for a in run.attacks:
        assert counts[a["name"]] == a["frame_count"] > 0
        assert a["techniques"] == list(LIBRARY[a["attack"]].techniques)
        first, last = a["frames"]
        assert labels[first - 1] == labels[last - 1] == a["name"]


def test_attack_frames_carry_the_attack(run, tables, labels):
    def lab(r):
        return labels[r["frame"] - 1]

    s7 = tables["s7comm"]
    szl = [r for r in s7 if lab(r) == "szl_recon" and r["szl_id"] is not None]
    assert {r["szl_id"] for r in szl} == {0x11, 0x1C}
    assert len({r["dst_ip"] for r in szl if r["is_request"]}) == 3  # every S7 PLC
    assert {r["order_number"] for r in szl if r["order_number"]} == {
        "6ES7 516-3AN02-0AB0", "6ES7 315-2EH14-0AB0", "6ES7 511-1AK02-0AB0"
    }  # fmt: skip
    download = [r for r in s7 if lab(r) == "download"]
    assert {0x1A, 0x1B, 0x1C, 0x28} <= {r["func_code"] for r in download}
    assert {r["pi_service"] for r in download if r["pi_service"]} == {"_INSE"}
    assert {r["func_code"] for r in s7 if lab(r) == "stop"} == {0xF0, 0x29}
    dangerous = {0x1A, 0x1B, 0x1C, 0x28, 0x29}
    assert not [r for r in s7 if r["func_code"] in dangerous and lab(r) == "normal"]
    li = [r for r in tables["enip"] if lab(r) == "li_recon"]
    assert {r["command"] for r in li} == {0x63}
    assert {r["product_name"] for r in li if r["product_name"]} == {
        "1756-L83E/B LOGIX5583E", "PowerFlex 755", "1734-AENTR/B Ethernet Adapter"
    }  # fmt: skip
    write = [r for r in tables["cip"] if lab(r) == "write"]
    assert {r["service"] for r in write} == {0x52, 0x4D}
    assert {r["symbol"] for r in write if r["service"] == 0x4D} == {"Speed_SP"}
    assert not [r for r in tables["cip"] if r["service"] == 0x4D and lab(r) == "normal"]
    dcp = tables["profinet_dcp"]
    recon = [r for r in dcp if lab(r) == "dcp_recon"]
    assert {(r["service_id"], r["service_type"]) for r in recon} == {(5, 0), (5, 1)}
    assert {r["src_mac"] for r in recon if r["is_request"]} == {INTRUDER_MAC}
    assert len({r["station_name"] for r in recon if not r["is_request"]}) == 5
    rename = [r for r in dcp if lab(r) == "rename"]
    assert [(r["service_id"], r["is_request"]) for r in rename] == [(4, True), (4, False)]
    assert rename[0]["station_name"] == "x-owned" and rename[0]["dst_mac"] == MAC["io-packer"]
    reset = [r for r in dcp if lab(r) == "reset"]
    assert reset[0]["reset_mode"] is not None and reset[0]["dst_mac"] == MAC["drv-filler"]
    assert not [r for r in dcp if r["service_id"] == 4 and lab(r) == "normal"]


def test_attacks_change_the_cyclic_traffic(run, tables, tshark, labels):
    """The stopped CPU's output frames report ProviderState STOP; the renamed and the reset
    devices fall silent and their controllers search for them by name; the HMI reads the
    speed set-point the intruder wrote."""
    frame_of = {a["name"]: a["frames"][0] for a in run.attacks}
    fields = ["frame.number", "eth.src", "pn_rt.ds"]
    rt = [(int(f), src, _int(ds)) for f, src, ds in _fields(tshark, run.pcap, "pn_rt.ds", fields)]
    filler = [(f, ds) for f, src, ds in rt if src == MAC["plc-filler"]]
    assert {ds for f, ds in filler if f < frame_of["stop"]} == {0x35}
    assert {ds for f, ds in filler if f > frame_of["stop"] + 200} == {0x25}
    for device, attack in (("io-packer", "rename"), ("drv-filler", "reset")):
        sent = [f for f, src, _ in rt if src == MAC[device]]
        assert sent and max(sent) < frame_of[attack] + 50
        searches = [
            r for r in tables["profinet_dcp"]
            if r["station_name"] == device and r["frame"] > frame_of[attack] and r["is_request"]
        ]  # fmt: skip
        assert searches and {labels[r["frame"] - 1] for r in searches} == {"normal"}
    fields = ["frame.number", "cip.symbol", "cip.data"]
    reads = _fields(tshark, run.pcap, 'cip.symbol == "Speed_SP" && cip.rr == 1', fields)
    values = {int(f): struct.unpack("<f", bytes.fromhex(d)[2:6])[0] for f, _, d in reads if d}
    assert {v for f, v in values.items() if f < frame_of["write"]} == {1200.0}
    assert {v for f, v in values.items() if f > frame_of["write"] + 20} == {3000.0}


# ---- engineering and determinism ----------------------------------------------------------


def test_s7_engineering_uploads_the_program_in_the_window(tmp_path, tshark):
    plant = load_named_plant("manufacturing")
    w = World.create(plant, 86_400 * S, seed=2)
    wins = engineering.windows(w)
    assert [(s - w.t0) // S for s, _, _ in wins] == [14 * 3600]  # 2024-06-03 is a Monday
    engineering.build_sessions(w)
    cols = w.packets.arrays()
    assert cols["ts"].min() >= wins[0][0] and cols["ts"].max() < wins[0][1] + 60 * S
    image, _, _ = assemble(cols, w.hosts, w.payload.array())
    path = tmp_path / "eng.pcap"
    image.tofile(path)
    bad = _fields(tshark, path, "_ws.malformed || _ws.expert.severity >= error", ["frame.number"])
    assert bad == []
    rows = decode(path).tables["s7comm"].drop_columns(["ts"]).to_pylist()
    assert {r["src_ip"] for r in rows if r["is_request"]} == {"10.80.0.50"}
    assert {0xF0, 0x1D, 0x1E, 0x1F} <= {r["func_code"] for r in rows}
    assert {r["szl_id"] for r in rows if r["szl_id"] is not None} == {0x11, 0x1C}
    uploaded = [
        (r["dst_ip"], r["filename"]) for r in rows if r["func_code"] == 0x1D and r["is_request"]
    ]
    assert ("10.90.1.12", "_0800001A") in uploaded and len(set(uploaded)) == 10  # every block


def test_same_seed_same_bytes(tmp_path):
    sc = load_scenarios()["manufacturing_sabotage"]
    runs = [
        simulate(sc, tmp_path / f"{k}.pcap", tmp_path / f"{k}.labels.csv", 50 * S, seed)
        for k, seed in (("a", 3), ("b", 3), ("c", 4))
    ]
    a, b, c = (Path(r.pcap).read_bytes() for r in runs)
    assert a == b and a != c
    assert Path(runs[0].labels).read_bytes() == Path(runs[1].labels).read_bytes()
    assert [x["name"] for x in runs[0].attacks] == ["dcp_identify_all"]
