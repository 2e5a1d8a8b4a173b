"""What the engine tells its watchers: typed events, never prose and never a
live object. A plan run on the scripted backend, watched by a subscriber that
keeps every event it is given."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

from nightcrew.core import events as ev
from nightcrew.core.errors import ExitCode
from nightcrew.core.events import Event
from nightcrew.core.usage import ModelUsage, TokenCounts
from nightcrew.testing import FakeBackend, Script, success
from tests.unit.test_item_loop import NOTHING, WRITES, git, project, run_plan

ONE = "# Plan\n\n## Batch 1: One\n\nDo one.\n"


class Kept:
    """A watcher of the run that keeps the events, and a copy of each progress
    snapshot as it was when it arrived."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.snapshots: list[tuple[ev.ProgressSnapshot, dict[str, object]]] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, ev.ProgressChanged):
            self.snapshots.append((event.snapshot, dataclasses.asdict(event.snapshot)))

    def close(self) -> None:
        pass

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


def test_a_passed_attempt_tells_its_start_gates_commit_end_and_the_item_passing(
    tmp_path: Path,
) -> None:
    proj = project(tmp_path, ONE)
    kept = Kept()

    code, _ = run_plan(proj, FakeBackend([WRITES]), reporter=kept)  # type: ignore[arg-type]

    assert code == ExitCode.OK
    head = git(proj.root, "rev-parse", "HEAD").strip()
    (started,) = kept.of(ev.AttemptStarted)
    gates = kept.of(ev.GateChecked)
    (commit,) = kept.of(ev.CommitMade)
    (finished,) = kept.of(ev.AttemptFinished)
    (passed,) = kept.of(ev.ItemPassed)
    assert isinstance(started, ev.AttemptStarted) and started.number == 1
    assert gates and all(isinstance(g, ev.GateChecked) and g.passed for g in gates)
    assert isinstance(commit, ev.CommitMade) and commit.sha == head
    assert commit.message.startswith("Batch 1: One")
    assert isinstance(finished, ev.AttemptFinished)
    assert (finished.item, finished.number, finished.state, finished.digest) == (
        "batch 1",
        1,
        "passed",
        None,
    )
    assert finished.attempt_id == started.attempt_id == commit.attempt_id
    assert isinstance(passed, ev.ItemPassed) and passed.commit == head
    order = [type(e) for e in kept.events if type(e) in {type(started), type(commit), type(passed)}]
    assert order == [ev.AttemptStarted, ev.CommitMade, ev.ItemPassed]


def test_the_live_progress_arrives_as_values_that_never_change_afterwards(
    tmp_path: Path,
) -> None:
    proj = project(tmp_path, ONE)
    kept = Kept()

    run_plan(proj, FakeBackend([WRITES]), reporter=kept)  # type: ignore[arg-type]

    assert kept.snapshots
    for snapshot, as_it_was in kept.snapshots:
        assert dataclasses.asdict(snapshot) == as_it_was
    phases = [s.phase for s, _ in kept.snapshots]
    assert phases[0] == "agent" and phases[-1] == "gates"
    assert {(s.batch_number, s.title) for s, _ in kept.snapshots} == {(1, "One")}


def test_a_failed_attempt_ends_with_its_event_and_a_decision_naming_the_item(
    tmp_path: Path,
) -> None:
    proj = project(tmp_path, ONE)
    kept = Kept()

    code, _ = run_plan(
        proj,
        FakeBackend([NOTHING, WRITES]),
        reporter=kept,  # type: ignore[arg-type]
        model="sonnet",
        escalate_model="opus",
        max_retries=1,
    )

    assert code == ExitCode.OK
    states = [(e.number, e.state) for e in kept.of(ev.AttemptFinished)]  # type: ignore[attr-defined]
    assert states == [(1, "failed"), (2, "passed")]
    (decision,) = kept.of(ev.DecisionMade)
    assert isinstance(decision, ev.DecisionMade)
    assert (decision.item, decision.action, decision.model, decision.escalated) == (
        "batch 1",
        "retry",
        "opus",
        True,
    )
    failed = [g for g in kept.of(ev.GateChecked) if isinstance(g, ev.GateChecked) and not g.passed]
    assert [g.attempt_id for g in failed] == [kept.of(ev.AttemptStarted)[0].attempt_id]
    assert all(g.reason for g in failed)  # the first telling line of each failed gate


def test_a_spent_budget_tells_which_budget_stopped_the_run(tmp_path: Path) -> None:
    proj = project(tmp_path)
    cent = ModelUsage("claude-sonnet-4-5", TokenCounts(input=10), Decimal("0.01"))
    backend = FakeBackend([Script(writes={"done.txt": "1"}, finished=success(model_usage=(cent,)))])
    kept = Kept()

    code, message = run_plan(proj, backend, reporter=kept, max_budget_usd=0.01)  # type: ignore[arg-type]

    assert code == ExitCode.BUDGET_EXCEEDED
    (stop,) = kept.of(ev.BudgetStop)
    assert isinstance(stop, ev.BudgetStop)
    assert (stop.budget, stop.limit_usd, stop.spent_usd) == (
        "run",
        Decimal("0.01"),
        Decimal("0.01"),
    )
    assert stop.name in message
    (finished,) = kept.of(ev.AttemptFinished)  # the one attempt, with its cost and tokens
    assert isinstance(finished, ev.AttemptFinished)
    assert (finished.cost_usd, finished.tokens) == (Decimal("0.01"), TokenCounts(input=10))
