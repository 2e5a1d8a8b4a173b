"""Usage reports grouped in SQLite give exactly the groups the ledger makes from
entries in Python: the same keys, labels, order, tokens, models, times, and the
same dollars to the last digit and exponent (the CSV prints the Decimal as it
is), with unknown costs counted and never turned into $0."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path

import pytest

from nightcrew.core.states import AttemptState, ItemState
from nightcrew.core.usage import TokenCounts
from nightcrew.store.records import Store
from nightcrew.store.usage_query import project_entries
from nightcrew.usage import globaldb
from nightcrew.usage.globaldb import format_ts, open_global, transcript_entries
from nightcrew.usage.ledger import Group
from nightcrew.usage.pricing import sum_costs
from nightcrew.views.outcomes import ModelOutcome, cost_per_passed_item
from nightcrew.views.project_usage import project_report
from nightcrew.views.transcript_usage import transcript_groups
from nightcrew.views.usage_sql import Query, entry_groups, group_of
from tests.unit.store_rows import new_attempt, new_item, new_run

# A microsecond before local midnight from Sunday to Monday at UTC-5 (2026-11-30 is a
# Monday); the rows span days before and after it, and the first days of December.
T0 = datetime(2026, 11, 30, 4, 59, 59, 999_999, tzinfo=UTC)
ZONES = [
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
    UTC,
]
BYS = ["day", "week", "month", "model", "session", "project", "block"]
# Costs as the store and the importer write them: priced text, reported float text with more
# than 12 fraction digits, exponent form (str of a tiny Decimal), whole dollars, trailing
# zeros, a large cost, and unknown.
COSTS = [
    "0.000123",
    "0.10",
    "0.2",
    "0.1234567890123456",
    "3E-7",
    "2",
    "0.000000000001",
    "1234567.5",
    None,
    "0.0525",
]
MODELS = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "mystery-model"]


def shape(groups: list[Group]) -> list[tuple[object, ...]]:
    """Everything a report shows of a group, the cost as its exact text."""
    return [
        (
            g.key,
            g.label,
            g.entries,
            g.tokens,
            None if g.cost.usd is None else str(g.cost.usd),
            g.cost.unknown,
            g.models,
            g.first,
            g.last,
        )
        for g in groups
    ]


# ---- the cost columns on their own ------------------------------------------------------


@pytest.mark.parametrize(
    "costs",
    [
        ["0.10", "0.2"],
        ["3E-7", "0.5"],
        [None, None],
        [None, "0.000001"],
        ["2", "0.000000000001"],
        ["0.1234567890123456", "0.1"],
        ["999999.999999999999", "0"],
        ["12", "0.30", "1E+2"],
    ],
)
def test_costs_sum_in_sql_like_decimal(costs: list[str | None]) -> None:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE t (input_tokens, output_tokens, cache_read_tokens, cache_write_5m_tokens,"
        " cache_write_1h_tokens, model, ts, cost_usd TEXT)"
    )
    db.executemany(
        "INSERT INTO t VALUES (1, 2, 3, 4, 5, 'm', '2026-11-21T10:00:00.000+00:00', ?)",
        [(c,) for c in costs],
    )
    [row] = Query("FROM t", "", "ts").rows(db, "'k'", "'k'", {})
    got = group_of(row, datetime.fromisoformat).cost
    expected = sum_costs(None if c is None else Decimal(c) for c in costs)
    assert (str(got.usd), got.unknown) == (str(expected.usd), expected.unknown)


# ---- transcripts ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    conn = transcripts_db(tmp_path_factory.mktemp("global"))
    yield conn
    conn.close()


@pytest.fixture
def own_gdb(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """For a test that changes the rows."""
    conn = transcripts_db(tmp_path)
    yield conn
    conn.close()


def transcripts_db(where: Path) -> sqlite3.Connection:
    conn = open_global(where / "usage.db")
    files = [
        conn.execute(
            "INSERT INTO transcript_files (path, size, mtime_ns, inode, offset, head_len,"
            " head_sha, imported_at) VALUES (?, 0, 0, 0, 0, 0, '', '')",
            (f"/t/{n}.jsonl",),
        ).lastrowid
        for n in range(3)
    ]
    rows = []
    for i in range(240):
        at = T0 + timedelta(minutes=37 * i - 3000, microseconds=i)
        cost = COSTS[i % len(COSTS)]
        rows.append(
            (
                files[i % 2],
                f"msg_{i}",
                f"req_{i}",
                f"sess-{i % 4}" if i % 9 else None,
                f"/home/me/p{i % 3}" if i % 11 else None,
                MODELS[i % len(MODELS)],
                format_ts(at),
                10 + i,
                5 * i,
                100 * (i % 3),
                i % 7,
                i % 2,
                cost,
                "priced" if cost else None,
                0,
            )
        )
    # copies the report must count once: another file's copy, a larger one, a sidechain replay
    rows.append((files[2], "msg_5", "req_5", "sess-1", "/home/me/p2", MODELS[1],
                 format_ts(T0), 15, 25, 0, 0, 0, "0.2", "priced", 0))  # fmt: skip
    rows.append((files[2], "msg_6", "req_6", "sess-1", "/home/me/p2", MODELS[2],
                 format_ts(T0), 999, 25, 0, 0, 0, "0.7", "priced", 0))  # fmt: skip
    rows.append((files[2], "msg_7", "req_other", "sess-1", "/home/me/p2", MODELS[3],
                 format_ts(T0), 1, 1, 0, 0, 0, "0.3", "priced", 1))  # fmt: skip
    conn.executemany(globaldb.UPSERT_USAGE, rows)
    return conn


@pytest.mark.parametrize("tz", ZONES, ids=str)
@pytest.mark.parametrize("by", BYS)
def test_transcript_groups_match_the_ledger(gdb: sqlite3.Connection, by: str, tz: tzinfo) -> None:
    python = entry_groups(transcript_entries(gdb), by, tz, in_time_order=True)
    assert len(python) > 1
    assert shape(transcript_groups(gdb, by, None, None, tz)) == shape(python)


@pytest.mark.parametrize("by", ["day", "model"])
def test_transcript_groups_match_the_ledger_in_a_window(gdb: sqlite3.Connection, by: str) -> None:
    tz = ZONES[0]
    lo, hi = T0 - timedelta(hours=20), T0 + timedelta(hours=30)
    python = entry_groups(transcript_entries(gdb, lo, hi), by, tz)
    assert shape(transcript_groups(gdb, by, lo, hi, tz)) == shape(python)


def test_a_sum_too_large_for_sqlite_integers_is_added_in_python(
    own_gdb: sqlite3.Connection,
) -> None:
    gdb = own_gdb
    rows = [
        (1, f"big_{n}", "r", "s", "/p", "claude-opus-4-1", format_ts(T0), 1, 1, 0, 0, 0,
         "999.999999999999", "priced", 0)
        for n in range(10_000)
    ]  # fmt: skip
    gdb.executemany(globaldb.UPSERT_USAGE, rows)  # ten million dollars: 10**19 picodollars
    tz = ZONES[1]
    python = entry_groups(transcript_entries(gdb), "model", tz)
    assert shape(transcript_groups(gdb, "model", None, None, tz)) == shape(python)


@pytest.mark.parametrize("by", BYS)
def test_plain_costs_take_the_quick_sums_and_match_the_ledger(
    own_gdb: sqlite3.Connection, by: str
) -> None:
    own_gdb.execute(
        "UPDATE transcript_usage SET cost_usd = CASE id % 3 WHEN 0 THEN '0.5'"
        " WHEN 1 THEN printf('0.%06d', input_tokens) ELSE '12.25' END"
        " WHERE cost_usd IS NOT NULL"
    )
    tz = ZONES[0]
    python = entry_groups(transcript_entries(own_gdb), by, tz, in_time_order=True)
    assert shape(transcript_groups(own_gdb, by, None, None, tz)) == shape(python)


def test_unknown_costs_stay_unknown_never_zero(own_gdb: sqlite3.Connection) -> None:
    gdb = own_gdb
    gdb.execute("UPDATE transcript_usage SET cost_usd = NULL WHERE model = 'mystery-model'")
    [mystery] = [g for g in transcript_groups(gdb, "model", None, None, UTC) if g.key == MODELS[3]]
    assert mystery.cost.usd is None
    assert mystery.cost.unknown == mystery.entries > 0


# ---- the project's own runs ----------------------------------------------------------------


def _record(store: Store, attempt_id: int, kind: str, mid: str | None, model: str, i: int,
            at: datetime, costs: list[str | None]) -> None:  # fmt: skip
    cost = costs[i % len(costs)]
    store.record_usage(
        attempt_id, kind=kind, message_id=mid, request_id=None, model=model,
        tokens=TokenCounts(10 + i, 3 * i, 50 * (i % 4), i % 5, i % 3),
        cost_usd=None if cost is None else Decimal(cost), cost_source="priced",
    )  # fmt: skip
    store.db.execute(
        "UPDATE usage_records SET ts = ? WHERE id = (SELECT max(id) FROM usage_records)",
        (at.isoformat(timespec="milliseconds"),),
    )


def fill(store: Store, seed: int, costs: list[str | None] = COSTS) -> None:
    """Two runs, three items, attempts that passed, failed and were killed mid-stream
    (responses only), several models, times across local midnights."""
    n = seed
    for _ in range(2):
        run = new_run(store)
        for number in (1, 2, 3):
            item = new_item(store, run, number, f"Item {number}")
            store.set_item_state(item.id, ItemState.IN_PROGRESS)
            for k in range(3):
                a = new_attempt(store, run, item, model=MODELS[(number + k) % 3])
                if k:  # the first attempts of an item have no session id yet
                    store.update_attempt(a.id, session_id=f"s-{number}-{k}")
                for _ in range(4):
                    n += 1
                    at = T0 + timedelta(minutes=53 * n - 2000)
                    _record(store, a.id, "response", f"m{n}", MODELS[(n + k) % 4], n, at, costs)
                if k < 2:  # the last one was killed: only its responses count
                    n += 1
                    at = T0 + timedelta(minutes=53 * n - 2000)
                    _record(store, a.id, "final", None, MODELS[k], n, at, costs)
                    _record(store, a.id, "final", None, MODELS[3], n + 1, at, costs)
                    passed = k == 1 and number != 3
                    state = AttemptState.PASSED if passed else AttemptState.FAILED
                    store.finish_attempt(a.id, state, reason="gates")


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[Path, Store]]]:
    opened = []
    for n in range(2):
        root = tmp_path_factory.mktemp(f"p{n}")
        store = Store.open(root / "nightcrew.db")
        fill(store, seed=100 * n)
        opened.append((root, store))
    yield opened
    for _, store in opened:
        store.close()


BYS_PROJECT = ["run", "item", *BYS]


@pytest.mark.parametrize("tz", ZONES, ids=str)
@pytest.mark.parametrize("by", BYS_PROJECT)
def test_project_groups_match_the_ledger(
    projects: list[tuple[Path, Store]], by: str, tz: tzinfo
) -> None:
    root, store = projects[0]
    python = entry_groups(project_entries(store, root), by, tz)
    assert len(python) > 1 or by == "project"
    report = project_report(projects[:1], by, run_id=None, since=None, until=None, tz=tz)
    assert shape(report.groups) == shape(python)


@pytest.mark.parametrize("by", BYS_PROJECT)
def test_a_project_with_plain_costs_matches_the_ledger(tmp_path: Path, by: str) -> None:
    store = Store.open(tmp_path / "nightcrew.db")
    try:
        fill(store, seed=7, costs=["0.5", "0.000123", None, "12.25", "0.1"])
        tz = ZONES[1]
        python = entry_groups(project_entries(store, tmp_path), by, tz)
        report = project_report([(tmp_path, store)], by, run_id=None, since=None, until=None, tz=tz)
    finally:
        store.close()
    assert shape(report.groups) == shape(python)


@pytest.mark.parametrize("by", BYS_PROJECT)
def test_several_projects_add_up_like_their_entries(
    projects: list[tuple[Path, Store]], by: str
) -> None:
    tz = ZONES[1]
    entries = [e for root, store in projects for e in project_entries(store, root)]
    report = project_report(projects, by, run_id=None, since=None, until=None, tz=tz)
    assert shape(report.groups) == shape(entry_groups(entries, by, tz))
    python_cost = sum_costs(e.cost_usd for e in entries)
    assert (str(report.cost.usd), report.cost.unknown) == (
        str(python_cost.usd),
        python_cost.unknown,
    )
    assert report.tokens == sum((e.tokens for e in entries), TokenCounts())
    assert report.first == min(e.ts for e in entries)


def test_a_run_and_a_window_select_like_the_entries(projects: list[tuple[Path, Store]]) -> None:
    root, store = projects[0]
    run_id = store.db.execute("SELECT id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
    lo, hi = T0 - timedelta(hours=10), T0 + timedelta(hours=40)
    tz = ZONES[0]
    python = entry_groups(
        project_entries(store, root, run_id=run_id, since=lo, until=hi), "day", tz
    )
    report = project_report(projects[:1], "day", run_id=run_id, since=lo, until=hi, tz=tz)
    assert shape(report.groups) == shape(python)


# ---- how each model's attempts went -----------------------------------------------------


def test_outcomes_count_each_models_attempts_passes_and_items(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "nightcrew.db")
    try:
        run = new_run(store)
        one, two = new_item(store, run, 1), new_item(store, run, 2)
        plan = [  # (item, model, passed, cost)
            (one, "claude-haiku-4-5", False, "0.01"),
            (one, "claude-sonnet-4-5", True, "0.30"),
            (two, "claude-haiku-4-5", True, "0.02"),
            (two, "mystery-model", True, None),
        ]
        for item, model, passed, cost in plan:
            a = new_attempt(store, run, item, model=model)
            store.record_usage(
                a.id,
                kind="final",
                message_id=None,
                request_id=None,
                model=model,
                tokens=TokenCounts(1, 1),
                cost_usd=None if cost is None else Decimal(cost),
                cost_source="reported",
            )
            state = AttemptState.PASSED if passed else AttemptState.FAILED
            store.finish_attempt(a.id, state, reason="gates")
        report = project_report(
            [(tmp_path, store)], "model", run_id=None, since=None, until=None, tz=UTC
        )
    finally:
        store.close()
    costs = {g.key: g.cost for g in report.groups}
    assert report.outcomes == {
        "claude-haiku-4-5": ModelOutcome(attempts=2, passed=1, items_passed=1),
        "claude-sonnet-4-5": ModelOutcome(attempts=1, passed=1, items_passed=1),
        "mystery-model": ModelOutcome(attempts=1, passed=1, items_passed=1),
    }
    haiku = report.outcomes["claude-haiku-4-5"]
    assert haiku.pass_rate == 0.5
    assert cost_per_passed_item(costs["claude-haiku-4-5"], haiku) == Decimal("0.03")
    assert cost_per_passed_item(costs["mystery-model"], report.outcomes["mystery-model"]) is None


def test_no_passed_item_has_no_cost_per_item() -> None:
    from nightcrew.usage.pricing import CostTotal

    nothing = ModelOutcome(attempts=3, passed=0, items_passed=0)
    assert cost_per_passed_item(CostTotal(Decimal("1.5"), 0), nothing) is None
    assert ModelOutcome(0, 0, 0).pass_rate is None


@pytest.mark.parametrize("by", BYS)
def test_a_big_table_read_in_two_halves_at_once_gives_the_same_groups(
    gdb: sqlite3.Connection, by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nightcrew.views import transcript_usage

    monkeypatch.setattr(transcript_usage, "SPLIT_ROWS", 10)
    tz = ZONES[1]
    python = entry_groups(transcript_entries(gdb), by, tz, in_time_order=True)
    assert shape(transcript_groups(gdb, by, None, None, tz)) == shape(python)
