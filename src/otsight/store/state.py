"""State database (SQLite): what was analysed, when, and what went wrong with the input.

Later capabilities (assets, alerts, incidents, approvals, audit) add their tables here.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

FILENAME = "state.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    otsight_version TEXT NOT NULL,
    command TEXT NOT NULL,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS captures (
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    capture TEXT NOT NULL,
    path TEXT NOT NULL,
    format TEXT,
    compressed INTEGER,
    packets INTEGER,
    bytes INTEGER,
    linktypes TEXT,
    first_ts REAL,
    last_ts REAL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS capture_issues (
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    capture TEXT NOT NULL,
    severity TEXT NOT NULL,
    byte_offset INTEGER,
    message TEXT NOT NULL
);
"""


class StateDB:
    def __init__(self, root: Path) -> None:
        self.path = Path(root) / FILENAME
        self.conn = sqlite3.connect(self.path)
        self.conn.executescript(_SCHEMA)

    def start_run(self, version: str, command: str) -> int:
        cur = self.conn.execute(
            "INSERT INTO runs (started, otsight_version, command) VALUES (?, ?, ?)",
            (time.time(), version, command),
        )
        self.conn.commit()
        return int(cur.lastrowid or 0)

    def add_capture(self, run_id: int, info: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO captures VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                info["capture"],
                info["path"],
                info.get("format"),
                int(bool(info.get("compressed"))),
                info.get("packets"),
                info.get("bytes"),
                json.dumps(info.get("linktypes", [])),
                info.get("first_ts"),
                info.get("last_ts"),
                info.get("status", "ok"),
            ),
        )
        for issue in info.get("issues", []):
            self.conn.execute(
                "INSERT INTO capture_issues VALUES (?,?,?,?,?)",
                (run_id, info["capture"], issue["severity"], issue.get("offset"), issue["message"]),
            )

    def finish_run(self, run_id: int, summary: dict[str, Any]) -> None:
        self.conn.execute(
            "UPDATE runs SET finished = ?, summary = ? WHERE run_id = ?",
            (time.time(), json.dumps(summary, default=str), run_id),
        )
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()
