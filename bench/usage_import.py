"""Transcript import: `nightcrew usage import` against ccusage on a 1 GB tree.

Generates a synthetic Claude Code transcript tree (bench/transcript_tree.py:
at least 1 GiB, 1,000 .jsonl files, one file over 500 MiB), then times
``ccusage daily --json --offline`` (npm ccusage, a full scan every time),
``nightcrew usage import`` cold (fresh NIGHTCREW_HOME) and warm (nothing new),
and checks that both tools report exactly the token totals the generator
wrote. Targets: cold <= ccusage, warm >= 20x faster than ccusage, peak RSS of
the import <= 300 MB.

    .venv/bin/python bench/usage_import.py [--size-gb 1.0] [--files 1000] [--big-mb 520]
        [--seed 0] [--repeat 3] [--keep DIR] [--ccusage-only]

See bench/README.md for the method. Exit 0 when every total matches and every
target is met; exit 1 otherwise (or when a run fails).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

# bench/ is on sys.path when this file runs as a script
from transcript_tree import FORMAT_VERSION, GIB, MIB, TreeStats, describe, generate

CCUSAGE_VERSION = "20.0.24"
TARGET_COLD_RATIO = 1.0  # nightcrew cold / ccusage, at most
TARGET_WARM_SPEEDUP = 20.0  # ccusage / nightcrew warm, at least
TARGET_RSS_MB = 300.0  # peak RSS of the import, at most
NIGHTCREW = Path(sys.executable).parent / "nightcrew"
SAMPLE_SECONDS = 0.05  # a sample costs ~1 ms of CPU (psutil walks /proc)
NPM_QUIET = ("--no-audit", "--no-fund", "--loglevel=error")


class BenchFailed(Exception):
    pass


# ---- running and measuring a child process -------------------------------------


@dataclass
class Measured:
    argv: list[str]
    seconds: float  # wall clock, spawn to reaped
    cpu_seconds: float  # user + system time of the child and its reaped descendants
    returncode: int
    stdout: str
    stderr: str
    maxrss_mb: float  # wait4's ru_maxrss: the largest RSS of the child or of any reaped descendant
    tree_rss_mb: float  # sampled: the largest sum of RSS over the child and its descendants

    @property
    def peak_rss_mb(self) -> float:
        return max(self.maxrss_mb, self.tree_rss_mb)

    def check(self, what: str) -> Measured:
        if self.returncode != 0:
            tail = (self.stderr or self.stdout).strip()[-2000:]
            raise BenchFailed(f"{what} exited with {self.returncode}: {tail}")
        return self


class _TreeRss(threading.Thread):
    """Polls the summed RSS of a process and its descendants (worker pools
    would not show in wait4's ru_maxrss, which is a max, not a sum)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self._stop_event = threading.Event()
        try:
            self._proc: psutil.Process | None = psutil.Process(pid)
        except psutil.Error:
            self._proc = None

    def run(self) -> None:
        proc = self._proc
        while proc is not None and not self._stop_event.is_set():
            try:
                procs = [proc, *proc.children(recursive=True)]
                rss = 0
                for p in procs:
                    with contextlib.suppress(psutil.Error):  # a child that just exited
                        rss += p.memory_info().rss
                self.peak = max(self.peak, rss)
            except psutil.Error:
                return
            self._stop_event.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def measure(argv: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> Measured:
    """Run ``argv`` to completion; wall time from spawn to reap, and peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, env=env, cwd=cwd)
        sampler = _TreeRss(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
        out.seek(0)
        err.seek(0)
        # ru_maxrss is in KiB on Linux, in bytes on macOS
        scale = 1 if sys.platform == "darwin" else 1024
        return Measured(
            argv=list(argv),
            seconds=seconds,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            returncode=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            maxrss_mb=usage.ru_maxrss * scale / 1e6,
            tree_rss_mb=sampler.peak / 1e6,
        )


def warm_page_cache(root: Path) -> float:
    """Read every file once, so neither tool pays for the disk and the first
    tool timed does not warm the cache for the second."""
    started = time.perf_counter()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb", buffering=0) as fh:
                while fh.read(8 * MIB):
                    pass
    return time.perf_counter() - started


# ---- the tree ---------------------------------------------------------------------


def tree_params(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "total_bytes": int(args.size_gb * GIB),
        "files": args.files,
        "big_file_bytes": int(args.big_mb * MIB),
        "seed": args.seed,
    }


def ensure_tree(base: Path, params: dict[str, Any]) -> tuple[Path, TreeStats, bool]:
    """The tree under ``base/tree``, generated unless a stamp says a tree
    with the same parameters is already there. Returns (root, stats, reused)."""
    root = base / "tree"
    stamp = base / "tree.json"
    if stamp.is_file() and (root / "projects").is_dir():
        saved = json.loads(stamp.read_text())
        if saved.get("params") == params:
            return root, TreeStats.from_json(saved["stats"]), True
    stamp.unlink(missing_ok=True)
    if root.exists():
        stray = [p.name for p in root.iterdir() if p.name != "projects"]
        if stray:
            raise BenchFailed(
                f"{root} holds more than a generated tree ({stray[:3]}); not deleting"
            )
        shutil.rmtree(root)
    need = params["total_bytes"] * 1.1 + 64 * MIB
    free = shutil.disk_usage(base).free
    if free < need:
        raise BenchFailed(
            f"{base}: {free / GIB:.1f} GiB free, the tree needs {need / GIB:.1f} GiB;"
            " use --keep DIR on a larger disk"
        )
    root.mkdir(parents=True)
    stats = generate(
        root,
        total_bytes=params["total_bytes"],
        files=params["files"],
        big_file_bytes=params["big_file_bytes"],
        seed=params["seed"],
    )
    stamp.write_text(json.dumps({"params": params, "stats": stats.to_json()}, indent=1))
    return root, stats, False


# ---- ccusage -------------------------------------------------------------------------


def _native_package() -> str | None:
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    system = {"linux": "linux", "darwin": "darwin"}.get(sys.platform)
    if arch is None or system is None:
        return None
    return f"@ccusage/ccusage-{system}-{arch}"


def install_ccusage(dest: Path) -> tuple[Path, bool]:
    """npm-install ccusage into ``dest`` (once) and return the executable to time.

    ccusage 20 ships a Node launcher (node_modules/.bin/ccusage) that spawns a
    native binary from an optional dependency. The bench times the native
    binary directly when it is there: the launcher only adds Node's start-up,
    which would flatter nightcrew. Returns (executable, is_native).
    """
    launcher = dest / "node_modules" / ".bin" / "ccusage"
    manifest = dest / "node_modules" / "ccusage" / "package.json"
    installed = manifest.is_file() and json.loads(manifest.read_text()).get("version")
    if installed != CCUSAGE_VERSION:
        npm = shutil.which("npm")
        if npm is None:
            raise BenchFailed("npm is not on PATH; it is needed to install ccusage")
        dest.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--prefix", str(dest), *NPM_QUIET, f"ccusage@{CCUSAGE_VERSION}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not launcher.exists():
            raise BenchFailed(
                f"npm install ccusage@{CCUSAGE_VERSION} failed: {done.stderr[-2000:]}"
            )
    package = _native_package()
    if package is not None:
        native = dest / "node_modules" / package / "bin" / "ccusage"
        if native.is_file():
            mode = native.stat().st_mode
            if not mode & 0o111:  # the launcher does the same chmod on first use
                native.chmod(mode | 0o755)
            return native, True
    return launcher, False


def ccusage_totals(run: Measured) -> dict[str, int | float]:
    try:
        totals = json.loads(run.stdout)["totals"]
        return {
            "input": totals["inputTokens"],
            "output": totals["outputTokens"],
            "cache_read": totals["cacheReadTokens"],
            "cache_write": totals["cacheCreationTokens"],
            "total": totals["totalTokens"],
            "cost": totals.get("totalCost", float("nan")),
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchFailed(
            f"ccusage printed no JSON totals ({exc!r}): {run.stdout[:500]!r}"
        ) from exc


def nightcrew_totals(run: Measured) -> dict[str, int | float]:
    try:
        totals = json.loads(run.stdout)["totals"]
        return {
            "responses": totals["entries"],
            "input": totals["input_tokens"],
            "output": totals["output_tokens"],
            "cache_read": totals["cache_read_tokens"],
            "cache_write_5m": totals["cache_write_5m_tokens"],
            "cache_write_1h": totals["cache_write_1h_tokens"],
            "cache_write": totals["cache_write_tokens"],
            "total": totals["total_tokens"],
            "cost": float(totals.get("cost_usd") or float("nan")),
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchFailed(
            f"nightcrew usage printed no JSON totals ({exc!r}): {run.stdout[:500]!r}"
        ) from exc


def nightcrew_available(env: dict[str, str], cwd: Path) -> bool:
    for argv in (
        [str(NIGHTCREW), "usage", "--help"],
        [str(NIGHTCREW), "usage", "import", "--help"],
    ):
        done = subprocess.run(argv, capture_output=True, env=env, cwd=cwd, check=False)
        if done.returncode != 0:
            return False
    return True


# ---- output -----------------------------------------------------------------------------


def expected_totals(stats: TreeStats) -> dict[str, int | float]:
    t = stats.totals
    return {
        "responses": t.responses,
        "input": t.input,
        "output": t.output,
        "cache_read": t.cache_read,
        "cache_write_5m": t.cache_write_5m,
        "cache_write_1h": t.cache_write_1h,
        "cache_write": t.cache_creation,
        "total": t.total,
        "cost": stats.cost_usd,
    }


# What must equal the generator's numbers; "total" and cost are printed only.
CHECKED = (
    "responses",
    "input",
    "output",
    "cache_read",
    "cache_write_5m",
    "cache_write_1h",
    "cache_write",
)
COLUMNS = (
    ("responses", "responses"),
    ("input", "input"),
    ("output", "output"),
    ("cache_read", "cache read"),
    ("cache_write_5m", "write 5m"),
    ("cache_write_1h", "write 1h"),
    ("cache_write", "cache write"),
    ("total", "total"),
)


def totals_table(expected: dict[str, int | float], rows: dict[str, dict[str, int | float]]) -> bool:
    """Print the totals, one field a line; True when every checked field matches."""
    print(f"{'totals':<14}{'expected':>16}" + "".join(f"{name:>16} " for name in rows))
    ok = True
    for key, label in COLUMNS:
        cells = []
        for got in rows.values():
            if key not in got:
                cells.append(f"{'-':>16} ")
                continue
            mark = " " if got[key] == expected[key] or key not in CHECKED else "!"
            ok = ok and mark == " "
            cells.append(f"{got[key]:>16,}{mark}")
        print(f"{label:<14}{expected[key]:>16,}" + "".join(cells))
    costs = "".join(f"{got['cost']:>16,.2f} " for got in rows.values())
    print(f"{'cost USD':<14}{expected['cost']:>16,.2f}{costs}")
    verdict = "all equal" if ok else "MISMATCH (! marks a field that differs)"
    print(
        f"checked: responses and token fields, where a tool reports them: {verdict}."
        " Total and cost are printed only (expected cost: list prices, 1h writes at 2x input)."
    )
    return ok


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


# ---- main ---------------------------------------------------------------------------------


@dataclass
class Series:
    """Repeated runs of one command; ratios use the best run of each series."""

    label: str
    runs: list[Measured] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(r.seconds for r in self.runs)

    @property
    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(r.peak_rss_mb for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu_seconds for r in self.runs)

    def row(self, reference: float) -> str:
        return (
            f"{self.label:<44}{self.best:>8.3f}{self.median:>8.3f}"
            f"{f'{self.best / reference:.3f}x':>12}{self.cpu:>8.2f}{self.peak_rss_mb:>9.0f}"
        )


HEADER = f"{'wall seconds':<44}{'best':>8}{'median':>8}{'vs ccusage':>12}{'CPU s':>8}{'RSS MB':>9}"


def run(args: argparse.Namespace, base: Path, scratch: Path) -> int:
    root, stats, reused = ensure_tree(base, tree_params(args))
    print(("reused " if reused else "generated ") + describe(stats))
    cache_s = warm_page_cache(root)
    print(f"page cache warmed: read the tree in {cache_s:.1f} s", flush=True)

    ccusage, native = install_ccusage(base / f"ccusage-{CCUSAGE_VERSION}")
    # An empty HOME and cwd: neither tool may read the real ~/.claude, and
    # ccusage would pick up a .ccusage/ccusage.json config from its cwd.
    home = scratch / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(root),
        "TZ": "UTC",
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
    }
    version = (
        measure([str(ccusage), "--version"], env, home).check("ccusage --version").stdout.strip()
    )
    if CCUSAGE_VERSION not in version:
        raise BenchFailed(f"expected ccusage {CCUSAGE_VERSION}, got {version!r}")
    which = "native binary" if native else "node launcher"
    print(f"ccusage: {version} ({which}: {ccusage})")
    if not args.ccusage_only and not nightcrew_available(env, home):
        raise BenchFailed(
            f"{NIGHTCREW} has no `usage import` command; run with --ccusage-only"
            " to check the tree and ccusage alone"
        )

    # ccusage and the cold import take turns, so both see the same machine load.
    cc_argv = [str(ccusage), "daily", "--json", "--offline"]
    import_argv = [str(NIGHTCREW), "usage", "import", str(root / "projects")]
    cc = Series("ccusage daily --json --offline (full scan)")
    cold = Series("nightcrew usage import, cold")
    warm = Series("nightcrew usage import, warm (nothing new)")
    nc_env = env
    for i in range(args.repeat):
        cc.runs.append(measure(cc_argv, env, home).check("ccusage daily"))
        line = f"run {i + 1}/{args.repeat}: ccusage {cc.runs[-1].seconds:.3f} s"
        if not args.ccusage_only:
            if "NIGHTCREW_HOME" in nc_env:
                shutil.rmtree(nc_env["NIGHTCREW_HOME"])
            nc_env = {**env, "NIGHTCREW_HOME": str(scratch / f"nightcrew-home-{i}")}
            cold.runs.append(measure(import_argv, nc_env, home).check("nightcrew import (cold)"))
            line += f", nightcrew import cold {cold.runs[-1].seconds:.3f} s"
        print(line, flush=True)
    expected = expected_totals(stats)
    rows = {"ccusage": ccusage_totals(cc.runs[0])}
    if args.ccusage_only:
        print()
        ok = totals_table(expected, rows)
        print()
        print(HEADER)
        print(cc.row(cc.best))
        return 0 if ok else 1

    said = cold.runs[-1].stdout.strip().splitlines()
    print(f"nightcrew usage import printed: {said[-1] if said else '(nothing)'}")
    for _ in range(args.repeat):
        warm.runs.append(measure(import_argv, nc_env, home).check("nightcrew import (warm)"))
    report = Series("nightcrew usage --source transcripts --json")
    report.runs.append(
        measure([str(NIGHTCREW), "usage", "--source", "transcripts", "--json"], nc_env, home).check(
            "nightcrew usage --source transcripts --json"
        )
    )
    rows["nightcrew"] = nightcrew_totals(report.runs[0])
    db = Path(nc_env["NIGHTCREW_HOME"])
    db_bytes = sum(p.stat().st_size for p in db.glob("usage.db*") if p.is_file())

    print()
    totals_ok = totals_table(expected, rows)
    print()
    print(HEADER)
    for series in (cc, cold, warm, report):
        print(series.row(cc.best))
    print(
        f"{args.repeat} runs each (the report once), ratios of the best runs;"
        " CPU s = median user+sys; RSS MB = max(wait4 ru_maxrss, sampled process-tree sum);"
        f" usage.db {db_bytes / MIB:.1f} MiB"
    )
    print()
    cold_ratio = cold.best / cc.best
    warm_speedup = cc.best / warm.best
    rss = max(cold.peak_rss_mb, warm.peak_rss_mb)
    cold_ok = cold_ratio <= TARGET_COLD_RATIO
    warm_ok = warm_speedup >= TARGET_WARM_SPEEDUP
    rss_ok = rss <= TARGET_RSS_MB
    print(
        f"cold / ccusage = {cold_ratio:.2f} (target \u2264 {TARGET_COLD_RATIO:.1f}):"
        f" {verdict(cold_ok)}"
    )
    print(
        f"ccusage / warm = {warm_speedup:.1f}\u00d7"
        f" (target \u2265 {TARGET_WARM_SPEEDUP:.0f}\u00d7): {verdict(warm_ok)}"
    )
    print(
        f"peak RSS of the import = {rss:.0f} MB"
        f" (target \u2264 {TARGET_RSS_MB:.0f} MB): {verdict(rss_ok)}"
    )
    print(f"token totals equal the generator's: {verdict(totals_ok)}")
    return 0 if cold_ok and warm_ok and rss_ok and totals_ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0, help="tree size, GiB (default 1)")
    parser.add_argument("--files", type=int, default=1000, help=".jsonl files (default 1000)")
    parser.add_argument("--big-mb", type=float, default=520, help="largest file, MiB (default 520)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of ccusage, the cold and the warm import (default 3; ratios use the best)",
    )
    parser.add_argument(
        "--keep", type=Path, help="keep the tree and the ccusage install in DIR; reuse them"
    )
    parser.add_argument(
        "--ccusage-only", action="store_true", help="skip nightcrew (check ccusage and the tree)"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.files < 2:
        parser.error("--files must be at least 2")
    if args.big_mb * MIB >= args.size_gb * GIB:
        parser.error("--big-mb must be less than --size-gb")

    scratch = Path(tempfile.mkdtemp(prefix="nightcrew-bench-usage-"))
    base = args.keep.resolve() if args.keep else scratch
    base.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, base, scratch)
    except BenchFailed as exc:
        print(f"usage_import: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if args.keep:
            print(f"kept the tree and ccusage in {base}")


if __name__ == "__main__":
    sys.exit(main())
