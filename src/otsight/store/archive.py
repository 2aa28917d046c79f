"""Event archive: one Parquet dataset (a folder) per event table.

Batches are appended as row groups as they arrive, so memory stays flat however long the
capture. Every table named in ``events.TABLES`` that the run produces gets a file, even an
empty one, so queries never fail on a missing table.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from otsight import events

PART = "part-0.parquet"
_STATISTICS = ("frame", "ts", "flow_id", "last_ts")
# Batches of a table are gathered until a row group holds this many rows: a row group
# costs a few hundred microseconds whatever its size (metadata, a dictionary page per
# column), and the small tables (weird, flows, ARP...) arrive a few rows per chunk.
ROW_GROUP_ROWS = 1 << 16


class Archive:
    """Writes batches on a background thread: compression and file I/O then overlap with
    decoding on the other core. The queue is bounded so memory stays flat."""

    def __init__(self, root: Path, schemas: dict[str, pa.Schema]) -> None:
        self.root = Path(root)
        self.schemas = schemas
        self.tables = list(schemas)
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._pending: dict[str, list[pa.RecordBatch]] = {}  # gathered for one row group
        self._pending_rows: dict[str, int] = {}
        self.rows: dict[str, int] = {t: 0 for t in self.tables}
        self._queue: queue.Queue = queue.Queue(maxsize=16)
        self._error: BaseException | None = None
        # With one core the thread could only take turns with the decoder (and pay for the
        # switching): write in line instead.
        self._inline = _usable_cores() < 2
        self._thread = threading.Thread(target=self._drain, name="otsight-archive", daemon=True)
        self.root.mkdir(parents=True, exist_ok=True)
        for name in set(events.TABLES) | set(schemas):  # an old run's tables would mix in
            folder = self.root / name
            if folder.is_dir():
                shutil.rmtree(folder)
        if not self._inline:
            self._thread.start()

    def write(self, table: str, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        if self._error is not None:
            raise RuntimeError(f"writing the event archive failed: {self._error}")
        self.rows[table] += batch.num_rows
        if self._inline:
            try:
                self._write(table, batch)
            except Exception as exc:  # the same report as from the writer thread
                self._error = exc
                raise RuntimeError(f"writing the event archive failed: {exc}") from exc
            return
        self._queue.put((table, batch))

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as exc:  # reported on the caller's thread
                    self._error = exc

    def _write(self, table: str, batch: pa.RecordBatch) -> None:
        self._pending.setdefault(table, []).append(batch)
        rows = self._pending_rows[table] = self._pending_rows.get(table, 0) + batch.num_rows
        if rows >= ROW_GROUP_ROWS:
            self._flush(table)

    def _flush(self, table: str) -> None:
        batches = self._pending.pop(table, [])
        self._pending_rows.pop(table, None)
        if not batches:
            return
        writer = self._writer(table)
        writer.write_table(pa.Table.from_batches(batches, schema=self.schemas[table]))

    def _writer(self, table: str) -> pq.ParquetWriter:
        writer = self._writers.get(table)
        if writer is None:
            folder = self.root / table
            folder.mkdir(parents=True, exist_ok=True)
            schema = self.schemas[table]
            # Dictionary-encode only the columns that are dictionaries already: doing it for
            # every integer column triples the cost of writing for no gain in size.
            dict_cols = [f.name for f in schema if pa.types.is_dictionary(f.type)]
            # Min/max statistics only where queries filter (frame, time, flow): computing
            # them for every column costs a fifth of the writing. zstd level 1 compresses
            # these columns as well as the default level 3 (within 2%), faster.
            stats = [c for c in _STATISTICS if c in schema.names]
            writer = pq.ParquetWriter(
                folder / PART,
                schema,
                compression="zstd",
                compression_level=1,
                use_dictionary=dict_cols,
                write_statistics=stats,
            )
            self._writers[table] = writer
        return writer

    def close(self) -> None:
        if not self._inline:
            self._queue.put(None)
            self._thread.join()
        if self._error is None:
            try:
                for table in list(self._pending):
                    self._flush(table)
            except Exception as exc:  # the same report as from the writer thread
                self._error = exc
        for writer in self._writers.values():
            writer.close()
        for name in self.tables:
            if name not in self._writers:
                folder = self.root / name
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(self.schemas[name].empty_table(), folder / PART)
        self._writers.clear()
        if self._error is not None:
            raise RuntimeError(f"writing the event archive failed: {self._error}")


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
