"""What a person is told, and when: the run's typed events mapped to
notifications, in one table (:data:`_TABLE`).

A message's title is nightcrew's own words only; everything a user or an agent
wrote (titles, feature names, questions, reasons) goes in the body, which is
plain text: Apprise escapes it for each service's markup (sent as
``NotifyFormat.TEXT``), so ``*_<b>&[link](x)`` reads as written on Telegram,
Slack or e-mail, and some services show a title as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from nightcrew.core import events as ev
from nightcrew.core.events import Event, SummaryRow

Level = Literal["info", "success", "warning", "failure"]
# Kinds sent every time; the others are grouped (at most one a minute each).
UNGROUPED = frozenset({"finished", "question", "crashed", "test"})
_SEVERITY: dict[Level, int] = {"info": 0, "success": 1, "warning": 2, "failure": 3}
_PLURAL = {"batch": "Batches", "feature": "Features", "spec": "Specs", "item": "Items"}
_LISTED = 10  # unfinished items named in a finish message; the rest are counted


@dataclass(frozen=True)
class Message:
    kind: str  # finished, stuck, question, budget_warning, budget_stop, crashed, test
    title: str  # nightcrew's words only: some services show it unescaped
    body: str  # plain text, escaped by Apprise for each service
    level: Level = "info"


@dataclass(frozen=True)
class Facts:
    """What the notifier knows besides the event: where, what, how long."""

    project: str  # the project directory's name
    work: str = "run"  # run, build, backlog init
    seconds: float | None = None  # since the run started, for a finish


def message_for(event: Event, facts: Facts) -> Message | None:
    """The notification ``event`` calls for, if any."""
    render = _TABLE.get(type(event))
    return render(event, facts) if render is not None else None


def crashed(error: BaseException, facts: Facts) -> Message:
    """An unhandled error ended the run: sent before its one-line error."""
    return Message(
        "crashed",
        f"nightcrew: {facts.work} crashed",
        f"The {facts.work} crashed: {type(error).__name__}: {error}{_where(facts)}",
        "failure",
    )


def test_message(facts: Facts) -> Message:
    return Message(
        "test",
        "nightcrew: test notification",
        f"Notifications from nightcrew reach you here{_where(facts)}.",
        "info",
    )


def combine(messages: Sequence[Message]) -> Message:
    """Messages of one kind held back by the grouping, as one."""
    if len(messages) == 1:
        return messages[0]
    first = messages[0]
    level = max((m.level for m in messages), key=lambda level: _SEVERITY[level])
    return Message(
        first.kind,
        f"{first.title} (and {len(messages) - 1} more)",
        "\n\n".join(m.body for m in messages),
        level,
    )


# ---- the table ----------------------------------------------------------------------


def _where(facts: Facts) -> str:
    return f"\n(project {facts.project})"


def _named(item: str, title: str) -> str:
    return f"{item} '{title}'" if title else item


def _unit(item: str) -> str:
    """``feature`` or ``batch``: the first word of how a person names an item."""
    return item.split(" ", 1)[0] or "item"


def _usd(value: Decimal) -> str:
    return f"${value:.4f}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _cost(rows: Sequence[SummaryRow]) -> str:
    known = sum((r.cost_usd for r in rows if r.cost_usd is not None), Decimal(0))
    if any(r.cost_unknown for r in rows):
        return f"at least {_usd(known)} (some costs unknown)"
    return _usd(known)


# A run's final state: how the title says it, how the body's first line does, the level.
_STATES: dict[str, tuple[str, str, Level]] = {
    "succeeded": ("finished", "finished", "success"),
    "failed": ("failed", "failed", "failure"),
    "budget_exceeded": ("stopped: budget spent", "stopped", "warning"),
    "interrupted": ("interrupted", "stopped", "warning"),
    "crashed": ("crashed", "crashed", "failure"),
}
_COUNTED = (
    ("passed", "passed"),
    ("failed", "failed"),
    ("skipped", "skipped"),
    ("needs_input", "waiting for a person"),
    ("blocked", "blocked"),
    ("pending", "not done"),
    ("in_progress", "not done"),
)


def _finished(e: ev.RunFinished, facts: Facts) -> Message:
    said, verb, level = _STATES.get(e.state, (e.state, e.state, "info"))
    rows = e.rows
    unit = rows[0].unit if rows else "item"
    counts: dict[str, int] = {}
    for row in rows:
        label = dict(_COUNTED).get(row.state, row.state)
        counts[label] = counts.get(label, 0) + 1
    told = ", ".join(f"{n} {label}" for label, n in counts.items()) or "nothing worked on"
    which = f"The {facts.work} {e.run_id}" if e.run_id else f"The {facts.work}"
    lines = [
        f"{which} {verb}: {e.message.rstrip('.')}.",
        f"{_PLURAL.get(unit, unit + 's')}: {told}.",
        f"Cost: {_cost(rows)}."
        + (f" Time: {_duration(facts.seconds)}." if facts.seconds is not None else ""),
    ]
    if unit == "spec":  # backlog init's one spec: its message counts the features created
        del lines[1]
    unfinished = [r for r in rows if r.state != "passed"]
    for row in unfinished[:_LISTED]:
        number = f"#{row.number}" if unit == "feature" else str(row.number)
        lines.append(f"- {unit} {number} '{row.title}': {dict(_COUNTED).get(row.state, row.state)}")
    if len(unfinished) > _LISTED:
        lines.append(f"- and {len(unfinished) - _LISTED} more")
    body = "\n".join(lines) + _where(facts)
    return Message("finished", f"nightcrew: {facts.work} {said}", body, level)


def _stuck(e: ev.DecisionMade, facts: Facts) -> Message | None:
    if not (e.stuck and e.action == "retry"):
        return None  # a stuck item given up is told by its item_skipped
    return Message(
        "stuck",
        f"nightcrew: {_unit(e.item)} stuck",
        f"{_named(e.item, e.title)} is stuck: {e.reason}{_where(facts)}",
        "warning",
    )


def _given_up(e: ev.ItemSkipped, facts: Facts) -> Message | None:
    if e.by_person:
        return None  # a person did it: they know
    unit = _unit(e.item)
    verb = "failed and was skipped" if e.failed else "was given up"
    return Message(
        "stuck",
        f"nightcrew: {unit} given up",
        f"{_named(e.item, e.title)} {verb}: {e.reason}{e.kept}{_where(facts)}",
        "failure",
    )


def _question(e: ev.QuestionAsked, facts: Facts) -> Message:
    return Message(
        "question",
        "nightcrew: a question for you",
        f"{_named(e.item, e.title)} waits for a person:\n{e.question}\n"
        f"Answer with: nightcrew backlog answer {e.feature} TEXT{_where(facts)}",
        "warning",
    )


def _budget_warning(e: ev.BudgetWarning, facts: Facts) -> Message:
    share = int(e.spent_usd / e.limit_usd * 100) if e.limit_usd else 100
    return Message(
        "budget_warning",
        "nightcrew: budget warning",
        f"{share}% of {e.name} spent ({_usd(e.spent_usd)} of {_usd(e.limit_usd)})." + _where(facts),
        "warning",
    )


def _budget_stop(e: ev.BudgetStop, facts: Facts) -> Message:
    return Message(
        "budget_stop",
        f"nightcrew: budget spent, the {facts.work} stops",
        f"{e.name} is spent ({_usd(e.spent_usd)} of {_usd(e.limit_usd)}): the {facts.work}"
        f" stops. Raise it and continue with --resume.{_where(facts)}",
        "failure",
    )


_TABLE: dict[type[Event], Callable[[Any, Facts], Message | None]] = {
    ev.RunFinished: _finished,
    ev.DecisionMade: _stuck,
    ev.ItemSkipped: _given_up,
    ev.QuestionAsked: _question,
    ev.BudgetWarning: _budget_warning,
    ev.BudgetStop: _budget_stop,
}
