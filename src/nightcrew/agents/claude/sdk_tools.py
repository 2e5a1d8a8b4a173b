"""Harness tools as an in-process MCP server for ``claude-agent-sdk``: the SDK
serves it to the Claude Code CLI over its control channel, so the tools run in
the harness's own process, on its own store connection.

Claude Code names each tool ``mcp__<server>__<tool>``; :func:`allowed_names`
gives those names for ``allowed_tools``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from claude_agent_sdk import McpSdkServerConfig, SdkMcpTool, create_sdk_mcp_server
from mcp.types import ToolAnnotations

from nightcrew.agents.base import HarnessTool
from nightcrew.agents.claude.names import mcp_tool_name


def allowed_names(server: str, tools: Sequence[HarnessTool]) -> list[str]:
    return [mcp_tool_name(server, tool.name) for tool in tools]


def _sdk_tool(tool: HarnessTool) -> SdkMcpTool[Any]:
    async def handler(args: dict[str, Any]) -> dict[str, Any]:
        reply = await tool.call(args)
        return {"content": [{"type": "text", "text": reply.text}], "is_error": reply.is_error}

    return SdkMcpTool(
        name=tool.name,
        description=tool.description,
        input_schema=dict(tool.input_schema),
        handler=handler,
        annotations=ToolAnnotations(read_only_hint=True) if tool.read_only else None,
    )


def sdk_server(server: str, tools: Sequence[HarnessTool]) -> McpSdkServerConfig:
    """An in-process MCP server named ``server`` serving ``tools``."""
    return create_sdk_mcp_server(server, tools=[_sdk_tool(t) for t in tools])
