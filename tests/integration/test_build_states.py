"""What a build says about itself afterwards: its state matches its exit code
and it speaks of features (not batches or a plan). Its status and forecast
after a feature passed are in tests/unit/test_build_cli.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    MODEL,
    make_project,
    nightcrew_env,
    run_nightcrew,
    status,
)

pytestmark = pytest.mark.cli


def check(expr: str) -> str:
    return f"{sys.executable} -c 'import calc; assert {expr}'"


def add(root: Path, env: dict[str, str], name: str, *args: str) -> int:
    result = run_nightcrew(root, env, "backlog", "add", name, *args)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[1].lstrip("#"))


def test_a_build_with_nothing_ready_exits_0_succeeds_and_says_build(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", "")
    _, sim = sim_env({"scripts": []})
    env = nightcrew_env(sim)
    skipped = add(root, env, "Power", "--accept", check("calc.pow(2, 3) == 8"))
    add(root, env, "Square", "--after", str(skipped), "--accept", check("calc.sq(3) == 9"))
    add(root, env, "Looks right", "--manual")
    assert run_nightcrew(root, env, "backlog", "skip", str(skipped)).returncode == 0

    result = run_nightcrew(root, env, "build", "--model", MODEL)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "nothing is ready: 0 of 3 features passed, 1 skipped (#1), 1 blocked, 1 manual" in out
    assert "build " in out and "Cost $0.0000" in out
    for wrong in ("run summary", "Batch", "Cost unknown", "failed"):
        assert wrong not in out
    data = status(root, env)
    assert data["run"]["state"] == "succeeded"  # as the exit code says
    assert data["run"]["kind"] == "build"
    assert "plan" not in data["run"] and "batches" not in data
    assert data["features"] == []
    assert data["run"]["cost_usd"] == 0.0
    shown = run_nightcrew(root, env, "status")
    assert shown.returncode == 0, shown.stderr
    assert "succeeded" in shown.stdout and "nightcrew build summary" in shown.stdout
    assert "Feature" in shown.stdout and "Batch" not in shown.stdout
    assert "backlog" not in shown.stdout.splitlines()[0]  # not "(backlog)" as if a plan
