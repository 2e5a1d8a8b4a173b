"""What the dashboard's controls share: reading a POST's fields (a form as
htmx sends it, or JSON from a script), and answering in one line: a small
HTML fragment for the page, ``{"ok", "message", …}`` for a client that asks
for JSON (``Accept: application/json``). A refusal is one line and a 4xx,
as the CLI's is one line and exit 2.

The CSRF token every POST needs is checked before any of this, by the
guard (``server/security.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import escape

from nightcrew.core.errors import ExitCode, NightcrewError

MAX_BODY = 64 * 1024  # a control's fields; an answer to an agent is the longest


async def fields(request: Request) -> dict[str, list[str]]:
    """The request's fields, each as a list of strings (``ids`` may repeat)."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, f"refused: the request is over {MAX_BODY // 1024} KiB")
    text = body.decode("utf-8", errors="replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(text or "{}")
        except json.JSONDecodeError as exc:
            raise HTTPException(400, f"the body is not JSON: {exc.msg} at {exc.pos}") from None
        if not isinstance(data, dict):
            raise HTTPException(400, "the body is not a JSON object")
        return {
            k: [str(x) for x in v] if isinstance(v, list) else [str(v)]
            for k, v in data.items()
            if v is not None
        }
    return parse_qs(text, keep_blank_values=True)


def one(values: dict[str, list[str]], name: str, *, required: bool = True) -> str | None:
    got = [v for v in values.get(name, []) if v.strip()]
    if not got:
        if required:
            raise HTTPException(400, f"{name}: missing")
        return None
    return got[-1].strip()


def ids(values: dict[str, list[str]], name: str = "ids") -> list[int]:
    """Feature ids as the CLI reads them (``7``, ``#7``, ``3,4``), at least one."""
    found: list[int] = []
    for value in values.get(name, []):
        for part in value.split(","):
            text = part.strip().removeprefix("#")
            if not text:
                continue
            if not text.isdigit():
                raise HTTPException(400, f"{name}: {part.strip()!r} is not a feature id")
            found.append(int(text))
    if not found:
        raise HTTPException(400, f"{name}: no feature given (select some)")
    return found


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def reply(request: Request, message: str, **data: Any) -> Response:
    """Done: the line for a person, with ``data`` for a script."""
    if wants_json(request):
        return JSONResponse({"ok": True, "message": message, **data})
    return HTMLResponse(f'<span class="said ok">{escape(message)}</span>')


def refuse(request: Request, status: int, message: str) -> Response:
    """Refused, in one line (a NightcrewError's message, or the reason)."""
    line = message.strip().splitlines()[0] if message.strip() else "refused"
    if wants_json(request):
        return JSONResponse({"ok": False, "message": line}, status_code=status)
    return HTMLResponse(f'<span class="said bad">{escape(line)}</span>', status_code=status)


# A control's work: given the request's fields, the line to show and data
# for a script; it raises HTTPException or NightcrewError to refuse.
Work = Callable[[dict[str, list[str]]], tuple[str, dict[str, Any]]]


async def act(request: Request, work: Work) -> Response:
    """Read the fields, do ``work`` on a worker thread (it may wait on the
    store's write lock, or for a run's answer), answer in one line."""
    try:
        values = await fields(request)
        message, data = await anyio.to_thread.run_sync(work, values)
    except HTTPException as exc:
        return refuse(request, exc.status_code, str(exc.detail))
    except NightcrewError as exc:
        status = 400 if exc.exit_code == ExitCode.BAD_INPUT else 409  # locked, nothing runs
        return refuse(request, status, exc.message)
    return reply(request, message, **data)
