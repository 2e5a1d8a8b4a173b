"""A scripted agent backend for tests of the engine without a real agent.

:class:`FakeBackend` answers every session with the next :class:`Script`
(the last one repeats), or with what a function of the request returns: the
events to yield (session started, tool calls, usage with tokens, the finish),
files to write in the request's working directory, an exception to raise, and
optionally a :class:`Hold` that keeps the session open until the test (or
enough other sessions) release it, so a test can prove several attempts are in
flight at once without sleeping. Not used by the command line.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from nightcrew.agents.base import (
    AgentEvent,
    AgentRequest,
    Capabilities,
    Finished,
    ProcessStarted,
    SessionStarted,
    ToolCall,
    ToolResult,
    Usage,
)
from nightcrew.core.usage import ModelUsage, TokenCounts
from nightcrew.proc import process_create_time


def success(
    cost_usd: Decimal | None = Decimal("0.01"),
    *,
    session_id: str | None = None,
    model_usage: tuple[ModelUsage, ...] = (),
    subtype: str | None = "success",
    is_error: bool = False,
    text: str = "done",
    budget_stopped: bool = False,
) -> Finished:
    """The agent's own end of a session (by default a success that cost a cent)."""
    return Finished(
        status="error" if is_error else "success",
        result_subtype=subtype,
        is_error=is_error,
        result_text=text,
        reported_cost_usd=cost_usd,
        model_usage=model_usage,
        session_id=session_id,
        budget_stopped=budget_stopped,
    )


def usage(model: str, message_id: str, *, input: int = 0, output: int = 0) -> Usage:
    """One API response's usage, as the agent streams it."""
    return Usage(message_id, None, model, TokenCounts(input=input, output=output))


def tool(name: str, tool_use_id: str, **inputs: object) -> tuple[ToolCall, ToolResult]:
    """A tool call and its (successful) result."""
    return ToolCall(tool_use_id, name, inputs), ToolResult(tool_use_id, False, "ok")


class Hold:
    """Keeps sessions open until released: by :meth:`release`, or by itself
    once ``release_at`` sessions are held at the same time. ``peak`` is the
    most sessions it ever held at once."""

    def __init__(self, release_at: int | None = None) -> None:
        self.release_at = release_at
        self.held = 0
        self.peak = 0
        self._released = asyncio.Event()
        self._waiters: list[asyncio.Event] = []

    def release(self) -> None:
        self._released.set()

    async def wait(self) -> None:
        self.held += 1
        self.peak = max(self.peak, self.held)
        self._changed()
        if self.release_at is not None and self.held >= self.release_at:
            self._released.set()
        try:
            await self._released.wait()
        finally:
            self.held -= 1

    async def reached(self, n: int) -> None:
        """Wait until ``n`` sessions are held at once."""
        while self.peak < n:
            changed = asyncio.Event()
            self._waiters.append(changed)
            await changed.wait()

    def _changed(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.set()


@dataclass(frozen=True)
class Script:
    """One agent session. ``writes`` (path relative to the request's cwd →
    text) are written after ``events`` and before the finish; ``error`` is
    raised instead of finishing; ``after`` is awaited after ``events``;
    ``hold`` keeps the session open after that until released (or, with a
    child, until the child dies: the harness stopped the agent). With
    ``child`` the session first starts a real ``sleep`` in its own process
    group and announces it (the harness kills it); ``wait_for_child`` keeps
    the stream open until that child dies."""

    events: Sequence[AgentEvent] = ()
    writes: Mapping[str, str] = field(default_factory=dict)
    finished: Finished | None = field(default_factory=success)
    error: BaseException | None = None
    after: Callable[[], Awaitable[None]] | None = None
    hold: Hold | None = None
    session_id: str | None = "fake-session"
    model: str | None = None
    child: bool = False
    wait_for_child: bool = False


class FakeBackend:
    """An :class:`AgentBackend` that plays :class:`Script` s. ``requests``
    are the requests it got, in order; ``children`` the processes it started."""

    name = "fake"
    capabilities = Capabilities()
    default_allowed_tools: tuple[str, ...] = ()

    def __init__(self, scripts: Sequence[Script] | Callable[[AgentRequest], Script] = ()) -> None:
        self.scripts = scripts
        self.requests: list[AgentRequest] = []
        self.children: list[subprocess.Popen[bytes]] = []

    def tool_name(self, tool: str) -> str:
        """Harness tools keep their own names."""
        return tool

    @property
    def child(self) -> subprocess.Popen[bytes] | None:
        return self.children[-1] if self.children else None

    def script(self, request: AgentRequest) -> Script:
        if callable(self.scripts):
            return self.scripts(request)
        if not self.scripts:
            return Script()
        return self.scripts[min(len(self.requests), len(self.scripts)) - 1]

    async def run(self, request: AgentRequest) -> AsyncIterator[AgentEvent]:
        self.requests.append(request)
        script = self.script(request)
        child: subprocess.Popen[bytes] | None = None
        if script.child:
            child = subprocess.Popen(["sleep", "60"], start_new_session=True)
            self.children.append(child)
            create_time = process_create_time(child.pid)
            assert create_time is not None
            yield ProcessStarted(child.pid, create_time)
        if script.session_id is not None:
            yield SessionStarted(script.session_id, script.model or request.model)
        for event in script.events:
            yield event
        if script.after is not None:
            await script.after()
        if script.hold is not None:
            await _hold(script.hold, child)
        for path, text in script.writes.items():
            target = request.cwd / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        if script.error is not None:
            raise script.error
        if script.wait_for_child and child is not None:
            await asyncio.to_thread(child.wait)
        if script.finished is not None:
            yield script.finished

    def reap(self) -> None:
        """Kill and wait for every child still running (a test's clean-up)."""
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=10)


async def _hold(hold: Hold, child: subprocess.Popen[bytes] | None) -> None:
    """Wait for the hold's release, or for the child to be killed, whichever first."""
    if child is None:
        await hold.wait()
        return
    released = asyncio.create_task(hold.wait())
    died = asyncio.create_task(asyncio.to_thread(child.wait))
    await asyncio.wait({released, died}, return_when=asyncio.FIRST_COMPLETED)
    released.cancel()
