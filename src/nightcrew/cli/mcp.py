"""``nightcrew mcp``: the backlog as MCP tools over stdio (see ``nightcrew.mcp``)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("mcp")
@click.option(
    "--project",
    "project_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=".",
    show_default="the project around the current directory",
    help="The project whose backlog to serve.",
)
def mcp_command(project_dir: Path) -> None:
    """Serve the backlog as MCP tools over stdio, for an agent or your own
    Claude Code: claude mcp add nightcrew -- nightcrew mcp --project DIR"""
    from nightcrew.mcp.server import serve

    serve(project_dir)
