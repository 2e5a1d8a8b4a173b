"""Where a plan's run works with ``nightcrew run --branch NAME [--worktree]``.

Without ``--branch`` a run commits on whatever the user's checkout has out.
With it, the run's commits go on branch NAME, made from HEAD when it does not
exist yet (an existing one is continued only when HEAD is already in it, or
with ``--resume``):

* in place, NAME is checked out in the user's tree before the first attempt,
  and the run works there as it always does;
* with ``--worktree`` the user's checkout is not touched at all: the run works
  in ``.nightcrew/worktrees/run-<slug>`` on NAME. A finished run removes the
  worktree (the branch stays); a stopped one keeps it, with its half-done
  work, for ``--resume`` to find at the same path.

The placement is stored with the run (:data:`KEY` in its config), so
``--resume`` alone continues where the run worked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nightcrew import gitmerge, gitops, worktrees
from nightcrew.core.errors import BadInput
from nightcrew.gitlocks import shared_git

KEY = "run_branch"  # where a run's config snapshot keeps its placement
PREFIX = "run-"  # a run's worktree is .nightcrew/worktrees/run-<slug of the branch>


@dataclass(frozen=True)
class RunBranch:
    """The branch a run works on, and whether it works in a worktree of it."""

    name: str
    worktree: bool = False

    @classmethod
    def of(cls, name: str | None, worktree: bool) -> RunBranch | None:
        """The placement the options ask for; None for the current branch.
        A bad name or ``--worktree`` alone is a :class:`BadInput`."""
        if name is None:
            if worktree:
                raise BadInput("--worktree needs --branch NAME")
            return None
        if not worktrees.valid_branch(name):
            raise BadInput(f"--branch {name}: not a valid branch name")
        return cls(name, worktree)

    @classmethod
    def stored(cls, config: dict[str, Any]) -> RunBranch | None:
        """The placement a run recorded in its config snapshot, if any."""
        kept = config.get(KEY)
        if not isinstance(kept, dict) or not isinstance(kept.get("name"), str):
            return None
        return cls(kept["name"], bool(kept.get("worktree")))

    def snapshot(self) -> dict[str, Any]:
        return {KEY: {"name": self.name, "worktree": self.worktree}}

    def flags(self) -> str:
        """The options that ask for this placement, as a person types them."""
        return f"--branch {self.name}" + (" --worktree" if self.worktree else "")

    def path(self, root: Path) -> Path:
        """The worktree of a ``--worktree`` run: ``.nightcrew/worktrees/run-<slug>``."""
        return (
            worktrees.main_root(root)
            / worktrees.WORKTREES_DIR
            / (PREFIX + worktrees.slug(self.name))
        )

    # ---- before the run -----------------------------------------------------------

    def problems(self, root: Path, *, resume: bool) -> list[str]:
        """What stops the run from working on this branch, one line each."""
        head = gitops.head_sha(root)
        if head is None:
            return [f"--branch {self.name}: the repository has no commit to branch from yet"]
        tip = gitmerge.rev_parse(root, f"refs/heads/{self.name}")
        if tip is not None and not resume and not gitops.is_ancestor(root, head, tip):
            return [
                f"branch {self.name} exists and does not contain HEAD: continue it with"
                " --resume, or pick another name"
            ]
        mine = self.path(root) if self.worktree else root
        there = gitmerge.checked_out_at(root, self.name)
        if there is not None and there.resolve() != mine.resolve():
            where = "your checkout" if there.resolve() == root.resolve() else str(there)
            return [
                f"branch {self.name} is checked out in {where}: a run with --worktree"
                " needs a branch nobody has checked out"
                if self.worktree
                else f"branch {self.name} is checked out in {where}: pick another branch"
            ]
        return []

    def describe(self, root: Path) -> str:
        """Where the run would work, for ``--dry-run``."""
        tip = gitmerge.rev_parse(root, f"refs/heads/{self.name}")
        head = gitops.head_sha(root) or ""
        made = (
            f"branch {self.name} (made from HEAD {head[:12]})"
            if tip is None
            else f"branch {self.name} (exists, at {tip[:12]})"
        )
        if self.worktree:
            path = self.path(root)
            reused = " (there already, reused)" if path.exists() else ""
            return f"works on {made} in the worktree {path}{reused}; your checkout is not touched"
        return f"works on {made}, checked out in your tree first"

    # ---- the run ------------------------------------------------------------------

    def enter(self, root: Path) -> Path:
        """Make the branch ready and return where the run works: the user's tree
        with NAME checked out, or the run's worktree on NAME (reused when a
        stopped run left it)."""
        head = gitops.head_sha(root)
        if head is None:  # problems() said so already; kept honest
            raise BadInput(f"--branch {self.name}: the repository has no commit to branch from yet")
        if self.worktree:
            return worktrees.add_worktree(root, self.path(root), self.name, head).path
        if gitops.current_branch(root) != self.name:
            with shared_git(root):  # a branch is state every worktree shares
                if gitmerge.rev_parse(root, f"refs/heads/{self.name}") is None:
                    gitops.git(root, "checkout", "-q", "-b", self.name, head)
                else:
                    gitops.git(root, "checkout", "-q", self.name)
        return root

    def leave(self, root: Path, *, finished: bool) -> str:
        """After the run: remove a finished run's worktree when it holds nothing
        uncommitted; say where the work is, in words for the run's last line."""
        said = f"work is on branch {self.name}"
        if not self.worktree:
            return said
        path = self.path(root)
        if not path.exists():
            return said
        if worktrees.has_changes(path) is not False:
            return f"{said}; uncommitted work is kept in {path}"
        if not finished:
            return f"{said}; its worktree {path} is kept for --resume"
        worktrees.remove_worktree(root, path, delete_branch=False)
        return said
