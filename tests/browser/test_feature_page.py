"""The feature page in a real browser against a real server and real builds:
a build on a recording backend passes feature #1; its page shows the gates,
the diff and the exact prompt; a person clicks a line of the diff, comments,
sends the review back; the next build's agent gets the comment in its prompt
(the backend writes each prompt it is given to a file). Screenshots at
1280×800 and 390×844 go to ``$NIGHTCREW_SCREENSHOTS`` when it is set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from nightcrew.core.states import ItemState
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.views.project_overview import project_key
from tests.browser.test_dashboard_pages import DESKTOP, PHONE, WAIT_MS, screenshot
from tests.dashboard_server import serving
from tests.integration.support import GIT_ENV, git
from tests.plugin_dist import write_plugin

# A backend that keeps every prompt it is given (prompt-N.txt in $RECORDER_DIR)
# and writes the cart module, as an agent's session would.
RECORDER = """
import os
from pathlib import Path

from nightcrew.agents.base import Capabilities, Finished, SessionStarted, Text, ToolCall
from nightcrew.agents.hooks import BackendInfo, hookimpl

CAPABILITIES = Capabilities(reports_cost=False, resumable_sessions=False,
                            harness_tools=False, tool_policy=False)


class Recorder:
    name = "recorder"
    capabilities = CAPABILITIES
    default_allowed_tools = ()

    def tool_name(self, tool):
        return tool

    async def run(self, request):
        kept = Path(os.environ["RECORDER_DIR"])
        n = len(list(kept.glob("prompt-*.txt"))) + 1
        (kept / f"prompt-{n}.txt").write_text(request.prompt)
        yield SessionStarted(f"recorder-{n}", request.model)
        yield ToolCall("t1", "Write", {"file_path": "cart.py"})
        (request.cwd / "cart.py").write_text(
            "def total(items):\\n    subtotal = sum(items)\\n    return subtotal * 1.2\\n"
        )
        yield Text("wrote cart.py")
        yield Finished(status="success", result_subtype=None, is_error=False,
                       result_text="done", reported_cost_usd=None, model_usage=())


@hookimpl
def nightcrew_backends():
    return [BackendInfo("recorder", CAPABILITIES, Recorder, "records its prompts")]
"""
CONFIG = """agent = "recorder"
model = "recorder-model"

[policy]
profile = "off"
"""


def wider_than(page: Any, width: int) -> list[str]:
    """The elements that stick out to the right (to say what to fix)."""
    return list(
        page.evaluate(
            """w => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > w)
                .map(e => e.tagName + '.' + e.className)""",
            width,
        )
    )


def nightcrew(root: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "nightcrew", *args],
        check=False,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_comment_on_a_diff_line_reaches_the_retrys_prompt(chromium: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    root = (tmp_path / "shop").resolve()
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "nightcrew.toml").write_text(CONFIG)
    (root / "cart.py").write_text("def total(items):\n    return sum(items)\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    plugins = write_plugin(tmp_path / "site", "recorder", RECORDER)
    env = {
        **os.environ,
        **GIT_ENV,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")])),
        "RECORDER_DIR": str(prompts),
    }
    nightcrew(root, env, "backlog", "add", "Cart totals with tax", "--accept", "test -f cart.py")
    nightcrew(root, env, "build")
    assert (prompts / "prompt-1.txt").exists()

    with serving() as server:
        page = chromium.new_page(viewport=DESKTOP)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(f"{server.base}/p/{project_key(root)}/features/1?token={server.token}")
        attempt = page.locator("#attempt-1")
        expect(attempt.locator(".pill")).to_have_text("passed", timeout=WAIT_MS)
        expect(attempt.locator(".attempt-cost")).to_have_text("unknown")  # never $0
        expect(attempt.locator(".gate.ok .gate-name").first).to_be_visible()
        href = attempt.locator(".gate-log").first.get_attribute("href") or ""
        assert href.startswith(f"/p/{project_key(root)}/files/"), href
        log = page.request.get(server.base + href)  # the gate's full log, served
        assert log.status == 200
        expect(attempt.locator("table.diff tr.add")).to_have_count(2)
        expect(attempt.locator(".prompt pre")).to_contain_text("Cart totals with tax")
        prompt = attempt.locator(".prompt pre").text_content()
        assert prompt == (prompts / "prompt-1.txt").read_text()  # the exact prompt
        assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
        screenshot(page, "feature-desktop")

        line = attempt.locator('table.diff[data-file="cart.py"] tr.dl[data-line="3"]')
        line.click()
        box = attempt.locator("tr.cform textarea")
        expect(box).to_be_focused()
        box.fill("multiply by the tax rate from settings, not 1.2")
        attempt.locator("tr.cform button[type=submit]").click()
        comment = attempt.locator("tr.rc .rc-text")
        expect(comment).to_have_text(
            "multiply by the tax rate from settings, not 1.2", timeout=WAIT_MS
        )
        expect(page.locator("#review .drafts li")).to_have_count(1)
        attempt.locator('table.diff[data-file="cart.py"] tr.dl[data-line="2"]').click()
        attempt.locator("tr.cform textarea").fill("keep the subtotal: the receipt shows it")
        attempt.locator(".diff-file").scroll_into_view_if_needed()
        screenshot(page, "feature-review-desktop")
        attempt.locator("tr.cform .cancel").click()
        expect(attempt.locator("tr.cform")).to_have_count(0)

        # an empty comment is refused in one line, and nothing is stored
        attempt.locator('table.diff[data-file="cart.py"] tr.dl[data-line="1"]').click()
        attempt.locator("tr.cform textarea").fill("   ")
        attempt.locator("tr.cform textarea").evaluate("t => t.removeAttribute('required')")
        attempt.locator("tr.cform button[type=submit]").click()
        expect(page.locator("#review-error")).to_have_text(
            "an empty review comment: say what should change", timeout=WAIT_MS
        )
        attempt.locator("tr.cform .cancel").click()

        page.locator("#review button.send").click()
        expect(attempt.locator("tr.rc.sent")).to_have_count(1, timeout=WAIT_MS)  # reloaded
        expect(page.locator(".work .pill")).to_have_text("pending")
        expect(page.locator(".decisions li").last).to_contain_text(
            "a person sent 1 review comment(s) back"
        )
        phone = chromium.new_page(viewport=PHONE)
        phone.goto(f"{server.base}/p/{project_key(root)}/features/1?token={server.token}")
        expect(phone.locator("#attempt-1 tr.rc.sent")).to_have_count(1, timeout=WAIT_MS)
        screenshot(phone, "feature-phone")
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], wider_than(
            phone, PHONE["width"]
        )
        phone.close()
        page.close()
        # the browser and htmx report the refused comment (a 400); nothing else
        assert [p for p in problems if "400" not in p] == [], problems

    store = Store.open(Project(root).store_path, create=False)
    try:
        assert Backlog(store).feature(1).state == ItemState.PENDING
    finally:
        store.close()
    nightcrew(root, env, "build")
    retried = (prompts / "prompt-2.txt").read_text()
    assert "## Review comments from a person" in retried
    assert "- cart.py:3: multiply by the tax rate from settings, not 1.2" in retried


def test_the_feature_page_follows_its_attempts_and_waits_for_a_comment_being_typed(
    chromium: Any, tmp_path: Path
) -> None:
    """A new attempt, its gate and its end appear without a reload; while a
    person types a comment on a diff line the refresh waits, then goes ahead."""
    from playwright.sync_api import expect

    from nightcrew.core.states import AttemptState
    from tests.unit.test_review import shop_with_attempts

    shop = shop_with_attempts(tmp_path)
    with serving() as server:
        page = chromium.new_page(viewport=DESKTOP)
        page.goto(f"{server.base}/p/{project_key(shop.root)}/features/1?token={server.token}")
        expect(page.locator("#conn")).to_have_class("conn live", timeout=WAIT_MS)
        page.evaluate(
            """() => {
                window.notReloaded = true;
                document.addEventListener('htmx:confirm', e => {
                    if (e.detail.elt.id === 'work-live' && e.defaultPrevented) {
                        document.body.dataset.held = 'yes';
                    }
                });
            }"""
        )
        third = shop.attempt(1, None, model="claude-opus-4-5")
        expect(page.locator("#attempt-3 .pill")).to_have_text("running", timeout=WAIT_MS)
        expect(page.locator("#attempt-3")).to_contain_text("claude-opus-4-5")

        page.locator('#attempt-2 table.diff tr.dl[data-line="2"]').first.click()
        box = page.locator("#attempt-2 tr.cform textarea")
        box.fill("keep the subtotal")
        shop.store.record_gate(
            third.id, name="tests", command="pytest -q", passed=True, duration_s=1.0,
            exit_code=0, timed_out=False, tests_passed=3, tests_failed=0, failed_ids=[],
            regressions=[], output_path=None, digest="",
        )  # fmt: skip
        shop.finish(third, AttemptState.PASSED, "0.0700")
        # the refresh came, and waits
        expect(page.locator("body")).to_have_attribute("data-held", "yes", timeout=WAIT_MS)
        expect(box).to_have_value("keep the subtotal")
        expect(page.locator("#attempt-3 .pill")).to_have_text("running")

        page.locator("#attempt-2 tr.cform .cancel").click()
        expect(page.locator("#attempt-3 .pill")).to_have_text("passed", timeout=WAIT_MS)
        expect(page.locator("#attempt-3 .gate.ok .gate-name")).to_have_text("tests")
        assert page.evaluate("window.notReloaded") is True
        page.close()
