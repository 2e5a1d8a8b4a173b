"""The project page's controls: pause, resume, stop, stop now, and start a
build. Each is what the CLI does, through the same code:
``nightcrew pause|resume|stop [--now]`` are :func:`nightcrew.engine.steer.ask`
and so are these (the run's answer shown as the CLI prints it), and a build
started here is the very ``nightcrew build`` process a person starts in the
project, detached from the server (its own session; its output in
``.nightcrew/dashboard-build.log``): it takes the project lock, and it goes
on if the dashboard stops. A build refused here (a run holds the lock) is
one line, as the CLI's refusal is.

Every control is a POST (with the CSRF token the guard checks) answering one
line, or JSON with ``Accept: application/json``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from nightcrew.core.errors import LockHeld, NightcrewError
from nightcrew.engine.controls import ENDED
from nightcrew.engine.lock import ProjectLock
from nightcrew.engine.steer import NothingRunning, ask, who
from nightcrew.project import Project
from nightcrew.server.actions import act, one
from nightcrew.server.project_page import project_root
from nightcrew.store.controls import Action
from nightcrew.views.steer_answer import said

router = APIRouter()
ACTIONS: dict[str, Action] = {
    "pause": "pause",
    "resume": "resume",
    "stop": "stop",
    "stop-now": "stop_now",
}
BUILD_LOG = "dashboard-build.log"
STARTED_WAIT_S = 60.0  # until the new build holds the lock (a loaded machine imports slowly)


@router.post("/p/{key}/control/{action}")
async def control(key: str, action: str, request: Request) -> Response:
    """``nightcrew pause|resume|stop [--now]``."""
    root = project_root(key)
    if action not in ACTIONS:
        raise HTTPException(404, f"no control {action!r} (pause, resume, stop, stop-now)")

    def work(_: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
        answer = ask(
            Project(root), ACTIONS[action], by=who(), origin=f"dashboard (pid {os.getpid()})"
        )
        if answer.answer == ENDED:
            raise NothingRunning(said(answer))
        return said(answer), {"run_id": answer.run.id, "answer": answer.answer}

    return await act(request, work)


@router.post("/p/{key}/build")
async def start_build(key: str, request: Request) -> Response:
    """``nightcrew build [--parallel N] [--model M] [--max-budget-usd X]``,
    started detached in the project."""
    root = project_root(key)

    def work(values: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
        argv = build_argv(values)
        refuse_if_locked(Project(root))
        pid = spawn_build(root, argv)
        return f"build started (pid {pid}): nightcrew {' '.join(argv)}", {"pid": pid, "argv": argv}

    return await act(request, work)


def build_argv(values: dict[str, list[str]]) -> list[str]:
    """The ``nightcrew`` arguments of the build the form asks for."""
    argv = ["build"]
    parallel = one(values, "parallel", required=False)
    if parallel is not None:
        if not parallel.isdigit() or not 1 <= int(parallel) <= 16:
            raise HTTPException(400, f"parallel: {parallel!r} is not a whole number from 1 to 16")
        argv += ["--parallel", parallel]
    model = one(values, "model", required=False)
    if model is not None:
        if model.startswith("-") or any(c.isspace() for c in model):
            raise HTTPException(400, f"model: {model!r} is not a model name")
        argv += ["--model", model]
    budget = one(values, "max_budget_usd", required=False)
    if budget is not None:
        try:
            usd = Decimal(budget.removeprefix("$"))
        except InvalidOperation:
            usd = Decimal(-1)
        if not usd.is_finite() or usd <= 0:
            raise HTTPException(400, f"max budget: {budget!r} is not an amount of dollars above 0")
        argv += ["--max-budget-usd", f"{usd}"]
    return argv


def refuse_if_locked(project: Project) -> None:
    """LockHeld (one line) when a run holds the project lock. Taken and let
    go at once: the build takes it itself, and refuses as the CLI does if
    another one got there in between."""
    lock = ProjectLock(project.lock_path)
    try:
        lock.acquire()
    except LockHeld as exc:
        raise LockHeld(f"no build started: {exc.message}") from None
    lock.release()


def spawn_build(root: Path, argv: list[str]) -> int:
    """Start ``nightcrew ARGV`` in ``root`` in its own session, its output to
    the build log, reaped by a thread of this server when it ends; return its
    pid once it holds the project lock. One that ends before that is refused
    with the last line it wrote (a bad model, a missing backlog …)."""
    project = Project(root)
    project.dir.mkdir(parents=True, exist_ok=True)
    log_path = project.dir / BUILD_LOG
    with log_path.open("ab") as log:
        started = log.tell()
        process = subprocess.Popen(
            [sys.executable, "-m", "nightcrew", *argv],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    threading.Thread(target=process.wait, name=f"reap build {process.pid}", daemon=True).start()
    deadline = time.monotonic() + STARTED_WAIT_S
    while time.monotonic() < deadline:
        if _lock_holder(project) == process.pid:
            return process.pid
        code = process.poll()
        if code is not None:
            last = _last_line(log_path, started)
            if code != 0:
                raise BuildRefused(f"the build ended at once (exit {code}): {last}")
            return process.pid  # done already (nothing was ready): the log says so
        time.sleep(0.05)
    return process.pid  # still starting: it takes the lock or says why in the log


def _lock_holder(project: Project) -> int | None:
    try:
        text = project.lock_path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class BuildRefused(NightcrewError):
    """The build started here ended at once, with an error (a bad option …)."""


def _last_line(log_path: Path, since: int) -> str:
    with log_path.open("rb") as log:
        log.seek(since)
        lines = log.read()[-4096:].decode(errors="replace").strip().splitlines()
    return lines[-1].removeprefix("nightcrew: ") if lines else "(no output)"
