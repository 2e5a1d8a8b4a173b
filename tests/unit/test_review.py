"""Review: a person's comments on lines of an attempt's diff, stored as
drafts, sent back (the feature retried) and carried in the next prompt; the
feature page's read model (its diff, prompt, gates and decisions); the CLI
twin ``nightcrew backlog review``."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from nightcrew.cli import cli
from nightcrew.core import events as ev
from nightcrew.core.errors import BadInput
from nightcrew.core.states import AttemptState, ItemState
from nightcrew.engine.feature_prompt import feature_suffix
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.reviews import Reviews
from nightcrew.views.diffs import parse_patch
from nightcrew.views.work_page import batch_page, decision_words, feature_page
from tests.dashboard_seed import Seeded

PATCH = """diff --git a/src/cart.py b/src/cart.py
index 1111111..2222222 100644
--- a/src/cart.py
+++ b/src/cart.py
@@ -1,3 +1,4 @@
 def total(items):
-    return sum(items)
+    subtotal = sum(items)
+    return round(subtotal * 1.2, 2)
 \ndiff --git a/tests/test_cart.py b/tests/test_cart.py
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/tests/test_cart.py
@@ -0,0 +1,2 @@
+def test_total():
+    assert total([1]) == 1.2
"""


def shop_with_attempts(tmp_path: Path) -> Seeded:
    """Feature #1 "Cart totals": attempt 1 failed (a gate, a diff, a prompt),
    attempt 2 passed with an unknown cost; feature #1 is passed."""
    shop = Seeded.build(tmp_path / "shop", ["Cart totals", "Login"])
    runs = Project(shop.root).dir / "runs" / shop.run.id
    for number, state, cost in ((1, AttemptState.FAILED, "0.0400"), (2, AttemptState.PASSED, None)):
        attempt = shop.attempt(1, None)
        evidence = runs / "feature-1" / f"attempt-{number}"
        evidence.mkdir(parents=True)
        (evidence / "prompt.txt").write_text(
            f"# Feature #1 (general): Cart totals\nattempt {number}"
        )
        (evidence / "changes.patch").write_text(PATCH)
        (evidence / "gate-tests.log").write_text("FAILED tests/test_cart.py::test_total\n")
        shop.store.db.execute(
            "UPDATE attempts SET evidence_dir = ? WHERE id = ?", (str(evidence), attempt.id)
        )
        shop.store.record_gate(
            attempt.id,
            name="tests",
            command="pytest -q",
            passed=state == AttemptState.PASSED,
            duration_s=1.5,
            exit_code=0 if state == AttemptState.PASSED else 1,
            timed_out=False,
            tests_passed=3,
            tests_failed=0 if state == AttemptState.PASSED else 1,
            failed_ids=[],
            regressions=[],
            output_path=str((evidence / "gate-tests.log").relative_to(shop.root)),
            digest="tests/test_cart.py::test_total failed",
        )
        shop.finish(attempt, state, cost)
    shop.emit(
        ev.DecisionMade(
            run_id=shop.run.id,
            action="retry",
            reason="stuck (tests/test_cart.py::test_total): escalating to opus",
            model="opus",
            feature=1,
            item="feature #1",
        )
    )
    backlog = Backlog(shop.store)
    backlog.claim(1, by=shop.run.id)
    backlog.release(1, ItemState.PASSED, by=shop.run.id, reason="checks passed")
    return shop


def test_the_patch_reads_as_files_with_the_attempts_line_numbers() -> None:
    cart, test = parse_patch(PATCH)
    assert (cart.path, cart.status, cart.added, cart.removed) == ("src/cart.py", "modified", 2, 1)
    kept = [(ln.kind, ln.new) for ln in cart.lines if ln.kind != "hunk"]
    assert kept == [("ctx", 1), ("del", None), ("add", 2), ("add", 3), ("ctx", 4)]
    assert (test.path, test.status, [ln.new for ln in test.lines[1:]]) == (
        "tests/test_cart.py",
        "added",
        [1, 2],
    )


def test_the_feature_page_has_each_attempts_gates_diff_prompt_and_decisions(
    tmp_path: Path,
) -> None:
    shop = shop_with_attempts(tmp_path)
    page = feature_page(shop.store, Project(shop.root).dir / "runs", 1)
    first, second = page.attempts
    assert (first.number, first.state, first.cost_usd) == (1, "failed", Decimal("0.0400"))
    assert second.cost_usd is None and page.cost_usd is None  # unknown, never $0
    gate = first.gates[0]
    assert not gate.passed and gate.tests == "3 passed, 1 failed"
    assert gate.log == f"{shop.run.id}/feature-1/attempt-1/gate-tests.log"  # the files route's
    assert first.diff is not None and [f.path for f in first.diff] == [
        "src/cart.py",
        "tests/test_cart.py",
    ]
    assert first.prompt is not None and first.prompt.endswith("attempt 1")
    assert first.reviewable and second.reviewable
    assert [d.text for d in page.decisions] == [
        "retried on opus: stuck (tests/test_cart.py::test_total): escalating to opus"
    ]
    assert page.as_json()["attempts"][1]["cost_usd"] is None


def test_comments_are_drafts_until_sent_and_sending_retries_the_feature(tmp_path: Path) -> None:
    shop = shop_with_attempts(tmp_path)
    reviews = Reviews(shop.store)
    reviews.add(1, 2, file="src/cart.py", line=3, text="round before adding tax")
    reviews.add(1, 1, file="tests/test_cart.py", line=2, text="  test an empty cart too ")
    assert [c.where for c in reviews.drafts(1)] == ["src/cart.py:3", "tests/test_cart.py:2"]
    assert reviews.latest_sent(1) == []

    sent = reviews.send(1)
    assert all(c.sent_at for c in sent) and reviews.drafts(1) == []
    decisions = feature_page(shop.store, Project(shop.root).dir / "runs", 1).decisions
    assert decisions[-1].text == "a person sent 2 review comment(s) back: retried with them"
    assert Backlog(shop.store).feature(1).state == ItemState.PENDING
    assert [c.text for c in reviews.latest_sent(1)] == [
        "round before adding tax",
        "test an empty cart too",
    ]
    # a later review replaces the earlier one in the prompt
    Backlog(shop.store).skip([1], reason="test")
    reviews.add(1, 2, file="src/cart.py", line=1, text="name it cart_total")
    reviews.send(1)
    assert [c.where for c in reviews.latest_sent(1)] == ["src/cart.py:1"]


@pytest.mark.parametrize(
    ("number", "line", "text", "says"),
    [
        (3, 1, "x", "has attempts 1-2: no attempt 3"),
        (1, 0, "x", "lines count from 1"),
        (1, 1, "   ", "empty review comment"),
    ],
)
def test_a_bad_comment_is_refused_in_one_line(
    tmp_path: Path, number: int, line: int, text: str, says: str
) -> None:
    shop = shop_with_attempts(tmp_path)
    with pytest.raises(BadInput, match=says):
        Reviews(shop.store).add(1, number, file="src/cart.py", line=line, text=text)
    assert Reviews(shop.store).comments(1) == []


def test_a_running_attempt_cannot_be_reviewed_nor_a_feature_in_progress_sent(
    tmp_path: Path,
) -> None:
    shop = Seeded.build(tmp_path / "shop", ["Login"])
    shop.attempt(1, None)
    reviews = Reviews(shop.store)
    with pytest.raises(BadInput, match="only a passed or failed attempt"):
        reviews.add(1, 1, file="a.py", line=1, text="x")
    with pytest.raises(BadInput, match="no review comments to send"):
        reviews.send(1)


def test_sending_while_the_feature_is_in_progress_is_refused_and_keeps_the_drafts(
    tmp_path: Path,
) -> None:
    shop = shop_with_attempts(tmp_path)
    reviews = Reviews(shop.store)
    reviews.add(1, 1, file="src/cart.py", line=2, text="keep the subtotal")
    backlog = Backlog(shop.store)
    backlog.retry([1], model=None, reason="test")
    backlog.claim(1, by="another-run")
    with pytest.raises(BadInput, match="in progress: wait for it"):
        reviews.send(1)
    assert [c.sent_at for c in reviews.comments(1)] == [None]
    assert reviews.latest_sent(1) == []


def test_the_prompt_names_each_comments_file_and_line(tmp_path: Path) -> None:
    shop = shop_with_attempts(tmp_path)
    reviews = Reviews(shop.store)
    reviews.add(1, 2, file="src/cart.py", line=3, text="round before adding tax\nand say why")
    reviews.send(1)
    feature = Backlog(shop.store).feature(1)
    suffix = feature_suffix(
        feature=feature,
        built_on=[],
        recent_commits=[],
        attempt=3,
        previous=None,
        review=reviews.latest_sent(1),
    )
    assert "## Review comments from a person" in suffix
    assert "- src/cart.py:3: round before adding tax\n  and say why" in suffix
    plain = feature_suffix(
        feature=feature, built_on=[], recent_commits=[], attempt=3, previous=None
    )
    assert "Review comments" not in plain


def test_decisions_read_in_plain_words() -> None:
    assert decision_words("decision", {"action": "give_up", "reason": "stuck (x) on opus"}) == (
        "given up: stuck (x) on opus"
    )
    assert decision_words("item_passed", {"commit": "abcdef1234567", "claim_confirmed": False}) == (
        "passed (abcdef1234)"
    )


def test_the_cli_adds_lists_and_sends_comments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = shop_with_attempts(tmp_path)
    shop.store.close()
    subprocess.run(["git", "init", "-q"], cwd=shop.root, check=True)
    monkeypatch.chdir(shop.root)
    runner = CliRunner()
    added = runner.invoke(
        cli, ["backlog", "review", "1", "--attempt", "2", "--file", "src/cart.py", "--line", "3",
              "round before adding tax"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "src/cart.py:3: draft comment added" in added.output
    listed = runner.invoke(cli, ["backlog", "review", "1", "--json"])
    [comment] = json.loads(listed.output)
    assert (comment["attempt"], comment["line"], comment["sent"]) == (2, 3, None)
    sent = runner.invoke(cli, ["backlog", "review", "#1", "--send"])
    assert sent.exit_code == 0 and "sent 1 comment(s) back" in sent.output
    again = runner.invoke(cli, ["backlog", "review", "1", "--send"])
    # refusals are BadInput: `nightcrew` prints the one line and exits 2
    assert isinstance(again.exception, BadInput)
    assert "no review comments to send" in str(again.exception)
    half = runner.invoke(cli, ["backlog", "review", "1", "--line", "3", "text"])
    assert isinstance(half.exception, BadInput)
    assert "needs --attempt, --file" in str(half.exception)


def test_a_runs_item_has_the_same_page_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    shop = shop_with_attempts(tmp_path)
    runs = Project(shop.root).dir / "runs"
    page = batch_page(shop.store, runs, shop.run.id, "feature-1")
    assert (page.kind, page.label, [a.number for a in page.attempts]) == (
        "item",
        "feature #1",
        [1, 2],
    )
    assert [d.text for d in page.decisions] == [
        "retried on opus: stuck (tests/test_cart.py::test_total): escalating to opus"
    ]
    assert page.attempts[0].gates[0].log is not None
    with pytest.raises(BadInput, match="has no item nope"):
        batch_page(shop.store, runs, shop.run.id, "nope")
