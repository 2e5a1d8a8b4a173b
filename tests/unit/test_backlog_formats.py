"""Unit tests for the backlog file formats (nightcrew.work.backlog_formats)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nightcrew.core.errors import BadInput, LocatedError
from nightcrew.core.states import ItemState
from nightcrew.work.backlog import Feature
from nightcrew.work.backlog_formats import (
    ParsedBacklog,
    export_json,
    export_markdown,
    parse_backlog,
)

QUICKSTART = """\
[
  {
    "category": "functional",
    "description": "New chat button creates a fresh conversation",
    "steps": [
      "Step 1: Navigate to main interface",
      "Step 2: Click the 'New Chat' button",
      "Step 3: Verify a new conversation is created",
      "Step 4: Verify the conversation appears in the sidebar"
    ],
    "passes": true
  },
  {
    "category": "functional",
    "description": "User can send a message and see the reply stream in. Tokens appear as \
they arrive, and the send button stays disabled until the reply ends.",
    "steps": [
      "Step 1: Type 'Hello' in the message box",
      "Step 2: Press Enter",
      "Step 3: Verify the reply renders token by token",
      "Step 4: Verify the send button is disabled while streaming"
    ],
    "passes": false
  },
  {
    "category": "style",
    "description": "Code blocks in assistant replies are syntax highlighted, with a copy \
button in the top right corner and a language label",
    "steps": [
      "Step 1: Ask for a Python function",
      "Step 2: Verify the code block has syntax colours",
      "Step 3: Click the copy button and verify the clipboard holds the code"
    ],
    "passes": false
  }
]
"""

PRD = """\
[
  {
    "id": 1,
    "title": "Create the users table",
    "description": "Add a migration for users with email and password hash.",
    "acceptance_criteria": [
      "test -f migrations/001_users.sql",
      "pytest tests/test_migrations.py -q"
    ],
    "passes": true,
    "blocked_by": []
  },
  {
    "id": 2,
    "title": "Register with email and password",
    "description": "POST /register creates a user and returns 201.",
    "acceptance_criteria": [
      "pytest tests/test_register.py -q"
    ],
    "passes": false,
    "blocked_by": [1]
  },
  {
    "id": 3,
    "title": "Log in and receive a session cookie",
    "description": "POST /login checks the password hash.",
    "acceptance_criteria": [
      "pytest tests/test_login.py -q",
      "ruff check src/auth"
    ],
    "passes": false,
    "blocked_by": [
      1,
      2
    ]
  },
  {
    "id": 4,
    "title": "Log out",
    "description": "POST /logout clears the session.",
    "acceptance_criteria": [],
    "passes": false,
    "blocked_by": [3]
  }
]
"""


def write(tmp_path: Path, text: str, name: str = "backlog.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def parse(tmp_path: Path, text: str, **kwargs: tuple[str, ...]) -> ParsedBacklog:
    return parse_backlog(write(tmp_path, text), **kwargs)


def error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(LocatedError) as info:
        parse_backlog(path)
    message = info.value.message
    assert "\n" not in message
    return message.removeprefix(f"{path}:")


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def feature(feature_id: int, name: str, **fields: Any) -> Feature:
    defaults: dict[str, Any] = {
        "category": "functional",
        "description": f"{name}, described.",
        "steps": (),
        "acceptance": (f"pytest tests/test_{feature_id}.py -q",),
        "manual": False,
        "files": (),
        "priority": feature_id,
        "position": feature_id,
        "state": ItemState.PENDING,
    }
    return Feature(id=feature_id, name=name, **{**defaults, **fields})


# --- the quickstart feature_list.json ---------------------------------------------


def test_quickstart_features_keep_their_order_text_and_passes(tmp_path: Path) -> None:
    parsed = parse(tmp_path, QUICKSTART)

    assert parsed.format == "quickstart"
    assert [s.name for s in parsed.specs] == [
        "New chat button creates a fresh conversation",
        "User can send a message and see the reply stream in",
        "Code blocks in assistant replies are syntax highlighted, with a copy button in…",
    ]
    first, second, third = parsed.specs
    assert first.steps[1] == "Step 2: Click the 'New Chat' button"
    assert len(second.steps) == 4
    assert second.description.endswith("stays disabled until the reply ends.")
    assert [s.category for s in parsed.specs] == ["functional", "functional", "style"]
    assert [s.priority for s in parsed.specs] == [1, 2, 3]
    assert [s.passes for s in parsed.specs] == [True, False, False]
    # no ids in the file: each feature's key is a hash of what it is
    assert all(s.source_key and s.source_key.startswith("h:") for s in parsed.specs)
    assert not any(s.depends_on_keys for s in parsed.specs)
    assert len(third.name) <= 80


def test_quickstart_features_come_in_manual_with_one_warning(tmp_path: Path) -> None:
    parsed = parse(tmp_path, QUICKSTART)

    assert all(s.manual and not s.acceptance for s in parsed.specs)
    (warning,) = parsed.warnings
    assert warning.startswith(f"{tmp_path / 'backlog.json'}:2: 3 features came in as manual")
    assert "nightcrew backlog edit ID --accept CMD" in warning
    assert "(or import with `--accept CMD`)" in warning


def test_default_acceptance_replaces_manual(tmp_path: Path) -> None:
    parsed = parse(tmp_path, QUICKSTART, default_acceptance=("npm test", "npm run lint"))

    assert all(s.acceptance == ("npm test", "npm run lint") for s in parsed.specs)
    assert not any(s.manual for s in parsed.specs)
    assert parsed.warnings == ()


def test_a_name_comes_from_the_first_line_of_a_description(tmp_path: Path) -> None:
    text = json.dumps(
        [{"category": "functional", "description": "Dark mode\nA toggle in settings.", "steps": []}]
    )
    (spec,) = parse(tmp_path, text).specs

    assert spec.name == "Dark mode"
    assert spec.description == "Dark mode\nA toggle in settings."
    assert spec.passes is False


def test_a_long_word_is_cut_short_rather_than_kept_whole(tmp_path: Path) -> None:
    text = json.dumps([{"description": "x" * 300, "steps": [], "passes": False}])
    (spec,) = parse(tmp_path, text).specs

    assert spec.name == "x" * 79 + "…"


# --- the Autonomous Coding Toolkit prd.json ---------------------------------------


def test_prd_tasks_keep_ids_commands_and_blockers(tmp_path: Path) -> None:
    parsed = parse(tmp_path, PRD)

    assert parsed.format == "prd"
    assert [s.name for s in parsed.specs] == [
        "Create the users table",
        "Register with email and password",
        "Log in and receive a session cookie",
        "Log out",
    ]
    assert [s.source_key for s in parsed.specs] == ["1", "2", "3", "4"]
    assert [s.depends_on_keys for s in parsed.specs] == [(), ("1",), ("1", "2"), ("3",)]
    assert parsed.specs[2].acceptance == ("pytest tests/test_login.py -q", "ruff check src/auth")
    assert parsed.specs[1].description == "POST /register creates a user and returns 201."
    assert [s.passes for s in parsed.specs] == [True, False, False, False]
    assert not any(s.manual for s in parsed.specs[:3])


def test_a_prd_task_without_criteria_is_manual_unless_given_commands(tmp_path: Path) -> None:
    parsed = parse(tmp_path, PRD)
    log_out = parsed.specs[3]
    assert log_out.manual and log_out.acceptance == ()
    (warning,) = parsed.warnings
    assert ":37: 1 feature came in as manual" in warning

    given = parse(tmp_path, PRD, default_acceptance=("make test",))
    assert given.specs[3].acceptance == ("make test",)
    assert not given.specs[3].manual
    assert given.specs[0].acceptance == (
        "test -f migrations/001_users.sql",
        "pytest tests/test_migrations.py -q",
    )
    assert given.warnings == ()


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        (QUICKSTART, "prd.json", "quickstart"),
        (PRD, "feature_list.json", "prd"),
        (export_json([feature(1, "Search")]), "feature_list.json", "nightcrew"),
    ],
)
def test_the_format_comes_from_the_content_not_the_name(
    tmp_path: Path, text: str, name: str, expected: str
) -> None:
    assert parse_backlog(write(tmp_path, text, name)).format == expected


def test_text_given_is_used_instead_of_the_file(tmp_path: Path) -> None:
    parsed = parse_backlog(tmp_path / "never-written.json", PRD)

    assert len(parsed.specs) == 4


def test_an_empty_list_is_no_features_with_a_warning(tmp_path: Path) -> None:
    parsed = parse(tmp_path, "[\n]\n")

    assert parsed.specs == ()
    assert parsed.warnings == (f"{tmp_path / 'backlog.json'}:1: no features",)


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    text = edit(PRD, '"id": 2,', '"id": 2, "estimate": "2h", "owner": {"name": "sam"},')

    assert parse(tmp_path, text).specs[1].name == "Register with email and password"


def test_a_byte_order_mark_and_crlf_line_ends_are_read(tmp_path: Path) -> None:
    text = "\ufeff" + edit(PRD, '"blocked_by": [3]', '"blocked_by": [9]').replace("\n", "\r\n")

    assert error(tmp_path, text).startswith("43: feature 4 (\"Log out\"): 'blocked_by' names id 9")


# --- errors name the file and line ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            edit(QUICKSTART, '"passes": true\n  },', '"passes": true\n  }'),
            "13: not valid JSON: Expecting ',' delimiter (column 3)",
            id="syntax",
        ),
        pytest.param(
            edit(QUICKSTART, '"Step 2: Press Enter",', "2,"),
            "18: feature 2 (\"User can send a message and see the reply stream in\"): 'steps'"
            " must be a list of strings; item 2 is a number",
            id="quickstart-step-not-a-string",
        ),
        pytest.param(
            edit(QUICKSTART, '"steps": [\n      "Step 1: Ask', '"steps": "Ask",\n"x": [\n "Ask'),
            '27: feature 3 ("Code blocks in assistant replies are syntax highlighted…"):'
            " 'steps' must be a list of strings, not a string",
            id="quickstart-steps-not-a-list",
        ),
        pytest.param(
            edit(QUICKSTART, '"passes": true', '"passes": "yes"'),
            "11: feature 1 (\"New chat button creates a fresh conversation\"): 'passes' must be"
            " true or false, not a string",
            id="quickstart-passes-not-bool",
        ),
        pytest.param(
            edit(QUICKSTART, '"category": "style",', '"category": ["style"],'),
            '25: feature 3 ("Code blocks in assistant replies are syntax highlighted…"):'
            " 'category' must be a string, not a list",
            id="quickstart-category-not-a-string",
        ),
        pytest.param(
            edit(QUICKSTART, '"description": "New chat button creates a fresh conversation",', ""),
            "2: feature 1: 'description' is missing",
            id="quickstart-no-description",
        ),
        pytest.param(
            edit(
                QUICKSTART,
                '"description": "New chat button creates a fresh conversation"',
                '"description": " "',
            ),
            "4: feature 1: 'description' is empty",
            id="quickstart-empty-description",
        ),
        pytest.param(
            edit(QUICKSTART, '"passes": true\n  },', '"passes": true\n  },\n  "Step 9"\n  ,'),
            "13: feature 2: must be a JSON object, not a string",
            id="item-not-an-object",
        ),
        pytest.param(
            edit(PRD, '"id": 3,', '"id": 2,'),
            '24: feature 3 ("Log in and receive a session cookie"): id 2 appears twice'
            " (first at line 14)",
            id="prd-duplicate-id",
        ),
        pytest.param(
            edit(PRD, "      1,\n      2\n", "      1,\n      7\n"),
            "34: feature 3 (\"Log in and receive a session cookie\"): 'blocked_by' names id 7,"
            " which is not in this file",
            id="prd-unknown-blocker",
        ),
        pytest.param(
            edit(PRD, '"blocked_by": [3]', '"blocked_by": [4]'),
            "43: feature 4 (\"Log out\"): 'blocked_by' names the feature's own id 4",
            id="prd-self-reference",
        ),
        pytest.param(
            edit(PRD, '"title": "Log out",', '"title": "  ",'),
            "39: feature 4: 'title' is empty",
            id="prd-empty-title",
        ),
        pytest.param(
            edit(PRD, '"ruff check src/auth"', '{"run": "ruff check src/auth"}'),
            "29: feature 3 (\"Log in and receive a session cookie\"): 'acceptance_criteria'"
            " must be a list of strings; item 2 is an object",
            id="prd-criterion-not-a-string",
        ),
        pytest.param(
            edit(PRD, '"id": 2,', '"id": "US-002",'),
            "14: feature 2 (\"Register with email and password\"): 'id' must be a whole number,"
            " not a string",
            id="prd-id-not-an-int",
        ),
        pytest.param(
            edit(PRD, '"id": 4,\n', ""),
            "37: feature 4 (\"Log out\"): 'id' is missing",
            id="prd-no-id",
        ),
        pytest.param(
            edit(PRD, '"title": "Log out",', f'"title": "{"Log out " * 30}",'),
            '37: feature 4 ("Log out Log out Log out Log out Log out Log out Log out…"):'
            " the name is longer than 200 characters",
            id="prd-spec-problem",
        ),
        pytest.param(
            '{\n  "tasks": []\n}\n',
            "1: a JSON object that is not a nightcrew export; backlog import reads",
            id="object-of-another-shape",
        ),
        pytest.param(
            '"feature_list.json"',
            "1: the file holds a string, not a backlog",
            id="string",
        ),
        pytest.param(
            '[\n  {"summary": "Search", "effort": 1}\n]',
            "2: feature 1 is neither a quickstart feature (category, description, steps, passes)"
            " nor a PRD task (id, title, acceptance_criteria, blocked_by)",
            id="neither-format",
        ),
        pytest.param("\n  \n", "1: the file is empty", id="empty-file"),
    ],
)
def test_a_malformed_file_names_the_line_at_fault(tmp_path: Path, text: str, expected: str) -> None:
    assert error(tmp_path, text).startswith(expected)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        (edit(QUICKSTART, '"passes": true', '"passes": 1'), "an Anthropic quickstart"),
        (edit(PRD, '"id": 2,', '"id": 2.5,'), "an Autonomous Coding Toolkit prd.json"),
    ],
)
def test_an_item_error_says_which_format_the_file_was_read_as(
    tmp_path: Path, text: str, label: str
) -> None:
    assert f"(read as {label}" in error(tmp_path, text)


def test_an_unreadable_file_is_bad_input_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(BadInput, match=r"nope\.json: cannot read"):
        parse_backlog(missing)

    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'[\n  {"description": "caf\xe9"}\n]\n')
    with pytest.raises(LocatedError, match=r"latin1\.json:2: not UTF-8"):
        parse_backlog(bad)


def test_an_empty_default_command_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="acceptance command"):
        parse(tmp_path, PRD, default_acceptance=("make test", " "))


# --- our own export ---------------------------------------------------------------

BACKLOG = [
    feature(
        3,
        "Log in",
        steps=("Open /login", "Submit the form"),
        acceptance=("pytest tests/test_login.py -q", "ruff check src/auth"),
        files=("src/auth/login.py",),
        depends_on=(1, 2),
        state=ItemState.FAILED,
        model="claude-opus-4",
        position=3,
    ),
    feature(1, "Users table", state=ItemState.PASSED, priority=5, position=1),
    feature(
        2,
        "Style guide review",
        category="style",
        acceptance=(),
        manual=True,
        depends_on=(1,),
        state=ItemState.NEEDS_INPUT,
        position=2,
    ),
]


def test_export_json_reads_back_as_the_same_features(tmp_path: Path) -> None:
    parsed = parse(tmp_path, export_json(BACKLOG))

    assert parsed.format == "nightcrew"
    assert parsed.warnings == ()
    ordered = sorted(BACKLOG, key=lambda f: f.position)
    assert [s.source_key for s in parsed.specs] == ["#1", "#2", "#3"]
    for spec, original in zip(parsed.specs, ordered, strict=True):
        assert spec.name == original.name
        assert spec.category == original.category
        assert spec.description == original.description
        assert spec.steps == original.steps
        assert spec.acceptance == original.acceptance
        assert spec.manual == original.manual
        assert spec.priority == original.priority
        assert spec.files == original.files
        assert spec.depends_on_keys == tuple(f"#{d}" for d in original.depends_on)
        assert spec.depends_on == ()
        # our own verdict comes back as a state, not as a claim to check again
        assert spec.passes is False
        if original.state == ItemState.PASSED:
            assert spec.state == ItemState.PASSED
        assert spec.model == original.model  # "retry with opus" survives the trip


def test_export_json_is_our_format_in_backlog_order() -> None:
    text = export_json(BACKLOG)
    document = json.loads(text)

    assert text.endswith("}\n")
    assert text.startswith('{\n  "format": "nightcrew-backlog",\n  "version": 1,')
    assert [f["id"] for f in document["features"]] == [1, 2, 3]
    assert document["features"][2] == {
        "id": 3,
        "key": "#3",
        "category": "functional",
        "name": "Log in",
        "description": "Log in, described.",
        "steps": ["Open /login", "Submit the form"],
        "acceptance": ["pytest tests/test_login.py -q", "ruff check src/auth"],
        "manual": False,
        "priority": 3,
        "files": ["src/auth/login.py"],
        "depends_on": [1, 2],
        "state": "failed",
        "model": "claude-opus-4",
        "input_request": None,
    }


def test_ties_in_position_are_ordered_by_id() -> None:
    tied = [feature(9, "Later", position=1), feature(4, "Sooner", position=1)]

    assert [f["id"] for f in json.loads(export_json(tied))["features"]] == [4, 9]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            '"version": 1',
            '"version": 7',
            "3: nightcrew export with version 7; this nightcrew reads",
        ),
        ('"version": 1,', "", "1: nightcrew export with no version"),
        (
            '"state": "failed"',
            '"state": "done"',
            "64: feature 3 (\"Log in\"): 'state' is 'done', not one of pending",
        ),
        (
            '"depends_on": [\n        1\n      ]',
            '"depends_on": [7]',
            "34: feature 2 (\"Style guide review\"): 'depends_on' names id 7, which is not",
        ),
        (
            '"manual": true',
            '"manual": false',
            '23: feature 2 ("Style guide review"): no acceptance',
        ),
    ],
)
def test_a_broken_export_names_the_line_at_fault(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert error(tmp_path, edit(export_json(BACKLOG), old, new)).startswith(expected)


def test_export_markdown_is_a_readable_document() -> None:
    text = export_markdown([*BACKLOG, feature(4, "Run `make` twice", acceptance=("echo `date`",))])

    assert text == (
        "# Backlog\n"
        "\n"
        "## #1 Users table\n"
        "\n"
        "functional · passed · priority 5\n"
        "\n"
        "Users table, described.\n"
        "\n"
        "Acceptance:\n"
        "\n"
        "- `pytest tests/test_1.py -q`\n"
        "\n"
        "## #2 Style guide review\n"
        "\n"
        "style · needs_input · priority 2 · depends on #1\n"
        "\n"
        "Style guide review, described.\n"
        "\n"
        "Acceptance: manual: checked by a person\n"
        "\n"
        "## #3 Log in\n"
        "\n"
        "functional · failed · priority 3 · depends on #1, #2\n"
        "\n"
        "Log in, described.\n"
        "\n"
        "Steps:\n"
        "\n"
        "1. Open /login\n"
        "2. Submit the form\n"
        "\n"
        "Acceptance:\n"
        "\n"
        "- `pytest tests/test_login.py -q`\n"
        "- `ruff check src/auth`\n"
        "\n"
        "Files: `src/auth/login.py`\n"
        "\n"
        "## #4 Run `make` twice\n"
        "\n"
        "functional · pending · priority 4\n"
        "\n"
        "Run `make` twice, described.\n"
        "\n"
        "Acceptance:\n"
        "\n"
        "- `` echo `date` ``\n"
    )


def test_an_empty_backlog_exports_as_an_empty_document() -> None:
    assert export_markdown([]) == "# Backlog\n\nNo features.\n"
    assert json.loads(export_json([]))["features"] == []


# --- no input ends in a traceback -------------------------------------------------

FUZZ = settings(max_examples=200, deadline=None)
FUZZ_PATH = Path("fuzz.json")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)
field_values = st.one_of(json_values, st.lists(st.text(max_size=8), max_size=3))
quickstart_keys = st.sampled_from(["category", "description", "steps", "passes", "id"])
prd_keys = st.sampled_from(["id", "title", "acceptance_criteria", "blocked_by", "passes"])
items = st.dictionaries(quickstart_keys | prd_keys, field_values | st.integers(0, 3))


@FUZZ
@given(text=st.text(max_size=60))
def test_any_text_parses_or_gives_a_located_error(text: str) -> None:
    try:
        parse_backlog(FUZZ_PATH, text)
    except LocatedError as exc:
        assert exc.message.startswith("fuzz.json")
        assert "\n" not in exc.message


@FUZZ
@given(features=st.lists(items, max_size=4), indent=st.sampled_from([None, 0, 2, "\t"]))
def test_any_feature_list_parses_or_gives_an_error_on_a_real_line(
    features: list[dict[str, Any]], indent: int | str | None
) -> None:
    text = json.dumps(features, indent=indent)
    try:
        parsed = parse_backlog(FUZZ_PATH, text)
    except LocatedError as exc:
        assert exc.line is not None
        assert 1 <= exc.line <= text.count("\n") + 1
        assert "\n" not in exc.message
    else:
        assert len(parsed.specs) == len(features)


# --- Autocoder / AutoForge feature lists ---------------------------------------------


def test_an_autocoder_list_keeps_names_priorities_and_dependencies(tmp_path: Path) -> None:
    features = [
        {"category": "core", "name": "Database", "description": "Tables exist",
         "steps": ["run migrations"], "passes": False, "priority": "high"},
        {"category": "core", "name": "Signup", "description": "POST /signup",
         "steps": [], "passes": True, "priority": 5, "dependencies": [1],
         "in_progress": False},
    ]  # fmt: skip
    parsed = parse(tmp_path, json.dumps(features, indent=2))

    assert parsed.format == "autocoder"
    first, second = parsed.specs
    assert [s.name for s in parsed.specs] == ["Database", "Signup"]
    assert [s.priority for s in parsed.specs] == [1, 5]
    # no ids: a dependency names a feature by its place, and keys are content hashes
    assert second.depends_on_keys == (first.source_key,)
    assert second.passes and second.manual
    assert any("fields not imported: in_progress (1 feature)" in w for w in parsed.warnings)


def test_a_wrapped_autocoder_list_with_string_ids_keeps_them_as_keys(tmp_path: Path) -> None:
    document = {"features": [
        {"id": "F-1", "category": "ui", "name": "Shell", "description": "", "steps": [],
         "passes": False},
        {"id": "F-2", "category": "ui", "name": "Menu", "description": "", "steps": [],
         "passes": False, "depends_on": ["F-1"], "priority": "low"},
    ]}  # fmt: skip
    parsed = parse_backlog(tmp_path / "f.json", json.dumps(document), prefix="web")

    assert [s.source_key for s in parsed.specs] == ["web:F-1", "web:F-2"]
    assert parsed.specs[1].depends_on_keys == ("web:F-1",)
    assert parsed.specs[1].priority == 3
    bad = json.dumps({"features": [{"id": "A", "name": "x", "dependencies": ["B"]}]})
    with pytest.raises(LocatedError, match="names id B, which is not in this file"):
        parse_backlog(tmp_path / "f.json", bad)
