"""The merge queue's hard cases end to end: ``nightcrew build --parallel 2``
with the real Claude Code CLI against nightcrew.sim, real git. A merged result
that breaks another feature's test, a conflict the agent resolves, one it
cannot resolve."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    BIG_USAGE,
    MODEL,
    USAGE_TOOL,
    alive,
    git,
    hang_command,
    kill_quietly,
    make_project,
    nightcrew_env,
    run_nightcrew,
    script,
    session_alive,
    start_nightcrew,
    wait_for,
    work_turns,
)

pytestmark = pytest.mark.cli

GREET = 'def greet(name):\n    return "hello " + name\n'


def add(root: Path, env: dict[str, str], name: str, *args: str) -> int:
    result = run_nightcrew(root, env, "backlog", "add", name, *args)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[1].lstrip("#"))


def check(module: str, expr: str) -> str:
    """An acceptance command: exits 0 when ``expr`` holds once ``module`` is imported."""
    return f"{sys.executable} -c 'import {module}; assert {expr}'"


def write(path: str, text: str) -> str:
    """Bash that writes ``text`` to ``path`` (relative to the agent's worktree)."""
    return f"cat > {path} <<'PY'\n{text}PY"


def wait_until_landed(root: Path, file: str, text: str) -> str:
    """Bash that waits until ``text`` is in the user's checkout's ``file``: the
    other feature has landed (the queue fast-forwards the checkout)."""
    give_up = "n=$((n+1)); [ $n -gt 1200 ] && exit 1"  # a minute: never hang the suite
    return f"n=0; until grep -q '{text}' {root / file}; do sleep 0.05; {give_up}; done"


def feature_script(
    fid: int, name: str, command: str, *, after: list[str] | None = None, none: list[str] = ()
) -> dict[str, Any]:
    """A script for feature ``fid``'s attempts whose prompt has every text of ``after``."""
    return script(name, [f"# Feature #{fid} ", *(after or [])], work_turns(command), list(none))


def commits_failing_tests(root: Path, scratch: Path) -> dict[str, str]:
    """Every commit on main whose tests fail, checked out one by one in a scratch
    worktree: the subject and the end of pytest's output."""
    failing = {}
    for sha in git(root, "rev-list", "main").split():
        path = scratch / sha[:12]
        git(root, "worktree", "add", "-q", "--detach", str(path), sha)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                cwd=path,
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            if done.returncode != 0:
                subject = git(root, "log", "-1", "--format=%s", sha).strip()
                failing[subject] = done.stdout[-400:]
        finally:
            git(root, "worktree", "remove", "--force", str(path))
    return failing


def events(root: Path, kind: str) -> list[dict[str, Any]]:
    with sqlite3.connect(root / ".nightcrew" / "nightcrew.db") as conn:
        rows = conn.execute("SELECT payload_json FROM events WHERE kind = ?", (kind,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def shown(root: Path, env: dict[str, str], fid: int) -> dict[str, Any]:
    result = run_nightcrew(root, env, "backlog", "show", str(fid), "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_a_merged_result_that_breaks_another_features_test_goes_back_and_never_lands(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    (root / "shared.py").write_text(GREET)
    git(root, "add", "shared.py")
    git(root, "commit", "-q", "-m", "a shared helper")
    shout = (
        write("shared.py", 'def greet(name):\n    return "HELLO " + name\n')
        + "\n"
        + write(
            "tests/test_shout.py",
            'import shared\n\n\ndef test_shout():\n    assert shared.greet("x") == "HELLO x"\n',
        )
    )
    welcome_test = (
        "import welcome\n\n\ndef test_welcome():\n"
        '    assert welcome.welcome("bob") == "hello bob!"\n'
    )
    # B builds on the helper as it is when B starts, and finishes only once A has landed.
    welcome = (
        wait_until_landed(root, "shared.py", "HELLO")
        + "\n"
        + write(
            "welcome.py",
            'import shared\n\n\ndef welcome(name):\n    return shared.greet(name) + "!"\n',
        )
        + "\n"
        + write("tests/test_welcome.py", welcome_test)
    )
    fixed = write("welcome.py", 'def welcome(name):\n    return "hello " + name + "!"\n')
    merged = "after it was put on top of main"
    server, sim = sim_env(
        {
            "scripts": [
                feature_script(1, "shout", shout),
                feature_script(2, "welcome", welcome, none=[merged]),
                feature_script(2, "welcome-fix", fixed, after=[merged]),
            ]
        }
    )
    env = nightcrew_env(sim)
    a = add(root, env, "Shout", "--accept", check("shared", 'shared.greet("x") == "HELLO x"'))
    b = add(
        root, env, "Welcome", "--accept", check("welcome", 'welcome.welcome("bob") == "hello bob!"')
    )

    result = run_nightcrew(root, env, "build", "--model", MODEL, "--parallel", "2")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "the backlog is done: 2 of 2 features passed" in result.stdout
    # B's first landing was sent back; its second attempt was told why and fixed it.
    first_calls = [r for r in server.requests if r.script and r.turn_index == 0]
    assert sorted(r.script for r in first_calls) == ["shout", "welcome", "welcome-fix"]
    (rejected,) = events(root, "merge_rejected")
    assert rejected["item"] == f"feature #{b}" and rejected["branch"] == "main"
    assert rejected["failed"] and rejected["merged_since"] == ["feat(functional): Shout"]
    attempts = shown(root, env, b)["attempt_list"]
    assert [x["state"] for x in attempts] == ["failed", "passed"]
    assert shown(root, env, a)["state"] == "passed"
    # No commit on main ever had a failing test, B's included.
    assert commits_failing_tests(root, tmp_path / "check") == {}
    assert (root / "welcome.py").exists() and "HELLO" in (root / "shared.py").read_text()
    assert len(git(root, "worktree", "list").splitlines()) == 1


CONFLICT = "conflicts with what landed"
WITH_C = "def add(a, b, c=0):\n    return a + b + c\n"
RESOLVED = "def add(a, b, c=0):\n    return int(a) + int(b) + int(c)\n"


def two_edits_of_add(
    root: Path, sim_env: SimStarter, resolve: str
) -> tuple[Any, dict[str, str], int, int]:
    """Features A (a third argument) and B (numbers as text) both rewrite
    calc.add; B finishes only once A has landed, so B's landing conflicts.
    ``resolve`` is B's attempt after the conflict."""
    third = write("calc.py", '"""calc"""\n\n\n' + WITH_C)
    text = (
        wait_until_landed(root, "calc.py", "c=0")
        + "\n"
        + write("calc.py", '"""calc"""\n\n\ndef add(a, b):\n    return int(a) + int(b)\n')
    )
    server, sim = sim_env(
        {
            "scripts": [
                feature_script(1, "third", third),
                feature_script(2, "text", text, none=[CONFLICT]),
                feature_script(2, "resolve", resolve, after=[CONFLICT]),
            ]
        }
    )
    env = nightcrew_env(sim)
    a = add(root, env, "Three terms", "--accept", check("calc", "calc.add(1, 2, 3) == 6"))
    b = add(root, env, "Numbers as text", "--accept", check("calc", 'calc.add("2", "3") == 5'))
    return server, env, a, b


def test_a_conflict_the_agent_resolves_lands_both_features(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    resolve = (
        write("calc.py", '"""calc"""\n\n\n' + RESOLVED)
        + "\ngit add calc.py && GIT_EDITOR=true git rebase --continue"
    )
    server, env, a, b = two_edits_of_add(root, sim_env, resolve)

    result = run_nightcrew(root, env, "build", "--model", MODEL, "--parallel", "2")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "the backlog is done: 2 of 2 features passed" in result.stdout
    # The attempt after the conflict was told which file conflicts.
    (told,) = [r for r in server.requests if r.script == "resolve" and r.turn_index == 0]
    assert "calc.py" in told.prompt.split(CONFLICT, 1)[1].splitlines()[0]
    conflict, resolved = events(root, "merge_conflict")
    assert conflict["item"] == f"feature #{b}" and conflict["files"] == ["calc.py"]
    assert conflict["resolved_by"] == "" and conflict["branch"] == "main"
    assert resolved["item"] == f"feature #{b}" and resolved["files"] == ["calc.py"]
    assert resolved["resolved_by"] == "agent"
    assert f"feature #{b}: the agent resolved its conflict with main in calc.py" in result.stdout
    # Both features' changes are on main, each in one commit.
    assert (root / "calc.py").read_text() == '"""calc"""\n\n\n' + RESOLVED
    assert git(root, "log", "--format=%s", "main").splitlines() == [
        "feat(functional): Numbers as text",
        "feat(functional): Three terms",
        "initial",
    ]
    assert git(root, "status", "--porcelain") == ""
    assert [shown(root, env, f)["state"] for f in (a, b)] == ["passed", "passed"]
    assert len(git(root, "worktree", "list").splitlines()) == 1


def test_a_conflict_the_agent_cannot_resolve_waits_for_a_person(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    _, env, a, b = two_edits_of_add(root, sim_env, "echo 'I will leave this to a person'")

    result = run_nightcrew(root, env, "build", "--model", MODEL, "--parallel", "2")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing is ready: 1 of 2 features passed, 1 waiting for a person (#2)" in result.stdout
    waiting = shown(root, env, b)
    assert [(e["files"], e["resolved_by"]) for e in events(root, "merge_conflict")] == [
        (["calc.py"], ""),
        (["calc.py"], "person"),
    ]
    assert f"feature #{b} still conflicts with main in calc.py: left for a person" in result.stdout
    assert waiting["state"] == "needs_input"
    assert "calc.py" in waiting["input_request"]
    assert shown(root, env, a)["state"] == "passed"
    # Main has A alone; the person's checkout is clean, nothing half-rebased anywhere.
    assert (root / "calc.py").read_text() == '"""calc"""\n\n\n' + WITH_C
    assert git(root, "log", "--format=%s", "main").splitlines() == [
        "feat(functional): Three terms",
        "initial",
    ]
    assert git(root, "status", "--porcelain") == ""


def module(name: str) -> str:
    """Bash that writes module ``name`` and a test of it (each feature its own files)."""
    return (
        write(f"{name}.py", f'VALUE = "{name}"\n')
        + "\n"
        + write(
            f"tests/test_{name}.py",
            f'import {name}\n\n\ndef test_{name}():\n    assert {name}.VALUE == "{name}"\n',
        )
    )


def module_features(root: Path, env: dict[str, str], names: list[str]) -> list[int]:
    return [
        add(root, env, f"Module {name}", "--accept", check(name, f'{name}.VALUE == "{name}"'))
        for name in names
    ]


def attempts_by_feature(root: Path) -> dict[int, list[tuple[str, int | None]]]:
    """Each feature's attempts in order: (state, the agent's pid)."""
    with sqlite3.connect(root / ".nightcrew" / "nightcrew.db") as conn:
        rows = conn.execute(
            "SELECT w.feature_id, a.state, a.agent_pid FROM attempts a"
            " JOIN work_items w ON w.id = a.item_id ORDER BY w.feature_id, a.number"
        ).fetchall()
    found: dict[int, list[tuple[str, int | None]]] = {}
    for feature, state, pid in rows:
        found.setdefault(feature, []).append((state, pid))
    return found


def three_hanging_lanes(
    tmp_path: Path, sim_env: SimStarter
) -> tuple[Path, dict[str, str], list[str], list[int], dict[str, Path]]:
    """A project with three module features whose agents hang on their first call
    (once: a resumed build's agents go on) and write their pid files; (root, env,
    names, feature ids, pid files)."""
    root = make_project(tmp_path / "proj", "")
    names = ["alpha", "beta", "gamma"]
    pidfiles = {name: tmp_path / f"{name}.pid" for name in names}
    scripts = [
        script(
            name,
            [f"Module {name}"],
            [
                {
                    "text": "Starting.",
                    "tool": {
                        "name": "Bash",
                        "input": {"command": hang_command(pidfiles[name], tmp_path / name)},
                    },
                },
                *work_turns(module(name)),
            ],
        )
        for name in names
    ]
    _, sim = sim_env({"scripts": scripts})
    env = nightcrew_env(sim)
    return root, env, names, module_features(root, env, names), pidfiles


def test_a_build_killed_with_three_lanes_busy_resumes_without_orphans_or_double_landings(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root, env, names, ids, pidfiles = three_hanging_lanes(tmp_path, sim_env)

    build = start_nightcrew(root, env, "build", "--model", MODEL, "--parallel", "3")
    hung: list[int] = []
    try:
        wait_for(lambda: all(p.exists() for p in pidfiles.values()), what="three hung agents")
        hung = [int(p.read_text()) for p in pidfiles.values()]
        build.kill()  # SIGKILL: the orchestrator dies with three lanes busy
        build.communicate()
        assert all(alive(pid) for pid in hung)
        agents = [pid for (_, pid), *_ in attempts_by_feature(root).values()]
        assert len(agents) == 3 and all(agents)

        result = run_nightcrew(root, env, "build", "--resume", "--model", MODEL, "--parallel", "3")
    finally:
        kill_quietly(build.pid)
        for pid in hung:
            kill_quietly(pid)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("killed an orphaned agent process group") == 3
    assert "the backlog is done: 3 of 3 features passed" in result.stdout
    # No agent of the killed build is left, nor anything it started.
    for pid in hung:
        wait_for(lambda pid=pid: not alive(pid), what=f"the hung command {pid} to be gone")
    for agent in agents:
        assert agent is not None
        wait_for(lambda a=agent: session_alive(a) == [], what=f"agent {agent}'s session to end")
    # Each feature passed exactly once, and landed exactly once.
    attempts = attempts_by_feature(root)
    assert {f: [s for s, _ in attempts[f]] for f in ids} == {f: ["crashed", "passed"] for f in ids}
    subjects = git(root, "log", "--format=%s", "main").splitlines()
    assert sorted(subjects[:-1]) == [f"feat(functional): Module {n}" for n in names]
    assert subjects[-1] == "initial"
    assert git(root, "status", "--porcelain") == ""
    assert len(git(root, "worktree", "list").splitlines()) == 1
    assert "nightcrew/" not in git(root, "branch", "--list")


def together(flags: Path, me: str, everyone: list[str]) -> str:
    """Bash that marks ``me`` started, then waits until every feature has started."""
    waits = " || ".join(f"[ ! -e {flags / other} ]" for other in everyone)
    give_up = "n=$((n+1)); [ $n -gt 1200 ] && exit 1"  # a minute: never hang the suite
    return f"touch {flags / me}; n=0; while {waits}; do sleep 0.05; {give_up}; done; true"


def test_a_budget_crossed_by_three_lanes_in_flight_stops_all_three(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    flags = tmp_path / "flags"
    flags.mkdir()
    names = ["alpha", "beta", "gamma"]
    # All three sessions start; then each answers with one costly response
    # (about $0.31) and a command that would hang: no agent ever finishes on its
    # own, two of those responses together cross the budget.
    scripts = [
        script(
            name,
            [f"Module {name}"],
            [
                {
                    "text": "Starting.",
                    "tool": {"name": "Bash", "input": {"command": together(flags, name, names)}},
                    "usage": dict(USAGE_TOOL),
                },
                {
                    "text": "Thinking hard.",
                    "tool": {
                        "name": "Bash",
                        "input": {"command": hang_command(tmp_path / f"{name}.pid")},
                    },
                    "usage": dict(BIG_USAGE),
                },
                {"text": "Done.", "usage": dict(BIG_USAGE)},
            ],
        )
        for name in names
    ]
    _, sim = sim_env({"scripts": scripts})
    env = nightcrew_env(sim)
    ids = module_features(root, env, names)

    try:
        result = run_nightcrew(
            root,
            env,
            "build",
            "--model",
            MODEL,
            "--parallel",
            "3",
            "--max-budget-usd",
            "0.5",
            "--attempt-timeout",
            "90",  # a safety net only: the budget must stop them long before
            timeout=120,
        )
    finally:
        for name in names:
            pidfile = tmp_path / f"{name}.pid"
            if pidfile.exists():
                kill_quietly(int(pidfile.read_text()))

    assert result.returncode == 3, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert "budget" in last and "--max-budget-usd" in last, last
    # The three attempts ended on the budget (or were stopped with it), none passed.
    attempts = attempts_by_feature(root)
    assert {f: len(attempts[f]) for f in ids} == {f: 1 for f in ids}
    assert {s for f in ids for s, _ in attempts[f]} <= {"over_budget", "cancelled"}
    assert [shown(root, env, f)["state"] for f in ids] == ["pending"] * 3
    # Nothing landed.
    assert git(root, "log", "--format=%s", "main").splitlines() == ["initial"]
    assert events(root, "merge_landed") == []
    hung = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    for pid in hung:
        wait_for(lambda pid=pid: not alive(pid), what=f"the hung command {pid} to be gone")
    # The last line says the budget stopped all three lanes.
    assert "budget" in last and "3 lanes stopped" in last, last
    stopped = last.split("3 lanes stopped", 1)[1]
    assert all(f"#{f}" in stopped for f in ids) and "back to pending" in stopped, last


def test_ctrl_c_with_three_lanes_busy_stops_every_agent_and_resume_finishes(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root, env, names, ids, pidfiles = three_hanging_lanes(tmp_path, sim_env)

    build = start_nightcrew(root, env, "build", "--model", MODEL, "--parallel", "3")
    hung: list[int] = []
    try:
        wait_for(lambda: all(p.exists() for p in pidfiles.values()), what="three hung agents")
        hung = [int(p.read_text()) for p in pidfiles.values()]
        build.send_signal(signal.SIGINT)  # Ctrl-C
        out, _ = build.communicate(timeout=120)
    finally:
        kill_quietly(build.pid)
        for pid in hung:
            kill_quietly(pid)

    assert build.returncode == 130, out
    assert "interrupted: state saved; continue with `nightcrew build --resume`" in out
    # Every lane's agent group was stopped, and what it started with it.
    for pid in hung:
        wait_for(lambda pid=pid: not alive(pid), what=f"the hung command {pid} to be gone")
    attempts = attempts_by_feature(root)
    assert {f: [s for s, _ in attempts[f]] for f in ids} == {f: ["cancelled"] for f in ids}
    assert [shown(root, env, f)["state"] for f in ids] == ["pending"] * 3
    assert git(root, "log", "--format=%s", "main").splitlines() == ["initial"]
    assert len(git(root, "worktree", "list").splitlines()) == 4  # kept for --resume

    result = run_nightcrew(root, env, "build", "--resume", "--model", MODEL, "--parallel", "3")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "the backlog is done: 3 of 3 features passed" in result.stdout
    subjects = git(root, "log", "--format=%s", "main").splitlines()
    assert sorted(subjects[:-1]) == [f"feat(functional): Module {n}" for n in names]
    assert len(git(root, "worktree", "list").splitlines()) == 1
