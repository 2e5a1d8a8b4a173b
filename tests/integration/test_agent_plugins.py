"""A third party's agent backend, installed as a package declaring a
``nightcrew`` entry point: listed by ``nightcrew agents``, chosen with
``--agent`` or ``agent = "…"``, and driving ``nightcrew run`` end to end (its
file written, the gates passed, a commit made). A broken plugin is one warning
line and takes nothing else down."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.support import GIT_ENV, git, make_project, plan_text
from tests.plugin_dist import FILE_WRITER, write_plugin

BROKEN_IMPORT = "raise ImportError('No module named agentcli')\n"
NOT_FENCED = (
    "nightcrew: warning: the agent backend 'filewriter' cannot enforce the tool policy"
    " ([policy]): its tool calls are not checked"
)
BROKEN_HOOK = (
    "from nightcrew.agents.hooks import hookimpl\n\n"
    "@hookimpl\ndef nightcrew_backends():\n    raise RuntimeError('the hook broke')\n"
)


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    return write_plugin(tmp_path / "site", "filewriter", FILE_WRITER)


def nightcrew(cwd: Path, plugin_dir: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV}
    env.pop("NIGHTCREW_DEBUG", None)
    if plugin_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_dir), env.get("PYTHONPATH")]))
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


def test_nightcrew_agents_lists_the_builtin_and_a_third_partys_backend(
    tmp_path: Path, plugins: Path
) -> None:
    table = nightcrew(tmp_path, plugins, "agents")
    assert table.returncode == 0, table.stderr
    assert table.stderr == ""
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["name", "cost", "resume", "tools", "policy"]
    assert lines[1].split()[:6] == ["claude", "yes", "yes", "yes", "yes", "nightcrew.claude"]
    assert lines[2].split()[:6] == ["filewriter", "no", "no", "no", "no", "filewriter"]

    listed = nightcrew(tmp_path, plugins, "agents", "--json")
    assert listed.returncode == 0, listed.stderr
    by_name = {entry["name"]: entry for entry in json.loads(listed.stdout)}
    assert list(by_name) == ["claude", "filewriter"]
    assert by_name["filewriter"] == {
        "name": "filewriter",
        "plugin": "filewriter",
        "description": "writes written.txt",
        "capabilities": {
            "reports_cost": False,
            "resumable_sessions": False,
            "harness_tools": False,
            "tool_policy": False,
        },
    }
    assert by_name["claude"]["capabilities"] == {
        "reports_cost": True,
        "resumable_sessions": True,
        "harness_tools": True,
        "tool_policy": True,
    }


def assert_ran_with_filewriter(project: Path, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "batch 1 passed" in result.stdout
    # the backend's work was committed by the harness, the tree is clean
    assert git(project, "log", "--format=%s").splitlines() == ["Batch 1: Write it", "initial"]
    assert git(project, "show", "--name-only", "--format=", "HEAD").split() == ["written.txt"]
    assert git(project, "status", "--porcelain") == ""
    assert (project / "written.txt").read_text().startswith("None: You are working unattended")
    with sqlite3.connect(project / ".nightcrew" / "nightcrew.db") as db:
        rows = db.execute("SELECT backend, state FROM attempts").fetchall()
    assert rows == [("filewriter", "passed")]


def test_agent_option_runs_a_plan_with_a_third_partys_backend(
    tmp_path: Path, plugins: Path
) -> None:
    project = make_project(tmp_path / "p", plan_text(["Write it"]))
    result = nightcrew(
        project, plugins, "run", "PLAN.md", "--agent", "filewriter", "--gate", "test -f written.txt"
    )
    assert_ran_with_filewriter(project, result)
    assert result.stderr.splitlines() == [NOT_FENCED]


def test_agent_in_the_config_runs_a_plan_with_a_third_partys_backend(
    tmp_path: Path, plugins: Path
) -> None:
    project = make_project(tmp_path / "p", plan_text(["Write it"]))
    (project / "nightcrew.toml").write_text(
        'agent = "filewriter"\ngates = ["test -f written.txt"]\n\n[policy]\nprofile = "off"\n'
    )
    git(project, "add", "nightcrew.toml")
    git(project, "commit", "-q", "-m", "config")
    result = nightcrew(project, plugins, "run", "PLAN.md")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""  # no policy to enforce: nothing to warn about
    assert git(project, "log", "-1", "--format=%s").strip() == "Batch 1: Write it"
    with sqlite3.connect(project / ".nightcrew" / "nightcrew.db") as db:
        assert db.execute("SELECT backend, state FROM attempts").fetchall() == [
            ("filewriter", "passed")
        ]


def test_an_uninstalled_backend_is_one_line_naming_the_known_ones(
    tmp_path: Path, plugins: Path
) -> None:
    project = make_project(tmp_path / "p", plan_text(["Write it"]))
    result = nightcrew(project, plugins, "run", "PLAN.md", "--agent", "codex")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "nightcrew: command line: --agent: unknown agent backend 'codex'"
        " (known: claude, filewriter)"
    ]
    assert not (project / ".nightcrew").exists()
    assert not (project / "written.txt").exists()


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (BROKEN_IMPORT, "not loaded: ImportError: No module named agentcli"),
        (BROKEN_HOOK, "nightcrew_backends failed: RuntimeError: the hook broke"),
    ],
    ids=["import", "hook"],
)
def test_a_broken_plugin_is_one_warning_and_the_others_still_work(
    tmp_path: Path, plugins: Path, source: str, why: str
) -> None:
    write_plugin(plugins, "broken", source)
    table = nightcrew(tmp_path, plugins, "agents")
    assert table.returncode == 0, table.stderr
    assert "Traceback" not in table.stdout + table.stderr
    [warning] = table.stderr.splitlines()
    assert warning.startswith("nightcrew: warning: plugin 'broken'")
    assert warning.endswith(why)
    assert [line.split()[0] for line in table.stdout.splitlines()[1:]] == ["claude", "filewriter"]

    project = make_project(tmp_path / "p", plan_text(["Write it"]))
    result = nightcrew(
        project, plugins, "run", "PLAN.md", "--agent", "filewriter", "--gate", "test -f written.txt"
    )
    assert result.stderr.splitlines()[0] == warning
    assert_ran_with_filewriter(project, result)


def test_what_a_backend_cannot_do_is_refused_before_it_starts(
    tmp_path: Path, plugins: Path
) -> None:
    project = make_project(tmp_path / "p", plan_text(["Write it"]))
    (project / "SPEC.md").write_text("# An app\n")
    (project / "nightcrew.toml").write_text('agent = "filewriter"\n')
    init = nightcrew(project, plugins, "backlog", "init", "SPEC.md")
    assert init.returncode == 2
    assert init.stderr.splitlines() == [
        "nightcrew: backlog init needs an agent that takes the backlog tools; the agent"
        " backend 'filewriter' does not"
    ]
    resumed = nightcrew(
        project, plugins, "build", "--agent", "filewriter", "--resume", "--resume-session"
    )
    assert resumed.returncode == 2
    assert resumed.stderr.splitlines() == [
        "nightcrew: --resume-session: the agent backend 'filewriter' cannot resume sessions"
    ]
    assert not (project / ".nightcrew").exists()


def test_a_build_with_a_backend_without_harness_tools_runs_as_with_no_tools(
    tmp_path: Path, plugins: Path
) -> None:
    project = make_project(tmp_path / "p", plan_text(["Write it"]))
    added = nightcrew(
        project, plugins, "backlog", "add", "Write", "--accept", "test -f written.txt"
    )
    assert added.returncode == 0, added.stderr
    result = nightcrew(project, plugins, "build", "--agent", "filewriter", "--gate", "true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert git(project, "show", "--name-only", "--format=", "HEAD").split() == ["written.txt"]
    [prompt] = (project / ".nightcrew" / "runs").glob("*/*/attempt-1/prompt.txt")
    text = prompt.read_text()
    assert "## Backlog tools" not in text and "Nobody can answer questions" in text
