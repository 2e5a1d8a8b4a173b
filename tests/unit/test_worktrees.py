"""Lanes' worktrees against real git repositories: made from three threads at
once, reused on resume, repaired when half-made, removed with their branch,
listed with size and dirty state; git's lock files cleared only when no live
git can have made them; a lane's work never lost when its commit fails."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nightcrew import gitlocks, proc
from nightcrew.core.errors import GitError
from nightcrew.worktrees import (
    add_worktree,
    branch_name,
    commit_safely,
    feature_of,
    list_worktrees,
    remove_worktree,
    save_patch,
    slug,
    valid_branch,
    worktree_path,
)


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(root: Path, *args: str) -> str:
    done = proc.run(["git", "-C", str(root), *args], cwd=root, timeout_s=60)
    assert done.exit_code == 0, done.output
    return done.output


def commit(root: Path, message: str = "c") -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Alice")
    git(root, "config", "user.email", "alice@example.com")
    (root / "app.py").write_text("print('hi')\n")
    commit(root, "initial")
    return root


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def branches(root: Path) -> set[str]:
    return set(git(root, "branch", "--format=%(refname:short)").split())


@contextlib.contextmanager
def running_git(cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A live git process working in ``cwd``: it waits on its stdin."""
    with subprocess.Popen(
        ["git", "hash-object", "--stdin"], cwd=cwd, stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    ) as git_proc:  # fmt: skip
        try:
            yield git_proc
        finally:
            if git_proc.poll() is None:
                git_proc.kill()


@pytest.fixture
def live_git(repo: Path) -> Iterator[subprocess.Popen[bytes]]:
    with running_git(repo) as git_proc:
        yield git_proc


def finish(git_proc: subprocess.Popen[bytes]) -> None:
    assert git_proc.stdin is not None
    git_proc.stdin.close()
    assert git_proc.wait(timeout=30) == 0


# ---- names ---------------------------------------------------------------------


def test_branch_names_are_short_ascii_and_never_empty() -> None:
    assert branch_name(7, "Log in with GitHub!") == "nightcrew/7-log-in-with-github"
    assert branch_name(3, "Café crème — déjà vu") == "nightcrew/3-cafe-creme-deja-vu"
    assert branch_name(12, "日本語") == "nightcrew/12-feature"
    assert branch_name(1, "...") == "nightcrew/1-feature"
    long = slug("a very long title " * 10)
    assert len(long) <= 40 and not long.endswith("-")
    assert feature_of("nightcrew/12-feature") == 12
    assert feature_of("main") is None and feature_of(None) is None
    with pytest.raises(ValueError, match="positive"):
        branch_name(0, "x")


NAMES = [
    "nightcrew/1-x", "main", "a/b/c", "-x", "x-", "a..b", "a.lock", "a/b.lock/c", ".a",
    "a/.b", "a/", "/a", "a//b", "a.", "@", "a@{b", "a@b", "a b", "a~1", "a^", "a:b", "a?",
    "a*", "a[b", "a\\b", "HEAD", "x\x7f", "x\tb", "é", "a/b.c", "",
]  # fmt: skip


def test_valid_branch_agrees_with_git(repo: Path) -> None:
    for name in NAMES:
        done = proc.run(["git", "check-ref-format", "--branch", name], cwd=repo, timeout_s=30)
        assert valid_branch(name) == (done.exit_code == 0), name


# ---- adding from several lanes at once -------------------------------------------------


# `git worktree add`s started together from a shell fail ("failed to read
# .git/worktrees/…/commondir"): 11 of 90 did in 15 rounds of 6 here. From
# threads the race is rarer (their other git calls spread them out), so the
# turn-taking is also tested on its own below.
LANES = 6


def test_lanes_add_their_worktrees_at_once(repo: Path) -> None:
    base = head(repo)
    barrier = threading.Barrier(LANES)
    errors: list[BaseException] = []

    def lane(n: int) -> None:
        branch = branch_name(n, f"feature {n}")
        barrier.wait()
        try:
            add_worktree(repo, worktree_path(repo, branch), branch, base)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=lane, args=(n,)) for n in range(1, LANES + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    listed = list_worktrees(repo)
    assert sorted(w.feature_id or 0 for w in listed) == list(range(1, LANES + 1))
    assert all(w.exists and w.head == base and w.dirty is False for w in listed)
    assert {f"nightcrew/{n}-feature-{n}" for n in range(1, LANES + 1)} <= branches(repo)
    assert git(repo, "status", "--porcelain") == ""  # .nightcrew/ stays out of the main tree


def test_shared_git_is_reentrant_in_a_thread(repo: Path) -> None:
    with gitlocks.shared_git(repo) as common, gitlocks.shared_git(repo) as again:
        assert common == again == (repo / ".git").resolve()
        branch = branch_name(1, "inside")
        add_worktree(repo, worktree_path(repo, branch), branch, head(repo))
    assert len(list_worktrees(repo)) == 1


def test_a_second_lane_waits_for_the_first_and_gives_up_at_its_time_limit(repo: Path) -> None:
    entered, leave = threading.Event(), threading.Event()

    def first_lane() -> None:
        with gitlocks.shared_git(repo):
            entered.set()
            leave.wait(timeout=60)

    thread = threading.Thread(target=first_lane)
    thread.start()
    try:
        assert entered.wait(timeout=60)
        with (
            pytest.raises(GitError, match="another lane of this nightcrew"),
            gitlocks.shared_git(repo, timeout_s=0.1),
        ):
            pass
    finally:
        leave.set()
        thread.join()
    with gitlocks.shared_git(repo, timeout_s=0.1):  # its turn is over
        pass


HOLDER = """
import sys
from pathlib import Path
from nightcrew.gitlocks import shared_git
with shared_git(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_another_process_holding_shared_git_is_waited_for_then_named(repo: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(repo)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with (
            pytest.raises(GitError, match=rf"another nightcrew process \(pid {holder.pid}\)"),
            gitlocks.shared_git(repo, timeout_s=0.2),
        ):
            pass
    finally:
        holder.communicate(timeout=30)
    with gitlocks.shared_git(repo, timeout_s=0.2):  # released with its holder
        pass


# ---- git's lock files -------------------------------------------------------------


def test_a_stale_index_lock_is_cleared_and_creation_succeeds(repo: Path) -> None:
    stale = [repo / ".git" / "index.lock", repo / ".git" / "refs" / "heads" / "nightcrew"]
    stale[0].write_text("")
    stale[1].mkdir()
    ref_lock = stale[1] / "1-login.lock"  # would make the branch's update-ref fail
    ref_lock.write_text("")
    lane = add_worktree(
        repo, worktree_path(repo, "nightcrew/1-login"), "nightcrew/1-login", head(repo)
    )
    assert set(lane.cleared) == {repo / ".git" / "index.lock", ref_lock}
    assert not stale[0].exists() and not ref_lock.exists()
    assert lane.path.is_dir() and not lane.reused


def test_a_lock_held_by_a_live_git_is_left_and_its_pid_named(
    repo: Path, live_git: subprocess.Popen[bytes]
) -> None:
    lock = repo / ".git" / "config.lock"
    lock.write_text("")  # written after that git started: it may be its maker
    assert gitlocks.clear_stale_locks(repo) == []
    assert lock.exists()
    assert [(found.path, found.holders) for found in gitlocks.find_locks(repo)] == [
        (lock, (live_git.pid,))
    ]
    with pytest.raises(
        GitError, match=rf"config.lock is held by a running git \(pid {live_git.pid}\)"
    ):
        gitlocks.wait_for_locks(repo, timeout_s=0.1)
    finish(live_git)
    assert gitlocks.clear_stale_locks(repo) == [lock]
    assert not lock.exists()


def test_a_git_started_after_the_lock_was_written_did_not_make_it(
    repo: Path, live_git: subprocess.Popen[bytes]
) -> None:
    lock = repo / ".git" / "HEAD.lock"
    lock.write_text("")
    os.utime(lock, (1_000_000_000, 1_000_000_000))  # written in 2001
    assert gitlocks.clear_stale_locks(repo) == [lock]


def test_a_git_working_elsewhere_did_not_make_it(tmp_path: Path, repo: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with running_git(elsewhere) as other:
        lock = repo / ".git" / "packed-refs.lock"
        lock.write_text("")
        assert gitlocks.clear_stale_locks(repo) == [lock]
        finish(other)


def test_a_lock_in_a_lane_worktree_is_found_with_its_holder(repo: Path) -> None:
    lane = add_worktree(repo, worktree_path(repo, "nightcrew/2-x"), "nightcrew/2-x", head(repo))
    index_lock = Path(
        git(lane.path, "rev-parse", "--path-format=absolute", "--git-path", "index.lock").strip()
    )
    with running_git(lane.path) as worker:
        index_lock.write_text("")
        assert [lock.holders for lock in gitlocks.find_locks(repo)] == [(worker.pid,)]
        finish(worker)
    assert gitlocks.clear_stale_locks(repo) == [index_lock]


# ---- reuse, repair, removal ----------------------------------------------------


def test_an_existing_branch_is_reused_with_its_commits(repo: Path) -> None:
    base = head(repo)
    branch = branch_name(4, "resumed")
    path = worktree_path(repo, branch)
    first = add_worktree(repo, path, branch, base)
    (path / "done.txt").write_text("from the first night\n")
    lane_commit = commit(path, "lane work")
    (path / "draft.txt").write_text("not committed yet\n")

    again = add_worktree(repo, path, branch, base)  # the worktree is still there
    assert (first.reused, again.reused, again.head) == (False, True, lane_commit)
    assert (path / "draft.txt").read_text() == "not committed yet\n"

    remove_worktree(repo, path, delete_branch=False)
    (repo / "more.py").write_text("x = 1\n")
    newer = commit(repo, "integration moved on")
    resumed = add_worktree(repo, path, branch, newer)  # branch only: checked out again
    assert (resumed.reused, resumed.head) == (True, lane_commit)
    assert (path / "done.txt").exists() and not (path / "more.py").exists()


def test_half_made_worktrees_are_repaired_before_adding(repo: Path) -> None:
    base = head(repo)
    unregistered = worktree_path(repo, "nightcrew/5-a")
    unregistered.mkdir(parents=True)
    (unregistered / "junk").write_text("left by a killed add")
    lane = add_worktree(repo, unregistered, "nightcrew/5-a", base)
    assert (lane.path / "app.py").exists() and not (lane.path / "junk").exists()

    missing = worktree_path(repo, "nightcrew/6-b")
    add_worktree(repo, missing, "nightcrew/6-b", base)
    git(repo, "worktree", "lock", "--reason", "initializing", str(missing))  # a killed add
    again = add_worktree(repo, missing, "nightcrew/6-b", base)
    assert again.path.is_dir() and (again.path / "app.py").exists()
    assert "locked" not in git(repo, "worktree", "list", "--porcelain")

    gone = worktree_path(repo, "nightcrew/7-c")
    add_worktree(repo, gone, "nightcrew/7-c", base)
    proc.run(["rm", "-rf", str(gone)], cwd=repo, timeout_s=30)  # registered, dir missing
    assert add_worktree(repo, gone, "nightcrew/7-c", base).path.is_dir()
    assert len(list_worktrees(repo)) == 3


def test_a_directory_of_the_users_is_never_deleted(repo: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(GitError, match="exists and is not a git worktree"):
        add_worktree(repo, mine, "nightcrew/8-d", head(repo))
    assert (mine / "notes.txt").read_text() == "keep"


def test_a_bad_base_is_one_clear_error(repo: Path) -> None:
    with pytest.raises(GitError, match="not a commit"):
        add_worktree(repo, worktree_path(repo, "nightcrew/1-x"), "nightcrew/1-x", "f" * 40)


def test_remove_deletes_the_dir_and_the_branch(repo: Path) -> None:
    base = head(repo)
    lane = add_worktree(repo, worktree_path(repo, "nightcrew/9-e"), "nightcrew/9-e", base)
    (lane.path / "scratch.txt").write_text("uncommitted")
    remove_worktree(repo, lane.path, delete_branch=True)
    assert not lane.path.exists()
    assert "nightcrew/9-e" not in branches(repo)
    assert list_worktrees(repo) == []
    remove_worktree(repo, lane.path, delete_branch=True)  # already gone: fine

    kept = add_worktree(repo, worktree_path(repo, "nightcrew/10-f"), "nightcrew/10-f", base)
    proc.run(["rm", "-rf", str(kept.path)], cwd=repo, timeout_s=30)
    remove_worktree(repo, kept.path, delete_branch=False)
    assert "nightcrew/10-f" in branches(repo) and list_worktrees(repo) == []
    remove_worktree(repo, kept.path, delete_branch=True, branch="nightcrew/10-f")
    assert "nightcrew/10-f" not in branches(repo)


def test_list_shows_size_and_dirty_state_of_nightcrews_worktrees_only(
    repo: Path, tmp_path: Path
) -> None:
    base = head(repo)
    clean = add_worktree(repo, worktree_path(repo, "nightcrew/1-clean"), "nightcrew/1-clean", base)
    dirty = add_worktree(repo, worktree_path(repo, "nightcrew/2-dirty"), "nightcrew/2-dirty", base)
    (dirty.path / "big.bin").write_bytes(b"x" * 10_000)
    (dirty.path / "link").symlink_to(repo)  # not followed
    git(repo, "worktree", "add", "-q", str(tmp_path / "users-own"), "-b", "mine")

    listed = {w.feature_id: w for w in list_worktrees(repo)}
    assert sorted(listed) == [1, 2]
    assert (listed[1].dirty, listed[2].dirty) == (False, True)
    assert listed[1].size_bytes == len("print('hi')\n")  # app.py; the .git file is left out
    assert 10_000 < listed[2].size_bytes < 11_000
    assert listed[2].path == dirty.path and listed[2].branch == "nightcrew/2-dirty"

    proc.run(["rm", "-rf", str(clean.path)], cwd=repo, timeout_s=30)
    gone = next(w for w in list_worktrees(repo) if w.feature_id == 1)
    assert (gone.exists, gone.size_bytes, gone.dirty) == (False, 0, None)


# ---- never losing a lane's work ---------------------------------------------------


def test_save_patch_keeps_an_untracked_files_contents(repo: Path, tmp_path: Path) -> None:
    base = head(repo)
    lane = add_worktree(repo, worktree_path(repo, "nightcrew/3-g"), "nightcrew/3-g", base)
    assert save_patch(lane.path, base, tmp_path / "none.patch") is None
    (lane.path / "new.py").write_text("def f():\n    return 42\n")
    (lane.path / "app.py").write_text("print('changed')\n")
    patch = save_patch(lane.path, base, tmp_path / "saved" / "lane.patch")
    assert patch == tmp_path / "saved" / "lane.patch"

    fresh = tmp_path / "fresh"
    git(repo, "worktree", "add", "-q", "--detach", str(fresh), base)
    git(fresh, "apply", str(patch))
    assert (fresh / "new.py").read_text() == "def f():\n    return 42\n"
    assert (fresh / "app.py").read_text() == "print('changed')\n"


def test_a_lane_commits_on_its_own_branch(repo: Path, tmp_path: Path) -> None:
    base = head(repo)
    lane = add_worktree(repo, worktree_path(repo, "nightcrew/4-h"), "nightcrew/4-h", base)
    (lane.path / "feature.py").write_text("x = 1\n")
    sha = commit_safely(lane.path, "feat: h", base_sha=base, patch_dest=tmp_path / "h.patch")
    assert sha == git(repo, "rev-parse", "nightcrew/4-h").strip()
    assert head(repo) == base  # the integration branch did not move
    assert not (tmp_path / "h.patch").exists()


def test_a_failed_commit_keeps_the_work_as_a_patch(repo: Path, tmp_path: Path) -> None:
    base = head(repo)
    lane = add_worktree(repo, worktree_path(repo, "nightcrew/5-i"), "nightcrew/5-i", base)
    (lane.path / "only-copy.py").write_text("precious = True\n")
    index_lock = Path(
        git(lane.path, "rev-parse", "--path-format=absolute", "--git-path", "index.lock").strip()
    )
    with running_git(lane.path) as holder:
        index_lock.write_text("")
        dest = tmp_path / "i.patch"
        with pytest.raises(GitError, match=rf"pid {holder.pid}.*the work is saved in {dest}"):
            commit_safely(lane.path, "feat: i", base_sha=base, patch_dest=dest, timeout_s=0.1)
        finish(holder)
    assert "+precious = True" in dest.read_text()
    assert git(repo, "rev-parse", "nightcrew/5-i").strip() == base  # nothing committed
