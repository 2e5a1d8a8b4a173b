"""The status of a run or a build, as ``nightcrew status --json`` shows it:
the run with its money, and each batch (or feature) with its attempts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nightcrew.engine.liveness import orchestrator_gone
from nightcrew.store.controls import paused
from nightcrew.usage.ledger import cache_hit_ratio

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
    pause = paused(store, run.id) if gone is None else None
    return {
        "run": {
            "id": run.id,
            **source,
            # The store says running until the next run recovers it; say what is true.
            "state": "crashed" if gone is not None else str(run.state),
            "state_note": f"pid {gone} is gone" if gone is not None else None,
            # A person paused it (`nightcrew pause`): since when (UTC), by whom, from where.
            "paused": (
                {"since": pause.since, "by": pause.by, "origin": pause.origin}
                if pause is not None
                else None
            ),
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
