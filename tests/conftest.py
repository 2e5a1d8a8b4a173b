"""Shared fixtures. ``sim_env`` runs a scripted model server for tests that drive the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from nightcrew.engine import signals as stop_signals
from nightcrew.sim import Scenario, SimServer, agent_env


@pytest.fixture(autouse=True)
def _nightcrew_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or writes the real user data dir (global usage database)."""
    monkeypatch.setenv("NIGHTCREW_HOME", str(tmp_path_factory.mktemp("nightcrew-home")))


@pytest.fixture(autouse=True)
def _gates_without_this_venvs_pytest_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gates of the tests' toy projects run pytest from this venv, whose
    plugins (xdist, playwright, timeout, ...) they need none of: loading them
    costs ~1.6 CPU-s per gate run, and the suite runs hundreds."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture(autouse=True)
def _forget_stop_signals() -> Iterator[None]:
    """The first stopping signal is kept process-wide (engine/signals.py), and
    a run's orchestrator forgets it when it starts; tests that drive lanes or
    attempts without an orchestrator must not see an earlier test's Ctrl-C."""
    yield
    stop_signals.reset()


SimStarter = Callable[[Mapping[str, Any]], tuple[SimServer, dict[str, str]]]


@pytest.fixture
def sim_env(tmp_path: Path) -> Iterator[SimStarter]:
    """Factory ``start(scenario_dict) -> (server, env)``; servers stop at teardown.

    ``env`` points the Claude Code CLI at the server, with ``CLAUDE_CONFIG_DIR`` under
    this test's ``tmp_path`` so no run reads or writes the real ``~/.claude``.
    """
    servers: list[SimServer] = []

    def start(scenario: Mapping[str, Any]) -> tuple[SimServer, dict[str, str]]:
        server = SimServer(Scenario.from_dict(scenario))
        server.start()
        servers.append(server)
        return server, agent_env(server.url, tmp_path / "claude-config")

    yield start
    for server in servers:
        server.stop()
