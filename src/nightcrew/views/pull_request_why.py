"""Why something in a pull request's description did not pass, each in one
line a reviewer can act on: an attempt's failure from its stored digest, an
item's state with the reason the store kept (given up, over budget, waiting
for a person's answer, blocked by a dependency)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nightcrew.core.states import AttemptState, ItemState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nightcrew.store.records import AttemptRow, ItemRow, RunRow, Store
    from nightcrew.views.backlog import BacklogView
    from nightcrew.work.backlog import Feature

# A digest's lines that say where or how much, not what failed.
_NOT_TELLING = ("full output:", "summary:", "already failing before")
_GATE_HEAD = re.compile(r"^\[(?P<name>.+?)\] FAILED")
_SHOWN_IDS = 3


@dataclass(frozen=True)
class EarlierAttempt:
    """An attempt that did not pass, in one line."""

    number: int
    state: str
    model: str | None
    why: str


@dataclass(frozen=True)
class Undone:
    """A feature the build never worked on and that has not passed."""

    label: str
    title: str
    state: str
    why: str


def failure_line(attempt: AttemptRow) -> str:
    """Why an attempt did not pass, in one line: the first telling line of its
    digest (naming the gate, with the first test ids under a heading), else
    the reason it ended, else its state."""
    gate: str | None = None
    lines = (attempt.digest or "").splitlines()
    for index, line in enumerate(lines):
        head = _GATE_HEAD.match(line)
        if head:
            gate = head["name"]
            continue
        text = line.strip()
        if not text or text.startswith(_NOT_TELLING) or line.startswith("  - "):
            continue
        if text.endswith(":"):
            text += _ids(lines[index + 1 :])
        return one_line(f"{gate}: {text}" if gate else text)
    if gate is not None:
        return f"{gate} failed"
    if attempt.exit_reason:
        return one_line(attempt.exit_reason)
    return str(attempt.state)


def _ids(lines: Sequence[str]) -> str:
    ids = []
    for line in lines:
        if not line.startswith("  - "):
            break
        ids.append(line[4:].strip())
    if not ids:
        return ""
    more = len(ids) - _SHOWN_IDS
    return " " + ", ".join(ids[:_SHOWN_IDS]) + (f" (+{more} more)" if more > 0 else "")


def one_line(text: str, limit: int = 240) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failures(attempts: Sequence[AttemptRow]) -> tuple[EarlierAttempt, ...]:
    out = []
    seen: dict[str, int] = {}
    for attempt in attempts:
        if attempt.state in (AttemptState.PASSED, AttemptState.RUNNING):
            continue
        why = failure_line(attempt)
        same = seen.get(attempt.signature or "")
        if same is not None:
            why += f" (the same failure as attempt {same})"
        elif attempt.signature:
            seen[attempt.signature] = attempt.number
        out.append(EarlierAttempt(attempt.number, str(attempt.state), attempt.model, why))
    return tuple(out)


# ---- why not -----------------------------------------------------------------------------


def _last_reason(store: Store, entity: str, entity_id: int) -> str | None:
    row = store.db.execute(
        "SELECT reason FROM state_history WHERE entity = ? AND entity_id = ? ORDER BY id DESC"
        " LIMIT 1",
        (entity, str(entity_id)),
    ).fetchone()
    return row[0] if row else None


def why_not(
    store: Store,
    run: RunRow,
    item: ItemRow,
    attempts: Sequence[AttemptRow],
    feature: Feature | None,
    view: BacklogView | None,
) -> str:
    """Why an item of the run did not pass, in the words the store kept."""
    last = f"; last failure: {failure_line(attempts[-1])}" if attempts else ""
    reason = item.message or _last_reason(store, "item", item.id) or ""
    state = item.state
    if feature is not None and view is not None and feature.id in view.blocked:
        listed = ", ".join(f"#{i}" for i in view.blocked[feature.id])
        return f"blocked by {listed} (a dependency that has not passed)"
    if state == ItemState.NEEDS_INPUT:
        question = feature.input_request if feature is not None else None
        return f"needs input: {one_line(question or reason)}"
    if state == ItemState.SKIPPED:
        return f"given up: {one_line(reason)}{last}" if attempts else f"skipped: {reason}"
    if state == ItemState.FAILED:
        return f"failed: {one_line(reason)}{last}"
    if state == ItemState.BLOCKED:
        return f"blocked: {one_line(reason)}"
    if state == ItemState.IN_PROGRESS:
        return f"still in progress when the run was last seen ({run.state})"
    if not attempts or reason in ("", "created"):
        ended = f"the run ended {run.state}"
        return f"not reached: {ended}" + (f" ({one_line(run.message)})" if run.message else "")
    if reason == "budget exceeded" or run.state == "budget_exceeded":
        return f"over budget: {one_line(run.message or reason)}{last}"
    return f"{reason}{last}"


def untouched(store: Store, feature: Feature, view: BacklogView) -> Undone:
    state = view.states[feature.id]
    if feature.id in view.blocked:
        why = "blocked by " + ", ".join(f"#{i}" for i in view.blocked[feature.id])
    elif state == ItemState.NEEDS_INPUT:
        why = f"needs input: {one_line(feature.input_request or '')}"
    elif feature.manual and state == ItemState.PENDING:
        why = "manual: a person checks it (`nightcrew backlog pass`)"
    elif state == ItemState.PENDING:
        why = "not started by this build"
    else:
        why = f"{state}: {one_line(_last_reason(store, 'feature', feature.id) or '')}"
    return Undone(f"Feature {feature.label}", feature.name, state, why)
