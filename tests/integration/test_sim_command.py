"""``nightcrew sim`` as a person uses it: start it, paste its export lines into the
environment of ``nightcrew run`` on a project, stop it with Ctrl-C. The real Claude
Code CLI does the example scenario's edits."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.support import (
    GIT_ENV,
    MODEL,
    git,
    kill_quietly,
    make_project,
    plan_text,
    run_nightcrew,
)

pytestmark = pytest.mark.cli


def start_sim(env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``nightcrew sim`` running, and the variables its export lines set."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "nightcrew", "sim"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    assert sim.stdout is not None
    exports: dict[str, str] = {}
    for line in sim.stdout:  # blocks until the next line: no timing assumption
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").rstrip("\n").partition("=")
            exports[name] = shlex.split(value)[0]
        if "CLAUDE_CONFIG_DIR" in exports:
            return sim, exports
    kill_quietly(sim.pid)
    raise AssertionError(f"nightcrew sim printed no env lines: {sim.communicate()}")


def stop_sim(sim: subprocess.Popen[str]) -> tuple[int, str, str]:
    sim.send_signal(signal.SIGINT)  # what Ctrl-C sends
    out, err = sim.communicate(timeout=60)
    return sim.returncode, out, err


def test_the_example_scenario_edits_a_project_through_nightcrew_run(tmp_path: Path) -> None:
    env = {**os.environ, **GIT_ENV, "HOME": str(tmp_path / "home")}
    env.pop("NIGHTCREW_DEBUG", None)
    root = make_project(tmp_path / "project", plan_text(["Greeting"]))
    sim, exports = start_sim(env)
    try:
        assert exports["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
        result = run_nightcrew(root, {**env, **exports}, "run", "PLAN.md", "--model", MODEL)
    finally:
        code, out, err = stop_sim(sim)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (code, err) == (0, ""), out + err  # Ctrl-C: a clean stop, no traceback
    assert "def greet(name):" in (root / "nightcrew_sim.py").read_text()
    assert git(root, "log", "--format=%s").splitlines()[0] == "Batch 1: Greeting"
    assert git(root, "status", "--porcelain") == ""  # the batch's work is committed
    committed = git(root, "show", "--name-only", "--format=", "HEAD").split()
    assert {"nightcrew_sim.py", "tests/test_nightcrew_sim_1.py"} <= set(committed)
    assert "gate tests: passed (2 passed)" in result.stdout  # the added test ran and passed
    # The sim's sessions went to the config dir it printed, not to ~/.claude.
    assert list(Path(exports["CLAUDE_CONFIG_DIR"]).glob("projects/*/*.jsonl"))
