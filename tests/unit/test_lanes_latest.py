"""A lane's card names the attempt it is on now, read from each lane's
latest attempt only (``views/lanes.py`` no longer reads every attempt of the
run): a feature claimed again on a lane starts with no attempt there, not
with the one it had before its new worktree; lanes in place (0 or none) are
not parallel lanes."""

from __future__ import annotations

from pathlib import Path

from nightcrew.core.states import AttemptState
from nightcrew.views.lanes import in_place_row, lanes_view
from tests.dashboard_seed import Seeded


def test_each_lane_shows_its_current_feature_and_attempt(tmp_path: Path) -> None:
    build = Seeded.build(tmp_path / "shop", ["Login", "Cart", "Search"])
    build.claim(1, 1)
    first = build.attempt(1, 1)
    build.finish(first, AttemptState.FAILED, "0.10")
    second = build.attempt(1, 1)
    build.claim(2, 2)
    cart = build.attempt(2, 2, model="claude-opus-4-5")
    build.finish(cart, AttemptState.FAILED, "0.20")
    build.store.db.execute(  # it started before the new worktree was ready
        "UPDATE attempts SET started_at = '2000-01-01T00:00:00.000Z' WHERE id = ?", (cart.id,)
    )
    build.claim(2, 2)  # feature 2 claimed again on lane 2: a new worktree, no attempt yet

    rows = {row.lane: row for row in lanes_view(build.store, build.run.id).lanes}

    assert (rows[1].item, rows[1].attempt, rows[1].state) == (
        "feature #1",
        second.number,
        "in_progress",
    )
    assert rows[1].phase == "agent" and rows[1].model == "claude-sonnet-4-5"
    assert (rows[2].item, rows[2].attempt, rows[2].model) == ("feature #2", None, None)
    assert rows[2].phase == "starting"


def test_attempts_in_place_are_lane_zero_and_not_a_parallel_lane(tmp_path: Path) -> None:
    build = Seeded.build(tmp_path / "shop", ["Login", "Cart"], config={"parallel": 1})
    old = build.attempt(1, None)
    build.finish(old, AttemptState.PASSED, "0.10")
    newer = build.attempt(2, 0)

    assert lanes_view(build.store, build.run.id).lanes == ()
    row = in_place_row(build.store, build.run.id)
    assert row is not None and (row.item, row.attempt) == ("feature #2", newer.number)
