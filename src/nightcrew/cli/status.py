"""``nightcrew status [--json]``: the project's latest run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nightcrew.engine.liveness import orchestrator_gone

if TYPE_CHECKING:
    from nightcrew.core.usage import TokenCounts
    from nightcrew.store.records import AttemptRow, Store


def status_data(store: Store, run_id: str) -> dict[str, Any]:
    """The ``--json`` shape: the run with its money, and each batch."""
    run = store.run(run_id)
    build = run.kind == "backlog"
    attempts_of_run = store.attempts(run_id=run_id)
    totals = store.totals(attempts_of_run)
    batches = []
    for item in store.items(run_id):
        attempts = store.attempts(item_id=item.id)
        item_totals = store.totals(attempts)
        gate: dict[str, Any] | None = None
        if attempts:
            results = store.gates(attempts[-1].id)
            tests = next((g for g in results if g.name == "tests"), None)
            gate = {
                "passed": bool(results) and all(g.passed for g in results),
                "tests_passed": tests.tests_passed if tests else None,
                "tests_failed": tests.tests_failed if tests else None,
            }
        named = (
            {"id": item.number, "name": item.title}
            if build
            else {"number": item.number, "title": item.title}
        )
        batches.append(
            {
                **named,
                "state": str(item.state),
                "attempts": len(attempts),
                "cost_usd": _num(item_totals.cost_usd),
                "commit": item.commit_sha,
                "gate": gate,
                "attempt_usage": [_attempt_usage(store, a) for a in attempts],
            }
        )
    t = totals.tokens
    # A build works through the backlog, not a plan file: it says so, and lists features.
    source = {"kind": "build"} if build else {"kind": run.kind, "plan": run.source_path}
    gone = orchestrator_gone(store, run)
    return {
        "run": {
            "id": run.id,
            **source,
            # The store says running until the next run recovers it; say what is true.
            "state": "crashed" if gone is not None else str(run.state),
            "state_note": f"pid {gone} is gone" if gone is not None else None,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "message": run.message,
            # nothing spent is $0; only an attempt can make the cost unknown
            "cost_usd": 0.0 if not attempts_of_run else _num(totals.cost_usd),
            "tokens": _tokens(t),
        },
        "features" if build else "batches": batches,
    }


def _attempt_usage(store: Store, attempt: AttemptRow) -> dict[str, Any]:
    """One attempt's model, money and tokens, with its prompt-cache hit ratio."""
    from nightcrew.usage.ledger import cache_hit_ratio

    tokens = store.attempt_tokens(attempt.id)
    return {
        "number": attempt.number,
        "state": str(attempt.state),
        "reason": attempt.exit_reason,  # why it ended: the agent's own words on an error
        "model": attempt.model,
        "session_id": attempt.session_id,
        "cost_usd": _num(attempt.cost_usd),
        "cost_source": attempt.cost_source,
        "tokens": _tokens(tokens),
        "cache_hit_ratio": cache_hit_ratio(tokens),
        "tool_denials": attempt.tool_denials,
    }


def _tokens(t: TokenCounts) -> dict[str, int]:
    return {
        "input": t.input,
        "output": t.output,
        "cache_read": t.cache_read,
        "cache_write": t.cache_write,
    }


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_command(as_json: bool) -> None:
    """Show the project's latest run: its state, batches, cost and commits."""
    from rich.console import Console

    from nightcrew.cli.display import summary_table
    from nightcrew.core.errors import BadInput
    from nightcrew.engine.orchestrator import summary_rows, summary_unit
    from nightcrew.project import Project
    from nightcrew.store.records import Store

    project = Project.find(Path.cwd())
    if not project.store_path.exists():
        raise BadInput(f"{project.root}: no nightcrew run here yet")
    store = Store.open(project.store_path, create=False)
    try:
        run = store.latest_run()
        if run is None:
            raise BadInput(f"{project.root}: no nightcrew run here yet")
        data = status_data(store, run.id)
        if as_json:
            click.echo(json.dumps(data, indent=2))
            return
        console = Console(highlight=False)
        r = data["run"]
        cost = "unknown" if r["cost_usd"] is None else f"${r['cost_usd']:.4f}"
        what = f"build {r['id']}" if "features" in data else f"run {r['id']} ({r['plan']})"
        console.print(
            f"{what}: {r['state']}"
            + (f" ({r['state_note']})" if r["state_note"] else "")
            + f", started {r['started_at']}, cost {cost}",
            markup=False,
        )
        if r["message"] and r["state"] != "running":
            console.print(r["message"], markup=False, soft_wrap=True)
        console.print(summary_table(summary_rows(store, run.id), unit=summary_unit(run.kind)))
    finally:
        store.close()
