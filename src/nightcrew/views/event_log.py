"""The project's event log, read back from the store: what ``nightcrew logs``
prints and the dashboard's timeline will page through.

Every event a run emits is kept in the ``events`` table (``core/events.py``:
all kinds but state changes, usage and progress), so the log survives the
process that wrote it and can be read while a build runs in another one. Each
row becomes its typed event again (:func:`event_from_json`); the words are the
console's, lent by the caller as a :data:`Render` (views sit below the cli).

Filters run in SQL (the run through its index, the rest with ``json_extract``
on rows of that run); only ``grep`` also needs the rendered line, so it is
checked in Python on rows SQL has already narrowed. A page ends at a cursor,
the highest event id it looked at: a follower asks for the events after it,
a timeline for the ones before its first entry.

Levels: each kind has one, in ``views/event_levels.py``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from nightcrew.core.errors import BadInput
from nightcrew.core.events import Event, ProgressSnapshot, event_from_json
from nightcrew.core.states import RunState
from nightcrew.engine.liveness import orchestrator_gone
from nightcrew.store.records import Store
from nightcrew.views.event_levels import LOG_LEVELS, LogLevel, level_of, level_sql, stored_kinds

# ---- filters -----------------------------------------------------------------------


@dataclass(frozen=True)
class LogFilter:
    """Which events a log shows. ``run_id`` None: every run of the project."""

    run_id: str | None = None
    feature: int | None = None  # a backlog feature's id
    lane: int | None = None  # 0: a run working in place
    kinds: tuple[str, ...] = ()  # none: every kind
    level: LogLevel = "info"  # the least level shown
    grep: str | None = None  # case-insensitive, in the line or the payload


def check_filter(store: Store, flt: LogFilter) -> None:
    """Bad input for a filter that names nothing: an unknown run, feature,
    kind or level (with the kinds close to a mistyped one)."""
    known = set(stored_kinds())
    for kind in flt.kinds:
        if kind not in known:
            close = difflib.get_close_matches(kind, sorted(known), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see docs/events.md"
            raise BadInput(f"--kind {kind}: no such event kind{hint}")
    if flt.level not in LOG_LEVELS:
        raise BadInput(f"--level {flt.level}: give one of {', '.join(LOG_LEVELS)}")
    if flt.run_id is not None:
        try:
            store.run(flt.run_id)
        except KeyError:
            raise BadInput(f"--run {flt.run_id}: no such run in this project") from None
    if flt.feature is not None:
        row = store.db.execute("SELECT 1 FROM features WHERE id = ?", (flt.feature,)).fetchone()
        if row is None:
            raise BadInput(f"--feature {flt.feature}: no feature #{flt.feature} in the backlog")


# Kinds whose line is their payload's own words behind a fixed prefix: grep
# looks for its text in their payload in SQL, so a long log of the agent's
# words is not rendered row by row.
_WORDY = ("text", "thinking", "tool_call", "tool_error", "session")


def _where(flt: LogFilter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if flt.run_id is not None:
        clauses.append("e.run_id = ?")
        args.append(flt.run_id)
    if flt.kinds:
        clauses.append("e.kind IN (SELECT value FROM json_each(?))")
        args.append(json.dumps(list(flt.kinds)))
    if flt.level != "debug":
        sql, level_args = level_sql(flt.level)
        clauses.append(sql)
        args += level_args
    if flt.lane is not None:
        clauses.append(f"{_LANE} = ?")
        args.append(flt.lane)
    if flt.feature is not None:
        clauses.append(
            "(w.feature_id = ? OR json_extract(e.payload_json, '$.item') = ?"
            " OR json_extract(e.payload_json, '$.feature') = ?)"
        )
        args += [flt.feature, f"feature #{flt.feature}", flt.feature]
    if flt.grep:
        # the payload as stored escapes non-ASCII letters (\u00e9), and SQLite
        # folds only ASCII: look for the text as typed, and escaped as written
        # in lower and upper case (Python checks the row case-blind after)
        needles = {flt.grep.lower()} | {
            json.dumps(v)[1:-1].lower() for v in (flt.grep, flt.grep.lower(), flt.grep.upper())
        }
        found = " OR ".join("instr(lower(e.payload_json), ?) > 0" for _ in needles)
        clauses.append(f"(e.kind NOT IN (SELECT value FROM json_each(?)) OR {found})")
        args += [json.dumps(list(_WORDY)), *sorted(needles)]
    return clauses, args


# ---- entries -----------------------------------------------------------------------

_LANE = "COALESCE(json_extract(e.payload_json, '$.lane'), a.lane, 0)"
_SELECT = f"""
SELECT e.id, e.ts, e.run_id, e.attempt_id, e.kind, e.payload_json, {_LANE} AS lane,
       w.number, w.feature_id, w.key
FROM events e
LEFT JOIN attempts a ON a.id = e.attempt_id
LEFT JOIN work_items w ON w.id = COALESCE(a.item_id, json_extract(e.payload_json, '$.item_id'))
"""


@dataclass(frozen=True)
class LogEntry:
    """One stored event, typed again, with what a line about it needs."""

    id: int
    ts: str  # UTC, ISO 8601
    run_id: str
    attempt_id: int | None
    kind: str
    level: LogLevel
    lane: int  # 0: in place, or the run itself
    item: str | None  # "feature #7", "batch 2": the work item it is about, when known
    payload: dict[str, Any]
    event: Event | None  # None: a kind this version does not know
    line: str = ""  # the console's words for it (filled by the Render)

    def where(self) -> ProgressSnapshot | None:
        """Where the console would have been when it printed this (the unit a
        tool call or a gate belongs to), from the event's work item."""
        if self.item is None:
            return None
        unit, _, number = self.item.partition(" ")
        shown = number.lstrip("#")
        return ProgressSnapshot(
            run_id=self.run_id,
            unit=unit,
            lane=self.lane,
            batch_number=int(shown) if shown.isdigit() else None,
        )

    def as_json(self) -> dict[str, Any]:
        """One NDJSON line: the row, its level and line, and its stored payload."""
        return {
            "id": self.id,
            "ts": self.ts,
            "run_id": self.run_id,
            "attempt_id": self.attempt_id,
            "kind": self.kind,
            "level": self.level,
            "lane": self.lane,
            "item": self.item,
            "line": self.line,
            "payload": self.payload,
        }


Render = Callable[[LogEntry], str]


@dataclass(frozen=True)
class LogPage:
    entries: tuple[LogEntry, ...]
    cursor: int  # the highest event id looked at: ask for the events after it next


def read_log(
    store: Store,
    flt: LogFilter,
    *,
    render: Render,
    after: int = 0,
    before: int | None = None,
    limit: int | None = None,
    newest: bool = False,
) -> LogPage:
    """The entries of ``flt`` with ids in (``after``, ``before``), oldest first:
    the first ``limit`` of them, or with ``newest`` the last ``limit``."""
    top = store.db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
    upto = top if before is None else min(top, before - 1)
    clauses, args = _where(flt)
    sql = (
        _SELECT
        + " WHERE "
        + " AND ".join(["e.id > ?", "e.id <= ?", *clauses])
        + f" ORDER BY e.id {'DESC' if newest else 'ASC'}"
    )
    entries: list[LogEntry] = []
    needle = flt.grep.casefold() if flt.grep else None
    for row in store.db.execute(sql, (after, upto, *args)):
        entry = _entry(row)
        entry = replace(entry, line=render(entry))
        if needle is not None and not _matches(entry, needle):
            continue
        entries.append(entry)
        if limit is not None and len(entries) >= limit:
            break
    if newest:
        entries.reverse()
        return LogPage(tuple(entries), upto)
    full = limit is not None and len(entries) >= limit
    return LogPage(tuple(entries), entries[-1].id if full else upto)


def pages(
    store: Store, flt: LogFilter, *, render: Render, after: int = 0, size: int = 500
) -> Iterator[LogPage]:
    """Every entry of ``flt`` after ``after``, oldest first, a page at a time
    (a long log starts printing at once); the last page's cursor is where a
    follower goes on from."""
    while True:
        page = read_log(store, flt, render=render, after=after, limit=size)
        yield page
        if len(page.entries) < size:
            return
        after = page.cursor


def _matches(entry: LogEntry, needle: str) -> bool:
    if needle in entry.line.casefold():
        return True
    return needle in json.dumps(entry.payload, ensure_ascii=False).casefold()


def _entry(row: Any) -> LogEntry:
    payload = json.loads(row["payload_json"])
    kind = row["kind"]
    item = _item(row, payload)
    event: Event | None
    try:
        event = event_from_json(
            {**payload, "kind": kind, "run_id": row["run_id"], "attempt_id": row["attempt_id"]}
        )
    except (ValueError, TypeError):  # a kind (or shape) from another version
        event = None
    if event is not None and item is not None:
        event = _with_item(event, item)
    return LogEntry(
        id=row["id"],
        ts=row["ts"],
        run_id=row["run_id"],
        attempt_id=row["attempt_id"],
        kind=kind,
        level=level_of(kind, payload),
        lane=int(row["lane"] or 0),
        item=item,
        payload=payload,
        event=event,
    )


def _item(row: Any, payload: Mapping[str, Any]) -> str | None:
    """How the run names the event's work item: its own ``item``, else the
    work item of its attempt (or of its ``item_id``)."""
    named = payload.get("item")
    if isinstance(named, str) and named:
        return named
    if row["feature_id"] is not None:
        return f"feature #{row['feature_id']}"
    if row["number"] is not None:
        return f"batch {row['number']}"
    feature = payload.get("feature")
    if isinstance(feature, int):
        return f"feature #{feature}"
    return None


def _with_item(event: Event, item: str) -> Event:
    """Rows stored before the log existed left some events' ``item`` out: fill it."""
    if getattr(event, "item", None) == "":
        return replace(event, item=item)  # type: ignore[call-arg]
    return event


# ---- following a run ---------------------------------------------------------------


@dataclass(frozen=True)
class RunEnd:
    """Why a followed run is over: it finished (``gone`` None), or its process died."""

    state: str
    gone: int | None = None  # the pid of the orchestrator that is no longer alive


def run_ended(store: Store, run_id: str, seen: int) -> RunEnd | None:
    """Whether a follower that has looked at every event up to id ``seen`` has
    seen the run end: its ``run_finished`` (of its latest finish; a resumed run
    has older ones) is among them, or its process is gone."""
    run = store.run(run_id)
    if run.state == RunState.RUNNING:
        gone = orchestrator_gone(store, run)
        return RunEnd("crashed", gone) if gone is not None else None
    row = store.db.execute(
        "SELECT id FROM events WHERE run_id = ? AND kind = 'run_finished' AND ts >= ?"
        " ORDER BY id DESC LIMIT 1",
        (run_id, run.finished_at or ""),
    ).fetchone()
    if row is not None:
        return RunEnd(str(run.state)) if row[0] <= seen else None
    if run.state in (RunState.CRASHED, RunState.ABANDONED):  # closed by another run
        return RunEnd(str(run.state))
    return None  # its run_finished is on its way


# ---- exports -----------------------------------------------------------------------


def ndjson(entries: Sequence[LogEntry]) -> str:
    """One JSON object per line (``LogEntry.as_json``)."""
    return "".join(json.dumps(e.as_json(), ensure_ascii=False) + "\n" for e in entries)


def markdown_head(title: str) -> str:
    """The document's heading and the table's header rows."""
    return (
        f"# {_cell(title)}\n\n| time (UTC) | run | lane | level | event |\n|---|---|---|---|---|\n"
    )


def markdown_row(entry: LogEntry) -> str:
    """One row of the markdown table: time, run, lane, level and the line."""
    when = entry.ts.replace("T", " ")[:19] + "Z"
    lane = str(entry.lane) if entry.lane else "-"
    return f"| {when} | `{entry.run_id}` | {lane} | {entry.level} | {_cell(entry.line)} |\n"


def markdown(entries: Sequence[LogEntry], title: str) -> str:
    """The log as a markdown document: a heading and a table."""
    return markdown_head(title) + "".join(markdown_row(e) for e in entries)


def _cell(text: str) -> str:
    """Text inside one table cell: on one line, with no pipe or HTML to break out."""
    flat = " ".join(text.split())
    for char, escaped in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;")):
        flat = flat.replace(char, escaped)
    return flat
