"""``nightcrew notify test [--url URL] [--json]``: one test message to each
notification target, and whether it got there."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.group("notify")
def notify_group() -> None:
    """Notifications (Apprise URLs in the config's ``notify`` list)."""


@notify_group.command("test")
@click.option(
    "--url",
    "urls",
    multiple=True,
    metavar="URL",
    help="Test this Apprise URL instead of the configured targets (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print each target's result as JSON.")
def test_command(urls: tuple[str, ...], as_json: bool) -> None:
    """Send a test message to each target and say, per target, whether it was
    sent. Exit codes: 0 every one was sent, 1 one failed, 2 bad input (a URL
    Apprise cannot use, or no target at all)."""
    from nightcrew import gitops
    from nightcrew.config import load_settings
    from nightcrew.config_notify import target
    from nightcrew.core.errors import BadInput, ExitCode, LocatedError
    from nightcrew.notify.delivery import send
    from nightcrew.notify.messages import Facts, test_message

    cwd = Path.cwd()
    root = gitops.repo_root(cwd) if gitops.is_repo(cwd) else cwd
    if urls:
        try:
            chosen = [target(url) for url in urls]
        except ValueError as exc:
            raise LocatedError("command line", None, f"--url: {exc}") from exc
    else:
        chosen = [target(url) for url in load_settings(root).notify]
    if not chosen:
        raise BadInput(
            'no notification targets: add notify = ["URL", …] to nightcrew.toml'
            " (or [tool.nightcrew] in pyproject.toml), or give --url URL"
        )
    message = test_message(Facts(project=root.name))
    results = []
    for each in chosen:
        error = send(each, message)
        results.append(
            {"target": each.shown, "scheme": each.scheme, "sent": error is None, "error": error}
        )
        if not as_json:
            line = f"sent: {each.shown}" if error is None else f"failed: {each.shown}: {error}"
            click.echo(line, err=error is not None)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    failed = sum(1 for r in results if not r["sent"])
    if failed:
        if not as_json:
            click.echo(f"nightcrew: {failed} of {len(results)} target(s) failed", err=True)
        sys.exit(ExitCode.WORK_FAILED)
