"""The prompt: a prefix that never drifts within a run, a suffix that carries the batch."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import pytest

from nightcrew.engine.gates import default_gates
from nightcrew.engine.orchestrator import gate_line
from nightcrew.engine.prompt import (
    CONTEXT_FILE_MAX_LINES,
    PreviousFailure,
    Prompt,
    prefix_sha256,
    stable_prefix,
    variable_suffix,
)

BATCHES = {
    1: ("Add the parser", "Write `parse()` in src/app/parse.py.\n\n- handle empty input\n"),
    2: ("Wire the CLI", "Add a `--dry-run` flag to `app run`.\n"),
}


def prefix(root: Path) -> str:
    return stable_prefix(
        project_root=root,
        plan_path="PLAN.md",
        plan_preamble="Use type hints everywhere.\n",
        gate_lines=["tests: pytest -q", "lint: ruff check ."],
        commit=True,
    )


def build(
    root: Path,
    number: int,
    attempt: int,
    previous: PreviousFailure | None = None,
    *,
    context_refs: tuple[str, ...] = (),
    recent_commits: tuple[str, ...] = (),
) -> Prompt:
    title, body = BATCHES[number]
    return Prompt(
        prefix=prefix(root),
        suffix=variable_suffix(
            project_root=root,
            batch_number=number,
            batch_count=len(BATCHES),
            title=title,
            body=body,
            context_refs=context_refs,
            recent_commits=recent_commits,
            attempt=attempt,
            previous=previous,
        ),
    )


def test_prefix_is_byte_identical_across_every_attempt_of_a_run(tmp_path: Path) -> None:
    prompts = []
    for number in BATCHES:
        for attempt in (1, 2, 3):
            previous = (
                PreviousFailure(attempt - 1, "failed", f"FAILED tests/test_{number}.py::t{attempt}")
                if attempt > 1
                else None
            )
            prompts.append(
                build(tmp_path, number, attempt, previous, recent_commits=(f"abc{attempt} c",))
            )
    assert len({p.prefix for p in prompts}) == 1
    assert len({p.prefix_sha256 for p in prompts}) == 1
    assert len({p.sha256 for p in prompts}) == len(prompts)
    assert prompts[0].text.startswith(prompts[0].prefix + "\n\n")


def test_prefix_holds_the_run_wide_facts_and_nothing_of_a_batch(tmp_path: Path) -> None:
    text = prefix(tmp_path)
    assert f"Project root: {tmp_path}" in text
    assert "Plan: PLAN.md" in text
    assert "Use type hints everywhere." in text
    assert "- tests: pytest -q\n- lint: ruff check ." in text
    for title, body in BATCHES.values():
        assert title not in text
        assert body.strip().splitlines()[0] not in text
    assert "Batch" not in text
    assert "attempt" not in text.lower()


def test_prefix_says_whether_the_agent_may_commit(tmp_path: Path) -> None:
    def make(commit: bool) -> str:
        return stable_prefix(
            project_root=tmp_path, plan_path="p.md", plan_preamble="", gate_lines=[], commit=commit
        )

    assert "You may commit" in make(True)
    no = make(False)
    assert "Do not commit" in no
    assert "(no gates configured)" in no
    assert "## About this plan" not in no


def test_suffix_carries_the_batch_body_verbatim(tmp_path: Path) -> None:
    prompt = build(tmp_path, 1, 1)
    assert prompt.suffix.startswith("# Batch 1 of 2: Add the parser\n\n")
    assert BATCHES[1][1].strip() in prompt.suffix
    assert "previous attempt" not in prompt.suffix


def test_context_files_are_included_and_long_ones_truncated(tmp_path: Path) -> None:
    (tmp_path / "short.py").write_text("x = 1\ny = 2\n")
    lines = [f"line {n}" for n in range(1, 301)]
    (tmp_path / "long.txt").write_text("\n".join(lines) + "\n")
    suffix = build(tmp_path, 1, 1, context_refs=("short.py", "long.txt", "missing.md")).suffix

    assert "### short.py\n```\nx = 1\ny = 2\n```" in suffix
    long_block = suffix.split("### long.txt\n", 1)[1].split("### missing.md", 1)[0]
    assert f"line {CONTEXT_FILE_MAX_LINES}\n… (truncated)\n```" in long_block
    assert "line 200\n" in long_block
    assert "line 201" not in long_block
    assert "### missing.md\n(could not read:" in suffix


def test_a_file_of_exactly_the_limit_is_not_marked_truncated(tmp_path: Path) -> None:
    lines = [f"line {n}" for n in range(1, CONTEXT_FILE_MAX_LINES + 1)]
    (tmp_path / "exact.txt").write_text("\n".join(lines) + "\n")
    suffix = build(tmp_path, 1, 1, context_refs=("exact.txt",)).suffix
    assert f"line {CONTEXT_FILE_MAX_LINES}\n```" in suffix
    assert "truncated" not in suffix


def test_recent_commits_are_listed(tmp_path: Path) -> None:
    suffix = build(tmp_path, 2, 1, recent_commits=("a1b2c3d Add parser", "d4e5f6a Init")).suffix
    assert "## Recent commits\na1b2c3d Add parser\nd4e5f6a Init" in suffix


@pytest.mark.parametrize(
    ("outcome", "wording"),
    [
        ("failed", "The previous attempt failed the harness's checks."),
        ("timed_out", "The previous attempt ran out of time."),
        ("crashed", "The previous attempt ended with an error."),
    ],
)
def test_previous_attempt_digest_with_its_wording(
    tmp_path: Path, outcome: str, wording: str
) -> None:
    digest = "tests: 1 failed\nFAILED tests/test_parse.py::test_empty - assert None == []\n"
    suffix = build(tmp_path, 1, 3, PreviousFailure(2, outcome, digest)).suffix
    assert f"## This is attempt 3. {wording}" in suffix
    assert f"```\n{digest.strip()}\n```" in suffix
    # the digest comes after the batch text
    assert suffix.index(BATCHES[1][1].strip()) < suffix.index(digest.strip())


@pytest.mark.parametrize(
    ("files", "command"),
    [
        ({"pyproject.toml": "[tool.pytest.ini_options]\n"}, ".venv/bin/python -m pytest -q"),
        ({"package.json": '{"scripts": {"test": "jest"}}'}, "npm test"),
        ({"Makefile": "test:\n\techo ok\n"}, "make test"),
        ({"go.mod": "module example.com/x\n"}, "go test ./..."),
    ],
)
def test_prompt_names_the_auto_detected_test_command(
    tmp_path: Path, files: dict[str, str], command: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    venv_python = tmp_path / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text("#!/bin/sh\n")
    venv_python.chmod(0o755)
    prefix = stable_prefix(
        project_root=tmp_path,
        plan_path="p.md",
        plan_preamble="",
        gate_lines=[gate_line(s) for s in default_gates(tmp_path)],
        commit=True,
    )
    assert f"- tests: `{command}`\n" in prefix
    assert "None" not in prefix


def test_prompt_names_the_interpreter_the_pytest_gate_uses(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("")
    (spec,) = [s for s in default_gates(tmp_path) if s.kind == "tests"]
    assert gate_line(spec) == f"tests: `{sys.executable} -m pytest -q`"


def test_the_prefix_is_hashed_once_for_every_attempt_of_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = stable_prefix(
        project_root=tmp_path,
        plan_path="PLAN.md",
        plan_preamble="",
        gate_lines=["tests: `pytest -q`"],
        commit=True,
    )
    real = hashlib.sha256
    hashed: list[bytes] = []

    def counting(data: bytes = b"") -> Any:
        hashed.append(data)
        return real(data)

    monkeypatch.setattr(hashlib, "sha256", counting)
    run_sha = prefix_sha256(prefix)  # stored with the run
    attempt_shas = {Prompt(prefix, f"# attempt {n}").prefix_sha256 for n in range(1, 6)}
    assert attempt_shas == {run_sha} == {real(prefix.encode()).hexdigest()}
    assert hashed.count(prefix.encode()) == 1
