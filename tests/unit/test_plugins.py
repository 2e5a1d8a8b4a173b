"""The backend registry: the built-in Claude Code backend and third parties'
through the same pluggy hook, loaded once from the ``nightcrew`` entry points;
what a bad plugin costs (one warning, nothing else)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nightcrew.agents import plugins
from nightcrew.agents.base import AgentRequest, Finished
from nightcrew.agents.claude import ClaudeBackend
from nightcrew.core.errors import BadInput
from tests.plugin_dist import FILE_WRITER, write_plugin

OFFERS = """
from nightcrew.agents.base import Capabilities
from nightcrew.agents.hooks import BackendInfo, hookimpl

def boom():
    raise RuntimeError("agentcli is not on PATH")

@hookimpl{order}
def nightcrew_backends():
    return {offers}
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for plugins; the registry forgotten before and after."""
    where = tmp_path / "site"
    where.mkdir()
    monkeypatch.syspath_prepend(str(where))
    plugins._reset_for_tests()
    before = set(sys.modules)
    yield where
    plugins._reset_for_tests()
    for module in set(sys.modules) - before:  # this test's plugin modules, not the next's
        if module.endswith("_plugin"):
            del sys.modules[module]


def offering(site: Path, name: str, offers: str, order: str = "") -> None:
    write_plugin(site, name, OFFERS.format(offers=offers, order=order))


def test_the_builtin_backend_comes_through_the_hook(site: Path) -> None:
    assert plugins.backend_names() == ("claude",)
    assert plugins.plugin_warnings() == ()
    [entry] = plugins.registered()
    assert entry.plugin == plugins.BUILTIN
    assert entry.info.capabilities == ClaudeBackend.capabilities
    assert isinstance(plugins.make_backend("claude"), ClaudeBackend)


def test_a_third_partys_backend_is_registered_from_its_entry_point(site: Path) -> None:
    write_plugin(site, "filewriter", FILE_WRITER)
    assert plugins.backend_names() == ("claude", "filewriter")
    info = plugins.backend_info("filewriter")
    assert not info.capabilities.reports_cost and info.description == "writes written.txt"
    backend = plugins.make_backend("filewriter")
    assert backend.name == "filewriter" and backend.capabilities == info.capabilities

    async def events() -> list[object]:
        return [e async for e in backend.run(AgentRequest(prompt="go\nnow", cwd=site))]

    assert isinstance(asyncio.run(events())[-1], Finished)
    assert (site / "written.txt").read_text() == "None: go\n"


def test_loading_twice_registers_once(site: Path) -> None:
    write_plugin(site, "filewriter", FILE_WRITER)
    plugins.load_plugins()
    plugins.load_plugins()
    assert plugins.backend_names() == ("claude", "filewriter")
    assert plugins.plugin_warnings() == ()


@pytest.mark.parametrize("order", ["", "(trylast=True)", "(tryfirst=True)"])
def test_a_name_already_taken_is_a_warning_and_the_builtin_stays(site: Path, order: str) -> None:
    offering(site, "impostor", '[BackendInfo("claude", Capabilities(), boom)]', order)
    assert plugins.backend_names() == ("claude",)
    assert plugins.plugin_warnings() == (
        "plugin 'impostor': backend 'claude' is already registered by 'nightcrew.claude'; ignored",
    )
    assert isinstance(plugins.make_backend("claude"), ClaudeBackend)


def test_an_answer_that_is_not_a_backend_is_a_warning(site: Path) -> None:
    offering(site, "sloppy", '["codex"]')
    assert plugins.backend_names() == ("claude",)
    assert plugins.plugin_warnings() == (
        "plugin 'sloppy': 'codex' is not a BackendInfo with a name",
    )


def test_a_factory_that_fails_is_bad_input_naming_the_backend(site: Path) -> None:
    offering(site, "fragile", '[BackendInfo("fragile", Capabilities(), boom)]')
    with pytest.raises(BadInput) as raised:
        plugins.make_backend("fragile")
    assert raised.value.message == (
        "agent backend 'fragile' could not be made: RuntimeError: agentcli is not on PATH"
    )


def test_an_unknown_name_names_the_known_ones(site: Path) -> None:
    with pytest.raises(BadInput) as raised:
        plugins.backend_info("codex")
    assert raised.value.message == "unknown agent backend 'codex' (known: claude)"
