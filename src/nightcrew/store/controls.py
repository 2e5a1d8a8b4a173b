"""A person's requests to the run in progress: pause, resume, stop, stop now.

The run holds the project lock in its own process; ``nightcrew pause`` (and
later the dashboard) runs in another. So a request is a row of
``control_requests`` (m009): the asking process writes it, the running run
polls for the rows addressed to it (its run id and its orchestrator's pid),
does what they ask, and writes its answer back, which the asker waits for.
Whether a run is paused is read from the answers its orchestrator gave
(:func:`paused`), so ``status`` and a later dashboard need nothing else.

A request lives only as long as the orchestrator it was addressed to: one
that orchestrator never answered (it crashed, or the request landed as it
ended) is answered :data:`EXPIRED` by the next orchestrator as it starts
(:meth:`ControlRequests.expire_stale`), so a pause or stop asked of one build
never pauses or stops another, even when the kernel gives the new process the
old one's pid and ``--resume`` reuses the run id.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Literal, cast, get_args

from nightcrew.core.states import RunState
from nightcrew.store.db import utcnow
from nightcrew.store.records import Store

Action = Literal["pause", "resume", "stop", "stop_now"]
ACTIONS: tuple[Action, ...] = get_args(Action)

# The run's answers that change whether it is paused (engine/controls.py answers them).
PAUSED = "paused"
_TURNS = (PAUSED, "resumed", "stopping", "stopping now")
# The answer to a request whose orchestrator ended without taking it.
EXPIRED = "expired: the run it was asked of had ended"


@dataclass(frozen=True)
class ControlRequest:
    id: int
    run_id: str
    pid: int  # the orchestrator it is addressed to
    action: Action
    requested_at: str
    by: str  # who asked
    origin: str  # where from: "cli (pid 4242)"
    answered_at: str | None = None
    answer: str | None = None  # what the run did: "paused", "already paused" …

    @classmethod
    def of(cls, row: sqlite3.Row) -> ControlRequest:
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            pid=row["pid"],
            action=cast(Action, row["action"]),
            requested_at=row["requested_at"],
            by=row["requested_by"],
            origin=row["origin"],
            answered_at=row["answered_at"],
            answer=row["answer"],
        )


class ControlRequests:
    """The ``control_requests`` rows of one project store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, run_id: str, pid: int, action: Action, *, by: str, origin: str) -> int:
        """Record a request for the run ``run_id`` whose orchestrator is ``pid``."""
        if action not in ACTIONS:
            raise ValueError(f"unknown control action {action!r}")
        with self.store.transaction() as db:
            cur = db.execute(
                "INSERT INTO control_requests (run_id, pid, action, requested_at,"
                " requested_by, origin) VALUES (?,?,?,?,?,?)",
                (run_id, pid, action, utcnow(), by, origin),
            )
        return int(cur.lastrowid or 0)

    def get(self, request_id: int) -> ControlRequest:
        row = self.store.db.execute(
            "SELECT * FROM control_requests WHERE id = ?", (request_id,)
        ).fetchone()
        if row is None:
            raise KeyError(request_id)
        return ControlRequest.of(row)

    def unanswered(self, run_id: str, pid: int) -> list[ControlRequest]:
        """The requests addressed to this run's orchestrator not yet answered, oldest first."""
        rows = self.store.db.execute(
            "SELECT * FROM control_requests WHERE run_id = ? AND pid = ? AND answered_at IS NULL"
            " ORDER BY id",
            (run_id, pid),
        ).fetchall()
        return [ControlRequest.of(r) for r in rows]

    def expire_stale(self, run_id: str, pid: int) -> list[ControlRequest]:
        """Answer :data:`EXPIRED` to every request left unanswered by an
        orchestrator that is gone, and return them (oldest first). Called by the
        orchestrator ``pid`` of ``run_id`` as it starts, holding the project
        lock: no other orchestrator is alive, so a request addressed elsewhere,
        or to this run and pid but made before the run last became running
        (a recycled pid resuming the same run), was asked of one that ended."""
        with self.store.transaction() as db:
            since = db.execute(
                "SELECT max(ts) FROM state_history WHERE entity = 'run' AND entity_id = ?"
                " AND to_state = ?",
                (run_id, str(RunState.RUNNING)),
            ).fetchone()[0]
            rows = db.execute(
                "SELECT * FROM control_requests WHERE answered_at IS NULL"
                " AND (run_id != ? OR pid != ? OR requested_at < ?) ORDER BY id",
                (run_id, pid, since or ""),
            ).fetchall()
            stale = [ControlRequest.of(r) for r in rows]
            db.executemany(
                "UPDATE control_requests SET answered_at = ?, answer = ? WHERE id = ?",
                [(utcnow(), EXPIRED, r.id) for r in stale],
            )
        return stale

    def answer(self, request_id: int, answer: str) -> None:
        """Say what the run did with a request (once: a request is answered once)."""
        self.store.db.execute(
            "UPDATE control_requests SET answered_at = ?, answer = ?"
            " WHERE id = ? AND answered_at IS NULL",
            (utcnow(), answer, request_id),
        )


@dataclass(frozen=True)
class Paused:
    """A run a person paused: since when, by whom, from where."""

    since: str  # ISO 8601, UTC
    by: str
    origin: str


def paused(store: Store, run_id: str) -> Paused | None:
    """Whether the run is paused now: the last pause, resume or stop its
    current orchestrator took was a pause. Requests are addressed to one
    orchestrator, so a run stopped while paused and resumed with ``--resume``
    (another process) starts unpaused."""
    run = store.run(run_id)
    if run.state != RunState.RUNNING or run.orchestrator_pid is None:
        return None
    row = store.db.execute(
        "SELECT * FROM control_requests WHERE run_id = ? AND pid = ? AND answer IN"
        " (SELECT value FROM json_each(?)) ORDER BY answered_at DESC, id DESC LIMIT 1",
        (run_id, run.orchestrator_pid, json.dumps(_TURNS)),
    ).fetchone()
    if row is None or row["answer"] != PAUSED:
        return None
    taken = ControlRequest.of(row)
    return Paused(since=taken.answered_at or taken.requested_at, by=taken.by, origin=taken.origin)
