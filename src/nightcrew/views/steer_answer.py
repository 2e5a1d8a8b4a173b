"""A run's answer to pause, resume or stop as one line for a person: what
``nightcrew pause|resume|stop`` print and what the dashboard's controls show
(both ask through :func:`nightcrew.engine.steer.ask`)."""

from __future__ import annotations

from datetime import datetime

from nightcrew.engine import controls as c
from nightcrew.engine.steer import SIGNALLED, Answer, named, resume_hint
from nightcrew.store.controls import PAUSED

ASKED = {"pause": "pause", "resume": "resume", "stop": "stop", "stop_now": "stop --now"}


def said(answer: Answer) -> str:
    """The run's answer as one line."""
    run = named(answer.run)
    hint = resume_hint(answer.run)
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
        c.ENDED: f"{run} ended before it took the {ASKED[answer.action]}",
        SIGNALLED: f"{run} did not answer: sent it SIGTERM; it ends interrupted"
        f" (continue with {hint})",
    }
    if answer.answer is None:
        return (
            f"{ASKED[answer.action]} asked: {run} is busy (running checks) and takes it"
            " before it starts anything new"
        )
    return lines.get(answer.answer, f"{run}: {answer.answer}")


def _since(answer: Answer) -> str:
    if answer.paused is None:
        return ""
    at = datetime.fromisoformat(answer.paused.since).astimezone().strftime("%H:%M:%S")
    return f" (since {at}, by {answer.paused.by} from {answer.paused.origin})"
