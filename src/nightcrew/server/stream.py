"""Server-Sent Events: the pages' live parts, fed from the stores.

The build runs in another process and writes the project's SQLite store; a
stream holds its own read connection and asks it every :data:`POLL_S`
whether anything was committed since (``PRAGMA data_version``: no query,
no lock). Only then is anything read, and what is rendered from it is
rendered at most every so often (:class:`Watch`).

A page's :class:`Source` says what to send on each tick. Messages that
carry store events have ``id:`` = the store's event id; a browser that
reconnects sends it back as ``Last-Event-ID`` and a reloaded page passes
``?after=`` the newest event it rendered, so a stream resumes exactly after
what was shown (:func:`resume_point`). Fragments are whole states, sent
when their HTML changed, so a new stream sends them all first.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import anyio.to_thread

from nightcrew.store.records import Store

POLL_S = 0.25
REFRESH_S = 5.0  # render again without a commit: a dead build's process writes nothing
FRAGMENTS_EVERY_S = 1.0  # a project page's fragments, at most this often
CARDS_EVERY_S = 2.0  # a project's card on the projects page, at most this often
KEEPALIVE_S = 15.0
RETRY_MS = 1000  # the browser's wait before it reconnects


def message(data: str, *, event: str | None = None, event_id: int | None = None) -> str:
    """One SSE message; every line of ``data`` gets its own ``data:`` field."""
    lines = [] if event_id is None else [f"id: {event_id}"]
    if event:
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in (data.splitlines() or [""]))
    return "\n".join(lines) + "\n\n"


def resume_point(last_event_id: str | None, after: str | None) -> int | None:
    """Where a stream starts: after the browser's ``Last-Event-ID`` (it
    reconnected), else after the page's ``?after=``; None: from now on."""
    for value in (last_event_id, after):
        if value is not None and value.strip().isdigit():
            return int(value.strip())
    return None


class Source(Protocol):
    """What one page streams."""

    def tick(self) -> tuple[list[str], bool]:
        """The messages to send now, and whether more are ready at once."""

    def close(self) -> None: ...


@dataclass
class Watch:
    """Whether a store changed since the last look, and whether what is shown
    of it is due to be rendered again: after a change, but at most once every
    ``every_s`` (a busy build commits several times a second, and a large
    store takes a while to read), and every :data:`REFRESH_S` anyway."""

    store: Store
    every_s: float
    data_version: int | None = None
    pending: bool = True
    rendered_at: float = -REFRESH_S

    def changed(self) -> bool:
        version = int(self.store.db.execute("PRAGMA data_version").fetchone()[0])
        if version == self.data_version:
            return False
        self.data_version = version
        self.pending = True
        return True

    def render_due(self) -> bool:
        now = time.monotonic()
        waited = now - self.rendered_at
        if (self.pending and waited >= self.every_s) or waited >= REFRESH_S:
            self.pending = False
            self.rendered_at = now
            return True
        return False

    def again(self) -> None:
        """Look again at the next tick whatever the version says."""
        self.data_version = None


@dataclass
class Fragments:
    """The fragments a stream last sent, to send only those that changed."""

    sent: dict[str, str] = field(default_factory=dict)

    def changed(self, rendered: dict[str, str], event_id: int | None) -> list[str]:
        out = []
        for name, html in rendered.items():
            if self.sent.get(name) != html:
                self.sent[name] = html
                out.append(message(html, event=name, event_id=event_id))
        return out


async def follow(make_source: Callable[[], Source]) -> AsyncIterator[str]:
    """The messages of one stream until the client leaves (the response is
    cancelled then, and the source closed)."""
    source = await anyio.to_thread.run_sync(make_source)
    try:
        yield f"retry: {RETRY_MS}\n\n"
        quiet_since = time.monotonic()
        while True:
            out, more = await anyio.to_thread.run_sync(source.tick)
            for text in out:
                yield text
            if out:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            if not more:
                await anyio.sleep(POLL_S)
    finally:
        source.close()
