"""Unit tests for the markdown plan parser (nightcrew.work.plan)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from nightcrew.core.errors import ExitCode, LocatedError
from nightcrew.work.plan import Batch, Plan, PlanError, PlanWarning, load_plan, parse_plan

PATH = Path("plan.md")


def parse(text: str) -> Plan:
    return parse_plan(text, PATH)


def error(text: str) -> LocatedError:
    with pytest.raises(LocatedError) as info:
        parse(text)
    return info.value


def warnings(plan: Plan) -> list[tuple[int, str]]:
    return [(w.line, w.message) for w in plan.warnings]


REALISTIC = """\
# Plan: add a cache

Goal: make lookups fast.

## Conventions

Run `pytest` after every task.

## Batch 1: Data model

context_refs: src/app/models.py, src/app/db.py

### Task 1: Add the Cache table

**Files:**
- Create: `src/app/cache.py`
- Modify: `src/app/db.py:10-40`
- Test: `tests/test_cache.py`

Example of a plan this tool reads:

```markdown
## Batch 7: not a real batch
### Task 9: not a real task
context_refs: nothing.py
```

### Task 2: Migration

Write the migration.

## Batch 2: ⚠ CRITICAL wiring

### Task 1: Wire it in

~~~
## Batch 7: also fake
~~~

### Task 2: Tests

    ## Batch 8: indented code, fake too

### Task 3: Docs

## Batch 3 — Cleanup

### Task 1: Remove dead code
"""


# ---- format elements -------------------------------------------------------


def test_realistic_plan_has_three_batches_and_ignores_fenced_headers() -> None:
    plan = parse(REALISTIC)
    assert [b.number for b in plan.batches] == [1, 2, 3]
    assert [b.title for b in plan.batches] == ["Data model", "⚠ CRITICAL wiring", "Cleanup"]
    assert [b.line for b in plan.batches] == [9, 32, 46]
    assert [len(b.tasks) for b in plan.batches] == [2, 3, 1]
    assert [(t.number, t.line) for t in plan.batches[0].tasks] == [(1, 13), (2, 28)]
    fenced = "```markdown\n## Batch 7: not a real batch\n### Task 9: not a real task\n"
    assert fenced + "context_refs: nothing.py\n```\n\n### Task 2: Migration" in plan.batches[0].body
    assert "## Batch 7: also fake" in plan.batches[1].body
    assert "    ## Batch 8: indented code, fake too" in plan.batches[1].body
    assert plan.batches[0].context_refs == ("src/app/models.py", "src/app/db.py")
    assert plan.batches[0].files_create == ("src/app/cache.py",)
    assert plan.batches[0].files_modify == ("src/app/db.py",)
    assert plan.batches[0].files_test == ("tests/test_cache.py",)
    assert [b.critical for b in plan.batches] == [False, True, False]
    assert plan.warnings == ()


def test_preamble_is_text_before_first_batch_including_other_h2() -> None:
    plan = parse(REALISTIC)
    assert plan.preamble == (
        "# Plan: add a cache\n\nGoal: make lookups fast.\n\n## Conventions\n\n"
        "Run `pytest` after every task."
    )


def test_other_h2_after_a_batch_stays_in_that_batch() -> None:
    plan = parse("## Batch 1: a\n\ntext\n\n## Notes\n\nmore\n\n## Batch 2: b\nx\n")
    assert plan.batches[0].body == "text\n\n## Notes\n\nmore"
    assert len(plan.batches) == 2


@pytest.mark.parametrize(
    "header",
    [
        "## Batch 4: Build it",
        "## Batch 4 — Build it",
        "## Batch 4 – Build it",
        "## Batch 4 - Build it",
        "## Batch 4:Build it",
        "##   Batch   4 :  Build it  ##",
        "   ## Batch 4: Build it",
    ],
)
def test_header_separators(header: str) -> None:
    batch = parse(header + "\ntext\n").batches[0]
    assert (batch.number, batch.title, batch.line) == (4, "Build it", 1)


def test_body_is_verbatim_and_trailing_blank_lines_are_stripped() -> None:
    text = "## Batch 1: a\n\n  indented *text*\n\tTab\n\n\n   \n## Batch 2: b\nlast line  \n\n\n"
    plan = parse(text)
    assert plan.batches[0].body == "  indented *text*\n\tTab"
    assert plan.batches[1].body == "last line  "


def test_tasks_numbers_titles_and_lines() -> None:
    plan = parse("## Batch 1: a\n### Task 1: First\ntext\n### Task 2 — Second\n")
    tasks = plan.batches[0].tasks
    assert [(t.number, t.title, t.line) for t in tasks] == [(1, "First", 2), (2, "Second", 4)]


def test_context_refs_anywhere_in_body_trimmed_first_wins() -> None:
    text = (
        "## Batch 1: a\n\nsome text\n\ncontext_refs:  a.py ,`b/c.py`, , a.py\n\n"
        "context_refs: ignored.py\n"
    )
    plan = parse(text)
    batch = plan.batches[0]
    assert batch.context_refs == ("a.py", "b/c.py")
    assert batch.context_refs_line == 5
    assert warnings(plan) == [
        (7, "batch 1 has a second context_refs line; only the first (line 5) is used")
    ]


def test_context_refs_inside_code_are_ignored() -> None:
    text = "## Batch 1: a\n\n```\ncontext_refs: fake.py\n```\n\n    context_refs: fake2.py\n"
    batch = parse(text).batches[0]
    assert batch.context_refs == ()
    assert batch.context_refs_line is None


def test_context_refs_belong_to_their_own_batch() -> None:
    plan = parse("## Batch 1: a\ntext\n## Batch 2: b\ncontext_refs: x.py\n")
    assert plan.batches[0].context_refs == ()
    assert plan.batches[1].context_refs == ("x.py",)


def test_files_list_nested_variants() -> None:
    text = """\
## Batch 1: a

- **Files:**
  - Create:
    - `pkg/one.py`
    - pkg/two.py
    - a description with words
  - Modify: `pkg/three.py`, `pkg/four.py:7`

**Files**:
* Create: `pkg/five.py`
  * Test: `tests/test_five.py`
* Create: `pkg/one.py`
"""
    batch = parse(text).batches[0]
    assert batch.files_create == ("pkg/one.py", "pkg/two.py", "pkg/five.py")
    assert batch.files_modify == ("pkg/three.py", "pkg/four.py")
    assert batch.files_test == ("tests/test_five.py",)


def test_file_items_outside_a_files_list_or_in_code_are_ignored() -> None:
    text = """\
## Batch 1: a

- Create: `not/a/files/list.py`

```
**Files:**
- Create: `fenced.py`
```
"""
    batch = parse(text).batches[0]
    assert (batch.files_create, batch.files_modify, batch.files_test) == ((), (), ())


@pytest.mark.parametrize(
    ("title", "critical"),
    [
        ("CRITICAL auth", True),
        ("⚠ CRITICAL: auth", True),
        ("auth (CRITICAL)", True),
        ("critical auth", False),
        ("NONCRITICAL auth", False),
        ("CRITICALITY", False),
    ],
)
def test_critical_flag(title: str, critical: bool) -> None:
    assert parse(f"## Batch 1: {title}\ntext\n").batches[0].critical is critical


def test_critical_in_body_only_does_not_count() -> None:
    assert parse("## Batch 1: a\nCRITICAL\n").batches[0].critical is False


def test_empty_batch_is_kept_and_warned() -> None:
    plan = parse("## Batch 1: a\ntext\n## Batch 2: b\n\n   \n## Batch 3: c\nmore\n")
    assert [b.is_empty for b in plan.batches] == [False, True, False]
    assert plan.batches[1].body == ""
    assert warnings(plan) == [(3, "batch 2 is empty and will be skipped")]


@pytest.mark.parametrize("header", ["## Batch 3:", "## Batch 3", "## Batch 3:   "])
def test_a_trailing_batch_with_no_title_and_no_body_is_an_empty_batch(header: str) -> None:
    plan = parse(f"## Batch 1: a\nx\n## Batch 2: b\ny\n{header}\n")
    assert [(b.number, b.is_empty) for b in plan.batches] == [(1, False), (2, False), (3, True)]
    assert warnings(plan) == [(5, "batch 3 is empty and will be skipped")]


@pytest.mark.parametrize(
    ("line", "marked"),
    [
        ("no-change-ok", True),
        ("no_change_ok: true", True),
        ("  No-Change-OK  ", True),
        ("no_change_ok: false", False),
        ("this batch is no-change-ok", False),
    ],
)
def test_no_change_ok_line(line: str, marked: bool) -> None:
    plan = parse(f"## Batch 1: a\nLook around.\n{line}\n## Batch 2: b\nx\n")
    assert [b.no_change_ok for b in plan.batches] == [marked, False]
    assert plan.to_json()["batches"][0]["no_change_ok"] is marked


def test_no_change_ok_in_a_code_fence_does_not_count() -> None:
    plan = parse("## Batch 1: a\n```\nno-change-ok\n```\n")
    assert plan.batches[0].no_change_ok is False


def test_gap_in_numbers_keeps_later_batch_and_warns() -> None:
    plan = parse("## Batch 1: a\nx\n## Batch 2: b\nx\n## Batch 5: e\nx\n")
    assert [b.number for b in plan.batches] == [1, 2, 5]
    assert plan.batch(5).title == "e"
    assert warnings(plan) == [(5, "batch numbers skip from 2 to 5")]


def test_plan_starting_above_one_warns() -> None:
    plan = parse("## Batch 3: c\nx\n")
    assert warnings(plan) == [(1, "batch numbers start at 3, not 1")]


def test_duplicate_task_numbers_warn() -> None:
    plan = parse("## Batch 1: a\n### Task 1: x\n### Task 2: y\n### Task 1: z\n")
    assert len(plan.batches[0].tasks) == 3
    assert warnings(plan) == [(4, "task 1 appears twice in batch 1 (first at line 2)")]


def test_nested_and_wrong_level_headers_are_not_structure_but_warned() -> None:
    text = "## Batch 1: a\n> ## Batch 2: quoted\n\n- ## Batch 3: listed\n\n# Batch 4: h1\n"
    plan = parse(text)
    assert [b.number for b in plan.batches] == [1]
    assert [line for line, _ in warnings(plan)] == [2, 4, 6]
    assert "is not a plan header" in plan.warnings[0].message


def test_setext_heading_is_not_a_batch() -> None:
    plan = parse("## Batch 1: a\n\nBatch 2: setext\n---\n")
    assert len(plan.batches) == 1
    assert "Batch 2: setext\n---" in plan.batches[0].body


def test_h2_that_only_starts_with_batch_word_is_preamble() -> None:
    plan = parse("## Batch processing notes\n\n## Batches\n\n## Batch 1: a\nx\n")
    assert plan.preamble == "## Batch processing notes\n\n## Batches"
    assert len(plan.batches) == 1
    assert plan.warnings == ()


@pytest.mark.parametrize("fence", ["```", "~~~", "````", "~~~~~~"])
def test_all_fence_kinds_hide_headers(fence: str) -> None:
    text = f"## Batch 1: a\n{fence}python\n## Batch 2: fake\n### Task 1: fake\n{fence}\n"
    plan = parse(text)
    assert len(plan.batches) == 1
    assert plan.batches[0].tasks == ()


def test_longer_fence_contains_shorter_fence() -> None:
    text = "## Batch 1: a\n````\n```\n## Batch 2: fake\n```\n````\n## Batch 2: real\nx\n"
    plan = parse(text)
    assert [(b.number, b.title, b.line) for b in plan.batches] == [(1, "a", 1), (2, "real", 7)]


def test_unclosed_fence_runs_to_end_of_file() -> None:
    plan = parse("## Batch 1: a\n```\n## Batch 2: inside an unclosed fence\n")
    assert len(plan.batches) == 1


def test_html_block_hides_headers() -> None:
    text = "## Batch 1: a\n<details>\n## Batch 2: fake\n### Task 3: fake\n</details>\n"
    plan = parse(text)
    assert len(plan.batches) == 1
    assert plan.batches[0].tasks == ()


def test_indented_code_hides_headers() -> None:
    plan = parse("## Batch 1: a\n\n    ## Batch 2: fake\n    ### Task 1: fake\n")
    assert len(plan.batches) == 1
    assert plan.batches[0].tasks == ()


def test_windows_line_endings() -> None:
    unix = parse(REALISTIC)
    windows = parse(REALISTIC.replace("\n", "\r\n"))
    assert windows.to_json() == unix.to_json()
    assert windows.batches == unix.batches
    assert "\r" not in windows.batches[0].body
    assert windows.sha256 == unix.sha256


def test_utf8_bom_is_ignored() -> None:
    plan = parse("\ufeff## Batch 1: a\ntext\n")
    assert (plan.batches[0].number, plan.batches[0].line) == (1, 1)
    assert plan.preamble == ""


# ---- hashes ----------------------------------------------------------------


def test_batch_sha_changes_with_title_and_text_only() -> None:
    base = parse("## Batch 1: a\ntext\n## Batch 2: b\nmore\n")
    same = parse("# other preamble\n## Batch 1 — a\ntext\n\n\n## Batch 2: b\nchanged\n")
    retitled = parse("## Batch 1: A\ntext\n")
    edited = parse("## Batch 1: a\ntext!\n")
    sha = base.batches[0].sha256
    assert len(sha) == 64
    assert same.batches[0].sha256 == sha
    assert retitled.batches[0].sha256 != sha
    assert edited.batches[0].sha256 != sha
    assert same.batches[1].sha256 != base.batches[1].sha256


def test_plan_sha_changes_with_any_text() -> None:
    assert parse("## Batch 1: a\nx\n").sha256 != parse("## Batch 1: a\nx \n").sha256
    assert parse("## Batch 1: a\nx\n").sha256 == parse("## Batch 1: a\nx\n").sha256


# ---- data model and JSON ---------------------------------------------------


def test_json_shape() -> None:
    text = (
        "## Batch 1: First CRITICAL\ncontext_refs: a.py\n### Task 1: t1\n"
        "**Files:**\n- Create: `n.py`\n- Modify: `m.py`\n- Test: `t.py`\n"
        "## Batch 3: Third\n"
    )
    assert parse(text).to_json() == {
        "batches": [
            {
                "number": 1,
                "title": "First CRITICAL",
                "line": 1,
                "tasks": [{"number": 1, "title": "t1"}],
                "context_refs": ["a.py"],
                "files": {"create": ["n.py"], "modify": ["m.py"]},
                "critical": True,
                "no_change_ok": False,
            },
            {
                "number": 3,
                "title": "Third",
                "line": 8,
                "tasks": [],
                "context_refs": [],
                "files": {"create": [], "modify": []},
                "critical": False,
                "no_change_ok": False,
            },
        ],
        "warnings": [
            {"line": 8, "message": "batch numbers skip from 1 to 3"},
            {"line": 8, "message": "batch 3 is empty and will be skipped"},
        ],
    }
    json.dumps(parse(text).to_json())


def test_batch_lookup_and_frozen() -> None:
    plan = parse("## Batch 1: a\nx\n## Batch 4: d\ny\n")
    assert plan.batch(4).line == 3
    with pytest.raises(KeyError):
        plan.batch(2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.batches[0].title = "b"  # type: ignore[misc]
    assert isinstance(plan.batches[0], Batch)
    assert plan.path == PATH


# ---- errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("# Just a doc\n\ntext\n", None, "no batches: expected headers like '## Batch 1: title'"),
        ("", None, "no batches: expected headers like '## Batch 1: title'"),
        ("```\n## Batch 1: fenced\n```\n", None, "no batches"),
        ("## Batch 1: a\nx\n## Batch 1: b\n", 3, "duplicate batch 1 (first at line 1)"),
        ("## Batch 1: a\n## Batch 3: c\n## Batch 2: b\n", 3, "batch 2 comes after batch 3"),
        ("intro\n### Task 1: early\n## Batch 1: a\n", 2, "task 1 is outside a batch"),
        ("## Batch 1: a\n## Batch 3\nbody\n", 2, "batch 3 has no title"),
        ("## Batch 1: a\n## Batch 3:   \n### Task 1: t\n", 2, "batch 3 has no title"),
        ("## Batch 1: a\n\n## Batch two: b\n", 3, "batch number 'two' is not a positive integer"),
        ("## Batch 0: zero\n", 1, "batch number '0' is not a positive integer"),
        ("## Batch -1: neg\n", 1, "batch number '-1' is not a positive integer"),
        ("## Batch 1.5: x\n", 1, "batch number '1.5' is not a positive integer"),
        ("## Batch: x\n", 1, "batch header has no number"),
        ("## Batch 2 Setup\n", 1, "batch 2: expected ':' after the number"),
        ("## Batch 1: a\n### Task x: y\n", 2, "task number 'x' is not a positive integer"),
        ("## Batch 1: a\n### Task 2\n", 2, "task 2 has no title"),
    ],
)
def test_errors(text: str, line: int | None, message: str) -> None:
    exc = error(text)
    assert exc.line == line
    assert exc.detail.startswith(message)
    assert exc.path == "plan.md"
    assert exc.exit_code == ExitCode.BAD_INPUT


def test_first_error_in_file_order_with_count_of_the_rest() -> None:
    text = "### Task 1: early\n## Batch 2: b\n## Batch 1: a\n## Batch 2: again\n## Batch 3\nx\n"
    exc = error(text)
    assert exc.line == 1
    assert exc.detail == (
        "task 1 is outside a batch: tasks go under a '## Batch N: title' header (and 3 more)"
    )
    assert str(exc).startswith("plan.md:1: task 1 is outside a batch")
    assert "\n" not in str(exc)


def test_error_without_line_renders_path_only() -> None:
    assert str(error("nothing\n")) == (
        "plan.md: no batches: expected headers like '## Batch 1: title'"
    )


# ---- load_plan -------------------------------------------------------------


def write(root: Path, name: str, content: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_load_plan_reads_and_checks_context_refs(tmp_path: Path) -> None:
    write(tmp_path, "src/a.py", "x = 1\n")
    plan_path = write(tmp_path, "docs/plan.md", "## Batch 1: a\ncontext_refs: src/a.py\n")
    plan = load_plan(plan_path, tmp_path)
    assert plan.batches[0].context_refs == ("src/a.py",)
    assert plan.path == plan_path


def test_load_plan_missing_context_ref(tmp_path: Path) -> None:
    write(tmp_path, "src/a.py", "")
    text = "## Batch 1: a\nx\n\n## Batch 2: b\ntext\ncontext_refs: src/a.py, src/gone.py\n"
    plan_path = write(tmp_path, "plan.md", text)
    with pytest.raises(LocatedError) as info:
        load_plan(plan_path, tmp_path)
    assert info.value.line == 6
    assert info.value.path == str(plan_path)
    assert info.value.detail.startswith("context_ref 'src/gone.py' does not exist")


@pytest.mark.parametrize(
    ("ref", "problem"), [("../outside.py", "is outside the project"), ("src", "is not a file")]
)
def test_load_plan_bad_context_refs(tmp_path: Path, ref: str, problem: str) -> None:
    root = tmp_path / "proj"
    write(root, "src/a.py", "")
    write(tmp_path, "outside.py", "")
    plan_path = write(root, "plan.md", f"## Batch 1: a\ncontext_refs: {ref}\n")
    with pytest.raises(LocatedError) as info:
        load_plan(plan_path, root)
    assert (info.value.line, info.value.detail) == (2, f"context_ref '{ref}' {problem}")


def test_load_plan_counts_all_missing_refs(tmp_path: Path) -> None:
    text = "## Batch 1: a\ncontext_refs: x.py, y.py\n## Batch 2: b\ncontext_refs: z.py\n"
    with pytest.raises(LocatedError) as info:
        load_plan(write(tmp_path, "plan.md", text), tmp_path)
    assert info.value.line == 2
    assert info.value.detail.endswith("(and 2 more)")
    assert isinstance(info.value, PlanError)
    where, looked = tmp_path / "plan.md", f"does not exist (looked in {tmp_path})"
    assert info.value.lines() == [
        f"{where}:2: context_ref 'x.py' {looked}",
        f"{where}:2: context_ref 'y.py' {looked}",
        f"{where}:4: context_ref 'z.py' {looked}",
    ]


def test_load_plan_not_utf8(tmp_path: Path) -> None:
    plan_path = write(tmp_path, "plan.md", b"## Batch 1: a\nok\ncaf\xe9\n")
    with pytest.raises(LocatedError) as info:
        load_plan(plan_path, tmp_path)
    assert info.value.line == 3
    assert "not valid UTF-8" in info.value.detail


def test_load_plan_bom_and_crlf(tmp_path: Path) -> None:
    plan_path = write(tmp_path, "plan.md", b"\xef\xbb\xbf## Batch 1: a\r\ntext\r\n")
    plan = load_plan(plan_path, tmp_path)
    assert (plan.batches[0].title, plan.batches[0].body) == ("a", "text")


@pytest.mark.parametrize("name", ["missing.md", "."])
def test_load_plan_unreadable(tmp_path: Path, name: str) -> None:
    with pytest.raises(LocatedError) as info:
        load_plan(tmp_path / name, tmp_path)
    assert info.value.line is None
    assert info.value.detail.startswith("cannot read plan: ")


def test_plan_warning_is_plain_data() -> None:
    assert PlanWarning(3, "m") == PlanWarning(3, "m")
