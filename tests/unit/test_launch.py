"""The ``nightcrew`` executable's fast path for ``usage import`` with nothing new."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from nightcrew import launch
from nightcrew.usage.globaldb import open_global
from nightcrew.usage.pricing import Pricer
from nightcrew.usage.transcripts import ImportReport, find_transcripts, import_transcripts

LINE = json.dumps({
    "type": "assistant", "timestamp": "2026-11-21T09:39:44.440Z", "sessionId": "s",
    "requestId": "r1", "message": {"id": "m1", "model": "claude-sonnet-4-5",
    "usage": {"input_tokens": 10, "output_tokens": 2}},
})  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    projects = tmp_path / "projects"
    (projects / "p").mkdir(parents=True)
    (projects / "p" / "s.jsonl").write_text(LINE + "\n")
    return projects


def imported(tree: Path) -> None:
    db = open_global(Path(os.environ["NIGHTCREW_HOME"]) / "usage.db")
    try:
        import_transcripts(db, find_transcripts([tree]), Pricer())
    finally:
        db.close()


def test_nothing_new_is_answered_with_the_full_commands_json_shape(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imported(tree)
    assert launch._quiet_import(["usage", "import", "--json", str(tree)])
    report = json.loads(capsys.readouterr().out)
    fields = {f.name for f in dataclasses.fields(ImportReport)}
    assert set(report) == fields | {"warnings"}
    assert (report["files_seen"], report["files_unchanged"], report["bytes_read"]) == (1, 1, 0)


def test_anything_new_or_unknown_goes_to_the_full_command(tree: Path) -> None:
    assert not launch._quiet_import(["usage", "import", str(tree)])  # never imported
    imported(tree)
    assert not launch._quiet_import(["usage", "import", "--help"])
    assert not launch._quiet_import(["usage", "import", str(tree / "missing")])
    assert not launch._quiet_import(["usage", "--by", "day"])
    with (tree / "p" / "s.jsonl").open("a") as f:
        f.write(LINE.replace("m1", "m2").replace("r1", "r2") + "\n")
    assert not launch._quiet_import(["usage", "import", str(tree)])  # it grew


def test_an_import_with_something_new_runs_here_and_prints_what_the_full_command_does(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert launch._import(["usage", "import", str(tree)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("imported 1 responses from 1 of 1 files (0.0 MB read in ")
    assert launch._quiet_import(["usage", "import", str(tree)])  # now nothing is new
    with (tree / "p" / "s.jsonl").open("a") as f:
        f.write(LINE.replace("m1", "m2").replace("r1", "r2") + "\n")
    capsys.readouterr()
    assert launch._import(["usage", "import", "--json", str(tree)]) == 0
    report = json.loads(capsys.readouterr().out)
    fields = {f.name for f in dataclasses.fields(ImportReport)}
    assert set(report) == fields | {"warnings"}
    assert (report["entries_added"], report["files_read"], report["warnings"]) == (1, 1, [])


def test_a_failed_import_here_ends_like_the_full_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    assert launch._import(["usage", "import", str(missing)]) == 2
    assert capsys.readouterr().err == f"nightcrew: {missing}: no such file or directory\n"
    assert launch._import(["usage", "import", "--help"]) is None  # the full command line's


def test_the_executable_imports_and_exits_with_the_report_printed(tree: Path) -> None:
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", "from nightcrew.launch import main; main()", "usage", "import",
         str(tree)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout.startswith("imported 1 responses from 1 of 1 files")


def test_a_last_line_without_newline_counts_once_here_too(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The executable's own import path takes a whole last line still waiting for its
    newline, answers "nothing new" while the file stays so, and reads what is appended."""
    f = tree / "p" / "s.jsonl"
    f.write_text(LINE)  # no newline yet
    assert launch._import(["usage", "import", "--json", str(tree)]) == 0
    assert json.loads(capsys.readouterr().out)["entries_added"] == 1
    assert launch._quiet_import(["usage", "import", str(tree)])
    with f.open("a") as out:
        out.write("\n" + LINE.replace("m1", "m2").replace("r1", "r2") + "\n")
    capsys.readouterr()
    assert launch._import(["usage", "import", "--json", str(tree)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["entries_added"], report["lines_skipped"]) == (1, 0)
