"""Property-based tests for the plan parser: code is never structure, and the
parser fails only with LocatedError."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nightcrew.core.errors import LocatedError
from nightcrew.work.plan import parse_plan

PATH = Path("fuzz.md")
FUZZ = settings(max_examples=200, deadline=None)

words = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1
)
# A line of prose: starts with a letter, holds nothing that opens a block.
prose = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    st.text(alphabet="abcdefghij XYZ0123456789,.;!?()", max_size=40),
)
fake_header = st.one_of(
    st.builds("## Batch {}: {}".format, st.integers(1, 999), words),
    st.builds("### Task {}: {}".format, st.integers(1, 999), words),
    st.builds("## Batch {}".format, st.integers(-5, 999)),
    st.just("## Batch two: oops"),
    st.just("context_refs: does/not/exist.py"),
)
fake_lines = st.lists(st.one_of(fake_header, prose), min_size=1, max_size=5)


@st.composite
def code_block(draw: st.DrawFn) -> str:
    """A closed code block (fence, indented or HTML) holding fake headers."""
    lines = draw(fake_lines)
    kind = draw(st.sampled_from(["```", "~~~", "````", "indent", "html"]))
    if kind == "indent":
        return "\n" + "\n".join("    " + line for line in lines) + "\n"
    if kind == "html":
        return "<div>\n" + "\n".join(lines) + "\n</div>\n"
    info = draw(st.sampled_from(["", "markdown", "python"]))
    return f"{kind}{info}\n" + "\n".join(lines) + f"\n{kind}"


@dataclass
class Doc:
    text: str
    batches: list[int]
    tasks_per_batch: list[int]
    fenced: list[list[str]]  # code blocks per batch


@st.composite
def documents(draw: st.DrawFn) -> Doc:
    parts: list[str] = [draw(prose) for _ in range(draw(st.integers(0, 2)))]
    numbers = sorted(draw(st.sets(st.integers(1, 60), min_size=1, max_size=6)))
    tasks: list[int] = []
    fenced: list[list[str]] = []
    for number in numbers:
        sep = draw(st.sampled_from([":", " —", " -"]))
        parts.append(f"## Batch {number}{sep} {draw(words)}")
        task_count, code = 0, []
        for _ in range(draw(st.integers(0, 6))):
            what = draw(st.sampled_from(["task", "code", "prose", "h2"]))
            if what == "task":
                task_count += 1
                parts.append(f"### Task {task_count}: {draw(words)}")
            elif what == "code":
                block = draw(code_block())
                parts.append(block)
                code.append(block)
            elif what == "h2":
                parts.append(f"## Notes {draw(words)}")
            else:
                parts.append(draw(prose))
        tasks.append(task_count)
        fenced.append(code)
    if draw(st.booleans()):  # an unclosed fence at the very end swallows the rest
        block = "``````\n" + "\n".join(draw(fake_lines))
        parts.append(block)
        fenced[-1].append(block)
    seps = draw(st.lists(st.sampled_from(["\n", "\n\n"]), min_size=len(parts), max_size=len(parts)))
    text = "".join(part + sep for part, sep in zip(parts, seps, strict=True))
    return Doc(text, numbers, tasks, fenced)


@FUZZ
@given(documents())
def test_only_real_headers_count(doc: Doc) -> None:
    plan = parse_plan(doc.text, PATH)
    assert [b.number for b in plan.batches] == doc.batches
    assert [len(b.tasks) for b in plan.batches] == doc.tasks_per_batch
    for batch, blocks in zip(plan.batches, doc.fenced, strict=True):
        for block in blocks:
            assert block.strip("\n") in batch.body
    assert all(b.context_refs == () for b in plan.batches)


@FUZZ
@given(documents(), st.sampled_from(["\r\n", "\r"]))
def test_line_endings_do_not_matter(doc: Doc, newline: str) -> None:
    unix = parse_plan(doc.text, PATH)
    other = parse_plan("\ufeff" + doc.text.replace("\n", newline), PATH)
    assert other.batches == unix.batches
    assert other.warnings == unix.warnings


def _parse_or_located_error(text: str) -> None:
    try:
        plan = parse_plan(text, PATH)
    except LocatedError as exc:
        assert exc.line is None or exc.line >= 1
        assert "\n" not in exc.detail
        return
    assert plan.batches
    lines = text.count("\n") + text.count("\r") + 1
    assert all(1 <= b.line <= lines for b in plan.batches)


@FUZZ
@given(st.text())
def test_random_text_only_located_error(text: str) -> None:
    _parse_or_located_error(text)


markdownish = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "## Batch 1: a",
                "## Batch 2",
                "## Batch x: y",
                "### Task 1: t",
                "### Task",
                "## Batch",
                "```",
                "~~~",
                "    ## Batch 3: c",
                "> ## Batch 4: d",
                "- **Files:**",
                "  - Create: `a.py`",
                "- Modify:",
                "context_refs: a, , `b`",
                "<div>",
                "</div>",
                "",
                "---",
                "CRITICAL",
            ]
        ),
        st.text(alphabet="#`~ -:*>\t<\r\n\ufeffBatchTsk0123456789", max_size=30),
    ),
    max_size=30,
).map("\n".join)


@FUZZ
@given(markdownish)
def test_markdownish_text_only_located_error(text: str) -> None:
    _parse_or_located_error(text)
