"""The scheduler with three lanes on the scripted backend: attempts really in
flight at once, every outcome collected, the store consistent afterwards, and
a stopping outcome stopping the other lanes' agents and the claiming. The
backend's sessions wait on each other (``Hold``), never on a clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from nightcrew.agents.base import AgentFailure, Finished
from nightcrew.core.errors import AgentUnusable
from nightcrew.engine.scheduler import Scheduler
from nightcrew.testing import FakeBackend, Hold, Script, usage
from tests.unit.run_context import Lanes, plan_text


@pytest.fixture
def backends() -> Iterator[list[FakeBackend]]:
    made: list[FakeBackend] = []
    yield made
    for backend in made:
        backend.reap()


def test_three_lanes_have_three_attempts_in_flight_and_collect_every_outcome(
    tmp_path: Path, backends: list[FakeBackend]
) -> None:
    together = Hold(release_at=3)  # no session ends before three are open at once
    backend = FakeBackend(
        lambda request: Script(writes={f"{len(backend.requests)}.txt": "x"}, hold=together)
    )
    backends.append(backend)
    lanes = Lanes(tmp_path, backend, plan_text(3))

    scheduler = lanes.run()

    assert together.peak == 3
    assert sorted(o.key for o in scheduler.outcomes) == ["1", "2", "3"]
    assert {o.kind for o in scheduler.outcomes} == {"passed"}
    items = lanes.store.items(lanes.ctx.run.id)
    assert [str(i.state) for i in items] == ["passed"] * 3
    assert len(lanes.store.attempts(run_id=lanes.ctx.run.id)) == 3
    lanes.assert_consistent()
    lanes.store.close()


def test_a_stopping_outcome_stops_the_other_lanes_and_claims_nothing_more(
    tmp_path: Path, backends: list[FakeBackend]
) -> None:
    others = Hold()  # never released: only stopping their agents ends them

    def script(request: object) -> Script:
        if len(backend.requests) == 1:  # batch 1, CRITICAL: fails once the others run
            return Script(after=lambda: others.reached(2), error=RuntimeError("boom"))
        return Script(child=True, hold=others)

    backend = FakeBackend(script)
    backends.append(backend)
    lanes = Lanes(tmp_path, backend, plan_text(4, critical=1))

    scheduler = lanes.run()

    assert scheduler.stopped
    assert lanes.claimed == [1, 2, 3]  # batch 4 was never claimed
    kinds = {o.key: o.kind for o in scheduler.outcomes}
    assert kinds == {"1": "failed", "2": "interrupted", "3": "interrupted"}
    attempts = {a.item_id: str(a.state) for a in lanes.store.attempts(run_id=lanes.ctx.run.id)}
    ids = {item.number: item.id for _, item in lanes.items}
    assert attempts == {ids[1]: "crashed", ids[2]: "cancelled", ids[3]: "cancelled"}
    states = [str(i.state) for i in lanes.store.items(lanes.ctx.run.id)]
    assert states == ["failed", "pending", "pending", "pending"]
    lanes.assert_consistent()
    lanes.store.close()


def test_an_agent_that_cannot_work_stops_every_lane_and_reaches_the_caller(
    tmp_path: Path, backends: list[FakeBackend]
) -> None:
    others = Hold()
    refused = Finished.failure(
        "Invalid API key", AgentFailure("auth", "Invalid API key", False, "log in again")
    )

    def script(request: object) -> Script:
        if len(backend.requests) == 1:
            return Script(after=lambda: others.reached(2), finished=refused)
        return Script(child=True, hold=others)

    backend = FakeBackend(script)
    backends.append(backend)
    lanes = Lanes(tmp_path, backend, plan_text(4))

    with pytest.raises(AgentUnusable, match="Invalid API key"):
        lanes.run()

    assert lanes.claimed == [1, 2, 3]
    states = sorted(str(a.state) for a in lanes.store.attempts(run_id=lanes.ctx.run.id))
    assert states == ["cancelled", "cancelled", "crashed"]
    lanes.assert_consistent()
    lanes.store.close()


def test_attempts_in_flight_that_cross_the_run_budget_together_stop_the_run(
    tmp_path: Path, backends: list[FakeBackend]
) -> None:
    # Each session streams one response of $0.30 and stays open: no attempt
    # alone reaches the $0.75 run budget, and none has ended, so only the
    # budget ledger's attempts in flight can see that three together do.
    others = Hold()  # never released: only the harness stops these agents

    def script(request: object) -> Script:
        spend = usage("claude-sonnet-4-5", f"msg-{len(backend.requests)}", input=100_000)
        return Script(events=(spend,), child=True, hold=others)

    backend = FakeBackend(script)
    backends.append(backend)
    lanes = Lanes(tmp_path, backend, plan_text(4), max_budget_usd=0.75)

    scheduler = lanes.run()

    assert scheduler.stopped
    assert lanes.claimed == [1, 2, 3]  # no new attempt once the budget is spent
    kinds = sorted(o.kind for o in scheduler.outcomes)
    assert kinds == ["interrupted", "interrupted", "over_budget"]
    states = sorted(str(a.state) for a in lanes.store.attempts(run_id=lanes.ctx.run.id))
    assert states == ["cancelled", "cancelled", "over_budget"]
    # The lanes stopped with it say why: the budget, not a person's Ctrl-C.
    reasons = [a.exit_reason or "" for a in lanes.store.attempts(run_id=lanes.ctx.run.id)]
    cancelled = [r for r in reasons if r.startswith("stopped with the run: ")]
    assert len(cancelled) == 2 and all("budget" in r for r in cancelled), reasons
    warnings = [e for e in lanes.store.events(lanes.ctx.run.id) if e["kind"] == "budget_warning"]
    assert len(warnings) == 1  # 80 % was crossed by the lanes together, and said once
    lanes.assert_consistent()
    lanes.store.close()


class _Items:
    """A source of named items, claimed in order."""

    def __init__(self, *names: str) -> None:
        self.left = list(names)
        self.claims: list[tuple[str, int]] = []

    def claim(self, lane: int) -> str | None:
        if not self.left:
            return None
        name = self.left.pop(0)
        self.claims.append((name, lane))
        return name


def test_an_item_that_gives_its_agent_slot_back_lets_the_next_item_start() -> None:
    # One agent, two lanes: "a" gives its slot back (as a feature waiting in
    # the merge queue does) and can only finish once "b" has started; the
    # third item waits for a slot, never for "a" to end.
    source = _Items("a", "b", "c")
    b_started = asyncio.Event()
    agents_at_once: list[int] = []
    working: set[str] = set()

    async def work(name: str, lane: int) -> str:
        slot = scheduler.slots[lane]
        assert slot.held  # the lane holds a slot from its claim
        working.add(name)
        agents_at_once.append(len(working))
        if name == "a":
            working.discard(name)
            slot.give()  # waits "in the queue" with no agent
            await b_started.wait()
            await slot.take()  # another attempt: an agent again
            working.add(name)
            agents_at_once.append(len(working))
        elif name == "b":
            b_started.set()
            await asyncio.sleep(0)  # "a" takes its slot back only once "b" gives it
        working.discard(name)
        return name

    scheduler: Scheduler[str, str] = Scheduler(
        source, work, lambda outcome: False, lanes=2, agents=1
    )
    outcomes = scheduler.run()

    assert sorted(outcomes) == ["a", "b", "c"]
    assert max(agents_at_once) == 1  # never two agents at once
    assert source.claims[:2] == [("a", 1), ("b", 2)]  # b started while a was in flight
    assert all(not slot.held for slot in scheduler.slots.values())


def test_without_agents_every_lane_has_an_agent() -> None:
    source = _Items("a", "b")
    together = asyncio.Event()
    seen: list[str] = []

    async def work(name: str, lane: int) -> str:
        seen.append(name)
        if len(seen) == 2:
            together.set()
        await together.wait()  # both in flight at once, or this never ends
        return name

    scheduler: Scheduler[str, str] = Scheduler(source, work, lambda outcome: False, lanes=2)

    assert sorted(scheduler.run()) == ["a", "b"]
