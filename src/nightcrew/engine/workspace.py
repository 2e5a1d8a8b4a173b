"""Where an attempt works: its directory, the commit its work starts from, and
what becomes of the work (committed, or kept as a patch and undone).

Every git call that commits or resets for an attempt goes through a
workspace. :class:`InPlace` works on the project root (one lane; the paths
``--allow-dirty`` left alone are never staged and never reset);
:class:`InWorktree` works in a git worktree of its own on the feature's own
branch, so several lanes work at once and the user's checkout is never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nightcrew import gitops, worktrees


class Workspace(Protocol):
    """What an attempt asks of the place it works in."""

    @property
    def cwd(self) -> Path: ...

    def base(self) -> str | None: ...

    def recent_commits(self, n: int = 5) -> list[str]: ...

    def commit(
        self, message: str, trailers: Mapping[str, str], base_sha: str | None
    ) -> str | None: ...

    def changed_since(self, base_sha: str) -> bool: ...

    def abandon(self, directory: Path, base_sha: str, name: str) -> Path | None: ...

    def reset(self, base_sha: str) -> None: ...


@dataclass(frozen=True)
class InPlace:
    """The project root itself: one attempt at a time works here."""

    root: Path
    left_alone: frozenset[str] = frozenset()

    @property
    def cwd(self) -> Path:
        return self.root

    def base(self) -> str | None:
        """The commit new work starts from (HEAD), or None in a repository without one."""
        return gitops.head_sha(self.root)

    def recent_commits(self, n: int = 5) -> list[str]:
        return gitops.recent_commits(self.root, n)

    def commit(self, message: str, trailers: Mapping[str, str], base_sha: str | None) -> str | None:
        """Commit everything but the left-alone paths; the new commit, or the
        agent's own newest one when there was nothing left to commit, or None.
        A git error raises :class:`GitError`."""
        commit = gitops.commit_all(self.root, message, dict(trailers), leave=self.left_alone)
        if commit is None:
            head = gitops.head_sha(self.root)
            commit = head if head != base_sha else None
        return commit

    def changed_since(self, base_sha: str) -> bool:
        return bool(gitops.changed_files(self.root, base_sha))

    def abandon(self, directory: Path, base_sha: str, name: str) -> Path | None:
        """Keep the work since ``base_sha`` as ``directory/name.patch`` and put
        the tree back at ``base_sha``; None when there was nothing to keep or undo."""
        diff = gitops.diff_patch(self.root, base_sha, leave=self.left_alone)
        if not diff.strip() and gitops.head_sha(self.root) == base_sha:
            return None
        directory.mkdir(parents=True, exist_ok=True)
        patch = directory / f"{name}.patch"
        patch.write_text(diff, encoding="utf-8")
        self.reset(base_sha)
        return patch

    def reset(self, base_sha: str) -> None:
        """Put the tree back at ``base_sha``, leaving the left-alone paths as they are."""
        gitops.reset_leaving(self.root, base_sha, self.left_alone)


@dataclass(frozen=True)
class InWorktree(InPlace):
    """A git worktree of the feature's own (``root`` is the worktree), on
    ``branch``; nothing of the user's is in it, so nothing is left alone. Its
    commits go on its own branch; the merge queue lands them."""

    branch: str = ""
    patch_dest: Path | None = None  # where a commit that fails keeps the work

    def commit(self, message: str, trailers: Mapping[str, str], base_sha: str | None) -> str | None:
        """Commit on the worktree's own branch (no lock: its index and ref are its
        own), retrying on a git lock; a commit that still fails keeps the work as a
        patch at ``patch_dest`` and says where (:func:`worktrees.commit_safely`)."""
        if base_sha is None or self.patch_dest is None:
            return super().commit(message, trailers, base_sha)
        commit = worktrees.commit_safely(
            self.root, message, base_sha=base_sha, patch_dest=self.patch_dest, trailers=trailers
        )
        if commit is None:
            head = gitops.head_sha(self.root)
            commit = head if head != base_sha else None
        return commit
