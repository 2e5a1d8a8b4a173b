"""The hook an agent backend's plugin implements, and what it answers.

A third party's module, named in the ``nightcrew`` entry-point group::

    [project.entry-points.nightcrew]
    mybackend = "mypkg.nightcrew_plugin"

implements it::

    from nightcrew.agents.hooks import BackendInfo, hookimpl

    @hookimpl
    def nightcrew_backends():
        return [BackendInfo("mine", CAPABILITIES, MyBackend, "my agent CLI")]

The built-in Claude Code backend does the same (:mod:`nightcrew.agents.claude.plugin`).
The registry is :mod:`nightcrew.agents.plugins`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pluggy

from nightcrew.agents.base import AgentBackend, Capabilities

PROJECT = "nightcrew"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class BackendInfo:
    """One backend a plugin offers: its name (``--agent NAME``, ``agent =
    "NAME"``), what it can do, and how to make one. ``factory`` takes no
    arguments; the backend it makes carries the same ``capabilities``."""

    name: str
    capabilities: Capabilities
    factory: Callable[[], AgentBackend]
    description: str = ""


class BackendSpecs:
    """The hook specifications (pluggy reads them from this class)."""

    @hookspec
    def nightcrew_backends(self) -> Sequence[BackendInfo]:  # type: ignore[empty-body]
        """The agent backends this plugin offers."""
