"""What each lane of a parallel build is doing, its merge queue and its latest
landings, as ``nightcrew status`` shows them.

The build may be running in another process, so everything is read from the
store: the attempts (the lane each ran on; a running one has no
``finished_at``, and its ``agent_seconds`` is stored once its agent is done,
before its gates), the items, and the lane events the build keeps
(``worktree_ready``, ``merge_queued``, ``merge_checking``, ``merge_landed``,
``merge_rejected``, ``merge_conflict``, each with its lane). A build with one lane working in
place has no lanes here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nightcrew.core.states import AttemptState, ItemState, RunState
from nightcrew.engine.liveness import orchestrator_gone
from nightcrew.store.records import AttemptRow, ItemRow, Store
from nightcrew.store.usage_query import parse_ts, responses_cost

# What a lane is doing, as a person reads it.
AGENT = "agent"
GATES = "gates"
MERGE_QUEUE = "merge queue"
LANDED = "landed"
PASSED = "passed"  # passed with nothing to land
WAITING = "waiting for a person"
STARTING = "starting"  # its worktree is ready, or it is between two attempts
STOPPED = "stopped"  # the build stopped or died with the lane's feature unfinished
IDLE = "idle"

_QUEUED = "merge_queued"
_CHECKING = "merge_checking"
_SETTLED = frozenset({"merge_landed", "merge_rejected", "merge_conflict"})
_KINDS = ("worktree_ready", _QUEUED, _CHECKING, *sorted(_SETTLED))
LAST_LANDINGS = 5


@dataclass(frozen=True)
class LaneRow:
    """One lane: the feature it is on now, or last was."""

    lane: int
    item: str  # "feature #7"
    feature_id: int | None
    title: str
    phase: str
    state: str  # the item's state in this build
    attempt: int | None  # its current (or last) attempt's number; None: none yet
    model: str | None
    elapsed_s: float | None  # of that attempt: so far while it runs, else its duration
    cost_usd: Decimal | None  # the feature's so far in this build; None: none known
    cost_unknown: bool  # some of it is not known: the cost is at least that

    def as_json(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "feature_id": self.feature_id,
            "item": self.item,
            "title": self.title,
            "phase": self.phase,
            "state": self.state,
            "attempt": self.attempt,
            "model": self.model,
            "elapsed_s": _round(self.elapsed_s),
            "cost_usd": None if self.cost_usd is None else float(self.cost_usd),
            "cost_unknown": self.cost_unknown,
        }


@dataclass(frozen=True)
class QueuedRow:
    """A feature that passed in its worktree and waits for (or is in) the merge queue."""

    item: str
    feature_id: int | None
    title: str
    lane: int
    queued_at: str
    landing: bool  # taken by the queue while the build runs: being merged and checked now

    def as_json(self) -> dict[str, Any]:
        return {
            "feature_id": self.feature_id,
            "item": self.item,
            "title": self.title,
            "lane": self.lane,
            "queued_at": self.queued_at,
            "state": "landing" if self.landing else "waiting",
        }


@dataclass(frozen=True)
class LandedRow:
    """A feature the merge queue landed on the integration branch."""

    item: str
    feature_id: int | None
    title: str
    lane: int
    branch: str
    sha: str
    merge_seconds: float  # the queue's own git time
    gate_seconds: float  # the checks of the merged result
    landed_at: str
    checks_reused: bool = False  # its tree was the lane's checked one: not checked again
    checked_with: tuple[str, ...] = ()  # the others checked in the same run

    def as_json(self) -> dict[str, Any]:
        return {
            "feature_id": self.feature_id,
            "item": self.item,
            "title": self.title,
            "lane": self.lane,
            "branch": self.branch,
            "sha": self.sha,
            "merge_seconds": _round(self.merge_seconds),
            "gate_seconds": _round(self.gate_seconds),
            "landed_at": self.landed_at,
            "checks_reused": self.checks_reused,
            "checked_with": list(self.checked_with),
        }


@dataclass(frozen=True)
class LanesView:
    lanes: tuple[LaneRow, ...]
    merge_queue: tuple[QueuedRow, ...]  # in the order they were queued
    landed: tuple[LandedRow, ...]  # the latest first, at most LAST_LANDINGS

    def as_json(self) -> dict[str, Any]:
        return {
            "lanes": [r.as_json() for r in self.lanes],
            "merge_queue": [r.as_json() for r in self.merge_queue],
            "landed": [r.as_json() for r in self.landed],
        }


def lanes_view(store: Store, run_id: str, *, now: datetime | None = None) -> LanesView:
    """The run's lanes, merge queue and latest landings (all empty for a run
    with one lane working in place)."""
    run = store.run(run_id)
    live = run.state == RunState.RUNNING and orchestrator_gone(store, run) is None
    items = store.items(run_id)
    by_label = {_label(i): i for i in items}
    by_id = {i.id: i for i in items}
    events = store.events(run_id, kinds=_KINDS)
    latest = _latest_per_lane(store, run_id)
    if not events and not latest:
        return LanesView((), (), ())

    waiting: dict[str, dict[str, Any]] = {}  # label → its queued event, not yet settled
    # Taken by the queue and not settled yet: being landed now. None: the build
    # kept no merge_checking events (made before them): the first in line is.
    checking: set[str] | None = None
    landed: list[dict[str, Any]] = []
    ready: dict[int, dict[str, Any]] = {}  # lane → its latest worktree_ready
    for e in events:
        label = str(e["payload"].get("item", ""))
        if e["kind"] == "worktree_ready":
            ready[int(e["payload"].get("lane", 0))] = e
        elif e["kind"] == _QUEUED:
            waiting.pop(label, None)  # queued again: back at the end of the line
            waiting[label] = e
        elif e["kind"] == _CHECKING:
            checking = (checking or set()) | {str(i) for i in e["payload"].get("items", ())}
        else:
            waiting.pop(label, None)
            if checking is not None:
                checking.discard(label)
            if e["kind"] == "merge_landed":
                landed.append(e)
    landed_labels = {str(e["payload"].get("item")) for e in landed}

    at = now or datetime.now(UTC)
    rows = []
    for lane in sorted(set(ready) | set(latest)):
        if lane < 1:
            continue
        event = ready.get(lane)
        attempt: AttemptRow | None
        if event is None:  # no worktree event kept: its latest attempt tells
            attempt = latest[lane]
            item = by_id.get(attempt.item_id)
        else:  # the feature it got last, and its latest attempt there since
            item = by_label.get(str(event["payload"].get("item")))
            attempt = None if item is None else _latest_since(store, item, lane, event["ts"])
        if item is None:
            continue
        phase = _phase(item, attempt, live=live, queued=_label(item) in waiting)
        if phase == LANDED and _label(item) not in landed_labels:
            phase = PASSED
        cost, unknown = _cost(store, item)
        rows.append(
            LaneRow(
                lane=lane,
                item=_label(item),
                feature_id=item.feature_id,
                title=item.title,
                phase=phase,
                state=str(item.state),
                attempt=attempt.number if attempt else None,
                model=attempt.model if attempt else None,
                elapsed_s=_elapsed(attempt, at, live=live),
                cost_usd=cost,
                cost_unknown=unknown,
            )
        )
    queue = tuple(
        _queued(
            e,
            by_label.get(label),
            landing=live and (n == 0 if checking is None else label in checking),
        )
        for n, (label, e) in enumerate(waiting.items())
    )
    last = tuple(
        _landed(e, by_label.get(str(e["payload"].get("item"))))
        for e in reversed(landed[-LAST_LANDINGS:])
    )
    return LanesView(tuple(rows), queue, last)


def _latest_per_lane(store: Store, run_id: str) -> dict[int, AttemptRow]:
    """Each lane's latest attempt in the run (lanes 1 and up): only those rows
    are read, not the run's thousands of attempts."""
    rows = store.db.execute(
        "SELECT * FROM attempts WHERE id IN (SELECT max(id) FROM attempts"
        " WHERE run_id = ? AND lane > 0 GROUP BY lane)",
        (run_id,),
    ).fetchall()
    return {int(r["lane"]): AttemptRow.from_row(r) for r in rows}


def _latest_since(store: Store, item: ItemRow, lane: int, since: str) -> AttemptRow | None:
    """The item's latest attempt on ``lane`` that started at ``since`` or later."""
    row = store.db.execute(
        "SELECT * FROM attempts WHERE item_id = ? AND lane = ? AND started_at >= ?"
        " ORDER BY id DESC LIMIT 1",
        (item.id, lane, since),
    ).fetchone()
    return None if row is None else AttemptRow.from_row(row)


def _label(item: ItemRow) -> str:
    """How the build's events name the item (``feature #7``)."""
    return f"feature #{item.feature_id}" if item.feature_id is not None else item.key


def _phase(item: ItemRow, attempt: AttemptRow | None, *, live: bool, queued: bool) -> str:
    if item.state == ItemState.NEEDS_INPUT:
        return WAITING
    if item.state == ItemState.PASSED:
        return LANDED
    unfinished = item.state == ItemState.IN_PROGRESS or (
        attempt is not None and attempt.finished_at is None
    )
    if not unfinished:
        return IDLE  # given up, failed or back to pending
    if not live:
        return STOPPED
    if attempt is None or attempt.state != AttemptState.RUNNING:
        return STARTING
    if queued:
        return MERGE_QUEUE
    return GATES if attempt.agent_seconds is not None else AGENT


def _elapsed(attempt: AttemptRow | None, now: datetime, *, live: bool) -> float | None:
    if attempt is None:
        return None
    started = parse_ts(attempt.started_at)
    if attempt.finished_at is not None:
        return (parse_ts(attempt.finished_at) - started).total_seconds()
    return max(0.0, (now - started).total_seconds()) if live else None


_COST_SQL = (
    "SELECT id, cost_usd, state, finished_at FROM attempts WHERE item_id = ? ORDER BY number"
)


def _cost(store: Store, item: ItemRow) -> tuple[Decimal | None, bool]:
    """The item's spend in this build: its finished attempts' costs, and what
    a running attempt's responses have been priced at so far. Only the four
    columns that says are read (as ``store.totals`` adds the costs up; its
    tokens are not shown here), not every attempt as a row."""
    attempts = store.db.execute(_COST_SQL, (item.id,)).fetchall()
    cost: Decimal | None = None
    unknown = False
    for _, usd, state, finished in attempts:
        if usd is None:
            unknown = unknown or state != AttemptState.RUNNING or bool(finished)
        else:
            cost = Decimal(usd) if cost is None else cost + Decimal(usd)
    for attempt_id, _, _, finished in attempts:
        if finished is not None:
            continue
        so_far, some_unknown = responses_cost(store, attempt_id)
        unknown = unknown or some_unknown
        if so_far is not None:
            cost = so_far if cost is None else cost + so_far
    return cost, unknown


def _queued(e: dict[str, Any], item: ItemRow | None, *, landing: bool) -> QueuedRow:
    p = e["payload"]
    return QueuedRow(
        item=str(p.get("item")),
        feature_id=item.feature_id if item else None,
        title=item.title if item else "",
        lane=int(p.get("lane", 0)),
        queued_at=e["ts"],
        landing=landing,
    )


def _landed(e: dict[str, Any], item: ItemRow | None) -> LandedRow:
    p = e["payload"]
    return LandedRow(
        item=str(p.get("item")),
        feature_id=item.feature_id if item else None,
        title=item.title if item else "",
        lane=int(p.get("lane", 0)),
        branch=str(p.get("branch", "")),
        sha=str(p.get("sha", "")),
        merge_seconds=float(p.get("merge_seconds", 0.0)),
        gate_seconds=float(p.get("gate_seconds", 0.0)),
        landed_at=e["ts"],
        checks_reused=bool(p.get("checks_reused", False)),
        checked_with=tuple(str(i) for i in p.get("checked_with") or ()),
    )


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def in_place_row(store: Store, run_id: str, *, now: datetime | None = None) -> LaneRow | None:
    """The one lane of a run working in place (lane 0), as :func:`lanes_view`
    tells a parallel build's: the item of its latest attempt (or the item in
    progress before its first one); None before any item started."""
    run = store.run(run_id)
    live = run.state == RunState.RUNNING and orchestrator_gone(store, run) is None
    items = store.items(run_id)
    row = store.db.execute(
        "SELECT * FROM attempts WHERE run_id = ? AND (lane IS NULL OR lane = 0)"
        " ORDER BY id DESC LIMIT 1",
        (run_id,),
    ).fetchone()
    attempt = None if row is None else AttemptRow.from_row(row)
    started = [i for i in items if i.state == ItemState.IN_PROGRESS]
    item = started[0] if started else None
    if item is not None and attempt is not None and attempt.item_id != item.id:
        attempt = None  # the item in progress has no attempt yet: its predecessor's is done
    if item is None and attempt is not None:
        item = next((i for i in items if i.id == attempt.item_id), None)
    if item is None:
        return None
    cost, unknown = _cost(store, item)
    return LaneRow(
        lane=0,
        item=_label(item),
        feature_id=item.feature_id,
        title=item.title,
        phase=_phase(item, attempt, live=live, queued=False),
        state=str(item.state),
        attempt=attempt.number if attempt else None,
        model=attempt.model if attempt else None,
        elapsed_s=_elapsed(attempt, now or datetime.now(UTC), live=live),
        cost_usd=cost,
        cost_unknown=unknown,
    )
