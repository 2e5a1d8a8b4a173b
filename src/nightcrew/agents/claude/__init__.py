"""Everything specific to Claude Code: the backend (:mod:`.backend`), its
known failures (:mod:`.failures`), the tool policy as a ``PreToolUse`` hook
(:mod:`.policy`) and the harness tools as an in-process MCP server
(:mod:`.sdk_tools`)."""

from nightcrew.agents.claude.backend import ClaudeBackend

__all__ = ["ClaudeBackend"]
