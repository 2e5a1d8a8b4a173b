"""The options every command that runs agent attempts shares (``run``,
``build``), worded for what it works through: batches or features."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

_F = TypeVar("_F", bound=Callable[..., Any])


def attempt_options(unit: str, whole: str) -> Callable[[_F], _F]:
    """``--agent``, ``--gate``, the budgets, ``--attempt-timeout``,
    ``--no-commit``, ``--wait-on-limit`` and ``--notify``; ``unit`` is "batch"
    or "feature", ``whole`` "run" or "build"."""
    options = [
        click.option(
            "--agent",
            default=None,
            metavar="NAME",
            help="Agent backend (default: claude; `nightcrew agents` lists them).",
        ),
        click.option(
            "--gate",
            "gates",
            multiple=True,
            help=f"Shell command that must exit 0 after each {unit} (repeatable);"
            " replaces the auto-detected test gate.",
        ),
        click.option(
            "--max-budget-usd",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help=f"Stop the {whole} (exit 3) when it has spent this much.",
        ),
        click.option(
            "--max-item-usd",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help=f"Stop the {whole} (exit 3) when one {unit} has spent this much in it,"
            " failed attempts included.",
        ),
        click.option(
            "--attempt-timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            metavar="SECONDS",
            help="Kill an attempt's agent after this long (default: 1800).",
        ),
        click.option(
            "--no-commit",
            is_flag=True,
            default=False,
            help=f"Leave each {unit}'s changes uncommitted.",
        ),
        click.option(
            "--wait-on-limit",
            is_flag=True,
            default=False,
            help="When the agent hits a usage limit with a known reset time (up to 6 h"
            f" away), wait for it and try the {unit} again instead of stopping.",
        ),
        click.option(
            "--notify",
            "notify",
            multiple=True,
            metavar="URL",
            help=f"Also notify this Apprise URL (repeatable) when the {whole} finishes,"
            f" a {unit} is stuck or given up, a person is asked, a budget warns or stops;"
            " adds to the config's notify list.",
        ),
    ]

    def apply(function: _F) -> _F:
        for option in reversed(options):
            function = option(function)
        return function

    return apply


def prerun_options(whole: str) -> Callable[[_F], _F]:
    """``--allow-dirty``, ``--new``, ``--dry-run`` and ``--show-prompt``: the
    checks before the first attempt; ``whole`` is "run" or "build"."""
    options = [
        click.option(
            "--allow-dirty",
            is_flag=True,
            help="Run although files are uncommitted; nightcrew never commits them.",
        ),
        click.option(
            "--new",
            "start_new",
            is_flag=True,
            help=f"Abandon the unfinished {whole} and start a new one from the tree as it is.",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Run every check and show what would run, without starting an agent.",
        ),
        click.option(
            "--show-prompt",
            is_flag=True,
            help="With --dry-run: print each prompt the agent would get.",
        ),
    ]

    def apply(function: _F) -> _F:
        for option in reversed(options):
            function = option(function)
        return function

    return apply
