"""The event log read back from a real store (views/event_log.py): each row is
its typed event again, in the console's words; filters by run, feature, lane,
kind, level and text; a cursor a follower pages on; the level table; NDJSON
and markdown."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from nightcrew.cli.event_lines import lines
from nightcrew.cli.log_lines import console_prints, log_renderer
from nightcrew.core import events as ev
from nightcrew.core.errors import BadInput
from nightcrew.core.events import EVENT_TYPES
from nightcrew.core.states import RunState
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import AttemptRow, ItemRow, RunRow, Store
from nightcrew.views.event_levels import LEVELS, LOG_LEVELS, level_of, stored_kinds
from nightcrew.views.event_log import (
    LogEntry,
    LogFilter,
    check_filter,
    markdown,
    ndjson,
    pages,
    read_log,
    run_ended,
)
from nightcrew.work.backlog import FeatureSpec
from tests.unit.test_events import example

ROOT = Path("/work/app")
render = log_renderer(ROOT)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "nightcrew.db")
    yield opened
    opened.close()


@dataclass
class Night:
    """Two builds of a backlog of three features, as the engine writes them."""

    store: Store
    old: RunRow
    run: RunRow
    items: dict[int, ItemRow]
    attempts: dict[int, AttemptRow]

    def emit(self, event: ev.Event) -> int:
        self.store.append_event(event)
        return int(self.store.db.execute("SELECT MAX(id) FROM events").fetchone()[0])


def _build(store: Store, features: list[int]) -> tuple[RunRow, dict[int, ItemRow]]:
    run = store.create_run(
        kind="backlog",
        source_path="",
        source_sha256="a" * 64,
        config={"max_budget_usd": 5.0},
        prefix_sha256="b" * 64,
        pid=os.getpid(),
    )
    store.set_run_state(run.id, RunState.RUNNING, reason="started")
    items = {
        n: store.add_item(
            run.id, key=f"feature-{n}", number=n, title=f"F{n}", body="", sha="c" * 64,
            feature_id=n,
        )
        for n in features
    }  # fmt: skip
    return run, items


def _attempt(store: Store, run: RunRow, item: ItemRow, lane: int | None) -> AttemptRow:
    return store.start_attempt(
        run_id=run.id, item_id=item.id, backend="claude", model="sonnet",
        prefix_sha256="b" * 64, prompt_sha256="d" * 64, base_sha="e" * 40,
        evidence_dir=None, lane=lane,
    )  # fmt: skip


@pytest.fixture
def night(store: Store) -> Night:
    created = (
        Backlog(store)
        .create(
            [FeatureSpec(name=n, acceptance=("true",)) for n in ("Login", "Signup", "Feed")],
            source="test",
        )
        .created
    )
    old, _ = _build(store, [created[0]])
    store.append_event(ev.RunStarted(run_id=old.id, work="backlog"))
    store.append_event(
        ev.ItemFailed(run_id=old.id, lane=1, item="feature #1", reason="the tests fail")
    )
    store.set_run_state(old.id, RunState.FAILED, reason="x", message="1 feature failed")
    run, items = _build(store, created)
    one = _attempt(store, run, items[1], lane=1)
    two = _attempt(store, run, items[2], lane=2)
    return Night(store, old, run, items, {1: one, 2: two})


def seed_story(n: Night) -> dict[str, int]:
    """A build's story: lane 1 works feature #1, lane 2 feature #2."""
    r, a1, a2 = n.run.id, n.attempts[1].id, n.attempts[2].id
    return {
        "started": n.emit(ev.RunStarted(run_id=r, work="backlog")),
        "attempt": n.emit(
            ev.AttemptStarted(
                run_id=r, item_id=n.items[1].id, attempt_id=a1, lane=1,
                heading="feature #1 'Login'", number=1, model="sonnet",
            )
        ),
        # the recorder's events name no lane and no item: their attempt does
        "tool": n.emit(
            ev.ToolCalled(run_id=r, attempt_id=a1, name="Bash", input={"command": "ls"})
        ),
        "text": n.emit(ev.TextSeen(run_id=r, attempt_id=a2, text="Le café | est <b>prêt</b>")),
        "denied": n.emit(
            ev.ToolDenied(
                run_id=r, attempt_id=a2, lane=2, tool="Bash", summary="git push",
                rule="git-push", reason="pushes", message="denied by policy: git push",
            )
        ),
        "gate": n.emit(
            ev.GateChecked(
                run_id=r, attempt_id=a1, lane=1, name="tests", passed=False,
                detail=" (1 failed)", reason=" — test_login",
            )
        ),
        "retry": n.emit(
            ev.DecisionMade(
                run_id=r, lane=1, action="retry", reason="the tests fail", model="opus",
                feature=1, item="feature #1", escalated=True,
            )
        ),
        "warning": n.emit(
            ev.BudgetWarning(
                run_id=r, budget="run", name="the run's budget (--max-budget-usd $5.00)",
                limit_usd=Decimal("5"), spent_usd=Decimal("4.1"),
            )
        ),
        "claim": n.emit(
            ev.ClaimChecked(run_id=r, feature=3, passed=True, gates=(), item="feature #3")
        ),
        "passed": n.emit(ev.ItemPassed(run_id=r, lane=1, item="feature #1", commit="a" * 40)),
    }  # fmt: skip


def stored_example(kind: str, run_id: str) -> ev.Event:
    """An event of ``kind`` with every field set, as a run would store it."""
    event = dataclasses.replace(example(EVENT_TYPES[kind]), run_id=run_id, attempt_id=None)
    if isinstance(event, ev.LeftAlone):
        return dataclasses.replace(event, resumed=False)
    if isinstance(event, ev.UsageLimitWait):
        return dataclasses.replace(event, until="2025-03-01T10:00:00+00:00")
    return event


def ids(page_entries: object) -> list[int]:
    return [e.id for e in page_entries]  # type: ignore[attr-defined]


def everything(night: Night) -> tuple[LogEntry, ...]:
    """The latest build's whole log, the agent's words too."""
    flt = LogFilter(run_id=night.run.id, level="debug")
    return read_log(night.store, flt, render=render).entries


def log(store: Store, **kw: object) -> list[int]:
    return ids(read_log(store, LogFilter(**kw), render=render).entries)  # type: ignore[arg-type]


# ---- words ---------------------------------------------------------------------------


def test_each_row_is_its_event_again_in_the_consoles_words(night: Night) -> None:
    seen = seed_story(night)
    entries = {e.id: e for e in everything(night)}
    gate = entries[seen["gate"]]
    assert isinstance(gate.event, ev.GateChecked)
    assert gate.line == lines(gate.event, gate.where())[0][0]
    assert gate.line == "  feature #1 › gate tests: FAILED (1 failed) — test_login"
    assert entries[seen["retry"]].line == (
        "feature #1: escalating to opus — feature #1: the tests fail"
    )
    assert entries[seen["denied"]].line == "feature #2 › denied by policy: git push (git push)"
    # the console keeps quiet about these; the log says them in the same voice
    assert entries[seen["tool"]].line == "  feature #1 › Bash: ls"
    assert entries[seen["tool"]].lane == 1  # from its attempt
    assert entries[seen["text"]].line == "  feature #2 › says: Le café | est <b>prêt</b>"
    assert entries[seen["warning"]].line == (
        "budget warning: 82% of the run's budget (--max-budget-usd $5.00) spent"
        " ($4.1000 of $5.0000)"
    )
    assert entries[seen["claim"]].line == "feature #3 passes: claim confirmed, no agent run"
    # what the build's own console printed, and what only the log tells
    assert console_prints(gate) and not console_prints(entries[seen["tool"]])


@pytest.mark.parametrize("kind", stored_kinds())
def test_every_stored_kind_has_a_line_and_a_level(store: Store, kind: str) -> None:
    run, _ = _build(store, [])
    store.append_event(stored_example(kind, run.id))
    (entry,) = read_log(store, LogFilter(run_id=run.id, level="debug"), render=render).entries
    assert entry.kind == kind and entry.event is not None
    assert entry.line.strip()
    assert not entry.line.startswith(f"{kind}: "), "worded, not a list of fields"
    assert kind in LEVELS, "add the kind to views/event_levels.py's LEVELS"


def test_rows_stored_before_the_log_existed_still_read(night: Night) -> None:
    """A denial without its message and a decision without its item (as stored
    before) still make a line; a kind this version does not know shows its fields."""
    store, r = night.store, night.run.id
    denied = {"tool": "Bash", "summary": "rm -rf /", "rule": "rm", "reason": "no"}
    store.event(r, "tool_denied", denied, attempt_id=night.attempts[1].id)
    decision = {"feature": 2, "action": "give_up", "reason": "stuck", "model": None}
    store.event(r, "decision", {**decision, "stuck": True})
    store.event(r, "run_paused_someday", {"by": "alice"})
    entries = read_log(store, LogFilter(run_id=r, level="debug"), render=render).entries
    assert [e.line for e in entries] == [
        "feature #1 › denied (rm): no (rm -rf /)",
        "feature #2: give up: stuck",
        "run_paused_someday: by=alice",
    ]
    assert [e.level for e in entries] == ["error", "warn", "info"]


# ---- levels ----------------------------------------------------------------------------


def test_the_level_table_names_only_stored_kinds_and_known_fields() -> None:
    assert set(LEVELS) <= set(stored_kinds())
    for kind, rule in LEVELS.items():
        if rule.field_name:
            fields = {f.name for f in dataclasses.fields(EVENT_TYPES[kind])}
            assert rule.field_name in fields, kind


def test_levels_in_sql_agree_with_the_table(store: Store) -> None:
    """Every kind, and each value of a field that changes its level: the SQL
    filter for each least level keeps exactly the rows the table ranks there."""
    run, _ = _build(store, [])
    for kind in stored_kinds():
        base = stored_example(kind, run.id)
        variants = [base]
        rule = LEVELS[kind]
        if rule.field_name:
            variants += [dataclasses.replace(base, **{rule.field_name: v}) for v in rule.when]
        for event in variants:
            store.append_event(event)
    everything = read_log(store, LogFilter(run_id=run.id, level="debug"), render=render).entries
    assert len({e.level for e in everything}) == 4
    for least in LOG_LEVELS:
        shown = log(store, run_id=run.id, level=least)
        rank = LOG_LEVELS.index(least)
        assert shown == [e.id for e in everything if LOG_LEVELS.index(e.level) >= rank], least


def test_levels_that_depend_on_a_field() -> None:
    assert level_of("gate_result", {"passed": True}) == "info"
    assert level_of("gate_result", {"passed": False}) == "warn"
    assert level_of("attempt_finished", {"state": "crashed"}) == "error"
    assert level_of("attempt_finished", {"state": "timed_out"}) == "warn"
    assert level_of("item_skipped", {"failed": True}) == "error"
    assert level_of("run_finished", {"state": "succeeded"}) == "info"
    assert level_of("text", {}) == "debug"
    assert level_of("tool_denied", {}) == "error"


# ---- filters ---------------------------------------------------------------------------


def test_filters_by_run_feature_lane_and_kind(night: Night) -> None:
    seen = seed_story(night)
    store, r = night.store, night.run.id
    assert log(store, run_id=night.old.id) == [1, 2]
    # feature #1: its own events, its attempt's (named by no item), its decision
    assert log(store, run_id=r, feature=1, level="debug") == [
        seen["attempt"], seen["tool"], seen["gate"], seen["retry"], seen["passed"]
    ]  # fmt: skip
    # every run of it, when no run is named
    assert log(store, feature=1)[:1] == [2]
    assert log(store, run_id=r, feature=3) == [seen["claim"]]  # by its `feature` field
    assert log(store, run_id=r, lane=2, level="debug") == [seen["text"], seen["denied"]]
    assert log(store, run_id=r, lane=0) == [seen["started"], seen["warning"], seen["claim"]]
    assert log(store, run_id=r, kinds=("gate_result", "item_passed")) == [
        seen["gate"], seen["passed"]
    ]  # fmt: skip
    assert log(store, run_id=r, level="warn") == [seen["denied"], seen["gate"], seen["warning"]]
    assert log(store, run_id=r, level="error") == [seen["denied"]]


def test_grep_looks_in_the_line_and_the_payload_without_case(night: Night) -> None:
    seen = seed_story(night)
    store, r = night.store, night.run.id
    # words only the line has (the console's), and words only the payload has
    assert log(store, run_id=r, grep="ESCALATING") == [seen["retry"]]
    assert log(store, run_id=r, grep="git-push") == [seen["denied"]]
    # the agent's words, stored with their accents escaped, found in any case
    assert log(store, run_id=r, level="debug", grep="CAFÉ") == [seen["text"]]
    assert log(store, run_id=r, level="debug", grep="prêt</b>") == [seen["text"]]
    assert log(store, run_id=r, grep="nowhere at all") == []


def test_bad_filters_name_what_is_wrong(night: Night) -> None:
    store = night.store
    typo = r"--kind gate_reslt: no such event kind; did you mean gate_result"
    with pytest.raises(BadInput, match=typo):
        check_filter(store, LogFilter(kinds=("gate_reslt",)))
    with pytest.raises(BadInput, match=r"--kind progress: no such event kind"):
        check_filter(store, LogFilter(kinds=("progress",)))  # shown live, never stored
    with pytest.raises(BadInput, match=r"--level loud: give one of debug, info, warn, error"):
        check_filter(store, LogFilter(level="loud"))  # type: ignore[arg-type]
    with pytest.raises(BadInput, match=r"--run nope: no such run"):
        check_filter(store, LogFilter(run_id="nope"))
    with pytest.raises(BadInput, match=r"--feature 9: no feature #9 in the backlog"):
        check_filter(store, LogFilter(feature=9))
    check_filter(store, LogFilter(run_id=night.run.id, feature=2, kinds=("text",)))


# ---- the cursor -------------------------------------------------------------------------


def test_a_follower_pages_on_from_its_cursor(night: Night) -> None:
    seen = seed_story(night)
    store, flt = night.store, LogFilter(run_id=night.run.id, level="warn")
    first = read_log(store, flt, render=render)
    top = seen["passed"]
    # the cursor passed the rows the filter left out: nothing is read twice
    assert first.cursor == top
    assert read_log(store, flt, render=render, after=first.cursor).entries == ()
    late = night.emit(
        ev.MergeConflicted(
            run_id=night.run.id, lane=2, item="feature #2", branch="main", files=("a.py",)
        )
    )
    night.emit(ev.ItemPassed(run_id=night.run.id, item="feature #2"))  # info: left out
    page = read_log(store, flt, render=render, after=first.cursor)
    assert ids(page.entries) == [late] and page.cursor == late + 1


def test_limit_newest_and_before_page_back_and_forth(night: Night) -> None:
    seed_story(night)
    store, flt = night.store, LogFilter(run_id=night.run.id, level="debug")
    every = log(store, run_id=night.run.id, level="debug")
    head = read_log(store, flt, render=render, limit=3)
    assert ids(head.entries) == every[:3] and head.cursor == every[2]
    tail = read_log(store, flt, render=render, limit=3, newest=True)
    assert ids(tail.entries) == every[-3:]
    back = read_log(store, flt, render=render, limit=3, newest=True, before=every[-3])
    assert ids(back.entries) == every[-6:-3]
    assert [e.id for p in pages(store, flt, render=render, size=4) for e in p.entries] == every


def test_a_followed_run_ends_with_its_latest_finish(night: Night) -> None:
    store, r = night.store, night.run.id
    assert run_ended(store, r, seen=10**9) is None  # running, its process (this one) alive
    store.set_run_state(r, RunState.INTERRUPTED, reason="x", message="stopped")
    assert run_ended(store, r, seen=10**9) is None  # its run_finished is on its way
    done = night.emit(ev.RunFinished(run_id=r, state="interrupted", message="stopped"))
    assert run_ended(store, r, seen=done - 1) is None  # not seen yet
    assert run_ended(store, r, seen=done).state == "interrupted"  # type: ignore[union-attr]
    # resumed: the old finish is history, not the end
    store.set_run_state(r, RunState.RUNNING, reason="resumed")
    assert run_ended(store, r, seen=10**9) is None
    store.db.execute("UPDATE runs SET orchestrator_pid = ? WHERE id = ?", (2**22 + 12345, r))
    gone = run_ended(store, r, seen=10**9)
    assert gone is not None and gone.gone == 2**22 + 12345


# ---- exports ----------------------------------------------------------------------------


def test_ndjson_is_one_object_per_event(night: Night) -> None:
    seen = seed_story(night)
    entries = everything(night)
    text = ndjson(entries)
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == len(entries) and text.endswith("\n")
    text_row = next(row for row in rows if row["id"] == seen["text"])
    assert text_row == {
        "id": seen["text"],
        "ts": text_row["ts"],
        "run_id": night.run.id,
        "attempt_id": night.attempts[2].id,
        "kind": "text",
        "level": "debug",
        "lane": 2,
        "item": "feature #2",
        "line": "  feature #2 › says: Le café | est <b>prêt</b>",
        "payload": {"text": "Le café | est <b>prêt</b>"},
    }
    assert "café" in text  # readable, not \\u-escaped


def test_markdown_is_a_table_nothing_breaks_out_of(night: Night) -> None:
    seed_story(night)
    entries = everything(night)
    doc = markdown(entries, "nightcrew log: run | x")
    head, _, table = doc.partition("\n\n")
    assert head == "# nightcrew log: run \\| x"
    rows = table.splitlines()
    assert rows[:2] == ["| time (UTC) | run | lane | level | event |", "|---|---|---|---|---|"]
    assert len(rows) == 2 + len(entries)
    said = next(row for row in rows if "says:" in row)
    assert said.endswith(
        "| 2 | debug | feature #2 › says: Le café \\| est &lt;b&gt;prêt&lt;/b&gt; |"
    )
    # five cells in every row: no pipe of the agent's opens a sixth
    assert all(row.replace("\\|", "").count("|") == 6 for row in rows)
