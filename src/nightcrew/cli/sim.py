"""``nightcrew sim [--scenario FILE] [--port N]``: serve the scripted model in the
foreground and print the environment lines that point Claude Code (and so ``nightcrew
run``) at it, to try nightcrew on a project offline."""

from __future__ import annotations

import json
import shlex
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from nightcrew.core.errors import BadInput, LocatedError

if TYPE_CHECKING:
    from nightcrew.sim import Scenario

EXAMPLE = Path(__file__).resolve().parent.parent / "sim" / "scenarios" / "example.json"


def load_scenario_file(path: Path) -> Scenario:
    """The scenario in ``path``; a bad file is a ``BadInput`` naming ``file:line``."""
    from nightcrew.sim import Scenario
    from nightcrew.sim.json_where import line_of

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such scenario file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not a scenario file") from None
    except UnicodeDecodeError:
        raise LocatedError(str(path), None, "not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LocatedError(
            str(path), exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})"
        ) from None
    try:
        return Scenario.from_dict(data)
    except ValueError as exc:
        message = " ".join(str(exc).split())
        where, _, problem = message.partition(": ")
        if problem.startswith("unknown key(s) "):  # point at the first of them
            key = problem.removeprefix("unknown key(s) ").split(",")[0].split(" ")[0]
            where = key if where == "scenario" else f"{where}.{key}"
        raise LocatedError(str(path), line_of(text, where), message) from None


def env_lines(base_url: str, config_dir: Path) -> list[str]:
    """``export`` lines that point Claude Code at the sim and keep its sessions (and
    transcripts) in ``config_dir``, away from the real ``~/.claude`` and its usage."""
    values = {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sim",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CONFIG_DIR": str(config_dir),
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


@click.command("sim")
@click.option(
    "--scenario",
    "scenario_file",
    metavar="FILE",
    help="Scenario JSON file (docs/sim.md). Default: an example that, on each plan batch,"
    " writes nightcrew_sim.py and adds a test of it.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")  # fmt: skip
def sim_command(scenario_file: str | None, port: int) -> None:
    """Serve a scripted model offline until Ctrl-C, and print the environment lines
    that point Claude Code at it: paste them into another shell, then run nightcrew
    there (no key, no network, no cost)."""
    from nightcrew.paths import user_home
    from nightcrew.sim import SimServer

    path = Path(scenario_file) if scenario_file is not None else EXAMPLE
    scenario = load_scenario_file(path)
    server = SimServer(scenario, port=port)
    try:
        server.start()
    except OSError as exc:
        raise BadInput(f"--port {port}: cannot listen on 127.0.0.1: {exc.strerror}") from None
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    # SIGTERM as well as Ctrl-C, so a supervising process can stop it cleanly too.
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        config_dir = user_home() / "sim-claude"
        click.echo(f"# nightcrew sim: serving {path} on {server.url} until Ctrl-C")
        click.echo("# paste into the shell where you run nightcrew:")
        for line in env_lines(server.url, config_dir):
            click.echo(line)
        click.echo(f"# (Claude Code then keeps the sim's sessions in {config_dir})")
        while not done.wait(1.0):
            pass
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    click.echo("# nightcrew sim: stopped")
