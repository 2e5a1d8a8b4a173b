"""The agent backends' registry: one pluggy hook, ``nightcrew_backends``
(:mod:`nightcrew.agents.hooks`), implemented by the built-in Claude Code
backend and by every module a package names in the ``nightcrew`` entry-point
group.

:func:`load_plugins` is explicit and idempotent. A plugin that cannot be
loaded, whose hook raises or answers something else than ``BackendInfo``s, or
that offers a name already taken, is one warning line naming it
(:func:`plugin_warnings`); the others, the built-in backend first, are
registered all the same. That is why each entry point is loaded on its own
rather than with pluggy's ``load_setuptools_entrypoints``, which stops at the
first failure, and each plugin's hook is called on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import cast

import pluggy

from nightcrew.agents.base import AgentBackend
from nightcrew.agents.hooks import PROJECT, BackendInfo, BackendSpecs, hookimpl
from nightcrew.core.errors import BadInput

__all__ = [
    "BackendInfo",
    "Registered",
    "backend_info",
    "backend_names",
    "hookimpl",
    "load_plugins",
    "make_backend",
    "plugin_warnings",
    "registered",
]

GROUP = "nightcrew"  # the entry-point group third parties declare
BUILTIN = "nightcrew.claude"  # the built-in plugin's name in the plugin manager


@dataclass(frozen=True)
class Registered:
    """A registered backend and the plugin that registered it."""

    info: BackendInfo
    plugin: str


@dataclass
class _Registry:
    manager: pluggy.PluginManager
    backends: dict[str, Registered]
    warnings: list[str]


_registry: _Registry | None = None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_plugins() -> None:
    """Register the built-in backend and every ``nightcrew`` entry point's,
    once per process; later calls do nothing."""
    global _registry  # noqa: PLW0603 - the one registry of the process
    if _registry is not None:
        return
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(BackendSpecs)
    warnings: list[str] = []
    from nightcrew.agents.claude import plugin as claude_plugin  # noqa: PLC0415

    manager.register(claude_plugin, name=BUILTIN)
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        if manager.get_plugin(point.name) is not None or manager.is_blocked(point.name):
            continue
        try:
            manager.register(point.load(), name=point.name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is a warning, not a crash
            warnings.append(f"plugin '{point.name}' ({point.value}) not loaded: {_short(exc)}")
    backends: dict[str, Registered] = {}
    impls = manager.hook.nightcrew_backends.get_hookimpls()
    # The built-in backend's names are taken first, whatever order a third
    # party asks for (tryfirst, trylast).
    for impl in sorted(impls, key=lambda i: i.plugin_name != BUILTIN):
        plugin = impl.plugin_name
        try:
            offered: list[object] = list(cast(Iterable[object], impl.function()))
        except Exception as exc:  # noqa: BLE001 - as above
            warnings.append(f"plugin '{plugin}': nightcrew_backends failed: {_short(exc)}")
            continue
        for info in offered:
            if not isinstance(info, BackendInfo) or not info.name.strip():
                warnings.append(f"plugin '{plugin}': {info!r} is not a BackendInfo with a name")
            elif info.name in backends:
                taken = backends[info.name].plugin
                warnings.append(
                    f"plugin '{plugin}': backend '{info.name}' is already"
                    f" registered by '{taken}'; ignored"
                )
            else:
                backends[info.name] = Registered(info, plugin)
    _registry = _Registry(manager, backends, warnings)


def _loaded() -> _Registry:
    load_plugins()
    assert _registry is not None
    return _registry


def plugin_warnings() -> tuple[str, ...]:
    """One line per plugin that could not be used, and why."""
    return tuple(_loaded().warnings)


def backend_names() -> tuple[str, ...]:
    """The registered backends' names, the built-in first."""
    return tuple(_loaded().backends)


def registered() -> tuple[Registered, ...]:
    return tuple(_loaded().backends.values())


def backend_info(name: str) -> BackendInfo:
    found = _loaded().backends.get(name)
    if found is None:
        raise BadInput(f"unknown agent backend '{name}' (known: {', '.join(backend_names())})")
    return found.info


def make_backend(name: str) -> AgentBackend:
    """A new backend of the registered ``name``; one that cannot be made is bad input."""
    info = backend_info(name)
    try:
        return info.factory()
    except Exception as exc:  # a third party's factory is not our crash
        raise BadInput(f"agent backend '{name}' could not be made: {_short(exc)}") from exc


def _reset_for_tests() -> None:
    """Forget the registry, so a test can load plugins again."""
    global _registry  # noqa: PLW0603
    _registry = None
