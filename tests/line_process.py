"""A ``nightcrew`` command in its own process whose output lines a test waits
on as they come (a reader thread puts each line on a queue): ``logs --follow``
and ``status --watch`` are tested this way, never by sleeping."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

TIMEOUT_S = 60  # generous: a follower polls the store four times a second


def sigint_state(pid: int) -> str:
    """How process ``pid`` takes SIGINT (Ctrl-C), from /proc: for the message of a
    test whose child did not end on Ctrl-C (a child started with SIGINT ignored
    keeps it ignored: Python then installs no KeyboardInterrupt handler)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return f"process {pid}: gone"
    masks = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    bit = 1 << (2 - 1)  # SIGINT is 2
    kinds = (("ignored", "SigIgn"), ("blocked", "SigBlk"), ("caught", "SigCgt"))
    said = [name for name, key in kinds if int(masks.get(key, "0"), 16) & bit]
    return f"process {pid}: SIGINT {', '.join(said) or 'default'}"


class LineProcess:
    """``python -m nightcrew ARGS`` in ``root``; ``what`` names it in a failure."""

    def __init__(self, root: Path, args: list[str], *, what: str, env: dict[str, str]) -> None:
        self.what = what
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nightcrew", *args],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, text=True, env={**os.environ, **env},
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,))
        self._reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str) -> str:
        """The first line containing ``text``, waiting for it to appear."""
        while True:
            try:
                line = self.lines.get(timeout=TIMEOUT_S)
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} from the {self.what}") from None
            if text in line:
                return line

    def end(self) -> tuple[int, str]:
        """Its exit code and what it said on stderr, once it has exited."""
        try:
            code = self.process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            state = f"{sigint_state(self.process.pid)}; this one: {sigint_state(os.getpid())}"
            raise AssertionError(f"the {self.what} did not exit ({state})") from None
        self._reader.join(timeout=TIMEOUT_S)
        assert self.process.stdout is not None and self.process.stderr is not None
        err = self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return code, err

    def kill(self) -> None:
        """Never leave it running, whatever the test found."""
        if self.process.poll() is None:
            self.process.kill()
        if not self.process.stderr or not self.process.stderr.closed:
            self.end()
