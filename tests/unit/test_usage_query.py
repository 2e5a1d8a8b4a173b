"""The project's usage as report entries: every call counted once, attributed
to its attempt, batch and run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from nightcrew.core.states import AttemptState
from nightcrew.core.usage import TokenCounts
from nightcrew.store.records import AttemptRow, ItemRow, RunRow, Store
from nightcrew.store.usage_query import project_entries
from tests.unit.store_rows import new_attempt, new_item, new_run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "nightcrew.db")
    yield opened
    opened.close()


def run_with_item(store: Store, title: str = "Parser") -> tuple[RunRow, ItemRow]:
    run = new_run(store)
    return run, new_item(store, run, 2, title)


def attempt(store: Store, run: RunRow, item: ItemRow) -> AttemptRow:
    return new_attempt(store, run, item, model="m")


def record(store: Store, a: AttemptRow, kind: str, mid: str | None, model: str, inp: int) -> None:
    store.record_usage(
        a.id, kind=kind, message_id=mid, request_id=None, model=model,
        tokens=TokenCounts(inp, 1), cost_usd=Decimal(inp) / 1000, cost_source="priced",
    )  # fmt: skip


def test_final_totals_replace_the_streamed_responses_of_the_same_attempt(
    store: Store, tmp_path: Path
) -> None:
    run, item = run_with_item(store)
    done = attempt(store, run, item)
    record(store, done, "response", "msg_1", "claude-haiku-4-5", 10)
    record(store, done, "response", "msg_2", "claude-haiku-4-5", 20)
    record(store, done, "final", None, "claude-haiku-4-5", 30)
    record(store, done, "final", None, "claude-sonnet-4-5", 5)
    store.finish_attempt(done.id, AttemptState.FAILED, reason="gates failed")
    killed = attempt(store, run, item)  # killed mid-stream: only its responses exist
    record(store, killed, "response", "msg_3", "claude-haiku-4-5", 7)

    entries = project_entries(store, tmp_path)

    assert sorted((e.attempt_id, e.model, e.tokens.input) for e in entries) == [
        (done.id, "claude-haiku-4-5", 30),
        (done.id, "claude-sonnet-4-5", 5),
        (killed.id, "claude-haiku-4-5", 7),
    ]
    assert {e.item for e in entries} == {"batch 2: Parser"}
    assert {e.run_id for e in entries} == {run.id}
    assert {e.project for e in entries} == {str(tmp_path)}
    assert sum((e.cost_usd or Decimal(0)) for e in entries) == Decimal("0.042")


def test_runs_and_time_windows_select_entries(store: Store, tmp_path: Path) -> None:
    first, item1 = run_with_item(store)
    second, item2 = run_with_item(store, "Other")
    record(store, attempt(store, first, item1), "final", None, "m", 1)
    record(store, attempt(store, second, item2), "final", None, "m", 2)
    assert [e.tokens.input for e in project_entries(store, tmp_path, run_id=second.id)] == [2]
    now = datetime.now(UTC)
    assert len(project_entries(store, tmp_path, since=now - timedelta(minutes=5))) == 2
    assert project_entries(store, tmp_path, until=now - timedelta(minutes=5)) == []
    assert project_entries(store, tmp_path, since=now + timedelta(minutes=5)) == []
