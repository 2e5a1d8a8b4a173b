"""``/``: every project nightcrew knows, with its state, busy lanes, today's
and total cost and a 14-day sparkline; live over ``/events``; ``/api/projects``
is the same as JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from nightcrew.core.errors import BadInput
from nightcrew.server.projects import has_store, known_roots, open_store, spend_of, store_of
from nightcrew.server.render import Renderer
from nightcrew.server.stream import CARDS_EVERY_S, REFRESH_S, Fragments, Watch, follow
from nightcrew.store.records import Store
from nightcrew.views.project_overview import (
    UNREADABLE,
    ProjectCard,
    missing_card,
    project_card,
)

router = APIRouter()
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def card_of(root: Path) -> ProjectCard:
    if not has_store(root):
        return missing_card(root)
    try:
        with open_store(root) as store:
            return project_card(root, store, spend=spend_of(root, store))
    except BadInput:
        return missing_card(root, UNREADABLE)


def all_cards() -> list[ProjectCard]:
    return [card_of(root) for root in known_roots()]


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    renderer: Renderer = request.app.state.renderer
    return HTMLResponse(renderer.page("index.html", cards=all_cards()))


@router.get("/api/projects")
def projects_json() -> JSONResponse:
    return JSONResponse({"projects": [c.as_json() for c in all_cards()]})


@router.get("/events")
async def index_events(request: Request) -> StreamingResponse:
    renderer: Renderer = request.app.state.renderer
    return StreamingResponse(
        follow(lambda: IndexSource(renderer)), media_type="text/event-stream", headers=SSE_HEADERS
    )


@dataclass
class _Watched:
    store: Store
    watch: Watch
    card: ProjectCard


@dataclass
class IndexSource:
    """Every project's card, made again only for a store that changed; the
    list is sent when it reads differently."""

    renderer: Renderer
    watched: dict[Path, _Watched] = field(default_factory=dict)
    others: dict[Path, ProjectCard] = field(default_factory=dict)  # missing, unreadable
    roots: list[Path] = field(default_factory=list)
    roots_at: float = -REFRESH_S
    fragments: Fragments = field(default_factory=Fragments)

    def tick(self) -> tuple[list[str], bool]:
        changed = False
        if time.monotonic() - self.roots_at >= REFRESH_S:
            self.roots, self.roots_at = known_roots(), time.monotonic()
            self._open_new()
            changed = True
        for root, seen in self.watched.items():
            seen.watch.changed()
            if seen.watch.render_due():
                seen.card = project_card(root, seen.store, spend=spend_of(root, seen.store))
                changed = True
        if not changed:
            return [], False
        cards = [
            self.watched[r].card if r in self.watched else self.others[r]
            for r in self.roots
            if r in self.watched or r in self.others
        ]
        html = self.renderer.fragment("_projects.html", cards=cards)
        return self.fragments.changed({"projects": html}, None), False

    def _open_new(self) -> None:
        for root in self.roots:
            if root in self.watched:
                continue
            if not has_store(root):
                self.others[root] = missing_card(root)
                continue
            try:
                store = store_of(root)
            except BadInput:
                self.others[root] = missing_card(root, UNREADABLE)
                continue
            self.others.pop(root, None)
            self.watched[root] = _Watched(store, Watch(store, CARDS_EVERY_S), missing_card(root))

    def close(self) -> None:
        for seen in self.watched.values():
            seen.store.close()
