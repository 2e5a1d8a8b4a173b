"""The dashboard's templates (``server/templates``, Jinja2, autoescaped) and
the few ways a number reads there: money as ``nightcrew status`` prints it
(an unknown cost is "unknown", never $0; a partly unknown one "≥$…"),
durations, local times."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

from nightcrew.server.charts import bar, sparkline
from nightcrew.store.usage_query import parse_ts
from nightcrew.usage.pricing import CostTotal
from nightcrew.views.event_log import LogEntry

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
# An event's line in the log, for the project at a root (``cli/log_lines.log_line``).
LineOf = Callable[[LogEntry, Path], str]
# A feature's or batch's text as the person wrote it: markdown. Raw HTML in it
# stays text (``html`` off), and markdown-it refuses ``javascript:`` links.
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def money(cost: CostTotal | Decimal | None) -> str:
    """``$1.2345``; ``≥$1.2345`` when some of it is unknown; ``unknown`` when
    all of it is; ``—`` when there is nothing to know."""
    if cost is None:
        return "—"
    if isinstance(cost, Decimal):
        return f"${cost:.4f}"
    if cost.usd is None:
        return "unknown"
    return f"{'≥' if cost.unknown else ''}${cost.usd:.4f}"


def short_path(path: object, width: int = 44) -> str:
    """A long path by its end, which names the project: ``…/work/shop``."""
    text = str(path)
    home = str(Path.home())
    if text == home or text.startswith(home + "/"):
        text = "~" + text[len(home) :]
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def limit(value: Decimal) -> str:
    """A budget's limit as it was given: ``$5``, ``$1.5``."""
    return f"${value.normalize():f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def local_time(ts: str | None) -> str:
    """A stored UTC time as this machine's local ``YYYY-MM-DD HH:MM``."""
    if not ts:
        return "—"
    t = parse_ts(ts).astimezone()  # fields, not strftime: a third of the time, 100 rows a page
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}"


def clock(ts: str | None) -> str:
    """A stored UTC time as local ``HH:MM:SS``."""
    if not ts:
        return ""
    t = parse_ts(ts).astimezone()
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def iso(ts: str | None) -> str:
    """A stored time as ISO 8601 with its offset, for scripts (``data-since``)."""
    return parse_ts(ts).isoformat() if ts else ""


def markdown(text: str) -> Markup:
    """A plan's or backlog's text rendered as the markdown it was written in."""
    return Markup(_MARKDOWN.render(text))  # html is off: markdown-it escapes any in the text


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=money,
        limit=limit,
        duration=duration,
        local_time=local_time,
        clock=clock,
        iso=iso,
        short_path=short_path,
        markdown=markdown,
    )
    env.globals.update(sparkline=sparkline, bar=bar)
    return env


class Renderer:
    """Renders a template or one of its fragments with the values every page
    has (the CSRF token for htmx's requests)."""

    def __init__(self, csrf_token: str) -> None:
        self.env = environment()
        self.csrf_token = csrf_token

    def page(self, name: str, **values: Any) -> str:
        return self.env.get_template(name).render(csrf_token=self.csrf_token, **values)

    def fragment(self, name: str, **values: Any) -> str:
        return self.env.get_template(name).render(**values)
