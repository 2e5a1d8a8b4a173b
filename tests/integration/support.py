"""Helpers for tests that run ``nightcrew`` as a user would: a real git repo, a
plan file, the real Claude Code CLI pointed at ``nightcrew.sim``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MODEL = "claude-sonnet-4-5"
# Sonnet 4.5 list prices, USD per million tokens (formats.md §3).
PRICE = {"in": 3.0, "out": 15.0, "cache_read": 0.30, "cache_5m": 3.75, "cache_1h": 6.0}

CALC = '"""calc"""\n\n\ndef add(a, b):\n    return a + b\n'
TESTS = "import calc\n\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    ).stdout


def make_project(root: Path, plan: str) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text(CALC)
    (root / "tests" / "test_calc.py").write_text(TESTS)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    (root / ".gitignore").write_text("__pycache__/\n")
    (root / "PLAN.md").write_text(plan)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def plan_text(titles: list[str]) -> str:
    parts = ["# Plan\n"]
    for number, title in enumerate(titles, 1):
        parts.append(f"## Batch {number}: {title}\n\n### Task 1: {title}\n")
    return "\n".join(parts)


def append(path: str, text: str) -> str:
    return f"cat >> {path} <<'PY'\n{text}PY"


def add_function(name: str, expr: str, test_expr: str) -> str:
    """Bash that adds ``name`` to calc.py and a test of it."""
    return (
        append("calc.py", f"\n\ndef {name}(a, b):\n    return {expr}\n")
        + "\n"
        + append("tests/test_calc.py", f"\n\ndef test_{name}():\n    assert {test_expr}\n")
    )


USAGE_TOOL = {
    "input_tokens": 1200,
    "output_tokens": 300,
    "cache_read_input_tokens": 5000,
    "cache_creation_input_tokens": 1000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 0},
}
USAGE_DONE = {**USAGE_TOOL, "output_tokens": 40}


def cost_of(*usages: Mapping[str, Any]) -> float:
    """Claude Code's own formula (formats.md §1.4) for Sonnet 4.5."""
    total = 0.0
    for u in usages:
        split = u.get("cache_creation", {})
        h1 = split.get("ephemeral_1h_input_tokens", 0)
        m5 = u.get("cache_creation_input_tokens", 0) - h1
        total += (
            u["input_tokens"] * PRICE["in"]
            + u["output_tokens"] * PRICE["out"]
            + u.get("cache_read_input_tokens", 0) * PRICE["cache_read"]
            + m5 * PRICE["cache_5m"]
            + h1 * PRICE["cache_1h"]
        ) / 1e6
    return total


def work_turns(
    command: str, usage: Mapping[str, Any] = USAGE_TOOL, done: Mapping[str, Any] = USAGE_DONE
) -> list[dict[str, Any]]:
    return [
        {
            "text": "Working on it.",
            "tool": {"name": "Bash", "input": {"command": command}},
            "usage": dict(usage),
        },
        {"text": "Done.", "usage": dict(done)},
    ]


def script(
    name: str, match: list[str], turns: list[dict[str, Any]], none: list[str] | None = None
) -> dict[str, Any]:
    return {"name": name, "match": {"all": match, "none": none or []}, "turns": turns}


BIG_USAGE = {  # one costly response: about $0.31 on Sonnet 4.5
    "input_tokens": 100_000,
    "output_tokens": 500,
    "cache_read_input_tokens": 0,
    "cache_creation_input_tokens": 0,
}


def two_costly_batches() -> dict[str, Any]:
    """A two-batch plan's scenario whose batches each cost about $0.62, for
    budget stops: batch N adds a function and its test."""
    return {
        "scripts": [
            script(
                "b1",
                ["Batch 1 of 2"],
                work_turns(add_function("one", "1", "calc.one(0, 0) == 1"), BIG_USAGE, BIG_USAGE),
            ),
            script(
                "b2",
                ["Batch 2 of 2"],
                work_turns(add_function("two", "2", "calc.two(0, 0) == 2"), BIG_USAGE, BIG_USAGE),
            ),
        ]
    }


def nightcrew_env(sim_env: Mapping[str, str]) -> dict[str, str]:
    env = {**os.environ, **GIT_ENV, **sim_env}
    env.pop("NIGHTCREW_DEBUG", None)
    return env


def run_nightcrew(
    root: Path, env: Mapping[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nightcrew", *args],
        check=False,
        cwd=root,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start_nightcrew(root: Path, env: Mapping[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nightcrew", *args],
        cwd=root,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def status(root: Path, env: Mapping[str, str]) -> dict[str, Any]:
    result = run_nightcrew(root, env, "status", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    """Poll for a condition (not a timing assumption): fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): look at its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def session_alive(sid: int) -> list[int]:
    """Live (not zombie) processes in session ``sid``: what an agent leading
    that session left running."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command name: state, ppid, pgrp, session
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def hang_command(pidfile: Path, marker: Path | None = None) -> str:
    """Bash that writes its pid and sleeps 'forever' (once, if ``marker`` is given)."""
    hang = f"echo $$ > {pidfile}; exec sleep 300"
    if marker is None:
        return hang
    return f"if [ ! -e {marker} ]; then touch {marker}; {hang}; fi"


HAIKU = "claude-haiku-4-5"
OPUS = "claude-opus-4-5"

# A plan with a small batch and a critical one, and the routing rules that
# send each to its own models (the real-CLI and the in-process routing tests).
ROUTING_PLAN = """# Plan

## Batch 1: Small

### Task 1: Add f1

## Batch 2: CRITICAL migration

**Files:**
- Create: `migrate.py`
- Modify: `calc.py`

### Task 1: Add f2
"""

ROUTING_RULES = f"""[[routing]]
name = "careful"
critical = true
models = ["{OPUS}"]

[[routing]]
name = "quick"
kind = "batch"
max_chars = 200
models = ["{HAIKU}", "{MODEL}"]
"""
