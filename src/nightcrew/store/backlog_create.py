"""Creating backlog features in bulk: the checks on what is created (each spec on
its own, its dependencies by id, index or key, and cycles), with every refusal
reported rather than dropped. Part of :class:`nightcrew.store.backlog.Backlog`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager

from nightcrew.core.errors import BadInput
from nightcrew.core.states import ItemState
from nightcrew.store.db import utcnow
from nightcrew.store.records import Store
from nightcrew.work.backlog import Created, FeatureSpec, Rejected, spec_problem
from nightcrew.work.backlog_graph import find_cycle


class SpecsRejected(BadInput):
    """An all-or-nothing create refused some specs, so it created none."""

    def __init__(self, rejected: tuple[Rejected, ...], total: int) -> None:
        first = rejected[0]
        super().__init__(
            f"feature {first.index + 1} ({first.name or 'no name'}): {first.reason};"
            f" nothing imported ({len(rejected)} of {total} rejected)"
        )
        self.rejected = rejected


def used_ids(db: sqlite3.Connection) -> set[int]:
    """Every id a feature has had here: the stored ones and, from their history,
    removed ones, which are never given again (their history would mix)."""
    ids = {r[0] for r in db.execute("SELECT id FROM features")}
    ids.update(
        int(r[0])
        for r in db.execute("SELECT DISTINCT entity_id FROM state_history WHERE entity = 'feature'")
    )
    return ids


def _new_ids(db: sqlite3.Connection, specs: Sequence[FeatureSpec]) -> list[int]:
    """An id per spec: the one it asks for (an export's), when no feature has ever
    had it and no earlier spec of the batch takes it; otherwise the next never used."""
    used = used_ids(db)
    kept: dict[int, int] = {}
    for index, spec in enumerate(specs):
        if spec.wanted_id is not None and spec.wanted_id > 0 and spec.wanted_id not in used:
            kept[index] = spec.wanted_id
            used.add(spec.wanted_id)
    following = max(used, default=0) + 1
    ids = []
    for index in range(len(specs)):
        if index in kept:
            ids.append(kept[index])
        else:
            ids.append(following)
            following += 1
    return ids


class CreatingFeatures:
    """The creating half of the backlog store (mixed into ``Backlog``)."""

    store: Store
    db: sqlite3.Connection

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _deps(self) -> dict[int, list[int]]:
        raise NotImplementedError

    def create(
        self, specs: Sequence[FeatureSpec], *, source: str, all_or_nothing: bool = False
    ) -> Created:
        """Create ``specs`` in one transaction; a spec that is invalid, names a
        dependency that does not exist (or was itself rejected), or would close a
        cycle is rejected with its reason, and the others are created. With
        ``all_or_nothing`` (a file import), any rejection raises
        :class:`SpecsRejected` and nothing is created."""
        with self._write() as db:
            return self._create(db, specs, source=source, all_or_nothing=all_or_nothing)

    def _create(
        self,
        db: sqlite3.Connection,
        specs: Sequence[FeatureSpec],
        *,
        source: str,
        all_or_nothing: bool,
    ) -> Created:
        """``create`` inside the caller's write transaction."""
        existing = self._deps()
        stored = {r[0]: r[1] for r in db.execute("SELECT id, source_key FROM features")}
        by_key = {key: fid for fid, key in stored.items() if key is not None}
        position = db.execute("SELECT coalesce(max(position), 0) FROM features").fetchone()[0]
        ids: list[int | None] = []
        rejected: list[Rejected] = []
        planned: list[tuple[int, FeatureSpec, list[int]]] = []
        # Keys of this batch resolve to the features it creates, once created; a
        # key may point forward, so ids are assigned first and edges checked after.
        new_ids = _new_ids(db, specs)
        batch_keys: dict[str, int] = {}
        duplicate: set[int] = set()
        for index, spec in enumerate(specs):
            if spec.source_key is not None and spec.source_key not in by_key:
                if spec.source_key in batch_keys:
                    duplicate.add(index)
                batch_keys.setdefault(spec.source_key, new_ids[index])
        for index, spec in enumerate(specs):
            fid = new_ids[index]
            problem = spec_problem(spec) or self._dep_problem(
                spec,
                index,
                ids_so_far=ids,
                stored=stored,
                by_key=by_key,
                batch_keys=batch_keys,
            )
            if problem is None and spec.source_key is not None and spec.source_key in by_key:
                problem = f"a feature with key {spec.source_key!r} is already in the backlog"
            if problem is None and index in duplicate:
                problem = f"key {spec.source_key!r} is used by an earlier feature of the batch"
            if problem is not None:
                rejected.append(Rejected(index, spec.name.strip(), problem))
                ids.append(None)
                continue
            deps = self._resolve(spec, ids, by_key, batch_keys)
            planned.append((fid, spec, deps))
            ids.append(fid)
        index_of = {fid: index for index, fid in enumerate(new_ids)}
        planned = self._without_cycles(planned, ids, rejected, existing, index_of=index_of)
        if all_or_nothing and rejected:
            raise SpecsRejected(tuple(rejected), len(specs))
        for fid, spec, _ in planned:
            position += 1
            self._insert(db, fid, spec, position, source)
        # After every feature exists: a dependency may name a later one of the batch.
        db.executemany(
            "INSERT INTO feature_deps (feature_id, depends_on) VALUES (?, ?)",
            [(fid, d) for fid, _, deps in planned for d in deps],
        )
        return Created(tuple(ids), tuple(rejected))

    def _dep_problem(
        self,
        spec: FeatureSpec,
        index: int,
        *,
        ids_so_far: Sequence[int | None],
        stored: Mapping[int, str | None],
        by_key: Mapping[str, int],
        batch_keys: Mapping[str, int],
    ) -> str | None:
        for dep in spec.depends_on:
            if dep not in stored:
                return f"depends on #{dep}, which is not in the backlog"
        for dep_index in spec.depends_on_indices:
            if not 0 <= dep_index < index:
                return f"depends on index {dep_index}: only earlier features of the batch count"
            if ids_so_far[dep_index] is None:
                return f"depends on index {dep_index}, which was rejected"
        for key in spec.depends_on_keys:
            if key not in by_key and key not in batch_keys:
                return f"depends on {key!r}, which is neither in the backlog nor in this file"
            if key == spec.source_key:
                return "depends on itself"
        return None

    def _resolve(
        self,
        spec: FeatureSpec,
        ids: Sequence[int | None],
        by_key: Mapping[str, int],
        batch_keys: Mapping[str, int],
    ) -> list[int]:
        deps = set(spec.depends_on)
        deps.update(i for i in (ids[k] for k in spec.depends_on_indices) if i is not None)
        deps.update(by_key.get(k) or batch_keys[k] for k in spec.depends_on_keys)
        return sorted(deps)

    def _without_cycles(
        self,
        planned: list[tuple[int, FeatureSpec, list[int]]],
        ids: list[int | None],
        rejected: list[Rejected],
        existing: Mapping[int, Sequence[int]],
        *,
        index_of: Mapping[int, int],
    ) -> list[tuple[int, FeatureSpec, list[int]]]:
        """``planned`` minus the specs that depend on a rejected spec of the batch,
        and minus one new spec of each dependency cycle, each rejected with why.
        ``index_of`` maps the id planned for each spec to its index in the batch."""

        def label(fid: int) -> str:
            return f"index {index_of[fid]}" if fid in index_of else f"#{fid}"

        def reject(fid: int, spec: FeatureSpec, reason: str) -> None:
            rejected.append(Rejected(index_of[fid], spec.name.strip(), reason))
            ids[index_of[fid]] = None

        while True:
            alive = (
                {fid for fid, _, _ in planned}
                | set(existing)
                | {r[0] for r in self.db.execute("SELECT id FROM features")}
            )
            orphan = next(((f, s, d) for f, s, d in planned if not set(d) <= alive), None)
            if orphan is not None:
                fid, spec, deps = orphan
                gone = ", ".join(label(d) for d in deps if d not in alive)
                reject(fid, spec, f"depends on {gone}, which was rejected")
                planned = [p for p in planned if p[0] != fid]
                continue
            edges: dict[int, Sequence[int]] = dict(existing)
            edges.update((fid, deps) for fid, _, deps in planned)
            cycle = find_cycle(edges)
            if cycle is None:
                rejected.sort(key=lambda r: r.index)
                return planned
            # a cycle always holds a new spec (the old graph had none): reject the last
            fid = max((f for f in cycle if f in index_of), key=index_of.__getitem__)
            spec = next(s for f, s, _ in planned if f == fid)
            reject(fid, spec, "would close a dependency cycle: " + " → ".join(map(label, cycle)))
            planned = [p for p in planned if p[0] != fid]

    def _insert(
        self,
        db: sqlite3.Connection,
        fid: int,
        spec: FeatureSpec,
        position: int,
        source: str,
    ) -> None:
        now = utcnow()
        state = spec.state or ItemState.PENDING  # a file's "passes" is a claim: see below
        priority = spec.priority if spec.priority is not None else 0
        db.execute(
            "INSERT INTO features (id, category, name, description, steps_json, acceptance_json,"
            " manual, files_json, priority, position, state, source_key, model, created_at,"
            " updated_at, input_request) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                fid,
                spec.category.strip(),
                spec.name.strip(),
                spec.description,
                json.dumps(list(spec.steps)),
                json.dumps(list(spec.acceptance)),
                int(spec.manual),
                json.dumps(list(spec.files)),
                priority,
                position,
                state,
                spec.source_key or f"#{fid}",  # every feature has a key, for re-import
                spec.model,
                now,
                now,
                spec.input_request,
            ),
        )
        self.store.record_history("feature", fid, None, state, f"created ({source})")
        if spec.passes:
            # A file's word is a claim like an agent's: build verifies it by running
            # the acceptance commands; a manual feature waits for `backlog pass`.
            db.execute(
                "INSERT INTO feature_claims (feature_id, ts, source, note) VALUES (?,?,?,?)",
                (fid, now, source, "marked passing in the imported file"),
            )
