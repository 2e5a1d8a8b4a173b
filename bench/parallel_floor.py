"""The floor under ``bench/parallel.py``: the same work with no harness at all.

``parallel.py`` asks how much faster ``nightcrew build --parallel N`` is than one
lane. This script asks what speedup the *work itself* allows on this machine:
the same sample project, the same sim answering after ``--delay`` seconds, and
for every feature only what the Lanes issue requires, each step a bare process
started by a few lines of asyncio:

- N=1, in place: the Claude Code CLI (``claude -p``, lighter than through the
  SDK), the feature's acceptance command and the tests, ``git commit``.
- N>1: a worktree per feature, the CLI, the acceptance command and the tests
  there, ``git commit``; then, one at a time (the merge queue): rebase onto
  ``main``, the acceptance command and the tests again on that merged result,
  fast-forward ``main`` and the checkout.

Both start with one test run (the baseline). Nothing else runs: no store, no
events, no console, no interpreter start-up, no claims or budgets. The speedup
printed here is what a perfect harness would get doing the required work; when
it misses 0.8 x N, no harness can meet that target on this machine at this
``--delay``.

    .venv/bin/python bench/parallel_floor.py [--delay S] [--features M] [--lanes 1,2,4]
                                             [--repeat K]

Exit 0 whatever the times; 1 when a step failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from nightcrew.agents.claude.backend import find_claude_cli
from nightcrew.sim import Scenario, SimServer, agent_env

sys.path.insert(0, str(Path(__file__).parent))
from parallel import (  # the module beside this script: the same project and scenario
    GIT_ENV,
    MODEL,
    SPEEDUP_TARGET,
    RunFailed,
    _children_cpu,
    acceptance,
    checked,
    make_project,
    module_name,
    parse_lanes,
    scenario,
    token,
)

TESTS = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


async def step(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
    """One process, in its own session, to the end; RunFailed unless it exits 0."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        tail = out.decode(errors="replace").strip()[-800:]
        raise RunFailed(f"`{' '.join(argv)[:120]}` exited {process.returncode}: {tail}")


def prompt(i: int) -> str:
    name = module_name(i)
    return f"Add {name}.py with VALUE = {i}, and its test. Marker: {token(i)}"


def agent_argv(cli: Path, i: int) -> list[str]:
    return [
        str(cli), "-p", prompt(i), "--output-format", "stream-json", "--verbose",
        "--model", MODEL, "--permission-mode", "acceptEdits",
        "--allowedTools", "Bash,Read,Write,Edit",
    ]  # fmt: skip


async def feature_checks(i: int, cwd: Path, env: Mapping[str, str]) -> None:
    await step(["sh", "-c", acceptance(i)], cwd, env)
    await step(TESTS, cwd, env)


async def build(root: Path, lanes: int, features: int, env: Mapping[str, str]) -> None:
    cli = find_claude_cli()
    await step(TESTS, root, env)  # the baseline
    commit = ["git", "-c", "core.hooksPath=/dev/null", "commit", "-q", "-m"]
    if lanes == 1:
        for i in range(1, features + 1):
            await step(agent_argv(cli, i), root, env)
            await feature_checks(i, root, env)
            await step(["git", "add", "-A"], root, env)
            await step([*commit, f"feature {i}"], root, env)
        return
    pool = asyncio.Semaphore(lanes)
    git_lock = asyncio.Lock()  # worktree creation and branch moves, one at a time
    queue = asyncio.Lock()  # the merge queue

    async def lane(i: int) -> None:
        branch, tree = f"f/{i}", root / ".wt" / str(i)
        async with pool:
            async with git_lock:
                await step(["git", "worktree", "add", "-q", "-b", branch, str(tree)], root, env)
            await step(agent_argv(cli, i), tree, env)
            await feature_checks(i, tree, env)
            await step(["git", "add", "-A"], tree, env)
            await step([*commit, f"feature {i}"], tree, env)
        async with queue:  # its lane is free for the next feature meanwhile
            await step(["git", "rebase", "-q", "main"], tree, env)
            await feature_checks(i, tree, env)  # the merged result
            async with git_lock:
                await step(["git", "merge", "-q", "--ff-only", branch], root, env)
                await step(["git", "worktree", "remove", "--force", str(tree)], root, env)

    await asyncio.gather(*(lane(i) for i in range(1, features + 1)))


def run_once(workdir: Path, lanes: int, features: int, delay: float) -> tuple[float, float]:
    root = workdir / "proj"
    base_env = {**os.environ, **GIT_ENV, "NIGHTCREW_HOME": str(workdir / "nightcrew-home")}
    make_project(root, features, base_env, pytest_plugins=False)
    (root / ".gitignore").write_text("__pycache__/\n.wt/\n.nightcrew/\n")
    checked(["git", "commit", "-q", "-am", "ignore the worktrees"], root, base_env)
    with SimServer(Scenario.from_dict(scenario(features, delay))) as sim:
        env = {**base_env, **agent_env(sim.url, workdir / "claude-config")}
        cpu_before, started = _children_cpu(), time.monotonic()
        asyncio.run(build(root, lanes, features, env))
        wall, cpu = time.monotonic() - started, _children_cpu() - cpu_before
        if sim.errors:
            raise RunFailed(f"nightcrew.sim reported errors: {sim.errors!r}")
    landed = [p.name for p in root.glob("mod_*.py")]
    if len(landed) != features:
        raise RunFailed(f"{len(landed)} of {features} modules on main")
    return wall, cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="rounds (default 1)")
    parser.add_argument("--features", type=int, default=8, help="features (default 8)")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds before each answer")
    parser.add_argument("--lanes", type=parse_lanes, default=[1, 2, 4], help="values of N")
    args = parser.parse_args(argv)
    print(
        f"the floor: {args.features} features, no harness, every model answer after"
        f" {args.delay:g} s; {os.cpu_count()} CPU(s)",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="nightcrew-floor-"))
    walls: dict[int, list[float]] = {n: [] for n in args.lanes}
    try:
        for k in range(1, args.repeat + 1):
            for n in args.lanes:
                wall, cpu = run_once(workdir / f"round{k}-n{n}", n, args.features, args.delay)
                walls[n].append(wall)
                print(f"round {k}, N={n}: {wall:.1f} s, {cpu:.1f} CPU-s", flush=True)
    except RunFailed as exc:
        print(f"parallel_floor: a step failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    one = statistics.median(walls[1])
    print("\n  N   wall s  speedup   0.8 x N")
    for n in args.lanes:
        wall = statistics.median(walls[n])
        target = SPEEDUP_TARGET * n
        verdict = "" if n == 1 else ("reachable" if one / wall >= target else "out of reach")
        print(f"  {n}   {wall:6.1f}   {one / wall:5.2f}×   {target:4.1f}×  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
