"""The dashboard watching and steering real builds: ``nightcrew build`` and
``nightcrew run`` processes whose agent is the real Claude Code CLI (bundled in
claude-agent-sdk) talking to ``nightcrew.sim``, seen through one real
``nightcrew serve`` in a real browser.

Each sim answer that must wait for the test is held with ``hold_until``: the
model call stays in flight until the test writes the file, so nothing here
waits on a clock. The sim records every request it gets, with the model the
CLI asked for, which is how a test sees that a retry ran on opus.

- a build's cost badge shows the sim's reported usage, priced, and moves when
  the next response arrives; Stop lets that attempt finish, starts no other,
  and the build ends (exit 130);
- Retry with opus on a given-up feature runs its next attempt on opus (the
  sim sees the opus model id), the feature page shows that attempt; Stop now
  cancels it while its model call is still held, the build ends at once and
  the feature is pending again;
- a plan run's batch page, opened from the live page while the next batch
  runs, shows the batch's text, its attempt and its gate results.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nightcrew.sim import SimServer
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.views.project_overview import project_key
from tests.browser.test_dashboard_pages import DESKTOP, PHONE, WAIT_MS, screenshot
from tests.conftest import SimStarter
from tests.dashboard_server import Server, serving
from tests.integration.support import (
    GIT_ENV,
    MODEL,
    add_function,
    cost_of,
    make_project,
    nightcrew_env,
    plan_text,
    run_nightcrew,
    start_nightcrew,
    wait_for,
)

pytestmark = pytest.mark.cli

WAIT_S = WAIT_MS / 1000
# Two responses of the held feature: what the sim reports, so the badge's
# values are known in advance (Sonnet 4.5 list prices, as Claude Code prices).
FIRST = {"input_tokens": 2000, "output_tokens": 400, "cache_read_input_tokens": 10_000}
SECOND = {"input_tokens": 3000, "output_tokens": 900, "cache_read_input_tokens": 12_000}
SIM_DEFAULT = {"input_tokens": 100, "output_tokens": 20}  # a turn that scripts no usage
QUICK_PYTEST = (
    "[tool.pytest.ini_options]\n"
    'pythonpath = ["."]\n'
    # this venv's pytest plugins cost a CPU-second per gate run; not what is tested
    'addopts = "--disable-plugin-autoload -p no:cacheprovider"\n'
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One NIGHTCREW_HOME for the server and every build of this module: the
    dashboard shows the projects the builds registered there."""
    return tmp_path_factory.mktemp("sim-builds-home")


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[Server]:
    """One dashboard process serves every test of this module."""
    with serving(env={"NIGHTCREW_HOME": str(home)}) as running:
        yield running


def project(root: Path, plan: str = "") -> Path:
    """The sample project (calc.py and its test), with quick pytest gates."""
    make_project(root, plan)
    (root / "pyproject.toml").write_text(QUICK_PYTEST)
    subprocess.run(["git", "commit", "-qam", "quick gates"], cwd=root, check=True, env=git_env())
    return root.resolve()


def git_env() -> dict[str, str]:
    return {**os.environ, **GIT_ENV}


def build_env(sim: dict[str, str], home: Path) -> dict[str, str]:
    return {**nightcrew_env(sim), "NIGHTCREW_HOME": str(home)}


def add(root: Path, env: dict[str, str], name: str, accept: str) -> None:
    done = run_nightcrew(root, env, "backlog", "add", name, "--accept", accept)
    assert done.returncode == 0, done.stderr


def bash(command: str) -> dict[str, Any]:
    return {"name": "Bash", "input": {"command": command}}


def fact(attempt: Any, name: str) -> Any:
    """One of an attempt's facts on its page (model, time, cost …)."""
    return attempt.locator(".attempt-facts div", has_text=name).locator("dd")


def held(sim: SimServer, script: str, turn: int = 0) -> bool:
    """Whether the sim got the request of ``script``'s turn (it holds it)."""
    return any(r.script == script and r.turn_index == turn for r in sim.requests)


def states(root: Path) -> dict[str, str]:
    store = Store.open(root / ".nightcrew" / "nightcrew.db", create=False)
    try:
        return {f.name: str(f.state) for f in Backlog(store).features()}
    finally:
        store.close()


def ended(process: subprocess.Popen[str]) -> tuple[int, str]:
    """The build's exit code and output, once it ends by itself."""
    out, err = process.communicate(timeout=WAIT_S * 4)
    return process.returncode, out + err


def stopped(process: subprocess.Popen[str]) -> None:
    """A test that failed half-way leaves no build behind."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def live_page(chromium: Any, server: Server, root: Path, viewport: dict[str, int] = DESKTOP) -> Any:
    from playwright.sync_api import expect

    page = chromium.new_page(viewport=viewport)
    page.on("dialog", lambda dialog: dialog.accept())  # Stop and Stop now ask first
    page.goto(f"{server.base}/p/{project_key(root)}/?token={server.token}")
    expect(page.locator("#conn")).to_have_class("conn live", timeout=WAIT_MS)
    return page


def test_the_badge_follows_a_sim_build_and_stop_lets_its_attempt_finish(
    chromium: Any, server: Server, home: Path, sim_env: SimStarter, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    root = project(tmp_path / "shop")
    gate = tmp_path / "release-cart"
    cart_turns = [
        {"text": "Adding the cart.", "tool": bash("printf 'cart\\n' > cart.txt"), "usage": FIRST},
        {"text": "Done.", "usage": SECOND, "hold_until": str(gate)},
    ]
    sim, sim_vars = sim_env(
        {
            "scripts": [
                {"name": "cart", "match": {"all": ["# Feature #1 "]}, "turns": cart_turns},
                {
                    "name": "search",
                    "match": {"all": ["# Feature #2 "]},
                    "turns": [{"text": "Done."}],
                },
            ]
        }
    )
    env = build_env(sim_vars, home)
    add(root, env, "Cart", "test -f cart.txt")
    add(root, env, "Search", "true")
    build = start_nightcrew(root, env, "build", "--model", MODEL)
    try:
        wait_for(lambda: held(sim, "cart", 1), WAIT_S, "the cart's second model call")
        page = live_page(chromium, server, root)
        badge = page.locator("#cost .badge")
        # the first response, as the sim reported it and Sonnet's prices price it: never $0
        expect(badge).to_have_text(f"${cost_of(FIRST):.4f}", timeout=WAIT_MS)
        card = page.locator("#lanes .lane")
        expect(card.locator(".model")).to_have_text(MODEL)
        expect(card.locator(".item")).to_have_text("feature #1 Cart")
        expect(card.locator(".tool")).to_have_text("▸ Bash: printf 'cart\\n' > cart.txt")
        expect(card.locator(".lane-cost")).to_have_text(f"${cost_of(FIRST):.4f}")
        expect(page.locator("#feed .ev .detail").first).to_have_text(
            "Bash: printf 'cart\\n' > cart.txt"
        )
        page.evaluate("window.stillTheSamePage = true")

        page.locator("#ctl-stop").click()
        expect(page.locator("#control-said")).to_contain_text(
            "stops: the attempts in flight finish, then it ends interrupted", timeout=WAIT_MS
        )
        gate.write_text("")  # the model call in flight goes on: the attempt finishes
        expect(badge).to_have_text(f"${cost_of(FIRST, SECOND):.4f}", timeout=WAIT_MS)
        assert page.evaluate("window.stillTheSamePage") is True  # swapped in, never reloaded
        code, out = ended(build)
        assert code == 130, out  # interrupted: `build --resume` goes on
        assert states(root) == {"Cart": "passed", "Search": "pending"}
        assert not held(sim, "search")  # no other attempt started
        expect(page.locator("#run .pill")).to_have_text("interrupted", timeout=WAIT_MS)
        expect(page.locator("#lanes")).to_contain_text("Nothing is running.")
        page.close()
    finally:
        gate.write_text("")
        stopped(build)


def test_retry_with_opus_runs_on_opus_and_stop_now_cancels_it(
    chromium: Any, server: Server, home: Path, sim_env: SimStarter, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    root = project(tmp_path / "shop")
    hold_other = tmp_path / "release-other"
    never = tmp_path / "never-released"  # the opus call stays in flight until Stop now
    sim, sim_vars = sim_env(
        {
            "scripts": [
                # feature #1 on the build's model: does nothing, so its check fails
                {"name": "broken-first", "match": {"all": ["# Feature #1 "], "model": MODEL},
                 "turns": [{"text": "I could not find where that goes."}]},
                # feature #1 on any other model: held until the test lets go
                {"name": "broken-again", "match": {"all": ["# Feature #1 "]},
                 "turns": [{"text": "Trying again.", "hold_until": str(never)}]},
                {"name": "other", "match": {"all": ["# Feature #2 "]},
                 "turns": [{"text": "Done.", "hold_until": str(hold_other)}]},
            ]
        }
    )  # fmt: skip
    env = build_env(sim_vars, home)
    add(root, env, "Totals", "test -f totals.txt")
    add(root, env, "Receipts", "true")
    build = start_nightcrew(root, env, "build", "--model", MODEL, "--max-attempts-per-feature", "1")
    try:
        wait_for(lambda: held(sim, "other"), WAIT_S, "feature #2's model call")
        assert states(root)["Totals"] == "skipped"  # given up after its one attempt
        board = chromium.new_page(viewport=DESKTOP)
        board.goto(f"{server.base}/p/{project_key(root)}/backlog?token={server.token}")
        expect(board.locator("#conn")).to_have_class("conn live", timeout=WAIT_MS)
        card = board.locator('#board .col[data-column="skipped"] .card[data-id="1"]')
        expect(card.locator(".tries")).to_have_text("1 try", timeout=WAIT_MS)
        board.get_by_label("select #1").check()
        board.locator("#retry-model").fill("opus")
        board.locator("#act-retry-model").click()
        expect(board.locator("#said")).to_have_text(
            "#1: pending, next attempts with opus", timeout=WAIT_MS
        )
        hold_other.write_text("")  # #2 finishes; the build claims #1 again
        wait_for(lambda: held(sim, "broken-again"), WAIT_S, "feature #1's retry")
        [asked] = [r for r in sim.requests if r.script == "broken-again"]
        assert asked.model.startswith("claude-opus-"), asked.model  # the sim sees opus
        assert [r.model for r in sim.requests if r.script == "broken-first"] == [MODEL]

        board.locator('#board .card[data-id="1"] a.name').click()  # the feature's page
        attempt = board.locator("#attempt-2")
        expect(attempt.locator(".pill")).to_have_text("running", timeout=WAIT_MS)
        # the model the retry asked for, as the person typed it (the CLI named it to the sim)
        expect(fact(attempt, "model")).to_have_text("opus")
        # the header adds the finished attempt's cost; the running one has none yet
        expect(board.locator("header .cost .badge")).to_have_text(f"${cost_of(SIM_DEFAULT):.4f}")
        first = board.locator("#attempt-1")
        expect(fact(first, "model")).to_have_text(MODEL)

        page = live_page(chromium, server, root)
        expect(page.locator("#lanes .lane .model")).to_have_text("opus", timeout=WAIT_MS)
        clicked = time.monotonic()
        page.locator("#ctl-stop-now").click()
        expect(page.locator("#control-said")).to_contain_text(
            "stops now: its agents are stopped and it ends interrupted", timeout=WAIT_MS
        )
        code, out = ended(build)  # while the opus call is still held: cancelled, not finished
        took = time.monotonic() - clicked
        assert code == 130, out
        assert not never.exists()
        assert states(root) == {"Totals": "pending", "Receipts": "passed"}  # not lost
        board.reload()
        expect(board.locator("#attempt-2 .pill")).to_have_text("cancelled", timeout=WAIT_MS)
        expect(board.locator(".work-head .pill")).to_have_text("pending")
        print(f"stop now: the build ended {took:.1f} s after the click")
        board.close()
        page.close()
    finally:
        never.write_text("")
        hold_other.write_text("")
        stopped(build)


def test_a_batch_page_opened_from_the_live_page_while_the_plan_runs(
    chromium: Any, server: Server, home: Path, sim_env: SimStarter, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    root = project(tmp_path / "calc", plan_text(["Subtraction", "Product"]))
    gate = tmp_path / "release-batch-2"
    sim, sim_vars = sim_env(
        {
            "scripts": [
                {"name": "b1", "match": {"all": ["Batch 1 of 2"]}, "turns": [
                    {"text": "Adding sub.", "tool": {"name": "Bash", "input": {
                        "command": add_function("sub", "a - b", "calc.sub(5, 3) == 2")}}},
                    {"text": "Done."}]},
                {"name": "b2", "match": {"all": ["Batch 2 of 2"]}, "turns": [
                    {"text": "Adding mul.", "tool": {"name": "Bash", "input": {
                        "command": add_function("mul", "a * b", "calc.mul(3, 4) == 12")}},
                     "hold_until": str(gate)},
                    {"text": "Done."}]},
            ]
        }
    )  # fmt: skip
    env = build_env(sim_vars, home)
    run = start_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)
    try:
        wait_for(lambda: held(sim, "b2"), WAIT_S, "batch 2's model call")
        page = live_page(chromium, server, root)
        expect(page.locator("#lanes .lane .item")).to_have_text("batch 2 Product", timeout=WAIT_MS)
        link = page.locator("#feed a.item", has_text="batch 1").first
        expect(link).to_be_visible(timeout=WAIT_MS)
        link.click()
        expect(page.locator("h1")).to_have_text(re.compile(r"› batch 1$"), timeout=WAIT_MS)
        expect(page.locator(".work-title")).to_have_text("Subtraction")
        expect(page.locator(".work-text")).to_contain_text("Task 1: Subtraction")
        attempt = page.locator("#attempt-1")
        expect(attempt.locator(".pill")).to_have_text("passed")
        expect(fact(attempt, "model")).to_have_text(MODEL)
        tests = attempt.locator(".gates .gate", has_text="tests")
        expect(tests).to_have_class(re.compile(r"\bok\b"))
        expect(tests).to_contain_text("2 passed, 0 failed")  # calc's test and the new one
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(viewport)
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            screenshot(page, f"batch-{size}")

        page.go_back()  # and the running batch's own page, from its lane card
        page.locator("#lanes .lane .item a").click()
        expect(page.locator("h1")).to_have_text(re.compile(r"› batch 2$"), timeout=WAIT_MS)
        expect(page.locator("#attempt-1 .pill")).to_have_text("running")
        page.evaluate("window.stayed = true")  # gone if the page were loaded again

        gate.write_text("")  # batch 2 goes on: its page follows without a reload
        expect(page.locator("#attempt-1 .pill")).to_have_text("passed", timeout=WAIT_MS)
        expect(page.locator(".work-head .pill")).to_have_text("passed", timeout=WAIT_MS)
        tests = page.locator("#attempt-1 .gates .gate", has_text="tests")
        expect(tests).to_contain_text("3 passed, 0 failed", timeout=WAIT_MS)
        assert page.evaluate("window.stayed === true")
        page.close()
        code, out = ended(run)
        assert code == 0, out
    finally:
        gate.write_text("")
        stopped(run)
