"""A plan run's context built by hand, for tests of the item loop, the attempt
and the scheduler without the CLI or the orchestrator."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

from nightcrew.config import Settings
from nightcrew.core.states import (
    ATTEMPT_TERMINAL,
    AttemptState,
    ItemState,
    RunState,
    allowed,
)
from nightcrew.engine import gates as gates_mod
from nightcrew.engine.batch import BatchWork
from nightcrew.engine.bus import Bus
from nightcrew.engine.context import RunContext
from nightcrew.engine.item import STOPS, ItemOutcome, run_item
from nightcrew.engine.ledger import BudgetLedger
from nightcrew.engine.limits import LimitWaiter
from nightcrew.engine.report import Progress
from nightcrew.engine.scheduler import Scheduler
from nightcrew.engine.signals import StopWatch
from nightcrew.engine.workspace import InPlace
from nightcrew.project import Project
from nightcrew.store.records import ItemRow, Store
from nightcrew.testing import FakeBackend
from nightcrew.usage.pricing import Pricer
from nightcrew.work.plan import Batch, parse_plan

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def plan_text(n: int, critical: int | None = None) -> str:
    parts = ["# Plan\n"]
    for i in range(1, n + 1):
        mark = " [CRITICAL]" if i == critical else ""
        parts.append(f"## Batch {i}: Part {i}{mark}\n\nWrite part {i}.\n")
    return "\n".join(parts)


class Lanes:
    """A plan run's context and its batches, worked on by a three-lane scheduler."""

    def __init__(self, tmp_path: Path, backend: FakeBackend, plan: str, **settings: object) -> None:
        root = tmp_path / "proj"
        root.mkdir()
        env = {**os.environ, **GIT_ENV}
        for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "0"]):
            subprocess.run(["git", *args], cwd=root, check=True, env=env, capture_output=True)
        self.project = Project(root)
        self.project.make_dir()
        self.store = Store.open(self.project.store_path)
        self.plan = parse_plan(plan, root / "PLAN.md")
        run = self.store.create_run(
            kind="plan",
            source_path="PLAN.md",
            source_sha256=self.plan.sha256,
            config={},
            prefix_sha256="0" * 64,
            pid=os.getpid(),
        )
        self.store.set_run_state(run.id, RunState.RUNNING, reason="started")
        self.items: list[tuple[Batch, ItemRow]] = []
        for batch in self.plan.batches:
            item = self.store.add_item(
                run.id,
                key=str(batch.number),
                number=batch.number,
                title=batch.title,
                body=batch.body,
                sha=batch.sha256,
            )
            self.items.append((batch, item))
        bus = Bus()  # the run's bus: the store keeps what the run's events keep
        bus.attach_store(self.store)
        self.ctx = RunContext(
            project=self.project,
            store=self.store,
            run=self.store.run(run.id),
            settings=Settings(
                gates=("true",),
                commit=False,
                attempt_timeout=120,
                **settings,  # type: ignore[arg-type]
            ),
            backend=backend,
            reporter=bus,
            pricer=Pricer(),
            prefix="You work on a plan.",
            gate_specs=(gates_mod.command_gate(1, "true"),),
            agent_env={},
            batch_count=len(self.items),
            progress=Progress(run_id=run.id),
            limits=LimitWaiter(),
            workspace=InPlace(root),
            watch=StopWatch(),
            ledger=BudgetLedger.seed(self.store, run.id),
        )
        self.claimed: list[int] = []

    def claim(self, lane: int) -> tuple[Batch, ItemRow] | None:
        if len(self.claimed) == len(self.items):
            return None
        pair = self.items[len(self.claimed)]
        self.claimed.append(pair[0].number)
        return pair

    async def work(self, pair: tuple[Batch, ItemRow], lane: int) -> ItemOutcome:
        batch, item = pair
        ctx = replace(self.ctx, progress=Progress(run_id=self.ctx.run.id))  # the lane's line
        return await run_item(ctx, BatchWork.of(ctx, batch, item), None)

    def run(self) -> Scheduler[tuple[Batch, ItemRow], ItemOutcome]:
        assert self.ctx.watch is not None
        scheduler = Scheduler(
            self,
            self.work,
            lambda o: o.kind in STOPS,
            lanes=3,
            watch=self.ctx.watch,
            why=lambda o: o.message,
        )
        scheduler.run()
        return scheduler

    def assert_consistent(self) -> None:
        """Every attempt finished, and every state change was a legal one."""
        attempts = self.store.attempts(run_id=self.ctx.run.id)
        assert all(AttemptState(a.state) in ATTEMPT_TERMINAL for a in attempts)
        rows = self.store.db.execute(
            "SELECT entity, from_state, to_state FROM state_history ORDER BY id"
        ).fetchall()
        kinds = {"run": RunState, "item": ItemState, "attempt": AttemptState}
        for entity, old, new in rows:
            if old is not None and entity in kinds:
                kind = kinds[entity]
                assert allowed(kind(old), kind(new)), (entity, old, new)
