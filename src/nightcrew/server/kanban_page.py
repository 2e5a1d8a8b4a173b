"""``/p/{key}/backlog``: the backlog as a Kanban board, live, and the
changes a person makes there. Each change is the same
:class:`~nightcrew.store.backlog.Backlog` method the ``nightcrew backlog``
command calls (``reorder``, ``skip``, ``retry [--model]``, ``edit
--priority``, ``answer``), one atomic transaction each, so the board and the
CLI cannot disagree and a build running meanwhile sees the change at its
next claim.

The stream (``/p/{key}/backlog/events``) sends the board again when the
store changed and the board's HTML did, and the header's estimate of what is
left (views/estimates.py) with it: the page is served without the estimate
(it reads every passed feature's attempts, as long again as the board) and
the stream's first message fills it in; ``/api/p/{key}/backlog`` is the
board as JSON. Every POST answers one line (JSON with ``Accept:
application/json``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from markupsafe import Markup

from nightcrew.server.actions import Work, act, ids, one
from nightcrew.server.project_page import SSE_HEADERS, project_root
from nightcrew.server.projects import kept, open_store, store_of
from nightcrew.server.render import Renderer
from nightcrew.server.stream import FRAGMENTS_EVERY_S, Fragments, Watch, follow
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.views.estimates import backlog_estimate
from nightcrew.views.kanban import board

router = APIRouter()
BY = "the dashboard"  # how the features' history names a change made here


def board_html(key: str, root: Path, store: Store, renderer: Renderer) -> str:
    """The board's HTML, kept while no feature, dependency or attempt changed
    (``views/read_cache.py``): 1,000 cards take longer to render than to read."""

    def render(s: Store) -> str:
        return renderer.fragment("_board.html", key=key, board=board(Backlog(s)))

    return kept(root, store, "board.html", render, args=key)


def _board_html(key: str, root: Path, renderer: Renderer) -> str:
    with open_store(root) as store:
        return board_html(key, root, store, renderer)


@router.get("/p/{key}/backlog", response_class=HTMLResponse)
def backlog_page(key: str, request: Request) -> HTMLResponse:
    root = project_root(key)
    renderer: Renderer = request.app.state.renderer
    shown = Markup(_board_html(key, root, renderer))  # rendered and escaped by Jinja
    name = root.name or str(root)
    return HTMLResponse(
        renderer.page("backlog.html", key=key, title=name, root=root, board_html=shown)
    )


@router.get("/p/{key}/backlog/board", response_class=HTMLResponse)
def board_fragment(key: str, request: Request) -> HTMLResponse:
    """The board alone: the page puts it back after a refused drag."""
    renderer: Renderer = request.app.state.renderer
    return HTMLResponse(_board_html(key, project_root(key), renderer))


@router.get("/api/p/{key}/backlog")
def backlog_json(key: str) -> Response:
    root = project_root(key)

    def body(store: Store) -> bytes:
        content = {"project": {"key": key, "root": str(root)}, **board(Backlog(store)).as_json()}
        return bytes(JSONResponse(content).body)  # its bytes, kept with the board they show

    with open_store(root) as store:
        return Response(kept(root, store, "board.json", body), media_type="application/json")


@router.get("/p/{key}/backlog/events")
async def backlog_events(key: str, request: Request) -> StreamingResponse:
    root = project_root(key)
    renderer: Renderer = request.app.state.renderer
    return StreamingResponse(
        follow(lambda: BoardSource(key, root, renderer)), media_type="text/event-stream",
        headers=SSE_HEADERS,
    )  # fmt: skip


@dataclass
class BoardSource:
    """The board, sent again when it changed (it carries no event ids: it is
    a whole state, and a new stream sends it first)."""

    key: str
    root: Path
    renderer: Renderer
    store: Store = field(init=False)
    watch: Watch = field(init=False)
    fragments: Fragments = field(default_factory=Fragments)
    seen: tuple[object, ...] | None = None

    def __post_init__(self) -> None:
        self.store = store_of(self.root)
        self.watch = Watch(self.store, FRAGMENTS_EVERY_S / 2)

    def tick(self) -> tuple[list[str], bool]:
        self.watch.changed()
        if not self.watch.render_due():
            return [], False
        seen = board_signature(self.store)
        if seen == self.seen:  # a usage row, an event: nothing on the board moved
            return [], False
        self.seen = seen
        html = board_html(self.key, self.root, self.store, self.renderer)
        estimate = self.renderer.fragment(
            "_estimate_head.html",
            estimate=kept(self.root, self.store, "estimate", backlog_estimate),
        )
        return self.fragments.changed({"board": html, "estimate": estimate}, None), False

    def close(self) -> None:
        self.store.close()


Change = Callable[[Backlog, dict[str, list[str]]], tuple[str, dict[str, Any]]]


# What the board shows changes only with these: a feature's state, text,
# order, priority, model or attempts (``version``, ``attempts``, ``position``),
# a dependency, an attempt that ended (its cost). A busy build commits a usage
# row several times a second; none of those moves a card.
_SIGNATURE_SQL = """
SELECT (SELECT count(*) || ':' || total(version) || ':' || total(attempts) || ':'
               || total(position) || ':' || ifnull(max(updated_at), '') FROM features),
       (SELECT count(*) FROM feature_deps),
       (SELECT group_concat(id || '=' || model) FROM features WHERE model IS NOT NULL),
       (SELECT count(*) || ':' || ifnull(max(finished_at), '') FROM attempts)
"""


def board_signature(store: Store) -> tuple[object, ...]:
    return tuple(store.db.execute(_SIGNATURE_SQL).fetchone())


def _change(key: str, change: Change) -> Work:
    """``change`` done on the project's backlog, opened for that request."""
    root = project_root(key)

    def work(values: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
        with open_store(root) as store:
            return change(Backlog(store), values)

    return work


@router.post("/p/{key}/backlog/reorder")
async def reorder(key: str, request: Request) -> Response:
    """``nightcrew backlog reorder ID --before ID`` (or ``--after ID``: a card
    dropped last in its column, or moved down with its keyboard button)."""

    def change(backlog: Backlog, values: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
        [moved] = ids(values, "id")
        if values.get("after") and not values.get("before"):
            [after] = ids(values, "after")
            backlog.reorder(moved, after=after)
            return f"#{moved} now comes after #{after}", {"id": moved, "after": after}
        [before] = ids(values, "before")
        backlog.reorder(moved, before=before)
        return f"#{moved} now comes before #{before}", {"id": moved, "before": before}

    return await act(request, _change(key, change))


@router.post("/p/{key}/backlog/skip")
async def skip(key: str, request: Request) -> Response:
    """``nightcrew backlog skip ID…``."""

    def change(backlog: Backlog, values: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
        wanted = ids(values)
        done = [f.id for f in backlog.skip(wanted, reason=f"skipped from {BY}")]
        already = [i for i in wanted if i not in done]
        line = _listed(done, "skipped") + (
            f"; {_listed(already, 'already skipped')}" if already else ""
        )
        return line, {"skipped": done, "already_skipped": already}

    return await act(request, _change(key, change))


@router.post("/p/{key}/backlog/retry")
async def retry(key: str, request: Request) -> Response:
    """``nightcrew backlog retry ID… [--model M]``."""

    def change(backlog: Backlog, values: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
        wanted = ids(values)
        model = one(values, "model", required=False)
        reason = f"retry requested from {BY}" + (f" with {model}" if model else "")
        features = backlog.retry(wanted, model=model, reason=reason)
        line = _listed([f.id for f in features], "pending")
        return line + (f", next attempts with {model}" if model else ""), {
            "ids": wanted,
            "model": model,
        }

    return await act(request, _change(key, change))


@router.post("/p/{key}/backlog/priority")
async def priority(key: str, request: Request) -> Response:
    """``nightcrew backlog edit ID --priority N``, for each selected feature."""

    def change(backlog: Backlog, values: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
        wanted = ids(values)
        text = one(values, "priority") or ""
        try:
            number = int(text)
        except ValueError:
            raise HTTPException(400, f"priority: {text!r} is not a whole number") from None
        backlog.require(wanted)  # every id known before any changes
        for fid in wanted:
            backlog.edit(fid, priority=number)
        return _listed(wanted, f"priority {number} (lower runs sooner)"), {
            "ids": wanted,
            "priority": number,
        }

    return await act(request, _change(key, change))


@router.post("/p/{key}/backlog/answer")
async def answer(key: str, request: Request) -> Response:
    """``nightcrew backlog answer ID TEXT``."""

    def change(backlog: Backlog, values: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
        [fid] = ids(values, "id")
        text = one(values, "text")
        feature = backlog.answer(fid, text or "")
        return f"#{feature.id} {feature.name}: answered; back in the queue", {"id": fid}

    return await act(request, _change(key, change))


def _listed(feature_ids: list[int], what: str) -> str:
    return f"{', '.join(f'#{i}' for i in feature_ids)}: {what}" if feature_ids else f"none {what}"
