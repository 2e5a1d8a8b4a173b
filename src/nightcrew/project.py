"""Where a project's nightcrew files live: ``<repo>/.nightcrew/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nightcrew import gitops
from nightcrew.errors import BadInput
from nightcrew.store.records import Store


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


@dataclass(frozen=True)
class Project:
    root: Path

    @classmethod
    def find(cls, start: Path) -> Project:
        start = start.resolve()
        if not gitops.is_repo(start):
            raise BadInput(
                f"{start}: not inside a git repository (nightcrew commits each batch;"
                " run `git init` first)"
            )
        return cls(gitops.repo_root(start))

    @property
    def dir(self) -> Path:
        return self.root / ".nightcrew"

    @property
    def store_path(self) -> Path:
        return self.dir / "nightcrew.db"

    @property
    def lock_path(self) -> Path:
        return self.dir / "run.lock"

    def make_dir(self) -> Path:
        """``.nightcrew/``, created if need be and kept out of git first, so that
        whichever command comes first in a repository (``run``, ``backlog import``,
        ``add``, ``nightcrew mcp`` …), ``git status`` never shows it."""
        if not self.dir.is_dir():
            gitops.ensure_excluded(self.root)
            self.dir.mkdir(parents=True, exist_ok=True)
        return self.dir

    def open_store(self) -> Store:
        """The project's store, created (with :meth:`make_dir`) if it is not there."""
        self.make_dir()
        return Store.open(self.store_path)

    def run_dir(self, run_id: str) -> Path:
        return self.dir / "runs" / run_id

    def relative(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path.resolve())
