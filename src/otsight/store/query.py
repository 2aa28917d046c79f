"""Hunting SQL over an output folder: DuckDB with one view per event table.

Parquet datasets become views directly; the small SQLite state tables are copied in, so one
query can join events with what was analysed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from otsight.store.state import FILENAME


class QueryError(ValueError):
    """The folder or the SQL cannot be used (exit code 2 at the CLI)."""


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    root = Path(root)
    if not root.is_dir():
        raise QueryError(f"{root}: no such output folder (run `otsight analyze --out {root}`)")
    con = duckdb.connect()
    found = False
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.parquet"))
        if not files:
            continue
        found = True
        pattern = str(folder / "*.parquet").replace("'", "''")
        con.execute(f"CREATE VIEW \"{folder.name}\" AS SELECT * FROM read_parquet('{pattern}')")
    state = root / FILENAME
    if state.exists():
        found = True
        src = sqlite3.connect(state)
        for (name,) in src.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        ):
            cur = src.execute(f'SELECT * FROM "{name}"')
            cols = [d[0] for d in cur.description]
            rows = cur.fetchall()
            table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})
            con.register(f"_state_{name}", table)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM "_state_{name}"')
            con.unregister(f"_state_{name}")
        src.close()
    if not found:
        raise QueryError(f"{root}: no otsight tables here (run `otsight analyze --out {root}`)")
    return con


def run_query(root: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    con = connect(root)
    try:
        cur = con.execute(sql)
    except duckdb.Error as exc:
        raise QueryError(f"SQL error: {str(exc).splitlines()[0]}") from None
    if cur.description is None:
        return [], []
    cols = [d[0] for d in cur.description]
    return cols, cur.fetchall()
