"""Git safety when several lanes (threads) and several nightcrew processes work
on one repository at once.

Git guards shared state with lock files it creates exclusively (``config.lock``,
``index.lock``, ``refs/heads/<branch>.lock``, ``packed-refs.lock``). A second
writer does not wait for the first: it fails ("could not lock config file",
"Unable to create '…/index.lock': File exists"). Users saw 2 of 3 parallel
``git worktree add`` fail that way, and 8 of 13 agents fail to commit. A git
killed mid-write leaves its lock behind, and every later writer then fails
until a person deletes it. So:

- :func:`shared_git` makes nightcrew's own writes to shared state take turns:
  one re-entrant thread lock per repository plus an ``flock`` shared with
  other nightcrew processes.
- :func:`clear_stale_locks` deletes the lock files no live git can have made,
  and :func:`wait_for_locks` waits (up to a time limit) for the ones a live git
  holds, naming its pid when it gives up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from nightcrew import gitops
from nightcrew.core.errors import GitError

# The inter-process lock file, in the repository's common git directory.
LOCK_NAME = "nightcrew-git.lock"

# A process whose start time is up to this much after a lock file's mtime may
# still have made it: start times are derived from the boot time and clock
# ticks, and file times and process times can disagree by a little.
START_SLACK_S = 1.0

# How often a wait for a lock (ours or git's) looks again.
POLL_S = 0.05

# Git's words when a lock file was in the way (not "reference already exists",
# which is an answer, not a race).
_LOCK_MARKERS = ("File exists", "could not lock config file", "index.lock")

# Lock files git makes at the top of the common directory.
_TOP_LOCKS = ("index.lock", "config.lock", "HEAD.lock", "packed-refs.lock")
# Lock files git makes in a linked worktree's own directory (worktrees/<name>/).
_WORKTREE_LOCKS = ("index.lock", "HEAD.lock")


@dataclass
class _Turn:
    """Whose turn it is on one repository, in this process."""

    lock: threading.RLock
    depth: int = 0
    fd: int | None = None  # the flock, held while depth > 0


_turns: dict[Path, _Turn] = {}
_turns_guard = threading.Lock()


def _turn(common: Path) -> _Turn:
    with _turns_guard:
        turn = _turns.get(common)
        if turn is None:
            turn = _turns[common] = _Turn(threading.RLock())
        return turn


@contextlib.contextmanager
def shared_git(root: Path, *, timeout_s: float = gitops.DEFAULT_TIMEOUT_S) -> Iterator[Path]:
    """Hold the repository's shared git state for the block; yields the common
    git directory.

    Use it for everything that writes what all worktrees share: ``worktree
    add``/``remove``/``prune``, creating, moving or deleting a branch
    (``update-ref`` with the expected old value), and any commit or merge on a
    ref another lane may also touch (the integration branch). A commit inside
    a lane's own worktree on that worktree's own branch does not need it: each
    worktree has its own index and HEAD, and its branch ref is its own.

    Re-entrant within a thread; other threads of this process wait on a
    ``threading.RLock`` kept per common directory, other processes on an
    ``flock`` of ``<common dir>/nightcrew-git.lock`` (released by the kernel
    even when the holder is killed). Past ``timeout_s`` it raises GitError,
    naming the other process when it is one.
    """
    common = gitops.common_dir(root)
    turn = _turn(common)
    if not turn.lock.acquire(timeout=max(timeout_s, 0.0)):
        raise GitError(
            f"{common}: another lane of this nightcrew held git's shared state"
            f" for over {timeout_s:.0f}s"
        )
    try:
        if turn.depth == 0:
            turn.fd = _flock(common / LOCK_NAME, timeout_s)
        turn.depth += 1
        try:
            yield common
        finally:
            turn.depth -= 1
            if turn.depth == 0 and turn.fd is not None:
                fd, turn.fd = turn.fd, None
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
    finally:
        turn.lock.release()


def _flock(path: Path, timeout_s: float) -> int:
    """An exclusive flock on ``path``, waited for up to ``timeout_s``; the
    holder's pid is written in so a refusal can name it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise GitError(f"cannot open {path}: {exc.strerror or exc}") from exc
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise GitError(
                        f"{path}: another nightcrew process (pid {holder}) held git's"
                        f" shared state for over {timeout_s:.0f}s"
                    ) from None
                time.sleep(POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


# ---- git's own lock files ----------------------------------------------------


@dataclass(frozen=True)
class GitLock:
    """A lock file git left in the repository, and who may hold it."""

    path: Path
    holders: tuple[int, ...]  # live git processes that may have made it; () = stale
    identity: tuple[int, int] = (0, 0)  # (inode, mtime in ns) when it was judged

    @property
    def stale(self) -> bool:
        return not self.holders


def is_lock_error(exc: GitError) -> bool:
    """True when git failed because a lock file was in its way."""
    return any(marker in exc.message for marker in _LOCK_MARKERS)


def _lock_files(common: Path) -> list[Path]:
    found = [common / name for name in _TOP_LOCKS]
    refs = common / "refs"
    if refs.is_dir():
        found += sorted(refs.rglob("*.lock"))
    linked = common / "worktrees"
    if linked.is_dir():
        for entry in sorted(linked.iterdir()):
            found += [entry / name for name in _WORKTREE_LOCKS]
    return [path for path in found if path.is_file()]


def _places(common: Path) -> list[Path]:
    """Where a git working on this repository runs: the common directory, the
    main worktree, and every linked worktree (from its ``gitdir`` file, so no
    git has to run while locks are in the way)."""
    places = [common, common.parent]
    linked = common / "worktrees"
    if linked.is_dir():
        for entry in linked.iterdir():
            with contextlib.suppress(OSError):
                dot_git = Path((entry / "gitdir").read_text(encoding="utf-8").strip())
                places.append(dot_git.parent)
    return places


@dataclass(frozen=True)
class _GitProcess:
    pid: int
    started: float
    cwd: Path | None  # None: not ours to look at (another user's)


def _git_processes() -> list[_GitProcess]:
    import psutil  # noqa: PLC0415 - only when a lock file is there (start-up time)

    found = []
    attrs = ["name", "cmdline", "create_time", "cwd", "status"]
    for process in psutil.process_iter(attrs):
        info = process.info
        if info["status"] == psutil.STATUS_ZOMBIE or info["create_time"] is None:
            continue
        names = [info["name"] or ""]
        if info["cmdline"]:
            names.append(os.path.basename(info["cmdline"][0]))
        if not any(name == "git" or name.startswith("git-") for name in names):
            continue
        cwd = Path(info["cwd"]) if info["cwd"] else None
        found.append(_GitProcess(process.pid, float(info["create_time"]), cwd))
    return found


def _inside(path: Path, places: Collection[Path]) -> bool:
    return any(path == place or path.is_relative_to(place) for place in places)


def find_locks(root: Path) -> list[GitLock]:
    """The lock files in the repository's common git directory (``index.lock``,
    ``config.lock``, ``HEAD.lock``, ``packed-refs.lock``, ``refs/**/*.lock``)
    and in its linked worktrees' directories (``index.lock``, ``HEAD.lock``),
    each with the live git processes that may have made it.

    A process may have made a lock only if it is a live ``git``, started no
    later than the lock file was written (``START_SLACK_S`` allowed), and runs
    inside the repository or one of its worktrees. A process whose directory
    we may not read counts as a possible maker: a lock in use must never go.
    """
    common = gitops.common_dir(root)
    locks = _lock_files(common)
    if not locks:
        return []
    # Each file's time is read before the processes are listed: a git that
    # made a file since is then either listed or, if it started later, has
    # replaced a file whose identity no longer matches when it is deleted.
    written: dict[Path, os.stat_result] = {}
    for path in locks:
        with contextlib.suppress(FileNotFoundError):  # its git finished meanwhile
            written[path] = path.stat()
    places = [place.resolve() for place in _places(common)]
    processes = _git_processes()
    found = []
    for path, stat in written.items():
        holders = tuple(
            p.pid
            for p in processes
            if p.started <= stat.st_mtime + START_SLACK_S
            and (p.cwd is None or _inside(p.cwd.resolve(), places))
        )
        found.append(GitLock(path, holders, (stat.st_ino, stat.st_mtime_ns)))
    return found


def clear_stale_locks(root: Path) -> list[Path]:
    """Delete the lock files no live git can have made (see :func:`find_locks`)
    and return them, for the engine to report; held ones stay."""
    removed = []
    for lock in find_locks(root):
        if not lock.stale:
            continue
        with contextlib.suppress(FileNotFoundError):
            now = lock.path.stat()
            if (now.st_ino, now.st_mtime_ns) != lock.identity:
                continue  # another file by now: its maker was not judged
            lock.path.unlink()
            removed.append(lock.path)
    return removed


def mentioned_locks(exc: GitError, locks: Collection[GitLock]) -> list[GitLock]:
    """The locks a git error names (``…/.git/index.lock``, ``…/.git/config``,
    ``…/refs/heads/x.lock``): the ones worth waiting for."""
    named = []
    for lock in locks:
        # The last two parts, without ".lock": ".git/index", ".git/config",
        # "nightcrew/1-login" (of refs/heads/nightcrew/1-login.lock). Git
        # prints paths absolute or relative; both end that way.
        tail = "/".join(Path(str(lock.path).removesuffix(".lock")).parts[-2:])
        if tail in exc.message:
            named.append(lock)
    return named


def wait_for_locks(
    root: Path,
    *,
    only: Collection[Path] | None = None,
    timeout_s: float = gitops.DEFAULT_TIMEOUT_S,
) -> list[Path]:
    """Clear stale locks, then wait until the held ones (of ``only``, when
    given) are gone; returns the stale ones removed. Raises GitError naming
    the holding process(es) when a lock is still held after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    removed: list[Path] = []
    while True:
        removed += clear_stale_locks(root)
        held = [
            lock
            for lock in find_locks(root)
            if lock.holders and (only is None or lock.path in only)
        ]
        if not held:
            return removed
        if time.monotonic() >= deadline:
            lock = held[0]
            pids = ", ".join(str(pid) for pid in lock.holders)
            raise GitError(
                f"{lock.path} is held by a running git (pid {pids}) for over"
                f" {timeout_s:.0f}s; wait for it or stop it"
            )
        time.sleep(POLL_S)
