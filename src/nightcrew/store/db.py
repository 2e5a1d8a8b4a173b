"""The project's SQLite file: ``.nightcrew/nightcrew.db``.

WAL mode so readers (``nightcrew status``, the dashboard) never block the run;
``busy_timeout`` so a reader's brief lock is waited out instead of failing.
One process writes during a run (it holds the project lock), through one
connection, one thread.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from nightcrew.core.errors import BadInput
from nightcrew.statedir import make_state_dir
from nightcrew.store import migrations

BUSY_TIMEOUT_MS = 10_000


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    if not create and not path.exists():
        raise BadInput(f"{path}: no nightcrew store here (has nightcrew run in this project?)")
    make_state_dir(path.parent)
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        migrations.apply(db)
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"{path}: cannot open the nightcrew store: {exc}") from exc
    return db
