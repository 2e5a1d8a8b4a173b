"""The dashboard as one ASGI app: the pages' routers, the static files, and
the guard (``server/security.py``) in front of everything.

A page is a module with an ``APIRouter``: its HTML route, its event stream
and its JSON twin (``index_page``, ``project_page``, ``files``); a new page
is a new module added to :data:`ROUTERS`. Templates are in ``templates/``
(``base.html`` is the frame, ``_*.html`` the fragments streams send),
scripts and styles in ``static/`` (vendored libraries in ``static/vendor/``
with their licences and versions).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from nightcrew.server import (
    charts_page,
    feature_live,
    feature_page,
    files,
    graph_page,
    index_page,
    kanban_page,
    project_controls,
    project_page,
    timeline_page,
)
from nightcrew.server.render import STATIC, LineOf, Renderer
from nightcrew.server.security import COOKIE, ASGIApp, Guard, Policy

ROUTERS = (
    index_page.router,
    project_page.router,
    files.router,
    kanban_page.router,
    project_controls.router,
    feature_page.router,
    timeline_page.router,
    graph_page.router,
    charts_page.router,
    feature_live.router,
)


def create_app(policy: Policy, *, log_line: LineOf | None = None) -> ASGIApp:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.renderer = Renderer(policy.csrf_token)
    app.state.log_line = log_line  # the timeline's words for an event (``nightcrew logs``')
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.post("/logout")
    def logout() -> Response:
        """Forget this browser: its cookie is cleared (the token still works)."""
        response = Response(status_code=204, headers={"HX-Redirect": "/"})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @app.exception_handler(HTTPException)
    async def refused(_: Request, exc: HTTPException) -> PlainTextResponse:
        return PlainTextResponse(f"{exc.detail}\n", status_code=exc.status_code)

    return Guard(app, policy)
