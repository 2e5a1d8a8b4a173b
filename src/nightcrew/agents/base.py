"""The one small contract every agent backend implements.

A backend turns an :class:`AgentRequest` into a stream of typed
:class:`AgentEvent` values. The run loop never parses a backend's output: it
only sees these events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nightcrew.core.usage import ModelUsage, TokenCounts

if TYPE_CHECKING:
    from nightcrew.toolpolicy import ToolPolicy


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do. The engine asks these, never a backend's name."""

    # Finished carries the agent's own cost (else the harness prices the tokens).
    reports_cost: bool = False
    # AgentRequest.resume_session_id continues an earlier session.
    resumable_sessions: bool = False
    # AgentRequest.harness_tools reach the agent as tools it can call.
    harness_tools: bool = False
    # AgentRequest.tool_policy is asked before every tool call, refusals enforced.
    tool_policy: bool = False


@dataclass(frozen=True)
class ToolReply:
    """What a harness tool answers: ``text`` is what the agent reads (on an
    error, one line saying what was wrong); ``data`` the same answer as a
    JSON-ready value, for clients that take structured results."""

    text: str
    is_error: bool = False
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class HarnessTool:
    """A tool the harness lends the agent for one session, served in-process
    (the backlog tools). A backend exposes it however its agent takes tools
    (Claude Code: an in-process MCP server); the harness only ever sees the
    calls as :class:`ToolCall` and :class:`ToolResult` events.

    ``call`` gets the arguments as the agent sent them (checked against
    ``input_schema``, a JSON Schema object, by ``call`` itself) and never
    raises: a bad call is a :class:`ToolReply` with ``is_error``."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    call: Callable[[Mapping[str, Any]], Awaitable[ToolReply]]
    read_only: bool = False


@dataclass(frozen=True)
class AgentRequest:
    prompt: str
    cwd: Path
    model: str | None = None
    fallback_model: str | None = None
    allowed_tools: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    # Backstop passed to the agent itself; the harness enforces budgets too.
    max_budget_usd: float | None = None
    resume_session_id: str | None = None
    # Where the backend may keep per-attempt files (pid file, stderr log).
    work_dir: Path | None = None
    # Tools the harness gives the agent in-process, allowed without asking.
    harness_tools: tuple[HarnessTool, ...] = ()
    # What the agent may run and write: the backend asks it before every tool
    # call and answers a refusal to the agent as a tool error.
    tool_policy: ToolPolicy | None = None


# ---- events -----------------------------------------------------------------


@dataclass(frozen=True)
class ProcessStarted:
    """The agent process exists; ``pid`` leads its own process group."""

    pid: int
    create_time: float


@dataclass(frozen=True)
class SessionStarted:
    session_id: str
    model: str | None


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Thinking:
    text: str


@dataclass(frozen=True)
class ToolCall:
    tool_use_id: str
    name: str
    input: Mapping[str, object]


@dataclass(frozen=True)
class ToolResult:
    tool_use_id: str
    is_error: bool
    excerpt: str


@dataclass(frozen=True)
class ToolDenied:
    """The harness's tool policy refused a call; the agent was told ``message``
    as the call's error and goes on."""

    tool_use_id: str | None
    tool: str
    summary: str  # what was asked: "Bash: git push --force", "Write: /etc/x"
    rule: str
    reason: str
    message: str


@dataclass(frozen=True)
class Usage:
    """Usage of one API response, as known while it streams.

    The same ``message_id`` may arrive more than once; the newest values win
    (output tokens grow from a placeholder to the final count).
    """

    message_id: str
    request_id: str | None
    model: str
    tokens: TokenCounts


@dataclass(frozen=True)
class AgentFailure:
    """A failure the backend recognised: what it is (``kind``), the agent's own
    words (``message``), whether another attempt can help, what the person
    should do, and when a usage limit resets (if the agent said)."""

    kind: str
    message: str
    retryable: bool
    advice: str
    reset_at: datetime | None = None


@dataclass(frozen=True)
class Finished:
    """The session ended. ``status`` is ``success`` or ``error``."""

    status: str
    result_subtype: str | None
    is_error: bool
    result_text: str | None
    reported_cost_usd: Decimal | None
    model_usage: tuple[ModelUsage, ...]
    num_turns: int | None = None
    error: str | None = None
    session_id: str | None = None
    agent_failure: AgentFailure | None = None  # a failure the backend knows
    # The agent's own budget backstop (AgentRequest.max_budget_usd) stopped it.
    budget_stopped: bool = False

    @classmethod
    def failure(cls, error: str, agent_failure: AgentFailure | None = None) -> Finished:
        """A session that ended without the agent's own result."""
        return cls(
            status="error",
            result_subtype=None,
            is_error=True,
            result_text=None,
            reported_cost_usd=None,
            model_usage=(),
            error=error,
            agent_failure=agent_failure,
        )


AgentEvent = (
    ProcessStarted
    | SessionStarted
    | Text
    | Thinking
    | ToolCall
    | ToolResult
    | ToolDenied
    | Usage
    | Finished
)


class AgentBackend(Protocol):
    """A coding agent the harness can drive. ``run`` yields events until the
    agent's session ends. Killing the process group named by
    :class:`ProcessStarted` must make ``run`` finish promptly.

    ``default_allowed_tools`` are the agent's own tool names it may use
    without asking when the config names none; ``tool_name`` is what the agent
    calls a harness tool (``create_features``), for prompts that name it.

    A backend may also have ``prepare()``: slow one-time set-up (importing its
    SDK) that the orchestrator runs in a thread while the run starts, so the
    first agent does not stall every lane's event loop with it."""

    name: str
    capabilities: Capabilities
    default_allowed_tools: tuple[str, ...]

    def run(self, request: AgentRequest) -> AsyncIterator[AgentEvent]: ...

    def tool_name(self, tool: str) -> str: ...


StderrSink = Callable[[str], None]
