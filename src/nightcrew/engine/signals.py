"""The signals that stop a run: Ctrl-C (SIGINT), SIGTERM and SIGHUP (the
terminal or SSH connection closed).

Each stops the agent (its process group is killed), records the attempt
``cancelled`` and the run ``interrupted``. A hangup ends with exit 129 (128 +
SIGHUP, what a shell reports), the others with 130. Which signal came first is
kept here, process-wide like signal dispositions themselves, so the frame that
finishes the run can say so after an agent session swallowed the signal.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType

from nightcrew import proc
from nightcrew.core.errors import ExitCode

# Handled while an agent runs (drive_agent) and, but for SIGINT, which Python
# already turns into KeyboardInterrupt, around the whole run (the orchestrator).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_received: list[int] = []  # the first stopping signal of this run, if any


def reset() -> None:
    """Forget any earlier signal: a new run starts."""
    _received.clear()


def note(signum: int) -> None:
    """Remember the first stopping signal of this run."""
    if not _received:
        _received.append(signum)


def received() -> int | None:
    return _received[0] if _received else None


def hung_up() -> bool:
    return received() == signal.SIGHUP


def exit_code() -> ExitCode:
    return ExitCode.HANGUP if hung_up() else ExitCode.INTERRUPTED


def reason() -> str:
    """Why the run stopped, for the attempt and the state history."""
    return "the terminal hung up (SIGHUP)" if hung_up() else "interrupted by the user"


class Interrupted(BaseException):
    """SIGTERM or SIGHUP outside the agent: treated like Ctrl-C."""


class StopWatch:
    """The stopping signals of one scheduled run, handled once for all its lanes.

    While agents run, a signal stops every one of them (their sessions end
    ``cancelled``); with none running it interrupts whatever the run is doing,
    as before any agent started: SIGINT raises KeyboardInterrupt, SIGTERM and
    SIGHUP :class:`Interrupted`. The handlers of the caller come back after."""

    def __init__(self) -> None:
        self._live: dict[int, Callable[[], None]] = {}
        self._next = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, object] = {}
        self.threaded = False  # lanes run commands in worker threads (several lanes)
        self.why: str | None = None  # why the run stopped its agents, when no signal did
        self.now = False  # a person stopped every agent at once (`nightcrew stop --now`)

    def reason(self) -> str:
        """Why an agent of this run was stopped, for its attempt."""
        if received() is None and self.why is not None:
            return f"stopped with the run: {self.why}"[:300]
        return reason()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
        self._loop = None

    def add(self, stop: Callable[[], None]) -> int:
        """Stop this agent on a signal (``stop`` runs in the event loop); a key
        for :meth:`remove`."""
        self._next += 1
        self._live[self._next] = stop
        return self._next

    def remove(self, key: int) -> None:
        self._live.pop(key, None)

    def stop_all(self, why: str | None = None, *, now: bool = False) -> None:
        """Stop every agent in flight (a lane's outcome stopped the run, or a
        person did with ``now``: ``why``)."""
        if why is not None and self.why is None:
            self.why = why
        self.now = self.now or now
        for stop in list(self._live.values()):
            stop()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.threaded:
            proc.stop_running()  # gates or git a lane runs in a worker thread
        if self._live and self._loop is not None:
            note(signum)
            for stop in list(self._live.values()):
                self._loop.call_soon_threadsafe(stop)
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        note(signum)
        raise Interrupted()
