"""Model routing rules end to end: the real Claude Code CLI pointed at
nightcrew.sim, which records the model each session asked for."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    HAIKU,
    MODEL,
    OPUS,
    add_function,
    git,
    make_project,
    nightcrew_env,
    run_nightcrew,
    script,
    work_turns,
)
from tests.integration.support import ROUTING_PLAN as PLAN
from tests.integration.support import ROUTING_RULES as RULES

pytestmark = pytest.mark.cli


def works(n: int, total: int, model: str | None = None) -> dict[str, Any]:
    """Batch ``n`` adds f<n> and its test (on ``model`` only, when given)."""
    found = script(
        f"b{n}",
        [f"Batch {n} of {total}"],
        work_turns(add_function(f"f{n}", str(n), f"calc.f{n}(0, 0) == {n}")),
    )
    if model is not None:
        found["match"]["model"] = model
        found["name"] = f"b{n}-{model}"
    return found


def configure(root: Path, text: str) -> None:
    """The project's nightcrew.toml, committed (a run refuses a dirty tree)."""
    (root / "nightcrew.toml").write_text(text)
    git(root, "add", "nightcrew.toml")
    git(root, "commit", "-q", "-m", "config")


def events(root: Path, kind: str) -> list[dict[str, Any]]:
    with sqlite3.connect(root / ".nightcrew" / "nightcrew.db") as conn:
        rows = conn.execute(
            "SELECT payload_json FROM events WHERE kind = ? ORDER BY id", (kind,)
        ).fetchall()
    return [json.loads(r[0]) for r in rows]


def first_models(server: Any) -> list[tuple[str | None, str | None]]:
    """(script, model) of each session's first request."""
    return [(r.script, r.model) for r in server.requests if r.turn_index == 0 and r.script]


def test_a_critical_batch_and_a_small_batch_run_on_the_models_their_rules_give(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "p", PLAN)
    configure(root, RULES)
    server, sim = sim_env({"scripts": [works(1, 2), works(2, 2)]})
    env = nightcrew_env(sim)

    result = run_nightcrew(root, env, "run", "PLAN.md")

    assert result.returncode == 0, result.stdout + result.stderr
    assert first_models(server) == [("b1", HAIKU), ("b2", OPUS)]
    routed = events(root, "routing")
    assert [(e["item"], e["rule"], e["models"]) for e in routed] == [
        ("batch 1", "quick", [HAIKU, MODEL]),
        ("batch 2", "careful", [OPUS]),
    ]
    assert routed[1]["why"] == "rule 'careful' matched: CRITICAL"
    assert routed[0]["why"].startswith("rule 'quick' matched: kind batch, ")


def test_plan_check_and_dry_runs_say_which_rule_chose_each_chain(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", PLAN)
    configure(root, RULES)
    env = nightcrew_env({})

    text = run_nightcrew(root, env, "plan", "check", "PLAN.md")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[2].startswith(f"  models: {HAIKU} → {MODEL} (rule 'quick' matched: kind batch, ")
    assert lines[5] == f"  models: {OPUS} (rule 'careful' matched: CRITICAL)"

    shown = json.loads(run_nightcrew(root, env, "plan", "check", "PLAN.md", "--json").stdout)
    assert [b["routing"]["rule"] for b in shown["batches"]] == ["quick", "careful"]
    assert shown["batches"][1]["routing"] == {
        "rule": "careful",
        "models": [OPUS],
        "why": "rule 'careful' matched: CRITICAL",
    }

    dry = run_nightcrew(root, env, "run", "PLAN.md", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"  models: {OPUS} (rule 'careful' matched: CRITICAL)" in dry.stdout
    assert "models when no rule matches: the agent's default; on failure: retry" in dry.stdout
    overridden = run_nightcrew(root, env, "run", "PLAN.md", "--dry-run", "--model", "m-1")
    assert "  models: m-1 (default: --model on the command line overrides the rules)" in (
        overridden.stdout
    )

    added = run_nightcrew(
        root, env, "backlog", "add", "Docs", "--category", "docs", "--accept", "true"
    )
    assert added.returncode == 0, added.stderr
    configure(
        root, RULES + f'\n[[routing]]\nname = "docs"\ncategory = "docs"\nmodels = ["{HAIKU}"]\n'
    )
    build = run_nightcrew(root, env, "build", "--dry-run")
    assert build.returncode == 0, build.stderr
    assert f"  models: {HAIKU} (rule 'docs' matched: category docs)" in build.stdout


def test_without_rules_plan_check_and_dry_run_say_nothing_new(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", PLAN)
    env = nightcrew_env({})
    assert "models:" not in run_nightcrew(root, env, "plan", "check", "PLAN.md").stdout
    shown = json.loads(run_nightcrew(root, env, "plan", "check", "PLAN.md", "--json").stdout)
    assert all("routing" not in b for b in shown["batches"])
    dry = run_nightcrew(root, env, "run", "PLAN.md", "--dry-run").stdout
    assert "  models:" not in dry and "models: the agent's default; on failure: retry" in dry


def test_a_bad_rule_is_one_line_with_file_and_line_before_any_agent(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "p", PLAN)
    configure(root, 'model = "m"\n\n[[routing]]\nname = "q"\nkind = "review"\nmodels = ["a"]\n')
    server, sim = sim_env({"scripts": []})
    env = nightcrew_env(sim)
    for command in (["run", "PLAN.md"], ["plan", "check", "PLAN.md"], ["build"]):
        result = run_nightcrew(root, env, *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("nightcrew: ") and "Traceback" not in result.stderr
        assert line.endswith(
            "nightcrew.toml:5: routing rule 1 'q': kind must be one of init, batch, feature,"
            " conflict, summary, got 'review'"
        ), command
    assert not server.requests
    assert not (root / ".nightcrew").exists()
