"""``nightcrew worktrees`` as a person uses it after a parallel build: every lane's
worktree with its feature's state and size; ``prune`` gives back the disk of
finished and forgotten features and keeps what is in use, waiting for a person,
or holding uncommitted work; ``--all`` waits for no build but refuses to run
beside one."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from nightcrew import proc
from nightcrew.cli import cli
from nightcrew.core.errors import ExitCode, GitError, LockHeld
from nightcrew.core.states import ItemState
from nightcrew.engine.lock import ProjectLock
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.views.worktrees import prune_reason, recheck, worktree_rows
from nightcrew.work.backlog import FeatureSpec
from nightcrew.worktrees import add_worktree, branch_name, remove_worktree, worktree_path

NAMES = ["Login", "Signup", "Feed", "Avatars", "Search", "Themes", "Export"]


def git(root: Path, *args: str) -> str:
    done = proc.run(["git", "-C", str(root), *args], cwd=root, timeout_s=60)
    assert done.exit_code == 0, done.output
    return done.output


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = tmp_path / "app"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Alice")
    git(root, "config", "user.email", "alice@example.com")
    (root / "app.py").write_text("print('hi')\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    cwd = Path.cwd()
    os.chdir(root)
    yield root
    os.chdir(cwd)


def lanes(root: Path) -> dict[int, Path]:
    """A worktree for each of the seven features, as a parallel build leaves them."""
    base = git(root, "rev-parse", "HEAD").strip()
    paths = {}
    for n, name in enumerate(NAMES, 1):
        branch = branch_name(n, name)
        paths[n] = add_worktree(root, worktree_path(root, branch), branch, base).path
    return paths


def make_backlog(root: Path) -> None:
    """#1 passed, #2 skipped, #3 in progress, #4 waiting for an answer, #5 and #6
    pending, #7 removed from the backlog."""
    store = Project(root).open_store()
    try:
        backlog = Backlog(store)
        specs = [FeatureSpec(name=name, acceptance=("true",)) for name in NAMES]
        ids = backlog.create(specs, source="test").created
        assert ids == [1, 2, 3, 4, 5, 6, 7]
        for n in (1, 3, 4):
            assert backlog.claim(n, by="build-1") is not None
        backlog.release(1, ItemState.PASSED, by="build-1", reason="gates passed")
        backlog.skip([2], reason="too hard")
        backlog.request_input(4, "Which OAuth provider?")
        backlog.remove([7])
    finally:
        store.close()


def nightcrew(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), terminal_width=200)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def listed() -> dict[int, dict[str, object]]:
    return {row["feature_id"]: row for row in json.loads(nightcrew("worktrees", "--json"))}


def test_list_shows_each_lanes_feature_state_changes_and_size(project: Path) -> None:
    paths = lanes(project)
    make_backlog(project)
    (paths[5] / "draft.py").write_text("x" * 2_000)
    rows = listed()
    assert {n: row["state"] for n, row in rows.items()} == {
        1: "passed", 2: "skipped", 3: "in_progress", 4: "needs_input",
        5: "pending", 6: "pending", 7: "gone",
    }  # fmt: skip
    assert rows[5]["dirty"] is True and rows[6]["dirty"] is False
    assert rows[5]["size_bytes"] == 2_000 + len("print('hi')\n")
    assert rows[3]["branch"] == "nightcrew/3-feed" and rows[3]["path"] == str(paths[3])

    table = nightcrew("worktrees").splitlines()
    assert table[0].split() == ["feature", "branch", "state", "changes", "size", "path"]
    assert table[5].split() == [
        "#5", "nightcrew/5-search", "pending", "uncommitted", "2.0", "KB",
        ".nightcrew/worktrees/5-search",
    ]  # fmt: skip
    assert table[-1] == "7 worktree(s), 2.1 KB"


def test_prune_removes_finished_and_forgotten_and_keeps_work_in_use(project: Path) -> None:
    paths = lanes(project)
    make_backlog(project)
    (paths[1] / "leftover.py").write_text("still = 'here'\n")  # passed, yet uncommitted
    (paths[5] / "draft.py").write_text("wip = True\n")

    out = nightcrew("worktrees", "prune").splitlines()
    removed = [line.split()[1] for line in out if line.startswith("removed ")]
    assert removed == [
        f".nightcrew/worktrees/{p.name}" for n, p in paths.items() if n in (1, 2, 6, 7)
    ]
    assert "(nightcrew/1-login, feature passed)" in out[0]
    assert "feature no longer in the backlog" in out[3]
    assert out[4].startswith("freed ") and "from 4 worktree(s); their branches are kept" in out[4]
    assert out[5] == (
        "kept 3: #3 in_progress, #4 needs_input, #5 pending"
        " (in use, waiting, or with uncommitted changes)"
    )
    assert sorted(listed()) == [3, 4, 5]
    assert not paths[1].exists() and paths[5].exists()
    [patch] = (project / ".nightcrew" / "pruned").iterdir()
    assert patch.name.startswith("1-login-") and "+still = 'here'" in patch.read_text()
    assert "saved in .nightcrew/pruned/1-login-" in out[0]
    branches = git(project, "branch", "--format=%(refname:short)").split()
    assert {f"nightcrew/{n}-{NAMES[n - 1].lower()}" for n in range(1, 8)} <= set(branches)

    assert nightcrew("worktrees", "prune").splitlines()[0] == "nothing to prune"


def test_without_a_backlog_states_are_unknown_and_nothing_is_pruned(project: Path) -> None:
    lanes(project)
    assert {row["state"] for row in listed().values()} == {"unknown"}
    assert nightcrew("worktrees", "prune").splitlines()[0] == "nothing to prune"
    assert len(listed()) == 7


def test_prune_all_refuses_beside_a_build_then_removes_everything(project: Path) -> None:
    paths = lanes(project)
    make_backlog(project)
    (paths[3] / "agent-work.py").write_text("half = 'done'\n")
    with ProjectLock(Project(project).lock_path):  # a build is running
        result = CliRunner().invoke(cli, ["worktrees", "prune", "--all"])
        assert isinstance(result.exception, LockHeld)
        assert result.exception.exit_code == ExitCode.LOCKED
        assert result.exception.message.startswith("worktrees prune --all refused: another")
        assert f"pid {os.getpid()}" in result.exception.message
    assert len(listed()) == 7

    out = nightcrew("worktrees", "prune", "--all").splitlines()
    assert sum(line.startswith("removed ") for line in out) == 7
    assert "(nightcrew/3-feed, feature in_progress)" in out[2]
    assert "uncommitted changes saved in .nightcrew/pruned/3-feed-" in out[2]
    assert listed() == {}
    assert nightcrew("worktrees") == "no nightcrew worktrees\n"


def test_no_worktrees(project: Path) -> None:
    assert nightcrew("worktrees") == "no nightcrew worktrees\n"
    assert nightcrew("worktrees", "--json") == "[]\n"
    assert nightcrew("worktrees", "prune", "--all") == "no nightcrew worktrees\n"
    assert not (project / ".nightcrew").exists()  # looking made nothing


def test_prune_judges_each_worktree_again_just_before_removing_it(project: Path) -> None:
    paths = lanes(project)
    make_backlog(project)
    store_path = Project(project).store_path
    rows = {row.feature_id: row for row in worktree_rows(project, store_path)}
    assert prune_reason(rows[6]) == "feature pending, nothing uncommitted"
    assert prune_reason(rows[2]) == "feature skipped"

    store = Store.open(store_path)
    try:
        assert Backlog(store).claim(6, by="build-2") is not None  # a build took it since
    finally:
        store.close()
    (paths[2] / "note.txt").write_text("written since")  # a skipped feature's file
    assert prune_reason(recheck(rows[6], store_path)) is None
    again = recheck(rows[2], store_path)
    assert again.worktree.dirty is True and prune_reason(again) == "feature skipped"


def test_only_nightcrews_own_worktrees_are_removed(project: Path, tmp_path: Path) -> None:
    git(project, "worktree", "add", "-q", str(tmp_path / "users"), "-b", "users-branch")
    with pytest.raises(GitError, match="not a nightcrew worktree"):
        remove_worktree(project, tmp_path / "users", delete_branch=True)
    assert (tmp_path / "users" / "app.py").exists()
