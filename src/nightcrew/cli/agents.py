"""``nightcrew agents``: the registered agent backends and what each can do."""

from __future__ import annotations

import dataclasses
import json

import click

# The capabilities as the table heads them, in the order they are shown.
_HEADS = {
    "reports_cost": "cost",
    "resumable_sessions": "resume",
    "harness_tools": "tools",
    "tool_policy": "policy",
}


@click.command("agents")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def agents_command(as_json: bool) -> None:
    """List the agent backends --agent (or agent = "…" in the config) can
    choose, the built-in one first, and what each can do: report its own cost,
    resume a session, take the harness's tools in-process, enforce the tool
    policy."""
    from nightcrew.agents.plugins import registered
    from nightcrew.cli.agent_choice import registered_agents
    from nightcrew.cli.listing import columns

    registered_agents()  # loads the plugins; a broken one is a warning line
    found = registered()
    if as_json:
        items = [
            {
                "name": entry.info.name,
                "plugin": entry.plugin,
                "description": entry.info.description,
                "capabilities": dataclasses.asdict(entry.info.capabilities),
            }
            for entry in found
        ]
        click.echo(json.dumps(items, indent=2))
        return
    rows = [
        [
            entry.info.name,
            *("yes" if getattr(entry.info.capabilities, field) else "no" for field in _HEADS),
            entry.plugin,
            entry.info.description,
        ]
        for entry in found
    ]
    header = ["name", *_HEADS.values(), "plugin", "description"]
    click.echo(columns(header, rows), nl=False)
