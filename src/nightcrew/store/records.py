"""Typed reads and writes of runs, work items, attempts, usage, gates and events.

Every state change goes through :func:`nightcrew.core.states.check` and is
appended to ``state_history``; the current state is copied onto the row.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nightcrew.core.states import AttemptState, ItemState, RunState, State, check
from nightcrew.core.usage import TokenCounts
from nightcrew.store.db import connect, utcnow
from nightcrew.store.rows import (
    AttemptRow,
    GateRow,
    ItemRow,
    RunRow,
    Totals,
    dec_text,
)

if TYPE_CHECKING:
    from nightcrew.core.events import Event

__all__ = ["AttemptRow", "GateRow", "ItemRow", "RunRow", "Store", "Totals"]


_ATTEMPT_FIELDS = frozenset(
    {
        "models_json",
        "session_id",
        "commit_sha",
        "exit_reason",
        "result_subtype",
        "is_error",
        "tool_calls",
        "tool_denials",
        "finished_at",
        "agent_seconds",
        "gate_seconds",
        "cost_usd",
        "cost_source",
        "agent_pid",
        "agent_create_time",
        "digest",
        "signature",
        "last_text",
    }
)


# Each attempt counts once: its final per-model totals when the agent reported
# them, else the responses seen while it streamed (as attempt_tokens).
_TOKENS_SQL = """
SELECT COALESCE(SUM(u.input_tokens), 0), COALESCE(SUM(u.output_tokens), 0),
       COALESCE(SUM(u.cache_read_tokens), 0), COALESCE(SUM(u.cache_write_5m_tokens), 0),
       COALESCE(SUM(u.cache_write_1h_tokens), 0)
FROM usage_records u
WHERE u.attempt_id IN (SELECT value FROM json_each(?))
  AND u.kind = CASE WHEN EXISTS (
        SELECT 1 FROM usage_records f WHERE f.attempt_id = u.attempt_id AND f.kind = 'final'
      ) THEN 'final' ELSE 'response' END
"""


class Store:
    """The project's state. Open with :meth:`open`; one instance per process."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        # Told each state change once it is committed (the run's bus, when one
        # is attached): the change and its state_history row are one transaction.
        self.publish: Callable[[Event], None] | None = None

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Store:
        return cls(connect(path, create=create))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- state changes ------------------------------------------------------

    def _history(
        self, entity: str, entity_id: object, old: State | None, new: State, reason: str | None
    ) -> None:
        self.record_history(entity, entity_id, old, new, reason)

    def _published(
        self,
        entity: Literal["run", "item", "attempt"],
        entity_id: object,
        old: State | None,
        new: State,
        reason: str | None,
        *,
        run_id: str,
        item_id: int | None = None,
        attempt_id: int | None = None,
    ) -> None:
        """Tell the bus about a committed state change."""
        if self.publish is None:
            return
        # Loaded once a bus listens: the events' 50-odd classes take ~50 ms to
        # define, which read-only commands (`usage`, `status`) never need.
        from nightcrew.core.events import StateChanged  # noqa: PLC0415

        self.publish(
            StateChanged(
                run_id=run_id,
                item_id=item_id,
                attempt_id=attempt_id,
                entity=entity,
                entity_id=str(entity_id),
                from_state=old and str(old),
                to_state=str(new),
                reason=reason,
            )
        )

    def record_history(
        self, entity: str, entity_id: object, old: State | None, new: State, reason: str | None
    ) -> None:
        """Append a state change to ``state_history`` (inside the caller's transaction)."""
        self.db.execute(
            "INSERT INTO state_history (ts, entity, entity_id, from_state, to_state, reason)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (utcnow(), entity, str(entity_id), old and str(old), str(new), reason),
        )

    # ---- runs ---------------------------------------------------------------

    def create_run(
        self,
        *,
        kind: str,
        source_path: str,
        source_sha256: str,
        config: dict[str, Any],
        prefix_sha256: str,
        pid: int,
    ) -> RunRow:
        run_id = utcnow()[:10].replace("-", "") + "-" + uuid.uuid4().hex[:8]
        with self.transaction():
            self.db.execute(
                "INSERT INTO runs (id, kind, source_path, source_sha256, config_json, state,"
                " started_at, prefix_sha256, orchestrator_pid) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    kind,
                    source_path,
                    source_sha256,
                    json.dumps(config, sort_keys=True),
                    RunState.PENDING,
                    utcnow(),
                    prefix_sha256,
                    pid,
                ),
            )
            self._history("run", run_id, None, RunState.PENDING, "created")
        return self.run(run_id)

    def run(self, run_id: str) -> RunRow:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(run_id)
        return RunRow.from_row(row)

    def latest_run(self, source_path: str | None = None) -> RunRow | None:
        if source_path is None:
            row = self.db.execute("SELECT * FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
        else:
            row = self.db.execute(
                "SELECT * FROM runs WHERE source_path = ? ORDER BY started_at DESC LIMIT 1",
                (source_path,),
            ).fetchone()
        return RunRow.from_row(row) if row else None

    def runs_in_state(self, state: RunState) -> list[RunRow]:
        rows = self.db.execute("SELECT * FROM runs WHERE state = ?", (state,)).fetchall()
        return [RunRow.from_row(r) for r in rows]

    def set_run_state(
        self, run_id: str, new: RunState, *, reason: str | None = None, **fields: Any
    ) -> None:
        allowed_fields = {"message", "orchestrator_pid", "source_sha256", "config_json"}
        unknown = set(fields) - allowed_fields
        if unknown:
            raise TypeError(f"unknown run fields: {sorted(unknown)}")
        with self.transaction():
            old = RunState(
                self.db.execute("SELECT state FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
            )
            check(old, new, what=f"run {run_id}")
            finished = utcnow() if new != RunState.RUNNING else None
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(
                f"UPDATE runs SET state = ?, finished_at = ?{', ' + sets if sets else ''}"
                " WHERE id = ?",
                (new, finished, *fields.values(), run_id),
            )
            self._history("run", run_id, old, new, reason)
        self._published("run", run_id, old, new, reason, run_id=run_id)

    # ---- work items ---------------------------------------------------------

    def add_item(
        self,
        run_id: str,
        *,
        key: str,
        number: int | None,
        title: str,
        body: str,
        sha: str,
        feature_id: int | None = None,
    ) -> ItemRow:
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO work_items (run_id, key, number, title, body, body_sha256, state,"
                " feature_id) VALUES (?,?,?,?,?,?,?,?)",
                (run_id, key, number, title, body, sha, ItemState.PENDING, feature_id),
            )
            self._history("item", cur.lastrowid, None, ItemState.PENDING, "created")
        return self.item(int(cur.lastrowid or 0))

    def update_item_text(self, item_id: int, *, title: str, body: str, sha: str) -> None:
        self.db.execute(
            "UPDATE work_items SET title = ?, body = ?, body_sha256 = ? WHERE id = ?",
            (title, body, sha, item_id),
        )

    def start_window(self, item_id: int) -> int:
        """Count the item's attempts afresh from its next one; return that number."""
        start = self.next_attempt_number(item_id)
        with self.transaction():
            self.db.execute("UPDATE work_items SET window_start = ? WHERE id = ?", (start, item_id))
        return start

    def item(self, item_id: int) -> ItemRow:
        row = self.db.execute("SELECT * FROM work_items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise KeyError(item_id)
        return ItemRow.from_row(row)

    def items(self, run_id: str) -> list[ItemRow]:
        rows = self.db.execute(
            "SELECT * FROM work_items WHERE run_id = ? ORDER BY number, id", (run_id,)
        ).fetchall()
        return [ItemRow.from_row(r) for r in rows]

    def set_item_state(
        self,
        item_id: int,
        new: ItemState,
        *,
        reason: str | None = None,
        message: str | None = None,
        commit_sha: str | None = None,
    ) -> None:
        with self.transaction():
            state, run_id = self.db.execute(
                "SELECT state, run_id FROM work_items WHERE id = ?", (item_id,)
            ).fetchone()
            old = ItemState(state)
            if old == new:
                return
            check(old, new, what=f"work item {item_id}")
            self.db.execute(
                "UPDATE work_items SET state = ?, message = ?,"
                " commit_sha = COALESCE(?, commit_sha) WHERE id = ?",
                (new, message, commit_sha, item_id),
            )
            self._history("item", item_id, old, new, reason)
        self._published("item", item_id, old, new, reason, run_id=run_id, item_id=item_id)

    # ---- attempts -----------------------------------------------------------

    def start_attempt(
        self,
        *,
        run_id: str,
        item_id: int,
        backend: str,
        model: str | None,
        prefix_sha256: str,
        prompt_sha256: str,
        base_sha: str | None,
        evidence_dir: Path | None,
        lane: int | None = None,
    ) -> AttemptRow:
        """Start the item's next attempt (``lane``: 1.. in a parallel build)."""
        with self.transaction():
            number = self.db.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE item_id = ?",
                (item_id,),
            ).fetchone()[0]
            cur = self.db.execute(
                "INSERT INTO attempts (run_id, item_id, number, backend, model, prefix_sha256,"
                " prompt_sha256, base_sha, state, started_at, evidence_dir, lane)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    item_id,
                    number,
                    backend,
                    model,
                    prefix_sha256,
                    prompt_sha256,
                    base_sha,
                    AttemptState.RUNNING,
                    utcnow(),
                    str(evidence_dir) if evidence_dir else None,
                    lane,
                ),
            )
            self.db.execute(
                "UPDATE work_items SET attempts = attempts + 1 WHERE id = ?", (item_id,)
            )
            self._history("attempt", cur.lastrowid, None, AttemptState.RUNNING, "started")
        return self.attempt(int(cur.lastrowid or 0))

    def next_attempt_number(self, item_id: int) -> int:
        return int(
            self.db.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE item_id = ?", (item_id,)
            ).fetchone()[0]
        )

    def attempt(self, attempt_id: int) -> AttemptRow:
        row = self.db.execute("SELECT * FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
        if row is None:
            raise KeyError(attempt_id)
        return AttemptRow.from_row(row)

    def attempts(
        self, *, run_id: str | None = None, item_id: int | None = None
    ) -> list[AttemptRow]:
        if item_id is not None:
            rows = self.db.execute(
                "SELECT * FROM attempts WHERE item_id = ? ORDER BY number", (item_id,)
            ).fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM attempts WHERE run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
        return [AttemptRow.from_row(r) for r in rows]

    def running_attempts(self) -> list[AttemptRow]:
        rows = self.db.execute(
            "SELECT * FROM attempts WHERE state = ?", (AttemptState.RUNNING,)
        ).fetchall()
        return [AttemptRow.from_row(r) for r in rows]

    def update_attempt(self, attempt_id: int, **fields: Any) -> None:
        unknown = set(fields) - _ATTEMPT_FIELDS
        if unknown:
            raise TypeError(f"unknown attempt fields: {sorted(unknown)}")
        if not fields:
            return
        values = [dec_text(v) if isinstance(v, Decimal) else v for v in fields.values()]
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE attempts SET {sets} WHERE id = ?", (*values, attempt_id))

    def finish_attempt(
        self, attempt_id: int, new: AttemptState, *, reason: str | None = None, **fields: Any
    ) -> None:
        with self.transaction():
            state, run_id, item_id = self.db.execute(
                "SELECT state, run_id, item_id FROM attempts WHERE id = ?", (attempt_id,)
            ).fetchone()
            old = AttemptState(state)
            check(old, new, what=f"attempt {attempt_id}")
            fields.setdefault("finished_at", utcnow())
            fields.setdefault("exit_reason", reason)
            self.update_attempt(attempt_id, **fields)
            self.db.execute("UPDATE attempts SET state = ? WHERE id = ?", (new, attempt_id))
            self._history("attempt", attempt_id, old, new, reason)
        self._published(
            "attempt",
            attempt_id,
            old,
            new,
            reason,
            run_id=run_id,
            item_id=item_id,
            attempt_id=attempt_id,
        )

    def set_attempt_files(self, attempt_id: int, files: Sequence[str]) -> None:
        """Keep the files an attempt changed (``gitops.changed_files`` against
        its base), sorted and once each; an empty list means it changed none."""
        self.db.execute(
            "UPDATE attempts SET files_json = ? WHERE id = ?",
            (json.dumps(sorted(set(files))), attempt_id),
        )

    def touched_files(self, feature_id: int) -> frozenset[str]:
        """Every file any attempt at the feature changed, in every run: the
        files its next attempt will likely change again. Attempts whose files
        are not known add nothing."""
        rows = self.db.execute(
            "SELECT DISTINCT f.value FROM work_items w JOIN attempts a ON a.item_id = w.id,"
            " json_each(a.files_json) f WHERE w.feature_id = ? AND a.files_json IS NOT NULL",
            (feature_id,),
        ).fetchall()
        return frozenset(str(r[0]) for r in rows)

    # ---- usage --------------------------------------------------------------

    def record_usage(
        self,
        attempt_id: int,
        *,
        kind: str,
        message_id: str | None,
        request_id: str | None,
        model: str,
        tokens: TokenCounts,
        cost_usd: Decimal | None,
        cost_source: str | None,
    ) -> None:
        """Insert or replace one usage record: a response's newest numbers
        replace its earlier, partial ones (deduplicated by message id)."""
        self.db.execute(
            "INSERT INTO usage_records (attempt_id, kind, message_id, request_id, model,"
            " input_tokens, output_tokens, cache_read_tokens, cache_write_5m_tokens,"
            " cache_write_1h_tokens, cost_usd, cost_source, ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (attempt_id, kind, message_id, model) DO UPDATE SET"
            " request_id = excluded.request_id, input_tokens = excluded.input_tokens,"
            " output_tokens = excluded.output_tokens,"
            " cache_read_tokens = excluded.cache_read_tokens,"
            " cache_write_5m_tokens = excluded.cache_write_5m_tokens,"
            " cache_write_1h_tokens = excluded.cache_write_1h_tokens,"
            " cost_usd = excluded.cost_usd, cost_source = excluded.cost_source,"
            " ts = excluded.ts",
            (
                attempt_id,
                kind,
                message_id if message_id is not None else "",
                request_id,
                model,
                tokens.input,
                tokens.output,
                tokens.cache_read,
                tokens.cache_write_5m,
                tokens.cache_write_1h,
                dec_text(cost_usd),
                cost_source,
                utcnow(),
            ),
        )

    def attempt_tokens(self, attempt_id: int) -> TokenCounts:
        """Final per-model totals when the agent reported them, else the sum of
        the responses seen while it streamed."""
        for kind in ("final", "response"):
            row = self.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(input_tokens),0), COALESCE(SUM(output_tokens),0),"
                " COALESCE(SUM(cache_read_tokens),0), COALESCE(SUM(cache_write_5m_tokens),0),"
                " COALESCE(SUM(cache_write_1h_tokens),0) FROM usage_records"
                " WHERE attempt_id = ? AND kind = ?",
                (attempt_id, kind),
            ).fetchone()
            if row[0]:
                return TokenCounts(row[1], row[2], row[3], row[4], row[5])
        return TokenCounts()

    def totals(self, attempts: Sequence[AttemptRow]) -> Totals:
        """Money and tokens over ``attempts``: their tokens in one aggregate
        query (each attempt's final totals when the agent reported them, else
        its responses), their costs from the rows themselves."""
        cost: Decimal | None = None
        unknown = 0
        for attempt in attempts:
            if attempt.cost_usd is None:
                if attempt.state != AttemptState.RUNNING or attempt.finished_at:
                    unknown += 1
                continue
            cost = attempt.cost_usd if cost is None else cost + attempt.cost_usd
        tokens = TokenCounts()
        if attempts:
            row = self.db.execute(_TOKENS_SQL, (json.dumps([a.id for a in attempts]),)).fetchone()
            tokens = TokenCounts(row[0], row[1], row[2], row[3], row[4])
        return Totals(cost, unknown, tokens)

    # ---- gates and events ---------------------------------------------------

    def record_gate(
        self,
        attempt_id: int,
        *,
        name: str,
        command: str | None,
        passed: bool,
        duration_s: float,
        exit_code: int | None,
        timed_out: bool,
        tests_passed: int | None,
        tests_failed: int | None,
        failed_ids: Sequence[str],
        regressions: Sequence[str],
        output_path: str | None,
        digest: str,
    ) -> None:
        self.db.execute(
            "INSERT INTO gate_results (attempt_id, name, command, passed, duration_s, exit_code,"
            " timed_out, tests_passed, tests_failed, failed_ids_json, regressions_json,"
            " output_path, digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                attempt_id,
                name,
                command,
                int(passed),
                duration_s,
                exit_code,
                int(timed_out),
                tests_passed,
                tests_failed,
                json.dumps(sorted(failed_ids)),
                json.dumps(list(regressions)),
                output_path,
                digest,
            ),
        )

    def gates(self, attempt_id: int) -> list[GateRow]:
        rows = self.db.execute(
            "SELECT * FROM gate_results WHERE attempt_id = ? ORDER BY id", (attempt_id,)
        ).fetchall()
        return [GateRow.from_row(r) for r in rows]

    def event(
        self, run_id: str, kind: str, payload: dict[str, Any], *, attempt_id: int | None = None
    ) -> None:
        self.db.execute(
            "INSERT INTO events (ts, run_id, attempt_id, kind, payload_json) VALUES (?,?,?,?,?)",
            (utcnow(), run_id, attempt_id, kind, json.dumps(payload, default=str)),
        )

    def append_event(self, event: Event) -> None:
        """Append a typed event (it has a run id): its kind, and its payload as JSON."""
        self.event(str(event.run_id), event.kind, event.payload(), attempt_id=event.attempt_id)

    def events(
        self,
        run_id: str,
        *,
        attempt_id: int | None = None,
        kinds: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The run's stored events in order (or one attempt's), each with its
        time, attempt, kind and payload; ``kinds``: only those kinds of the run's."""
        if kinds is not None:
            rows = self.db.execute(
                "SELECT * FROM events WHERE run_id = ? AND kind IN"
                " (SELECT value FROM json_each(?)) ORDER BY id",
                (run_id, json.dumps(list(kinds))),
            ).fetchall()
        elif attempt_id is None:
            rows = self.db.execute(
                "SELECT * FROM events WHERE run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM events WHERE attempt_id = ? ORDER BY id", (attempt_id,)
            ).fetchall()
        return [
            {
                "ts": r["ts"],
                "attempt_id": r["attempt_id"],
                "kind": r["kind"],
                "payload": json.loads(r["payload_json"]),
            }
            for r in rows
        ]

    def history(self, entity: str, entity_id: object) -> list[tuple[str | None, str]]:
        rows = self.db.execute(
            "SELECT from_state, to_state FROM state_history WHERE entity = ? AND entity_id = ?"
            " ORDER BY id",
            (entity, str(entity_id)),
        ).fetchall()
        return [(r[0], r[1]) for r in rows]
