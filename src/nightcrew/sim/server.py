"""A scripted Anthropic Messages API server for running the real Claude Code CLI offline.

The CLI only needs ``POST /v1/messages`` (SSE with ``event:`` lines, or one JSON message
when it falls back to ``stream: false``); everything else here exists so that a run is
observable (``requests``, ``GET /_sim/requests``) and quiet (no access log on stderr).
Stdlib only: a ``ThreadingHTTPServer`` in a daemon thread, so tests need no extra packages
and the CLI's keep-alive connections and parallel calls are served concurrently.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from nightcrew.sim.scenario import Scenario, ScriptedError, TextBlock, Turn

#: How often a held reply looks for its file (``hold_until``).
HOLD_POLL_S = 0.02

#: Claude Code (2.1.329) states the working directory in an environment reminder inside
#: the first user message: `` - Primary working directory: /abs/path``. Older versions used
#: ``Working directory: /abs/path`` in the system prompt's ``<env>`` section; accept both.
_CWD_RE = re.compile(r"^[ \t]*(?:- )?(?:Primary working|Working) directory:[ \t]*(\S.*?)\s*$", re.M)
#: The CLI wraps its own context (environment, skills, date...) in these tags; they are not
#: part of what the caller asked, so prompt matching ignores them.
_REMINDER_RE = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)


@dataclass(frozen=True)
class SimRequest:
    """One model call as the sim saw it (``/v1/messages`` only)."""

    path: str
    model: str
    prompt: str
    last_user_text: str
    assistant_turns: int
    script: str | None
    turn_index: int
    message_id: str | None
    request_id: str
    stream: bool
    status: int
    cwd: str | None
    system_prompt: str = ""  # the system prompt's text blocks, joined by blank lines


# --- reading requests -----------------------------------------------------------------------


def _content_texts(content: Any) -> Iterator[str]:
    """Texts in a message's content: text blocks, and the text inside tool results."""
    if isinstance(content, str):
        yield content
        return
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            yield block["text"]
        elif block.get("type") == "tool_result":
            yield from _content_texts(block.get("content"))


def message_text(message: Any) -> str:
    """Join a message's text blocks, without ``<system-reminder>`` sections."""
    if not isinstance(message, dict):
        return ""
    parts = (_REMINDER_RE.sub("", t).strip() for t in _content_texts(message.get("content")))
    return "\n".join(p for p in parts if p)


def messages_by_role(body: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """The request's messages with the given role, oldest first."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict) and m.get("role") == role]


def system_texts(body: dict[str, Any]) -> list[str]:
    """The text blocks of the request's system prompt."""
    system = body.get("system")
    if isinstance(system, str):
        return [system]
    if isinstance(system, list):
        return [b["text"] for b in system if isinstance(b, dict) and isinstance(b.get("text"), str)]
    return []


def find_cwd(body: dict[str, Any]) -> str | None:
    """The agent's working directory as the CLI told the model, or None if absent."""
    texts = system_texts(body)
    for message in messages_by_role(body, "user")[:1]:
        texts.extend(_content_texts(message.get("content")))
    for text in texts:
        if isinstance(text, str) and (found := _CWD_RE.search(text)):
            return found.group(1)
    return None


def _expand_cwd(value: Any, cwd: str) -> Any:
    if isinstance(value, str):
        return value.replace("{cwd}", cwd)
    if isinstance(value, list):
        return [_expand_cwd(v, cwd) for v in value]
    if isinstance(value, dict):
        return {k: _expand_cwd(v, cwd) for k, v in value.items()}
    return value


# --- writing responses ----------------------------------------------------------------------


def build_message(
    turn: Turn, *, message_id: str, model: str, cwd: str | None, next_tool_id: Callable[[], str]
) -> dict[str, Any]:
    """The complete Messages API ``Message`` for a turn (``{cwd}`` expanded, ``.`` if unknown)."""
    content: list[dict[str, Any]] = []
    for block in turn.blocks:
        if isinstance(block, TextBlock):
            content.append({"type": "text", "text": block.text})
        else:
            tool_input = _expand_cwd(block.input, cwd if cwd is not None else ".")
            content.append(
                {"type": "tool_use", "id": next_tool_id(), "name": block.name, "input": tool_input}
            )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": turn.stop_reason,
        "stop_sequence": None,
        "usage": turn.usage.as_dict(),
    }


def render_sse(message: dict[str, Any]) -> bytes:
    """Stream ``message`` as the API does: usage in and out split across start and delta.

    ``message_start`` carries the input and cache counts with a placeholder output count;
    the final ``output_tokens`` arrives in ``message_delta``, which is what the CLI prices.
    """
    usage = message["usage"]
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": min(1, usage["output_tokens"])},
    }
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "ping"},
    ]
    for index, block in enumerate(message["content"]):
        opening: dict[str, Any]
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            opening = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events += [
            {"type": "content_block_start", "index": index, "content_block": opening},
            {"type": "content_block_delta", "index": index, "delta": delta},
            {"type": "content_block_stop", "index": index},
        ]
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events += [
        {
            "type": "message_delta",
            "delta": stop,
            "usage": {"output_tokens": usage["output_tokens"]},
        },
        {"type": "message_stop"},
    ]
    # Each event is named on an `event:` line: without them the CLI rejects the stream and
    # retries the call with `stream: false`.
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def error_body(error_type: str, message: str) -> dict[str, Any]:
    """Anthropic's error envelope."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


# --- the server -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reply:
    status: int
    payload: bytes
    content_type: str
    delay_s: float = 0.0
    request_id: str | None = None
    hold_until: str | None = None  # a file that must exist before the reply goes out


class _HTTPServer(ThreadingHTTPServer):
    """Carries a reference to its :class:`SimServer` and keeps tracebacks off stderr."""

    sim: SimServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-response is normal (the CLI aborts streams it no longer
        # wants); anything else is a sim bug, kept for tests to inspect instead of printed.
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            self.sim._note_error("".join(traceback.format_exception(exc)) if exc else "?")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the CLI expects; every reply has a length
    server_version = "nightcrew-sim"

    @property
    def sim(self) -> SimServer:
        return cast(_HTTPServer, self.server).sim

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log that BaseHTTPRequestHandler writes to stderr."""

    def setup(self) -> None:
        super().setup()
        self.sim._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.sim._track(self.connection, add=False)

    def do_HEAD(self) -> None:
        """Connectivity checks (``HEAD /``, ``HEAD /api/hello``) always succeed."""
        self._send(_Reply(200, b"", "application/json"), head_only=True)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/_sim/requests":
            records = [asdict(r) for r in self.sim.requests]
            self._send(_json_reply(200, records))
        elif path == "/":
            self._send(_json_reply(200, {"status": "ok", "server": "nightcrew.sim"}))
        else:
            self._send(_json_reply(404, error_body("not_found_error", f"no route {path}")))

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._send(_json_reply(400, error_body("invalid_request_error", "body must be JSON")))
        elif path == "/v1/messages":
            self._send(self.sim._answer(self.path, body))
        elif path == "/v1/messages/count_tokens":
            self._send(_json_reply(200, {"input_tokens": estimate_tokens(body)}))
        else:
            self._send(_json_reply(404, error_body("not_found_error", f"no route {path}")))

    def _send(self, reply: _Reply, *, head_only: bool = False) -> None:
        if reply.hold_until is not None and not self.sim._held(reply.hold_until):
            self.close_connection = True  # stopped while held: hang up, send nothing
            return
        if reply.delay_s > 0 and self.sim._stopping.wait(reply.delay_s):
            self.close_connection = True  # stopped while "thinking": hang up, send nothing
            return
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        self.send_header("content-length", str(len(reply.payload)))
        self.send_header("request-id", reply.request_id or self.sim._next_id("req_sim"))
        if reply.status >= 400:
            # Asks for an immediate retry; note the CLI (2.1.329) ignores it and uses its own
            # backoff (0.6 s, 1.1 s, 2.2 s, ... up to ~40 s, 10 retries).
            self.send_header("retry-after", "0")
        self.end_headers()
        if not head_only:
            self.wfile.write(reply.payload)


def _json_reply(status: int, data: Any) -> _Reply:
    return _Reply(status, json.dumps(data).encode(), "application/json")


def estimate_tokens(body: dict[str, Any]) -> int:
    """A rough count (characters / 4) of what would be sent to the model."""
    parts = {k: body.get(k) for k in ("system", "messages", "tools")}
    return max(1, len(json.dumps(parts)) // 4)


class SimServer:
    """Serve a :class:`Scenario` on ``http://host:port`` from a daemon thread.

    Use as a context manager, or call :meth:`start` / :meth:`stop`. ``port=0`` picks a
    free port; read the address from :attr:`url` after starting.
    """

    def __init__(self, scenario: Scenario, host: str = "127.0.0.1", port: int = 0) -> None:
        self.scenario = scenario
        self._address = (host, port)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._records: list[SimRequest] = []
        self._errors: list[str] = []
        self._counters: dict[str, int] = {}
        # In every id, so transcripts of several sim runs (each a new server) never share
        # a message id + request id: an import counts each of their responses.
        self.run_id = secrets.token_hex(4)
        self._error_hits: dict[tuple[str | None, int], int] = {}
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SimServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL for ``ANTHROPIC_BASE_URL``; only known once started."""
        if self._httpd is None:
            raise RuntimeError("SimServer is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[SimRequest]:
        """Model calls received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._records)

    @property
    def errors(self) -> list[str]:
        """Tracebacks of unexpected handler failures (empty unless the sim has a bug)."""
        with self._lock:
            return list(self._errors)

    def start(self) -> None:
        """Bind the socket and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("SimServer already started")
        httpd = _HTTPServer(self._address, _Handler)
        httpd.sim = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="nightcrew-sim",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving: wake delayed replies, drop open connections, join all threads."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None or self._stopping.is_set():
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            open_connections = list(self._connections.items())
        for conn, _ in open_connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                conn.shutdown(socket.SHUT_RDWR)
        for _, handler_thread in open_connections:
            handler_thread.join(timeout=5)
            if handler_thread.is_alive():  # a reply that ignores _stopping: a sim bug
                self._note_error(f"{handler_thread.name} still running 5 s after stop()")
        httpd.server_close()
        thread.join()

    # --- called from handler threads ---

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections[conn] = threading.current_thread()
            else:
                self._connections.pop(conn, None)

    def _note_error(self, text: str) -> None:
        with self._lock:
            self._errors.append(text)

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            n = self._counters.get(prefix, 0) + 1
            self._counters[prefix] = n
        return f"{prefix}_{self.run_id}_{n}"

    def _answer(self, path: str, body: dict[str, Any]) -> _Reply:
        """Match a ``/v1/messages`` request to a turn, record it and build the reply."""
        model = str(body["model"]) if isinstance(body.get("model"), str) else ""
        users = messages_by_role(body, "user")
        prompt = message_text(users[0]) if users else ""
        turns = len(messages_by_role(body, "assistant"))
        selection = self.scenario.select(prompt, model, turns)
        turn, stream, cwd = selection.turn, body.get("stream") is True, find_cwd(body)
        request_id = self._next_id("req_sim")
        error = self._error_due(selection.script, selection.turn_index, turn.error)
        message: dict[str, Any] | None = None
        if error is not None:
            payload = json.dumps(error_body(error.type, error.message)).encode()
            reply = _Reply(
                error.status, payload, "application/json", turn.delay_s, request_id, turn.hold_until
            )
        else:
            message = build_message(
                turn,
                message_id=self._next_id("msg_sim"),
                model=turn.model or self.scenario.default_model or model,
                cwd=cwd,
                next_tool_id=lambda: self._next_id("toolu_sim"),
            )
            if stream:
                payload, content_type = render_sse(message), "text/event-stream"
            else:
                payload, content_type = json.dumps(message).encode(), "application/json"
            reply = _Reply(200, payload, content_type, turn.delay_s, request_id, turn.hold_until)
        record = SimRequest(
            path=path,
            model=model,
            prompt=prompt,
            last_user_text=message_text(users[-1]) if users else "",
            assistant_turns=turns,
            script=selection.script,
            turn_index=selection.turn_index,
            message_id=None if message is None else message["id"],
            request_id=request_id,
            stream=stream,
            status=reply.status,
            cwd=cwd,
            system_prompt="\n\n".join(system_texts(body)),
        )
        with self._lock:
            self._records.append(record)
        return reply

    def _held(self, path: str) -> bool:
        """Wait until ``path`` exists: True then, False if the server stops first.
        Polled (a file is what a test, or a person, can make from anywhere)."""
        while not os.path.exists(path):
            if self._stopping.wait(HOLD_POLL_S):
                return False
        return True

    def _error_due(
        self, script: str | None, turn_index: int, error: ScriptedError | None
    ) -> ScriptedError | None:
        """The scripted error if it still applies to this turn (``times`` counts per server)."""
        if error is None:
            return None
        if error.times is None:
            return error
        with self._lock:
            hits = self._error_hits.get((script, turn_index), 0)
            self._error_hits[(script, turn_index)] = hits + 1
        return error if hits < error.times else None
