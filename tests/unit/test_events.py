"""The typed events: each one's JSON form reads back as the same event, the
kinds stored before keep their payloads, and the bus keeps a run going when
a watcher fails."""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import nightcrew.engine
from nightcrew.agents.base import AgentBackend
from nightcrew.config import Settings
from nightcrew.core import events as ev
from nightcrew.core.events import EVENT_TYPES, Event, event_from_json
from nightcrew.core.states import ItemState, RunState
from nightcrew.core.usage import TokenCounts
from nightcrew.engine.bus import Bus
from nightcrew.engine.orchestrator import Orchestrator
from nightcrew.engine.report import NullReporter, Progress
from nightcrew.project import Project
from nightcrew.store.records import Store


def sample(hint: Any) -> Any:
    """A value of the type ``hint`` that is not its field's default."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return sample(next(a for a in typing.get_args(hint) if a is not type(None)))
    if origin is typing.Literal:
        return typing.get_args(hint)[-1]
    if origin is tuple:
        return (sample(typing.get_args(hint)[0]),)
    if origin is dict:
        return {"command": "pytest -q", "n": 2}
    if hint is str:
        return "some text"
    if hint is bool:
        return True
    if hint is int:
        return 7
    if hint is float:
        return 1.5
    if hint is Decimal:
        return Decimal("0.0123")
    if hint is TokenCounts:
        return TokenCounts(input=1, output=2, cache_read=3, cache_write_5m=4, cache_write_1h=5)
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: sample(hints[f.name]) for f in dataclasses.fields(hint)})
    raise AssertionError(f"no sample for {hint!r}")


def example(cls: type[Event]) -> Event:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: sample(hints[f.name]) for f in dataclasses.fields(cls)})


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_every_event_round_trips_through_plain_json(kind: str) -> None:
    event = example(EVENT_TYPES[kind])
    text = json.dumps(event.to_json())  # plain JSON values: no default= needed
    data = json.loads(text)
    assert data["kind"] == kind
    assert event_from_json(data) == event


def test_money_is_a_string_and_unknown_money_is_null() -> None:
    seen = ev.UsageSeen(
        run_id="r1",
        model="m",
        tokens=TokenCounts(input=1),
        cost_usd=None,
        run_cost_usd=Decimal("1.5"),
    )
    data = seen.to_json()
    assert (data["cost_usd"], data["run_cost_usd"]) == (None, "1.5")
    assert event_from_json(data) == seen


def test_a_stored_row_reads_back_as_its_event() -> None:
    denied = ev.ToolDenied(
        run_id="r1", attempt_id=4, tool="Bash", summary="git push", rule="git-push", reason="r"
    )
    row = {"kind": denied.kind, "run_id": "r1", "attempt_id": 4, **denied.payload()}
    assert event_from_json(row) == denied


@pytest.mark.parametrize(
    "kind", sorted(k for k, cls in EVENT_TYPES.items() if cls.persist and k != "run_finished")
)
def test_every_stored_row_reads_back_as_its_event(kind: str) -> None:
    """`nightcrew logs` renders stored rows with the console's words: each kind's
    row must be the event again (the run's summary rows are status's to rebuild)."""
    event = dataclasses.replace(example(EVENT_TYPES[kind]), run_id="r1", attempt_id=4)
    if isinstance(event, ev.LeftAlone):
        # stored once, when the run starts, with its paths alone
        event = dataclasses.replace(event, resumed=False, lane=0)
    stored = json.loads(
        json.dumps({"kind": kind, "run_id": "r1", "attempt_id": 4, **event.payload()})
    )
    back = event_from_json(stored)
    assert dataclasses.replace(back, item_id=event.item_id) == event


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event kind 'nope'"):
        event_from_json({"kind": "nope"})


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        (ev.SessionStarted(session_id="s1", model="m"), {"session_id": "s1", "model": "m"}),
        (
            ev.ToolCalled(name="Bash", input={"command": "ls"}),
            {"name": "Bash", "input": {"command": "ls"}},
        ),
        (
            ev.ToolDenied(
                tool="Bash", summary="git push", rule="git-push", reason="r", message="m"
            ),
            {
                "tool": "Bash",
                "summary": "git push",
                "rule": "git-push",
                "reason": "r",
                "message": "m",
            },
        ),
        (ev.ToolFailed(excerpt="boom"), {"excerpt": "boom"}),
        (ev.TextSeen(text="hi"), {"text": "hi"}),
        # the attempt (a column) names the item: the payload keeps its shape
        (ev.TextSeen(run_id="r1", item_id=3, attempt_id=4, text="hi"), {"text": "hi"}),
        (ev.ThinkingSeen(text="hm"), {"text": "hm"}),
        (ev.CrashRecovered(run="r1"), {"run": "r1"}),
        (ev.LeftAlone(paths=("a", "b")), {"paths": ["a", "b"]}),
        (
            ev.BaselineRecorded(passed=("t1",), failed=(), skipped=("t2",)),
            {"passed": ["t1"], "failed": [], "skipped": ["t2"]},
        ),
        (
            ev.RunFinished(state="failed", message="m", exit_code=1, footer="f"),
            {"state": "failed", "message": "m", "exit_code": 1, "footer": "f"},
        ),
        (
            ev.UsageLimitWait(until="2025-03-01T10:00:00+00:00", item="batch 1"),
            {"until": "2025-03-01T10:00:00+00:00", "item": "batch 1"},
        ),
        (
            ev.ClaimChecked(
                feature=3, passed=False, gates=(ev.GateVerdict("tests", False),), item="feature #3"
            ),
            {
                "feature": 3,
                "passed": False,
                "gates": [{"name": "tests", "passed": False}],
                "item": "feature #3",
            },
        ),
        (ev.FeatureRejected(name=None, reason="r"), {"name": None, "reason": "r"}),
        (
            ev.ItemWaits(
                run_id="r1",
                item="feature #7",
                reason="shares a.py with #5",
                other="#5",
                files=("a.py",),
            ),
            {
                "item": "feature #7",
                "reason": "shares a.py with #5",
                "other": "#5",
                "files": ["a.py"],
            },
        ),
        (
            ev.BudgetWarning(
                budget="item:1", name="n", limit_usd=Decimal("0.75"), spent_usd=Decimal("0.6")
            ),
            {"budget": "item:1", "name": "n", "limit_usd": "0.75", "spent_usd": "0.6"},
        ),
        (
            ev.DecisionMade(action="retry", reason="r", model="m", item="batch 2", escalated=True),
            {
                "action": "retry",
                "reason": "r",
                "model": "m",
                "stuck": False,
                "item": "batch 2",
                "escalated": True,
                "title": "",
            },
        ),
        (
            ev.DecisionMade(action="skip", reason="r", feature=3, stuck=True),
            {
                "feature": 3,
                "action": "skip",
                "reason": "r",
                "model": None,
                "stuck": True,
                "item": "",
                "escalated": False,
                "title": "",
            },
        ),
    ],
)
def test_kinds_stored_before_keep_their_payloads(event: Event, payload: dict[str, Any]) -> None:
    """The keys stored before keep their names and values; what the console's
    words need (a denial's message, a decision's item) is kept beside them."""
    assert event.persist
    assert event.payload() == payload


def test_an_event_of_an_item_without_an_attempt_keeps_the_item_id_and_lane() -> None:
    event = ev.FeatureRejected(run_id="r1", item_id=3, lane=2, name="x", reason="r")
    assert event.payload() == {"name": "x", "reason": "r", "item_id": 3, "lane": 2}


def test_every_kind_is_stored_but_state_changes_and_progress() -> None:
    not_stored = {kind for kind, cls in EVENT_TYPES.items() if not cls.persist}
    # state changes are state_history rows and progress snapshots are a live
    # display's: everything else is the log (usage_seen too: the dashboard's
    # cost badge moves with each response, read from the store)
    assert not_stored == {"state_changed", "progress"}
    assert not ev.LeftAlone(run_id="r1", paths=("a",), resumed=True).stored()
    assert not ev.TextSeen(text="no run yet").stored()


# ---- the bus ---------------------------------------------------------------------


class Broken:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, event: Event) -> None:
        self.calls += 1
        raise OSError("the terminal is gone")


def test_a_failing_watcher_never_stops_the_run_and_is_reported_once() -> None:
    bus = Bus()
    before: list[Event] = []
    after: list[Event] = []
    broken = Broken()
    bus.subscribe(before.append, name="first")
    bus.subscribe(broken, name="the console")
    bus.subscribe(after.append, name="last")

    bus.emit(ev.BatchNew(run_id="r1", number=1))
    bus.emit(ev.BatchNew(run_id="r1", number=2))

    failed = ev.SubscriberFailed(
        run_id="r1", subscriber="the console", error="the terminal is gone"
    )
    assert broken.calls == 1  # left out after its failure
    assert before == [
        ev.BatchNew(run_id="r1", number=1),
        failed,
        ev.BatchNew(run_id="r1", number=2),
    ]
    assert after == before


@pytest.fixture
def store(tmp_path: Path) -> typing.Iterator[Store]:
    opened = Store.open(tmp_path / "nightcrew.db")
    yield opened
    opened.close()


def new_run(store: Store) -> str:
    run = store.create_run(
        kind="plan", source_path="PLAN.md", source_sha256="s", config={}, prefix_sha256="p", pid=1
    )
    return run.id


def test_the_store_records_first_and_its_failure_stops_the_run(store: Store) -> None:
    run_id = new_run(store)
    bus = Bus()
    seen: list[str] = []
    bus.subscribe(lambda e: seen.append(e.kind), name="the console")
    bus.attach_store(store)

    bus.emit(ev.TextSeen(run_id=run_id, text="hello"))
    assert [(e["kind"], e["payload"]) for e in store.events(run_id)] == [
        ("text", {"text": "hello"})
    ]
    assert seen == ["text"]

    store.db.execute("DROP TABLE events")
    with pytest.raises(Exception, match="events"):
        bus.emit(ev.TextSeen(run_id=run_id, text="lost"))
    assert seen == ["text"]  # nobody is told what the store could not keep


def test_a_state_change_is_published_once_committed(store: Store) -> None:
    run_id = new_run(store)
    item = store.add_item(run_id, key="1", number=1, title="t", body="b", sha="s")
    bus = Bus()
    seen: list[Event] = []
    bus.subscribe(seen.append, name="watcher")
    bus.attach_store(store)

    store.set_run_state(run_id, RunState.RUNNING, reason="started")
    store.set_item_state(item.id, ItemState.IN_PROGRESS, reason="its turn")

    assert seen == [
        ev.StateChanged(
            run_id=run_id, entity="run", entity_id=run_id,
            from_state="pending", to_state="running", reason="started",
        ),
        ev.StateChanged(
            run_id=run_id, item_id=item.id, entity="item", entity_id=str(item.id),
            from_state="pending", to_state="in_progress", reason="its turn",
        ),
    ]  # fmt: skip
    assert store.events(run_id) == []  # its row is the state_history row


def test_a_state_change_whose_record_fails_changes_nothing_and_tells_nobody(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = new_run(store)
    item = store.add_item(run_id, key="1", number=1, title="t", body="b", sha="s")
    bus = Bus()
    seen: list[Event] = []
    bus.subscribe(seen.append, name="watcher")
    bus.attach_store(store)

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "record_history", fail)
    with pytest.raises(OSError, match="disk full"):
        store.set_item_state(item.id, ItemState.IN_PROGRESS, reason="its turn")
    assert store.item(item.id).state == ItemState.PENDING
    assert seen == []


def test_the_live_progress_is_told_as_a_snapshot_that_does_not_change() -> None:
    bus = Bus()
    seen: list[Event] = []
    bus.subscribe(seen.append, name="watcher")
    progress = Progress(run_id="r1", batch_number=2, current_tool="Bash: ls")
    bus.emit(progress.event())
    progress.set(current_tool="Read: a.py")  # the engine goes on with its lane
    bus.emit(progress.event())
    [first, second] = seen
    assert isinstance(first, ev.ProgressChanged) and isinstance(second, ev.ProgressChanged)
    assert (first.snapshot.current_tool, second.snapshot.current_tool) == ("Bash: ls", "Read: a.py")
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.snapshot.current_tool = "x"  # type: ignore[misc]


def test_the_engine_writes_no_prose_and_no_untyped_event() -> None:
    """Every engine module tells what happened as typed events on the bus: no
    ``note(text)``, no live object for the display, no ``store.event(kind, dict)``."""
    engine = Path(nightcrew.engine.__file__).parent
    calls = re.compile(r"reporter\.(note|progress)\(|store\.event\(")
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(engine.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if calls.search(line)
    ]
    assert found == []
    assert not hasattr(Bus(), "note") and not hasattr(Bus(), "progress")


class Watcher(NullReporter):
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def test_a_model_without_a_price_is_an_event_naming_it(tmp_path: Path) -> None:
    watcher = Watcher()
    backend = typing.cast(AgentBackend, object())
    settings = Settings(allowed_tools=["Read"])  # the backend is never asked for its defaults
    frame = Orchestrator(Project(tmp_path), settings, backend, watcher, register=False)
    cost = frame.pricer.price_response("no-such-model-7", TokenCounts(input=10))
    assert cost.usd is None
    assert watcher.events == [ev.PriceUnknown(model="no-such-model-7")]


def test_an_event_told_without_a_run_id_gets_the_running_run_s(store: Store) -> None:
    run_id = new_run(store)
    bus = Bus()
    seen: list[Event] = []
    bus.subscribe(seen.append, name="watcher")
    bus.attach_store(store)
    bus.emit(ev.PriceUnknown(model="m1"))  # before the run runs: no run to name
    store.set_run_state(run_id, RunState.RUNNING, reason="started")
    bus.emit(ev.PriceUnknown(model="m2"))
    assert [e.run_id for e in seen if isinstance(e, ev.PriceUnknown)] == [None, run_id]
