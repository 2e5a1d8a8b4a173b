"""The [[routing]] list: its rules reach the settings in one shape; a bad rule
is one line naming the file, the line and what is wrong, in nightcrew's words."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightcrew.config import load_settings
from nightcrew.core.errors import LocatedError

RULES = """model = "m"

[[routing]]
name = "quick"
kind = "feature"
category = ["docs", "chore"]
max_chars = 2000
models = ["haiku", "sonnet"]

[[routing]]
critical = true
models = ["opus"]
"""


def test_rules_from_nightcrew_toml(tmp_path: Path) -> None:
    (tmp_path / "nightcrew.toml").write_text(RULES)
    quick, second = load_settings(tmp_path).routing
    assert quick.name == "quick"
    assert quick.kind == ("feature",)  # one value becomes a list
    assert quick.category == ("docs", "chore")
    assert quick.max_chars == 2000 and quick.min_chars is None
    assert quick.models == ("haiku", "sonnet")
    assert second.name == "rule 2"  # the default name
    assert second.critical is True and second.kind == ()


def test_rules_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.nightcrew]\nmodel = "m"\n\n[[tool.nightcrew.routing]]\nkind = "init"\n'
        'models = ["opus"]\n'
    )
    (rule,) = load_settings(tmp_path).routing
    assert rule.kind == ("init",) and rule.models == ("opus",)


def test_no_rules_leave_the_stored_snapshot_as_it_was(tmp_path: Path) -> None:
    assert "routing" not in load_settings(tmp_path).snapshot()
    (tmp_path / "nightcrew.toml").write_text(RULES)
    assert load_settings(tmp_path).snapshot()["routing"][0]["name"] == "quick"


def test_the_settings_know_what_the_command_line_gave(tmp_path: Path) -> None:
    (tmp_path / "nightcrew.toml").write_text(RULES)
    assert load_settings(tmp_path).command_line == frozenset()
    given = load_settings(tmp_path, {"model": "opus", "escalate_model": None})
    assert given.command_line == {"model"}


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            '[[routing]]\nkind = "batch"\nmodel = ["x"]\n',
            5,
            "routing rule 1: unknown key 'model' (known: name, kind,",
        ),
        ('[[routing]]\nname = "q"\nkind = "batch"\n', 3, "routing rule 1 'q': models is missing"),
        ("[[routing]]\nmodels = []\n", 4, "routing rule 1: models must be a list of model names"),
        ('[[routing]]\nmodels = "haiku"\n', 4, "routing rule 1: models must be a list"),
        ('[[routing]]\nmodels = ["a", ""]\n', 4, "routing rule 1: models must be a list"),
        ('[[routing]]\nmodels = ["a", "a"]\n', 4, "routing rule 1: models: 'a' is named twice"),
        (
            '[[routing]]\nmodels = ["a"]\n\n[[routing]]\nkind = "review"\nmodels = ["b"]\n',
            7,
            "routing rule 2: kind must be one of init, batch, feature, conflict, summary,"
            " got 'review'",
        ),
        (
            '[[routing]]\nmodels = ["a"]\ncritical = "yes"\n',
            5,
            "routing rule 1: critical must be true or false",
        ),
        (
            '[[routing]]\nmodels = ["a"]\nmax_files = 1.5\n',
            5,
            "routing rule 1: max_files must be a whole number, 0 or more",
        ),
        (
            '[[routing]]\nmodels = ["a"]\nmin_chars = -1\n',
            5,
            "routing rule 1: min_chars must be a whole number",
        ),
        (
            '[[routing]]\nname = "big"\nmin_chars = 500\nmax_chars = 100\nmodels = ["a"]\n',
            5,
            "routing rule 1 'big': min_chars 500 is more than max_chars 100: nothing can match",
        ),
        ('[[routing]]\ncategory = [3]\nmodels = ["a"]\n', 4, "routing rule 1: category must be"),
        ('[[routing]]\nname = ""\nmodels = ["a"]\n', 4, "routing rule 1: name must be text"),
        (
            '[[routing]]\nname = "q"\nmodels = ["a"]\n[[routing]]\nname = "q"\nmodels = ["b"]\n',
            7,
            "routing rule 2: the name 'q' is taken by rule 1",
        ),
        ('[routing]\nmodels = ["a"]\n', 3, "routing must be a list of [[routing]] tables"),
        ('routing = "opus"\n', 3, "routing must be a list of [[routing]] tables"),
    ],
)
def test_a_bad_rule_names_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    (tmp_path / "nightcrew.toml").write_text('model = "m"\n\n' + body)
    with pytest.raises(LocatedError) as raised:
        load_settings(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / 'nightcrew.toml'}:{line}: {message}")
    assert "Input should" not in str(raised.value)


def test_a_bad_rule_in_pyproject_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\n\n[tool.nightcrew]\nmodel = "m"\n\n'
        '[[tool.nightcrew.routing]]\nmodels = ["a"]\n\n[[tool.nightcrew.routing]]\n'
        'min_files = 3\nmax_files = 2\nmodels = ["b"]\n'
    )
    with pytest.raises(LocatedError) as raised:
        load_settings(tmp_path)
    assert raised.value.line == 11
    assert "routing rule 2: min_files 3 is more than max_files 2" in str(raised.value)
