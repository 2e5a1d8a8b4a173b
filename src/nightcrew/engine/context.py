"""What every attempt of a run needs to know, fixed for the run.

The context does not change while the run goes on: what does (the tests'
baseline after each commit) is passed to an attempt and returned from it.
``progress`` is the live display's snapshot of one lane, updated in place by
the lane that owns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nightcrew.agents.base import AgentBackend
from nightcrew.config import Settings
from nightcrew.engine import gates as gates_mod
from nightcrew.engine.controls import Controls
from nightcrew.engine.ledger import BudgetLedger
from nightcrew.engine.limits import LimitWaiter
from nightcrew.engine.merge_queue import MergeQueue
from nightcrew.engine.report import Progress, Reporter
from nightcrew.engine.signals import StopWatch
from nightcrew.engine.slots import AgentSlot
from nightcrew.engine.workspace import Workspace
from nightcrew.project import Project
from nightcrew.store.records import RunRow, Store
from nightcrew.usage.pricing import Pricer


@dataclass(frozen=True)
class RunContext:
    project: Project
    store: Store
    run: RunRow
    settings: Settings
    backend: AgentBackend
    reporter: Reporter
    pricer: Pricer
    prefix: str
    gate_specs: tuple[gates_mod.GateSpec, ...]
    agent_env: Mapping[str, str]
    batch_count: int  # how many work items the run's source has (batch 2/3)
    progress: Progress  # this lane's line of the live display
    limits: LimitWaiter  # how a run waits for a usage limit (--wait-on-limit)
    workspace: Workspace
    # Paths dirty before the run (--allow-dirty): never staged, never reset.
    left_alone: frozenset[str] = field(default=frozenset(), kw_only=True)
    # The agents in flight, stopped together by a signal (set by the scheduler).
    watch: StopWatch | None = field(default=None, kw_only=True)
    # What the run has spent, shared by its attempts (engine/ledger.py), seeded
    # from the store once when the run starts.
    ledger: BudgetLedger = field(kw_only=True)
    # Several lanes, each in a worktree of its own: passed work lands through
    # this queue (None: one lane in place, work is committed where it is).
    landing: MergeQueue | None = field(default=None, kw_only=True)
    lane: int = field(default=0, kw_only=True)  # 1.. with several lanes
    # The lane's hold on an agent slot: given back while its feature waits in
    # the merge queue, taken again before another attempt (None: one lane).
    slot: AgentSlot | None = field(default=None, kw_only=True)
    # The lane's own variables (NIGHTCREW_LANE, ports): the agent and the gates get them.
    lane_env: Mapping[str, str] = field(default_factory=dict, kw_only=True)
    # A person's pause and stop, asked from another process (None: not taken).
    controls: Controls | None = field(default=None, kw_only=True)
