"""The [policy] table: its values reach the settings; a bad value is one line
naming the file, the line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightcrew.config import load_settings
from nightcrew.core.errors import LocatedError
from nightcrew.toolpolicy import PolicySpec


def test_standard_is_the_default(tmp_path: Path) -> None:
    assert load_settings(tmp_path).policy.spec() == PolicySpec()


def test_values_from_nightcrew_toml(tmp_path: Path) -> None:
    (tmp_path / "nightcrew.toml").write_text(
        'model = "m"\n\n[policy]\nprofile = "strict"\nbash_allow = ["docker", "make *"]\n'
        'bash_deny = ["npm publish*"]\nwrite_outside_project = true\n'
    )
    spec = load_settings(tmp_path).policy.spec()
    assert spec == PolicySpec("strict", ("docker", "make *"), ("npm publish*",), True)


def test_values_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.nightcrew]\nmodel = "m"\n\n[tool.nightcrew.policy]\nprofile = "off"\n'
    )
    assert load_settings(tmp_path).policy.profile == "off"


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            '[policy]\nprofile = "lenient"\n',
            4,
            "policy.profile: must be one of standard, strict, off, not 'lenient'",
        ),
        ('[policy]\nbash_allow = "docker"\n', 4, "policy.bash_allow: must be a list of command"),
        ('[policy]\nbash_deny = ["ok", ""]\n', 4, "policy.bash_deny: must be a list of command"),
        ("[policy]\nwrite_outside_project = 1\n", 4, "policy.write_outside_project: must be true"),
        ("[policy]\nprofle = 'strict'\n", 4, "unknown setting 'policy.profle'"),
        ('policy = "strict"\n', 3, "policy must be a table"),
    ],
)
def test_a_bad_value_names_file_and_line(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    (tmp_path / "nightcrew.toml").write_text('model = "m"\n\n' + body)
    with pytest.raises(LocatedError) as raised:
        load_settings(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / 'nightcrew.toml'}:{line}: {message}")
    assert "Input should" not in str(raised.value)


def test_a_bad_value_in_pyproject_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nprofile = "fine here"\n\n'
        '[tool.nightcrew.policy]\nprofile = "nope"\n'
    )
    with pytest.raises(LocatedError) as raised:
        load_settings(tmp_path)
    assert raised.value.line == 6
