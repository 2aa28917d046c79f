"""Field-by-field comparison of otsight's protocol tables with Wireshark's dissectors.

``tshark -T json --no-duplicate-keys`` gives, per frame, each protocol layer once per PDU
(a list when a frame carries several). Rows are joined on (frame, index of the PDU within
the frame); each compared field counts as agreeing, differing, or excepted (listed with a
reason in ``exceptions/<protocol>.yaml``). Each protocol's test maps its columns to tshark fields.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from otsight.testing.decode import decode
from tests.conftest import corpus_captures

EXCEPTIONS_DIR = Path(__file__).with_name("exceptions")  # one reviewed YAML file per protocol
TARGET = 0.995


def corpus_files(protocol: str) -> list[dict[str, str]]:
    """Manifest rows of captures in which tshark decodes ``protocol`` (ics_frames column)."""
    rows = []
    for row in corpus_captures():
        counts = dict(
            item.split("=", 1) for item in row.get("ics_frames", "").split(";") if "=" in item
        )
        if int(counts.get(protocol, "0") or 0) > 0:
            rows.append(row)
    return rows


def decoded_corpus(
    corpus: str | Path, protocol: str, at_least: int = 0
) -> Iterator[tuple[dict[str, str], Path, Any]]:
    """(manifest row, path, otsight's decode) of each capture of :func:`corpus_files`; there
    must be ``at_least`` of them and otsight must decode every one without a failure."""
    rows = corpus_files(protocol)
    assert len(rows) >= at_least, f"{len(rows)} {protocol} captures, expected {at_least}+"
    for row in rows:
        path = Path(corpus) / row["local_path"]
        d = decode(path)
        assert not d.failures, d.failures
        yield row, path, d


def tshark_pdus(
    tshark: str, path: Path, layers: list[str], display_filter: str, decode_as: str = ""
) -> dict[int, list[dict[str, Any]]]:
    """frame → [{layer: dict}] one entry per PDU, layers aligned by occurrence."""
    # default preferences (as a user's Wireshark); -J keeps the layers' whole subtrees
    cmd = [
        tshark,
        "-n",
        "-r",
        str(path),
        "-T",
        "json",
        "--no-duplicate-keys",
        "-J",
        " ".join(["frame", *layers]),
        "-Y",
        display_filter,
        *shlex.split(decode_as),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    text = proc.stdout.strip() or "[]"
    out: dict[int, list[dict[str, Any]]] = {}
    for pkt in json.loads(text):
        lay = pkt["_source"]["layers"]
        frame = int(lay["frame"]["frame.number"])
        per_layer = {name: _as_list(lay.get(name)) for name in layers}
        count = max((len(v) for v in per_layer.values()), default=0)
        out[frame] = [
            {name: (v[k] if k < len(v) else {}) for name, v in per_layer.items()}
            for k in range(count)
        ]
    return out


def _as_list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return [value] if isinstance(value, dict) else []


def values(node: Any, name: str) -> list[str]:
    """Every value of field ``name`` below ``node``, in document order."""
    found: list[str] = []

    def walk(n: Any) -> None:
        if isinstance(n, dict):
            for k, v in n.items():
                if k == name:
                    if isinstance(v, list):
                        found.extend(x for x in v if isinstance(x, str))
                    elif isinstance(v, str):
                        found.append(v)
                walk(v)
        elif isinstance(n, list):
            for x in n:
                walk(x)

    walk(node)
    return found


def first(node: Any, name: str) -> str | None:
    v = values(node, name)
    return v[0] if v else None


def as_int(text: str | None) -> int | None:
    if text is None:
        return None
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def field_int(layer: str, name: str) -> Callable[[dict[str, Any]], int | None]:
    """Extractor: tshark's field ``name`` of ``layer`` as an integer (None where absent)."""
    return lambda p: as_int(first(p[layer], name))


def field_present(
    layer: str,
    name: str,
    conv: Callable[[str], Any] = as_int,
    when: Callable[[dict[str, Any]], bool] | None = None,
) -> Callable[[dict[str, Any]], Any]:
    """Extractor compared only where tshark shows the field (it decodes what it can, as
    otsight does) and ``when`` holds for the PDU: ``conv`` of its first value, else SKIP."""

    def get(p: dict[str, Any]) -> Any:
        v = first(p[layer], name)
        return SKIP if v is None or (when is not None and not when(p)) else conv(v)

    return get


@dataclass
class Exceptions:
    """Reviewed differences: (protocol, capture, field) → reason (frames optional)."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls) -> Exceptions:
        data: list[dict[str, Any]] = []
        for path in sorted(EXCEPTIONS_DIR.glob("*.yaml")):
            entries = yaml.safe_load(path.read_text()) or []
            for e in entries:
                assert e.get("reason"), f"{path.name}: exception without a reason: {e}"
                assert e.get("protocol") and e.get("field"), f"{path.name}: incomplete: {e}"
            data += entries
        return cls(data)

    def covers(self, protocol: str, capture: str, fieldname: str, frame: int) -> bool:
        for e in self.entries:
            if e["protocol"] != protocol or e["field"] not in (fieldname, "*"):
                continue
            if e.get("capture") not in (None, "*", capture):
                continue
            frames = e.get("frames")
            if frames is None or frame in frames:
                return True
        return False


@dataclass
class Comparison:
    protocol: str
    exceptions: Exceptions = field(default_factory=Exceptions.load)
    agree: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    differ: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    excepted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[tuple[str, int, str, Any, Any]] = field(default_factory=list)

    def check(self, capture: str, frame: int, name: str, ours: Any, theirs: Any) -> None:
        if ours == theirs:
            self.agree[name] += 1
        elif self.exceptions.covers(self.protocol, capture, name, frame):
            self.excepted[name] += 1
        else:
            self.differ[name] += 1
            if len(self.examples) < 40:
                self.examples.append((capture, frame, name, ours, theirs))

    def join(
        self,
        capture: str,
        ours_by_frame: dict[int, list[dict[str, Any]]],
        theirs_by_frame: dict[int, list[dict[str, Any]]],
        fields: dict[str, Callable[[dict[str, Any]], Any]],
    ) -> None:
        """Compare PDU by PDU. ``fields`` maps a column name to a function of tshark's PDU."""
        for frame in sorted(set(ours_by_frame) | set(theirs_by_frame)):
            ours = ours_by_frame.get(frame, [])
            theirs = theirs_by_frame.get(frame, [])
            self.check(capture, frame, "pdu_count", len(ours), len(theirs))
            for o, t in zip(ours, theirs, strict=False):
                for name, extract in fields.items():
                    expected = extract(t)
                    if expected is _SKIP:
                        continue
                    self.check(capture, frame, name, o.get(name), expected)

    def rates(self) -> dict[str, float]:
        names = set(self.agree) | set(self.differ) | set(self.excepted)
        out = {}
        for n in names:
            total = self.agree[n] + self.differ[n] + self.excepted[n]
            out[n] = (self.agree[n] + self.excepted[n]) / total if total else 1.0
        return out

    def report(self) -> str:
        lines = [
            f"{self.protocol}: field agreement with tshark",
            f"{'field':28} {'agree':>8} {'differ':>7} {'excepted':>8} {'rate':>8}",
        ]
        for n, r in sorted(self.rates().items()):
            lines.append(
                f"{n:28} {self.agree[n]:8d} {self.differ[n]:7d} {self.excepted[n]:8d} "
                f"{100 * r:7.2f}%"
            )
        for ex in self.examples[:15]:
            lines.append(
                f"  differs: {ex[0]} frame {ex[1]} {ex[2]}: otsight={ex[3]!r} tshark={ex[4]!r}"
            )
        return "\n".join(lines)

    def assert_target(self) -> None:
        print(self.report())
        assert self.agree, "nothing was compared"
        low = {n: r for n, r in self.rates().items() if r < TARGET}
        assert not low, f"fields below {TARGET:.1%}: {low}\n{self.report()}"
        assert not any(self.differ.values()), (
            "every remaining difference must be fixed or listed in exceptions/<protocol>.yaml\n"
            + self.report()
        )


class _Skip:
    """Returned by a field extractor when tshark has nothing to compare for this PDU."""


_SKIP = _Skip()
SKIP: Any = _SKIP


def ours_by_frame(table, columns: list[str]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    cols = {c: table.column(c).to_pylist() for c in ["frame", *columns]}
    for k, frame in enumerate(cols["frame"]):
        out[frame].append({c: cols[c][k] for c in columns})
    return out
