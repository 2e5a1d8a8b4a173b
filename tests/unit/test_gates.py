"""Gates run for real on tiny generated projects and git repositories."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import psutil
import pytest

from nightcrew import gitops, proc
from nightcrew.cli.event_lines import tests_line as detection_line
from nightcrew.engine import gates
from nightcrew.engine.gates import (
    GateResult,
    GateSpec,
    TestIds,
    command_gate,
    default_gates,
    detected_tests,
    gates_passed,
    judge_tests,
    run_baseline,
    run_gates,
)

TESTS = GateSpec("tests", None, "tests")
CLEAN = GateSpec("clean", None, "clean")

CALC_TESTS = """\
def test_add():
    assert 1 + 1 == 2

def test_sub():
    assert 2 - 1 == 1

def test_known_bug():
    assert 0.1 + 0.2 == 0.3
"""


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GIT_COMMITTER_EMAIL", raising=False)


@pytest.fixture
def env() -> dict[str, str]:
    """The environment for nested runs, without this pytest's own variables."""
    drop = ("PYTEST_", "PYTHONDONTWRITEBYTECODE")  # the gates must set the latter themselves
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def put(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def git(root: Path, *args: str) -> str:
    done = proc.run(["git", "-C", str(root), *args], cwd=root, timeout_s=60)
    assert done.exit_code == 0, done.output
    return done.output


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Alice")
    git(root, "config", "user.email", "alice@example.com")
    gitops.ensure_excluded(root)
    put(root, ".gitignore", "__pycache__/\n")
    return root


def commit(root: Path) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "c")
    return git(root, "rev-parse", "HEAD").strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    put(root, "pyproject.toml", "[tool.pytest.ini_options]\n")
    put(root, "tests/test_calc.py", CALC_TESTS)
    return root


def run(
    root: Path,
    specs: list[GateSpec],
    evidence: Path,
    *,
    baseline: TestIds | None = None,
    base_sha: str | None = None,
    timeout_s: float = 120,
    env: dict[str, str] | None = None,
) -> list[GateResult]:
    return run_gates(
        specs,
        root=root,
        evidence_dir=evidence,
        baseline=baseline,
        base_sha=base_sha,
        timeout_s=timeout_s,
        env=env,
    )


# ---- detection --------------------------------------------------------------


def test_default_gates_and_description(project: Path, tmp_path: Path) -> None:
    assert default_gates(project) == [TESTS, CLEAN]
    assert detection_line(detected_tests(project)).startswith(
        "tests: pytest (auto-detected from pyproject.toml; python: "
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert default_gates(empty) == [CLEAN]
    assert detection_line(detected_tests(empty)) == (
        "tests: none found (no pytest, package.json test script, Makefile test target or go.mod)"
    )


def test_command_gate_names() -> None:
    assert command_gate(1, "ruff check src") == GateSpec(
        "gate 1: ruff check src", "ruff check src", "command"
    )
    long = command_gate(2, "mypy   --strict " + "src/very/long/path " * 10)
    assert long.name.startswith("gate 2: mypy --strict src/very")
    assert len(long.name) == len("gate 2: ") + gates.GATE_NAME_CHARS
    assert long.name.endswith("…")


# ---- the tests gate ---------------------------------------------------------


def test_baseline_then_pre_existing_failure_is_tolerated(
    project: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    baseline = run_baseline(project, tmp_path / "baseline", 120, env=env)
    assert baseline == TestIds(
        passed=frozenset({"tests/test_calc.py::test_add", "tests/test_calc.py::test_sub"}),
        failed=frozenset({"tests/test_calc.py::test_known_bug"}),
    )
    (result,) = run(project, [TESTS], tmp_path / "ev", baseline=baseline, env=env)
    assert result.passed
    assert result.exit_code == 1
    assert result.regressions == ()
    assert (result.tests_passed, result.tests_failed) == (2, 1)
    assert result.signature is None
    assert "already failing before this batch (not caused by it): " in result.digest
    assert "tests/test_calc.py::test_known_bug" in result.digest
    assert (tmp_path / "ev" / "junit.xml").is_file()
    assert result.output_path == tmp_path / "ev" / "tests.log"
    assert "1 failed, 2 passed" in result.output_path.read_text(encoding="utf-8")
    # Running the gate left nothing the harness would commit.
    assert sorted(p.name for p in project.rglob("*")) == ["pyproject.toml", "test_calc.py", "tests"]
    # Without a baseline the same run is judged on its own and fails.
    (alone,) = run(project, [TESTS], tmp_path / "ev2", env=env)
    assert not alone.passed
    assert "tests/test_calc.py::test_known_bug" in alone.digest


def test_new_failure_fails_with_ids_in_digest(
    project: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    baseline = run_baseline(project, tmp_path / "baseline", 120, env=env)
    put(project, "tests/test_new.py", "def test_feature():\n    assert 'a' == 'b'\n")
    (result,) = run(project, [TESTS], tmp_path / "ev", baseline=baseline, env=env)
    assert not result.passed
    assert result.regressions == ()
    assert result.tests is not None
    assert "tests/test_new.py::test_feature" in result.tests.failed
    assert "failing tests:\n  - tests/test_new.py::test_feature" in result.digest
    assert "AssertionError" in result.digest or "assert 'a' == 'b'" in result.digest
    assert result.signature is not None


def test_deleted_passing_test_is_a_regression(
    project: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    baseline = run_baseline(project, tmp_path / "baseline", 120, env=env)
    # Same number of passing tests as before, but a different one: counts
    # would not notice, ids do.
    put(
        project,
        "tests/test_calc.py",
        CALC_TESTS.replace("def test_sub():", "def test_mul():").replace("2 - 1", "1 * 1"),
    )
    (result,) = run(project, [TESTS], tmp_path / "ev", baseline=baseline, env=env)
    assert (result.tests_passed, result.tests_failed) == (2, 1)
    assert not result.passed
    assert result.regressions == ("tests/test_calc.py::test_sub",)
    assert "  - tests/test_calc.py::test_sub (now missing)" in result.digest
    assert result.digest.index("REGRESSIONS") < result.digest.index("already failing")


def test_no_tests_collected_is_a_pass_with_zero_tests(tmp_path: Path, env: dict[str, str]) -> None:
    root = tmp_path / "proj"
    put(root, "pytest.ini", "[pytest]\n")
    (result,) = run(root, [TESTS], tmp_path / "ev", env=env)
    assert result.passed
    assert result.exit_code == 5
    assert (result.tests_passed, result.tests_failed) == (0, 0)
    assert "no tests were collected" in result.digest


def test_custom_tests_command_timeout(project: Path, tmp_path: Path, env: dict[str, str]) -> None:
    put(project, "tests/test_slow.py", "import time\n\ndef test_slow():\n    time.sleep(60)\n")
    spec = GateSpec("tests", f"{sys.executable} -m pytest -q -p no:cacheprovider", "tests")
    (result,) = run(project, [spec], tmp_path / "ev", timeout_s=1.5, env=env)
    assert not result.passed
    assert result.timed_out
    assert result.exit_code is None
    assert result.digest.startswith("timed out after 1.5s")
    assert result.duration_s < 30


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_tests_gate_judged_on_exit_code(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    put(root, "Makefile", "test:\n\t@echo 'checking'\n\t@echo 'Error: widget broke' && exit 3\n")
    (result,) = run(root, [TESTS], tmp_path / "ev")
    assert not result.passed
    assert result.tests is None
    assert result.command == "make test"
    assert "exited with code 2" in result.digest
    assert "Error: widget broke" in result.digest
    assert "make: ***" in result.digest


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_outer_make_does_not_leak_into_the_projects_make(tmp_path: Path) -> None:
    # nightcrew started from a Makefile: the project's `make test` must run as a
    # top-level make, not as a sub-make of ours.
    root = tmp_path / "proj"
    put(root, "Makefile", "test:\n\t@echo level=$(MAKELEVEL) flags=$(MAKEFLAGS)\n")
    outer = dict(os.environ, MAKELEVEL="1", MAKEFLAGS="-k -- FOO=1", MFLAGS="-k")
    (result,) = run(root, [TESTS], tmp_path / "ev", env=outer)
    assert result.passed
    log = result.output_path.read_text() if result.output_path else ""
    assert "level=0 flags=" in log
    assert "FOO" not in log


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
def test_npm_tests_gate(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    put(root, "package.json", '{"name": "p", "version": "1.0.0", "scripts": {"test": "node t.js"}}')
    put(root, "t.js", "console.log('Tests: 1 failed, 2 passed, 3 total'); process.exit(1);\n")
    npm_env = dict(os.environ, npm_config_update_notifier="false", npm_config_cache=str(tmp_path))
    (result,) = run(root, [TESTS], tmp_path / "ev", env=npm_env)
    assert not result.passed
    assert result.command == "npm test"
    assert (result.tests_passed, result.tests_failed) == (2, 1)
    assert "summary: Tests: 1 failed, 2 passed, 3 total" in result.digest


def test_tests_gate_without_a_runner_fails(tmp_path: Path) -> None:
    (result,) = run(tmp_path, [TESTS], tmp_path / "ev")
    assert not result.passed
    assert "no test runner found" in result.digest


# ---- verdict rules ----------------------------------------------------------


def ids(
    passed: Iterable[str] = (), failed: Iterable[str] = (), skipped: Iterable[str] = ()
) -> TestIds:
    return TestIds(frozenset(passed), frozenset(failed), frozenset(skipped))


def judge(
    now: TestIds | None,
    base: TestIds | None,
    code: int | None = 0,
    *,
    timed_out: bool = False,
    zero_tests_ok: bool = False,
) -> gates.TestVerdict:
    return judge_tests(
        now,
        exit_code=code,
        timed_out=timed_out,
        baseline=base,
        timeout_s=10,
        zero_tests_ok=zero_tests_ok,
    )


def test_judge_tests_rules() -> None:
    base = ids({"a", "b"}, {"old"})
    assert judge(ids({"a", "b", "c"}), base).passed
    assert judge(ids({"a", "b"}, {"old"}), base, 1).passed
    v = judge(ids({"a", "b"}, {"new"}), base, 1)
    assert (v.passed, v.new_failures, v.regressions) == (False, ("new",), ())
    v = judge(ids({"a"}, set(), {"b"}), base)
    assert (v.passed, v.regressions, dict(v.regression_notes)) == (
        False,
        ("b",),
        {"b": "now skipped"},
    )
    v = judge(ids({"a"}, {"b"}), base, 1)
    assert v.regression_notes == {"b": "now failing"}
    # Exit code alone, without ids.
    assert judge(None, base, 0).passed
    assert not judge(None, base, 2).passed
    # Ids but a non-zero exit with no failing test: something else broke.
    assert not judge(ids({"a", "b"}), base, 3).passed
    # pytest's "no tests" code: a pass, unless baseline tests vanished.
    assert judge(ids(), None, 5, zero_tests_ok=True).passed
    assert not judge(ids(), base, 5, zero_tests_ok=True).passed
    assert not judge(ids(), None, 5).passed
    v = judge(None, base, None, timed_out=True)
    assert (v.passed, v.problems) == (False, ("timed out after 10s",))


# ---- command gates and timeouts ---------------------------------------------


def test_command_gates_all_run_and_keep_output(tmp_path: Path) -> None:
    specs = [
        command_gate(1, "echo 'src/a.py:3: error: bad type'; exit 1"),
        command_gate(2, "echo fine"),
        command_gate(3, "echo fine"),
    ]
    results = run(tmp_path, specs, tmp_path / "ev")
    assert [r.passed for r in results] == [False, True, True]
    assert not gates_passed(results)
    assert gates_passed(results[1:])
    logs = sorted(p.name for p in (tmp_path / "ev").iterdir())
    assert logs == [
        "gate-1-echo-src-a.py-3-error-bad-type-exit-1.log",
        "gate-2-echo-fine.log",
        "gate-3-echo-fine.log",
    ]
    assert "error: bad type" in results[0].digest
    assert results[0].exit_code == 1
    assert results[1].digest == "full output: ev/gate-2-echo-fine.log"


def test_same_names_get_distinct_logs(tmp_path: Path) -> None:
    specs = [GateSpec("lint", "echo one", "command"), GateSpec("lint", "echo two", "command")]
    results = run(tmp_path, specs, tmp_path / "ev")
    paths = [r.output_path for r in results]
    assert paths == [tmp_path / "ev" / "lint.log", tmp_path / "ev" / "lint-2.log"]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    spec = command_gate(1, f"sleep 60 & echo $! > {pid_file}; wait")
    (result,) = run(tmp_path, [spec], tmp_path / "ev", timeout_s=1.5)
    assert not result.passed
    assert result.timed_out
    assert result.digest.startswith("timed out after 1.5s")
    child = int(pid_file.read_text(encoding="utf-8"))
    assert not _running(child)


# ---- the clean gate ---------------------------------------------------------


def test_clean_gate_passes_with_nightcrew_state(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    put(root, "a.py", "x = 1\n")
    base = commit(root)
    put(root, ".nightcrew/runs/1/state.json", '{"token": "' + "sk-" + "a1" * 20 + '"}')
    put(root, ".nightcrew/.env", "SECRET=1\n")
    put(root, "b.py", "y = 2\n")
    put(root, ".env.example", "API_KEY=\n")
    assert all(not e.path.startswith(".nightcrew") for e in gitops.status_entries(root))
    (result,) = run(root, [CLEAN], tmp_path / "ev", base_sha=base)
    assert result.passed, result.digest
    assert result.signature is None
    assert "b.py" in (tmp_path / "ev" / "clean.log").read_text(encoding="utf-8")


def test_clean_gate_refuses_secret_files(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    put(root, "a.py", "x = 1\n")
    base = commit(root)
    put(root, ".env", "SECRET=1\n")
    (result,) = run(root, [CLEAN], tmp_path / "ev", base_sha=base)
    assert not result.passed
    assert result.digest.splitlines()[0] == (
        "refusing to commit .env: looks like a secrets file — remove it or add it to .gitignore"
    )
    assert result.signature is not None
    # Ignoring it, as the message says, makes the tree fit to commit.
    put(root, ".gitignore", "__pycache__/\n.env\n")
    (again,) = run(root, [CLEAN], tmp_path / "ev2", base_sha=base)
    assert again.passed, again.digest


def test_clean_gate_finds_secrets_committed_since_base(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    put(root, "a.py", "x = 1\n")
    base = commit(root)
    put(root, "config.py", "KEY = '" + "AKIA" + "IOSFODNN7EXAMPLE" + "'\n")
    commit(root)
    (result,) = run(root, [CLEAN], tmp_path / "ev", base_sha=base)
    assert not result.passed
    assert "refusing to commit config.py: contains what looks like an AWS access key id" in (
        result.digest
    )
    (no_base,) = run(root, [CLEAN], tmp_path / "ev2", base_sha=None)
    assert no_base.passed


def test_clean_gate_rewritten_history(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    put(root, "a.py", "x = 1\n")
    commit(root)
    put(root, "a.py", "x = 2\n")
    base = commit(root)
    git(root, "reset", "-q", "--hard", "HEAD~1")
    put(root, "a.py", "x = 3\n")
    commit(root)
    (result,) = run(root, [CLEAN], tmp_path / "ev", base_sha=base)
    assert not result.passed
    assert f"HEAD no longer contains the batch's starting commit {base[:12]}" in result.digest


def test_clean_gate_merge_in_progress(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    put(root, "f.txt", "base\n")
    base = commit(root)
    git(root, "checkout", "-q", "-b", "other")
    put(root, "f.txt", "other\n")
    commit(root)
    git(root, "checkout", "-q", "main")
    put(root, "f.txt", "main\n")
    commit(root)
    assert proc.run(["git", "merge", "-q", "other"], cwd=root, timeout_s=60).exit_code != 0
    (result,) = run(root, [CLEAN], tmp_path / "ev", base_sha=base)
    assert not result.passed
    lines = result.digest.splitlines()
    assert lines[0] == "a git merge is in progress: finish it or abort it"
    assert lines[1] == "unmerged paths (resolve the conflict): f.txt"


def test_clean_gate_outside_a_repository_fails(tmp_path: Path) -> None:
    (result,) = run(tmp_path, [CLEAN], tmp_path / "ev")
    assert not result.passed
    assert result.digest.startswith("git failed: git rev-parse")


def test_all_gates_together(project: Path, tmp_path: Path, env: dict[str, str]) -> None:
    make_repo(project)
    base = commit(project)
    baseline = run_baseline(project, tmp_path / "baseline", 120, env=env)
    put(project, "tests/test_calc.py", CALC_TESTS.replace("2 - 1 == 1", "2 - 1 == 5"))
    put(project, "id_rsa", "not really\n")
    specs = [*default_gates(project), command_gate(1, "true")]
    results = run(project, specs, tmp_path / "ev", baseline=baseline, base_sha=base, env=env)
    assert [(r.name, r.passed) for r in results] == [
        ("tests", False),
        ("clean", False),
        ("gate 1: true", True),
    ]
    assert results[0].regressions == ("tests/test_calc.py::test_sub",)
    assert "refusing to commit id_rsa" in results[1].digest
