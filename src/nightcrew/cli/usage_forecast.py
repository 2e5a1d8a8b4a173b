"""``nightcrew usage --forecast``: what is left of a run, in dollars and time,
estimated from the batches that already passed (for a build: the backlog's
features)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nightcrew.views.forecast import build_forecast, forecast_json, run_forecast
from nightcrew.views.runs import known_run

if TYPE_CHECKING:
    from rich.console import Console


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
