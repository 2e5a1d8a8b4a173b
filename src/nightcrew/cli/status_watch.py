"""``nightcrew status --watch``: the live console of a run that works in
another process, fed from the store: the panel (one line per lane, the merge
queue, the money) redrawn as events arrive, and the console's lines scrolling
above it. It ends with the run (its summary, exit 0), when the run's process
dies (exit 1), or on Ctrl-C (exit 130)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from nightcrew.cli.amounts import duration, money
from nightcrew.cli.log_lines import console_prints, log_renderer
from nightcrew.core.errors import ExitCode
from nightcrew.engine.liveness import orchestrator_gone
from nightcrew.store.records import RunRow, Store
from nightcrew.views.event_log import LogEntry, LogFilter, read_log, run_ended
from nightcrew.views.run_watch import RunWatch, WatchedLane, run_in_progress, run_watch

if TYPE_CHECKING:
    from nightcrew.project import Project

POLL_S = 0.5  # how often the store is read (the panel itself redraws 4 times a second)
CONTEXT = 10  # the console lines shown from before the watch began
_STYLE = {"info": "", "warn": "yellow", "error": "bold red"}
_BACKLOG_ORDER = ("passed", "in_progress", "pending", "needs_input", "failed", "skipped")


def watch(
    project: Project,
    *,
    wait: bool,
    console: Console | None = None,
    poll_s: float = POLL_S,
    clock: Callable[[], datetime] = datetime.now,
) -> int:
    """Watch the project's run in progress until it ends; the exit code."""
    console = console or Console(highlight=False)
    store = Store.open(project.store_path, create=False)
    try:
        run = run_in_progress(store)
        if run is None and not wait:
            console.print(_nothing_running(store, project), markup=False, soft_wrap=True)
            return ExitCode.OK
        if run is None:
            console.print(
                f"waiting for a run to start in {project.root} (Ctrl-C to stop)", markup=False
            )
            while run is None:
                time.sleep(poll_s)
                run = run_in_progress(store)
        return _Watch(store, run, project.root, console, clock).run(poll_s)
    finally:
        store.close()


def _nothing_running(store: Store, project: Project) -> str:
    latest = store.latest_run()
    if latest is None:
        return f"no run in progress in {project.root} (no run here yet)"
    what = "build" if latest.kind == "backlog" else "run"
    gone = orchestrator_gone(store, latest)
    state = f"crashed: pid {gone} is gone" if gone is not None else str(latest.state)
    return f"no run in progress in {project.root} (latest: {what} {latest.id}, {state})"


class _Watch:
    def __init__(
        self,
        store: Store,
        run: RunRow,
        root: Path,
        console: Console,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.run_id = run.id
        self.root = root
        self.console = console
        self.clock = clock
        self.render = log_renderer(root)
        self.filter = LogFilter(run_id=run.id, level="info")
        self.view: RunWatch = run_watch(store, run.id, root)

    def run(self, poll_s: float) -> int:
        earlier = read_log(self.store, self.filter, render=self.render, limit=50, newest=True)
        notes = [e for e in earlier.entries if console_prints(e)][-CONTEXT:]
        cursor = earlier.cursor
        what = "build" if self.view.build else "run"
        self.console.print(f"watching {what} {self.run_id} (Ctrl-C to stop watching)", style="bold")
        for entry in notes:
            self._note(entry)
        with Live(
            console=self.console,
            get_renderable=self._panel,
            refresh_per_second=4,
            transient=True,
        ):
            while True:
                page = read_log(self.store, self.filter, render=self.render, after=cursor)
                for entry in page.entries:
                    if console_prints(entry):
                        self._note(entry)
                cursor = page.cursor
                self.view = run_watch(self.store, self.run_id, self.root)
                end = run_ended(self.store, self.run_id, cursor)
                if end is not None:
                    break
                time.sleep(poll_s)
        return self._ended(end.gone)

    def _note(self, entry: LogEntry) -> None:
        """One of the console's lines, above the panel, with its lane."""
        plain = entry.level in ("info", "debug")
        text = entry.line if plain else f"{entry.level}: {entry.line}"
        lane = f"lane {entry.lane} " if entry.lane else ""
        self.console.print(
            f"{lane}{text}",
            style=_STYLE.get(entry.level, ""),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def _ended(self, gone: int | None) -> int:
        from nightcrew.cli.display import summary_table
        from nightcrew.engine.orchestrator import summary_rows, summary_unit

        run = self.store.run(self.run_id)
        if gone is not None:
            self.console.print(
                f"run {self.run_id} stopped without finishing: its process (pid {gone}) is gone;"
                " the next run recovers it",
                style="bold red",
                markup=False,
                soft_wrap=True,
            )
            return ExitCode.WORK_FAILED
        rows = summary_rows(self.store, self.run_id)
        if rows:
            self.console.print(summary_table(rows, unit=summary_unit(run.kind)))
        finished = self.store.db.execute(
            "SELECT payload_json FROM events WHERE run_id = ? AND kind = 'run_finished'"
            " ORDER BY id DESC LIMIT 1",
            (self.run_id,),
        ).fetchone()
        footer = _footer(finished[0]) if finished else ""
        self.console.print(
            footer or f"run {self.run_id}: {run.state}", markup=False, soft_wrap=True
        )
        return ExitCode.OK

    def _panel(self) -> RenderableType:
        return panel(self.view, self.clock())


def _footer(payload_json: str) -> str:
    import json

    payload = json.loads(payload_json)
    footer = payload.get("footer") if isinstance(payload, dict) else None
    return footer if isinstance(footer, str) else ""


def panel(view: RunWatch, now: datetime) -> RenderableType:
    """The panel, as the build's own live console draws it: a heading, one line
    per lane (idle ones on one line), the merge queue, the money."""
    unit = "features" if view.build else "batches"
    what = "build" if view.build else "run"
    started = datetime.fromisoformat(view.started_at)
    elapsed = duration((now.astimezone(started.tzinfo) - started).total_seconds())
    if view.build:
        counts = [
            f"{view.backlog[state]} {state.replace('_', ' ')}"
            for state in _BACKLOG_ORDER
            if view.backlog.get(state)
        ]
        progress = "backlog: " + (", ".join(counts) or "empty")
    else:
        progress = f"{view.done}/{view.items} {unit} done"
    rows: list[RenderableType] = [
        Text.assemble((f"nightcrew {what} {view.run_id}", "bold"), f" · {progress} · {elapsed}")
    ]
    idle: list[str] = []
    for lane in view.lanes:
        if lane.row.phase in ("idle", "landed", "passed"):
            idle.append(str(lane.row.lane))
            continue
        rows.append(_lane_line(lane))
    if idle:
        rows.append(Text(f"  idle: lane {', '.join(idle)}", style="dim"))
    if not view.lanes:
        rows.append(Text("  starting…", style="dim"))
    if view.merge_queue:
        queued = ", ".join(
            f"#{q.feature_id} {q.title}".strip() + (" (landing)" if q.landing else "")
            for q in view.merge_queue
        )
        rows.append(Text(f"  merge queue: {queued}", style="magenta"))
    if view.landed:
        last = ", ".join(f"#{d.feature_id} ({d.sha[:10]})" for d in view.landed[:3])
        rows.append(Text(f"  landed: {last}", style="green"))
    t = view.tokens
    budget = f" of {money(view.budget_usd)}" if view.budget_usd is not None else ""
    rows.append(
        Text(
            f"  {what} {money(view.cost_usd, unknown=view.cost_unknown)}{budget} · tokens"
            f" {t.input + t.cache_read + t.cache_write:,} in / {t.output:,} out"
        )
    )
    return Group(*rows)


def _lane_line(lane: WatchedLane) -> Text:
    r = lane.row
    name = f"#{r.feature_id}" if r.feature_id is not None else f"batch {r.item}"
    tool = f" · {lane.tool}" if lane.tool else ""
    attempt = f" · attempt {r.attempt}" if r.attempt is not None else ""
    cost = money(r.cost_usd, unknown=r.cost_unknown) if r.cost_usd is not None else "-"
    return Text.assemble(
        (f"  {r.lane} " if r.lane else "  ", "cyan"),
        (f"{name} {r.title[:40]}", "bold"),
        f"{attempt} · {r.model or 'default model'} · {r.phase}{tool}"
        f" · {duration(r.elapsed_s)} · {cost}",
    )
