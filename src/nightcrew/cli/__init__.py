"""The ``nightcrew`` command. Heavy imports happen inside commands so that
``nightcrew --help`` is instant; domain errors become one line on stderr and
the exit code they carry (``NIGHTCREW_DEBUG=1`` shows the traceback)."""

from __future__ import annotations

import importlib
import os
import sys

import click

from nightcrew.core.errors import ExitCode, NightcrewError, report_crash

# Each command's module is imported when the command is used (or listed by
# --help), so `nightcrew usage` does not pay for `run`'s and `backlog`'s imports.
COMMANDS = {
    "agents": ("nightcrew.cli.agents", "agents_command"),
    "backlog": ("nightcrew.cli.backlog", "backlog_group"),
    "build": ("nightcrew.cli.build", "build_command"),
    "mcp": ("nightcrew.cli.mcp", "mcp_command"),
    "plan": ("nightcrew.cli.plan", "plan_group"),
    "pr": ("nightcrew.cli.pr", "pr_command"),
    "run": ("nightcrew.cli.run", "run_command"),
    "sim": ("nightcrew.cli.sim", "sim_command"),
    "status": ("nightcrew.cli.status", "status_command"),
    "usage": ("nightcrew.cli.usage", "usage_group"),
    "worktrees": ("nightcrew.cli.worktrees", "worktrees_group"),
    "notify": ("nightcrew.cli.notify", "notify_group"),
    "pause": ("nightcrew.cli.controls", "pause_command"),
    "resume": ("nightcrew.cli.controls", "resume_command"),
    "stop": ("nightcrew.cli.controls", "stop_command"),
    "logs": ("nightcrew.cli.logs", "logs_command"),
    "serve": ("nightcrew.cli.serve", "serve_command"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported the first time they are asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module, name = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), name)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nightcrew")
def cli() -> None:
    """Run AI coding agents through a plan, unattended: the harness, not the
    model, decides when each batch is done."""


@cli.command("demo")
@click.option("--keep", is_flag=True, help="Keep the demo directory afterwards.")
def demo_command(keep: bool) -> None:
    """Run the offline demo: a sample repo and 3-batch plan, the real Claude
    Code CLI, and a scripted local model (no key, no network)."""
    from nightcrew.cli.demo import run_demo

    sys.exit(run_demo(keep=keep))


def main() -> None:
    try:
        cli.main(standalone_mode=False, prog_name="nightcrew")
    except click.exceptions.Abort:
        click.echo("nightcrew: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except click.UsageError as exc:
        # One line, like every other bad input: what is wrong, and where to look.
        where = exc.ctx.command_path if exc.ctx is not None else "nightcrew"
        click.echo(f"nightcrew: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(ExitCode.BAD_INPUT)
    except click.ClickException as exc:
        click.echo(f"nightcrew: {exc.format_message()}", err=True)
        sys.exit(ExitCode.BAD_INPUT if exc.exit_code == 2 else exc.exit_code)
    except NightcrewError as exc:
        if os.environ.get("NIGHTCREW_DEBUG"):
            raise
        click.echo(f"nightcrew: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("nightcrew: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as exc:
        if os.environ.get("NIGHTCREW_DEBUG"):
            raise
        sys.exit(report_crash(exc))
