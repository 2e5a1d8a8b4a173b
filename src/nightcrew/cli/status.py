"""``nightcrew status [--json]``: the project's latest run; after (or during)
a parallel build also its lanes, merge queue, latest landings and worktrees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

    from nightcrew.project import Project
    from nightcrew.views.lanes import LanesView
    from nightcrew.views.worktrees import WorktreeRow


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option(
    "--watch",
    is_flag=True,
    help="Show the run in progress live, as its own console does, until it ends.",
)
@click.option("--wait", is_flag=True, help="With --watch: wait for a run to start.")
def status_command(as_json: bool, watch: bool, wait: bool) -> None:
    """Show the project's latest run: its state, batches, cost and commits;
    for a parallel build, what each lane does, the merge queue, the latest
    landings and the worktrees. With --watch, follow the run in progress
    (exit 0 when it ends, 1 if its process dies, 130 on Ctrl-C)."""
    from rich.console import Console

    from nightcrew.cli.display import summary_table
    from nightcrew.core.errors import BadInput
    from nightcrew.engine.orchestrator import summary_rows, summary_unit
    from nightcrew.project import Project
    from nightcrew.store.records import Store
    from nightcrew.views.lanes import lanes_view
    from nightcrew.views.status import status_data

    if watch and as_json:
        raise BadInput(
            "--watch and --json: give one of them (`nightcrew logs --follow --json`"
            " streams a run's events as JSON)"
        )
    if wait and not watch:
        raise BadInput("--wait goes with --watch")
    project = Project.find(Path.cwd())
    if watch:
        _watch(project, wait=wait)
        return
    if not project.store_path.exists():
        raise BadInput(f"{project.root}: no nightcrew run here yet")
    store = Store.open(project.store_path, create=False)
    try:
        run = store.latest_run()
        if run is None:
            raise BadInput(f"{project.root}: no nightcrew run here yet")
        data = status_data(store, run.id)
        lanes = lanes_view(store, run.id)
        worktrees = _worktrees(project)
        if as_json:
            data.update(lanes.as_json())
            data["worktrees"] = [row.as_json() for row in worktrees]
            click.echo(json.dumps(data, indent=2))
            return
        console = Console(highlight=False)
        r = data["run"]
        cost = "unknown" if r["cost_usd"] is None else f"${r['cost_usd']:.4f}"
        what = f"build {r['id']}" if "features" in data else f"run {r['id']} ({r['plan']})"
        console.print(
            f"{what}: {r['state']}"
            + (f" ({r['state_note']})" if r["state_note"] else "")
            + _paused(r["paused"])
            + f", started {r['started_at']}, cost {cost}",
            markup=False,
        )
        if r["message"] and r["state"] != "running":
            console.print(r["message"], markup=False, soft_wrap=True)
        console.print(summary_table(summary_rows(store, run.id), unit=summary_unit(run.kind)))
        _print_lanes(console, lanes)
        if worktrees:
            from nightcrew.cli.worktrees import worktree_table

            console.print("worktrees", markup=False)
            console.print(worktree_table(project, worktrees), end="", markup=False)
    finally:
        store.close()


def _paused(pause: dict[str, str] | None) -> str:
    """ ", paused since 14:02:11 by NAME (from ORIGIN)", in local time; "" when not paused."""
    if pause is None:
        return ""
    from datetime import datetime

    since = datetime.fromisoformat(pause["since"]).astimezone().strftime("%H:%M:%S")
    return (
        f", paused since {since} by {pause['by']} from {pause['origin']}"
        " (`nightcrew resume` goes on)"
    )


def _watch(project: Project, *, wait: bool) -> None:
    """``--watch``: the live view of the run in progress (cli/status_watch.py)."""
    from nightcrew.cli.status_watch import watch
    from nightcrew.core.errors import ExitCode

    if not project.store_path.exists() and not wait:
        click.echo(f"no run in progress in {project.root} (no run here yet)")
        return
    if not project.store_path.exists():  # a first build is about to make it
        project.open_store().close()
    code = watch(project, wait=wait)
    if code != ExitCode.OK:
        raise SystemExit(code)


def _worktrees(project: Project) -> list[WorktreeRow]:
    """nightcrew's worktrees of the project; none when git cannot list them
    (status still tells the rest)."""
    from nightcrew.core.errors import GitError
    from nightcrew.views.worktrees import worktree_rows

    try:
        return worktree_rows(project.root, project.store_path)
    except GitError:
        return []


def _print_lanes(console: Console, view: LanesView) -> None:
    """Each lane's feature and phase, the merge queue, the latest landings:
    nothing at all for a run with one lane working in place."""
    from nightcrew.cli.amounts import duration, money
    from nightcrew.cli.listing import columns

    if view.lanes:
        header = ("lane", "feature", "title", "phase", "attempt", "model", "elapsed", "cost")
        cells = [
            (
                str(r.lane),
                _feature(r.item, r.feature_id),
                r.title,
                r.phase,
                "-" if r.attempt is None else str(r.attempt),
                r.model or "-",
                duration(r.elapsed_s),
                money(r.cost_usd, unknown=r.cost_unknown)
                if r.cost_usd is not None or r.cost_unknown
                else "-",
            )
            for r in view.lanes
        ]
        console.print("lanes", markup=False)
        console.print(columns(header, cells), end="", markup=False, soft_wrap=True)
    if view.merge_queue:
        queued = ", ".join(
            f"{_named(q.item, q.feature_id, q.title)}"
            f" ({'landing' if q.landing else 'waiting'}, lane {q.lane})"
            for q in view.merge_queue
        )
        console.print(f"merge queue: {queued}", markup=False, soft_wrap=True)
    for landed in view.landed:
        checks = (
            "checks: its lane's, same tree"
            if landed.checks_reused
            else f"checks {landed.gate_seconds:.1f} s"
            + (f" with {', '.join(landed.checked_with)}" if landed.checked_with else "")
        )
        console.print(
            f"landed {_named(landed.item, landed.feature_id, landed.title)}"
            f" as {landed.sha[:10]} on {landed.branch}"
            f" (merge {landed.merge_seconds:.1f} s, {checks})",
            markup=False,
            soft_wrap=True,
        )


def _feature(item: str, feature_id: int | None) -> str:
    return f"#{feature_id}" if feature_id is not None else item


def _named(item: str, feature_id: int | None, title: str) -> str:
    return f"{_feature(item, feature_id)} {title}".rstrip()
