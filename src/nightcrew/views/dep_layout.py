"""The backlog's dependency graph laid out in layers, for the dashboard's
``/p/{key}/graph``: a feature sits one layer right of the furthest of the
features it depends on (longest path), and the features of a layer are put
in the order of the mean position of their neighbours (barycentres, a few
sweeps each way), which keeps most edges short and uncrossed. Plain numbers
only: the server turns them into SVG.

Passed features can be left out (``hide_passed``): on a backlog of a
thousand, what is left to do is what a person looks for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.work.backlog_graph import display_states

SWEEPS = 4


@dataclass(frozen=True)
class Node:
    id: int
    name: str
    state: str  # as ``backlog list`` shows it: pending, passed, blocked …
    layer: int
    order: int  # position inside its layer, from 0


@dataclass(frozen=True)
class Layout:
    nodes: tuple[Node, ...]
    edges: tuple[tuple[int, int], ...]  # (dependency, dependent), both shown
    layers: int
    widest: int  # nodes in the fullest layer
    hidden: int  # passed features left out


def layers_of(ids: Sequence[int], deps: Mapping[int, Sequence[int]]) -> dict[int, int]:
    """Each node's layer: 0 without dependencies, else one more than the
    deepest dependency. A dependency on a node not in ``ids`` is ignored, and
    so is an edge that would close a cycle (the backlog refuses those)."""
    known = set(ids)
    layer: dict[int, int] = {}
    for start in ids:
        if start in layer:
            continue
        stack: list[tuple[int, int]] = [(start, 0)]
        on_path: set[int] = {start}
        while stack:
            node, i = stack[-1]
            todo = [d for d in deps.get(node, ()) if d in known]
            if i < len(todo):
                stack[-1] = (node, i + 1)
                dep = todo[i]
                if dep not in layer and dep not in on_path:
                    stack.append((dep, 0))
                    on_path.add(dep)
                continue
            stack.pop()
            on_path.discard(node)
            below = [layer[d] for d in todo if d in layer]
            layer[node] = 1 + max(below) if below else 0
    return layer


def order_layers(
    layer: Mapping[int, int],
    edges: Sequence[tuple[int, int]],
    first: Sequence[int] = (),
    sweeps: int = SWEEPS,
) -> list[list[int]]:
    """The nodes of each layer in barycentre order: sweeps left to right (by
    the mean position of their dependencies) then right to left (of their
    dependents); ties keep the earlier order (``first``: backlog order)."""
    count = max(layer.values(), default=-1) + 1
    rows: list[list[int]] = [[] for _ in range(count)]
    start = [n for n in first if n in layer] or sorted(layer)
    for node in start:
        rows[layer[node]].append(node)
    ins: dict[int, list[int]] = {n: [] for n in layer}
    outs: dict[int, list[int]] = {n: [] for n in layer}
    for dep, node in edges:
        ins[node].append(dep)
        outs[dep].append(node)
    for _ in range(sweeps):
        for forward in (True, False):
            span = range(1, count) if forward else range(count - 2, -1, -1)
            for i in span:
                near = rows[i - 1] if forward else rows[i + 1]
                pos = {n: p for p, n in enumerate(near)}
                links = ins if forward else outs
                current = {n: p for p, n in enumerate(rows[i])}

                def key(n: int, pos: dict[int, int] = pos, links: dict[int, list[int]] = links,
                        current: dict[int, int] = current) -> tuple[float, int]:  # fmt: skip
                    seen = [pos[m] for m in links[n] if m in pos]
                    return (sum(seen) / len(seen) if seen else float(current[n]), current[n])

                rows[i].sort(key=key)
    return rows


def dependency_layout(store: Store, *, hide_passed: bool = False) -> Layout:
    """The backlog's features and their dependencies, laid out."""
    features = Backlog(store).features()
    states = display_states(features)
    shown = [f for f in features if not (hide_passed and states[f.id] == "passed")]
    ids = [f.id for f in shown]
    known = set(ids)
    deps = {f.id: [d for d in f.depends_on if d in known] for f in shown}
    edges = tuple((d, f) for f in ids for d in deps[f])
    layer = layers_of(ids, deps)
    rows = order_layers(layer, edges, ids)
    order = {n: p for row in rows for p, n in enumerate(row)}
    by_id = {f.id: f for f in shown}
    nodes = tuple(
        Node(n, by_id[n].name, states[n], layer[n], order[n]) for row in rows for n in row
    )
    kept = tuple((d, f) for d, f in edges if layer[d] < layer[f])  # a cycle's back edge: not drawn
    return Layout(
        nodes=nodes,
        edges=kept,
        layers=len(rows),
        widest=max((len(r) for r in rows), default=0),
        hidden=len(features) - len(shown),
    )
