"""``nightcrew demo``: the whole harness, offline, in under a minute.

A sample repository and a 3-batch plan are created in a temp dir, a scripted
model (``nightcrew.sim``) is started on 127.0.0.1, and the real Claude Code
CLI works through the plan against it. Batch 2's first attempt leaves a
failing test; the harness's gate catches it, and the retry's prompt carries
the failing test's digest, which is what the scripted model needs to fix it.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from nightcrew import gitops, proc
from nightcrew.cli.agent_choice import agent_backend
from nightcrew.cli.display import LiveReporter, PlainReporter
from nightcrew.config import Settings
from nightcrew.core.errors import ExitCode, NightcrewError
from nightcrew.engine.report import Reporter
from nightcrew.engine.runner import Runner, RunOptions
from nightcrew.project import Project
from nightcrew.sim import Scenario, SimServer, agent_env
from nightcrew.store.records import Store
from nightcrew.work.plan import load_plan

MODEL = "claude-sonnet-4-5"

CALC = '''"""A tiny calculator, grown one batch at a time by the nightcrew demo."""


def add(a, b):
    return a + b
'''

TESTS = """import calc


def test_add():
    assert calc.add(2, 3) == 5
"""

PLAN = """# Calculator plan

Grow `calc.py` one operation per batch, each with a pytest test.

## Batch 1: Subtraction

### Task 1: Add subtract(a, b) to calc.py
### Task 2: Test it in tests/test_calc.py

## Batch 2: Multiplication

### Task 1: Add multiply(a, b) to calc.py
### Task 2: Test it in tests/test_calc.py

## Batch 3: Division

### Task 1: Add divide(a, b); dividing by zero raises ValueError
### Task 2: Test both cases

Example of what the tests should look like (a fenced header is not a batch):

```markdown
## Batch 99: not a batch
```
"""

USAGE = {
    "input_tokens": 1800,
    "output_tokens": 320,
    "cache_read_input_tokens": 9000,
    "cache_creation_input_tokens": 2400,
    "cache_creation": {"ephemeral_5m_input_tokens": 2400, "ephemeral_1h_input_tokens": 0},
}


def _append(path: str, text: str) -> str:
    return f"cat >> {path} <<'PY'\n{text}PY"


def _turns(text: str, command: str, done: str) -> list[dict[str, Any]]:
    return [
        {
            "text": text,
            "tool": {"name": "Bash", "input": {"command": command, "description": text}},
            "usage": USAGE,
        },
        {"text": done, "usage": {**USAGE, "output_tokens": 60}},
    ]


def scenario() -> dict[str, Any]:
    subtract = (
        _append("calc.py", "\n\ndef subtract(a, b):\n    return a - b\n")
        + "\n"
        + _append(
            "tests/test_calc.py", "\n\ndef test_subtract():\n    assert calc.subtract(5, 3) == 2\n"
        )
    )
    multiply_buggy = (
        _append("calc.py", "\n\ndef multiply(a, b):\n    return a + b\n")
        + "\n"
        + _append(
            "tests/test_calc.py", "\n\ndef test_multiply():\n    assert calc.multiply(3, 4) == 12\n"
        )
    )
    divide = (
        _append(
            "calc.py",
            "\n\ndef divide(a, b):\n    if b == 0:\n"
            '        raise ValueError("cannot divide by zero")\n    return a / b\n',
        )
        + "\n"
        + _append(
            "tests/test_calc.py",
            "\n\nimport pytest\n\n\ndef test_divide():\n"
            "    assert calc.divide(8, 2) == 4\n\n\ndef test_divide_by_zero():\n"
            "    with pytest.raises(ValueError):\n        calc.divide(1, 0)\n",
        )
    )
    fix = [
        {
            "text": "The gate says test_multiply failed: 3 * 4 gave 7. Reading calc.py.",
            "tool": {"name": "Read", "input": {"file_path": "{cwd}/calc.py"}},
            "usage": USAGE,
        },
        {
            "text": "multiply() adds instead of multiplying; fixing it.",
            "tool": {
                "name": "Edit",
                "input": {
                    "file_path": "{cwd}/calc.py",
                    "old_string": "def multiply(a, b):\n    return a + b",
                    "new_string": "def multiply(a, b):\n    return a * b",
                },
            },
            "usage": USAGE,
        },
        {
            "text": "Fixed multiply(); test_multiply passes now.",
            "usage": {**USAGE, "output_tokens": 60},
        },
    ]
    return {
        "scripts": [
            {
                "name": "batch-1",
                "match": {"all": ["Batch 1 of 3"]},
                "turns": _turns("Adding subtract() and its test.", subtract, "Added subtract()."),
            },
            {
                "name": "batch-2-fix",
                "match": {"all": ["Batch 2 of 3", "previous attempt failed", "test_multiply"]},
                "turns": fix,
            },
            {
                "name": "batch-2-first",
                "match": {"all": ["Batch 2 of 3"]},
                "turns": _turns(
                    "Adding multiply() and its test.", multiply_buggy, "Added multiply()."
                ),
            },
            {
                "name": "batch-3",
                "match": {"all": ["Batch 3 of 3"]},
                "turns": _turns("Adding divide() with a zero check.", divide, "Added divide()."),
            },
        ]
    }


def make_repo(root: Path) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text(CALC)
    (root / "tests" / "test_calc.py").write_text(TESTS)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    (root / ".gitignore").write_text("__pycache__/\n")
    (root / "PLAN.md").write_text(PLAN)
    proc.run(["git", "init", "-q", "-b", "main"], cwd=root)
    gitops.commit_all(root, "Sample calculator", {})
    return root / "PLAN.md"


def run_demo(*, keep: bool = False, console: Console | None = None) -> int:
    console = console or Console(highlight=False)
    if importlib.util.find_spec("pytest") is None:
        console.print("nightcrew demo: the demo's test gate needs pytest: pip install pytest")
        return int(ExitCode.BAD_INPUT)
    workdir = Path(tempfile.mkdtemp(prefix="nightcrew-demo-"))
    repo = workdir / "calculator"
    try:
        plan_path = make_repo(repo)
        console.print(
            f"[bold]nightcrew demo[/] in {repo}\n"
            "A scripted local model drives the real Claude Code CLI through a"
            " 3-batch plan. Batch 2's first attempt leaves a failing test.\n"
        )
        with SimServer(Scenario.from_dict(scenario())) as sim:
            env = agent_env(sim.url, workdir / "claude-config")
            project = Project(repo)
            settings = Settings(model=MODEL, attempt_timeout=120, gate_timeout=120)
            reporter: Reporter = (
                LiveReporter(console) if console.is_terminal else PlainReporter(console)
            )
            runner = Runner(
                project,
                load_plan(plan_path, repo),
                settings,
                agent_backend(settings, repo),  # claude: the demo drives Claude Code
                reporter,
                RunOptions(agent_env=env, register=False),
            )
            result = runner.execute()
        _explain(console, project, result.run_id)
        return int(result.exit_code)
    except NightcrewError as exc:
        console.print(f"nightcrew demo: {exc.message}", markup=False)
        return int(exc.exit_code)
    finally:
        if keep:
            console.print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _explain(console: Console, project: Project, run_id: str | None) -> None:
    if run_id is None:
        return
    store = Store.open(project.store_path, create=False)
    try:
        for item in store.items(run_id):
            attempts = store.attempts(item_id=item.id)
            if len(attempts) < 2:
                continue
            first, second = attempts[0], attempts[1]
            prompt = Path(second.evidence_dir or "") / "prompt.txt"
            carried = prompt.is_file() and "test_multiply" in prompt.read_text()
            console.print(
                f"\nBatch {item.number}: attempt 1 {first.state} the gates; attempt 2's prompt"
                f" {'carried' if carried else 'did NOT carry'} the failing test from the"
                f" digest, and attempt 2 {second.state}.",
                markup=False,
            )
    finally:
        store.close()
    log = proc.run(["git", "log", "--oneline"], cwd=project.root)
    console.print("\ngit log of the demo repository:\n" + log.output.rstrip(), markup=False)
