"""Which agent backend a command drives: the registered plugins' (``--agent``,
``agent = "…"``), made in one place from the settings."""

from __future__ import annotations

from pathlib import Path

import click

from nightcrew.agents.base import AgentBackend
from nightcrew.agents.plugins import backend_names, load_plugins, make_backend, plugin_warnings
from nightcrew.config import Settings
from nightcrew.toolpolicy import ToolPolicy


def registered_agents() -> tuple[str, ...]:
    """The registered backends' names; each plugin that could not be used is
    one warning line on stderr."""
    load_plugins()
    for line in plugin_warnings():
        click.echo(f"nightcrew: warning: {line}", err=True)
    return backend_names()


def agent_backend(settings: Settings, root: Path) -> AgentBackend:
    """The backend ``settings.agent`` names (checked by ``load_settings(agents=…)``).
    One that cannot enforce the tool policy of the project at ``root`` is said
    once, as a warning line."""
    backend = make_backend(settings.agent)
    if not backend.capabilities.tool_policy and ToolPolicy(settings.policy.spec(), root).active:
        click.echo(
            f"nightcrew: warning: the agent backend '{backend.name}' cannot enforce the"
            " tool policy ([policy]): its tool calls are not checked",
            err=True,
        )
    return backend
