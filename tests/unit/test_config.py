"""Settings from nightcrew.toml or [tool.nightcrew], then command-line overrides; a bad
file is one error naming the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightcrew.config import load_settings
from nightcrew.core.errors import BadInput, LocatedError


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(text, encoding="utf-8")
    return path


def located(root: Path, overrides: dict[str, object] | None = None) -> LocatedError:
    with pytest.raises(LocatedError) as raised:
        load_settings(root, overrides)
    return raised.value


def test_defaults_without_any_config_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.agent == "claude"
    assert settings.model is None
    assert settings.escalate_model is None
    assert settings.gates == ()
    assert settings.on_failure == "retry"
    assert settings.max_retries == 2
    assert settings.max_budget_usd is None
    assert settings.attempt_timeout == 1800
    assert settings.gate_timeout == 1800
    assert settings.commit is True
    assert settings.allowed_tools is None  # the agent backend's own default
    assert settings.pricing == {}
    assert settings.parallel == 1
    assert settings.merge == "rebase"
    assert settings.branch_per_feature is False
    assert settings.worktree_setup == ()
    assert (settings.port_base, settings.ports_per_lane) == (3100, 10)


def test_parallel_build_keys_from_the_file_are_in_the_snapshot(tmp_path: Path) -> None:
    write(
        tmp_path,
        "nightcrew.toml",
        "parallel = 4\n"
        'merge = "squash"\n'
        "branch_per_feature = true\n"
        'worktree_setup = [\'cp "$NIGHTCREW_PROJECT_ROOT/.env" .env\', "npm ci"]\n'
        "port_base = 4000\n"
        "ports_per_lane = 20\n",
    )
    snapshot = load_settings(tmp_path).snapshot()
    assert {k: snapshot[k] for k in ("parallel", "merge", "branch_per_feature")} == {
        "parallel": 4,
        "merge": "squash",
        "branch_per_feature": True,
    }
    assert snapshot["worktree_setup"] == ['cp "$NIGHTCREW_PROJECT_ROOT/.env" .env', "npm ci"]
    assert (snapshot["port_base"], snapshot["ports_per_lane"]) == (4000, 20)


def test_pyproject_without_a_nightcrew_table_gives_defaults(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[project]\nname = "app"\n\n[tool.ruff]\nline-length = 90\n')
    assert load_settings(tmp_path) == load_settings(tmp_path / "nowhere")


def test_values_from_nightcrew_toml(tmp_path: Path) -> None:
    write(
        tmp_path,
        "nightcrew.toml",
        'model = "claude-sonnet-4-5"\n'
        'escalate_model = "claude-opus-4-1"\n'
        'gates = ["pytest -q", "ruff check ."]\n'
        'on_failure = "skip"\n'
        "max_retries = 4\n"
        "max_budget_usd = 12.5\n"
        "attempt_timeout = 600\n"
        "commit = false\n"
        "\n"
        "[pricing.my-model]\n"
        "input = 1.0\n"
        "output = 5.0\n"
        "cache_read = 0.1\n"
        "cache_write_5m = 1.25\n"
        "cache_write_1h = 2\n",
    )
    settings = load_settings(tmp_path)
    assert settings.model == "claude-sonnet-4-5"
    assert settings.escalate_model == "claude-opus-4-1"
    assert settings.gates == ("pytest -q", "ruff check .")
    assert settings.on_failure == "skip"
    assert settings.max_retries == 4
    assert settings.max_budget_usd == 12.5
    assert settings.attempt_timeout == 600
    assert settings.commit is False
    assert settings.pricing == {
        "my-model": {
            "input": 1.0,
            "output": 5.0,
            "cache_read": 0.1,
            "cache_write_5m": 1.25,
            "cache_write_1h": 2.0,
        }
    }
    assert settings.snapshot()["gates"] == ["pytest -q", "ruff check ."]


def test_values_from_tool_nightcrew_in_pyproject(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pyproject.toml",
        '[project]\nname = "app"\n\n[tool.nightcrew]\nmodel = "haiku"\nmax_retries = 0\n',
    )
    settings = load_settings(tmp_path)
    assert settings.model == "haiku"
    assert settings.max_retries == 0
    assert settings.on_failure == "retry"


def test_nightcrew_toml_wins_over_pyproject(tmp_path: Path) -> None:
    write(
        tmp_path, "pyproject.toml", '[tool.nightcrew]\nmodel = "from-pyproject"\nmax_retries = 7\n'
    )
    write(tmp_path, "nightcrew.toml", 'model = "from-nightcrew-toml"\n')
    settings = load_settings(tmp_path)
    assert settings.model == "from-nightcrew-toml"
    # the files are not merged: one config file applies
    assert settings.max_retries == 2


def test_command_line_overrides_win_and_none_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, "nightcrew.toml", 'model = "sonnet"\nmax_retries = 4\ncommit = true\n')
    settings = load_settings(
        tmp_path, {"model": "opus", "max_retries": None, "commit": False, "max_budget_usd": None}
    )
    assert settings.model == "opus"
    assert settings.max_retries == 4
    assert settings.commit is False
    assert settings.max_budget_usd is None


def test_invalid_toml_names_the_line_of_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, "nightcrew.toml", 'model = "x"\n\n# note\nmax_retries = = 3\n')
    error = located(tmp_path)
    assert isinstance(error, BadInput)
    assert error.exit_code == 2
    assert error.path == str(path)
    assert error.line == 4
    assert str(error).startswith(f"{path}:4: invalid TOML: ")
    assert "(at line" not in str(error)


def test_invalid_toml_in_pyproject(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", '[project]\nname = "app"\nversion = 1.2.3\n')
    error = located(tmp_path)
    assert (error.path, error.line) == (str(path), 3)


def test_unknown_key_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "nightcrew.toml", 'model = "x"\n\n\nmax_retry = 3\n')
    error = located(tmp_path)
    assert str(error) == f"{path}:4: unknown setting 'max_retry'"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            'model = "x"\n\nmax_retries = "three"\n',
            3,
            "max_retries: must be a whole number, got 'three'",
        ),
        ('model = "x"\nmax_retries = 99\n', 2, "max_retries: must be at most 50, got 99"),
        ("\n\n\nattempt_timeout = 0\n", 4, "attempt_timeout: must be more than 0, got 0"),
        (
            'on_failure = "retry"\nmax_budget_usd = -5\n',
            2,
            "max_budget_usd: must be more than 0, got -5",
        ),
        (
            'model = "x"\non_failure = "ignore"\n',
            2,
            "on_failure: must be one of 'stop', 'skip' or 'retry', got 'ignore'",
        ),
        (
            'model = "x"\n\ngates = ["pytest", "  "]\n',
            3,
            "gates: a gate command is empty",
        ),
        ("max_budget_usd = inf\n", 1, "max_budget_usd: must be a finite number, got inf"),
        ("\ndaily_budget_usd = nan\n", 2, "daily_budget_usd: must be a finite number, got nan"),
        ("gate_timeout = -inf\n", 1, "gate_timeout: must be a finite number, got -inf"),
        ('gates = "pytest"\n', 1, 'gates: must be a list, e.g. ["a", "b"], got \'pytest\''),
        ('\ngates = ["pytest", 3]\n', 2, "gates item 2: must be text in quotes, got 3"),
        ('escalation = "opus"\n', 1, "escalation: must be a list"),
        ("model = 3\n", 1, "model: must be text in quotes, got 3"),
        ("commit = 3\n", 1, "commit: must be true or false, got 3"),
        ("max_retries = 1.5\n", 1, "max_retries: must be a whole number, got 1.5"),
        (
            'model = "x"\n[pricing.m]\ninput = -1\noutput = 1\ncache_read = 0\n'
            "cache_write_5m = 0\ncache_write_1h = 0\n",
            3,
            "[pricing.m]: 'input' must be a non-negative number, got -1",
        ),
        (
            'model = "x"\n\n[pricing.m]\ninput = 1\n',
            3,
            "[pricing.m]: missing key 'output'",
        ),
        (
            '[pricing."m.1"]\ninput = 1\noutput = "cheap"\n',
            3,
            "pricing.m.1.output: must be a number, got 'cheap'",
        ),
        ("[pricing]\nm = 3\n", 2, "pricing.m: must be a table, got 3"),
        ('model = "x"\nparallel = 0\n', 2, "parallel: must be at least 1, got 0"),
        ("\nparallel = 17\n", 2, "parallel: must be at most 16, got 17"),
        ("parallel = 2.5\n", 1, "parallel: must be a whole number, got 2.5"),
        (
            'model = "x"\n\nmerge = "ff"\n',
            3,
            "merge: must be one of 'rebase', 'merge' or 'squash', got 'ff'",
        ),
        ("branch_per_feature = 3\n", 1, "branch_per_feature: must be true or false, got 3"),
        ('\nworktree_setup = ["npm ci", " "]\n', 2, "worktree_setup: a setup command is empty"),
        ('worktree_setup = "npm ci"\n', 1, "worktree_setup: must be a list"),
        ("worktree_setup = [3]\n", 1, "worktree_setup item 1: must be text in quotes, got 3"),
        ("model = 'x'\nport_base = 80\n", 2, "port_base: must be at least 1024, got 80"),
        ("port_base = 65001\n", 1, "port_base: must be at most 65000, got 65001"),
        ("\n\nports_per_lane = 0\n", 3, "ports_per_lane: must be at least 1, got 0"),
        ("ports_per_lane = 1001\n", 1, "ports_per_lane: must be at most 1000, got 1001"),
        (
            'model = "x"\nport_base = 60000\nports_per_lane = 1000\nparallel = 8\n',
            2,
            "port_base + 2 * parallel * ports_per_lane (two lanes per agent) must be at most"
            " 65535, got 60000 + 2 * 8 * 1000 = 76000: lower port_base, ports_per_lane or"
            " parallel",
        ),
        (
            # the line of the first key the error names, wherever the file has it
            "parallel = 16\nports_per_lane = 1000\n\nport_base = 50000\n",
            4,
            "port_base + 2 * parallel * ports_per_lane (two lanes per agent) must be at most 65535",
        ),
    ],
)
def test_wrong_type_or_out_of_range_names_its_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, "nightcrew.toml", text)
    error = located(tmp_path)
    assert error.line == line
    assert str(error).startswith(f"{path}:{line}: {fragment}")


def test_bad_value_in_pyproject_names_its_line_in_the_nightcrew_table(tmp_path: Path) -> None:
    # another tool's table uses the same key name before ours
    path = write(
        tmp_path,
        "pyproject.toml",
        '[tool.other]\nmax_retries = 1\n\n[tool.nightcrew]\nmodel = "m"\nmax_retries = -1\n',
    )
    error = located(tmp_path)
    assert str(error).startswith(f"{path}:6: max_retries: must be at least 0, got -1")


def test_bad_pricing_in_pyproject_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pyproject.toml",
        '[project]\nname = "a"\n\n[tool.nightcrew.pricing.m]\ninput = 1\n',
    )
    error = located(tmp_path)
    assert str(error) == (f"{path}:4: [pricing.m]: missing key 'output' (USD per million tokens)")


def test_tool_nightcrew_that_is_not_a_table(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", '[project]\nname = "app"\n\n[tool]\n\nnightcrew = 3\n')
    error = located(tmp_path)
    assert str(error) == f"{path}:6: [tool.nightcrew] must be a table"


def test_tool_that_is_not_a_table_is_no_nightcrew_config(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", "tool = 3\n")
    assert load_settings(tmp_path).model is None


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"max_retries": -1}, "--max-retries: must be at least 0, got -1"),
        ({"max_budget_usd": 0}, "--max-budget-usd: must be more than 0, got 0"),
        ({"attempt_timeout": -3.0}, "--attempt-timeout: must be more than 0, got -3"),
        ({"max_budget_usd": float("inf")}, "--max-budget-usd: must be a finite number, got inf"),
        ({"max_item_usd": float("nan")}, "--max-item-usd: must be a finite number, got nan"),
        ({"attempt_timeout": float("inf")}, "--attempt-timeout: must be a finite number, got inf"),
        ({"parallel": 17}, "--parallel: must be at most 16, got 17"),
        (
            {"parallel": 16, "port_base": 60000, "ports_per_lane": 1000},
            "port_base + 2 * parallel * ports_per_lane (two lanes per agent) must be at most"
            " 65535, got 60000 + 2 * 16 * 1000 = 92000: lower port_base, ports_per_lane or"
            " parallel",
        ),
    ],
)
def test_bad_override_names_the_option(
    tmp_path: Path, overrides: dict[str, object], fragment: str
) -> None:
    error = located(tmp_path, overrides)
    assert error.line is None
    assert str(error) == f"command line: {fragment}"
    assert error.exit_code == 2


def test_agent_in_the_file_must_be_a_registered_backend(tmp_path: Path) -> None:
    write(tmp_path, "nightcrew.toml", 'model = "m"\n\nagent = "codex"\n')
    with pytest.raises(LocatedError) as raised:
        load_settings(tmp_path, agents=("claude", "mine"))
    assert str(raised.value) == (
        f"{tmp_path / 'nightcrew.toml'}:3: agent: unknown agent backend 'codex'"
        " (known: claude, mine)"
    )
    assert load_settings(tmp_path, agents=("claude", "codex")).agent == "codex"


def test_agent_on_the_command_line_must_be_a_registered_backend(tmp_path: Path) -> None:
    with pytest.raises(LocatedError) as raised:
        load_settings(tmp_path, {"agent": "codex"}, agents=("claude",))
    assert str(raised.value) == (
        "command line: --agent: unknown agent backend 'codex' (known: claude)"
    )
    assert load_settings(tmp_path, {"agent": "mine"}, agents=("claude", "mine")).agent == "mine"
