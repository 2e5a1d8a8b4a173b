"""``/p/{key}/graph``: the backlog's dependency graph, each feature a box
coloured by its state that opens the feature's page; ``?passed=hide``
leaves the passed ones out, and so does a backlog of more than
:data:`AUTO_HIDE` features unless ``?passed=show`` (a thousand features in
a chain through the passed ones draw hundreds of columns).
``/api/p/{key}/graph`` is the layout as JSON."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from markupsafe import Markup

from nightcrew.server.graph_svg import graph_svg
from nightcrew.server.project_page import project_root
from nightcrew.server.projects import kept, open_store
from nightcrew.server.render import Renderer
from nightcrew.server.timeline_page import _Project
from nightcrew.store.records import Store
from nightcrew.views.dep_layout import Layout, dependency_layout
from nightcrew.views.project_overview import project_key

router = APIRouter()
AUTO_HIDE = 200
STATES = (
    "pending",
    "in_progress",
    "needs_input",
    "passed",
    "failed",
    "skipped",
    "blocked",
    "manual",
)


def _layout(key: str, passed: str) -> tuple[Layout, Markup, _Project]:
    """The graph laid out and drawn, kept while no feature or dependency
    changed (``views/read_cache.py``)."""
    if passed not in ("", "show", "hide"):
        raise HTTPException(400, f"passed={passed}: give show or hide")
    root = project_root(key)
    with open_store(root) as store:
        hide = passed == "hide"
        if not passed:
            hide = store.db.execute("SELECT count(*) FROM features").fetchone()[0] > AUTO_HIDE

        def drawn(s: Store) -> tuple[Layout, Markup]:
            layout = dependency_layout(s, hide_passed=hide)
            return layout, graph_svg(layout, key)

        layout, svg = kept(root, store, "graph", drawn, args=(hide, key))
    return layout, svg, _Project(project_key(root), root)


@router.get("/p/{key}/graph", response_class=HTMLResponse)
def graph_page(key: str, request: Request, passed: str = "") -> HTMLResponse:
    layout, svg, project = _layout(key, passed)
    renderer: Renderer = request.app.state.renderer
    counts = Counter(n.state for n in layout.nodes)
    return HTMLResponse(
        renderer.page(
            "graph.html",
            project=project,
            layout=layout,
            svg=svg,
            counts=[(s, counts[s]) for s in STATES if counts[s]],
            hidden=bool(layout.hidden),
        )
    )


@router.get("/api/p/{key}/graph")
def graph_json(key: str, passed: str = "") -> JSONResponse:
    layout, _, _ = _layout(key, passed)
    return JSONResponse(
        {
            "nodes": [vars(n) for n in layout.nodes],
            "edges": [list(e) for e in layout.edges],
            "layers": layout.layers,
            "hidden_passed": layout.hidden,
        }
    )
