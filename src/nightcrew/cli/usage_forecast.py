"""``nightcrew usage --forecast``: what is left of a run, in dollars and time,
estimated from the batches that already passed."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from nightcrew.store.records import RunRow, Store
    from nightcrew.usage.ledger import Forecast


def known_run(store: Store, run_id: str, root: Path) -> RunRow:
    from nightcrew.errors import BadInput

    try:
        return store.run(run_id)
    except KeyError:
        raise BadInput(f"--run {run_id}: no such run in {root}") from None


def _seconds(started: str, finished: str | None) -> float:
    if finished is None:
        return 0.0
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


def run_forecast(store: Store, run_id: str) -> tuple[Forecast | None, int, int]:
    """(forecast, passed, left) for a run: each passed item's whole cost and
    time, failed attempts included, times the items still to do."""
    from nightcrew.engine.states import ItemState
    from nightcrew.usage.ledger import forecast

    done: list[tuple[Decimal | None, float]] = []
    left = 0
    for item in store.items(run_id):
        if item.state == ItemState.PASSED:
            attempts = store.attempts(item_id=item.id)
            cost = store.totals(attempts)
            usd = cost.cost_usd if cost.unknown_cost == 0 else None
            done.append((usd, sum(_seconds(a.started_at, a.finished_at) for a in attempts)))
        elif item.state != ItemState.SKIPPED:
            left += 1
    return forecast(done, left), len(done), left


def show_forecast(console: Console, *, run_id: str | None, as_json: bool) -> None:
    from nightcrew.cli.usage_view import forecast_text
    from nightcrew.errors import BadInput
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
        result, passed, left = run_forecast(store, run.id)
    finally:
        store.close()
    if as_json:
        data: dict[str, Any] = {"run": run.id, "passed": passed, "left": left, "forecast": None}
        if result is not None:
            data["forecast"] = {
                key: (float(v) if isinstance(v, Decimal) else v) for key, v in vars(result).items()
            }
        click.echo(json.dumps(data, indent=2))
        return
    if left == 0:
        console.print(f"run {run.id}: nothing left to do", markup=False)
    elif result is None:
        console.print(
            f"run {run.id}: {left} batches left; no batch has passed yet, so there is"
            " nothing to estimate from",
            markup=False,
        )
    else:
        console.print(f"run {run.id}: {forecast_text(result)}", markup=False)
