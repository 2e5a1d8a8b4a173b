"""The command line as a person meets it: help, bad input, plan check, the demo.

Every bad input must end in one clear line (file:line where there is a file),
exit code 2, and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.support import GIT_ENV, make_project, plan_text

PLAN = """# Plan

Some preamble.

## Batch 1: Setup

context_refs: calc.py

**Files:**
- Create: `src/app.py`
- Modify: `calc.py`

### Task 1: Do a thing

```markdown
## Batch 7: inside a fence
```

## Batch 2: CRITICAL migration

### Task 1: Migrate
### Task 2: Verify
"""


def nightcrew(cwd: Path, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV}
    if home is not None:
        env["HOME"] = str(home)
    env.pop("NIGHTCREW_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "nightcrew", *args],
        cwd=cwd,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def assert_clean_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line, not a wall of text
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "p", PLAN)


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = nightcrew(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("run", "plan", "status", "demo"):
        assert command in result.stdout


def test_plan_check_json(project: Path) -> None:
    result = nightcrew(project, "plan", "check", "PLAN.md", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [b["number"] for b in data["batches"]] == [1, 2]  # the fenced "Batch 7" is text
    first, second = data["batches"]
    assert first == {
        "number": 1,
        "title": "Setup",
        "line": 5,
        "tasks": [{"number": 1, "title": "Do a thing"}],
        "context_refs": ["calc.py"],
        "files": {"create": ["src/app.py"], "modify": ["calc.py"]},
        "critical": False,
        "no_change_ok": False,
    }
    assert second["critical"] is True
    assert [t["title"] for t in second["tasks"]] == ["Migrate", "Verify"]


def test_plan_check_human_output(project: Path) -> None:
    result = nightcrew(project, "plan", "check", "PLAN.md")
    assert result.returncode == 0
    assert (
        "Batch 2: CRITICAL migration (critical: a failure stops the run) — 2 task(s)"
        in result.stdout
    )
    assert "[CRITICAL]" not in result.stdout
    assert "PLAN.md: 2 batch(es) OK" in result.stdout


BAD_PLAN = "### Task 1: early\n## Batch 2: b\nx\n## Batch 1: a\nx\n## Batch 2: again\nx\n"


def test_plan_check_lists_every_error(project: Path) -> None:
    (project / "BAD.md").write_text(BAD_PLAN)
    result = nightcrew(project, "plan", "check", "BAD.md")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "nightcrew: BAD.md:1: task 1 is outside a batch: tasks go under a '## Batch N: title'"
        " header",
        "nightcrew: BAD.md:4: batch 1 comes after batch 2",
        "nightcrew: BAD.md:6: duplicate batch 2 (first at line 2)",
    ]


def test_plan_check_json_prints_the_errors_as_json(project: Path) -> None:
    (project / "BAD.md").write_text(BAD_PLAN)
    result = nightcrew(project, "plan", "check", "BAD.md", "--json")
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert data["batches"] == []
    assert [(e["line"], e["message"][:22]) for e in data["errors"]] == [
        (1, "task 1 is outside a ba"),
        (4, "batch 1 comes after ba"),
        (6, "duplicate batch 2 (fir"),
    ]
    assert "Traceback" not in result.stderr


def test_a_trailing_untitled_empty_batch_is_a_warning(project: Path) -> None:
    (project / "TAIL.md").write_text("## Batch 1: a\nx\n\n## Batch 2: b\ny\n\n## Batch 3:\n")
    result = nightcrew(project, "plan", "check", "TAIL.md")
    assert result.returncode == 0, result.stderr
    assert "Batch 3: (no title) (empty: will be skipped) — 0 task(s)" in result.stdout
    assert "TAIL.md: 3 batch(es) OK" in result.stdout
    assert "TAIL.md:7: warning: batch 3 is empty and will be skipped" in result.stderr


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("# nothing\n", "BAD.md", "no batches"),
        ("## Batch 1: a\n\n## Batch 1: b\n", "BAD.md:3", "duplicate batch 1"),
        ("## Batch 2: a\n\n## Batch 1: b\n", "BAD.md:3", "batch 1 comes after batch 2"),
        ("### Task 1: x\n## Batch 1: a\n", "BAD.md:1", "outside a batch"),
        ("## Batch 1: a\n\ncontext_refs: missing.py\n", "BAD.md:3", "missing.py"),
    ],
)
def test_plan_errors_are_one_line_with_file_and_line(
    project: Path, text: str, where: str, what: str
) -> None:
    (project / "BAD.md").write_text(text)
    for command in (["plan", "check", "BAD.md"], ["run", "BAD.md"]):
        assert_clean_error(nightcrew(project, *command), 2, where, what)


def test_missing_plan_file(project: Path) -> None:
    assert_clean_error(nightcrew(project, "run", "NOPE.md"), 2, "NOPE.md")


def test_not_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "PLAN.md").write_text(plan_text(["A"]))
    assert_clean_error(nightcrew(tmp_path, "run", "PLAN.md"), 2, "not inside a git repository")


def test_bad_config_names_file_and_line(project: Path) -> None:
    (project / "nightcrew.toml").write_text('model = "x"\n\nmax_retries = "many"\n')
    assert_clean_error(nightcrew(project, "run", "PLAN.md"), 2, "nightcrew.toml:3", "max_retries")
    (project / "nightcrew.toml").write_text("on_failure = 'explode'\n")
    assert_clean_error(nightcrew(project, "run", "PLAN.md"), 2, "nightcrew.toml:1", "on_failure")
    (project / "nightcrew.toml").write_text("[broken\n")
    assert_clean_error(nightcrew(project, "run", "PLAN.md"), 2, "nightcrew.toml:1", "TOML")
    (project / "nightcrew.toml").write_text("colour = 'blue'\n")
    assert_clean_error(nightcrew(project, "run", "PLAN.md"), 2, "unknown setting 'colour'")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--start-batch", "9"], "--start-batch 9: the plan has no batch 9"),
        (["--start-batch", "2", "--end-batch", "1"], "comes after --end-batch"),
        (["--max-budget-usd", "-1"], "--max-budget-usd"),
        (["--on-failure", "explode"], "--on-failure"),
        (["--resume"], "no earlier run of this plan to resume"),
    ],
)
def test_bad_options(project: Path, args: list[str], needle: str) -> None:
    result = nightcrew(project, "run", "PLAN.md", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    # nothing half-written: no run was recorded
    assert not (project / ".nightcrew" / "nightcrew.db").exists() or "--resume" in args


def test_status_before_any_run(project: Path) -> None:
    assert_clean_error(nightcrew(project, "status", "--json"), 2, "no nightcrew run here yet")


@pytest.mark.cli
def test_demo_runs_offline_and_shows_the_retry(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    result = nightcrew(tmp_path, "demo", home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "every batch passed" in out
    assert "attempt 2's prompt carried the failing test" in out
    for subject in ("Batch 1: Subtraction", "Batch 2: Multiplication", "Batch 3: Division"):
        assert subject in out
    assert "Traceback" not in result.stderr
    # the throw-away demo repository is not added to the user's project registry
    assert not (Path(os.environ["NIGHTCREW_HOME"]) / "usage.db").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--since", "yesterday"], "expected a date like 2026-11-21, got 'yesterday'"),
        (["--since", "2026-11-21", "--until", "2026-11-01"], "is after --until 2026-11-01"),
        (["--until", "2026-02-30"], "--until"),
        (["--json", "--csv"], "--json and --csv: choose one"),
        (["--run", "nope"], "--run nope: no such run"),
        (["--by", "fortnight"], "--by"),
        (["--source", "transcripts", "--by", "item"], "applies to nightcrew's own runs"),
        (["--source", "transcripts", "--run", "x"], "applies to nightcrew's own runs"),
        (["import", "no/such/dir"], "no/such/dir: no such file or directory"),
    ],
)
def test_usage_bad_input(project: Path, args: list[str], needle: str) -> None:
    from nightcrew.store.records import Store

    Store.open(project / ".nightcrew" / "nightcrew.db").close()
    assert_clean_error(nightcrew(project, "usage", *args), 2, needle)


def test_usage_before_any_run(project: Path) -> None:
    assert_clean_error(nightcrew(project, "usage"), 2, "no nightcrew run here yet")


def test_usage_with_a_corrupt_global_database(project: Path) -> None:
    home = Path(os.environ["NIGHTCREW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "usage.db").write_bytes(b"this is not a database" * 100)
    result = nightcrew(project, "usage", "--source", "transcripts")
    assert_clean_error(result, 2, "usage.db")
    assert (home / "usage.db").read_bytes().startswith(b"this is not")  # left as it was


def test_usage_import_with_no_transcripts_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    result = nightcrew(tmp_path, "usage", "import", home=home)
    assert_clean_error(result, 2, "no Claude Code transcripts found", "name a path")
