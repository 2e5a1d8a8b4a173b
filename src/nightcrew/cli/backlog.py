"""``nightcrew backlog …``: look at the backlog (list, show, stats, failures,
analyze, export). The commands that change it are in ``backlog_edit``.

Nothing here takes the project lock: a person may look at (and change) the
backlog while ``nightcrew build`` works through it, because every write is an
atomic transaction (see ``store.backlog``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nightcrew.cli import backlog_edit
from nightcrew.cli.backlog_common import open_backlog, parse_ids, write_atomically
from nightcrew.cli.backlog_init import init_command
from nightcrew.cli.backlog_review import review_command

if TYPE_CHECKING:
    from nightcrew.views.backlog import BacklogView
    from nightcrew.work.backlog import Outline


@click.group("backlog")
def backlog_group() -> None:
    """The feature backlog that `nightcrew build` works through."""


@backlog_group.command("list")
@click.option("--state", "states", multiple=True, help="Only features in this state (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(states: tuple[str, ...], as_json: bool) -> None:
    """List the features in backlog order."""
    from nightcrew.cli.listing import columns, json_lines
    from nightcrew.core.errors import BadInput
    from nightcrew.views.backlog import BacklogView, feature_json
    from nightcrew.work.backlog import FEATURE_STATES

    for state in states:
        if state not in FEATURE_STATES:
            raise BadInput(f"--state {state!r}: not a feature state ({', '.join(FEATURE_STATES)})")
    with open_backlog() as backlog:
        if as_json:
            features = backlog.features()
            view = BacklogView(features)
            shown = [f for f in features if not states or view.states[f.id] in states]
            click.echo(json_lines(feature_json(f, view) for f in shown))
            return
        outlines = backlog.outlines()  # the table needs no texts: read without them
    view = BacklogView(outlines)
    rows = [list_row(f, view) for f in outlines if not states or view.states[f.id] in states]
    passed = sum(f.state == "passed" for f in outlines)
    table = columns(LIST_COLUMNS, rows)
    click.echo(f"{table}{len(rows)} shown; {passed} of {len(outlines)} passed")


LIST_COLUMNS = ("id", "state", "category", "name", "after", "tries")


def list_row(f: Outline, view: BacklogView) -> tuple[str, ...]:
    """One feature's row of ``backlog list``, under :data:`LIST_COLUMNS`."""
    after = ", ".join(f"#{d}" for d in f.depends_on)
    state = view.states[f.id] + (" (manual)" if f.manual else "")  # build never picks it
    return (f"#{f.id}", state, f.category, f.name, after, str(f.attempts))


@backlog_group.command("show")
@click.argument("feature_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_command(feature_id: str, as_json: bool) -> None:
    """One feature: its text, acceptance commands, attempts, models and cost."""
    from nightcrew.views.backlog import BacklogView, feature_json
    from nightcrew.views.backlog_money import feature_money

    [fid] = parse_ids((feature_id,))
    with open_backlog() as backlog:
        feature = backlog.feature(fid)
        data = feature_json(feature, BacklogView(backlog.features()))
        data.update(feature_money(backlog.store, fid))
        data["claims"] = [
            dict(c)
            for c in backlog.store.db.execute(
                "SELECT ts, source, attempt_id, note, verdict FROM feature_claims"
                " WHERE feature_id = ? ORDER BY id",
                (fid,),
            )
        ]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"#{data['id']} {data['name']}  [{data['category']}] {data['state']}")
    if data["depends_on"]:
        click.echo("after: " + ", ".join(f"#{d}" for d in data["depends_on"]))
    if data["blocked_by"]:
        click.echo("blocked by: " + ", ".join(f"#{d}" for d in data["blocked_by"]))
    if data["description"]:
        click.echo(f"\n{data['description']}")
    for n, step in enumerate(data["steps"], 1):
        click.echo(f"  {n}. {step}")
    click.echo("\nacceptance:" if data["acceptance"] else "\nmanual: checked by a person")
    for command in data["acceptance"]:
        click.echo(f"  $ {command}")
    if data["input_request"]:
        click.echo(f"\nasked: {data['input_request']}")
        click.echo(f"answer: {data['input_answer'] or '(none yet: nightcrew backlog answer)'}")
    click.echo("")
    for attempt in data["attempt_list"]:
        cost = "unknown" if attempt["cost_usd"] is None else f"${attempt['cost_usd']:.4f}"
        click.echo(
            f"attempt {attempt['number']} (run {attempt['run_id']}): {attempt['state']},"
            f" {attempt['model'] or 'default model'}, {attempt['tokens']:,} tokens, {cost}"
        )
    total = "unknown" if data["cost_usd"] is None else f"${data['cost_usd']:.4f}"
    click.echo(f"{len(data['attempt_list'])} attempt(s), cost {total}")


@backlog_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats_command(as_json: bool) -> None:
    """Passed of total, cost so far, and what the rest will likely cost."""
    from nightcrew.cli.backlog_money import stats_text
    from nightcrew.views.backlog_money import backlog_stats

    with open_backlog() as backlog:
        stats = backlog_stats(backlog)
    click.echo(json.dumps(stats, indent=2) if as_json else stats_text(stats))


@backlog_group.command("failures")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def failures_command(as_json: bool) -> None:
    """Features given up on: their attempts, models, digests, cost, last words."""
    with open_backlog() as backlog:
        failures = backlog.failures()
    if as_json:
        click.echo(json.dumps(failures, indent=2))
        return
    if not failures:
        click.echo("no failure records")
        return
    for f in failures:
        cost = "unknown" if f["cost_usd"] is None else f"${float(f['cost_usd']):.4f}"
        click.echo(
            f"#{f['feature_id']} {f['name']} ({f['ts'][:16]}, run {f['run_id']}): {f['reason']}"
        )
        for a in f["attempts"]:
            model = a.get("model") or "default model"
            click.echo(f"  attempt {a.get('number')}: {a.get('state')} with {model}")
            digest = (a.get("digest") or "").strip().splitlines()
            if digest:
                click.echo(f"    {digest[0][:160]}")
        click.echo(f"  cost {cost}")
        if f["last_text"]:
            click.echo(f"  last words: {f['last_text'][:200]}")


@backlog_group.command("analyze")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def analyze_command(as_json: bool) -> None:
    """Ordering advice: the dependency order with reasons, features that name or
    touched the same files, and features that can go in any order."""
    from nightcrew.cli.backlog_files import touched_files
    from nightcrew.project import Project
    from nightcrew.work.backlog_graph import analysis_json, analyze, render_analysis

    with open_backlog() as backlog:
        features = backlog.features()
        unfinished = [f.id for f in features if f.state != "passed"]
        touched = touched_files(backlog.store, Project.find(Path.cwd()), unfinished)
    analysis = analyze(features, touched)
    if as_json:
        click.echo(json.dumps(analysis_json(analysis), indent=2))
    else:
        click.echo(render_analysis(analysis))


@backlog_group.command("export")
@click.option("--json", "as_json", is_flag=True, help="nightcrew's JSON format (re-importable).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
def export_command(as_json: bool, output: Path | None) -> None:
    """Write the backlog as markdown (or JSON that `backlog import` reads back)."""
    from nightcrew.work.backlog_formats import export_json, export_markdown

    with open_backlog() as backlog:
        features = backlog.features()
    text = export_json(features) if as_json else export_markdown(features)
    if output is None:
        click.echo(text, nl=False)
        return
    write_atomically(output, text)
    click.echo(f"wrote {len(features)} feature(s) to {output}")


for _command in backlog_edit.COMMANDS:
    backlog_group.add_command(_command)
backlog_group.add_command(init_command)
backlog_group.add_command(review_command)
