"""How fast is the dashboard on a big project?

Builds the project of ``bench/dashboard_data.py`` (1,000 features, 20,000
attempts, 200,000 usage rows, ~130,000 events) in a temp dir, registers it in
a temp ``NIGHTCREW_HOME`` registry as a build does, starts the real
``nightcrew serve`` process and measures, through a real HTTP client holding
the token's cookie:

- every GET page and JSON endpoint the app's routers have (discovered from
  ``nightcrew.server.app.ROUTERS``, so pages added later are measured without
  touching this file; a path parameter needs a sample value in
  :data:`SAMPLES` or :func:`samples_of`): p50/p95 over ``--requests`` requests each (default 200),
  target p95 < 100 ms;
- the time from an event committed to the store by another process to its
  arrival on an SSE client of the project page's stream, p50/p95 over
  ``--events`` events (default 50), target p95 < 1 s.

    .venv/bin/python bench/dashboard.py [--requests N] [--events N] [--keep DIR] [--only TEXT]

See bench/README.md for the method. Exit 0 whatever the times (a
measurement, not a test); exit 1 when a request failed or an event never
arrived.
"""

from __future__ import annotations

import argparse
import inspect
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from nightcrew.store.records import Store

PAGE_TARGET_MS = 100.0
EVENT_TARGET_MS = 1000.0
START_S = 120.0
EVENT_WAIT_S = 30.0
WARMUP = 5
# Pages other helpers add (issue #13: kanban = backlog); reported when no route has them yet.
EXPECTED = ("backlog", "feature", "timeline", "graph", "charts")
# A sample value for each path parameter a route may have; {key} is the
# project's, and the latest run's values (its id, an item, its feature, an
# attempt) are filled in by :func:`samples_of` from the store.
SAMPLES = {
    "relative": "bench/prompt.md",  # written under .nightcrew/runs/ by this bench
}
EXTRA = ("/static/app.css", "/static/app.js")  # not in a router, but every page loads them
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


@dataclass(frozen=True)
class Route:
    path: str  # as declared: /p/{key}/
    url: str | None  # with samples; None: a parameter without a sample
    stream: bool


@dataclass
class Line:
    name: str
    times_ms: list[float]
    target_ms: float
    failed: str | None = None

    def quantile(self, q: float) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def samples_of(store: Store) -> dict[str, str]:
    """Path parameters naming things of the latest run: the run, its last
    item (by key and by feature), that item's latest attempt."""
    latest = store.latest_run()
    assert latest is not None
    item_id, item_key, feature = store.db.execute(
        "SELECT id, key, feature_id FROM work_items WHERE run_id = ? ORDER BY id DESC LIMIT 1",
        (latest.id,),
    ).fetchone()
    (attempt,) = store.db.execute(
        "SELECT max(id) FROM attempts WHERE item_id = ?", (item_id,)
    ).fetchone()
    return {
        "run_id": latest.id,
        "item_key": item_key,
        "item": item_key,
        "feature_id": str(feature),
        "feature": str(feature),
        "attempt_id": str(attempt),
        "attempt": str(attempt),
        "number": "1",
    }


def discover(key: str, samples: dict[str, str]) -> list[Route]:
    """Every GET route of the app's routers, with its parameters filled in."""
    from fastapi.responses import StreamingResponse  # noqa: PLC0415
    from fastapi.routing import APIRoute  # noqa: PLC0415

    from nightcrew.server.app import ROUTERS  # noqa: PLC0415

    routes = []
    values = {**SAMPLES, **samples, "key": key}
    for router in ROUTERS:
        for route in router.routes:
            if not isinstance(route, APIRoute) or "GET" not in route.methods:
                continue
            names = _PARAM.findall(route.path)
            url = None
            if all(n in values for n in names):
                url = _PARAM.sub(lambda m: values[m.group(1)], route.path)
            returns = inspect.signature(route.endpoint).return_annotation
            stream = returns in (StreamingResponse, "StreamingResponse")
            routes.append(Route(route.path, url, stream))
    routes += [Route(p, p, False) for p in EXTRA]
    return routes


# ---- the server and the data ----------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str

    @property
    def base(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


def start_server(env: dict[str, str]) -> Server:
    process = subprocess.Popen(
        [sys.executable, "-m", "nightcrew", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    first = lines.get(timeout=START_S)
    if first is None or not first.startswith("nightcrew dashboard: "):
        stop_server(process)
        raise SystemExit(f"dashboard: nightcrew serve did not start: {first}")
    return Server(process, first.removeprefix("nightcrew dashboard: "))


def stop_server(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def build_project(root: Path, home: Path) -> dict[str, int]:
    """The big project, registered in ``home``'s registry, with one evidence file."""
    sys.path.insert(0, str(Path(__file__).parent))
    import dashboard_data  # noqa: PLC0415

    from nightcrew.project import Project  # noqa: PLC0415
    from nightcrew.usage.globaldb import open_global, register_project  # noqa: PLC0415

    counts = dashboard_data.build(root)
    db = open_global(home / "usage.db")
    try:
        register_project(db, root)
    finally:
        db.close()
    evidence = Project(root).dir / "runs" / "bench" / "prompt.md"
    evidence.parent.mkdir(parents=True, exist_ok=True)
    evidence.write_text("# The prompt\n\n" + "What to do, in words. " * 200 + "\n")
    return counts


# ---- measuring -----------------------------------------------------------------------------


def measure_route(client: httpx.Client, url: str, requests: int) -> Line:
    line = Line(url, [], PAGE_TARGET_MS)
    for n in range(WARMUP + requests):
        began = time.perf_counter()
        try:
            response = client.get(url)
            body = response.content
        except httpx.HTTPError as exc:
            line.failed = f"{type(exc).__name__}: {exc}"
            return line
        took = (time.perf_counter() - began) * 1000
        if response.status_code != 200 or not body:
            line.failed = f"HTTP {response.status_code}: {response.text[:120]!r}"
            return line
        if n >= WARMUP:
            line.times_ms.append(took)
    return line


def sse_messages(response: httpx.Response) -> Iterator[tuple[str, int | None]]:
    """(event name, id) of each SSE message, as it arrives."""
    event, event_id, has_data = "message", None, False
    for text in response.iter_lines():
        if text == "":
            if has_data:
                yield event, event_id
            event, event_id, has_data = "message", None, False
        elif text.startswith(":"):
            continue
        else:
            name, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "id":
                event_id = int(value)
            elif name == "data":
                has_data = True


def measure_events(client: httpx.Client, url: str, root: Path, run_id: str, count: int) -> Line:
    """Events written by another process, timed from their commit (the writer's
    clock, after COMMIT) to their arrival here (this process's clock)."""
    line = Line(f"event -> SSE client ({url})", [], EVENT_TARGET_MS)
    arrived: dict[int, float] = {}
    seen = threading.Condition()
    ready = threading.Event()
    stop = threading.Event()

    def listen() -> None:
        try:
            with client.stream("GET", url, timeout=httpx.Timeout(60, read=None)) as response:
                for event, event_id in sse_messages(response):
                    ready.set()
                    if event == "activity" and event_id is not None:
                        with seen:
                            arrived[event_id] = time.time()
                            seen.notify_all()
                    if stop.is_set():
                        return
        except httpx.HTTPError:
            if not stop.is_set():  # else: the server stopping ends it
                raise

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    if not ready.wait(EVENT_WAIT_S):
        line.failed = "the stream sent nothing"
        return line
    writer = subprocess.Popen(
        [sys.executable, __file__, "--writer", str(root), run_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    rng = random.Random(7)
    try:
        for n in range(count):
            # off the stream's polling beat, as a build's commits are
            time.sleep(rng.uniform(0.0, 0.5))
            writer.stdin.write(f"{n}\n")
            writer.stdin.flush()
            written, committed = writer.stdout.readline().split()
            event_id = int(written)
            with seen:
                if not seen.wait_for(lambda e=event_id: e in arrived, EVENT_WAIT_S):
                    line.failed = f"event {event_id} never arrived"
                    return line
                line.times_ms.append((arrived[event_id] - float(committed)) * 1000)
    finally:
        stop.set()
        writer.stdin.close()
        writer.wait(timeout=30)
    return line


def writer_main(root: Path, run_id: str) -> None:
    """The other process: one tool call event per line read, then its id and
    the wall time right after its commit."""
    from nightcrew.project import Project  # noqa: PLC0415
    from nightcrew.store.records import Store  # noqa: PLC0415

    store = Store.open(Project(root).store_path, create=False)
    attempt = store.db.execute(
        "SELECT max(id) FROM attempts WHERE run_id = ?", (run_id,)
    ).fetchone()[0]
    for text in sys.stdin:
        store.event(
            run_id,
            "tool_call",
            {"lane": 1, "name": "Bash", "input": {"command": f"pytest -q # {text.strip()}"}},
            attempt_id=attempt,
        )
        committed = time.time()
        (last,) = store.db.execute("SELECT max(id) FROM events").fetchone()
        print(last, repr(committed), flush=True)
    store.close()


# ---- the report ------------------------------------------------------------------------------


def report(lines: Sequence[Line], skipped: Sequence[str], missing: Sequence[str]) -> None:
    print()
    print(f"{'route':<44} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'target':>8}  verdict")
    for line in lines:
        if line.failed:
            print(f"{line.name:<44} {'':>4} {'':>8} {'':>8} {'':>8}  FAILED: {line.failed}")
            continue
        p50, p95 = line.quantile(0.5), line.quantile(0.95)
        verdict = "met" if p95 < line.target_ms else "missed"
        print(
            f"{line.name:<44} {len(line.times_ms):>4} {p50:>8.1f} {p95:>8.1f}"
            f" {'<' + format(line.target_ms, '.0f'):>8}  {verdict}"
        )
    for path in skipped:
        print(f"{path:<44} not measured: no sample value for a parameter (add it to SAMPLES)")
    for name in missing:
        print(f"{name:<44} not measured: no such page on this branch yet")
    load = os.getloadavg()[0]
    print(f"\nload average (1 min) at the end: {load:.2f} on {os.cpu_count()} cores")


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["--writer"]:
        writer_main(Path(args[1]), args[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="per route (default 200)")
    parser.add_argument("--events", type=int, default=50, help="timed events (default 50)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="build and keep it in DIR")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="measure only the routes whose path holds TEXT (repeatable), and no events",
    )
    opts = parser.parse_args(args)

    workdir = opts.keep or Path(tempfile.mkdtemp(prefix="nightcrew-dashboard-"))
    home, root = workdir / "home", workdir / "project"
    env = {**os.environ, "NIGHTCREW_HOME": str(home)}
    os.environ["NIGHTCREW_HOME"] = str(home)
    began = time.monotonic()
    try:
        if not (root / ".nightcrew").exists():
            counts = build_project(root, home)
            print("built in %.0f s: " % (time.monotonic() - began), end="")
            print(", ".join(f"{n:,} {t}" for t, n in counts.items()))
        from nightcrew.project import Project  # noqa: PLC0415
        from nightcrew.views.project_overview import project_key  # noqa: PLC0415

        store = Store.open(Project(root).store_path, create=False)  # migrations, once
        latest = store.latest_run()
        samples = samples_of(store)
        store.close()
        assert latest is not None
        key = project_key(root)
        routes = discover(key, samples)
        paths = " ".join(r.path for r in routes)
        missing = [name for name in EXPECTED if name not in paths]
        server = start_server(env)
        lines: list[Line] = []
        try:
            with httpx.Client(base_url=server.base, timeout=60) as client:
                first = client.get(server.url)  # the printed URL: its token becomes the cookie
                if first.status_code != 303:
                    raise SystemExit(f"dashboard: the printed URL gave {first.status_code}")
                for route in routes:
                    if route.url is None or route.stream:
                        continue
                    if opts.only and not any(text in route.path for text in opts.only):
                        continue
                    lines.append(measure_route(client, route.url, opts.requests))
                    print(f"  {route.url}: done", file=sys.stderr)
                stream = f"/p/{key}/events"
                if not opts.only:
                    lines.append(measure_events(client, stream, root, latest.id, opts.events))
        finally:
            stop_server(server.process)
        skipped = [r.path for r in routes if r.url is None]
        report(lines, skipped, missing)
        return 1 if any(line.failed for line in lines) else 0
    finally:
        if opts.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
