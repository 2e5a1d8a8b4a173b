"""Which ready feature may start beside the running ones, and the sentence that
tells a person why another waits; the paths a feature's text names."""

from __future__ import annotations

import pytest

from nightcrew.core import events as ev
from nightcrew.core.states import ItemState
from nightcrew.work.backlog import Feature
from nightcrew.work.lane_conflicts import (
    Candidate,
    Running,
    Wait,
    WaitNotices,
    feature_files,
    fill,
    named_files,
    pick,
)

# ---- the paths a text names -------------------------------------------------------

NAMED: list[tuple[str, set[str]]] = [
    # plain prose
    ("Add a total to the cart in src/cart.py", {"src/cart.py"}),
    ("Cart totals (src/cart.py, src/prices.py).", {"src/cart.py", "src/prices.py"}),
    ("Update README.md and CHANGELOG.md.", {"README.md", "CHANGELOG.md"}),
    ("Add a `build` script to package.json's scripts", {"package.json"}),
    ("The User model lives in app/models/user.rb; validate the email.", {"app/models/user.rb"}),
    ("Edit `src/cart.py` and 'tests/test_cart.py'", {"src/cart.py", "tests/test_cart.py"}),
    ('Touch "lib/parser.ts" only', {"lib/parser.ts"}),
    ("See [the spec](docs/cart.md#totals) first", {"docs/cart.md"}),
    ("**Files:** `src/cart.py`, `src/api.py`", {"src/cart.py", "src/api.py"}),
    ("- Create: **src/models/order.py**", {"src/models/order.py"}),
    ("Is it in src/cart.py?", {"src/cart.py"}),
    ("Rename ./src/old_name.py to ./src/new_name.py", {"src/old_name.py", "src/new_name.py"}),
    ("Windows style src\\cart\\total.py works too", {"src/cart/total.py"}),
    ("Fix the crash at src/cart.py:42:7", {"src/cart.py"}),
    ("Keep __init__.py exports in src/shop/__init__.py", {"__init__.py", "src/shop/__init__.py"}),
    (
        "Configure .github/workflows/ci.yml and .gitignore",
        {".github/workflows/ci.yml", ".gitignore"},
    ),
    ("Document the keys in .env.example", {".env.example"}),
    ("Add the gem to the Gemfile and a target to the Makefile", {"Gemfile", "Makefile"}),
    ("Add next.config.js for the Next.js app", {"next.config.js"}),
    ("Write migrations/0003_add_total.py", {"migrations/0003_add_total.py"}),
    ("Add Cargo.toml, go.mod and pyproject.toml", {"Cargo.toml", "go.mod", "pyproject.toml"}),
    ("Store sessions in data/app.db", {"data/app.db"}),
    # directories
    ("Everything under src/cart/ belongs to the cart", {"src/cart/"}),
    ("Split src/cart into modules", {"src/cart"}),
    ("Controllers go in app/controllers/admin", {"app/controllers/admin"}),
    ("Move helpers to ./helpers/format", {"helpers/format"}),
    ("Templates in src/templates/*.html", {"src/templates/"}),
    ("Style every file in src/styles/**", {"src/styles/"}),
    # not paths
    ("See https://example.com/docs/setup.md and http://localhost:3000/api/cart.json", set()),
    ("Use /usr/bin/env python3 and ~/.bashrc, not $HOME/x.py", set()),
    ("Upgrade to version 1.2.3 (or v2.0.1), e.g. with pip; i.e. the latest", set()),
    ("Built with Node.js, Vue.js and Express.js", set()),
    ("Call response.json() and os.path.join() on it", set()),
    ("Input and/or output, client/server, read/write, TCP/IP, N/A, 24/7, I/O", set()),
    ("Dates like 2024/01/02 and ratios like 1/2", set()),
    ("Write to ../shared/notes.md instead", set()),
    ("Email admin@example.com or git@github.com:org/repo.git", set()),
    ("Run all tests in tests/ and the sources in src/", set()),
    ("Branch feature/login from origin/main", set()),
    ("Add @types/node to the dev dependencies", set()),
    ("Mr. Smith arrives at 10 a.m. vs. noon, approx. 3.5 hours", set()),
    ("node_modules/lodash/index.js and .venv/lib/x.py are not ours", set()),
    ("scripts/seed.py fills the database", {"scripts/seed.py"}),
    ("Run python manage.py migrate after editing shop/models.py", {"shop/models.py"}),
    ("Update src/App.jsx and src/components/Cart.vue", {"src/App.jsx", "src/components/Cart.vue"}),
    ("The cart.total() method; Socket.IO; Chart.js; ui.js", {"ui.js"}),
    ("A tree where each node keeps its children, in src/tree.py", {"src/tree.py"}),
    (
        "As a shopper I want totals.\n\nFiles:\n- src/cart.py\n- tests/test_cart.py\n\n"
        "Acceptance: `pytest -q tests/test_cart.py` passes.",
        {"src/cart.py", "tests/test_cart.py"},
    ),
    ("Use Python 3.11. Add GET /api/users in config/routes.rb", {"config/routes.rb"}),
]

# Acceptance commands: what they check is named, what they run to check it is not.
COMMANDS: list[tuple[str, set[str]]] = [
    ("pytest -q tests/test_cart.py", {"tests/test_cart.py"}),
    ("pytest tests/test_cart.py::TestTotal::test_empty -x", {"tests/test_cart.py"}),
    ("python -m pytest tests/unit/test_api.py", {"tests/unit/test_api.py"}),
    (".venv/bin/pytest -q tests/test_cart.py", {"tests/test_cart.py"}),
    ("python manage.py test shop", set()),
    ("python3 scripts/check_totals.py --strict", set()),
    ("python -c \"import json; json.load(open('data/seed.json'))\"", {"data/seed.json"}),
    ("node -e \"require('./lib/cart.js')\"", {"lib/cart.js"}),
    ("node scripts/verify.js && test -f dist/index.html", {"dist/index.html"}),
    ("./scripts/check.sh && grep -q total src/cart.py", {"src/cart.py"}),
    ("bin/rails test test/models/user_test.rb", {"test/models/user_test.rb"}),
    ("bundle exec rspec spec/models/user_spec.rb:12", {"spec/models/user_spec.rb"}),
    ("go test ./internal/cart/...", {"internal/cart/"}),
    ("go run cmd/server/main.go --port 8080", set()),
    ("go test ./...", set()),
    ("npm test -- --grep cart", set()),
    ("npx jest src/cart.test.ts", {"src/cart.test.ts"}),
    ("cargo test --manifest-path crates/core/Cargo.toml", {"crates/core/Cargo.toml"}),
    ("pytest --cov=src/cart tests/test_cart.py", {"src/cart", "tests/test_cart.py"}),
    ("curl -sf localhost:8000/health | grep ok", set()),
    ("bash scripts/smoke.sh; test -s build/report.csv", {"build/report.csv"}),
    ("jq -e .scripts.build package.json", {"package.json"}),
    ("scripts/seed.py --check", set()),
    ("uvicorn app.main:app --port 8001 & sleep 1; curl localhost:8001", set()),
    ("flask --app src/app.py routes", {"src/app.py"}),
    ("docker compose -f docker-compose.yml config -q", {"docker-compose.yml"}),
    ("python -m http.server 8000", set()),
]


@pytest.mark.parametrize(("text", "expected"), NAMED)
def test_named_files(text: str, expected: set[str]) -> None:
    assert named_files(text) == expected


@pytest.mark.parametrize(("command", "expected"), COMMANDS)
def test_files_named_by_acceptance_commands(command: str, expected: set[str]) -> None:
    assert named_files(commands=[command]) == expected


def test_named_files_gathers_every_text_and_command() -> None:
    found = named_files("Cart total", "Change src/cart.py", commands=["pytest tests/test_cart.py"])
    assert found == {"src/cart.py", "tests/test_cart.py"}


def feature(fid: int, name: str = "", **kw: object) -> Feature:
    fields: dict[str, object] = dict(
        category="functional", description="", steps=(), acceptance=("true",), manual=False,
        files=(), priority=fid, position=fid, state=ItemState.PENDING,
    )  # fmt: skip
    fields.update(kw)
    return Feature(id=fid, name=name or f"Feature {fid}", **fields)  # type: ignore[arg-type]


def test_a_feature_names_its_files_hints_and_the_paths_in_all_its_texts() -> None:
    cart = feature(
        7,
        "Totals in src/cart.py",
        description="Show them on templates/cart.html.",
        steps=("Add a column in db/schema.sql",),
        acceptance=("pytest tests/test_cart.py",),
        files=("`./src/prices.py`", "/etc/passwd"),
    )
    assert feature_files(cart) == {
        "src/cart.py", "templates/cart.html", "db/schema.sql", "tests/test_cart.py",
        "src/prices.py",
    }  # fmt: skip


# ---- picking ------------------------------------------------------------------------


def cand(fid: int, named: set[str] = set(), touched: set[str] = set()) -> Candidate:  # noqa: B006
    return Candidate(fid, f"#{fid}", frozenset(named), frozenset(touched))


def lane(
    fid: int,
    named: set[str] = set(),  # noqa: B006
    touched: set[str] = set(),  # noqa: B006
    changing: set[str] = set(),  # noqa: B006
) -> Running:
    return Running(
        fid, f"#{fid}", frozenset(named), frozenset(touched), changing=frozenset(changing)
    )


def reasons(waits: tuple[Wait, ...]) -> list[str]:
    return [w.reason for w in waits]


def test_without_conflicts_the_first_ready_feature_is_chosen() -> None:
    ready = [cand(3, {"src/a.py"}), cand(4, {"src/b.py"})]
    picked = pick(ready, [lane(1, {"src/c.py"}, changing={"src/d.py"})])
    assert picked.chosen == ready[0]
    assert picked.waits == ()


def test_nothing_running_chooses_the_first() -> None:
    assert pick([cand(9, {"src/a.py"}), cand(2)], []).chosen == cand(9, {"src/a.py"})


def test_a_feature_naming_a_running_feature_s_file_waits_and_order_is_kept() -> None:
    ready = [cand(7, {"src/cart.py", "README.md"}), cand(8, {"src/api.py"}), cand(9)]
    picked = pick(ready, [lane(5, {"src/cart.py", "src/models.py"})])
    assert picked.chosen == ready[1]  # the next in ready order, not a reshuffle
    assert reasons(picked.waits) == ["#7 waits: shares src/cart.py with #5"]
    [wait] = picked.waits
    assert (wait.feature_id, wait.other_id, wait.other, wait.files) == (
        7,
        5,
        "#5",
        ("src/cart.py",),
    )


def test_a_directory_overlaps_the_files_under_it_either_way() -> None:
    ready = [
        cand(7, {"src/cart/"}),
        cand(8, {"src/cart/total.py"}),
        cand(9, {"src/cartography.py"}),
    ]
    picked = pick(ready, [lane(5, {"src/cart/total.py", "src/cart/tax.py"}), lane(6, {"SRC/Cart"})])
    assert picked.chosen == ready[2]  # src/cartography.py is not under src/cart
    assert reasons(picked.waits) == [
        "#7 waits: shares src/cart/tax.py and src/cart/total.py with #5",
        "#8 waits: shares src/cart/total.py with #5",
    ]


def test_earlier_attempts_that_touched_what_a_running_feature_changes() -> None:
    ready = [cand(9, {"src/views.py"}, touched={"src/api.py", "src/db.py"}), cand(10)]
    picked = pick(ready, [lane(4, {"src/api.py"})])
    assert picked.chosen == ready[1]
    assert reasons(picked.waits) == [
        "#9 waits: its earlier attempts touched src/api.py, which #4 is changing"
    ]


def test_each_way_of_colliding_has_its_sentence() -> None:
    running = [
        lane(4, {"src/a.py"}, touched={"src/t.py"}, changing={"src/c.py"}),
    ]
    ready = [
        cand(11, {"src/c.py"}),
        cand(12, touched={"src/c.py"}),
        cand(13, {"src/t.py"}),
        cand(14, touched={"src/t.py"}),
    ]
    assert reasons(pick(ready, running).waits) == [
        "#11 waits: names src/c.py, which #4 is changing",
        "#12 waits: its earlier attempts touched src/c.py, which #4 is changing",
        "#13 waits: names src/t.py, which #4's earlier attempts touched",
        "#14 waits: its earlier attempts touched src/t.py, as did #4's",
    ]


def test_the_most_telling_reason_wins_then_the_first_running_feature() -> None:
    running = [lane(4, touched={"src/a.py"}), lane(5, {"src/a.py"}), lane(6, {"src/a.py"})]
    [wait] = pick([cand(9, {"src/a.py"})], running).waits
    assert wait.reason == "#9 waits: shares src/a.py with #5"


def test_a_reason_names_three_files_shortest_first_then_how_many_more() -> None:
    files = {"src/cart/", "src/long_module_name.py", "a.py", "src/b.py", "src/cc.py", "docs/xy.md"}
    [wait] = pick([cand(7, files)], [lane(5, files)]).waits
    assert wait.reason == "#7 waits: shares a.py, src/b.py, src/cc.py and 3 more with #5"
    assert wait.files == (
        "a.py", "src/b.py", "src/cc.py", "docs/xy.md", "src/long_module_name.py", "src/cart/",
    )  # fmt: skip


def test_a_running_dependency_keeps_its_dependents_waiting() -> None:
    dependent = Candidate(8, "#8", frozenset(), frozenset(), depends_on=frozenset({5}))
    picked = pick([dependent], [lane(5, {"src/x.py"})])
    assert picked.chosen is None
    assert reasons(picked.waits) == ["#8 waits: depends on #5, which is not merged yet"]


def test_when_every_ready_feature_conflicts_none_is_chosen() -> None:
    picked = pick([cand(7, {"a.py"}), cand(8, {"b.py"})], [lane(5, {"a.py", "b.py"})])
    assert picked.chosen is None
    assert [w.feature_id for w in picked.waits] == [7, 8]


def test_fill_picks_for_several_lanes_keeping_the_chosen_apart() -> None:
    ready = [cand(1, {"a.py"}), cand(2, {"a.py"}), cand(3, {"b.py"}), cand(4, {"c.py"})]
    chosen, waits = fill(ready, [], lanes=2)
    assert [c.feature_id for c in chosen] == [1, 3]
    assert reasons(waits) == ["#2 waits: shares a.py with #1"]
    chosen, waits = fill(ready, [lane(9, {"c.py"})], lanes=5)
    assert [c.feature_id for c in chosen] == [1, 3]
    assert reasons(waits) == ["#2 waits: shares a.py with #1", "#4 waits: shares c.py with #9"]


def test_a_running_feature_built_from_the_backlog() -> None:
    running = Running.of(
        feature(5, "Cart in src/cart.py"), touched=["./src/old.py"], changing=["x.py"]
    )
    assert running.named == {"src/cart.py"}
    assert running.touched == {"src/old.py"}
    assert running.changing == {"x.py"}
    waiting = Candidate.of(feature(7, "Totals", depends_on=(5,)))
    assert reasons(pick([waiting], [running]).waits) == [
        "#7 waits: depends on #5, which is not merged yet"
    ]


# ---- telling a wait once --------------------------------------------------------------


def test_a_wait_is_told_once_and_again_when_its_reason_changes_or_it_comes_back() -> None:
    notices = WaitNotices()
    shares = pick([cand(7, {"a.py"})], [lane(5, {"a.py"})]).waits
    assert notices.news(shares) == list(shares)
    assert notices.news(shares) == []  # the next poll: nothing new
    changed = pick([cand(7, {"a.py"})], [lane(6, {"a.py"})]).waits
    assert [w.reason for w in notices.news(changed)] == ["#7 waits: shares a.py with #6"]
    assert notices.news(()) == []  # no longer waits
    assert notices.news(changed) == list(changed)  # waits again: told again
    notices.forget(7)
    assert notices.news(changed) == list(changed)


def test_a_wait_becomes_the_event_the_console_prints() -> None:
    [wait] = pick([cand(7, {"src/cart.py"})], [lane(5, {"src/cart.py"})]).waits
    assert wait.event("r1") == ev.ItemWaits(
        run_id="r1",
        item="feature #7",
        reason="shares src/cart.py with #5",
        other="#5",
        files=("src/cart.py",),
    )
