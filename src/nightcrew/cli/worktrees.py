"""``nightcrew worktrees [--json]`` and ``nightcrew worktrees prune [--all]``:
the git worktrees a parallel build made for its lanes
(``.nightcrew/worktrees/``), with their features' states and their size, and
getting the disk back from those nobody needs any more.

Pruning keeps every lane branch: the commits on it are the feature's work,
and a branch costs no disk. Uncommitted changes in a worktree it removes are
saved as a patch under ``.nightcrew/pruned/`` first.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from nightcrew.project import Project
    from nightcrew.views.worktrees import WorktreeRow


def human_size(n: int) -> str:
    """Bytes in decimal units, as disks are sold: ``512 B``, ``1.5 KB``, ``12.3 MB``."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _changes(row: WorktreeRow) -> str:
    w = row.worktree
    if not w.exists:
        return "missing"
    return {True: "uncommitted", False: "", None: "?"}[w.dirty]


@click.group("worktrees", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def worktrees_group(ctx: click.Context, as_json: bool) -> None:
    """List the git worktrees nightcrew made for parallel lanes: feature,
    branch, the feature's state, uncommitted changes, size and path."""
    if ctx.invoked_subcommand is not None:
        return
    from nightcrew.cli.listing import json_lines
    from nightcrew.project import Project
    from nightcrew.views.worktrees import worktree_rows

    project = Project.find(Path.cwd())
    rows = worktree_rows(project.root, project.store_path)
    if as_json:
        click.echo(json_lines(row.as_json() for row in rows))
        return
    if not rows:
        click.echo("no nightcrew worktrees")
        return
    click.echo(worktree_table(project, rows), nl=False)


def worktree_table(project: Project, rows: list[WorktreeRow]) -> str:
    """The worktrees as aligned columns, and a line with their count and size
    (``nightcrew worktrees``, and ``status`` after a parallel build)."""
    from nightcrew.cli.listing import columns

    header = ("feature", "branch", "state", "changes", "size", "path")
    cells = [
        (
            "-" if row.feature_id is None else f"#{row.feature_id}",
            row.worktree.branch or "(detached)",
            row.state,
            _changes(row),
            human_size(row.worktree.size_bytes),
            project.relative(row.worktree.path),
        )
        for row in rows
    ]
    total = sum(row.worktree.size_bytes for row in rows)
    return columns(header, cells) + f"{len(rows)} worktree(s), {human_size(total)}\n"


@worktrees_group.command("prune")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Remove every nightcrew worktree (refused while a build runs in the project).",
)
def prune_command(everything: bool) -> None:
    """Remove the worktrees of finished features (passed, skipped, failed), of
    features no longer in the backlog, and of waiting features with nothing
    uncommitted. Branches are kept."""
    from nightcrew.core.errors import LockHeld
    from nightcrew.engine.lock import ProjectLock
    from nightcrew.project import Project
    from nightcrew.views.worktrees import worktree_rows

    project = Project.find(Path.cwd())
    rows = worktree_rows(project.root, project.store_path)
    if not rows:
        click.echo("no nightcrew worktrees")
        return
    if not everything:
        _prune(project, rows, everything=False)
        return
    try:
        lock = ProjectLock(project.lock_path)
        lock.acquire()  # held while removing, so no build starts meanwhile
    except LockHeld as exc:
        raise LockHeld(f"worktrees prune --all refused: {exc.message}") from None
    try:
        _prune(project, rows, everything=True)
    finally:
        lock.release()


def _prune(project: Project, rows: list[WorktreeRow], *, everything: bool) -> None:
    from datetime import datetime

    from nightcrew.gitlocks import shared_git
    from nightcrew.views.worktrees import prune_reason, recheck
    from nightcrew.worktrees import remove_worktree, save_patch

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    freed = removed = 0
    kept: list[WorktreeRow] = []
    for listed in rows:
        # Judged again under git's shared state: a build adds (or reuses) a
        # lane's worktree under it after claiming the feature.
        with shared_git(project.root):
            row = recheck(listed, project.store_path)
            reason = f"feature {row.state}" if everything else prune_reason(row)
            if reason is None:
                kept.append(row)
                continue
            w = row.worktree
            saved = None
            if w.exists and w.dirty is not False and w.head is not None:
                dest = project.dir / "pruned" / f"{w.path.name}-{stamp}.patch"
                saved = save_patch(w.path, w.head, dest)
            remove_worktree(project.root, w.path, delete_branch=False)
        removed += 1
        freed += w.size_bytes
        line = f"removed {project.relative(w.path)} ({w.branch or 'detached'}, {reason})"
        line += f", {human_size(w.size_bytes)}"
        if saved is not None:
            line += f"; uncommitted changes saved in {project.relative(saved)}"
        click.echo(line)
    if removed:
        click.echo(f"freed {human_size(freed)} from {removed} worktree(s); their branches are kept")
    else:
        click.echo("nothing to prune")
    if kept:
        why = ", ".join(
            f"#{r.feature_id} {r.state}" if r.feature_id else f"{r.worktree.path.name} {r.state}"
            for r in kept
        )
        click.echo(f"kept {len(kept)}: {why} (in use, waiting, or with uncommitted changes)")
