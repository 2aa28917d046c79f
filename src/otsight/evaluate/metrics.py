"""Detection metrics against per-frame ground truth: pure functions over numpy arrays.

Inputs are the attack id of every frame (0 benign, ``k`` the ``k``-th attack), every frame's
timestamp (ns) and the alerts, each with the frames of its evidence. Definitions:

* **Per frame.** A frame is *predicted* when it is in any alert's evidence. TP, FP, FN, TN
  count frames; precision = TP / (TP + FP), recall = TP / (TP + FN).
* **Per attack.** An attack is *detected* when some alert's evidence overlaps its frames;
  an alert is *true* when its evidence overlaps some attack frame, else *false*. Precision
  = true alerts / alerts, recall = detected attacks / attacks. Detection delay = timestamp of
  the earliest overlapping alert − timestamp of the attack's first frame, in seconds
  (negative when that alert's first evidence precedes the attack).
* **F1** is the harmonic mean of precision and recall; when one of them is undefined the
  other is 0 (no alerts but attacks, or alerts but no attacks) and F1 is 0; it is undefined
  only when there are neither attacks nor alerts.
* **Rates.** An attack spans the time from its first to its last frame; benign time is the
  capture's duration (first to last frame) minus the union of attack spans. False alerts
  per hour = false alerts / benign hours; an incident is false when none of its alerts is
  true, and false incidents per hour likewise. Undefined without benign time.
* **Alert reduction** = 1 − incidents / alerts: the share of alerts an analyst does not see
  as separate items once alerts are grouped into incidents (0 without grouping). Undefined
  without alerts.

Undefined values are ``None`` (``null`` in JSON), never 0: zero alerts has no precision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from otsight.evaluate.labels import Attack

__all__ = [
    "Alert",
    "AttackResult",
    "AttackScores",
    "FrameScores",
    "Report",
    "alert_reduction",
    "as_alerts",
    "attack_spans",
    "f1_score",
    "per_hour",
    "ratio",
    "score",
    "union_seconds",
]

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Alert:
    """What evaluation needs of an alert.

    ``ts`` is the time of its first evidence (ns since the epoch); ``None`` takes the
    earliest timestamp of its evidence frames. ``frames`` are 1-based evidence frame numbers.
    Alerts with the same ``incident_id`` form one incident; ``None`` is an incident of its own.
    """

    alert_id: str
    ts: int | None
    frames: tuple[int, ...]
    incident_id: str | None = None


def as_alerts(rows: Iterable[Alert | Mapping[str, Any]] | Any) -> list[Alert]:
    """Alerts from :class:`Alert` objects, mappings with the same keys, or an Arrow table.

    ``ts`` may be integer nanoseconds or a ``datetime``. Raises ``ValueError`` naming the
    alert that is incomplete.
    """
    if hasattr(rows, "to_pylist"):
        rows = rows.to_pylist()
    out: list[Alert] = []
    for i, row in enumerate(rows):
        if isinstance(row, Alert):
            out.append(row)
            continue
        try:
            alert_id = str(row["alert_id"])
            frames = tuple(int(f) for f in (row.get("frames") or ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"alert #{i}: needs alert_id and frames ({exc})") from None
        ts = row.get("ts")
        if isinstance(ts, datetime):
            ts = _ns_of_datetime(ts)
        incident = row.get("incident_id")
        out.append(Alert(alert_id, None if ts is None else int(ts), frames, _opt_str(incident)))
    return out


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _ns_of_datetime(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000


def iso(ts_ns: int | None) -> str | None:
    """ISO-8601 UTC with nanoseconds, e.g. ``2024-03-01T08:00:00.000000123Z``."""
    if ts_ns is None:
        return None
    sec, ns = divmod(int(ts_ns), NS)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"


# --------------------------------------------------------------------------- results


@dataclass(slots=True)
class FrameScores:
    """Frame-level confusion counts and scores."""

    frames: int
    attack_frames: int
    alerted_frames: int
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(slots=True)
class AttackResult:
    """One attack instance: its frames and whether, when and by which alerts it was seen."""

    attack_id: int
    name: str
    kind: str
    techniques: tuple[str, ...]
    frames: int
    first_frame: int
    last_frame: int
    start_ns: int
    end_ns: int
    detected: bool
    alert_ids: list[str]
    first_alert_id: str | None
    delay_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "attack_id": self.attack_id,
            "name": self.name,
            "kind": self.kind,
            "techniques": list(self.techniques),
            "frames": self.frames,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "start": iso(self.start_ns),
            "end": iso(self.end_ns),
            "duration_s": (self.end_ns - self.start_ns) / NS,
            "detected": self.detected,
            "alert_ids": list(self.alert_ids),
            "first_alert_id": self.first_alert_id,
            "delay_s": self.delay_s,
        }


@dataclass(slots=True)
class AttackScores:
    """Attack-level scores."""

    attacks: int
    detected: int
    alerts: int
    true_alerts: int
    false_alerts: int
    precision: float | None
    recall: float | None
    f1: float | None
    mean_delay_s: float | None
    median_delay_s: float | None
    max_delay_s: float | None


@dataclass(slots=True)
class Report:
    """Everything ``otsight eval`` reports; :meth:`to_dict` is its JSON."""

    frames: int
    duration_s: float
    attack_s: float
    benign_s: float
    alerts: int
    incidents: int
    false_alerts: int
    false_incidents: int
    false_alerts_per_hour: float | None
    false_incidents_per_hour: float | None
    alert_reduction: float | None
    frame: FrameScores
    attack: AttackScores
    attacks: list[AttackResult]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def detections(self) -> bool:
        return self.alerts > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": dict(self.inputs),
            "frames": self.frames,
            "duration_s": self.duration_s,
            "attack_s": self.attack_s,
            "benign_s": self.benign_s,
            "alerts": self.alerts,
            "incidents": self.incidents,
            "false_alerts": self.false_alerts,
            "false_incidents": self.false_incidents,
            "false_alerts_per_hour": self.false_alerts_per_hour,
            "false_incidents_per_hour": self.false_incidents_per_hour,
            "alert_reduction": self.alert_reduction,
            "frame": {k: getattr(self.frame, k) for k in FrameScores.__slots__},
            "attack": {k: getattr(self.attack, k) for k in AttackScores.__slots__},
            "attacks": [a.to_dict() for a in self.attacks],
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------- small pieces


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or ``None`` when the denominator is 0."""
    return numerator / denominator if denominator else None


def f1_score(precision: float | None, recall: float | None) -> float | None:
    """Harmonic mean; 0 when one side is undefined, ``None`` when both are."""
    if precision is None and recall is None:
        return None
    if precision is None or recall is None or precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def per_hour(count: int, seconds: float) -> float | None:
    """``count`` per hour of ``seconds``; ``None`` without time."""
    return count * 3600 / seconds if seconds > 0 else None


def alert_reduction(alerts: int, incidents: int) -> float | None:
    """``1 - incidents / alerts``; ``None`` without alerts."""
    return 1 - incidents / alerts if alerts else None


def attack_spans(attack: np.ndarray, ts_ns: np.ndarray, n_attacks: int) -> np.ndarray:
    """``[n_attacks, 2]`` int64: earliest and latest frame timestamp of each attack id 1..n.

    An attack without frames gets ``[INT64_MAX, INT64_MIN]`` (an empty span).
    """
    spans = np.empty((n_attacks, 2), dtype=np.int64)
    spans[:, 0] = np.iinfo(np.int64).max
    spans[:, 1] = np.iinfo(np.int64).min
    mask = attack > 0
    ids = attack[mask].astype(np.int64) - 1
    np.minimum.at(spans[:, 0], ids, ts_ns[mask])
    np.maximum.at(spans[:, 1], ids, ts_ns[mask])
    return spans


def union_seconds(spans: np.ndarray) -> float:
    """Total length in seconds of the union of ``[start, end]`` ns rows (empty rows ignored)."""
    spans = spans[spans[:, 0] <= spans[:, 1]]
    if spans.shape[0] == 0:
        return 0.0
    spans = spans[np.argsort(spans[:, 0], kind="stable")]
    # a running maximum of the ends: a span starting past it opens a new merged run
    ends = np.maximum.accumulate(spans[:, 1])
    new_run = np.ones(spans.shape[0], dtype=bool)
    new_run[1:] = spans[1:, 0] > ends[:-1]
    run_id = np.cumsum(new_run) - 1
    starts = spans[new_run, 0]
    run_ends = np.zeros(starts.shape[0], dtype=np.int64)
    np.maximum.at(run_ends, run_id, ends)
    return float(np.sum(run_ends - starts)) / NS


# --------------------------------------------------------------------------- scoring


def _evidence(alerts: Sequence[Alert], n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(alert index, 0-based frame index) of every evidence frame; validates the frames."""
    counts = np.fromiter((len(a.frames) for a in alerts), dtype=np.int64, count=len(alerts))
    frames = np.fromiter(
        (f for a in alerts for f in a.frames), dtype=np.int64, count=int(counts.sum())
    )
    bad = np.flatnonzero((frames < 1) | (frames > n_frames))
    if bad.size:
        owner = int(np.searchsorted(np.cumsum(counts), bad[0], side="right"))
        raise ValueError(
            f"alert {alerts[owner].alert_id}: evidence frame {int(frames[bad[0]])} is outside "
            f"the capture (frames 1..{n_frames})"
        )
    return np.repeat(np.arange(len(alerts), dtype=np.int64), counts), frames - 1


def score(
    attack: np.ndarray,
    ts_ns: np.ndarray,
    alerts: Sequence[Alert],
    attacks: Sequence[Attack | str] = (),
) -> Report:
    """Score ``alerts`` against per-frame ground truth.

    ``attack[i]`` is the attack id of frame ``i + 1`` (0 benign), ``ts_ns[i]`` its timestamp,
    ``attacks[k - 1]`` describes attack id ``k`` (a name or :class:`Attack`; missing entries
    are named ``attack k``). Raises ``ValueError`` for inconsistent input.
    """
    attack = np.asarray(attack, dtype=np.int64)
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    n = int(attack.shape[0])
    if ts_ns.shape != (n,):
        raise ValueError(f"{n} frame labels but {ts_ns.shape[0]} frame timestamps")
    if n and attack.min() < 0:
        raise ValueError("attack ids must be 0 (benign) or positive")
    seen: set[str] = set()
    for a in alerts:
        if a.alert_id in seen:
            raise ValueError(f"alert id {a.alert_id} is used twice")
        seen.add(a.alert_id)
    n_ids = max(int(attack.max()) if n else 0, len(attacks))
    meta = [_attack_meta(attacks, k) for k in range(1, n_ids + 1)]

    # ---- frames
    owner, idx = _evidence(alerts, n)
    predicted = np.zeros(n, dtype=bool)
    predicted[idx] = True
    positive = attack > 0
    tp = int(np.count_nonzero(predicted & positive))
    fp = int(np.count_nonzero(predicted & ~positive))
    fn = int(np.count_nonzero(~predicted & positive))
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    frame = FrameScores(
        frames=n,
        attack_frames=tp + fn,
        alerted_frames=tp + fp,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=n - tp - fp - fn,
        precision=precision,
        recall=recall,
        f1=f1_score(precision, recall),
    )

    # ---- alerts x attacks
    alert_ts = np.empty(len(alerts), dtype=np.int64)
    for i, a in enumerate(alerts):
        if a.ts is not None:
            alert_ts[i] = a.ts
        elif a.frames:
            alert_ts[i] = ts_ns[np.asarray(a.frames, dtype=np.int64) - 1].min()
        else:
            raise ValueError(f"alert {a.alert_id}: no ts and no evidence frames")
    hit = attack[idx].astype(np.int64)
    pairs = np.unique(np.stack([owner[hit > 0], hit[hit > 0]], axis=1), axis=0)
    true_alert = np.zeros(len(alerts), dtype=bool)
    true_alert[pairs[:, 0]] = True

    spans = attack_spans(attack, ts_ns, n_ids)
    # frames grouped by attack id in one sort: ids[bounds[k]:bounds[k + 1]] are attack k's
    by_attack = np.argsort(attack, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(attack, minlength=n_ids + 1))))
    results: list[AttackResult] = []
    notes: list[str] = []
    for k in range(1, n_ids + 1):
        info = meta[k - 1]
        members = by_attack[bounds[k] : bounds[k + 1]] + 1
        if not members.size:
            notes.append(f"attack {info.name!r} has no frame in the capture; not scored")
            continue
        detecting = pairs[pairs[:, 1] == k, 0]
        detecting = detecting[np.argsort(alert_ts[detecting], kind="stable")]
        first = int(detecting[0]) if detecting.size else None
        start, end = int(spans[k - 1, 0]), int(spans[k - 1, 1])
        results.append(
            AttackResult(
                attack_id=k,
                name=info.name,
                kind=info.kind,
                techniques=info.techniques,
                frames=int(members.size),
                first_frame=int(members[0]),
                last_frame=int(members[-1]),
                start_ns=start,
                end_ns=end,
                detected=first is not None,
                alert_ids=[alerts[int(i)].alert_id for i in detecting],
                first_alert_id=None if first is None else alerts[first].alert_id,
                delay_s=None if first is None else (int(alert_ts[first]) - start) / NS,
            )
        )

    detected = sum(r.detected for r in results)
    true_alerts = int(np.count_nonzero(true_alert))
    false_alerts = len(alerts) - true_alerts
    a_precision, a_recall = ratio(true_alerts, len(alerts)), ratio(detected, len(results))
    delays = np.array([r.delay_s for r in results if r.delay_s is not None], dtype=np.float64)
    attack_scores = AttackScores(
        attacks=len(results),
        detected=detected,
        alerts=len(alerts),
        true_alerts=true_alerts,
        false_alerts=false_alerts,
        precision=a_precision,
        recall=a_recall,
        f1=f1_score(a_precision, a_recall),
        mean_delay_s=float(delays.mean()) if delays.size else None,
        median_delay_s=float(np.median(delays)) if delays.size else None,
        max_delay_s=float(delays.max()) if delays.size else None,
    )

    # ---- incidents and rates
    incident_true: dict[tuple[bool, str], bool] = {}
    for a, is_true in zip(alerts, true_alert.tolist(), strict=True):
        key = (False, a.alert_id) if a.incident_id is None else (True, a.incident_id)
        incident_true[key] = incident_true.get(key, False) or is_true
    incidents = len(incident_true)
    false_incidents = sum(not t for t in incident_true.values())
    duration = float(ts_ns.max() - ts_ns.min()) / NS if n else 0.0
    attack_s = union_seconds(spans)
    benign_s = max(duration - attack_s, 0.0)
    return Report(
        frames=n,
        duration_s=duration,
        attack_s=attack_s,
        benign_s=benign_s,
        alerts=len(alerts),
        incidents=incidents,
        false_alerts=false_alerts,
        false_incidents=false_incidents,
        false_alerts_per_hour=per_hour(false_alerts, benign_s),
        false_incidents_per_hour=per_hour(false_incidents, benign_s),
        alert_reduction=alert_reduction(len(alerts), incidents),
        frame=frame,
        attack=attack_scores,
        attacks=results,
        notes=notes,
    )


def _attack_meta(attacks: Sequence[Attack | str], k: int) -> Attack:
    if k - 1 < len(attacks):
        item = attacks[k - 1]
        return item if isinstance(item, Attack) else Attack(str(item))
    return Attack(f"attack {k}")
