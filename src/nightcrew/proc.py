"""The one place nightcrew starts and stops child processes.

Every child runs in its own session (so its own process group), with stdin
closed, and is killed as a group and reaped on timeout or error. Commands are
argv lists; the only shell strings are the user's own gate commands, passed
explicitly through :func:`shell_argv`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# psutil is imported where it is used: it costs ~20 ms of start-up, and most
# commands (every report) import this module without ever looking at a process.

# How long a group gets between SIGTERM and SIGKILL.
TERM_GRACE_S = 2.0

# The process groups :func:`run` has running, from any thread: a stop
# (:func:`stop_running`) ends those that run in a lane's worker thread.
_running: set[int] = set()


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    exit_code: int | None  # None when killed at the timeout
    duration_s: float
    timed_out: bool
    output: str  # stdout and stderr interleaved, as a person would see them


def shell_argv(command: str) -> list[str]:
    """argv that runs a user-written shell command string."""
    return ["/bin/sh", "-c", command]


def shell_parse_argv(command: str) -> list[str]:
    """argv that has the shell read a user-written command without running it
    (``sh -n``): it fails, with the shell's own words, when it cannot be parsed."""
    return ["/bin/sh", "-n", "-c", command]


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
    output_file: Path | None = None,
) -> Completed:
    """Run ``argv`` to completion in its own process group.

    Output (stdout + stderr) is written to ``output_file`` when given, and
    returned. At the timeout the whole group is killed.
    """
    started = time.monotonic()
    out_path = output_file
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    sink = open(out_path, "w+b") if out_path is not None else None  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=sink if sink is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _running.add(proc.pid)
        timed_out = False
        captured = b""
        try:
            if sink is None:
                captured, _ = proc.communicate(timeout=timeout_s)
            else:
                proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(proc.pid)
            if sink is None:
                captured, _ = proc.communicate()
            else:
                proc.wait()
        except BaseException:
            kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            _running.discard(proc.pid)
            # Anything the command left behind in its group goes with it.
            kill_group(proc.pid, grace_s=0)
        if sink is not None:
            sink.seek(0)
            captured = sink.read()
    finally:
        if sink is not None:
            sink.close()
    return Completed(
        argv=tuple(argv),
        exit_code=None if timed_out else proc.returncode,
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
        output=captured.decode("utf-8", errors="replace"),
    )


def stop_running() -> None:
    """Kill every process group :func:`run` has running (a run is stopping and
    some lanes run gates in worker threads); their commands end killed."""
    for pgid in list(_running):
        kill_group(pgid, grace_s=0)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, *, grace_s: float = TERM_GRACE_S) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after
    ``grace_s``. Safe to call on a group that is already gone."""
    if grace_s > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _group_has_live_members(pgid):
            time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _group_has_live_members(pgid: int) -> bool:
    """True while the group has a member that is not a zombie."""
    import psutil  # noqa: PLC0415 - see the note at the top

    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return False


def process_create_time(pid: int) -> float | None:
    import psutil  # noqa: PLC0415 - see the note at the top

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def reap_orphan(pid: int, create_time: float | None) -> bool:
    """Kill the session that ``pid`` leads, if that process is still the one
    nightcrew started (same create time), along with every process left in its
    session or group. Returns True when something was killed."""
    current = process_create_time(pid)
    if current is not None and (create_time is None or abs(current - create_time) > 0.01):
        # The pid belongs to another process now. The kernel does not recycle
        # a pid while a session or group still carries it, so nothing of ours
        # can be left in that session either.
        return False
    killed = current is not None
    members = _session_members(pid)
    if not killed and not members:
        return False
    if killed:
        kill_group(pid, grace_s=0.5)
    for member in members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGKILL)
    return killed or bool(members)


def process_tree(pid: int) -> set[int]:
    """``pid``, its live descendants (even those that moved to a session of
    their own) and the live processes left in the session it leads."""
    import psutil  # noqa: PLC0415 - see the note at the top

    found = {pid, *_session_members(pid)}
    with contextlib.suppress(psutil.Error):
        found.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    return found


def _session_members(sid: int) -> list[int]:
    """Processes still in session ``sid`` (children of a dead agent that moved
    to a group of their own stay in its session)."""
    import psutil  # noqa: PLC0415 - see the note at the top

    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if (
                proc.pid != os.getpid()
                and os.getsid(proc.pid) == sid
                and proc.info["status"] != psutil.STATUS_ZOMBIE
            ):
                found.append(proc.pid)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return found
