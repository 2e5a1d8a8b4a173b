"""The ``nightcrew`` command. Heavy imports happen inside commands so that
``nightcrew --help`` is instant; domain errors become one line on stderr and
the exit code they carry (``NIGHTCREW_DEBUG=1`` shows the traceback)."""

from __future__ import annotations

import os
import sys

import click

from nightcrew.cli.agents import agents_command
from nightcrew.cli.backlog import backlog_group
from nightcrew.cli.build import build_command
from nightcrew.cli.mcp import mcp_command
from nightcrew.cli.plan import plan_group
from nightcrew.cli.run import run_command
from nightcrew.cli.sim import sim_command
from nightcrew.cli.status import status_command
from nightcrew.cli.usage import usage_group
from nightcrew.core.errors import ExitCode, NightcrewError, report_crash


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


cli.add_command(run_command)
cli.add_command(plan_group)
cli.add_command(status_command)
cli.add_command(usage_group)
cli.add_command(backlog_group)
cli.add_command(build_command)
cli.add_command(mcp_command)
cli.add_command(sim_command)
cli.add_command(agents_command)


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
