"""Small charts drawn on the server as inline SVG: no chart library, no
script, nothing for the content security policy to allow. Numbers only
become coordinates here; the words around them are the templates'."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

SPARK_W, SPARK_H, SPARK_PAD = 140, 32, 3


def sparkline(values: Sequence[Decimal | None], *, label: str) -> Markup:
    """A line over ``values`` (oldest first; None, an unknown cost, is drawn
    as 0 and marked with a hollow dot), with the area under it and a dot on
    the latest. ``label`` is what a screen reader says."""
    if not values:
        return Markup("")
    top = max((v for v in values if v is not None), default=Decimal(0))
    step = (SPARK_W - 2 * SPARK_PAD) / max(1, len(values) - 1)
    height = SPARK_H - 2 * SPARK_PAD

    def y(v: Decimal | None) -> float:
        if v is None or top <= 0:
            return SPARK_H - SPARK_PAD
        return SPARK_H - SPARK_PAD - float(v / top) * height

    points = [(SPARK_PAD + i * step, y(v)) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{py:.1f}" for x, py in points)
    base = SPARK_H - SPARK_PAD
    area = f"{points[0][0]:.1f},{base} {line} {points[-1][0]:.1f},{base}"
    unknown = "".join(
        f'<circle class="unknown" cx="{x:.1f}" cy="{py:.1f}" r="2"/>'
        for (x, py), v in zip(points, values, strict=True)
        if v is None
    )
    lx, ly = points[-1]
    return Markup(
        f'<svg class="spark" viewBox="0 0 {SPARK_W} {SPARK_H}" width="{SPARK_W}"'
        f' height="{SPARK_H}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
        f'<polygon class="area" points="{area}"/>'
        f'<polyline class="line" points="{line}"/>'
        f'{unknown}<circle class="last" cx="{lx:.1f}" cy="{ly:.1f}" r="2.5"/></svg>'
    )


def bar(fraction: float, *, label: str) -> Markup:
    """A horizontal bar filled to ``fraction`` (0..1): green, amber from 80 %,
    red when spent."""
    shown = max(0.0, min(1.0, fraction))
    level = "over" if fraction >= 1 else "warn" if fraction >= 0.8 else "ok"
    return Markup(
        f'<svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" role="img"'
        f' aria-label="{escape(label)}"><title>{escape(label)}</title>'
        f'<rect class="track" width="100" height="8" rx="2"/>'
        f'<rect class="fill {level}" width="{shown * 100:.1f}" height="8" rx="2"/></svg>'
    )
