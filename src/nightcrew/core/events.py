"""The typed events of a run: what the engine says happened, never prose.

Each event is a small frozen dataclass with a stable ``kind`` and a JSON form
(:meth:`Event.to_json`, read back with :func:`event_from_json`). The engine
emits them on a bus (``engine/bus.py``); the store, the console and later the
dashboard and notifiers subscribe and render or keep what they need, without
parsing English. Money is a Decimal, written as a string, None when unknown.

Every event carries the run id (None only before the run exists), and the
item id, attempt id and lane (0 today) where they apply. ``item`` fields hold
how a person names the work item (``batch 3``, ``feature #7``): a name, not a
sentence. Kinds that existed as untyped events before keep their names and
their stored payloads (:meth:`Event.payload`).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, Literal

from nightcrew.core.usage import TokenCounts

Level = Literal["info", "warn", "error"]

_ENVELOPE = ("run_id", "item_id", "attempt_id", "lane")
EVENT_TYPES: dict[str, type[Event]] = {}


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    # Whether the events table keeps it: every kind but three, so that
    # `nightcrew logs` (and the dashboard's timeline) can tell a run again from
    # the store, in the console's words. Not kept: state changes (their rows
    # are state_history's, in the state's own transaction), a response's usage
    # (usage_records holds it) and a live display's progress snapshots.
    persist: ClassVar[bool] = True
    unstored: ClassVar[tuple[str, ...]] = ()  # fields the stored payload leaves out

    run_id: str | None = None
    item_id: int | None = None
    attempt_id: int | None = None
    lane: int = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is not None:
            if kind in EVENT_TYPES:
                raise TypeError(f"event kind {kind!r} is defined twice")
            EVENT_TYPES[kind] = cls

    def to_json(self) -> dict[str, Any]:
        """The event as plain JSON values, with its kind."""
        data: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            data[f.name] = _encode(getattr(self, f.name))
        return data

    def payload(self) -> dict[str, Any]:
        """What the events table keeps besides run and attempt (its columns):
        the event's own fields, the item id when set and no attempt names it,
        the lane when not 0."""
        data = self.to_json()
        del data["kind"], data["run_id"], data["attempt_id"]
        for name in self.unstored:
            del data[name]
        if data["item_id"] is None or self.attempt_id is not None:
            del data["item_id"]
        if data["lane"] == 0:
            del data["lane"]
        return data

    def stored(self) -> bool:
        """Whether the events table keeps this event."""
        return self.persist and self.run_id is not None


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, TokenCounts):
        return dataclasses.asdict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list | frozenset):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        (inner, *_) = typing.get_args(hint)
        return tuple(_decode(inner, v) for v in value)
    if hint is Decimal:
        return Decimal(value)
    if hint is TokenCounts:
        return TokenCounts(**value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value)
    return value


def event_from_json(data: dict[str, Any]) -> Event:
    """Read back an event from :meth:`Event.to_json`, or from a stored row
    (``{"kind", "run_id", "attempt_id", **payload}``). Unknown fields are
    ignored, missing optional ones take their defaults."""
    cls = EVENT_TYPES.get(str(data.get("kind")))
    if cls is None:
        raise ValueError(f"unknown event kind {data.get('kind')!r}")
    event: Event = _build(cls, data)
    return event


def _build(cls: Any, data: dict[str, Any]) -> Any:
    plan = _plan(cls)
    return cls(
        **{k: v if plan[k] is None else _decode(plan[k], v) for k, v in data.items() if k in plan}
    )


@functools.cache
def _plan(cls: Any) -> dict[str, Any]:
    """A dataclass's fields, each with its type when its JSON value must be
    decoded (None: the JSON value is the value). Worked out once per class:
    `nightcrew logs` rebuilds every row's event, and reading annotations is slow."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: hints[f.name] if _decoded(hints[f.name]) else None for f in dataclasses.fields(cls)
    }


def _decoded(hint: Any) -> bool:
    """Whether a JSON value of type ``hint`` is not yet the field's value."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_decoded(a) for a in typing.get_args(hint))
    if origin is tuple or hint in (Decimal, TokenCounts):
        return True
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


# ---- values carried by events -------------------------------------------------


@dataclass(frozen=True)
class SummaryRow:
    """One work item in the summary at the end of a run."""

    number: int | None
    title: str
    state: str
    attempts: int
    seconds: float | None
    cost_usd: Decimal | None
    cost_unknown: bool
    commit: str | None
    unit: str = "batch"  # batch, feature or spec


@dataclass(frozen=True)
class ProgressSnapshot:
    """Where a run is, for a live display: a value, never the engine's live object."""

    run_id: str
    unit: str = "batch"
    lane: int = 0  # 1.. when several lanes run
    batch_index: int = 0
    batch_total: int = 0
    batch_number: int | None = None
    title: str = ""
    attempt: int = 0
    model: str | None = None
    phase: str = "starting"
    started_at: float = 0.0
    current_tool: str | None = None
    tool_calls: int = 0
    tool_failure: str | None = None
    tool_failures: int = 0
    batch_cost: Decimal | None = None
    run_cost: Decimal | None = None
    batch_tokens: TokenCounts = field(default_factory=TokenCounts)
    run_tokens: TokenCounts = field(default_factory=TokenCounts)


@dataclass(frozen=True)
class GateVerdict:
    name: str
    passed: bool


# ---- states -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StateChanged(Event):
    """A run, item or attempt changed state. Kept in ``state_history``, in the
    same transaction as the state itself, and published once committed."""

    kind = "state_changed"  # its row is the state_history row
    persist = False
    entity: Literal["run", "item", "attempt"]
    entity_id: str
    from_state: str | None
    to_state: str
    reason: str | None = None


# ---- run ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    kind = "run_started"
    work: str  # plan, backlog or init
    resumed: bool = False
    source_path: str = ""


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    kind = "run_finished"
    unstored = ("rows",)  # the summary table: status rebuilds it from the store
    state: str
    message: str
    exit_code: int = 0
    rows: tuple[SummaryRow, ...] = ()
    footer: str = ""


@dataclass(frozen=True, kw_only=True)
class NothingLeft(Event):
    """--resume of a run with nothing left to do."""

    kind = "nothing_to_do"
    message: str


@dataclass(frozen=True, kw_only=True)
class BackendUnusable(Event):
    kind = "agent_unusable"
    message: str


@dataclass(frozen=True, kw_only=True)
class SubscriberFailed(Event):
    """A watcher of the run (not the store) raised: it is left out from then on."""

    kind = "subscriber_failed"
    subscriber: str
    error: str


# ---- before the first attempt ---------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OrphanKilled(Event):
    kind = "orphan_killed"
    pid: int


@dataclass(frozen=True, kw_only=True)
class CrashRecovered(Event):
    kind = "crash_recovered"
    run: str


@dataclass(frozen=True, kw_only=True)
class UnfinishedWritesRemoved(Event):
    """Temp files of an agent's unfinished atomic writes were removed: after a
    crash (``item`` None) or after an attempt was stopped."""

    kind = "unfinished_writes_removed"
    paths: tuple[str, ...]
    item: str | None = None


@dataclass(frozen=True, kw_only=True)
class TempFilesUnchecked(Event):
    kind = "temp_files_unchecked"
    item: str
    error: str


@dataclass(frozen=True, kw_only=True)
class RunAbandoned(Event):
    """--new abandoned an unfinished run (``abandoned``) to start over."""

    kind = "run_abandoned"
    abandoned: str
    why: str


@dataclass(frozen=True, kw_only=True)
class LeftAlone(Event):
    """Paths --allow-dirty leaves alone; stored once, when the run starts."""

    kind = "left_alone"
    paths: tuple[str, ...]
    resumed: bool = False

    def payload(self) -> dict[str, Any]:
        return {"paths": list(self.paths)}

    def stored(self) -> bool:
        return super().stored() and not self.resumed


@dataclass(frozen=True, kw_only=True)
class RegistryFailed(Event):
    kind = "registry_failed"
    error: str


@dataclass(frozen=True, kw_only=True)
class PriceUnknown(Event):
    kind = "price_unknown"
    model: str


@dataclass(frozen=True, kw_only=True)
class TestsDetected(Event):
    """How the tests gate runs the project's tests (None: no runner found)."""

    kind = "tests_detected"
    runner: str | None  # pytest, npm, make, go, custom
    source: str = ""
    python: str | None = None
    command: str | None = None


@dataclass(frozen=True, kw_only=True)
class BaselineKept(Event):
    kind = "baseline_kept"
    tests: int


@dataclass(frozen=True, kw_only=True)
class BaselineStarted(Event):
    kind = "baseline_started"


@dataclass(frozen=True, kw_only=True)
class BaselineRecorded(Event):
    """The test ids later attempts are judged against (read back on resume)."""

    kind = "baseline"
    passed: tuple[str, ...]
    failed: tuple[str, ...]
    skipped: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class BaselineFailing(Event):
    kind = "baseline_failing"
    failed: int
    unit: str  # batch, feature
    units: str  # how the budget of retries is named: "batches", "features"


# ---- the plan -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PlanChanged(Event):
    kind = "plan_changed"
    source_path: str


@dataclass(frozen=True, kw_only=True)
class PlanWarning(Event):
    kind = "plan_warning"
    source_path: str
    line: int
    message: str


@dataclass(frozen=True, kw_only=True)
class BatchNew(Event):
    kind = "batch_new"
    number: int


@dataclass(frozen=True, kw_only=True)
class BatchChanged(Event):
    """A batch that passed before has new text: it runs again."""

    kind = "batch_changed"
    number: int


@dataclass(frozen=True, kw_only=True)
class BatchGone(Event):
    kind = "batch_gone"
    key: str


@dataclass(frozen=True, kw_only=True)
class BatchAlreadyPassed(Event):
    kind = "batch_already_passed"
    number: int


@dataclass(frozen=True, kw_only=True)
class BatchEmpty(Event):
    kind = "batch_empty"
    number: int


# ---- the backlog ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FeatureReleased(Event):
    """A feature a stopped build left in progress is pending again."""

    kind = "feature_released"
    item: str


@dataclass(frozen=True, kw_only=True)
class ClaimChecking(Event):
    kind = "claim_checking"
    item: str
    sources: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ClaimChecked(Event):
    kind = "claim_checked"
    feature: int
    passed: bool
    gates: tuple[GateVerdict, ...]
    item: str = ""


@dataclass(frozen=True, kw_only=True)
class ClaimRefuted(Event):
    """The agent said the feature passes; the harness's checks say it does not."""

    kind = "claim_refuted"
    item: str


@dataclass(frozen=True, kw_only=True)
class FeatureRejected(Event):
    """backlog init refused a feature the agent proposed."""

    kind = "feature_rejected"
    name: str | None
    reason: str


# ---- lanes -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WorktreeSetupRan(Event):
    """The config's ``worktree_setup`` commands ran in a fresh worktree before
    the item's first attempt; their time is not the agent's or the gates'.
    ``commands`` are those that ran, in order (the failed one last); ``log`` is
    the failed command's log, or the last one's when all passed."""

    kind = "worktree_setup"
    item: str
    commands: tuple[str, ...]
    passed: bool
    seconds: float
    failed_command: str | None = None
    log: str | None = None
    reason: str = ""  # the one-line why, when it failed


@dataclass(frozen=True, kw_only=True)
class ItemWaits(Event):
    """A ready feature may not start beside a running one (``other``): they
    name or touched the same ``files``, or it depends on it. Told once per
    reason, not on every look at the backlog (``lane_conflicts.WaitNotices``).
    ``reason`` is a clause: ``shares src/cart.py with #5``."""

    kind = "item_waits"
    item: str
    reason: str
    other: str  # the running feature's label: "#5"
    files: tuple[str, ...] = ()


# ---- attempts -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AttemptStarted(Event):
    kind = "attempt_started"
    heading: str  # "batch 2/3 'Parser'", "feature #7 'Log in'"
    number: int
    model: str | None = None
    resume_session_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class AttemptFinished(Event):
    kind = "attempt_finished"
    item: str
    number: int
    state: str
    model: str | None = None
    tokens: TokenCounts = field(default_factory=TokenCounts)
    cost_usd: Decimal | None = None
    seconds: float | None = None
    digest: str | None = None  # why it failed, for the next attempt


@dataclass(frozen=True, kw_only=True)
class SessionStarted(Event):
    kind = "session"
    session_id: str
    model: str | None = None


@dataclass(frozen=True, kw_only=True)
class UsageSeen(Event):
    """A response's usage; costs so far (None: unknown). Stored, so the
    dashboard's cost badge moves with each one from the store alone."""

    kind = "usage_seen"
    persist = True
    model: str | None
    tokens: TokenCounts
    cost_usd: Decimal | None
    attempt_cost_usd: Decimal | None = None
    run_cost_usd: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class ToolCalled(Event):
    kind = "tool_call"
    name: str
    input: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class ToolDenied(Event):
    kind = "tool_denied"
    tool: str
    summary: str
    rule: str
    reason: str
    message: str = ""  # the policy's own words, for the agent and the console


@dataclass(frozen=True, kw_only=True)
class ToolFailed(Event):
    kind = "tool_error"
    excerpt: str


@dataclass(frozen=True, kw_only=True)
class TextSeen(Event):
    kind = "text"
    text: str


@dataclass(frozen=True, kw_only=True)
class ThinkingSeen(Event):
    kind = "thinking"
    text: str


@dataclass(frozen=True, kw_only=True)
class GateChecked(Event):
    """One gate's verdict. ``detail`` and ``reason`` are the counts and the
    first telling line of the digest, as the gate module words them."""

    kind = "gate_result"
    name: str
    passed: bool
    detail: str = ""
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class PassedWithoutChanges(Event):
    kind = "passed_without_changes"
    item: str


@dataclass(frozen=True, kw_only=True)
class UsageLimitWait(Event):
    kind = "usage_limit_wait"
    until: str  # ISO 8601
    item: str


@dataclass(frozen=True, kw_only=True)
class UsageLimitReset(Event):
    kind = "usage_limit_reset"
    item: str


# ---- decisions and outcomes -------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DecisionMade(Event):
    """What the policy decided after a failed attempt, and why."""

    kind = "decision"
    action: Literal["retry", "escalate", "stuck", "skip", "stop", "give_up", "needs_input"]
    reason: str
    model: str | None = None
    stuck: bool = False
    feature: int | None = None
    item: str = ""
    escalated: bool = False  # a retry with another model than the last attempt's
    routing: dict[str, Any] | None = None  # the item's route, when the config has rules
    title: str = ""  # the item's title, as its plan or backlog wrote it (for notifications)

    def payload(self) -> dict[str, Any]:
        data = super().payload()
        if data["feature"] is None:
            del data["feature"]  # a plan batch's decision
        if data["routing"] is None:
            del data["routing"]  # no routing rules: the payload stays as it was
        return data


@dataclass(frozen=True, kw_only=True)
class ItemRouted(Event):
    """The model chain an item climbs, the routing rule that chose it (None:
    the default) and why; emitted as the item starts, when the config has rules."""

    kind = "routing"
    item: str
    rule: str | None
    models: tuple[str | None, ...]
    why: str


@dataclass(frozen=True, kw_only=True)
class BudgetWarning(Event):
    kind = "budget_warning"
    budget: str  # run, daily, total, item:<key>
    name: str  # how a person names it: "batch 1's budget (--max-item-usd $0.75)"
    limit_usd: Decimal
    spent_usd: Decimal


@dataclass(frozen=True, kw_only=True)
class BudgetStop(Event):
    kind = "budget_stop"
    budget: str
    name: str
    limit_usd: Decimal
    spent_usd: Decimal


@dataclass(frozen=True, kw_only=True)
class QuestionAsked(Event):
    """The agent asked a person: the feature waits in needs_input."""

    kind = "question"
    feature: int
    item: str
    question: str
    kept: str = ""  # where its changes went (the abandon note)
    title: str = ""  # the feature's name


@dataclass(frozen=True, kw_only=True)
class CommitMade(Event):
    kind = "commit"
    sha: str
    message: str


@dataclass(frozen=True, kw_only=True)
class WorktreeReady(Event):
    """A lane's feature has its own git worktree on its own branch."""

    kind = "worktree_ready"
    item: str
    path: str
    branch: str
    base: str  # the integration head it starts from
    reused: bool = False  # kept from a stopped build


@dataclass(frozen=True, kw_only=True)
class BranchKept(Event):
    """With ``branch_per_feature``: the passed feature stays on its own branch, unmerged."""

    kind = "branch_kept"
    item: str
    branch: str
    sha: str


@dataclass(frozen=True, kw_only=True)
class MergeQueued(Event):
    """A feature passed in its worktree and waits for the merge queue."""

    kind = "merge_queued"
    item: str
    ahead: int  # landings in front of it


@dataclass(frozen=True, kw_only=True)
class MergeChecking(Event):
    """The merge queue takes these landings now, in this order: it puts them on
    the integration head and checks the result (in one run when there are
    several). Each is settled by its own landed, rejected or conflict event."""

    kind = "merge_checking"
    items: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class MergeLanded(Event):
    """The merged result passed its checks and the integration branch advanced."""

    kind = "merge_landed"
    item: str
    branch: str
    sha: str
    merge_seconds: float  # the queue's own git time, gates not counted
    gate_seconds: float
    checkout: str = ""  # what became of the user's checkout of the branch
    # The checks were not run again: the merged result's tree is the one they
    # passed on in the lane (as when nothing landed since the feature's base).
    checks_reused: bool = False
    # The other features put on the branch with this one and checked in the
    # same run (the merge queue checks the landings waiting together at once).
    checked_with: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MergeRejected(Event):
    """The merged result failed its checks: the feature goes back to its lane."""

    kind = "merge_rejected"
    item: str
    branch: str
    failed: tuple[str, ...]  # the checks that failed
    merged_since: tuple[str, ...] = ()  # what landed since the feature's base


@dataclass(frozen=True, kw_only=True)
class MergeConflicted(Event):
    """The feature's branch does not apply to the integration head."""

    kind = "merge_conflict"
    item: str
    branch: str
    files: tuple[str, ...]
    resolved_by: str = ""  # "" (not yet), "agent", or "person" (left for one)


@dataclass(frozen=True, kw_only=True)
class ItemPassed(Event):
    kind = "item_passed"
    item: str
    commit: str | None = None
    claim_confirmed: bool = False


@dataclass(frozen=True, kw_only=True)
class ItemFailed(Event):
    """The item failed and the run stops (``evidence``: the last attempt's dir)."""

    kind = "item_failed"
    item: str
    reason: str
    evidence: str | None = None


@dataclass(frozen=True, kw_only=True)
class ItemSkipped(Event):
    """The item was given up (``failed``: with a failure the run goes on past),
    or left the build (``by_person``)."""

    kind = "item_skipped"
    item: str
    reason: str
    kept: str = ""
    failed: bool = False
    by_person: bool = False
    title: str = ""  # the item's title


# ---- the live display ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ProgressChanged(Event):
    """A new snapshot for a live display (not stored: the facts are events)."""

    kind = "progress"
    persist = False
    snapshot: ProgressSnapshot


# ---- notifications -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NotifyFailed(Event):
    """A notification could not be sent to one target. The run goes on; the
    target is named by its scheme only (its URL holds secrets), and ``error``
    is Apprise's reason with the URL's secrets taken out."""

    kind = "notify_failed"
    persist = True
    scheme: str  # tgram, slack, json …
    notification: str  # what was being sent: finished, stuck, question, budget_stop …
    error: str


# ---- a person steering the run ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunPaused(Event):
    """A person paused the run (``nightcrew pause``): the attempts in flight
    finish, no claim and no attempt starts until it is resumed."""

    kind = "run_paused"
    persist = True  # status says the run is paused, and since when, from the store
    by: str  # who asked: the user's name
    origin: str  # where from: "cli (pid 4242)", later the dashboard
    in_flight: int  # attempts running when it paused, which finish


@dataclass(frozen=True, kw_only=True)
class RunResumed(Event):
    """A person resumed a paused run: claiming and attempts go on."""

    kind = "run_resumed"
    persist = True
    by: str
    origin: str
    paused_seconds: float  # how long it was paused


@dataclass(frozen=True, kw_only=True)
class StopRequested(Event):
    """A person asked the run to stop (``nightcrew stop``): the attempts in
    flight finish and none starts; with ``now``, every agent is stopped at
    once, as SIGTERM would. Either way the run ends interrupted, resumable."""

    kind = "stop_requested"
    persist = True
    by: str
    origin: str
    now: bool = False


@dataclass(frozen=True, kw_only=True)
class ControlExpired(Event):
    """A pause, resume or stop asked of a run that ended without taking it
    (it crashed, or the request came as it ended) was dropped as this run
    started: a request never steers a later run. Said, not silent, so the
    person who asked learns it was not done."""

    kind = "control_expired"
    persist = True
    action: str  # pause | resume | stop | stop_now
    by: str
    origin: str
    requested_at: str  # ISO 8601, UTC
    asked_of: str  # the run it was addressed to, with its orchestrator: "r1 (pid 4242)"
