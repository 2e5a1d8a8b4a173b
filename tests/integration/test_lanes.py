"""``nightcrew build --parallel N`` end to end: lanes in real git worktrees, the
real Claude Code CLI against nightcrew.sim, a merge queue that checks the
merged result before the integration branch moves."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    MODEL,
    git,
    make_project,
    nightcrew_env,
    run_nightcrew,
    script,
    work_turns,
)

pytestmark = pytest.mark.cli


def add(root: Path, env: dict[str, str], name: str, *args: str) -> int:
    result = run_nightcrew(root, env, "backlog", "add", name, *args)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[1].lstrip("#"))


def module(name: str, body: str, test: str) -> str:
    """Bash that writes module ``name`` and a test of it (each feature its own files)."""
    return (
        f"cat > {name}.py <<'PY'\n{body}\nPY\n"
        f"cat > tests/test_{name}.py <<'PY'\nimport {name}\n\n\ndef test_{name}():\n"
        f"    assert {test}\nPY"
    )


def together(flags: Path, me: str, everyone: list[str]) -> str:
    """Bash that marks ``me`` started, then waits until every feature has started:
    it can only finish when the lanes really run at the same time."""
    waits = " || ".join(f"[ ! -e {flags / other} ]" for other in everyone)
    give_up = "n=$((n+1)); [ $n -gt 1200 ] && exit 1"  # a minute: never hang the suite
    return f"touch {flags / me}; n=0; while {waits}; do sleep 0.05; {give_up}; done"


def features(root: Path, env: dict[str, str], names: list[str]) -> list[int]:
    ids = []
    for name in names:
        # The checks see the whole environment plus the lane's own variables.
        lane_env = 'os.environ["HOME"] and os.environ["NIGHTCREW_LANE"] and os.environ["PORT"]'
        check = (
            f'{sys.executable} -c \'import os, {name}; assert {name}.VALUE == "{name}";'
            f" assert {lane_env}'"
        )
        ids.append(add(root, env, f"Module {name}", "--accept", check))
    return ids


def test_three_independent_features_run_at_once_and_land_as_three_commits(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    flags = tmp_path / "flags"
    flags.mkdir()
    names = ["alpha", "beta", "gamma"]
    scripts = [
        script(
            name,
            [f"Module {name}"],
            work_turns(
                together(flags, name, names)
                + "\n"
                + module(name, f'VALUE = "{name}"', f'{name}.VALUE == "{name}"')
            ),
        )
        for name in names
    ]
    server, sim = sim_env({"scripts": scripts})
    env = nightcrew_env(sim)
    ids = features(root, env, names)
    # The person keeps working in their checkout: an uncommitted edit.
    (root / "calc.py").write_text((root / "calc.py").read_text() + "# my own edit\n")
    before = (root / "calc.py").read_text()

    result = run_nightcrew(root, env, "build", "--model", MODEL, "--parallel", "3")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "the backlog is done: 3 of 3 features passed" in result.stdout
    subjects = git(root, "log", "--format=%s").splitlines()
    assert sorted(subjects[:3]) == [f"feat(functional): Module {n}" for n in names]
    assert subjects[3:] == ["initial"]
    # The person's edit is still there, uncommitted; the landed files arrived.
    assert (root / "calc.py").read_text() == before
    assert git(root, "status", "--porcelain").splitlines() == [" M calc.py"]
    for name in names:
        assert (root / f"{name}.py").read_text() == f'VALUE = "{name}"\n'
    # Each agent worked in its own worktree, not in the person's checkout.
    cwds = {r.cwd for r in server.requests if r.script}
    assert len(cwds) == 3 and str(root) not in cwds
    assert len(git(root, "worktree", "list").splitlines()) == 1  # only the main checkout
    assert "nightcrew/" not in git(root, "branch", "--list")
    listed = json.loads(run_nightcrew(root, env, "backlog", "list", "--json").stdout)
    assert {f["id"]: f["state"] for f in listed} == {i: "passed" for i in ids}
    # All three began at the same head: the first to land is the very tree its
    # lane checked, so the queue does not check it again; the other two are new
    # trees (the first one's module is in them) and are checked.
    assert [p["checks_reused"] for p in landings(root)] == [True, False, False]
    assert result.stdout.count("not checked again") == 1
    assert result.stdout.count("merged result checked") == 2


def landings(root: Path) -> list[dict[str, object]]:
    """The ``merge_landed`` events' payloads, in order, from the project's store."""
    conn = sqlite3.connect(root / ".nightcrew" / "nightcrew.db")
    try:
        rows = conn.execute(
            "SELECT payload_json FROM events WHERE kind = 'merge_landed' ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return [json.loads(row[0]) for row in rows]


def test_features_that_name_the_same_file_do_not_run_at_once_and_say_why(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    flags = tmp_path / "flags"
    flags.mkdir()

    def turns(name: str, other: str) -> list[dict[str, Any]]:
        # Fails if the other feature's agent is running at the same time.
        alone = f"touch {flags / name}; test ! -e {flags / other}.running || exit 1"
        work = f"touch {flags / name}.running; printf '\\nX_{name} = 1\\n' >> cart.py"
        return work_turns(f"{alone}; {work}; rm {flags / name}.running")

    server, sim = sim_env(
        {
            "scripts": [
                script("total", ["# Feature #1 "], turns("total", "discount")),
                script("discount", ["# Feature #2 "], turns("discount", "total")),
            ]
        }
    )
    env = nightcrew_env(sim)
    (root / "cart.py").write_text('"""cart"""\n')
    git(root, "add", "cart.py")
    git(root, "commit", "-q", "-m", "cart")
    check = f"{sys.executable} -c 'import cart'"
    first = add(
        root, env, "Cart total", "--description", "Add X_total to cart.py", "--accept", check
    )
    second = add(
        root, env, "Cart discount", "--description", "Add X_discount to cart.py", "--accept", check
    )

    result = run_nightcrew(root, env, "build", "--model", MODEL, "--parallel", "2")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"feature #{second} waits: shares cart.py with #{first}" in result.stdout
    assert "the backlog is done: 2 of 2 features passed" in result.stdout
    text = (root / "cart.py").read_text()
    assert "X_total = 1" in text and "X_discount = 1" in text
    assert [r.script for r in server.requests if r.script] == [
        "total",
        "total",
        "discount",
        "discount",
    ]


def test_branch_per_feature_leaves_each_passed_feature_on_its_own_branch(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    names = ["alpha", "beta"]
    scripts = [
        script(name, [f"# Feature #{i} "], work_turns(module(name, f'VALUE = "{name}"', "True")))
        for i, name in enumerate(names, 1)
    ]
    _server, sim = sim_env({"scripts": scripts})
    env = nightcrew_env(sim)
    features(root, env, names)
    head = git(root, "rev-parse", "HEAD").strip()

    result = run_nightcrew(root, env, "build", "--model", MODEL, "--branch-per-feature")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed on its own branch nightcrew/1-module-alpha" in result.stdout
    assert git(root, "rev-parse", "HEAD").strip() == head  # main did not move
    for i, name in enumerate(names, 1):
        branch = f"nightcrew/{i}-module-{name}"
        log = git(root, "log", "--format=%s", f"{head}..{branch}").splitlines()
        assert log == [f"feat(functional): Module {name}"]
        assert git(root, "show", f"{branch}:{name}.py") == f'VALUE = "{name}"\n'
    assert len(git(root, "worktree", "list").splitlines()) == 1
