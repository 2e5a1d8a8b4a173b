"""``/p/{key}/timeline``: a run's agent actions, newest first, from the event
log ``nightcrew logs`` reads (``views/event_log.py``), with the same filters
(lane, kind, level, text) in the query string, so a filtered view is a link.
A page ends at a cursor (``?before=`` the oldest id shown: the older ones);
the newest page follows the run live (``/p/{key}/timeline/events``), and a
lane whose agent is thinking says so. ``timeline.ndjson`` and
``timeline.md`` download what the filters select, in the formats of
``nightcrew logs --json`` and ``--markdown``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from nightcrew.core.errors import BadInput
from nightcrew.server.project_page import SSE_HEADERS, project_root
from nightcrew.server.projects import kept, open_store, store_of, thoughts_of
from nightcrew.server.render import LineOf, Renderer
from nightcrew.server.stream import Watch, follow, message, resume_point
from nightcrew.store.records import Store
from nightcrew.views.event_levels import LOG_LEVELS, stored_kinds
from nightcrew.views.event_log import (
    LogEntry,
    LogFilter,
    LogPage,
    Render,
    check_filter,
    markdown,
    ndjson,
    read_log,
)
from nightcrew.views.project_overview import project_key
from nightcrew.views.timeline import LaneThought, latest_run_id

router = APIRouter()
PAGE = 100
EXPORT_LIMIT = 100_000  # events in one download
KEEP_EXPORT_CHARS = 8_000_000  # a bigger download is made again each time, not held
STREAM_EVERY_S = 0.5


@dataclass(frozen=True)
class Query:
    """The timeline's filters as the query string gives them."""

    run: str | None = None
    lane: str = ""
    kind: str = ""
    level: str = "info"
    q: str = ""

    def log_filter(self, run_id: str) -> LogFilter:
        lane = self.lane.strip()
        if lane and not lane.isdigit():
            raise BadInput(f"lane={lane}: not a lane number (0 is a run working in place)")
        kinds = tuple(k for k in (p.strip() for p in self.kind.split(",")) if k)
        return LogFilter(
            run_id=run_id,
            lane=int(lane) if lane else None,
            kinds=kinds,
            level=self.level.strip() or "info",  # type: ignore[arg-type]
            grep=self.q.strip() or None,
        )

    def args(self, **more: Any) -> str:
        """The query string of this view (``more`` changed), for links."""
        fields = {"run": self.run, "lane": self.lane, "kind": self.kind, "q": self.q}
        if self.level != "info":
            fields["level"] = self.level
        fields.update(more)
        return urlencode({k: v for k, v in fields.items() if v not in (None, "")})


def _render(request: Request, root: Path) -> Render:
    line_of: LineOf | None = request.app.state.log_line
    if line_of is None:  # an app made without the cli's words (tests): the plain fields
        return lambda e: f"{e.kind}" + (f" {e.item}" if e.item else "")
    return lambda e: line_of(e, root)


def _opened(store: Store, query: Query) -> tuple[str | None, LogFilter | None]:
    """The run shown and its filter; 400 with one line for a filter that names nothing."""
    run_id = query.run or latest_run_id(store)
    if run_id is None:
        return None, None
    try:
        flt = query.log_filter(run_id)
        check_filter(store, flt)
    except BadInput as exc:
        raise HTTPException(400, str(exc).replace("--", "")) from None
    return run_id, flt


@router.get("/p/{key}/timeline", response_class=HTMLResponse)
def timeline_page(
    key: str,
    request: Request,
    run: str | None = None,
    lane: str = "",
    kind: str = "",
    level: str = "info",
    q: str = "",
    before: str | None = None,
) -> HTMLResponse:
    root = project_root(key)
    query = Query(run, lane, kind, level, q)
    cursor_before = _event_id("before", before)
    renderer: Renderer = request.app.state.renderer
    with open_store(root) as store:
        run_id, flt = _opened(store, query)
        entries: tuple[LogEntry, ...] = ()
        cursor = 0
        thoughts: tuple[LaneThought, ...] = ()
        if run_id is not None and flt is not None:
            render = _render(request, root)
            words = request.app.state.log_line is not None  # else the plain fields (tests)

            def newest(s: Store, f: LogFilter = flt) -> LogPage:
                return read_log(s, f, render=render, before=cursor_before, limit=PAGE, newest=True)

            # its cursor is the latest event of any run: kept until there is a newer one
            page = kept(
                root, store, "timeline", newest, args=(flt, cursor_before, words), events=True
            )
            entries = tuple(reversed(page.entries))
            cursor = page.cursor
            thoughts = thoughts_of(root, store, run_id)
        runs = [
            str(r[0])
            for r in store.db.execute("SELECT id FROM runs ORDER BY started_at DESC LIMIT 30")
        ]
    older = entries[-1].id if len(entries) >= PAGE else None
    return HTMLResponse(
        renderer.page(
            "timeline.html",
            project=_Project(project_key(root), root),
            query=query,
            run_id=run_id,
            runs=runs,
            entries=entries,
            cursor=cursor,
            live=cursor_before is None,
            older=older,
            thoughts=thoughts,
            kinds=stored_kinds(),
            levels=LOG_LEVELS,
        )
    )


def _event_id(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.strip().isdigit():
        raise HTTPException(400, f"{name}={value}: not an event id (a whole number)")
    return int(value)


@dataclass(frozen=True)
class _Project:
    key: str
    root: Path

    @property
    def name(self) -> str:
        return self.root.name or str(self.root)


def _export(key: str, request: Request, query: Query, as_markdown: bool) -> tuple[str, str]:
    root = project_root(key)
    with open_store(root) as store:
        run_id, flt = _opened(store, query)
        if run_id is None or flt is None:
            raise HTTPException(404, f"{root.name}: no run yet")
        render = _render(request, root)

        def export(s: Store) -> str:
            page = read_log(s, flt, render=render, limit=EXPORT_LIMIT)
            if as_markdown:
                return markdown(page.entries, f"nightcrew log: run {run_id}")
            return ndjson(page.entries)

        # a run's events are only ever appended: kept until it has a newer one
        words = request.app.state.log_line is not None  # else the plain fields (tests)
        text = kept(
            root,
            store,
            "export",
            export,
            args=(flt, as_markdown, words),
            run_id=run_id,
            keep_if=lambda t: len(t) <= KEEP_EXPORT_CHARS,
        )
    return text, run_id


@router.get("/p/{key}/timeline.ndjson")
def timeline_ndjson(
    key: str, request: Request, run: str | None = None, lane: str = "", kind: str = "",
    level: str = "info", q: str = "",
) -> Response:  # fmt: skip
    text, run_id = _export(key, request, Query(run, lane, kind, level, q), as_markdown=False)
    return Response(
        text,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="nightcrew-{run_id}.ndjson"'},
    )


@router.get("/p/{key}/timeline.md")
def timeline_markdown(
    key: str, request: Request, run: str | None = None, lane: str = "", kind: str = "",
    level: str = "info", q: str = "",
) -> Response:  # fmt: skip
    text, run_id = _export(key, request, Query(run, lane, kind, level, q), as_markdown=True)
    return Response(
        text,
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="nightcrew-{run_id}.md"'},
    )


@router.get("/p/{key}/timeline/events")
async def timeline_events(
    key: str, request: Request, run: str | None = None, lane: str = "", kind: str = "",
    level: str = "info", q: str = "", after: str | None = None,
) -> StreamingResponse:  # fmt: skip
    root = project_root(key)
    query = Query(run, lane, kind, level, q)
    with open_store(root) as store:
        run_id, flt = _opened(store, query)
    if run_id is None or flt is None:
        raise HTTPException(404, f"{root.name}: no run yet")
    start = resume_point(request.headers.get("last-event-id"), after) or 0
    renderer: Renderer = request.app.state.renderer
    render = _render(request, root)
    return StreamingResponse(
        follow(lambda: TimelineSource(root, renderer, render, flt, run_id, start)),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


@dataclass
class TimelineSource:
    """New entries of the filtered log as rows (``id:`` = their store id), and
    the lanes' thinking indicator when it changed."""

    root: Path
    renderer: Renderer
    render: Render
    flt: LogFilter
    run_id: str
    cursor: int
    store: Store = field(init=False)
    watch: Watch = field(init=False)
    thinking: str | None = None

    def __post_init__(self) -> None:
        self.store = store_of(self.root)
        self.watch = Watch(self.store, STREAM_EVERY_S)

    def tick(self) -> tuple[list[str], bool]:
        if not self.watch.changed() and not self.watch.render_due():
            return [], False
        page = read_log(self.store, self.flt, render=self.render, after=self.cursor, limit=PAGE)
        out = [
            message(
                self.renderer.fragment("_timeline_row.html", entry=e), event="tl", event_id=e.id
            )
            for e in page.entries
        ]
        self.cursor = page.cursor
        html = self.renderer.fragment(
            "_thinking.html", thoughts=thoughts_of(self.root, self.store, self.run_id)
        )
        if html != self.thinking:
            self.thinking = html
            out.append(message(html, event="thinking", event_id=self.cursor or None))
        return out, len(page.entries) >= PAGE

    def close(self) -> None:
        self.store.close()
