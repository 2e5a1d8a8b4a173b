"""Domain errors. Each carries the exit code the CLI ends with; the CLI edge
turns them into one clean line (``NIGHTCREW_DEBUG=1`` re-raises)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    WORK_FAILED = 1
    BAD_INPUT = 2
    BUDGET_EXCEEDED = 3
    LOCKED = 4
    HANGUP = 129  # SIGHUP: the terminal or SSH connection closed
    INTERRUPTED = 130


class NightcrewError(Exception):
    exit_code: ExitCode = ExitCode.WORK_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(NightcrewError):
    """The user gave something we cannot use: a plan, config or option."""

    exit_code = ExitCode.BAD_INPUT


class LocatedError(BadInput):
    """A bad input with a place in a file: renders as ``file:line: message``."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.detail = message


class AgentUnusable(BadInput):
    """The agent cannot work as set up (not logged in, a wrong model, a usage
    limit …): another attempt would fail the same way, so the run stops."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class LockHeld(NightcrewError):
    exit_code = ExitCode.LOCKED


class IllegalTransition(NightcrewError):
    """A state change the transition table does not allow (a bug, not input)."""


class GitError(NightcrewError):
    """A git command failed where the run cannot go on."""


def report_crash(exc: BaseException) -> int:
    """An unexpected error: the traceback goes to a file, one line naming the error
    and the file to stderr; returns the exit code."""
    import sys  # noqa: PLC0415 - kept out of the fast paths that import this module
    import tempfile  # noqa: PLC0415
    import traceback  # noqa: PLC0415

    fd, path = tempfile.mkstemp(prefix="nightcrew-crash-", suffix=".txt")
    with open(fd, "w") as out:
        traceback.print_exception(exc, file=out)
    print(
        f"nightcrew: internal error: {type(exc).__name__}: {exc} (details in {path};"
        " please report it)",
        file=sys.stderr,
    )
    return int(ExitCode.WORK_FAILED)
