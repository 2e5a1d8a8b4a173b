"""The Kanban page's changes and the project controls as HTTP handlers: each
does what the CLI's command does to the store, a POST without the CSRF
header changes nothing, and every bad input is one line and a 4xx (JSON
for a client that asks for it). The browser tests drive them from the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from nightcrew import paths
from nightcrew.core import events as ev
from nightcrew.core.states import AttemptState, ItemState
from nightcrew.project import Project
from nightcrew.server.app import create_app
from nightcrew.server.security import CSRF_HEADER, Policy, allowed_hosts, load_token
from nightcrew.store.backlog import Backlog
from nightcrew.views.project_overview import project_key
from tests.dashboard_seed import Seeded

BASE = "http://127.0.0.1:8765"


@pytest.fixture
def shop(tmp_path: Path) -> Seeded:
    return Seeded.build(tmp_path / "shop", ["Login", "Cart", "Search", "Dark mode"])


@pytest.fixture
def client(shop: Seeded) -> Iterator[TestClient]:
    """A browser that opened the printed URL: it holds the cookie."""
    token = load_token(paths.user_home())[0]
    policy = Policy(allowed_hosts("127.0.0.1"), token, token)
    with TestClient(create_app(policy), base_url=BASE, follow_redirects=False) as client:  # type: ignore[arg-type]
        assert client.get(f"/?token={token}").status_code == 303
        client.headers[CSRF_HEADER] = policy.csrf_token
        yield client


def url(shop: Seeded, path: str) -> str:
    return f"/p/{project_key(shop.root)}/{path}"


def order(shop: Seeded) -> list[int]:
    return [f.id for f in Backlog(shop.store).features()]


def state(shop: Seeded, feature_id: int) -> str:
    return str(Backlog(shop.store).feature(feature_id).state)


def test_a_post_without_the_csrf_header_is_refused_and_changes_nothing(
    client: TestClient, shop: Seeded
) -> None:
    del client.headers[CSRF_HEADER]
    for path, data in (
        ("backlog/skip", {"ids": "2"}),
        ("backlog/reorder", {"id": "3", "before": "1"}),
        ("control/pause", {}),
        ("build", {}),
    ):
        refused = client.post(url(shop, path), data=data)
        assert refused.status_code == 403
        assert (
            refused.text == "refused: no CSRF token (send X-CSRF-Token from the dashboard's page)\n"
        )
    assert order(shop) == [1, 2, 3, 4] and state(shop, 2) == "pending"


def test_reorder_moves_a_feature_before_another_as_backlog_reorder_does(
    client: TestClient, shop: Seeded
) -> None:
    moved = client.post(url(shop, "backlog/reorder"), data={"id": "4", "before": "2"})
    assert moved.status_code == 200
    assert "#4 now comes before #2" in moved.text
    assert order(shop) == [1, 4, 2, 3]
    last = client.post(url(shop, "backlog/reorder"), data={"id": "1", "after": "3"})
    assert last.status_code == 200 and "#1 now comes after #3" in last.text
    assert order(shop) == [4, 2, 3, 1]


@pytest.mark.parametrize(
    ("path", "data", "line"),
    [
        ("backlog/reorder", {"id": "9", "before": "1"}, "no feature #9 in the backlog"),
        ("backlog/reorder", {"id": "2", "before": "2"}, "feature #2 cannot go before itself"),
        ("backlog/reorder", {"id": "2", "after": "2"}, "feature #2 cannot go after itself"),
        ("backlog/reorder", {"id": "2"}, "before: no feature given (select some)"),
        ("backlog/reorder", {"id": "x", "before": "1"}, "id: 'x' is not a feature id"),
        ("backlog/skip", {}, "ids: no feature given (select some)"),
        ("backlog/skip", {"ids": ["1", "12"]}, "no feature #12 in the backlog"),
        ("backlog/retry", {"ids": "77"}, "no feature #77 in the backlog"),
        (
            "backlog/priority",
            {"ids": "1", "priority": "soon"},
            "priority: 'soon' is not a whole number",
        ),
        ("backlog/answer", {"id": "1", "text": "yes"}, "feature #1 is pending: it asked nothing"),
        ("backlog/answer", {"id": "1"}, "text: missing"),
        ("build", {"parallel": "40"}, "parallel: '40' is not a whole number from 1 to 16"),
        (
            "build",
            {"max_budget_usd": "lots"},
            "max budget: 'lots' is not an amount of dollars above 0",
        ),
        ("build", {"model": "--gate=rm"}, "model: '--gate=rm' is not a model name"),
    ],
)
def test_bad_input_is_one_line_and_a_4xx_and_changes_nothing(
    client: TestClient, shop: Seeded, path: str, data: dict[str, object], line: str
) -> None:
    refused = client.post(url(shop, path), data=data)
    assert refused.status_code == 400
    assert refused.text == f'<span class="said bad">{escape(line)}</span>'
    as_json = client.post(url(shop, path), data=data, headers={"Accept": "application/json"})
    assert as_json.status_code == 400
    assert as_json.json() == {"ok": False, "message": line}
    assert order(shop) == [1, 2, 3, 4]
    assert [state(shop, i) for i in (1, 2, 3, 4)] == ["pending"] * 4


def test_an_unknown_project_or_control_is_a_404(client: TestClient, shop: Seeded) -> None:
    gone = client.post("/p/nosuchkey/backlog/skip", data={"ids": "1"})
    assert gone.status_code == 404
    assert gone.text == "no such project: `nightcrew run` registers a project\n"
    odd = client.post(url(shop, "control/explode"))
    assert odd.status_code == 404 and odd.text.count("\n") == 1


def test_skip_retry_with_a_model_priority_and_answer_change_the_backlog(
    client: TestClient, shop: Seeded
) -> None:
    skipped = client.post(url(shop, "backlog/skip"), data={"ids": ["2", "3"]})
    assert skipped.status_code == 200 and "#2, #3: skipped" in skipped.text
    assert state(shop, 2) == state(shop, 3) == "skipped"
    assert order(shop) == [1, 4, 2, 3]  # skipped ones go last, as `backlog skip` puts them

    retried = client.post(
        url(shop, "backlog/retry"),
        json={"ids": [2], "model": "opus"},
        headers={"Accept": "application/json"},
    )
    assert retried.json() == {
        "ok": True, "message": "#2: pending, next attempts with opus", "ids": [2], "model": "opus"
    }  # fmt: skip
    assert state(shop, 2) == "pending" and Backlog(shop.store).feature(2).model == "opus"

    prioritised = client.post(url(shop, "backlog/priority"), data={"ids": "3,4", "priority": "-5"})
    assert prioritised.status_code == 200
    assert [Backlog(shop.store).feature(i).priority for i in (3, 4)] == [-5, -5]

    backlog = Backlog(shop.store)
    backlog.claim(1, by="run-x")
    backlog.request_input(1, "Which payment provider?")
    answered = client.post(url(shop, "backlog/answer"), data={"id": "1", "text": "Stripe"})
    assert answered.status_code == 200 and "#1 Login: answered; back in the queue" in answered.text
    feature = Backlog(shop.store).feature(1)
    assert feature.state == ItemState.PENDING and feature.input_answer == "Stripe"


def test_the_board_shows_each_state_and_an_unknown_cost_as_unknown(
    client: TestClient, shop: Seeded
) -> None:
    priced = shop.attempt(1, None)
    shop.finish(priced, AttemptState.PASSED, "0.2500")
    unpriced = shop.attempt(2, None)
    shop.finish(unpriced, AttemptState.FAILED, None)
    board = client.get("/api" + url(shop, "backlog")).json()
    cards = {f["id"]: f for column in board["columns"] for f in column["features"]}
    assert [c["state"] for c in board["columns"]] == [
        "pending", "in_progress", "needs_input", "passed", "failed", "skipped", "blocked", "manual"
    ]  # fmt: skip
    assert cards[1]["cost_usd"] == 0.25 and cards[1]["cost_unknown_attempts"] == 0
    assert cards[2]["cost_usd"] is None and cards[2]["cost_unknown_attempts"] == 1
    assert cards[3]["cost_usd"] is None and cards[3]["cost_unknown_attempts"] == 0
    page = client.get(url(shop, "backlog"))
    assert page.status_code == 200
    assert '<span class="card-cost" title="cost of its attempts">unknown</span>' in page.text
    assert '<span class="card-cost" title="cost of its attempts">$0.2500</span>' in page.text
    assert "$0.0000" not in page.text


def test_pause_when_nothing_runs_is_one_line_409(client: TestClient, shop: Seeded) -> None:
    shop.store.db.execute("UPDATE runs SET orchestrator_pid = NULL")
    refused = client.post(url(shop, "control/pause"), headers={"Accept": "application/json"})
    assert refused.status_code == 409
    assert refused.json()["message"].startswith(f"nothing is running in {shop.root}")


def test_a_build_is_refused_while_a_run_holds_the_project_lock(
    client: TestClient, shop: Seeded
) -> None:
    from nightcrew.engine.lock import ProjectLock

    with ProjectLock(Project(shop.root).lock_path):
        refused = client.post(url(shop, "build"), headers={"Accept": "application/json"})
    assert refused.status_code == 409
    assert refused.json()["message"].startswith("no build started: another nightcrew run (pid ")


def test_the_board_puts_manual_and_blocked_features_in_their_own_columns(
    client: TestClient, shop: Seeded
) -> None:
    from nightcrew.work.backlog import FeatureSpec

    backlog = Backlog(shop.store)
    backlog.create([FeatureSpec(name="Read the emails", manual=True)], source="test")
    backlog.set_dependencies(4, [3])
    backlog.skip([3], reason="later")
    board = client.get("/api" + url(shop, "backlog")).json()
    shown = {c["state"]: [f["id"] for f in c["features"]] for c in board["columns"]}
    assert shown == {"pending": [1, 2], "in_progress": [], "needs_input": [], "passed": [],
                     "failed": [], "skipped": [3], "blocked": [4], "manual": [5]}  # fmt: skip
    assert board["columns"][6]["features"][0]["blocked_by"] == [3]


def test_a_build_that_ends_at_once_is_refused_with_its_last_line(
    client: TestClient, shop: Seeded
) -> None:
    refused = client.post(
        url(shop, "build"), data={"model": "opus"}, headers={"Accept": "application/json"}
    )
    assert refused.status_code == 409
    message = refused.json()["message"]
    assert message.startswith("the build ended at once (exit 2): ")
    assert message.endswith(
        "not inside a git repository (nightcrew commits each batch; run `git init` first)"
    )
    log = (shop.root / ".nightcrew" / "dashboard-build.log").read_text()
    assert "not inside a git repository" in log


def test_a_landing_checked_with_others_names_them_on_the_project_page(
    client: TestClient, shop: Seeded
) -> None:
    shop.claim(1, 1)
    shop.finish(shop.attempt(1, 1), AttemptState.PASSED, "0.10")
    shop.emit(
        ev.MergeLanded(
            run_id=shop.run.id,
            lane=1,
            item="feature #1",
            branch="main",
            sha="1" * 40,
            merge_seconds=0.1,
            gate_seconds=2.5,
            checked_with=("feature #2", "feature #3"),
        )
    )

    page = client.get(url(shop, "")).text

    assert "checks 2.5 s with feature #2, feature #3" in page
