"""``nightcrew pause``, ``resume`` and ``backlog skip`` from another process,
against a real ``nightcrew build`` in its own process: an installed agent
plugin whose sessions wait for a release file, so the test decides when each
attempt ends, and every wait is on a file or a row of the store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nightcrew.store.controls import ControlRequests
from nightcrew.store.records import Store
from tests.integration.support import GIT_ENV, make_project, plan_text, wait_for
from tests.plugin_dist import write_plugin

pytestmark = pytest.mark.timeout(120)

# An agent that says which feature it started (a file) and works until the test
# releases it (another file), then writes one file and ends successfully.
GATED = """
import asyncio
import os
import re
from pathlib import Path

from nightcrew.agents.base import Capabilities, Finished, SessionStarted, Text
from nightcrew.agents.hooks import BackendInfo, hookimpl

CAPABILITIES = Capabilities(reports_cost=False, resumable_sessions=False,
                            harness_tools=False, tool_policy=False)


class Gated:
    name = "gated"
    capabilities = CAPABILITIES
    default_allowed_tools = ()

    def tool_name(self, tool):
        return tool

    async def run(self, request):
        name = re.search(r"^# Feature #\\d+ \\(\\w+\\): (.+)$", request.prompt, re.M).group(1)
        signals = Path(os.environ["GATED_SIGNALS"])
        (signals / f"started-{name}").write_text("")
        yield SessionStarted(f"gated-{name}", request.model)
        release = signals / f"release-{name}"
        while not release.exists():  # an agent at work, as long as the test wants
            await asyncio.sleep(0.02)
        (request.cwd / f"{name.lower()}.txt").write_text(name + "\\n")
        yield Text(f"wrote {name.lower()}.txt")
        yield Finished(status="success", result_subtype=None, is_error=False,
                       result_text="done", reported_cost_usd=None, model_usage=())


@hookimpl
def nightcrew_backends():
    return [BackendInfo("gated", CAPABILITIES, Gated, "works until released")]
"""


def nightcrew(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nightcrew", *args],
        cwd=root,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def feature_states(root: Path) -> dict[str, str]:
    db = sqlite3.connect(root / ".nightcrew" / "nightcrew.db")
    try:
        return dict(db.execute("SELECT name, state FROM features").fetchall())
    finally:
        db.close()


def test_pause_holds_a_running_build_and_resume_lets_it_finish(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", plan_text(["unused"]))
    signals = tmp_path / "signals"
    signals.mkdir()
    plugins = write_plugin(tmp_path / "site", "gated", GATED)
    env = {**os.environ, **GIT_ENV, "GATED_SIGNALS": str(signals)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")]))
    env.pop("NIGHTCREW_DEBUG", None)
    for name in ("One", "Two", "Three"):
        added = nightcrew(root, env, "backlog", "add", name, "--accept", "true")
        assert added.returncode == 0, added.stderr

    idle = nightcrew(root, env, "pause")
    assert idle.returncode == 1
    assert idle.stderr == f"nightcrew: nothing is running in {root} (no nightcrew run here yet)\n"

    build = subprocess.Popen(
        [sys.executable, "-m", "nightcrew", "build", "--agent", "gated", "--gate", "true"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for((signals / "started-One").exists, what="feature One's agent")

        paused = nightcrew(root, env, "pause")  # from another shell, while One's agent works
        assert paused.returncode == 0, paused.stderr
        assert "paused: the attempts in flight finish" in paused.stdout
        again = nightcrew(root, env, "pause")
        assert again.returncode == 0, again.stderr
        assert "is already paused (since " in again.stdout
        status = json.loads(nightcrew(root, env, "status", "--json").stdout)
        assert status["run"]["state"] == "running"
        assert status["run"]["paused"]["origin"].startswith("cli (pid ")
        shown = nightcrew(root, env, "status").stdout.splitlines()[0]
        assert ": running, paused since " in shown
        skipped = nightcrew(root, env, "backlog", "skip", "3")  # a change made while it runs
        assert skipped.returncode == 0, skipped.stderr

        (signals / "release-One").write_text("")  # the attempt in flight finishes
        wait_for(lambda: feature_states(root)["One"] == "passed", what="One to pass")
        # A request made now is answered once the lane has gone past the point
        # where it would claim: nothing may have started by then.
        store = Store.open(root / ".nightcrew" / "nightcrew.db")
        try:
            run = store.latest_run()
            assert run is not None and run.orchestrator_pid == build.pid
            asked = ControlRequests(store).add(
                run.id, build.pid, "pause", by="test", origin="the test"
            )
            wait_for(lambda: ControlRequests(store).get(asked).answer is not None, what="answer")
            assert ControlRequests(store).get(asked).answer == "already paused"
        finally:
            store.close()
        assert not (signals / "started-Two").exists()
        assert feature_states(root)["Two"] == "pending"

        resumed = nightcrew(root, env, "resume")
        assert resumed.returncode == 0, resumed.stderr
        assert "resumed: claiming goes on" in resumed.stdout
        wait_for((signals / "started-Two").exists, what="feature Two's agent")
        (signals / "release-Two").write_text("")
        out, err = build.communicate(timeout=60)
    finally:
        if build.poll() is None:
            build.kill()
            build.communicate()

    assert build.returncode == 0, err
    assert "paused by " in out and "resumed by " in out
    assert "nothing is ready: 2 of 3 features passed, 1 skipped (#3)" in out
    assert not (signals / "started-Three").exists()  # skipped while the build ran
    assert feature_states(root) == {"One": "passed", "Two": "passed", "Three": "skipped"}
    ended = nightcrew(root, env, "resume")
    assert ended.returncode == 1
    assert ended.stderr.startswith(f"nightcrew: nothing is running in {root} (the latest, build ")
    assert ended.stderr.endswith(", is succeeded)\n")


# A gate that says it started (a file), then holds until the test lets it pass
# (another file): while it runs, a build in place runs it on its own thread.
WEDGED_GATE = """
import pathlib, sys, time
signals = pathlib.Path(sys.argv[1])
(signals / "gate-started").write_text("")
while not (signals / "gate-may-pass").exists():
    time.sleep(0.02)
"""


def test_stop_now_sends_sigterm_to_a_build_too_busy_to_answer_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    """A build in place runs its gates on its own thread: it cannot take a
    request while they run. ``stop --now`` waits 2 s for an answer, then sends
    SIGTERM, and says so; the build stops its gate, ends interrupted (130), the
    feature goes back to pending with the stop recorded, and ``--resume`` builds it."""
    root = make_project(tmp_path / "proj", plan_text(["unused"]))
    signals = tmp_path / "signals"
    signals.mkdir()
    (signals / "release-One").write_text("")  # the agent finishes at once
    gate = tmp_path / "gate.py"
    gate.write_text(WEDGED_GATE)
    plugins = write_plugin(tmp_path / "site", "gated", GATED)
    env = {**os.environ, **GIT_ENV, "GATED_SIGNALS": str(signals)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")]))
    env.pop("NIGHTCREW_DEBUG", None)
    accept = f"{sys.executable} {gate} {signals}"
    added = nightcrew(root, env, "backlog", "add", "One", "--accept", accept)
    assert added.returncode == 0, added.stderr
    argv = [sys.executable, "-m", "nightcrew", "build", "--agent", "gated", "--gate", "true"]
    build = subprocess.Popen(
        argv, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for((signals / "gate-started").exists, what="feature One's acceptance gate")

        stopped = nightcrew(root, env, "stop", "--now")

        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.endswith(
            " did not answer: sent it SIGTERM; it ends interrupted"
            " (continue with `nightcrew build --resume`)\n"
        )
        out, err = build.communicate(timeout=60)
    finally:
        if build.poll() is None:
            build.kill()
            build.communicate()

    assert build.returncode == 130, err
    assert "stop --now by " in out  # the build names who stopped it, SIGTERM or not
    assert feature_states(root) == {"One": "pending"}
    store = Store.open(root / ".nightcrew" / "nightcrew.db")
    try:
        run = store.latest_run()
        assert run is not None and str(run.state) == "interrupted"
        assert [str(a.state) for a in store.attempts(run_id=run.id)] == ["cancelled"]
        [stop] = store.events(run.id, kinds=["stop_requested"])
        assert stop["payload"]["now"] is True  # the request is told, though SIGTERM ended it
        assert [r.answer for r in ControlRequests(store).unanswered(run.id, build.pid)] == []
    finally:
        store.close()

    assert (root / "one.txt").read_text() == "One\n"  # the agent's work is still in the tree
    (signals / "gate-may-pass").write_text("")
    again = nightcrew(root, env, "build", "--resume", "--agent", "gated", "--gate", "true")

    assert again.returncode == 0, again.stderr
    assert feature_states(root) == {"One": "passed"}
    assert (root / "one.txt").read_text() == "One\n"
