"""Dependency logic for the backlog: what is blocked, what is ready, in which
order, and which features may collide.

Pure functions of the features given (no store, no I/O), so ``build``, the
backlog commands and the MCP tools agree, and tests need no database. A
dependency id not among the features is *missing*: it blocks its dependent and
is otherwise left out of the graph. The store refuses cycles; should one slip
in, :func:`topological_order` and :func:`analyze` raise naming it, and the
other functions still answer (a feature on a cycle is never ready).
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from nightcrew.core.states import ItemState
from nightcrew.work.backlog import Feature

# States a feature does not leave on its own during a build: a person (or a
# ``retry``) has to act first, so whatever depends on it waits for nothing.
_STUCK = frozenset({ItemState.SKIPPED, ItemState.FAILED, ItemState.NEEDS_INPUT, ItemState.BLOCKED})
# A line of a feature's text that names files, as in a plan: "Files: a.py, `b/c.py`".
_FILES_LINE = re.compile(r"^\s*(?:[-*]\s*)?\**files\s*:\**\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_FILE_SEPARATORS = re.compile(r"[,;]\s*|\s+")

_Graph = dict[int, tuple[int, ...]]
_Key = tuple[int, ...]


class Node(Protocol):
    """What working out blockers reads of a feature: a :class:`Feature`, or the
    lighter :class:`~nightcrew.work.backlog.Outline` that ``backlog list`` reads."""

    @property
    def id(self) -> int: ...
    @property
    def state(self) -> ItemState: ...
    @property
    def manual(self) -> bool: ...
    @property
    def depends_on(self) -> tuple[int, ...]: ...


def find_cycle(edges: Mapping[int, Iterable[int]]) -> list[int] | None:
    """One dependency cycle as a path that starts and ends on the same id
    (``[3, 5, 3]``: 3 depends on 5, 5 on 3), or None.

    An explicit stack instead of recursion, so a 10,000-feature chain cannot
    hit the interpreter's recursion limit; nodes and edges are visited in
    ascending id order, so the same graph always names the same cycle. Edges to
    ids that are not keys of ``edges`` are ignored.
    """
    graph = {node: sorted({d for d in deps if d in edges}) for node, deps in edges.items()}
    finished: set[int] = set()
    for root in sorted(graph):
        if root in finished:
            continue
        path, where = [root], {root: 0}
        pending = [iter(graph[root])]
        while pending:
            step = next(pending[-1], None)
            if step is None:
                finished.add(path[-1])
                del where[path.pop()]
                pending.pop()
            elif step in where:
                return [*path[where[step] :], step]
            elif step not in finished:
                where[step] = len(path)
                path.append(step)
                pending.append(iter(graph[step]))
    return None


def _graph(features: Iterable[Feature]) -> _Graph:
    """Each feature's dependencies that exist, deduplicated and ascending."""
    ids = {f.id for f in features}
    return {f.id: tuple(sorted({d for d in f.depends_on if d in ids})) for f in features}


def _reverse(graph: Mapping[int, Sequence[int]]) -> dict[int, list[int]]:
    """Who points at each node: the dependents of each feature, for example."""
    back: dict[int, list[int]] = {node: [] for node in graph}
    for node, targets in graph.items():
        for target in targets:
            back[target].append(node)
    return back


def _kahn(needs: Mapping[int, Sequence[int]], key: Callable[[int], _Key]) -> list[int]:
    """Every node after all the nodes it needs, smallest ``key`` first among
    those free to go. Nodes on (or behind) a cycle are left out, so a short
    result is how callers notice one."""
    waiting = {node: len(before) for node, before in needs.items()}
    unlocks = _reverse(needs)
    heap = [(key(node), node) for node, count in waiting.items() if count == 0]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        _, node = heapq.heappop(heap)
        order.append(node)
        for after in unlocks[node]:
            waiting[after] -= 1
            if waiting[after] == 0:
                heapq.heappush(heap, (key(after), after))
    return order


def _reach_masks(adjacent: Mapping[int, Sequence[int]], bits: Mapping[int, int]) -> dict[int, int]:
    """For each node, the nodes reachable from it as a bitset (a Python int, one
    bit per node, itself excluded). Each node is done after all it points at,
    so its mask is the union of theirs: O(edges × nodes / 30-bit digit), well
    under a second for 5,000 features with a few edges each, and a diamond
    sets the same bit twice rather than counting twice. Nodes on or behind a
    cycle (never in a valid backlog) fall back to a walk each."""
    masks: dict[int, int] = {}
    for node in _kahn(adjacent, key=lambda n: (n,)):
        mask = 0
        for target in adjacent[node]:
            mask |= bits[target] | masks[target]
        masks[node] = mask
    for node in adjacent:
        if node not in masks:
            masks[node] = _walk_mask(node, adjacent, bits) & ~bits[node]
    return masks


def _walk_mask(start: int, adjacent: Mapping[int, Sequence[int]], bits: Mapping[int, int]) -> int:
    seen, stack, mask = {start}, [start], 0
    while stack:
        for target in adjacent[stack.pop()]:
            mask |= bits[target]
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return mask


def _bits(graph: Mapping[int, object]) -> dict[int, int]:
    return {node: 1 << index for index, node in enumerate(sorted(graph))}


def _is_culprit(feature: Node | None) -> bool:
    """Whether a dependency in this state keeps its dependents waiting for good:
    missing, manual and not passed (``build`` never picks it), or stuck."""
    if feature is None:
        return True
    if feature.state == ItemState.PASSED:
        return False
    return feature.manual or feature.state in _STUCK


def _walks_through(feature: Node) -> bool:
    """A pending dependency is blocked by whatever blocks it; an in-progress one
    is not (it may still pass)."""
    return feature.state == ItemState.PENDING and not feature.manual


def _culprits(
    feature: Node, by_id: Mapping[int, Node], memo: dict[int, frozenset[int]]
) -> frozenset[int]:
    """The nearest culprits up every dependency chain of ``feature``, by an
    explicit-stack walk; ``memo`` keeps each feature's answer so that a whole
    backlog costs one pass over its edges."""
    on_path = {feature.id}
    stack = [(feature.id, feature.depends_on, iter(feature.depends_on))]
    while stack:
        node, deps, todo = stack[-1]
        for dep in todo:
            up = by_id.get(dep)
            if up is not None and _walks_through(up) and dep not in memo and dep not in on_path:
                stack.append((dep, up.depends_on, iter(up.depends_on)))
                on_path.add(dep)
                break
        else:
            stack.pop()
            on_path.discard(node)
            found: set[int] = set()
            for dep in deps:
                up = by_id.get(dep)
                if _is_culprit(up):
                    found.add(dep)
                elif up is not None and _walks_through(up):
                    found |= memo.get(dep, frozenset())  # absent only on a cycle
            memo[node] = frozenset(found)
    return memo[feature.id]


def blockers(feature: Feature, by_id: Mapping[int, Feature]) -> list[int]:
    """Why ``feature`` can never become ready in this build: the ascending ids
    of the *nearest* culprits on its dependency chains.

    A culprit is a dependency that is missing from ``by_id``, skipped, failed,
    waiting for input, or manual and not passed. A pending dependency passes
    its own culprits on, so with #1 skipped, #2 → #1 and #3 → #2, both #2 and
    #3 get ``[1]``: the feature a person has to act on, not the chain between.
    The walk stops at a culprit, so with #2 failed instead, #3 gets ``[2]``.
    Passed and in-progress dependencies block nothing. The feature's own state
    is not consulted; only a pending feature is shown as blocked.
    """
    return sorted(_culprits(feature, by_id, {}))


def blocked_by(features: Sequence[Node]) -> dict[int, list[int]]:
    """The :func:`blockers` of every blocked pending feature, by id, in one pass:
    chains that features share are walked once (O(features + dependencies) plus
    the set unions), where calling :func:`blockers` for each re-walks them."""
    by_id: dict[int, Node] = {f.id: f for f in features}
    memo: dict[int, frozenset[int]] = {}
    pending = sorted(f.id for f in features if f.state == ItemState.PENDING)
    found = {fid: sorted(_culprits(by_id[fid], by_id, memo)) for fid in pending}
    return {fid: culprits for fid, culprits in found.items() if culprits}


def display_state(feature: Feature, by_id: Mapping[int, Feature]) -> str:
    """The stored state, or ``"blocked"`` for a pending feature with blockers
    (blocked is derived, never stored, so it cannot go stale)."""
    if feature.state == ItemState.PENDING and blockers(feature, by_id):
        return ItemState.BLOCKED.value
    return ItemState(feature.state).value


def display_states(features: Sequence[Feature]) -> dict[int, str]:
    """:func:`display_state` of every feature, by id, in one pass (see
    :func:`blocked_by`): for listing a whole backlog."""
    blocked = set(blocked_by(features))
    return {f.id: _shown_state(f, blocked) for f in features}


def _counts(graph: _Graph, by_id: Mapping[int, Feature]) -> dict[int, int]:
    bits = _bits(graph)
    masks = _reach_masks(_reverse(graph), bits)
    open_mask = sum(bits[node] for node, f in by_id.items() if f.state != ItemState.PASSED)
    return {node: (mask & open_mask).bit_count() for node, mask in masks.items()}


def unblock_counts(features: Sequence[Feature]) -> dict[int, int]:
    """For each feature id, how many features not yet passed depend on it,
    directly or through others, each counted once (a diamond counts its far
    end once). Bitsets in dependents-first order: see :func:`_reach_masks`."""
    return _counts(_graph(features), _by_id(features))


def _by_id(features: Iterable[Feature]) -> dict[int, Feature]:
    return {f.id: f for f in features}


def _rank(feature: Feature, counts: Mapping[int, int]) -> _Key:
    """Best first: unblocks the most work, then priority, position and id."""
    return (-counts.get(feature.id, 0), feature.priority, feature.position, feature.id)


def ready(features: Sequence[Feature]) -> list[Feature]:
    """The features ``build`` may pick now, best first: pending, not manual,
    and every dependency exists and has passed. Ranked by :func:`_rank`, so
    the feature that frees the most waiting work goes before a merely urgent
    one that frees nothing (as AutoForge's scheduling score does)."""
    by_id = _by_id(features)
    counts = _counts(_graph(features), by_id)
    picks = [
        f
        for f in features
        if f.state == ItemState.PENDING
        and not f.manual
        and all(d in by_id and by_id[d].state == ItemState.PASSED for d in f.depends_on)
    ]
    return sorted(picks, key=lambda f: _rank(f, counts))


@dataclass(frozen=True)
class Placed:
    """A feature in the build order, with why it comes where it does."""

    feature: Feature
    reasons: tuple[str, ...]


def _labels(ids: Iterable[int], sep: str = ", ") -> str:
    return sep.join(f"#{node}" for node in ids)


def _reasons(feature: Feature, by_id: Mapping[int, Feature]) -> tuple[str, ...]:
    return tuple(
        f"#{feature.id} after #{dep}: depends on it"
        if dep in by_id
        else f"#{feature.id} needs #{dep}: not in the backlog"
        for dep in sorted(set(feature.depends_on))
    )


def topological_order(features: Sequence[Feature]) -> list[Placed]:
    """Every feature once, each after its dependencies; among features free to
    go, the :func:`ready` order. Raises ValueError naming a cycle
    (``#3 → #5 → #3``) if there is one, since no order then exists."""
    by_id = _by_id(features)
    graph = _graph(features)
    counts = _counts(graph, by_id)
    order = _kahn(graph, key=lambda node: _rank(by_id[node], counts))
    if len(order) < len(graph):
        cycle = find_cycle(graph) or []
        raise ValueError(f"dependency cycle: {_labels(cycle, ' → ')}")
    return [Placed(by_id[node], _reasons(by_id[node], by_id)) for node in order]


@dataclass(frozen=True)
class Conflict:
    """Two unfinished features that no dependency orders and that name or
    touched the same files: their ``files`` hints, "Files:" lines in their
    text, and what their attempts changed. Names sharing words is no evidence."""

    first: int  # the smaller id
    second: int
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Blocked:
    """A pending feature that cannot become ready, and its :func:`blockers`."""

    feature: Feature
    blockers: tuple[int, ...]


@dataclass(frozen=True)
class Analysis:
    """What ``nightcrew backlog analyze`` reports."""

    order: tuple[Placed, ...]
    conflicts: tuple[Conflict, ...]
    independent: tuple[Feature, ...]  # nothing waits on them; any order, or in parallel
    blocked: tuple[Blocked, ...]


def _norm_path(path: str) -> str:
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path.lower()


def text_files(text: str) -> list[str]:
    """The paths of the "Files:" lines of a feature's text."""
    found = []
    for match in _FILES_LINE.finditer(text):
        for part in _FILE_SEPARATORS.split(match.group(1)):
            path = part.strip().strip("`'\"")
            if path:
                found.append(path)
    return found


def _hints(feature: Feature, touched: Iterable[str] = ()) -> dict[str, str]:
    """Normalised path → the path as first written: the feature's ``files``,
    its text's "Files:" lines, then what its attempts changed."""
    hints: dict[str, str] = {}
    for path in (*feature.files, *text_files(feature.description), *touched):
        if path.strip():
            hints.setdefault(_norm_path(path), path.strip())
    return hints


def _pairs(index: Mapping[int, Iterable[str]]) -> set[tuple[int, int]]:
    """Pairs of ids that share at least one key, through an inverted index
    (cheaper than comparing every pair when keys are spread out)."""
    holders: dict[str, list[int]] = {}
    for node in sorted(index):
        for key in index[node]:
            holders.setdefault(key, []).append(node)
    return {pair for ids in holders.values() for pair in itertools.combinations(ids, 2)}


def _conflicts(
    features: Sequence[Feature], graph: _Graph, touched: Mapping[int, Iterable[str]]
) -> tuple[Conflict, ...]:
    bits = _bits(graph)
    ancestors = _reach_masks(graph, bits)
    unfinished = [f for f in features if f.state != ItemState.PASSED]
    hints = {f.id: _hints(f, touched.get(f.id, ())) for f in unfinished}
    found: list[Conflict] = []
    for a, b in sorted(_pairs(hints)):
        if ancestors[a] & bits[b] or ancestors[b] & bits[a]:
            continue  # a dependency already puts one before the other
        shared = sorted(hints[a].keys() & hints[b].keys())
        found.append(Conflict(a, b, files=tuple(hints[a][k] for k in shared)))
    return tuple(found)


def _can_start(feature: Feature, blocked: set[int]) -> bool:
    return _walks_through(feature) and feature.id not in blocked


def _independent(
    features: Sequence[Feature], graph: _Graph, by_id: Mapping[int, Feature], blocked: set[int]
) -> tuple[Feature, ...]:
    """Pending features that can start now (every dependency passed) and that
    nothing depends on: finishing them in any order, or side by side, changes
    nothing else. A feature still waiting for another is never among them."""
    dependents = _reverse(graph)

    def passed(dep: int) -> bool:
        return dep in by_id and by_id[dep].state == ItemState.PASSED

    return tuple(
        f
        for f in sorted(features, key=lambda f: f.id)
        if _can_start(f, blocked) and not dependents[f.id] and all(map(passed, f.depends_on))
    )


def analyze(
    features: Sequence[Feature], touched: Mapping[int, Iterable[str]] | None = None
) -> Analysis:
    """Order, likely conflicts, independent work and blocked features of a
    backlog; ``touched`` holds the files each feature's attempts changed.
    Raises ValueError on a dependency cycle, like :func:`topological_order`."""
    order = tuple(topological_order(features))
    by_id = _by_id(features)
    graph = _graph(features)
    culprits = blocked_by(features)
    return Analysis(
        order=order,
        conflicts=_conflicts(features, graph, touched or {}),
        independent=_independent(features, graph, by_id, set(culprits)),
        blocked=tuple(Blocked(by_id[fid], tuple(ids)) for fid, ids in culprits.items()),
    )


def _describe(dep: int, by_id: Mapping[int, Feature]) -> str:
    feature = by_id.get(dep)
    if feature is None:
        return f"#{dep} (not in the backlog)"
    why = "manual" if feature.manual and feature.state != ItemState.PASSED else feature.state
    return f"#{dep} {feature.name} ({why})"


def _shown_state(feature: Feature, blocked: set[int]) -> str:
    return ItemState.BLOCKED.value if feature.id in blocked else ItemState(feature.state).value


def _order_line(f: Feature, by_id: Mapping[int, Feature], blocked: set[int]) -> str:
    state = _shown_state(f, blocked)
    line = f"{f.label} {f.name}" + ("" if state == ItemState.PENDING else f" [{state}]")
    after = sorted({d for d in f.depends_on if d in by_id})
    missing = sorted({d for d in f.depends_on if d not in by_id})
    notes = []
    if after:
        notes.append(f"after {_labels(after)} (depends on {'it' if len(after) == 1 else 'them'})")
    if missing:
        notes.append(f"needs {_labels(missing)} (not in the backlog)")
    return line + (f" — {'; '.join(notes)}" if notes else "")


def _conflict_line(conflict: Conflict, by_id: Mapping[int, Feature]) -> str:
    a, b = by_id[conflict.first], by_id[conflict.second]
    return f"{a.label} {a.name} and {b.label} {b.name}: both touch {', '.join(conflict.files)}"


def render_analysis(analysis: Analysis) -> str:
    """Plain text for the terminal, one section per part of the analysis."""
    by_id = {p.feature.id: p.feature for p in analysis.order}
    blocked = {b.feature.id for b in analysis.blocked}
    sections = {
        "Order": [_order_line(p.feature, by_id, blocked) for p in analysis.order],
        "May conflict": [_conflict_line(c, by_id) for c in analysis.conflicts],
        "Independent": [f"{f.label} {f.name}" for f in analysis.independent],
        "Blocked": [
            f"{b.feature.label} {b.feature.name} — blocked by "
            + ", ".join(_describe(d, by_id) for d in b.blockers)
            for b in analysis.blocked
        ],
    }
    lines: list[str] = []
    for title, body in sections.items():
        lines += [title, *(f"  {line}" for line in body or ["(none)"]), ""]
    return "\n".join(lines[:-1]) + "\n"


def analysis_json(analysis: Analysis) -> dict[str, object]:
    """The analysis as JSON-ready data: features by id, never whole objects."""
    blocked = {b.feature.id for b in analysis.blocked}
    present = {p.feature.id for p in analysis.order}
    return {
        "order": [
            {
                "id": p.feature.id,
                "name": p.feature.name,
                "state": _shown_state(p.feature, blocked),
                "after": sorted({d for d in p.feature.depends_on if d in present}),
                "reasons": list(p.reasons),
            }
            for p in analysis.order
        ],
        "conflicts": [
            {"features": [c.first, c.second], "files": list(c.files)} for c in analysis.conflicts
        ],
        "independent": [f.id for f in analysis.independent],
        "blocked": [{"id": b.feature.id, "blockers": list(b.blockers)} for b in analysis.blocked],
    }
