"""The timeline, dependency graph, charts and estimates pages over a seeded
store, through the real app (the guard included): what they show, their
refusals (one line, 4xx), and the exports parsing as NDJSON and markdown in
the formats ``nightcrew logs --json/--markdown`` print."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nightcrew import paths
from nightcrew.cli.log_lines import log_line
from nightcrew.core import events as ev
from nightcrew.core.states import AttemptState
from nightcrew.server.app import create_app
from nightcrew.server.security import Policy, allowed_hosts, load_token
from nightcrew.views.project_overview import project_key
from tests.dashboard_seed import Seeded

BASE = "http://127.0.0.1:8765"


@pytest.fixture
def shop(tmp_path: Path) -> Seeded:
    shop = Seeded.build(tmp_path / "shop", ["Login", "Cart", "Checkout"])
    login = shop.attempt(1, 1)
    shop.tool(login, "Read", lane=1, file_path="src/login.py")
    shop.response(login, "0.0100", lane=1)
    shop.finish(login, AttemptState.PASSED, "0.0100")
    cart = shop.attempt(2, 2)
    shop.tool(cart, "Bash", lane=2, command="pytest -q tests/test_cart.py")
    shop.emit(
        ev.ThinkingSeen(
            run_id=shop.run.id, item_id=cart.item_id, attempt_id=cart.id, lane=2,
            text="The total must include | tax <b>before</b> rounding",
        )
    )  # fmt: skip
    shop.response(cart, None, lane=2)  # a model without a price
    return shop


@pytest.fixture
def client(shop: Seeded) -> Iterator[TestClient]:
    token = load_token(paths.user_home())[0]
    app = create_app(Policy(allowed_hosts("127.0.0.1"), token, token), log_line=log_line)
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:  # type: ignore[arg-type]
        assert client.get(f"/?token={token}").status_code == 303
        yield client


def test_the_timeline_shows_the_runs_actions_newest_first_and_the_thinking_lane(
    client: TestClient, shop: Seeded
) -> None:
    page = client.get(f"/p/{project_key(shop.root)}/timeline?level=debug")
    assert page.status_code == 200, page.text
    text = page.text
    assert text.index("Bash: pytest -q tests/test_cart.py") < text.index("Read: src/login.py")
    assert 'class="think on" data-lane="2"' in text and "thinking…" in text
    assert 'class="think" data-lane="1"' in text  # its attempt finished after its last tool call
    assert "&lt;b&gt;before&lt;/b&gt;" in text  # the agent's words are escaped


def test_timeline_filters_narrow_it_and_a_bad_one_is_one_line_and_400(
    client: TestClient, shop: Seeded
) -> None:
    key = project_key(shop.root)
    lane1 = client.get(f"/p/{key}/timeline?lane=1&level=debug").text
    assert "Read: src/login.py" in lane1 and "tests/test_cart.py" not in lane1
    grep = client.get(f"/p/{key}/timeline?q=CART&level=debug").text
    assert "tests/test_cart.py" in grep and "Read: src/login.py" not in grep
    kind = client.get(f"/p/{key}/timeline?kind=tool_call").text
    assert 'data-kind="tool_call"' in kind and 'data-kind="thinking"' not in kind
    bad = client.get(f"/p/{key}/timeline?kind=tool_cal")
    assert bad.status_code == 400
    assert bad.text.count("\n") == 1 and "tool_cal: no such event kind" in bad.text
    assert client.get(f"/p/{key}/timeline?lane=x").status_code == 400
    assert client.get(f"/p/{key}/timeline?level=loud").status_code == 400
    assert client.get(f"/p/{key}/timeline?run=nope").status_code == 400
    older = client.get(f"/p/{key}/timeline?before=yesterday")
    assert (
        older.status_code == 400
        and older.text == "before=yesterday: not an event id (a whole number)\n"
    )


def test_timeline_pages_back_by_cursor(client: TestClient, shop: Seeded) -> None:
    attempt = shop.attempt(3, 3)
    for n in range(120):
        shop.tool(attempt, "Read", lane=3, file_path=f"src/f{n}.py")
    key = project_key(shop.root)
    first = client.get(f"/p/{key}/timeline?lane=3").text
    assert "src/f119.py" in first and "src/f19.py<" not in first
    older = first.split('class="older" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = client.get(older).text
    assert "src/f19.py" in second and "src/f119.py" not in second
    assert "sse-connect" not in second  # an older page is not followed live


def test_exports_parse_as_ndjson_and_markdown(client: TestClient, shop: Seeded) -> None:
    key = project_key(shop.root)
    got = client.get(f"/p/{key}/timeline.ndjson?level=debug&lane=2")
    assert got.status_code == 200
    assert "attachment" in got.headers["content-disposition"]
    rows = [json.loads(line) for line in got.text.splitlines()]
    assert [r["kind"] for r in rows] == ["tool_call", "thinking", "usage_seen"]
    assert rows[0]["line"].endswith("Bash: pytest -q tests/test_cart.py")
    assert {"id", "ts", "run_id", "level", "lane", "payload"} <= set(rows[0])
    md = client.get(f"/p/{key}/timeline.md?level=debug&lane=2").text.splitlines()
    assert md[0] == f"# nightcrew log: run {shop.run.id}"
    assert md[2] == "| time (UTC) | run | lane | level | event |"
    body = md[4:]
    assert len(body) == 3 and all(r.startswith("| ") and r.count(" | ") == 4 for r in body)
    assert "\\|" in body[1] and "&lt;b&gt;" in body[1]  # a pipe and HTML never break the table


def test_the_graph_links_every_feature_coloured_by_state(client: TestClient, shop: Seeded) -> None:
    shop.store.db.execute("INSERT INTO feature_deps (feature_id, depends_on) VALUES (3, 2)")
    shop.store.db.execute("UPDATE features SET state = 'passed' WHERE id = 1")
    key = project_key(shop.root)
    page = client.get(f"/p/{key}/graph")
    assert page.status_code == 200
    for n in (1, 2, 3):
        assert f'href="/p/{key}/features/{n}"' in page.text
    assert 'class="node state-passed" data-id="1"' in page.text
    assert 'data-from="2" data-to="3"' in page.text
    hidden = client.get(f"/p/{key}/graph?passed=hide").text
    assert 'data-id="1"' not in hidden and "1 passed hidden" in hidden
    assert client.get(f"/p/{key}/graph?passed=maybe").status_code == 400


def test_charts_keep_an_unknown_cost_apart(client: TestClient, shop: Seeded) -> None:
    key = project_key(shop.root)
    page = client.get(f"/p/{key}/charts")
    assert page.status_code == 200, page.text
    assert "with cost unknown" in page.text
    data = client.get(f"/api/p/{key}/charts").json()
    features = {f["id"]: f for f in data["features"]}
    assert features[1]["cost_usd"] == "0.0100"
    assert features[2]["cost_usd"] is None and features[2]["unknown_cost_calls"] == 1
    assert [c["label"] for c in data["cache"]] == ["#1 a1", "#2 a1"]


def test_the_project_page_estimates_whats_left_with_its_basis(
    client: TestClient, shop: Seeded
) -> None:
    shop.store.db.execute("UPDATE features SET state = 'passed' WHERE id = 1")
    page = client.get(f"/p/{project_key(shop.root)}/").text
    assert "Basis: medians of 1 passed feature" in page
    assert "≈ $0.0200" in page  # two left at the one passed feature's $0.01


def test_a_lane_card_says_its_agent_is_thinking(client: TestClient, shop: Seeded) -> None:
    shop.claim(2, 2)
    shop.store.db.execute("UPDATE work_items SET state = 'in_progress' WHERE feature_id = 2")
    page = client.get(f"/p/{project_key(shop.root)}/").text
    card = page.split('data-lane="2"', 1)[1].split("</article>", 1)[0]
    assert "thinking…" in card and "tax &lt;b&gt;before&lt;/b&gt; rounding" in card
    attempt = shop.store.attempts(item_id=shop.items[2].id)[0]
    shop.tool(attempt, "Edit", lane=2, file_path="src/cart.py")  # a tool call after it
    page = client.get(f"/p/{project_key(shop.root)}/").text
    assert "thinking…" not in page.split('data-lane="2"', 1)[1].split("</article>", 1)[0]


def test_the_estimate_as_json_names_its_basis(client: TestClient, shop: Seeded) -> None:
    shop.store.db.execute("UPDATE features SET state = 'passed' WHERE id = 1")
    data = client.get(f"/api/p/{project_key(shop.root)}/estimate").json()
    assert (data["left"], data["passed"], data["cost_usd"]) == (2, 1, "0.0200")
    assert data["forecast"]["samples"] == 1 and data["categories"][0]["samples"] == 1


def test_a_large_backlogs_graph_leaves_the_passed_features_out_unless_asked(
    client: TestClient, shop: Seeded
) -> None:
    from nightcrew.store.backlog import Backlog
    from nightcrew.work.backlog import FeatureSpec

    Backlog(shop.store).create(
        [FeatureSpec(name=f"More {n}", acceptance=("true",)) for n in range(250)], source="test"
    )
    shop.store.db.execute("UPDATE features SET state = 'passed' WHERE id <= 100")
    key = project_key(shop.root)
    page = client.get(f"/p/{key}/graph").text
    assert "100 passed hidden" in page and page.count('class="node ') == 153
    assert client.get(f"/p/{key}/graph?passed=show").text.count('class="node ') == 253


def test_the_project_stream_tells_the_page_to_fetch_its_estimate_when_a_feature_ends(
    client: TestClient, shop: Seeded
) -> None:
    from nightcrew.server import activity
    from nightcrew.server.project_page import ProjectSource
    from nightcrew.server.render import Renderer

    source = ProjectSource(shop.root, Renderer("csrf"), activity.last_event_id(shop.store))
    try:
        cart = shop.store.attempts(item_id=shop.items[2].id)[0]
        shop.tool(cart, "Edit", lane=2, file_path="src/cart.py")
        sent, _ = source.tick()
        assert any("event: activity" in m for m in sent)
        assert not any("event: estimate" in m for m in sent)  # a tool call changes nothing left

        shop.store.db.execute("UPDATE features SET state = 'passed' WHERE id IN (1, 2)")
        shop.emit(ev.ItemPassed(run_id=shop.run.id, item="feature #2", commit="abc123"))
        sent, _ = source.tick()
        assert [m for m in sent if "event: estimate" in m] != []
    finally:
        source.close()
    fragment = client.get(f"/p/{project_key(shop.root)}/estimate")  # what the page then fetches
    assert fragment.status_code == 200
    assert "Basis: medians of 2 passed features" in fragment.text
    assert "<dt>features left</dt><dd>1</dd>" in fragment.text


def test_the_backlog_page_header_gets_the_estimate_from_its_stream_and_keeps_it_current(
    client: TestClient, shop: Seeded
) -> None:
    from nightcrew.server.kanban_page import BoardSource
    from nightcrew.server.render import Renderer

    shop.store.db.execute("UPDATE features SET state = 'passed' WHERE id = 1")
    key = project_key(shop.root)
    page = client.get(f"/p/{key}/backlog").text
    assert '<span id="estimate-head" sse-swap="estimate"></span>' in page  # filled by the stream

    source = BoardSource(key, shop.root, Renderer("csrf"))
    try:
        first, _ = source.tick()  # a new stream's first message has it
        [estimate] = [m for m in first if m.startswith("event: estimate")]
        assert "2 left · " in estimate and "≈ $0.0200" in estimate
        assert "Basis: medians of 1 passed feature" in estimate
        cart = shop.store.attempts(item_id=shop.items[2].id)[0]
        shop.finish(cart, AttemptState.PASSED, "0.0300")
        shop.store.db.execute("UPDATE features SET state = 'passed' WHERE id = 2")
        source.watch.rendered_at = float("-inf")  # its half-second throttle is not tested here
        sent, _ = source.tick()
        [estimate] = [m for m in sent if m.startswith("event: estimate")]
        assert "1 left" in estimate and "≈ $0.0200" in estimate  # the median of $0.01 and $0.03
    finally:
        source.close()
