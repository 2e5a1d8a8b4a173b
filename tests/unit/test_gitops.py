"""gitops against real git repositories in temporary directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nightcrew import gitops, proc
from nightcrew.core.errors import GitError

IDENTITY_VARS = (
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "EMAIL",
)


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No global or system git config, no identity from the environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in IDENTITY_VARS:
        monkeypatch.delenv(name, raising=False)


def git(root: Path, *args: str) -> str:
    done = proc.run(["git", "-C", str(root), *args], cwd=root, timeout_s=60)
    assert done.exit_code == 0, done.output
    return done.output


def make_repo(path: Path, *, identity: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    if identity:
        git(path, "config", "user.name", "Alice")
        git(path, "config", "user.email", "alice@example.com")
    return path


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def commit(root: Path, message: str = "c") -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


# ---- queries ----------------------------------------------------------------


def test_is_repo_and_repo_root(repo: Path, tmp_path: Path) -> None:
    sub = repo / "a" / "b"
    sub.mkdir(parents=True)
    assert gitops.is_repo(repo)
    assert gitops.is_repo(sub)
    assert gitops.repo_root(sub) == repo.resolve()
    plain = tmp_path / "plain"
    plain.mkdir()
    assert not gitops.is_repo(plain)
    assert not gitops.is_repo(tmp_path / "missing")
    with pytest.raises(GitError, match="rev-parse"):
        gitops.repo_root(plain)


def test_unborn_branch(repo: Path) -> None:
    assert gitops.head_sha(repo) is None
    assert gitops.current_branch(repo) == "main"
    assert gitops.recent_commits(repo) == []
    assert gitops.operation_in_progress(repo) is None


def test_head_branch_and_recent_commits(repo: Path) -> None:
    write(repo, "a.txt", "1\n")
    first = commit(repo, "first commit")
    write(repo, "a.txt", "2\n")
    second = commit(repo, "second commit")
    assert gitops.head_sha(repo) == second
    assert len(second) == 40
    log = gitops.recent_commits(repo, n=5)
    assert len(log) == 2
    assert log[0].endswith("second commit")
    assert log[1].endswith("first commit")
    assert gitops.recent_commits(repo, n=1) == log[:1]
    git(repo, "checkout", "-q", "--detach", first)
    assert gitops.current_branch(repo) is None
    assert gitops.head_sha(repo) == first


def test_is_ancestor(repo: Path) -> None:
    write(repo, "a.txt", "1\n")
    first = commit(repo)
    write(repo, "a.txt", "2\n")
    second = commit(repo)
    assert gitops.is_ancestor(repo, first, second)
    assert gitops.is_ancestor(repo, second, second)
    assert not gitops.is_ancestor(repo, second, first)


def test_git_error_names_the_command_and_message(repo: Path) -> None:
    with pytest.raises(GitError) as info:
        gitops.is_ancestor(repo, "no-such-ref", "HEAD")
    assert "git merge-base --is-ancestor no-such-ref HEAD" in info.value.message
    assert "no-such-ref" in info.value.message.split("failed", 1)[1]


def test_inherited_git_dir_is_ignored(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_repo(tmp_path / "other")
    write(other, "x.txt", "x\n")
    commit(other)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert gitops.head_sha(repo) is None


# ---- exclude and status -----------------------------------------------------


def test_ensure_excluded_is_idempotent_and_hides_state(repo: Path) -> None:
    write(repo, ".nightcrew/run/state.json", "{}")
    assert any(e.path.startswith(".nightcrew/") for e in gitops.status_entries(repo))
    gitops.ensure_excluded(repo)
    gitops.ensure_excluded(repo)
    exclude = (repo / ".git" / "info" / "exclude").read_text(encoding="utf-8")
    assert exclude.splitlines().count(".nightcrew/") == 1
    assert gitops.status_entries(repo) == []


def test_ensure_excluded_adds_missing_newline(repo: Path) -> None:
    exclude = repo / ".git" / "info" / "exclude"
    exclude.write_text("*.tmp", encoding="utf-8")
    gitops.ensure_excluded(repo)
    assert exclude.read_text(encoding="utf-8") == "*.tmp\n.nightcrew/\n"


def test_ensure_excluded_in_a_worktree(repo: Path, tmp_path: Path) -> None:
    write(repo, "a.txt", "1\n")
    commit(repo)
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "side", str(worktree))
    write(worktree, ".nightcrew/x.log", "log")
    gitops.ensure_excluded(worktree)
    assert gitops.status_entries(worktree) == []
    assert ".nightcrew/" in (repo / ".git" / "info" / "exclude").read_text(encoding="utf-8")


def test_status_entries(repo: Path) -> None:
    write(repo, "keep.txt", "keep\n")
    write(repo, "old name.txt", "rename me\n" * 5)
    write(repo, "gone.txt", "bye\n")
    commit(repo)
    write(repo, "keep.txt", "changed\n")
    git(repo, "mv", "old name.txt", "new name.txt")
    (repo / "gone.txt").unlink()
    write(repo, "new/dir/deep.txt", "untracked\n")
    write(repo, "new/other.txt", "untracked\n")
    entries = {e.path: e for e in gitops.status_entries(repo)}
    assert set(entries) == {
        "keep.txt",
        "new name.txt",
        "gone.txt",
        "new/dir/deep.txt",
        "new/other.txt",
    }
    assert entries["keep.txt"].code == " M"
    assert entries["new name.txt"].index == "R"
    assert entries["new name.txt"].orig_path == "old name.txt"
    assert entries["gone.txt"].deleted
    assert entries["new/dir/deep.txt"].untracked
    assert not any(e.unmerged for e in entries.values())


def test_parse_status_z_handles_renames_and_odd_names() -> None:
    out = "R  to.txt\0from.txt\0 M a b.txt\0?? line\nbreak.txt\0UU both.txt\0"
    entries = gitops.parse_status_z(out)
    assert [(e.code, e.path, e.orig_path) for e in entries] == [
        ("R ", "to.txt", "from.txt"),
        (" M", "a b.txt", None),
        ("??", "line\nbreak.txt", None),
        ("UU", "both.txt", None),
    ]
    assert entries[3].unmerged


def _conflict(repo: Path) -> None:
    write(repo, "f.txt", "base\n")
    commit(repo)
    git(repo, "checkout", "-q", "-b", "other")
    write(repo, "f.txt", "other\n")
    commit(repo)
    git(repo, "checkout", "-q", "main")
    write(repo, "f.txt", "main\n")
    commit(repo)
    done = proc.run(["git", "merge", "-q", "other"], cwd=repo, timeout_s=60)
    assert done.exit_code != 0


def test_operation_in_progress_and_unmerged(repo: Path) -> None:
    _conflict(repo)
    assert gitops.operation_in_progress(repo) == "merge"
    entries = gitops.status_entries(repo)
    assert [(e.path, e.unmerged) for e in entries] == [("f.txt", True)]
    git(repo, "merge", "--abort")
    assert gitops.operation_in_progress(repo) is None


def test_operation_in_progress_bisect(repo: Path) -> None:
    write(repo, "a.txt", "1\n")
    commit(repo)
    git(repo, "bisect", "start")
    assert gitops.operation_in_progress(repo) == "bisect"


# ---- commits ----------------------------------------------------------------


def test_commit_all_when_nightcrew_dir_is_already_excluded(repo: Path) -> None:
    # The state a real run is in: .nightcrew/ exists and info/exclude lists it.
    gitops.ensure_excluded(repo)
    write(repo, ".nightcrew/nightcrew.db", "x")
    write(repo, "feature.py", "x = 1\n")
    assert gitops.commit_all(repo, "batch 1", {}) is not None
    assert git(repo, "ls-files").split() == ["feature.py"]
    assert ".nightcrew" not in gitops.diff_patch(repo, gitops.head_sha(repo))


def test_commit_all_with_identity_and_trailers(repo: Path) -> None:
    write(repo, "a.txt", "1\n")
    write(repo, "dir/b.txt", "2\n")
    write(repo, ".nightcrew/state.json", "{}")  # not excluded, still never committed
    sha = gitops.commit_all(repo, "batch 1: add files", {"Nightcrew-Run": "r1", "Batch": "1"})
    assert sha is not None
    assert sha == gitops.head_sha(repo)
    assert git(repo, "log", "-1", "--format=%an <%ae>").strip() == "Alice <alice@example.com>"
    body = git(repo, "log", "-1", "--format=%B")
    assert body.startswith("batch 1: add files\n\n")
    assert "Nightcrew-Run: r1\nBatch: 1" in body
    files = git(repo, "ls-files").split()
    assert files == ["a.txt", "dir/b.txt"]
    assert gitops.commit_all(repo, "nothing", {}) is None
    assert gitops.head_sha(repo) == sha


def test_commit_all_without_identity(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "fresh", identity=False)
    write(repo, "a.txt", "1\n")
    sha = gitops.commit_all(repo, "first")
    assert sha is not None
    assert git(repo, "log", "-1", "--format=%an <%ae>").strip() == "nightcrew <nightcrew@localhost>"
    assert git(repo, "log", "-1", "--format=%cn").strip() == "nightcrew"
    # The repository's config was not changed.
    done = proc.run(["git", "config", "user.name"], cwd=repo, timeout_s=60)
    assert done.exit_code == 1


def test_commit_all_stages_deletions(repo: Path) -> None:
    write(repo, "a.txt", "1\n")
    commit(repo)
    (repo / "a.txt").unlink()
    assert gitops.commit_all(repo, "remove") is not None
    assert git(repo, "ls-files").strip() == ""


# ---- diffs, changes, reset --------------------------------------------------


def test_diff_patch_includes_untracked_and_leaves_index_alone(repo: Path) -> None:
    write(repo, "a.txt", "one\n")
    base = commit(repo)
    write(repo, "a.txt", "two\n")
    write(repo, "src/new.py", "print('hi')\n")
    write(repo, ".gitignore", "*.log\n")
    write(repo, "debug.log", "ignored\n")
    write(repo, ".nightcrew/x.json", "{}")
    gitops.ensure_excluded(repo)  # as every run does first
    before = gitops.status_entries(repo)
    patch = gitops.diff_patch(repo, base)
    assert "+two" in patch
    assert "-one" in patch
    assert "diff --git a/src/new.py b/src/new.py" in patch
    assert "+print('hi')" in patch
    assert "debug.log" not in patch
    assert ".nightcrew" not in patch
    assert gitops.status_entries(repo) == before
    assert git(repo, "diff", "--cached", "--name-only").strip() == ""


def test_diff_patch_from_committed_base_and_unborn(repo: Path) -> None:
    write(repo, "a.txt", "one\n")
    assert "+one" in gitops.diff_patch(repo, None)
    base = commit(repo)
    write(repo, "b.txt", "committed since base\n")
    commit(repo)
    patch = gitops.diff_patch(repo, base)
    assert "+committed since base" in patch
    assert "a.txt" not in patch


def test_changed_files(repo: Path) -> None:
    write(repo, "a.txt", "1\n")
    write(repo, "b.txt", "1\n")
    write(repo, "c.txt", "1\n")
    base = commit(repo)
    write(repo, "committed.txt", "new\n")
    commit(repo)
    write(repo, "a.txt", "changed\n")
    write(repo, "staged.txt", "staged\n")
    git(repo, "add", "staged.txt")
    (repo / "b.txt").unlink()
    write(repo, "untracked/deep.txt", "u\n")
    write(repo, ".nightcrew/state.json", "{}")
    assert gitops.changed_files(repo, base) == [
        "a.txt",
        "b.txt",
        "committed.txt",
        "staged.txt",
        "untracked/deep.txt",
    ]
    assert gitops.changed_files(repo, gitops.head_sha(repo)) == [
        "a.txt",
        "b.txt",
        "staged.txt",
        "untracked/deep.txt",
    ]


def test_reset_hard_cleans_but_keeps_state_and_ignored(repo: Path) -> None:
    write(repo, ".gitignore", "*.log\n")
    write(repo, "a.txt", "one\n")
    base = commit(repo)
    write(repo, "a.txt", "agent edit\n")
    write(repo, "b.txt", "agent file\n")
    commit(repo)
    write(repo, "new/dir/file.txt", "untracked\n")
    write(repo, "keep.log", "ignored\n")
    write(repo, ".nightcrew/runs/1/state.json", "{}")  # not even excluded
    gitops.reset_hard(repo, base)
    assert gitops.head_sha(repo) == base
    assert (repo / "a.txt").read_text(encoding="utf-8") == "one\n"
    assert not (repo / "b.txt").exists()
    assert not (repo / "new").exists()
    assert (repo / "keep.log").exists()
    assert (repo / ".nightcrew/runs/1/state.json").exists()
    assert [e.path for e in gitops.status_entries(repo)] == [".nightcrew/runs/1/state.json"]


def test_time_limit_already_passed(repo: Path) -> None:
    with gitops.time_limit(0), pytest.raises(gitops.GitTimedOut):
        gitops.head_sha(repo)


# ---- the user's own changes and a killed agent's debris ----------------------


def test_commit_all_leaves_the_users_files_out_and_staged(repo: Path) -> None:
    write(repo, "wip.py", "v1\n")
    write(repo, "staged.py", "v1\n")
    commit(repo)
    write(repo, "wip.py", "v1\nuser's work in progress\n")
    write(repo, "staged.py", "v1\nuser staged this\n")
    git(repo, "add", "staged.py")
    write(repo, "notes.txt", "user's untracked notes\n")
    leave = {"wip.py", "staged.py", "notes.txt"}
    write(repo, "feature.py", "agent's work\n")
    write(repo, "feature.py.tmp.4242.1a2b3cff", "half-written\n")
    sha = gitops.commit_all(repo, "batch 1", {}, leave=leave)
    assert sha is not None
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["feature.py"]
    status = {e.path: e.code for e in gitops.status_entries(repo)}
    assert status == {
        "wip.py": " M",
        "staged.py": "M ",
        "notes.txt": "??",
        "feature.py.tmp.4242.1a2b3cff": "??",
    }
    # With nothing but the user's files changed there is nothing to commit.
    assert gitops.commit_all(repo, "batch 2", {}, leave=leave) is None


def test_reset_leaving_keeps_the_users_files(repo: Path) -> None:
    write(repo, "a.txt", "one\n")
    write(repo, "wip.txt", "base\n")
    base = commit(repo)
    write(repo, "wip.txt", "base\nuser edit\n")
    write(repo, "notes.txt", "user notes\n")
    write(repo, "a.txt", "agent edit\n")
    write(repo, "b.txt", "agent file\n")
    gitops.reset_leaving(repo, base, {"wip.txt", "notes.txt"})
    assert gitops.head_sha(repo) == base
    assert (repo / "a.txt").read_text(encoding="utf-8") == "one\n"
    assert not (repo / "b.txt").exists()
    assert (repo / "wip.txt").read_text(encoding="utf-8") == "base\nuser edit\n"
    assert (repo / "notes.txt").read_text(encoding="utf-8") == "user notes\n"


def test_diff_patch_leaves_out_the_users_files(repo: Path) -> None:
    write(repo, "a.txt", "one\n")
    write(repo, "b.txt", "bee\n")
    base = commit(repo)
    write(repo, "a.txt", "the user's edit\n")
    write(repo, "mine.txt", "the user's new file\n")
    write(repo, "b.txt", "the agent's edit\n")
    write(repo, "new.py", "print('agent')\n")
    patch = gitops.diff_patch(repo, base, leave={"a.txt", "mine.txt"})
    assert "+the agent's edit" in patch and "+print('agent')" in patch
    assert "a.txt" not in patch and "mine.txt" not in patch and "user's" not in patch


def test_changed_files_names_both_sides_of_a_rename_and_a_commit_undone_in_the_tree(
    repo: Path,
) -> None:
    write(repo, "old.txt", "kept text\n")
    write(repo, "undone.txt", "1\n")
    base = commit(repo)
    write(repo, "undone.txt", "2\n")
    commit(repo)
    write(repo, "undone.txt", "1\n")  # committed since the base, then changed back
    git(repo, "mv", "old.txt", "new.txt")  # a staged rename

    assert gitops.changed_files(repo, base) == ["new.txt", "old.txt", "undone.txt"]


def test_only_the_missing_half_of_an_identity_is_filled_in(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "half", identity=False)
    git(repo, "config", "user.name", "Ada")
    assert gitops._missing_identity(repo) == ["-c", "user.email=nightcrew@localhost"]
    git(repo, "config", "user.email", "ada@example.com")
    assert gitops._missing_identity(repo) == []
