"""The dashboard's read models over a real store: the run's cost so far (an
unknown cost stays unknown), one card per lane with its current tool, the
one lane of a build in place, budgets with what they spent, and every
registered project's today, total and last 14 days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from nightcrew.core.states import AttemptState
from nightcrew.usage.pricing import CostTotal
from nightcrew.views.live import live_view, tool_line
from nightcrew.views.project_overview import (
    DAYS,
    MISSING,
    missing_card,
    project_card,
    project_key,
    project_spend,
)
from tests.dashboard_seed import Seeded

ZERO = CostTotal(Decimal(0), 0)


def test_a_parallel_builds_lanes_show_feature_phase_model_tool_and_cost(tmp_path: Path) -> None:
    build = Seeded.build(tmp_path / "shop", ["Login", "Cart", "Search"])
    build.claim(1, 1)
    login = build.attempt(1, 1)
    build.response(login, "0.0400", lane=1)
    build.tool(login, "Read", lane=1, file_path="src/login.py")
    build.tool(login, "Bash", lane=1, command="pytest -q tests/test_login.py\necho done")
    build.claim(2, 2)
    cart = build.attempt(2, 2, model="claude-opus-4-5")
    build.response(cart, "0.2000", lane=2)
    build.response(cart, None, lane=2)  # a model without a price: unknown, never $0

    view = live_view(build.store, today=ZERO, total=ZERO)

    assert view.run is not None and view.run.live and view.run.state == "running"
    by_lane = {card.lane: card for card in view.lanes}
    assert set(by_lane) == {1, 2}
    assert by_lane[1].item == "feature #1" and by_lane[1].title == "Login"
    assert by_lane[1].phase == "agent" and by_lane[1].model == "claude-sonnet-4-5"
    assert by_lane[1].tool == "Bash: pytest -q tests/test_login.py"  # the latest, first line
    assert by_lane[1].cost == CostTotal(Decimal("0.0400"), 0)
    assert by_lane[2].cost == CostTotal(Decimal("0.2000"), 1)
    assert view.cost == CostTotal(Decimal("0.2400"), 1)  # "at least $0.24"
    assert all(card.busy for card in view.lanes)


def test_settled_attempts_count_their_own_cost_and_an_unknown_one_stays_unknown(
    tmp_path: Path,
) -> None:
    build = Seeded.build(tmp_path / "shop", ["Login"], config={"parallel": 1})
    first = build.attempt(1, None)
    build.response(first, "0.0100")
    build.finish(first, AttemptState.FAILED, None)  # the agent reported nothing usable

    view = live_view(build.store, today=ZERO, total=ZERO)
    assert view.cost == CostTotal(None, 1)  # unknown, not $0 and not the streamed $0.01

    second = build.attempt(1, None)
    build.response(second, "0.0300")
    view = live_view(build.store, today=ZERO, total=ZERO)
    assert view.cost == CostTotal(Decimal("0.0300"), 1)
    # a build in place has one lane: its running attempt, as lane 0
    (card,) = view.lanes
    assert (card.lane, card.item, card.attempt, card.phase) == (0, "feature #1", 2, "agent")
    assert card.elapsed_s is not None and card.elapsed_s >= 0


def test_budgets_are_the_runs_settings_with_what_each_spent(tmp_path: Path) -> None:
    build = Seeded.build(
        tmp_path / "shop",
        ["Login", "Cart"],
        config={"parallel": 2, "max_budget_usd": 5, "max_item_usd": 0.5, "total_budget_usd": 40},
    )
    build.claim(1, 1)
    login = build.attempt(1, 1)
    build.response(login, "0.4500", lane=1)

    view = live_view(
        build.store, today=CostTotal(Decimal(3), 0), total=CostTotal(Decimal("12.5"), 2)
    )

    bars = {b.key: b for b in view.budgets}
    assert set(bars) == {"run", f"item:{build.items[1].id}", "total"}  # no daily budget set
    assert (bars["run"].limit_usd, bars["run"].spent_usd) == (Decimal(5), Decimal("0.4500"))
    item = bars[f"item:{build.items[1].id}"]
    assert (item.name, item.setting) == ("feature #1", "--max-item-usd")
    assert item.limit_usd == Decimal("0.5")
    assert (bars["total"].name, bars["total"].setting) == ("in total", "total_budget_usd")
    assert item.fraction == 0.9
    assert (bars["total"].spent_usd, bars["total"].unknown) == (Decimal("12.5"), 2)


def test_a_project_that_never_ran_has_no_run_and_costs_nothing(tmp_path: Path) -> None:
    build = Seeded.build(tmp_path / "shop", ["Login"])
    build.store.db.execute("DELETE FROM state_history")
    build.store.db.execute("DELETE FROM work_items")
    build.store.db.execute("DELETE FROM runs")
    view = live_view(build.store, today=ZERO, total=ZERO)
    assert view.run is None and view.lanes == () and view.cost == ZERO


def test_the_overview_has_today_total_and_fourteen_days_oldest_first(tmp_path: Path) -> None:
    build = Seeded.build(tmp_path / "shop", ["Login"])
    attempt = build.attempt(1, None)
    build.response(attempt, "1.2500")
    build.response(attempt, "0.7500")
    now = datetime.now(UTC)
    three_days_ago = (now - timedelta(days=3)).isoformat(timespec="milliseconds")
    build.store.db.execute(
        "UPDATE usage_records SET ts = ? WHERE message_id = 'msg-1'", (three_days_ago,)
    )

    spend = project_spend(build.store, build.root, now=now)

    assert len(spend.days) == DAYS
    assert spend.days[-1].day == now.astimezone().date()
    assert [d.day for d in spend.days] == sorted(d.day for d in spend.days)
    by_day = {d.day: d.cost.usd for d in spend.days}
    assert by_day[now.astimezone().date()] == Decimal("0.7500")
    assert by_day[(now - timedelta(days=3)).astimezone().date()] == Decimal("1.2500")
    assert spend.today == CostTotal(Decimal("0.7500"), 0)
    assert spend.total == CostTotal(Decimal("2.0000"), 0)

    card = project_card(build.root, build.store, now=now)
    assert card.key == project_key(build.root) and card.name == "shop"
    assert (card.state, card.kind, card.busy_lanes) == ("running", "build", 1)
    assert card.as_json()["today"] == {"cost_usd": 0.75, "cost_unknown": 0}


def test_a_registered_project_whose_store_is_gone_is_missing_not_free(tmp_path: Path) -> None:
    card = missing_card(tmp_path / "gone")
    assert card.state == MISSING and card.spend is None
    assert card.as_json()["total"] == {"cost_usd": None, "cost_unknown": 0}


def test_a_tool_call_reads_as_its_tool_and_what_it_acts_on() -> None:
    assert tool_line("Edit", {"file_path": "src/cart.py", "old": "x"}) == "Edit: src/cart.py"
    assert tool_line("Grep", {"pattern": "TODO"}) == "Grep: TODO"
    assert tool_line("TodoWrite", {"todos": []}) == "TodoWrite"
    assert tool_line("Bash", {"command": "x" * 100}) == "Bash: " + "x" * 79 + "…"


def test_a_lane_card_and_a_feed_line_point_at_their_items_page(tmp_path: Path) -> None:
    import os

    from nightcrew.core.states import RunState
    from nightcrew.server import activity

    build = Seeded.build(tmp_path / "shop", ["Login"], config={"parallel": 1})
    build.tool(build.attempt(1, None), "Read", file_path="a.py")
    build.claim(1, 1)  # an event that names the feature only by its label
    plan = build.store.create_run(
        kind="plan",
        source_path="PLAN.md",
        source_sha256="a" * 64,
        config={},
        prefix_sha256="b" * 64,
        pid=os.getpid(),
    )
    build.store.set_run_state(plan.id, RunState.RUNNING, reason="started")
    batch = build.store.add_item(
        plan.id, key="batch-2", number=2, title="Parser", body="", sha="c" * 64
    )
    attempt = build.store.start_attempt(
        run_id=plan.id,
        item_id=batch.id,
        backend="claude",
        model="claude-sonnet-4-5",
        prefix_sha256="b" * 64,
        prompt_sha256="d" * 64,
        base_sha="e" * 40,
        evidence_dir=None,
        lane=None,
    )
    build.tool(attempt, "Bash", command="pytest -q")

    [card] = live_view(build.store, today=ZERO, total=ZERO).lanes  # the plan run, in place
    assert (card.item, card.page) == ("batch 2", f"runs/{plan.id}/items/batch-2")
    lines = {row.detail: row.page for row in activity.latest(build.store)}
    assert lines["Bash: pytest -q"] == f"runs/{plan.id}/items/batch-2"
    assert lines["Read: a.py"] == "features/1"
    assert lines["nightcrew/1"] == "features/1"  # worktree_ready: its branch


def test_a_running_attempt_leaves_a_features_cost_at_what_the_finished_ones_cost(
    tmp_path: Path,
) -> None:
    from nightcrew.views.work_page import feature_page

    build = Seeded.build(tmp_path / "shop", ["Cart"], config={"parallel": 1})
    build.finish(build.attempt(1, None), AttemptState.FAILED, "0.0100")
    build.attempt(1, None, model="opus")  # the retry, at work: no cost of its own yet
    page = feature_page(build.store, tmp_path / "runs", 1)
    assert [a.state for a in page.attempts] == ["failed", "running"]
    assert page.cost_usd == Decimal("0.0100")  # not unknown, not $0
    running_only = Seeded.build(tmp_path / "docs", ["Search"], config={"parallel": 1})
    running_only.attempt(1, None)
    assert feature_page(running_only.store, tmp_path / "runs", 1).finished == []  # shown "—"


def test_the_feed_warns_of_a_conflict_left_for_a_person_not_of_one_the_agent_resolved(
    tmp_path: Path,
) -> None:
    from nightcrew.core import events as ev
    from nightcrew.server import activity

    build = Seeded.build(tmp_path / "shop", ["Cart", "Tax"], config={"parallel": 2})
    for item, by in (("feature #1", "agent"), ("feature #2", "person")):
        build.emit(
            ev.MergeConflicted(
                run_id=build.run.id,
                lane=1,
                item=item,
                branch="main",
                files=("cart.py",),
                resolved_by=by,
            )
        )

    levels = {
        row.item: row.level for row in activity.latest(build.store) if row.kind == "merge_conflict"
    }

    assert levels == {"feature #1": "info", "feature #2": "warn"}


def test_the_feed_colours_each_event_as_the_log_does(tmp_path: Path) -> None:
    from nightcrew.core import events as ev
    from nightcrew.server import activity
    from nightcrew.views.event_log import LogFilter, read_log

    build = Seeded.build(tmp_path / "shop", ["Cart", "Tax"], config={"parallel": 2})
    run = build.run.id
    build.emit(ev.ItemFailed(run_id=run, lane=1, item="feature #1", reason="the tests fail"))
    build.emit(
        ev.QuestionAsked(run_id=run, lane=2, feature=2, item="feature #2", question="Which tax?")
    )
    build.emit(
        ev.BudgetStop(
            run_id=run, budget="run", name="max_usd", limit_usd=Decimal(1), spent_usd=Decimal(2)
        )
    )

    feed = {row.kind: row.level for row in activity.latest(build.store)}
    log = read_log(
        build.store, LogFilter(run_id=run, level="debug"), render=lambda e: e.kind
    ).entries
    logged = {entry.kind: entry.level for entry in log}

    assert (feed["item_failed"], feed["question"], feed["budget_stop"]) == ("error", "warn", "warn")
    assert {kind: logged[kind] for kind in feed} == feed
