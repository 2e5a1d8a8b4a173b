"""The built-in Claude Code backend, registered through the same hook as any
third party's (:mod:`nightcrew.agents.hooks`)."""

from __future__ import annotations

from collections.abc import Sequence

from nightcrew.agents.claude.backend import CAPABILITIES, ClaudeBackend
from nightcrew.agents.hooks import BackendInfo, hookimpl


@hookimpl
def nightcrew_backends() -> Sequence[BackendInfo]:
    return [
        BackendInfo(
            ClaudeBackend.name,
            CAPABILITIES,
            ClaudeBackend,
            "Claude Code, through claude-agent-sdk and the CLI it bundles",
        )
    ]
