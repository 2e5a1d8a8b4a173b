"""Where Claude Code's transcripts are, and whether any changed since the last
import.

This module imports nothing but the standard library's ``os`` and ``sqlite3``:
``nightcrew usage import`` with nothing new to read (the common case, run before
every report) answers from here without loading the rest of nightcrew.
"""

from __future__ import annotations

import os
import sqlite3

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (9 ms)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path  # at run time only where a Path is returned: it costs 4 ms


def default_root_dirs() -> list[str]:
    """Where Claude Code keeps transcripts: ``projects`` under each entry of
    ``$CLAUDE_CONFIG_DIR`` (comma-separated), ``~/.config/claude`` and ``~/.claude``.
    Only existing directories, each once."""
    config = [p.strip() for p in os.environ.get("CLAUDE_CONFIG_DIR", "").split(",")]
    home = os.path.expanduser("~")
    candidates = [os.path.join(os.path.expanduser(p), "projects") for p in config if p]
    candidates += [os.path.join(home, ".config", "claude", "projects")]
    candidates += [os.path.join(home, ".claude", "projects")]
    roots: list[str] = []
    for candidate in candidates:
        resolved = os.path.realpath(candidate)
        if os.path.isdir(candidate) and resolved not in roots:
            roots.append(resolved)
    return roots


def default_roots() -> list[Path]:
    from pathlib import Path  # noqa: PLC0415

    return [Path(p) for p in default_root_dirs()]


def _walk(folder: str, found: set[str]) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".jsonl") and entry.is_file():
                found.add(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                _walk(entry.path, found)


def find_transcripts(paths: Sequence[Path | str]) -> list[Path]:
    """The ``.jsonl`` files under ``paths``, recursively (so subagent transcripts in
    ``<session>/subagents/`` are included); a file named directly is taken as is.
    A path that does not exist is a ``BadInput``."""
    from pathlib import Path  # noqa: PLC0415

    return [Path(p) for p in find_transcript_files(paths)]


def find_transcript_files(paths: Sequence[Path | str]) -> list[str]:
    """:func:`find_transcripts` as sorted absolute path strings."""
    found: set[str] = set()
    for path in paths:
        where = os.path.abspath(path)
        if os.path.isfile(where):
            found.add(where)
        elif os.path.isdir(where):
            _walk(where, found)
        else:
            from nightcrew.core.errors import BadInput  # noqa: PLC0415 - keep this module light

            raise BadInput(f"{path}: no such file or directory")
    return sorted(found)


def all_unchanged(db_path: str, files: Sequence[str]) -> bool:
    """Whether every one of ``files`` was imported and has not changed since (same
    size, mtime and inode): then an import has nothing to do. False when in doubt."""
    if not files or not os.path.isfile(db_path):
        return False
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            known = {
                row[0]: (row[1], row[2], row[3])
                for row in db.execute("SELECT path, size, mtime_ns, inode FROM transcript_files")
            }
        finally:
            db.close()
    except sqlite3.Error:
        return False  # the full import will say what is wrong
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if known.get(path) != (st.st_size, st.st_mtime_ns, st.st_ino):
            return False
    return True
