"""Rows for tests of the project store and what reads it: a run, its items and
their attempts, with plausible values."""

from __future__ import annotations

from pathlib import Path

from nightcrew.store.records import AttemptRow, ItemRow, RunRow, Store


def new_run(store: Store) -> RunRow:
    return store.create_run(
        kind="plan",
        source_path="PLAN.md",
        source_sha256="a" * 64,
        config={"model": "sonnet", "max_retries": 2},
        prefix_sha256="b" * 64,
        pid=4242,
    )


def new_item(store: Store, run: RunRow, number: int = 1, title: str | None = None) -> ItemRow:
    return store.add_item(
        run.id,
        key=str(number),
        number=number,
        title=title if title is not None else f"Batch {number}",
        body="Do it.",
        sha="c" * 64,
    )


def new_attempt(store: Store, run: RunRow, item: ItemRow, model: str = "sonnet") -> AttemptRow:
    return store.start_attempt(
        run_id=run.id,
        item_id=item.id,
        backend="claude",
        model=model,
        prefix_sha256="b" * 64,
        prompt_sha256="d" * 64,
        base_sha="e" * 40,
        evidence_dir=Path("/tmp/evidence"),
    )
