"""``nightcrew plan check PLAN [--json]``."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("plan")
def plan_group() -> None:
    """Work with plan files."""


@plan_group.command("check")
@click.argument("plan", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the parsed plan as JSON.")
def check_command(plan: Path, as_json: bool) -> None:
    """Parse PLAN and report its batches, or the first problem as file:line."""
    from nightcrew import gitops
    from nightcrew.work.plan import load_plan

    cwd = Path.cwd()
    root = gitops.repo_root(cwd) if gitops.is_repo(cwd) else cwd
    parsed = load_plan(plan, root)
    if as_json:
        click.echo(json.dumps(parsed.to_json(), indent=2))
    else:
        for batch in parsed.batches:
            flag = " [CRITICAL]" if batch.critical else ""
            empty = " (empty: will be skipped)" if batch.is_empty else ""
            click.echo(
                f"Batch {batch.number}: {batch.title}{flag}{empty} — {len(batch.tasks)} task(s)"
            )
            for task in batch.tasks:
                click.echo(f"  Task {task.number}: {task.title}")
        click.echo(f"{plan}: {len(parsed.batches)} batch(es) OK")
    for warning in parsed.warnings:
        click.echo(f"{plan}:{warning.line}: warning: {warning.message}", err=True)
