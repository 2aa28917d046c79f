"""The simulate, demo and eval verbs on the project's own generated captures."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from otsight.cli import app
from otsight.sim.attacks import LIBRARY

runner = CliRunner()


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_json_documents_every_scenario_and_attack():
    rows = _json(runner.invoke(app, ["simulate", "--list", "--json"]))
    assert {"water_frostygoop", "water_quiet", "water_insider"} <= {r["name"] for r in rows}
    for r in rows:
        assert {"name", "plant", "attacks"} <= set(r)
        for a in r["attacks"]:
            assert a["attack"] in LIBRARY and a["techniques"] and a["description"]
    quiet = next(r for r in rows if r["name"] == "water_quiet")
    assert quiet["attacks"] == []


def test_every_library_attack_is_used_by_some_scenario():
    rows = _json(runner.invoke(app, ["simulate", "--list", "--json"]))
    used = {a["attack"] for r in rows for a in r["attacks"]}
    assert set(LIBRARY) <= used, sorted(set(LIBRARY) - used)


def test_simulate_writes_capture_labels_and_sidecar(tmp_path):
    out, labels = tmp_path / "w.pcap", tmp_path / "w.labels.csv"
    res = _json(
        runner.invoke(
            app,
            [
                "simulate",
                "--scenario",
                "water_frostygoop",
                "--duration",
                "3m",
                "--seed",
                "5",
                "--out",
                str(out),
                "--labels",
                str(labels),
                "--json",
            ],
        )
    )
    assert res["packets"] > 1000 and out.stat().st_size > 0
    assert [a["name"] for a in res["attacks"]] == ["scan_control_net", "fc43_recon"]
    assert labels.read_text().splitlines()[0] == "frame;label"


def test_bad_arguments_exit_2_without_traceback(tmp_path):
    r = runner.invoke(app, ["simulate", "--scenario", "nope", "--out", str(tmp_path / "x.pcap")])
    assert r.exit_code == 2 and "unknown scenario" in r.output and "Traceback" not in r.output
    r = runner.invoke(
        app,
        [
            "simulate",
            "--scenario",
            "water_quiet",
            "--duration",
            "ten",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert r.exit_code == 2 and "--duration" in r.output


def test_eval_on_a_generated_capture_reports_zero_detections_honestly(tmp_path):
    out, labels = tmp_path / "w.pcap", tmp_path / "w.labels.csv"
    runner.invoke(
        app,
        [
            "simulate",
            "--scenario",
            "water_frostygoop",
            "--duration",
            "3m",
            "--out",
            str(out),
            "--labels",
            str(labels),
        ],
    )
    rep = _json(runner.invoke(app, ["eval", str(out), "--labels", str(labels), "--json"]))
    assert rep["alerts"] == 0
    assert rep["attack"]["attacks"] == 2 and rep["attack"]["detected"] == 0
    assert rep["attack"]["recall"] == 0 and rep["frame"]["precision"] is None


def test_demo_summarises_what_was_decoded_and_injected(tmp_path):
    s = _json(runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--json"]))
    assert s["packets"] > 10_000 and s["flows"] > 20
    assert {"modbus", "dnp3"} <= set(s["protocols"])
    ops = {(o["protocol"], o["operation"]) for o in s["operations"]}
    assert ("modbus", "write_multiple_registers") in ops and ("dnp3", "cold_restart") in ops
    assert [a["name"] for a in s["attacks_injected"]][:2] == ["scan_control_net", "fc43_recon"]
    assert (tmp_path / "demo" / "analysis" / "modbus").is_dir()
    assert "alerts" not in s  # detection is not built yet: the demo does not pretend
