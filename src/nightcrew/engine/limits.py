"""Waiting out a usage limit (``--wait-on-limit``).

When the agent stops at a usage or rate limit and said when it resets, a run
given ``--wait-on-limit`` waits until then and tries the same work item again.
The limited attempt is recorded ``crashed`` without a digest: it was not
judged, so neither the retry budget nor the stuck detection counts it, and the
next attempt is not told about it. The clock and the sleeper are injected
(:class:`LimitWaiter`), so tests never wait on a wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from nightcrew.agents.base import AgentFailure

MAX_WAIT = timedelta(hours=6)  # a reset further away stops the run instead
MAX_WAITS = 3  # waits in a row for one item before the run stops


def now_utc() -> datetime:
    return datetime.now(UTC)


def sleep_until(when: datetime) -> None:
    """Sleep until ``when``. A stopping signal interrupts it: SIGINT raises
    KeyboardInterrupt, SIGTERM and SIGHUP the orchestrator's Interrupted."""
    while (left := (when - now_utc()).total_seconds()) > 0:
        time.sleep(min(left, 30.0))


@dataclass
class LimitWaiter:
    """The clock and the sleeper a run waits for a usage limit with."""

    now: Callable[[], datetime] = now_utc
    wait_until: Callable[[datetime], None] = sleep_until
    max_wait: timedelta = field(default=MAX_WAIT)


def local_time(when: datetime) -> str:
    """``HH:MM`` in local time, with the date when it is not today."""
    local = when.astimezone()
    today = datetime.now().astimezone().date()
    return local.strftime("%H:%M" if local.date() == today else "%Y-%m-%d %H:%M")


def refuse_wait(failure: AgentFailure, waiter: LimitWaiter) -> str | None:
    """Why a run given ``--wait-on-limit`` must still stop at this usage limit,
    or None: it waits until ``failure.reset_at``."""
    if failure.reset_at is None:
        return "the agent did not say when the limit resets, so there is nothing to wait for"
    if failure.reset_at - waiter.now() > waiter.max_wait:
        hours = waiter.max_wait.total_seconds() / 3600
        return (
            f"the limit resets at {local_time(failure.reset_at)} (local),"
            f" more than {hours:g} h away: not waiting"
        )
    return None
