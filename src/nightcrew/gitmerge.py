"""Git for the merge queue: put a feature's commits on top of the integration
head in a scratch worktree, and move the integration branch forward.

A branch is moved only by a compare-and-swap (``update-ref NEW OLD``) or, when
it is checked out in a worktree (the user's own checkout above all), by
``git merge --ff-only`` run there: git then updates only the files the new
commits change and refuses when one of them has uncommitted edits, so a
person's own work is never overwritten, committed or mixed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nightcrew import gitops
from nightcrew.core.errors import GitError
from nightcrew.gitlocks import clear_stale_locks, shared_git

MergeMethod = Literal["rebase", "merge", "squash"]


@dataclass(frozen=True)
class Conflict(Exception):
    """The feature's commits do not apply to the integration head."""

    files: tuple[str, ...]
    output: str

    def __str__(self) -> str:
        return "conflict in " + ", ".join(self.files)


def rev_parse(root: Path, ref: str) -> str | None:
    """The commit ``ref`` names, or None when there is no such ref."""
    done = gitops._git(root, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}", ok_codes=(0, 1))
    sha = gitops._stdout(done).strip()
    return sha if done.exit_code == 0 and sha else None


def tree_of(root: Path, rev: str) -> str | None:
    """The tree ``rev``'s commit records, or None when there is no such commit."""
    done = gitops._git(root, "rev-parse", "--verify", "-q", f"{rev}^{{tree}}", ok_codes=(0, 1))
    sha = gitops._stdout(done).strip()
    return sha if done.exit_code == 0 and sha else None


def merge_base(root: Path, a: str, b: str) -> str | None:
    """The best common ancestor of ``a`` and ``b``, or None."""
    done = gitops._git(root, "merge-base", a, b, ok_codes=(0, 1))
    sha = gitops._stdout(done).strip()
    return sha if done.exit_code == 0 and sha else None


def add_detached(root: Path, path: Path, sha: str) -> None:
    """A scratch worktree at ``path`` on no branch, at ``sha`` (a leftover one
    at that path is removed first). Serialised with the other lanes' git."""
    with shared_git(root):
        clear_stale_locks(root)
        if path.exists():
            remove_worktree(root, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # --force: a worktree registered at this path whose files are gone (a
        # crash between removing them and pruning) is taken over, not refused.
        gitops._git(root, "worktree", "add", "-q", "--force", "--detach", str(path), sha)


def remove_worktree(root: Path, path: Path) -> None:
    """Remove the worktree at ``path`` (its files too); a missing one is fine."""
    with shared_git(root):
        done = gitops._git(root, "worktree", "remove", "--force", str(path), ok_codes=(0, 128))
        if path.exists():
            import shutil  # noqa: PLC0415 - rarely needed

            shutil.rmtree(path, ignore_errors=True)
        if done.exit_code != 0:  # not a worktree git knew of as it is: forget stale entries
            gitops._git(root, "worktree", "prune")


def checkout_detached(path: Path, sha: str) -> None:
    """Put the worktree at ``path`` on ``sha``, on no branch."""
    gitops._git(path, "checkout", "-q", "--detach", sha)


def unmerged_files(path: Path) -> tuple[str, ...]:
    done = gitops._git(path, "diff", "--name-only", "-z", "--diff-filter=U")
    return tuple(sorted(set(gitops._z_list(gitops._stdout(done)))))


def uncommit(path: Path, onto: str) -> None:
    """Keep the worktree's files, but move its branch back to ``onto``: the
    feature's commits since then become uncommitted changes again, so the next
    attempt's fix lands with them as one commit (never a broken one, then a fix)."""
    gitops._git(path, "reset", "-q", "--mixed", onto)


def combine(path: Path, method: MergeMethod, onto: str, tip: str, message: str) -> str:
    """In the scratch worktree ``path`` (at ``tip``), put the feature's work on
    top of ``onto``: its commits rebased, a merge commit, or one squashed
    commit. Returns the resulting commit; :class:`Conflict` (with the
    operation aborted) when it does not apply."""
    identity = gitops._missing_identity(path)
    quiet = ["-c", "core.editor=true", "-c", "rerere.enabled=false"]
    if method == "rebase":
        args = [*identity, *quiet, "rebase", "-q", "--no-autostash", onto]
        abort = ["rebase", "--abort"]
    else:
        gitops._git(path, "checkout", "-q", "--detach", onto)
        if method == "merge":
            args = [*identity, *quiet, "merge", "-q", "--no-ff", "--no-verify", "-m", message, tip]
        else:
            args = [*identity, *quiet, "merge", "-q", "--squash", tip]
        abort = ["merge", "--abort"] if method == "merge" else ["reset", "-q", "--hard", onto]
    done = gitops._git(path, *args, ok_codes=range(256))
    if done.exit_code != 0:
        files = unmerged_files(path)
        gitops._git(path, *abort, ok_codes=range(256))
        if files:
            raise Conflict(files, done.output[-2000:])
        raise GitError(f"git {args[len(identity) + len(quiet)]} failed: {done.output[-500:]}")
    if method == "squash":
        commit = [*identity, "commit", "-q", "--no-verify", "--allow-empty", "-m", message]
        gitops._git(path, *commit)
    sha = gitops.head_sha(path)
    if sha is None:
        raise GitError("the merged result has no commit")
    return sha


def subjects(root: Path, since: str, until: str, limit: int = 10) -> list[str]:
    """The subjects of the commits in ``since..until``, oldest first."""
    span = f"{since}..{until}"
    done = gitops._git(root, "log", "--reverse", "--format=%s", span, ok_codes=(0, 128))
    lines = [line for line in gitops._stdout(done).splitlines() if line.strip()]
    return lines[-limit:]


def checked_out_at(root: Path, branch: str) -> Path | None:
    """The worktree where ``branch`` is checked out, or None."""
    done = gitops._git(root, "worktree", "list", "--porcelain")
    path: Path | None = None
    for line in gitops._stdout(done).splitlines():
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
        elif line == f"branch refs/heads/{branch}" and path is not None:
            return path
    return None


def advance(root: Path, branch: str, old: str, new: str) -> str:
    """Move ``branch`` from ``old`` to ``new`` (a descendant). Where it is
    checked out, by a fast-forward there; else by a compare-and-swap. Returns
    how (for the person); raises :class:`Refused` when it could not move
    without touching someone's work, :class:`Moved` when it is no longer at ``old``."""
    with shared_git(root):
        return _advance(root, branch, old, new)


def _advance(root: Path, branch: str, old: str, new: str) -> str:
    where = checked_out_at(root, branch)
    if where is None:
        done = gitops._git(
            root, "update-ref", f"refs/heads/{branch}", new, old, ok_codes=range(256)
        )
        if done.exit_code != 0:
            raise Moved(branch)
        return ""
    if gitops.head_sha(where) != old:
        raise Moved(branch)
    done = gitops._git(where, "merge", "-q", "--ff-only", new, ok_codes=range(256))
    if done.exit_code != 0:
        raise Refused(where, done.output.strip()[-500:])
    return f"checkout at {where} fast-forwarded"


class Moved(Exception):
    """The branch moved since the merged result was made (someone committed)."""


class Refused(Exception):
    """Git refused to update a checkout (its uncommitted edits are in the way)."""

    def __init__(self, where: Path, output: str) -> None:
        super().__init__(f"{where}: {output}")
        self.where = where
        self.output = output


def files_between(root: Path, old: str, new: str) -> Sequence[str]:
    done = gitops._git(root, "diff", "--name-only", "-z", old, new)
    return gitops._z_list(gitops._stdout(done))
