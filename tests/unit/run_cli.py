"""``nightcrew run`` driven in-process through the real command line (options,
config, console lines, exit codes), with a real git repository, real gates and
the real SQLite store; only the agent is the shared fake backend.

For the loop's user-visible behaviour (resume, skips, gates, commits,
preflight refusals), where the real Claude Code CLI would only add seconds of
start-up per attempt. The agent's seams stay in tests/integration."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nightcrew.agents.base import AgentRequest
from nightcrew.testing import FakeBackend, Script
from tests.integration.support import GIT_ENV


@dataclass(frozen=True)
class Turns:
    """One scripted session, chosen like nightcrew.sim's scripts: the first
    whose ``match`` strings all appear in the prompt (and none of ``none``).
    ``command`` is the Bash the agent runs in its working directory."""

    name: str
    match: Sequence[str]
    command: str | None = None
    script: Script = field(default_factory=Script)
    none: Sequence[str] = ()


class Agent:
    """A fake backend answering each session with the first matching :class:`Turns`;
    ``answered`` names the scripts that answered, in order."""

    def __init__(self, *turns: Turns) -> None:
        self.turns = turns
        self.answered: list[str] = []
        self.backend = FakeBackend(self._answer)

    def _answer(self, request: AgentRequest) -> Script:
        for turns in self.turns:
            if all(m in request.prompt for m in turns.match) and not any(
                n in request.prompt for n in turns.none
            ):
                self.answered.append(turns.name)
                if turns.command is not None:
                    subprocess.run(
                        ["bash", "-c", turns.command], cwd=request.cwd, check=True, timeout=60
                    )
                return turns.script
        raise AssertionError(f"no scripted session matches the prompt:\n{request.prompt}")


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


class Cli:
    """Runs ``nightcrew ARGS`` in-process in ``root`` with ``agent`` as the backend."""

    def __init__(
        self,
        root: Path,
        agent: Agent,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        from nightcrew.cli import agent_choice

        self.root, self.agent, self.capsys = root, agent, capsys
        self.monkeypatch = monkeypatch
        for name, value in GIT_ENV.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("NIGHTCREW_DEBUG", raising=False)
        # The gates run the test project's pytest: it needs none of this venv's
        # plugins (xdist, playwright), whose loading costs ~2 CPU-s per gate.
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        monkeypatch.chdir(root)
        monkeypatch.setattr(agent_choice, "agent_backend", lambda settings, where: agent.backend)

    def __call__(self, *args: str) -> Result:
        from nightcrew import cli

        self.capsys.readouterr()  # what came before is not this command's
        self.monkeypatch.setattr(sys, "argv", ["nightcrew", *args])
        code = 0
        try:
            cli.main()
        except SystemExit as exited:
            code = int(exited.code or 0)
        out, err = self.capsys.readouterr()
        return Result(code, out, err)

    def status(self) -> dict[str, Any]:
        result = self("status", "--json")
        assert result.returncode == 0, result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        return data


MakeCli = Callable[..., Cli]  # a test's factory: (root, *turns) -> Cli
