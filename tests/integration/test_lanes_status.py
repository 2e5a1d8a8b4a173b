"""``nightcrew status --json`` beside ``nightcrew build --parallel 2`` (another
process: the real CLI against nightcrew.sim) and after it: while both agents
work, each lane says which feature its agent is on; afterwards each lane's
feature has landed, the landings name the integration branch's commits, the
queue is empty and no worktree is left."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    MODEL,
    git,
    make_project,
    nightcrew_env,
    run_nightcrew,
    script,
    start_nightcrew,
    status,
    wait_for,
    work_turns,
)

pytestmark = pytest.mark.cli


def held(flags: Path, me: str) -> str:
    """Bash that marks ``me`` started, then waits for the test to say go
    (a minute at most: never hang the suite)."""
    go = flags / "go"
    give_up = "n=$((n+1)); [ $n -gt 1200 ] && exit 1"
    return f"touch {flags / me}; n=0; while [ ! -e {go} ]; do sleep 0.05; {give_up}; done"


def module(name: str) -> str:
    return (
        f"cat > {name}.py <<'PY'\nVALUE = \"{name}\"\nPY\n"
        f"cat > tests/test_{name}.py <<'PY'\nimport {name}\n\n\ndef test_{name}():\n"
        f'    assert {name}.VALUE == "{name}"\nPY'
    )


def test_status_follows_the_lanes_of_a_build_running_in_another_process(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    flags = tmp_path / "flags"
    flags.mkdir()
    names = ["alpha", "beta"]
    scripts = [
        script(name, [f"Module {name}"], work_turns(held(flags, name) + "\n" + module(name)))
        for name in names
    ]
    _, sim = sim_env({"scripts": scripts})
    env = nightcrew_env(sim)
    ids = {}
    for name in names:
        check = f"{sys.executable} -c 'import {name}; assert {name}.VALUE == \"{name}\"'"
        added = run_nightcrew(root, env, "backlog", "add", f"Module {name}", "--accept", check)
        assert added.returncode == 0, added.stderr
        ids[name] = int(added.stdout.split()[1].lstrip("#"))

    build = start_nightcrew(root, env, "build", "--model", MODEL, "--parallel", "2")
    try:
        wait_for(lambda: all((flags / n).exists() for n in names), what="both agents working")
        during = status(root, env)
        (flags / "go").touch()
        out, err = build.communicate(timeout=180)
    finally:
        if build.poll() is None:
            build.kill()
            build.communicate()
    assert build.returncode == 0, out + err

    # While both agents worked: two lanes, each on its own feature, in its agent.
    assert during["run"]["state"] == "running"
    lanes = sorted((r["lane"], r["feature_id"], r["phase"]) for r in during["lanes"])
    assert [lane for lane, _, _ in lanes] == [1, 2]
    assert sorted(f for _, f, _ in lanes) == sorted(ids.values())
    assert {phase for _, _, phase in lanes} == {"agent"}
    assert all(r["attempt"] == 1 and r["model"] == MODEL for r in during["lanes"])
    assert during["merge_queue"] == [] and during["landed"] == []
    assert len(during["worktrees"]) == 2

    after = status(root, env)
    assert {r["feature_id"]: r["phase"] for r in after["lanes"]} == {
        i: "landed" for i in ids.values()
    }
    assert after["merge_queue"] == []
    landed = after["landed"]
    assert sorted(r["feature_id"] for r in landed) == sorted(ids.values())
    shas = git(root, "log", "--format=%H", "-2").split()
    assert [r["sha"] for r in landed] == shas  # the latest landing first
    assert all(r["merge_seconds"] >= 0 for r in landed)
    # Both began at the same head: the first to land was the tree its lane had
    # checked (not checked again); the second, on top of it, was checked.
    assert [(r["checks_reused"], r["gate_seconds"] > 0) for r in landed] == [
        (False, True),
        (True, False),
    ]
    assert after["worktrees"] == []

    text = run_nightcrew(root, env, "status").stdout
    assert "lanes" in text and "landed #" in text and "merge queue" not in text
