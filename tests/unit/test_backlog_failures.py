"""Failure records read back with costs as numbers, as ``backlog failures --json``
prints them."""

from __future__ import annotations

import json
from pathlib import Path

from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.work.backlog import FeatureSpec


def test_failure_costs_are_numbers_without_float_noise(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "nightcrew.db")
    backlog = Backlog(store)
    backlog.create([FeatureSpec("Export", acceptance=("true",))], source="test")
    backlog.record_failure(
        1,
        run_id=None,
        reason="gave up",
        attempts=[
            {"number": 1, "cost_usd": "0.30000000000000004"},
            {"number": 2, "cost_usd": None},
        ],
        cost_usd="0.3000000000000000444",
        last_text=None,
    )
    [failure] = backlog.failures()
    store.close()

    assert failure["cost_usd"] == 0.3
    assert [a["cost_usd"] for a in failure["attempts"]] == [0.3, None]  # unknown stays unknown
    assert '"cost_usd": 0.3,' in json.dumps(failure)
