"""The real dashboard in its own process, as a person starts it, for the
tests that need a real HTTP listener: ``nightcrew serve --port 0``, the URL
read from its first line, stopped with Ctrl-C (SIGINT) at the end; and a
small reader of its Server-Sent Events."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from tests.line_process import sigint_state

START_S = 60.0  # a loaded 2-core machine can take a while to import FastAPI


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str  # as printed, with the token
    lines: list[str] = field(default_factory=list)
    sigint: str = ""  # how it took SIGINT once it had started (for a failure's message)

    @property
    def base(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    @property
    def token(self) -> str:
        return self.url.split("token=", 1)[1]

    @contextmanager
    def client(self) -> Iterator[httpx.Client]:
        """A client that opened the printed URL: it holds the cookie."""
        with httpx.Client(base_url=self.base, timeout=30) as client:
            first = client.get(self.url)
            assert first.status_code == 303, first.text
            yield client


def _reader(stream: object, into: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line.rstrip("\n"))
    into.put(None)


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    process = subprocess.Popen(
        [sys.executable, "-m", "nightcrew", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=START_S)
        assert first is not None and first.startswith("nightcrew dashboard: "), first
        server = Server(process, first.removeprefix("nightcrew dashboard: "))
        server.sigint = f"{sigint_state(process.pid)}; this one: {sigint_state(os.getpid())}"
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=30)
        assert process.stdout is not None
        process.stdout.close()


@dataclass(frozen=True)
class Message:
    event: str
    id: int | None
    data: str


def messages(response: httpx.Response) -> Iterator[Message]:
    """The SSE messages of a streaming response, as they arrive."""
    event, event_id, data = "message", None, []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield Message(event, event_id, "\n".join(data))
            event, event_id, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "id":
                event_id = int(value)
            elif name == "data":
                data.append(value)
