"""The backlog as tools: defined once in :mod:`nightcrew.mcp.tools`, served over
stdio to any MCP client by :mod:`nightcrew.mcp.server` (``nightcrew mcp``) and
in-process to Claude Code by :mod:`nightcrew.agents.claude.sdk_tools`."""
