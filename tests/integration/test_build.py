"""``nightcrew build`` end to end: a backlog in the real store, the real Claude
Code CLI with nightcrew.sim as the model, real git and real acceptance commands."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from nightcrew.store.records import Store
from tests.conftest import SimStarter
from tests.integration.support import (
    MODEL,
    USAGE_DONE,
    USAGE_TOOL,
    add_function,
    alive,
    cost_of,
    git,
    hang_command,
    kill_quietly,
    make_project,
    nightcrew_env,
    run_nightcrew,
    script,
    start_nightcrew,
    wait_for,
    work_turns,
)

pytestmark = pytest.mark.cli


HAIKU = "claude-haiku-4-5"
OPUS = "claude-opus-4-5"


def check(expr: str) -> str:
    """An acceptance command: exits 0 when ``expr`` holds for calc."""
    return f"{sys.executable} -c 'import calc; assert {expr}'"


def add(root: Path, env: dict[str, str], name: str, *args: str) -> int:
    result = run_nightcrew(root, env, "backlog", "add", name, *args)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[1].lstrip("#"))


def backlog(root: Path, env: dict[str, str]) -> dict[int, dict[str, Any]]:
    result = run_nightcrew(root, env, "backlog", "list", "--json")
    assert result.returncode == 0, result.stderr
    return {f["id"]: f for f in json.loads(result.stdout)}


def db(root: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(root / ".nightcrew" / "nightcrew.db")
    conn.row_factory = sqlite3.Row
    return conn


def feature_script(fid: int, command: str, name: str | None = None) -> dict[str, Any]:
    return script(name or f"f{fid}", [f"# Feature #{fid} "], work_turns(command))


def test_features_pass_in_dependency_order_and_the_build_stops_by_itself(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    server, sim = sim_env(
        {
            "scripts": [
                feature_script(1, add_function("div", "a / b", "calc.div(8, 2) == 4")),
                feature_script(2, add_function("mul", "a * b", "calc.mul(3, 4) == 12")),
            ]
        }
    )
    env = nightcrew_env(sim)
    # #1 is more urgent (priority 0) but needs #2, so #2 must be built first.
    div = add(root, env, "Division", "--priority", "0", "--accept", check("calc.div(8, 2) == 4"))
    mul = add(
        root, env, "Multiplication", "--priority", "5", "--accept", check("calc.mul(3, 4) == 12")
    )
    assert run_nightcrew(root, env, "backlog", "depend", str(div), "--on", str(mul)).returncode == 0

    result = run_nightcrew(root, env, "build", "--model", MODEL)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "the backlog is done: 2 of 2 features passed" in result.stdout
    log = git(root, "log", "--format=%s%n%b%n--").split("--\n")
    assert [entry.splitlines()[0] for entry in log if entry.strip()] == [
        "feat(functional): Division",
        "feat(functional): Multiplication",
        "initial",
    ]
    assert f"Nightcrew-Feature: {div}" in log[0] and f"Nightcrew-Feature: {mul}" in log[1]
    assert git(root, "status", "--porcelain") == ""
    features = backlog(root, env)
    assert [features[i]["state"] for i in (div, mul)] == ["passed", "passed"]
    # Two sessions of two turns each, then nothing: no tokens after the backlog is done.
    assert [r.script for r in server.requests if r.script] == ["f2", "f2", "f1", "f1"]
    assert not [r for r in server.requests if r.script is None and r.stream]

    # Each feature's money: one attempt, the model, exactly what Claude Code reported.
    shown = json.loads(run_nightcrew(root, env, "backlog", "show", str(mul), "--json").stdout)
    (attempt,) = shown["attempt_list"]
    assert attempt["model"] == MODEL and attempt["state"] == "passed"
    assert shown["cost_usd"] == pytest.approx(cost_of(USAGE_TOOL, USAGE_DONE), abs=1e-6)
    stats = json.loads(run_nightcrew(root, env, "backlog", "stats", "--json").stdout)
    assert stats["passed"] == 2 and stats["total"] == 2
    assert stats["cost_usd"] == pytest.approx(2 * cost_of(USAGE_TOOL, USAGE_DONE), abs=1e-6)
    status = run_nightcrew(root, env, "status")
    assert status.returncode == 0 and "nightcrew build summary" in status.stdout
    assert "#2" in status.stdout and "Multiplication" in status.stdout

    again = run_nightcrew(root, env, "build", "--model", MODEL)
    assert again.returncode == 0, again.stderr
    assert "the backlog is done" in again.stdout
    assert len([r for r in server.requests if r.script]) == 4  # not one call more


def test_killed_build_resumes_the_feature_and_reaps_the_orphan(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    pidfile, marker = tmp_path / "hang.pid", tmp_path / "hung-once"
    hang = hang_command(pidfile, marker)
    _, sim = sim_env(
        {
            "scripts": [
                script(
                    "f1",
                    ["# Feature #1 "],
                    [
                        {"text": "Starting.", "tool": {"name": "Bash", "input": {"command": hang}}},
                        *work_turns(add_function("sub", "a - b", "calc.sub(5, 3) == 2")),
                    ],
                ),
                feature_script(2, add_function("mul", "a * b", "calc.mul(3, 4) == 12")),
            ]
        }
    )
    env = nightcrew_env(sim)
    one = add(root, env, "Subtraction", "--accept", check("calc.sub(5, 3) == 2"))
    two = add(root, env, "Multiplication", "--accept", check("calc.mul(3, 4) == 12"))

    build = start_nightcrew(root, env, "build", "--model", MODEL)
    try:
        wait_for(pidfile.exists, what="the agent's hanging command")
        hung = int(pidfile.read_text())
        assert backlog(root, env)[one]["state"] == "in_progress"
        build.kill()  # SIGKILL: the orchestrator dies; its agent lives on
        build.communicate()
        assert alive(hung)

        result = run_nightcrew(root, env, "build", "--resume", "--model", MODEL)
    finally:
        kill_quietly(build.pid)
        if pidfile.exists():
            kill_quietly(int(pidfile.read_text()))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "killed an orphaned agent process group" in result.stdout
    wait_for(lambda: not alive(hung), what="the orphan to be gone")
    features = backlog(root, env)
    assert [features[one]["state"], features[two]["state"]] == ["passed", "passed"]
    assert "the backlog is done: 2 of 2 features passed" in result.stdout
    with db(root) as conn:
        states = [
            r[0]
            for r in conn.execute(
                "SELECT a.state FROM attempts a JOIN work_items w ON w.id = a.item_id"
                " WHERE w.feature_id = ? ORDER BY a.number",
                (one,),
            )
        ]
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    assert states == ["crashed", "passed"]
    assert runs == 1  # the same build continued
    assert features[one]["attempts"] == 2
    assert len(git(root, "log", "--format=%s").splitlines()) == 3


def test_backlog_init_creates_features_through_the_tools_and_build_passes_them(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    (root / "SPEC.md").write_text("# Calculator\n\nA calc module with sub and mul.\n")
    # The initializer runs on its routing rule's model, not the config's.
    (root / "nightcrew.toml").write_text(
        f'model = "{HAIKU}"\n\n[[routing]]\nkind = "init"\nmodels = ["{OPUS}"]\n'
    )
    git(root, "add", "SPEC.md", "nightcrew.toml")
    git(root, "commit", "-qm", "spec")
    features = [
        {
            "name": "Subtraction",
            "category": "core",
            "description": "calc.sub(a, b)",
            "steps": ["call calc.sub(5, 3)"],
            "acceptance": [check("calc.sub(5, 3) == 2")],
        },
        {
            "name": "Multiplication",
            "category": "core",
            "acceptance": [check("calc.mul(3, 4) == 12")],
            "depends_on_indices": [0],
        },
        {"name": "Looks nice", "category": "style"},  # no acceptance, not manual: rejected
    ]
    server, sim = sim_env(
        {
            "scripts": [
                script(
                    "init",
                    ["You are the initializer"],
                    [
                        {
                            "text": "Creating the backlog.",
                            "tool": {
                                "name": "mcp__nightcrew__create_features",
                                "input": {"features": features},
                            },
                        },
                        {"text": "Created two features; one was rejected."},
                    ],
                ),
                feature_script(1, add_function("sub", "a - b", "calc.sub(5, 3) == 2")),
                feature_script(2, add_function("mul", "a * b", "calc.mul(3, 4) == 12")),
            ]
        }
    )
    env = nightcrew_env(sim)

    result = run_nightcrew(root, env, "backlog", "init", "SPEC.md")

    assert result.returncode == 0, result.stdout + result.stderr
    init_models = [r.model for r in server.requests if r.script == "init" and r.turn_index == 0]
    assert init_models == [OPUS]  # the rule, not the config's model
    with db(root) as conn:
        (routed,) = [
            json.loads(r[0])
            for r in conn.execute("SELECT payload_json FROM events WHERE kind = 'routing'")
        ]
    assert routed["item"] == "the initializer"
    assert routed["why"] == "rule 'rule 1' matched: kind init"
    assert "created 2 feature(s); 1 rejected and not sent again (Looks nice)" in result.stdout
    assert "warn: rejected 'Looks nice': no acceptance command" in result.stdout
    # The tool's reply, as the agent read it, names the rejection and why.
    (reply,) = [r.last_user_text for r in server.requests if r.script == "init" and r.turn_index]
    assert "Looks nice" in reply and "acceptance" in reply
    listed = backlog(root, env)
    assert [(f["name"], f["category"], f["depends_on"]) for f in listed.values()] == [
        ("Subtraction", "core", []),
        ("Multiplication", "core", [1]),
    ]
    assert listed[1]["steps"] == ["call calc.sub(5, 3)"]
    # The session's money is recorded like any other attempt's.
    with db(root) as conn:
        kind, cost = conn.execute(
            "SELECT r.kind, a.cost_usd FROM runs r JOIN attempts a ON a.run_id = r.id"
        ).fetchone()
    assert kind == "init" and float(cost) > 0

    again = run_nightcrew(root, env, "backlog", "init", "SPEC.md")
    assert again.returncode == 2 and "already has 2 feature(s)" in again.stderr

    built = run_nightcrew(root, env, "build", "--model", MODEL)
    assert built.returncode == 0, built.stdout + built.stderr
    assert git(root, "log", "--format=%s").splitlines() == [
        "feat(core): Multiplication",
        "feat(core): Subtraction",
        "spec",
        "initial",
    ]


def test_a_claim_that_the_checks_refute_does_not_pass_the_feature(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    claim = {"name": "mcp__nightcrew__claim_passing", "input": {"note": "all done, trust me"}}
    server, sim = sim_env(
        {
            "scripts": [
                script(
                    "liar",
                    ["# Feature #1 "],
                    [{"text": "It works.", "tool": claim}, {"text": "Done."}],
                )
            ]
        }
    )
    env = nightcrew_env(sim)
    fid = add(root, env, "Power", "--accept", check("calc.pow(2, 3) == 8"))

    result = run_nightcrew(root, env, "build", "--model", MODEL, "--on-failure", "skip")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "the agent claimed it passes; the harness's checks say it does not" in result.stdout
    assert backlog(root, env)[fid]["state"] == "skipped"
    (reply,) = [r.last_user_text for r in server.requests if r.script == "liar" and r.turn_index]
    assert "verif" in reply  # the agent is told its claim will be checked
    with db(root) as conn:
        claims = conn.execute("SELECT source, verdict, attempt_id FROM feature_claims").fetchall()
    assert len(claims) == 1
    assert claims[0]["verdict"] == "refuted" and claims[0]["attempt_id"] is not None
    assert claims[0]["source"].startswith("agent:")
    assert git(root, "log", "--format=%s").splitlines() == ["initial"]


def test_resume_session_continues_the_interrupted_agent_session(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    pidfile, marker = tmp_path / "hang.pid", tmp_path / "hung-once"
    server, sim = sim_env(
        {
            "scripts": [
                script(
                    "f1",
                    ["# Feature #1 "],
                    [
                        {
                            "text": "Remember: the secret word is PELICAN.",
                            "tool": {
                                "name": "Bash",
                                "input": {"command": hang_command(pidfile, marker)},
                            },
                        },
                        # The transcript keeps the text and the tool call of that first
                        # response as two assistant messages, so the resumed session's
                        # first call is answered by turn 2.
                        {"text": "(not reached)"},
                        *work_turns(add_function("sub", "a - b", "calc.sub(5, 3) == 2")),
                    ],
                )
            ]
        }
    )
    env = nightcrew_env(sim)
    add(root, env, "Subtraction", "--accept", check("calc.sub(5, 3) == 2"))
    build = start_nightcrew(root, env, "build", "--model", MODEL)
    try:
        wait_for(pidfile.exists, what="the agent's hanging command")
        build.kill()
        build.communicate()
        with db(root) as conn:
            (session,) = conn.execute("SELECT session_id FROM attempts").fetchone()
        assert session

        result = run_nightcrew(root, env, "build", "--resume", "--resume-session", "--model", MODEL)
    finally:
        kill_quietly(build.pid)
        if pidfile.exists():
            kill_quietly(int(pidfile.read_text()))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"resuming session {session}" in result.stdout
    # The resumed session's first call carries the earlier conversation.
    resumed = [r for r in server.requests if r.script == "f1"][1]
    assert resumed.assistant_turns == 2 and resumed.turn_index == 2
    with db(root) as conn:
        rows = conn.execute("SELECT state, session_id FROM attempts ORDER BY number").fetchall()
    assert [r["state"] for r in rows] == ["crashed", "passed"]
    assert rows[1]["session_id"] == session


def test_build_refuses_bad_input_in_one_line(tmp_path: Path, sim_env: SimStarter) -> None:
    root = make_project(tmp_path / "proj", "")
    _, sim = sim_env({"scripts": []})
    env = nightcrew_env(sim)
    cases = [
        (("build",), "no backlog here yet"),
        (("build", "--resume-session"), "--resume-session goes with --resume"),
        (("build", "--escalation", "haiku,,opus"), "give model names separated by commas"),
        (("backlog", "init", "NOPE.md"), "NOPE.md: no such file"),
    ]
    for args, expected in cases:
        result = run_nightcrew(root, env, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
    (root / ".nightcrew").mkdir()
    Store.open(root / ".nightcrew" / "nightcrew.db").close()  # as after a plan run
    empty = run_nightcrew(root, env, "build")
    assert empty.returncode == 2 and "the backlog is empty" in empty.stderr
    add(root, env, "One", "--accept", "true")
    resumed = run_nightcrew(root, env, "build", "--resume")
    assert resumed.returncode == 2 and "no earlier build to resume" in resumed.stderr


def test_a_feature_that_asks_a_person_waits_and_the_build_moves_on(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    ask = {
        "name": "mcp__nightcrew__request_human_input",
        "input": {"question": "Should sub round to integers?"},
    }
    _, sim = sim_env(
        {
            "scripts": [
                script("asks", ["# Feature #1 "], [{"text": "I need to ask.", "tool": ask}]),
                feature_script(2, add_function("mul", "a * b", "calc.mul(3, 4) == 12")),
            ]
        }
    )
    env = nightcrew_env(sim)
    one = add(root, env, "Subtraction", "--accept", check("calc.sub(5, 3) == 2"))
    two = add(root, env, "Multiplication", "--accept", check("calc.mul(3, 4) == 12"))

    first = run_nightcrew(root, env, "build", "--model", MODEL)

    assert first.returncode == 0, first.stdout + first.stderr
    assert f"feature #{one} waits for a person" in first.stdout
    assert "nightcrew backlog answer 1" in first.stdout
    assert "1 of 2 features passed, 1 waiting for a person (#1)" in first.stdout
    features = backlog(root, env)
    assert features[one]["state"] == "needs_input"
    assert features[one]["input_request"] == "Should sub round to integers?"
    assert features[two]["state"] == "passed"  # the build moved on
    # `backlog answer` and the answer reaching the next attempt: tests/unit/test_build_cli.py
    # (test_an_answered_question_reaches_the_next_attempt_and_the_build_finishes).


def test_no_tools_gives_the_agent_no_backlog_tools_and_init_append_adds(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    (root / "SPEC.md").write_text("# Calculator\n\nAlso subtraction.\n")
    git(root, "add", "SPEC.md")
    git(root, "commit", "-qm", "spec")
    claim = {"name": "mcp__nightcrew__claim_passing", "input": {"note": "done"}}
    new = {"name": "Subtraction", "acceptance": [check("calc.sub(5, 3) == 2")]}
    server, sim = sim_env(
        {
            "scripts": [
                script(
                    "init",
                    ["You are the initializer"],
                    [
                        {
                            "text": "Adding.",
                            "tool": {
                                "name": "mcp__nightcrew__create_features",
                                "input": {"features": [new]},
                            },
                        },
                        {"text": "Added."},
                    ],
                ),
                script(
                    "f1",
                    ["# Feature #1 "],
                    [
                        {"text": "Claiming.", "tool": claim},
                        *work_turns(add_function("mul", "a * b", "calc.mul(3, 4) == 12")),
                    ],
                ),
            ]
        }
    )
    env = nightcrew_env(sim)
    add(root, env, "Multiplication", "--accept", check("calc.mul(3, 4) == 12"))

    built = run_nightcrew(root, env, "build", "--model", MODEL, "--no-tools", "--max-features", "1")

    assert built.returncode == 0, built.stdout + built.stderr
    first = next(r for r in server.requests if r.script == "f1")
    assert "Nobody can answer questions" in first.prompt
    assert "mcp__nightcrew__" not in first.prompt
    with db(root) as conn:
        assert conn.execute("SELECT count(*) FROM feature_claims").fetchone()[0] == 0

    appended = run_nightcrew(root, env, "backlog", "init", "SPEC.md", "--append", "--model", MODEL)

    assert appended.returncode == 0, appended.stdout + appended.stderr
    assert "created 1 feature(s)" in appended.stdout
    init_prompt = next(r for r in server.requests if r.script == "init").prompt
    assert "already has 1 feature(s)" in init_prompt
    assert [f["name"] for f in backlog(root, env).values()] == ["Multiplication", "Subtraction"]
