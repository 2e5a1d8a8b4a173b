"""Git worktrees for parallel lanes: one per feature, under
``<project>/.nightcrew/worktrees/<id>-<slug>``, on a branch
``nightcrew/<id>-<slug>`` made from the integration branch's head.

Everything here that writes shared git state (worktree registration, branch
refs) runs inside :func:`nightcrew.gitlocks.shared_git`, clears lock files a
dead git left first, and retries when a lock was in the way; see
``gitlocks`` for why. A lane's commits on its own branch go through
:func:`commit_safely`, which never loses the work: when the commit fails, the
changes are saved as a patch first.
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nightcrew import gitops
from nightcrew.core.errors import GitError
from nightcrew.gitlocks import (
    clear_stale_locks,
    find_locks,
    is_lock_error,
    mentioned_locks,
    shared_git,
    wait_for_locks,
)

# Where nightcrew's worktrees live, relative to the main worktree.
WORKTREES_DIR = Path(".nightcrew") / "worktrees"
BRANCH_PREFIX = "nightcrew/"
SLUG_MAX = 40
# A git write that failed on a lock is tried again this many times.
RETRIES = 3

_BRANCH = re.compile(r"^nightcrew/(\d+)-")
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


# ---- names -------------------------------------------------------------------


def slug(title: str) -> str:
    """``"Log in with GitHub!"`` → ``log-in-with-github``: lowercase ascii
    letters and digits joined by ``-``, at most 40 characters, never empty."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:SLUG_MAX].rstrip("-") or "feature"


def branch_name(feature_id: int, title: str) -> str:
    """The lane branch of a feature: ``nightcrew/<id>-<slug>``."""
    if feature_id < 1:
        raise ValueError(f"a feature id is a positive number, not {feature_id}")
    name = f"{BRANCH_PREFIX}{feature_id}-{slug(title)}"
    if not valid_branch(name):  # cannot happen with slug()'s alphabet; kept honest
        raise ValueError(f"{name!r} is not a valid branch name")
    return name


def feature_of(branch: str | None) -> int | None:
    """The feature id a lane branch carries; None for any other branch."""
    match = _BRANCH.match(branch or "")
    return int(match.group(1)) if match else None


def valid_branch(name: str) -> bool:
    """What ``git check-ref-format --branch`` accepts, without running git:
    no empty, ``.``-led or ``.lock``-ending component; no ``..``, ``@{``,
    control characters, space, ``~ ^ : ? * [ \\``; not ``HEAD``, not led by
    ``-``; no leading, trailing or doubled ``/``; no trailing ``.``. (``@``
    alone is a ref git refuses, but ``refs/heads/@`` is a branch it accepts.)"""
    if not name or name == "HEAD" or name.startswith("-") or name.endswith("."):
        return False
    if ".." in name or "@{" in name or _BAD_REF_CHARS.search(name):
        return False
    return all(
        part and not part.startswith(".") and not part.endswith(".lock") for part in name.split("/")
    )


def worktree_path(root: Path, branch: str, *, main: Path | None = None) -> Path:
    """Where a lane branch's worktree goes: ``.nightcrew/worktrees/<id>-<slug>``
    of the main worktree (``main``, when the caller knows it: finding it runs
    ``git worktree list``)."""
    top = main if main is not None else main_root(root)
    return top / WORKTREES_DIR / branch.removeprefix(BRANCH_PREFIX).replace("/", "-")


# ---- git worktree list ---------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One record of ``git worktree list --porcelain``."""

    path: Path
    head: str | None
    branch: str | None  # short name; None when detached
    locked: str | None  # the reason ("" when none was given); None when not locked


def _entries(root: Path) -> list[_Entry]:
    out = gitops.output(gitops.git(root, "worktree", "list", "--porcelain", "-z"))
    entries: list[_Entry] = []
    fields: dict[str, str] = {}
    for line in [*out.split("\0"), ""]:
        if line:
            key, _, value = line.partition(" ")
            fields[key] = value
            continue
        if "worktree" in fields:
            branch = fields.get("branch")
            entries.append(
                _Entry(
                    path=Path(fields["worktree"]),
                    head=fields.get("HEAD"),
                    branch=branch.removeprefix("refs/heads/") if branch else None,
                    locked=fields.get("locked"),
                )
            )
        fields = {}
    return entries


def main_root(root: Path) -> Path:
    """The main worktree of the repository ``root`` belongs to."""
    entries = _entries(root)
    if not entries:
        raise GitError(f"{root}: git worktree list shows no worktree")
    return entries[0].path


def _registered(root: Path, path: Path) -> _Entry | None:
    wanted = path.resolve()
    return next((e for e in _entries(root) if e.path.resolve() == wanted), None)


def _ours(root: Path, path: Path) -> bool:
    """True for a path inside ``.nightcrew/worktrees/``: only there may
    nightcrew delete a directory git does not know."""
    return path.resolve().is_relative_to((main_root(root) / WORKTREES_DIR).resolve())


# ---- adding and removing ---------------------------------------------------------


@dataclass(frozen=True)
class Lane:
    """A worktree ready for a lane to work in.

    ``reused`` is True when the branch existed before (a resumed build): its
    commits (and, when the worktree was still there, its uncommitted files)
    are kept as they are, and ``base_sha`` was not applied; ``head`` says
    where it is, and the engine decides whether to bring it up to date."""

    path: Path
    branch: str
    head: str
    reused: bool
    cleared: tuple[Path, ...] = ()  # stale lock files removed on the way


def _branch_sha(root: Path, branch: str) -> str | None:
    ref = f"refs/heads/{branch}"
    done = gitops.git(root, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}", ok_codes=(0, 1))
    return gitops.output(done).strip() if done.exit_code == 0 else None


def _remove_registration(root: Path, path: Path) -> None:
    if path.is_dir():
        gitops.git(root, "worktree", "remove", "--force", "--force", str(path), ok_codes=(0, 128))
    if path.exists() and _ours(root, path):
        shutil.rmtree(path)
    gitops.git(root, "worktree", "prune")


def _repair(root: Path, path: Path, branch: str) -> _Entry | None:
    """Make ``path`` either a sound worktree of ``branch`` (returned, to be
    reused) or absent: a registered worktree whose directory is gone is
    pruned; one whose ``git worktree add`` was killed half-way ("locked
    initializing") or whose ``.git`` file is gone is removed; a directory of
    ours that git does not know is deleted."""
    entry = _registered(root, path)
    if entry is None:
        if path.exists():
            if not _ours(root, path):
                raise GitError(f"{path} exists and is not a git worktree; move it away first")
            shutil.rmtree(path)
        return None
    sound = path.is_dir() and (path / ".git").is_file() and entry.head is not None
    if not sound or entry.locked == "initializing":
        _remove_registration(root, path)
        return None
    if entry.branch != branch:
        raise GitError(f"{path} is already a worktree of {entry.branch or 'a detached HEAD'}")
    return entry


def add_worktree(
    root: Path,
    path: Path,
    branch: str,
    base_sha: str,
    *,
    timeout_s: float = gitops.DEFAULT_TIMEOUT_S,
) -> Lane:
    """A worktree at ``path`` on ``branch``, made from ``base_sha`` if need be.

    Reuse or add: a sound worktree of ``branch`` already at ``path`` is
    returned as it is; an existing ``branch`` without one is checked out there;
    otherwise the branch is created at ``base_sha`` (``update-ref`` that
    insists it did not exist) and checked out. Either way ``Lane.reused`` says
    whether the branch was there before. A half-made worktree at ``path`` is
    repaired first (see :func:`_repair`).

    Serialised with :func:`shared_git`; stale lock files are cleared first, and
    a failure on a lock is retried up to ``RETRIES`` times after waiting (up
    to ``timeout_s``) for a live git holding the lock it names.
    """
    if not gitops.is_commit(root, base_sha):
        raise GitError(f"{base_sha}: not a commit in {root}")
    path = Path(os.path.abspath(path))
    cleared: list[Path] = []
    with shared_git(root, timeout_s=timeout_s):
        gitops.ensure_excluded(root)  # the main worktree never shows .nightcrew/
        for attempt in range(RETRIES + 1):
            cleared += clear_stale_locks(root)
            try:
                existing = _repair(root, path, branch)
                if existing is not None and existing.head is not None:
                    return Lane(path, branch, existing.head, True, tuple(cleared))
                head = _branch_sha(root, branch)
                reused = head is not None
                if head is None:
                    message = f"nightcrew: lane branch from {base_sha[:12]}"
                    ref = f"refs/heads/{branch}"
                    gitops.git(root, "update-ref", "-m", message, ref, base_sha, "")
                    head = base_sha
                path.parent.mkdir(parents=True, exist_ok=True)
                gitops.git(root, "worktree", "add", "--quiet", str(path), branch)
                return Lane(path, branch, head, reused, tuple(cleared))
            except GitError as exc:
                if not is_lock_error(exc) or attempt == RETRIES:
                    raise
                only = [lock.path for lock in mentioned_locks(exc, find_locks(root))]
                cleared += wait_for_locks(root, only=only, timeout_s=timeout_s)
    raise AssertionError("unreachable: the last attempt returns or raises")


def remove_worktree(
    root: Path,
    path: Path,
    *,
    delete_branch: bool,
    branch: str | None = None,
    timeout_s: float = gitops.DEFAULT_TIMEOUT_S,
) -> None:
    """Remove the worktree at ``path`` (uncommitted files included: save them
    first with :func:`save_patch` if they matter) and prune git's record of
    it; a directory that is already gone is fine. With ``delete_branch`` its
    branch (the one checked out there, or ``branch`` when the worktree is no
    longer registered) is deleted too, only if it still points where it did.
    Only nightcrew's own worktrees (under ``.nightcrew/worktrees/``) are
    removed; any other path is a GitError. Serialised with :func:`shared_git`."""
    path = Path(os.path.abspath(path))
    if not _ours(root, path):
        raise GitError(f"{path}: not a nightcrew worktree (those are in {WORKTREES_DIR}/)")
    with shared_git(root, timeout_s=timeout_s):
        clear_stale_locks(root)
        entry = _registered(root, path)
        name = entry.branch if entry is not None and entry.branch else branch
        _remove_registration(root, path)
        if delete_branch and name:
            sha = _branch_sha(root, name)
            if sha is not None:
                gitops.git(root, "update-ref", "-d", f"refs/heads/{name}", sha)


# ---- looking at them -----------------------------------------------------------------


@dataclass(frozen=True)
class WorktreeInfo:
    path: Path
    branch: str | None
    head: str | None
    exists: bool
    size_bytes: int  # apparent size of its files, .git file left out; 0 when gone
    dirty: bool | None  # uncommitted changes; None when it cannot be told (gone, broken)

    @property
    def feature_id(self) -> int | None:
        return feature_of(self.branch)


def _size(top: Path) -> int:
    total = 0
    for dirpath, _dirnames, filenames in os.walk(top, followlinks=False):
        for name in filenames:
            if name == ".git" and dirpath == str(top):
                continue
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:  # gone meanwhile
                continue
    return total


def has_changes(path: Path) -> bool | None:
    """Uncommitted changes in a worktree (nightcrew's own files aside); None
    when git cannot tell (a broken worktree)."""
    try:
        return bool(gitops.dirty_entries(path))
    except GitError:
        return None


def list_worktrees(root: Path) -> list[WorktreeInfo]:
    """nightcrew's worktrees of the repository (those under
    ``.nightcrew/worktrees/``), as ``git worktree list`` knows them, with
    their size on disk and whether they hold uncommitted changes."""
    entries = _entries(root)
    if not entries:
        return []
    home = (entries[0].path / WORKTREES_DIR).resolve()
    found = []
    for entry in entries[1:]:
        if not entry.path.resolve().is_relative_to(home):
            continue
        exists = entry.path.is_dir()
        found.append(
            WorktreeInfo(
                path=entry.path,
                branch=entry.branch,
                head=entry.head,
                exists=exists,
                size_bytes=_size(entry.path) if exists else 0,
                dirty=has_changes(entry.path) if exists else None,
            )
        )
    return found


# ---- never losing a lane's work ----------------------------------------------------


def save_patch(worktree: Path, base_sha: str, dest: Path) -> Path | None:
    """Write everything the worktree holds beyond ``base_sha`` (its commits,
    staged and unstaged changes, and untracked files that are not ignored) to
    ``dest`` as a binary-safe patch; None when there is nothing to save."""
    patch = gitops.diff_patch(worktree, base_sha, binary=True)
    if not patch:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(patch, encoding="utf-8")
    return dest


def commit_safely(
    worktree: Path,
    message: str,
    *,
    base_sha: str,
    patch_dest: Path,
    trailers: Mapping[str, str] | None = None,
    timeout_s: float = gitops.DEFAULT_TIMEOUT_S,
) -> str | None:
    """Commit all of a lane's changes on its own branch; the new sha, or None
    when there was nothing to commit.

    Not serialised: the worktree's index, HEAD and branch are its own. A
    failure on a lock is retried after stale locks are cleared and a live
    holder is waited for. When the commit still fails, the work is saved to
    ``patch_dest`` (see :func:`save_patch`) before the GitError, which names
    the patch, is raised: a failed commit never loses an attempt's work.
    """
    try:
        for attempt in range(RETRIES + 1):
            try:
                return gitops.commit_all(worktree, message, trailers)
            except GitError as exc:
                if not is_lock_error(exc) or attempt == RETRIES:
                    raise
                only = [lock.path for lock in mentioned_locks(exc, find_locks(worktree))]
                wait_for_locks(worktree, only=only, timeout_s=timeout_s)
    except GitError as exc:
        saved = save_patch(worktree, base_sha, patch_dest)
        kept = f"; the work is saved in {saved}" if saved else ""
        raise GitError(f"{exc.message}{kept}") from exc
    raise AssertionError("unreachable: the last attempt returns or raises")
