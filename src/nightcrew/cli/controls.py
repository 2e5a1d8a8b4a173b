"""``nightcrew pause``, ``resume`` and ``stop [--now]``: steering the run in
progress in this project from another shell. The asking is done by
:mod:`nightcrew.engine.steer` (the dashboard calls it too); this module
prints its answer as one line (:mod:`nightcrew.views.steer_answer`).

Exit codes: 0 when the run in progress took the request or is already as
asked (paused, not paused, stopping); 1 when nothing runs in the project, so
a script can tell "there was nothing to stop" from "it stops". A stopped run
itself exits 130, as on Ctrl-C: it is interrupted, and ``--resume`` goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
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
    from nightcrew.views.steer_answer import said

    answer = ask(Project.find(Path.cwd()), action)
    if answer.answer == ENDED:  # nothing runs any more: as if it had not been running
        raise NothingRunning(said(answer))
    return said(answer)
