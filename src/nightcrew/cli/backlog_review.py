"""``nightcrew backlog review``: the dashboard's Review from a terminal.
Comment on a line of a passed or failed attempt's diff (a draft), list the
comments, and send the drafts back, which retries the feature with them in
its next prompt (:class:`~nightcrew.store.reviews.Reviews`, as the page)."""

from __future__ import annotations

import json

import click

from nightcrew.cli.backlog_common import open_backlog, parse_ids


@click.command("review")
@click.argument("feature_id")
@click.argument("text", required=False)
@click.option("--attempt", "number", type=int, metavar="N", help="The attempt (1 = its first).")
@click.option("--file", "file", metavar="F", help="The file, as the attempt's diff names it.")
@click.option("--line", "line", type=int, metavar="L", help="The line in the attempt's version.")
@click.option("--send", is_flag=True, help="Send the drafts back and retry the feature.")
@click.option("--json", "as_json", is_flag=True, help="Print the feature's comments as JSON.")
def review_command(feature_id: str, text: str | None, number: int | None, file: str | None,
                   line: int | None, send: bool, as_json: bool) -> None:  # fmt: skip
    """Comment on a line of an attempt's diff (`review 7 --attempt 2 --file
    src/cart.py --line 14 "round before adding tax"`), send the comments back
    (`review 7 --send`: the feature is retried with them in its prompt), or,
    with neither, list its comments."""
    from nightcrew.core.errors import BadInput
    from nightcrew.store.reviews import Reviews, feature_attempts

    [fid] = parse_ids((feature_id,))
    given = {"--attempt": number, "--file": file, "--line": line}
    if text is None and any(v is not None for v in given.values()):
        raise BadInput("a review comment needs its TEXT after the feature id")
    missing = [name for name, value in given.items() if value is None]
    if text is not None and missing:
        raise BadInput(f"a review comment needs {', '.join(missing)} (which line it is about)")
    with open_backlog() as backlog:
        reviews = Reviews(backlog.store)
        if text is not None and number is not None and file is not None and line is not None:
            added = reviews.add(fid, number, file=file, line=line, text=text)
            if not as_json:
                click.echo(f"#{fid} attempt {number}, {added.where}: draft comment added")
        if send:
            sent = reviews.send(fid)
            if not as_json:
                click.echo(
                    f"#{fid}: sent {len(sent)} comment(s) back; it is pending again and its"
                    " next attempt's prompt carries them"
                )
        comments = reviews.comments(fid)
        numbers = {a.id: n for n, a in enumerate(feature_attempts(backlog.store, fid), 1)}
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": c.id,
                        "feature": c.feature_id,
                        "attempt": numbers.get(c.attempt_id),
                        "file": c.file,
                        "line": c.line,
                        "text": c.text,
                        "created": c.created_at,
                        "sent": c.sent_at,
                    }
                    for c in comments
                ],
                indent=2,
            )
        )
    elif text is None and not send:
        if not comments:
            click.echo(f"#{fid}: no review comments")
        for c in comments:
            state = f"sent {c.sent_at}" if c.sent_at else "draft"
            click.echo(f"attempt {numbers.get(c.attempt_id)} {c.where} ({state}): {c.text}")
