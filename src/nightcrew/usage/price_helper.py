"""genai-prices lookups in a helper process, started before an import loads anything.

Loading genai-prices costs ~0.2 s of CPU, and a cold ``usage import`` needs it to
price its first rows. The importer's own first 0.1 s (loading its modules, finding
files) keeps one CPU busy and leaves the others idle: a helper forked at the very
start loads genai-prices on an idle CPU meanwhile, and answers the importer's
lookups from then on (:meth:`PriceHelper.lookup`, for ``Pricer(genai_lookup=...)``).

What the helper answers is what :func:`nightcrew.usage.pricing.lookup_genai` gives
in-process; prices are still computed in :mod:`nightcrew.usage.pricing` only. If the
helper fails in any way (it died, it raised), the lookup is made in-process, so the
answer and any error are the same as without a helper.

This module imports only ``os`` before forking (``pickle`` and ``signal`` take 8 ms and
6 ms), so forking costs a millisecond. ``nightcrew.launch`` loads
``nightcrew.usage.pricing`` first, which both processes need.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

if TYPE_CHECKING:
    from typing import BinaryIO

    from nightcrew.usage.pricing import GenaiPrice


class PriceHelper:
    """A forked process that loads genai-prices at once, then looks up models on request.
    Use it as a context manager, or call :meth:`close`, which ends it."""

    def __init__(self) -> None:
        requests_r, requests_w = os.pipe()
        answers_r, answers_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (requests_r, requests_w, answers_r, answers_w):
                os.close(fd)
            raise
        if pid == 0:  # the helper: never returns
            os.close(requests_w)
            os.close(answers_r)
            _serve(requests_r, answers_w)
        os.close(requests_r)
        os.close(answers_w)
        self._pid: int | None = pid
        self._requests: BinaryIO | None = os.fdopen(requests_w, "wb")
        self._answers: BinaryIO | None = os.fdopen(answers_r, "rb")

    @property
    def pid(self) -> int | None:
        """The helper's process id; None once closed."""
        return self._pid

    def lookup(self, model: str) -> GenaiPrice:
        """genai-prices' price for ``model`` (see ``pricing.lookup_genai``)."""
        import pickle  # noqa: PLC0415 - see the module docstring

        if self._requests is not None and self._answers is not None:
            try:
                pickle.dump(model, self._requests)
                self._requests.flush()
                ok, found = pickle.load(self._answers)
            except (OSError, EOFError, pickle.PickleError):
                self.close()  # it died: look up here from now on
            else:
                if ok:
                    return found  # type: ignore[no-any-return]
        from nightcrew.usage.pricing import lookup_genai  # noqa: PLC0415

        return lookup_genai(model)  # also when the helper raised: the same error, here

    def close(self) -> None:
        import contextlib  # noqa: PLC0415
        import signal  # noqa: PLC0415

        for stream in (self._requests, self._answers):
            if stream is not None:
                with contextlib.suppress(OSError):  # a broken pipe to a dead helper
                    stream.close()
        self._requests = self._answers = None
        if self._pid is not None:
            # Worker processes forked since hold copies of the pipe, so the helper may not
            # see it close yet: it holds nothing to clean up, so it is killed.
            with contextlib.suppress(ProcessLookupError, ChildProcessError):  # reaped
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
            self._pid = None

    def __enter__(self) -> PriceHelper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(requests_fd: int, answers_fd: int) -> None:
    """The helper's life: load genai-prices, answer lookups until the pipe closes, and
    leave without running anything the parent registered (``os._exit``)."""
    code = 0
    try:
        import signal  # noqa: PLC0415

        # Ctrl-C reaches the whole process group: the importer decides, and this process
        # ends when the importer closes the pipe.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        import pickle  # noqa: PLC0415

        from nightcrew.usage.pricing import load_genai_prices, lookup_genai  # noqa: PLC0415

        load_genai_prices()
        with os.fdopen(requests_fd, "rb") as requests, os.fdopen(answers_fd, "wb") as answers:
            while True:
                try:
                    model = pickle.load(requests)
                except EOFError:
                    break
                try:
                    answer: tuple[bool, object] = (True, lookup_genai(model))
                except Exception:  # noqa: BLE001 - the importer repeats it in-process
                    answer = (False, None)
                pickle.dump(answer, answers)
                answers.flush()
    except BaseException:  # noqa: BLE001 - a helper never raises: the importer falls back
        code = 1
    finally:
        os._exit(code)
