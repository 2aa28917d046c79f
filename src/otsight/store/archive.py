"""Event archive: one Parquet dataset (a folder) per event table.

Batches are appended as row groups as they arrive, so memory stays flat however long the
capture. Every table named in ``events.TABLES`` that the run produces gets a file, even an
empty one, so queries never fail on a missing table.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from otsight import events

PART = "part-0.parquet"


class Archive:
    def __init__(self, root: Path, tables: list[str]) -> None:
        self.root = Path(root)
        self.tables = tables
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = {t: 0 for t in tables}
        self.root.mkdir(parents=True, exist_ok=True)
        for name in events.TABLES:  # a previous run's tables would mix with this one's
            folder = self.root / name
            if folder.is_dir():
                shutil.rmtree(folder)

    def write(self, table: str, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        writer = self._writers.get(table)
        if writer is None:
            folder = self.root / table
            folder.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(folder / PART, events.TABLES[table], compression="zstd")
            self._writers[table] = writer
        writer.write_batch(batch)
        self.rows[table] += batch.num_rows

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        for name in self.tables:
            if name not in self._writers:
                folder = self.root / name
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(events.TABLES[name].empty_table(), folder / PART)
        self._writers.clear()
