"""Every project nightcrew knows, as the dashboard's first page lists them:
the latest run's state, the lanes at work, today's and the total cost, and
the cost of each of the last days (a sparkline).

The projects are the global registry's (every run registers its project);
their money is :func:`~nightcrew.views.project_usage.project_report`'s, so
these numbers are the ones ``nightcrew usage --by day`` prints.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from nightcrew.store.records import Store
from nightcrew.usage.pricing import CostTotal
from nightcrew.views.live import cost_json, live_view
from nightcrew.views.project_usage import project_report

DAYS = 14
NO_RUN = "no runs yet"
MISSING = "missing"  # registered, but its store is gone (moved or deleted)
UNREADABLE = "unreadable"  # its store cannot be opened
ZERO = CostTotal(Decimal(0), 0)


def project_key(root: Path) -> str:
    """A short, stable name of a project in URLs: its path never appears there."""
    return hashlib.sha256(str(root).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class DayCost:
    day: date
    cost: CostTotal

    def as_json(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), **cost_json(self.cost)}


@dataclass(frozen=True)
class ProjectSpend:
    """What a project's agents have cost: today (local), in total, and per day
    over the last :data:`DAYS` days (oldest first, days without use at $0)."""

    today: CostTotal
    total: CostTotal
    days: tuple[DayCost, ...]


@dataclass(frozen=True)
class ProjectCard:
    key: str
    root: Path
    name: str
    state: str  # the latest run's, NO_RUN or MISSING
    run_id: str | None
    kind: str | None  # plan | build
    started_at: str | None
    busy_lanes: int  # lanes whose agent, gates or landing are at work now
    spend: ProjectSpend | None  # None: not known (its store is missing)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "root": str(self.root),
            "name": self.name,
            "state": self.state,
            "run_id": self.run_id,
            "kind": self.kind,
            "started_at": self.started_at,
            "busy_lanes": self.busy_lanes,
            "today": cost_json(self.spend.today if self.spend else None),
            "total": cost_json(self.spend.total if self.spend else None),
            "days": [d.as_json() for d in self.spend.days] if self.spend else [],
        }


def local_tz() -> tzinfo:
    """The offset days are counted in: the user's, now (as ``nightcrew usage``)."""
    tz = datetime.now(UTC).astimezone().tzinfo
    assert tz is not None
    return tz


def project_spend(
    store: Store, root: Path, *, now: datetime | None = None, tz: tzinfo | None = None
) -> ProjectSpend:
    """Today's, the total and the last days' cost of the project in ``store``."""
    zone = tz or local_tz()
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    first = today - timedelta(days=DAYS - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=zone)
    report = project_report([(root, store)], "day", run_id=None, since=since, until=None, tz=zone)
    by_day = {g.key: g.cost for g in report.groups}
    days = tuple(
        DayCost(d, by_day.get(d.isoformat(), ZERO))
        for d in (first + timedelta(days=n) for n in range(DAYS))
    )
    return ProjectSpend(days[-1].cost, report.cost, days)


def project_card(
    root: Path,
    store: Store,
    *,
    now: datetime | None = None,
    tz: tzinfo | None = None,
    spend: ProjectSpend | None = None,
) -> ProjectCard:
    """``spend``: the project's, when the caller has it (a server keeps it
    between renders, :mod:`nightcrew.views.spend_cache`)."""
    spend = spend or project_spend(store, root, now=now, tz=tz)
    live = live_view(store, today=spend.today, total=spend.total, now=now)
    run = live.run
    return ProjectCard(
        key=project_key(root),
        root=root,
        name=root.name or str(root),
        state=NO_RUN if run is None else run.state,
        run_id=None if run is None else run.id,
        kind=None if run is None else ("build" if run.kind == "backlog" else run.kind),
        started_at=None if run is None else run.started_at,
        busy_lanes=sum(1 for c in live.lanes if c.busy),
        spend=spend,
    )


def missing_card(root: Path, state: str = MISSING) -> ProjectCard:
    """A registered project whose store is not there (any more), or cannot be read."""
    return ProjectCard(
        key=project_key(root),
        root=root,
        name=root.name or str(root),
        state=state,
        run_id=None,
        kind=None,
        started_at=None,
        busy_lanes=0,
        spend=None,
    )
