"""How much faster is ``nightcrew build --parallel N`` than one lane?

Builds a backlog of M independent features (default 8) with the real
``nightcrew`` executable and the real Claude Code CLI against ``nightcrew.sim``,
whose every scripted answer waits ``--delay`` seconds (default 2.0, the Lanes
issue's example). Runs N = 1, 2 and 4 lanes, each on a fresh copy of the
project and a fresh sim, and prints the wall time per N, the speedup over one
lane (target >= 0.8 x N) and the merge queue's own time per landing, gates
left out (target <= 150 ms). On two cores, 2 s answers do not let agent time
dominate: the CLIs, tests and git of four lanes need more CPU than the model
time they overlap. ``--floor`` measures what the work itself allows (the same
work with no harness, parallel_floor.py); ``--delay 10`` is a regime where
model time dominates, as with a real model (see bench/README.md).

    .venv/bin/python bench/parallel.py [--repeat K] [--features M] [--delay S]
                                       [--lanes 1,2,4] [--pytest-plugins] [--perf]
                                       [--floor] [--keep DIR]

See bench/README.md for the method. Exit 0 whatever the times (this is a
measurement, not a test); exit 1 when a build failed, did not pass every
feature or did not land one commit per feature on main.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nightcrew import proc
from nightcrew.sim import Scenario, SimServer, agent_env

sys.path.insert(0, str(Path(__file__).parent))
import cpu_breakdown  # the module beside this script

MODEL = "claude-sonnet-4-5"
SPEEDUP_TARGET = 0.8  # of N, for N <= 4
MERGE_TARGET_MS = 150.0
PERF_HZ = 499  # --perf: cpu-clock samples per second and CPU

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}

BASE = (
    '"""The sample app the parallel benchmark grows, one module per feature."""\n\nNAME = "app"\n'
)
BASE_TEST = 'import app\n\n\ndef test_app():\n    assert app.NAME == "app"\n'
USAGE = {"input_tokens": 1800, "output_tokens": 120, "cache_read_input_tokens": 9000}


class RunFailed(Exception):
    pass


# ---- the sample project ------------------------------------------------------------


def module_name(i: int) -> str:
    return f"mod_{i:02d}"


def token(i: int) -> str:
    """A marker only feature ``i``'s own prompt holds (its description): the
    names of landed features come back in later prompts as recent commits."""
    return f"bench-token-{i:03d}-end"


def acceptance(i: int) -> str:
    name = module_name(i)
    return f"{sys.executable} -c 'import {name}; assert {name}.VALUE == {i}'"


def nightcrew_argv(*args: str) -> list[str]:
    """The ``nightcrew`` executable next to this interpreter, as a person runs it."""
    exe = Path(sys.executable).parent / "nightcrew"
    return [str(exe), *args]


def checked(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    done = proc.run(argv, cwd=cwd, env=env, timeout_s=120)
    if done.exit_code != 0:
        raise RunFailed(f"`{' '.join(argv)}` exited {done.exit_code}: {done.output.strip()}")
    return done.output


def make_project(root: Path, features: int, env: Mapping[str, str], *, pytest_plugins: bool) -> str:
    """A git repo holding a tiny pytest project and a backlog of ``features``
    independent features; returns the initial commit's sha."""
    (root / "tests").mkdir(parents=True)
    (root / "app.py").write_text(BASE)
    (root / "tests" / "test_app.py").write_text(BASE_TEST)
    pytest_ini = '[tool.pytest.ini_options]\npythonpath = ["."]\n'
    if not pytest_plugins:
        # The sample's tests run on this venv's python, whose dev plugins
        # (hypothesis above all) add ~1 CPU-s to every pytest start here: that
        # would measure them, not the lanes or the merge queue. In the project's
        # own config, because lanes' gates do not get our environment.
        pytest_ini += 'addopts = "--disable-plugin-autoload"\n'
    (root / "pyproject.toml").write_text(pytest_ini)
    (root / ".gitignore").write_text("__pycache__/\n")
    checked(["git", "init", "-q", "-b", "main"], root, env)
    checked(["git", "add", "-A"], root, env)
    checked(["git", "commit", "-q", "-m", "initial"], root, env)
    for i in range(1, features + 1):
        name = module_name(i)
        checked(
            nightcrew_argv(
                "backlog",
                "add",
                f"Module {name}",
                "--description",
                f"Add {name}.py with VALUE = {i}, and its test. Marker: {token(i)}",
                "--accept",
                acceptance(i),
                "--file",
                f"{name}.py",
                "--file",
                f"tests/test_{name}.py",
            ),
            root,
            env,
        )
    return checked(["git", "rev-parse", "HEAD"], root, env).strip()


def scenario(features: int, delay: float) -> dict[str, Any]:
    """Feature i: one Bash call writes its module and its test, then a closing
    text; both answers come after ``delay`` seconds."""
    scripts = []
    for i in range(1, features + 1):
        name = module_name(i)
        command = (
            f"cat > {name}.py <<'PY'\nVALUE = {i}\nPY\n"
            f"cat > tests/test_{name}.py <<'PY'\nimport {name}\n\n\ndef test_{name}():\n"
            f"    assert {name}.VALUE == {i}\nPY"
        )
        scripts.append(
            {
                "name": f"feature-{i}",
                "match": {"all": [token(i)]},
                "turns": [
                    {
                        "text": f"Writing {name}.",
                        "tool": {"name": "Bash", "input": {"command": command}},
                        "usage": USAGE,
                        "delay_s": delay,
                    },
                    {
                        "text": f"Added {name}.",
                        "usage": {**USAGE, "output_tokens": 20},
                        "delay_s": delay,
                    },
                ],
            }
        )
    return {"scripts": scripts}


# ---- one run ------------------------------------------------------------------------


@dataclass
class Run:
    lanes: int
    wall: float
    cpu: float  # user + sys of the build and every process it waited for
    load_before: float
    load_after: float
    merges: list[float] = field(default_factory=list)  # merge_seconds of each landing
    merge_gates: list[float] = field(default_factory=list)  # gate_seconds of each landing
    unscripted: int = 0  # requests the sim answered with its fallback
    sim_cpu: float = 0.0  # this process's CPU during the build: the sim's threads
    reused: int = 0  # landings whose checks were not run again (checks_reused)
    grouped: int = 0  # landings checked in one run with others (checked_with)
    breakdown: cpu_breakdown.Breakdown | None = None  # with --perf


def _children_cpu() -> float:
    """CPU seconds of this process's reaped children and theirs: the build,
    its agents (each CLI is reaped by the build), gates and git."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _own_cpu() -> float:
    """CPU seconds of this process: the sim answers the agents from its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def merge_landings(db: Path) -> list[dict[str, Any]]:
    """The ``merge_landed`` events' payloads, read straight from the project's store."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT payload_json FROM events WHERE kind = 'merge_landed' ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return [json.loads(r[0]) for r in rows]


def check_outcome(root: Path, env: Mapping[str, str], initial: str, features: int) -> None:
    listed = json.loads(checked(nightcrew_argv("backlog", "list", "--json"), root, env))
    states = {f"#{f['id']}": f["state"] for f in listed}
    not_passed = {k: v for k, v in states.items() if v != "passed"}
    if len(states) != features or not_passed:
        raise RunFailed(f"not every feature passed: {not_passed or states}")
    branch = checked(["git", "symbolic-ref", "--short", "HEAD"], root, env).strip()
    if branch != "main":
        raise RunFailed(f"the checkout is on {branch}, not main")
    count = int(checked(["git", "rev-list", "--count", f"{initial}..main"], root, env))
    if count != features:
        raise RunFailed(f"{count} commit(s) landed on main, expected {features}")
    missing = [
        module_name(i)
        for i in range(1, features + 1)
        if not (root / f"{module_name(i)}.py").is_file()
    ]
    if missing:
        raise RunFailed(f"main's checkout lacks {', '.join(missing)}")


def run_once(
    workdir: Path,
    lanes: int,
    features: int,
    delay: float,
    *,
    pytest_plugins: bool,
    perf: bool = False,
) -> Run:
    root = workdir / "proj"
    base_env = {
        **os.environ,
        **GIT_ENV,
        "NIGHTCREW_HOME": str(workdir / "nightcrew-home"),
    }
    base_env.pop("NIGHTCREW_DEBUG", None)
    initial = make_project(root, features, base_env, pytest_plugins=pytest_plugins)
    with SimServer(Scenario.from_dict(scenario(features, delay))) as sim:
        # agent_env also gives an empty HOME: the CLI's Bash tool sources the
        # login shell's profile, which must not add to agent time.
        env = {**base_env, **agent_env(sim.url, workdir / "claude-config")}
        load_before = os.getloadavg()[0]
        cpu_before, own_before = _children_cpu(), _own_cpu()
        argv = nightcrew_argv("build", "--model", MODEL, "--parallel", str(lanes))
        recording = workdir / "perf.data"
        if perf:
            argv = ["perf", "record", "-q", "-F", str(PERF_HZ), "-o", str(recording), "--", *argv]
        done = proc.run(
            argv,
            cwd=root,
            env=env,
            timeout_s=300 + features * (4 * delay + 30),
            output_file=workdir / "build.log",
        )
        load_after = os.getloadavg()[0]
        cpu = _children_cpu() - cpu_before
        sim_cpu = _own_cpu() - own_before
        if sim.errors:
            raise RunFailed(f"nightcrew.sim reported errors: {sim.errors!r}")
        unscripted = sum(1 for r in sim.requests if r.script is None)
    if done.timed_out:
        raise RunFailed(f"build --parallel {lanes} timed out after {done.duration_s:.0f} s")
    if done.exit_code != 0:
        tail = "\n".join(done.output.strip().splitlines()[-15:])
        raise RunFailed(f"build --parallel {lanes} exited {done.exit_code}:\n{tail}")
    check_outcome(root, base_env, initial, features)
    landings = merge_landings(root / ".nightcrew" / "nightcrew.db")
    if lanes > 1 and len(landings) != features:
        raise RunFailed(f"{len(landings)} merge_landed event(s), expected {features}")
    breakdown = None
    if perf:
        found = cpu_breakdown.analyse(recording)
        if len(found) != 1:
            raise RunFailed(f"{len(found)} builds found in {recording}, expected 1")
        breakdown = found[0]
        recording.unlink()  # ~3 MB a build; the breakdown is printed
    return Run(
        lanes=lanes,
        wall=done.duration_s,
        cpu=cpu,
        load_before=load_before,
        load_after=load_after,
        merges=[float(p["merge_seconds"]) for p in landings],
        merge_gates=[float(p["gate_seconds"]) for p in landings],
        unscripted=unscripted,
        sim_cpu=sim_cpu,
        reused=sum(1 for p in landings if p.get("checks_reused")),
        grouped=sum(1 for p in landings if p.get("checked_with")),
        breakdown=breakdown,
    )


# ---- output -------------------------------------------------------------------------

HEADER = """\
nightcrew build --parallel N: {m} independent features, real `nightcrew` executable,
real Claude Code CLI against nightcrew.sim, every model answer after {delay:g} s
(2 answers per feature: a Bash call, then a final text); {cpus} CPU(s).
  wall    = spawn -> exit of `nightcrew build --parallel N` (start-up, baseline tests,
            agents, gates, merge queue, everything a person waits for)
  speedup = median wall at N=1 / median wall at N; target >= {target:g} x N
  CPU     = user + sys of the build and every process it reaped (agents, gates, git);
            sim CPU (not in it) = this process's, whose threads are the sim
  merge   = merge_seconds of the merge_landed events (the queue's git time:
            scratch worktree, rebase, branch move; its checks not counted)
"""


def floor_report(walls: Mapping[int, Sequence[float]], builds: Mapping[int, float]) -> None:
    """The floor's speedups (the work alone, bench/parallel_floor.py) beside the
    builds': what share of the speedup the work allows nightcrew gets, and
    whether a target is within reach at all on this machine."""
    floor = {n: statistics.median(ws) for n, ws in walls.items()}
    print()
    print("the floor: the same work with no harness (bench/parallel_floor.py), same rounds")
    print(f"{'N':>3} {'wall s':>8} {'speedup':>8}  nightcrew's, and its share of the floor's")
    for n, wall in floor.items():
        speedup = floor[1] / wall
        ours = builds[1] / builds[n]
        share = f"{ours:.2f}\u00d7 of {speedup:.2f}\u00d7 ({ours / speedup:.0%})"
        print(f"{n:>3} {wall:>8.1f} {speedup:>7.2f}\u00d7  {share if n > 1 else ''}")
    for n, wall in floor.items():
        goal = SPEEDUP_TARGET * n
        if 1 < n <= 4 and floor[1] / wall < goal:
            print(
                f"target \u2265{goal:.1f}\u00d7 at N={n}: out of reach on this machine at this"
                f" delay (the work alone gives {floor[1] / wall:.2f}\u00d7)"
            )


def report(runs: Sequence[Run], lanes: Sequence[int], features: int) -> None:
    by_n = {n: [r for r in runs if r.lanes == n] for n in lanes}
    walls = {n: statistics.median(r.wall for r in rs) for n, rs in by_n.items()}
    cpus = {n: statistics.median(r.cpu for r in rs) for n, rs in by_n.items()}
    repeat = len(by_n[lanes[0]])
    print()
    spread = "  runs (s)" if repeat > 1 else ""
    print(
        f"{'N':>3} {'wall s':>8} {'speedup':>8} {'target':>8}  {'':6}  {'CPU s':>6}"
        f" {'CPU/wall':>8}{spread}"
    )
    for n in lanes:
        speedup = walls[1] / walls[n]
        if n == 1:
            target, verdict = "\u2014", ""
        elif n <= 4:
            goal = SPEEDUP_TARGET * n
            target = f"\u2265{goal:.1f}\u00d7"
            verdict = "met" if speedup >= goal else "missed"
        else:
            target, verdict = "\u2014", ""
        each = "  " + " ".join(f"{r.wall:.1f}" for r in by_n[n]) if repeat > 1 else ""
        print(
            f"{n:>3} {walls[n]:>8.1f} {speedup:>7.2f}\u00d7 {target:>8}  {verdict:6}"
            f"  {cpus[n]:>6.1f} {cpus[n] / walls[n]:>8.2f}{each}"
        )
    print()
    cores = os.cpu_count() or 1
    for n in lanes[1:]:
        # The build's CPU cannot take less wall than CPU-s / cores: what that
        # allows at best, so a missed target shows whether cores or waits cost it.
        floor = cpus[n] / cores
        print(
            f"CPU ceiling, N={n}: {cpus[n]:.1f} CPU-s on {cores} core(s) take at least"
            f" {floor:.1f} s, so at best {walls[1] / floor:.2f}\u00d7 over N=1"
        )
    print()
    for n in lanes:
        sim = statistics.median(r.sim_cpu for r in by_n[n])
        print(
            f"CPU per feature, N={n}: {cpus[n] / features:.2f} CPU-s"
            f" (sim, not counted: {sim:.1f} CPU-s a build)"
        )
    breakdown_report(by_n, features)
    print()
    for n in lanes:
        if n == 1:
            print("merge queue, N=1: none (one lane works in place and commits on main)")
            continue
        merges = [s for r in by_n[n] for s in r.merges]
        checks = [s for r in by_n[n] for s in r.merge_gates]
        median, worst = statistics.median(merges) * 1000, max(merges) * 1000
        verdict = "met" if median <= MERGE_TARGET_MS else "missed"
        print(
            f"merge queue, N={n}: {len(merges)} landings, own time median {median:.1f} ms,"
            f" max {worst:.1f} ms (target \u2264 {MERGE_TARGET_MS:.0f} ms: {verdict});"
            f" its checks median {statistics.median(checks) * 1000:.0f} ms,"
            f" busy {sum(merges) + sum(checks):.1f} s in all;"
            f" {sum(r.reused for r in by_n[n])} landed on the tree their lane had checked"
            f" (checks not run again), {sum(r.grouped for r in by_n[n])} checked together"
            " with others (merge_batch)"
        )
    loads = [x for r in runs for x in (r.load_before, r.load_after)]
    print(f"load average (1 min) around the runs: {min(loads):.2f}\u2013{max(loads):.2f}")
    unscripted = sum(r.unscripted for r in runs)
    if unscripted:
        print(f"note: the sim answered {unscripted} request(s) with its fallback (no delay)")


def breakdown_report(by_n: Mapping[int, Sequence[Run]], features: int) -> None:
    """With --perf: each N's median CPU-s per kind of process (cpu_breakdown)."""
    sampled = {n: [r.breakdown for r in rs if r.breakdown is not None] for n, rs in by_n.items()}
    if not any(sampled.values()):
        return
    lanes = [n for n in by_n if sampled[n]]
    print()
    print("CPU-s by process (perf samples; median of the runs; per feature in brackets):")
    print(f"  {'':<12}" + "".join(f" {'N=' + str(n):>15}" for n in lanes))
    for cat in (*cpu_breakdown.CATEGORIES, "sampled"):
        values = {
            n: statistics.median(
                b.total if cat == "sampled" else b.seconds.get(cat, 0.0) for b in sampled[n]
            )
            for n in lanes
        }
        if cat == "other" and not any(values.values()):
            continue
        cells = "".join(f" {values[n]:6.2f} ({values[n] / features:5.2f})" for n in lanes)
        print(f"  {cat:<12}{cells}")
    counts = "; ".join(
        f"N={n}: {statistics.median(b.processes.get('git', 0) for b in sampled[n]):.0f} git,"
        f" {statistics.median(b.processes.get('pytest', 0) for b in sampled[n]):.0f} pytest"
        for n in lanes
    )
    print(f"  processes started by the build: {counts}")


def parse_lanes(text: str) -> list[int]:
    try:
        lanes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not lanes or lanes[0] != 1 or lanes[-1] > 16:
        raise argparse.ArgumentTypeError("lanes must include 1 and stay within 1..16")
    return lanes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="rounds of N=1,2,4 (default 1)")
    parser.add_argument("--features", type=int, default=8, help="features (default 8)")
    parser.add_argument(
        "--delay", type=float, default=2.0, help="seconds before each model answer (default 2.0)"
    )
    parser.add_argument(
        "--lanes", type=parse_lanes, default=[1, 2, 4], help="values of N (default 1,2,4)"
    )
    parser.add_argument(
        "--pytest-plugins",
        action="store_true",
        help="let the sample's pytest load this venv's plugins (about 1 s more per test run)",
    )
    parser.add_argument(
        "--perf",
        action="store_true",
        help="record each build with `perf record` and print its CPU by kind of process",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="after each build, the same work with no harness (bench/parallel_floor.py)",
    )
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the projects in DIR")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.features < 1:
        parser.error("--repeat and --features must be at least 1")
    if not 0 <= args.delay <= 3600:
        parser.error("--delay must be between 0 and 3600")
    if importlib.util.find_spec("pytest") is None:
        print("parallel: the tests gate needs pytest in this interpreter", file=sys.stderr)
        return 1
    if args.perf and shutil.which("perf") is None:
        print("parallel: --perf needs `perf` (linux-perf) on PATH", file=sys.stderr)
        return 1
    if not Path(nightcrew_argv()[0]).is_file():
        print(f"parallel: no nightcrew executable at {nightcrew_argv()[0]}", file=sys.stderr)
        return 1
    print(
        HEADER.format(
            m=args.features, delay=args.delay, cpus=os.cpu_count(), target=SPEEDUP_TARGET
        ),
        flush=True,
    )
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="parallel-", dir=args.keep))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="nightcrew-bench-"))
    runs: list[Run] = []
    floors: dict[int, list[float]] = {n: [] for n in args.lanes}
    try:
        for k in range(1, args.repeat + 1):
            for n in args.lanes:
                one = run_once(
                    workdir / f"round{k}-n{n}",
                    n,
                    args.features,
                    args.delay,
                    pytest_plugins=args.pytest_plugins,
                    perf=args.perf,
                )
                runs.append(one)
                print(
                    f"round {k}, N={n}: {one.wall:.1f} s, {one.cpu:.1f} CPU-s"
                    f" (load {one.load_before:.2f} \u2192 {one.load_after:.2f})",
                    flush=True,
                )
                if args.floor:
                    import parallel_floor  # noqa: PLC0415 - it imports this module

                    wall, cpu = parallel_floor.run_once(
                        workdir / f"round{k}-n{n}-floor", n, args.features, args.delay
                    )
                    floors[n].append(wall)
                    print(f"round {k}, N={n}, the floor: {wall:.1f} s, {cpu:.1f} CPU-s", flush=True)
    except RunFailed as exc:
        print(f"parallel: the run failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep is not None:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report(runs, args.lanes, args.features)
    if args.floor:
        builds = {n: statistics.median(r.wall for r in runs if r.lanes == n) for n in args.lanes}
        floor_report(floors, builds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
