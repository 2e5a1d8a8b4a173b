"""drive_agent with a fake backend at the seam: it yields agent events and, where the
test needs one, starts a real child process in its own group for the harness to kill."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from nightcrew import testing
from nightcrew.agents.base import (
    AgentEvent,
    AgentRequest,
    Finished,
    ProcessStarted,
    SessionStarted,
    Text,
    Thinking,
    ToolCall,
    ToolDenied,
    ToolResult,
    Usage,
)
from nightcrew.core.usage import ModelUsage, TokenCounts
from nightcrew.engine.attempt import AgentOutcome, LiveUsage, drive_agent
from nightcrew.testing import success
from nightcrew.usage.pricing import Pricer

SONNET = "claude-sonnet-4-5"  # $3 per million input tokens (under 200k per request)
IN_100K = TokenCounts(input=100_000)  # $0.30
Made = list[testing.FakeBackend]  # every backend a test made


def finished(
    *,
    subtype: str | None = "success",
    is_error: bool = False,
    session_id: str | None = None,
    model_usage: tuple[ModelUsage, ...] = (),
    budget_stopped: bool = False,
) -> Finished:
    return success(
        Decimal("0.01"),
        subtype=subtype,
        is_error=is_error,
        session_id=session_id,
        model_usage=model_usage,
        budget_stopped=budget_stopped,
    )


def FakeBackend(
    events: Sequence[AgentEvent] = (),
    *,
    child: bool = False,
    wait_for_child: bool = False,
    error: Exception | None = None,
) -> testing.FakeBackend:
    """Yields exactly ``events``; with ``child`` it first starts ``sleep 60`` in a new
    session and announces it. ``wait_for_child`` makes the stream last until that child
    dies (as a real agent's stream lasts until its process ends); ``error`` is raised at
    the end."""
    script = testing.Script(
        events=list(events),
        finished=None,
        session_id=None,
        error=error,
        child=child,
        wait_for_child=wait_for_child,
    )
    return testing.FakeBackend([script])


@pytest.fixture
def backends() -> Iterator[Made]:
    """Every backend a test makes; no child outlives its test."""
    made: Made = []
    yield made
    for backend in made:
        backend.reap()


def drive(
    backend: testing.FakeBackend,
    tmp_path: Path,
    *,
    timeout_s: float = 30,
    budget_left_usd: Decimal | None = None,
) -> tuple[AgentOutcome, list[AgentEvent]]:
    seen: list[AgentEvent] = []

    def on_event(event: AgentEvent, live: LiveUsage) -> None:
        assert isinstance(live, LiveUsage)
        seen.append(event)

    outcome = asyncio.run(
        drive_agent(
            backend,
            AgentRequest(prompt="do batch 1", cwd=tmp_path, model=SONNET),
            timeout_s=timeout_s,
            pricer=Pricer(),
            budget_left_usd=budget_left_usd,
            on_event=on_event,
            handle_signals=False,
        )
    )
    return outcome, seen


def child_exit(backend: testing.FakeBackend) -> int:
    """The child's exit status, waiting briefly for it to die."""
    assert backend.child is not None
    return backend.child.wait(timeout=10)


def test_normal_finish_reports_what_the_agent_did(tmp_path: Path, backends: Made) -> None:
    events: list[AgentEvent] = [
        SessionStarted("sess-early", SONNET),
        Text("Looking at the parser."),
        Thinking("hmm"),
        ToolCall("t1", "Read", {"file_path": "src/parse.py"}),
        ToolResult("t1", False, "def parse(): ..."),
        Usage("msg_1", "req_1", SONNET, TokenCounts(input=1000, output=1)),
        Usage("msg_1", "req_1", SONNET, TokenCounts(input=1000, output=250)),
        ToolCall("t2", "Edit", {"file_path": "src/parse.py"}),
        ToolCall("t3", "Bash", {"command": "pytest -q"}),
        Usage("msg_2", "req_2", "claude-haiku-4-5", TokenCounts(input=10, output=5)),
        Text("All tests pass."),
        finished(
            session_id="sess-final",
            model_usage=(
                ModelUsage(SONNET, TokenCounts(input=1000, output=250), Decimal("0.00675")),
                ModelUsage("claude-opus-4-1", TokenCounts(input=1), None),
            ),
        ),
    ]
    backend = FakeBackend(events)
    backends.append(backend)
    outcome, seen = drive(backend, tmp_path)

    assert outcome.end == "finished"
    assert seen == events
    assert backend.requests[0].prompt == "do batch 1"
    assert outcome.finished == events[-1]
    assert outcome.session_id == "sess-final"
    assert outcome.models == [SONNET, "claude-haiku-4-5", "claude-opus-4-1"]
    assert outcome.tool_calls == 3
    assert outcome.last_text == "All tests pass."
    assert outcome.pid is None
    # live usage: one entry per message id, the newest numbers win
    assert set(outcome.live.responses) == {"msg_1", "msg_2"}
    assert outcome.live.tokens == TokenCounts(input=1010, output=255)
    assert outcome.live.unknown == 0
    assert outcome.live.cost_usd == Decimal("0.00675") + outcome.live.responses["msg_2"][2]
    assert outcome.agent_seconds >= 0


def test_whatever_the_agent_left_running_is_killed_at_the_end(
    tmp_path: Path, backends: Made
) -> None:
    backend = FakeBackend([Text("done"), finished()], child=True)
    backends.append(backend)
    outcome, _ = drive(backend, tmp_path)
    assert outcome.end == "finished"
    assert backend.child is not None
    assert outcome.pid == backend.child.pid
    assert child_exit(backend) == -signal.SIGKILL


def test_timeout_kills_the_agent_group(tmp_path: Path, backends: Made) -> None:
    backend = FakeBackend([Text("working…")], child=True, wait_for_child=True)
    backends.append(backend)
    outcome, _ = drive(backend, tmp_path, timeout_s=0.2)
    assert outcome.end == "timed_out"
    assert outcome.finished is None
    assert outcome.last_text == "working…"
    assert child_exit(backend) in (-signal.SIGTERM, -signal.SIGKILL)
    assert outcome.agent_seconds < 10


def test_crossing_the_budget_stops_the_agent(tmp_path: Path, backends: Made) -> None:
    events: list[AgentEvent] = [
        Usage("msg_1", None, SONNET, IN_100K),  # $0.30 of $0.50
        Usage("msg_2", None, SONNET, IN_100K),  # $0.60 of $0.50: over
    ]
    backend = FakeBackend(events, child=True, wait_for_child=True)
    backends.append(backend)
    outcome, seen = drive(backend, tmp_path, budget_left_usd=Decimal("0.50"))
    assert outcome.end == "over_budget"
    assert outcome.live.cost_usd == Decimal("0.60")
    assert seen[1:] == events
    assert child_exit(backend) in (-signal.SIGTERM, -signal.SIGKILL)


def test_a_repeated_message_is_not_counted_twice_against_the_budget(
    tmp_path: Path, backends: Made
) -> None:
    events: list[AgentEvent] = [
        Usage("msg_1", None, SONNET, IN_100K),
        Usage("msg_1", None, SONNET, IN_100K),  # the same response again: still $0.30
        finished(),
    ]
    backend = FakeBackend(events)
    backends.append(backend)
    outcome, _ = drive(backend, tmp_path, budget_left_usd=Decimal("0.50"))
    assert outcome.end == "finished"
    assert outcome.live.cost_usd == Decimal("0.30")


def test_agent_reporting_its_own_budget_limit_is_over_budget(
    tmp_path: Path, backends: Made
) -> None:
    backend = FakeBackend(
        [finished(subtype="error_max_budget_usd", is_error=True, budget_stopped=True)]
    )
    backends.append(backend)
    outcome, _ = drive(backend, tmp_path)
    assert outcome.end == "over_budget"


def test_a_backend_that_raises_is_crashed_with_the_error(tmp_path: Path, backends: Made) -> None:
    backend = FakeBackend(
        [Text("starting")], child=True, error=RuntimeError("the CLI exited with status 1")
    )
    backends.append(backend)
    outcome, _ = drive(backend, tmp_path)
    assert outcome.end == "crashed"
    assert outcome.finished is not None
    assert outcome.finished.is_error
    assert outcome.finished.error == "RuntimeError: the CLI exited with status 1"
    assert child_exit(backend) == -signal.SIGKILL  # its process group goes with it


def test_finished_with_is_error_is_crashed(tmp_path: Path, backends: Made) -> None:
    backend = FakeBackend([finished(subtype="error_during_execution", is_error=True)])
    backends.append(backend)
    outcome, _ = drive(backend, tmp_path)
    assert outcome.end == "crashed"
    assert outcome.finished is not None
    assert outcome.finished.result_subtype == "error_during_execution"


def test_a_stream_that_ends_without_finishing_is_crashed(tmp_path: Path, backends: Made) -> None:
    backend = FakeBackend([Text("half way")])
    backends.append(backend)
    outcome, _ = drive(backend, tmp_path)
    assert outcome.end == "crashed"
    assert outcome.finished is None


class SelfInterruptingBackend(testing.FakeBackend):
    """Starts its agent child, then sends this process SIGINT, as Ctrl-C would."""

    def __init__(self) -> None:
        script = testing.Script(finished=None, session_id=None, child=True, wait_for_child=True)
        super().__init__([script])

    async def run(self, request: AgentRequest) -> AsyncIterator[AgentEvent]:
        async for event in super().run(request):
            yield event
            if isinstance(event, ProcessStarted):
                os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_cancels_and_the_callers_handlers_come_back(tmp_path: Path, backends: Made) -> None:
    def on_term(signum: int, frame: object) -> None:
        raise AssertionError("not called here")

    before_int = signal.getsignal(signal.SIGINT)
    previous_term = signal.signal(signal.SIGTERM, on_term)
    try:
        backend = SelfInterruptingBackend()
        backends.append(backend)
        outcome = asyncio.run(
            drive_agent(
                backend,
                AgentRequest(prompt="do batch 1", cwd=tmp_path, model=SONNET),
                timeout_s=30,
                pricer=Pricer(),
                budget_left_usd=None,
                on_event=lambda event, live: None,
            )
        )
        assert outcome.end == "cancelled"
        assert child_exit(backend) != 0  # the agent's group was killed
        # A SIGTERM during the gates must still reach the runner's handler.
        assert signal.getsignal(signal.SIGTERM) is on_term
        assert signal.getsignal(signal.SIGINT) is before_int
    finally:
        signal.signal(signal.SIGTERM, previous_term)


def test_denied_tool_calls_are_counted_and_the_session_goes_on(
    tmp_path: Path, backends: Made
) -> None:
    denied = ToolDenied("t1", "Bash", "Bash: git push", "git-push", "never", "denied by policy")
    events: list[AgentEvent] = [
        ToolCall("t1", "Bash", {"command": "git push"}),
        denied,
        ToolResult("t1", True, "denied by policy"),
        ToolCall("t2", "Bash", {"command": "pytest -q"}),
        Text("Tests pass."),
        finished(),
    ]
    backend = FakeBackend(events)
    backends.append(backend)
    outcome, seen = drive(backend, tmp_path)

    assert outcome.end == "finished"
    assert denied in seen
    assert (outcome.tool_calls, outcome.tool_denials) == (2, 1)


# ---- start-up turns: at most as many agents loading at once as there are CPUs ---------


class GatedBackend:
    """An agent whose session begins only when the test says so; it records
    when it was launched."""

    name = "gated"
    default_allowed_tools: tuple[str, ...] = ()

    def __init__(self, label: str, log: list[str]) -> None:
        self.label = label
        self.log = log
        self.begin = asyncio.Event()

    def tool_name(self, tool: str) -> str:
        return tool

    async def run(self, request: AgentRequest) -> AsyncIterator[AgentEvent]:
        self.log.append(f"{self.label} launched")
        await self.begin.wait()  # loading, before its first model request
        yield SessionStarted(f"sess-{self.label}", SONNET)
        self.log.append(f"{self.label} session")
        yield finished()


async def drive_gated(
    backend: GatedBackend, cwd: Path, starting: asyncio.Semaphore, timeout_s: float = 30
) -> AgentOutcome:
    return await drive_agent(
        backend,  # type: ignore[arg-type]
        AgentRequest(prompt="go", cwd=cwd, model=SONNET),
        timeout_s=timeout_s,
        pricer=Pricer(),
        budget_left_usd=None,
        on_event=lambda event, live: None,
        handle_signals=False,
        starting=starting,
    )


def test_an_agent_is_launched_only_when_one_starting_before_it_has_begun_its_session(
    tmp_path: Path,
) -> None:
    log: list[str] = []
    one, two = GatedBackend("one", log), GatedBackend("two", log)

    async def both() -> list[AgentOutcome]:
        starting = asyncio.Semaphore(1)  # a machine with one CPU

        first = asyncio.create_task(drive_gated(one, tmp_path, starting))
        second = asyncio.create_task(drive_gated(two, tmp_path, starting))
        while log != ["one launched"]:
            await asyncio.sleep(0)
        for _ in range(50):  # "two" gets every chance to launch: it must not
            await asyncio.sleep(0)
        assert log == ["one launched"]
        one.begin.set()
        two.begin.set()
        return [await first, await second]

    outcomes = asyncio.run(both())

    assert log == ["one launched", "one session", "two launched", "two session"]
    assert [o.end for o in outcomes] == ["finished", "finished"]


def test_an_agent_stopped_while_waiting_for_its_turn_to_start_is_never_launched(
    tmp_path: Path,
) -> None:
    log: list[str] = []
    waiting = GatedBackend("waiting", log)

    async def blocked() -> AgentOutcome:
        starting = asyncio.Semaphore(1)
        await starting.acquire()  # another agent is loading and never gets going
        return await drive_gated(waiting, tmp_path, starting, timeout_s=0.05)

    outcome = asyncio.run(blocked())

    assert outcome.end == "timed_out"
    assert log == []  # nothing was launched, so nothing is left to stop
