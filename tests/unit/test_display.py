"""Plain console output, byte for byte, with an injected console and clock."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from rich.console import Console

from nightcrew.cli.display import PlainReporter, duration, money
from nightcrew.core.events import ProgressSnapshot
from nightcrew.engine.report import SummaryRow


class Clock:
    """Starts at 21:59:58 and moves one second per reading."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 21, 59, 58)

    def __call__(self) -> datetime:
        current = self.now
        self.now += timedelta(seconds=1)
        return current


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def reporter(out: io.StringIO) -> PlainReporter:
    console = Console(file=out, width=100, color_system=None)
    return PlainReporter(console, clock=Clock())


def test_notes_and_warnings_are_timestamped_lines(
    reporter: PlainReporter, out: io.StringIO
) -> None:
    reporter.note("starting run 20250301-abcd1234: PLAN.md")
    reporter.note("batch 4 is empty: skipped", "warn")
    reporter.note("the agent crashed", "error")
    # text that looks like Rich markup is printed as it is
    reporter.note("see [bold]tests/test_x.py[/bold] and [link]", "warn")
    assert out.getvalue() == (
        "[21:59:58] starting run 20250301-abcd1234: PLAN.md\n"
        "[21:59:59] warn: batch 4 is empty: skipped\n"
        "[22:00:00] error: the agent crashed\n"
        "[22:00:01] warn: see [bold]tests/test_x.py[/bold] and [link]\n"
    )


def test_a_long_note_is_not_wrapped(reporter: PlainReporter, out: io.StringIO) -> None:
    message = "gate tests failed: " + "x" * 150
    reporter.note(message)
    assert out.getvalue() == f"[21:59:58] {message}\n"


def test_tool_changes_print_once_each(reporter: PlainReporter, out: io.StringIO) -> None:
    snap = ProgressSnapshot(run_id="r1", batch_number=3, current_tool="Read src/parse.py")
    reporter.progress(snap)
    reporter.progress(snap)  # unchanged: nothing new
    snap = replace(snap, phase="agent")
    reporter.progress(snap)  # other fields changed, the tool did not: nothing new
    snap = replace(snap, current_tool="Bash: pytest -q")
    reporter.progress(snap)
    snap = replace(snap, current_tool=None)  # no tool: nothing printed
    reporter.progress(snap)
    assert out.getvalue() == (
        "[21:59:58]   batch 3 › Read src/parse.py\n[21:59:59]   batch 3 › Bash: pytest -q\n"
    )


def rows() -> list[SummaryRow]:
    return [
        SummaryRow(1, "Parser", "passed", 1, 65.2, Decimal("0.012345"), False, "0123456789abcdef"),
        SummaryRow(2, "CLI flag", "failed", 3, 3700, None, True, None),
        SummaryRow(3, "Docs", "passed", 2, 5, Decimal("1.5"), True, "abc1234"),
        SummaryRow(None, "Empty", "skipped", 0, None, None, False, None),
    ]


def table_rows(text: str) -> dict[str, list[str]]:
    """Body rows of the rendered table, keyed by title, cells stripped."""
    found = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            found[cells[1]] = cells
    return found


def test_summary_table_shows_each_row(reporter: PlainReporter, out: io.StringIO) -> None:
    reporter.summary(rows(), "3 batches · $1.5123 · 1 attempt of unknown cost")
    text = out.getvalue()
    assert text.startswith("nightcrew run summary")
    header = next(line for line in text.splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header.strip("┃").split("┃")] == [
        "Batch", "Title", "State", "Attempts", "Time", "Cost", "Commit",
    ]  # fmt: skip
    got = table_rows(text)
    assert got["Parser"] == ["1", "Parser", "passed", "1", "1:05", "$0.0123", "0123456789"]
    assert got["CLI flag"] == ["2", "CLI flag", "failed", "3", "1:01:40", "unknown", "-"]
    assert got["Docs"] == ["3", "Docs", "passed", "2", "0:05", "≥$1.5000", "abc1234"]
    assert got["Empty"] == ["-", "Empty", "skipped", "0", "-", "-", "-"]
    assert text.endswith("\n3 batches · $1.5123 · 1 attempt of unknown cost\n")
    assert "\x1b[" not in text  # no colour codes in plain output


@pytest.mark.parametrize(
    ("value", "unknown", "text"),
    [
        (Decimal("0.012345"), False, "$0.0123"),
        (Decimal("12"), False, "$12.0000"),
        (Decimal("0.5"), True, "≥$0.5000"),
        (None, False, "unknown"),
        (None, True, "unknown"),
        (Decimal(0), False, "$0.0000"),
    ],
)
def test_money(value: Decimal | None, unknown: bool, text: str) -> None:
    assert money(value, unknown=unknown) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0:00"), (59.6, "1:00"), (61, "1:01"), (3600, "1:00:00"), (3725, "1:02:05")],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_a_build_names_features_in_its_lines_panel_and_table(
    reporter: PlainReporter, out: io.StringIO
) -> None:
    from nightcrew.cli.display import LiveReporter

    snap = ProgressSnapshot(
        run_id="r1", unit="feature", batch_index=2, batch_total=5, batch_number=7,
        title="Log in", current_tool="Bash: pytest -q",
    )  # fmt: skip
    reporter.progress(snap)
    row = SummaryRow(7, "Log in", "passed", 1, 5, Decimal("0.1"), False, "abc", unit="feature")
    reporter.summary([row], "done")
    text = out.getvalue()
    assert text.startswith("[21:59:58]   feature #7 › Bash: pytest -q\nnightcrew build summary")
    assert table_rows(text)["Log in"][0] == "#7"
    assert "┃ Feature ┃" in text
    panel_out = io.StringIO()
    live = LiveReporter(Console(file=panel_out, width=100, color_system=None), clock=lambda: 0.0)
    try:
        live.progress(snap)
        rendered = Console(file=panel_out, width=100, color_system=None)
        rendered.print(live._render())
    finally:
        live.close()
    assert "feature 2/5 #7 Log in" in panel_out.getvalue()
    assert "feature $" in panel_out.getvalue() or "feature unknown" in panel_out.getvalue()


def test_repeated_identical_tool_calls_each_get_a_line(
    reporter: PlainReporter, out: io.StringIO
) -> None:
    snap = ProgressSnapshot(
        run_id="r1", batch_number=2, current_tool="Bash: pytest -q", tool_calls=1
    )
    reporter.progress(snap)
    reporter.progress(snap)  # another event of the same call: nothing new
    snap = replace(snap, tool_calls=2)  # the agent ran the same command again
    reporter.progress(snap)
    assert out.getvalue() == (
        "[21:59:58]   batch 2 › Bash: pytest -q\n[21:59:59]   batch 2 › Bash: pytest -q\n"
    )


def test_a_refused_tool_call_is_shown_once(reporter: PlainReporter, out: io.StringIO) -> None:
    snap = ProgressSnapshot(
        run_id="r1", batch_number=2, current_tool="Write: notes.txt", tool_calls=1
    )
    reporter.progress(snap)
    snap = replace(
        snap, tool_failure="Write: notes.txt failed: Permission to use Write has been denied."
    )
    snap = replace(snap, tool_failures=1)
    reporter.progress(snap)
    reporter.progress(snap)
    assert out.getvalue() == (
        "[21:59:58]   batch 2 › Write: notes.txt\n"
        "[21:59:59]   batch 2 › Write: notes.txt failed: Permission to use Write has been denied.\n"
    )


def test_the_live_panel_prints_a_refused_tool_call_above_itself() -> None:
    from nightcrew.cli.display import LiveReporter

    out = io.StringIO()
    live = LiveReporter(Console(file=out, width=120, color_system=None), clock=lambda: 0.0)
    try:
        snap = ProgressSnapshot(
            run_id="r1", batch_number=2, current_tool="Write: a.txt", tool_calls=1
        )
        live.progress(snap)
        snap = replace(snap, tool_failure="Write: a.txt failed: denied", tool_failures=1)
        live.progress(snap)
        live.progress(snap)
    finally:
        live.close()
    assert out.getvalue().count("batch 2 › Write: a.txt failed: denied") == 1


def test_a_summary_of_nothing_is_only_its_footer(reporter: PlainReporter, out: io.StringIO) -> None:
    reporter.summary([], "build 20261202-x: nothing is ready. Cost $0.0000")
    assert out.getvalue() == "build 20261202-x: nothing is ready. Cost $0.0000\n"


def test_an_empty_build_summary_names_features() -> None:
    from nightcrew.cli.display import summary_table

    console = Console(width=100, file=io.StringIO(), color_system=None)
    console.print(summary_table([], unit="feature"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert text.startswith("nightcrew build summary")
    assert "Feature" in text and "Batch" not in text


def test_a_narrow_summary_never_cuts_a_cost() -> None:
    from nightcrew.cli.display import summary_table

    long = SummaryRow(1, "A rather long feature title " * 3, "passed", 1, 65, Decimal("0.1637"),
                      False, "0123456789abcdef")  # fmt: skip
    console = Console(width=60, file=io.StringIO(), color_system=None)
    console.print(summary_table([long]))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "$0.1637" in text and "…" not in text  # folded, never cut


def test_the_live_panel_says_paused_in_its_header_until_resumed() -> None:
    from nightcrew.cli.display import LiveReporter
    from nightcrew.core import events as ev

    def header(live: LiveReporter) -> str:
        out = io.StringIO()
        Console(file=out, width=120, color_system=None).print(live._render())
        return out.getvalue().splitlines()[0]

    live = LiveReporter(Console(file=io.StringIO(), width=120, color_system=None), clock=lambda: 0)
    try:
        live.progress(ProgressSnapshot(run_id="r1", unit="feature", batch_number=7, title="Cart"))
        assert "PAUSED" not in header(live)
        live.emit(ev.RunPaused(run_id="r1", by="ada", origin="cli (pid 7)", in_flight=1))
        assert header(live).startswith("nightcrew PAUSED feature")
        live.progress(ProgressSnapshot(run_id="r1", lane=2, batch_number=8, title="Pay"))
        assert header(live) == "nightcrew lanes PAUSED"  # with lanes too
        live.emit(ev.RunResumed(run_id="r1", by="ada", origin="cli (pid 8)", paused_seconds=3))
        assert header(live) == "nightcrew lanes"
    finally:
        live.close()


def test_the_live_lanes_panel_shows_which_landings_the_queue_is_checking() -> None:
    from nightcrew.cli.display import LiveReporter
    from nightcrew.core import events as ev

    def queue_line(live: LiveReporter) -> str:
        panel = io.StringIO()
        Console(file=panel, width=120, color_system=None).print(live._render())
        return next(ln for ln in panel.getvalue().splitlines() if "merge queue:" in ln).strip()

    live = LiveReporter(
        Console(file=io.StringIO(), width=120, color_system=None), clock=lambda: 0.0
    )
    try:
        for lane in (1, 2):
            live.progress(ProgressSnapshot(run_id="r1", lane=lane, batch_number=lane, title="x"))
        for n in (3, 4, 5):
            live.emit(ev.MergeQueued(run_id="r1", lane=1, item=f"feature #{n}", ahead=0))
        assert queue_line(live) == "merge queue: feature #3, feature #4, feature #5"
        live.emit(ev.MergeChecking(run_id="r1", items=("feature #3", "feature #4")))
        assert queue_line(live) == (
            "merge queue: landing feature #3, feature #4 · waiting feature #5"
        )
        live.emit(
            ev.MergeLanded(
                run_id="r1", item="feature #3", branch="main", sha="a" * 40,
                merge_seconds=0.1, gate_seconds=1.0,
            )
        )  # fmt: skip
        assert queue_line(live) == "merge queue: landing feature #4 · waiting feature #5"
    finally:
        live.close()
