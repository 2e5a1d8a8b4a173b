"""``nightcrew usage`` end to end: a run whose scripted model reports known usage
for two models, then the reports over the project store, the registry, and the
transcripts the real Claude Code CLI wrote during the run."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    add_function,
    make_project,
    nightcrew_env,
    plan_text,
    run_nightcrew,
    work_turns,
)

pytestmark = pytest.mark.cli

HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-5"
# List prices, USD per million tokens (formats.md §3): in, out, cache read, 5m write, 1h write.
PRICES = {HAIKU: (1.0, 5.0, 0.10, 1.25, 2.0), SONNET: (3.0, 15.0, 0.30, 3.75, 6.0)}


def usage(inp: int, out: int, read: int, w5m: int, w1h: int) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": w5m + w1h,
        "cache_creation": {"ephemeral_5m_input_tokens": w5m, "ephemeral_1h_input_tokens": w1h},
    }


H1, H2 = usage(2100, 310, 4000, 900, 100), usage(2200, 45, 4500, 300, 0)
S1, S2 = usage(1700, 290, 6000, 1200, 400), usage(1800, 60, 7000, 0, 50)


def claude_code_cost(model: str, *usages: Mapping[str, Any]) -> float:
    """Claude Code's formula (formats.md §1.4), for the expected reported cost."""
    p_in, p_out, p_read, p_5m, p_1h = PRICES[model]
    total = 0.0
    for u in usages:
        h1 = u["cache_creation"]["ephemeral_1h_input_tokens"]
        m5 = u["cache_creation_input_tokens"] - h1
        total += (
            u["input_tokens"] * p_in
            + u["output_tokens"] * p_out
            + u["cache_read_input_tokens"] * p_read
            + m5 * p_5m
            + h1 * p_1h
        ) / 1e6
    return total


def summed(*usages: Mapping[str, Any]) -> dict[str, int]:
    return {
        "input_tokens": sum(u["input_tokens"] for u in usages),
        "output_tokens": sum(u["output_tokens"] for u in usages),
        "cache_read_tokens": sum(u["cache_read_input_tokens"] for u in usages),
        "cache_write_5m_tokens": sum(
            u["cache_creation"]["ephemeral_5m_input_tokens"] for u in usages
        ),
        "cache_write_1h_tokens": sum(
            u["cache_creation"]["ephemeral_1h_input_tokens"] for u in usages
        ),
    }


def usage_json(root: Path, env: Mapping[str, str], *args: str) -> dict[str, Any]:
    result = run_nightcrew(root, env, "usage", *args, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def check_models(data: Mapping[str, Any], *, cost_source: str) -> None:
    by_model = {g["key"]: g for g in data["groups"]}
    assert set(by_model) == {HAIKU, SONNET}
    for model, usages in ((HAIKU, (H1, H2)), (SONNET, (S1, S2))):
        group = by_model[model]
        for field, value in summed(*usages).items():
            assert group[field] == value, (cost_source, model, field)
        assert group["cost_usd"] == pytest.approx(claude_code_cost(model, *usages), abs=1e-6)
        assert group["cost_complete"] is True
    expected_total = claude_code_cost(HAIKU, H1, H2) + claude_code_cost(SONNET, S1, S2)
    assert data["totals"]["cost_usd"] == pytest.approx(expected_total, abs=1e-6)
    assert data["totals"]["input_tokens"] == 2100 + 2200 + 1700 + 1800


def test_usage_reports_two_models_exactly_as_claude_code_reported_them(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Hard"]))
    wrong = work_turns(add_function("f1", "0", "calc.f1(0, 0) == 1"), H1, H2)
    right = work_turns(add_function("f1", "1", "calc.f1(0, 0) == 1"), S1, S2)
    _, sim = sim_env(
        {
            "scripts": [
                {"name": "s", "match": {"all": ["Batch 1 of 1"], "model": SONNET}, "turns": right},
                {"name": "h", "match": {"all": ["Batch 1 of 1"], "model": HAIKU}, "turns": wrong},
            ]
        }
    )
    env = nightcrew_env(sim)

    run = run_nightcrew(
        root, env, "run", "PLAN.md", "--model", HAIKU, "--max-retries", "1",
        "--escalate-model", SONNET,
    )  # fmt: skip

    assert run.returncode == 0, run.stdout + run.stderr

    # by model: the scripted numbers, and the cost Claude Code reported for each model
    data = usage_json(root, env, "--by", "model")
    assert data["source"] == "project"
    check_models(data, cost_source="reported")

    # by run and by item: one group each holding both attempts
    (run_group,) = usage_json(root, env, "--by", "run")["groups"]
    assert run_group["entries"] == 2 and run_group["models"] == [HAIKU, SONNET]
    (item,) = usage_json(root, env, "--by", "item")["groups"]
    assert item["label"] == "batch 1: Hard"
    # by session: one per attempt, each with its cache-hit ratio
    sessions = usage_json(root, env, "--by", "session")["groups"]
    assert len(sessions) == 2
    for group in sessions:
        prompt = group["input_tokens"] + group["cache_read_tokens"] + group["cache_write_tokens"]
        assert group["cache_hit_ratio"] == pytest.approx(group["cache_read_tokens"] / prompt)
    # a window that ends before today holds nothing
    assert usage_json(root, env, "--until", "2020-01-01")["groups"] == []

    # the table, with the project total line and the day chart
    table = run_nightcrew(root, env, "usage", "--by", "day")
    assert table.returncode == 0, table.stderr
    total_tokens = data["totals"]["total_tokens"]
    assert f"this project has used {total_tokens:,} tokens / $" in table.stdout
    assert "█" in table.stdout

    # CSV: a row per group and a totals row that agrees with the JSON
    sheet = run_nightcrew(root, env, "usage", "--by", "model", "--csv")
    rows = list(csv.DictReader(io.StringIO(sheet.stdout)))
    assert [r["key"] for r in rows][-1] == "total"
    assert int(rows[-1]["total_tokens"]) == total_tokens

    # the registry knows the project, so --all-projects finds it from anywhere
    everywhere = usage_json(tmp_path, env, "--all-projects", "--by", "project")
    assert everywhere["projects"] == [str(root.resolve())]
    assert everywhere["totals"]["total_tokens"] == total_tokens

    # Claude Code's own transcripts of the same run give the same numbers
    imported = run_nightcrew(root, env, "usage", "import", "--json")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    report = json.loads(imported.stdout)
    assert report["entries_added"] == 4 and report["lines_skipped"] == 0
    check_models(
        usage_json(root, env, "--source", "transcripts", "--by", "model"), cost_source="priced"
    )
    again = json.loads(run_nightcrew(root, env, "usage", "import", "--json").stdout)
    assert again["entries_added"] == 0 and again["bytes_read"] == 0


def test_forecast_for_a_run_stopped_part_way(tmp_path: Path, sim_env: SimStarter) -> None:
    root = make_project(tmp_path / "proj", plan_text(["One", "Two", "Three"]))
    scripts = [
        {
            "name": f"b{n}",
            "match": {"all": [f"Batch {n} of 3"]},
            "turns": work_turns(add_function(f"f{n}", str(n), f"calc.f{n}(0, 0) == {n}"), H1, H2),
        }
        for n in (1, 2, 3)
    ]
    _, sim = sim_env({"scripts": scripts})
    env = nightcrew_env(sim)
    run = run_nightcrew(root, env, "run", "PLAN.md", "--model", HAIKU, "--end-batch", "1")
    assert run.returncode == 0, run.stdout + run.stderr

    data = usage_json(root, env, "--forecast")

    assert (data["passed"], data["left"]) == (1, 2)
    per_batch = claude_code_cost(HAIKU, H1, H2)
    forecast = data["forecast"]
    assert forecast["cost_median"] == pytest.approx(2 * per_batch, abs=1e-6)
    assert forecast["cost_low"] == forecast["cost_median"] == forecast["cost_high"]
    assert forecast["seconds_median"] > 0
    text = run_nightcrew(root, env, "usage", "--forecast")
    assert "2 batches left" in text.stdout and "from 1 passed batch" in text.stdout, text.stdout
