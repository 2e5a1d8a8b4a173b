"""What makes a lane's fresh worktree runnable, and keeps lanes apart.

A parallel build runs each feature in its own git worktree. A fresh worktree
has no ``.env`` and no ``node_modules``, so the config's ``worktree_setup``
commands run in it first (:func:`run_setup`), with their own evidence and
their own time, so a slow ``npm ci`` is never mistaken for a slow agent. Two
dev servers on one port would make one lane's tests talk to another lane's
server, so each lane gets its own block of ports (:func:`lane_env`), and the
config refuses blocks that would not fit below 65535.

Setup commands get the lane's variables plus ``NIGHTCREW_PROJECT_ROOT`` (the
main checkout) and ``NIGHTCREW_WORKTREE``, so ``cp "$NIGHTCREW_PROJECT_ROOT/.env"
.env`` works wherever the worktree lives.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nightcrew import proc
from nightcrew.config import Settings
from nightcrew.core.events import WorktreeSetupRan
from nightcrew.engine import testrun

LANE_VAR = "NIGHTCREW_LANE"
PORT_BASE_VAR = "NIGHTCREW_PORT_BASE"
PROJECT_ROOT_VAR = "NIGHTCREW_PROJECT_ROOT"
WORKTREE_VAR = "NIGHTCREW_WORKTREE"
_SHOWN_CHARS = 60  # how much of a long command a reason line quotes


def lane_ports(lane: int, settings: Settings) -> range:
    """The ports lane ``lane`` (1-based) may use; no other lane gets any of them."""
    if not 1 <= lane <= settings.lanes:
        raise ValueError(f"lane {lane} is not one of the {settings.lanes} lane(s)")
    first = settings.port_base + (lane - 1) * settings.ports_per_lane
    return range(first, first + settings.ports_per_lane)


def lane_env(lane: int, settings: Settings) -> dict[str, str]:
    """The variables that tell lane ``lane`` (1-based) apart: its number and
    the first of its ports, as ``NIGHTCREW_PORT_BASE`` and as ``PORT`` (which
    most dev servers read)."""
    first = str(lane_ports(lane, settings).start)
    return {LANE_VAR: str(lane), PORT_BASE_VAR: first, "PORT": first}


def worktree_env(
    lane: int, settings: Settings, *, project_root: Path, worktree: Path
) -> dict[str, str]:
    """:func:`lane_env` plus where the main checkout and the worktree are:
    what setup commands, the agent and the gates of that lane run with."""
    return {
        **lane_env(lane, settings),
        PROJECT_ROOT_VAR: str(project_root),
        WORKTREE_VAR: str(worktree),
    }


@dataclass(frozen=True)
class SetupStep:
    """One setup command as it ran."""

    command: str
    exit_code: int | None  # None: timed out, or could not start
    seconds: float
    log: Path
    timed_out: bool = False
    error: str | None = None  # why it could not start

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class SetupResult:
    """The setup of one worktree: the commands that ran (it stops at the first
    failure) and the whole setup's seconds, told apart from agent and gate time."""

    steps: tuple[SetupStep, ...]
    seconds: float
    timeout_s: float

    @property
    def failed(self) -> SetupStep | None:
        return next((s for s in self.steps if not s.passed), None)

    @property
    def passed(self) -> bool:
        return self.failed is None

    @property
    def reason(self) -> str | None:
        """One line for a digest or the console, None when setup passed:
        ``worktree setup failed: `npm ci` exited 1 (see …/setup-2.log)``."""
        step = self.failed
        if step is None:
            return None
        if step.timed_out:
            what = f"timed out after {self.timeout_s:g}s"
        elif step.error is not None:
            what = f"could not start: {step.error}"
        else:
            what = f"exited {step.exit_code}"
        return f"worktree setup failed: `{shown_command(step.command)}` {what} (see {step.log})"


def shown_command(command: str) -> str:
    """A command as a one-line reason quotes it: its first line, cut short."""
    lines = command.strip().splitlines() or [""]
    text = lines[0]
    if len(lines) > 1 or len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 1].rstrip() + "…"
    return text


def run_setup(
    commands: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    evidence_dir: Path,
    timeout_s: float,
) -> SetupResult:
    """Run ``commands`` in order in ``cwd`` (the worktree), each through the
    shell with ``env`` over our own environment, until one fails. Each one's
    output (stdout and stderr together) is kept as ``evidence_dir/setup-<i>.log``
    (1-based); ``timeout_s`` is each command's limit, after which its process
    group is killed.

    A command cannot leave a server running: whatever it started in its
    process group goes with it, as with gates.
    """
    started = time.monotonic()
    merged = testrun.gate_env({**os.environ, WORKTREE_VAR: str(cwd), **env})
    steps: list[SetupStep] = []
    for index, command in enumerate(commands, start=1):
        step = _run_one(command, cwd, merged, evidence_dir / f"setup-{index}.log", timeout_s)
        steps.append(step)
        if not step.passed:
            break
    return SetupResult(tuple(steps), time.monotonic() - started, timeout_s)


def _run_one(
    command: str, cwd: Path, env: Mapping[str, str], log: Path, timeout_s: float
) -> SetupStep:
    started = time.monotonic()
    try:
        done = proc.run(
            proc.shell_argv(command), cwd=cwd, timeout_s=timeout_s, env=env, output_file=log
        )
    except OSError as exc:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"could not start: {exc}\n", encoding="utf-8")
        reason = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
        return SetupStep(command, None, time.monotonic() - started, log, error=reason)
    return SetupStep(command, done.exit_code, done.duration_s, log, timed_out=done.timed_out)


def setup_event(
    result: SetupResult,
    *,
    item: str,
    run_id: str | None,
    item_id: int | None = None,
    lane: int = 0,
) -> WorktreeSetupRan:
    """The event that tells watchers how the setup of ``item``'s worktree went."""
    failed = result.failed
    last = failed or (result.steps[-1] if result.steps else None)
    return WorktreeSetupRan(
        run_id=run_id,
        item_id=item_id,
        lane=lane,
        item=item,
        commands=tuple(s.command for s in result.steps),
        passed=failed is None,
        seconds=result.seconds,
        failed_command=failed.command if failed is not None else None,
        log=str(last.log) if last is not None else None,
        reason=result.reason or "",
    )
