"""A person's pause, resume and stop, asked through the store as another
process would (its own connection), taken by the running scheduler and item
loop on the scripted backend. Sessions wait on each other (``Hold``) and the
test waits on the controls themselves (the lanes they park), never on a clock."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nightcrew.agents.base import AgentRequest
from nightcrew.config import Settings
from nightcrew.core import events as ev
from nightcrew.core.errors import ExitCode
from nightcrew.core.events import Event
from nightcrew.core.states import ItemState, RunState
from nightcrew.engine import controls as answers
from nightcrew.engine.builder import Builder, BuildOptions
from nightcrew.engine.bus import Bus
from nightcrew.engine.controls import Controls
from nightcrew.engine.item import STOPS
from nightcrew.engine.runner import Runner, RunOptions
from nightcrew.engine.scheduler import Scheduler
from nightcrew.engine.steer import NothingRunning, ask, running_run
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.controls import EXPIRED, Action, ControlRequests, paused
from nightcrew.store.records import Store
from nightcrew.testing import FakeBackend, Hold, Script
from nightcrew.work.backlog import FeatureSpec
from nightcrew.work.plan import parse_plan
from tests.unit.run_context import Lanes, plan_text
from tests.unit.test_item_loop import DONE_GATE, PLAN, Notes, features, project
from tests.unit.test_item_loop import backlog as add_features

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def backends() -> Iterator[list[FakeBackend]]:
    made: list[FakeBackend] = []
    yield made
    for backend in made:
        backend.reap()


class Person:
    """Someone in another shell: their own connection to the project's store."""

    def __init__(self, store_path: Path) -> None:
        self.store = Store.open(store_path)

    def asks(self, action: Action, run_id: str) -> int:
        return ControlRequests(self.store).add(
            run_id, os.getpid(), action, by="ada", origin="cli (pid 7)"
        )

    def answer(self, request_id: int) -> str | None:
        return ControlRequests(self.store).get(request_id).answer

    def close(self) -> None:
        self.store.close()


class Beside:
    """A coroutine the test runs on the run's own event loop, started from inside
    the first agent session; its failure is raised after the run."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None

    def start(self, steering: Coroutine[Any, Any, None]) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(steering)
        else:
            steering.close()

    def check(self) -> None:
        assert self.task is not None and self.task.done(), "the steering never finished"
        self.task.result()


def feature_of(request: AgentRequest) -> str:
    """The name of the feature a build's session works on (its prompt's heading)."""
    found = re.search(r"^# Feature #\d+ \(\w+\): (.+)$", request.prompt, re.MULTILINE)
    assert found is not None
    return found.group(1)


def kinds(store: Store, run_id: str, *wanted: str) -> list[str]:
    return [e["kind"] for e in store.events(run_id, kinds=wanted)]


def test_pause_lets_two_attempts_in_flight_finish_starts_none_and_resume_starts_the_next(
    tmp_path: Path, backends: list[FakeBackend]
) -> None:
    both = Hold()  # the first two sessions stay open until the pause is taken
    beside = Beside()
    seen: dict[str, object] = {}

    def script(request: AgentRequest) -> Script:
        number = len(backend.requests)
        if number > 2:
            return Script(writes={f"{number}.txt": "x"})

        async def after() -> None:
            beside.start(steer())

        return Script(writes={f"{number}.txt": "x"}, hold=both, after=after)

    backend = FakeBackend(script)
    backends.append(backend)
    lanes = Lanes(tmp_path, backend, plan_text(3))
    run_id = lanes.ctx.run.id
    assert lanes.ctx.watch is not None
    controls = Controls(lanes.store, run_id, lanes.ctx.reporter, lanes.ctx.watch, poll_s=0.01)
    lanes.ctx = replace(lanes.ctx, controls=controls)
    person = Person(lanes.project.store_path)

    async def steer() -> None:
        await both.reached(2)  # two attempts in flight, on two lanes
        pause = person.asks("pause", run_id)
        while person.answer(pause) is None:  # the poller takes it while the agents work
            await asyncio.sleep(0)
        seen["paused"] = (controls.paused, person.answer(pause))
        both.release()  # both attempts finish
        await controls.parked_at_least(2)  # both lanes are held before their next claim
        seen["held"] = (list(lanes.claimed), len(backend.requests))
        again = person.asks("pause", run_id)
        await controls.parked_at_least(2)
        while person.answer(again) is None:
            await asyncio.sleep(0)
        seen["again"] = person.answer(again)
        person.asks("resume", run_id)

    scheduler = Scheduler(
        lanes,
        lanes.work,
        lambda o: o.kind in STOPS,
        lanes=2,
        watch=lanes.ctx.watch,
        controls=controls,
    )
    outcomes = scheduler.run()

    beside.check()
    assert seen["paused"] == (True, answers.PAUSED)
    assert seen["held"] == ([1, 2], 2)  # both finished, batch 3 neither claimed nor started
    assert seen["again"] == answers.ALREADY_PAUSED
    assert sorted(o.key for o in outcomes) == ["1", "2", "3"]  # resumed: the third ran
    assert {o.kind for o in outcomes} == {"passed"}
    assert len(backend.requests) == 3
    events = kinds(lanes.store, run_id, "run_paused", "run_resumed")
    assert events == ["run_paused", "run_resumed"]
    [pause_event] = lanes.store.events(run_id, kinds=["run_paused"])
    assert pause_event["payload"] == {"by": "ada", "origin": "cli (pid 7)", "in_flight": 2}
    lanes.assert_consistent()
    person.close()
    lanes.store.close()


def test_a_pause_holds_the_retry_of_an_item_already_claimed(tmp_path: Path) -> None:
    proj = project(tmp_path, PLAN)
    beside = Beside()
    seen: dict[str, object] = {}

    def script(request: AgentRequest) -> Script:
        if len(backend.requests) == 1:  # batch 1 fails its first attempt (no done.txt)

            async def after() -> None:
                beside.start(steer())

            return Script(after=after)
        return Script(writes={"done.txt": request.prompt[-30:]})

    backend = FakeBackend(script)
    runner = Runner(
        proj,
        parse_plan(PLAN, proj.root / "PLAN.md"),
        Settings(gates=(DONE_GATE,)),
        backend,
        Notes(),
        RunOptions(register=False),
    )

    async def steer() -> None:
        controls = runner.controls
        assert controls is not None
        person = Person(proj.store_path)
        try:
            person.asks("pause", controls.run_id)
            await controls.parked_at_least(1)  # the retry waits, its item still claimed
            store = controls.store
            item = store.items(controls.run_id)[0]
            seen["held"] = (len(backend.requests), str(item.state), item.attempts)
            person.asks("resume", controls.run_id)
        finally:
            person.close()

    result = runner.execute()

    beside.check()
    assert result.exit_code == ExitCode.OK
    assert seen["held"] == (1, "in_progress", 1)  # one attempt, the retry not started
    assert len(backend.requests) == 3  # batch 1's retry after resume, then batch 2
    store = Store.open(proj.store_path)
    try:
        run_id = result.run_id
        assert run_id is not None
        # (the pause is taken while the attempt works or, at the latest, before the retry)
        assert kinds(store, run_id, "run_paused", "run_resumed") == ["run_paused", "run_resumed"]
        assert [e["payload"]["action"] for e in store.events(run_id, kinds=["decision"])] == [
            "retry"
        ]
        assert [str(i.state) for i in store.items(run_id)] == ["passed", "passed"]
    finally:
        store.close()


def build(proj: Project, backend: FakeBackend, notes: Notes, *, resume: bool = False) -> Builder:
    return Builder(
        proj, Settings(gates=("true",)), backend, notes, BuildOptions(register=False, resume=resume)
    )


def test_stop_lets_the_attempt_in_flight_finish_and_ends_interrupted_with_the_rest_pending(
    tmp_path: Path,
) -> None:
    proj = project(tmp_path)
    add_features(
        proj,
        *(FeatureSpec(name=name, acceptance=("true",)) for name in ("Login", "Logout", "Search")),
    )
    builder: list[Builder] = []

    def script(request: AgentRequest) -> Script:
        if feature_of(request) == "Login":  # a person stops the build while Login's agent works
            controls = builder[0].controls
            assert controls is not None
            person = Person(proj.store_path)
            person.asks("stop", controls.run_id)
            person.close()
        return Script(writes={"f.txt": request.prompt[-40:]})

    backend = FakeBackend(script)
    notes = Notes()
    builder.append(build(proj, backend, notes))
    result = builder[0].execute()

    assert result.exit_code == ExitCode.INTERRUPTED  # as Ctrl-C: interrupted, resumable
    assert result.message == (
        "stopped by ada from cli (pid 7): state saved; continue with `nightcrew build --resume`"
    )
    assert len(backend.requests) == 1  # Login's attempt finished; nothing else started
    assert features(proj) == [("Login", "passed"), ("Logout", "pending"), ("Search", "pending")]
    assert "stop asked by ada from cli (pid 7)" in notes.text()
    store = Store.open(proj.store_path)
    try:
        run = store.latest_run()
        assert run is not None and run.state == RunState.INTERRUPTED
        [stop] = store.events(run.id, kinds=["stop_requested"])
        assert stop["payload"] == {"by": "ada", "origin": "cli (pid 7)", "now": False}
        assert [a.state for a in store.attempts(run_id=run.id)] == ["passed"]
    finally:
        store.close()

    again = build(proj, backend, Notes(), resume=True).execute()

    assert again.exit_code == ExitCode.OK
    assert features(proj) == [("Login", "passed"), ("Logout", "passed"), ("Search", "passed")]


def test_a_stop_stops_no_other_lane_s_agent_when_an_item_is_put_back(
    tmp_path: Path, backends: list[FakeBackend]
) -> None:
    # Lane 1's attempt crashes after the stop was taken: its retry is not started
    # and its item goes back to pending, which stops the run's claiming. Lane 2's
    # agent works on and its attempt passes: a person's stop kills no agent.
    others = Hold()  # released once batch 1 is back to pending

    def script(request: AgentRequest) -> Script:
        if len(backend.requests) == 1:

            async def stop_first() -> None:
                await others.reached(1)
                person.asks("stop", run_id)
                while controls.stopping is None:  # the poller takes it
                    await asyncio.sleep(0)

            return Script(after=stop_first, error=RuntimeError("the agent fell over"))
        return Script(child=True, hold=others, writes={"two.txt": "2"})

    backend = FakeBackend(script)
    backends.append(backend)
    lanes = Lanes(tmp_path, backend, plan_text(3))
    run_id = lanes.ctx.run.id
    assert lanes.ctx.watch is not None
    controls = Controls(lanes.store, run_id, lanes.ctx.reporter, lanes.ctx.watch, poll_s=0.01)
    lanes.ctx = replace(lanes.ctx, controls=controls)
    person = Person(lanes.project.store_path)

    def released(event: Event) -> None:
        first = lanes.items[0][1].id
        if (
            isinstance(event, ev.StateChanged)
            and event.entity_id == str(first)
            and event.to_state == "pending"
        ):
            others.release()

    assert isinstance(lanes.ctx.reporter, Bus)
    lanes.ctx.reporter.subscribe(released, name="the test")
    scheduler = Scheduler(
        lanes, lanes.work, lambda o: o.kind in STOPS, lanes=2, watch=lanes.ctx.watch,
        controls=controls,
    )  # fmt: skip
    outcomes = scheduler.run()

    assert lanes.claimed == [1, 2]
    assert {o.key: o.kind for o in outcomes} == {"1": "interrupted", "2": "passed"}
    assert [str(a.state) for a in lanes.store.attempts(run_id=run_id)] == ["crashed", "passed"]
    assert len(backend.requests) == 2  # batch 1's retry never started
    assert [str(i.state) for i in lanes.store.items(run_id)] == ["pending", "passed", "pending"]
    lanes.assert_consistent()
    person.close()
    lanes.store.close()


def test_an_outcome_that_stops_the_run_ends_the_lanes_a_pause_holds(
    tmp_path: Path, backends: list[FakeBackend]
) -> None:
    # Batch 1 passes and its lane waits, paused, before its next claim; then
    # CRITICAL batch 2 fails, which stops the run: the paused lane must end too
    # (a Ctrl-C or a spent budget while paused is the same).
    first = Hold()

    def script(request: AgentRequest) -> Script:
        if len(backend.requests) == 1:
            return Script(hold=first, writes={"one.txt": "1"})

        async def pause_then_fail() -> None:
            await first.reached(1)
            person.asks("pause", run_id)
            while not controls.paused:
                await asyncio.sleep(0)
            first.release()
            await controls.parked_at_least(1)

        return Script(after=pause_then_fail, error=RuntimeError("boom"))

    backend = FakeBackend(script)
    backends.append(backend)
    lanes = Lanes(tmp_path, backend, plan_text(3, critical=2))
    run_id = lanes.ctx.run.id
    assert lanes.ctx.watch is not None
    controls = Controls(lanes.store, run_id, lanes.ctx.reporter, lanes.ctx.watch, poll_s=0.01)
    lanes.ctx = replace(lanes.ctx, controls=controls)
    person = Person(lanes.project.store_path)
    scheduler = Scheduler(
        lanes, lanes.work, lambda o: o.kind in STOPS, lanes=2, watch=lanes.ctx.watch,
        controls=controls,
    )  # fmt: skip

    outcomes = scheduler.run()

    assert {o.key: o.kind for o in outcomes} == {"1": "passed", "2": "failed"}
    assert lanes.claimed == [1, 2]
    assert controls.parked == 0
    lanes.assert_consistent()
    person.close()
    lanes.store.close()


def test_stop_now_stops_every_agent_in_flight_at_once(
    tmp_path: Path, backends: list[FakeBackend]
) -> None:
    forever = Hold()  # never released: only the harness stops these agents
    beside = Beside()

    def script(request: AgentRequest) -> Script:
        async def after() -> None:
            beside.start(steer())

        return Script(child=True, hold=forever, after=after)

    backend = FakeBackend(script)
    backends.append(backend)
    lanes = Lanes(tmp_path, backend, plan_text(3))
    run_id = lanes.ctx.run.id
    assert lanes.ctx.watch is not None
    controls = Controls(lanes.store, run_id, lanes.ctx.reporter, lanes.ctx.watch, poll_s=0.01)
    lanes.ctx = replace(lanes.ctx, controls=controls)
    person = Person(lanes.project.store_path)

    async def steer() -> None:
        await forever.reached(2)
        person.asks("stop_now", run_id)

    scheduler = Scheduler(
        lanes, lanes.work, lambda o: o.kind in STOPS, lanes=2, watch=lanes.ctx.watch,
        controls=controls,
    )  # fmt: skip
    outcomes = scheduler.run()

    beside.check()
    assert lanes.claimed == [1, 2]  # batch 3 never claimed
    assert sorted(o.kind for o in outcomes) == ["interrupted", "interrupted"]
    attempts = lanes.store.attempts(run_id=run_id)
    assert [str(a.state) for a in attempts] == ["cancelled", "cancelled"]
    assert {a.exit_reason for a in attempts} == {
        "stopped with the run: stopped now by ada from cli (pid 7)"
    }
    assert all(child.poll() is not None for child in backend.children)  # the agents are gone
    assert [str(i.state) for i in lanes.store.items(run_id)] == ["pending"] * 3
    lanes.assert_consistent()
    person.close()
    lanes.store.close()


def test_backlog_changes_made_during_a_build_are_what_the_build_claims(tmp_path: Path) -> None:
    """`backlog skip`, `retry --model` and `answer` from another shell while the
    build works: the skipped feature never starts, the retried and the answered
    ones are built, the retried one on the model asked for."""
    proj = project(tmp_path)
    add_features(
        proj,
        *(
            FeatureSpec(name=name, acceptance=("true",))
            for name in ("Login", "Logout", "Search", "Export")
        ),
    )
    store = Store.open(proj.store_path)
    setup = Backlog(store)
    setup.claim(3, by="mcp:1")
    setup.request_input(3, "which index?")  # Search waits for a person
    setup.skip([4], reason="later")  # Export was skipped
    store.close()

    def script(request: AgentRequest) -> Script:
        if feature_of(request) == "Login":
            person = Person(proj.store_path)
            edits = Backlog(person.store)
            edits.skip([2], reason="not now")
            edits.answer(3, "the full-text one")
            edits.retry([4], model="opus", reason="retry requested with opus")
            person.close()
        return Script(writes={"f.txt": request.prompt[-40:]})

    backend = FakeBackend(script)
    result = build(proj, backend, Notes()).execute()

    assert result.exit_code == ExitCode.OK
    started = {feature_of(r): r for r in backend.requests}
    assert len(backend.requests) == 3
    assert sorted(started) == ["Export", "Login", "Search"]  # Logout was never started
    assert started["Export"].model == "opus"
    assert "Answer: the full-text one" in started["Search"].prompt
    assert features(proj) == [
        ("Login", "passed"),
        ("Search", "passed"),
        ("Export", "passed"),
        ("Logout", "skipped"),
    ]


def test_a_stop_the_last_build_never_took_does_not_stop_its_resume_on_the_same_pid(
    tmp_path: Path,
) -> None:
    """A request lives as long as the orchestrator it was asked of. A stop that
    landed as the build ended (or that a crashed build never took) is addressed
    to that build's run id and pid; ``build --resume`` reuses the run id and, in
    a container, may well get the same pid (here: the same process). It must
    run, not stop at once, and say that it dropped the stale stop."""
    proj = project(tmp_path)
    add_features(proj, *(FeatureSpec(name=n, acceptance=("true",)) for n in ("Login", "Logout")))
    builder: list[Builder] = []

    def script(request: AgentRequest) -> Script:
        if feature_of(request) == "Login":  # the first build is stopped while Login works
            controls = builder[0].controls
            assert controls is not None
            person = Person(proj.store_path)
            person.asks("stop", controls.run_id)
            person.close()
        return Script(writes={"f.txt": request.prompt[-40:]})

    backend = FakeBackend(script)
    builder.append(build(proj, backend, Notes()))
    first = builder[0].execute()
    assert first.exit_code == ExitCode.INTERRUPTED
    assert first.run_id is not None
    person = Person(proj.store_path)  # asked as the build ended: nobody took it
    late = person.asks("stop", first.run_id)
    elsewhere = ControlRequests(person.store).add(
        first.run_id, 2**22 + 1, "pause", by="bob", origin="dashboard (pid 9)"
    )  # asked of an orchestrator of the run that is long gone

    notes = Notes()
    again = build(proj, backend, notes, resume=True).execute()

    assert again.exit_code == ExitCode.OK  # not "stopped by ada": the stop was not for it
    assert again.run_id == first.run_id
    assert features(proj) == [("Login", "passed"), ("Logout", "passed")]
    assert person.answer(late) == person.answer(elsewhere) == EXPIRED
    expired = person.store.events(first.run_id, kinds=["control_expired"])
    assert [(e["payload"]["action"], e["payload"]["by"]) for e in expired] == [
        ("stop", "ada"),
        ("pause", "bob"),
    ]
    assert expired[0]["payload"]["asked_of"] == f"{first.run_id} (pid {os.getpid()})"
    assert "ignored a stop asked by ada from cli (pid 7) at " in notes.text()
    assert f"it was for {first.run_id} (pid {os.getpid()}), which ended without taking it" in (
        notes.text()
    )
    person.close()


# ---- the asking side and what status reads -------------------------------------------


def running(store: Store) -> str:
    run = store.create_run(
        kind="backlog",
        source_path="backlog",
        source_sha256="s",
        config={},
        prefix_sha256="p",
        pid=os.getpid(),
    )
    store.set_run_state(run.id, RunState.RUNNING, reason="started")
    return run.id


def test_the_run_answers_each_request_and_status_reads_the_pause_from_its_answers(
    tmp_path: Path,
) -> None:
    store = Store.open(tmp_path / "nightcrew.db")
    run_id = running(store)
    bus = Bus()
    told: list[Event] = []
    bus.subscribe(told.append, name="watcher")
    bus.attach_store(store)
    controls = Controls(store, run_id, bus)
    person = Person(tmp_path / "nightcrew.db")
    asked = [person.asks(a, run_id) for a in ("resume", "pause", "pause")]

    controls.take()

    assert [person.answer(r) for r in asked] == [
        answers.NOT_PAUSED,
        answers.PAUSED,
        answers.ALREADY_PAUSED,
    ]
    shown = paused(store, run_id)
    assert shown is not None and (shown.by, shown.origin) == ("ada", "cli (pid 7)")
    resume, stop = person.asks("resume", run_id), person.asks("stop", run_id)
    late = person.asks("pause", run_id)
    controls.take()
    assert [person.answer(r) for r in (resume, stop, late)] == [
        answers.RESUMED,
        answers.STOPPING,
        answers.ALREADY_STOPPING,
    ]
    assert paused(store, run_id) is None
    assert [type(e) for e in told] == [ev.RunPaused, ev.RunResumed, ev.StopRequested]
    # A request addressed to an earlier orchestrator of the run is never taken.
    stale = ControlRequests(person.store).add(run_id, 1, "stop_now", by="ada", origin="cli")
    controls.take()
    assert person.answer(stale) is None
    person.close()
    store.close()


def test_a_pause_ends_when_the_run_stops_and_is_not_carried_into_its_resume(
    tmp_path: Path,
) -> None:
    store = Store.open(tmp_path / "nightcrew.db")
    run_id = running(store)
    bus = Bus()
    bus.attach_store(store)
    controls = Controls(store, run_id, bus)
    person = Person(tmp_path / "nightcrew.db")
    person.asks("pause", run_id)
    controls.take()
    assert paused(store, run_id) is not None
    unanswered = person.asks("resume", run_id)

    controls.finish(interrupted=True)  # the run ends (a signal) before taking the resume
    store.set_run_state(run_id, RunState.INTERRUPTED, reason="interrupted")

    assert person.answer(unanswered) == answers.ENDED
    assert paused(store, run_id) is None
    store.set_run_state(run_id, RunState.RUNNING, reason="resumed", orchestrator_pid=1)
    assert paused(store, run_id) is None  # --resume (another process) starts unpaused
    person.close()
    store.close()


def test_asking_with_nothing_running_names_the_latest_run_and_exits_1(tmp_path: Path) -> None:
    proj = project(tmp_path)
    with pytest.raises(NothingRunning, match="no nightcrew run here yet") as none:
        ask(proj, "pause")
    assert none.value.exit_code == ExitCode.WORK_FAILED
    store = proj.open_store()
    run_id = running(store)
    store.set_run_state(run_id, RunState.INTERRUPTED, reason="interrupted")
    store.close()
    with pytest.raises(NothingRunning, match=f"the latest, build {run_id}, is interrupted"):
        ask(proj, "stop")
    store = proj.open_store()
    assert store.db.execute("SELECT count(*) FROM control_requests").fetchone()[0] == 0
    store.close()  # nothing was written that a later build could take


def test_a_request_that_lands_as_the_run_ends_is_answered_by_its_asker(tmp_path: Path) -> None:
    proj = project(tmp_path)
    store = proj.open_store()
    run_id = running(store)

    def the_run_ends(_: float) -> None:  # after the run's last sweep of its requests
        store.set_run_state(run_id, RunState.INTERRUPTED, reason="interrupted")

    answer = ask(proj, "pause", by="ada", origin="test", wait_s=30, sleep=the_run_ends)

    assert answer.answer == answers.ENDED
    assert ControlRequests(store).unanswered(run_id, os.getpid()) == []  # it lingers for nobody
    store.close()


def test_a_run_whose_orchestrator_is_gone_is_not_running(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "nightcrew.db")
    run_id = running(store)
    assert running_run(store) is not None
    store.db.execute("UPDATE runs SET orchestrator_pid = ? WHERE id = ?", (2**22 + 1, run_id))
    assert running_run(store) is None
    store.close()


def test_a_busy_run_keeps_the_request_for_its_next_step(tmp_path: Path) -> None:
    proj = project(tmp_path)
    store = proj.open_store()
    run_id = running(store)
    store.close()

    answer = ask(proj, "pause", by="ada", origin="test", wait_s=0, sleep=lambda s: None)

    assert answer.answer is None  # nobody took it yet: it waits for the run
    store = Store.open(proj.store_path)
    [request] = ControlRequests(store).unanswered(run_id, os.getpid())
    assert (request.action, request.by, request.origin) == ("pause", "ada", "test")
    store.close()


def test_items_held_by_a_stop_before_their_attempt_go_back_to_pending(tmp_path: Path) -> None:
    """A stop while a claimed item waits for its first attempt (paused): it is
    put back, not failed, and the item is pending for --resume."""
    store_path = tmp_path / "proj" / ".nightcrew" / "nightcrew.db"
    backend = FakeBackend([Script()])
    lanes = Lanes(tmp_path, backend, plan_text(1))
    run_id = lanes.ctx.run.id
    controls = Controls(lanes.store, run_id, lanes.ctx.reporter, lanes.ctx.watch, poll_s=0.01)
    lanes.ctx = replace(lanes.ctx, controls=controls)
    person = Person(store_path)
    claimed: list[int] = []

    class Source:
        def claim(self, lane: int) -> Any:
            got = lanes.claim(lane)
            if got is not None:  # claimed; a pause then a stop come before its attempt
                person.asks("pause", run_id)
                person.asks("stop", run_id)
                claimed.append(got[0].number)
            return got

    scheduler = Scheduler(
        Source(), lanes.work, lambda o: o.kind in STOPS, lanes=1, watch=lanes.ctx.watch,
        controls=controls,
    )  # fmt: skip
    outcomes = scheduler.run()

    assert claimed == [1]
    assert [(o.kind, o.message) for o in outcomes] == [
        ("interrupted", "stopped by ada from cli (pid 7)")
    ]
    assert backend.requests == []
    assert [i.state for i in lanes.store.items(run_id)] == [ItemState.PENDING]
    person.close()
    lanes.store.close()
