"""How many agents work at once, apart from how many items are in flight.

With lanes, a feature that passed in its worktree waits in the merge queue
while its result is merged and checked again; its agent is done by then. So
a lane gives its agent slot back (:meth:`AgentSlot.give`) when its feature
joins the queue, another lane starts the next feature's agent meanwhile, and
the lane takes a slot again only if the feature needs another attempt (its
merged result failed, or it conflicts): ``--parallel N`` is N agents at once.
"""

from __future__ import annotations

import asyncio


class AgentSlot:
    """One lane's hold on one of the run's agent slots (at most one)."""

    def __init__(self, pool: asyncio.Semaphore) -> None:
        self._pool = pool
        self.held = False

    async def take(self) -> None:
        """Hold a slot, waiting for one to be free; nothing when held already."""
        if not self.held:
            await self._pool.acquire()
            self.held = True

    def give(self) -> None:
        """Free the slot for another lane's agent; nothing when not held."""
        if self.held:
            self.held = False
            self._pool.release()
