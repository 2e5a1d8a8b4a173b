"""``/p/{key}/features/{id}``: one backlog feature's story (its text, each
attempt with its gates and their logs, its diff and its exact prompt, the
decisions in words) and its Review: a person clicks a line of a passed or
failed attempt's diff, comments on it, and sends the comments back, which
retries the feature with them in its next prompt (the same
:class:`~nightcrew.store.reviews.Reviews` as ``nightcrew backlog review``).
``/p/{key}/runs/{run}/items/{item}`` is the same page for a run's work item
(a plan's batch). ``/api/…`` is the JSON of each."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from nightcrew.core.errors import BadInput
from nightcrew.server.project_page import project_root
from nightcrew.server.projects import evidence_dir, open_store
from nightcrew.server.render import Renderer
from nightcrew.store.reviews import Reviews
from nightcrew.views.project_overview import project_key
from nightcrew.views.work_live import feature_signature, item_signature
from nightcrew.views.work_page import WorkPage, batch_page, feature_page

router = APIRouter()


def feature_or_404(root: Path, feature_id: int) -> WorkPage:
    """The feature's page, or a 404 with the store's one line."""
    with open_store(root) as store:
        try:
            return feature_page(store, evidence_dir(root), feature_id)
        except BadInput as exc:
            raise HTTPException(404, str(exc)) from None


def item_or_404(root: Path, run_id: str, item_key: str) -> WorkPage:
    """A run's work item's page, or a 404 with the store's one line."""
    with open_store(root) as store:
        try:
            return batch_page(store, evidence_dir(root), run_id, item_key)
        except BadInput as exc:
            raise HTTPException(404, str(exc)) from None


def _page(request: Request, root: Path, work: WorkPage, live: str, sig: str) -> HTMLResponse:
    """The page; ``live`` is the URL of its live part (``live``) and of its
    stream (``events?sig=``), ``sig`` what the page shows."""
    renderer: Renderer = request.app.state.renderer
    values = {"key": project_key(root), "project_name": root.name or str(root), "work": work}
    urls = {"live_url": f"{live}/live", "events_url": f"{live}/events?sig={sig}"}
    return HTMLResponse(renderer.page("feature.html", **urls, **values))


@router.get("/p/{key}/features/{feature_id}", response_class=HTMLResponse)
def feature_html(key: str, feature_id: int, request: Request) -> HTMLResponse:
    """The page, live (server/feature_live.py): ``sig`` is what it shows,
    read before it, so its stream sends whatever moved after."""
    root = project_root(key)
    with open_store(root) as store:
        sig = feature_signature(store, feature_id)
    live = f"/p/{project_key(root)}/features/{feature_id}"
    return _page(request, root, feature_or_404(root, feature_id), live, sig)


@router.get("/api/p/{key}/features/{feature_id}")
def feature_json(key: str, feature_id: int) -> JSONResponse:
    return JSONResponse(feature_or_404(project_root(key), feature_id).as_json())


@router.get("/p/{key}/runs/{run_id}/items/{item_key}", response_class=HTMLResponse)
def item_html(key: str, run_id: str, item_key: str, request: Request) -> HTMLResponse:
    """A run's work item (a plan's batch), live as a feature's page is."""
    root = project_root(key)
    with open_store(root) as store:
        sig = item_signature(store, run_id, item_key)
    live = f"/p/{project_key(root)}/runs/{quote(run_id)}/items/{quote(item_key)}"
    return _page(request, root, item_or_404(root, run_id, item_key), live, sig)


@router.get("/api/p/{key}/runs/{run_id}/items/{item_key}")
def item_json(key: str, run_id: str, item_key: str) -> JSONResponse:
    return JSONResponse(item_or_404(project_root(key), run_id, item_key).as_json())


@router.post("/p/{key}/features/{feature_id}/review", response_class=HTMLResponse)
def review_comment(
    key: str,
    feature_id: int,
    request: Request,
    attempt: int = Form(...),
    file: str = Form(...),
    line: int = Form(...),
    text: str = Form(""),
) -> HTMLResponse:
    """A draft comment on a line: the comment in the line's place, and the
    review panel (its drafts and the send button) swapped out of band."""
    root = project_root(key)
    with open_store(root) as store:
        try:
            comment = Reviews(store).add(feature_id, attempt, file=file, line=line, text=text)
        except BadInput as exc:
            raise HTTPException(400, str(exc)) from None
    work = feature_or_404(root, feature_id)
    renderer: Renderer = request.app.state.renderer
    values = {"key": project_key(root), "work": work}
    return HTMLResponse(
        renderer.fragment("_review_comment.html", comment=comment)
        + renderer.fragment("_review_panel.html", oob=True, **values)
    )


@router.post("/p/{key}/features/{feature_id}/review/send")
def review_send(key: str, feature_id: int) -> Response:
    """Send the drafts back and retry the feature; the page reloads to show it."""
    root = project_root(key)
    with open_store(root) as store:
        try:
            sent = Reviews(store).send(feature_id)
        except BadInput as exc:
            raise HTTPException(400, str(exc)) from None
    return Response(
        f"sent {len(sent)} comment(s); feature #{feature_id} is pending again\n",
        media_type="text/plain",
        headers={"HX-Refresh": "true"},
    )
