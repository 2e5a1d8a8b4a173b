"""Which agent backend a command drives: the registered plugins' (``--agent``,
``agent = "…"``), made in one place from the settings."""

from __future__ import annotations

import click

from nightcrew.agents.base import AgentBackend
from nightcrew.agents.plugins import backend_names, load_plugins, make_backend, plugin_warnings
from nightcrew.config import Settings


def registered_agents() -> tuple[str, ...]:
    """The registered backends' names; each plugin that could not be used is
    one warning line on stderr."""
    load_plugins()
    for line in plugin_warnings():
        click.echo(f"nightcrew: warning: {line}", err=True)
    return backend_names()


def agent_backend(settings: Settings) -> AgentBackend:
    """The backend ``settings.agent`` names (checked by ``load_settings(agents=…)``)."""
    return make_backend(settings.agent)
