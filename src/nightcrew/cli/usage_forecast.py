"""``nightcrew usage --forecast``: what is left of a run, in dollars and time,
estimated from the batches that already passed (for a build: the backlog's
features)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from nightcrew.store.records import AttemptRow, RunRow, Store
    from nightcrew.usage.ledger import Forecast


def known_run(store: Store, run_id: str, root: Path) -> RunRow:
    from nightcrew.core.errors import BadInput

    try:
        return store.run(run_id)
    except KeyError:
        raise BadInput(f"--run {run_id}: no such run in {root}") from None


def attempt_seconds(attempt: AttemptRow) -> float:
    """How long an attempt took, agent and gates (0 while it runs)."""
    if attempt.finished_at is None:
        return 0.0
    started = datetime.fromisoformat(attempt.started_at)
    return (datetime.fromisoformat(attempt.finished_at) - started).total_seconds()


def forecast_json(result: Forecast | None) -> dict[str, Any] | None:
    """A forecast with its dollars as JSON numbers."""
    if result is None:
        return None
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in vars(result).items()}


def run_forecast(store: Store, run_id: str) -> tuple[Forecast | None, int, int]:
    """(forecast, passed, left) for a run: each passed item's whole cost and
    time, failed attempts included, times the items still to do."""
    from nightcrew.core.states import ItemState
    from nightcrew.usage.ledger import forecast

    done: list[tuple[Decimal | None, float]] = []
    left = 0
    for item in store.items(run_id):
        if item.state == ItemState.PASSED:
            attempts = store.attempts(item_id=item.id)
            cost = store.totals(attempts)
            usd = cost.cost_usd if cost.unknown_cost == 0 else None
            done.append((usd, sum(attempt_seconds(a) for a in attempts)))
        elif item.state != ItemState.SKIPPED:
            left += 1
    return forecast(done, left), len(done), left


def build_forecast(store: Store) -> tuple[Forecast | None, int, int]:
    """(forecast, passed, left) for a build: the backlog's passed features (their
    attempts in every build, failed ones included, with the costs Claude Code
    reported) times the features still to build. Skipped, blocked, manual and
    waiting features are not counted as left, as in ``backlog stats``."""
    from nightcrew.cli.backlog_money import feature_attempts
    from nightcrew.store.backlog import Backlog
    from nightcrew.usage.ledger import forecast
    from nightcrew.work.backlog_graph import display_states

    features = Backlog(store).features()
    shown = display_states(features)
    done: list[tuple[Decimal | None, float]] = []
    left = 0
    for feature in features:
        state = shown[feature.id]
        attempts = feature_attempts(store, feature.id)
        if state == "passed" and attempts:
            cost = store.totals(attempts)
            usd = cost.cost_usd if cost.unknown_cost == 0 else None
            done.append((usd, sum(attempt_seconds(a) for a in attempts)))
        elif state in ("pending", "in_progress", "failed") and not feature.manual:
            left += 1
    return forecast(done, left), len(done), left


def show_forecast(console: Console, *, run_id: str | None, as_json: bool) -> None:
    from nightcrew.cli.usage_view import forecast_text
    from nightcrew.core.errors import BadInput
    from nightcrew.project import Project
    from nightcrew.store.records import Store

    project = Project.find(Path.cwd())
    if not project.store_path.exists():
        raise BadInput(f"{project.root}: no nightcrew run here yet")
    store = Store.open(project.store_path, create=False)
    try:
        run = known_run(store, run_id, project.root) if run_id else store.latest_run()
        if run is None:
            raise BadInput(f"{project.root}: no nightcrew run here yet")
        build = run.kind == "backlog"
        result, passed, left = build_forecast(store) if build else run_forecast(store, run.id)
    finally:
        store.close()
    if as_json:
        data = {"run": run.id, "passed": passed, "left": left, "forecast": forecast_json(result)}
        if build:
            data = {"run": run.id, "kind": "build", **data}
        click.echo(json.dumps(data, indent=2))
        return
    what, unit, units = ("build", "feature", "features") if build else ("run", "batch", "batches")
    if left == 0:
        console.print(f"{what} {run.id}: nothing left to do", markup=False)
    elif result is None:
        console.print(
            f"{what} {run.id}: {left} {units if left != 1 else unit} left; no {unit} has"
            " passed yet, so there is nothing to estimate from",
            markup=False,
        )
    else:
        console.print(f"{what} {run.id}: {forecast_text(result, unit=unit)}", markup=False)
