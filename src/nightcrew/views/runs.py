"""Finding the run a report is about."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nightcrew.core.errors import BadInput

if TYPE_CHECKING:
    from pathlib import Path

    from nightcrew.store.records import RunRow, Store


def known_run(store: Store, run_id: str, root: Path) -> RunRow:
    """The run ``run_id`` of the project at ``root``, or bad input naming it."""
    try:
        return store.run(run_id)
    except KeyError:
        raise BadInput(f"--run {run_id}: no such run in {root}") from None
