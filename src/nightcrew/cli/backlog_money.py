"""How ``backlog stats`` reads: the text form of
:func:`nightcrew.views.backlog_money.backlog_stats`."""

from __future__ import annotations

from typing import Any


def stats_text(stats: dict[str, Any]) -> str:
    cost = "unknown" if stats["cost_usd"] is None else f"${stats['cost_usd']:.4f}"
    states = ", ".join(f"{n} {s}" for s, n in sorted(stats["states"].items()))
    lines = [
        f"{stats['passed']} of {stats['total']} features passed ({states or 'none'})",
        f"spent so far: {cost}"
        + (
            f" (+{stats['cost_unknown_attempts']} attempts of unknown cost)"
            if stats["cost_unknown_attempts"]
            else ""
        ),
    ]
    if stats["unverified"]:
        lines.append(
            f"{stats['unverified']} claimed to pass but unverified (build checks those with"
            " commands; a person confirms a manual one with `nightcrew backlog pass ID`)"
        )
    if not stats["remaining"]:
        lines.append("nothing left to build")
        return "\n".join(lines)
    f = stats["forecast"]
    if f is None:
        lines.append(
            f"{stats['remaining']} left; no estimate yet (a category has no passed feature"
            " to estimate from)"
            if any(c["forecast"] for c in stats["by_category"].values())
            else f"{stats['remaining']} left; no feature has passed yet, so no estimate"
        )
    else:
        money = (
            "cost unknown"
            if f["cost_median"] is None
            else f"about ${f['cost_median']:.2f} (${f['cost_low']:.2f}–${f['cost_high']:.2f})"
        )
        minutes = f["seconds_median"] / 60
        lines.append(f"{stats['remaining']} left: {money}, about {minutes:.0f} min")
    for category, c in stats["by_category"].items():
        fc = c["forecast"]
        est = (
            "no estimate"
            if fc is None or fc["cost_median"] is None
            else f"~${fc['cost_median']:.2f}"
        )
        lines.append(f"  {category}: {c['remaining']} left, {est} (from {c['from']})")
    return "\n".join(lines)
