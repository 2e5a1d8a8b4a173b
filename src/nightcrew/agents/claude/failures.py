"""Claude Code's failures that a retry cannot fix, recognised once, here.

Claude Code ends such a session with ``is_error`` and a one-line result text
(an HTTP status in ``api_error_status`` when the API refused the call), or
exits 1 with the reason on stderr (a bad argument). This table turns those
into an :class:`AgentFailure`, so the engine decides on a typed value and
never on Claude Code's English. Texts as printed by CLI 2.1.329:

- ``Not logged in · Please run /login``
- ``Invalid API key · Fix external API key`` (HTTP 401)
- ``There's an issue with the selected model (M). It may not exist …`` (404)
- ``API Error: Request rejected (429) · …``; a subscription's limit reads
  ``Claude AI usage limit reached|<reset epoch>``
- ``error: option '--max-budget-usd <amount>' argument 'inf' is invalid. …``
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from nightcrew.agents.base import AgentFailure

_USAGE_RESET = re.compile(r"usage limit reached\|(\d{9,11})", re.IGNORECASE)


@dataclass(frozen=True)
class _Known:
    kind: str
    retryable: bool
    advice: str
    statuses: tuple[int, ...]
    texts: tuple[str, ...]  # lower-case substrings of the result text or stderr


KNOWN: tuple[_Known, ...] = (
    _Known(
        "not_logged_in",
        False,
        "log Claude Code in (run `claude` and /login) or set ANTHROPIC_API_KEY",
        (),
        ("not logged in",),
    ),
    _Known(
        "invalid_api_key",
        False,
        "check ANTHROPIC_API_KEY (or log in again with `claude` and /login)",
        (401,),
        ("invalid api key", "authentication_error"),
    ),
    _Known(
        "model_not_found",
        False,
        "check the model name (--model, --escalate-model, or the config's model)",
        (404,),
        ("issue with the selected model", "not_found_error"),
    ),
    _Known(
        "usage_limit",
        False,
        "wait for the limit to reset, or pass --wait-on-limit to wait for it",
        (429,),
        ("usage limit reached", "rate limit", "request rejected (429)"),
    ),
    _Known(
        "invalid_argument",
        False,
        "fix the option named above",
        (),
        ("error: option '", "error: unknown option"),
    ),
)

CLI_MISSING = AgentFailure(
    kind="cli_missing",
    message="Claude Code CLI not found",
    retryable=False,
    advice="install claude-agent-sdk for your platform, or"
    " `npm install -g @anthropic-ai/claude-code`",
)


def classify(
    *, api_status: int | None, result_text: str | None, stderr: list[str]
) -> AgentFailure | None:
    """The known failure this session ended with, or None (a failure a retry may fix)."""
    reason = _reason(result_text, stderr)
    lowered = "\n".join([result_text or "", *stderr]).lower()
    for known in KNOWN:
        if api_status in known.statuses or any(t in lowered for t in known.texts):
            reset_at = None
            if known.kind == "usage_limit" and (found := _USAGE_RESET.search(lowered)):
                reset_at = datetime.fromtimestamp(int(found.group(1)), UTC)
            return AgentFailure(
                kind=known.kind,
                message=reason or known.kind.replace("_", " "),
                retryable=False,
                advice=known.advice,
                reset_at=reset_at,
            )
    return None


def last_reason(result_text: str | None, stderr: list[str]) -> str | None:
    """The agent's own words on why it stopped: its result text, else the last
    stderr line."""
    return _reason(result_text, stderr)


def _reason(result_text: str | None, stderr: list[str]) -> str | None:
    if result_text and result_text.strip():
        text = result_text.strip().splitlines()[0]
        return _USAGE_RESET.sub("usage limit reached", text)[:300]
    for line in reversed(stderr):
        if line.strip():
            return line.strip()[:300]
    return None
