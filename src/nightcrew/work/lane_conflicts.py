"""Which ready feature may start in a free lane, and why the others wait.

``nightcrew build --parallel N`` runs features side by side, each in its own
worktree, and merges the passed ones one at a time. Two features that change
the same files would meet as a merge conflict after both were paid for, so a
feature waits while a running one:

- is one of its dependencies (``backlog_graph.ready`` already leaves out a
  feature whose dependencies have not passed; a dependency that passed in its
  lane but is not merged yet is still running here);
- names the same files (:func:`~nightcrew.work.path_mentions.named_files` of
  both texts, and their ``files`` hints), or is changing files it names;
- touched, in earlier attempts, files the other names, is changing or touched.

A directory overlaps every path under it (``src/cart/`` and
``src/cart/total.py``), and paths compare without regard to case. The person
is told why, in one sentence naming one running feature and at most three
files: ``#7 waits: shares src/cart.py with #5``.

Pure values and functions: the engine gathers the facts (the store's
``touched_files``, a lane's changed files) and emits ``ItemWaits`` for the
reasons :class:`WaitNotices` says are new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from nightcrew.core.events import ItemWaits
from nightcrew.work.backlog import Feature
from nightcrew.work.path_mentions import clean_path, named_files

__all__ = [
    "Candidate",
    "Pick",
    "Running",
    "Wait",
    "WaitNotices",
    "feature_files",
    "fill",
    "named_files",
    "pick",
]

MAX_NAMED = 3  # files named in a reason before "and N more"


def feature_files(feature: Feature) -> frozenset[str]:
    """What a feature names: its ``files`` hints and the paths in its name,
    description, steps and acceptance commands."""
    hints = (clean_path(p) for p in feature.files)
    texts = named_files(
        feature.name, feature.description, *feature.steps, commands=feature.acceptance
    )
    return texts | {p for p in hints if p is not None}


def _paths(paths: Iterable[str]) -> frozenset[str]:
    return frozenset(p for p in map(clean_path, paths) if p is not None)


def _key(path: str) -> str:
    return path.rstrip("/").casefold()


class _Index:
    """Paths by their comparison key, and every directory above each of them,
    so that the overlap of two sets costs a lookup per path and level rather
    than a comparison per pair."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.exact: dict[str, str] = {}
        self.below: dict[str, list[str]] = {}  # a directory's key → paths under it
        for path in sorted(paths):
            key = _key(path)
            self.exact.setdefault(key, path)
            parts = key.split("/")
            for depth in range(1, len(parts)):
                self.below.setdefault("/".join(parts[:depth]), []).append(path)

    def shared(self, other: _Index) -> set[str]:
        """The paths where the two sets overlap, each as the narrower of the
        two (a file under a directory is named, not the directory); the same
        path in both is named as this set writes it."""
        found: set[str] = set()
        for key, path in other.exact.items():
            if key in self.exact:
                found.add(self.exact[key])
            found.update(self.below.get(key, ()))  # theirs is a directory over some of mine
            parts = key.split("/")
            if any("/".join(parts[:depth]) in self.exact for depth in range(1, len(parts))):
                found.add(path)  # mine is a directory over theirs
        return found


@dataclass(frozen=True)
class Candidate:
    """A ready feature, as conflicts see it: what its text names, what its
    earlier attempts touched (the store's ``touched_files``), and the
    features it depends on."""

    feature_id: int
    label: str  # "#7"
    named: frozenset[str] = frozenset()
    touched: frozenset[str] = frozenset()
    depends_on: frozenset[int] = frozenset()

    @classmethod
    def of(cls, feature: Feature, touched: Iterable[str] = ()) -> Candidate:
        return cls(
            feature.id,
            feature.label,
            feature_files(feature),
            _paths(touched),
            frozenset(feature.depends_on),
        )

    @cached_property
    def named_index(self) -> _Index:
        return _Index(self.named)

    @cached_property
    def touched_index(self) -> _Index:
        return _Index(self.touched)


@dataclass(frozen=True)
class Running(Candidate):
    """A feature in a lane, with the files its current work has changed so
    far, when the lane knows them (``gitops.changed_files`` of its worktree)."""

    changing: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, feature: Feature, touched: Iterable[str] = (), changing: Iterable[str] = ()
    ) -> Running:
        return cls(
            feature.id,
            feature.label,
            feature_files(feature),
            _paths(touched),
            frozenset(feature.depends_on),
            _paths(changing),
        )

    @classmethod
    def started(cls, candidate: Candidate) -> Running:
        """A candidate just given a lane: nothing changed yet."""
        return cls(
            candidate.feature_id,
            candidate.label,
            candidate.named,
            candidate.touched,
            candidate.depends_on,
        )

    @cached_property
    def busy_index(self) -> _Index:
        """What it names or is changing: what "is changing" means in a reason."""
        return _Index(self.named | self.changing)

    @cached_property
    def changing_index(self) -> _Index:
        return _Index(self.changing)


@dataclass(frozen=True)
class Wait:
    """A ready feature that may not start yet, the running feature it waits
    for, the files they share (empty when it waits for a dependency) and why,
    as a clause (``shares src/cart.py with #5``)."""

    feature_id: int
    label: str
    other_id: int
    other: str
    why: str
    files: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """The sentence a person reads: ``#7 waits: shares src/cart.py with #5``."""
        return f"{self.label} waits: {self.why}"

    def event(self, run_id: str | None) -> ItemWaits:
        return ItemWaits(
            run_id=run_id,
            item=f"feature {self.label}",
            reason=self.why,
            other=self.other,
            files=self.files,
        )


@dataclass(frozen=True)
class Pick:
    """The first ready feature that conflicts with no running one (None: each
    does), and every ready feature that waits, in the order given."""

    chosen: Candidate | None
    waits: tuple[Wait, ...] = field(default=())


def _listed(files: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """The files as a person reads them (shortest, files before directories,
    at most :data:`MAX_NAMED` then "and N more"), and all of them in that order."""
    ordered = tuple(sorted(files, key=lambda p: (p.endswith("/"), len(p), p)))
    shown = list(ordered[:MAX_NAMED])
    if len(ordered) > MAX_NAMED:
        shown.append(f"{len(ordered) - MAX_NAMED} more")
    text = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return text, ordered


# The ways a candidate can collide with a running feature, most telling first:
# which of its own sets, which of the running one's, and the clause.
_Mine = Callable[[Candidate], _Index]
_Theirs = Callable[[Running], _Index]
_Clause = Callable[[str, str], str]
_RULES: tuple[tuple[_Mine, _Theirs, _Clause], ...] = (
    (
        lambda c: c.named_index,
        lambda r: r.named_index,
        lambda files, other: f"shares {files} with {other}",
    ),
    (
        lambda c: c.named_index,
        lambda r: r.changing_index,
        lambda files, other: f"names {files}, which {other} is changing",
    ),
    (
        lambda c: c.touched_index,
        lambda r: r.busy_index,
        lambda files, other: f"its earlier attempts touched {files}, which {other} is changing",
    ),
    (
        lambda c: c.named_index,
        lambda r: r.touched_index,
        lambda files, other: f"names {files}, which {other}'s earlier attempts touched",
    ),
    (
        lambda c: c.touched_index,
        lambda r: r.touched_index,
        lambda files, other: f"its earlier attempts touched {files}, as did {other}'s",
    ),
)


def _wait(candidate: Candidate, running: Sequence[Running]) -> Wait | None:
    """Why ``candidate`` may not start beside ``running``, or None. A running
    dependency comes first; then the most telling rule, and among running
    features the first one for that rule."""
    for lane in running:
        if lane.feature_id in candidate.depends_on:
            why = f"depends on {lane.label}, which is not merged yet"
            return Wait(candidate.feature_id, candidate.label, lane.feature_id, lane.label, why)
    for mine, theirs, clause in _RULES:
        for lane in running:
            shared = mine(candidate).shared(theirs(lane))
            if shared:
                text, files = _listed(shared)
                why = clause(text, lane.label)
                return Wait(
                    candidate.feature_id, candidate.label, lane.feature_id, lane.label, why, files
                )
    return None


def pick(ready: Sequence[Candidate], running: Sequence[Running]) -> Pick:
    """The first of ``ready`` (best first, as ``backlog_graph.ready`` ranks
    them) that may start beside ``running``. ``waits`` holds every ready
    feature that may not, ahead of the chosen one or behind it, so a caller
    sees the whole picture after each decision."""
    chosen: Candidate | None = None
    waits: list[Wait] = []
    for candidate in ready:
        wait = _wait(candidate, running)
        if wait is not None:
            waits.append(wait)
        elif chosen is None:
            chosen = candidate
    return Pick(chosen, tuple(waits))


def fill(
    ready: Sequence[Candidate], running: Sequence[Running], lanes: int
) -> tuple[list[Candidate], tuple[Wait, ...]]:
    """Up to ``lanes`` features to start now, each picked beside the running
    ones and those chosen before it, and what waits once they all run."""
    chosen: list[Candidate] = []
    busy = list(running)
    left = list(ready)
    while len(chosen) < lanes:
        choice = pick(left, busy).chosen
        if choice is None:
            break
        chosen.append(choice)
        busy.append(Running.started(choice))
        left.remove(choice)
    return chosen, pick(left, busy).waits


class WaitNotices:
    """What has been told about each waiting feature, so a build tells a wait
    once and again only when its reason changes, not on every poll.

    Give :meth:`news` every wait of one decision (a :func:`pick` or
    :func:`fill`): a feature missing from it no longer waits, and a later wait
    of it is told afresh."""

    def __init__(self) -> None:
        self._told: dict[int, str] = {}

    def news(self, waits: Iterable[Wait]) -> list[Wait]:
        """The waits not told yet, or told with another reason."""
        current = {w.feature_id: w for w in waits}
        fresh = [w for fid, w in current.items() if self._told.get(fid) != w.why]
        self._told = {fid: w.why for fid, w in current.items()}
        return fresh

    def forget(self, feature_id: int) -> None:
        """The feature started (or left the backlog): its next wait is news."""
        self._told.pop(feature_id, None)
