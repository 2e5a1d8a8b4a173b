"""The console's words for the engine's typed events: each event becomes the
line(s) a person reads, with a level (``warn``/``error`` lines get a prefix
from the reporter). Events a person does not need to read render to nothing:
the store keeps them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from nightcrew.core import events as ev
from nightcrew.core.events import Event, Level, ProgressSnapshot
from nightcrew.engine.limits import local_time
from nightcrew.engine.testrun import NONE_FOUND

Line = tuple[str, Level]


def lines(event: Event, where: ProgressSnapshot | None = None) -> list[Line]:
    """What the console prints for ``event``; ``where`` is the latest progress
    snapshot (it names the unit a tool call belongs to)."""
    render = _RENDER.get(type(event))
    if render is None:
        return []
    return render(event, where)


def unit_name(snapshot: ProgressSnapshot | None) -> str:
    """How the console names the unit being worked on: ``batch 2``, ``feature #7``."""
    if snapshot is None:
        return "batch None"
    prefix = "#" if snapshot.unit == "feature" else ""
    return f"{snapshot.unit} {prefix}{snapshot.batch_number}"


def _usd(value: Decimal) -> str:
    return f"${value:.4f}"


def gate_label(name: str) -> str:
    return name if name.startswith(("gate ", "acceptance ")) else f"gate {name}"


def tests_line(event: ev.TestsDetected) -> str:
    if event.runner is None:
        return f"tests: {NONE_FOUND}"
    if event.runner == "custom":
        return f"tests: {event.command} (configured)"
    detail = f"auto-detected from {event.source}"
    if event.python is not None:
        detail += f"; python: {event.python}"
    return f"tests: {event.runner} ({detail})"


def _run_started(e: ev.RunStarted) -> list[Line]:
    verb = "resuming" if e.resumed else "starting"
    if e.work == "plan":
        return [(f"{verb} run {e.run_id}: {e.source_path}", "info")]
    if e.work == "backlog":
        return [(f"{verb} build {e.run_id}", "info")]
    return []


def _attempt_started(e: ev.AttemptStarted) -> list[Line]:
    text = f"{e.heading}: attempt {e.number}"
    text += f" with {e.model}" if e.model else ""
    text += f" (resuming session {e.resume_session_id})" if e.resume_session_id else ""
    return [(text, "info")]


def _gate(e: ev.GateChecked, where: ProgressSnapshot | None) -> list[Line]:
    mark = "passed" if e.passed else "FAILED"
    # With several lanes, say whose gate it is.
    whose = f"{unit_name(where)} › " if e.lane and where is not None else ""
    text = f"  {whose}{gate_label(e.name)}: {mark}{e.detail}{e.reason}"
    return [(text, "info" if e.passed else "warn")]


def _landed(e: ev.MergeLanded) -> list[Line]:
    if e.checks_reused:
        line = (
            f"{e.item} landed on {e.branch} ({e.sha[:10]}): the tree its lane's checks passed"
            f" on, not checked again (merge {e.merge_seconds:.1f} s)"
        )
    else:
        together = f" together with {', '.join(e.checked_with)}" if e.checked_with else ""
        line = (
            f"{e.item} landed on {e.branch} ({e.sha[:10]}): merged result checked{together}"
            f" (merge {e.merge_seconds:.1f} s, checks {e.gate_seconds:.1f} s)"
        )
    out: list[Line] = [(line, "info")]
    if e.checkout:
        out.append((e.checkout, "warn" if "left as it is" in e.checkout else "info"))
    return out


def _rejected(e: ev.MergeRejected) -> list[Line]:
    since = f"; landed since it began: {'; '.join(e.merged_since)}" if e.merged_since else ""
    failed = ", ".join(e.failed) or "the checks"
    return [
        (
            f"{e.item}: the merged result failed on {e.branch} ({failed}): back to its lane{since}",
            "warn",
        )
    ]


def _conflict(e: ev.MergeConflicted) -> list[Line]:
    files = ", ".join(e.files)
    if e.resolved_by == "agent":
        return [(f"{e.item}: the agent resolved its conflict with {e.branch} in {files}", "info")]
    if e.resolved_by == "person":
        return [(f"{e.item} still conflicts with {e.branch} in {files}: left for a person", "warn")]
    return [(f"{e.item} conflicts with {e.branch} in {files}", "warn")]


def _decision(e: ev.DecisionMade) -> list[Line]:
    if e.action != "retry":
        return []  # the item's end has its own line
    escalation: list[Line] = [(f"{e.item}: escalating to {e.model}", "info")] if e.escalated else []
    return [*escalation, (f"{e.item}: {e.reason}", "info")]


def _passed(e: ev.ItemPassed) -> list[Line]:
    short = e.commit[:10] if e.commit else "no commit"
    claimed = " (the agent's claim confirmed)" if e.claim_confirmed else ""
    return [(f"{e.item} passed ({short}){claimed}", "info")]


def _failed(e: ev.ItemFailed) -> list[Line]:
    evidence = f". Evidence: {e.evidence}" if e.evidence else ""
    return [(f"{e.item} failed: {e.reason}{evidence}", "error")]


def _skipped(e: ev.ItemSkipped) -> list[Line]:
    if e.by_person:
        return [(f"{e.item}: {e.reason}{e.kept}", "warn")]
    verb = "failed" if e.failed else "skipped"
    return [(f"{e.item} {verb}: {e.reason}{e.kept}", "warn")]


def _question(e: ev.QuestionAsked) -> list[Line]:
    return [
        (
            f"{e.item} waits for a person ({e.question}){e.kept};"
            f" answer with `nightcrew backlog answer {e.feature} TEXT`",
            "warn",
        )
    ]


def _claim_checked(e: ev.ClaimChecked) -> list[Line]:
    if e.passed:
        return [(f"{e.item} passes: claim confirmed, no agent run", "info")]
    failed = ", ".join(g.name for g in e.gates if not g.passed) or "no command"
    return [(f"{e.item}: the claim is refuted ({failed}); it will be built", "warn")]


def _budget_warning(e: ev.BudgetWarning) -> list[Line]:
    share = int(e.spent_usd / e.limit_usd * 100)
    return [
        (
            f"budget warning: {share}% of {e.name} spent"
            f" ({_usd(e.spent_usd)} of {_usd(e.limit_usd)})",
            "warn",
        )
    ]


def _writes_removed(e: ev.UnfinishedWritesRemoved) -> list[Line]:
    paths = ", ".join(e.paths)
    if e.item is None:
        return [("removed the crashed agent's unfinished write(s): " + paths, "warn")]
    return [(f"{e.item}: removed the stopped agent's unfinished write(s): {paths}", "warn")]


def _limit_wait(e: ev.UsageLimitWait) -> list[Line]:
    until = local_time(datetime.fromisoformat(e.until))
    return [(f"usage limit reached: waiting until {until} (local) — Ctrl-C to stop", "warn")]


def _setup(e: ev.WorktreeSetupRan) -> list[Line]:
    if e.passed:
        if not e.commands:
            return []
        return [
            (
                f"{e.item}: worktree ready ({len(e.commands)} setup command(s), {e.seconds:.1f}s)",
                "info",
            )
        ]
    why = e.reason or f"worktree setup failed: `{e.failed_command}`"
    return [(f"{e.item}: {why}", "warn")]


def _paused(e: ev.RunPaused) -> list[Line]:
    finishing = (
        f"the {e.in_flight} attempt(s) in flight finish, then nothing new starts"
        if e.in_flight
        else "nothing new starts"
    )
    return [(f"paused by {e.by} from {e.origin}: {finishing} until `nightcrew resume`", "warn")]


def _control_expired(e: ev.ControlExpired) -> list[Line]:
    asked = e.action.replace("stop_now", "stop --now")
    at = e.requested_at[:19].replace("T", " ")
    return [
        (
            f"ignored a {asked} asked by {e.by} from {e.origin} at {at} UTC: it was for"
            f" {e.asked_of}, which ended without taking it",
            "warn",
        )
    ]


def _stop_requested(e: ev.StopRequested) -> list[Line]:
    if e.now:
        return [(f"stop --now by {e.by} from {e.origin}: stopping every agent", "warn")]
    return [
        (
            f"stop asked by {e.by} from {e.origin}: the attempts in flight finish,"
            " then the run stops",
            "warn",
        )
    ]


def _seconds(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _one(text: Callable[[Any], str], level: Level = "info") -> Callable[[Any, Any], list[Line]]:
    return lambda e, where: [(text(e), level)]


def _plain(render: Callable[[Any], list[Line]]) -> Callable[[Any, Any], list[Line]]:
    return lambda e, where: render(e)


_RENDER: dict[type[Event], Callable[[Any, ProgressSnapshot | None], list[Line]]] = {
    ev.RunStarted: _plain(_run_started),
    ev.NothingLeft: _one(lambda e: e.message),
    ev.BackendUnusable: _one(lambda e: e.message, "error"),
    ev.SubscriberFailed: _one(
        lambda e: f"{e.subscriber} failed and is left out of this run: {e.error}", "warn"
    ),
    ev.OrphanKilled: _one(
        lambda e: f"killed an orphaned agent process group (pid {e.pid})", "warn"
    ),
    ev.UnfinishedWritesRemoved: _plain(_writes_removed),
    ev.TempFilesUnchecked: _one(
        lambda e: f"{e.item}: could not look for the agent's temp files: {e.error}", "warn"
    ),
    ev.RunAbandoned: _one(
        lambda e: f"run {e.abandoned} ({e.why}) is abandoned: starting over", "warn"
    ),
    ev.LeftAlone: _one(
        lambda e: "left alone, never committed (--allow-dirty): " + ", ".join(sorted(e.paths)),
        "warn",
    ),
    ev.RegistryFailed: _one(
        lambda e: f"could not add this project to the usage registry: {e.error}", "warn"
    ),
    ev.PriceUnknown: _one(
        lambda e: (
            f"no price known for model {e.model!r}: its cost is recorded as unknown;"
            " add it under [pricing] in nightcrew.toml"
        ),
        "warn",
    ),
    ev.TestsDetected: _one(tests_line),
    ev.BaselineKept: _one(lambda e: f"keeping this run's baseline of {e.tests} test id(s)"),
    ev.BaselineStarted: _one(lambda e: "running the tests once to record the baseline"),
    ev.BaselineFailing: _one(
        lambda e: (
            f"{e.failed} test(s) already fail before any {e.unit};"
            f" they will not count against the {e.units}"
        ),
        "warn",
    ),
    ev.PlanChanged: _one(
        lambda e: (
            f"{e.source_path} changed since run {e.run_id} started:"
            " batches whose text changed will run again"
        ),
        "warn",
    ),
    ev.PlanWarning: _one(lambda e: f"{e.source_path}:{e.line}: {e.message}", "warn"),
    ev.BatchNew: _one(lambda e: f"batch {e.number} is new in the plan"),
    ev.BatchChanged: _one(
        lambda e: f"batch {e.number} passed before but its text changed: it runs again", "warn"
    ),
    ev.BatchGone: _one(lambda e: f"batch {e.key} is no longer in the plan: left as it was", "warn"),
    ev.BatchAlreadyPassed: _one(lambda e: f"batch {e.number} already passed: not run again"),
    ev.BatchEmpty: _one(lambda e: f"batch {e.number} is empty: skipped", "warn"),
    ev.FeatureReleased: _one(lambda e: f"{e.item} was left in progress: back to pending"),
    ev.ClaimChecking: _one(
        lambda e: f"{e.item}: checking the claim ({', '.join(e.sources)}) that it passes"
    ),
    ev.ClaimChecked: _plain(_claim_checked),
    ev.ClaimRefuted: _one(
        lambda e: f"{e.item}: the agent claimed it passes; the harness's checks say it does not",
        "warn",
    ),
    ev.FeatureRejected: _one(lambda e: f"rejected {e.name or '(no name)'!r}: {e.reason}", "warn"),
    ev.WorktreeSetupRan: _plain(_setup),
    ev.ItemWaits: _one(lambda e: f"{e.item} waits: {e.reason}"),
    ev.AttemptStarted: _plain(_attempt_started),
    ev.AttemptFinished: lambda e, where: (
        [(f"{e.item} attempt {e.number}: {e.digest}", "warn")] if e.digest is not None else []
    ),
    ev.ToolDenied: lambda e, where: [(f"{unit_name(where)} › {e.message} ({e.summary})", "warn")],
    ev.GateChecked: _gate,
    ev.WorktreeReady: _one(
        lambda e: f"{e.item}: {'kept' if e.reused else 'new'} worktree {e.path} on {e.branch}"
    ),
    ev.MergeQueued: _one(
        lambda e: (
            f"{e.item} passed in its worktree: merge queue"
            + (f" ({e.ahead} ahead)" if e.ahead else "")
        )
    ),
    ev.MergeChecking: _one(
        lambda e: (
            f"merge queue: landing {', '.join(e.items)}" + (" together" if len(e.items) > 1 else "")
        )
    ),
    ev.MergeLanded: _plain(_landed),
    ev.BranchKept: _one(lambda e: f"{e.item} passed on its own branch {e.branch} ({e.sha[:10]})"),
    ev.MergeRejected: _plain(_rejected),
    ev.MergeConflicted: _plain(_conflict),
    ev.PassedWithoutChanges: _one(lambda e: f"{e.item} passed without changing any file", "warn"),
    ev.UsageLimitWait: _plain(_limit_wait),
    ev.UsageLimitReset: _one(lambda e: f"usage limit reset: {e.item} tries again"),
    ev.DecisionMade: _plain(_decision),
    ev.BudgetWarning: _plain(_budget_warning),
    ev.QuestionAsked: _plain(_question),
    ev.ItemPassed: _plain(_passed),
    ev.ItemFailed: _plain(_failed),
    ev.ItemSkipped: _plain(_skipped),
    ev.NotifyFailed: _one(
        lambda e: f"notification ({e.notification}) to {e.scheme}:// failed: {e.error}", "warn"
    ),
    ev.RunPaused: _plain(_paused),
    ev.RunResumed: _one(
        lambda e: f"resumed by {e.by} from {e.origin} after {_seconds(e.paused_seconds)}"
    ),
    ev.StopRequested: _plain(_stop_requested),
    ev.ControlExpired: _plain(_control_expired),
}
