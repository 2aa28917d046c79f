"""Evaluation: score detection against labelled captures (``otsight eval``).

``labels`` reads ground truth (per-frame CSV or named intervals), ``metrics`` computes the
scores as pure functions over arrays, ``run`` ties a capture, its labels and the detection
stage together.
"""

from otsight.evaluate.labels import Attack, Interval, LabelError, Labels, load_labels
from otsight.evaluate.metrics import Alert, Report, score

__all__ = [
    "Alert",
    "Attack",
    "Interval",
    "LabelError",
    "Labels",
    "Report",
    "load_labels",
    "score",
]
