"""Starting the control plane's programs and stopping exactly those, identified by pid and command line.

Linux only: a recorded pid counts as ours only while /proc/PID/cmdline still equals the recorded argv,
so a pid the kernel has since reused for another program is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The children this process started (Popen and argv by pid), so stopping them also reaps them.
_children: dict[int, tuple[subprocess.Popen[bytes], tuple[str, ...]]] = {}


@dataclass(frozen=True)
class RunningProcess:
    """A program started for the cluster: enough to find it again from another process."""

    name: str
    pid: int
    argv: tuple[str, ...]
    log: Path


def spawn(name: str, argv: Sequence[str], log: Path, env: Mapping[str, str]) -> RunningProcess:
    """Starts `argv` in its own session (a Ctrl-C of the CLI doesn't reach it), output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
        )
    _children[child.pid] = (child, tuple(argv))
    return RunningProcess(name=name, pid=child.pid, argv=tuple(argv), log=log)


def _child(process: RunningProcess) -> subprocess.Popen[bytes] | None:
    """The Popen of `process` if this process started it."""
    child, argv = _children.get(process.pid, (None, ()))
    return child if argv == process.argv else None


def exit_code(process: RunningProcess) -> int | None:
    """The exit code if a child of this process has exited, else None (also for non-children)."""
    child = _child(process)
    return None if child is None else child.poll()


def _cmdline(pid: int) -> tuple[str, ...] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:  # a zombie or a kernel thread
        return None
    return tuple(os.fsdecode(part) for part in raw.rstrip(b"\0").split(b"\0"))


def is_running(process: RunningProcess) -> bool:
    """True while the pid is alive and still runs the program we started (not a reused pid)."""
    child = _child(process)
    if child is not None:
        # Our own child: its pid can't be reused before we reap it, and its cmdline may still read
        # empty for a moment after Popen returns (the exec is still setting up the new image).
        return child.poll() is None
    return _cmdline(process.pid) == process.argv


def _signal(process: RunningProcess, signum: signal.Signals) -> None:
    if is_running(process):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


def _wait_gone(processes: Iterable[RunningProcess], deadline: float) -> list[RunningProcess]:
    remaining = list(processes)
    while remaining:
        remaining = [process for process in remaining if is_running(process)]
        if not remaining or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return remaining


def stop(processes: Sequence[RunningProcess], *, grace: float = 10.0) -> list[RunningProcess]:
    """SIGTERM to each, SIGKILL to those still running after `grace` seconds; returns any survivors."""
    for process in processes:
        _signal(process, signal.SIGTERM)
    remaining = _wait_gone(processes, time.monotonic() + grace)
    for process in remaining:
        _signal(process, signal.SIGKILL)
    survivors = _wait_gone(remaining, time.monotonic() + 5.0)
    for process in processes:
        child = _child(process)
        if child is not None and process not in survivors:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1.0)
            del _children[process.pid]
    return survivors


def log_tail(log: Path, lines: int = 15) -> str:
    """The last lines of a component's log, for error messages."""
    try:
        text = log.read_bytes()[-16384:].decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    tail = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in tail) if tail else "    (the log is empty)"


def pids_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains `text` (e.g. a cluster's directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = _cmdline(int(entry.name))
        if argv and any(text in arg for arg in argv):
            found.append(int(entry.name))
    return found
