"""``nightcrew usage --by model`` says how each model's attempts went: attempts,
pass rate and cost per passed item, from a real project database, in the table and
the JSON; an unknown cost or nothing passed is unknown, never $0."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from nightcrew.cli import cli
from nightcrew.core.states import AttemptState
from nightcrew.core.usage import TokenCounts
from nightcrew.project import Project
from nightcrew.store.records import Store
from tests.unit.store_rows import new_attempt, new_item, new_run

# (item, model, passed, reported cost of the attempt; None = unknown)
ATTEMPTS = [
    (1, "claude-haiku-4-5", False, "0.01"),
    (1, "claude-sonnet-4-5", True, "0.30"),
    (2, "claude-haiku-4-5", True, "0.02"),
    (3, "claude-haiku-4-5", False, "0.03"),
    (3, "claude-opus-4-1", False, "1.10"),
    (4, "mystery-model", True, None),
]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    store = Store.open(Project(tmp_path).store_path)
    try:
        run = new_run(store)
        items = {n: new_item(store, run, n) for n in (1, 2, 3, 4)}
        for number, model, passed, cost in ATTEMPTS:
            a = new_attempt(store, run, items[number], model=model)
            store.record_usage(
                a.id, kind="final", message_id=None, request_id=None, model=model,
                tokens=TokenCounts(100, 10), cost_usd=None if cost is None else Decimal(cost),
                cost_source="reported",
            )  # fmt: skip
            state = AttemptState.PASSED if passed else AttemptState.FAILED
            store.finish_attempt(a.id, state, reason="gates")
    finally:
        store.close()
    cwd = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(cwd)


def usage(*args: str) -> str:
    result = CliRunner().invoke(cli, ["usage", *args], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_json_gives_each_models_attempts_pass_rate_and_cost_per_passed_item(
    project: Path,
) -> None:
    groups = {g["key"]: g for g in json.loads(usage("--by", "model", "--json"))["groups"]}
    haiku = groups["claude-haiku-4-5"]
    assert (haiku["attempts"], haiku["passed_attempts"], haiku["items_passed"]) == (3, 1, 1)
    assert haiku["pass_rate"] == pytest.approx(1 / 3)
    assert haiku["cost_per_passed_item_usd"] == pytest.approx(0.06)  # all three attempts paid
    sonnet = groups["claude-sonnet-4-5"]
    assert (sonnet["pass_rate"], sonnet["cost_per_passed_item_usd"]) == (1.0, 0.3)
    opus = groups["claude-opus-4-1"]  # nothing passed: no division by zero, no $0
    assert (opus["pass_rate"], opus["cost_per_passed_item_usd"]) == (0.0, None)
    mystery = groups["mystery-model"]  # passed, but its cost is unknown
    assert (mystery["pass_rate"], mystery["cost_per_passed_item_usd"]) == (1.0, None)


def test_the_table_shows_them_as_columns(project: Path) -> None:
    table = usage("--by", "model")
    header = next(line for line in table.splitlines() if "Model" in line)
    for column in ("Attempts", "Pass rate", "$/item passed"):
        assert column in header
    haiku = next(line for line in table.splitlines() if "claude-haiku-4-5" in line)
    assert [c.strip() for c in haiku.split("│")[-4:-1]] == ["3", "33%", "$0.0600"]
    opus = next(line for line in table.splitlines() if "claude-opus-4-1" in line)
    assert [c.strip() for c in opus.split("│")[-4:-1]] == ["1", "0%", "unknown"]
    assert "$0.0000" not in table


def test_other_groupings_and_csv_are_unchanged(project: Path) -> None:
    assert "Attempts" not in usage("--by", "run")
    assert "attempts" not in json.loads(usage("--by", "day", "--json"))["groups"][0]
    assert usage("--by", "model", "--csv").splitlines()[0].split(",")[-1] == "last"
