"""The feature page's routes through the real app and its guard: the page
and its JSON twin, one line and a 4xx for an unknown feature or a bad
comment, the CSRF token required to comment or send, and sending retries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nightcrew import paths
from nightcrew.core.states import ItemState
from nightcrew.server.app import create_app
from nightcrew.server.security import Policy, allowed_hosts, derive, load_token
from nightcrew.store.backlog import Backlog
from nightcrew.views.project_overview import project_key
from tests.dashboard_seed import Seeded
from tests.unit.test_review import shop_with_attempts

BASE = "http://127.0.0.1:8765"


@pytest.fixture
def shop(tmp_path: Path) -> Seeded:
    return shop_with_attempts(tmp_path)


@pytest.fixture
def client() -> Iterator[tuple[TestClient, str]]:
    token = load_token(paths.user_home())[0]
    policy = Policy(allowed_hosts("127.0.0.1"), token, token)
    app = create_app(policy)
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:  # type: ignore[arg-type]
        assert client.get(f"/?token={token}").status_code == 303  # the cookie
        yield client, derive(token, "csrf")


def test_the_page_and_its_json_show_the_attempts(
    shop: Seeded, client: tuple[TestClient, str]
) -> None:
    http, _ = client
    key = project_key(shop.root)
    page = http.get(f"/p/{key}/features/1")
    assert page.status_code == 200
    assert "Attempt 2" in page.text and "tests/test_cart.py::test_total failed" in page.text
    assert 'data-file="src/cart.py"' in page.text and "unknown" in page.text
    data = http.get(f"/api/p/{key}/features/1").json()
    assert [a["state"] for a in data["attempts"]] == ["failed", "passed"]
    assert data["cost_usd"] is None  # one attempt's cost is unknown: the total is too
    item = http.get(f"/api/p/{key}/runs/{shop.run.id}/items/feature-1").json()
    assert item["label"] == "feature #1"
    html = http.get(f"/p/{key}/runs/{shop.run.id}/items/feature-1")
    assert html.status_code == 200 and "Attempt 2" in html.text
    assert 'id="review"' not in html.text  # Review is on the feature's own page


def test_unknown_things_are_one_line_and_404(shop: Seeded, client: tuple[TestClient, str]) -> None:
    http, _ = client
    key = project_key(shop.root)
    missing = http.get(f"/p/{key}/features/99")
    assert missing.status_code == 404 and missing.text == "no feature #99 in the backlog\n"
    item = http.get(f"/api/p/{key}/runs/{shop.run.id}/items/nope")
    assert item.status_code == 404 and item.text.count("\n") == 1


def test_commenting_needs_the_csrf_token_and_a_good_comment(
    shop: Seeded, client: tuple[TestClient, str]
) -> None:
    http, csrf = client
    url = f"/p/{project_key(shop.root)}/features/1/review"
    form = {"attempt": "1", "file": "src/cart.py", "line": "3", "text": "use a Decimal"}
    assert http.post(url, data=form).status_code == 403
    headers = {"X-CSRF-Token": csrf, "Origin": BASE}
    bad = http.post(url, data={**form, "line": "0"}, headers=headers)
    assert bad.status_code == 400 and bad.text == "line 0: lines count from 1\n"
    done = http.post(url, data=form, headers=headers)
    assert done.status_code == 200
    assert "src/cart.py:3" in done.text and 'hx-swap-oob="true"' in done.text

    sent = http.post(url + "/send", headers=headers)
    assert sent.status_code == 200 and sent.headers["HX-Refresh"] == "true"
    assert Backlog(shop.store).feature(1).state == ItemState.PENDING
    again = http.post(url + "/send", headers=headers)
    assert again.status_code == 400
    assert again.text == "feature #1 has no review comments to send\n"


def test_the_text_reads_as_markdown_and_its_html_stays_text(
    shop: Seeded, client: tuple[TestClient, str]
) -> None:
    http, _ = client
    shop.store.db.execute(
        "UPDATE features SET description = ? WHERE id = 1",
        ("### Totals\n\nAdd `total()`.\n\n<script>alert(1)</script> [x](javascript:alert(1))",),
    )
    page = http.get(f"/p/{project_key(shop.root)}/features/1").text
    assert "<h3>Totals</h3>" in page and "<code>total()</code>" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page


def test_the_feature_stream_speaks_only_when_what_the_page_shows_moved(
    shop: Seeded, client: tuple[TestClient, str]
) -> None:
    from nightcrew.core import events as ev
    from nightcrew.core.states import AttemptState
    from nightcrew.server.feature_live import WorkSource
    from nightcrew.views.work_live import feature_signature

    http, _ = client
    key = project_key(shop.root)
    page = http.get(f"/p/{key}/features/1").text
    shown = feature_signature(shop.store, 1)
    assert f'/p/{key}/features/1/events?sig={shown}"' in page  # the page says what it shows
    source = WorkSource(shop.root, lambda store: feature_signature(store, 1), shown)

    def tick() -> list[str]:
        source.watch.rendered_at = float("-inf")  # its half-second throttle is not tested here
        return source.tick()[0]

    try:
        assert tick() == []
        attempt = shop.attempt(1, None)
        shop.response(attempt, "0.0200")
        other = shop.attempt(2, None)  # another feature's attempt
        moved = tick()
        assert len(moved) == 1 and moved[0].startswith("event: feature\n")
        shop.tool(attempt, "Bash", command="pytest -q")  # an agent at work: nothing shown moved
        shop.response(attempt, "0.0004")  # still 2 cents so far
        shop.finish(other, AttemptState.PASSED, "0.0500")
        assert tick() == []
        shop.response(attempt, "0.0100")  # 3 cents so far: the page shows its cost so far
        assert len(tick()) == 1
        shop.store.record_gate(
            attempt.id, name="tests", command="pytest -q", passed=False, duration_s=1.0,
            exit_code=1, timed_out=False, tests_passed=2, tests_failed=1, failed_ids=[],
            regressions=[], output_path=None, digest="tests/test_cart.py::test_tax failed",
        )  # fmt: skip
        assert len(tick()) == 1
        shop.finish(attempt, AttemptState.FAILED, "0.0300")
        shop.emit(
            ev.DecisionMade(run_id=shop.run.id, action="retry", reason="a gate failed",
                            model="opus", feature=1, item="feature #1")
        )  # fmt: skip
        assert len(tick()) == 1
    finally:
        source.close()

    live = http.get(f"/p/{key}/features/1/live")  # what the page fetches then
    assert live.status_code == 200
    assert 'id="attempt-3"' in live.text and "tests/test_cart.py::test_tax failed" in live.text
    assert 'id="work-cost" hx-swap-oob="true"' in live.text
    assert http.get(f"/p/{key}/features/9/events").status_code == 404


def test_a_run_items_page_is_live_as_a_features_is(
    shop: Seeded, client: tuple[TestClient, str]
) -> None:
    from nightcrew.core.states import AttemptState
    from nightcrew.server.feature_live import WorkSource
    from nightcrew.views.work_live import item_signature

    http, _ = client
    key, run = project_key(shop.root), shop.run.id
    page = http.get(f"/p/{key}/runs/{run}/items/feature-2").text
    shown = item_signature(shop.store, run, "feature-2")
    assert shown and f'/p/{key}/runs/{run}/items/feature-2/events?sig={shown}"' in page
    assert f'hx-get="/p/{key}/runs/{run}/items/feature-2/live"' in page
    source = WorkSource(shop.root, lambda store: item_signature(store, run, "feature-2"), shown)

    def tick() -> list[str]:
        source.watch.rendered_at = float("-inf")  # its half-second throttle is not tested here
        return source.tick()[0]

    try:
        assert tick() == []
        attempt = shop.attempt(2, None)
        assert len(tick()) == 1  # a new attempt
        shop.tool(attempt, "Bash", command="pytest -q")  # an agent at work: nothing shown moved
        shop.response(attempt, "0.0100")
        assert tick() == []
        shop.finish(attempt, AttemptState.PASSED, "0.0300")
        assert len(tick()) == 1
    finally:
        source.close()
    live = http.get(f"/p/{key}/runs/{run}/items/feature-2/live")
    assert live.status_code == 200 and "Attempt 1" in live.text and 'id="work-cost"' in live.text
    missing = http.get(f"/p/{key}/runs/{run}/items/nope/events")
    assert missing.status_code == 404 and missing.text == f"run {run} has no item nope\n"


def test_a_running_attempt_shows_what_its_responses_cost_so_far(
    tmp_path: Path, client: tuple[TestClient, str]
) -> None:
    http, _ = client
    shop = Seeded.build(tmp_path / "docs", ["Search", "Tags"], config={"parallel": 2})
    search, tags = shop.attempt(1, None), shop.attempt(2, None)
    shop.response(search, "0.0125")
    shop.response(search, "0.0100")
    shop.response(tags, "0.0100")
    shop.response(tags, None)  # a model with no known price
    key = project_key(shop.root)

    data = http.get(f"/api/p/{key}/features/1").json()
    assert data["attempts"][0]["cost_usd"] == "0.0225" and data["attempts"][0]["cost_so_far"]
    assert (data["cost_usd"], data["spent_usd"]) == ("0", "0.0225")  # none finished yet
    page = http.get(f"/p/{key}/features/1").text
    assert '<dd class="attempt-cost">$0.0225 so far</dd>' in page
    assert 'a running one so far">$0.0225</span>' in page  # the header's badge too
    other = http.get(f"/api/p/{key}/features/2").json()
    assert other["attempts"][0]["cost_usd"] is None and not other["attempts"][0]["cost_so_far"]
    assert other["spent_usd"] is None
    page = http.get(f"/p/{key}/features/2").text
    assert '<dd class="attempt-cost">unknown</dd>' in page and "badge unknown" in page
