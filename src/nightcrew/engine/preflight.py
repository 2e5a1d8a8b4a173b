"""Checks before the first attempt of ``run`` and ``build`` (and all of
``--dry-run``): nothing the user made is taken, lost or paid for twice.

Each check returns problems, one line each; the caller refuses (exit 2)
before any agent starts or anything is written.

* The tree must be committed: tracked changes and untracked files that are not
  ignored would otherwise end up in nightcrew's commits. ``--allow-dirty``
  lets them be; they are then never staged (see :func:`left_alone`).
* No file the clean gate would refuse (a secret that is not ignored): that
  would fail every attempt, after paying for it.
* No unfinished earlier run of the same plan (or build): starting over on top
  of its half-done work would do the work twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nightcrew import gitops, secrets
from nightcrew.core.states import ItemState, RunState
from nightcrew.store.records import RunRow, Store

SHOWN = 8  # paths named in one line before "and N more"

_STOPPED = {
    RunState.RUNNING: "it never finished",
    RunState.INTERRUPTED: "it was interrupted",
    RunState.BUDGET_EXCEEDED: "it stopped at a budget",
    RunState.CRASHED: "it crashed",
    RunState.FAILED: "it stopped at a failure",
}


def _listed(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:SHOWN])
    more = len(paths) - SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _describe(entry: gitops.StatusEntry) -> str:
    if entry.untracked:
        return f"{entry.path} (untracked)"
    if entry.deleted:
        return f"{entry.path} (deleted)"
    return f"{entry.path} ({'staged' if entry.worktree == ' ' else 'modified'})"


def left_alone(root: Path) -> frozenset[str]:
    """The paths that are dirty now: with ``--allow-dirty`` nightcrew never
    stages them, whatever happens to them during the run."""
    paths: set[str] = set()
    for entry in gitops.dirty_entries(root):
        paths.update(p for p in (entry.path, entry.orig_path) if p is not None)
    return frozenset(paths)


def secret_problems(root: Path) -> list[str]:
    """Files the clean gate would refuse, found before any money is spent."""
    entries = gitops.dirty_entries(root)
    findings = secrets.find_secrets(root, [e.path for e in entries])
    if not findings:
        return []
    named = _listed([f"{f.path} ({f.reason})" for f in findings])
    return [
        f"not ignored, and the clean gate would refuse every attempt: {named};"
        " add them to .gitignore (or remove them) first"
    ]


def dirty_problems(root: Path) -> list[str]:
    entries = gitops.dirty_entries(root)
    if not entries:
        return []
    named = _listed([_describe(e) for e in sorted(entries, key=lambda e: e.path)])
    return [
        f"the working tree has uncommitted changes: {named}; commit them first,"
        " or pass --allow-dirty to keep them out of nightcrew's commits"
    ]


def tree_problems(root: Path, *, allow_dirty: bool, resume: bool) -> list[str]:
    """Secrets always; a dirty tree unless ``--allow-dirty``, or on ``--resume``
    (the tree then holds the stopped run's own unfinished work)."""
    problems = secret_problems(root)
    if not (allow_dirty or resume):
        problems += dirty_problems(root)
    return problems


def unfinished(store: Store, run: RunRow | None) -> str | None:
    """Why ``run`` (the latest of its plan or of the builds) is unfinished, e.g.
    "batch 2 of 4, it was interrupted"; None when it finished (succeeded, or
    failed with every item judged) or was abandoned."""
    if run is None or run.state in (RunState.SUCCEEDED, RunState.ABANDONED, RunState.PENDING):
        return None
    items = store.items(run.id)
    open_items = sorted(
        (i for i in items if i.state in (ItemState.PENDING, ItemState.IN_PROGRESS)),
        key=lambda i: i.number or 0,
    )
    if run.state == RunState.FAILED and not open_items:
        return None
    why = _STOPPED.get(run.state, str(run.state))
    if run.kind == "plan" and open_items:
        return f"batch {open_items[0].number} of {len(items)}; {why}"
    return why
