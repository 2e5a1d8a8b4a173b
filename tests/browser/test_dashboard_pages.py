"""The dashboard in a real browser against a real server process (the cost
badge following a real build is in test_sim_builds.py): a page that lost its
server picks up every event written meanwhile exactly once, and each page
fits a phone's width. Screenshots of each page at 1280×800 and 390×844 go
to ``$NIGHTCREW_SCREENSHOTS`` when it is set (``docs/screenshots`` holds
the ones the README shows)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from nightcrew.core.states import AttemptState, RunState
from nightcrew.views.project_overview import project_key
from tests.dashboard_seed import Seeded
from tests.dashboard_server import serving

WAIT_MS = 30_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def test_a_page_that_lost_its_server_gets_every_event_written_meanwhile_once(
    chromium: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    shop = Seeded.build(tmp_path / "shop", ["Login", "Cart"])
    attempt = shop.attempt(1, None)
    shop.tool(attempt, "Read", file_path="src/login.py")
    shop.response(attempt, "0.0100")
    page = chromium.new_page(viewport=DESKTOP)
    with serving() as first:
        port = first.port
        page.goto(f"{first.base}/p/{project_key(shop.root)}/?token={first.token}")
        expect(page.locator("#cost .badge")).to_have_text("$0.0100", timeout=WAIT_MS)
        expect(page.locator("#conn")).to_have_class("conn live", timeout=WAIT_MS)
    expect(page.locator("#conn")).to_have_class("conn down", timeout=WAIT_MS)

    # written while no server runs: the page must show each of these once
    shop.tool(attempt, "Edit", file_path="src/login.py")
    shop.response(attempt, "0.0200")
    shop.tool(attempt, "Bash", command="pytest -q")
    with serving("--port", str(port)):
        expect(page.locator("#cost .badge")).to_have_text("$0.0300", timeout=WAIT_MS)
        details = page.locator("#feed .ev .detail")
        expect(details).to_have_text(
            ["Bash: pytest -q", "Edit: src/login.py", "Read: src/login.py"], timeout=WAIT_MS
        )
        shop.finish(attempt, AttemptState.PASSED, "0.0300")
        shop.tool(shop.attempt(2, None), "Write", file_path="src/cart.py")
        expect(details.first).to_have_text("Write: src/cart.py", timeout=WAIT_MS)
        page.reload()
        expect(page.locator("#feed .ev .detail")).to_have_text(
            ["Write: src/cart.py", "Bash: pytest -q", "Edit: src/login.py", "Read: src/login.py"]
        )
    page.close()


def box(locator: Any) -> dict[str, float]:
    """Where an element is on screen. A stream may swap its part of the page
    in while it is measured (the same things in the same places: a drag
    measured on the old board lands right on the new one), which leaves
    nothing to measure for a moment: measure again once it is visible."""
    from playwright.sync_api import expect

    for _ in range(20):
        expect(locator).to_be_visible(timeout=WAIT_MS)
        found: dict[str, float] | None = locator.bounding_box()
        if found is not None:
            return found
    raise AssertionError(f"{locator} never stayed on the page long enough to be measured")


def screenshot(page: Any, name: str) -> None:
    where = os.environ.get("NIGHTCREW_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(where) / f"{name}.png"), full_page=False)


@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_each_page_fits_the_screen_with_the_cost_in_view(
    chromium: Any, tmp_path: Path, size: str, viewport: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    shop = demo_project(tmp_path)
    docs = Seeded.build(tmp_path / "docs-site", ["Search page"])
    docs.history({6: "0.80", 5: "0.20", 2: "1.10"})
    docs.store.set_run_state(docs.run.id, RunState.SUCCEEDED, reason="the backlog is done")
    docs.store.close()
    with serving(env={"HOME": str(tmp_path)}) as server:  # paths read ~/shop
        page = chromium.new_page(viewport=viewport)
        problems: list[str] = []  # script errors, refused by the content security policy …
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(f"{server.base}/?token={server.token}")
        expect(page.locator(".project")).to_have_count(2, timeout=WAIT_MS)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        screenshot(page, f"projects-{size}")

        page.goto(f"{server.base}/p/{project_key(shop.root)}/")
        expect(page.locator("#lanes .lane")).to_have_count(3, timeout=WAIT_MS)
        expect(page.locator("#conn")).to_have_class("conn live", timeout=WAIT_MS)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        badge = box(page.locator("#cost .badge"))
        assert badge["x"] + badge["width"] <= viewport["width"] and badge["y"] < 120
        screenshot(page, f"project-{size}")
        page.close()
        assert problems == []


def demo_project(tmp_path: Path) -> Seeded:
    """A parallel build mid-flight: two lanes at work, one feature in the
    merge queue, one landed, budgets set, a model without a price."""
    from nightcrew.core import events as ev

    shop = Seeded.build(
        tmp_path / "shop",
        ["Login form", "Cart totals with tax", "Search box", "Dark mode"],
        config={"parallel": 2, "max_budget_usd": 5, "max_item_usd": 1.5, "daily_budget_usd": 20},
    )
    shop.history({13: "0.42", 12: "1.10", 10: "0.35", 9: "2.05", 8: "1.60", 6: "0.90",
                  5: "1.35", 4: "2.40", 3: "1.80", 2: "0.75", 1: "1.25"})  # fmt: skip
    shop.claim(4, 1)
    dark = shop.attempt(4, 1)
    shop.response(dark, "0.3100", lane=1)
    shop.finish(dark, AttemptState.PASSED, "0.3100")
    shop.emit(
        ev.MergeLanded(
            run_id=shop.run.id,
            lane=1,
            item="feature #4",
            branch="main",
            sha="4f1c2d9e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
            merge_seconds=0.12,
            gate_seconds=4.8,
        )
    )
    shop.claim(1, 1)
    login = shop.attempt(1, 1)
    for cost in ("0.0412", "0.0388", "0.0519"):
        shop.response(login, cost, lane=1)
    shop.tool(login, "Bash", lane=1, command="pytest -q tests/test_login.py")
    shop.claim(2, 2)
    cart = shop.attempt(2, 2, model="claude-opus-4-5")
    shop.response(cart, "0.2100", lane=2)
    shop.response(cart, None, lane=2)  # a model without a price: at least $0.21
    shop.tool(cart, "Edit", lane=2, file_path="src/cart/totals.py")
    shop.claim(3, 3)
    search = shop.attempt(3, 3)
    shop.response(search, "0.1200", lane=3)
    shop.store.db.execute("UPDATE attempts SET agent_seconds = 41.0 WHERE id = ?", (search.id,))
    shop.emit(ev.MergeQueued(run_id=shop.run.id, lane=3, item="feature #3", ahead=0))
    return shop


def test_the_projects_page_follows_each_projects_spend(chromium: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    shop = Seeded.build(tmp_path / "shop", ["Login"])
    attempt = shop.attempt(1, None)
    shop.response(attempt, "0.0100")
    with serving() as server:
        page = chromium.new_page(viewport=DESKTOP)
        page.goto(f"{server.base}/?token={server.token}")
        card = page.locator(f'.project[data-key="{project_key(shop.root)}"]')
        expect(card.locator(".today")).to_have_text("$0.0100", timeout=WAIT_MS)
        expect(page.locator("#conn")).to_have_class("conn live", timeout=WAIT_MS)
        shop.response(attempt, "0.0200")
        expect(card.locator(".today")).to_have_text("$0.0300", timeout=WAIT_MS)
        expect(card.locator(".total")).to_have_text("$0.0300")
        shop.response(attempt, None)  # a response nobody can price
        expect(card.locator(".today")).to_have_text("≥$0.0300", timeout=WAIT_MS)
        page.close()
