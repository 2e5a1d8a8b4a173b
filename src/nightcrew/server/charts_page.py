"""``/p/{key}/charts``: cost and tokens per day by model over the last 30
days, the dearest features, and the cache-hit ratio of the latest attempts,
from ``views/chart_data.py`` (added up in SQL), drawn as inline SVG
(``server/insight_charts.py``). ``/api/p/{key}/charts`` is the same as JSON;
``/api/p/{key}/estimate`` the project page's estimate of what is left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from nightcrew.server.insight_charts import ratio_bars, share_bar, stacked_days
from nightcrew.server.project_page import project_root
from nightcrew.server.projects import kept, open_store
from nightcrew.server.render import Renderer, money
from nightcrew.server.timeline_page import _Project
from nightcrew.usage.ledger import Forecast
from nightcrew.views.chart_data import (
    AttemptCache,
    DayModel,
    FeatureCost,
    cache_per_attempt,
    cost_per_feature,
    daily_by_model,
    day_range,
)
from nightcrew.views.estimates import backlog_estimate
from nightcrew.views.forecast import forecast_json
from nightcrew.views.project_overview import local_tz, project_key

router = APIRouter()


@dataclass(frozen=True)
class ChartData:
    days: list[date]
    daily: list[DayModel]
    features: list[FeatureCost]
    spent_features: int
    cache: list[AttemptCache]

    @property
    def models(self) -> list[str]:
        return sorted({d.model for d in self.daily})


def chart_data(store: Any, *, now: datetime | None = None, tz: tzinfo | None = None) -> ChartData:
    features, spent = cost_per_feature(store)
    return ChartData(
        day_range(now, tz),
        daily_by_model(store, now=now, tz=tz),
        features,
        spent,
        cache_per_attempt(store),
    )


def _kept_chart_data(root: Any, store: Any) -> ChartData:
    """The charts of today in this offset, kept while no usage record, attempt
    or feature changed (``views/read_cache.py``)."""
    zone = local_tz()
    now = datetime.now(UTC)
    today = (now.astimezone(zone).date(), zone.utcoffset(now))
    return kept(
        root, store, "charts", lambda s: chart_data(s, now=now, tz=zone), args=today, usage=True
    )


def _series(data: ChartData, value: str) -> dict[str, list[float]]:
    index = {d: i for i, d in enumerate(data.days)}
    out = {m: [0.0] * len(data.days) for m in data.models}
    for row in data.daily:
        if row.day not in index:
            continue
        if value == "cost":
            amount = float(row.cost.usd) if row.cost.usd is not None else 0.0
        else:
            t = row.tokens
            amount = float(t.input + t.output + t.cache_read + t.cache_write)
        out[row.model][index[row.day]] += amount
    return out


def _tokens(n: float) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e3 else f"{n:.0f}"


@router.get("/p/{key}/charts", response_class=HTMLResponse)
def charts_page(key: str, request: Request) -> HTMLResponse:
    root = project_root(key)
    with open_store(root) as store:
        data = _kept_chart_data(root, store)
    renderer: Renderer = request.app.state.renderer
    cost = _series(data, "cost")
    tokens = _series(data, "tokens")
    unknown_days = {d.day for d in data.daily if d.cost.unknown}
    unknown = [d in unknown_days for d in data.days]
    cost_top = max((sum(v[i] for v in cost.values()) for i in range(len(data.days))), default=0)
    token_top = max((sum(v[i] for v in tokens.values()) for i in range(len(data.days))), default=0)
    dearest = max((f.cost.usd for f in data.features if f.cost.usd is not None), default=None)
    return HTMLResponse(
        renderer.page(
            "charts.html",
            project=_Project(project_key(root), root),
            data=data,
            cost_svg=stacked_days(
                data.days,
                cost,
                label="cost per day by model",
                axis=f"${cost_top:.2f}",
                unknown=unknown,
            ),
            token_svg=stacked_days(
                data.days, tokens, label="tokens per day by model", axis=_tokens(token_top)
            ),
            cache_svg=ratio_bars(
                [a.ratio for a in data.cache], label="cache-hit ratio per attempt"
            ),
            unknown_days=len(unknown_days),
            bars=[
                share_bar(
                    float(f.cost.usd / dearest) if f.cost.usd is not None and dearest else 0.0,
                    label=money(f.cost),
                )
                for f in data.features
            ],
        )
    )


def _cost(value: Any) -> str | None:
    usd = value.usd
    return None if usd is None else str(usd)


@router.get("/api/p/{key}/charts")
def charts_json(key: str) -> JSONResponse:
    root = project_root(key)
    with open_store(root) as store:
        data = _kept_chart_data(root, store)
    return JSONResponse(
        {
            "daily": [
                {
                    "day": d.day.isoformat(),
                    "model": d.model,
                    "tokens": vars(d.tokens),
                    "cost_usd": _cost(d.cost),
                    "unknown_cost_calls": d.cost.unknown,
                }
                for d in data.daily
            ],
            "features": [
                {
                    "id": f.feature_id,
                    "name": f.name,
                    "attempts": f.attempts,
                    "cost_usd": _cost(f.cost),
                    "unknown_cost_calls": f.cost.unknown,
                }
                for f in data.features
            ],
            "cache": [
                {"attempt": a.attempt_id, "label": a.label, "model": a.model, "ratio": a.ratio}
                for a in data.cache
            ],
        }
    )


def _forecast(result: Forecast | None) -> dict[str, Any] | None:
    return forecast_json(result)


@router.get("/api/p/{key}/estimate")
def estimate_json(key: str) -> JSONResponse:
    """The cost and time left for the backlog (the project page's estimate),
    per category with its basis; dollars as strings, unknown as null."""
    root = project_root(key)
    with open_store(root) as store:
        estimate = kept(root, store, "estimate", backlog_estimate)
    return JSONResponse(
        {
            "left": estimate.left,
            "passed": estimate.passed,
            "cost_usd": None if estimate.cost is None else str(estimate.cost),
            "seconds": estimate.seconds,
            "categories": [
                {
                    "category": c.category,
                    "left": c.left,
                    "samples": c.samples,  # 0: the backlog's medians were used
                    "forecast": _forecast(c.result),
                }
                for c in estimate.categories
            ],
            "forecast": _forecast(estimate.whole),  # as `nightcrew usage --forecast --json`
        }
    )
