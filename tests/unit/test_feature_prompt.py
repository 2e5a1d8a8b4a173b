"""The prompt of an attempt at a feature: a prefix identical for every feature of
a build (so it caches), and a suffix with everything about this feature."""

from __future__ import annotations

from pathlib import Path

from nightcrew.agents.claude import ClaudeBackend
from nightcrew.core.states import ItemState
from nightcrew.engine.feature_prompt import backlog_prefix, feature_suffix
from nightcrew.engine.prompt import PreviousFailure
from nightcrew.work.backlog import Feature

CLAUDE = ClaudeBackend()


def feature(fid: int, name: str, **fields: object) -> Feature:
    values: dict[str, object] = dict(
        id=fid,
        name=name,
        category="api",
        description=f"{name}, described.",
        steps=("open /login", "type a password"),
        acceptance=(f"pytest -q tests/test_{fid}.py",),
        manual=False,
        files=("app/login.py",),
        priority=0,
        position=fid,
        state=ItemState.IN_PROGRESS,
    )
    values.update(fields)
    return Feature(**values)  # type: ignore[arg-type]


def test_the_prefix_names_the_gates_and_tools_and_nothing_about_one_feature() -> None:
    prefix = backlog_prefix(
        project_root=Path("/p"), gate_lines=["tests: `pytest`"], commit=True, tools=CLAUDE.tool_name
    )
    assert "tests: `pytest`" in prefix
    assert "mcp__nightcrew__claim_passing" in prefix and "verifies" in prefix
    assert "mcp__nightcrew__request_human_input" in prefix
    without = backlog_prefix(
        project_root=Path("/p"), gate_lines=["tests: `pytest`"], commit=True, tools=None
    )
    assert "mcp__nightcrew__" not in without and "Nobody can answer questions" in without


def test_the_suffix_carries_the_feature_its_checks_its_dependencies_and_an_answer() -> None:
    dep = feature(3, "Sign up", state=ItemState.PASSED)
    login = feature(
        7,
        "Log in",
        depends_on=(3,),
        input_request="Which hash?",
        input_answer="argon2",
    )
    text = feature_suffix(
        feature=login,
        built_on=[dep],
        recent_commits=["abc123 feat(api): Sign up"],
        attempt=2,
        previous=PreviousFailure(1, "failed", "FAILED tests/test_7.py::test_login"),
    )
    assert text.startswith("# Feature #7 (api): Log in")
    assert "1. open /login" in text and "2. type a password" in text
    assert "- `pytest -q tests/test_7.py`" in text
    assert "- #3 Sign up" in text
    assert "Question: Which hash?" in text and "Answer: argon2" in text
    assert "abc123 feat(api): Sign up" in text
    assert "This is attempt 2" in text and "FAILED tests/test_7.py::test_login" in text


def test_a_first_attempt_has_no_failure_section_and_no_answer_without_a_question() -> None:
    text = feature_suffix(
        feature=feature(1, "Home page", files=(), steps=()),
        built_on=[],
        recent_commits=[],
        attempt=1,
        previous=None,
    )
    assert "This is attempt" not in text
    assert "asked a person" not in text and "Already built" not in text
    assert "## Steps" not in text and "Files it will likely touch" not in text
