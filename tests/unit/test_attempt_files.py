"""The files each attempt changed, kept in the store so a parallel build can
keep apart features whose earlier attempts touched the same files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from nightcrew.store import migrations
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import RunRow, Store
from nightcrew.work.backlog import FeatureSpec
from tests.unit.store_rows import new_attempt, new_run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / ".nightcrew" / "nightcrew.db")
    yield opened
    opened.close()


def features(store: Store, *names: str) -> list[int]:
    specs = [FeatureSpec(name=name, acceptance=("true",)) for name in names]
    return Backlog(store).create(specs, source="t").created


def feature_attempt(store: Store, run: RunRow, feature_id: int, files: list[str] | None) -> int:
    """A build's attempt at a feature (its run's work item made on first use)."""
    item = next((i for i in store.items(run.id) if i.key == f"f{feature_id}"), None)
    if item is None:
        item = store.add_item(
            run.id, key=f"f{feature_id}", number=feature_id, title="t", body="b", sha="s",
            feature_id=feature_id,
        )  # fmt: skip
    attempt = new_attempt(store, run, item)
    if files is not None:
        store.set_attempt_files(attempt.id, files)
    return attempt.id


def test_touched_files_gather_every_attempt_of_a_feature_across_runs(store: Store) -> None:
    cart, login = features(store, "Cart", "Log in")
    first, second = new_run(store), new_run(store)
    feature_attempt(store, first, cart, ["src/cart.py", "tests/test_cart.py"])
    feature_attempt(store, first, cart, None)  # crashed before its files were known
    feature_attempt(store, second, cart, ["src/cart.py", "src/api.py"])
    feature_attempt(store, second, login, ["src/auth.py"])

    assert store.touched_files(cart) == {"src/cart.py", "tests/test_cart.py", "src/api.py"}
    assert store.touched_files(login) == {"src/auth.py"}
    assert store.touched_files(999) == frozenset()


def test_an_attempt_keeps_its_files_sorted_once_and_none_is_not_unknown(store: Store) -> None:
    [cart] = features(store, "Cart")
    run = new_run(store)
    changed = feature_attempt(store, run, cart, ["b.py", "a.py", "b.py"])
    nothing = feature_attempt(store, run, cart, [])
    unknown = feature_attempt(store, run, cart, None)

    assert store.attempt(changed).files == ("a.py", "b.py")
    assert store.attempt(nothing).files == ()
    assert store.attempt(unknown).files is None


def test_attempts_stored_before_the_migration_have_unknown_files(tmp_path: Path) -> None:
    """A store made by the previous release keeps its attempts; what they
    changed was never recorded, so it is unknown, not "nothing"."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    before = [m for m in migrations.MIGRATIONS if m is not migrations.m007_attempt_files]
    try:
        migrations.apply(db, before)
        db.execute(
            "INSERT INTO runs VALUES ('r1','backlog','','x','{}','failed',"
            "'2026-11-01T10:00:00+00:00',NULL,NULL,NULL,NULL)"
        )
        db.execute(
            "INSERT INTO features (id, category, name, description, steps_json, acceptance_json,"
            " manual, files_json, priority, position, state, created_at, updated_at)"
            " VALUES (1, 'functional', 'Cart', '', '[]', '[\"true\"]', 0, '[]', 1, 1, 'failed',"
            " 'then', 'then')"
        )
        db.execute(
            "INSERT INTO work_items (id, run_id, key, number, title, body, body_sha256, state,"
            " feature_id) VALUES (1, 'r1', 'f1', 1, 't', 'b', 's', 'failed', 1)"
        )
        db.execute(
            "INSERT INTO attempts (id, run_id, item_id, number, backend, prefix_sha256,"
            " prompt_sha256, state, started_at) VALUES"
            " (1, 'r1', 1, 1, 'claude', 'p', 'q', 'failed', '2026-11-01T10:00:00+00:00')"
        )
        assert migrations.apply(db) == ["m007_attempt_files"]
    finally:
        db.close()

    store = Store.open(path)
    try:
        assert store.attempt(1).files is None
        assert store.touched_files(1) == frozenset()
        store.set_attempt_files(1, ["src/cart.py"])  # the column takes new facts
        assert store.touched_files(1) == {"src/cart.py"}
    finally:
        store.close()
