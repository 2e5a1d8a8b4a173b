"""``nightcrew build``: work through the backlog's ready features unattended."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nightcrew.cli.agent_options import attempt_options, prerun_options


def _chain(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    models = tuple(m.strip() for m in value.split(","))
    if not all(models):
        raise click.BadParameter(
            f"{value!r}: give model names separated by commas, e.g. haiku,sonnet,opus",
            param_hint="'--escalation'",
        )
    return models


@click.command("build")
@attempt_options("feature", "build")
@click.option("--model", default=None, help="Model to start each feature with.")
@click.option(
    "--escalation",
    default=None,
    metavar="MODELS",
    help="The model chain a stuck feature climbs, weakest first (e.g. haiku,sonnet,opus).",
)
@click.option(
    "--on-failure",
    type=click.Choice(["stop", "skip", "retry"]),
    default=None,
    help="retry (default): retry, climb the chain when stuck, then skip the feature;"
    " skip: skip a feature after one failed attempt; stop: end the build.",
)
@click.option(
    "--max-attempts-per-feature",
    type=click.IntRange(min=1),
    default=None,
    help="Give a feature up after this many attempts (default: 10).",
)
@click.option(
    "--stuck-after",
    type=click.IntRange(min=1),
    default=None,
    help="The same failure this many times in a row means stuck: climb the chain (default: 3).",
)
@click.option(
    "--max-features",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after working on this many features.",
)
@click.option(
    "--no-tools",
    is_flag=True,
    default=False,
    help="Do not give the agent the backlog tools (claim passing, ask a person, …).",
)
@click.option(
    "--parallel",
    type=click.IntRange(min=1, max=16),
    default=None,
    help="Work on up to N ready features at once, each in its own git worktree (config: parallel).",
)
@click.option(
    "--worktree",
    is_flag=True,
    default=False,
    help="Work in git worktrees even with one lane: your checkout is not touched.",
)
@click.option(
    "--branch",
    "branch",
    default=None,
    metavar="NAME",
    help="Land features on branch NAME (made from HEAD if new) instead of the current"
    " branch; works in worktrees.",
)
@click.option(
    "--branch-per-feature",
    is_flag=True,
    default=False,
    help="Leave each passed feature on its own branch nightcrew/<id>-<name> instead of"
    " merging it (config: branch_per_feature).",
)
@click.option("--resume", is_flag=True, help="Continue the latest build.")
@click.option(
    "--resume-session",
    is_flag=True,
    help="With --resume: continue the interrupted feature's agent session, context and all.",
)
@prerun_options("build")
def build_command(
    agent: str | None,
    model: str | None,
    escalation: str | None,
    gates: tuple[str, ...],
    on_failure: str | None,
    max_attempts_per_feature: int | None,
    stuck_after: int | None,
    max_budget_usd: float | None,
    max_item_usd: float | None,
    attempt_timeout: float | None,
    max_features: int | None,
    no_commit: bool,
    wait_on_limit: bool,
    notify: tuple[str, ...],
    no_tools: bool,
    parallel: int | None,
    worktree: bool,
    branch: str | None,
    branch_per_feature: bool,
    resume: bool,
    resume_session: bool,
    allow_dirty: bool,
    start_new: bool,
    dry_run: bool,
    show_prompt: bool,
) -> None:
    """Build the backlog: the best ready feature, one fresh agent session per
    attempt, judged by its acceptance commands and the gates; then the next,
    until nothing is ready.

    Exit codes: 0 nothing left to do (every feature passed, or the rest is
    skipped, blocked, manual or waiting for a person), 1 a feature failed with
    --on-failure stop, 2 bad input, 3 budget exceeded, 4 another run holds the
    lock, 130 interrupted.
    """
    from nightcrew.agents.plugins import backend_info
    from nightcrew.cli.agent_choice import agent_backend, registered_agents
    from nightcrew.cli.agent_tools import build_tools
    from nightcrew.cli.display import console_reporter
    from nightcrew.cli.notifying import attach_notifier, crash_told
    from nightcrew.config import load_settings
    from nightcrew.core.errors import BadInput
    from nightcrew.engine.builder import Builder, BuildOptions
    from nightcrew.project import Project

    if resume_session and not resume:
        raise BadInput("--resume-session goes with --resume")
    if start_new and resume:
        raise BadInput("--new and --resume contradict each other: pick one")
    if show_prompt and not dry_run:
        raise BadInput("--show-prompt goes with --dry-run")
    project = Project.find(Path.cwd())
    settings = load_settings(
        project.root,
        {
            "agent": agent,
            "model": model,
            "escalation": _chain(escalation),
            "gates": gates or None,
            "on_failure": on_failure,
            "max_attempts_per_feature": max_attempts_per_feature,
            "stuck_after": stuck_after,
            "max_budget_usd": max_budget_usd,
            "max_item_usd": max_item_usd,
            "attempt_timeout": attempt_timeout,
            "commit": False if no_commit else None,
            "wait_on_limit": True if wait_on_limit else None,
            "notify": notify or None,
            "parallel": parallel,
            "branch_per_feature": True if branch_per_feature else None,
        },
        agents=registered_agents(),
    )
    if resume_session and not backend_info(settings.agent).capabilities.resumable_sessions:
        raise BadInput(
            f"--resume-session: the agent backend '{settings.agent}' cannot resume sessions"
        )
    backend = agent_backend(settings, project.root)
    reporter = console_reporter()
    builder = Builder(
        project,
        settings,
        backend,
        reporter,
        BuildOptions(
            resume=resume,
            new=start_new,
            allow_dirty=allow_dirty,
            resume_session=resume_session,
            max_features=max_features,
            worktree=worktree,
            branch=branch,
            # A backend that takes no harness tools builds as with --no-tools.
            tools=None if no_tools or not backend.capabilities.harness_tools else build_tools,
        ),
    )
    if dry_run:
        from nightcrew.cli.rehearsal import rehearse_build

        sys.exit(int(rehearse_build(builder, show_prompt=show_prompt)))
    notifier = attach_notifier(builder.bus, settings, project, "build")
    with crash_told(notifier):
        result = builder.execute()
    sys.exit(int(result.exit_code))
