"""Where a project's nightcrew files live: ``<repo>/.nightcrew/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nightcrew import gitops
from nightcrew.core.errors import BadInput
from nightcrew.statedir import make_state_dir
from nightcrew.store.records import Store


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
            make_state_dir(self.dir)
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
