"""The charts page's pictures, drawn on the server as inline SVG like the
sparkline (``server/charts.py``): stacked bars per day by model, and bars
of a ratio per attempt. Numbers become coordinates here; the words (titles,
amounts, legends) are the template's. A day whose cost is partly unknown
gets a hollow mark on its bar: its height is only what is known."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from markupsafe import Markup, escape

W, H, PAD_L, PAD_B, PAD_T, PAD_R = 960, 240, 8, 36, 36, 8
PALETTE = 6  # models take the classes series-0 … series-5 in turn


def _frame(label: str, width: int = W, height: int = H) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{escape(label)}"><title>{escape(label)}</title>'
    )


def stacked_days(
    days: Sequence[date],
    series: Mapping[str, Sequence[float]],
    *,
    label: str,
    axis: str,
    unknown: Sequence[bool] = (),
) -> Markup:
    """Bars per day, one segment per model (``series``: model → a value per
    day), with the top value as ``axis`` on the left and every seventh day's
    date below. ``unknown[i]``: day i has costs nobody could price."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    top = max(totals, default=0.0)
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_B - PAD_T
    step = plot_w / max(1, len(days))
    parts = [_frame(label)]
    parts.append(
        f'<line class="axis" x1="{PAD_L}" y1="{PAD_T + plot_h}" x2="{W - PAD_R}"'
        f' y2="{PAD_T + plot_h}"/><line class="grid" x1="{PAD_L}" y1="{PAD_T}" x2="{W - PAD_R}"'
        f' y2="{PAD_T}"/><text class="tick" x="{PAD_L + 2}" y="{PAD_T - 6}">{escape(axis)}</text>'
    )
    for i, day in enumerate(days):
        x = PAD_L + i * step + step * 0.15
        base = float(PAD_T + plot_h)
        for n, values in enumerate(series.values()):
            v = values[i]
            if v <= 0 or top <= 0:
                continue
            h = v / top * plot_h
            base -= h
            parts.append(
                f'<rect class="series-{n % PALETTE}" x="{x:.1f}" y="{base:.1f}"'
                f' width="{step * 0.7:.1f}" height="{h:.1f}"/>'
            )
        if i < len(unknown) and unknown[i]:
            cy = max(PAD_T + 5.0, base - 6)  # above the bar, or on the top one's top
            parts.append(
                f'<circle class="unknown" cx="{x + step * 0.35:.1f}" cy="{cy:.1f}" r="3.5"/>'
            )
        if i % 7 == (len(days) - 1) % 7:
            last = i == len(days) - 1  # the right edge: the date ends at its bar
            parts.append(
                f'<text class="tick" x="{x + (step * 0.7 if last else step * 0.35):.1f}"'
                f' y="{H - 8}" text-anchor="{"end" if last else "middle"}">'
                f"{day.strftime('%m-%d')}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def ratio_bars(values: Sequence[float | None], *, label: str) -> Markup:
    """A bar per value from 0 to 1 (an attempt's cache-hit ratio); None, no
    prompt token, is a gap. Gridlines at 50 % and 100 %."""
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_B - PAD_T
    step = plot_w / max(1, len(values))
    parts = [_frame(label)]
    for frac, text in ((1.0, "100%"), (0.5, "50%"), (0.0, "")):
        y = PAD_T + plot_h * (1 - frac)
        parts.append(
            f'<line class="{"axis" if frac == 0 else "grid"}" x1="{PAD_L}" y1="{y:.1f}"'
            f' x2="{W - PAD_R}" y2="{y:.1f}"/><text class="tick" x="{PAD_L + 2}"'
            f' y="{y - 6:.1f}">{text}</text>'
        )
    for i, v in enumerate(values):
        if v is None:
            continue
        h = max(0.0, min(1.0, v)) * plot_h
        parts.append(
            f'<rect class="series-0" x="{PAD_L + i * step + step * 0.15:.1f}"'
            f' y="{PAD_T + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar(fraction: float, *, label: str) -> Markup:
    """A plain horizontal bar filled to ``fraction`` of the largest (0..1)."""
    shown = max(0.0, min(1.0, fraction))
    return Markup(
        f'<svg class="hbar" viewBox="0 0 100 8" preserveAspectRatio="none" role="img"'
        f' aria-label="{escape(label)}"><rect class="track" width="100" height="8" rx="2"/>'
        f'<rect class="series-0" width="{shown * 100:.1f}" height="8" rx="2"/></svg>'
    )
