"""How ``run`` and ``build`` notify: the notifier subscribed to the run's bus
when the settings name targets (``notify``, ``--notify``), and a crash told
to it before the one-line error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from nightcrew.core.errors import BadInput, LockHeld

if TYPE_CHECKING:
    from nightcrew.config import Settings
    from nightcrew.core.events import NotifyFailed
    from nightcrew.engine.bus import Bus
    from nightcrew.notify.notifier import Notifier
    from nightcrew.project import Project


def attach_notifier(bus: Bus, settings: Settings, project: Project, work: str) -> Notifier | None:
    """The notifier of this run, subscribed to its bus; None without targets."""
    if not settings.notify:
        return None
    from nightcrew.config_notify import targets
    from nightcrew.notify.notifier import Notifier

    notifier = Notifier(
        targets(settings.notify), project=project.root.name, emit=bus.emit, late=_late, work=work
    )
    bus.subscribe(notifier, name="notifications", close=notifier.close)
    return notifier


def _late(failure: NotifyFailed) -> None:
    """A send that failed after the run's record closed: one line on stderr."""
    from nightcrew.cli.event_lines import lines

    for text, _level in lines(failure):
        click.echo(f"nightcrew: warning: {text}", err=True)


@contextmanager
def crash_told(notifier: Notifier | None) -> Iterator[None]:
    """An error that ends the run unhandled is sent as "crashed" first; bad
    input and a held lock are refusals, not crashes."""
    try:
        yield
    except (BadInput, LockHeld):
        raise
    except Exception as exc:
        if notifier is not None:
            notifier.crashed(exc)
        raise
