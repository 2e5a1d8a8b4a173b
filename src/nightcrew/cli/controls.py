"""``nightcrew pause``, ``resume`` and ``stop [--now]``: steering the run in
progress in this project from another shell. The asking is done by
:mod:`nightcrew.engine.steer` (the dashboard will call it too); this module
prints its answer as one line.

Exit codes: 0 when the run in progress took the request or is already as
asked (paused, not paused, stopping); 1 when nothing runs in the project, so
a script can tell "there was nothing to stop" from "it stops". A stopped run
itself exits 130, as on Ctrl-C: it is interrupted, and ``--resume`` goes on.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from nightcrew.engine.steer import Answer
    from nightcrew.store.controls import Action


@click.command("pause")
def pause_command() -> None:
    """Pause the build (or run) in progress: the attempts in flight finish,
    then nothing new starts (no claim, no retry) until `nightcrew resume`.
    The build waits, alive."""
    click.echo(_ask("pause"))


@click.command("resume")
def resume_command() -> None:
    """Resume a paused build (or run): claiming and attempts go on."""
    click.echo(_ask("resume"))


@click.command("stop")
@click.option("--now", is_flag=True, help="Stop every agent at once, as SIGTERM would.")
def stop_command(now: bool) -> None:
    """Stop the build (or run) in progress: the attempts in flight finish,
    none starts, and it ends interrupted (exit 130), to be continued with
    --resume. With --now its agents are stopped at once."""
    click.echo(_ask("stop_now" if now else "stop"))


def _ask(action: Action) -> str:
    from nightcrew.engine.controls import ENDED
    from nightcrew.engine.steer import NothingRunning, ask
    from nightcrew.project import Project

    answer = ask(Project.find(Path.cwd()), action)
    if answer.answer == ENDED:  # nothing runs any more: as if it had not been running
        raise NothingRunning(_said(answer))
    return _said(answer)


def _said(answer: Answer) -> str:
    """The run's answer as one line."""
    from nightcrew.engine import controls as c
    from nightcrew.engine.steer import SIGNALLED, named, resume_hint
    from nightcrew.store.controls import PAUSED

    run = named(answer.run)
    hint = resume_hint(answer.run)
    asked = {"pause": "pause", "resume": "resume", "stop": "stop", "stop_now": "stop --now"}
    lines = {
        PAUSED: f"{run} paused: the attempts in flight finish, then nothing new starts"
        " until `nightcrew resume`",
        c.ALREADY_PAUSED: f"{run} is already paused{_since(answer)}",
        c.RESUMED: f"{run} resumed: claiming goes on",
        c.NOT_PAUSED: f"{run} is not paused",
        c.STOPPING: f"{run} stops: the attempts in flight finish, then it ends interrupted"
        f" (continue with {hint})",
        c.STOPPING_NOW: f"{run} stops now: its agents are stopped and it ends interrupted"
        f" (continue with {hint})",
        c.ALREADY_STOPPING: f"{run} is already stopping",
        c.ENDED: f"{run} ended before it took the {asked[answer.action]}",
        SIGNALLED: f"{run} did not answer: sent it SIGTERM; it ends interrupted"
        f" (continue with {hint})",
    }
    if answer.answer is None:
        return (
            f"{asked[answer.action]} asked: {run} is busy (running checks) and takes it"
            " before it starts anything new"
        )
    return lines.get(answer.answer, f"{run}: {answer.answer}")


def _since(answer: Answer) -> str:
    if answer.paused is None:
        return ""
    at = datetime.fromisoformat(answer.paused.since).astimezone().strftime("%H:%M:%S")
    return f" (since {at}, by {answer.paused.by} from {answer.paused.origin})"
