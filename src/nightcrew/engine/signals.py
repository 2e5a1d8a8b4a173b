"""The signals that stop a run: Ctrl-C (SIGINT), SIGTERM and SIGHUP (the
terminal or SSH connection closed).

Each stops the agent (its process group is killed), records the attempt
``cancelled`` and the run ``interrupted``. A hangup ends with exit 129 (128 +
SIGHUP, what a shell reports), the others with 130. Which signal came first is
kept here, process-wide like signal dispositions themselves, so the frame that
finishes the run can say so after an agent session swallowed the signal.
"""

from __future__ import annotations

import signal

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
