"""A real browser for the dashboard's pages: Playwright driving Debian's
``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it), never a
browser downloaded at run time. Without it these tests are skipped, unless
``NIGHTCREW_REQUIRE_BROWSER`` is set (CI), where its absence fails them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/lib/chromium-browser/chromium-browser")


def chromium_binary() -> str | None:
    """The browser itself, not Debian's wrapper script (which adds flags)."""
    given = os.environ.get("NIGHTCREW_CHROMIUM")
    if given:
        return given
    for path in CANDIDATES:
        if Path(path).is_file():
            return path
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One browser per test module, never per session: Playwright's sync API
    keeps an event loop running in the main thread while it is open, and a
    worker that goes on to other modules' tests (xdist steals work between
    workers) would find ``asyncio.run`` refused there."""
    binary = chromium_binary()
    if binary is None:
        if os.environ.get("NIGHTCREW_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed: apt-get install -y chromium")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary)
        try:
            yield browser
        finally:
            browser.close()
