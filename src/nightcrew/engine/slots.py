"""How many agents work at once, apart from how many items are in flight.

With lanes, a feature that passed in its worktree waits in the merge queue
while its result is merged and checked again; its agent is done by then. So
a lane gives its agent slot back (:meth:`AgentSlot.give`) when its feature
joins the queue, another lane starts the next feature's agent meanwhile, and
the lane takes a slot again only if the feature needs another attempt (its
merged result failed, or it conflicts): ``--parallel N`` is N agents at once.

Starting an agent is the costly part of its life on this machine (the Claude
Code CLI spends about a CPU-second loading before its first model request,
then mostly waits on the model). N agents launched in the same instant share
the cores for that second and all reach the model late; so at most as many
agents as the machine has CPUs start at once (``starting``), each until its
session has begun, and the others follow as those get going.
"""

from __future__ import annotations

import asyncio
import os


def starting_pool() -> asyncio.Semaphore:
    """How many agents may be starting at once: one per CPU."""
    return asyncio.Semaphore(max(1, os.cpu_count() or 1))


class AgentSlot:
    """One lane's hold on one of the run's agent slots (at most one)."""

    def __init__(self, pool: asyncio.Semaphore, starting: asyncio.Semaphore | None = None) -> None:
        self._pool = pool
        self.held = False
        self.starting = starting  # shared by the lanes: agents in their start-up

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
