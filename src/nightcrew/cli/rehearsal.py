"""``run --dry-run`` and ``build --dry-run``: every check before the first
attempt, then what would run (units, gates, prompts, models, budgets), without
starting an agent, taking the lock, creating a run or spending anything."""

from __future__ import annotations

from pathlib import Path

import click

from nightcrew import gitops
from nightcrew.config import Settings
from nightcrew.core.errors import BadInput, ExitCode
from nightcrew.core.states import ItemState
from nightcrew.engine.builder import Builder
from nightcrew.engine.feature_prompt import backlog_prefix, feature_suffix
from nightcrew.engine.gates import changes_gate, judges_the_work
from nightcrew.engine.lane_env import lane_ports
from nightcrew.engine.orchestrator import Orchestrator, gate_line
from nightcrew.engine.prompt import Prompt, stable_prefix, variable_suffix
from nightcrew.engine.routing import for_batch, for_feature
from nightcrew.engine.runner import Runner
from nightcrew.engine.setup_check import setup_problems, setup_warnings
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store


def _open_store(orchestrator: Orchestrator) -> Store | None:
    path = orchestrator.project.store_path
    return Store.open(path) if path.exists() else None


def _refused(orchestrator: Orchestrator, store: Store | None) -> bool:
    problems = orchestrator.problems(store)
    if problems:
        click.echo("nightcrew: " + "; ".join(problems), err=True)
    return bool(problems)


def _money(orchestrator: Orchestrator, unit: str) -> list[str]:
    s = orchestrator.settings
    lines = []
    for label, value in (
        ("this run", s.max_budget_usd),
        (f"one {unit}", s.max_item_usd),
        ("the project today", s.daily_budget_usd),
        ("the project in total", s.total_budget_usd),
    ):
        lines.append(f"  {label}: " + (f"${value:g}" if value is not None else "no limit"))
    return lines


def _show_prompt(prompt: Prompt) -> None:
    click.echo("  prompt (attempt 1):")
    for line in prompt.text.splitlines():
        click.echo(f"    | {line}")


def rehearse_run(runner: Runner, *, show_prompt: bool) -> ExitCode:
    runner._check()
    store = _open_store(runner)
    try:
        if _refused(runner, store):
            return ExitCode.BAD_INPUT
        passed: set[str] = set()
        latest = runner._latest(store) if store is not None else None
        if runner.options.resume:
            if latest is None or store is None:
                raise BadInput(f"{runner.plan.path.name}: no earlier run of this plan to resume")
            passed = {i.key for i in store.items(latest.id) if i.state == ItemState.PASSED}
    finally:
        if store is not None:
            store.close()
    root, settings = runner.project.root, runner.settings
    specs = runner._gate_specs()
    plan_rel = runner.project.relative(runner.plan.path)
    prefix = stable_prefix(
        project_root=root,
        plan_path=plan_rel,
        plan_preamble=runner.plan.preamble,
        gate_lines=[gate_line(s) for s in specs],
        commit=settings.commit,
    )
    click.echo(f"dry run of {plan_rel}: nothing is started, written or spent")
    if runner.branch is not None:
        click.echo(f"the run {runner.branch.describe(root)}")
    in_worktree = runner.branch is not None and runner.branch.worktree
    if (runner.left_alone or runner.options.allow_dirty) and not in_worktree:
        _left_alone(runner)
    for warning in runner.plan.warnings:
        click.echo(f"{plan_rel}:{warning.line}: warning: {warning.message}")
    in_range = [b for b in runner._batches_in_range() if str(b.number) not in passed]
    todo = [b for b in in_range if not b.is_empty]
    for batch in in_range:
        title = f"'{batch.title}'" if batch.title else "(no title)"
        heading = f"batch {batch.number}/{len(runner.plan.batches)} {title}"
        if batch.is_empty:
            click.echo(f"{heading}: empty, skipped without an agent")
            continue
        if batch.critical:
            heading += " (critical: a failure stops the run)"
        click.echo(heading)
        # as engine/batch.py: with nothing else to judge it, the work must change a file
        must_change = not batch.no_change_ok and not judges_the_work(specs)
        extra = [changes_gate([plan_rel])] if must_change else []
        for spec in [*specs, *extra]:
            click.echo(f"  gate {gate_line(spec)}")
        if settings.routing:
            route = for_batch(settings, batch)
            click.echo(f"  models: {route.named()} ({route.why})")
        if show_prompt:
            suffix = variable_suffix(
                project_root=root,
                batch_number=batch.number,
                batch_count=len(runner.plan.batches),
                title=batch.title,
                body=batch.body,
                context_refs=batch.context_refs,
                recent_commits=gitops.recent_commits(root, 5),
                attempt=1,
                previous=None,
            )
            _show_prompt(Prompt(prefix, suffix))
    chain = [settings.model or "the agent's default"]
    if settings.escalate_model:
        chain.append(f"{settings.escalate_model} (last retry)")
    models = "models when no rule matches" if settings.routing else "models"
    click.echo(f"{models}: {' → '.join(chain)}; on failure: {settings.on_failure}")
    click.echo("budgets:")
    for line in _money(runner, "batch"):
        click.echo(line)
    for line in notification_lines(settings):
        click.echo(line)
    click.echo(f"ready: {len(todo)} batch(es) would run")
    return ExitCode.OK


def notification_lines(settings: Settings) -> list[str]:
    """Where notifications go, secrets masked (Apprise's privacy form); none
    without targets."""
    if not settings.notify:
        return []
    from nightcrew.config_notify import targets

    return ["notifications:"] + [f"  {t.shown}" for t in targets(settings.notify)]


def _left_alone(orchestrator: Orchestrator) -> None:
    from nightcrew.engine.preflight import left_alone

    paths = sorted(left_alone(orchestrator.project.root))
    if paths:
        click.echo("left alone, never committed (--allow-dirty): " + ", ".join(paths))


def _setup_refused(settings: Settings, root: Path) -> bool:
    """Whether a worktree setup command cannot work (said as a refusal)."""
    problems = setup_problems(settings, root)
    if problems:
        click.echo("nightcrew: " + "; ".join(problems), err=True)
    return bool(problems)


def _lanes_and_setup(settings: Settings, root: Path) -> None:
    """The lanes' ports, the worktree setup commands and what may fail in them."""
    if settings.parallel > 1:
        # Two lanes per agent: a feature whose merge is checked keeps its ports.
        blocks = [lane_ports(k, settings) for k in range(1, settings.lanes + 1)]
        shown = ", ".join(f"{b.start}-{b.stop - 1}" for b in blocks)
        click.echo(f"lanes: {settings.lanes} for {settings.parallel} agents (ports {shown})")
    if settings.worktree_setup:
        click.echo("worktree setup (in each fresh worktree, before its first attempt):")
        for i, command in enumerate(settings.worktree_setup, 1):
            click.echo(f"  {i}: `{command}`")
    for warning in setup_warnings(settings, root):
        click.echo(f"warning: {warning}", err=True)


def rehearse_build(builder: Builder, *, show_prompt: bool) -> ExitCode:
    builder._check()
    store = Store.open(builder.project.store_path)
    try:
        if _refused(builder, store):
            return ExitCode.BAD_INPUT
        if _setup_refused(builder.settings, builder.project.root):
            return ExitCode.BAD_INPUT
        backlog = Backlog(store)
        ready = backlog.ready()
        settings, root = builder.settings, builder.project.root
        specs = builder._gate_specs()
        prefix = backlog_prefix(
            project_root=root,
            gate_lines=[gate_line(s) for s in specs],
            commit=settings.commit,
            tools=builder.backend.tool_name if builder.options.tools is not None else None,
            worktree=builder.in_worktrees,
        )
        click.echo("dry run of the backlog: nothing is started, written or spent")
        _lanes_and_setup(settings, root)
        if builder.options.allow_dirty:
            _left_alone(builder)
        for feature in ready:
            click.echo(f"feature {feature.label} '{feature.name}'")
            for i, command in enumerate(feature.acceptance, 1):
                click.echo(f"  acceptance {i}: `{command}`")
            for spec in specs:
                click.echo(f"  gate {gate_line(spec)}")
            route = for_feature(settings, feature)
            why = f" ({route.why})" if settings.routing else ""
            click.echo(f"  models: {route.named()}{why}")
            if show_prompt:
                built_on = backlog.require(list(feature.depends_on)) if feature.depends_on else []
                suffix = feature_suffix(
                    feature=feature,
                    built_on=built_on,
                    recent_commits=gitops.recent_commits(root, 5),
                    attempt=1,
                    previous=None,
                )
                _show_prompt(Prompt(prefix, suffix))
    finally:
        store.close()
    click.echo(
        f"on failure: {settings.on_failure}; at most {settings.max_attempts_per_feature}"
        " attempts per feature"
    )
    click.echo("budgets:")
    for line in _money(builder, "feature"):
        click.echo(line)
    for line in notification_lines(settings):
        click.echo(line)
    click.echo(f"ready: {len(ready)} feature(s) ready to build")
    return ExitCode.OK
