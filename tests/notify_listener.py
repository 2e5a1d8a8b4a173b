"""A real local HTTP listener for Apprise's ``json://`` notifications, on a
thread: it keeps every POST (path and JSON body) and lets a test wait for a
number of them, or hold them unanswered until released."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

WAIT = 30.0  # generous: a loaded machine is slow, never wrong


class Listener:
    def __init__(self, *, hold: bool = False) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.answered = 0  # posts whose response was sent
        self.arrived = threading.Condition()
        self.released = threading.Event()
        if not hold:
            self.released.set()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                with listener.arrived:
                    listener.posts.append((self.path.split("?")[0], body))
                    listener.arrived.notify_all()
                listener.released.wait(WAIT)
                self.send_response(200)
                self.end_headers()
                with listener.arrived:
                    listener.answered += 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WAIT)

    def url(self, path: str = "/", **query: str) -> str:
        return f"json://127.0.0.1:{self.port}{path}" + (f"?{urlencode(query)}" if query else "")

    def wait_for(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.posts) >= count, WAIT), self.posts
            return list(self.posts)

    def at(self, path: str) -> list[dict[str, Any]]:
        with self.arrived:
            return [body for where, body in self.posts if where == path]


def closed_port() -> int:
    """A local port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
