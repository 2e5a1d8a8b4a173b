"""The merge queue against real git: a landing is checked on the merged result
before the branch moves; a result that fails or conflicts never reaches the
branch; the person's checkout is fast-forwarded only where git can do it
without touching their edits, and otherwise left alone while the build goes on
on a branch of its own; landings wait their turn."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from nightcrew import proc
from nightcrew.engine import gates as gates_mod
from nightcrew.engine.merge_queue import Landed, Landing, MergeQueue


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
    return done.output.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Alice")
    git(root, "config", "user.email", "alice@example.com")
    (root / ".gitignore").write_text(".nightcrew/\n")
    (root / "cart.py").write_text("def total(items):\n    return sum(items)\n")
    (root / "notes.txt").write_text("mine\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def feature_branch(root: Path, name: str, path: str, text: str) -> tuple[str, str]:
    """A feature's branch from main's head with one commit writing ``path``;
    (its tip, its base)."""
    base = git(root, "rev-parse", "main")
    work = root / ".nightcrew" / "worktrees" / name
    git(root, "worktree", "add", "-q", "-b", f"nightcrew/{name}", str(work), base)
    (work / path).write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"feat: {name}")
    return git(work, "rev-parse", "HEAD"), base


def check(expr: str) -> gates_mod.GateSpec:
    """A gate that passes when ``expr`` holds for the merged cart.py."""
    return gates_mod.command_gate(1, f"{sys.executable} -c 'import cart; assert {expr}'")


def queue(root: Path, batch: int = 1, taken: list[tuple[str, ...]] | None = None) -> MergeQueue:
    return MergeQueue(
        root,
        "main",
        method="rebase",
        scratch=root / ".nightcrew" / "worktrees",
        gate_timeout=60,
        run_id="r1",
        batch=batch,
        on_take=None if taken is None else taken.append,
    )


def landing(root: Path, name: str, tip: str, base: str, *gates: gates_mod.GateSpec) -> Landing:
    return Landing(
        feature=1,
        item=f"feature {name}",
        title=name,
        tip=tip,
        base=base,
        message=f"feat: {name}",
        gates=gates,
        evidence_dir=root / ".nightcrew" / "evidence" / name,
        baseline=None,
    )


def test_a_passing_landing_fast_forwards_the_checkout_and_keeps_the_persons_edit(
    repo: Path,
) -> None:
    tip, base = feature_branch(
        repo, "avg", "avg.py", "def avg(xs):\n    return sum(xs) / len(xs)\n"
    )
    (repo / "notes.txt").write_text("mine, not committed\n")  # the person's own edit

    landed = asyncio.run(queue(repo).land(landing(repo, "avg", tip, base, check("True"))))

    assert landed.outcome == "landed" and landed.branch == "main"
    assert git(repo, "rev-parse", "main") == landed.head
    assert git(repo, "log", "--format=%s", "-1") == "feat: avg"
    assert (repo / "avg.py").exists()  # the checkout was brought up to date
    assert (repo / "notes.txt").read_text() == "mine, not committed\n"
    assert git(repo, "status", "--porcelain") == "M notes.txt"
    assert "fast-forwarded" in landed.checkout
    assert "merge-1" not in git(repo, "worktree", "list")  # the scratch worktree is gone


def test_a_merged_result_that_fails_its_checks_never_reaches_the_branch(repo: Path) -> None:
    q = queue(repo)
    first, base1 = feature_branch(
        repo, "double", "cart.py", "def total(items):\n    return 2 * sum(items)\n"
    )
    second, base2 = feature_branch(repo, "count", "count.py", "N = 3\n")
    landed = asyncio.run(q.land(landing(repo, "double", first, base1, check("True"))))
    assert landed.outcome == "landed"
    head = git(repo, "rev-parse", "main")

    # "count" passed on its own base, where total([1]) == 1; on main it is 2.
    rejected = asyncio.run(
        q.land(landing(repo, "count", second, base2, check("cart.total([1]) == 1")))
    )

    assert rejected.outcome == "failed"
    assert git(repo, "rev-parse", "main") == head  # the branch did not move
    assert rejected.onto == head and rejected.head is not None
    assert git(repo, "merge-base", "--is-ancestor", head, rejected.head) == ""  # built on main
    assert rejected.merged_since == ("feat: double",)
    assert rejected.digest is not None
    assert "after it was put on top of main" in rejected.digest
    assert "feat: double" in rejected.digest and "gate 1" in rejected.digest


def test_a_conflict_is_named_and_nothing_moves(repo: Path) -> None:
    q = queue(repo)
    a, base_a = feature_branch(
        repo, "a", "cart.py", "def total(items):\n    return sum(items) + 1\n"
    )
    b, base_b = feature_branch(
        repo, "b", "cart.py", "def total(items):\n    return sum(items) - 1\n"
    )
    assert asyncio.run(q.land(landing(repo, "a", a, base_a, check("True")))).outcome == "landed"
    head = git(repo, "rev-parse", "main")

    conflict = asyncio.run(q.land(landing(repo, "b", b, base_b, check("True"))))

    assert conflict.outcome == "conflict"
    assert conflict.conflicts == ("cart.py",)
    assert conflict.merged_since == ("feat: a",)
    assert git(repo, "rev-parse", "main") == head
    assert git(repo, "status", "--porcelain") == ""


def test_edits_in_the_way_leave_the_checkout_alone_and_the_build_lands_on_its_own_branch(
    repo: Path,
) -> None:
    q = queue(repo)
    tip, base = feature_branch(repo, "cart", "cart.py", "def total(items):\n    return 0\n")
    (repo / "cart.py").write_text("# the person is editing this file\n")
    before = git(repo, "rev-parse", "main")

    landed = asyncio.run(q.land(landing(repo, "cart", tip, base, check("True"))))

    assert landed.outcome == "landed"
    assert git(repo, "rev-parse", "main") == before  # the checked-out branch did not move
    assert (repo / "cart.py").read_text() == "# the person is editing this file\n"
    assert landed.branch == q.branch == "nightcrew/build-r1"
    assert git(repo, "rev-parse", "nightcrew/build-r1") == landed.head
    assert "left as it is" in landed.checkout and "nightcrew/build-r1" in landed.checkout


def test_landings_wait_their_turn_and_each_is_checked_on_the_one_before(repo: Path) -> None:
    q = queue(repo)
    tips = [
        feature_branch(repo, name, f"{name}.py", f"NAME = {name!r}\n")
        for name in ("one", "two", "three")
    ]

    async def all_at_once() -> list[str]:
        results = await asyncio.gather(
            *(
                q.land(landing(repo, name, tip, base, check("True")))
                for name, (tip, base) in zip(("one", "two", "three"), tips, strict=True)
            )
        )
        return [r.outcome for r in results]

    assert asyncio.run(all_at_once()) == ["landed", "landed", "landed"]
    log = git(repo, "log", "--format=%s", "main").splitlines()
    assert log == ["feat: three", "feat: two", "feat: one", "initial"]  # linear: each on the last
    assert q.waiting == []


# ---- checks reused: the merged result is the tree the lane already checked ------------


def marking(marker: Path) -> gates_mod.GateSpec:
    """A gate that passes and leaves ``marker`` behind: it shows whether it ran."""
    return gates_mod.command_gate(1, f"touch {marker}")


def tree(root: Path, rev: str) -> str:
    return git(root, "rev-parse", f"{rev}^{{tree}}")


def checked(root: Path, name: str, tip: str, base: str, marker: Path, tree_sha: str) -> Landing:
    return replace(landing(root, name, tip, base, marking(marker)), checked_tree=tree_sha)


def test_nothing_landed_since_its_base_lands_the_checked_tip_without_checking_again(
    repo: Path, tmp_path: Path
) -> None:
    tip, base = feature_branch(repo, "avg", "avg.py", "AVG = 1\n")
    marker = tmp_path / "ran"

    landed = asyncio.run(queue(repo).land(checked(repo, "avg", tip, base, marker, tree(repo, tip))))

    assert landed.outcome == "landed" and landed.checks_reused
    assert landed.head == tip == git(repo, "rev-parse", "main")  # fast-forwarded to the tip
    assert not marker.exists()  # the checks did not run again
    assert landed.results == () and landed.gate_seconds == 0.0
    note = (repo / ".nightcrew" / "evidence" / "avg" / "checks-reused.txt").read_text()
    assert tree(repo, tip) in note and tip in note
    assert "merge-1" not in git(repo, "worktree", "list")


def test_the_merged_result_is_checked_when_the_branch_moved_since_the_base(
    repo: Path, tmp_path: Path
) -> None:
    q = queue(repo)
    one, base1 = feature_branch(repo, "one", "one.py", "ONE = 1\n")
    two, base2 = feature_branch(repo, "two", "two.py", "TWO = 2\n")
    first = tmp_path / "first"
    landed_one = asyncio.run(q.land(checked(repo, "one", one, base1, first, tree(repo, one))))
    assert landed_one.checks_reused
    marker = tmp_path / "ran"

    landed = asyncio.run(q.land(checked(repo, "two", two, base2, marker, tree(repo, two))))

    assert landed.outcome == "landed" and not landed.checks_reused
    assert marker.exists()  # a new tree (one.py and two.py): checked
    assert len(landed.results) == 1 and landed.results[0].passed
    assert not first.exists()


def test_a_tip_whose_tree_is_not_the_checked_one_is_checked(repo: Path, tmp_path: Path) -> None:
    tip, base = feature_branch(repo, "avg", "avg.py", "AVG = 1\n")
    marker = tmp_path / "ran"
    # The lane checked another tree (say a gate rewrote a file before the commit).
    other = tree(repo, base)

    landed = asyncio.run(queue(repo).land(checked(repo, "avg", tip, base, marker, other)))

    assert landed.outcome == "landed" and not landed.checks_reused
    assert marker.exists()


def test_a_merge_commit_of_the_checked_tree_is_not_checked_again(
    repo: Path, tmp_path: Path
) -> None:
    tip, base = feature_branch(repo, "avg", "avg.py", "AVG = 1\n")
    q = MergeQueue(
        repo,
        "main",
        method="merge",
        scratch=repo / ".nightcrew" / "worktrees",
        gate_timeout=60,
        run_id="r1",
    )
    marker = tmp_path / "ran"

    landed = asyncio.run(q.land(checked(repo, "avg", tip, base, marker, tree(repo, tip))))

    assert landed.outcome == "landed" and landed.checks_reused and not marker.exists()
    assert landed.head != tip and tree(repo, "main") == tree(repo, tip)
    assert git(repo, "rev-parse", "main^2") == tip  # a merge commit, as merge = "merge" makes


# ---- landings waiting together are checked together -----------------------------------


def counting(counter: Path) -> gates_mod.GateSpec:
    """The project's gate: passes, and adds a line to ``counter`` each time it runs."""
    return gates_mod.command_gate(1, f"echo ran >> {counter}")


def own(root: Path, name: str, expr: str, counter: Path, tip: str, base: str) -> Landing:
    """A landing with one acceptance command of its own (``expr`` about the
    merged tree, python), then the project's counting gate."""
    accept = gates_mod.acceptance_gate(1, f"{sys.executable} -c 'import cart; assert {expr}'")
    return replace(landing(root, name, tip, base, accept, counting(counter)), own_gates=1)


def land_all(q: MergeQueue, landings: list[Landing]) -> list[Landed]:
    async def together() -> list[Landed]:
        return list(await asyncio.gather(*(q.land(x) for x in landings)))

    return asyncio.run(together())


def test_landings_waiting_together_are_checked_once_and_land_one_commit_each(
    repo: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    names = ("one", "two", "three", "four")
    tips = {n: feature_branch(repo, n, f"{n}.py", f"NAME = {n!r}\n") for n in names}
    taken: list[tuple[str, ...]] = []
    q = queue(repo, batch=4, taken=taken)

    landed = land_all(q, [own(repo, n, "True", counter, *tips[n]) for n in names])

    assert [x.outcome for x in landed] == ["landed"] * 4
    # "one" found the queue free and went alone; the three that waited meanwhile, together.
    assert counter.read_text().splitlines() == ["ran", "ran"]
    assert taken == [("feature one",), ("feature two", "feature three", "feature four")]
    assert landed[0].checked_with == ()
    assert landed[2].checked_with == ("feature two", "feature four")
    log = git(repo, "log", "--format=%s", "main").splitlines()
    assert log == ["feat: four", "feat: three", "feat: two", "feat: one", "initial"]
    assert [x.head for x in landed[1:]] == [git(repo, "rev-parse", f"main~{k}") for k in (2, 1, 0)]
    # Every feature's acceptance command ran, named after its feature; the gate once.
    names_run = [r.name.split(":")[0] for r in landed[1].results]
    assert names_run == [
        "feature two › acceptance 1",
        "feature three › acceptance 1",
        "feature four › acceptance 1",
        "gate 1",
    ]
    for name in ("two", "three", "four"):
        evidence = repo / ".nightcrew" / "evidence" / name
        note = (evidence / "checked-together.txt").read_text()
        assert "feature two" in note and "feature four" in note and "passed" in note
        logs = sorted(p.name.split("-1-")[0] for p in evidence.glob("*.log"))
        assert logs == [
            "feature-four-acceptance",
            "feature-three-acceptance",
            "feature-two-acceptance",
            "gate",
        ]
    assert all(r.output_path and r.output_path.parent.name == "three" for r in landed[2].results)
    assert "fast-forwarded" in landed[3].checkout and landed[1].checkout == ""
    assert q.waiting == []
    assert "merge-" not in git(repo, "worktree", "list")


def test_a_group_that_fails_is_split_until_the_feature_that_fails_goes_back_alone(
    repo: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    double = feature_branch(
        repo, "double", "cart.py", "def total(items):\n    return 2 * sum(items)\n"
    )
    a, b, c = (feature_branch(repo, n, f"{n}.py", f"N = {n!r}\n") for n in ("a", "b", "c"))
    q = queue(repo, batch=4)
    # "b" passed on its own base, where total([1]) == 1; once "double" lands it is 2.
    landed = land_all(
        q,
        [
            own(repo, "double", "True", counter, *double),
            own(repo, "a", "True", counter, *a),
            own(repo, "b", "cart.total([1]) == 1", counter, *b),
            own(repo, "c", "True", counter, *c),
        ],
    )

    assert [x.outcome for x in landed] == ["landed", "landed", "failed", "landed"]
    log = git(repo, "log", "--format=%s", "main").splitlines()
    assert log == ["feat: c", "feat: a", "feat: double", "initial"]  # "b" never reached it
    rejected = landed[2]
    assert rejected.digest is not None and "acceptance 1" in rejected.digest
    assert "feature b ›" not in rejected.digest  # judged alone, under its own names
    assert rejected.merged_since == ("feat: double", "feat: a")
    # double alone; {a, b, c} failed; a alone; {b, c} failed; b alone (failed); c alone.
    assert len(counter.read_text().splitlines()) == 6
    failed_note = repo / ".nightcrew" / "evidence" / "b" / "failed-in-a-group-of-3"
    assert "checks failed" in (failed_note / "checked-together.txt").read_text()
    assert (repo / ".nightcrew" / "evidence" / "b" / "failed-in-a-group-of-2").is_dir()


def test_a_landing_that_conflicts_with_one_ahead_in_its_group_goes_alone_after_it(
    repo: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    first = feature_branch(repo, "first", "first.py", "N = 0\n")
    plus = feature_branch(repo, "plus", "cart.py", "def total(items):\n    return sum(items) + 1\n")
    minus = feature_branch(
        repo, "minus", "cart.py", "def total(items):\n    return sum(items) - 1\n"
    )
    other = feature_branch(repo, "other", "other.py", "N = 1\n")
    q = queue(repo, batch=4)

    landed = land_all(
        q,
        [
            own(repo, "first", "True", counter, *first),
            own(repo, "plus", "True", counter, *plus),
            own(repo, "minus", "True", counter, *minus),
            own(repo, "other", "True", counter, *other),
        ],
    )

    assert [x.outcome for x in landed] == ["landed", "landed", "conflict", "landed"]
    assert landed[1].checked_with == ("feature other",)
    assert landed[2].conflicts == ("cart.py",)
    assert landed[2].merged_since == ("feat: first", "feat: plus", "feat: other")
    log = git(repo, "log", "--format=%s", "main").splitlines()
    assert log == ["feat: other", "feat: plus", "feat: first", "initial"]
    assert len(counter.read_text().splitlines()) == 2  # "minus" never got to its checks


def test_the_group_is_checked_on_its_merged_result_when_its_last_landing_conflicts(
    repo: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    first = feature_branch(repo, "first", "first.py", "N = 0\n")
    plus = feature_branch(repo, "plus", "cart.py", "def total(items):\n    return sum(items) + 1\n")
    other = feature_branch(repo, "other", "other.py", "N = 1\n")
    minus = feature_branch(
        repo, "minus", "cart.py", "def total(items):\n    return sum(items) - 1\n"
    )
    q = queue(repo, batch=4)
    # Each checks its own change is there: the checks must run on plus + other,
    # not on the tree of "minus", whose rebase was given up.
    has_other = '__import__("other").N == 1'

    landed = land_all(
        q,
        [
            own(repo, "first", "True", counter, *first),
            own(repo, "plus", "cart.total([1]) == 2", counter, *plus),
            own(repo, "other", has_other, counter, *other),
            own(repo, "minus", "True", counter, *minus),
        ],
    )

    assert [x.outcome for x in landed] == ["landed", "landed", "landed", "conflict"]
    assert landed[1].checked_with == ("feature other",)
    assert len(counter.read_text().splitlines()) == 2  # "first" alone, then the group once
    log = git(repo, "log", "--format=%s", "main").splitlines()
    assert log == ["feat: other", "feat: plus", "feat: first", "initial"]
