"""``nightcrew usage import``: bring Claude Code's own transcripts into the
global usage database. Kept apart from the report code so a warm import (nothing
new) loads as little as possible."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click


def run_import(paths: tuple[Path, ...], *, as_json: bool) -> None:
    from nightcrew.errors import BadInput
    from nightcrew.usage.globaldb import open_global
    from nightcrew.usage.pricing import Pricer
    from nightcrew.usage.transcripts import default_roots, find_transcripts, import_transcripts

    roots = list(paths) if paths else default_roots()
    if not roots:
        raise BadInput(
            "no Claude Code transcripts found (looked in ~/.claude/projects,"
            " ~/.config/claude/projects and $CLAUDE_CONFIG_DIR/projects); name a path"
        )
    files = find_transcripts(roots)
    warnings: list[str] = []
    db = open_global()
    try:
        report = import_transcripts(db, files, Pricer(warn=warnings.append))
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps({**asdict(report), "warnings": warnings}, indent=2))
        return
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    mb = report.bytes_read / 1e6
    parts = [
        f"imported {report.entries_added:,} responses from {report.files_read:,} of"
        f" {report.files_seen:,} files ({mb:,.1f} MB read in {report.seconds:.2f} s)"
    ]
    if report.files_unchanged:
        parts.append(f"{report.files_unchanged:,} unchanged")
    if report.files_rewritten:
        parts.append(f"{report.files_rewritten:,} rewritten and read again")
    if report.lines_skipped or report.oversized_lines:
        parts.append(
            f"{report.lines_skipped + report.oversized_lines:,} lines skipped"
            " (not JSON or not usage)"
        )
    click.echo("; ".join(parts))
