"""One agent session: drive a backend's event stream to its end, or stop it.

Three things can stop an agent early: the attempt timeout, the budget, and the
person (Ctrl-C / SIGTERM). All three go through :class:`Stopper`, which
records the first reason and kills the agent's process group; the backend's
stream then ends, and the outcome says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from nightcrew.agents.base import (
    AgentBackend,
    AgentEvent,
    AgentRequest,
    Finished,
    ProcessStarted,
    SessionStarted,
    Text,
    ToolCall,
    ToolDenied,
    Usage,
)
from nightcrew.core.usage import TokenCounts
from nightcrew.engine import signals as stop_signals
from nightcrew.proc import TERM_GRACE_S
from nightcrew.usage.pricing import Pricer

StopReason = Literal["timed_out", "cancelled", "over_budget"]
End = Literal["finished", "timed_out", "cancelled", "over_budget", "crashed"]

# After a stop, how long the stream may take to wind down before we give up on it.
STOP_DRAIN_S = 15.0


@dataclass
class LiveUsage:
    """Usage seen while the agent streams, one entry per API response."""

    pricer: Pricer
    responses: dict[str, tuple[str, TokenCounts, Decimal | None]] = field(default_factory=dict)

    def update(self, usage: Usage) -> None:
        cost = self.pricer.price_response(usage.model, usage.tokens).usd
        self.responses[usage.message_id] = (usage.model, usage.tokens, cost)

    @property
    def tokens(self) -> TokenCounts:
        total = TokenCounts()
        for _, tokens, _ in self.responses.values():
            total = total + tokens
        return total

    @property
    def cost_usd(self) -> Decimal:
        """Known cost so far (responses of unknown models count nothing here;
        they are reported as unknown elsewhere)."""
        return sum((c for _, _, c in self.responses.values() if c is not None), Decimal(0))

    @property
    def unknown(self) -> int:
        return sum(1 for _, _, c in self.responses.values() if c is None)


@dataclass
class AgentOutcome:
    end: End
    finished: Finished | None
    session_id: str | None
    models: list[str]
    tool_calls: int
    last_text: str | None
    agent_seconds: float
    live: LiveUsage
    pid: int | None
    tool_denials: int = 0  # calls the harness's tool policy refused


@dataclass
class _Seen:
    """What the stream has shown so far."""

    finished: Finished | None = None
    session_id: str | None = None
    tool_calls: int = 0
    last_text: str | None = None
    models: list[str] = field(default_factory=list)
    tool_denials: int = 0


class Stopper:
    def __init__(self) -> None:
        self.reason: StopReason | None = None
        self.pid: int | None = None
        self.event = asyncio.Event()
        self._killed = False

    def stop(self, reason: StopReason) -> None:
        if self.reason is None:
            self.reason = reason
        self.event.set()
        self._kill()

    def attach(self, pid: int) -> None:
        self.pid = pid
        if self.reason is not None:
            self._kill()

    def _kill(self) -> None:
        if self.pid is None or self._killed:
            return
        self._killed = True
        pid = self.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)

        def force() -> None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

        asyncio.get_running_loop().call_later(TERM_GRACE_S, force)


async def drive_agent(
    backend: AgentBackend,
    request: AgentRequest,
    *,
    timeout_s: float,
    pricer: Pricer,
    budget_left_usd: Decimal | None,
    on_event: Callable[[AgentEvent, LiveUsage], None],
    handle_signals: bool = True,
    watch: stop_signals.StopWatch | None = None,
    over_budget: Callable[[Decimal], bool] | None = None,
    starting: asyncio.Semaphore | None = None,
) -> AgentOutcome:
    """Run the agent to the end of its session or until stopped. With a
    ``watch`` (the scheduler's), the run's signal handling stops this agent;
    without one, ``handle_signals`` installs handlers for this session only.
    ``over_budget`` is asked with the live cost at every response: it sees the
    run's other attempts in flight, which ``budget_left_usd`` (fixed when the
    attempt started) cannot. ``starting`` (shared by the lanes) is held from
    the agent's launch until its session has begun (engine/slots.py)."""
    loop = asyncio.get_running_loop()
    stopper = Stopper()
    live = LiveUsage(pricer)
    started = time.monotonic()
    seen = _Seen()

    signals = stop_signals.STOP_SIGNALS if handle_signals and watch is None else ()
    # remove_signal_handler resets to the default, not to what was there: keep
    # the caller's handlers (the runner turns SIGTERM and SIGHUP into a clean stop).
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def on_signal(signum: int) -> None:
        stop_signals.note(signum)
        stopper.stop("cancelled")

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    watched = watch.add(lambda: stopper.stop("cancelled")) if watch is not None else None
    timer = loop.call_later(timeout_s, stopper.stop, "timed_out")

    launched = asyncio.Event()  # the agent was launched (it had its turn to start)

    async def consume() -> None:
        # Held from the launch until the agent's first event after its process
        # started (its session has begun): it is loaded and waits on the model.
        held = starting is not None and await starting.acquire()
        launched.set()
        try:
            async for event in backend.run(request):
                if held and not isinstance(event, ProcessStarted):
                    assert starting is not None
                    starting.release()
                    held = False
                on_agent_event(event)
        finally:
            if held:
                assert starting is not None
                starting.release()

    def on_agent_event(event: AgentEvent) -> None:
        if isinstance(event, ProcessStarted):
            stopper.attach(event.pid)
        elif isinstance(event, SessionStarted):
            seen.session_id = event.session_id
        elif isinstance(event, ToolCall):
            seen.tool_calls += 1
        elif isinstance(event, ToolDenied):
            seen.tool_denials += 1
        elif isinstance(event, Text):
            seen.last_text = event.text
        elif isinstance(event, Usage):
            live.update(event)
            if event.model and event.model not in seen.models:
                seen.models.append(event.model)
            own = budget_left_usd is not None and live.cost_usd >= budget_left_usd
            if own or (over_budget is not None and over_budget(live.cost_usd)):
                stopper.stop("over_budget")
        elif isinstance(event, Finished):
            seen.finished = event
            if event.session_id:
                seen.session_id = event.session_id
        on_event(event, live)

    task = asyncio.create_task(consume())
    waiter = asyncio.create_task(stopper.event.wait())
    crashed: BaseException | None = None
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done() and not launched.is_set():
            task.cancel()  # stopped while waiting for its turn to start: nothing ran
        elif not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_DRAIN_S)
            except TimeoutError:
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    except Exception as exc:  # noqa: BLE001 - an agent failure is an outcome, not a crash of ours
        crashed = exc
    finally:
        if watch is not None and watched is not None:
            watch.remove(watched)
        timer.cancel()
        waiter.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)
            signal.signal(sig, previous[sig])
        if stopper.pid is not None:
            # Whatever the agent started and left running goes with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(stopper.pid, signal.SIGKILL)

    finished = seen.finished
    end: End
    if stopper.reason is not None:
        end = stopper.reason
    elif finished is not None and finished.budget_stopped:
        end = "over_budget"
    elif crashed is not None or finished is None or finished.is_error:
        end = "crashed"
    else:
        end = "finished"
    if crashed is not None and finished is None:
        finished = Finished.failure(
            f"{type(crashed).__name__}: {crashed}",
        )
    for usage in finished.model_usage if finished else ():
        if usage.model not in seen.models:
            seen.models.append(usage.model)
    return AgentOutcome(
        end=end,
        finished=finished,
        session_id=seen.session_id,
        models=seen.models,
        tool_calls=seen.tool_calls,
        last_text=seen.last_text,
        agent_seconds=time.monotonic() - started,
        live=live,
        pid=stopper.pid,
        tool_denials=seen.tool_denials,
    )
