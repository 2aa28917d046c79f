"""``otsight eval``: score the detection stage on a labelled capture.

The capture gives every frame's timestamp (to resolve interval labels and measure delays
and benign time); the labels give the truth; the detection stage gives the alerts.

Detection contract: a module ``otsight.detect`` exposing
``alerts_for_capture(capture, *, baseline, learn_from) -> Iterable[Alert | Mapping]`` (see
:func:`otsight.evaluate.metrics.as_alerts` for the accepted shapes). Until that exists the
evaluation runs with 0 alerts and says so; it never invents alerts.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from otsight.evaluate.labels import LabelError, load_labels
from otsight.evaluate.metrics import Alert, Report, as_alerts, score

__all__ = ["DETECT_ENTRY", "EvalError", "detect_alerts", "evaluate_capture", "frame_timestamps"]

DETECT_MODULE, DETECT_FUNCTION = "otsight.detect", "alerts_for_capture"
DETECT_ENTRY = f"{DETECT_MODULE}:{DETECT_FUNCTION}"
NO_DETECTORS = "no detectors are built yet: 0 alerts"


class EvalError(ValueError):
    """The inputs cannot be evaluated (exit code 2 at the CLI)."""


def frame_timestamps(capture: str | Path) -> tuple[np.ndarray, list[str]]:
    """Timestamps (ns) of every frame, frame ``i + 1`` at index ``i``, and reader warnings."""
    from otsight.capture.pcap import CaptureError, CaptureReader

    capture = Path(capture)
    if not capture.is_file():
        raise EvalError(f"no such capture file: {capture}")
    reader = CaptureReader(capture)
    parts: list[np.ndarray] = []
    expected = 1
    try:
        for chunk in reader.chunks():
            # frame numbers are positions in the file: chunks must follow one another
            if chunk.first_frame != expected:
                raise RuntimeError(f"chunk starts at frame {chunk.first_frame}, not {expected}")
            parts.append(chunk.ts.astype(np.int64, copy=True))
            expected += chunk.count
    except CaptureError as exc:
        raise EvalError(str(exc)) from None
    ts = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return ts, [str(issue) for issue in reader.issues]


def detect_alerts(
    capture: Path, baseline: Path | None, learn_from: Path | None
) -> tuple[list[Alert], str, list[str]]:
    """Alerts from the detection stage: (alerts, where they came from, notes)."""
    try:
        module = importlib.import_module(DETECT_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != DETECT_MODULE:
            raise  # the detection stage exists but is broken: scoring it would mislead
        return [], "none", [NO_DETECTORS]
    hook = getattr(module, DETECT_FUNCTION, None)
    if hook is None:
        return [], "none", [f"{DETECT_MODULE} has no {DETECT_FUNCTION}(); 0 alerts"]
    alerts = as_alerts(hook(capture, baseline=baseline, learn_from=learn_from))
    return alerts, DETECT_ENTRY, []


def _check_path(path: Path | None, what: str, want_dir: bool) -> Path | None:
    if path is None:
        return None
    path = Path(path)
    if want_dir and not path.is_dir():
        raise EvalError(f"no such {what} directory: {path}")
    if not want_dir and not path.is_file():
        raise EvalError(f"no such {what} file: {path}")
    return path


def evaluate_capture(
    capture: str | Path,
    labels_path: str | Path,
    baseline: str | Path | None = None,
    learn_from: str | Path | None = None,
    alerts: Sequence[Alert] | None = None,
) -> Report:
    """Evaluate detection on ``capture`` against the labels in ``labels_path``.

    ``baseline`` (a saved baseline directory) and ``learn_from`` (a benign capture) are
    mutually exclusive. ``alerts`` scores alerts produced elsewhere instead of running the
    detection stage. Raises :class:`EvalError` for unusable input.
    """
    capture = Path(capture)
    labels_path = Path(labels_path)
    if baseline is not None and learn_from is not None:
        raise EvalError("--baseline and --learn-from are mutually exclusive: give one")
    base = _check_path(Path(baseline) if baseline is not None else None, "baseline", True)
    benign = _check_path(Path(learn_from) if learn_from is not None else None, "capture", False)
    if not labels_path.is_file():
        raise EvalError(f"no such label file: {labels_path}")
    ts, warnings = frame_timestamps(capture)
    try:
        labels = load_labels(labels_path, ts)
    except LabelError as exc:
        raise EvalError(str(exc)) from None

    notes: list[str] = []
    if alerts is None:
        found, source, detect_notes = detect_alerts(capture, base, benign)
        notes += detect_notes
    else:
        found, source = list(alerts), "given"
    if base is not None or benign is not None:
        given = f"baseline {base}" if base is not None else f"--learn-from {benign}"
        if source == "none":
            notes.append(f"{given} is recorded but not used yet: no learner is built")
    try:
        report = score(labels.attack, ts, found, labels.attacks)
    except ValueError as exc:
        raise EvalError(f"alerts do not fit the capture: {exc}") from None
    report.notes = notes + report.notes
    report.warnings = warnings + labels.warnings + report.warnings
    report.inputs = {
        "capture": str(capture),
        "labels": str(labels_path),
        "label_format": labels.format,
        "baseline": None if base is None else str(base),
        "learn_from": None if benign is None else str(benign),
        "detection": source,
    }
    return report


def summary_rows(report: Report) -> list[tuple[str, str]]:
    """(what, value) rows for the human table."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    def rate(value: float | None) -> str:
        return "n/a (no benign time)" if value is None else f"{value:.2f}/h"

    f, a = report.frame, report.attack
    rows: list[tuple[str, str]] = [
        ("capture", report.inputs.get("capture", "")),
        ("labels", f"{report.inputs.get('labels', '')} ({report.inputs.get('label_format', '')})"),
        (
            "frames",
            f"{report.frames:,} ({f.attack_frames:,} attack), {report.duration_s:.1f} s "
            f"({report.benign_s:.1f} s benign)",
        ),
        (
            "alerts",
            f"{report.alerts:,} in {report.incidents:,} incidents"
            if report.alerts
            else "0 (no detections)",
        ),
        (
            "per frame",
            f"precision {pct(f.precision)}  recall {pct(f.recall)}  F1 {pct(f.f1)}  "
            f"(TP {f.tp:,} FP {f.fp:,} FN {f.fn:,})",
        ),
        (
            "per attack",
            f"precision {pct(a.precision)}  recall {pct(a.recall)}  F1 {pct(a.f1)}  "
            f"(detected {a.detected} of {a.attacks})",
        ),
        (
            "delay",
            "n/a"
            if a.mean_delay_s is None
            else f"mean {a.mean_delay_s:.3f} s, median {a.median_delay_s:.3f} s, "
            f"max {a.max_delay_s:.3f} s",
        ),
        ("false alerts", f"{report.false_alerts:,}  {rate(report.false_alerts_per_hour)}"),
        ("false incidents", f"{report.false_incidents:,}  {rate(report.false_incidents_per_hour)}"),
        ("alert reduction", pct(report.alert_reduction)),
    ]
    return rows


def attack_rows(report: Report) -> list[dict[str, Any]]:
    """One row per attack for the human table."""
    return [
        {
            "attack": r.name,
            "kind": r.kind,
            "techniques": ", ".join(r.techniques),
            "frames": (
                f"{r.first_frame}"
                if r.frames == 1
                else f"{r.first_frame}-{r.last_frame} ({r.frames})"
            ),
            "detected": "yes" if r.detected else "no",
            "delay": "" if r.delay_s is None else f"{r.delay_s:.3f} s",
            "first alert": r.first_alert_id or "",
        }
        for r in report.attacks
    ]
