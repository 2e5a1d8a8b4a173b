"""The global usage database (``usage.db`` under the nightcrew home).

It holds what outlives one project: the registry of projects nightcrew has run
in, and the usage imported from Claude Code transcripts. Claude Code deletes old
transcripts (after 30 days by default), so the rows imported here are the only
lasting record: rows are never dropped because their file vanished.

Same connection settings as the project store (WAL, ``busy_timeout``,
autocommit with explicit ``BEGIN IMMEDIATE``), because an import and a report
may run at the same time.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

from nightcrew import paths
from nightcrew.core.errors import BadInput
from nightcrew.core.usage import Entry, TokenCounts
from nightcrew.store.migrations import apply as apply_migrations
from nightcrew.store.migrations import run_script

BUSY_TIMEOUT_MS = 10_000
# Page cache per connection, in KiB (SQLite's default is 2 MiB). Responses are keyed by
# random ids, so index inserts land all over a large index; a bigger cache keeps a cold
# import of half a million responses from re-reading index pages.
CACHE_KIB = 32 * 1024
# Page size of a new database (SQLite's default is 4 KiB; an existing database keeps its
# own). An import writes every page it fills to the write-ahead log and then again to the
# database: at 64 KiB a cold import of 1 GB commits and checkpoints in 50 ms, not 120 ms
# (fewer system calls, less bookkeeping per byte). Reports read as fast. Small writes (the
# project registry) write whole pages, which costs nothing that matters here.
PAGE_BYTES = 64 * 1024


def format_ts(moment: datetime) -> str:
    """The one text form of a time in this database: UTC, microseconds, fixed
    width (``2026-11-21T09:39:44.440000+00:00``), so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: give a timezone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _now() -> str:
    return format_ts(datetime.now(UTC))


# ---- schema -------------------------------------------------------------------


def g001_initial(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE projects (
            root TEXT PRIMARY KEY,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        );
        CREATE TABLE transcript_files (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            offset INTEGER NOT NULL,             -- bytes consumed, always at a line boundary
            head_len INTEGER NOT NULL,           -- min(4096, file size when read)
            head_sha TEXT NOT NULL,              -- sha256 of the first head_len bytes
            lines_skipped INTEGER NOT NULL DEFAULT 0,
            imported_at TEXT NOT NULL
        );
        CREATE TABLE transcript_usage (
            id INTEGER PRIMARY KEY,
            file_id INTEGER NOT NULL REFERENCES transcript_files(id),
            message_id TEXT,
            request_id TEXT,
            session_id TEXT,
            project TEXT,
            model TEXT NOT NULL,
            ts TEXT NOT NULL,                    -- UTC, fixed width: see format_ts
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cache_read_tokens INTEGER NOT NULL,
            cache_write_5m_tokens INTEGER NOT NULL,
            cache_write_1h_tokens INTEGER NOT NULL,
            cost_usd TEXT,                       -- Decimal as text, NULL = unknown
            cost_source TEXT,
            sidechain INTEGER NOT NULL,
            UNIQUE (file_id, message_id, request_id)
        );
        CREATE INDEX transcript_usage_ts ON transcript_usage (ts);
        CREATE INDEX transcript_usage_ids ON transcript_usage (message_id, request_id)
        """,
    )


def g002_one_id_index(db: sqlite3.Connection) -> None:
    """Two indexes fewer per imported response (a third of a cold import's write time):
    one unique index on the ids serves both the upsert and the cross-file duplicate probe;
    the time index goes, as a report scans the table (a narrow range too: the scan costs
    milliseconds per 100k rows); a small index on file_id serves per-file counts and the
    delete of a rewritten file."""
    run_script(
        db,
        """
        CREATE TABLE transcript_usage_new (
            id INTEGER PRIMARY KEY,
            file_id INTEGER NOT NULL REFERENCES transcript_files(id),
            message_id TEXT,
            request_id TEXT,
            session_id TEXT,
            project TEXT,
            model TEXT NOT NULL,
            ts TEXT NOT NULL,                    -- UTC, fixed width: see format_ts
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cache_read_tokens INTEGER NOT NULL,
            cache_write_5m_tokens INTEGER NOT NULL,
            cache_write_1h_tokens INTEGER NOT NULL,
            cost_usd TEXT,                       -- Decimal as text, NULL = unknown
            cost_source TEXT,
            sidechain INTEGER NOT NULL,
            UNIQUE (message_id, request_id, file_id)
        );
        INSERT INTO transcript_usage_new SELECT * FROM transcript_usage;
        DROP TABLE transcript_usage;
        ALTER TABLE transcript_usage_new RENAME TO transcript_usage;
        CREATE INDEX transcript_usage_file ON transcript_usage (file_id)
        """,
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [g001_initial, g002_one_id_index]


def open_global(path: Path | None = None) -> sqlite3.Connection:
    """Open (creating if needed) the global usage database and bring its schema
    up to date. A file that is not a usable database is the user's to fix, so it
    is a :class:`BadInput` naming the file."""
    path = path if path is not None else paths.global_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute(f"PRAGMA page_size = {PAGE_BYTES}")  # only a new database takes it
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        apply_migrations(db, MIGRATIONS)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise BadInput(f"{path}: cannot open the global usage database: {exc}") from exc
    return db


# ---- project registry -----------------------------------------------------------


@dataclass(frozen=True)
class ProjectEntry:
    root: Path
    first_seen: datetime
    last_seen: datetime


def register_project(db: sqlite3.Connection, root: Path) -> None:
    """Remember that nightcrew ran in ``root`` (so global reports can find its store)."""
    now = _now()
    db.execute(
        "INSERT INTO projects (root, first_seen, last_seen) VALUES (?, ?, ?) "
        "ON CONFLICT (root) DO UPDATE SET last_seen = excluded.last_seen",
        (os.path.abspath(root), now, now),
    )


def registered_projects(db: sqlite3.Connection) -> list[ProjectEntry]:
    rows = db.execute("SELECT root, first_seen, last_seen FROM projects ORDER BY root")
    return [
        ProjectEntry(Path(row[0]), datetime.fromisoformat(row[1]), datetime.fromisoformat(row[2]))
        for row in rows
    ]


# ---- transcript files and their rows (written by usage.transcripts) ------------------------


class KnownFile(NamedTuple):
    """What an earlier import recorded about one transcript file."""

    id: int
    size: int
    mtime_ns: int
    inode: int
    offset: int
    head_len: int
    head_sha: str
    lines_skipped: int


def known_files(db: sqlite3.Connection) -> dict[str, KnownFile]:
    """Every imported file by path, in one query (a warm import must be cheap)."""
    cursor = db.cursor()
    cursor.row_factory = None
    cursor.execute(
        "SELECT path, id, size, mtime_ns, inode, offset, head_len, head_sha, lines_skipped"
        " FROM transcript_files"
    )
    return {row[0]: KnownFile(*row[1:]) for row in cursor}


def add_file(db: sqlite3.Connection, path: str, state: KnownFile) -> int | None:
    """Record a file seen for the first time, with its state after reading (its ``id`` is
    ignored); return its id, or None if another import recorded it since
    :func:`known_files` was read (that import wins). Opens a write transaction if none is
    open: write the file's rows in it, so they and the state commit together."""
    if not db.in_transaction:
        db.execute("BEGIN IMMEDIATE")
    cursor = db.execute(
        "INSERT INTO transcript_files (path, size, mtime_ns, inode, offset, head_len, head_sha,"
        " lines_skipped, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (path) DO NOTHING",
        (path, *state[1:], _now()),
    )
    return cursor.lastrowid if cursor.rowcount == 1 else None


def begin_file(
    db: sqlite3.Connection, path: str, known: KnownFile | None, *, rewrite: bool,
    undoable: bool,
) -> tuple[int, int] | None:  # fmt: skip
    """Start writing one file's rows: ``(file_id, rows it has)``, creating its row if new
    and dropping its rows if ``rewrite``. None if another import changed the row since
    ``known`` was read (that import wins). Opens a write transaction if none is open and,
    if ``undoable``, a savepoint that :func:`end_file` releases or :func:`undo_file` rolls
    back. A savepoint copies every page it changes first, so a file written in one go
    (whose rows are all known before the first is written) goes without."""
    if not db.in_transaction:
        db.execute("BEGIN IMMEDIATE")
    row = db.execute(
        "SELECT id, offset, head_sha FROM transcript_files WHERE path = ?", (path,)
    ).fetchone()
    if (None if row is None else tuple(row)) != (
        known and (known.id, known.offset, known.head_sha)
    ):
        return None
    if undoable:
        db.execute("SAVEPOINT file")
    if known is None:
        cursor = db.execute(
            "INSERT INTO transcript_files (path, size, mtime_ns, inode, offset, head_len,"
            " head_sha, imported_at) VALUES (?, 0, 0, 0, 0, 0, '', '')",
            (path,),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid, 0
    if rewrite:
        db.execute("DELETE FROM transcript_usage WHERE file_id = ?", (known.id,))
    return known.id, _file_rows(db, known.id)


def end_file(db: sqlite3.Connection, state: KnownFile, *, undoable: bool) -> int:
    """Record how far a file was read, with its rows; return the rows it now has."""
    db.execute(
        "UPDATE transcript_files SET size = ?, mtime_ns = ?, inode = ?, offset = ?, head_len = ?,"
        " head_sha = ?, lines_skipped = ?, imported_at = ? WHERE id = ?",
        (*state[1:], _now(), state.id),
    )
    rows = _file_rows(db, state.id)
    if undoable:
        db.execute("RELEASE file")
    return rows


def undo_file(db: sqlite3.Connection) -> None:
    """Drop what :func:`begin_file` started (the transaction's other files stay)."""
    db.execute("ROLLBACK TO file")
    db.execute("RELEASE file")


def _file_rows(db: sqlite3.Connection, file_id: int) -> int:
    row = db.execute("SELECT count(*) FROM transcript_usage WHERE file_id = ?", (file_id,))
    return int(row.fetchone()[0])


# One row per response: (file_id, message_id, request_id, session_id, project, model, ts,
# input, output, cache_read, cache_write_5m, cache_write_1h, cost_usd, cost_source, sidechain).
# A response already stored for the file is replaced only by a copy with a larger total.
UPSERT_USAGE = """
    INSERT INTO transcript_usage (file_id, message_id, request_id, session_id, project, model,
        ts, input_tokens, output_tokens, cache_read_tokens, cache_write_5m_tokens,
        cache_write_1h_tokens, cost_usd, cost_source, sidechain)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (message_id, request_id, file_id) DO UPDATE SET
        session_id = excluded.session_id, project = excluded.project, model = excluded.model,
        ts = excluded.ts, input_tokens = excluded.input_tokens,
        output_tokens = excluded.output_tokens, cache_read_tokens = excluded.cache_read_tokens,
        cache_write_5m_tokens = excluded.cache_write_5m_tokens,
        cache_write_1h_tokens = excluded.cache_write_1h_tokens, cost_usd = excluded.cost_usd,
        cost_source = excluded.cost_source, sidechain = excluded.sidechain
    WHERE excluded.input_tokens + excluded.output_tokens + excluded.cache_read_tokens
          + excluded.cache_write_5m_tokens + excluded.cache_write_1h_tokens
        > transcript_usage.input_tokens + transcript_usage.output_tokens
          + transcript_usage.cache_read_tokens + transcript_usage.cache_write_5m_tokens
          + transcript_usage.cache_write_1h_tokens
"""


# ---- reading imported usage ----------------------------------------------------------


def _total(t: str) -> str:
    return (
        f"({t}.input_tokens + {t}.output_tokens + {t}.cache_read_tokens"
        f" + {t}.cache_write_5m_tokens + {t}.cache_write_1h_tokens)"
    )


# A response can be in several files (a resumed or forked session copies its history;
# subagent files may repeat the parent's lines). Copies share (message_id, request_id) and
# rank: the main-session copy first, then the larger total, then the first imported. A row
# is kept unless a better-ranked copy exists; rows missing an id are never copies. This
# anti-join is the same as keeping rank 1 of a row_number() window, but it probes the
# unique id index for the rows in range instead of sorting the table, so it is faster on
# a full table and much faster on a narrow time range. The /btw rule (ccusage #913): a
# subagent replay reusing a main-session message id under a new request id repeats that
# response, so it is dropped.
# The responses a report counts (``r``), with the :func:`transcript_bounds` parameters.
KEPT_RESPONSES = f"""
    FROM transcript_usage r
    WHERE r.ts >= :since AND r.ts < :until
      AND NOT EXISTS (
        SELECT 1 FROM transcript_usage d
        WHERE d.message_id = r.message_id AND d.request_id = r.request_id AND d.id <> r.id
          AND (d.sidechain < r.sidechain OR (d.sidechain = r.sidechain
               AND ({_total("d")} > {_total("r")}
                    OR ({_total("d")} = {_total("r")} AND d.id < r.id)))))
      AND NOT (r.sidechain = 1 AND r.request_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM transcript_usage m
        WHERE m.message_id = r.message_id AND m.sidechain = 0
          AND m.request_id IS NOT NULL AND m.request_id <> r.request_id))
"""
_ENTRIES = f"""
    SELECT r.ts, r.model, r.input_tokens, r.output_tokens, r.cache_read_tokens,
           r.cache_write_5m_tokens, r.cache_write_1h_tokens, r.cost_usd, r.cost_source,
           r.session_id, r.project
    {KEPT_RESPONSES}
    ORDER BY r.ts, r.id
"""
_MIN_TS = ""  # sorts before every stored ts
_MAX_TS = "~"  # sorts after every stored ts (digits < '~')


def transcript_bounds(since: datetime | None, until: datetime | None) -> dict[str, str]:
    """The ``since``/``until`` parameters of :data:`KEPT_RESPONSES`."""
    return {
        "since": format_ts(since) if since is not None else _MIN_TS,
        "until": format_ts(until) if until is not None else _MAX_TS,
    }


def transcript_entries(
    db: sqlite3.Connection, since: datetime | None = None, until: datetime | None = None
) -> Iterator[Entry]:
    """Imported transcript usage in time order, each API response once (see
    ``_ENTRIES``). ``since`` is inclusive, ``until`` exclusive; both timezone-aware."""
    bounds = transcript_bounds(since, until)
    cursor = db.cursor()
    cursor.row_factory = None  # plain tuples: this can be half a million rows
    cursor.execute(_ENTRIES, bounds)
    fromiso = datetime.fromisoformat
    for ts, model, inp, out, read, w5m, w1h, cost, source, session, project in cursor:
        yield Entry(
            ts=fromiso(ts),
            model=model,
            tokens=TokenCounts(inp, out, read, w5m, w1h),
            cost_usd=Decimal(cost) if cost is not None else None,
            cost_source=source,
            session=session,
            project=project,
        )
