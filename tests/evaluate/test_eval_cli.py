"""``otsight eval`` on small captures made with the project's encoders, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from otsight.encode import modbus as mb
from otsight.encode import packets as pk
from otsight.encode.pcapfile import PcapWriter
from otsight.evaluate.metrics import Alert
from otsight.evaluate.run import NO_DETECTORS, EvalError, evaluate_capture, frame_timestamps

S = 10**9
T0 = 1_709_280_000 * S  # 2024-03-01T08:00:00Z
N = 10


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "otsight", *args], capture_output=True, text=True, timeout=600
    )


def one_line_error(proc: subprocess.CompletedProcess, text: str) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and text in lines[0], proc.stderr


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    """Ten Modbus/TCP requests HMI -> PLC, frame i (1-based) at T0 + (i - 1) s."""
    path = tmp_path_factory.mktemp("eval") / "ten.pcap"
    with PcapWriter(path) as w:
        for i in range(N):
            request = (
                mb.read_request(i, 1, 3, 0, 4) if i != 4 else mb.write_single_register(i, 1, 100, 7)
            )
            tcp = pk.tcp(
                "10.0.0.1", "10.0.0.2", 50000, 502, 1000 + 12 * i, 1, "PA", payload=request
            )
            frame = pk.ethernet(
                "00:00:00:00:00:02",
                "00:00:00:00:00:01",
                pk.ETH_IPV4,
                pk.ipv4("10.0.0.1", "10.0.0.2", 6, tcp),
            )
            w.write(T0 + i * S, frame)
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_frame_timestamps(capture):
    ts, warnings = frame_timestamps(capture)
    assert ts.tolist() == [T0 + i * S for i in range(N)] and warnings == []


def test_frame_label_csv_json_report(capture, tmp_path):
    labels = write(tmp_path, "l.csv", "frame;label\n1;normal\n4;recon\n5;write\n6;write\n")
    proc = run("eval", str(capture), "--labels", str(labels), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["inputs"] == {
        "capture": str(capture),
        "labels": str(labels),
        "label_format": "frame-csv",
        "baseline": None,
        "learn_from": None,
        "detection": "none",
    }
    assert report["notes"] == [NO_DETECTORS]
    assert (report["frames"], report["alerts"], report["incidents"]) == (N, 0, 0)
    # 9 s captured; recon spans 0 s (one frame at 3 s), write 1 s (4..5 s)
    assert (report["duration_s"], report["attack_s"], report["benign_s"]) == (9.0, 1.0, 8.0)
    assert report["frame"] == {
        "frames": N,
        "attack_frames": 3,
        "alerted_frames": 0,
        "tp": 0,
        "fp": 0,
        "fn": 3,
        "tn": 7,
        "precision": None,
        "recall": 0.0,
        "f1": 0.0,
    }
    attack = report["attack"]
    assert (attack["attacks"], attack["detected"], attack["precision"], attack["recall"]) == (
        2,
        0,
        None,
        0.0,
    )
    assert report["false_alerts_per_hour"] == 0.0 and report["alert_reduction"] is None
    assert [(a["name"], a["first_frame"], a["last_frame"]) for a in report["attacks"]] == [
        ("recon", 4, 4),
        ("write", 5, 6),
    ]
    assert report["attacks"][1]["start"] == "2024-03-01T08:00:04.000000000Z"


def test_human_output_says_no_detections(capture, tmp_path):
    labels = write(tmp_path, "l.csv", "4,recon\n5,write\n")
    proc = run("eval", str(capture), "--labels", str(labels))
    assert proc.returncode == 0, proc.stderr
    assert "no detections" in proc.stdout and NO_DETECTORS in proc.stdout
    assert "recon" in proc.stdout and "write" in proc.stdout and "n/a" in proc.stdout


def test_interval_labels(capture, tmp_path):
    labels = write(
        tmp_path,
        "iv.json",
        json.dumps(
            [
                {
                    "name": "stop",
                    "attack": "plc_stop",
                    "techniques": ["T0816"],
                    "start": "2024-03-01T08:00:02Z",
                    "end": "2024-03-01T08:00:04.5Z",
                },
                {"name": "after", "start": "2024-03-01T09:00:00Z", "end": "2024-03-01T09:01:00Z"},
            ]
        ),
    )
    proc = run("eval", str(capture), "--labels", str(labels), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["inputs"]["label_format"] == "intervals-json"
    [stop] = report["attacks"]
    assert (stop["first_frame"], stop["last_frame"], stop["frames"]) == (3, 5, 3)
    assert stop["kind"] == "plc_stop" and stop["techniques"] == ["T0816"]
    assert any("'after' covers no frame" in w for w in report["warnings"])
    assert "covers no frame" in proc.stderr  # warnings go to stderr too


def test_given_alerts_score_against_capture_times(capture, tmp_path):
    labels = write(tmp_path, "l.csv", "frame;label\n4;recon\n5;write\n6;write\n")
    alerts = [
        Alert("a1", None, (6, 7), "inc"),  # ts of frame 6: 5 s
        Alert("a2", None, (9,), "inc"),
        Alert("a3", None, (2,)),
    ]
    r = evaluate_capture(capture, labels, alerts=alerts)
    assert r.inputs["detection"] == "given" and r.notes == []
    assert (r.frame.tp, r.frame.fp, r.frame.fn) == (1, 3, 2)
    assert r.frame.precision == pytest.approx(1 / 4) and r.frame.recall == pytest.approx(1 / 3)
    assert r.frame.f1 == pytest.approx(2 / 7)
    assert r.attack.precision == pytest.approx(1 / 3) and r.attack.recall == pytest.approx(1 / 2)
    write_result = r.attacks[1]
    assert write_result.detected and write_result.delay_s == pytest.approx(1.0)  # 5 s - 4 s
    assert (r.incidents, r.false_incidents, r.false_alerts) == (2, 1, 2)
    assert r.false_alerts_per_hour == pytest.approx(2 * 3600 / 8)
    assert r.alert_reduction == pytest.approx(1 / 3)
    with pytest.raises(EvalError, match="alert a9: evidence frame 11 is outside the capture"):
        evaluate_capture(capture, labels, alerts=[Alert("a9", None, (11,))])


def test_detection_hook_is_used_when_present(capture, tmp_path, monkeypatch):
    labels = write(tmp_path, "l.csv", "5;write\n")
    calls = []

    def alerts_for_capture(path, *, baseline, learn_from):
        calls.append((path, baseline, learn_from))
        return [{"alert_id": "w", "ts": None, "frames": [5]}]

    module = types.ModuleType("otsight.detect")
    module.alerts_for_capture = alerts_for_capture  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "otsight.detect", module)
    r = evaluate_capture(capture, labels, baseline=tmp_path)
    assert calls == [(capture, tmp_path, None)]
    assert r.inputs["detection"] == "otsight.detect:alerts_for_capture"
    assert r.attack.recall == 1 and r.attacks[0].delay_s == 0
    assert r.notes == []  # the detector received the baseline


def test_baseline_and_learn_from_are_recorded(capture, tmp_path):
    labels = write(tmp_path, "l.csv", "5;write\n")
    base = tmp_path / "baseline"
    base.mkdir()
    proc = run("eval", str(capture), "--labels", str(labels), "--baseline", str(base), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["inputs"]["baseline"] == str(base)
    assert any("not used yet" in n for n in report["notes"])
    proc = run(
        "eval", str(capture), "--labels", str(labels), "--learn-from", str(capture), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["inputs"]["learn_from"] == str(capture)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--baseline", "{tmp}", "--learn-from", "{cap}"], "mutually exclusive"),
        (["--baseline", "{tmp}/nope"], "no such baseline directory"),
        (["--learn-from", "{tmp}/nope.pcap"], "no such capture file"),
    ],
)
def test_baseline_argument_errors(capture, tmp_path, extra, message):
    labels = write(tmp_path, "l.csv", "5;write\n")
    args = [a.format(tmp=tmp_path, cap=capture) for a in extra]
    one_line_error(run("eval", str(capture), "--labels", str(labels), *args), message)


def test_label_frame_beyond_the_capture(capture, tmp_path):
    labels = write(tmp_path, "l.csv", "frame;label\n5;write\n11;write\n12;write\n")
    one_line_error(
        run("eval", str(capture), "--labels", str(labels)),
        "l.csv:3: frame 11 is beyond the capture, which has 10 frames",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frame;label\n1;a\n1;b\n", "l.csv:3: frame 1 is labelled twice (also line 2)"),
        ("frame;label\n0;a\n", "l.csv:2: frame 0 is not positive"),
        ("name,start,end\nx,5,4\n", "l.csv:2: end is before start"),
    ],
)
def test_bad_labels_exit_2(capture, tmp_path, text, message):
    labels = write(tmp_path, "l.csv", text)
    one_line_error(run("eval", str(capture), "--labels", str(labels)), message)


def test_missing_inputs(capture, tmp_path):
    one_line_error(
        run("eval", str(tmp_path / "no.pcap"), "--labels", str(capture)), "no such capture file"
    )
    one_line_error(
        run("eval", str(capture), "--labels", str(tmp_path / "no.csv")), "no such label file"
    )
    notes = write(tmp_path, "notes.txt", "not a capture\n")
    labels = write(tmp_path, "l.csv", "1;a\n")
    one_line_error(run("eval", str(notes), "--labels", str(labels)), "not a capture file")


def test_help():
    proc = run("eval", "--help")
    assert proc.returncode == 0 and "--labels" in proc.stdout and "--learn-from" in proc.stdout


def test_sample_capture_frame_count(samples, tmp_path):
    """The project's sample capture, in every container: frame numbers are the file's."""
    count = samples["truth"].packet_count
    for kind in ("pcap", "pcapng", "gz"):
        ok = write(tmp_path, "ok.csv", f"frame;label\n{count};last\n")
        r = evaluate_capture(samples[kind], ok)
        assert r.frames == count and r.attacks[0].first_frame == count
    beyond = write(tmp_path, "beyond.csv", f"frame;label\n{count + 1};x\n")
    with pytest.raises(EvalError, match=f"frame {count + 1} is beyond the capture"):
        evaluate_capture(samples["pcapng"], beyond)
