"""The backlog's reads and writes, safe for several processes at once.

``nightcrew build``, the ``nightcrew mcp`` servers that agents and people start,
and ``nightcrew backlog`` commands may all write the same backlog. So every
write is one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock, waited for
up to ``busy_timeout``) that reads what it checks and changes it under the same
lock, and state changes are guarded updates (``… WHERE state = ?``): no lost
update, no "database is locked", no feature claimed twice.

Every state change follows the work-item transition table and lands in
``state_history`` (entity ``feature``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from nightcrew.core.errors import BadInput
from nightcrew.core.states import ItemState, check
from nightcrew.store.backlog_import import ImportingFeatures
from nightcrew.store.db import utcnow
from nightcrew.store.records import Store
from nightcrew.work.backlog import MAX_DEPENDENCIES, Feature, FeatureSpec, Outline, spec_problem
from nightcrew.work.backlog_graph import find_cycle, ready

_EDITABLE = frozenset(
    {"name", "category", "description", "steps", "acceptance", "manual", "files", "priority"}
)
_JSON_FIELDS = {"steps": "steps_json", "acceptance": "acceptance_json", "files": "files_json"}


_STATES = {state.value: state for state in ItemState}


class UnknownFeature(BadInput):
    pass


def _dollars(text: str | float | None) -> float | None:
    """A stored cost (decimal text) as a JSON number, rounded to a billionth of
    a dollar: that drops a float sum's noise (0.30000000000000004, as Claude
    Code reports some totals) and nothing a price holds. Unknown stays None."""
    return None if text is None else round(float(text), 9)


def _strings(text: str) -> tuple[str, ...]:
    """A stored JSON list; most are empty, and a whole backlog is read at once."""
    return () if text == "[]" else tuple(json.loads(text))


def _feature(row: sqlite3.Row, deps: Sequence[int]) -> Feature:
    """The feature a row holds. Built without the frozen dataclass's
    ``__init__``, which costs one ``object.__setattr__`` per field (16 µs a
    feature, a third of a second for a 20,000-feature ``backlog list``); the
    attributes are exactly the fields ``__init__`` would set, and a field this
    leaves out keeps its class-level default."""
    feature: Feature = object.__new__(Feature)
    feature.__dict__.update(
        id=row["id"],
        name=row["name"],
        category=row["category"],
        description=row["description"],
        steps=_strings(row["steps_json"]),
        acceptance=_strings(row["acceptance_json"]),
        manual=bool(row["manual"]),
        files=_strings(row["files_json"]),
        priority=row["priority"],
        position=row["position"],
        state=_STATES[row["state"]],
        depends_on=tuple(sorted(deps)),
        model=row["model"],
        attempts=row["attempts"],
        input_request=row["input_request"],
        input_answer=row["input_answer"],
        source_key=row["source_key"],
        claimed_by=row["claimed_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )
    return feature


class Backlog(ImportingFeatures):
    """The backlog of one project store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self.store.transaction() as db:
            yield db

    # ---- reads ---------------------------------------------------------------------

    def _deps(self) -> dict[int, list[int]]:
        deps: dict[int, list[int]] = {}
        for fid, on in self.db.execute("SELECT feature_id, depends_on FROM feature_deps"):
            deps.setdefault(fid, []).append(on)
        return deps

    def features(self) -> list[Feature]:
        """Every feature, in backlog order."""
        deps = self._deps()
        rows = self.db.execute("SELECT * FROM features ORDER BY position, id").fetchall()
        return [_feature(r, deps.get(r["id"], ())) for r in rows]

    def outlines(self) -> list[Outline]:
        """Every feature as ``backlog list`` shows it, in backlog order: one query,
        none of the texts and commands decoded."""
        deps = self._deps()
        rows = self.db.execute(
            "SELECT id, name, category, state, manual, attempts FROM features ORDER BY position, id"
        )
        rows.row_factory = None
        return [
            Outline(i, name, cat, _STATES[state], bool(manual), tuple(sorted(deps.get(i, ()))), n)
            for i, name, cat, state, manual, n in rows
        ]

    def feature(self, feature_id: int) -> Feature:
        row = self.db.execute("SELECT * FROM features WHERE id = ?", (feature_id,)).fetchone()
        if row is None:
            raise UnknownFeature(f"no feature #{feature_id} in the backlog")
        deps = [
            r[0]
            for r in self.db.execute(
                "SELECT depends_on FROM feature_deps WHERE feature_id = ?", (feature_id,)
            )
        ]
        return _feature(row, deps)

    def require(self, ids: Sequence[int]) -> list[Feature]:
        """The features ``ids``, or one error naming every unknown id."""
        found = {f.id: f for f in self.features()}
        missing = [i for i in ids if i not in found]
        if missing:
            listed = ", ".join(f"#{i}" for i in missing)
            raise UnknownFeature(f"no feature {listed} in the backlog")
        return [found[i] for i in ids]

    def ready(self) -> list[Feature]:
        """What ``build`` may pick, best first (see ``backlog_graph.ready``)."""
        return ready(self.features())

    # ---- changing ------------------------------------------------------------------

    def _set_state(
        self, db: sqlite3.Connection, feature: Feature, new: ItemState, reason: str, **fields: Any
    ) -> None:
        check(feature.state, new, what=f"feature #{feature.id}")
        sets = "".join(f", {k} = ?" for k in fields)
        cur = db.execute(
            f"UPDATE features SET state = ?, updated_at = ?, version = version + 1{sets}"
            " WHERE id = ? AND state = ?",
            (new, utcnow(), *fields.values(), feature.id, feature.state),
        )
        if cur.rowcount != 1:  # cannot happen under the write lock; refuse loudly if it does
            raise RuntimeError(f"feature #{feature.id} changed under the write lock")
        self.store.record_history("feature", feature.id, feature.state, new, reason)

    def edit(self, feature_id: int, **fields: Any) -> Feature:
        """Change a feature's fields. Giving a manual feature acceptance commands
        makes it automatic (build picks it), unless ``manual`` is given too."""
        unknown = set(fields) - _EDITABLE
        if unknown:
            raise TypeError(f"not editable: {sorted(unknown)}")
        with self._write() as db:
            old = self.feature(feature_id)
            if old.manual and fields.get("acceptance") and "manual" not in fields:
                fields["manual"] = False
            merged = {
                "name": old.name,
                "category": old.category,
                "description": old.description,
                "steps": old.steps,
                "acceptance": old.acceptance,
                "manual": old.manual,
                "files": old.files,
                "priority": old.priority,
                **fields,
            }
            problem = spec_problem(FeatureSpec(**merged))
            if problem is not None:
                raise BadInput(f"feature #{feature_id}: {problem}")
            values = {
                _JSON_FIELDS.get(k, k): json.dumps(list(v)) if k in _JSON_FIELDS else v
                for k, v in fields.items()
            }
            values = {k: int(v) if isinstance(v, bool) else v for k, v in values.items()}
            if values:
                sets = ", ".join(f"{k} = ?" for k in values)
                db.execute(
                    f"UPDATE features SET {sets}, updated_at = ?, version = version + 1"
                    " WHERE id = ?",
                    (*values.values(), utcnow(), feature_id),
                )
        return self.feature(feature_id)

    def set_dependencies(
        self, feature_id: int, depends_on: Sequence[int], *, add: bool = False
    ) -> Feature:
        """Replace (or with ``add``, extend) what a feature depends on; refuses
        unknown ids, itself, too many, and anything that closes a cycle."""
        with self._write():
            self.require([feature_id, *depends_on])
            edges = self._deps()
            new = sorted(set(depends_on) | (set(edges.get(feature_id, ())) if add else set()))
            if feature_id in new:
                raise BadInput(f"feature #{feature_id} cannot depend on itself")
            if len(new) > MAX_DEPENDENCIES:
                raise BadInput(
                    f"feature #{feature_id} would have {len(new)} dependencies;"
                    f" at most {MAX_DEPENDENCIES}"
                )
            edges[feature_id] = new
            cycle = find_cycle(edges)
            if cycle is not None:
                raise BadInput(
                    "that would make a dependency cycle: " + " → ".join(f"#{i}" for i in cycle)
                )
            self.db.execute("DELETE FROM feature_deps WHERE feature_id = ?", (feature_id,))
            self.db.executemany(
                "INSERT INTO feature_deps (feature_id, depends_on) VALUES (?, ?)",
                [(feature_id, d) for d in new],
            )
            self.db.execute(
                "UPDATE features SET updated_at = ?, version = version + 1 WHERE id = ?",
                (utcnow(), feature_id),
            )
        return self.feature(feature_id)

    def skip(self, ids: Sequence[int], *, reason: str) -> list[Feature]:
        """Skip features and move them behind every other one; a passed feature
        cannot be skipped. Returns the features that changed (already skipped: none)."""
        changed = []
        with self._write() as db:
            for feature in self.require(ids):
                if feature.state == ItemState.SKIPPED:
                    continue
                if feature.state == ItemState.PASSED:
                    raise BadInput(f"feature #{feature.id} has passed: nothing to skip")
                last = db.execute("SELECT max(position) FROM features").fetchone()[0]
                self._set_state(
                    db, feature, ItemState.SKIPPED, reason, position=last + 1, claimed_by=None
                )
                changed.append(feature.id)
        return [self.feature(i) for i in changed]

    def retry(self, ids: Sequence[int], *, model: str | None, reason: str) -> list[Feature]:
        """Put features back to pending (failed, skipped, passed or waiting for input);
        with ``model``, their next attempts use it."""
        with self._write() as db:
            for feature in self.require(ids):
                if feature.state == ItemState.IN_PROGRESS:
                    raise BadInput(f"feature #{feature.id} is in progress: wait for it")
                if feature.state != ItemState.PENDING:
                    self._set_state(db, feature, ItemState.PENDING, reason, claimed_by=None)
                if model is not None:
                    db.execute("UPDATE features SET model = ? WHERE id = ?", (model, feature.id))
        return self.require(ids)

    def reorder(
        self, feature_id: int, *, before: int | None = None, after: int | None = None
    ) -> Feature:
        """Move a feature just before another in the backlog, or just after one
        (the only way to the end of a column); it takes the other's priority,
        so the order holds wherever the schedule ties."""
        if (before is None) == (after is None):
            raise BadInput("reorder: say which feature it goes before or after (one of them)")
        other = before if before is not None else after
        assert other is not None
        with self._write() as db:
            moved, anchor = self.require([feature_id, other])
            if moved.id == anchor.id:
                where = "before" if before is not None else "after"
                raise BadInput(f"feature #{feature_id} cannot go {where} itself")
            position = anchor.position if before is not None else anchor.position + 1
            db.execute(
                "UPDATE features SET position = position + 1 WHERE position >= ?", (position,)
            )
            db.execute(
                "UPDATE features SET position = ?, priority = ?, updated_at = ?,"
                " version = version + 1 WHERE id = ?",
                (position, anchor.priority, utcnow(), moved.id),
            )
        return self.feature(feature_id)

    # ---- claims and the build loop -------------------------------------------------

    def claim(self, feature_id: int | None, *, by: str) -> Feature | None:
        """Atomically take a ready feature (``feature_id``, or the best ready one)
        into progress for ``by``; None if it is not ready (or nothing is)."""
        with self._write() as db:
            candidates = self.ready()
            if feature_id is not None:
                candidates = [f for f in candidates if f.id == feature_id]
            if not candidates:
                return None
            feature = candidates[0]
            self._set_state(db, feature, ItemState.IN_PROGRESS, f"claimed by {by}", claimed_by=by)
        return self.feature(feature.id)

    def count_attempt(self, feature_id: int) -> int:
        with self._write() as db:
            db.execute("UPDATE features SET attempts = attempts + 1 WHERE id = ?", (feature_id,))
        return self.feature(feature_id).attempts

    def release(self, feature_id: int, new: ItemState, *, by: str, reason: str) -> Feature:
        """End ``by``'s hold on a feature: passed, failed, skipped or back to pending."""
        with self._write() as db:
            feature = self.feature(feature_id)
            if feature.state != ItemState.IN_PROGRESS or feature.claimed_by != by:
                raise BadInput(f"feature #{feature_id} is not in progress for {by}")
            fields: dict[str, Any] = {"claimed_by": None}
            if new == ItemState.SKIPPED:
                fields["position"] = (
                    db.execute("SELECT max(position) FROM features").fetchone()[0] + 1
                )
            self._set_state(db, feature, new, reason, **fields)
        return self.feature(feature_id)

    def release_all(self, by: Sequence[str], *, reason: str) -> list[Feature]:
        """Put back to pending every feature held by one of ``by`` (dead runs)."""
        with self._write() as db:
            held = [
                f
                for f in self.features()
                if f.state == ItemState.IN_PROGRESS and f.claimed_by in by
            ]
            for feature in held:
                self._set_state(db, feature, ItemState.PENDING, reason, claimed_by=None)
        return held

    def claim_passing(
        self,
        feature_id: int,
        *,
        source: str,
        note: str | None = None,
        attempt_id: int | None = None,
    ) -> int:
        """Record that an agent (or a person through MCP) says a feature passes.
        Nothing changes state: the harness verifies the claim."""
        with self._write() as db:
            self.require([feature_id])
            cur = db.execute(
                "INSERT INTO feature_claims (feature_id, ts, source, attempt_id, note)"
                " VALUES (?,?,?,?,?)",
                (feature_id, utcnow(), source, attempt_id, note),
            )
        return int(cur.lastrowid or 0)

    def pass_by_person(self, feature_id: int, *, note: str) -> Feature:
        """A person checked a manual feature and says it works: it passes, with
        their note in its history, and any open claim is confirmed. Features with
        acceptance commands are checked by the harness, not by this."""
        if not note.strip():
            raise BadInput("say how you checked it (--note TEXT)")
        with self._write() as db:
            feature = self.feature(feature_id)
            if not feature.manual:
                raise BadInput(
                    f"feature #{feature_id} has acceptance commands: build checks it"
                    " (`backlog pass` is for manual features)"
                )
            if feature.state != ItemState.PENDING:
                raise BadInput(f"feature #{feature_id} is {feature.state}, not pending")
            self._set_state(db, feature, ItemState.IN_PROGRESS, "checked by a person")
            held = self.feature(feature_id)
            self._set_state(db, held, ItemState.PASSED, f"passed by a person: {note.strip()}")
            db.execute(
                "UPDATE feature_claims SET verdict = 'confirmed'"
                " WHERE feature_id = ? AND verdict IS NULL",
                (feature_id,),
            )
        return self.feature(feature_id)

    def open_claims(self, feature_id: int) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM feature_claims WHERE feature_id = ? AND verdict IS NULL ORDER BY id",
            (feature_id,),
        ).fetchall()

    def judge_claims(self, feature_id: int, *, confirmed: bool) -> int:
        with self._write() as db:
            cur = db.execute(
                "UPDATE feature_claims SET verdict = ? WHERE feature_id = ? AND verdict IS NULL",
                ("confirmed" if confirmed else "refuted", feature_id),
            )
        return cur.rowcount

    def request_input(self, feature_id: int, prompt: str) -> Feature:
        """The agent needs a person: the feature waits in ``needs_input``."""
        if not prompt.strip():
            raise BadInput("say what you need from a person")
        with self._write() as db:
            feature = self.feature(feature_id)
            if feature.state != ItemState.IN_PROGRESS:
                raise BadInput(
                    f"feature #{feature_id} is {feature.state}: only a feature in progress"
                    " can ask for input"
                )
            self._set_state(
                db,
                feature,
                ItemState.NEEDS_INPUT,
                "asked a person",
                input_request=prompt.strip(),
                claimed_by=None,
            )
        return self.feature(feature_id)

    def answer(self, feature_id: int, text: str) -> Feature:
        if not text.strip():
            raise BadInput("the answer is empty")
        with self._write() as db:
            feature = self.feature(feature_id)
            if feature.state != ItemState.NEEDS_INPUT:
                raise BadInput(f"feature #{feature_id} is {feature.state}: it asked nothing")
            self._set_state(db, feature, ItemState.PENDING, "answered", input_answer=text.strip())
        return self.feature(feature_id)

    # ---- failure records -----------------------------------------------------------

    def record_failure(
        self,
        feature_id: int,
        *,
        run_id: str | None,
        reason: str,
        attempts: Sequence[Mapping[str, Any]],
        cost_usd: str | None,
        last_text: str | None,
    ) -> int:
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO feature_failures (feature_id, run_id, ts, reason, attempts_json,"
                " cost_usd, last_text) VALUES (?,?,?,?,?,?,?)",
                (
                    feature_id,
                    run_id,
                    utcnow(),
                    reason,
                    json.dumps(list(attempts)),
                    cost_usd,
                    last_text,
                ),
            )
        return int(cur.lastrowid or 0)

    def failures(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT f.*, x.name FROM feature_failures f JOIN features x ON x.id = f.feature_id"
            " ORDER BY f.id"
        ).fetchall()
        return [
            {
                "id": r["id"],
                "feature_id": r["feature_id"],
                "name": r["name"],
                "run_id": r["run_id"],
                "ts": r["ts"],
                "reason": r["reason"],
                "attempts": [
                    {**a, "cost_usd": _dollars(a["cost_usd"])} if "cost_usd" in a else a
                    for a in json.loads(r["attempts_json"])
                ],
                "cost_usd": _dollars(r["cost_usd"]),
                "last_text": r["last_text"],
            }
            for r in rows
        ]
