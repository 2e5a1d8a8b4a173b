"""The project's usage as report entries: one :class:`Entry` per model per
attempt when the agent reported its final totals, else one per API response
seen while it streamed (an attempt killed mid-stream has only those).

Either way every call the project paid for is counted once: a response record
and a final record of the same attempt are never both taken.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from nightcrew.core.usage import Entry, TokenCounts
from nightcrew.store.records import Store

# The records a report counts (``u``, its attempt ``a``): an attempt's final records
# when it has them, else its responses. KEPT_WHERE takes the parameters of :func:`window`.
# Driven from the attempts, so each attempt asks once whether it has final records and
# reads only the records it keeps through the (attempt_id, kind, …) index, rather than
# every streamed response asking about its attempt (most are replaced by finals).
KEPT_FROM = """
FROM attempts a CROSS JOIN usage_records u ON u.attempt_id = a.id
  AND u.kind = CASE WHEN EXISTS (
        SELECT 1 FROM usage_records f WHERE f.attempt_id = a.id AND f.kind = 'final'
      ) THEN 'final' ELSE 'response' END
"""
KEPT_WHERE = """
WHERE (:run IS NULL OR a.run_id = :run)
  AND (:since IS NULL OR COALESCE(u.ts, a.started_at) >= :since)
  AND (:until IS NULL OR COALESCE(u.ts, a.started_at) < :until)
"""
# When a record was made (older records have no time of their own).
RECORD_TIME = "COALESCE(u.ts, a.finished_at, a.started_at)"
# The work item ``w`` and run ``r`` of a record, and the item as people read it
# (the SQL form of :func:`item_label`).
ITEM_JOINS = "JOIN work_items w ON w.id = a.item_id JOIN runs r ON r.id = a.run_id"
ITEM_LABEL = (
    "(CASE r.kind WHEN 'plan' THEN 'batch ' || COALESCE(w.number, w.key)"
    " ELSE '#' || w.key END || ': ' || w.title)"
)

_SQL = f"""
SELECT u.model, u.input_tokens, u.output_tokens, u.cache_read_tokens,
       u.cache_write_5m_tokens, u.cache_write_1h_tokens, u.cost_usd, u.cost_source,
       {RECORD_TIME} AS at,
       a.id AS attempt_id, a.run_id, a.session_id, w.number, w.key, w.title, r.kind AS run_kind
{KEPT_FROM} {ITEM_JOINS}
{KEPT_WHERE}
ORDER BY at, u.id
"""


def parse_ts(text: str) -> datetime:
    ts = datetime.fromisoformat(text)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def item_label(run_kind: str, number: int | None, key: str, title: str) -> str:
    if run_kind == "plan":
        return f"batch {number if number is not None else key}: {title}"
    return f"#{key}: {title}"


def window(
    run_id: str | None, since: datetime | None, until: datetime | None
) -> dict[str, str | None]:
    """The parameters of :data:`KEPT_RECORDS`."""
    return {
        "run": run_id,
        "since": since.astimezone(UTC).isoformat(timespec="milliseconds") if since else None,
        "until": until.astimezone(UTC).isoformat(timespec="milliseconds") if until else None,
    }


def project_entries(
    store: Store,
    project: Path,
    *,
    run_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Entry]:
    """Every use of a model in this project, oldest first (``since`` inclusive,
    ``until`` exclusive)."""
    params = window(run_id, since, until)
    entries = []
    for row in store.db.execute(_SQL, params):
        cost = row["cost_usd"]
        entries.append(
            Entry(
                ts=parse_ts(row["at"]),
                model=row["model"],
                tokens=TokenCounts(
                    row["input_tokens"],
                    row["output_tokens"],
                    row["cache_read_tokens"],
                    row["cache_write_5m_tokens"],
                    row["cache_write_1h_tokens"],
                ),
                cost_usd=Decimal(cost) if cost is not None else None,
                cost_source=row["cost_source"],
                session=row["session_id"],
                project=str(project),
                run_id=row["run_id"],
                item=item_label(row["run_kind"], row["number"], row["key"], row["title"]),
                attempt_id=row["attempt_id"],
            )
        )
    return entries


# The rows project_entries takes, only their known costs and whether each is
# at or after ``since``: what the budgets need, without building entries.
_SPEND_SQL = """
SELECT u.cost_usd, COALESCE(u.ts, a.started_at) >= :since AS recent
FROM usage_records u
JOIN attempts a ON a.id = u.attempt_id
JOIN work_items w ON w.id = a.item_id
JOIN runs r ON r.id = a.run_id
WHERE u.kind = CASE WHEN EXISTS (
        SELECT 1 FROM usage_records f WHERE f.attempt_id = u.attempt_id AND f.kind = 'final'
      ) THEN 'final' ELSE 'response' END
  AND u.cost_usd IS NOT NULL
"""


def project_spend(
    store: Store, since: datetime, *, attempt_id: int | None = None
) -> tuple[Decimal, Decimal]:
    """What the project's agents have cost (known costs): in all, and at or
    after ``since``; only attempt ``attempt_id``'s when given. Counts the same
    rows as :func:`project_entries`, in one query."""
    params = {
        "since": since.astimezone(UTC).isoformat(timespec="milliseconds"),
        "attempt": attempt_id,
    }
    sql = _SPEND_SQL + (" AND u.attempt_id = :attempt" if attempt_id is not None else "")
    total = recent = Decimal(0)
    for cost, is_recent in store.db.execute(sql, params):
        usd = Decimal(cost)
        total += usd
        if is_recent:
            recent += usd
    return total, recent


def responses_cost(store: Store, attempt_id: int) -> tuple[Decimal | None, bool]:
    """What attempt ``attempt_id``'s responses have been priced at so far (a
    running attempt's cost has no column yet): the known costs added up (None
    when none is known) and whether some response's cost is unknown."""
    cost: Decimal | None = None
    unknown = False
    for (usd,) in store.db.execute(
        "SELECT cost_usd FROM usage_records WHERE attempt_id = ? AND kind = 'response'",
        (attempt_id,),
    ):
        if usd is None:
            unknown = True
        else:
            cost = Decimal(usd) if cost is None else cost + Decimal(usd)
    return cost, unknown
