"""Test-runner detection, real runs on tiny generated projects, id parsing."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from nightcrew.engine import testrun
from nightcrew.engine.testrun import Runner, TestIds, detect_runner, parse_junit

needs_npm = pytest.mark.skipif(
    shutil.which("npm") is None or shutil.which("node") is None, reason="npm not installed"
)
needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="go not installed")
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def put(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def child_env() -> dict[str, str]:
    """The environment for nested runs, without this pytest's own variables."""
    drop = ("PYTEST_", "PYTHONDONTWRITEBYTECODE")  # the gates must set the latter themselves
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


# ---- detection --------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "text", "source"),
    [
        ("pyproject.toml", "[tool.pytest.ini_options]\naddopts = '-q'\n", "pyproject.toml"),
        ("pyproject.toml", "[tool.pytest]\n", "pyproject.toml"),
        ("pytest.ini", "[pytest]\n", "pytest.ini"),
        ("setup.cfg", "[metadata]\nname = x\n[tool:pytest]\n", "setup.cfg"),
        ("tox.ini", "[tox]\n[pytest]\n", "tox.ini"),
        ("conftest.py", "", "conftest.py"),
        ("tests/unit/test_thing.py", "def test_a(): pass\n", "tests/"),
        ("test/thing_test.py", "def test_a(): pass\n", "test/"),
    ],
)
def test_detects_pytest(tmp_path: Path, rel: str, text: str, source: str) -> None:
    put(tmp_path, rel, text)
    runner = detect_runner(tmp_path)
    assert runner is not None
    assert (runner.kind, runner.source) == ("pytest", source)


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        ("pyproject.toml", "[project]\nname = 'x'\n"),
        ("setup.cfg", "[metadata]\nname = x\n"),
        ("tox.ini", "[tox]\nenvlist = py311\n"),
        ("tests/helpers.py", "X = 1\n"),
        ("package.json", '{"scripts": {"test": "echo \\"Error: no test specified\\" && exit 1"}}'),
        ("package.json", '{"scripts": {"build": "tsc"}}'),
        ("package.json", "not json"),
        ("Makefile", "build:\n\tcc x.c\ntest_data := x\n"),
    ],
)
def test_detects_nothing(tmp_path: Path, rel: str, text: str) -> None:
    put(tmp_path, rel, text)
    assert detect_runner(tmp_path) is None
    assert testrun.describe_runner(tmp_path, None) == (
        "tests: none found (no pytest, package.json test script, Makefile test target or go.mod)"
    )


def test_detects_npm_make_and_go(tmp_path: Path) -> None:
    put(tmp_path, "go.mod", "module example.com/m\n\ngo 1.22\n")
    assert detect_runner(tmp_path) == Runner("go", "go.mod")
    put(tmp_path, "Makefile", "all: build\n\nbuild test: deps\n\tgo test ./...\n")
    assert detect_runner(tmp_path) == Runner("make", "Makefile")
    put(tmp_path, "package.json", json.dumps({"scripts": {"test": "jest"}}))
    assert detect_runner(tmp_path) == Runner("npm", "package.json")
    put(tmp_path, "pytest.ini", "[pytest]\n")
    runner = detect_runner(tmp_path)
    assert runner is not None
    assert runner.kind == "pytest"


def test_project_python_prefers_the_project_venv(tmp_path: Path) -> None:
    assert testrun.project_python(tmp_path) == Path(sys.executable)
    for venv in ("venv", ".venv"):
        python = put(tmp_path, f"{venv}/bin/python", "#!/bin/sh\n")
        python.chmod(0o755)
        assert testrun.project_python(tmp_path) == python
    put(tmp_path, "pytest.ini", "[pytest]\n")
    assert testrun.describe_runner(tmp_path, detect_runner(tmp_path)) == (
        "tests: pytest (auto-detected from pytest.ini; python: .venv/bin/python)"
    )


# ---- junit ids --------------------------------------------------------------

PYTEST_PROJECT = {
    "pyproject.toml": "[tool.pytest.ini_options]\n",
    "tests/__init__.py": "",
    "tests/test_calc.py": (
        "import pytest\n"
        "\n"
        "def test_add():\n"
        "    assert 1 + 1 == 2\n"
        "\n"
        "def test_wrong():\n"
        "    assert 1 + 1 == 3\n"
        "\n"
        "class TestMore:\n"
        "    @pytest.mark.parametrize('v', [1, 'a.b::c'])\n"
        "    def test_param(self, v):\n"
        "        assert v\n"
        "\n"
        "    def test_skip(self):\n"
        "        pytest.skip('later')\n"
        "\n"
        "@pytest.fixture\n"
        "def broken():\n"
        "    raise RuntimeError('fixture broke')\n"
        "\n"
        "def test_uses_broken(broken):\n"
        "    pass\n"
    ),
    "tests/pkg/__init__.py": "",
    "tests/pkg/test_deep.py": "def test_deep():\n    pass\n",
}


def make_project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        put(root, rel, text)
    return root


def test_real_pytest_run_gives_readable_ids(tmp_path: Path, child_env: dict[str, str]) -> None:
    root = make_project(tmp_path / "proj", PYTEST_PROJECT)
    runner = detect_runner(root)
    assert runner is not None
    run = testrun.run_tests(
        runner, root=root, evidence_dir=tmp_path / "ev", timeout_s=120, env=child_env
    )
    assert run.completed.exit_code == 1
    assert (tmp_path / "ev" / "junit.xml").is_file()
    assert run.output_path == tmp_path.resolve() / "ev" / "tests.log"
    assert "1 failed" in run.output_path.read_text(encoding="utf-8")
    assert run.ids == TestIds(
        passed=frozenset(
            {
                "tests/test_calc.py::test_add",
                "tests/test_calc.py::TestMore::test_param[1]",
                "tests/test_calc.py::TestMore::test_param[a.b::c]",
                "tests/pkg/test_deep.py::test_deep",
            }
        ),
        failed=frozenset(
            {"tests/test_calc.py::test_wrong", "tests/test_calc.py::test_uses_broken"}
        ),
        skipped=frozenset({"tests/test_calc.py::TestMore::test_skip"}),
    )


def test_collection_error_becomes_a_failing_file_id(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    root = make_project(tmp_path / "proj", {"tests/test_broken.py": "import no_such_module\n"})
    run = testrun.run_tests(
        Runner("pytest", "tests/", python=Path(sys.executable)),
        root=root,
        evidence_dir=tmp_path / "ev",
        timeout_s=120,
        env=child_env,
    )
    assert run.ids is not None
    assert run.ids.failed == {"tests/test_broken.py"}
    assert not run.ids.passed


def test_custom_command_running_pytest_still_gives_ids(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    root = make_project(tmp_path / "proj", PYTEST_PROJECT)
    command = f"{sys.executable} -m pytest -q -p no:cacheprovider tests/pkg"
    run = testrun.run_tests(
        Runner("custom", "configuration", command=command),
        root=root,
        evidence_dir=tmp_path / "ev",
        timeout_s=120,
        env=child_env,
    )
    assert run.command == command
    assert run.ids == TestIds(passed=frozenset({"tests/pkg/test_deep.py::test_deep"}))


def test_parse_junit_handwritten(tmp_path: Path) -> None:
    put(tmp_path, "tests/test_a.py", "")
    report = put(
        tmp_path,
        "junit.xml",
        """<?xml version="1.0"?>
<testsuites><testsuite name="pytest">
  <testcase classname="tests.test_a" name="test_ok"/>
  <testcase classname="tests.test_a.TestK" name="test_fail"><failure message="x"/></testcase>
  <testcase classname="tests.test_a" name="test_teardown"><error message="t"/></testcase>
  <testcase classname="tests.test_a" name="test_skip"><skipped message="s"/></testcase>
  <testcase classname="elsewhere.test_b" name="test_b" file="elsewhere/test_b.py"/>
  <testcase classname="com.example.SuiteTest" name="works"/>
</testsuite></testsuites>
""",
    )
    ids = parse_junit(report, tmp_path)
    assert ids == TestIds(
        passed=frozenset(
            {
                "tests/test_a.py::test_ok",
                "elsewhere/test_b.py::test_b",
                "com.example.SuiteTest::works",
            }
        ),
        failed=frozenset({"tests/test_a.py::TestK::test_fail", "tests/test_a.py::test_teardown"}),
        skipped=frozenset({"tests/test_a.py::test_skip"}),
    )
    put(tmp_path, "bad.xml", "<testsuites><testcase")
    assert parse_junit(tmp_path / "bad.xml", tmp_path) is None


# ---- other runners ----------------------------------------------------------


@needs_make
@pytest.mark.parametrize(("recipe", "code"), [("@echo all good", 0), ("@exit 3", 2)])
def test_real_make_run(tmp_path: Path, recipe: str, code: int) -> None:
    root = make_project(tmp_path / "proj", {"Makefile": f"test:\n\t{recipe}\n"})
    runner = detect_runner(root)
    assert runner == Runner("make", "Makefile")
    run = testrun.run_tests(runner, root=root, evidence_dir=tmp_path / "ev", timeout_s=60)
    assert run.ids is None
    assert run.completed.exit_code == code
    assert run.command == "make test"


@needs_npm
@pytest.mark.parametrize("exit_code", [0, 1])
def test_real_npm_run(tmp_path: Path, exit_code: int) -> None:
    package = {"name": "p", "version": "1.0.0", "scripts": {"test": "node check.js"}}
    root = make_project(
        tmp_path / "proj",
        {
            "package.json": json.dumps(package),
            "check.js": f"console.log('Tests: 2 passed, 2 total'); process.exit({exit_code});\n",
        },
    )
    env = dict(os.environ, npm_config_update_notifier="false", npm_config_cache=str(tmp_path))
    runner = detect_runner(root)
    assert runner == Runner("npm", "package.json")
    run = testrun.run_tests(runner, root=root, evidence_dir=tmp_path / "ev", timeout_s=120, env=env)
    assert run.completed.exit_code == exit_code
    assert run.ids is None
    assert "Tests: 2 passed" in run.text


GO_EVENTS = [
    {"Action": "start", "Package": "example.com/m/calc"},
    {"Action": "run", "Package": "example.com/m/calc", "Test": "TestAdd"},
    {"Action": "output", "Package": "example.com/m/calc", "Test": "TestAdd", "Output": "ok\n"},
    {"Action": "pass", "Package": "example.com/m/calc", "Test": "TestAdd", "Elapsed": 0},
    {"Action": "run", "Package": "example.com/m/calc", "Test": "TestSub/neg"},
    {
        "Action": "output",
        "Package": "example.com/m/calc",
        "Test": "TestSub/neg",
        "Output": "    calc_test.go:9: want -1, got 1\n",
    },
    {"Action": "fail", "Package": "example.com/m/calc", "Test": "TestSub/neg"},
    {"Action": "skip", "Package": "example.com/m/calc", "Test": "TestLater"},
    {"Action": "fail", "Package": "example.com/m/calc", "Elapsed": 0.1},
    {"Action": "output", "Package": "example.com/m/broken", "Output": "FAIL build failed\n"},
    {"Action": "fail", "Package": "example.com/m/broken", "Elapsed": 0},
]


def test_parse_go_json() -> None:
    lines = [json.dumps(e) for e in GO_EVENTS]
    output = "\n".join([*lines[:3], "# example.com/m/broken", *lines[3:]]) + "\n"
    ids, text = testrun.parse_go_json(output)
    assert ids == TestIds(
        passed=frozenset({"example.com/m/calc/TestAdd"}),
        failed=frozenset({"example.com/m/calc/TestSub/neg", "example.com/m/broken"}),
        skipped=frozenset({"example.com/m/calc/TestLater"}),
    )
    assert "calc_test.go:9: want -1, got 1" in text
    assert "# example.com/m/broken" in text
    assert '"Action"' not in text


@needs_go
def test_real_go_run(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "proj",
        {
            "go.mod": "module example.com/m\n\ngo 1.20\n",
            "calc/calc.go": "package calc\n\nfunc Add(a, b int) int { return a + b }\n",
            "calc/calc_test.go": (
                'package calc\n\nimport "testing"\n\n'
                "func TestAdd(t *testing.T) { if Add(1, 1) != 2 { t.Fatal(1) } }\n"
                'func TestBad(t *testing.T) { t.Fatal("bad") }\n'
            ),
        },
    )
    env = dict(os.environ, GOFLAGS="-mod=mod", GOCACHE=str(tmp_path / "gocache"))
    runner = detect_runner(root)
    assert runner == Runner("go", "go.mod")
    run = testrun.run_tests(runner, root=root, evidence_dir=tmp_path / "ev", timeout_s=300, env=env)
    assert run.ids == TestIds(
        passed=frozenset({"example.com/m/calc/TestAdd"}),
        failed=frozenset({"example.com/m/calc/TestBad"}),
    )
    assert (tmp_path / "ev" / "tests.json.log").is_file()
    assert "bad" in run.output_path.read_text(encoding="utf-8")
