"""The project's SQLite store, against real database files in tmp_path."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from nightcrew.core.errors import BadInput, IllegalTransition
from nightcrew.core.states import AttemptState, ItemState, RunState
from nightcrew.core.usage import TokenCounts
from nightcrew.store import migrations
from nightcrew.store.records import Store
from tests.unit.store_rows import new_attempt, new_item, new_run

TABLES = {
    "_migrations",
    "runs",
    "work_items",
    "attempts",
    "usage_records",
    "gate_results",
    "events",
    "state_history",
    "features",
    "feature_deps",
    "feature_claims",
    "feature_failures",
    "control_requests",
    "review_comments",
    "usage_edits",
    "read_marks",
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / ".nightcrew" / "nightcrew.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store.open(db_path)
    yield opened
    opened.close()


def tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# ---- opening and migrations ---------------------------------------------------


def test_migrations_from_a_blank_db_create_every_table(db_path: Path) -> None:
    assert not db_path.exists()
    store = Store.open(db_path)
    try:
        assert db_path.is_file()
        assert tables(store.db) == TABLES
        names = [r[0] for r in store.db.execute("SELECT name FROM _migrations")]
        assert names == [m.__name__ for m in migrations.MIGRATIONS]
    finally:
        store.close()


def test_opening_again_applies_nothing_new(db_path: Path) -> None:
    first = Store.open(db_path)
    run_id = new_run(first).id
    first.close()

    second = Store.open(db_path)
    try:
        assert migrations.apply(second.db) == []
        count = second.db.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0]
        assert count == len(migrations.MIGRATIONS)
        assert second.run(run_id).state == RunState.PENDING  # data kept
    finally:
        second.close()


def test_apply_on_a_bare_connection_applies_each_migration_once(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "bare.db", isolation_level=None)
    try:
        assert migrations.apply(db) == [m.__name__ for m in migrations.MIGRATIONS]
        assert migrations.apply(db) == []
        assert tables(db) == TABLES
    finally:
        db.close()


def test_usage_recorded_before_m002_takes_its_attempts_time(tmp_path: Path) -> None:
    """A store made by the previous release keeps its usage, now dated."""
    db = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    try:
        db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        migrations.m001_initial(db)
        db.execute("INSERT INTO _migrations VALUES ('m001_initial', 'then')")
        db.execute(
            "INSERT INTO runs VALUES ('r1','plan','p.md','x','{}','failed',"
            "'2026-11-01T10:00:00+00:00',NULL,NULL,NULL,NULL)"
        )
        db.execute("INSERT INTO work_items VALUES (1,'r1','1',1,'t','b','s','failed',1,NULL,NULL)")
        db.execute(
            "INSERT INTO attempts (id, run_id, item_id, number, backend, prefix_sha256,"
            " prompt_sha256, state, started_at, finished_at) VALUES"
            " (1,'r1',1,1,'claude','p','q','failed','2026-11-01T10:00:00+00:00',"
            " '2026-11-01T10:05:00+00:00')"
        )
        db.execute(
            "INSERT INTO usage_records (attempt_id, kind, message_id, model, input_tokens,"
            " output_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens)"
            " VALUES (1, 'final', '', 'm', 1, 2, 3, 4, 5)"
        )
        assert migrations.apply(db) == [m.__name__ for m in migrations.MIGRATIONS[1:]]
        row = db.execute("SELECT ts, input_tokens FROM usage_records").fetchone()
        assert row == ("2026-11-01T10:05:00+00:00", 1)
        # an old run's item counts its attempts from the first
        assert db.execute("SELECT window_start, feature_id FROM work_items").fetchone() == (1, None)
    finally:
        db.close()


def test_wal_mode_is_on(store: Store, db_path: Path) -> None:
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # a second connection sees the mode too: it is stored in the file
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_a_reader_sees_committed_rows_while_the_writer_stays_open(
    store: Store, db_path: Path
) -> None:
    run = new_run(store)
    reader = Store.open(db_path)
    try:
        assert reader.run(run.id).source_path == "PLAN.md"
    finally:
        reader.close()


def test_corrupt_db_file_is_bad_input_naming_the_path(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not an sqlite database, just some text\n" * 200)
    with pytest.raises(BadInput) as raised:
        Store.open(db_path)
    assert str(db_path) in str(raised.value)
    assert "cannot open the nightcrew store" in str(raised.value)
    assert raised.value.exit_code == 2


def test_missing_db_without_create_is_bad_input(db_path: Path) -> None:
    with pytest.raises(BadInput) as raised:
        Store.open(db_path, create=False)
    assert str(db_path) in str(raised.value)
    assert not db_path.exists()


# ---- round trips ----------------------------------------------------------------


def test_run_item_attempt_round_trip(store: Store) -> None:
    run = new_run(store)
    assert run.kind == "plan"
    assert run.source_path == "PLAN.md"
    assert run.config == {"model": "sonnet", "max_retries": 2}
    assert run.state == RunState.PENDING
    assert run.finished_at is None
    assert run.orchestrator_pid == 4242
    assert run.prefix_sha256 == "b" * 64
    assert store.latest_run() == run
    assert store.latest_run("PLAN.md") == run
    assert store.latest_run("OTHER.md") is None

    second = new_item(store, run, 2)
    first = new_item(store, run, 1)
    assert [i.number for i in store.items(run.id)] == [1, 2]
    assert first.state == ItemState.PENDING
    assert first.attempts == 0
    assert store.item(second.id).title == "Batch 2"

    a1 = new_attempt(store, run, first)
    a2 = new_attempt(store, run, first, model="opus")
    assert (a1.number, a2.number) == (1, 2)
    assert a1.state == AttemptState.RUNNING
    assert a1.evidence_dir == "/tmp/evidence"
    assert store.item(first.id).attempts == 2
    assert store.next_attempt_number(first.id) == 3
    assert store.next_attempt_number(second.id) == 1

    store.update_attempt(a1.id, session_id="sess-1", models_json='["claude-sonnet-4-5"]')
    store.finish_attempt(
        a1.id,
        AttemptState.FAILED,
        reason="gates failed",
        cost_usd=Decimal("0.012345"),
        cost_source="reported",
        tool_calls=7,
    )
    got = store.attempt(a1.id)
    assert got.state == AttemptState.FAILED
    assert got.exit_reason == "gates failed"
    assert got.cost_usd == Decimal("0.012345")
    assert got.cost_source == "reported"
    assert got.tool_calls == 7
    assert got.session_id == "sess-1"
    assert got.models == ["claude-sonnet-4-5"]
    assert got.finished_at is not None
    assert [a.id for a in store.running_attempts()] == [a2.id]
    assert [a.id for a in store.attempts(item_id=first.id)] == [a1.id, a2.id]
    assert [a.id for a in store.attempts(run_id=run.id)] == [a1.id, a2.id]


def test_unknown_ids_raise_key_error(store: Store) -> None:
    with pytest.raises(KeyError):
        store.run("nope")
    with pytest.raises(KeyError):
        store.item(999)
    with pytest.raises(KeyError):
        store.attempt(999)


def test_update_attempt_refuses_unknown_fields(store: Store) -> None:
    run = new_run(store)
    attempt = new_attempt(store, run, new_item(store, run))
    with pytest.raises(TypeError, match="state"):
        store.update_attempt(attempt.id, state="passed")
    assert store.attempt(attempt.id).state == AttemptState.RUNNING


def test_gates_and_events_round_trip(store: Store) -> None:
    run = new_run(store)
    attempt = new_attempt(store, run, new_item(store, run))
    store.record_gate(
        attempt.id,
        name="tests",
        command="pytest -q",
        passed=False,
        duration_s=1.5,
        exit_code=1,
        timed_out=False,
        tests_passed=3,
        tests_failed=1,
        failed_ids=["t::b", "t::a"],
        regressions=[],
        output_path="gates/tests.log",
        digest="1 failed",
    )
    [gate] = store.gates(attempt.id)
    assert (gate.name, gate.passed, gate.tests_failed, gate.digest) == (
        "tests",
        False,
        1,
        "1 failed",
    )
    store.event(run.id, "tool_call", {"name": "Bash"}, attempt_id=attempt.id)
    store.event(run.id, "note", {"text": "hi"})
    assert [e["kind"] for e in store.events(run.id)] == ["tool_call", "note"]
    assert store.events(run.id, attempt_id=attempt.id)[0]["payload"] == {"name": "Bash"}


# ---- state changes ----------------------------------------------------------------


def test_illegal_run_transition_raises_and_leaves_the_row(store: Store) -> None:
    run = new_run(store)
    with pytest.raises(IllegalTransition, match="from pending to succeeded"):
        store.set_run_state(run.id, RunState.SUCCEEDED, message="done")
    assert store.run(run.id) == run
    assert store.history("run", run.id) == [(None, "pending")]


def test_illegal_item_transition_raises_and_leaves_the_row(store: Store) -> None:
    run = new_run(store)
    item = new_item(store, run)
    with pytest.raises(IllegalTransition, match="from pending to passed"):
        store.set_item_state(item.id, ItemState.PASSED, message="x", commit_sha="f" * 40)
    assert store.item(item.id) == item
    assert store.history("item", item.id) == [(None, "pending")]


def test_illegal_attempt_transition_raises_and_leaves_the_row(store: Store) -> None:
    run = new_run(store)
    attempt = new_attempt(store, run, new_item(store, run))
    store.finish_attempt(attempt.id, AttemptState.PASSED, reason="gates passed")
    done = store.attempt(attempt.id)
    with pytest.raises(IllegalTransition, match="from passed to crashed"):
        store.finish_attempt(
            attempt.id, AttemptState.CRASHED, reason="late", cost_usd=Decimal(5), digest="x"
        )
    assert store.attempt(attempt.id) == done
    assert store.history("attempt", attempt.id) == [(None, "running"), ("running", "passed")]


def test_state_history_records_every_change_in_order(store: Store) -> None:
    run = new_run(store)
    item = new_item(store, run)
    store.set_run_state(run.id, RunState.RUNNING)
    store.set_item_state(item.id, ItemState.IN_PROGRESS)
    attempt = new_attempt(store, run, item)
    store.finish_attempt(attempt.id, AttemptState.CRASHED, reason="agent died")
    store.set_item_state(item.id, ItemState.PENDING, reason="its run crashed")
    store.set_run_state(run.id, RunState.CRASHED, reason="orchestrator died")
    store.set_run_state(run.id, RunState.RUNNING, reason="resumed")
    store.set_item_state(item.id, ItemState.IN_PROGRESS)
    store.set_item_state(item.id, ItemState.PASSED, commit_sha="f" * 40, message="ok")
    store.set_run_state(run.id, RunState.SUCCEEDED)

    assert store.history("run", run.id) == [
        (None, "pending"),
        ("pending", "running"),
        ("running", "crashed"),
        ("crashed", "running"),
        ("running", "succeeded"),
    ]
    assert store.history("item", item.id) == [
        (None, "pending"),
        ("pending", "in_progress"),
        ("in_progress", "pending"),
        ("pending", "in_progress"),
        ("in_progress", "passed"),
    ]
    assert store.history("attempt", attempt.id) == [(None, "running"), ("running", "crashed")]
    reasons = [
        r[0]
        for r in store.db.execute(
            "SELECT reason FROM state_history WHERE entity = 'run' ORDER BY id"
        )
    ]
    assert reasons == ["created", None, "orchestrator died", "resumed", None]
    final = store.run(run.id)
    assert final.state == RunState.SUCCEEDED
    assert final.finished_at is not None
    passed = store.item(item.id)
    assert (passed.state, passed.commit_sha, passed.message) == (
        ItemState.PASSED,
        "f" * 40,
        "ok",
    )


def test_resuming_a_run_clears_its_finish_time(store: Store) -> None:
    run = new_run(store)
    store.set_run_state(run.id, RunState.RUNNING)
    store.set_run_state(run.id, RunState.INTERRUPTED, message="Ctrl-C")
    assert store.run(run.id).finished_at is not None
    store.set_run_state(run.id, RunState.RUNNING)
    assert store.run(run.id).finished_at is None
    assert [r.id for r in store.runs_in_state(RunState.RUNNING)] == [run.id]


# ---- usage and money -------------------------------------------------------------


def usage_rows(store: Store, attempt_id: int) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in store.db.execute(
            "SELECT kind, message_id, model, input_tokens, output_tokens, cost_usd"
            " FROM usage_records WHERE attempt_id = ? ORDER BY id",
            (attempt_id,),
        )
    ]


def test_record_usage_dedupes_by_message_and_keeps_the_newest_numbers(store: Store) -> None:
    run = new_run(store)
    attempt = new_attempt(store, run, new_item(store, run))

    def record(
        message_id: str | None,
        output: int,
        *,
        kind: str = "response",
        model: str = "m1",
        cost: str | None = "0.01",
    ) -> None:
        store.record_usage(
            attempt.id,
            kind=kind,
            message_id=message_id,
            request_id="req",
            model=model,
            tokens=TokenCounts(input=100, output=output),
            cost_usd=Decimal(cost) if cost is not None else None,
            cost_source="priced",
        )

    record("msg_1", 1)  # placeholder output count while streaming
    record("msg_1", 250, cost="0.02")  # final count for the same response
    record("msg_2", 40)
    record("msg_1", 7, model="m2")  # same id, other model: its own record
    record(None, 900, kind="final", cost="0.5")
    record(None, 1000, kind="final", cost=None)  # final totals without an id dedupe too

    assert usage_rows(store, attempt.id) == [
        ("response", "msg_1", "m1", 100, 250, "0.02"),
        ("response", "msg_2", "m1", 100, 40, "0.01"),
        ("response", "msg_1", "m2", 100, 7, "0.01"),
        ("final", "", "m1", 100, 1000, None),
    ]


def test_attempt_tokens_prefers_final_records(store: Store) -> None:
    run = new_run(store)
    item = new_item(store, run)
    attempt = new_attempt(store, run, item)
    assert store.attempt_tokens(attempt.id) == TokenCounts()

    for n, out in ((1, 10), (2, 20)):
        store.record_usage(
            attempt.id,
            kind="response",
            message_id=f"msg_{n}",
            request_id=None,
            model="m",
            tokens=TokenCounts(input=5, output=out, cache_read=100),
            cost_usd=None,
            cost_source=None,
        )
    assert store.attempt_tokens(attempt.id) == TokenCounts(10, 30, 200, 0, 0)

    for model, tokens in (("m", TokenCounts(11, 33, 220, 5, 1)), ("h", TokenCounts(1, 2, 0, 0, 0))):
        store.record_usage(
            attempt.id,
            kind="final",
            message_id=None,
            request_id=None,
            model=model,
            tokens=tokens,
            cost_usd=Decimal("0.1"),
            cost_source="reported",
        )
    assert store.attempt_tokens(attempt.id) == TokenCounts(12, 35, 220, 5, 1)


def test_totals_sum_known_costs_and_count_unknown_ones(store: Store) -> None:
    run = new_run(store)
    item = new_item(store, run)
    known1 = new_attempt(store, run, item)
    known2 = new_attempt(store, run, item)
    unknown = new_attempt(store, run, item)
    running = new_attempt(store, run, item)
    store.finish_attempt(known1.id, AttemptState.FAILED, cost_usd=Decimal("0.25"))
    store.finish_attempt(known2.id, AttemptState.TIMED_OUT, cost_usd=Decimal("0.0123"))
    store.finish_attempt(unknown.id, AttemptState.CRASHED)
    store.record_usage(
        known1.id,
        kind="final",
        message_id=None,
        request_id=None,
        model="m",
        tokens=TokenCounts(input=10, output=5),
        cost_usd=Decimal("0.25"),
        cost_source="reported",
    )

    totals = store.totals(store.attempts(run_id=run.id))
    assert totals.cost_usd == Decimal("0.2623")
    assert totals.unknown_cost == 1  # the crashed one; the running one has no cost *yet*
    assert totals.tokens == TokenCounts(input=10, output=5)

    only_running = store.totals([store.attempt(running.id)])
    assert (only_running.cost_usd, only_running.unknown_cost) == (None, 0)


def test_totals_of_many_attempts_take_one_query_and_count_each_attempt_once(
    store: Store,
) -> None:
    run = new_run(store)
    item = new_item(store, run)
    want = TokenCounts()
    for n in range(40):
        attempt = new_attempt(store, run, item)
        store.record_usage(
            attempt.id,
            kind="response",
            message_id="msg_1",
            request_id=None,
            model="m",
            tokens=TokenCounts(input=1000, output=1000),
            cost_usd=None,
            cost_source=None,
        )
        if n % 2:  # the final totals replace the responses seen while streaming
            store.record_usage(
                attempt.id,
                kind="final",
                message_id=None,
                request_id=None,
                model="m",
                tokens=TokenCounts(input=n, output=1, cache_read=2),
                cost_usd=None,
                cost_source=None,
            )
        want = want + store.attempt_tokens(attempt.id)
    attempts = store.attempts(run_id=run.id)
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    try:
        totals = store.totals(attempts)
    finally:
        store.db.set_trace_callback(None)
    assert totals.tokens == want
    assert len(statements) == 1


def test_unknown_cost_is_never_counted_as_zero(store: Store) -> None:
    run = new_run(store)
    item = new_item(store, run)
    a = new_attempt(store, run, item)
    b = new_attempt(store, run, item)
    store.finish_attempt(a.id, AttemptState.CRASHED)
    store.finish_attempt(b.id, AttemptState.FAILED)

    totals = store.totals(store.attempts(run_id=run.id))
    assert totals.cost_usd is None
    assert totals.unknown_cost == 2
    assert store.totals([]).cost_usd is None


def test_a_zero_cost_is_known(store: Store) -> None:
    run = new_run(store)
    attempt = new_attempt(store, run, new_item(store, run))
    store.finish_attempt(attempt.id, AttemptState.PASSED, cost_usd=Decimal(0))
    totals = store.totals([store.attempt(attempt.id)])
    assert totals.cost_usd == Decimal(0)
    assert totals.unknown_cost == 0
