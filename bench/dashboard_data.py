"""A project as big as a long-lived one, for measuring the dashboard.

``build(root)`` makes a git repository whose store holds, by default, 1,000
backlog features (text, steps, commands, files, one or two dependencies, a
spread of states), 40 build runs whose work items point at them, 20,000
attempts across those items (models, lanes, states, times, costs, one in
twenty of unknown cost), 200,000 usage records (responses, plus the final
per-model totals of every finished attempt) over the last 60 days, one gate
result per finished attempt, and the event log a run writes (attempt
started/finished, tool calls, decisions, merges) — about 130,000 events.

Rows go in with ``executemany`` inside one transaction per table, through the
store's own schema (``Store.open`` runs the migrations), so the file is what
nightcrew itself would read. ``python bench/dashboard_data.py DIR`` builds one
and prints its counts.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.work.backlog import FeatureSpec

MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1")
# USD per million tokens: input, output, cache read, cache write (5 min).
RATES = {
    MODELS[0]: (Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75")),
    MODELS[1]: (Decimal(1), Decimal(5), Decimal("0.1"), Decimal("1.25")),
    MODELS[2]: (Decimal(15), Decimal(75), Decimal("1.5"), Decimal("18.75")),
}
WORDS = ("login", "signup", "profile", "feed", "search", "export", "import", "bill", "pay", "admin")
TOOLS = ("Read", "Edit", "Bash", "Write", "Grep")


def _ts(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cost(model: str, tokens: tuple[int, int, int, int]) -> Decimal:
    return sum(
        (Decimal(n) * rate for n, rate in zip(tokens, RATES[model], strict=True)), Decimal(0)
    ) / Decimal(1_000_000)


def build(
    root: Path,
    *,
    features: int = 1_000,
    attempts: int = 20_000,
    usage_rows: int = 200_000,
    runs: int = 40,
    seed: int = 1,
    now: datetime | None = None,
) -> dict[str, int]:
    """Make the project at ``root``; return the count of rows per table."""
    rng = random.Random(seed)
    end = now or datetime.now(UTC)
    start = end - timedelta(days=60)
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    store = Project(root).open_store()
    try:
        specs = [
            FeatureSpec(
                name=f"User can {WORDS[i % 10]} {WORDS[(i // 10) % 10]} item {i}",
                category=("functional", "style", "api", "infrastructure")[i % 4],
                description=f"Feature {i}: " + "what it does and why, for the agent. " * 4,
                steps=(f"Open page {i}", "Do the thing", "See the result"),
                acceptance=(f"pytest -q tests/test_f{i}.py",),
                files=(f"src/{WORDS[i % 10]}.py", f"tests/test_f{i}.py"),
                depends_on_indices=tuple(d for d in (i - 1, i - 7) if d >= 0 and i % 5),
            )
            for i in range(features)
        ]
        Backlog(store).create(specs, source="bench")
        with store.transaction() as db:  # a backlog well under way
            db.execute("UPDATE features SET state = 'passed' WHERE id % 3 = 0")
            db.execute("UPDATE features SET state = 'skipped' WHERE id % 97 = 0")
            db.execute("UPDATE features SET state = 'failed' WHERE id % 89 = 0")
            db.execute("UPDATE features SET state = 'needs_input' WHERE id % 83 = 0")
            db.execute("UPDATE features SET state = 'blocked' WHERE id % 79 = 0")
            db.execute("UPDATE features SET manual = 1 WHERE id % 101 = 0")

        run_ids = [
            store.create_run(
                kind="backlog",
                source_path="backlog",
                source_sha256="a" * 64,
                config={},
                prefix_sha256="b" * 64,
                pid=1,
            ).id
            for _ in range(runs)
        ]
        # Each run works on its share of the features; each item gets its attempts.
        per_run = max(1, features // runs)
        items: list[tuple[int, str, int]] = []  # item id, run id, feature id
        with store.transaction() as db:
            for r, run_id in enumerate(run_ids):
                for f in range(r * per_run + 1, min(features, (r + 1) * per_run) + 1):
                    cur = db.execute(
                        "INSERT INTO work_items (run_id, key, number, title, body, body_sha256,"
                        " state, feature_id) VALUES (?,?,?,?,?,?,?,?)",
                        (run_id, f"feature-{f}", f, specs[f - 1].name, "…", "c" * 64,
                         "passed" if f % 3 == 0 else "failed", f),
                    )  # fmt: skip
                    assert cur.lastrowid is not None
                    items.append((cur.lastrowid, run_id, f))
            for r, run_id in enumerate(run_ids):
                at = start + timedelta(days=60 * r / runs)
                db.execute(
                    "UPDATE runs SET state = 'succeeded', started_at = ?, finished_at = ?"
                    " WHERE id = ?",
                    (_ts(at), _ts(at + timedelta(hours=6)), run_id),
                )

        attempt_rows = []
        usage = []
        gates = []
        events = []
        per_attempt = max(1, usage_rows // attempts)
        span = (end - start).total_seconds()
        for n in range(attempts):
            item_id, run_id, feature = items[n % len(items)]
            number = n // len(items) + 1
            model = MODELS[0 if n % 10 < 6 else 1 if n % 10 < 9 else 2]
            began = start + timedelta(seconds=span * n / attempts)
            seconds = rng.uniform(30, 900)
            finished = began + timedelta(seconds=seconds)
            unknown = n % 20 == 0
            state = "passed" if n % 3 == 0 else "failed" if n % 11 else "cancelled"
            total = Decimal(0)
            for j in range(per_attempt - 1):
                tokens = (
                    rng.randint(1, 40),
                    rng.randint(20, 3000),
                    rng.randint(0, 120_000),
                    rng.randint(0, 4000),
                )
                cost = None if unknown else _cost(model, tokens)
                total += cost or 0
                at = began + timedelta(seconds=seconds * (j + 1) / per_attempt)
                usage.append(
                    (n + 1, "response", f"msg_{n}_{j}", model, *tokens, 0,
                     None if cost is None else str(cost), "priced", _ts(at))
                )  # fmt: skip
            usage.append(
                (n + 1, "final", "", model, 100, 1000, 50_000, 2000, 0,
                 None if unknown else str(total), "reported", _ts(finished))
            )  # fmt: skip
            attempt_rows.append(
                (n + 1, run_id, item_id, number, "claude", model, json.dumps([model]),
                 "b" * 64, "d" * 64, "e" * 40, state, "gates" if state != "passed" else None,
                 rng.randint(3, 60), _ts(began), _ts(finished), seconds * 0.8, seconds * 0.2,
                 None if unknown else str(total), None if unknown else "reported",
                 1 + n % 4, json.dumps([f"src/{WORDS[feature % 10]}.py"]))
            )  # fmt: skip
            gates.append(
                (n + 1, "tests", "pytest -q", int(state == "passed"), seconds * 0.2,
                 0 if state == "passed" else 1, 0, 40, 0 if state == "passed" else 2,
                 f"tests: {'passed' if state == 'passed' else '2 failed'}")
            )  # fmt: skip
            lane = 1 + n % 4
            item = f"feature #{feature}"
            stamp = _ts(began)
            events.append((stamp, run_id, n + 1, "attempt_started", json.dumps(
                {"lane": lane, "heading": f"{item} '{specs[feature - 1].name}'",
                 "number": number, "model": model})))  # fmt: skip
            for t in range(4):
                events.append((stamp, run_id, n + 1, "tool_call", json.dumps(
                    {"lane": lane, "name": TOOLS[(n + t) % 5],
                     "input": {"file_path": f"src/{WORDS[feature % 10]}.py"}})))  # fmt: skip
            events.append((_ts(finished), run_id, n + 1, "attempt_finished", json.dumps(
                {"lane": lane, "item": item, "number": number, "state": state, "model": model,
                 "cost_usd": None if unknown else str(total), "seconds": seconds})))  # fmt: skip
            if state == "failed":
                events.append((_ts(finished), run_id, n + 1, "decision", json.dumps(
                    {"lane": lane, "action": "retry", "model": model, "feature": feature,
                     "reason": "same failure as attempt 1 — tests/test_cart.py::test_total"}
                )))  # fmt: skip
        with store.transaction() as db:
            db.executemany(
                "INSERT INTO attempts (id, run_id, item_id, number, backend, model, models_json,"
                " prefix_sha256, prompt_sha256, base_sha, state, exit_reason, tool_calls,"
                " started_at, finished_at, agent_seconds, gate_seconds, cost_usd, cost_source,"
                " lane, files_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                attempt_rows,
            )
            db.executemany(
                "INSERT INTO usage_records (attempt_id, kind, message_id, model, input_tokens,"
                " output_tokens, cache_read_tokens, cache_write_5m_tokens,"
                " cache_write_1h_tokens, cost_usd, cost_source, ts)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                usage,
            )
            db.executemany(
                "INSERT INTO gate_results (attempt_id, name, command, passed, duration_s,"
                " exit_code, timed_out, tests_passed, tests_failed, digest)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                gates,
            )
            db.executemany(
                "INSERT INTO events (ts, run_id, attempt_id, kind, payload_json)"
                " VALUES (?,?,?,?,?)",
                events,
            )
            db.execute(
                "UPDATE features SET attempts = (SELECT COUNT(*) FROM attempts a"
                " JOIN work_items w ON w.id = a.item_id WHERE w.feature_id = features.id)"
            )
        counts = {
            table: store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("features", "runs", "work_items", "attempts", "usage_records", "events")
        }
    finally:
        store.close()
    return counts


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python bench/dashboard_data.py DIR", file=sys.stderr)
        sys.exit(2)
    for table, count in build(Path(sys.argv[1])).items():
        print(f"{table}: {count:,}")
