"""Every command that takes a number, a path or a config value, given a bad one:
one line starting with ``nightcrew:``, exit 2, no traceback, none of pydantic's
wording, and nothing written."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.support import GIT_ENV, make_project, plan_text

PYDANTIC_WORDS = ("Input should", "valid tuple", "pydantic", "Value error", "validation error")

# (nightcrew.toml text or None, command line, what the line must say)
CASES: list[tuple[str | None, list[str], str]] = [
    (None, ["run", "PLAN.md", "--max-budget-usd", "inf"], "--max-budget-usd: must be a finite"),
    (None, ["run", "PLAN.md", "--max-budget-usd", "nan"], "--max-budget-usd: must be a finite"),
    (None, ["run", "PLAN.md", "--max-budget-usd", "-1"], "--max-budget-usd"),
    (None, ["run", "PLAN.md", "--max-budget-usd", "lots"], "--max-budget-usd"),
    (None, ["run", "PLAN.md", "--max-item-usd", "inf"], "--max-item-usd: must be a finite"),
    (None, ["run", "PLAN.md", "--attempt-timeout", "inf"], "--attempt-timeout: must be a finite"),
    (None, ["run", "PLAN.md", "--attempt-timeout", "0"], "--attempt-timeout"),
    (None, ["run", "PLAN.md", "--max-retries", "-1"], "--max-retries"),
    (None, ["run", "PLAN.md", "--max-retries", "99"], "--max-retries: must be at most 50"),
    (None, ["run", "PLAN.md", "--start-batch", "0"], "--start-batch 0"),
    (None, ["run", "PLAN.md", "--end-batch", "x"], "--end-batch"),
    (None, ["run", "NOPE.md"], "NOPE.md"),
    (None, ["run", "."], "is a directory"),
    (None, ["build", "--max-budget-usd", "inf"], "--max-budget-usd: must be a finite"),
    (None, ["build", "--max-item-usd", "-inf"], "--max-item-usd"),
    (None, ["build", "--stuck-after", "0"], "--stuck-after"),
    (None, ["build", "--stuck-after", "999"], "--stuck-after: must be at most 50"),
    (None, ["build", "--max-attempts-per-feature", "999"], "must be at most 200"),
    (None, ["build", "--max-features", "0"], "--max-features"),
    (None, ["build", "--escalation", ","], "'--escalation': ',': give model names separated"),
    (None, ["backlog", "init", "PLAN.md", "--max-budget-usd", "inf"], "must be a finite"),
    (None, ["backlog", "init", "NOPE.md"], "NOPE.md"),
    (None, ["backlog", "import", "NOPE.json"], "NOPE.json"),
    (None, ["backlog", "add", "f", "--accept", "true", "--priority", "9" * 30], "priority"),
    (None, ["backlog", "add", "f", "--priority", "soon"], "--priority"),
    (None, ["plan", "check", "NOPE.md"], "NOPE.md"),
    (None, ["usage", "--since", "soon"], "--since"),
    (None, ["usage", "--by", "fortnight"], "--by"),
    (None, ["usage", "import", "no/such/dir"], "no/such/dir"),
    (None, ["mcp", "--project", "/nonexistent"], "'/nonexistent' does not exist"),
    (None, ["no-such-command"], "no-such-command"),
    (None, ["run", "PLAN.md", "--no-such-option"], "--no-such-option"),
    ("max_budget_usd = inf\n", ["run", "PLAN.md"], "nightcrew.toml:1: max_budget_usd"),
    ("\nattempt_timeout = nan\n", ["build"], "nightcrew.toml:2: attempt_timeout"),
    ('gates = "pytest"\n', ["run", "PLAN.md"], "nightcrew.toml:1: gates: must be a list"),
    ("escalation = 3\n", ["build"], "nightcrew.toml:1: escalation: must be a list"),
    ("max_retries = 1.5\n", ["run", "PLAN.md"], "nightcrew.toml:1: max_retries"),
    (
        "[pricing.m]\ninput = -1\noutput = 1\ncache_read = 0\n"
        "cache_write_5m = 0\ncache_write_1h = 0\n",
        ["run", "PLAN.md"],
        "nightcrew.toml:2: [pricing.m]: 'input' must be a non-negative number",
    ),
    (
        "\n[pricing.m]\ninput = 1\n",
        ["build"],
        "nightcrew.toml:2: [pricing.m]: missing key 'output'",
    ),
    ('[pricing.m]\noutput = "x"\n', ["run", "PLAN.md"], "nightcrew.toml:2: pricing.m.output"),
    (
        None,
        ["run", "PLAN.md", "--agent", "nope"],
        "command line: --agent: unknown agent backend 'nope' (known: claude)",
    ),
    (None, ["build", "--agent", "nope"], "--agent: unknown agent backend 'nope' (known: claude)"),
    (
        'model = "m"\nagent = "nope"\n',
        ["run", "PLAN.md"],
        "nightcrew.toml:2: agent: unknown agent backend 'nope' (known: claude)",
    ),
    ('\nagent = "nope"\n', ["build"], "nightcrew.toml:2: agent: unknown agent backend 'nope'"),
    ('agent = "nope"\n', ["backlog", "init", "PLAN.md"], "nightcrew.toml:1: agent: unknown"),
    (
        'notify = [\n  "ntfy://ok",\n  "tgram://bad",\n]\n',
        ["build"],
        "nightcrew.toml:3: notify item 2: Apprise cannot use this tgram:// URL",
    ),
    ('notify = ["foo://x"]\n', ["plan", "check", "PLAN.md"], "nightcrew.toml:1: notify item 1"),
    (
        None,
        ["run", "PLAN.md", "--notify", "foo://x"],
        "command line: --notify: 'foo://' is not a service Apprise knows",
    ),
    (None, ["notify", "test", "--url", "nope"], "command line: --url: is not a notification URL"),
    (None, ["notify", "test"], "no notification targets: add notify = "),
]


def nightcrew(cwd: Path, *args: str, **popen: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV, "NIGHTCREW_HOME": str(cwd.parent / "home")}
    env.pop("NIGHTCREW_DEBUG", None)
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "nightcrew", *args],
        cwd=cwd,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        **popen,
    )


def assert_one_clean_line(result: subprocess.CompletedProcess[str], needle: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert "internal error" not in output
    for words in PYDANTIC_WORDS:
        assert words not in output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nightcrew: "), lines[0]
    assert needle in lines[0]


@pytest.mark.parametrize(("config", "args", "needle"), CASES, ids=[" ".join(c[1]) for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, config: str | None, args: list[str], needle: str
) -> None:
    project = make_project(tmp_path / "p", plan_text(["A"]))
    if config is not None:
        (project / "nightcrew.toml").write_text(config)
    assert_one_clean_line(nightcrew(project, *args), needle)
    if args[:2] != ["backlog", "add"]:  # adding opens (creates) the backlog, then refuses
        assert not (project / ".nightcrew" / "nightcrew.db").exists()


@pytest.mark.parametrize("args", [["run", "PLAN.md"], ["backlog", "add", "f", "--accept", "true"]])
def test_nightcrew_dir_that_is_a_file_is_one_line(tmp_path: Path, args: list[str]) -> None:
    project = make_project(tmp_path / "p", plan_text(["A"]))
    (project / ".nightcrew").write_text("not a directory\n")
    assert_one_clean_line(
        nightcrew(project, *args),
        f"cannot write .nightcrew/ in {project}: .nightcrew is a file, not a directory",
    )


def _without_root_override() -> None:
    """In the child: drop the capabilities that let root write anywhere, so a
    read-only directory is read-only for it too (as for any other user)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.parametrize("args", [["run", "PLAN.md"], ["backlog", "add", "f", "--accept", "true"]])
def test_read_only_project_is_one_line(tmp_path: Path, args: list[str]) -> None:
    project = make_project(tmp_path / "p", plan_text(["A"]))
    (tmp_path / "home").mkdir()
    project.chmod(0o555)
    try:
        popen: dict[str, object] = {}
        if os.geteuid() == 0:
            try:  # prove the drop works here before relying on it
                subprocess.run(["true"], preexec_fn=_without_root_override, check=True)
            except (subprocess.SubprocessError, OSError):
                pytest.skip("cannot drop CAP_DAC_OVERRIDE here, and root writes anywhere")
            popen["preexec_fn"] = _without_root_override
        result = nightcrew(project, *args, **popen)
    finally:
        project.chmod(0o755)
    assert_one_clean_line(result, f"cannot write .nightcrew/ in {project}: permission denied")
    assert not (project / ".nightcrew").exists()
