"""The ``nightcrew`` executable.

``nightcrew usage import`` with nothing new to read is the common case (people
run it before every report, or from a shell prompt), so it is answered here
with the standard library alone: no click, no pydantic, no price tables. Any
other command, or any change to import, goes to the full command line.
"""

from __future__ import annotations

import os
import sys
import time

from nightcrew.paths import global_db_file
from nightcrew.usage.transcript_files import (
    all_unchanged,
    default_root_dirs,
    find_transcript_files,
)


def _quiet_import(argv: list[str]) -> bool:
    """Handle ``usage import [--json] [PATH...]`` when every file is unchanged;
    False when the full command must run."""
    if argv[:2] != ["usage", "import"]:
        return False
    args = argv[2:]
    as_json = "--json" in args
    paths = [a for a in args if a != "--json"]
    if any(a.startswith("-") for a in paths):
        return False  # --help and friends: the full command line
    started = time.perf_counter()
    roots = paths or default_root_dirs()
    if not roots or not all(os.path.exists(p) for p in roots):
        return False  # the full command explains what is missing
    files = find_transcript_files(roots)
    if not all_unchanged(global_db_file(), files):
        return False
    n, seconds = len(files), time.perf_counter() - started
    if as_json:
        import json  # noqa: PLC0415 - only for --json

        report = {
            "files_seen": n, "files_read": 0, "files_unchanged": n, "files_rewritten": 0,
            "files_unreadable": 0, "bytes_read": 0, "entries_added": 0, "lines_skipped": 0,
            "oversized_lines": 0, "seconds": seconds, "warnings": [],
        }  # fmt: skip
        print(json.dumps(report, indent=2))
    else:
        print(
            f"imported 0 responses from 0 of {n:,} files (0.0 MB read in {seconds:.2f} s);"
            f" {n:,} unchanged"
        )
    return True


def main() -> None:
    if _quiet_import(sys.argv[1:]):
        return
    from nightcrew.cli import main as full_main  # noqa: PLC0415 - only when needed

    full_main()
