"""The timeline, dependency graph and charts in a real browser against a
real ``nightcrew serve``: the timeline follows the run live and shows the
lane that is thinking, a filter typed in the form becomes the page's URL,
the graph's boxes open their feature, and every page fits a phone's width
without a script error. Screenshots go to ``$NIGHTCREW_SCREENSHOTS``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from nightcrew.core import events as ev
from nightcrew.views.project_overview import project_key
from tests.browser.test_dashboard_pages import DESKTOP, PHONE, WAIT_MS, demo_project, screenshot
from tests.dashboard_server import serving


def test_the_timeline_follows_the_run_and_its_filters_are_links(
    chromium: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    shop = demo_project(tmp_path)
    cart = shop.store.attempts(item_id=shop.items[2].id)[0]
    with serving() as server:
        page = chromium.new_page(viewport=DESKTOP)
        key = project_key(shop.root)
        page.goto(f"{server.base}/p/{key}/timeline?token={server.token}")
        rows = page.locator("#tl .ev")
        expect(page.locator("#tl")).to_contain_text("Edit: src/cart/totals.py", timeout=WAIT_MS)
        expect(page.locator("#conn")).to_have_class("conn live", timeout=WAIT_MS)

        shop.emit(
            ev.ThinkingSeen(
                run_id=shop.run.id, item_id=cart.item_id, attempt_id=cart.id, lane=2,
                text="Tax applies before the discount",
            )
        )  # fmt: skip
        expect(page.locator('.think.on[data-lane="2"]')).to_contain_text(
            "thinking…", timeout=WAIT_MS
        )
        shop.tool(cart, "Bash", lane=2, command="pytest -q tests/test_cart.py")
        expect(rows.first).to_contain_text("Bash: pytest -q tests/test_cart.py", timeout=WAIT_MS)
        expect(page.locator('.think[data-lane="2"]')).not_to_have_class("think on", timeout=WAIT_MS)

        page.locator('input[name="lane"]').fill("1")
        page.locator('input[name="lane"]').dispatch_event("change")
        expect(page).to_have_url(re.compile(r"/timeline\?.*\blane=1\b"), timeout=WAIT_MS)
        expect(rows.first).to_contain_text("pytest -q tests/test_login.py", timeout=WAIT_MS)
        assert "test_cart" not in page.locator("#tl").inner_text()
        # the swapped-in view follows the run with its own filters
        login = shop.store.attempts(item_id=shop.items[1].id)[0]
        shop.tool(cart, "Bash", lane=2, command="make lane-two")
        shop.tool(login, "Bash", lane=1, command="make lane-one")
        expect(rows.first).to_contain_text("Bash: make lane-one", timeout=WAIT_MS)
        assert "lane-two" not in page.locator("#tl").inner_text()
        with page.expect_download() as download:
            page.locator("a.export", has_text="NDJSON").click()
        assert Path(download.value.path()).read_text().count('"lane": 1') >= 1

        # The project page's estimate follows the run too: fetched when a feature ends, only then.
        fetched: list[str] = []
        page.on("request", lambda r: fetched.append(r.url) if "/estimate" in r.url else None)
        page.goto(f"{server.base}/p/{key}/")
        estimate = page.locator("#estimate-live")
        expect(estimate).to_contain_text("4 features left; none has passed yet", timeout=WAIT_MS)
        expect(page.locator("#conn")).to_have_class("conn live", timeout=WAIT_MS)
        shop.tool(cart, "Bash", lane=2, command="pytest -q")  # an event that changes nothing left
        expect(page.locator("#feed .ev").first).to_contain_text("pytest -q", timeout=WAIT_MS)
        assert fetched == []
        shop.store.db.execute("UPDATE features SET state = 'passed' WHERE id = 4")
        shop.emit(ev.ItemPassed(run_id=shop.run.id, item="feature #4", commit="4f1c2d9e8b"))
        expect(estimate).to_contain_text("Basis: medians of 1 passed feature", timeout=WAIT_MS)
        expect(estimate.locator("dd").first).to_have_text("3")
        assert fetched == [f"{server.base}/p/{key}/estimate"]
        page.close()


@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_timeline_graph_and_charts_fit_the_screen(
    chromium: Any, tmp_path: Path, size: str, viewport: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    shop = demo_project(tmp_path)
    shop.store.db.executemany(
        "INSERT INTO feature_deps (feature_id, depends_on) VALUES (?, ?)", [(2, 1), (3, 1), (4, 2)]
    )
    shop.store.db.execute("UPDATE features SET state = 'passed' WHERE id = 4")
    key = project_key(shop.root)
    with serving(env={"HOME": str(tmp_path)}) as server:
        page = chromium.new_page(viewport=viewport)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(f"{server.base}/p/{key}/timeline?token={server.token}")
        expect(page.locator("#tl .ev").first).to_be_visible(timeout=WAIT_MS)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        screenshot(page, f"timeline-{size}")

        page.goto(f"{server.base}/p/{key}/graph")
        expect(page.locator(".depgraph .node")).to_have_count(4, timeout=WAIT_MS)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        screenshot(page, f"graph-{size}")
        page.locator('.depgraph .node[data-id="2"]').click()
        expect(page).to_have_url(f"{server.base}/p/{key}/features/2", timeout=WAIT_MS)

        page.goto(f"{server.base}/p/{key}/charts")
        expect(page.locator("#cost-per-day svg.chart")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator("#cost-per-feature li")).to_have_count(4)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        screenshot(page, f"charts-{size}")

        page.goto(f"{server.base}/p/{key}/")
        expect(page.locator("#estimate")).to_contain_text("Basis", timeout=WAIT_MS)
        screenshot(page, f"project-estimate-{size}")
        page.close()
        problems = [p for p in problems if "404" not in p]  # the feature page is another's
        assert problems == []


def test_a_timeline_that_lost_its_server_shows_every_entry_written_meanwhile_once(
    chromium: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    from tests.dashboard_seed import Seeded

    shop = Seeded.build(tmp_path / "shop", ["Login"])
    attempt = shop.attempt(1, None)
    shop.tool(attempt, "Read", file_path="src/login.py")
    page = chromium.new_page(viewport=DESKTOP)
    key = project_key(shop.root)
    with serving() as first:
        port = first.port
        page.goto(f"{first.base}/p/{key}/timeline?token={first.token}")
        expect(page.locator("#conn")).to_have_class("conn live", timeout=WAIT_MS)
        shop.tool(attempt, "Edit", file_path="src/login.py")
        expect(page.locator("#tl .ev").first).to_contain_text("Edit: src/login.py", timeout=WAIT_MS)
    expect(page.locator("#conn")).to_have_class("conn down", timeout=WAIT_MS)
    shop.tool(attempt, "Bash", command="pytest -q")  # while no server runs
    with serving("--port", str(port)):
        shop.tool(attempt, "Write", file_path="src/cart.py")
        lines = page.locator("#tl .ev .line")
        expect(lines).to_have_text(
            [
                "  feature #1 › Write: src/cart.py",
                "  feature #1 › Bash: pytest -q",
                "  feature #1 › Edit: src/login.py",
                "  feature #1 › Read: src/login.py",
            ],
            timeout=WAIT_MS,
        )
    page.close()
