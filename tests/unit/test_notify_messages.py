"""What a person is told for each event (the one table), and that what users
and agents wrote stays out of titles and reaches each kind of service escaped."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nightcrew.config_notify import target
from nightcrew.core import events as ev
from nightcrew.core.events import Event, SummaryRow
from nightcrew.notify.delivery import send
from nightcrew.notify.messages import Facts, Message, combine, crashed, message_for
from tests.notify_listener import Listener

MARKUP = "*_<b>&[link](x)`"
FACTS = Facts(project="shop", work="build", seconds=754)


def row(number: int, state: str, cost: str | None = "0.5", unknown: bool = False) -> SummaryRow:
    return SummaryRow(
        number=number,
        title=f"Title {number} {MARKUP}",
        state=state,
        attempts=1,
        seconds=10.0,
        cost_usd=Decimal(cost) if cost is not None else None,
        cost_unknown=unknown,
        commit=None,
        unit="feature",
    )


# (event, the message's kind and title, or None when nothing is sent)
TABLE: list[tuple[Event, tuple[str, str] | None]] = [
    (
        ev.RunFinished(run_id="r1", state="succeeded", message="every feature passed"),
        ("finished", "nightcrew: build finished"),
    ),
    (ev.RunFinished(state="failed", message="m"), ("finished", "nightcrew: build failed")),
    (
        ev.RunFinished(state="budget_exceeded", message="m"),
        ("finished", "nightcrew: build stopped: budget spent"),
    ),
    (
        ev.RunFinished(state="interrupted", message="m"),
        ("finished", "nightcrew: build interrupted"),
    ),
    (
        ev.DecisionMade(action="retry", reason=MARKUP, stuck=True, item="feature #7", title=MARKUP),
        ("stuck", "nightcrew: feature stuck"),
    ),
    (ev.DecisionMade(action="retry", reason="r", item="feature #7"), None),
    (ev.DecisionMade(action="give_up", reason="r", stuck=True, item="feature #7"), None),
    (
        ev.ItemSkipped(item="feature #7", reason=MARKUP, title=MARKUP),
        ("stuck", "nightcrew: feature given up"),
    ),
    (
        ev.ItemSkipped(item="batch 2", reason=MARKUP, failed=True, title=MARKUP),
        ("stuck", "nightcrew: batch given up"),
    ),
    (ev.ItemSkipped(item="feature #7", reason="skipped by a person", by_person=True), None),
    (
        ev.QuestionAsked(feature=7, item="feature #7", question=MARKUP, title=MARKUP),
        ("question", "nightcrew: a question for you"),
    ),
    (
        ev.BudgetWarning(
            budget="run", name=MARKUP, limit_usd=Decimal("10"), spent_usd=Decimal("8.5")
        ),
        ("budget_warning", "nightcrew: budget warning"),
    ),
    (
        ev.BudgetStop(budget="run", name=MARKUP, limit_usd=Decimal("10"), spent_usd=Decimal("10")),
        ("budget_stop", "nightcrew: budget spent, the build stops"),
    ),
    (ev.ItemPassed(item="feature #7"), None),
    (ev.ItemFailed(item="batch 2", reason="r"), None),  # the finish tells it
    (ev.GateChecked(name="tests", passed=False), None),
    (ev.NotifyFailed(scheme="json", notification="finished", error="e"), None),
]


@pytest.mark.parametrize(("event", "expected"), TABLE, ids=[type(e).__name__ for e, _ in TABLE])
def test_each_event_maps_to_its_message_or_to_none(
    event: Event, expected: tuple[str, str] | None
) -> None:
    message = message_for(event, FACTS)
    if expected is None:
        assert message is None
        return
    assert message is not None
    assert (message.kind, message.title) == expected
    assert MARKUP not in message.title  # users' and agents' words are in the body only
    assert message.body.endswith("\n(project shop)")


def test_a_stuck_item_says_which_and_why() -> None:
    event = ev.DecisionMade(
        action="retry",
        reason="stuck (attempts 1–2 failed the same way): escalating to opus",
        stuck=True,
        item="feature #7",
        title="Log in",
    )
    message = message_for(event, FACTS)
    assert message is not None
    assert message.body.startswith(
        "feature #7 'Log in' is stuck: stuck (attempts 1–2 failed the same way): escalating to opus"
    )


def test_a_question_says_how_to_answer() -> None:
    event = ev.QuestionAsked(feature=7, item="feature #7", question="Stripe or Adyen?", title="Pay")
    message = message_for(event, FACTS)
    assert message is not None
    assert message.body == (
        "feature #7 'Pay' waits for a person:\nStripe or Adyen?\n"
        "Answer with: nightcrew backlog answer 7 TEXT\n(project shop)"
    )


def test_a_budget_warning_says_how_much_of_which_budget() -> None:
    event = ev.BudgetWarning(
        budget="run",
        name="the run budget (--max-budget-usd $10)",
        limit_usd=Decimal("10"),
        spent_usd=Decimal("8.5"),
    )
    message = message_for(event, FACTS)
    assert message is not None
    assert message.body.startswith(
        "85% of the run budget (--max-budget-usd $10) spent ($8.5000 of $10.0000)."
    )


def test_the_finish_counts_the_items_and_says_cost_and_time() -> None:
    rows = (row(1, "passed"), row(2, "passed"), row(3, "failed"), row(4, "needs_input"))
    event = ev.RunFinished(run_id="r1", state="failed", message="feature #3 failed", rows=rows)
    message = message_for(event, FACTS)
    assert message is not None
    assert message.level == "failure"
    assert message.body == (
        "The build r1 failed: feature #3 failed.\n"
        "Features: 2 passed, 1 failed, 1 waiting for a person.\n"
        "Cost: $2.0000. Time: 12m 34s.\n"
        f"- feature #3 'Title 3 {MARKUP}': failed\n"
        f"- feature #4 'Title 4 {MARKUP}': waiting for a person\n"
        "(project shop)"
    )


def test_the_finish_never_calls_an_unknown_cost_zero_and_names_at_most_ten_items() -> None:
    rows = tuple(row(n, "skipped", cost=None, unknown=True) for n in range(1, 13))
    event = ev.RunFinished(run_id="r1", state="succeeded", message="nothing is ready", rows=rows)
    message = message_for(event, Facts(project="shop", work="build", seconds=3725))
    assert message is not None
    assert "Cost: at least $0.0000 (some costs unknown). Time: 1h 02m." in message.body
    assert f"- feature #10 'Title 10 {MARKUP}': skipped\n- and 2 more\n" in message.body
    assert "#11" not in message.body


def test_a_plan_runs_finish_counts_batches() -> None:
    rows = (
        SummaryRow(1, "One", "passed", 1, 1.0, Decimal("0.1"), False, "abc", "batch"),
        SummaryRow(2, f"Two {MARKUP}", "skipped", 2, 1.0, Decimal("0.2"), False, None, "batch"),
    )
    event = ev.RunFinished(run_id="r2", state="succeeded", message="done", rows=rows)
    message = message_for(event, Facts(project="shop", work="run"))
    assert message is not None
    assert message.title == "nightcrew: run finished"
    assert message.body == (
        "The run r2 finished: done.\nBatches: 1 passed, 1 skipped.\nCost: $0.3000.\n"
        f"- batch 2 'Two {MARKUP}': skipped\n(project shop)"
    )


def test_a_finish_with_nothing_worked_on_says_so() -> None:
    message = message_for(ev.RunFinished(state="succeeded", message="nothing is ready"), FACTS)
    assert message is not None
    assert "Items: nothing worked on.\nCost: $0.0000." in message.body


def test_a_crash_names_the_error() -> None:
    message = crashed(RuntimeError(f"disk {MARKUP}"), FACTS)
    assert (message.kind, message.title, message.level) == (
        "crashed",
        "nightcrew: build crashed",
        "failure",
    )
    assert message.body.startswith(f"The build crashed: RuntimeError: disk {MARKUP}")


def test_messages_held_together_read_as_one() -> None:
    one = Message("stuck", "nightcrew: feature given up", "feature #1 …", "failure")
    two = Message("stuck", "nightcrew: feature stuck", "feature #2 …", "warning")
    three = Message("stuck", "nightcrew: feature stuck", "feature #3 …", "warning")
    assert combine([one]) == one
    assert combine([two, one, three]) == Message(
        "stuck",
        "nightcrew: feature stuck (and 2 more)",
        "feature #2 …\n\nfeature #1 …\n\nfeature #3 …",
        "failure",
    )


def test_the_body_reaches_each_kind_of_service_escaped_for_its_markup() -> None:
    """Apprise, told the body is plain text, escapes it for a Markdown or HTML
    service and leaves it as it is for a plain one; the title is ours."""
    message = Message("question", "nightcrew: a question for you", f"Pay {MARKUP}\nnow")
    with Listener() as listener:
        for path, fmt in (("/text", "text"), ("/markdown", "markdown"), ("/html", "html")):
            assert send(target(listener.url(path, format=fmt)), message) is None
        got = {path: listener.at(path)[0] for path in ("/text", "/markdown", "/html")}
    assert got["/text"]["message"] == f"Pay {MARKUP}\nnow"
    assert got["/markdown"]["message"] == "Pay \\*\\_<b\\>&\\[link\\]\\(x\\)\\`\nnow"
    assert got["/html"]["message"] == "Pay&nbsp;*_&lt;b&gt;&amp;[link](x)`<br/>now"
    assert {post["title"] for post in got.values()} == {"nightcrew: a question for you"}
    assert {post["type"] for post in got.values()} == {"info"}
