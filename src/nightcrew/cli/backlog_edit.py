"""``nightcrew backlog …`` commands that change the backlog: import, add, edit,
skip, reorder, depend, retry, answer, pass, rm. Bulk forms take several ids (``skip 3 4 7``).
Each change is one atomic transaction; a refused change changes nothing."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from nightcrew.cli.backlog_common import open_backlog, parse_ids


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--accept",
    "accept",
    multiple=True,
    metavar="CMD",
    help="Acceptance command for features the file gives none (repeatable).",
)
@click.option("--prefix", metavar="KEY", help="Put KEY: before the file's ids (two PRDs apart).")
@click.option("--update", is_flag=True, help="Unstarted changed features take the file's text.")
@click.option("--json", "as_json", is_flag=True, help="Print what happened as JSON.")  # fmt: skip
def import_command(file: Path, accept: tuple[str, ...], prefix: str | None, update: bool,
                   as_json: bool) -> None:  # fmt: skip
    """Add the features of FILE: a quickstart or Autocoder feature list, a
    toolkit PRD json, or nightcrew's own export. A feature whose key (the
    file's id, or a hash of its text) is already in the backlog is not added
    again; with --update, one the file changes takes the file's text if it has
    not started."""
    from nightcrew.core.errors import BadInput
    from nightcrew.store.backlog_create import SpecsRejected
    from nightcrew.work.backlog_formats import parse_backlog

    parsed = parse_backlog(file, default_acceptance=accept, prefix=prefix)
    warnings = list(parsed.warnings)
    with open_backlog(create=True) as backlog:
        try:
            done = backlog.import_specs(parsed.specs, source=f"import {file.name}", update=update)
        except SpecsRejected as exc:  # a file goes in whole or not at all
            raise BadInput(f"{file}: {exc.message}") from None
    if done.differing:
        warnings.append(
            f"{file}: {len(done.differing)} feature(s) differ from the backlog's features with"
            f" the same key ({_labels(done.differing)}); left as they are (--update takes the"
            " file's text, --prefix KEY imports them as other features)"
        )
    if done.started:
        warnings.append(
            f"{file}: not updated: started ({_labels(done.started)}): they have been worked on"
        )
    report = {
        "format": parsed.format,
        "created": done.created.created,
        "unchanged": list(done.unchanged),
        "updated": list(done.updated),
        "differing": list(done.differing),
        "not_updated_started": list(done.started),
        "warnings": warnings,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    more = "".join(
        f", {len(ids)} {what}"
        for ids, what in ((done.updated, "updated"), (done.unchanged, "unchanged"))
        if ids
    )
    click.echo(
        f"imported {len(done.created.created)} feature(s){more} from {file}"
        f" ({parsed.format} format)"
    )


def _labels(ids: tuple[int, ...] | list[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


_TEXT_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--category", help="Feature category (default functional)."),
    click.option("--description", "-d", help="What the feature does, for the agent."),
    click.option("--step", "steps", multiple=True, help="A step of the feature (repeatable)."),
    click.option(
        "--accept",
        "acceptance",
        multiple=True,
        metavar="CMD",
        help="Shell command that exits 0 when the feature works (repeatable).",
    ),
    click.option("--file", "files", multiple=True, help="A file it likely touches (repeatable)."),
    click.option("--priority", type=int, help="Lower runs sooner (default 0)."),
]


_F = TypeVar("_F", bound=Callable[..., Any])


def _with_text_options(function: _F) -> _F:
    for option in reversed(_TEXT_OPTIONS):
        function = option(function)
    return function


@click.command("add")
@click.argument("name")
@click.option("--manual", is_flag=True, help="Checked by a person: build never picks it.")
@click.option("--after", "after", multiple=True, help="A feature id it depends on (repeatable).")
@_with_text_options
def add_command(name: str, manual: bool, after: tuple[str, ...], category: str | None,
                description: str | None, steps: tuple[str, ...], acceptance: tuple[str, ...],
                files: tuple[str, ...], priority: int | None) -> None:  # fmt: skip
    """Add one feature called NAME."""
    from nightcrew.core.errors import BadInput
    from nightcrew.work.backlog import FeatureSpec

    spec = FeatureSpec(
        name=name,
        category=category or "functional",
        description=description or "",
        steps=steps,
        acceptance=acceptance,
        manual=manual,
        priority=priority,
        files=files,
        depends_on=tuple(parse_ids(after)),
    )
    with open_backlog(create=True) as backlog:
        created = backlog.create([spec], source="backlog add")
    if created.rejected:
        raise BadInput(f"feature not added: {created.rejected[0].reason}")
    click.echo(f"added #{created.created[0]} {name.strip()}")


@click.command("edit")
@click.argument("feature_id")
@click.option("--name", help="A new name.")
@click.option("--manual/--automatic", default=None, help="Checked by a person, or by its commands.")
@click.option("--clear-steps", is_flag=True, help="Drop the steps before adding --step ones.")
@click.option("--clear-accept", is_flag=True, help="Drop the commands before adding --accept ones.")
@_with_text_options
def edit_command(feature_id: str, name: str | None, manual: bool | None, clear_steps: bool,
                 clear_accept: bool, category: str | None, description: str | None,
                 steps: tuple[str, ...], acceptance: tuple[str, ...], files: tuple[str, ...],
                 priority: int | None) -> None:  # fmt: skip
    """Change a feature's text, commands, files or priority. --step, --accept and
    --file add to what it has (clear with --clear-steps / --clear-accept)."""
    from nightcrew.core.errors import BadInput

    [fid] = parse_ids((feature_id,))
    with open_backlog() as backlog:
        old = backlog.feature(fid)
        fields: dict[str, object] = {}
        for key, value in (("name", name), ("category", category),
                           ("description", description), ("manual", manual),
                           ("priority", priority)):  # fmt: skip
            if value is not None:
                fields[key] = value
        if steps or clear_steps:
            fields["steps"] = (() if clear_steps else old.steps) + steps
        if acceptance or clear_accept:
            fields["acceptance"] = (() if clear_accept else old.acceptance) + acceptance
        if files:
            fields["files"] = old.files + files
        if not fields:
            raise BadInput("nothing to change: give an option (see --help)")
        feature = backlog.edit(fid, **fields)
    click.echo(f"#{feature.id} {feature.name}: changed {', '.join(sorted(fields))}")
    if old.manual and not feature.manual:
        click.echo(f"#{feature.id} is now automatic: build picks it and runs its commands")


@click.command("skip")
@click.argument("feature_ids", nargs=-1, required=True)
@click.option("--reason", default="skipped by hand", help="Why (kept in its history).")
def skip_command(feature_ids: tuple[str, ...], reason: str) -> None:
    """Skip features: build leaves them, and what depends on them, alone."""
    ids = parse_ids(feature_ids)
    with open_backlog() as backlog:
        changed = backlog.skip(ids, reason=reason)
    done = {f.id for f in changed}
    for fid in ids:
        click.echo(f"#{fid}: skipped" if fid in done else f"#{fid}: already skipped")


@click.command("reorder")
@click.argument("feature_id")
@click.option("--before", help="The feature it should come before.")
@click.option("--after", help="The feature it should come after (to put it last).")
def reorder_command(feature_id: str, before: str | None, after: str | None) -> None:
    """Move a feature just before another, or just after one (it takes the
    other's priority)."""
    from nightcrew.core.errors import BadInput

    if (before is None) == (after is None):
        raise BadInput("backlog reorder: give one of --before ID or --after ID")
    [fid] = parse_ids((feature_id,))
    [anchor] = parse_ids((before or after or "",))
    with open_backlog() as backlog:
        if before is not None:
            backlog.reorder(fid, before=anchor)
        else:
            backlog.reorder(fid, after=anchor)
    click.echo(f"#{fid} now comes {'before' if before is not None else 'after'} #{anchor}")


@click.command("depend")
@click.argument("feature_ids", nargs=-1, required=True)
@click.option("--on", "on", multiple=True, required=True, help="What they depend on (repeatable).")
@click.option("--replace", is_flag=True, help="Replace their dependencies instead of adding.")
def depend_command(feature_ids: tuple[str, ...], on: tuple[str, ...], replace: bool) -> None:
    """Make features depend on others (`depend 7 8 --on 3`). `--on none --replace`
    clears them. Cycles, unknown ids and self-dependencies are refused."""
    ids = parse_ids(feature_ids)
    targets = [] if on == ("none",) else parse_ids(on)
    with open_backlog() as backlog:
        for fid in ids:
            feature = backlog.set_dependencies(fid, targets, add=not replace)
            after = ", ".join(f"#{d}" for d in feature.depends_on) or "nothing"
            click.echo(f"#{fid} depends on {after}")


@click.command("retry")
@click.argument("feature_ids", nargs=-1, required=True)
@click.option("--model", help="Use this model for its next attempts (e.g. opus).")
def retry_command(feature_ids: tuple[str, ...], model: str | None) -> None:
    """Put failed, skipped or finished features back in the queue."""
    ids = parse_ids(feature_ids)
    reason = f"retry requested{f' with {model}' if model else ''}"
    with open_backlog() as backlog:
        features = backlog.retry(ids, model=model, reason=reason)
    for f in features:
        click.echo(
            f"#{f.id} {f.name}: pending" + (f", next attempt with {f.model}" if f.model else "")
        )


@click.command("pass")
@click.argument("feature_id")
@click.option("--note", required=True, help="How you checked it (kept in its history).")
def pass_command(feature_id: str, note: str) -> None:
    """Mark a manual feature passed: you checked it by hand. (Features with
    acceptance commands pass only when build runs them.)"""
    [fid] = parse_ids((feature_id,))
    with open_backlog() as backlog:
        feature = backlog.pass_by_person(fid, note=note)
    click.echo(f"#{feature.id} {feature.name}: passed (checked by a person)")


@click.command("rm")
@click.argument("feature_ids", nargs=-1, required=True)
@click.option("--cascade", is_flag=True, help="Remove what depends on them too.")
def rm_command(feature_ids: tuple[str, ...], cascade: bool) -> None:
    """Remove features never worked on (a mistaken import or add). What depends
    on them keeps them unless --cascade removes it too; worked-on ones stay
    (skip them). Their ids are not given again."""
    ids = parse_ids(feature_ids)
    with open_backlog() as backlog:
        removed = backlog.remove(ids, cascade=cascade)
    for f in removed:
        click.echo(f"#{f.id} {f.name}: removed")


@click.command("answer")
@click.argument("feature_id")
@click.argument("text", required=False)
def answer_command(feature_id: str, text: str | None) -> None:
    """Answer what a feature's agent asked (TEXT, or read from stdin); it goes back
    in the queue and its next attempt gets the answer."""
    [fid] = parse_ids((feature_id,))
    if text is None:
        text = sys.stdin.read()
    with open_backlog() as backlog:
        feature = backlog.answer(fid, text)
    click.echo(f"#{feature.id} {feature.name}: answered; back in the queue")


COMMANDS: list[click.Command] = [
    import_command,
    add_command,
    edit_command,
    skip_command,
    reorder_command,
    depend_command,
    retry_command,
    answer_command,
    pass_command,
    rm_command,
]
