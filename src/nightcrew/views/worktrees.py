"""nightcrew's worktrees as ``nightcrew worktrees`` shows them: each lane's
worktree with its feature's state in the backlog, and which of them
``worktrees prune`` may remove."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nightcrew.core.errors import NightcrewError
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.views.backlog import BacklogView
from nightcrew.worktrees import WorktreeInfo, has_changes, list_worktrees

# A feature in one of these states is done with its worktree.
FINISHED = frozenset({"passed", "skipped", "failed"})
# Waiting to be (re)started: its worktree holds nothing a person needs unless
# it has uncommitted changes (its commits stay on its branch).
WAITING = frozenset({"pending", "blocked"})
GONE = "gone"  # the backlog no longer has the feature
UNKNOWN = "unknown"  # no backlog, or not a lane branch


@dataclass(frozen=True)
class WorktreeRow:
    worktree: WorktreeInfo
    state: str  # the feature's shown state, GONE or UNKNOWN

    @property
    def feature_id(self) -> int | None:
        return self.worktree.feature_id

    def as_json(self) -> dict[str, Any]:
        w = self.worktree
        return {
            "feature_id": self.feature_id,
            "branch": w.branch,
            "state": self.state,
            "path": str(w.path),
            "head": w.head,
            "exists": w.exists,
            "dirty": w.dirty,
            "size_bytes": w.size_bytes,
        }


def feature_states(store_path: Path) -> dict[int, str] | None:
    """Every feature's shown state (``blocked`` included), read from the
    project's store; None when there is no store or it cannot be read."""
    if not store_path.is_file():
        return None
    try:
        store = Store.open(store_path, create=False)
    except NightcrewError:
        return None
    try:
        return dict(BacklogView(Backlog(store).features()).states)
    except sqlite3.Error:
        return None
    finally:
        store.close()


def _state(feature: int | None, states: dict[int, str] | None) -> str:
    return UNKNOWN if states is None or feature is None else states.get(feature, GONE)


def worktree_rows(root: Path, store_path: Path) -> list[WorktreeRow]:
    """The repository's nightcrew worktrees, each with its feature's state."""
    states = feature_states(store_path)
    rows = [WorktreeRow(w, _state(w.feature_id, states)) for w in list_worktrees(root)]
    return sorted(
        rows, key=lambda r: (r.feature_id is None, r.feature_id or 0, str(r.worktree.path))
    )


def prune_reason(row: WorktreeRow) -> str | None:
    """Why ``worktrees prune`` may remove this worktree, or None to keep it:
    its feature is finished or gone, or waiting with nothing uncommitted.
    A feature in progress or waiting for a person keeps its worktree, and so
    does one whose state cannot be told."""
    if row.state in FINISHED:
        return f"feature {row.state}"
    if row.state == GONE:
        return "feature no longer in the backlog"
    nothing_to_lose = row.worktree.dirty is False or not row.worktree.exists
    if row.state in WAITING and nothing_to_lose:
        return f"feature {row.state}, nothing uncommitted"
    return None


def recheck(row: WorktreeRow, store_path: Path) -> WorktreeRow:
    """The row as it is now: its feature's state read again and its changes
    looked at again (not its size). ``worktrees prune`` calls it holding git's
    shared state just before removing, so a build that has claimed the
    feature (or started writing in the worktree) since the listing keeps it."""
    w = row.worktree
    exists = w.path.is_dir()
    fresh = replace(w, exists=exists, dirty=has_changes(w.path) if exists else None)
    return WorktreeRow(fresh, _state(w.feature_id, feature_states(store_path)))
