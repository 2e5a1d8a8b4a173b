"""How money and durations read on the console: small and import-free, so
commands that never show a live run (``usage``) need not load the display."""

from __future__ import annotations

from decimal import Decimal


def money(value: Decimal | None, *, unknown: bool = False) -> str:
    if value is None:
        return "unknown"
    text = f"${value:.4f}"
    return f"≥{text}" if unknown else text


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
