"""How long ``nightcrew backlog list`` (and ``--json``) takes on a big backlog.

Builds a backlog of N features (default 20,000) in a temp git repo, then times
the real ``nightcrew`` executable, as a person runs it, against a baseline
measured in the same run: ``nightcrew --version`` (interpreter start-up and
the CLI's imports). Target: ``backlog list`` at most 1 s at 20,000 features.

    .venv/bin/python bench/backlog_list.py [--features N] [--repeat 5] [--keep DIR]

See bench/README.md for the numbers. Exit 0 whatever they are (a measurement,
not a test); exit 1 only when a command fails or lists the wrong count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nightcrew import gitops
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.work.backlog import FeatureSpec

TARGET_S = 1.0
NIGHTCREW = str(Path(sys.executable).with_name("nightcrew"))
WORDS = ("login", "signup", "profile", "feed", "search", "export", "import", "bill", "pay", "admin")


def build(root: Path, count: int) -> None:
    """A repo whose backlog looks like a big real one: text, steps, commands,
    files, one or two dependencies each, and a spread of states."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
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
        for i in range(count)
    ]
    store = Project(root).open_store()
    try:
        Backlog(store).create(specs, source="bench")
        with store.transaction() as db:  # a build under way: some passed, some stuck
            db.execute("UPDATE features SET state = 'passed' WHERE id % 3 = 0")
            db.execute("UPDATE features SET state = 'skipped' WHERE id % 97 = 0")
            db.execute("UPDATE features SET state = 'failed', attempts = 3 WHERE id % 89 = 0")
    finally:
        store.close()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(root: Path, *args: str) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + sys, git's included) of one command."""
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run([NIGHTCREW, *args], cwd=root, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"nightcrew {' '.join(args)} failed: {done.stderr.strip()}")
    return elapsed, _children_cpu() - cpu, done.stdout


def measure(root: Path, count: int, repeat: int) -> dict[str, list[tuple[float, float]]]:
    """Each round runs every command once, so all see the same machine load."""
    labels = ("--version", "backlog list", "backlog list --json")
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
    for _ in range(repeat):
        for label, times in runs.items():
            elapsed, cpu, out = timed(root, *label.split())
            times.append((elapsed, cpu))
            if label.endswith("--json") and len(json.loads(out)) != count:
                raise SystemExit(f"backlog list --json listed {len(json.loads(out))} of {count}")
            if label == "backlog list" and f"{count} shown" not in out:
                raise SystemExit(f"backlog list did not show {count} features")
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="Build the repo here and leave it.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nightcrew-bench-") as tmp:
        root = (args.keep or Path(tmp)) / f"backlog-{args.features}"
        if not (root / ".nightcrew").exists():
            started = time.perf_counter()
            build(root, args.features)
            print(f"built {args.features:,} features in {time.perf_counter() - started:.1f} s")
        assert gitops.is_repo(root)
        runs = measure(root, args.features, args.repeat)
    base = min(wall for wall, _ in runs["--version"])
    print(f"{args.features:,} features, {args.repeat} rounds, {os.cpu_count()} CPUs")
    print(f"{'command':<22} {'best s':>7} {'median s':>9} {'best CPU s':>11} {'vs --version':>13}")
    for label, times in runs.items():
        walls = [wall for wall, _ in times]
        best, cpu = min(walls), min(c for _, c in times)
        median = statistics.median(walls)
        print(f"{label:<22} {best:7.3f} {median:9.3f} {cpu:11.3f} {best / base:12.1f}×")
    verdict = "met" if min(wall for wall, _ in runs["backlog list"]) <= TARGET_S else "missed"
    print(f"target: backlog list at most {TARGET_S:.0f} s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
