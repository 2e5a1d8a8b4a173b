"""Asking the run in progress to pause, resume or stop, from another process.

``nightcrew pause|resume|stop`` call :func:`ask`, and so will the dashboard.
The run in progress is the one the store says is running whose orchestrator
is alive (:mod:`liveness`): it holds the project lock. The request is a row
addressed to that run and pid (:mod:`nightcrew.store.controls`); the run
takes it within a fraction of a second while its event loop is free, and
answers. When it does not answer in time (it is running checks on its own
thread, or its baseline), the request stays: the run takes it before it
starts anything new. ``stop --now`` does not wait for that: a run that has
not answered within :data:`NOW_WAIT_S` gets SIGTERM, which stops it as it
always has (its agents, its gates, then the run, interrupted).

A request is asked of one orchestrator and dies with it: with nothing running
nothing is written (:class:`NothingRunning`, exit 1); a request the run never
took is answered when the asker sees the run end, or else by the next
orchestrator as it starts (``ControlRequests.expire_stale``).
"""

from __future__ import annotations

import getpass
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from nightcrew.core.errors import NightcrewError
from nightcrew.core.states import RunState
from nightcrew.engine.controls import ALREADY_PAUSED, ENDED
from nightcrew.engine.liveness import orchestrator_gone
from nightcrew.project import Project
from nightcrew.store.controls import Action, ControlRequests, Paused, paused
from nightcrew.store.records import RunRow, Store

ANSWER_WAIT_S = 10.0  # how long the asker waits for the run's answer
NOW_WAIT_S = 2.0  # stop --now: how long before the run gets SIGTERM instead
SIGNALLED = "sent SIGTERM"  # stop --now's answer when the run was busy


class NothingRunning(NightcrewError):
    """No run is in progress in this project: there is nothing to steer (exit 1)."""


@dataclass(frozen=True)
class Answer:
    """What the run did with a request: ``answer`` is one of the run's answers
    (``engine.controls``), :data:`SIGNALLED`, or None when it has not answered
    yet (it takes the request before it starts anything new)."""

    run: RunRow
    action: Action
    answer: str | None
    paused: Paused | None = None  # the pause in force, when it was already paused


def who() -> str:
    """The asking person, as the events name them."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a bare container)
        return f"uid {os.getuid()}"


def running_run(store: Store) -> RunRow | None:
    """The run in progress: marked running, its orchestrator alive."""
    runs = sorted(store.runs_in_state(RunState.RUNNING), key=lambda r: r.started_at)
    for run in reversed(runs):
        if run.orchestrator_pid is not None and orchestrator_gone(store, run) is None:
            return run
    return None


def ask(
    project: Project,
    action: Action,
    *,
    by: str | None = None,
    origin: str | None = None,
    wait_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Answer:
    """Ask the project's run in progress to do ``action`` and wait for its
    answer; :class:`NothingRunning` when there is none."""
    if not project.store_path.exists():
        raise NothingRunning(f"nothing is running in {project.root} (no nightcrew run here yet)")
    store = Store.open(project.store_path, create=False)
    try:
        run = running_run(store)
        if run is None:
            raise NothingRunning(_nothing_running(store, project))
        assert run.orchestrator_pid is not None
        if action == "pause":
            already = paused(store, run.id)
            if already is not None:
                return Answer(run, action, ALREADY_PAUSED, already)
        request = ControlRequests(store).add(
            run.id,
            run.orchestrator_pid,
            action,
            by=by or who(),
            origin=origin or f"cli (pid {os.getpid()})",
        )
        if wait_s is None:
            wait_s = NOW_WAIT_S if action == "stop_now" else ANSWER_WAIT_S
        answer = _answer(store, request, run, wait_s, sleep)
        if answer is None and action == "stop_now":
            os.kill(run.orchestrator_pid, signal.SIGTERM)
            answer = SIGNALLED
        return Answer(run, action, answer, paused(store, run.id))
    finally:
        store.close()


def _answer(
    store: Store, request_id: int, run: RunRow, wait_s: float, sleep: Callable[[float], None]
) -> str | None:
    """The run's answer to the request, waited for up to ``wait_s``; None when
    the run is still busy. A run that ended meanwhile answered every request."""
    requests = ControlRequests(store)
    deadline = time.monotonic() + wait_s
    while True:
        answer = requests.get(request_id).answer
        if answer is not None:
            return answer
        if store.run(run.id).state != RunState.RUNNING or orchestrator_gone(store, run) is not None:
            # The run may have made its last sweep before this request landed:
            # answer it here, so it lingers for nobody (a recycled pid's --resume).
            requests.answer(request_id, ENDED)
            return requests.get(request_id).answer
        if time.monotonic() >= deadline:
            return None
        sleep(0.05)


def _nothing_running(store: Store, project: Project) -> str:
    latest = store.latest_run()
    if latest is None:
        return f"nothing is running in {project.root} (no nightcrew run here yet)"
    gone = orchestrator_gone(store, latest)
    state = "crashed" if gone is not None else str(latest.state)
    return f"nothing is running in {project.root} (the latest, {named(latest)}, is {state})"


def named(run: RunRow) -> str:
    """How a person names a run: ``build ID``, ``run ID (PLAN.md)``, ``backlog init ID``."""
    if run.kind == "backlog":
        return f"build {run.id}"
    if run.kind == "init":
        return f"backlog init {run.id}"
    return f"run {run.id} ({run.source_path})"


def resume_hint(run: RunRow) -> str:
    """How a person continues the run once it stopped."""
    if run.kind == "backlog":
        return "`nightcrew build --resume`"
    if run.kind == "init":
        return f"`nightcrew backlog init {run.source_path}` again"
    return f"`nightcrew run {run.source_path} --resume`"
