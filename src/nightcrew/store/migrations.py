"""Schema migrations: named, ordered functions, each recorded in ``_migrations``
when applied. Add a new ``mNNN_…`` function at the end; never edit an applied
one."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime


def run_script(db: sqlite3.Connection, sql: str) -> None:
    """Run several statements inside the caller's transaction (executescript
    would commit it first). Statements are split on ';', so no comment may hold one."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def m001_initial(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,                 -- plan | backlog
            source_path TEXT NOT NULL,          -- plan file, relative to the project root
            source_sha256 TEXT NOT NULL,
            config_json TEXT NOT NULL,
            state TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            prefix_sha256 TEXT,
            orchestrator_pid INTEGER,
            message TEXT
        );
        CREATE TABLE work_items (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            key TEXT NOT NULL,                  -- plan: the batch number
            number INTEGER,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            body_sha256 TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            commit_sha TEXT,
            message TEXT,
            UNIQUE (run_id, key)
        );
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            item_id INTEGER NOT NULL REFERENCES work_items(id),
            number INTEGER NOT NULL,
            backend TEXT NOT NULL,
            model TEXT,                         -- the model asked for
            models_json TEXT,                   -- models that answered
            session_id TEXT,
            prefix_sha256 TEXT NOT NULL,
            prompt_sha256 TEXT NOT NULL,
            base_sha TEXT,
            commit_sha TEXT,
            state TEXT NOT NULL,
            exit_reason TEXT,
            result_subtype TEXT,
            is_error INTEGER,
            tool_calls INTEGER NOT NULL DEFAULT 0,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            agent_seconds REAL,
            gate_seconds REAL,
            cost_usd TEXT,                      -- Decimal as text, NULL = unknown
            cost_source TEXT,
            agent_pid INTEGER,
            agent_create_time REAL,
            evidence_dir TEXT,
            digest TEXT,
            signature TEXT,
            last_text TEXT,
            UNIQUE (item_id, number)
        );
        CREATE TABLE usage_records (
            id INTEGER PRIMARY KEY,
            attempt_id INTEGER NOT NULL REFERENCES attempts(id),
            kind TEXT NOT NULL,                 -- response (live) | final (per model, reported)
            message_id TEXT,
            request_id TEXT,
            model TEXT NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cache_read_tokens INTEGER NOT NULL,
            cache_write_5m_tokens INTEGER NOT NULL,
            cache_write_1h_tokens INTEGER NOT NULL,
            cost_usd TEXT,
            cost_source TEXT,
            UNIQUE (attempt_id, kind, message_id, model)
        );
        CREATE TABLE gate_results (
            id INTEGER PRIMARY KEY,
            attempt_id INTEGER NOT NULL REFERENCES attempts(id),
            name TEXT NOT NULL,
            command TEXT,
            passed INTEGER NOT NULL,
            duration_s REAL NOT NULL,
            exit_code INTEGER,
            timed_out INTEGER NOT NULL,
            tests_passed INTEGER,
            tests_failed INTEGER,
            failed_ids_json TEXT,
            regressions_json TEXT,
            output_path TEXT,
            digest TEXT NOT NULL
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            run_id TEXT NOT NULL,
            attempt_id INTEGER,
            kind TEXT NOT NULL,
            payload_json TEXT NOT NULL
        );
        CREATE TABLE state_history (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            entity TEXT NOT NULL,               -- run | item | attempt
            entity_id TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT NOT NULL,
            reason TEXT
        );
        CREATE INDEX ix_items_run ON work_items(run_id);
        CREATE INDEX ix_attempts_item ON attempts(item_id);
        CREATE INDEX ix_attempts_run ON attempts(run_id);
        CREATE INDEX ix_usage_attempt ON usage_records(attempt_id);
        CREATE INDEX ix_events_run ON events(run_id, id);
        CREATE INDEX ix_runs_started ON runs(started_at);
        """,
    )


def m002_usage_time(db: sqlite3.Connection) -> None:
    """Usage records get the time they were made, so reports can add them up by
    day, week and month. Older records take their attempt's finish (or start)."""
    run_script(
        db,
        """
        ALTER TABLE usage_records ADD COLUMN ts TEXT;
        UPDATE usage_records SET ts = (
            SELECT COALESCE(a.finished_at, a.started_at) FROM attempts a
            WHERE a.id = usage_records.attempt_id
        );
        CREATE INDEX ix_usage_ts ON usage_records(ts);
        """,
    )


def m003_backlog(db: sqlite3.Connection) -> None:
    """The backlog: features that outlive any one run, their dependencies, the agents'
    claims that a feature passes (recorded, then judged by the harness), and a record
    per feature that was given up on. A build's work item points at its feature."""
    run_script(
        db,
        """
        CREATE TABLE features (
            id INTEGER PRIMARY KEY,
            category TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            steps_json TEXT NOT NULL,
            acceptance_json TEXT NOT NULL,      -- shell commands that exit 0 when it works
            manual INTEGER NOT NULL,            -- checked by a person: build never picks it
            files_json TEXT NOT NULL,           -- likely files, for conflict advice
            priority INTEGER NOT NULL,          -- lower runs sooner
            position INTEGER NOT NULL,          -- backlog order (reorder, skip)
            state TEXT NOT NULL,
            model TEXT,                         -- model for the next attempt (retry --model)
            attempts INTEGER NOT NULL DEFAULT 0,
            input_request TEXT,
            input_answer TEXT,
            source_key TEXT,                    -- its id in the file it was imported from
            claimed_by TEXT,                    -- run id or mcp:<pid> while in progress
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE feature_deps (
            feature_id INTEGER NOT NULL REFERENCES features(id),
            depends_on INTEGER NOT NULL REFERENCES features(id),
            PRIMARY KEY (feature_id, depends_on)
        ) WITHOUT ROWID;
        CREATE TABLE feature_claims (
            id INTEGER PRIMARY KEY,
            feature_id INTEGER NOT NULL REFERENCES features(id),
            ts TEXT NOT NULL,
            source TEXT NOT NULL,               -- agent | mcp | import
            attempt_id INTEGER,
            note TEXT,
            verdict TEXT                        -- NULL until judged: confirmed | refuted
        );
        CREATE TABLE feature_failures (
            id INTEGER PRIMARY KEY,
            feature_id INTEGER NOT NULL REFERENCES features(id),
            run_id TEXT,
            ts TEXT NOT NULL,
            reason TEXT NOT NULL,
            attempts_json TEXT NOT NULL,        -- [{number, model, state, digest, cost_usd}]
            cost_usd TEXT,
            last_text TEXT
        );
        ALTER TABLE work_items ADD COLUMN feature_id INTEGER REFERENCES features(id);
        CREATE INDEX ix_features_state ON features(state);
        CREATE INDEX ix_feature_deps_on ON feature_deps(depends_on);
        CREATE INDEX ix_claims_feature ON feature_claims(feature_id);
        CREATE INDEX ix_failures_feature ON feature_failures(feature_id);
        CREATE INDEX ix_items_feature ON work_items(feature_id)
        """,
    )


def m004_item_window(db: sqlite3.Connection) -> None:
    """A build's work item counts its feature's attempts from ``window_start``:
    a feature a person sends back (``backlog retry``) starts a fresh count and a
    fresh model ladder, while a crash and ``--resume`` keep counting."""
    run_script(
        db,
        "ALTER TABLE work_items ADD COLUMN window_start INTEGER NOT NULL DEFAULT 1",
    )


def m006_tool_denials(db: sqlite3.Connection) -> None:
    """How many of an attempt's tool calls the harness's tool policy refused."""
    run_script(db, "ALTER TABLE attempts ADD COLUMN tool_denials INTEGER NOT NULL DEFAULT 0")


def m007_attempt_files(db: sqlite3.Connection) -> None:
    """The files an attempt changed, as a JSON list, so a build running lanes
    side by side keeps apart features whose earlier attempts touched the same
    files. NULL: not known (attempts made before this, or git failed)."""
    run_script(db, "ALTER TABLE attempts ADD COLUMN files_json TEXT")


def m008_attempt_lane(db: sqlite3.Connection) -> None:
    """The lane an attempt ran on (1.. in a parallel build), so ``status`` can
    say what each lane is doing from the store alone, while the build runs in
    another process. NULL: one lane working in place, or made before this."""
    run_script(db, "ALTER TABLE attempts ADD COLUMN lane INTEGER")


def m009_control_requests(db: sqlite3.Connection) -> None:
    """A person's requests to the run in progress (pause, resume, stop, stop
    now), made from another process (``nightcrew pause``, later the
    dashboard) and answered by the running run, which polls for them. A
    request is addressed to one run *and* its orchestrator's pid, so a
    request nobody answered (the run ended first) is never taken by a later
    ``--resume`` of the same run."""
    run_script(
        db,
        """
        CREATE TABLE control_requests (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            pid INTEGER NOT NULL,               -- the orchestrator it is addressed to
            action TEXT NOT NULL,               -- pause | resume | stop | stop_now
            requested_at TEXT NOT NULL,
            requested_by TEXT NOT NULL,         -- who: the user's name
            origin TEXT NOT NULL,               -- where from: cli (pid N), dashboard …
            answered_at TEXT,                   -- NULL until the run took it
            answer TEXT                         -- what the run did with it
        );
        CREATE INDEX ix_control_open ON control_requests(run_id, pid, answered_at)
        """,
    )


def m010_review_comments(db: sqlite3.Connection) -> None:
    """A person's comments on lines of an attempt's diff (the dashboard's
    Review, ``nightcrew backlog review``). ``sent_at`` stays NULL while the
    comment is a draft; sending stamps every draft of the feature with one
    time and retries the feature, whose next prompt carries that batch."""
    run_script(
        db,
        """
        CREATE TABLE review_comments (
            id INTEGER PRIMARY KEY,
            feature_id INTEGER NOT NULL REFERENCES features(id),
            attempt_id INTEGER NOT NULL REFERENCES attempts(id),
            file TEXT NOT NULL,                 -- the path as the diff names it
            line INTEGER NOT NULL,              -- in the attempt's version of the file
            text TEXT NOT NULL,
            created_at TEXT NOT NULL,
            sent_at TEXT                        -- NULL: a draft, not sent yet
        );
        CREATE INDEX ix_review_feature ON review_comments(feature_id, sent_at)
        """,
    )


def m011_dashboard_reads(db: sqlite3.Connection) -> None:
    """What the dashboard reads on every render, made cheap
    (``bench/dashboard.py``): each lane's latest attempt of a run from an
    index alone (3 ms instead of 17 ms for a run of 20,000 attempts); each
    item's cost in a run summed from an index in item order (no table reads,
    no sort: half the time); and a
    counter of the changes to final usage records made in place (an upsert
    of the same message, a delete), which record ids do not show, so that
    ``views/spend_cache.py`` knows when the sums it keeps are stale."""
    run_script(
        db,
        """
        CREATE INDEX ix_attempts_run_lane ON attempts(run_id, lane);
        CREATE INDEX ix_attempts_run_costs
            ON attempts(run_id, item_id, state, finished_at, cost_usd);
        CREATE TABLE usage_edits (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            n INTEGER NOT NULL                  -- changes in place of final records so far
        );
        INSERT INTO usage_edits (id, n) VALUES (1, 0)
        """,
    )
    count = "BEGIN UPDATE usage_edits SET n = n + 1 WHERE id = 1; END"  # one statement each
    db.execute(
        "CREATE TRIGGER usage_final_updated AFTER UPDATE ON usage_records"
        f" WHEN OLD.kind = 'final' OR NEW.kind = 'final' {count}"
    )
    db.execute(
        f"CREATE TRIGGER usage_final_deleted AFTER DELETE ON usage_records"
        f" WHEN OLD.kind = 'final' {count}"
    )


# The event kinds a feature's page shows as its decisions (views/work_page.py
# names them in its query word for word, so SQLite uses m012's partial index).
DECISION_KINDS = ("decision", "item_passed", "item_failed", "item_skipped", "question_asked")
# The tables whose rows the dashboard's kept reads (views/read_cache.py) come
# from, apart from usage records (their ids and m011's usage_edits say it).
MARKED_TABLES = ("features", "feature_deps", "attempts")


def m012_dashboard_marks(db: sqlite3.Connection) -> None:
    """What the rest of the dashboard's pages read, made cheap
    (``bench/dashboard.py``): counters that every change to the backlog, its
    dependencies or the attempts bumps, and every usage
    record changed in place or deleted (triggers; one row, so a page knows in
    one read whether what it kept is stale: ``views/read_cache.py``); the
    gate results of an attempt from an index (a feature's page read the whole
    table once per attempt); and the decision events a feature's page lists
    from two partial indexes over only those kinds, by the feature or the
    item they name (it read every event: 80 ms on 130,000, now 0.1 ms)."""
    kinds = ", ".join(f"'{k}'" for k in DECISION_KINDS)
    run_script(
        db,
        f"""
        CREATE TABLE read_marks (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            work INTEGER NOT NULL,              -- changes to the marked tables so far
            usage INTEGER NOT NULL              -- usage records changed in place or deleted
        );
        INSERT INTO read_marks (id, work, usage) VALUES (1, 0, 0);
        CREATE INDEX ix_gates_attempt ON gate_results(attempt_id);
        CREATE INDEX ix_events_decision_feature
            ON events(json_extract(payload_json, '$.feature')) WHERE kind IN ({kinds});
        CREATE INDEX ix_events_decision_item
            ON events(json_extract(payload_json, '$.item')) WHERE kind IN ({kinds})
        """,
    )
    for table in MARKED_TABLES:
        for change in ("INSERT", "UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER {table}_{change.lower()}_marked AFTER {change} ON {table}"
                " BEGIN UPDATE read_marks SET work = work + 1 WHERE id = 1; END"
            )
    # new records show by their ids; a response's newer numbers replace its
    # row in place (record_usage's upsert), which only a trigger sees
    for change in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER usage_{change.lower()}_marked AFTER {change} ON usage_records"
            " BEGIN UPDATE read_marks SET usage = usage + 1 WHERE id = 1; END"
        )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    m001_initial,
    m002_usage_time,
    m003_backlog,
    m004_item_window,
    m006_tool_denials,
    m007_attempt_files,
    m008_attempt_lane,
    m009_control_requests,
    m010_review_comments,
    m011_dashboard_reads,
    m012_dashboard_marks,
]


def apply(
    db: sqlite3.Connection,
    migrations: Sequence[Callable[[sqlite3.Connection], None]] = MIGRATIONS,
) -> list[str]:
    """Apply every migration not yet recorded; return the names applied. Also
    used for the global usage database, with its own list."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    applied = []
    for migration in migrations:
        name = migration.__name__
        if name in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied it while we waited for the lock.
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                db.execute("ROLLBACK")
                continue
            migration(db)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(UTC).isoformat()),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        applied.append(name)
    return applied
