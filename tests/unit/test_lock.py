"""One run per project: a second process is refused, naming the holder; the lock goes
away with release() and with the holder's death, even by SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nightcrew.core.errors import LockHeld
from nightcrew.engine.lock import ProjectLock

# Takes the lock, says so, and holds it until stdin closes or it is killed.
# With a second argument it then starts a long-lived child of its own (as a run starts
# its agent) and prints the child's pid.
HOLDER = """
import subprocess, sys
from pathlib import Path
from nightcrew.engine.lock import ProjectLock
lock = ProjectLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
if len(sys.argv) > 2:
    agent = subprocess.Popen(
        ["sleep", "60"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    print(agent.pid, flush=True)
sys.stdin.read()
lock.release()
print("released", flush=True)
"""

# Tries once; prints "acquired" or the refusal and its exit code.
TRIER = """
import sys
from pathlib import Path
from nightcrew.engine.lock import ProjectLock
from nightcrew.core.errors import LockHeld
try:
    with ProjectLock(Path(sys.argv[1])):
        print("acquired")
except LockHeld as exc:
    print(f"refused {int(exc.exit_code)}: {exc}")
"""


def try_from_other_process(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", TRIER, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def start_holder(path: Path, *extra: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    return child


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    path = tmp_path / ".nightcrew" / "run.lock"
    child = start_holder(path)
    try:
        yield child, path
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=30)


def test_second_lock_in_another_process_is_refused_naming_the_holder(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    child, path = holder
    assert path.read_text() == str(child.pid)

    with pytest.raises(LockHeld) as raised:
        ProjectLock(path).acquire()
    assert f"(pid {child.pid})" in str(raised.value)
    assert raised.value.exit_code == 4

    answer = try_from_other_process(path)
    assert answer.startswith(f"refused 4: another nightcrew run (pid {child.pid}) is running")


def test_lock_is_free_after_the_holder_releases_it(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    child, path = holder
    out, _ = child.communicate("", timeout=30)  # closing stdin makes it release and exit
    assert out.strip() == "released"
    assert child.returncode == 0

    assert try_from_other_process(path) == "acquired"
    with ProjectLock(path) as lock:
        assert path.read_text() == str(os.getpid())
        assert lock.path == path


def test_lock_is_free_after_the_holder_is_killed_with_sigkill(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    child, path = holder
    assert try_from_other_process(path).startswith("refused 4")
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    assert try_from_other_process(path) == "acquired"
    lock = ProjectLock(path)
    lock.acquire()
    lock.release()


def test_lock_is_free_after_a_sigkill_even_while_the_holders_agent_lives_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.lock"
    child = start_holder(path, "with-agent")
    assert child.stdout is not None
    agent_pid = int(child.stdout.readline())
    try:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
        os.kill(agent_pid, 0)  # the orphaned agent is still running...
        assert try_from_other_process(path) == "acquired"  # ...but holds no lock
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(agent_pid, signal.SIGKILL)


def test_release_in_the_same_process_lets_another_process_in(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "run.lock"  # parent directories are created
    lock = ProjectLock(path)
    lock.acquire()
    assert try_from_other_process(path).startswith(
        f"refused 4: another nightcrew run (pid {os.getpid()})"
    )
    lock.release()
    lock.release()  # a second release is harmless
    assert try_from_other_process(path) == "acquired"


def test_refusal_when_the_holder_pid_is_not_recorded_yet(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    lock = ProjectLock(path)
    lock.acquire()
    try:
        # a holder that has not written its pid yet
        path.write_text("")
        answer = try_from_other_process(path)
        assert answer.startswith("refused 4: another nightcrew run (pid unknown)")
    finally:
        lock.release()
