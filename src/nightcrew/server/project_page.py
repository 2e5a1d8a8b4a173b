"""``/p/{key}/``: one project's latest run, live. The header's cost badge,
the run's state, a card per lane, the merge queue and the budgets are
fragments the stream (``/p/{key}/events``) sends again when they change;
the feed of events gets each new one with its store id. The estimate of
what is left is not rendered on every tick (it reads every passed feature's
attempts): the stream sends an ``estimate`` event when a feature passed,
failed or was given up, and the page fetches ``/p/{key}/estimate`` then.
``/api/p/{key}/live`` is the same as JSON."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from markupsafe import Markup

from nightcrew.server import activity
from nightcrew.server.projects import (
    find_root,
    has_store,
    kept,
    open_store,
    spend_of,
    store_of,
    thoughts_of,
)
from nightcrew.server.render import Renderer
from nightcrew.server.stream import (
    FRAGMENTS_EVERY_S,
    Fragments,
    Watch,
    follow,
    message,
    resume_point,
)
from nightcrew.store.records import Store
from nightcrew.views.estimates import backlog_estimate
from nightcrew.views.live import LiveView, cost_json, live_view
from nightcrew.views.project_overview import ProjectSpend, project_key
from nightcrew.views.timeline import latest_run_id

router = APIRouter()
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
# The page's live parts: the stream's event name → its template.
FRAGMENTS = {
    "cost": "_cost.html",
    "run": "_run.html",
    "lanes": "_lanes.html",
    "queue": "_queue.html",
    "budgets": "_budgets.html",
}
# Events after which what is left changed: the page fetches its estimate again.
ESTIMATE_KINDS = frozenset({"item_passed", "item_failed", "item_skipped", "claim_checked"})


def project_root(key: str) -> Path:
    """The registered project ``key`` names, with a store to read; 404 otherwise."""
    root = find_root(key)
    if root is None:
        raise HTTPException(404, "no such project: `nightcrew run` registers a project")
    if not has_store(root):
        raise HTTPException(404, f"{root.name}: no nightcrew store there (moved or deleted?)")
    return root


@dataclass(frozen=True)
class ProjectState:
    key: str
    root: Path
    live: LiveView
    spend: ProjectSpend
    thinking: dict[int, str] = field(default_factory=dict)  # lane → the words it is thinking

    @property
    def name(self) -> str:
        return self.root.name or str(self.root)

    def values(self) -> dict[str, Any]:
        return {
            "project": self,
            "live": self.live,
            "spend": self.spend,
            "thinking": self.thinking,
        }


def project_state(root: Path, store: Store) -> ProjectState:
    spend = spend_of(root, store)
    live = live_view(store, today=spend.today, total=spend.total)
    run_id = latest_run_id(store) if live.lanes else None
    thinking = (
        {t.lane: t.excerpt for t in thoughts_of(root, store, run_id) if t.thinking}
        if run_id
        else {}
    )
    return ProjectState(project_key(root), root, live, spend, thinking)


def render_fragments(renderer: Renderer, state: ProjectState) -> dict[str, str]:
    values = state.values()
    return {name: renderer.fragment(template, **values) for name, template in FRAGMENTS.items()}


def feed_of(renderer: Renderer, key: str) -> Callable[[Store], tuple[str, int]]:
    """The feed's lines as HTML and how many: kept until the store has a newer
    event (``views/read_cache.py``), since its 50 rows are most of the page."""

    def feed(store: Store) -> tuple[str, int]:
        rows = activity.latest(store)
        html = "".join(renderer.fragment("_activity_row.html", row=r, key=key) for r in rows)
        return html, len(rows)

    return feed


@router.get("/p/{key}/", response_class=HTMLResponse)
def project_page(key: str, request: Request) -> HTMLResponse:
    root = project_root(key)
    renderer: Renderer = request.app.state.renderer
    with open_store(root) as store:
        state = project_state(root, store)
        feed, rows = kept(root, store, "feed", feed_of(renderer, key), args=key, events=True)
        after = activity.last_event_id(store)
        estimate = kept(root, store, "estimate", backlog_estimate)
    return HTMLResponse(
        renderer.page(
            "project.html",
            **state.values(),
            feed=rows,
            feed_html=Markup(feed),  # rendered and escaped by Jinja
            after=after,
            estimate=estimate,
            key=state.key,
        )
    )


@router.get("/p/{key}/estimate", response_class=HTMLResponse)
def estimate_fragment(key: str, request: Request) -> HTMLResponse:
    """The project page's estimate alone, fetched when the stream says a
    feature ended (``estimate``)."""
    root = project_root(key)
    renderer: Renderer = request.app.state.renderer
    with open_store(root) as store:
        estimate = kept(root, store, "estimate", backlog_estimate)
    return HTMLResponse(renderer.fragment("_estimate_panel.html", estimate=estimate))


@router.get("/api/p/{key}/live")
def project_json(key: str) -> JSONResponse:
    root = project_root(key)
    with open_store(root) as store:
        state = project_state(root, store)
    return JSONResponse(
        {
            "project": {"key": state.key, "root": str(root), "name": state.name},
            **state.live.as_json(),
            "today": cost_json(state.spend.today),
            "total": cost_json(state.spend.total),
        }
    )


@router.get("/p/{key}/events")
async def project_events(key: str, request: Request, after: str | None = None) -> StreamingResponse:
    root = project_root(key)
    renderer: Renderer = request.app.state.renderer
    start = resume_point(request.headers.get("last-event-id"), after)
    return StreamingResponse(
        follow(lambda: ProjectSource(root, renderer, start)),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


@dataclass
class ProjectSource:
    """The project page's stream: new events as feed lines (``id:`` = their
    store id), then the fragments that changed, with the last id read."""

    root: Path
    renderer: Renderer
    start: int | None
    store: Store = field(init=False)
    watch: Watch = field(init=False)
    last_id: int = field(init=False)
    key: str = field(init=False)
    fragments: Fragments = field(default_factory=Fragments)

    def __post_init__(self) -> None:
        self.store = store_of(self.root)
        self.key = project_key(self.root)
        self.watch = Watch(self.store, FRAGMENTS_EVERY_S)
        self.last_id = self.start if self.start is not None else activity.last_event_id(self.store)

    def tick(self) -> tuple[list[str], bool]:
        out: list[str] = []
        rows: list[activity.ActivityRow] = []
        moved = False
        if self.watch.changed():
            rows, last, more = activity.after(self.store, self.last_id)
            out = [
                message(
                    self.renderer.fragment("_activity_row.html", row=row, key=self.key),
                    event="activity",
                    event_id=row.id,
                )
                for row in rows
            ]
            moved = last != self.last_id
            self.last_id = last
            if any(row.kind in ESTIMATE_KINDS for row in rows):  # what is left changed
                out.append(message(str(last), event="estimate"))
            if more:
                self.watch.again()  # the rest at once; the fragments after the last of them
                return out, True
        changed: list[str] = []
        if self.watch.render_due():
            state = project_state(self.root, self.store)
            changed = self.fragments.changed(
                render_fragments(self.renderer, state), self.last_id or None
            )
        if moved and not changed and (not rows or rows[-1].id != self.last_id):
            # only quiet events since: the browser's Last-Event-ID moves past them anyway
            changed.append(message(str(self.last_id), event="seen", event_id=self.last_id))
        return out + changed, False

    def close(self) -> None:
        self.store.close()
