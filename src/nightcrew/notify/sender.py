"""Sends notifications on a thread of their own, so the run never waits on a
network: the run puts a message on a queue and goes on. Each message goes to
every target; a target that fails is kept as a :class:`Failure` for the
notifier to report, and the others are still sent. ``flush`` waits, with a
bound, for the queue to empty (the end of a run: the finish message must get
out before nightcrew exits)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nightcrew.config_notify import Target
from nightcrew.notify.messages import Message

# Sends one message to one target; returns why it failed (secrets already
# taken out), or None when it was delivered.
Send = Callable[[Target, Message], str | None]


@dataclass(frozen=True)
class Failure:
    target: Target
    message: Message
    error: str


class Sender:
    def __init__(self, targets: Sequence[Target], send: Send) -> None:
        self._targets = tuple(targets)
        self._send = send
        self._queue: queue.SimpleQueue[Message | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0  # messages put and not yet sent to every target
        self._failures: list[Failure] = []
        self._thread: threading.Thread | None = None

    def put(self, message: Message) -> None:
        with self._lock:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="nightcrew-notify", daemon=True
                )
                self._thread.start()
        self._queue.put(message)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every message put to be sent (or
        to have failed); whether it was."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def failures(self) -> list[Failure]:
        """The failures since the last call."""
        with self._lock:
            failures, self._failures = self._failures, []
        return failures

    def stop(self, timeout: float) -> bool:
        """Flush (bounded), then end the thread; a later ``put`` starts another."""
        flushed = self.flush(timeout)
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            if flushed:
                thread.join(timeout)
        return flushed

    def _work(self) -> None:
        while (message := self._queue.get()) is not None:
            failed = []
            for target in self._targets:
                try:
                    error = self._send(target, message)
                except Exception as exc:  # noqa: BLE001 - a notifier never stops the run
                    error = target.scrub(f"{type(exc).__name__}: {exc}")
                if error is not None:
                    failed.append(Failure(target, message, error))
            with self._idle:
                self._failures.extend(failed)
                self._pending -= 1
                self._idle.notify_all()
