"""Importing a file's features and removing features: the compare-and-create of
``backlog import`` (by key: new, unchanged, changed) and ``backlog rm``, each one
write transaction. Part of :class:`nightcrew.store.backlog.Backlog`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from nightcrew.core.errors import BadInput
from nightcrew.core.states import ItemState
from nightcrew.store.backlog_create import CreatingFeatures
from nightcrew.store.db import utcnow
from nightcrew.work.backlog import Created, Feature, FeatureSpec


@dataclass(frozen=True)
class Imported:
    """What an import did, by the ids of the backlog's features."""

    created: Created
    unchanged: tuple[int, ...]
    updated: tuple[int, ...]  # changed in the file, taken over (--update)
    differing: tuple[int, ...]  # changed in the file, left as they are (no --update)
    started: tuple[int, ...]  # changed in the file, but already worked on: left alone


def _differs(spec: FeatureSpec, feature: Feature) -> bool:
    """Whether a file's feature says something else than the stored one with its key."""
    return (
        spec.name.strip(),
        spec.category.strip(),
        spec.description,
        spec.steps,
        spec.acceptance,
        spec.manual,
        spec.files,
    ) != (
        feature.name,
        feature.category,
        feature.description,
        feature.steps,
        feature.acceptance,
        feature.manual,
        feature.files,
    )


def _labels(ids: Sequence[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


class ImportingFeatures(CreatingFeatures):
    """The importing and removing half of the backlog store (mixed into ``Backlog``)."""

    def features(self) -> list[Feature]:
        raise NotImplementedError

    def require(self, ids: Sequence[int]) -> list[Feature]:
        raise NotImplementedError

    def _started(self, db: sqlite3.Connection, feature: Feature) -> bool:
        """Whether a build (or an agent) has worked on it: its history must stay."""
        if feature.attempts or feature.state == ItemState.IN_PROGRESS:
            return True
        row = db.execute(
            "SELECT 1 FROM work_items WHERE feature_id = ?"
            " UNION ALL SELECT 1 FROM feature_failures WHERE feature_id = ?",
            (feature.id, feature.id),
        )
        return row.fetchone() is not None

    def import_specs(
        self, specs: Sequence[FeatureSpec], *, source: str, update: bool = False
    ) -> Imported:
        """Add a file's features, all or none (:class:`SpecsRejected`), in one
        transaction. A spec whose key is stored is the same feature: unchanged, or
        changed; with ``update`` a changed one takes the file's text when it has
        not started (pending, never attempted)."""
        with self._write() as db:
            stored = {f.source_key or f"#{f.id}": f for f in self.features()}
            new = [s for s in specs if s.source_key not in stored]
            unchanged: list[int] = []
            changed: list[tuple[FeatureSpec, Feature]] = []
            for spec in specs:
                feature = stored.get(spec.source_key or "")
                if feature is None:
                    continue
                if _differs(spec, feature):
                    changed.append((spec, feature))
                else:
                    unchanged.append(feature.id)
            created = self._create(db, new, source=source, all_or_nothing=True)
            updated: list[int] = []
            started: list[int] = []
            for spec, feature in changed if update else ():
                if feature.state != ItemState.PENDING or self._started(db, feature):
                    started.append(feature.id)
                    continue
                db.execute(
                    "UPDATE features SET name = ?, category = ?, description = ?,"
                    " steps_json = ?, acceptance_json = ?, manual = ?, files_json = ?,"
                    " updated_at = ?, version = version + 1 WHERE id = ?",
                    (
                        spec.name.strip(),
                        spec.category.strip(),
                        spec.description,
                        json.dumps(list(spec.steps)),
                        json.dumps(list(spec.acceptance)),
                        int(spec.manual),
                        json.dumps(list(spec.files)),
                        utcnow(),
                        feature.id,
                    ),
                )
                updated.append(feature.id)
        return Imported(
            created=created,
            unchanged=tuple(unchanged),
            updated=tuple(updated),
            differing=() if update else tuple(f.id for _, f in changed),
            started=tuple(started),
        )

    def remove(self, ids: Sequence[int], *, cascade: bool = False) -> list[Feature]:
        """Remove features that were never worked on, with their dependency rows
        and claims, in one transaction. Refused (nothing removed) when another
        feature depends on one of them (unless ``cascade``: the dependents go too)
        or when one of them has started. Their ids are never given again."""
        with self._write() as db:
            self.require(ids)
            by_id = {f.id: f for f in self.features()}
            dependents: dict[int, list[int]] = {}
            for f in by_id.values():
                for dep in f.depends_on:
                    dependents.setdefault(dep, []).append(f.id)
            doomed = list(dict.fromkeys(ids))
            if cascade:
                for fid in doomed:  # grows as it goes: the dependents' dependents too
                    doomed.extend(d for d in dependents.get(fid, ()) if d not in doomed)
            else:
                for fid in doomed:
                    kept = sorted(d for d in dependents.get(fid, ()) if d not in doomed)
                    if kept:
                        raise BadInput(
                            f"feature #{fid} is needed by {_labels(kept)}: remove them too"
                            " (--cascade), or change what they depend on first"
                        )
            started = sorted(fid for fid in doomed if self._started(db, by_id[fid]))
            if started:
                one = len(started) == 1
                raise BadInput(
                    f"{_labels(started)} {'has' if one else 'have'} been worked on:"
                    f" {'its' if one else 'their'} attempts stay on record (skip instead of rm)"
                )
            marks = ",".join("?" * len(doomed))
            db.execute(
                f"DELETE FROM feature_deps WHERE feature_id IN ({marks})"
                f" OR depends_on IN ({marks})",
                (*doomed, *doomed),
            )
            db.execute(f"DELETE FROM feature_claims WHERE feature_id IN ({marks})", doomed)
            db.execute(f"DELETE FROM features WHERE id IN ({marks})", doomed)
        return [by_id[fid] for fid in doomed]
