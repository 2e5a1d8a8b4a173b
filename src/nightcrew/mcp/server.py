"""``nightcrew mcp``: the backlog tools over stdio, for any MCP client (a
person's own Claude Code: ``claude mcp add nightcrew -- nightcrew mcp``).

The server opens the project's store on the first tool call and keeps that
one connection. That is safe while ``nightcrew build`` or other servers write
the same file: every write is its own ``BEGIN IMMEDIATE`` transaction and every
read sees the latest commit (see ``store.backlog``). Writes are labelled
``mcp:<pid>``. Stdout carries the protocol only; nothing else is printed there.

``python -m nightcrew.mcp.server --project DIR`` runs it without the command
line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from mcp import types
from mcp.server import Server
from mcp.server.stdio import stdio_server

from nightcrew import __version__
from nightcrew.agents.base import ToolReply
from nightcrew.core.errors import NightcrewError
from nightcrew.mcp.tools import TOOLS, ToolContext, call_tool
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store

SERVER_NAME = "nightcrew"
INSTRUCTIONS = (
    "The nightcrew backlog of this project: features with dependencies and acceptance"
    " commands that `nightcrew build` works through. Only the harness marks a feature"
    " passed, after running its acceptance commands; claim_passing records a claim."
)


class _Session:
    """The store, opened on the first call that needs it."""

    def __init__(self, project: Project, source: str) -> None:
        self.project = project
        self.source = source
        self._store: Store | None = None
        self._context: ToolContext | None = None

    def context(self) -> ToolContext:
        if self._context is None:
            self._store = self.project.open_store()
            self._context = ToolContext(Backlog(self._store), self.source)
        return self._context

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _call(context: Callable[[], ToolContext], name: str, args: dict[str, Any] | None) -> ToolReply:
    try:
        opened = context()
    except NightcrewError as exc:
        return ToolReply(f"{name}: {exc.message}", True)
    except OSError as exc:
        return ToolReply(f"{name}: cannot open the nightcrew store: {exc}", True)
    return call_tool(opened, name, args)


def build_server(context: Callable[[], ToolContext]) -> Server[Any]:
    """A low-level MCP server listing :data:`~nightcrew.mcp.tools.TOOLS` and
    calling them with ``context()``."""
    listed = [
        types.Tool(
            name=tool.name,
            description=tool.description,
            input_schema=dict(tool.input_schema),
            annotations=types.ToolAnnotations(read_only_hint=True) if tool.read_only else None,
        )
        for tool in TOOLS
    ]

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        reply = _call(context, params.name, params.arguments)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=reply.text)],
            structured_content=None if reply.data is None else dict(reply.data),
            is_error=reply.is_error,
        )

    return Server(
        SERVER_NAME,
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


def serve(project_dir: Path) -> None:
    """Serve the backlog of the project around ``project_dir`` on stdin and
    stdout until the client closes stdin. Raises ``BadInput`` (before serving)
    when ``project_dir`` is not in a git repository."""
    project = Project.find(project_dir)
    session = _Session(project, f"mcp:{os.getpid()}")
    server = build_server(session.context)

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    try:
        anyio.run(main)
    finally:
        session.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nightcrew.mcp.server", description="Serve the backlog over MCP stdio."
    )
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="a project directory")
    options = parser.parse_args(argv)
    try:
        serve(options.project)
    except NightcrewError as exc:
        print(f"nightcrew mcp: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
