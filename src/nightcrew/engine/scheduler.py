"""Runs a source's work items on N lanes in one event loop for the whole run.

A lane claims the next ready item from the :class:`Source`, works on it, and
claims again. A lane that finds nothing ready while others still work waits
for one of them to finish (a finished item can make another ready), and stops
when nothing is ready and no lane works. An outcome that stops the run (a
failure the policy stops on, a budget, a signal) stops the claiming and the
agents still in flight; the lanes finish what they were doing, as one lane
would, and every outcome is collected in the order the items finished.

With ``agents`` below ``lanes``, a lane holds one of ``agents`` slots
(:mod:`slots`) from its claim until its item gives it back (a feature waiting
in the merge queue does), so more items can be in flight than agents work.

The stopping signals are handled once for the run (:class:`StopWatch`), not
per attempt. ``nightcrew run``, ``build`` and ``backlog init`` use one lane.

A person's pause and stop (:class:`Controls`) are taken before every claim: a
paused scheduler parks its lanes there (the items in flight go on to their
next attempt, where the item loop holds them too) and a stop ends the lanes
there; the controls' poller runs beside the lanes on the same event loop. A
stop a person asked for lets the other lanes' attempts finish: an outcome
that stops the run then stops no agent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from nightcrew.engine.controls import Controls
from nightcrew.engine.signals import StopWatch
from nightcrew.engine.slots import AgentSlot, starting_pool

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
O = TypeVar("O")  # noqa: E741 - the outcome type


class Source(Protocol[T_co]):
    def claim(self, lane: int) -> T_co | None:
        """The next ready item for ``lane`` (claimed: no other lane gets it), or None."""
        ...


@dataclass
class Scheduler(Generic[T, O]):
    """``work(item, lane)`` does one item; ``stops(outcome)`` says whether the
    outcome ends the run."""

    source: Source[T]
    work: Callable[[T, int], Awaitable[O]]
    stops: Callable[[O], bool]
    lanes: int = 1
    agents: int | None = None  # agents at once (None: one per lane)
    watch: StopWatch = field(default_factory=StopWatch)
    # Why an outcome that stops the run stops the other lanes' agents (their attempts say it).
    why: Callable[[O], str] | None = None
    outcomes: list[O] = field(default_factory=list)
    stopped: bool = False  # an outcome stopped the run
    slots: dict[int, AgentSlot] = field(default_factory=dict)  # each lane's, while it runs
    controls: Controls | None = None  # a person's pause and stop (None: none taken)

    def run(self) -> list[O]:
        """Run every lane to the end, in one event loop; signal handling is
        installed for the whole of it and the caller's comes back after.

        The watch is installed around the loop's run, not inside it: asyncio
        then installs no SIGINT handler of its own, and a KeyboardInterrupt
        raised in a lane (which leaves the loop before the lanes' ``finally``
        blocks run) still gives the caller back exactly the handlers it had."""
        with asyncio.Runner() as runner:
            self.watch.install(runner.get_loop())
            try:
                runner.run(self._lanes())
            finally:
                self.watch.restore()
        return self.outcomes

    async def _lanes(self) -> None:
        controls = self.controls
        poller = asyncio.create_task(controls.poll()) if controls is not None else None
        try:
            await self._run_lanes()
        finally:
            if poller is not None:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)

    async def _run_lanes(self) -> None:
        controls = self.controls
        changed = asyncio.Condition()
        busy = [0]
        pool = asyncio.Semaphore(self.agents or self.lanes)
        starting = starting_pool()

        async def lane(number: int) -> None:
            slot = self.slots[number] = AgentSlot(pool, starting)
            try:
                await claiming(number, slot)
            finally:
                slot.give()

        async def claiming(number: int, slot: AgentSlot) -> None:
            while not self.stopped:
                await slot.take()
                if controls is not None and controls.blocked():  # paused, or stopping
                    slot.give()
                    if not await controls.hold():
                        return
                    continue
                item = None if self.stopped else self.source.claim(number)
                if item is None:
                    slot.give()
                    if busy[0] == 0 or self.stopped:
                        return
                    async with changed:  # another lane's item may make one ready
                        await changed.wait()
                    continue
                busy[0] += 1
                try:
                    outcome = await self.work(item, number)
                except BaseException:
                    self.stopped = True
                    raise
                finally:
                    slot.give()
                    busy[0] -= 1
                    async with changed:
                        changed.notify_all()
                self.outcomes.append(outcome)
                if self.stops(outcome) and not self.stopped:
                    self.stopped = True
                    if controls is not None:
                        controls.halt()  # lanes a pause holds end too
                    if controls is None or controls.stopping is None:
                        self.watch.stop_all(self.why(outcome) if self.why is not None else None)

        tasks = [asyncio.create_task(lane(n)) for n in range(1, self.lanes + 1)]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        failed = [t for t in done if not t.cancelled() and t.exception() is not None]
        if failed:
            # A lane raised (the agent cannot work, an interruption): the others stop too.
            self.stopped = True
            self.watch.stop_all()
            if controls is not None:
                controls.halt()
            await asyncio.gather(*pending, return_exceptions=True)
            error = failed[0].exception()
            assert error is not None
            raise error
