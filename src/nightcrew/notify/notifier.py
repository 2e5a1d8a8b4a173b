"""The notifier: a subscriber of the run's bus that tells people what they
would want to know while away (a finish, a stuck or given-up item, a question,
a budget warning or stop, a crash) on every configured target.

On each event it maps (:mod:`messages`), groups (:mod:`grouping`) and queues
(:mod:`sender`); it never waits on a network, except at the finish, for at
most ``flush_seconds``, so the finish message gets out. A send that fails is
a ``notify_failed`` event on the bus (kept by the store, shown by the console)
the next time the notifier is told anything, and at the finish; after the run
(a crash, the last flush) it goes to ``late`` instead, the store being closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from nightcrew.config_notify import Target
from nightcrew.core import events as ev
from nightcrew.core.events import Event
from nightcrew.notify.delivery import send as apprise_send
from nightcrew.notify.grouping import WINDOW_SECONDS, Grouper
from nightcrew.notify.messages import Facts, crashed, message_for
from nightcrew.notify.sender import Failure, Send, Sender

FLUSH_SECONDS = 10.0
_WORK = {"plan": "run", "backlog": "build", "init": "backlog init"}


class Notifier:
    def __init__(
        self,
        targets: Sequence[Target],
        *,
        project: str,
        emit: Callable[[Event], None],
        late: Callable[[ev.NotifyFailed], None] = lambda failure: None,
        send: Send = apprise_send,
        clock: Callable[[], float] = time.monotonic,
        window: float = WINDOW_SECONDS,
        flush_seconds: float = FLUSH_SECONDS,
        work: str = "run",
    ) -> None:
        self.targets = tuple(targets)
        self._emit = emit
        self._late = late
        self._clock = clock
        self._flush_seconds = flush_seconds
        self._sender = Sender(self.targets, send)
        self._grouper = Grouper(clock, window)
        self._facts = Facts(project=project, work=work)
        self._started: float | None = None
        self._deadline: float | None = None  # the end's waits share one bound
        self._lock = threading.RLock()

    def __call__(self, event: Event) -> None:
        if isinstance(event, ev.NotifyFailed):
            return
        with self._lock:
            if isinstance(event, ev.RunStarted):
                self._started = self._clock()
                self._facts = Facts(self._facts.project, _WORK.get(event.work, event.work))
            if isinstance(event, ev.RunFinished):
                self._finish(event)
            else:
                message = message_for(event, self._facts)
                out = self._grouper.offer(message) if message else self._grouper.due()
                for each in out:
                    self._sender.put(each)
            failures = self._sender.failures()
        for failure in failures:  # outside the lock: the bus tells us again
            self._emit(_event(failure))

    def _finish(self, event: ev.RunFinished) -> None:
        seconds = self._clock() - self._started if self._started is not None else None
        facts = Facts(self._facts.project, self._facts.work, seconds)
        for held in self._grouper.drain():
            self._sender.put(held)
        finished = message_for(event, facts)
        if finished is not None:
            self._sender.put(finished)
        self._sender.flush(self._left())

    def flush(self) -> bool:
        """Wait (at most ``flush_seconds``) until everything queued so far was
        sent or failed; whether it was."""
        return self._sender.flush(self._flush_seconds)

    def _left(self) -> float:
        """What is left of the bound the waits at the end of a run (finish,
        close, crash) share, so a target that never answers costs it once."""
        if self._deadline is None:
            self._deadline = time.monotonic() + self._flush_seconds
        return max(0.0, self._deadline - time.monotonic())

    def crashed(self, error: BaseException) -> None:
        """An unhandled error ends the run: say so (bounded), before its one line."""
        self._sender.put(crashed(error, self._facts))
        self.close()

    def close(self) -> None:
        """The end of the run: whatever is still held or queued goes out
        (bounded), and failures go to ``late``."""
        with self._lock:
            for held in self._grouper.drain():
                self._sender.put(held)
        self._sender.stop(self._left())
        for failure in self._sender.failures():
            self._late(_event(failure))


def _event(failure: Failure) -> ev.NotifyFailed:
    return ev.NotifyFailed(
        scheme=failure.target.scheme, notification=failure.message.kind, error=failure.error
    )
