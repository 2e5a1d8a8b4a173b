"""``nightcrew logs``: a run's events from the store, one line each in the
console's words, with time, lane and level; ``--follow`` tails a build that
runs in another process until it finishes."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nightcrew.store.records import Store
    from nightcrew.views.event_levels import LogLevel
    from nightcrew.views.event_log import LogEntry, LogFilter, LogPage, Render

# How often --follow looks at the store for new events (the build writes them
# from another process; a read of the index is cheap).
POLL_S = 0.25
_STYLE: dict[str, dict[str, Any]] = {
    "debug": {"dim": True},
    "info": {},
    "warn": {"fg": "yellow"},
    "error": {"fg": "red", "bold": True},
}


@click.command("logs")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until the run ends.")
@click.option("--run", "run_id", metavar="ID", help="The run or build (default: the latest).")
@click.option(
    "--feature",
    metavar="ID",
    help="Only this feature's events (every run of it, unless --run or --follow).",
)
@click.option("--lane", type=click.IntRange(min=0), help="Only this lane's events (0: in place).")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="Only these kinds (repeatable; see docs/events.md).",
)
@click.option(
    "--level",
    metavar="LEVEL",
    help="The least level shown: debug, info, warn or error"
    " (default: info; debug with --kind or --grep).",
)
@click.option("--grep", metavar="TEXT", help="Only events whose line or payload contains TEXT.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event (NDJSON).")
@click.option("--markdown", "as_markdown", is_flag=True, help="A markdown table of the events.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the last N events.")
def logs_command(
    follow: bool,
    run_id: str | None,
    feature: str | None,
    lane: int | None,
    kinds: tuple[str, ...],
    level: str | None,
    grep: str | None,
    as_json: bool,
    as_markdown: bool,
    limit: int | None,
) -> None:
    """Show a run's event log from the store, in the console's words: the
    latest run's by default. Exit codes: 0 shown (or, with --follow, the run
    finished), 1 the followed run's process died, 2 bad input, 130 Ctrl-C."""
    from nightcrew.cli.log_lines import log_renderer
    from nightcrew.core.errors import BadInput, ExitCode
    from nightcrew.project import Project
    from nightcrew.store.records import Store
    from nightcrew.views.event_log import LogFilter, check_filter, pages, read_log

    if as_json and as_markdown:
        raise BadInput("--json and --markdown: give one of them")
    feature_id = _feature_id(feature)
    project = Project.find(Path.cwd())
    if not project.store_path.exists():
        raise BadInput(f"{project.root}: no nightcrew run here yet")
    store = Store.open(project.store_path, create=False)
    try:
        if run_id is None and (feature_id is None or follow):
            latest = store.latest_run()
            if latest is None:
                raise BadInput(f"{project.root}: no nightcrew run here yet")
            run_id = latest.id
        flt = LogFilter(
            run_id=run_id,
            feature=feature_id,
            lane=lane,
            kinds=tuple(dict.fromkeys(kinds)),
            # asking for kinds or words asks for them at every level
            level=cast("LogLevel", level or ("debug" if kinds or grep else "info")),
            grep=grep or None,
        )
        check_filter(store, flt)
        render = log_renderer(project.root)
        show = _shower(as_json, as_markdown, _title(flt))
        shown: Iterable[LogPage] = (
            [read_log(store, flt, render=render, limit=limit, newest=True)]
            if limit is not None
            else pages(store, flt, render=render)
        )
        cursor = 0
        for page in shown:
            for entry in page.entries:
                show(entry)
            cursor = page.cursor
        show.begin()  # a markdown table has its header even when empty
        if not follow:
            return
        code = _follow(store, flt, render, show, cursor=cursor)
    finally:
        store.close()
    if code != ExitCode.OK:
        raise SystemExit(code)


def _feature_id(feature: str | None) -> int | None:
    from nightcrew.core.errors import BadInput

    if feature is None:
        return None
    shown = feature.strip().lstrip("#")
    if not shown.isdigit():
        raise BadInput(f"--feature {feature}: not a feature id (give a number, like 7 or #7)")
    return int(shown)


def _title(flt: LogFilter) -> str:
    if flt.run_id is not None:
        return f"nightcrew log: run {flt.run_id}"
    return f"nightcrew log: feature #{flt.feature}, every run"


def _follow(store: Store, flt: LogFilter, render: Render, show: _Show, *, cursor: int) -> int:
    """Print each new event of the run as the store gets it, until the run ends."""
    from nightcrew.core.errors import ExitCode
    from nightcrew.views.event_log import read_log, run_ended

    assert flt.run_id is not None
    while True:
        page = read_log(store, flt, render=render, after=cursor)
        for entry in page.entries:
            show(entry)
        cursor = page.cursor
        end = run_ended(store, flt.run_id, cursor)
        if end is not None:
            if end.gone is None:
                return ExitCode.OK
            click.echo(
                f"nightcrew: run {flt.run_id} stopped without finishing:"
                f" its process (pid {end.gone}) is gone",
                err=True,
            )
            return ExitCode.WORK_FAILED
        time.sleep(POLL_S)


class _Show:
    """Prints one entry, as a line, an NDJSON object or a markdown row."""

    def __init__(self, mode: str, title: str, *, color: bool | None = None) -> None:
        self.color = color  # None: colours on a terminal only
        self.mode = mode
        self.title = title
        self.started = False
        self.run: str | None = None
        self.spans_runs = title.endswith("every run")
        self.today = datetime.now().astimezone().date()

    def __call__(self, entry: LogEntry) -> None:
        from nightcrew.views.event_log import markdown_row

        if self.mode == "json":
            import json

            self._out(json.dumps(entry.as_json(), ensure_ascii=False))
        elif self.mode == "markdown":
            self.begin()
            self._out(markdown_row(entry).rstrip("\n"))
        else:
            if self.spans_runs and entry.run_id != self.run:
                click.echo(click.style(f"── run {entry.run_id}", bold=True), color=self.color)
                self.run = entry.run_id
            click.echo(click.style(self._line(entry), **_STYLE[entry.level]), color=self.color)
        self.started = True

    def begin(self) -> None:
        if self.mode == "markdown" and not self.started:
            from nightcrew.views.event_log import markdown_head

            self._out(markdown_head(self.title).rstrip("\n"))
            self.started = True

    def _out(self, text: str) -> None:
        click.echo(text)

    def _line(self, entry: LogEntry) -> str:
        when = datetime.fromisoformat(entry.ts).astimezone()
        stamp = when.strftime("%H:%M:%S" if when.date() == self.today else "%Y-%m-%d %H:%M:%S")
        lane = f"lane {entry.lane}" if entry.lane else "      "
        level = "" if entry.level in ("info", "debug") else f"{entry.level}: "
        return f"[{stamp}] {lane} {level}{entry.line}"


def _shower(as_json: bool, as_markdown: bool, title: str) -> _Show:
    mode = "json" if as_json else "markdown" if as_markdown else "text"
    return _Show(mode, title)
