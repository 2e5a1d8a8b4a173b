"""The projects the dashboard may show: those in the global registry, named
in URLs by a short key (:func:`~nightcrew.views.project_overview.project_key`),
never by a path, so no request can point the server at a directory of its
choosing. The registry is read again on each request: a project whose first
run starts while the dashboard is open appears without a restart."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from nightcrew.project import Project
from nightcrew.store.records import Store
from nightcrew.usage.globaldb import open_global, registered_projects
from nightcrew.views.project_overview import ProjectSpend, project_key
from nightcrew.views.read_cache import ReadCache
from nightcrew.views.spend_cache import SpendCache
from nightcrew.views.timeline import LaneThought, lane_thoughts

T = TypeVar("T")

# Each project's settled spend, summed once for every page and stream of this server.
SPEND = SpendCache()
# The heavier pages' reads (estimate, board, graph, charts, exports), kept while the store's
# marks say nothing they read has changed.
READS = ReadCache()


def known_roots() -> list[Path]:
    """Every registered project's root, in the registry's order (by path)."""
    db = open_global()
    try:
        return [entry.root for entry in registered_projects(db)]
    finally:
        db.close()


def find_root(key: str) -> Path | None:
    """The registered project named ``key`` in URLs, or None."""
    return next((root for root in known_roots() if project_key(root) == key), None)


def has_store(root: Path) -> bool:
    return Project(root).store_path.is_file()


def store_of(root: Path) -> Store:
    """The project's store, opened as ``nightcrew status`` opens it (never
    created); the caller closes it."""
    return Store.open(Project(root).store_path, create=False)


@contextmanager
def open_store(root: Path) -> Iterator[Store]:
    store = store_of(root)
    try:
        yield store
    finally:
        store.close()


def evidence_dir(root: Path) -> Path:
    """Where runs keep their evidence (gate logs, prompts): the only files served."""
    return Project(root).dir / "runs"


def spend_of(root: Path, store: Store) -> ProjectSpend:
    """The project's spend today, in total and per day (kept between renders)."""
    return SPEND.spend(store, root)


def kept(
    root: Path,
    store: Store,
    name: str,
    compute: Callable[[Store], T],
    *,
    args: Hashable = (),
    usage: bool = False,
    run_id: str | None = None,
    events: bool = False,
    keep_if: Callable[[T], bool] | None = None,
) -> T:
    """``compute(store)``, kept between requests (``views/read_cache.py``)."""
    return READS.get(
        store,
        root,
        name,
        compute,
        args=args,
        usage=usage,
        run_id=run_id,
        events=events,
        keep_if=keep_if,
    )


def thoughts_of(root: Path, store: Store, run_id: str) -> tuple[LaneThought, ...]:
    """Which lanes of the run are thinking (``views/timeline.lane_thoughts``),
    kept until the run has a newer event."""
    return kept(
        root, store, "thoughts", lambda s: tuple(lane_thoughts(s, run_id)), args=run_id,
        run_id=run_id,
    )  # fmt: skip
