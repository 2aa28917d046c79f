"""The event archive writes the same files whether it writes on its own thread or in line
(one usable core), keeps statistics where queries filter, and reports a failed write."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from otsight.store import archive as A

SCHEMA = pa.schema(
    [
        ("frame", pa.int64()),
        ("ts", pa.timestamp("ns", tz="UTC")),
        ("name", pa.dictionary(pa.int32(), pa.string())),
        ("value", pa.int32()),
    ]
)


def _batches():
    for k in range(3):
        frames = list(range(k * 100 + 1, k * 100 + 101))
        yield pa.RecordBatch.from_pydict(
            {
                "frame": frames,
                "ts": pa.array([f * 1000 for f in frames], pa.timestamp("ns", tz="UTC")),
                "name": pa.array([f"n{f % 7}" for f in frames]).dictionary_encode(),
                "value": pa.array([None if f % 5 == 0 else f for f in frames], pa.int32()),
            },
            schema=SCHEMA,
        )


@pytest.mark.parametrize("cores", [1, 2])
def test_archive_round_trip_in_line_and_threaded(tmp_path, monkeypatch, cores):
    monkeypatch.setattr(A, "_usable_cores", lambda: cores)
    arc = A.Archive(tmp_path, {"events": SCHEMA, "other": SCHEMA})
    assert arc._inline == (cores == 1)
    for b in _batches():
        arc.write("events", b)
    arc.close()
    got = pq.read_table(tmp_path / "events" / A.PART)
    want = pa.Table.from_batches(list(_batches()))
    assert got.num_rows == 300 == arc.rows["events"]
    assert got.column("frame").to_pylist() == want.column("frame").to_pylist()
    assert got.column("name").to_pylist() == want.column("name").to_pylist()
    assert got.column("value").to_pylist() == want.column("value").to_pylist()
    # an empty file for a table nothing was written to, so queries never miss a table
    assert pq.read_table(tmp_path / "other" / A.PART).num_rows == 0
    meta = pq.ParquetFile(tmp_path / "events" / A.PART).metadata
    first = meta.row_group(0)
    names = [first.column(i).path_in_schema for i in range(first.num_columns)]
    stats = {n: first.column(i).is_stats_set for i, n in enumerate(names)}
    assert stats["frame"] and stats["ts"]  # min/max where queries filter
    assert not stats["value"]
    assert first.column(names.index("frame")).statistics.min == 1


@pytest.mark.parametrize("cores", [1, 2])
def test_a_failed_write_is_reported(tmp_path, monkeypatch, cores):
    monkeypatch.setattr(A, "_usable_cores", lambda: cores)
    arc = A.Archive(tmp_path, {"events": SCHEMA})
    wrong = pa.RecordBatch.from_pydict({"frame": [1]})  # not the table's schema
    with pytest.raises(RuntimeError, match="writing the event archive failed"):
        arc.write("events", wrong)
        arc.close()  # the thread reports at the next write or at close
