"""What a pull request of a night's work says, read from the store and git:
what was asked, what each passed item committed, the gates that judged it,
what it cost, and what was left undone and why. A reviewer should be able to
trust every line, so each one comes from a stored row or from git, never from
what the agent said of itself. :mod:`nightcrew.views.pull_request_md` renders it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from nightcrew import gitops
from nightcrew.core.errors import BadInput
from nightcrew.core.states import ItemState
from nightcrew.core.usage import TokenCounts
from nightcrew.store.backlog import Backlog, UnknownFeature
from nightcrew.views.attempts import attempt_seconds
from nightcrew.views.backlog import BacklogView
from nightcrew.views.pull_request_why import (
    EarlierAttempt,
    Undone,
    failures,
    untouched,
    why_not,
)
from nightcrew.views.runs import known_run

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nightcrew.store.records import AttemptRow, GateRow, ItemRow, RunRow, Store
    from nightcrew.work.backlog import Feature


@dataclass(frozen=True)
class Money:
    """What some attempts cost. ``cost_usd`` is None when no cost is known;
    ``unknown_cost`` counts the attempts whose cost is not (never taken as $0)."""

    cost_usd: Decimal | None
    unknown_cost: int
    tokens: TokenCounts
    agent_seconds: float
    wall_seconds: float  # agent and gates, attempt by attempt
    models: tuple[str, ...]
    attempts: int


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str


@dataclass(frozen=True)
class GateEvidence:
    """A gate that passed on an item's final attempt, and what it stored of how."""

    name: str
    detail: str


@dataclass(frozen=True)
class ItemReport:
    """One batch or feature of the run, as the description tells it."""

    label: str  # "Batch 2", "Feature #7"
    title: str
    state: str
    text: str  # what was asked, as written
    acceptance: tuple[str, ...]  # a feature's acceptance commands
    commits: tuple[Commit, ...]
    files: tuple[str, ...]
    final_attempt: int | None
    gates: tuple[GateEvidence, ...]
    regressions: tuple[str, ...]
    failures: tuple[EarlierAttempt, ...]
    money: Money
    why_not: str | None  # why it did not pass (None when it did)

    @property
    def passed(self) -> bool:
        return self.state == ItemState.PASSED


@dataclass(frozen=True)
class PullRequest:
    title: str  # plain text: the heading and `gh pr create --title`
    run_id: str
    kind: str  # plan, backlog, init
    run_state: str
    run_message: str | None
    items: tuple[ItemReport, ...]
    untouched: tuple[Undone, ...]
    total: Money
    elapsed_seconds: float | None  # the run's start to its end (None: unfinished, or one feature)

    @property
    def passed(self) -> tuple[ItemReport, ...]:
        return tuple(i for i in self.items if i.passed)


def pull_request(
    store: Store, root: Path, *, run_id: str | None = None, feature_id: int | None = None
) -> PullRequest:
    """The description of run ``run_id`` (default: the project's latest), or
    with ``feature_id`` of that feature alone, from the latest build that
    worked on it. Bad input names what was not found."""
    backlog = Backlog(store)
    if feature_id is not None:
        run, item = _feature_item(store, backlog, root, feature_id, run_id)
        items = [item]
    else:
        run = _the_run(store, root, run_id)
        items = store.items(run.id)
    features = _features(backlog, items)
    every = backlog.features() if run.kind == "backlog" else []
    view = BacklogView(every) if run.kind == "backlog" else None
    reports = tuple(_item_report(store, root, run, i, features, view) for i in items)
    attempts = [a for i in items for a in store.attempts(item_id=i.id)]
    left: tuple[Undone, ...] = ()
    if view is not None and feature_id is None:
        worked = {i.feature_id for i in items}
        left = tuple(
            untouched(store, f, view)
            for f in every
            if f.id not in worked and view.states[f.id] != ItemState.PASSED
        )
    return PullRequest(
        title=_title(run, root, reports, features.get(feature_id) if feature_id else None),
        run_id=run.id,
        kind=run.kind,
        run_state=str(run.state),
        run_message=run.message,
        items=reports,
        untouched=left,
        total=_money(store, attempts),
        elapsed_seconds=_elapsed(run) if feature_id is None else None,
    )


def _elapsed(run: RunRow) -> float | None:
    if run.finished_at is None:
        return None
    started = datetime.fromisoformat(run.started_at)
    return (datetime.fromisoformat(run.finished_at) - started).total_seconds()


# ---- which run, which item ---------------------------------------------------------------


def _the_run(store: Store, root: Path, run_id: str | None) -> RunRow:
    if run_id is not None:
        return known_run(store, run_id, root)
    run = store.latest_run()
    if run is None:
        raise BadInput(f"{root}: no nightcrew run here yet")
    return run


def _feature_item(
    store: Store, backlog: Backlog, root: Path, feature_id: int, run_id: str | None
) -> tuple[RunRow, ItemRow]:
    """The item of the latest build (or of build ``run_id``) that worked on the feature."""
    backlog.feature(feature_id)  # one line when there is no such feature
    if run_id is not None:
        run = known_run(store, run_id, root)
        for item in store.items(run.id):
            if item.feature_id == feature_id:
                return run, item
        raise BadInput(f"--feature {feature_id}: run {run.id} did not work on it")
    row = store.db.execute(
        "SELECT w.id FROM work_items w JOIN runs r ON r.id = w.run_id"
        " WHERE w.feature_id = ? ORDER BY r.started_at DESC, w.id DESC LIMIT 1",
        (feature_id,),
    ).fetchone()
    if row is None:
        raise BadInput(f"--feature {feature_id}: no build has worked on it yet")
    item = store.item(row[0])
    return store.run(item.run_id), item


def _features(backlog: Backlog, items: Sequence[ItemRow]) -> dict[int, Feature]:
    """The backlog features of a build's items, as they are now (a removed one is left out)."""
    found: dict[int, Feature] = {}
    for item in items:
        if item.feature_id is not None:
            try:
                found[item.feature_id] = backlog.feature(item.feature_id)
            except UnknownFeature:
                continue
    return found


def _title(run: RunRow, root: Path, items: Sequence[ItemReport], feature: Feature | None) -> str:
    if feature is not None:
        return f"Feature #{feature.id}: {feature.name}"
    name = {"backlog": "Backlog build", "init": "Backlog init"}.get(run.kind)
    if name is None:
        name = plan_title(root / run.source_path)
    n = sum(i.passed for i in items)
    return f"{name}: {n} item{'' if n == 1 else 's'}"


def plan_title(path: Path) -> str:
    """The plan's own ``# heading`` before its first batch, else its file name."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return path.name
    fenced = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and stripped.startswith("## "):
            break
        elif not fenced and re.match(r"#\s+\S", stripped):
            return stripped[1:].strip().rstrip("#").strip()
    return path.name


# ---- one item ----------------------------------------------------------------------------


def _item_report(
    store: Store,
    root: Path,
    run: RunRow,
    item: ItemRow,
    features: dict[int, Feature],
    view: BacklogView | None,
) -> ItemReport:
    attempts = store.attempts(item_id=item.id)
    feature = features.get(item.feature_id) if item.feature_id is not None else None
    final = attempts[-1] if attempts else None
    gates = store.gates(final.id) if final is not None else []
    commits: list[Commit] = []
    files: dict[str, None] = {}
    if item.state == ItemState.PASSED and item.commit_sha:
        for sha, subject in gitops.commits_between(root, _base(item, attempts), item.commit_sha):
            commits.append(Commit(sha, subject))
            files.update(dict.fromkeys(gitops.commit_files(root, sha)))
    if item.feature_id is not None:
        label = f"Feature #{item.feature_id}"
    elif item.number is not None:
        label = f"Batch {item.number}"
    else:
        label = item.key
    return ItemReport(
        label=label,
        title=feature.name if feature is not None else item.title,
        state=str(item.state),
        text=feature.description if feature is not None else item.body,
        acceptance=feature.acceptance if feature is not None else (),
        commits=tuple(commits),
        files=tuple(files),
        final_attempt=final.number if final is not None else None,
        gates=tuple(GateEvidence(g.name, _gate_detail(g)) for g in gates if g.passed),
        regressions=tuple(r for g in gates for r in g.regressions),
        failures=failures(attempts),
        money=_money(store, attempts),
        why_not=None
        if item.state == ItemState.PASSED
        else why_not(store, run, item, attempts, feature, view),
    )


def _base(item: ItemRow, attempts: Sequence[AttemptRow]) -> str | None:
    """The commit the item's work started from: the base of the first attempt
    of its current window (an agent may commit during an attempt)."""
    for attempt in attempts:
        if attempt.number >= item.window_start and attempt.base_sha:
            return attempt.base_sha
    return None


def _gate_detail(gate: GateRow) -> str:
    """The stored summary of a passed gate: its runner's summary line, else
    the test counts; and any tests that were failing before the item began."""
    parts = []
    lines = [line.strip() for line in gate.digest.splitlines()]
    summaries = [
        line.removeprefix("summary:").strip() for line in lines if line.startswith("summary:")
    ]
    if summaries:
        parts.append(summaries[0])
    elif gate.tests_passed is not None:
        parts.append(f"{gate.tests_passed} passed, {gate.tests_failed or 0} failed")
    parts += [line for line in lines if line.startswith("already failing before")]
    return "; ".join(parts)


def _money(store: Store, attempts: Sequence[AttemptRow]) -> Money:
    totals = store.totals(attempts)
    models: dict[str, None] = {}
    for attempt in attempts:
        models.update(dict.fromkeys(attempt.models or ([attempt.model] if attempt.model else [])))
    return Money(
        cost_usd=totals.cost_usd,
        unknown_cost=totals.unknown_cost,
        tokens=totals.tokens,
        agent_seconds=sum(a.agent_seconds or 0.0 for a in attempts),
        wall_seconds=sum(attempt_seconds(a) for a in attempts),
        models=tuple(sorted(models)),
        attempts=len(attempts),
    )
