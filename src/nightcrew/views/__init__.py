"""Read models: what a person or a tool is shown about the project, worked out
from the store and never written back.

The command line, the MCP tools and (later) the dashboard render these; none
of them computes a report of its own. A view may read core, work, store,
usage, config, project and the engine's read-only helpers; it never imports
``cli`` or ``mcp``, and it prints nothing."""
