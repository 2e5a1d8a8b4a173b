"""``python -m nightcrew.sim --scenario FILE [--port N]``: serve a scenario until Ctrl-C.

Prints exactly one line, ``nightcrew.sim listening on http://127.0.0.1:PORT``, so a script
can start it with ``--port 0`` and read the address from stdout.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from nightcrew.sim.scenario import load_scenario
from nightcrew.sim.server import SimServer


def main(argv: list[str] | None = None) -> int:
    """Run the server; return the exit status (2 for a bad scenario or usage)."""
    parser = argparse.ArgumentParser(
        prog="python -m nightcrew.sim", description="Serve a scripted Anthropic-compatible model."
    )
    parser.add_argument("--scenario", required=True, metavar="FILE", help="scenario JSON file")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
    except (OSError, ValueError) as exc:
        print(f"nightcrew.sim: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    server = SimServer(scenario, port=args.port)
    try:
        server.start()
    except OSError as exc:
        print(f"nightcrew.sim: error: cannot listen on port {args.port}: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    # SIGTERM as well as Ctrl-C, so a supervising process can stop it cleanly too.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"nightcrew.sim listening on {server.url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
