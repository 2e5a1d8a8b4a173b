"""``nightcrew usage``: what the agents cost, by run, item, model, day, week,
month, session or 5-hour block; for this project, every project, or your own
Claude Code sessions (``usage import``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import Console

    from nightcrew.usage.ledger import Group
    from nightcrew.views.outcomes import ModelOutcome

BY_CHOICES = ("run", "item", "model", "day", "week", "month", "session", "block", "project")
_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")


def parse_day(flag: str, text: str) -> date:
    """``2026-11-21`` or ``20261121`` (ccusage's form) as a date."""
    found = _DATE.match(text.strip())
    if found:
        try:
            return date(int(found[1]), int(found[2]), int(found[3]))
        except ValueError:
            pass
    raise click.BadParameter(f"expected a date like 2026-11-21, got {text!r}", param_hint=flag)


def local_start(day: date) -> datetime:
    """Local midnight at the start of ``day``, as an aware datetime."""
    return datetime(day.year, day.month, day.day).astimezone()


def time_window(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` are local days, both included."""
    lo = local_start(since) if since else None
    hi = local_start(until + timedelta(days=1)) if until else None
    if lo is not None and hi is not None and lo >= hi:
        raise click.BadParameter(f"{since} is after --until {until}", param_hint="--since")
    return lo, hi


def local_tz() -> tzinfo:
    """The offset days, weeks and months are counted in: the user's, now."""
    tz = datetime.now(UTC).astimezone().tzinfo
    assert tz is not None
    return tz


def new_console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def emit(
    console: Console | None,
    groups: list[Group],
    *,
    by: str,
    source: str,
    since: date | None,
    until: date | None,
    fmt: str,
    title: str,
    extra: dict[str, Any],
    footer: list[str],
    outcomes: Mapping[str, ModelOutcome] | None = None,
) -> None:
    from nightcrew.cli.usage_data import usage_csv, usage_json
    from nightcrew.usage.ledger import totals

    total = totals(groups)
    if fmt == "json":
        data = usage_json(
            groups, total, by=by, source=source, since=since, until=until, extra=extra,
            outcomes=outcomes,
        )  # fmt: skip
        click.echo(json.dumps(data, indent=2))
        return
    if fmt == "csv":
        click.echo(usage_csv(groups, total), nl=False)
        return
    from nightcrew.cli.usage_view import cost_chart, usage_table

    if console is None:
        console = new_console()
    if not groups:
        console.print(f"no usage recorded {title}", markup=False)
    else:
        # A pipe has no width: the table takes what it needs, every column whole.
        width = console.width if console.is_terminal else None
        table = usage_table(groups, total, by=by, title=title, width=width, outcomes=outcomes)
        if width is None:
            console.width = max(
                console.width,
                console.measure(table, options=console.options.update_width(10_000)).maximum,
            )
        console.print(table)
        if by == "day":
            console.print(cost_chart(groups))
    for line in footer:
        console.print(line, markup=False)


@click.group("usage", invoke_without_command=True)
@click.option(
    "--by",
    type=click.Choice(BY_CHOICES),
    default=None,
    help="How to group (default: run for a project, day for transcripts).",
)
@click.option("--since", default=None, metavar="DATE", help="First day (YYYY-MM-DD), local.")
@click.option("--until", default=None, metavar="DATE", help="Last day (YYYY-MM-DD), local.")
@click.option("--run", "run_id", default=None, metavar="ID", help="Only this run.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.option(
    "--all-projects", is_flag=True, help="Every project nightcrew has run in, not just this one."
)
@click.option(
    "--source",
    type=click.Choice(["project", "transcripts"]),
    default="project",
    help="nightcrew's own runs (default), or Claude Code transcripts brought in by"
    " `nightcrew usage import`.",
)
@click.option(
    "--forecast", is_flag=True, help="Estimate the cost and time of what is left of a run."
)
@click.pass_context
def usage_group(
    ctx: click.Context,
    by: str | None,
    since: str | None,
    until: str | None,
    run_id: str | None,
    as_json: bool,
    as_csv: bool,
    all_projects: bool,
    source: str,
    forecast: bool,
) -> None:
    """Tokens and dollars: this project's runs, every project's, or your own
    Claude Code sessions."""
    if ctx.invoked_subcommand is not None:
        return
    from nightcrew.core.errors import BadInput

    if as_json and as_csv:
        raise BadInput("--json and --csv: choose one")
    fmt = "json" if as_json else "csv" if as_csv else "table"
    since_day = parse_day("--since", since) if since else None
    until_day = parse_day("--until", until) if until else None
    lo, hi = time_window(since_day, until_day)
    console = new_console() if fmt == "table" else None  # JSON and CSV need no rich
    if forecast:
        from nightcrew.cli.usage_forecast import show_forecast

        show_forecast(new_console(), run_id=run_id, as_json=as_json)
        return
    if source == "transcripts":
        for flag, given in (("--run", run_id), ("--all-projects", all_projects)):
            if given:
                raise BadInput(f"{flag} applies to nightcrew's own runs, not to transcripts")
        if by in ("run", "item"):
            raise BadInput(f"--by {by} applies to nightcrew's own runs, not to transcripts")
        _transcripts(console, _Query(by or "day", lo, hi, since_day, until_day, fmt))
        return
    query = _Query(by or "run", lo, hi, since_day, until_day, fmt)
    _projects(console, query, run_id, all_projects)


@dataclass(frozen=True)
class _Query:
    """What a report asks for: the grouping, the window and the output format."""

    by: str
    lo: datetime | None  # local midnight of --since
    hi: datetime | None  # local midnight after --until
    since: date | None
    until: date | None
    fmt: str  # table | json | csv


def _transcripts(console: Console | None, q: _Query) -> None:
    from nightcrew.usage.globaldb import open_global
    from nightcrew.views.transcript_usage import transcript_groups

    db = open_global()
    try:
        groups = transcript_groups(db, q.by, q.lo, q.hi, local_tz())
        imported = db.execute("SELECT 1 FROM transcript_files LIMIT 1").fetchone() is not None
    finally:
        db.close()
    footer = []
    if not imported and q.fmt == "table":
        footer.append("no transcripts imported yet: run `nightcrew usage import` first")
    emit(
        console,
        groups,
        by=q.by,
        source="transcripts",
        since=q.since,
        until=q.until,
        fmt=q.fmt,
        title=f"in Claude Code transcripts, by {q.by}",
        extra={},
        footer=footer,
    )


def _projects(console: Console | None, q: _Query, run_id: str | None, all_projects: bool) -> None:
    from contextlib import ExitStack

    from nightcrew.cli.usage_view import project_total_line
    from nightcrew.core.errors import BadInput
    from nightcrew.project import Project
    from nightcrew.store.records import Store
    from nightcrew.views.project_usage import project_report
    from nightcrew.views.runs import known_run

    roots = _registered_roots() if all_projects else [Project.find(Path.cwd()).root]
    with ExitStack() as stack:
        stores = []
        for root in roots:
            path = Project(root).store_path
            if not path.exists():
                if not all_projects:
                    raise BadInput(f"{root}: no nightcrew run here yet")
                continue
            store = Store.open(path, create=False)
            stack.callback(store.close)
            if run_id is not None and not all_projects:
                known_run(store, run_id, root)
            stores.append((root, store))
        report = project_report(stores, q.by, run_id=run_id, since=q.lo, until=q.hi, tz=local_tz())
    tokens, cost, first = report.tokens, report.cost, report.first
    line = project_total_line(tokens, cost, first)
    if all_projects:
        who = "1 project has" if len(roots) == 1 else f"{len(roots)} projects have"
        line = line.replace("this project has", who, 1)
        if not roots:
            line = "no project is registered yet: `nightcrew run` registers the project it runs in"
    title = f"{'in every project' if all_projects else 'in this project'}, by {q.by}"
    emit(
        console,
        report.groups,
        by=q.by,
        source="project" if not all_projects else "all-projects",
        since=q.since,
        until=q.until,
        fmt=q.fmt,
        title=title,
        extra={
            "project_total": {
                "total_tokens": tokens.total,
                "cost_usd": float(cost.usd) if cost.usd is not None else None,
                "cost_unknown": cost.unknown,
                "since": first.isoformat() if first else None,
            },
            "projects": [str(r) for r in roots],
        },
        footer=[line],
        # how each model's attempts went, to judge a model (or a routing rule) by
        outcomes=report.outcomes if q.by == "model" else None,
    )


def _registered_roots() -> list[Path]:
    from nightcrew.usage.globaldb import open_global, registered_projects

    db = open_global()
    try:
        return [p.root for p in registered_projects(db)]
    finally:
        db.close()


@usage_group.command("import")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print what was imported as JSON.")
def import_command(paths: tuple[Path, ...], as_json: bool) -> None:
    """Import Claude Code transcripts (default: ~/.claude/projects and
    $CLAUDE_CONFIG_DIR/projects). Only what was appended since the last import
    is read."""
    from nightcrew.cli.usage_import import run_import

    run_import(paths, as_json=as_json)
