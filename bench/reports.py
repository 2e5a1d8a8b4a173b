"""How long two usage reports take on big data, as a person runs them.

Generates (in a temp dir) a global database holding 63,000 imported transcript
responses and a project whose ``.nightcrew/nightcrew.db`` has 200,000 usage
rows, then times the real ``nightcrew`` executable:

* ``nightcrew usage --source transcripts --by day --json``: target 0.15 s;
* ``nightcrew usage --by model`` (project source): target 0.2 s.

Each is also run through the old path (every row an ``Entry``, grouped by the
ledger in Python), measured in the same rounds: the same command in a
subprocess with the SQL grouping swapped for the entries path. Both paths must
print the same bytes (the project report as CSV, which has no model outcome
columns), or the bench fails.

    .venv/bin/python bench/reports.py [--responses 63000] [--rows 200000] [--repeat 7]
                                      [--keep DIR]

See bench/README.md. Exit 0 whatever the times (a measurement, not a test);
exit 1 only when a command fails or the two paths disagree.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from nightcrew.core.states import AttemptState, ItemState
from nightcrew.project import Project
from nightcrew.store.records import Store
from nightcrew.usage import globaldb
from nightcrew.usage.pricing import pico_text

NIGHTCREW = str(Path(sys.executable).with_name("nightcrew"))
TRANSCRIPTS_TARGET_S = 0.15
PROJECT_TARGET_S = 0.20
MODELS = ("claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805")
# (input, output, cache read, 5m write, 1h write) in picodollars per token
RATES = {
    MODELS[0]: (3_000_000, 15_000_000, 300_000, 3_750_000, 6_000_000),
    MODELS[1]: (1_000_000, 5_000_000, 100_000, 1_250_000, 2_000_000),
    MODELS[2]: (15_000_000, 75_000_000, 1_500_000, 18_750_000, 30_000_000),
}
T0 = datetime(2026, 9, 1, tzinfo=UTC)

# The old path: the same command, with the report's grouping done on entries in Python.
OLD_PATH = """
import sys
from nightcrew.views import project_usage, transcript_usage, usage_sql
from nightcrew.store.usage_query import project_entries
from nightcrew.usage.globaldb import transcript_entries
from nightcrew.usage.pricing import sum_costs
from nightcrew.core.usage import TokenCounts

def transcript_groups(db, by, since, until, tz):
    entries = transcript_entries(db, since, until)
    return usage_sql.entry_groups(entries, by, tz, in_time_order=True)

def project_groups(store, root, by, *, run_id, since, until, tz):
    entries = project_entries(store, root, run_id=run_id, since=since, until=until)
    return usage_sql.entry_groups(entries, by, tz), {}

def project_total(store, root):
    every = project_entries(store, root)
    first = min((e.ts for e in every), default=None)
    tokens = sum((e.tokens for e in every), TokenCounts())
    return tokens, sum_costs(e.cost_usd for e in every), first

transcript_usage.transcript_groups = transcript_groups
project_usage._project_groups = project_groups
project_usage._project_total = project_total
from nightcrew.launch import main
sys.argv = ["nightcrew", *sys.argv[1:]]
main()
"""


def _cost(model: str, tokens: tuple[int, ...], rng: random.Random) -> str | None:
    """Cost text as the importer writes it: priced picodollars, now and then a cost
    Claude Code reported (float text), and unknown for a model without a price."""
    if model not in RATES:
        return None
    if rng.random() < 0.05:
        return format(round(rng.uniform(0.001, 0.4), 6), "f")
    return pico_text(sum(n * r for n, r in zip(tokens, RATES[model], strict=True)))


def _tokens(rng: random.Random) -> tuple[int, int, int, int, int]:
    return (
        rng.randint(1, 40),
        rng.randint(20, 3000),
        rng.randint(0, 120_000),
        rng.randint(0, 4000),
        rng.choice((0, 0, 0, rng.randint(0, 2000))),
    )


def build_transcripts(home: Path, responses: int, rng: random.Random) -> None:
    """A global database with ``responses`` imported responses over 90 days in 600
    files, 3 % of them copied into a second file (resumed sessions), some replayed
    by a subagent, and one model without a price."""
    os.environ["NIGHTCREW_HOME"] = str(home)
    db = globaldb.open_global()
    try:
        files = [
            globaldb.add_file(
                db,
                f"/home/me/.claude/projects/p{n % 12}/{n:04d}.jsonl",
                globaldb.KnownFile(0, 1, 1, n, 1, 1, "", 0),
            )
            for n in range(600)
        ]
        rows = []
        models = (*MODELS, "some-unpriced-model")
        for i in range(responses):
            model = models[0 if i % 10 < 6 else 1 if i % 10 < 9 else 2] if i % 500 else models[3]
            tokens = _tokens(rng)
            at = T0 + timedelta(seconds=i * 90 * 86_400 / responses + rng.random())
            row = (
                files[(i // 105) % len(files)], f"msg_{i:08x}", f"req_{i:08x}",
                f"session-{i // 105}", f"/home/me/p{(i // 105) % 12}", model,
                globaldb.format_ts(at), *tokens, _cost(model, tokens, rng), "priced",
                int(i % 97 == 0),
            )  # fmt: skip
            rows.append(row)
            if i % 33 == 0:  # the same response in a resumed session's file
                rows.append((files[(i // 105 + 1) % len(files)], *row[1:]))
        db.executemany(globaldb.UPSERT_USAGE, rows)
        db.execute("COMMIT")
    finally:
        db.close()


def build_project(root: Path, rows: int, rng: random.Random) -> None:
    """A project with ``rows`` usage records: 50 runs of 10 batches, one to three
    attempts each (the last one passed, one in ten killed mid-stream with only its
    responses), each attempt's responses and, unless killed, its final totals per model."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    store = Store.open(Project(root).store_path)
    try:
        attempts: list[tuple[int, bool]] = []
        for r in range(50):
            run = store.create_run(kind="plan", source_path="PLAN.md", source_sha256="a" * 64,
                                   config={}, prefix_sha256="b" * 64, pid=1)  # fmt: skip
            for n in range(1, 11):
                item = store.add_item(run.id, key=str(n), number=n, title=f"Batch {r}.{n}",
                                      body="Do it.", sha="c" * 64)  # fmt: skip
                store.set_item_state(item.id, ItemState.IN_PROGRESS)
                tries = 1 + (r * 10 + n) % 3
                for k in range(tries):
                    model = MODELS[1] if k == 0 and tries > 1 else MODELS[0 if k < 2 else 2]
                    a = store.start_attempt(run_id=run.id, item_id=item.id, backend="claude",
                                            model=model, prefix_sha256="b" * 64,
                                            prompt_sha256="d" * 64, base_sha="e" * 40,
                                            evidence_dir=root / "evidence")  # fmt: skip
                    passed = k == tries - 1
                    killed = not passed and rng.random() < 0.1
                    state = AttemptState.PASSED if passed else AttemptState.FAILED
                    if not killed:
                        store.finish_attempt(a.id, state, reason="gates")
                    attempts.append((a.id, killed))
        per_attempt = rows // len(attempts)
        records = []
        for n, (attempt_id, killed) in enumerate(attempts):
            models: dict[str, list[int]] = {}
            for j in range(per_attempt - (0 if killed else 2)):
                model = MODELS[1] if j % 7 == 0 else MODELS[(n // 5) % 3]
                tokens = _tokens(rng)
                sums = models.setdefault(model, [0] * 5)
                for x, t in enumerate(tokens):
                    sums[x] += t
                at = T0 + timedelta(seconds=n * 600 + j * 3)
                records.append((attempt_id, "response", f"msg_{n}_{j}", model, *tokens,
                                _decimal_text(_cost(model, tokens, rng)), "priced",
                                at.isoformat(timespec="milliseconds")))  # fmt: skip
            if not killed:
                for model, sums in sorted(models.items())[:2]:
                    at = T0 + timedelta(seconds=n * 600 + 599)
                    records.append((attempt_id, "final", "", model, *sums,
                                    _decimal_text(_cost(model, tuple(sums), rng)), "reported",
                                    at.isoformat(timespec="milliseconds")))  # fmt: skip
        with store.transaction() as db:
            db.executemany(
                "INSERT INTO usage_records (attempt_id, kind, message_id, model, input_tokens,"
                " output_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens,"
                " cost_usd, cost_source, ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                records,
            )
    finally:
        store.close()


def _decimal_text(text: str | None) -> str | None:
    """The project store writes ``str(Decimal)``: tiny costs come out as ``3E-7``."""
    return None if text is None else str(Decimal(text))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + sys) of one command, and what it printed."""
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return elapsed, _children_cpu() - cpu, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=63_000)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="Build the data here and leave it.")
    parser.add_argument(
        "--before", type=Path, metavar="SRC",
        help="Also time the code under SRC (e.g. `git archive main src | tar -x -C DIR`, then"
        " DIR/src), as it is: the reports of an earlier commit.",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nightcrew-bench-") as tmp:
        base = args.keep or Path(tmp)
        home, project = base / "home", base / "project"
        env = {**os.environ, "NIGHTCREW_HOME": str(home), "COLUMNS": "200"}
        rng = random.Random(0)
        if not home.exists():
            started = time.perf_counter()
            build_transcripts(home, args.responses, rng)
            print(f"wrote {args.responses:,} transcript responses in"
                  f" {time.perf_counter() - started:.1f} s")  # fmt: skip
        if not project.exists():
            started = time.perf_counter()
            build_project(project, args.rows, rng)
            print(f"wrote a project of ~{args.rows:,} usage rows in"
                  f" {time.perf_counter() - started:.1f} s")  # fmt: skip
        old = [sys.executable, "-c", OLD_PATH]
        commands = {
            "--version": ["--version"],
            "transcripts by day": ["usage", "--source", "transcripts", "--by", "day", "--json"],
            "project by model": ["usage", "--by", "model"],
        }
        before = [sys.executable, "-c", "from nightcrew.launch import main; main()"]
        before_env = {**env, "PYTHONPATH": str(args.before)} if args.before else env
        kinds = ("", " (old)", " (before)") if args.before else ("", " (old)")
        times: dict[str, list[tuple[float, float]]] = {
            f"{k}{s}": [] for k in commands for s in kinds
        }
        for _ in range(args.repeat):  # each round runs every command: the same machine load
            for label, cmd in commands.items():
                times[label].append(timed([NIGHTCREW, *cmd], project, env)[:2])
                times[f"{label} (old)"].append(timed([*old, *cmd], project, env)[:2])
                if args.before:
                    times[f"{label} (before)"].append(
                        timed([*before, *cmd], project, before_env)[:2]
                    )
        checks = [
            ["usage", "--source", "transcripts", "--by", "day", "--json"],
            ["usage", "--by", "model", "--csv"],
            ["usage", "--by", "day", "--json"],
        ]
        for cmd in checks:
            if timed([NIGHTCREW, *cmd], project, env)[2] != timed([*old, *cmd], project, env)[2]:
                print(f"nightcrew {' '.join(cmd)}: the SQL and the Python paths disagree")
                return 1
    load = os.getloadavg()[0]
    print(f"{args.repeat} rounds, {os.cpu_count()} CPUs, load {load:.1f}; medians in seconds")
    print(f"{'command':<20} {'wall':>6} {'cpu':>6} {'old wall':>9} {'old cpu':>8} {'old/now':>8}"
          f"  target (wall)")  # fmt: skip
    targets = {"transcripts by day": TRANSCRIPTS_TARGET_S, "project by model": PROJECT_TARGET_S}
    for label in commands:
        wall = statistics.median(w for w, _ in times[label])
        cpu = statistics.median(c for _, c in times[label])
        old_wall = statistics.median(w for w, _ in times[f"{label} (old)"])
        old_cpu = statistics.median(c for _, c in times[f"{label} (old)"])
        target = targets.get(label)
        verdict = "" if target is None else f"{target:.2f} {'met' if wall <= target else 'missed'}"
        print(f"{label:<20} {wall:6.3f} {cpu:6.3f} {old_wall:9.3f} {old_cpu:8.3f}"
              f" {old_wall / wall:7.1f}×  {verdict}")  # fmt: skip
        if args.before:
            was = times[f"{label} (before)"]
            b_wall = statistics.median(w for w, _ in was)
            b_cpu = statistics.median(c for _, c in was)
            print(f"{'  before':<20} {b_wall:6.3f} {b_cpu:6.3f}   ({b_wall / wall:.1f}× now)")
    if load > (os.cpu_count() or 1):
        print("the machine is busy: wall times wait for a CPU; the cpu column is the cost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
