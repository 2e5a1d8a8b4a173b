"""``nightcrew status [--json]``: the project's latest run."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_command(as_json: bool) -> None:
    """Show the project's latest run: its state, batches, cost and commits."""
    from rich.console import Console

    from nightcrew.cli.display import summary_table
    from nightcrew.core.errors import BadInput
    from nightcrew.engine.orchestrator import summary_rows, summary_unit
    from nightcrew.project import Project
    from nightcrew.store.records import Store
    from nightcrew.views.status import status_data

    project = Project.find(Path.cwd())
    if not project.store_path.exists():
        raise BadInput(f"{project.root}: no nightcrew run here yet")
    store = Store.open(project.store_path, create=False)
    try:
        run = store.latest_run()
        if run is None:
            raise BadInput(f"{project.root}: no nightcrew run here yet")
        data = status_data(store, run.id)
        if as_json:
            click.echo(json.dumps(data, indent=2))
            return
        console = Console(highlight=False)
        r = data["run"]
        cost = "unknown" if r["cost_usd"] is None else f"${r['cost_usd']:.4f}"
        what = f"build {r['id']}" if "features" in data else f"run {r['id']} ({r['plan']})"
        console.print(
            f"{what}: {r['state']}"
            + (f" ({r['state_note']})" if r["state_note"] else "")
            + f", started {r['started_at']}, cost {cost}",
            markup=False,
        )
        if r["message"] and r["state"] != "running":
            console.print(r["message"], markup=False, soft_wrap=True)
        console.print(summary_table(summary_rows(store, run.id), unit=summary_unit(run.kind)))
    finally:
        store.close()
