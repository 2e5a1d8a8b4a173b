"""The work-item loop without the CLI: plan batches and backlog features driven
through ``Runner`` and ``Builder`` with the scripted backend of
``nightcrew.testing``. The gates are real shell commands on a real git
repository; nothing waits on a clock."""

from __future__ import annotations

import os
import subprocess
from decimal import Decimal
from pathlib import Path

from nightcrew.agents.base import AgentRequest
from nightcrew.cli.display import EventPrinter
from nightcrew.config import Settings
from nightcrew.core.errors import ExitCode
from nightcrew.core.events import Event
from nightcrew.core.states import ATTEMPT_TERMINAL, AttemptState, ItemState
from nightcrew.core.usage import ModelUsage, TokenCounts
from nightcrew.engine.builder import Builder, BuildOptions
from nightcrew.engine.report import Level, NullReporter
from nightcrew.engine.runner import Runner, RunOptions
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.testing import FakeBackend, Script, success
from nightcrew.work.backlog import FeatureSpec
from nightcrew.work.plan import parse_plan

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}
PLAN = "# Plan\n\n## Batch 1: One\n\n### Task 1: One\n\n## Batch 2: Two\n\n### Task 1: Two\n"
CRITICAL_PLAN = "# Plan\n\n## Batch 1: One [CRITICAL]\n\nDo one.\n\n## Batch 2: Two\n\nDo two.\n"
# Fails, saying why, until the agent wrote done.txt.
DONE_GATE = "test -f done.txt || { echo 'done.txt is' missing; exit 1; }"
WRITES = Script(writes={"done.txt": "done\n"})
NOTHING = Script()


class Notes:
    """A reporter that keeps the console lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, Level]] = []
        self._events = EventPrinter(self)

    def emit(self, event: Event) -> None:
        """The run's events, in the words the console prints for them."""
        self._events(event)

    def note(self, message: str, level: Level = "info") -> None:
        self.lines.append((message, level))

    def progress(self, snapshot: object) -> None:
        pass

    def summary(self, rows: object, footer: str) -> None:
        pass

    def close(self) -> None:
        pass

    def text(self) -> str:
        return "\n".join(line for line, _ in self.lines)


def project(tmp_path: Path, plan: str = PLAN) -> Project:
    root = tmp_path / "proj"
    root.mkdir(parents=True)
    (root / "PLAN.md").write_text(plan)
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=env, capture_output=True)
    return Project(root)


def run_plan(
    proj: Project,
    backend: FakeBackend,
    *,
    reporter: Notes | None = None,
    resume: bool = False,
    **settings: object,
) -> tuple[ExitCode, str]:
    plan = (proj.root / "PLAN.md").read_text()
    runner = Runner(
        proj,
        parse_plan(plan, proj.root / "PLAN.md"),
        Settings(**{"gates": (DONE_GATE,), **settings}),  # type: ignore[arg-type]
        backend,
        reporter or NullReporter(),
        RunOptions(register=False, resume=resume),
    )
    result = runner.execute()
    return result.exit_code, result.message


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
    return done.stdout


def stored(proj: Project) -> tuple[list[tuple[int, str]], list[tuple[int, str, str | None]]]:
    """(number, state) of every item and (item number, state, model) of every attempt."""
    store = Store.open(proj.store_path)
    try:
        run = store.latest_run()
        assert run is not None
        items = store.items(run.id)
        numbers = {item.id: item.number for item in items}
        return (
            [(item.number, str(item.state)) for item in items],
            [(numbers[a.item_id], str(a.state), a.model) for a in store.attempts(run_id=run.id)],
        )
    finally:
        store.close()


def test_a_batch_that_passes_is_committed_and_the_next_one_runs(tmp_path: Path) -> None:
    proj = project(tmp_path)
    backend = FakeBackend([WRITES])

    code, message = run_plan(proj, backend)

    assert (code, message) == (ExitCode.OK, "every batch passed")
    items, attempts = stored(proj)
    assert items == [(1, "passed"), (2, "passed")]
    assert [a[1] for a in attempts] == ["passed", "passed"]
    assert "Batch 1: One" in git(proj.root, "log", "--format=%s")
    assert git(proj.root, "status", "--porcelain", "--", "done.txt") == ""  # committed


def test_a_failed_attempt_is_retried_with_its_digest_in_the_next_prompt(tmp_path: Path) -> None:
    proj = project(tmp_path, "# Plan\n\n## Batch 1: One\n\nDo one.\n")
    backend = FakeBackend([NOTHING, WRITES])
    notes = Notes()

    code, _ = run_plan(proj, backend, reporter=notes)

    assert code == ExitCode.OK
    assert len(backend.requests) == 2
    assert "done.txt is missing" not in backend.requests[0].prompt
    assert "done.txt is missing" in backend.requests[1].prompt
    assert "batch 1: retry 1 of 2" in notes.text()
    _, attempts = stored(proj)
    assert [a[1] for a in attempts] == ["failed", "passed"]


def test_the_last_retry_escalates_the_model(tmp_path: Path) -> None:
    proj = project(tmp_path, "# Plan\n\n## Batch 1: One\n\nDo one.\n")
    backend = FakeBackend([NOTHING, WRITES])
    notes = Notes()

    code, _ = run_plan(
        proj, backend, reporter=notes, model="sonnet", escalate_model="opus", max_retries=1
    )

    assert code == ExitCode.OK
    assert [r.model for r in backend.requests] == ["sonnet", "opus"]
    assert "batch 1: escalating to opus" in notes.text()
    _, attempts = stored(proj)
    assert attempts[-1] == (1, "passed", "opus")


def test_the_same_failure_twice_is_stuck_and_stops_after_the_escalation(tmp_path: Path) -> None:
    proj = project(tmp_path, "# Plan\n\n## Batch 1: One\n\nDo one.\n")
    backend = FakeBackend([NOTHING])

    code, message = run_plan(proj, backend, model="sonnet", escalate_model="opus", max_retries=5)

    assert code == ExitCode.WORK_FAILED
    assert [r.model for r in backend.requests] == ["sonnet", "sonnet", "opus"]
    assert "batch 1 failed: stuck: attempts 2 and 3 failed the same way" in message
    assert "Evidence:" in message
    items, _ = stored(proj)
    assert items == [(1, "failed")]


def test_without_an_escalation_model_the_same_failure_twice_stops(tmp_path: Path) -> None:
    proj = project(tmp_path, "# Plan\n\n## Batch 1: One\n\nDo one.\n")
    backend = FakeBackend([NOTHING])

    code, message = run_plan(proj, backend, max_retries=5)

    assert code == ExitCode.WORK_FAILED
    assert "batch 1 failed: stuck: attempts 1 and 2 failed the same way" in message
    assert len(backend.requests) == 2  # not 6: retrying the same failure is pointless
    items, _ = stored(proj)
    assert items == [(1, "failed")]
    store = Store.open(proj.store_path)
    try:
        run = store.latest_run()
        assert run is not None and run.state == "failed"
    finally:
        store.close()
    assert git(proj.root, "log", "--format=%s").splitlines() == ["initial"]


def test_on_failure_skip_leaves_the_batch_failed_and_runs_the_next(tmp_path: Path) -> None:
    proj = project(tmp_path)
    # Batch 1's only attempt writes a stray file; batch 2 writes done.txt.
    backend = FakeBackend(
        lambda request: WRITES if "Batch 2" in request.prompt else Script(writes={"x": "1"})
    )

    code, message = run_plan(proj, backend, on_failure="skip")

    assert code == ExitCode.OK
    assert message == "done; batch(es) 1 failed and were skipped (--on-failure skip)"
    items, attempts = stored(proj)
    assert items == [(1, "failed"), (2, "passed")]
    assert [a[0] for a in attempts] == [1, 2]  # skipped at its first failure
    assert git(proj.root, "log", "--format=%s").splitlines() == ["Batch 2: Two", "initial"]
    assert not (proj.root / "x").exists()  # kept as a patch and the tree reset
    patches = list((proj.dir / "runs").rglob("abandoned.patch"))
    assert len(patches) == 1 and "+1" in patches[0].read_text()


def test_a_critical_batch_stops_the_run_at_its_first_failure(tmp_path: Path) -> None:
    proj = project(tmp_path, CRITICAL_PLAN)
    backend = FakeBackend([NOTHING])

    code, message = run_plan(proj, backend, on_failure="skip")

    assert code == ExitCode.WORK_FAILED
    assert "batch 1 failed: the batch is CRITICAL: a failure stops the run" in message
    assert len(backend.requests) == 1
    items, _ = stored(proj)
    assert items == [(1, "failed"), (2, "pending")]
    assert git(proj.root, "log", "--format=%s").splitlines() == ["initial"]


def test_a_budget_spent_before_an_attempt_stops_the_run_without_starting_one(
    tmp_path: Path,
) -> None:
    proj = project(tmp_path)
    cent = ModelUsage("claude-sonnet-4-5", TokenCounts(input=10), Decimal("0.01"))
    # Every session reports $0.01 at its end: nothing crosses the budget while it runs.
    backend = FakeBackend([Script(writes={"done.txt": "1"}, finished=success(model_usage=(cent,)))])

    code, message = run_plan(proj, backend, max_budget_usd=0.01)

    assert code == ExitCode.BUDGET_EXCEEDED
    assert "run budget" in message
    items, attempts = stored(proj)
    assert items == [(1, "passed"), (2, "pending")]
    assert len(attempts) == 1 == len(backend.requests)


def test_a_crash_mid_attempt_is_retried_and_one_of_the_orchestrator_resumed(
    tmp_path: Path,
) -> None:
    proj = project(tmp_path)

    class OrchestratorDied(BaseException):
        """What a kill -9 of nightcrew leaves: nothing after this point runs."""

    # Batch 1: the agent's stream raises, then the retry passes. Batch 2: nightcrew dies.
    first = FakeBackend(
        [Script(error=RuntimeError("stream broke")), WRITES, Script(error=OrchestratorDied())]
    )
    try:
        run_plan(proj, first)
    except OrchestratorDied:
        pass
    else:
        raise AssertionError("the crash did not reach the test")
    assert "RuntimeError: stream broke" in first.requests[1].prompt
    _, attempts = stored(proj)
    assert [a[1] for a in attempts] == ["crashed", "passed", "running"]

    code, message = run_plan(proj, FakeBackend([WRITES]), resume=True)

    assert (code, message) == (ExitCode.OK, "every batch passed")
    items, attempts = stored(proj)
    assert items == [(1, "passed"), (2, "passed")]
    assert [a[1] for a in attempts] == ["crashed", "passed", "crashed", "passed"]
    assert all(AttemptState(a[1]) in ATTEMPT_TERMINAL for a in attempts)


# ---- backlog features ----------------------------------------------------------------


def backlog(proj: Project, *specs: FeatureSpec) -> None:
    store = Store.open(proj.store_path)
    try:
        Backlog(store).create(list(specs), source="test")
    finally:
        store.close()


def build(
    proj: Project, backend: FakeBackend, notes: Notes, **settings: object
) -> tuple[ExitCode, str]:
    builder = Builder(
        proj,
        Settings(**{"gates": ("true",), **settings}),  # type: ignore[arg-type]
        backend,
        notes,
        BuildOptions(register=False),
    )
    result = builder.execute()
    return result.exit_code, result.message


def features(proj: Project) -> list[tuple[str, str]]:
    store = Store.open(proj.store_path)
    try:
        return [(f.name, str(f.state)) for f in Backlog(store).features()]
    finally:
        store.close()


def test_a_stuck_feature_climbs_its_chain_then_is_given_up_with_its_work_kept(
    tmp_path: Path,
) -> None:
    proj = project(tmp_path)
    backlog(
        proj,
        FeatureSpec(name="Login", acceptance=("test -f login.txt",)),
        FeatureSpec(name="Logout", acceptance=("test -f done.txt",)),
    )
    backend = FakeBackend(
        lambda request: WRITES if "Logout" in request.prompt else Script(writes={"wip": "x"})
    )
    notes = Notes()

    code, message = build(proj, backend, notes, escalation=("haiku", "sonnet"), stuck_after=2)

    assert code == ExitCode.OK
    login = [r.model for r in backend.requests if "Login" in r.prompt]
    assert login == ["haiku", "haiku", "sonnet", "sonnet"]
    assert "escalating to sonnet" in notes.text()
    assert "feature #1 skipped: stuck (attempts 3–4 failed the same way) on sonnet" in notes.text()
    assert "given up in this build: #1" in message
    assert sorted(features(proj)) == [("Login", "skipped"), ("Logout", "passed")]
    assert not (proj.root / "wip").exists()
    assert list((proj.dir / "runs").rglob("feature-1.patch"))


def test_a_feature_whose_agent_asks_a_person_waits_and_the_build_goes_on(tmp_path: Path) -> None:
    proj = project(tmp_path)
    backlog(
        proj,
        FeatureSpec(name="Pay", acceptance=("true",)),
        FeatureSpec(name="Ship", acceptance=("true",)),
    )

    def script(request: AgentRequest) -> Script:
        if "Pay" in request.prompt:  # the agent asks, as its backlog tool would
            store = Store.open(proj.store_path)
            try:
                Backlog(store).request_input(1, "which payment provider?")
            finally:
                store.close()
        return Script(writes={"f.txt": request.prompt[-40:]})

    notes = Notes()
    code, _ = build(proj, FakeBackend(script), notes)

    assert code == ExitCode.OK
    assert "feature #1 waits for a person (the agent asked a person: which payment provider?)" in (
        notes.text()
    )
    assert features(proj) == [("Pay", "needs_input"), ("Ship", "passed")]
    store = Store.open(proj.store_path)
    try:
        run = store.latest_run()
        assert run is not None
        assert [str(i.state) for i in store.items(run.id)] == [
            str(ItemState.NEEDS_INPUT),
            str(ItemState.PASSED),
        ]
    finally:
        store.close()
