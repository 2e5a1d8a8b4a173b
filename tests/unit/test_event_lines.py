"""The console renders each typed event as the words and level it printed
before the engine emitted events (the texts below are the engine's former
``reporter.note`` strings)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rich.console import Console

from nightcrew.cli.display import PlainReporter
from nightcrew.cli.event_lines import Line, lines
from nightcrew.core import events as ev
from nightcrew.core.events import EVENT_TYPES, Event, ProgressSnapshot
from nightcrew.engine.limits import local_time
from nightcrew.engine.testrun import NONE_FOUND

RUN = "20250301-abcd1234"
G = ev.GateVerdict

CASES: list[tuple[Event, list[Line]]] = [
    (ev.RunStarted(run_id=RUN, work="plan", source_path="PLAN.md"),
     [(f"starting run {RUN}: PLAN.md", "info")]),
    (ev.RunStarted(run_id=RUN, work="plan", resumed=True, source_path="PLAN.md"),
     [(f"resuming run {RUN}: PLAN.md", "info")]),
    (ev.RunStarted(run_id=RUN, work="backlog"), [(f"starting build {RUN}", "info")]),
    (ev.RunStarted(run_id=RUN, work="backlog", resumed=True), [(f"resuming build {RUN}", "info")]),
    (ev.NothingLeft(message="nothing left to do"), [("nothing left to do", "info")]),
    (ev.BackendUnusable(message="claude: not logged in"), [("claude: not logged in", "error")]),
    (ev.OrphanKilled(pid=42), [("killed an orphaned agent process group (pid 42)", "warn")]),
    (ev.UnfinishedWritesRemoved(paths=("a.py.tmp.1.ab", "b.tmp.1.cd")),
     [("removed the crashed agent's unfinished write(s): a.py.tmp.1.ab, b.tmp.1.cd", "warn")]),
    (ev.UnfinishedWritesRemoved(paths=("a.tmp.1.ab",), item="batch 2"),
     [("batch 2: removed the stopped agent's unfinished write(s): a.tmp.1.ab", "warn")]),
    (ev.TempFilesUnchecked(item="batch 2", error="git failed"),
     [("batch 2: could not look for the agent's temp files: git failed", "warn")]),
    (ev.RunAbandoned(abandoned=RUN, why="batch 2 of 3; it was interrupted"),
     [(f"run {RUN} (batch 2 of 3; it was interrupted) is abandoned: starting over", "warn")]),
    (ev.LeftAlone(paths=("z.txt", "a.txt")),
     [("left alone, never committed (--allow-dirty): a.txt, z.txt", "warn")]),
    (ev.RegistryFailed(error="read-only"),
     [("could not add this project to the usage registry: read-only", "warn")]),
    (ev.PriceUnknown(model="gpt-x"),
     [("no price known for model 'gpt-x': its cost is recorded as unknown; "
       "add it under [pricing] in nightcrew.toml", "warn")]),
    (ev.TestsDetected(runner=None), [(f"tests: {NONE_FOUND}", "info")]),
    (ev.TestsDetected(runner="custom", command="make check"),
     [("tests: make check (configured)", "info")]),
    (ev.TestsDetected(runner="pytest", source="pyproject.toml", python=".venv/bin/python"),
     [("tests: pytest (auto-detected from pyproject.toml; python: .venv/bin/python)", "info")]),
    (ev.TestsDetected(runner="npm", source="package.json"),
     [("tests: npm (auto-detected from package.json)", "info")]),
    (ev.BaselineKept(tests=12), [("keeping this run's baseline of 12 test id(s)", "info")]),
    (ev.BaselineStarted(), [("running the tests once to record the baseline", "info")]),
    (ev.BaselineFailing(failed=2, unit="batch", units="batches"),
     [("2 test(s) already fail before any batch; they will not count against the batches",
       "warn")]),
    (ev.PlanChanged(run_id=RUN, source_path="PLAN.md"),
     [(f"PLAN.md changed since run {RUN} started: batches whose text changed will run again",
       "warn")]),
    (ev.PlanWarning(source_path="PLAN.md", line=7, message="a heading without text"),
     [("PLAN.md:7: a heading without text", "warn")]),
    (ev.BatchNew(number=4), [("batch 4 is new in the plan", "info")]),
    (ev.BatchChanged(number=2),
     [("batch 2 passed before but its text changed: it runs again", "warn")]),
    (ev.BatchGone(key="5"), [("batch 5 is no longer in the plan: left as it was", "warn")]),
    (ev.BatchAlreadyPassed(number=1), [("batch 1 already passed: not run again", "info")]),
    (ev.BatchEmpty(number=4), [("batch 4 is empty: skipped", "warn")]),
    (ev.FeatureReleased(item="feature #7"),
     [("feature #7 was left in progress: back to pending", "info")]),
    (ev.ClaimChecking(item="feature #7", sources=("agent", "mcp")),
     [("feature #7: checking the claim (agent, mcp) that it passes", "info")]),
    (ev.ClaimChecked(feature=7, passed=True, gates=(G("tests", True),), item="feature #7"),
     [("feature #7 passes: claim confirmed, no agent run", "info")]),
    (ev.ClaimChecked(feature=7, passed=False, item="feature #7",
                     gates=(G("acceptance 1", False), G("tests", True), G("gate lint", False))),
     [("feature #7: the claim is refuted (acceptance 1, gate lint); it will be built", "warn")]),
    (ev.ClaimChecked(feature=7, passed=False, gates=(G("tests", True),), item="feature #7"),
     [("feature #7: the claim is refuted (no command); it will be built", "warn")]),
    (ev.ClaimRefuted(item="feature #7"),
     [("feature #7: the agent claimed it passes; the harness's checks say it does not", "warn")]),
    (ev.FeatureRejected(name="Log in", reason="a duplicate"),
     [("rejected 'Log in': a duplicate", "warn")]),
    (ev.FeatureRejected(name=None, reason="no name"), [("rejected '(no name)': no name", "warn")]),
    (ev.WorktreeSetupRan(item="feature #7", commands=("cp .env", "npm ci"), passed=True,
                         seconds=41.31, log="/e/setup-2.log"),
     [("feature #7: worktree ready (2 setup command(s), 41.3s)", "info")]),
    (ev.WorktreeSetupRan(item="feature #7", commands=(), passed=True, seconds=0.0), []),
    (ev.WorktreeSetupRan(item="feature #7", commands=("cp .env", "npm ci"), passed=False,
                         seconds=3.0, failed_command="npm ci", log="/e/setup-2.log",
                         reason="worktree setup failed: `npm ci` exited 1 (see /e/setup-2.log)"),
     [("feature #7: worktree setup failed: `npm ci` exited 1 (see /e/setup-2.log)", "warn")]),
    (ev.ItemWaits(item="feature #7", reason="shares src/cart.py with #5", other="#5",
                  files=("src/cart.py",)),
     [("feature #7 waits: shares src/cart.py with #5", "info")]),
    (ev.AttemptStarted(heading="batch 2/3 'Parser'", number=1),
     [("batch 2/3 'Parser': attempt 1", "info")]),
    (ev.AttemptStarted(heading="feature #7 'Log in'", number=2, model="opus",
                       resume_session_id="s-1"),
     [("feature #7 'Log in': attempt 2 with opus (resuming session s-1)", "info")]),
    (ev.AttemptFinished(item="batch 2", number=1, state="failed", digest="gate tests: 1 failed"),
     [("batch 2 attempt 1: gate tests: 1 failed", "warn")]),
    (ev.AttemptFinished(item="batch 2", number=1, state="passed"), []),
    (ev.GateChecked(name="tests", passed=True, detail=" (12 passed)"),
     [("  gate tests: passed (12 passed)", "info")]),
    (ev.GateChecked(name="acceptance 1", passed=False, detail=" (1 failed)",
                    reason=" — failing tests: t1"),
     [("  acceptance 1: FAILED (1 failed) — failing tests: t1", "warn")]),
    (ev.GateChecked(name="gate 1", passed=False), [("  gate 1: FAILED", "warn")]),
    (ev.PassedWithoutChanges(item="batch 3"),
     [("batch 3 passed without changing any file", "warn")]),
    (ev.UsageLimitReset(item="batch 2"), [("usage limit reset: batch 2 tries again", "info")]),
    (ev.DecisionMade(action="retry", reason="retrying (attempt 2 of 3)", model="opus",
                     item="batch 2", escalated=True),
     [("batch 2: escalating to opus", "info"), ("batch 2: retrying (attempt 2 of 3)", "info")]),
    (ev.DecisionMade(action="retry", reason="retrying", model="m", item="feature #7"),
     [("feature #7: retrying", "info")]),
    (ev.DecisionMade(action="stop", reason="stuck", item="batch 2"), []),
    (ev.BudgetWarning(budget="item:1", name="batch 1's budget (--max-item-usd $0.75)",
                      limit_usd=Decimal("0.75"), spent_usd=Decimal("0.6512")),
     [("budget warning: 86% of batch 1's budget (--max-item-usd $0.75) spent"
       " ($0.6512 of $0.7500)", "warn")]),
    (ev.QuestionAsked(feature=7, item="feature #7", question="which database?",
                      kept="; its changes were saved to x.patch and the tree reset"),
     [("feature #7 waits for a person (which database?); its changes were saved to x.patch"
       " and the tree reset; answer with `nightcrew backlog answer 7 TEXT`", "warn")]),
    (ev.ItemPassed(item="batch 1", commit="0123456789abcdef"),
     [("batch 1 passed (0123456789)", "info")]),
    (ev.ItemPassed(item="feature #7", commit=None, claim_confirmed=True),
     [("feature #7 passed (no commit) (the agent's claim confirmed)", "info")]),
    (ev.ItemFailed(item="batch 2", reason="stuck: the same failure twice"),
     [("batch 2 failed: stuck: the same failure twice", "error")]),
    (ev.ItemFailed(item="feature #7", reason="out of models", evidence="/r/attempt-3"),
     [("feature #7 failed: out of models. Evidence: /r/attempt-3", "error")]),
    (ev.ItemSkipped(item="batch 2", reason="stuck", failed=True, kept="; kept"),
     [("batch 2 failed: stuck; kept", "warn")]),
    (ev.ItemSkipped(item="feature #7", reason="out of models", kept="; kept"),
     [("feature #7 skipped: out of models; kept", "warn")]),
    (ev.ItemSkipped(item="feature #7", reason="skipped by a person", by_person=True),
     [("feature #7: skipped by a person", "warn")]),
    (ev.SubscriberFailed(subscriber="the dashboard", error="gone"),
     [("the dashboard failed and is left out of this run: gone", "warn")]),
    (ev.WorktreeReady(item="feature #7", path="/p/.nightcrew/worktrees/7-cart",
                      branch="nightcrew/7-cart", base="abc"),
     [("feature #7: new worktree /p/.nightcrew/worktrees/7-cart on nightcrew/7-cart", "info")]),
    (ev.MergeQueued(item="feature #7", ahead=2),
     [("feature #7 passed in its worktree: merge queue (2 ahead)", "info")]),
    (ev.MergeChecking(items=("feature #7",)), [("merge queue: landing feature #7", "info")]),
    (ev.MergeChecking(items=("feature #7", "feature #9")),
     [("merge queue: landing feature #7, feature #9 together", "info")]),
    (ev.MergeLanded(item="feature #7", branch="main", sha="0123456789abcdef", merge_seconds=0.12,
                    gate_seconds=2.5),
     [("feature #7 landed on main (0123456789): merged result checked"
       " (merge 0.1 s, checks 2.5 s)", "info")]),
    (ev.MergeLanded(item="feature #7", branch="main", sha="0123456789abcdef", merge_seconds=0.04,
                    gate_seconds=1.5, checked_with=("feature #5", "feature #9")),
     [("feature #7 landed on main (0123456789): merged result checked together with"
       " feature #5, feature #9 (merge 0.0 s, checks 1.5 s)", "info")]),
    (ev.MergeLanded(item="feature #7", branch="main", sha="0123456789abcdef", merge_seconds=0.02,
                    gate_seconds=0.0, checks_reused=True),
     [("feature #7 landed on main (0123456789): the tree its lane's checks passed on,"
       " not checked again (merge 0.0 s)", "info")]),
    (ev.MergeRejected(item="feature #7", branch="main", failed=("gate tests",),
                      merged_since=("feat(x): Cart",)),
     [("feature #7: the merged result failed on main (gate tests): back to its lane;"
       " landed since it began: feat(x): Cart", "warn")]),
    (ev.BranchKept(item="feature #7", branch="nightcrew/7-cart", sha="0123456789abcdef"),
     [("feature #7 passed on its own branch nightcrew/7-cart (0123456789)", "info")]),
    (ev.MergeConflicted(item="feature #7", branch="main", files=("cart.py", "api.py")),
     [("feature #7 conflicts with main in cart.py, api.py", "warn")]),
    (ev.MergeConflicted(item="feature #7", branch="main", files=("cart.py",), resolved_by="agent"),
     [("feature #7: the agent resolved its conflict with main in cart.py", "info")]),
    (ev.MergeConflicted(item="feature #7", branch="main", files=("cart.py",), resolved_by="person"),
     [("feature #7 still conflicts with main in cart.py: left for a person", "warn")]),
    (ev.NotifyFailed(scheme="tgram", notification="finished", error="Unauthorized"),
     [("notification (finished) to tgram:// failed: Unauthorized", "warn")]),
    (ev.RunPaused(by="ada", origin="cli (pid 42)", in_flight=2),
     [("paused by ada from cli (pid 42): the 2 attempt(s) in flight finish, then nothing new"
       " starts until `nightcrew resume`", "warn")]),
    (ev.RunPaused(by="ada", origin="cli (pid 42)", in_flight=0),
     [("paused by ada from cli (pid 42): nothing new starts until `nightcrew resume`", "warn")]),
    (ev.RunResumed(by="ada", origin="cli (pid 43)", paused_seconds=192.4),
     [("resumed by ada from cli (pid 43) after 3m 12s", "info")]),
    (ev.StopRequested(by="ada", origin="cli (pid 44)"),
     [("stop asked by ada from cli (pid 44): the attempts in flight finish, then the run stops",
       "warn")]),
    (ev.StopRequested(by="ada", origin="cli (pid 44)", now=True),
     [("stop --now by ada from cli (pid 44): stopping every agent", "warn")]),
    (ev.ControlExpired(action="stop_now", by="ada", origin="cli (pid 45)",
                       requested_at="2026-12-03T02:10:04.123+00:00", asked_of="r1 (pid 4242)"),
     [("ignored a stop --now asked by ada from cli (pid 45) at 2026-12-03 02:10:04 UTC: it was"
       " for r1 (pid 4242), which ended without taking it", "warn")]),
]  # fmt: skip

# What a person never read a line for: the store keeps it, or another event's line says it.
SILENT = {
    "state_changed", "run_finished", "crash_recovered", "baseline", "session", "usage_seen",
    "tool_call", "tool_error", "text", "thinking", "budget_stop", "commit", "routing", "progress",
}  # fmt: skip


@pytest.mark.parametrize(("event", "expected"), CASES, ids=lambda c: getattr(c, "kind", ""))
def test_each_event_reads_as_before(event: Event, expected: list[Line]) -> None:
    assert lines(event) == expected


def test_every_kind_has_its_words_or_is_silent_on_purpose() -> None:
    rendered = {type(event).kind for event, expected in CASES if expected}
    rendered |= {"usage_limit_wait", "tool_denied"}  # tested on their own below
    assert rendered | SILENT == set(EVENT_TYPES)
    assert not rendered & SILENT


def test_a_usage_limit_wait_names_the_local_reset_time() -> None:
    until = datetime.now(UTC) + timedelta(minutes=5)
    event = ev.UsageLimitWait(until=until.isoformat(), item="batch 1")
    assert lines(event) == [
        (f"usage limit reached: waiting until {local_time(until)} (local) — Ctrl-C to stop", "warn")
    ]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 21, 59, 58)

    def __call__(self) -> datetime:
        current = self.now
        self.now += timedelta(seconds=1)
        return current


def test_the_plain_console_prints_events_as_before() -> None:
    out = io.StringIO()
    reporter = PlainReporter(Console(file=out, width=100, color_system=None), clock=Clock())
    snapshot = ProgressSnapshot(run_id=RUN, unit="feature", batch_number=7)
    reporter.emit(ev.ProgressChanged(run_id=RUN, snapshot=snapshot))
    reporter.emit(
        ev.ToolDenied(
            run_id=RUN, tool="Bash", summary="git push", rule="git-push", reason="r",
            message="refused: pushing is the person's job",
        )
    )  # fmt: skip
    reporter.emit(ev.BatchEmpty(run_id=RUN, number=4))
    reporter.emit(
        ev.DecisionMade(
            run_id=RUN, action="retry", reason="retrying (attempt 2 of 3)", model="opus",
            item="batch 2", escalated=True,
        )
    )  # fmt: skip
    reporter.emit(ev.TextSeen(run_id=RUN, text="nothing to print"))
    assert out.getvalue() == (
        "[21:59:58] warn: feature #7 › refused: pushing is the person's job (git push)\n"
        "[21:59:59] warn: batch 4 is empty: skipped\n"
        "[22:00:00] batch 2: escalating to opus\n"
        "[22:00:01] batch 2: retrying (attempt 2 of 3)\n"
    )


def test_the_console_prints_the_summary_when_the_run_finishes() -> None:
    out = io.StringIO()
    reporter = PlainReporter(Console(file=out, width=100, color_system=None), clock=Clock())
    row = ev.SummaryRow(1, "Parser", "passed", 1, 65.2, Decimal("0.01"), False, "0123456789ab")
    reporter.emit(
        ev.RunFinished(run_id=RUN, state="succeeded", message="done", rows=(row,), footer="bye.")
    )
    text = out.getvalue()
    assert text.startswith("nightcrew run summary")
    assert "│ Parser │ passed │" in text
    assert text.endswith("\nbye.\n")
