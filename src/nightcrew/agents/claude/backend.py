"""The Claude Code backend, through ``claude-agent-sdk`` and the CLI it bundles.

The SDK starts the CLI in *our* process group with a pipe for stdin (its
control channel). To own the agent's lifetime we give the SDK a tiny launcher
as ``cli_path``: it calls ``setsid()`` (a new session and process group led by
the agent), writes its pid, and ``exec``s the real CLI. The harness can then
kill the agent and everything it started (test servers, watchers) as one
group, and a later ``--resume`` can reap a group whose orchestrator died.

Usage: per-response usage arrives twice: in ``message_start`` (input and cache
tokens right, output a placeholder) and ``message_delta`` (the final output
count). Both become :class:`Usage` events keyed by message id; the newest
wins. The final ``result``'s ``modelUsage`` is the authoritative total.

Harness tools (``AgentRequest.harness_tools``) go to the CLI as an in-process
SDK MCP server named ``nightcrew``, their ``mcp__nightcrew__*`` names added to
the allowed tools. With an SDK server the SDK keeps the CLI's stdin open until
the run ends, since each tool call comes back over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import stat
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from nightcrew.agents.base import (
    AgentEvent,
    AgentRequest,
    Capabilities,
    Finished,
    ProcessStarted,
    SessionStarted,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
    Usage,
)
from nightcrew.agents.claude.failures import CLI_MISSING, classify, last_reason
from nightcrew.agents.claude.names import HARNESS_SERVER, mcp_tool_name
from nightcrew.core.usage import ModelUsage, TokenCounts
from nightcrew.proc import process_create_time
from nightcrew.usage.anthropic_format import (
    reported_cost,
    tokens_from_model_usage,
    tokens_from_usage,
)

PIDFILE_ENV = "NIGHTCREW_AGENT_PIDFILE"
CLI_ENV = "NIGHTCREW_AGENT_CLI"
EXCERPT_CHARS = 500
# The result subtype of a session its --max-budget-usd backstop stopped.
MAX_BUDGET_SUBTYPE = "error_max_budget_usd"

CAPABILITIES = Capabilities(
    reports_cost=True, resumable_sessions=True, harness_tools=True, tool_policy=True
)
# Claude Code's own tools the agent may use without asking, unless the config
# names others (``allowed_tools``).
DEFAULT_ALLOWED_TOOLS: tuple[str, ...] = (
    "Bash",
    "Read",
    "Write",
    "Edit",
    "MultiEdit",
    "Glob",
    "Grep",
    "LS",
    "TodoWrite",
    "NotebookEdit",
)


_LAUNCHER = """\
import os, sys
os.setsid()
pidfile = os.environ.get({pidfile_env!r})
if pidfile:
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(pidfile + ".tmp", pidfile)
cli = os.environ[{cli_env!r}]
os.execv(cli, [cli] + sys.argv[1:])
"""


class AgentNotFound(Exception):
    pass


def find_claude_cli() -> Path:
    """The CLI bundled in the claude-agent-sdk wheel, else ``claude`` on PATH."""
    import claude_agent_sdk

    bundled = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    if bundled.is_file():
        return bundled
    found = shutil.which("claude")
    if found:
        return Path(found)
    raise AgentNotFound(
        "Claude Code CLI not found: it ships inside the claude-agent-sdk wheel for"
        " your platform, or install it with `npm install -g @anthropic-ai/claude-code`"
    )


def write_launcher(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "agent-launcher"
    # -I: no user site, no PYTHON* variables of the agent's environment; -S: no
    # site module at all (the launcher needs only os and sys), ~6 ms less a start.
    # One argument ("-IS"): Linux passes a shebang's options as a single one.
    body = f"#!{sys.executable} -IS\n" + _LAUNCHER.format(pidfile_env=PIDFILE_ENV, cli_env=CLI_ENV)
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _excerpt(content: object) -> str:
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    else:
        text = ""
    return text[:EXCERPT_CHARS]


class _Translator:
    """Turns SDK messages into :class:`AgentEvent` values."""

    def __init__(self) -> None:
        self.stream_message: tuple[str, str] | None = None  # (message id, model)
        self.stream_tokens: TokenCounts = TokenCounts()
        self.api_status: int | None = None  # the HTTP status of the API's refusal

    def translate(self, message: object) -> Iterable[AgentEvent]:
        from claude_agent_sdk import (
            AssistantMessage,
            ResultMessage,
            StreamEvent,
            SystemMessage,
            TextBlock,
            ThinkingBlock,
            ToolResultBlock,
            ToolUseBlock,
            UserMessage,
        )

        if isinstance(message, StreamEvent):
            yield from self._stream_event(message.event)
        elif isinstance(message, SystemMessage):
            if message.subtype == "init":
                data = message.data
                yield SessionStarted(str(data.get("session_id", "")), data.get("model"))
        elif isinstance(message, AssistantMessage):
            for block in message.content:
                if isinstance(block, TextBlock) and block.text:
                    yield Text(block.text)
                elif isinstance(block, ThinkingBlock) and block.thinking:
                    yield Thinking(block.thinking)
                elif isinstance(block, ToolUseBlock):
                    yield ToolCall(block.id, block.name, dict(block.input))
            if message.usage and message.message_id:
                yield Usage(
                    message.message_id, None, message.model, tokens_from_usage(message.usage)
                )
        elif isinstance(message, UserMessage):
            if isinstance(message.content, list):
                for block in message.content:
                    if isinstance(block, ToolResultBlock):
                        yield ToolResult(
                            block.tool_use_id, bool(block.is_error), _excerpt(block.content)
                        )
        elif isinstance(message, ResultMessage):
            self.api_status = message.api_error_status
            yield self._finished(message)

    def _stream_event(self, event: dict[str, Any]) -> Iterable[AgentEvent]:
        kind = event.get("type")
        if kind == "message_start":
            msg = event.get("message") or {}
            self.stream_message = (str(msg.get("id", "")), str(msg.get("model", "")))
            self.stream_tokens = tokens_from_usage(msg.get("usage") or {})
            if self.stream_message[0]:
                yield Usage(
                    self.stream_message[0], None, self.stream_message[1], self.stream_tokens
                )
        elif kind == "message_delta" and self.stream_message:
            delta = tokens_from_usage(event.get("usage") or {})
            # message_delta carries the final output count (and, from some
            # servers, repeats the input numbers).
            self.stream_tokens = TokenCounts(
                input=delta.input or self.stream_tokens.input,
                output=delta.output,
                cache_read=delta.cache_read or self.stream_tokens.cache_read,
                cache_write_5m=delta.cache_write_5m or self.stream_tokens.cache_write_5m,
                cache_write_1h=delta.cache_write_1h or self.stream_tokens.cache_write_1h,
            )
            yield Usage(self.stream_message[0], None, self.stream_message[1], self.stream_tokens)

    @staticmethod
    def _finished(message: Any) -> Finished:
        # Claude Code prices a model it does not know as its default model and
        # marks it costBasis "unknown": that figure is a guess, not a cost.
        entries = {
            name: entry
            for name, entry in (message.model_usage or {}).items()
            if isinstance(entry, dict)
        }
        guessed = {name for name, entry in entries.items() if entry.get("costBasis") == "unknown"}
        per_model = tuple(
            ModelUsage(
                model=name,
                tokens=tokens_from_model_usage(entry),
                reported_cost_usd=None if name in guessed else reported_cost(entry.get("costUSD")),
            )
            for name, entry in entries.items()
        )
        errors = message.errors or []
        return Finished(
            status="error" if message.is_error else "success",
            result_subtype=message.subtype,
            is_error=bool(message.is_error),
            result_text=message.result,
            reported_cost_usd=None if guessed else reported_cost(message.total_cost_usd),
            model_usage=per_model,
            num_turns=message.num_turns,
            error="; ".join(str(e) for e in errors) or None,
            session_id=message.session_id,
            budget_stopped=message.subtype == MAX_BUDGET_SUBTYPE,
        )


_DONE = object()


class ClaudeBackend:
    name = "claude"
    capabilities: Capabilities = CAPABILITIES
    default_allowed_tools: tuple[str, ...] = DEFAULT_ALLOWED_TOOLS

    def __init__(self, cli_path: Path | None = None) -> None:
        self._cli_path = cli_path

    def tool_name(self, tool: str) -> str:
        return mcp_tool_name(HARNESS_SERVER, tool)

    def prepare(self) -> None:
        """Import the SDK (about a second of CPU: it brings ``mcp`` and its
        models). Safe in any thread, and instant once done."""
        import claude_agent_sdk  # noqa: F401

    async def run(self, request: AgentRequest) -> AsyncIterator[AgentEvent]:
        # Off the event loop: the other lanes' agents stream on meanwhile.
        await asyncio.to_thread(self.prepare)
        from claude_agent_sdk import ClaudeAgentOptions, McpServerConfig, query

        # The SDK logs "Fatal error in message reader … Check stderr output for
        # details" whenever the CLI exits non-zero, killed at a timeout or on
        # Ctrl-C included; the real reason is in the Finished event.
        logging.getLogger("claude_agent_sdk._internal.query").setLevel(logging.CRITICAL)
        try:
            cli = self._cli_path or find_claude_cli()
        except AgentNotFound as exc:
            yield Finished.failure(str(exc), dataclasses.replace(CLI_MISSING, message=str(exc)))
            return
        work_dir = request.work_dir or request.cwd / ".nightcrew" / "tmp"
        launcher = write_launcher(work_dir)
        pidfile = work_dir / "agent.pid"
        pidfile.unlink(missing_ok=True)
        stderr_path = work_dir / "agent-stderr.log"
        stderr_file = stderr_path.open("a", encoding="utf-8")
        stderr_tail: list[str] = []

        def on_stderr(line: str) -> None:
            stderr_file.write(line + "\n")
            stderr_tail.append(line)
            del stderr_tail[:-20]

        env = {**request.env, PIDFILE_ENV: str(pidfile), CLI_ENV: str(cli)}
        allowed = list(request.allowed_tools)
        servers: dict[str, McpServerConfig] = {}
        if request.harness_tools:
            from nightcrew.agents.claude.sdk_tools import allowed_names, sdk_server

            servers[HARNESS_SERVER] = sdk_server(HARNESS_SERVER, request.harness_tools)
            allowed += allowed_names(HARNESS_SERVER, request.harness_tools)
        options = ClaudeAgentOptions(
            # Claude Code's own system prompt (tool use, coding and safety
            # instructions, the working directory and git state): without it
            # the SDK sends a minimal one, unlike `claude -p`.
            system_prompt={"type": "preset", "preset": "claude_code"},
            cwd=str(request.cwd),
            model=request.model,
            fallback_model=request.fallback_model,
            permission_mode="acceptEdits",
            allowed_tools=allowed,
            mcp_servers=servers,
            cli_path=str(launcher),
            env=env,
            include_partial_messages=True,
            max_budget_usd=request.max_budget_usd,
            setting_sources=["user", "project", "local"],
            resume=request.resume_session_id,
            stderr=on_stderr,
        )
        queue: asyncio.Queue[object] = asyncio.Queue()
        if request.tool_policy is not None and request.tool_policy.active:
            from nightcrew.agents.claude.policy import pre_tool_use_hooks

            options.hooks = pre_tool_use_hooks(request.tool_policy, queue.put_nowait)
        translator = _Translator()

        async def pump() -> None:
            try:
                async for message in query(prompt=request.prompt, options=options):
                    for event in translator.translate(message):
                        queue.put_nowait(event)
            except Exception as exc:  # noqa: BLE001 - becomes a Finished(error) event
                queue.put_nowait(exc)
            finally:
                queue.put_nowait(_DONE)

        async def watch_pid() -> None:
            while True:
                with contextlib.suppress(OSError, ValueError):
                    pid = int(pidfile.read_text())
                    queue.put_nowait(ProcessStarted(pid, process_create_time(pid) or 0.0))
                    return
                await asyncio.sleep(0.01)

        pump_task = asyncio.create_task(pump())
        pid_task = asyncio.create_task(watch_pid())
        finished: Finished | None = None
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, Exception):
                    if finished is None:
                        reason = last_reason(None, stderr_tail)
                        finished = Finished.failure(
                            (reason or f"{type(item).__name__}: {item}")[:2000],
                            classify(api_status=None, result_text=None, stderr=stderr_tail),
                        )
                    continue
                if isinstance(item, Finished):
                    finished = item  # the last result wins: totals are cumulative
                    continue
                yield item  # type: ignore[misc]
            if finished is None:
                finished = Finished.failure(
                    "the agent ended without a result"
                    + (": " + " | ".join(stderr_tail[-3:]) if stderr_tail else ""),
                )
            elif finished.is_error and not (finished.result_subtype or "").startswith("error_max"):
                known = classify(
                    api_status=translator.api_status,
                    result_text=finished.result_text,
                    stderr=stderr_tail,
                )
                reason = finished.error or last_reason(finished.result_text, stderr_tail)
                finished = dataclasses.replace(finished, error=reason, agent_failure=known)
            yield finished
        finally:
            pid_task.cancel()
            if not pump_task.done():
                pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump_task
            with contextlib.suppress(asyncio.CancelledError):
                await pid_task
            stderr_file.close()
            pidfile.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                os.unlink(str(pidfile) + ".tmp")
