"""``nightcrew run PLAN``: execute a plan's batches unattended."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nightcrew.cli.agent_options import attempt_options, prerun_options


@click.command("run")
@attempt_options("batch", "run")
@click.argument("plan", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", default=None, help="Model for every attempt (default: the agent's).")
@click.option(
    "--on-failure",
    type=click.Choice(["stop", "skip", "retry"]),
    default=None,
    help="What a failed batch does to the run (default: retry).",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=None,
    help="Retries per batch with --on-failure retry (default: 2).",
)
@click.option("--escalate-model", default=None, help="Model for the last retry of a batch.")
@click.option("--start-batch", type=int, default=None, help="First batch to run.")
@click.option("--end-batch", type=int, default=None, help="Last batch to run.")
@click.option(
    "--branch",
    "branch",
    default=None,
    metavar="NAME",
    help="Commit on branch NAME (made from HEAD if new) instead of the current branch;"
    " it is checked out in your tree first, unless --worktree.",
)
@click.option(
    "--worktree",
    is_flag=True,
    default=False,
    help="With --branch: work in a git worktree of NAME; your checkout is not touched.",
)
@click.option("--resume", is_flag=True, help="Continue the latest run of PLAN.")
@prerun_options("run")
def run_command(
    plan: Path,
    agent: str | None,
    model: str | None,
    gates: tuple[str, ...],
    on_failure: str | None,
    max_retries: int | None,
    escalate_model: str | None,
    max_budget_usd: float | None,
    max_item_usd: float | None,
    attempt_timeout: float | None,
    start_batch: int | None,
    end_batch: int | None,
    branch: str | None,
    worktree: bool,
    no_commit: bool,
    wait_on_limit: bool,
    notify: tuple[str, ...],
    resume: bool,
    allow_dirty: bool,
    start_new: bool,
    dry_run: bool,
    show_prompt: bool,
) -> None:
    """Run PLAN's batches, one fresh agent session each, judged by gates.

    Exit codes: 0 every batch passed (or was skipped by policy), 1 a batch
    failed, 2 bad input, 3 budget exceeded, 4 another run holds the lock,
    130 interrupted.
    """
    from nightcrew.cli.agent_choice import agent_backend, registered_agents
    from nightcrew.cli.display import console_reporter
    from nightcrew.cli.notifying import attach_notifier, crash_told
    from nightcrew.config import load_settings
    from nightcrew.core.errors import BadInput
    from nightcrew.engine.runner import Runner, RunOptions
    from nightcrew.project import Project
    from nightcrew.work.plan import load_plan

    if start_new and resume:
        raise BadInput("--new and --resume contradict each other: pick one")
    if show_prompt and not dry_run:
        raise BadInput("--show-prompt goes with --dry-run")
    if worktree and branch is None:
        raise BadInput("--worktree needs --branch NAME")
    project = Project.find(Path.cwd())
    settings = load_settings(
        project.root,
        {
            "agent": agent,
            "model": model,
            "gates": gates or None,
            "on_failure": on_failure,
            "max_retries": max_retries,
            "escalate_model": escalate_model,
            "max_budget_usd": max_budget_usd,
            "max_item_usd": max_item_usd,
            "attempt_timeout": attempt_timeout,
            "commit": False if no_commit else None,
            "wait_on_limit": True if wait_on_limit else None,
            "notify": notify or None,
        },
        agents=registered_agents(),
    )
    backend = agent_backend(settings, project.root)
    parsed = load_plan(plan, project.root)
    reporter = console_reporter()
    runner = Runner(
        project,
        parsed,
        settings,
        backend,
        reporter,
        RunOptions(
            start_batch=start_batch,
            end_batch=end_batch,
            resume=resume,
            new=start_new,
            allow_dirty=allow_dirty,
            branch=branch,
            worktree=worktree,
        ),
    )
    if dry_run:
        from nightcrew.cli.rehearsal import rehearse_run

        sys.exit(int(rehearse_run(runner, show_prompt=show_prompt)))
    notifier = attach_notifier(runner.bus, settings, project, "run")
    with crash_told(notifier):
        result = runner.execute()
    sys.exit(int(result.exit_code))
