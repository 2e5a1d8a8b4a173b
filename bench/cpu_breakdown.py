"""Where a build's CPU goes, by process, from a ``perf record`` of it.

``bench/parallel.py --perf`` records each build with ``perf record -F 499``
(software ``cpu-clock`` samples, so no special permission beyond
``perf_event_paranoid`` <= 2 for one's own processes) and prints this
breakdown. Standalone, on any recording that contains builds:

    perf record -F 499 -o build.data -- nightcrew build --parallel 4
    .venv/bin/python bench/cpu_breakdown.py build.data

Samples are attributed through the process tree perf recorded (fork, exec
and exit events): each direct child of the ``nightcrew`` build process is
classed by what it first ran, and everything it started counts with it.

- ``nightcrew``: the build process itself (all its threads) and its forks
  that did not exec;
- ``CLI``: the Claude Code CLI (``claude``); ``agent tools``: the commands its
  Bash tool ran (shells, ``cat``); ``launcher``: ``agent-launcher`` (the
  ``python -I`` start before it ``exec``s the CLI);
- ``pytest``: ``python -m pytest`` started by the tests gate;
- ``commands``: shell commands (acceptance commands, ``--gate`` commands,
  ``worktree_setup``) and what they started;
- ``git``: every ``git`` the build ran, and its helpers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CATEGORIES = (
    "nightcrew",
    "CLI",
    "agent tools",
    "launcher",
    "pytest",
    "commands",
    "git",
    "other",
)

_LINE = re.compile(r"^\s*(?P<comm>.+?)\s+(?P<pid>-?\d+)/(?P<tid>-?\d+)\s+[\d.]+:\s+(?P<rest>.*)$")
_FORK = re.compile(r"PERF_RECORD_FORK\((\d+):\d+\):\((\d+):\d+\)")
_COMM = re.compile(r"PERF_RECORD_COMM(?: exec)?: (.+):(\d+)/(\d+)$")


@dataclass
class _Process:
    pid: int
    parent: int | None
    comms: list[str] = field(default_factory=list)  # what it ran, in order (execs)
    samples: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # comm -> ns


@dataclass(frozen=True)
class Breakdown:
    """CPU seconds per category of one build (sampled)."""

    seconds: dict[str, float]
    processes: dict[str, int]  # direct children of the build, per category

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def _perf_script(data: Path) -> Iterable[str]:
    done = subprocess.run(
        ["perf", "script", "-i", str(data), "--show-task-events", "-F", "comm,pid,tid,time,period"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def _parse(lines: Iterable[str]) -> dict[int, _Process]:
    procs: dict[int, _Process] = {}

    def get(pid: int) -> _Process:
        if pid not in procs:
            procs[pid] = _Process(pid, None)
        return procs[pid]

    for line in lines:
        match = _LINE.match(line)
        if match is None:
            continue
        rest = match["rest"].strip()
        pid = int(match["pid"])
        if rest.startswith("PERF_RECORD_FORK"):
            fork = _FORK.search(rest)
            if fork is not None:
                child, parent = int(fork[1]), int(fork[2])
                if child != parent:  # a new process, not a thread
                    proc = get(child)
                    proc.parent = parent
                    proc.comms = list(get(parent).comms[-1:])
            continue
        if rest.startswith("PERF_RECORD_COMM"):
            comm = _COMM.search(rest)
            if comm is not None and "exec" in rest:
                get(int(comm[2])).comms.append(comm[1])
            continue
        if rest.startswith("PERF_RECORD"):
            continue
        try:
            period = int(rest.split()[0])
        except (ValueError, IndexError):
            continue
        proc = get(pid)
        if not proc.comms:
            proc.comms.append(match["comm"])
        proc.samples[match["comm"]] += period
    return procs


def _children(procs: dict[int, _Process]) -> dict[int, list[int]]:
    kids: dict[int, list[int]] = defaultdict(list)
    for proc in procs.values():
        if proc.parent is not None:
            kids[proc.parent].append(proc.pid)
    return kids


def _subtree(root: int, kids: dict[int, list[int]]) -> list[int]:
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(kids.get(pid, ()))
    return found


def builds(procs: dict[int, _Process]) -> list[int]:
    """The ``nightcrew`` processes that ran an agent (builds), in pid order."""
    kids = _children(procs)
    found = []
    for proc in procs.values():
        if proc.comms[-1:] != ["nightcrew"]:
            continue
        tree = _subtree(proc.pid, kids)
        if any("claude" in procs[p].comms for p in tree if p != proc.pid):
            parent = procs.get(proc.parent) if proc.parent is not None else None
            if parent is None or parent.comms[-1:] != ["nightcrew"]:
                found.append(proc.pid)
    return sorted(found)


def _class_of_child(proc: _Process) -> str:
    """What a direct child of the build is, by what it ran after the fork."""
    ran = proc.comms[1:] or proc.comms  # comms[0] is the build's own (inherited at fork)
    first = ran[0] if ran else ""
    if first == "nightcrew" and len(proc.comms) <= 1:
        return "nightcrew"  # a fork that did not exec
    if first == "git":
        return "git"
    if first == "agent-launcher" or "claude" in ran:
        return "agent"
    if first in ("sh", "dash", "bash"):
        return "commands"
    if first.startswith("python"):
        return "pytest"
    return "other"


def breakdown(procs: dict[int, _Process], build: int) -> Breakdown:
    kids = _children(procs)
    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    seconds["nightcrew"] += sum(procs[build].samples.values()) / 1e9
    for child in kids.get(build, ()):
        kind = _class_of_child(procs[child])
        counts[kind] += 1
        for pid in _subtree(child, kids):
            for comm, ns in procs[pid].samples.items():
                if kind == "agent":
                    if comm == "agent-launcher":
                        cat = "launcher"
                    elif pid == child:  # the launcher exec'd the CLI (its threads have names)
                        cat = "CLI"
                    else:
                        cat = "agent tools"
                else:
                    cat = kind
                seconds[cat] += ns / 1e9
    return Breakdown(dict(seconds), dict(counts))


def analyse(data: Path) -> list[Breakdown]:
    procs = _parse(_perf_script(data))
    return [breakdown(procs, pid) for pid in builds(procs)]


def format_breakdown(b: Breakdown, features: int | None = None) -> list[str]:
    """Lines of a table: category, CPU-s, share, per feature."""
    total = b.total or 1.0
    lines = []
    for cat in CATEGORIES:
        value = b.seconds.get(cat, 0.0)
        if value == 0.0 and cat == "other":
            continue
        each = f" {value / features:6.2f}" if features else ""
        n = b.processes.get("agent" if cat in ("CLI", "launcher") else cat)
        runs = f"  ({n} processes)" if n and cat not in ("nightcrew", "agent tools") else ""
        lines.append(f"  {cat:<12} {value:6.2f} {100 * value / total:5.1f}%{each}{runs}")
    each = f" {b.total / features:6.2f}" if features else ""
    lines.append(f"  {'sampled':<12} {b.total:6.2f} 100.0%{each}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: cpu_breakdown.py PERF.DATA", file=sys.stderr)
        return 2
    found = analyse(Path(args[0]))
    if not found:
        print("no nightcrew build with an agent in the recording", file=sys.stderr)
        return 1
    for k, b in enumerate(found, 1):
        print(f"build {k}: CPU-s by process (share)")
        print("\n".join(format_breakdown(b)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
