"""Every (from, to) pair of every state enum against a table written out here.

The expected table is ARCHITECTURE §4, plus the few item changes the runner
needs that §4 does not spell out (each marked below).
"""

from __future__ import annotations

import itertools

import pytest

from nightcrew.core.errors import IllegalTransition
from nightcrew.core.states import AttemptState, ItemState, RunState, State, allowed, check

R, It, A = RunState, ItemState, AttemptState

# One table per enum: states of different enums compare (and hash) equal when their
# values do ("failed"), so they cannot share one dict or set.
EXPECTED_RUN: dict[RunState, set[RunState]] = {
    # pending → running → (succeeded | failed | budget_exceeded | interrupted | crashed);
    # a run that stopped short runs again on resume; so does one that succeeded over part
    # of its plan (--end-batch) when batches are left (beyond §4).
    R.PENDING: {R.RUNNING},
    R.RUNNING: {R.SUCCEEDED, R.FAILED, R.BUDGET_EXCEEDED, R.INTERRUPTED, R.CRASHED},
    R.SUCCEEDED: {R.RUNNING},
    # An unfinished run that a person starts over with --new is abandoned, for good.
    R.FAILED: {R.RUNNING, R.ABANDONED},
    R.BUDGET_EXCEEDED: {R.RUNNING, R.ABANDONED},
    R.INTERRUPTED: {R.RUNNING, R.ABANDONED},
    R.CRASHED: {R.RUNNING, R.ABANDONED},
    R.ABANDONED: set(),
}

EXPECTED_ITEM: dict[ItemState, set[ItemState]] = {
    # pending → in_progress → (passed | failed | skipped | blocked | needs_input).
    # Beyond §4: an empty batch is skipped without running (pending → skipped), and an item
    # whose dependency failed is blocked without running (pending → blocked).
    It.PENDING: {It.IN_PROGRESS, It.SKIPPED, It.BLOCKED},
    # back to pending when its run crashes, is interrupted or stops at a budget
    It.IN_PROGRESS: {It.PASSED, It.FAILED, It.SKIPPED, It.BLOCKED, It.NEEDS_INPUT, It.PENDING},
    It.PASSED: {It.PENDING},  # its text changed in the plan
    # explicit retry; beyond §4, a person may skip a failed backlog feature
    It.FAILED: {It.PENDING, It.SKIPPED},
    It.SKIPPED: {It.PENDING},  # explicit retry
    # Beyond §4: blocked and needs_input items can be retried explicitly too, and a
    # feature waiting for an answer may be skipped instead.
    It.BLOCKED: {It.PENDING},
    It.NEEDS_INPUT: {It.PENDING, It.SKIPPED},
}

EXPECTED_ATTEMPT: dict[AttemptState, set[AttemptState]] = {
    # running → one terminal state; every terminal state is final.
    A.RUNNING: {A.PASSED, A.FAILED, A.CRASHED, A.TIMED_OUT, A.CANCELLED, A.OVER_BUDGET},
    A.PASSED: set(),
    A.FAILED: set(),
    A.CRASHED: set(),
    A.TIMED_OUT: set(),
    A.CANCELLED: set(),
    A.OVER_BUDGET: set(),
}

ALL_STATES: list[State] = [*RunState, *ItemState, *AttemptState]


def expected(old: State, new: State) -> bool:
    if type(old) is not type(new):
        return False
    if isinstance(old, RunState):
        return new in EXPECTED_RUN[old]
    if isinstance(old, ItemState):
        return new in EXPECTED_ITEM[old]
    return new in EXPECTED_ATTEMPT[old]


PAIRS = list(itertools.product(ALL_STATES, ALL_STATES))


def test_expected_tables_name_every_state() -> None:
    assert set(EXPECTED_RUN) == set(RunState)
    assert set(EXPECTED_ITEM) == set(ItemState)
    assert set(EXPECTED_ATTEMPT) == set(AttemptState)
    assert len(PAIRS) == (8 + 7 + 7) ** 2


@pytest.mark.parametrize(
    ("old", "new"),
    PAIRS,
    ids=[f"{type(o).__name__}.{o.value}->{type(n).__name__}.{n.value}" for o, n in PAIRS],
)
def test_every_pair(old: State, new: State) -> None:
    ok = expected(old, new)
    assert allowed(old, new) is ok
    if ok:
        check(old, new, what="thing 7")
    else:
        with pytest.raises(IllegalTransition) as raised:
            check(old, new, what="thing 7")
        message = str(raised.value)
        assert "thing 7" in message
        assert f"from {old.value} to {new.value}" in message


def test_same_valued_states_of_different_enums_do_not_mix() -> None:
    # "failed" is a run, an item and an attempt state; the members compare equal as strings
    assert RunState.FAILED == ItemState.FAILED
    assert not allowed(ItemState.FAILED, RunState.RUNNING)
    assert not allowed(RunState.RUNNING, ItemState.FAILED)
    assert not allowed(AttemptState.RUNNING, RunState.FAILED)
    with pytest.raises(IllegalTransition):
        check(RunState.RUNNING, AttemptState.PASSED, what="run x")


def test_illegal_transition_message_and_exit_code() -> None:
    with pytest.raises(IllegalTransition) as raised:
        check(AttemptState.PASSED, AttemptState.RUNNING, what="attempt 3")
    assert str(raised.value) == "attempt 3: cannot go from passed to running"
    assert raised.value.exit_code == 1
