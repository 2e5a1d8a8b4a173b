"""What a killed agent leaves behind: Claude Code writes a file atomically as
``<file>.tmp.<pid>.<hex>`` and then renames it over ``<file>``. An agent killed
between the two leaves the temporary file in the tree. Such files are never
committed, are removed after a killed attempt when the attempt made them, and
the clean gate refuses them."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from pathlib import Path

_AGENT_TEMP = re.compile(r".\.tmp\.([0-9]+)\.[0-9a-f]+$")


def is_agent_temp(path: str) -> bool:
    """Whether ``path``'s base name has the shape of Claude Code's unfinished
    atomic write (``stock.py.tmp.4242.1a2b3c``)."""
    return _AGENT_TEMP.search(path.rsplit("/", 1)[-1]) is not None


def writer_pid(path: str) -> int | None:
    """The pid of the process that wrote ``path``, when it is an agent temp file."""
    found = _AGENT_TEMP.search(path.rsplit("/", 1)[-1])
    return int(found.group(1)) if found else None


def agent_temps(paths: Iterable[str]) -> set[str]:
    return {p for p in paths if is_agent_temp(p)}


def remove_new(root: Path, now: Iterable[str], before: Iterable[str]) -> list[str]:
    """Delete the agent temp files in ``now`` that were not in ``before``;
    returns the removed paths, sorted."""
    removed = []
    for rel in sorted(agent_temps(now) - set(before)):
        path = Path(root) / rel
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(rel)
    return removed


def remove_written_by(root: Path, paths: Iterable[str], pids: Collection[int]) -> list[str]:
    """Delete the agent temp files in ``paths`` whose writer pid is in ``pids``
    (a crashed attempt's agent and its process tree); returns them, sorted."""
    removed = []
    for rel in sorted(paths):
        path = Path(root) / rel
        if writer_pid(rel) in pids and (path.is_file() or path.is_symlink()):
            path.unlink()
            removed.append(rel)
    return removed
