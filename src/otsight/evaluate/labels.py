"""Ground truth for evaluation: which frames of a capture belong to which attack.

Two label formats are read:

* **Per-frame CSV**, the format public ICS datasets use: one row per frame, ``frame;label``
  (``,`` and tab delimiters work too; a header line is optional). Frames are 1-based, as
  Wireshark numbers them. A label ``normal``, ``benign``, ``0`` or empty is benign; any other
  label names the attack the frame belongs to, so rows sharing a label form one attack.
  Frames the file does not list are benign (datasets such as QUT's S7comm set list only the
  attack frames). Extra middle columns are ignored: a header-less row's first field is the
  frame and its last field the label (QUT: ``frame_no,summary,attack_name``); with a header,
  the columns are found by name.
* **Named time intervals**, as CSV (header ``name,start,end[,techniques][,attack]``) or JSON
  (a list of objects with those keys, or ``{"attacks": [...]}``). ``start``/``end`` are
  ISO-8601 (UTC when no offset is given) or epoch seconds; ``techniques`` are ATT&CK for ICS
  ids, ``;``-separated in CSV (space or ``|`` when ``;`` is the delimiter, or quote the
  field) and a list in JSON. An interval covers every frame whose timestamp lies in
  ``[start, end]``. The simulator's sidecar ``X.attacks.json`` (objects with
  ``name, attack, techniques, start, end, frames: [first, last]``) is this format: when
  ``frames`` is present it is used as is, since it needs no timestamps to resolve.

A per-frame CSV ``X.csv`` (or ``X.labels.csv``) with a sidecar ``X.attacks.json`` beside it
takes each attack's kind and techniques from the sidecar.

Every problem in a file is collected in one pass and reported as :class:`LabelError`, whose
message names the file and line (or JSON element) of the first problem.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BENIGN_LABELS",
    "Attack",
    "Interval",
    "LabelError",
    "Labels",
    "intervals_to_labels",
    "load_labels",
    "parse_time",
    "read_frame_labels",
    "read_intervals",
]

BENIGN_LABELS = frozenset({"", "normal", "benign", "0"})
# Header names that identify the columns of a per-frame file, in order of preference.
_FRAME_COLUMNS = ("frame", "frame_no", "frame_number", "frame.number", "no", "no.", "packet")
_LABEL_COLUMNS = ("label", "attack_name", "attack", "class", "category")
_INTERVAL_KEYS = {"name", "start", "end"}
_TECHNIQUE_ID = re.compile(r"^T0\d{3}$")


class LabelError(ValueError):
    """A label file cannot be used; ``problems`` lists every ``where: what`` found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else "unusable label file"
        more = len(self.problems) - 1
        super().__init__(first + (f" (and {more} more problem{'s' * (more > 1)})" if more else ""))


@dataclass(frozen=True, slots=True)
class Attack:
    """One labelled attack instance."""

    name: str
    kind: str = ""  # the attack type, when the labels say (sidecar ``attack`` key)
    techniques: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Interval:
    """A named attack interval as written in an interval label file."""

    name: str
    start_ns: int | None
    end_ns: int | None
    kind: str = ""
    techniques: tuple[str, ...] = ()
    frames: tuple[int, int] | None = None  # sidecar ``frames: [first, last]``, inclusive
    where: str = ""  # file:line or file[index], for messages


@dataclass(slots=True)
class Labels:
    """Per-frame ground truth.

    ``attack[i]`` is the attack id of frame ``i + 1``: 0 for benign, ``k`` for
    ``attacks[k - 1]``. ``warnings`` says what was noticed but did not stop evaluation.
    """

    attack: np.ndarray  # int32, one per frame
    attacks: list[Attack]
    source: str = ""
    format: str = ""  # "frame-csv" | "intervals-csv" | "intervals-json"
    warnings: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return int(self.attack.shape[0])

    @property
    def names(self) -> list[str]:
        """Attack names by id; ``names[0]`` is ``"benign"``."""
        return ["benign", *(a.name for a in self.attacks)]

    def frames_of(self, attack_id: int) -> np.ndarray:
        """1-based frame numbers labelled with ``attack_id``."""
        return np.flatnonzero(self.attack == attack_id).astype(np.int64) + 1


# --------------------------------------------------------------------------- helpers


def _sniff_delimiter(line: str) -> str:
    """The first of ``;``, ``,`` or tab in ``line`` (``;`` when none: a one-column file)."""
    positions = {d: line.find(d) for d in (";", ",", "\t") if d in line}
    return min(positions, key=positions.__getitem__) if positions else ";"


def _content_lines(text: str) -> Iterable[tuple[int, str]]:
    """(1-based line number, line) for lines that are neither blank nor ``#`` comments."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, line


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelError([f"{path}: no such label file"]) from None
    except IsADirectoryError:
        raise LabelError([f"{path}: is a directory, not a label file"]) from None
    except UnicodeDecodeError as exc:
        raise LabelError([f"{path}: not a text file ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise LabelError([f"{path}: cannot read: {exc.strerror or exc}"]) from None


def _split_row(line: str, delimiter: str) -> list[str]:
    return [f.strip() for f in next(csv.reader(io.StringIO(line), delimiter=delimiter))]


def _frame_number(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _techniques(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    from otsight.attack import techniques as known

    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items = [t for t in re.split(r"[;|,\s]+", value) if t]
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        items = [t.strip() for t in value if t.strip()]
    else:
        problems.append(f"{where}: techniques must be a list of ATT&CK ids, not {value!r}")
        return ()
    bad = [t for t in items if not _TECHNIQUE_ID.match(t) or t not in known()]
    if bad:
        problems.append(f"{where}: unknown ATT&CK for ICS technique id(s) {', '.join(bad)}")
        return ()
    return tuple(dict.fromkeys(items))


_ISO = re.compile(r"^(?P<base>\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d)?)(?P<frac>[.,]\d+)?(?P<tz>.*)$")


def parse_time(value: Any) -> int:
    """Nanoseconds since the epoch from epoch seconds (number or string) or ISO-8601.

    ISO-8601 without an offset is taken as UTC; fractions keep full nanosecond precision.
    Raises ``ValueError`` with a short reason.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        if isinstance(value, float) and not np.isfinite(value):
            raise ValueError(f"not a time: {value!r}")
        return int(Decimal(repr(value)) * 10**9)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("empty time" if value in ("", None) else f"not a time: {value!r}")
    text = value.strip()
    try:
        seconds = Decimal(text)
    except InvalidOperation:
        pass
    else:
        if not seconds.is_finite():
            raise ValueError(f"not a time: {text!r}")
        return int(seconds * 10**9)
    m = _ISO.match(text)
    if not m:
        raise ValueError(f"not ISO-8601 or epoch seconds: {text!r}")
    tz = m["tz"].strip()
    if tz in ("Z", "z"):
        tz = "+00:00"
    try:
        stamp = datetime.fromisoformat(m["base"].replace(" ", "T") + tz)
    except ValueError:
        raise ValueError(f"not ISO-8601 or epoch seconds: {text!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    whole = int(stamp.timestamp())  # the base has no fraction, so this is exact
    frac = m["frac"]
    ns = int((frac[1:] + "000000000")[:9]) if frac else 0
    return whole * 10**9 + ns


# --------------------------------------------------------------------------- per-frame CSV


def read_frame_labels(path: str | Path, n_frames: int | None = None) -> Labels:
    """Read a per-frame label CSV.

    Without ``n_frames`` the labels span up to the highest frame listed; with it they span
    exactly ``n_frames`` and a frame beyond raises :class:`LabelError` naming it.
    """
    path = Path(path)
    text = _read_text(path)
    lines = list(_content_lines(text))
    problems: list[str] = []
    if not lines:
        raise LabelError([f"{path}: no labels (the file is empty)"])
    delimiter = _sniff_delimiter(lines[0][1])
    frame_col, label_col = 0, -1
    first = _split_row(lines[0][1], delimiter)
    if _frame_number(first[0]) is None:  # a header line
        header = [h.lower() for h in first]
        frame_col = next((header.index(c) for c in _FRAME_COLUMNS if c in header), -1)
        found = next((header.index(c) for c in _LABEL_COLUMNS if c in header), -1)
        if frame_col < 0 or found < 0:
            raise LabelError(
                [
                    f"{path}:{lines[0][0]}: header {lines[0][1].strip()!r} has no frame and "
                    "label columns (expected e.g. 'frame;label'), and its first field is not "
                    "a frame number"
                ]
            )
        # Free-text columns may hold unquoted delimiters: the last column is read from the end.
        label_col = -1 if found == len(header) - 1 else found
        lines = lines[1:]
    seen: dict[int, int] = {}  # frame -> line
    ids: dict[str, int] = {}
    frames: list[int] = []
    attack_ids: list[int] = []
    max_frame = 0
    for number, line in lines:
        where = f"{path}:{number}"
        fields = _split_row(line, delimiter)
        if len(fields) < 2 and label_col == -1 and frame_col == 0:
            fields.append("")  # 'frame' alone: an empty label, benign
        try:
            raw_frame, label = fields[frame_col], fields[label_col]
        except IndexError:
            problems.append(f"{where}: expected frame{delimiter}label, got {line.strip()!r}")
            continue
        frame = _frame_number(raw_frame)
        if frame is None:
            problems.append(f"{where}: frame {raw_frame!r} is not an integer")
            continue
        if frame <= 0:
            problems.append(f"{where}: frame {frame} is not positive (frames are 1-based)")
            continue
        if frame in seen:
            problems.append(f"{where}: frame {frame} is labelled twice (also line {seen[frame]})")
            continue
        seen[frame] = number
        max_frame = max(max_frame, frame)
        if label.lower() in BENIGN_LABELS:
            continue
        frames.append(frame)
        attack_ids.append(ids.setdefault(label, len(ids) + 1))
    if problems:
        raise LabelError(problems)
    if n_frames is not None and max_frame > n_frames:
        beyond = min(f for f in seen if f > n_frames)
        raise LabelError(
            [
                f"{path}:{seen[beyond]}: frame {beyond} is beyond the capture, which has "
                f"{n_frames} frames"
            ]
        )
    attack = np.zeros(max_frame if n_frames is None else n_frames, dtype=np.int32)
    attack[np.asarray(frames, dtype=np.int64) - 1] = np.asarray(attack_ids, dtype=np.int32)
    attacks = [Attack(name) for name in ids]
    labels = Labels(attack, attacks, str(path), "frame-csv")
    _merge_sidecar(labels, path)
    return labels


def _sidecar_of(path: Path) -> Path | None:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    candidates = [path.with_name(stem + ".attacks.json")]
    if stem.endswith(".labels"):
        candidates.append(path.with_name(stem[: -len(".labels")] + ".attacks.json"))
    return next((c for c in candidates if c.is_file()), None)


def _merge_sidecar(labels: Labels, path: Path) -> None:
    """Take kinds and techniques from ``X.attacks.json`` beside a per-frame file."""
    sidecar = _sidecar_of(path)
    if sidecar is None:
        return
    by_name = {i.name: i for i in read_intervals(sidecar)}
    for k, attack in enumerate(labels.attacks):
        meta = by_name.get(attack.name)
        if meta is not None:
            labels.attacks[k] = Attack(attack.name, meta.kind, meta.techniques)
    missing = sorted(set(by_name) - {a.name for a in labels.attacks})
    if missing:
        labels.warnings.append(
            f"{sidecar}: attack(s) {', '.join(missing)} have no frame in {path.name}"
        )


# --------------------------------------------------------------------------- intervals


def _interval(record: dict[str, Any], where: str, problems: list[str]) -> Interval | None:
    before = len(problems)
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}: missing attack name")
        name = ""
    name = name.strip()
    if name.lower() in BENIGN_LABELS and name:
        problems.append(f"{where}: {name!r} is a benign label, not an attack name")
    frames = record.get("frames")
    frame_range: tuple[int, int] | None = None
    if frames is not None and frames != "":
        if (
            isinstance(frames, list)
            and len(frames) == 2
            and all(isinstance(f, int) and not isinstance(f, bool) for f in frames)
        ):
            first, last = frames
            if first <= 0 or last < first:
                problems.append(f"{where}: frames [{first}, {last}] is not a 1-based range")
            frame_range = (first, last)
        else:
            problems.append(f"{where}: frames must be [first, last], got {frames!r}")
    times: list[int | None] = []
    for key in ("start", "end"):
        value = record.get(key)
        if value is None or value == "":
            if frame_range is None:
                problems.append(f"{where}: missing {key}")
            times.append(None)
            continue
        try:
            times.append(parse_time(value))
        except ValueError as exc:
            problems.append(f"{where}: {key}: {exc}")
            times.append(None)
    start, end = times
    if start is not None and end is not None and end < start:
        problems.append(f"{where}: end is before start")
    kind = record.get("attack") or record.get("kind") or ""
    if not isinstance(kind, str):
        problems.append(f"{where}: attack must be a string, not {kind!r}")
        kind = ""
    techniques = _techniques(record.get("techniques"), where, problems)
    if len(problems) > before:
        return None
    return Interval(name, start, end, kind.strip(), techniques, frame_range, where)


def read_intervals(path: str | Path) -> list[Interval]:
    """Read named attack intervals from a JSON or CSV file (see the module docstring)."""
    path = Path(path)
    text = _read_text(path)
    problems: list[str] = []
    out: list[Interval | None] = []
    if text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LabelError([f"{path}:{exc.lineno}: not valid JSON: {exc.msg}"]) from None
        if isinstance(data, dict):
            data = data.get("attacks")
        if not isinstance(data, list):
            raise LabelError([f'{path}: expected a list of attacks or {{"attacks": [...]}}'])
        for i, record in enumerate(data):
            where = f"{path}[{i}]"
            if not isinstance(record, dict):
                problems.append(f"{where}: expected an object, got {type(record).__name__}")
                continue
            out.append(_interval(record, where, problems))
    else:
        lines = list(_content_lines(text))
        if not lines:
            raise LabelError([f"{path}: no labels (the file is empty)"])
        delimiter = _sniff_delimiter(lines[0][1])
        header = [h.lower() for h in _split_row(lines[0][1], delimiter)]
        if not _INTERVAL_KEYS <= set(header):
            raise LabelError(
                [f"{path}:{lines[0][0]}: interval header needs name, start and end columns"]
            )
        for number, line in lines[1:]:
            fields = _split_row(line, delimiter)
            where = f"{path}:{number}"
            if len(fields) > len(header):
                problems.append(f"{where}: {len(fields)} fields, the header has {len(header)}")
                continue
            record = dict(zip(header, fields, strict=False))
            out.append(_interval(record, where, problems))
    intervals = [i for i in out if i is not None]
    first_seen: dict[str, str] = {}
    for interval in intervals:
        if interval.name in first_seen:
            problems.append(
                f"{interval.where}: attack {interval.name!r} is named twice "
                f"(also {first_seen[interval.name]})"
            )
        first_seen.setdefault(interval.name, interval.where)
    if problems:
        raise LabelError(problems)
    if not intervals:
        raise LabelError([f"{path}: no attacks listed"])
    return intervals


def intervals_to_labels(
    intervals: Sequence[Interval], ts_ns: np.ndarray, source: str = "", fmt: str = ""
) -> Labels:
    """Resolve intervals to frames of a capture whose frame ``i + 1`` has ``ts_ns[i]``.

    A frame inside several intervals belongs to the one that starts last (the more specific
    one), with a warning. An interval that covers no frame is kept out, with a warning: it
    could not be detected in this capture.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    n = ts.shape[0]
    attack = np.zeros(n, dtype=np.int32)
    warnings: list[str] = []
    problems: list[str] = []
    members: list[tuple[int, Interval, np.ndarray]] = []
    for interval in intervals:
        if interval.frames is not None:
            first, last = interval.frames
            if last > n:
                problems.append(
                    f"{interval.where}: frame {max(first, n + 1)} is beyond the capture, which "
                    f"has {n} frames"
                )
                continue
            idx = np.arange(first - 1, last, dtype=np.int64)
            key = int(ts[first - 1]) if n else 0
        else:
            assert interval.start_ns is not None and interval.end_ns is not None
            idx = np.flatnonzero((ts >= interval.start_ns) & (ts <= interval.end_ns))
            key = interval.start_ns
        if idx.size == 0:
            warnings.append(
                f"{interval.where}: attack {interval.name!r} covers no frame of the capture; "
                "left out of the scores"
            )
            continue
        members.append((key, interval, idx))
    if problems:
        raise LabelError(problems)
    # ids follow file order; frames shared by intervals go to the one starting last
    attacks = [Attack(i.name, i.kind, i.techniques) for _, i, _ in members]
    for k in sorted(range(len(members)), key=lambda j: members[j][0]):
        _, interval, idx = members[k]
        taken = attack[idx]
        if np.any(taken):
            others = sorted({attacks[int(t) - 1].name for t in np.unique(taken[taken > 0])})
            warnings.append(
                f"{interval.where}: attack {interval.name!r} overlaps {', '.join(others)}; "
                f"{int(np.count_nonzero(taken))} shared frames are counted for {interval.name!r}"
            )
        attack[idx] = k + 1
    return Labels(attack, attacks, source, fmt, warnings)


# --------------------------------------------------------------------------- dispatch


def _interval_format(text: str) -> str | None:
    """The interval format of ``text`` ("intervals-json" or "intervals-csv"), else None."""
    if text.lstrip().startswith(("[", "{")):
        return "intervals-json"
    first = next(iter(_content_lines(text)), None)
    if first is None:
        return None
    header = {h.lower() for h in _split_row(first[1], _sniff_delimiter(first[1]))}
    return "intervals-csv" if _INTERVAL_KEYS <= header else None


def load_labels(path: str | Path, ts_ns: np.ndarray) -> Labels:
    """Labels for a capture whose frames have timestamps ``ts_ns``, in either format.

    JSON files and CSV files with ``name``, ``start`` and ``end`` columns are intervals;
    anything else is a per-frame CSV. Raises :class:`LabelError`.
    """
    path = Path(path)
    fmt = _interval_format(_read_text(path))
    if fmt is not None:
        return intervals_to_labels(read_intervals(path), ts_ns, str(path), fmt)
    return read_frame_labels(path, n_frames=int(np.asarray(ts_ns).shape[0]))
