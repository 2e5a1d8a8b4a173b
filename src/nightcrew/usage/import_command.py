"""What ``nightcrew usage import`` does and prints, without click: the ``nightcrew``
executable runs it straight from ``nightcrew.launch`` (loading click and every
other command costs 15 ms), and ``nightcrew.cli`` wraps it for ``--help`` and the
rest."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from nightcrew.core.errors import BadInput
from nightcrew.usage.globaldb import open_global
from nightcrew.usage.pricing import GenaiPrice, Pricer
from nightcrew.usage.transcript_files import default_root_dirs, find_transcript_files
from nightcrew.usage.transcripts import import_transcripts


def run_import(paths: Sequence[Path | str], *, as_json: bool,
               genai_lookup: Callable[[str], GenaiPrice] | None = None,
               files: list[str] | None = None) -> None:  # fmt: skip
    """Import ``paths`` (default: Claude Code's own transcript dirs) and print what was
    imported, as one line or as JSON. Warnings go to stderr (or into the JSON).
    ``genai_lookup``: see :class:`~nightcrew.usage.pricing.Pricer`. ``files``: the
    transcripts under ``paths``, when the caller has found them already."""
    if files is None:
        roots = list(paths) if paths else default_root_dirs()
        if not roots:
            raise BadInput(
                "no Claude Code transcripts found (looked in ~/.claude/projects,"
                " ~/.config/claude/projects and $CLAUDE_CONFIG_DIR/projects); name a path"
            )
        files = find_transcript_files(roots)
    warnings: list[str] = []
    db = open_global()
    try:
        pricer = Pricer(warn=warnings.append, genai_lookup=genai_lookup)
        report = import_transcripts(db, files, pricer)
    finally:
        db.close()
    if as_json:
        print(json.dumps({**asdict(report), "warnings": warnings}, indent=2))
        return
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
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
    print("; ".join(parts))
