"""Before an attempt: a killed agent's unfinished writes (its temp files) are
removed and never committed, on the real CLI and nightcrew.sim, whose real
agent process tree writes and is killed. The preflight refusals, the dry run
and the abandoned patch are tested in tests/unit/test_run_preflight.py; a crashed
orchestrator's agent's unfinished writes in tests/integration/test_run.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    MODEL,
    git,
    make_project,
    nightcrew_env,
    plan_text,
    run_nightcrew,
    script,
    work_turns,
)

pytestmark = pytest.mark.cli


def test_killed_agents_temp_file_is_removed_and_never_committed(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Hang"]))
    temp = "calc.py.tmp.4242.1a2b3c"
    marker, pidfile = tmp_path / "hung-once", tmp_path / "tool.pid"
    # The first attempt starts a write and hangs until it is killed; the second just ends.
    once = f"if [ ! -e {marker} ]; then touch {marker}; printf x > {temp};"
    once += f" echo $$ > {pidfile}; exec sleep 300; fi"
    _, sim = sim_env({"scripts": [script("hang", ["Batch 1 of 1"], work_turns(once))]})
    env = nightcrew_env(sim)
    (root / "old.txt.tmp.7.ff").write_text("the user's own, from before\n")
    git(root, "add", "old.txt.tmp.7.ff")
    git(root, "commit", "-qm", "an old temp file")

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL, "--attempt-timeout", "20")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"removed the stopped agent's unfinished write(s): {temp}" in result.stdout
    assert not (root / temp).exists()
    assert (root / "old.txt.tmp.7.ff").exists()
    assert temp not in git(root, "log", "--all", "--name-only", "--format=")
