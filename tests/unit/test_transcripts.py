"""Importing Claude Code transcripts: discovery, line shapes, incremental reads and
dedupe, against real files and a real SQLite database in tmp_path."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from nightcrew.core.errors import BadInput
from nightcrew.core.usage import Entry, TokenCounts
from nightcrew.usage import transcript_lines, transcripts
from nightcrew.usage.globaldb import open_global, transcript_entries
from nightcrew.usage.pricing import Pricer
from nightcrew.usage.transcript_lines import Segment, SegmentResult
from nightcrew.usage.transcripts import (
    ImportReport,
    default_roots,
    find_transcripts,
    import_transcripts,
)

MODEL = "claude-sonnet-4-5"


def assistant(
    message_id: str | None = "msg_1",
    request_id: str | None = "req_1",
    *,
    ts: str = "2026-11-21T09:39:44.440Z",
    model: str = MODEL,
    input_tokens: Any = 100,
    output: int = 20,
    cache_read: int = 0,
    write_5m: int = 0,
    write_1h: int = 0,
    sidechain: bool = False,
    session: str = "sess-1",
    cwd: str = "/home/me/proj",
    text: str = "hello",
    **extra: Any,
) -> str:
    """One assistant transcript line, shaped like Claude Code 2.1.329 writes it."""
    message: dict[str, Any] = {
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": write_5m + write_1h,
            "cache_read_input_tokens": cache_read,
            "output_tokens": output,
            "cache_creation": {
                "ephemeral_5m_input_tokens": write_5m,
                "ephemeral_1h_input_tokens": write_1h,
            },
            "service_tier": "standard",
        },
    }
    if message_id is not None:
        message["id"] = message_id
    line: dict[str, Any] = {
        "parentUuid": "37798f4e",
        "isSidechain": sidechain,
        "type": "assistant",
        "uuid": "d05b1b72",
        "timestamp": ts,
        "sessionId": session,
        "version": "2.1.329",
        "cwd": cwd,
        "message": message,
        **extra,
    }
    if request_id is not None:
        line["requestId"] = request_id
    return compact(line)


def compact(value: object) -> str:
    """JSON as Claude Code writes it (JSON.stringify: no spaces)."""
    return json.dumps(value, separators=(",", ":"))


def user(text: str = "run the tests") -> str:
    return compact(
        {"type": "user", "sessionId": "sess-1", "timestamp": "2026-11-21T09:39:40.000Z",
         "message": {"role": "user", "content": text}}
    )  # fmt: skip


def write(path: Path, *lines: str, end: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + end)
    return path


def append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_global(tmp_path / "usage.db")
    yield conn
    conn.close()


@pytest.fixture
def warnings() -> list[str]:
    return []


@pytest.fixture
def pricer(warnings: list[str]) -> Pricer:
    return Pricer(warn=warnings.append)


@pytest.fixture
def projects(tmp_path: Path) -> Path:
    return tmp_path / "claude" / "projects"


def run(db: sqlite3.Connection, pricer: Pricer, *paths: Path) -> ImportReport:
    return import_transcripts(db, find_transcripts(paths), pricer)


def entries(db: sqlite3.Connection) -> list[Entry]:
    return list(transcript_entries(db))


# ---- line shapes ----------------------------------------------------------------------------


def test_two_content_block_lines_of_one_response_are_one_entry(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    f = write(
        projects / "-home-me-proj" / "sess-1.jsonl",
        user(),
        assistant(text="I'll run a command.", cache_read=200, write_5m=50),
        assistant(text="tool_use block", cache_read=200, write_5m=50,
                  ts="2026-11-21T09:39:45.100Z"),
        user("hi"),
    )  # fmt: skip
    report = run(db, pricer, projects)
    assert (report.files_seen, report.files_read, report.entries_added) == (1, 1, 1)
    assert report.bytes_read == f.stat().st_size
    assert report.lines_skipped == 0
    [entry] = entries(db)
    assert entry.tokens == TokenCounts(input=100, output=20, cache_read=200, cache_write_5m=50)
    assert entry.ts == datetime(2026, 11, 21, 9, 39, 44, 440000, tzinfo=UTC)
    assert (entry.model, entry.session, entry.project) == (MODEL, "sess-1", "/home/me/proj")
    assert entry.cost_source == "priced"
    assert entry.cost_usd == Pricer().price_response(MODEL, entry.tokens).usd


def test_cache_writes_keep_their_5m_and_1h_split(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    write(projects / "p" / "s.jsonl", assistant(write_5m=100, write_1h=300))
    run(db, pricer, projects)
    [entry] = entries(db)
    assert (entry.tokens.cache_write_5m, entry.tokens.cache_write_1h) == (100, 300)
    # the 1h writes cost more than 5m writes would have
    as_5m = Pricer().price_response(MODEL, TokenCounts(100, 20, 0, 400, 0)).usd
    assert entry.cost_usd is not None and as_5m is not None and entry.cost_usd > as_5m


def test_cost_usd_on_old_lines_is_taken_as_reported(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    write(projects / "p" / "s.jsonl", assistant(costUSD=0.0123))
    run(db, pricer, projects)
    [entry] = entries(db)
    assert (entry.cost_usd, entry.cost_source) == (Decimal("0.0123"), "reported")


def test_unknown_model_has_unknown_cost_and_one_warning(
    db: sqlite3.Connection, pricer: Pricer, projects: Path, warnings: list[str]
) -> None:
    write(
        projects / "p" / "s.jsonl",
        assistant("m1", "r1", model="claude-imaginary-9"),
        assistant("m2", "r2", model="claude-imaginary-9"),
    )
    run(db, pricer, projects)
    got = entries(db)
    assert [(e.cost_usd, e.cost_source) for e in got] == [(None, None), (None, None)]
    assert len(warnings) == 1 and "claude-imaginary-9" in warnings[0]


def test_a_negative_count_reads_as_zero_like_everywhere_else(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    write(projects / "p" / "s.jsonl", assistant("m1", "r1", input_tokens=-5, write_1h=3))
    report = run(db, pricer, projects)
    [entry] = entries(db)
    assert (entry.tokens.input, entry.tokens.output, entry.tokens.cache_write_1h) == (0, 20, 3)
    assert report.lines_skipped == 0


def test_json_written_with_spaces_is_read_too(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    # Claude Code writes compact JSON, which is searched for fastest; a file some other
    # tool wrote with spaces after the colons is still read.
    lines = (assistant("m1", "r1"), user(), assistant("m2", "r2", input_tokens=7))
    spaced = [json.dumps(json.loads(line)) for line in lines]
    assert '"type": "assistant"' in spaced[0]
    write(projects / "p" / "s.jsonl", *spaced)
    report = run(db, pricer, projects)
    assert sorted(e.tokens.input for e in entries(db)) == [7, 100]
    assert report.lines_skipped == 0


def test_synthetic_messages_are_skipped_without_counting_as_bad(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    write(projects / "p" / "s.jsonl", assistant("m1", "r1", model="<synthetic>"), assistant())
    report = run(db, pricer, projects)
    assert [e.model for e in entries(db)] == [MODEL]
    assert report.lines_skipped == 0


def test_bad_lines_are_skipped_and_counted_never_fatal(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    bad = [
        "this is not json",
        '["assistant", 1]',  # JSON, but not an object
        '{"type":"assistant","message":"assistant"}',  # wrong shape
        '{"type":"assistant","message":{"usage":{}}',  # truncated JSON
        assistant("m2", "r2", ts="yesterday"),
        assistant("m3", "r3", ts="2026-11-21T09:39:44"),  # no zone
        assistant("m4", "r4", input_tokens="100"),
        '{"type":"user","message":{"content":"a cut-off line',  # no needle: cheap check
        "plain text line",
    ]
    good = [user(), "", assistant("m1", "r1"), '{"type": "summary", "role": "assistant"}']
    f = write(projects / "p" / "s.jsonl", *good, *bad)
    report = run(db, pricer, projects)
    assert report.lines_skipped == len(bad)
    assert len(entries(db)) == 1
    row = db.execute("SELECT lines_skipped FROM transcript_files").fetchone()
    assert row[0] == len(bad)
    assert report.bytes_read == f.stat().st_size


def test_lines_without_ids_are_always_kept(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    write(projects / "p" / "a.jsonl", assistant("m1", None), assistant("m1", None))
    write(projects / "p" / "b.jsonl", assistant(None, "r1"), assistant(None, "r1"))
    assert run(db, pricer, projects).entries_added == 4
    assert len(entries(db)) == 4


def test_missing_session_and_cwd_fall_back_to_the_file_layout(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    line = json.loads(assistant())
    del line["sessionId"], line["cwd"]
    write(projects / "-home-me-x" / "sess-9" / "subagents" / "agent-1.jsonl", json.dumps(line))
    run(db, pricer, projects)
    [entry] = entries(db)
    assert (entry.session, entry.project) == ("sess-9", "-home-me-x")


# ---- discovery --------------------------------------------------------------------------------


def test_subagent_transcripts_are_found_and_counted(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    main = write(projects / "-home-me-proj" / "sess-1.jsonl", assistant("m1", "r1"))
    sub = write(
        projects / "-home-me-proj" / "sess-1" / "subagents" / "agent-a1.jsonl",
        assistant("m2", "r2", sidechain=True),
    )
    write(projects / "-home-me-proj" / "sess-1" / "subagents" / "agent-a1.meta.json", "{}")
    assert find_transcripts([projects]) == [main, sub]
    run(db, pricer, projects)
    assert [e.session for e in entries(db)] == ["sess-1", "sess-1"]


def test_find_takes_files_as_given_sorted_and_unique(projects: Path) -> None:
    b = write(projects / "p" / "b.jsonl", user())
    a = write(projects / "p" / "a.jsonl", user())
    other = write(projects / "p" / "notes.txt", "x")
    assert find_transcripts([b, projects, a, other]) == [a, b, other]


def test_a_missing_path_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"nope: no such file or directory"):
        find_transcripts([tmp_path / "nope"])


def test_default_roots_follow_claude_config_dir_and_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, one, two = tmp_path / "home", tmp_path / "one", tmp_path / "two"
    for d in (home / ".claude" / "projects", one / "projects", two / "projects"):
        d.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{one}, {tmp_path / 'missing'},{two},{one}")
    assert default_roots() == [one / "projects", two / "projects", home / ".claude" / "projects"]
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    (home / ".config" / "claude" / "projects").mkdir(parents=True)
    assert default_roots() == [
        home / ".config" / "claude" / "projects",
        home / ".claude" / "projects",
    ]


# ---- dedupe across files ------------------------------------------------------------------------


def test_a_response_in_a_subagent_file_too_counts_once_as_main_session(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    write(projects / "p" / "s.jsonl", assistant("m1", "r1", input_tokens=10))
    write(
        projects / "p" / "s" / "subagents" / "agent-1.jsonl",
        assistant("m1", "r1", input_tokens=500, sidechain=True),
    )
    run(db, pricer, projects)
    assert [e.tokens.input for e in entries(db)] == [10]


def test_btw_replays_reusing_a_main_message_id_are_dropped(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    write(projects / "p" / "s.jsonl", assistant("m1", "r1", input_tokens=10))
    write(
        projects / "p" / "s" / "subagents" / "agent-1.jsonl",
        assistant("m1", "r2", input_tokens=20, sidechain=True),
        assistant("m2", "r3", input_tokens=30, sidechain=True),
    )
    run(db, pricer, projects)
    assert [e.tokens.input for e in entries(db)] == [10, 30]


# ---- incremental reads -------------------------------------------------------------------------


def test_an_unchanged_file_is_not_opened_again(
    db: sqlite3.Connection, pricer: Pricer, projects: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(projects / "p" / "s.jsonl", assistant())
    run(db, pricer, projects)

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("opened an unchanged file")

    monkeypatch.setattr(transcripts, "open", no_open, raising=False)
    report = run(db, pricer, projects)
    assert (report.files_unchanged, report.files_read, report.bytes_read) == (1, 0, 0)
    assert report.entries_added == 0
    assert len(entries(db)) == 1


def test_appended_lines_are_read_alone(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    f = write(projects / "p" / "s.jsonl", user("x" * 5000), assistant("m1", "r1"))
    run(db, pricer, projects)
    more = assistant("m2", "r2", ts="2026-11-21T10:00:00Z") + "\n"
    append(f, more)
    report = run(db, pricer, projects)
    assert report.bytes_read == len(more)
    assert (report.files_read, report.entries_added, report.files_rewritten) == (1, 1, 0)
    assert len(entries(db)) == 2


def test_a_partial_last_line_waits_until_it_is_complete(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    second = assistant("m2", "r2", ts="2026-11-21T10:00:00Z")
    f = write(projects / "p" / "s.jsonl", assistant("m1", "r1"), second[:50], end="")
    first = run(db, pricer, projects)
    assert first.entries_added == 1 and first.lines_skipped == 0
    offset = db.execute("SELECT offset FROM transcript_files").fetchone()[0]
    assert offset == len(assistant("m1", "r1")) + 1
    append(f, second[50:] + "\n")
    report = run(db, pricer, projects)
    assert report.entries_added == 1
    assert report.bytes_read == f.stat().st_size - offset
    assert [e.tokens.input for e in entries(db)] == [100, 100]


def _spaced(line: str) -> str:
    """``line`` written with spaces, so it is decoded by the slow path."""
    return json.dumps(json.loads(line))


@pytest.mark.parametrize("shape", ["compact", "spaced"])
@pytest.mark.parametrize("parallel_bytes", [1 << 40, 0], ids=["inline", "workers"])
def test_a_complete_last_line_without_newline_counts_once_and_what_follows_is_read(
    db: sqlite3.Connection, pricer: Pricer, projects: Path, monkeypatch: pytest.MonkeyPatch,
    shape: str, parallel_bytes: int,
) -> None:  # fmt: skip
    """A session file Claude Code is still writing (or one a crash cut) ends in a whole
    JSON line without its newline: it counts now, once, and the lines written after it
    count too, with the newline that ends it not taken for a bad line."""
    monkeypatch.setattr(transcripts, "PARALLEL_BYTES", parallel_bytes)
    shaped = _spaced if shape == "spaced" else str
    # Responses without ids: a line read twice would be two rows.
    last = shaped(assistant(None, None, input_tokens=7))
    f = write(projects / "p" / "s.jsonl", shaped(assistant(None, None)), last, end="")
    first = run(db, pricer, projects)
    assert (first.entries_added, first.lines_skipped) == (2, 0)
    assert sorted(e.tokens.input for e in entries(db)) == [7, 100]
    assert run(db, pricer, projects).files_unchanged == 1  # nothing new: not read again
    append(f, "\n" + shaped(assistant(None, None, input_tokens=9)) + "\n")
    report = run(db, pricer, projects)
    assert (report.entries_added, report.lines_skipped, report.files_rewritten) == (1, 0, 0)
    assert sorted(e.tokens.input for e in entries(db)) == [7, 9, 100]
    assert db.execute("SELECT offset FROM transcript_files").fetchone()[0] == f.stat().st_size


@pytest.mark.parametrize("parallel_bytes", [1 << 40, 0], ids=["inline", "workers"])
def test_an_incomplete_last_line_is_left_for_the_next_import(
    db: sqlite3.Connection, pricer: Pricer, projects: Path, monkeypatch: pytest.MonkeyPatch,
    parallel_bytes: int,
) -> None:  # fmt: skip
    monkeypatch.setattr(transcripts, "PARALLEL_BYTES", parallel_bytes)
    last = assistant(None, None, input_tokens=7)
    cut = last.rindex("}")  # all but the closing brace: almost whole, still not JSON
    f = write(projects / "p" / "s.jsonl", assistant(None, None), last[:cut], end="")
    first = run(db, pricer, projects)
    assert (first.entries_added, first.lines_skipped) == (1, 0)
    append(f, last[cut:])  # finished, its newline still to come
    second = run(db, pricer, projects)
    assert (second.entries_added, second.lines_skipped) == (1, 0)
    append(f, "\n")
    third = run(db, pricer, projects)
    assert (third.entries_added, third.lines_skipped) == (0, 0)
    assert sorted(e.tokens.input for e in entries(db)) == [7, 100]


def test_a_response_split_across_two_imports_counts_once(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    f = write(projects / "p" / "s.jsonl", assistant("m1", "r1", text="first block"))
    run(db, pricer, projects)
    append(f, assistant("m1", "r1", text="second block") + "\n")
    assert run(db, pricer, projects).entries_added == 0
    assert len(entries(db)) == 1


def test_a_truncated_file_is_read_again_from_the_start(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    f = write(projects / "p" / "s.jsonl", assistant("m1", "r1"), assistant("m2", "r2"))
    run(db, pricer, projects)
    write(f, assistant("m3", "r3", input_tokens=7))
    report = run(db, pricer, projects)
    assert (report.files_rewritten, report.entries_added) == (1, 1)
    assert report.bytes_read == f.stat().st_size
    assert [e.tokens.input for e in entries(db)] == [7]


def test_a_rewrite_of_the_same_size_is_noticed_by_its_head(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    f = write(projects / "p" / "s.jsonl", assistant("m1", "r1", input_tokens=111))
    run(db, pricer, projects)
    before = f.stat()
    write(f, assistant("m9", "r9", input_tokens=222))
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert f.stat().st_size == before.st_size
    report = run(db, pricer, projects)
    assert report.files_rewritten == 1
    assert [e.tokens.input for e in entries(db)] == [222]


def test_a_touched_file_with_nothing_new_reads_no_lines(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    f = write(projects / "p" / "s.jsonl", assistant())
    run(db, pricer, projects)
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    report = run(db, pricer, projects)
    assert (report.files_unchanged, report.bytes_read, report.entries_added) == (1, 0, 0)
    assert run(db, pricer, projects).files_unchanged == 1  # and now skipped by stat alone


def test_an_interrupted_import_loses_nothing_and_counts_nothing_twice(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    for i in range(4):
        write(projects / "p" / f"s{i}.jsonl", assistant(f"m{i}", f"r{i}"), assistant(f"n{i}"))
    files = find_transcripts([projects])

    def interrupt(path: Path) -> None:
        if path == files[2]:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_transcripts(db, files, pricer, on_file=interrupt)
    run(db, pricer, projects)
    assert len(entries(db)) == 8
    assert run(db, pricer, projects).files_unchanged == 4


def test_a_file_gone_since_discovery_is_passed_over(
    db: sqlite3.Connection, pricer: Pricer, projects: Path
) -> None:
    f = write(projects / "p" / "s.jsonl", assistant())
    report = import_transcripts(db, [f, projects / "p" / "gone.jsonl"], pricer)
    assert (report.files_seen, report.files_read, report.files_unreadable) == (2, 1, 0)


# ---- chunks and long lines ----------------------------------------------------------------------


def test_lines_longer_than_a_chunk_are_read_whole(
    db: sqlite3.Connection, pricer: Pricer, projects: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transcript_lines, "CHUNK_SIZE", 64)
    lines = [assistant(f"m{i}", f"r{i}", text="x" * (100 * i)) for i in range(1, 8)]
    f = write(projects / "p" / "s.jsonl", *[x for line in lines for x in (user("y" * 90), line)])
    report = run(db, pricer, projects)
    assert (report.entries_added, report.lines_skipped, report.bytes_read) == (
        7, 0, f.stat().st_size,
    )  # fmt: skip


def test_an_oversized_line_is_dropped_and_counted(
    db: sqlite3.Connection, pricer: Pricer, projects: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transcript_lines, "CHUNK_SIZE", 256)
    monkeypatch.setattr(transcript_lines, "MAX_LINE", 1024)
    huge = assistant("m2", "r2", text="z" * 5000)
    f = write(projects / "p" / "s.jsonl", assistant("m1", "r1"), huge, assistant("m3", "r3"))
    report = run(db, pricer, projects)
    assert (report.oversized_lines, report.lines_skipped, report.entries_added) == (1, 0, 2)
    assert report.bytes_read == f.stat().st_size


def test_an_unfinished_oversized_line_is_left_for_later(
    db: sqlite3.Connection, pricer: Pricer, projects: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transcript_lines, "CHUNK_SIZE", 256)
    monkeypatch.setattr(transcript_lines, "MAX_LINE", 1024)
    f = write(projects / "p" / "s.jsonl", assistant("m1", "r1"), "z" * 3000, end="")
    assert run(db, pricer, projects).oversized_lines == 0
    append(f, "\n" + assistant("m2", "r2") + "\n")
    report = run(db, pricer, projects)
    assert (report.oversized_lines, report.entries_added) == (1, 1)
    assert db.execute("SELECT offset FROM transcript_files").fetchone()[0] == f.stat().st_size


def test_small_flushes_give_the_same_entries(
    db: sqlite3.Connection, pricer: Pricer, projects: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transcripts, "SEGMENT_BYTES", 1)  # one segment per line
    write(
        projects / "p" / "s.jsonl",
        assistant("m1", "r1", input_tokens=5),
        assistant("m2", "r2"),
        assistant("m1", "r1", input_tokens=50),  # a larger copy after a flush wins
        assistant("m3", "r3"),
        assistant("m1", "r1", input_tokens=6),
    )
    assert run(db, pricer, projects).entries_added == 3
    assert sorted(e.tokens.input for e in entries(db)) == [50, 100, 100]


def test_a_read_error_drops_only_that_files_rows(
    db: sqlite3.Connection, pricer: Pricer, projects: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transcripts, "SEGMENT_BYTES", 1)  # rows are written before the error
    bad = write(projects / "p" / "a.jsonl", assistant("m1", "r1"), assistant("m2", "r2"))
    write(projects / "p" / "b.jsonl", assistant("m3", "r3"))
    real = transcripts.read_segment

    def failing(segment: Segment) -> SegmentResult:
        result = real(segment)
        if segment.path == str(bad) and segment.start > 0:
            return result._replace(error=OSError(5, "Input/output error"))
        return result

    monkeypatch.setattr(transcripts, "read_segment", failing)
    report = run(db, pricer, projects)
    assert (report.files_unreadable, report.files_read) == (1, 1)
    assert [e.tokens.input for e in entries(db)] == [100]
    monkeypatch.setattr(transcripts, "read_segment", real)
    assert run(db, pricer, projects).entries_added == 2
    assert len(entries(db)) == 3


def test_two_imports_at_once_never_count_a_response_twice(
    db: sqlite3.Connection, pricer: Pricer, projects: Path, tmp_path: Path
) -> None:
    f = write(projects / "p" / "s.jsonl", assistant("m1", "r1"), assistant(None, None))
    other = open_global(tmp_path / "usage.db")

    def meanwhile(path: Path) -> None:
        import_transcripts(other, [path], Pricer())

    try:
        import_transcripts(db, [f], pricer, on_file=meanwhile)
    finally:
        other.close()
    assert len(entries(db)) == 2
    assert run(db, pricer, projects).files_unchanged == 1


def test_worker_processes_import_exactly_what_one_process_does(
    pricer: Pricer, projects: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big import is read by worker processes, a big file in several segments;
    the database ends up the same, duplicates across segments included."""
    for n in range(6):
        lines = []
        for i in range(40):
            lines += [assistant(f"m{n}-{i}", f"r{n}-{i}", input_tokens=i), user("y" * 50)]
            if i % 7 == 0:  # the second content block of the same response
                lines.append(assistant(f"m{n}-{i}", f"r{n}-{i}", input_tokens=i))
        lines.append("not json at all")
        write(projects / f"p{n % 2}" / f"s{n}.jsonl", *lines)
    monkeypatch.setattr(transcripts, "SEGMENT_BYTES", 700)
    results = {}
    for name, parallel_bytes in (("inline", 1 << 40), ("workers", 0)):
        monkeypatch.setattr(transcripts, "PARALLEL_BYTES", parallel_bytes)
        conn = open_global(tmp_path / f"{name}.db")
        try:
            report = run(conn, pricer, projects)
            rows = sorted((e.session, e.tokens.input, str(e.cost_usd)) for e in entries(conn))
            results[name] = (report.entries_added, report.lines_skipped, report.bytes_read, rows)
        finally:
            conn.close()
    assert results["workers"] == results["inline"]
    assert results["inline"][0] == 6 * 40 and results["inline"][1] == 6


def test_worker_processes_price_and_warn_like_one_process(
    projects: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers price with the rate cards the importer resolved by the time their task is
    sent; the rest is priced by the importer. Either way: the same costs, unknown models
    unknown, and one warning per unknown model."""
    models = (MODEL, "claude-opus-4-5-20251101", "claude-imaginary-9")
    for n in range(8):
        lines = [
            assistant(f"m{n}-{i}", f"r{n}-{i}", model=models[i % 3], input_tokens=i, write_1h=n)
            for i in range(30)
        ]
        write(projects / "p" / f"s{n}.jsonl", *lines)
    monkeypatch.setattr(transcripts, "SEGMENT_BYTES", 900)  # many small tasks
    results = {}
    for name, parallel_bytes in (("inline", 1 << 40), ("workers", 0)):
        monkeypatch.setattr(transcripts, "PARALLEL_BYTES", parallel_bytes)
        warned: list[str] = []
        conn = open_global(tmp_path / f"{name}.db")
        try:
            run(conn, Pricer(warn=warned.append), projects)
            costs = sorted((e.model, e.tokens.input, e.cost_usd, e.cost_source)
                           for e in entries(conn))  # fmt: skip
        finally:
            conn.close()
        results[name] = (costs, warned)
    assert results["workers"] == results["inline"]
    costs, warned = results["inline"]
    assert len(warned) == 1 and "claude-imaginary-9" in warned[0]
    assert {(m, c is None, s) for m, _, c, s in costs} == {
        (MODEL, False, "priced"),
        ("claude-opus-4-5-20251101", False, "priced"),
        ("claude-imaginary-9", True, None),
    }


def test_a_file_read_in_segments_by_workers_is_followed_like_any_other(
    db: sqlite3.Connection, pricer: Pricer, projects: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transcripts, "SEGMENT_BYTES", 700)
    monkeypatch.setattr(transcripts, "PARALLEL_BYTES", 0)
    f = write(projects / "p" / "s.jsonl", *[assistant(f"m{i}", f"r{i}") for i in range(12)])
    assert run(db, pricer, projects).entries_added == 12
    append(f, assistant("m12", "r12") + "\n")  # grown: only the new line is read
    report = run(db, pricer, projects)
    assert (report.entries_added, report.files_rewritten) == (1, 0)
    before = f.stat()
    write(f, *[assistant(f"x{i}", f"y{i}") for i in range(13)])  # the same size, rewritten
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert f.stat().st_size == before.st_size
    report = run(db, pricer, projects)
    assert (report.files_rewritten, report.entries_added) == (1, 13)
    assert len(entries(db)) == 13
