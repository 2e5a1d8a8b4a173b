"""The dependency graph (``views/dep_layout.py``) as inline SVG: a box per
feature, coloured by its state and linking to its page, in columns by layer
(dependencies left of what depends on them), with curved edges. Drawn on
the server: no graph library, no script. A large backlog makes a large
picture, which its container scrolls."""

from __future__ import annotations

from markupsafe import Markup, escape

from nightcrew.views.dep_layout import Layout

NODE_W, NODE_H = 190, 30
GAP_X, GAP_Y, PAD = 60, 10, 8
LABEL_CHARS = 23  # what a box holds in the 12px monospace font


def _x(layer: int) -> int:
    return PAD + layer * (NODE_W + GAP_X)


def _y(order: int) -> int:
    return PAD + order * (NODE_H + GAP_Y)


def graph_svg(layout: Layout, key: str) -> Markup:
    if not layout.nodes:
        return Markup("")
    width = 2 * PAD + layout.layers * NODE_W + (layout.layers - 1) * GAP_X
    height = 2 * PAD + layout.widest * NODE_H + (layout.widest - 1) * GAP_Y
    at = {n.id: (n.layer, n.order) for n in layout.nodes}
    parts = [
        f'<svg class="depgraph" xmlns="http://www.w3.org/2000/svg" width="{width}"'
        f' height="{height}" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="dependency graph of {len(layout.nodes)} features">'
    ]
    parts.append('<g class="edges">')
    for dep, node in layout.edges:
        (l1, o1), (l2, o2) = at[dep], at[node]
        x1, y1 = _x(l1) + NODE_W, _y(o1) + NODE_H / 2
        x2, y2 = _x(l2), _y(o2) + NODE_H / 2
        mid = (x1 + x2) / 2
        long = ' class="long"' if l2 - l1 > 1 else ""  # it passes other columns: fainter
        parts.append(
            f'<path{long} data-from="{dep}" data-to="{node}"'
            f' d="M{x1},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} {x2},{y2:.0f}"/>'
        )
    parts.append("</g>")
    for n in layout.nodes:
        x, y = _x(n.layer), _y(n.order)
        label = f"#{n.id} {n.name}"
        shown = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
        parts.append(
            f'<a class="node state-{escape(n.state)}" data-id="{n.id}"'
            f' href="/p/{escape(key)}/features/{n.id}">'
            f"<title>{escape(label)} ({escape(n.state.replace('_', ' '))})</title>"
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x + 8}" y="{y + NODE_H / 2 + 4:.0f}">{escape(shown)}</text></a>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
