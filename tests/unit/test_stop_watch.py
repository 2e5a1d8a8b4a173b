"""The stopping signals of a scheduled run, handled once for all its lanes: a
signal stops every agent in flight; with none it interrupts the run as before."""

from __future__ import annotations

import asyncio
import signal

import pytest

from nightcrew.engine import signals as stop_signals
from nightcrew.engine.signals import Interrupted, StopWatch


def test_a_signal_stops_every_agent_in_flight_and_without_one_interrupts() -> None:
    before = {sig: signal.getsignal(sig) for sig in stop_signals.STOP_SIGNALS}
    stop_signals.reset()
    watch = StopWatch()
    stopped: list[str] = []

    async def main() -> None:
        watch.install(asyncio.get_running_loop())
        try:
            both = asyncio.Event()

            def stop(name: str) -> None:
                stopped.append(name)
                if len(stopped) == 2:
                    both.set()

            first = watch.add(lambda: stop("lane 1"))
            second = watch.add(lambda: stop("lane 2"))
            signal.raise_signal(signal.SIGHUP)
            await both.wait()
            watch.remove(first)
            watch.remove(second)
            with pytest.raises(Interrupted):
                signal.raise_signal(signal.SIGTERM)
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
        finally:
            watch.restore()

    try:
        asyncio.run(main())
        assert sorted(stopped) == ["lane 1", "lane 2"]
        assert stop_signals.hung_up()  # the first signal is the one the run reports
        assert {sig: signal.getsignal(sig) for sig in before} == before
    finally:
        stop_signals.reset()
