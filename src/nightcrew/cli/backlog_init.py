"""``nightcrew backlog init SPEC.md``: an agent session turns an app spec into
the backlog, through the backlog tools; notified as ``build`` is
(``notify``, ``--notify``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("init")
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", default=None, help="Model for the initializer (default: the agent's).")
@click.option("--append", is_flag=True, help="Add to a backlog that already has features.")
@click.option(
    "--max-budget-usd",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop the session (exit 3) when it has spent this much.",
)
@click.option(
    "--attempt-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Kill the session after this long (default: 1800).",
)
@click.option(
    "--notify",
    "notify",
    multiple=True,
    metavar="URL",
    help="Also notify this Apprise URL (repeatable) when the initializer finishes,"
    " crashes or spends its budget; adds to the config's notify list.",
)
def init_command(
    spec: Path,
    model: str | None,
    append: bool,
    max_budget_usd: float | None,
    attempt_timeout: float | None,
    notify: tuple[str, ...],
) -> None:
    """Read SPEC (an app spec in markdown or text) with an agent that creates the
    backlog's features: category, name, description, steps, acceptance
    commands, priority and dependencies. The store checks every feature and
    reports what it rejected.

    Exit codes: 0 features created, 1 none created, 2 bad input, 3 budget
    exceeded, 4 another run holds the lock, 130 interrupted.
    """
    from nightcrew.agents.plugins import backend_info
    from nightcrew.cli.agent_choice import agent_backend, registered_agents
    from nightcrew.cli.agent_tools import init_tools
    from nightcrew.cli.display import console_reporter
    from nightcrew.cli.notifying import attach_notifier, crash_told
    from nightcrew.config import load_settings
    from nightcrew.core.errors import BadInput
    from nightcrew.engine.initializer import Initializer, InitOptions
    from nightcrew.project import Project

    project = Project.find(Path.cwd())
    settings = load_settings(
        project.root,
        {
            "model": model,
            "max_budget_usd": max_budget_usd,
            "attempt_timeout": attempt_timeout,
            "notify": notify or None,
        },
        agents=registered_agents(),
    )
    if not backend_info(settings.agent).capabilities.harness_tools:
        raise BadInput(
            f"backlog init needs an agent that takes the backlog tools; the agent backend"
            f" '{settings.agent}' does not"
        )
    backend = agent_backend(settings, project.root)
    reporter = console_reporter()
    initializer = Initializer(
        project,
        settings,
        backend,
        reporter,
        InitOptions(spec=spec, append=append, tools=init_tools),
    )
    # Told as a build's are: its finish (features created, cost, time), a budget
    # stop, a crash.
    notifier = attach_notifier(initializer.bus, settings, project, "backlog init")
    with crash_told(notifier):
        result = initializer.execute()
    sys.exit(int(result.exit_code))
