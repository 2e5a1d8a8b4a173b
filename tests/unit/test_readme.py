"""The README cannot drift from the code: every option and exit code it
documents for `nightcrew run` exists, and every command it shows exists."""

from __future__ import annotations

import re
from pathlib import Path

import click
from click.testing import CliRunner

from nightcrew.cli import cli
from nightcrew.core.errors import ExitCode

README = (Path(__file__).parents[2] / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_every_documented_run_option_exists() -> None:
    documented = set(re.findall(r"`(--[a-z-]+)", _section("Options and exit codes")))
    help_text = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200).output
    assert documented, "the options table is empty"
    missing = sorted(o for o in documented if o not in help_text)
    assert not missing, f"README documents options `nightcrew run` lacks: {missing}"
    offered = set(re.findall(r"(--[a-z][a-z-]+)", help_text)) - {"--help"}
    undocumented = sorted(offered - documented)
    assert not undocumented, f"`nightcrew run` options missing from the README: {undocumented}"


def test_documented_exit_codes_match() -> None:
    rows = re.findall(r"^\| (\d+) \|", _section("Options and exit codes"), re.MULTILINE)
    assert sorted(int(r) for r in rows) == sorted(int(c) for c in ExitCode)


def test_commands_shown_exist() -> None:
    shell = "\n".join(re.findall(r"```sh\n(.*?)```", README, re.DOTALL))
    shown = set(re.findall(r"^nightcrew ([a-z]+)", shell, re.MULTILINE))
    assert shown >= {"plan", "run", "status"}
    for command in shown:
        assert command in cli.list_commands(click.Context(cli)), command
