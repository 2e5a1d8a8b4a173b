"""The ``nightcrew`` executable.

``nightcrew usage import`` with nothing new to read is the common case (people
run it before every report, or from a shell prompt), so it is answered here
with the standard library alone: no click, no pydantic, no price tables. An
import with something to read runs here too, without click and the other
commands (15 ms), with the full command line's error handling; genai-prices
loads meanwhile in a helper process (see ``usage/price_helper.py``). Any other
command, or any option but ``--json``, goes to the full command line.
"""

from __future__ import annotations

import gc
import os
import sys
import time

from nightcrew.paths import global_db_file
from nightcrew.usage.transcript_files import (
    all_unchanged,
    default_root_dirs,
    find_transcript_files,
)


def _import_args(argv: list[str]) -> tuple[list[str], bool] | None:
    """``usage import [--json] [PATH...]`` as (paths, as_json); None for anything else
    (``--help``, other options, other commands): the full command line handles it."""
    if argv[:2] != ["usage", "import"]:
        return None
    args = argv[2:]
    paths = [a for a in args if a != "--json"]
    if any(a.startswith("-") for a in paths):
        return None
    return paths, "--json" in args


def _quiet_import(argv: list[str]) -> bool:
    """Handle ``usage import [--json] [PATH...]`` when every file is unchanged;
    False when the full command must run."""
    return _check(argv)[0]


def _check(argv: list[str]) -> tuple[bool, list[str] | None]:
    """:func:`_quiet_import`, and the files found when it did not answer (None when it
    did not look)."""
    parsed = _import_args(argv)
    if parsed is None:
        return False, None
    paths, as_json = parsed
    started = time.perf_counter()
    roots = paths or default_root_dirs()
    if not roots or not all(os.path.exists(p) for p in roots):
        return False, None  # the full command explains what is missing
    files = find_transcript_files(roots)
    if not all_unchanged(global_db_file(), files):
        return False, files
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
    return True, None


def _import(argv: list[str], files: list[str] | None = None) -> int | None:
    """Run ``usage import [--json] [PATH...]`` without click; its exit code, or None
    when the full command line must run. ``files``: what ``_check`` found, if it looked.
    Errors end as the full command line ends them: one line on stderr and the error's
    exit code (``NIGHTCREW_DEBUG=1`` re-raises)."""
    parsed = _import_args(argv)
    if parsed is None:
        return None
    import nightcrew.usage.pricing  # noqa: PLC0415, F401 - before the fork: both need it
    from nightcrew.usage.price_helper import PriceHelper  # noqa: PLC0415

    # Early, so genai-prices loads on another CPU while this process loads the rest.
    try:
        helper: PriceHelper | None = PriceHelper()
    except OSError:  # no process to spare: look prices up here
        helper = None
    from nightcrew.core.errors import ExitCode, NightcrewError  # noqa: PLC0415
    from nightcrew.usage.import_command import run_import  # noqa: PLC0415

    try:
        lookup = helper.lookup if helper is not None else None
        try:
            run_import(parsed[0], as_json=parsed[1], genai_lookup=lookup, files=files)
        finally:
            if helper is not None:
                helper.close()
    except NightcrewError as exc:
        if os.environ.get("NIGHTCREW_DEBUG"):
            raise
        print(f"nightcrew: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nightcrew: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:
        if os.environ.get("NIGHTCREW_DEBUG"):
            raise
        from nightcrew.core.errors import report_crash  # noqa: PLC0415

        return report_crash(exc)
    return ExitCode.OK


def main() -> None:
    argv = sys.argv[1:]
    answered, files = _check(argv)
    if answered:
        return
    if _import_args(argv) is not None:
        # A one-shot process that makes no cyclic garbage worth collecting: the collector
        # would only walk the modules it loads and the rows it reads, again and again.
        gc.disable()
    code = _import(argv, files)
    if code is not None:
        # Everything is closed and written: skip the interpreter's teardown, which walks
        # every object the import loaded (the price tables above all) for 50 ms.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    from nightcrew.cli import main as full_main  # noqa: PLC0415 - only when needed

    full_main()
