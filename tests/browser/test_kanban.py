"""The Kanban page and the project controls in a real browser against a
real server process: a card dragged in the pending column changes what
``nightcrew backlog list`` prints, an answer typed on a card sends the
feature back to the queue, chosen cards are skipped at once, and a build
started from the page pauses from the page (the attempt in flight finishes,
no other starts) and resumes. Screenshots of the board at 1280×800 and
390×844 go to ``$NIGHTCREW_SCREENSHOTS`` when it is set."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nightcrew.core.states import AttemptState, ItemState
from nightcrew.store.backlog import Backlog
from nightcrew.store.controls import ControlRequests
from nightcrew.store.records import Store
from nightcrew.views.project_overview import project_key
from tests.browser.test_dashboard_pages import DESKTOP, PHONE, WAIT_MS, box, screenshot
from tests.dashboard_seed import Seeded, register
from tests.dashboard_server import serving
from tests.integration.support import GIT_ENV, alive, git, wait_for
from tests.integration.test_controls_cli import GATED  # works until the test releases it
from tests.plugin_dist import write_plugin


def nightcrew(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "nightcrew", *args],
        cwd=root,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def listed_ids(root: Path) -> list[int]:
    """The order ``nightcrew backlog list`` prints."""
    return [feature["id"] for feature in json.loads(nightcrew(root, "backlog", "list", "--json"))]


def open_board(chromium: Any, server: Any, shop: Seeded, viewport: dict[str, int] = DESKTOP) -> Any:
    from playwright.sync_api import expect

    page = chromium.new_page(viewport=viewport)
    page.goto(f"{server.base}/p/{project_key(shop.root)}/backlog?token={server.token}")
    expect(page.locator("#conn")).to_have_class("conn live", timeout=WAIT_MS)
    return page


def column(page: Any, state: str) -> Any:
    return page.locator(f'#board .col[data-column="{state}"] .card')


def test_dragging_or_moving_a_pending_card_changes_the_order_backlog_list_prints(
    chromium: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    shop = Seeded.build(tmp_path / "shop", ["Login", "Cart", "Search", "Dark mode"])
    git(shop.root, "init", "-q", "-b", "main")  # the CLI works in a git checkout
    assert listed_ids(shop.root) == [1, 2, 3, 4]
    with serving() as server:
        page = open_board(chromium, server, shop)
        pending = column(page, "pending")
        expect(pending.locator(".fid")).to_have_text(["#1", "#2", "#3", "#4"], timeout=WAIT_MS)

        source = box(pending.nth(3).locator(".meta"))  # not its checkbox
        target = box(pending.nth(1))
        page.mouse.move(source["x"] + 5, source["y"] + 5)
        page.mouse.down()
        page.mouse.move(target["x"] + 20, target["y"] + 4, steps=12)
        page.mouse.move(target["x"] + 20, target["y"] + 2, steps=4)
        page.mouse.up()
        expect(page.locator("#said")).to_have_text("#4 now comes before #2", timeout=WAIT_MS)
        assert listed_ids(shop.root) == [1, 4, 2, 3]
        # and the board the stream sends again agrees
        expect(pending.locator(".fid")).to_have_text(["#1", "#4", "#2", "#3"], timeout=WAIT_MS)

        # to the last place: dropped below the last card
        source = box(pending.nth(0).locator(".meta"))
        target = box(pending.nth(3))
        page.mouse.move(source["x"] + 5, source["y"] + 5)
        page.mouse.down()
        page.mouse.move(target["x"] + 20, target["y"] + target["height"] - 6, steps=12)
        page.mouse.move(target["x"] + 20, target["y"] + target["height"] - 2, steps=4)
        page.mouse.up()
        expect(page.locator("#said")).to_have_text("#1 now comes after #3", timeout=WAIT_MS)
        expect(pending.locator(".fid")).to_have_text(["#4", "#2", "#3", "#1"], timeout=WAIT_MS)

        # from the keyboard: focus a card's ▼ and press Enter, again and again
        # (pressed at once, each move is computed on the board as shown)
        page.get_by_label("move #4 down").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#said")).to_have_text("#4 now comes before #3", timeout=WAIT_MS)
        expect(pending.locator(".fid")).to_have_text(["#2", "#4", "#3", "#1"], timeout=WAIT_MS)
        expect(page.get_by_label("move #4 down")).to_be_focused(timeout=WAIT_MS)
        page.keyboard.press("Enter")
        expect(page.get_by_label("move #4 down")).to_be_focused(timeout=WAIT_MS)
        page.keyboard.press("Enter")
        expect(page.locator("#said")).to_have_text("#4 now comes after #1", timeout=WAIT_MS)
        expect(pending.locator(".fid")).to_have_text(["#2", "#3", "#1", "#4"], timeout=WAIT_MS)
        expect(page.get_by_label("move #4 down")).to_be_disabled(timeout=WAIT_MS)  # last now
        page.get_by_label("move #2 up").focus()  # the first card cannot go up
        expect(page.get_by_label("move #2 up")).to_be_disabled()
        page.get_by_label("move #1 up").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#said")).to_have_text("#1 now comes before #3", timeout=WAIT_MS)
        assert listed_ids(shop.root) == [2, 1, 3, 4]
        screenshot(page, "backlog-reorder-desktop")
        page.close()


def test_an_answer_typed_on_a_card_sends_the_feature_back_to_the_queue(
    chromium: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    shop = Seeded.build(tmp_path / "shop", ["Login", "Payments"])
    backlog = Backlog(shop.store)
    with serving() as server:
        page = open_board(chromium, server, shop)
        expect(column(page, "pending")).to_have_count(2, timeout=WAIT_MS)
        backlog.claim(2, by="run-x")  # an agent at work asks a person, meanwhile
        backlog.request_input(2, "Stripe or Adyen?")
        card = column(page, "needs_input")
        expect(card.locator(".asked")).to_have_text("Stripe or Adyen?", timeout=WAIT_MS)

        card.locator("textarea").fill("Stripe, test mode")
        backlog.skip([1], reason="meanwhile")  # the board is sent again while they type
        expect(column(page, "skipped")).to_have_count(1, timeout=WAIT_MS)
        expect(card.locator("textarea")).to_have_value("Stripe, test mode")
        card.locator("button", has_text="Answer").click()
        expect(page.locator("#said")).to_have_text(
            "#2 Payments: answered; back in the queue", timeout=WAIT_MS
        )
        expect(column(page, "pending").locator(".fid")).to_have_text(["#2"], timeout=WAIT_MS)
        expect(column(page, "needs_input")).to_have_count(0)
        feature = backlog.feature(2)
        assert feature.state == ItemState.PENDING and feature.input_answer == "Stripe, test mode"
        assert [f.id for f in backlog.ready()] == [2]
        page.close()


def test_chosen_cards_are_skipped_together(chromium: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    shop = Seeded.build(tmp_path / "shop", ["Login", "Cart", "Search"])
    with serving() as server:
        page = open_board(chromium, server, shop)
        skip = page.locator("#act-skip")
        expect(skip).to_be_disabled(timeout=WAIT_MS)
        page.get_by_label("select #1").check()
        page.get_by_label("select #3").check()
        expect(page.locator("#chosen-count")).to_have_text("2")
        skip.click()
        expect(page.locator("#said")).to_have_text("#1, #3: skipped", timeout=WAIT_MS)
        expect(column(page, "skipped").locator(".fid")).to_have_text(["#1", "#3"], timeout=WAIT_MS)
        expect(column(page, "pending").locator(".fid")).to_have_text(["#2"])
        expect(page.locator("#chosen-count")).to_have_text("0")
        states = {f.id: f.state for f in Backlog(shop.store).features()}
        assert states == {1: ItemState.SKIPPED, 2: ItemState.PENDING, 3: ItemState.SKIPPED}
        page.close()


def feature_states(root: Path) -> dict[str, str]:
    store = Store.open(root / ".nightcrew" / "nightcrew.db", create=False)
    try:
        return {f.name: str(f.state) for f in Backlog(store).features()}
    finally:
        store.close()


def test_a_build_started_from_the_page_pauses_and_resumes_from_the_page(
    chromium: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    root = (tmp_path / "shop").resolve()
    root.mkdir()
    env = {**os.environ, **GIT_ENV}
    git(root, "init", "-q", "-b", "main")
    (root / "nightcrew.toml").write_text('agent = "gated"\n\n[policy]\nprofile = "off"\n')
    (root / "README.md").write_text("shop\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    signals = tmp_path / "signals"
    signals.mkdir()
    plugins = write_plugin(tmp_path / "site", "gated", GATED)
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")])),
        GATED_SIGNALS=str(signals),
    )
    for name in ("One", "Two"):
        nightcrew(root, "backlog", "add", name, "--accept", "true", env=env)
    register(root)  # as its first run would: the dashboard shows registered projects

    pid: int | None = None
    with serving(env=env) as server:  # the build it starts inherits the plugin
        try:
            page = chromium.new_page(viewport=DESKTOP)
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(f"{server.base}/p/{project_key(root)}/?token={server.token}")
            said = page.locator("#control-said")
            page.locator("#ctl-pause").click()
            expect(said).to_have_text(re.compile(r"^nothing is running in "), timeout=WAIT_MS)

            page.locator("summary", has_text="Start a build").click()
            page.locator("#start-build [name=parallel]").fill("1")
            page.locator("#start-build button").click()
            expect(said).to_have_text(
                re.compile(r"^build started \(pid \d+\): nightcrew build --parallel 1$"),
                timeout=WAIT_MS,
            )
            found = re.search(r"pid (\d+)", said.inner_text())
            assert found is not None
            pid = int(found.group(1))
            wait_for((signals / "started-One").exists, what="feature One's agent")

            page.locator("#ctl-pause").click()
            expect(said).to_contain_text(
                "paused: the attempts in flight finish, then nothing new starts", timeout=WAIT_MS
            )
            page.locator("#start-build button").click()  # a second build: the lock refuses it
            expect(said).to_have_text(
                f"no build started: another nightcrew run (pid {pid}) is running in this"
                " project; wait for it or stop it first",
                timeout=WAIT_MS,
            )

            (signals / "release-One").write_text("")  # the attempt in flight finishes
            wait_for(lambda: feature_states(root)["One"] == "passed", what="One to pass")
            # Answered once the build has gone past where it would claim: nothing started.
            store = Store.open(root / ".nightcrew" / "nightcrew.db", create=False)
            try:
                run = store.latest_run()
                assert run is not None and run.orchestrator_pid == pid
                asked = ControlRequests(store).add(run.id, pid, "pause", by="test", origin="test")
                wait_for(
                    lambda: ControlRequests(store).get(asked).answer is not None, what="answer"
                )
                assert ControlRequests(store).get(asked).answer == "already paused"
            finally:
                store.close()
            assert not (signals / "started-Two").exists()
            assert feature_states(root)["Two"] == "pending"

            page.locator("#ctl-resume").click()
            expect(said).to_contain_text("resumed: claiming goes on", timeout=WAIT_MS)
            wait_for((signals / "started-Two").exists, what="feature Two's agent")
            (signals / "release-Two").write_text("")
            wait_for(lambda: not alive(pid), what="the build to end")  # type: ignore[arg-type]
            assert feature_states(root) == {"One": "passed", "Two": "passed"}
            log = (root / ".nightcrew" / "dashboard-build.log").read_text()
            assert "paused by " in log and "resumed by " in log
            page.close()
        finally:
            for name in ("One", "Two"):
                (signals / f"release-{name}").write_text("")
            if pid is not None and alive(pid):
                os.killpg(pid, signal.SIGTERM)
                wait_for(lambda: not alive(pid), what="the build to stop")  # type: ignore[arg-type]


@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_the_board_fits_the_screen(
    chromium: Any, tmp_path: Path, size: str, viewport: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    shop = demo_board(tmp_path)
    with serving(env={"HOME": str(tmp_path)}) as server:
        page = chromium.new_page(viewport=viewport)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(f"{server.base}/p/{project_key(shop.root)}/backlog?token={server.token}")
        expect(page.locator("#conn")).to_have_class("conn live", timeout=WAIT_MS)
        expect(page.locator("#board .card")).to_have_count(9, timeout=WAIT_MS)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        page.get_by_label("select #5").check()
        screenshot(page, f"backlog-{size}")
        page.locator(".est-head summary").click()  # the header's estimate opens on its basis
        basis = page.locator(".est-basis")
        expect(basis).to_contain_text("Basis: medians of 2 passed features")
        shown = box(basis)
        assert shown["x"] >= 0 and shown["x"] + shown["width"] <= viewport["width"]
        screenshot(page, f"backlog-estimate-{size}")

        page.goto(f"{server.base}/p/{project_key(shop.root)}/")
        page.locator("summary", has_text="Start a build").click()
        form = box(page.locator("#start-build"))
        assert form["x"] >= 0
        assert form["x"] + form["width"] <= viewport["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        screenshot(page, f"controls-{size}")
        page.close()
        assert problems == []


def demo_board(tmp_path: Path) -> Seeded:
    """A backlog mid-build: some passed (one at an unknown cost), one failed,
    one in progress, one asking a person, one skipped, one blocked, one manual."""
    from nightcrew.work.backlog import FeatureSpec

    shop = Seeded.build(
        tmp_path / "shop",
        ["Login form", "Cart totals with tax", "Search box", "Dark mode", "Order history",
         "Checkout with Stripe", "Invoice PDF export", "Admin dashboard"],
    )  # fmt: skip
    backlog = Backlog(shop.store)
    backlog.create([FeatureSpec(name="Check the emails read well", manual=True)], source="test")
    backlog.set_dependencies(7, [3])
    for fid, state, cost in ((1, AttemptState.PASSED, "0.4210"), (2, AttemptState.PASSED, None),
                             (3, AttemptState.FAILED, "1.0500")):  # fmt: skip
        backlog.claim(fid, by="run-x")
        attempt = shop.attempt(fid, None)
        shop.finish(attempt, state, cost)
        backlog.count_attempt(fid)
        backlog.release(fid, ItemState(str(state)), by="run-x", reason="test")
    backlog.claim(4, by="run-x")
    shop.attempt(4, None)
    backlog.claim(6, by="run-x")
    backlog.request_input(6, "Stripe or Adyen? The spec names both.")
    backlog.skip([8], reason="later")
    backlog.retry([5], model="opus", reason="test")
    return shop
