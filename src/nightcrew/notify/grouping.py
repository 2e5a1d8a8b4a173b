"""At most one notification a minute of each kind (a stuck feature, a budget
warning …), so a night of failures is a few messages, not a flood. Later ones
of a kind wait and go together once the minute is over, or when the run ends.
A finish, a question and a crash are never held. The clock is injected: tests
move it, nothing sleeps."""

from __future__ import annotations

from collections.abc import Callable

from nightcrew.notify.messages import UNGROUPED, Message, combine

WINDOW_SECONDS = 60.0


class Grouper:
    def __init__(self, clock: Callable[[], float], window: float = WINDOW_SECONDS) -> None:
        self._clock = clock
        self._window = window
        self._sent_at: dict[str, float] = {}  # kind → when one of it was last sent
        self._held: dict[str, list[Message]] = {}

    def offer(self, message: Message) -> list[Message]:
        """What to send now: the held messages whose minute is over, then
        ``message`` unless a message of its kind went out less than a minute ago."""
        out = self.due()
        if message.kind in UNGROUPED:
            return [*out, message]
        kind = message.kind
        if kind in self._held or not self._free(kind):
            self._held.setdefault(kind, []).append(message)
            return out
        self._sent_at[kind] = self._clock()
        return [*out, message]

    def due(self) -> list[Message]:
        """The held messages of each kind whose minute is over, one per kind."""
        out = []
        for kind in [k for k in self._held if self._free(k)]:
            out.append(combine(self._held.pop(kind)))
            self._sent_at[kind] = self._clock()
        return out

    def drain(self) -> list[Message]:
        """Everything held, one per kind, minute or not: the run is ending."""
        out = [combine(held) for held in self._held.values()]
        self._held.clear()
        return out

    def _free(self, kind: str) -> bool:
        sent = self._sent_at.get(kind)
        return sent is None or self._clock() - sent >= self._window
