"""``nightcrew plan check PLAN [--json]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from nightcrew.config import Settings


@click.group("plan")
def plan_group() -> None:
    """Work with plan files."""


@plan_group.command("check")
@click.argument("plan", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the parsed plan as JSON.")
def check_command(plan: Path, as_json: bool) -> None:
    """Parse PLAN and report its batches, or every problem as file:line."""
    from nightcrew import gitops
    from nightcrew.core.errors import ExitCode
    from nightcrew.engine.routing import for_batch
    from nightcrew.work.plan import PlanError, load_plan

    cwd = Path.cwd()
    root = gitops.repo_root(cwd) if gitops.is_repo(cwd) else cwd
    try:
        parsed = load_plan(plan, root)
    except PlanError as exc:
        if as_json:
            errors = [{"line": line, "message": message} for line, message in exc.errors]
            click.echo(json.dumps({"batches": [], "warnings": [], "errors": errors}, indent=2))
            click.echo(f"nightcrew: {plan}: {len(errors)} error(s)", err=True)
        else:
            for line in exc.lines():
                click.echo(f"nightcrew: {line}", err=True)
        sys.exit(ExitCode.BAD_INPUT)
    settings = _routed(root)
    notify = _notification_targets(root)
    if as_json:
        data = parsed.to_json()
        if settings is not None:  # with [[routing]] rules: each batch's chain and why
            for shown, batch in zip(data["batches"], parsed.batches, strict=True):
                shown["routing"] = for_batch(settings, batch).to_json()
        if notify:  # secrets masked
            data["notify"] = notify
        click.echo(json.dumps({**data, "errors": []}, indent=2))
    else:
        for batch in parsed.batches:
            flag = " (critical: a failure stops the run)" if batch.critical else ""
            empty = " (empty: will be skipped)" if batch.is_empty else ""
            flag += " (no-change-ok)" if batch.no_change_ok else ""
            click.echo(
                f"Batch {batch.number}: {batch.title or '(no title)'}{flag}{empty}"
                f" — {len(batch.tasks)} task(s)"
            )
            for task in batch.tasks:
                click.echo(f"  Task {task.number}: {task.title}")
            if settings is not None and not batch.is_empty:
                route = for_batch(settings, batch)
                click.echo(f"  models: {route.named()} ({route.why})")
        if notify:
            click.echo("notifications: " + ", ".join(notify))
        click.echo(f"{plan}: {len(parsed.batches)} batch(es) OK")
    for warning in parsed.warnings:
        click.echo(f"{plan}:{warning.line}: warning: {warning.message}", err=True)


def _routed(root: Path) -> Settings | None:
    """The settings when the config has ``[[routing]]`` rules (a bad config is
    then one ``file:line`` error); None without rules: the plan alone is checked."""
    from nightcrew.config import find_config, load_settings

    found = find_config(root)
    if found is None or "routing" not in found[2]:
        return None
    settings = load_settings(root)
    return settings if settings.routing else None


def _notification_targets(root: Path) -> list[str]:
    """The config's notification targets, secrets masked; a URL Apprise cannot
    use is one ``file:line`` error. None configured: nothing is loaded."""
    from nightcrew.config import find_config, load_settings
    from nightcrew.config_notify import targets

    found = find_config(root)
    if found is None or "notify" not in found[2]:
        return []
    return [t.shown for t in targets(load_settings(root).notify)]
