"""Metrics against hand-computed values, and against a naive twin on random inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otsight.evaluate.labels import Attack
from otsight.evaluate.metrics import (
    Alert,
    alert_reduction,
    as_alerts,
    f1_score,
    per_hour,
    score,
    union_seconds,
)

S = 10**9
T0 = 1_709_280_000 * S

# frames 1..12, one per second; attack A = frames 3-5 (2..4 s), attack B = frames 8-9 (7..8 s)
ATTACK = np.array([0, 0, 1, 1, 1, 0, 0, 2, 2, 0, 0, 0])
TS = T0 + np.arange(12, dtype=np.int64) * S
ATTACKS = [Attack("A", "stop", ("T0855",)), Attack("B")]
ALERTS = [
    Alert("a1", T0 + 3_500_000_000, (4, 5), "i1"),
    Alert("a2", None, (5, 6), "i1"),  # ts: its first evidence, frame 5 at 4 s
    Alert("a3", T0 + 10 * S, (11,)),
    Alert("a4", None, (1, 2), "i2"),
    Alert("a5", None, (12,), "i2"),
]


def test_hand_computed_report():
    r = score(ATTACK, TS, ALERTS, ATTACKS)
    # frames predicted: 1 2 4 5 6 11 12; attack frames: 3 4 5 8 9
    f = r.frame
    assert (f.tp, f.fp, f.fn, f.tn) == (2, 5, 3, 2)
    assert (f.attack_frames, f.alerted_frames, f.frames) == (5, 7, 12)
    assert f.precision == pytest.approx(2 / 7)
    assert f.recall == pytest.approx(2 / 5)
    assert f.f1 == pytest.approx(1 / 3)
    # alerts: a1, a2 touch A; a3, a4, a5 touch nothing; B is missed
    a = r.attack
    assert (a.attacks, a.detected, a.alerts, a.true_alerts, a.false_alerts) == (2, 1, 5, 2, 3)
    assert a.precision == pytest.approx(2 / 5)
    assert a.recall == pytest.approx(1 / 2)
    assert a.f1 == pytest.approx(4 / 9)
    A, B = r.attacks
    assert (A.name, A.kind, A.techniques, A.frames, A.first_frame, A.last_frame) == (
        "A",
        "stop",
        ("T0855",),
        3,
        3,
        5,
    )
    assert A.detected and A.alert_ids == ["a1", "a2"] and A.first_alert_id == "a1"
    assert A.delay_s == pytest.approx(1.5)  # a1 at 3.5 s - frame 3 at 2 s
    assert not B.detected and B.alert_ids == [] and B.delay_s is None
    assert a.mean_delay_s == a.median_delay_s == a.max_delay_s == pytest.approx(1.5)
    # 11 s captured, attacks span 2 s + 1 s: 8 s benign
    assert (r.duration_s, r.attack_s, r.benign_s) == (11.0, 3.0, 8.0)
    assert r.false_alerts == 3 and r.false_alerts_per_hour == pytest.approx(3 * 3600 / 8)
    # incidents: i1 (true), a3 alone (false), i2 (false)
    assert (r.incidents, r.false_incidents) == (3, 2)
    assert r.false_incidents_per_hour == pytest.approx(2 * 3600 / 8)
    assert r.alert_reduction == pytest.approx(1 - 3 / 5)


def test_report_json():
    d = score(ATTACK, TS, ALERTS, ATTACKS).to_dict()
    text = json.dumps(d)  # plain JSON: no custom encoder needed
    assert json.loads(text) == d
    assert set(d) == {
        "inputs", "frames", "duration_s", "attack_s", "benign_s", "alerts", "incidents",
        "false_alerts", "false_incidents", "false_alerts_per_hour",
        "false_incidents_per_hour", "alert_reduction", "frame", "attack", "attacks", "notes",
        "warnings",
    }  # fmt: skip
    assert d["attacks"][0]["start"] == "2024-03-01T08:00:02.000000000Z"
    assert d["attacks"][0]["techniques"] == ["T0855"]
    assert d["attacks"][1]["delay_s"] is None


def test_zero_alerts_is_well_defined():
    r = score(ATTACK, TS, [], ATTACKS)
    assert r.frame.precision is None and r.frame.recall == 0 and r.frame.f1 == 0
    assert (r.frame.tp, r.frame.fp, r.frame.fn, r.frame.tn) == (0, 0, 5, 7)
    assert r.attack.precision is None and r.attack.recall == 0 and r.attack.f1 == 0
    assert r.attack.detected == 0 and r.attack.mean_delay_s is None
    assert (r.alerts, r.incidents, r.false_alerts, r.false_incidents) == (0, 0, 0, 0)
    assert r.false_alerts_per_hour == 0 and r.false_incidents_per_hour == 0
    assert r.alert_reduction is None
    assert json.loads(json.dumps(r.to_dict()))["frame"]["precision"] is None


def test_no_attacks():
    benign = np.zeros(12, dtype=np.int32)
    r = score(benign, TS, [Alert("x", None, (2,))])
    assert r.frame.precision == 0 and r.frame.recall is None and r.frame.f1 == 0
    assert r.attack.precision == 0 and r.attack.recall is None and r.attack.f1 == 0
    assert r.benign_s == 11 and r.false_alerts_per_hour == pytest.approx(3600 / 11)
    r = score(benign, TS, [])
    assert r.frame.precision is r.frame.recall is r.frame.f1 is None
    assert r.attack.precision is r.attack.recall is r.attack.f1 is None


def test_no_benign_time_means_no_rate():
    r = score(np.array([1, 1, 1]), TS[:3], [Alert("x", None, (2,))])
    assert r.benign_s == 0 and r.false_alerts_per_hour is None
    r = score(np.array([0]), TS[:1], [Alert("x", None, (1,))])  # one frame: no duration
    assert r.duration_s == 0 and r.false_incidents_per_hour is None


def test_alert_before_the_attack_has_negative_delay():
    r = score(ATTACK, TS, [Alert("early", None, (1, 2, 3))])
    assert r.attacks[0].delay_s == pytest.approx(-2.0)  # first evidence frame 1 at 0 s


def test_earliest_alert_decides_the_delay_whatever_the_order():
    alerts = [Alert("late", T0 + 9 * S, (8,)), Alert("early", T0 + 8 * S, (9,))]
    b = score(ATTACK, TS, alerts).attacks[1]
    assert b.first_alert_id == "early" and b.delay_s == pytest.approx(1.0)
    assert b.alert_ids == ["early", "late"]


def test_names_default_and_absent_attacks_are_noted():
    r = score(ATTACK, TS, [], ["A", "B", "C"])
    assert [x.name for x in r.attacks] == ["A", "B"]
    assert r.notes == ["attack 'C' has no frame in the capture; not scored"]
    assert [x.name for x in score(ATTACK, TS, []).attacks] == ["attack 1", "attack 2"]


def test_unsorted_timestamps():
    ts = TS.copy()
    ts[[0, 11]] = ts[[11, 0]]  # frame 1 is the latest, frame 12 the earliest
    r = score(ATTACK, ts, [])
    assert r.duration_s == 11.0 and r.attack_s == 3.0


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ([Alert("x", None, (13,))], "alert x: evidence frame 13 is outside the capture"),
        ([Alert("ok", None, (1,)), Alert("y", 0, (0,))], "alert y: evidence frame 0 is outside"),
        ([Alert("x", None, (1,)), Alert("x", None, (2,))], "alert id x is used twice"),
        ([Alert("x", None, ())], "alert x: no ts and no evidence frames"),
    ],
)
def test_bad_alerts(alerts, message):
    with pytest.raises(ValueError, match=message):
        score(ATTACK, TS, alerts)


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="12 frame labels but 3 frame timestamps"):
        score(ATTACK, TS[:3], [])


def test_alert_without_evidence_is_a_false_alert():
    r = score(ATTACK, TS, [Alert("x", T0, ())])
    assert r.false_alerts == 1 and r.frame.alerted_frames == 0 and r.frame.precision is None


def test_as_alerts_accepts_mappings_datetimes_and_arrow():
    rows = [
        {"alert_id": 7, "ts": datetime(2024, 3, 1, 8, 0, 1, tzinfo=UTC), "frames": [2, 3]},
        {"alert_id": "b", "ts": T0, "frames": [], "incident_id": 4},
    ]
    expected = [Alert("7", T0 + S, (2, 3)), Alert("b", T0, (), "4")]
    assert as_alerts(rows) == expected
    table = pa.table(
        {
            "alert_id": ["7", "b"],
            "ts": pa.array([T0 + S, T0], pa.timestamp("ns", tz="UTC")),
            "frames": [[2, 3], []],
            "incident_id": [None, "4"],
        }
    )
    assert as_alerts(table) == expected
    with pytest.raises(ValueError, match="alert #0: needs alert_id and frames"):
        as_alerts([{"frames": [1]}])


def test_small_pieces():
    assert f1_score(None, None) is None
    assert f1_score(None, 0.0) == 0 and f1_score(0.0, None) == 0 and f1_score(0.0, 0.0) == 0
    assert f1_score(0.5, 1.0) == pytest.approx(2 / 3)
    assert per_hour(3, 0) is None and per_hour(3, 1800) == 6
    assert alert_reduction(0, 0) is None and alert_reduction(10, 4) == pytest.approx(0.6)
    spans = np.array([[0, 5], [3, 8], [10, 11], [20, 19]], dtype=np.int64) * S  # last empty
    assert union_seconds(spans) == 9.0
    assert union_seconds(np.array([[0, 10], [2, 3], [4, 12]]) * S) == 12.0
    assert union_seconds(np.zeros((0, 2), dtype=np.int64)) == 0.0


# --------------------------------------------------------------------------- naive twin


def naive(attack, ts, alerts):
    """Plain-Python metrics, written straight from the definitions."""
    n = len(attack)
    frames_of = {}
    for i, k in enumerate(attack):
        if k:
            frames_of.setdefault(k, []).append(i + 1)
    predicted = {f for a in alerts for f in a.frames}
    positive = set().union(*frames_of.values()) if frames_of else set()
    tp, fp, fn = len(predicted & positive), len(predicted - positive), len(positive - predicted)
    ats = {
        a.alert_id: a.ts if a.ts is not None else min(ts[f - 1] for f in a.frames) for a in alerts
    }
    true_ids = {a.alert_id for a in alerts if set(a.frames) & positive}
    per_attack = {}
    for k, fr in sorted(frames_of.items()):
        hits = sorted((ats[a.alert_id], a.alert_id) for a in alerts if set(a.frames) & set(fr))
        start = min(ts[f - 1] for f in fr)
        per_attack[k] = (bool(hits), (hits[0][0] - start) / S if hits else None)
    spans = sorted(
        (min(ts[f - 1] for f in fr), max(ts[f - 1] for f in fr)) for fr in frames_of.values()
    )
    covered, cur = 0, None
    for s, e in spans:
        if cur is None or s > cur[1]:
            if cur:
                covered += cur[1] - cur[0]
            cur = [s, e]
        else:
            cur[1] = max(cur[1], e)
    if cur:
        covered += cur[1] - cur[0]
    duration = (max(ts) - min(ts)) / S if n else 0.0
    benign = duration - covered / S
    incidents = {}
    for a in alerts:
        key = ("i", a.incident_id) if a.incident_id is not None else ("a", a.alert_id)
        incidents[key] = incidents.get(key, False) or a.alert_id in true_ids
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "detected": {k: v[0] for k, v in per_attack.items()},
        "delay": {k: v[1] for k, v in per_attack.items()},
        "true_alerts": len(true_ids),
        "benign": benign,
        "incidents": len(incidents),
        "false_incidents": sum(not v for v in incidents.values()),
    }


@st.composite
def cases(draw):
    n = draw(st.integers(1, 30))
    attack = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    ts = draw(st.lists(st.integers(0, 50 * S), min_size=n, max_size=n))
    alerts = []
    for i in range(draw(st.integers(0, 6))):
        frames = tuple(draw(st.lists(st.integers(1, n), min_size=1, max_size=4)))
        ts_a = draw(st.none() | st.integers(0, 50 * S))
        incident = draw(st.none() | st.sampled_from(["p", "q"]))
        alerts.append(Alert(f"a{i}", ts_a, frames, incident))
    return np.array(attack), np.array(ts, dtype=np.int64), alerts


@settings(max_examples=300, deadline=None)
@given(cases())
def test_matches_naive_twin(case):
    attack, ts, alerts = case
    r = score(attack, ts, alerts)
    want = naive(attack.tolist(), ts.tolist(), alerts)
    assert (r.frame.tp, r.frame.fp, r.frame.fn) == (want["tp"], want["fp"], want["fn"])
    assert {x.attack_id: x.detected for x in r.attacks} == want["detected"]
    assert {x.attack_id: x.delay_s for x in r.attacks} == pytest.approx(want["delay"])
    assert r.attack.true_alerts == want["true_alerts"]
    assert r.benign_s == pytest.approx(want["benign"])
    assert (r.incidents, r.false_incidents) == (want["incidents"], want["false_incidents"])
