"""A project's store as a build writes it, for the dashboard's tests: a
registered project, a backlog run with lanes, attempts, responses' usage and
the events the build keeps. Written through the store's own API."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from nightcrew.core import events as ev
from nightcrew.core.states import AttemptState, ItemState, RunState
from nightcrew.core.usage import TokenCounts
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import AttemptRow, ItemRow, RunRow, Store
from nightcrew.usage.globaldb import open_global, register_project
from nightcrew.work.backlog import FeatureSpec

TOKENS = TokenCounts(input=1000, output=200)


def register(root: Path) -> None:
    db = open_global()
    try:
        register_project(db, root)
    finally:
        db.close()


@dataclass
class Seeded:
    """One build of a registered project, written row by row."""

    root: Path
    store: Store
    run: RunRow
    items: dict[int, ItemRow]
    message_no: int = 0

    @classmethod
    def build(
        cls,
        root: Path,
        names: list[str],
        *,
        config: dict[str, Any] | None = None,
        pid: int | None = None,
    ) -> Seeded:
        """A running build of features ``names`` (ids 1..), owned by ``pid``
        (this process by default, so it counts as alive)."""
        root.mkdir(parents=True, exist_ok=True)
        register(root)
        store = Store.open(Project(root).store_path)
        created = (
            Backlog(store)
            .create([FeatureSpec(name=n, acceptance=("true",)) for n in names], source="test")
            .created
        )
        run = store.create_run(
            kind="backlog",
            source_path="",
            source_sha256="a" * 64,
            config=config or {"parallel": 2},
            prefix_sha256="b" * 64,
            pid=os.getpid() if pid is None else pid,
        )
        store.set_run_state(run.id, RunState.RUNNING, reason="started")
        items = {
            n: store.add_item(
                run.id,
                key=f"feature-{n}",
                number=n,
                title=names[n - 1],
                body="",
                sha="c" * 64,
                feature_id=n,
            )
            for n in created
        }
        return cls(root, store, store.run(run.id), items)

    def emit(self, event: ev.Event) -> None:
        self.store.append_event(event)

    def claim(self, feature: int, lane: int) -> None:
        self.store.set_item_state(self.items[feature].id, ItemState.IN_PROGRESS)
        self.emit(
            ev.WorktreeReady(
                run_id=self.run.id,
                lane=lane,
                item=f"feature #{feature}",
                path=f".nightcrew/worktrees/{feature}",
                branch=f"nightcrew/{feature}",
                base="f" * 40,
            )
        )

    def attempt(
        self, feature: int, lane: int | None, model: str = "claude-sonnet-4-5"
    ) -> AttemptRow:
        return self.store.start_attempt(
            run_id=self.run.id,
            item_id=self.items[feature].id,
            backend="claude",
            model=model,
            prefix_sha256="b" * 64,
            prompt_sha256="d" * 64,
            base_sha="e" * 40,
            evidence_dir=None,
            lane=lane,
        )

    def response(self, attempt: AttemptRow, cost: str | None, *, lane: int = 0) -> None:
        """One API response of a running attempt: its usage row and its event."""
        self.message_no += 1
        usd = None if cost is None else Decimal(cost)
        self.store.record_usage(
            attempt.id,
            kind="response",
            message_id=f"msg-{self.message_no}",
            request_id=None,
            model=attempt.model or "claude-sonnet-4-5",
            tokens=TOKENS,
            cost_usd=usd,
            cost_source="priced" if usd is not None else None,
        )
        self.emit(
            ev.UsageSeen(
                run_id=self.run.id,
                item_id=attempt.item_id,
                attempt_id=attempt.id,
                lane=lane,
                model=attempt.model,
                tokens=TOKENS,
                cost_usd=usd,
            )
        )

    def tool(self, attempt: AttemptRow, name: str, lane: int = 0, **tool_input: Any) -> None:
        self.emit(
            ev.ToolCalled(
                run_id=self.run.id,
                item_id=attempt.item_id,
                attempt_id=attempt.id,
                lane=lane,
                name=name,
                input=tool_input,
            )
        )

    def history(self, costs: dict[int, str]) -> None:
        """Earlier spend of the project: one settled response on each of the
        days ``costs`` names (days ago → dollars), as an earlier build's."""
        old = self.store.create_run(
            kind="backlog",
            source_path="",
            source_sha256="a" * 64,
            config={},
            prefix_sha256="b" * 64,
            pid=0,
        )
        item = self.store.add_item(
            old.id, key="feature-1", number=1, title="Earlier", body="", sha="c" * 64, feature_id=1
        )
        now = datetime.now(UTC)
        for days_ago, cost in costs.items():
            attempt = self.store.start_attempt(
                run_id=old.id,
                item_id=item.id,
                backend="claude",
                model="claude-sonnet-4-5",
                prefix_sha256="b" * 64,
                prompt_sha256="d" * 64,
                base_sha=None,
                evidence_dir=None,
            )
            self.message_no += 1
            self.store.record_usage(
                attempt.id,
                kind="final",
                message_id=f"msg-{self.message_no}",
                request_id=None,
                model="claude-sonnet-4-5",
                tokens=TOKENS,
                cost_usd=Decimal(cost),
                cost_source="reported",
            )
            when = (now - timedelta(days=days_ago)).isoformat(timespec="milliseconds")
            self.store.finish_attempt(attempt.id, AttemptState.PASSED, cost_usd=Decimal(cost))
            self.store.db.execute(
                "UPDATE usage_records SET ts = ? WHERE attempt_id = ?", (when, attempt.id)
            )
            self.store.db.execute(
                "UPDATE attempts SET started_at = ?, finished_at = ? WHERE id = ?",
                (when, when, attempt.id),
            )
        first = (now - timedelta(days=max(costs))).isoformat(timespec="milliseconds")
        self.store.db.execute(
            "UPDATE runs SET started_at = ?, state = 'succeeded' WHERE id = ?", (first, old.id)
        )

    def finish(self, attempt: AttemptRow, state: AttemptState, cost: str | None) -> None:
        self.store.finish_attempt(
            attempt.id,
            state,
            reason=str(state),
            cost_usd=None if cost is None else Decimal(cost),
            cost_source="reported" if cost is not None else None,
            agent_seconds=30.0,
            gate_seconds=2.0,
        )
