"""Every state of a run, a work item and an attempt, and every allowed change.

The transition table is the single authority: the store refuses any change it
does not list (:func:`check`), and a test walks every (from, to) pair. FAILED
(the work was judged and fell short) is kept apart from CRASHED (the agent or
the orchestrator died, so nothing was judged).
"""

from __future__ import annotations

from enum import StrEnum

from nightcrew.core.errors import IllegalTransition


class RunState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    BUDGET_EXCEEDED = "budget_exceeded"
    INTERRUPTED = "interrupted"
    CRASHED = "crashed"
    ABANDONED = "abandoned"  # left unfinished, and a person started over (--new)


class ItemState(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    BLOCKED = "blocked"
    NEEDS_INPUT = "needs_input"


class AttemptState(StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    CRASHED = "crashed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    OVER_BUDGET = "over_budget"


_R = RunState
_I = ItemState
_A = AttemptState

RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    _R.PENDING: frozenset({_R.RUNNING}),
    _R.RUNNING: frozenset(
        {_R.SUCCEEDED, _R.FAILED, _R.BUDGET_EXCEEDED, _R.INTERRUPTED, _R.CRASHED}
    ),
    # Resume: a run that stopped short may run again; so may one that succeeded
    # over part of its plan (--end-batch) when batches are left to run.
    _R.SUCCEEDED: frozenset({_R.RUNNING}),
    # An unfinished run may instead be abandoned (--new); that is final.
    _R.FAILED: frozenset({_R.RUNNING, _R.ABANDONED}),
    _R.BUDGET_EXCEEDED: frozenset({_R.RUNNING, _R.ABANDONED}),
    _R.INTERRUPTED: frozenset({_R.RUNNING, _R.ABANDONED}),
    _R.CRASHED: frozenset({_R.RUNNING, _R.ABANDONED}),
    _R.ABANDONED: frozenset(),
}

ITEM_TRANSITIONS: dict[ItemState, frozenset[ItemState]] = {
    _I.PENDING: frozenset({_I.IN_PROGRESS, _I.SKIPPED, _I.BLOCKED}),
    _I.IN_PROGRESS: frozenset(
        # back to PENDING: its run crashed or was interrupted or stopped at a budget
        {_I.PASSED, _I.FAILED, _I.SKIPPED, _I.BLOCKED, _I.NEEDS_INPUT, _I.PENDING}
    ),
    # A passed item whose text changed in the plan must run again.
    _I.PASSED: frozenset({_I.PENDING}),
    # A backlog feature that failed or waits for input may be skipped by a person.
    _I.FAILED: frozenset({_I.PENDING, _I.SKIPPED}),
    _I.SKIPPED: frozenset({_I.PENDING}),
    _I.BLOCKED: frozenset({_I.PENDING}),
    _I.NEEDS_INPUT: frozenset({_I.PENDING, _I.SKIPPED}),
}

ATTEMPT_TRANSITIONS: dict[AttemptState, frozenset[AttemptState]] = {
    _A.RUNNING: frozenset(
        {_A.PASSED, _A.FAILED, _A.CRASHED, _A.TIMED_OUT, _A.CANCELLED, _A.OVER_BUDGET}
    ),
    _A.PASSED: frozenset(),
    _A.FAILED: frozenset(),
    _A.CRASHED: frozenset(),
    _A.TIMED_OUT: frozenset(),
    _A.CANCELLED: frozenset(),
    _A.OVER_BUDGET: frozenset(),
}

ATTEMPT_TERMINAL = frozenset(s for s, nxt in ATTEMPT_TRANSITIONS.items() if not nxt)

State = RunState | ItemState | AttemptState


def _table_for(state: State) -> dict[State, frozenset[State]]:
    if isinstance(state, RunState):
        return RUN_TRANSITIONS  # type: ignore[return-value]
    if isinstance(state, ItemState):
        return ITEM_TRANSITIONS  # type: ignore[return-value]
    return ATTEMPT_TRANSITIONS  # type: ignore[return-value]


def allowed(current: State, new: State) -> bool:
    if type(current) is not type(new):
        return False
    return new in _table_for(current)[current]


def check(current: State, new: State, *, what: str) -> None:
    """Raise :class:`IllegalTransition` unless ``current → new`` is allowed."""
    if not allowed(current, new):
        raise IllegalTransition(f"{what}: cannot go from {current} to {new}")
