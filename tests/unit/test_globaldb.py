"""The global usage database: schema, project registry and deduplicated transcript usage,
against real SQLite files in tmp_path."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from nightcrew import paths
from nightcrew.core.errors import BadInput
from nightcrew.core.usage import TokenCounts
from nightcrew.store.migrations import apply as apply_migrations
from nightcrew.usage import globaldb
from nightcrew.usage.globaldb import (
    format_ts,
    open_global,
    register_project,
    registered_projects,
    transcript_entries,
)

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_global(tmp_path / "usage.db")
    yield conn
    conn.close()


def add_file(db: sqlite3.Connection, path: str) -> int:
    cursor = db.execute(
        "INSERT INTO transcript_files (path, size, mtime_ns, inode, offset, head_len, head_sha,"
        " imported_at) VALUES (?, 0, 0, 0, 0, 0, '', '')",
        (path,),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def add_row(
    db: sqlite3.Connection,
    file_id: int,
    message_id: str | None,
    request_id: str | None,
    *,
    at: datetime = T0,
    input_tokens: int = 10,
    sidechain: bool = False,
    cost: str | None = "0.5",
    session: str = "sess-1",
) -> None:
    db.execute(
        globaldb.UPSERT_USAGE,
        (file_id, message_id, request_id, session, "/home/me/proj", "claude-sonnet-4-5",
         format_ts(at), input_tokens, 5, 0, 0, 0, cost, "priced" if cost else None,
         int(sidechain)),
    )  # fmt: skip


def inputs(db: sqlite3.Connection, **window: datetime) -> list[int]:
    return [e.tokens.input for e in transcript_entries(db, **window)]


# ---- opening ------------------------------------------------------------------------------


def test_open_creates_the_file_in_nightcrew_home_with_wal_and_schema() -> None:
    conn = open_global()
    try:
        assert paths.global_db_path().is_file()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
        names = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
        assert names == {m.__name__ for m in globaldb.MIGRATIONS}
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"projects", "transcript_files", "transcript_usage"} <= tables
    finally:
        conn.close()


def test_reopening_applies_no_migration_twice(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "usage.db"
    open_global(path).close()
    conn = open_global(path)
    try:
        applied = conn.execute("SELECT count(*) FROM _migrations").fetchone()[0]
        assert applied == len(globaldb.MIGRATIONS)
    finally:
        conn.close()


def test_rows_imported_before_the_index_change_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    old = sqlite3.connect(path, isolation_level=None)
    apply_migrations(old, [globaldb.g001_initial])
    file_id = add_file(old, "/t/a.jsonl")
    old.execute(
        "INSERT INTO transcript_usage (file_id, message_id, request_id, session_id, project,"
        " model, ts, input_tokens, output_tokens, cache_read_tokens, cache_write_5m_tokens,"
        " cache_write_1h_tokens, cost_usd, cost_source, sidechain)"
        " VALUES (?, 'm1', 'r1', 's', 'p', 'claude-sonnet-4-5', ?, 10, 5, 0, 0, 0, '0.5',"
        " 'priced', 0)",
        (file_id, format_ts(T0)),
    )
    old.close()
    db = open_global(path)
    try:
        assert inputs(db) == [10]
        add_row(db, file_id, "m1", "r1", input_tokens=30)  # the upsert finds the old row
        assert inputs(db) == [30]
        assert db.execute("SELECT count(*) FROM transcript_usage").fetchone()[0] == 1
    finally:
        db.close()


def test_a_new_database_gets_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    new = open_global(tmp_path / "new.db")
    try:
        assert new.execute("PRAGMA page_size").fetchone()[0] == globaldb.PAGE_BYTES
    finally:
        new.close()
    old = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    apply_migrations(old, [globaldb.g001_initial])
    file_id = add_file(old, "/t/a.jsonl")
    old.close()
    db = open_global(tmp_path / "old.db")
    try:
        assert db.execute("PRAGMA page_size").fetchone()[0] == 4096
        add_row(db, file_id, "m1", "r1")
        assert inputs(db) == [10]
    finally:
        db.close()


def test_a_corrupt_file_is_bad_input_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    path.write_bytes(b"this is not a database, just some text " * 200)
    with pytest.raises(BadInput, match=str(path)):
        open_global(path)


def test_times_are_stored_in_one_sortable_form() -> None:
    local = datetime(2026, 11, 21, 10, 39, 44, 440000, tzinfo=timezone(timedelta(hours=1)))
    assert format_ts(local) == "2026-11-21T09:39:44.440000+00:00"
    assert format_ts(datetime(2026, 11, 21, 9, tzinfo=UTC)) == "2026-11-21T09:00:00.000000+00:00"
    with pytest.raises(ValueError, match="naive"):
        format_ts(datetime(2026, 11, 21))


def test_a_file_is_recorded_once_even_by_two_imports(db: sqlite3.Connection) -> None:
    state = globaldb.KnownFile(0, 10, 5, 7, 10, 10, "ab", 1)
    file_id = globaldb.add_file(db, "/t/a.jsonl", state)
    assert file_id is not None and db.in_transaction
    assert globaldb.add_file(db, "/t/a.jsonl", state) is None  # the other import wins
    db.execute("COMMIT")
    known = globaldb.known_files(db)
    assert known == {"/t/a.jsonl": state._replace(id=file_id)}


# ---- project registry ---------------------------------------------------------------------


def test_register_project_keeps_first_seen_and_moves_last_seen(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    register_project(db, tmp_path / "b")
    register_project(db, tmp_path / "a")
    first = {p.root: p for p in registered_projects(db)}
    register_project(db, tmp_path / "b")
    again = registered_projects(db)
    assert [p.root for p in again] == [tmp_path / "a", tmp_path / "b"]
    b = next(p for p in again if p.root == tmp_path / "b")
    assert b.first_seen == first[tmp_path / "b"].first_seen
    assert b.last_seen >= first[tmp_path / "b"].last_seen
    assert b.first_seen.tzinfo is not None


# ---- transcript entries -------------------------------------------------------------------


def test_entries_come_back_in_time_order_as_entries(db: sqlite3.Connection) -> None:
    f = add_file(db, "/t/a.jsonl")
    add_row(db, f, "m2", "r2", at=T0 + timedelta(minutes=5), input_tokens=2, cost=None)
    add_row(db, f, "m1", "r1", at=T0, input_tokens=1)
    entries = list(transcript_entries(db))
    assert [e.tokens.input for e in entries] == [1, 2]
    first = entries[0]
    assert first.ts == T0 and first.ts.tzinfo is not None
    assert first.model == "claude-sonnet-4-5"
    assert first.tokens == TokenCounts(1, 5, 0, 0, 0)
    assert first.cost_usd == Decimal("0.5") and first.cost_source == "priced"
    assert first.session == "sess-1" and first.project == "/home/me/proj"
    assert entries[1].cost_usd is None and entries[1].cost_source is None


def test_a_response_in_two_files_counts_once_preferring_the_main_session(
    db: sqlite3.Connection,
) -> None:
    main, sub = add_file(db, "/t/main.jsonl"), add_file(db, "/t/sub.jsonl")
    add_row(db, sub, "m1", "r1", input_tokens=999, sidechain=True)
    add_row(db, main, "m1", "r1", input_tokens=10)
    assert inputs(db) == [10]


def test_among_equal_copies_the_larger_total_then_the_first_wins(db: sqlite3.Connection) -> None:
    a, b, c = (add_file(db, f"/t/{n}.jsonl") for n in "abc")
    add_row(db, a, "m1", "r1", input_tokens=10)
    add_row(db, b, "m1", "r1", input_tokens=30)
    add_row(db, c, "m1", "r1", input_tokens=30, session="later")
    entries = list(transcript_entries(db))
    assert [(e.tokens.input, e.session) for e in entries] == [(30, "sess-1")]


def test_rows_missing_an_id_are_never_merged(db: sqlite3.Connection) -> None:
    a, b = add_file(db, "/t/a.jsonl"), add_file(db, "/t/b.jsonl")
    add_row(db, a, "m1", None, input_tokens=1)
    add_row(db, b, "m1", None, input_tokens=2)
    add_row(db, a, None, "r1", input_tokens=3)
    add_row(db, b, None, "r1", input_tokens=4)
    assert sorted(inputs(db)) == [1, 2, 3, 4]


def test_btw_replay_in_a_subagent_is_dropped(db: sqlite3.Connection) -> None:
    main, sub = add_file(db, "/t/main.jsonl"), add_file(db, "/t/sub.jsonl")
    add_row(db, main, "m1", "r1", input_tokens=10)
    add_row(db, sub, "m1", "r2", input_tokens=20, sidechain=True)  # the replay
    add_row(db, sub, "m2", "r3", input_tokens=30, sidechain=True)  # its own response
    add_row(db, main, "m1", "r4", input_tokens=40)  # main-session rows are never dropped
    assert inputs(db) == [10, 30, 40]


def test_since_is_inclusive_and_until_exclusive(db: sqlite3.Connection) -> None:
    f = add_file(db, "/t/a.jsonl")
    for i in range(4):
        add_row(db, f, f"m{i}", f"r{i}", at=T0 + timedelta(hours=i), input_tokens=i)
    one, three = T0 + timedelta(hours=1), T0 + timedelta(hours=3)
    assert inputs(db, since=one) == [1, 2, 3]
    assert inputs(db, until=three) == [0, 1, 2]
    assert inputs(db, since=one, until=three) == [1, 2]
    # bounds in another zone mean the same instants
    cet = timezone(timedelta(hours=1))
    assert inputs(db, since=one.astimezone(cet), until=three.astimezone(cet)) == [1, 2]


def test_a_window_hides_a_copy_whose_better_copy_lies_outside(db: sqlite3.Connection) -> None:
    a, b = add_file(db, "/t/a.jsonl"), add_file(db, "/t/b.jsonl")
    add_row(db, a, "m1", "r1", at=T0, input_tokens=50)
    add_row(db, b, "m1", "r1", at=T0 + timedelta(days=2), input_tokens=5)
    add_row(db, b, "m2", "r2", at=T0 + timedelta(days=2), input_tokens=7)
    assert inputs(db, since=T0 + timedelta(days=1)) == [7]
    assert inputs(db, until=T0 + timedelta(days=1)) == [50]
    assert inputs(db) == [50, 7]
