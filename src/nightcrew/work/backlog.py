"""The backlog: features of an app, with dependencies, that ``nightcrew build``
works through one at a time.

A feature is a work item like a plan's batch, but it outlives any one run: the
backlog lives in the project store, grows through ``backlog init`` (an agent
reading a spec), ``backlog import``, ``backlog add`` and the MCP tools, and
keeps each feature's attempts and failures across runs and restarts.

Only the harness marks a feature passed: after an attempt it runs the
feature's **acceptance commands** (shell commands that exit 0 when the feature
works) and the project's gates. A feature without acceptance commands must be
marked ``manual`` (a person checks it; ``build`` never picks it).

This module holds the values; ``backlog_graph`` the dependency logic,
``backlog_formats`` the file formats, ``store.backlog`` the atomic writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from nightcrew.core.states import ItemState

MAX_DEPENDENCIES = 20  # per feature, as AutoForge (a wider fan-in is a spec smell)
MAX_NAME = 200
DEFAULT_CATEGORY = "functional"

# The states a feature can be in. ``blocked`` is not stored: a pending feature
# is blocked while one of its dependencies is skipped, failed or waiting for input.
FEATURE_STATES: tuple[str, ...] = (
    ItemState.PENDING,
    ItemState.IN_PROGRESS,
    ItemState.PASSED,
    ItemState.FAILED,
    ItemState.SKIPPED,
    ItemState.NEEDS_INPUT,
    ItemState.BLOCKED,
)


@dataclass(frozen=True)
class FeatureSpec:
    """A feature to create (from a file, a person or an agent), not yet stored.

    ``depends_on`` names features already in the backlog by id;
    ``depends_on_indices`` names earlier specs of the same batch by 0-based
    index (so an agent can create a whole graph in one call); ``depends_on_keys``
    names features by ``source_key`` (an imported file's own ids, such as a PRD's
    ``US-003``), in the same batch or already stored.
    """

    name: str
    category: str = DEFAULT_CATEGORY
    description: str = ""
    steps: tuple[str, ...] = ()
    acceptance: tuple[str, ...] = ()
    manual: bool = False
    priority: int | None = None  # lower runs sooner; None: after every existing feature
    files: tuple[str, ...] = ()  # likely files ("Files:" hints), for conflict advice
    depends_on: tuple[int, ...] = ()
    depends_on_indices: tuple[int, ...] = ()
    depends_on_keys: tuple[str, ...] = ()
    passes: bool = False  # imported as already passing
    source_key: str | None = None
    model: str | None = None  # the model its attempts start with (``retry --model``)
    # Kept through an export and import of our own format:
    state: ItemState | None = None  # passed, skipped, failed, needs_input (None: pending)
    input_request: str | None = None  # what a feature waiting for input asked
    wanted_id: int | None = None  # its id, kept when no feature here ever had it


@dataclass(frozen=True)
class Feature:
    """A stored feature, as the backlog sees it now."""

    id: int
    name: str
    category: str
    description: str
    steps: tuple[str, ...]
    acceptance: tuple[str, ...]
    manual: bool
    files: tuple[str, ...]
    priority: int
    position: int  # order in the backlog; ``reorder`` and ``skip`` move it
    state: ItemState
    depends_on: tuple[int, ...] = ()
    model: str | None = None  # the model to use next (``retry --model``)
    attempts: int = 0  # attempts ever made, across runs
    input_request: str | None = None  # what the agent asked a person (needs_input)
    input_answer: str | None = None  # what the person answered
    source_key: str | None = None
    claimed_by: str | None = None  # who holds it in progress: a run id or "mcp:<pid>"
    created_at: str = ""
    updated_at: str = ""
    version: int = 0  # bumped by every write; guarded updates compare it

    @property
    def label(self) -> str:
        return f"#{self.id}"


class Outline(NamedTuple):
    """What ``backlog list`` shows of a feature, read without its texts and
    commands (a 20,000-feature backlog is listed in well under a second)."""

    id: int
    name: str
    category: str
    state: ItemState
    manual: bool
    depends_on: tuple[int, ...]
    attempts: int


@dataclass(frozen=True)
class Rejected:
    """A spec the backlog refused, and why (reported, never silently dropped)."""

    index: int  # position in the batch given
    name: str
    reason: str


@dataclass(frozen=True)
class Created:
    """What a bulk create did: the ids of the features created, in spec order
    (None where rejected), and the rejections."""

    ids: tuple[int | None, ...]
    rejected: tuple[Rejected, ...] = field(default=())

    @property
    def created(self) -> list[int]:
        return [i for i in self.ids if i is not None]


def spec_problem(spec: FeatureSpec) -> str | None:
    """Why ``spec`` cannot be a feature on its own (dependencies are checked by
    the store, against the backlog), or None."""
    name = spec.name.strip()
    if not name:
        return "a feature needs a name"
    if len(name) > MAX_NAME:
        return f"the name is longer than {MAX_NAME} characters"
    if "\n" in name:
        return "the name must be one line"
    if not spec.category.strip():
        return "the category is empty"
    commands = [c for c in spec.acceptance if c.strip()]
    if len(commands) != len(spec.acceptance):
        return "an acceptance command is empty"
    if not commands and not spec.manual and not spec.passes:
        return (
            "no acceptance command: give at least one shell command that exits 0 when"
            " the feature works, or mark the feature manual"
        )
    if spec.priority is not None and not -(2**63) <= spec.priority < 2**63:
        return f"the priority {spec.priority} is out of range (it must fit in 64 bits)"
    deps = len(spec.depends_on) + len(spec.depends_on_indices) + len(spec.depends_on_keys)
    if deps > MAX_DEPENDENCIES:
        return f"{deps} dependencies; at most {MAX_DEPENDENCIES}"
    return None
