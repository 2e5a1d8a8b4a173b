"""What every ``nightcrew backlog`` command shares: opening the project's
backlog, reading the feature ids people type, and writing a file whole.

Both ``backlog`` (looking) and ``backlog_edit`` (changing) import this module;
neither imports the other's helpers, so the two cannot form a cycle."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nightcrew.store.backlog import Backlog


@contextmanager
def open_backlog(*, create: bool = False) -> Iterator[Backlog]:
    """The backlog of the project around the current directory."""
    from nightcrew.core.errors import BadInput
    from nightcrew.project import Project
    from nightcrew.store.backlog import Backlog

    project = Project.find(Path.cwd())
    if not create and not project.store_path.exists():
        raise BadInput(
            f"{project.root}: no backlog here yet (create one with `nightcrew backlog init"
            " SPEC.md`, `backlog import FILE` or `backlog add NAME`)"
        )
    store = project.open_store()
    try:
        yield Backlog(store)
    finally:
        store.close()


def parse_ids(values: tuple[str, ...]) -> list[int]:
    """Feature ids as people write them: ``7``, ``#7``, or ``3,4``."""
    from nightcrew.core.errors import BadInput

    ids: list[int] = []
    for value in values:
        for part in value.split(","):
            text = part.strip().removeprefix("#")
            if not text.isdigit():
                raise BadInput(f"{part.strip()!r} is not a feature id (ids look like 7 or #7)")
            ids.append(int(text))
    return ids


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a crash leaves the old file or the new one."""
    from nightcrew.core.errors import BadInput

    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise BadInput(f"{path}: cannot write: {exc.strerror or exc}") from exc
