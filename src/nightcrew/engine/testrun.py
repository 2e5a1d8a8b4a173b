"""Find a project's test runner, run it, and read back which tests passed.

Results are test *identities*, not counts: pytest through its junit XML
report, ``go test -json`` through its event stream. ``npm test`` and
``make test`` give no ids; they are judged on their exit code.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import sys
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nightcrew import proc

RunnerKind = Literal["pytest", "npm", "make", "go", "custom"]

NPM_PLACEHOLDER = "no test specified"
NONE_FOUND = "none found (no pytest, package.json test script, Makefile test target or go.mod)"
# pytest's "no tests were collected" exit code.
PYTEST_NO_TESTS = 5


@dataclass(frozen=True)
class TestIds:
    """Structured results of one test run. ``failed`` includes errors."""

    __test__ = False  # not a pytest test class

    passed: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()
    skipped: frozenset[str] = frozenset()

    @property
    def all(self) -> frozenset[str]:
        return self.passed | self.failed | self.skipped


@dataclass(frozen=True)
class Runner:
    kind: RunnerKind
    source: str  # what it was detected from, e.g. "pyproject.toml"
    python: Path | None = None  # pytest only
    command: str | None = None  # custom only: the user's shell string


@dataclass(frozen=True)
class TestRun:
    """One finished run of a test runner."""

    __test__ = False

    runner: Runner
    command: str  # as shown to a person
    completed: proc.Completed
    text: str  # readable output (for go: rebuilt from the json events)
    ids: TestIds | None  # None when the runner gave no ids
    output_path: Path


# ---- detection --------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _ini_has_section(path: Path, section: str) -> bool:
    text = _read(path)
    if text is None:
        return False
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return f"[{section}]" in text
    return parser.has_section(section)


def _pyproject_has_pytest(path: Path) -> bool:
    text = _read(path)
    if text is None:
        return False
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return "[tool.pytest" in text
    tool = data.get("tool")
    return isinstance(tool, dict) and isinstance(tool.get("pytest"), dict)


def _has_test_files(directory: Path) -> bool:
    if not directory.is_dir():
        return False
    for path in directory.rglob("*.py"):
        if path.name.startswith("test_") or path.name.endswith("_test.py"):
            return True
    return False


def _pytest_source(root: Path) -> str | None:
    if _pyproject_has_pytest(root / "pyproject.toml"):
        return "pyproject.toml"
    if (root / "pytest.ini").is_file():
        return "pytest.ini"
    if _ini_has_section(root / "setup.cfg", "tool:pytest"):
        return "setup.cfg"
    if _ini_has_section(root / "tox.ini", "pytest"):
        return "tox.ini"
    if (root / "conftest.py").is_file():
        return "conftest.py"
    for name in ("tests", "test"):
        if _has_test_files(root / name):
            return f"{name}/"
    return None


def project_python(root: Path) -> Path:
    """The project's own virtualenv python, else the one running nightcrew."""
    for venv in (".venv", "venv"):
        candidate = root / venv / "bin" / "python"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return Path(sys.executable)


def _npm_has_test(root: Path) -> bool:
    text = _read(root / "package.json")
    if text is None:
        return False
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return False
    scripts = data.get("scripts") if isinstance(data, dict) else None
    test = scripts.get("test") if isinstance(scripts, dict) else None
    return isinstance(test, str) and bool(test.strip()) and NPM_PLACEHOLDER not in test


def _makefile(root: Path) -> Path | None:
    for name in ("GNUmakefile", "makefile", "Makefile"):
        if (root / name).is_file():
            return root / name
    return None


def _make_has_test(makefile: Path) -> bool:
    """True when a rule line (``test:`` or ``all test: deps``) names ``test``."""
    for line in (_read(makefile) or "").splitlines():
        if not line or line[0].isspace() or line.startswith("#"):
            continue
        head, sep, rest = line.partition(":")
        if sep and not rest.startswith("=") and "=" not in head and "test" in head.split():
            return True
    return False


def detect_runner(root: Path) -> Runner | None:
    """pytest, then ``npm test``, then ``make test``, then ``go test``."""
    source = _pytest_source(root)
    if source is not None:
        return Runner("pytest", source, python=project_python(root))
    if _npm_has_test(root):
        return Runner("npm", "package.json")
    makefile = _makefile(root)
    if makefile is not None and _make_has_test(makefile):
        return Runner("make", makefile.name)
    if (root / "go.mod").is_file():
        return Runner("go", "go.mod")
    return None


def shown_command(root: Path, runner: Runner) -> str:
    """The command a person (or the agent, in the project root) types to run
    these tests: what the gate runs, without the harness's report options."""
    if runner.kind == "pytest":
        python = runner.python or Path(sys.executable)
        inside = python.is_absolute() and python.is_relative_to(root)
        return f"{shlex.quote(str(python.relative_to(root) if inside else python))} -m pytest -q"
    if runner.kind == "go":
        return "go test ./..."
    if runner.kind == "custom":
        return runner.command or ""
    return f"{runner.kind} test"


def describe_runner(root: Path, runner: Runner | None) -> str:
    if runner is None:
        return f"tests: {NONE_FOUND}"
    if runner.kind == "custom":
        return f"tests: {runner.command} (configured)"
    detail = f"auto-detected from {runner.source}"
    if runner.python is not None:
        shown = runner.python
        with_root = shown.is_relative_to(root)
        detail += f"; python: {shown.relative_to(root) if with_root else shown}"
    return f"tests: {runner.kind} ({detail})"


# ---- running ----------------------------------------------------------------


def runner_argv(runner: Runner, junit_path: Path) -> list[str]:
    if runner.kind == "pytest":
        python = str(runner.python or sys.executable)
        return [
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit_path}",
            "-o",
            "junit_family=xunit1",
        ]
    if runner.kind == "npm":
        return ["npm", "test"]
    if runner.kind == "make":
        return ["make", "test"]
    if runner.kind == "go":
        return ["go", "test", "-json", "./..."]
    return proc.shell_argv(runner.command or "true")


_OUTER_MAKE_VARS = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


def gate_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """The environment a gate command runs in: ``env`` (default: ours) made
    non-interactive and kept from leaving files the harness would commit."""
    merged = dict(os.environ if env is None else env)
    # An outer make (nightcrew started from a Makefile) must not hand its
    # jobserver, flags and recursion level to the project's own `make test`.
    for name in _OUTER_MAKE_VARS:
        merged.pop(name, None)
    # Tools that would otherwise wait for a terminal (jest --watch) run once.
    merged.setdefault("CI", "true")
    # No __pycache__ directories in projects that do not ignore them.
    merged.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return merged


def _test_env(env: Mapping[str, str] | None, junit_path: Path, custom: bool) -> dict[str, str]:
    merged = gate_env(env)
    if custom:
        # A configured command that runs pytest still leaves a junit report.
        extra = f"--junitxml={junit_path} -o junit_family=xunit1"
        merged["PYTEST_ADDOPTS"] = f"{merged.get('PYTEST_ADDOPTS', '')} {extra}".strip()
    return merged


def run_tests(
    runner: Runner,
    *,
    root: Path,
    evidence_dir: Path,
    timeout_s: float,
    log_name: str = "tests.log",
    env: Mapping[str, str] | None = None,
) -> TestRun:
    """Run the tests, keep the full output in ``evidence_dir`` and parse ids."""
    evidence_dir = evidence_dir.resolve()
    evidence_dir.mkdir(parents=True, exist_ok=True)
    junit = evidence_dir / "junit.xml"
    junit.unlink(missing_ok=True)
    argv = runner_argv(runner, junit)
    log = evidence_dir / log_name
    raw_log = evidence_dir / (log.stem + ".json.log") if runner.kind == "go" else log
    completed = proc.run(
        argv,
        cwd=root,
        timeout_s=timeout_s,
        env=_test_env(env, junit, runner.kind == "custom"),
        output_file=raw_log,
    )
    text = completed.output
    ids: TestIds | None = None
    if runner.kind == "go":
        ids, text = parse_go_json(completed.output)
        log.write_text(text, encoding="utf-8")
        if not (ids.passed or ids.failed or ids.skipped):
            ids = None
    elif not completed.timed_out and junit.is_file():
        ids = parse_junit(junit, root)
    command = runner.command if runner.kind == "custom" and runner.command else shlex.join(argv)
    return TestRun(runner, command, completed, text, ids, log)


# ---- parsing ----------------------------------------------------------------


def _module_file(root: Path, parts: list[str]) -> int:
    """How many leading dotted ``parts`` name a ``.py`` file under ``root``
    (0 when none do)."""
    for k in range(len(parts), 0, -1):
        if (root.joinpath(*parts[: k - 1]) / f"{parts[k - 1]}.py").is_file():
            return k
    return 0


def junit_case_id(classname: str, name: str, file: str | None, root: Path) -> str:
    """A readable, stable id such as ``tests/test_calc.py::TestX::test_add``."""
    parts = [p for p in classname.split(".") if p] if classname else []
    if not parts:
        # A collection error: the name is the module's dotted path.
        dotted = [p for p in name.split(".") if p]
        k = _module_file(root, dotted)
        if k == len(dotted) and k:
            return "/".join(dotted) + ".py"
        return name
    k = _module_file(root, parts)
    if k:
        return "::".join(["/".join(parts[:k]) + ".py", *parts[k:], name])
    if file and file.endswith(".py"):
        module = file[:-3].replace("/", ".")
        if classname == module or classname.startswith(module + "."):
            rest = [p for p in classname[len(module) :].split(".") if p]
            return "::".join([file, *rest, name])
    return f"{classname}::{name}"


def parse_junit(path: Path, root: Path) -> TestIds | None:
    """Ids from a junit XML report; None when the file cannot be read."""
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError):
        return None
    passed: set[str] = set()
    failed: set[str] = set()
    skipped: set[str] = set()
    for case in tree.iter("testcase"):
        case_id = junit_case_id(
            case.get("classname", ""), case.get("name", ""), case.get("file"), root
        )
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            failed.add(case_id)
        elif "skipped" in tags:
            skipped.add(case_id)
        else:
            passed.add(case_id)
    skipped -= failed
    passed -= failed | skipped
    return TestIds(frozenset(passed), frozenset(failed), frozenset(skipped))


def parse_go_json(output: str) -> tuple[TestIds, str]:
    """Ids (``pkg/TestName``) and the readable text from ``go test -json``.

    A package that fails without any failing test (a build error) is reported
    as the package itself failing."""
    results: dict[str, str] = {}
    packages_failed: set[str] = set()
    packages_with_failing_test: set[str] = set()
    text: list[str] = []
    for line in output.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            text.append(line + "\n")
            continue
        if not isinstance(event, dict):
            text.append(line + "\n")
            continue
        if isinstance(event.get("Output"), str):
            text.append(event["Output"])
        action, package, test = event.get("Action"), event.get("Package"), event.get("Test")
        if action not in ("pass", "fail", "skip") or not isinstance(package, str):
            continue
        if isinstance(test, str):
            results[f"{package}/{test}"] = action
            if action == "fail":
                packages_with_failing_test.add(package)
        elif action == "fail":
            packages_failed.add(package)
    for package in packages_failed - packages_with_failing_test:
        results[package] = "fail"
    ids = TestIds(
        frozenset(k for k, v in results.items() if v == "pass"),
        frozenset(k for k, v in results.items() if v == "fail"),
        frozenset(k for k, v in results.items() if v == "skip"),
    )
    return ids, "".join(text)
