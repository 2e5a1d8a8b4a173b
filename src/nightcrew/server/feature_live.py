"""The feature page, live: ``/p/{key}/features/{id}/events`` is a stream
filtered to that feature. It sends one ``feature`` message whenever what the
page shows moved (:func:`~nightcrew.views.work_live.feature_signature`: a new
attempt, one that ended, a gate result, a state change, a decision, a review
comment), and the page fetches ``/p/{key}/features/{id}/live`` then: the
state, the decisions, the Review panel and the attempts, swapped in place
(the header's cost badge out of band). The page passes the signature it was
rendered at (``?sig=``), so a change made between the render and the stream's
start, or while the stream was down, is fetched too. A run's work item (a
plan's batch) is live the same way, at ``/p/{key}/runs/{run}/items/{key}``
(:func:`~nightcrew.views.work_live.item_signature`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from nightcrew.server.feature_page import feature_or_404, item_or_404
from nightcrew.server.project_page import SSE_HEADERS, project_root
from nightcrew.server.projects import store_of
from nightcrew.server.render import Renderer
from nightcrew.server.stream import FRAGMENTS_EVERY_S, Watch, follow, message
from nightcrew.store.records import Store
from nightcrew.views.project_overview import project_key
from nightcrew.views.work_live import feature_signature, item_signature
from nightcrew.views.work_page import WorkPage

router = APIRouter()


def _live(request: Request, root: Path, work: WorkPage) -> HTMLResponse:
    renderer: Renderer = request.app.state.renderer
    values = {"key": project_key(root), "work": work}
    return HTMLResponse(
        renderer.fragment("_feature_live.html", **values)
        + renderer.fragment("_feature_cost.html", oob=True, **values)
    )


def _stream(root: Path, signature: Callable[[Store], str], sig: str) -> StreamingResponse:
    return StreamingResponse(
        follow(lambda: WorkSource(root, signature, sig)),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


@router.get("/p/{key}/features/{feature_id}/live", response_class=HTMLResponse)
def feature_live(key: str, feature_id: int, request: Request) -> HTMLResponse:
    """The live part of the feature page, fetched when its stream says so."""
    root = project_root(key)
    return _live(request, root, feature_or_404(root, feature_id))


@router.get("/p/{key}/features/{feature_id}/events")
async def feature_events(key: str, feature_id: int, sig: str = "") -> StreamingResponse:
    root = project_root(key)
    feature_or_404(root, feature_id)  # 404 for a feature that is not there
    return _stream(root, lambda store: feature_signature(store, feature_id), sig)


@router.get("/p/{key}/runs/{run_id}/items/{item_key}/live", response_class=HTMLResponse)
def item_live(key: str, run_id: str, item_key: str, request: Request) -> HTMLResponse:
    """The live part of a work item's page, fetched when its stream says so."""
    root = project_root(key)
    return _live(request, root, item_or_404(root, run_id, item_key))


@router.get("/p/{key}/runs/{run_id}/items/{item_key}/events")
async def item_events(key: str, run_id: str, item_key: str, sig: str = "") -> StreamingResponse:
    root = project_root(key)
    item_or_404(root, run_id, item_key)  # 404 for an item that is not there
    return _stream(root, lambda store: item_signature(store, run_id, item_key), sig)


@dataclass
class WorkSource:
    """One feature's or work item's stream: a ``feature`` message each time
    its signature moved."""

    root: Path
    signature: Callable[[Store], str]
    seen: str  # the signature the page shows
    store: Store = field(init=False)
    watch: Watch = field(init=False)

    def __post_init__(self) -> None:
        self.store = store_of(self.root)
        self.watch = Watch(self.store, FRAGMENTS_EVERY_S / 2)

    def tick(self) -> tuple[list[str], bool]:
        self.watch.changed()
        if not self.watch.render_due():
            return [], False
        now = self.signature(self.store)
        if now == self.seen:  # a usage row, a tool call: nothing the page shows
            return [], False
        self.seen = now
        return [message(now, event="feature")], False

    def close(self) -> None:
        self.store.close()
