"""Where a build's lanes run: the seam between the scheduler and the machines.

A :class:`LaneExecutor` gives a lane a place to work on a feature (a
checkout on the feature's own branch, set up and with the lane's environment)
and takes it back when the feature is done. The merge queue is not the
executor's: whatever runs the lanes, results come back as branches of the one
integration repository and land there, one at a time.

Today's only executor is :class:`~nightcrew.engine.lanes.Lanes`: git worktrees
of the user's repository and agents as local processes. ``docs/architecture.md``
("Lanes on other machines") says how an executor on Ray would run lanes
elsewhere with the same seam.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from nightcrew.engine.context import RunContext
from nightcrew.engine.merge_queue import MergeQueue
from nightcrew.work.backlog import Feature


class LaneExecutor(Protocol):
    """What the build asks of whatever runs its lanes."""

    @property
    def queue(self) -> MergeQueue:
        """Where the lanes' passed work lands (one, wherever the lanes run)."""
        ...

    @property
    def count(self) -> int:
        """How many lanes may run at once."""
        ...

    def path_for(self, feature: Feature) -> Path:
        """Where the feature's work is, as git sees it from the integration repository."""
        ...

    async def context(self, ctx: RunContext, feature: Feature, lane: int) -> RunContext | str:
        """The lane's context for ``feature``: its workspace made (or kept from a
        stopped build) and set up; a one-line reason when it cannot be."""
        ...

    def remove(self, feature: Feature, *, branch: bool) -> None:
        """Give the feature's workspace back (and its branch, with ``branch``)."""
        ...
