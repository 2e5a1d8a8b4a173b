"""The running run's side of a person's controls: pause, resume, stop.

Requests come from other processes through the store
(:mod:`nightcrew.store.controls`, written by :mod:`nightcrew.engine.steer`).
The run takes them synchronously wherever it would start something — before a
lane claims, before every attempt (a retry of an item already claimed too) —
so no claim or attempt starts after a pause was recorded; and, while its lanes
work or wait, every :data:`POLL_S` seconds from a task on the scheduler's
event loop, so a pause is told at once, a ``stop --now`` stops the agents at
once and a paused run wakes on resume. Polling a small indexed table a few
times a second costs nothing next to an agent; a file or socket waker would
add a second channel to keep consistent with the store for no gain.

A pause lets the attempts in flight finish (gates, commit, landing) and holds
everything else until resume; the run stays alive. A stop does the same and
then ends the run interrupted, resumable with ``--resume``: the items held
before an attempt go back to pending. ``stop --now`` stops every agent at once
through the scheduler's :class:`StopWatch`, as SIGTERM does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable

from nightcrew import proc
from nightcrew.core import events as ev
from nightcrew.core.states import AttemptState
from nightcrew.engine.report import Reporter
from nightcrew.engine.signals import StopWatch
from nightcrew.store.controls import PAUSED, ControlRequest, ControlRequests
from nightcrew.store.records import Store

POLL_S = 0.25  # how often a running run looks for requests while nothing else asks

# What the run answers, for the asking process to print (and status to read: PAUSED).
ALREADY_PAUSED = "already paused"
RESUMED, NOT_PAUSED = "resumed", "not paused"
STOPPING, STOPPING_NOW, ALREADY_STOPPING = "stopping", "stopping now", "already stopping"
ENDED = "the run ended first"


class Controls:
    """One run's pause and stop, fed by the requests addressed to it."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        reporter: Reporter,
        watch: StopWatch | None = None,
        *,
        pid: int | None = None,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.requests = ControlRequests(store)
        self.run_id = run_id
        self.reporter = reporter
        self.watch = watch  # the scheduler's: stop --now stops its agents
        self.pid = os.getpid() if pid is None else pid
        self.poll_s = poll_s
        self.clock = clock
        self.paused_by: ControlRequest | None = None  # the pause in force
        self._paused_at = 0.0
        self.stopping: str | None = None  # why the run stops: a person asked
        self.now = False  # and every agent was stopped at once
        self.parked = 0  # lanes held by the pause before a claim or an attempt
        self.halted = False  # the run stops for its own reasons: the parked lanes end
        self._wake = asyncio.Event()
        self._broken: BaseException | None = None

    @property
    def paused(self) -> bool:
        return self.paused_by is not None

    def blocked(self) -> bool:
        """Take the requests made so far; whether nothing may start now."""
        self.take()
        return self.paused or self.stopping is not None or self.halted

    def take(self) -> None:
        """Do what every request made so far asks, in order, and answer each."""
        for request in self.requests.unanswered(self.run_id, self.pid):
            answer = self._apply(request)
            self.requests.answer(request.id, answer)

    def expire_stale(self) -> None:
        """As the run starts: drop the requests an orchestrator that is gone
        never took (:meth:`ControlRequests.expire_stale`), each told as an event,
        so a pause or stop asked of a crashed build never steers this one."""
        for request in self.requests.expire_stale(self.run_id, self.pid):
            self.reporter.emit(
                ev.ControlExpired(
                    run_id=self.run_id,
                    action=request.action,
                    by=request.by,
                    origin=request.origin,
                    requested_at=request.requested_at,
                    asked_of=f"{request.run_id} (pid {request.pid})",
                )
            )

    def finish(self, *, interrupted: bool) -> None:
        """The run ends: a stop asked for is told (it ends the run interrupted,
        maybe by the SIGTERM its asker sent when the run did not answer in
        time); any other request is answered that the run ended first."""
        for request in self.requests.unanswered(self.run_id, self.pid):
            if interrupted and request.action in ("stop", "stop_now"):
                answer = self._stop(request)
            else:
                answer = ENDED
            self.requests.answer(request.id, answer)

    async def hold(self) -> bool:
        """Before a claim or an attempt: wait while the run is paused. False
        when the run is stopping instead: start nothing."""
        self.take()
        if self._held():
            self.parked += 1
            self._wake_all()  # someone may wait for the lanes to be parked
            try:
                while self._held():
                    await self._wait()
                    self.take()
            finally:
                self.parked -= 1
        if self._broken is not None:
            raise self._broken
        return self.stopping is None and not self.halted

    def halt(self) -> None:
        """The run stops for its own reasons (an outcome that stops it, a signal,
        a lane's error): lanes parked by a pause start nothing and end."""
        self.halted = True
        self._wake_all()

    def _held(self) -> bool:
        return self.paused and self.stopping is None and not self.halted

    async def poll(self) -> None:
        """Take requests every ``poll_s`` while the run's lanes work; a failure
        (the store) wakes the parked lanes, which raise it."""
        try:
            while True:
                await asyncio.sleep(self.poll_s)
                self.take()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._broken = exc
            self._wake_all()
            raise

    async def parked_at_least(self, lanes: int) -> None:
        """Wait until ``lanes`` lanes are held by the pause (for tests and
        whoever must know that nothing is in flight any more)."""
        while self.parked < lanes:
            await self._wait()

    # ---- doing what a request asks ------------------------------------------------

    def _apply(self, request: ControlRequest) -> str:
        if request.action in ("stop", "stop_now"):
            return self._stop(request)
        if self.stopping is not None:
            return ALREADY_STOPPING
        if request.action == "pause":
            if self.paused:
                return ALREADY_PAUSED
            self.paused_by, self._paused_at = request, self.clock()
            self.reporter.emit(
                ev.RunPaused(
                    run_id=self.run_id,
                    by=request.by,
                    origin=request.origin,
                    in_flight=self._in_flight(),
                )
            )
            return PAUSED
        if not self.paused:
            return NOT_PAUSED
        self.paused_by = None
        self.reporter.emit(
            ev.RunResumed(
                run_id=self.run_id,
                by=request.by,
                origin=request.origin,
                paused_seconds=round(self.clock() - self._paused_at, 3),
            )
        )
        self._wake_all()
        return RESUMED

    def _stop(self, request: ControlRequest) -> str:
        now = request.action == "stop_now"
        if self.stopping is not None and (self.now or not now):
            return ALREADY_STOPPING
        how = "stopped now" if now else "stopped"
        self.stopping = f"{how} by {request.by} from {request.origin}"
        self.reporter.emit(
            ev.StopRequested(run_id=self.run_id, by=request.by, origin=request.origin, now=now)
        )
        if now:
            self.now = True
            if self.watch is not None:
                if self.watch.threaded:
                    proc.stop_running()  # gates a lane runs in a worker thread
                self.watch.stop_all(self.stopping, now=True)
        self._wake_all()
        return STOPPING_NOW if now else STOPPING

    def _in_flight(self) -> int:
        row = self.store.db.execute(
            "SELECT count(*) FROM attempts WHERE run_id = ? AND state = ?",
            (self.run_id, str(AttemptState.RUNNING)),
        ).fetchone()
        return int(row[0])

    # ---- waking --------------------------------------------------------------------

    async def _wait(self) -> None:
        """Until something changes here, or ``poll_s`` passed (a request may be waiting)."""
        wake = self._wake
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), self.poll_s)

    def _wake_all(self) -> None:
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()
