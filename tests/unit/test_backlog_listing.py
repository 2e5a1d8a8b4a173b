"""``backlog list`` reads outlines and renders plain columns: the outlines say
what the full features say, and the columns line up whatever the names hold."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nightcrew.cli.listing import MAX_WIDTH, columns, json_lines
from nightcrew.core.states import ItemState
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.work.backlog import Feature, FeatureSpec
from nightcrew.work.backlog_graph import blocked_by


@pytest.fixture
def backlog(tmp_path: Path) -> Iterator[Backlog]:
    store = Store.open(tmp_path / "nightcrew.db")
    yield Backlog(store)
    store.close()


def test_outlines_say_what_the_features_say(backlog: Backlog) -> None:
    backlog.create(
        [
            FeatureSpec("Schema", acceptance=("true",), steps=("look",), files=("db.sql",)),
            FeatureSpec("Signup", acceptance=("true",), depends_on_indices=(0,)),
            FeatureSpec("Design review", manual=True, depends_on_indices=(0, 1)),
            FeatureSpec("Login", acceptance=("true",), depends_on_indices=(1,)),
        ],
        source="test",
    )
    backlog.skip([1], reason="later")
    features, outlines = backlog.features(), backlog.outlines()

    assert [(o.id, o.name, o.category, o.state, o.manual, o.depends_on, o.attempts)
            for o in outlines] == [
        (f.id, f.name, f.category, f.state, f.manual, f.depends_on, f.attempts)
        for f in features
    ]  # fmt: skip
    assert blocked_by(outlines) == blocked_by(features) == {2: [1], 3: [1], 4: [1]}
    # every field of a stored feature is read, none left to a class default
    stored = backlog.feature(1)
    assert set(vars(stored)) == {f.name for f in dataclasses.fields(Feature)}
    assert stored == dataclasses.replace(stored)  # what __init__ would have built
    assert (stored.steps, stored.files, stored.state) == (("look",), ("db.sql",), ItemState.SKIPPED)


def test_columns_line_up_wide_characters_and_keep_markup_as_text() -> None:
    text = columns(
        ("id", "name", "tries"),
        [("#1", "Fix [bold] titles", "0"), ("#12", "登录页面", "3"), ("#3", "x" * 70, "1")],
    )
    lines = text.splitlines()
    # a name past the cap is written whole; it only stops widening the column
    assert lines[3] == "#3   " + "x" * 70 + "  1"
    assert lines[1] == "#1   " + "Fix [bold] titles".ljust(MAX_WIDTH) + "  0"
    assert lines[2] == "#12  登录页面" + " " * (MAX_WIDTH - 8) + "  3"  # 4 characters, 8 cells
    assert columns(("id", "name"), []) == "id  name\n"


def test_json_lines_is_one_json_array_with_an_item_per_line() -> None:
    items = [{"id": 1, "name": "A"}, {"id": 2, "name": "Ünïcode"}]
    text = json_lines(items)
    assert json.loads(text) == items
    assert text.splitlines()[1:3] == [json.dumps(items[0]) + ",", json.dumps(items[1])]
    assert json.loads(json_lines([])) == []
