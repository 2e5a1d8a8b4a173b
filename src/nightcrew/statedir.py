"""Creating nightcrew's own directories in a project, with one clear line when
the project cannot be written. Below the store and the project: imports
nothing of ours but the errors."""

from __future__ import annotations

from pathlib import Path

from nightcrew.core.errors import BadInput


def make_state_dir(directory: Path) -> None:
    """Create ``directory`` (``.nightcrew/`` or a folder in it) if it is missing.
    A project nightcrew cannot write to is the user's to fix, so it is one line
    (exit 2), not a traceback."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise state_dir_error(directory, exc) from exc


def state_dir_error(directory: Path, exc: OSError) -> BadInput:
    """``cannot write .nightcrew/ in <root>: permission denied``."""
    if isinstance(exc, FileExistsError | NotADirectoryError):
        why = f"{Path(exc.filename or directory).name} is a file, not a directory"
    else:
        why = (exc.strerror or str(exc)).lower()
    return BadInput(f"cannot write {directory.name}/ in {directory.parent}: {why}")
