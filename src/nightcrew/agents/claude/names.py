"""What Claude Code calls the harness's tools: ``mcp__<server>__<tool>``, the
server being the in-process one nightcrew names ``nightcrew``."""

from __future__ import annotations

# The in-process MCP server of a request's harness tools.
HARNESS_SERVER = "nightcrew"


def mcp_tool_name(server: str, tool: str) -> str:
    """What Claude Code calls ``tool`` of the MCP server ``server``."""
    return f"mcp__{server}__{tool}"
