"""The one way Moor runs a program (git, helm, kustomize, sops, gpg): bounded, and never outlived.

Every program runs in a new session (its own process group), with no terminal and the environment the
caller gives. It is bounded by:
- wall-clock time: past `ProcessLimits.timeout` seconds the whole process group is killed;
- output: past `max_output` bytes of standard output the whole group is killed;
- memory: `max_memory` bytes of heap and anonymous mappings per process (RLIMIT_DATA, which Go
  programs tolerate, unlike RLIMIT_AS: the Go runtime reserves far more address space than it uses),
  and `GOMEMLIMIT` a little below it so that the Go garbage collector works harder before the limit is
  hit. A program that fails for lack of memory under a limit is a MemoryLimitExceeded;
- CPU time: `max_cpu_seconds` per process (RLIMIT_CPU), beyond which the kernel kills it.
The memory and CPU limits are set by util-linux's `prlimit`, which then execs the program (where it is
missing, between fork and exec: correct, but slower in proportion to the controller's memory).
The whole group is also killed when the caller is cancelled, and after the program ends (so nothing
it started in the background outlives the run). Standard error is always drained, so the program can
never block on it; its beginning and end are kept for messages.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import resource
import shutil
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from moor.errors import MoorError

MIB = 1024 * 1024
_CHUNK = 256 * 1024
_STDERR_HEAD = 32 * 1024
_STDERR_TAIL = 32 * 1024
_DRAIN_GRACE = 5.0
_GO_SHARE = 0.9
"""GOMEMLIMIT as a share of the memory limit: the Go collector's target, below the hard limit."""
_OUT_OF_MEMORY = re.compile(
    rb"out of memory|MemoryError|cannot allocate memory|bad_alloc|memory exhausted", re.IGNORECASE
)
"""How programs say that an allocation failed: Go ("fatal error: runtime: out of memory"), Python, C, C++."""


class ProcessError(MoorError):
    """A program could not be run to its end within its limits; the message names the run (`what`)."""

    def __init__(self, message: str, *, what: str) -> None:
        super().__init__(message)
        self.what = what


class ProgramNotStarted(ProcessError):
    """The program could not be started (missing, not executable, no resources)."""


class ProcessTimedOut(ProcessError):
    """The program ran longer than its time limit (wall-clock or CPU) and was killed with its group."""


class OutputTooLarge(ProcessError):
    """The program printed more than the output limit and was killed with its group."""


class MemoryLimitExceeded(ProcessError):
    """The program needed more memory than the limit allows."""


class ProcessFailed(ProcessError):
    """The program ended with a non-zero exit status."""

    def __init__(self, message: str, *, what: str, returncode: int, stderr: bytes) -> None:
        super().__init__(message, what=what)
        self.returncode = returncode
        self.stderr = stderr
        """The beginning and the end of what the program wrote to standard error."""


@dataclass(frozen=True)
class ProcessLimits:
    timeout: float
    """Seconds of wall-clock time."""
    max_output: int | None = None
    """Bytes of standard output."""
    max_memory: int | None = None
    """Bytes of heap and anonymous memory per process."""
    max_cpu_seconds: float | None = None
    """Seconds of CPU time per process (all its threads together)."""


@dataclass(frozen=True)
class Completed:
    """A program that ran to its end within its limits, successfully or not."""

    what: str
    returncode: int
    stdout: bytes
    stderr: bytes
    """The beginning and the end of its standard error."""

    def checked(self) -> bytes:
        """The standard output of a run that had to succeed; ProcessFailed otherwise."""
        if self.returncode != 0:
            raise ProcessFailed(
                f"{self.what} failed: {describe_exit(self.returncode)}",
                what=self.what,
                returncode=self.returncode,
                stderr=self.stderr,
            )
        return self.stdout


OutputConsumer = Callable[[bytes], None]
"""Takes standard output chunk by chunk instead of collecting it; raising stops (and kills) the program."""


async def run_process(
    argv: Sequence[str | Path],
    *,
    what: str,
    env: Mapping[str, str],
    limits: ProcessLimits,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    on_output: OutputConsumer | None = None,
) -> Completed:
    """Runs a program to its end within `limits` (see the module docstring); `what` names it in errors."""
    child_env = dict(env)
    if limits.max_memory is not None:
        child_env.setdefault("GOMEMLIMIT", str(int(limits.max_memory * _GO_SHARE)))
    command = [str(arg) for arg in argv]
    child_limits = _ChildLimits(limits.max_memory, limits.max_cpu_seconds)
    preexec_fn: _ChildLimits | None = None
    if child_limits.needed:
        prlimit = _prlimit_program(child_env.get("PATH", os.defpath))
        if prlimit is not None:
            command = [
                prlimit,
                *child_limits.prlimit_options(),
                "--",
                _resolve(command[0], child_env, what),
                *command[1:],
            ]
        else:
            preexec_fn = child_limits
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=cwd,
            env=child_env,
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
    except OSError as error:
        raise ProgramNotStarted(f"{what} could not start {argv[0]}: {error.strerror or error}", what=what) from None
    assert process.stdout is not None and process.stderr is not None
    stderr_reader = asyncio.ensure_future(_read_ends(process.stderr))
    feeder = asyncio.ensure_future(_feed(process, stdin)) if stdin is not None else None
    try:
        async with asyncio.timeout(limits.timeout):
            stdout = await _read_stdout(process.stdout, limits.max_output, on_output, what)
            returncode = await _exited(process)
    except TimeoutError:
        raise ProcessTimedOut(f"{what} did not finish within {limits.timeout:g} seconds", what=what) from None
    finally:
        await _kill_group(process)
        if feeder is not None:
            feeder.cancel()
        stderr = await _drained(stderr_reader)
    _raise_for_limits(what, returncode, stderr, limits, time.monotonic() - started)
    return Completed(what, returncode, stdout, stderr)


def describe_exit(returncode: int) -> str:
    """How a program ended, in words: `exit status 3`, `killed by SIGKILL`."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


def _raise_for_limits(what: str, returncode: int, stderr: bytes, limits: ProcessLimits, elapsed: float) -> None:
    """A program that ended because it hit a memory or CPU limit is reported as that, not as a failure.

    Past its CPU time a program gets SIGXCPU, which Go ignores, and a second later SIGKILL; a SIGKILL
    counts as the CPU limit only when the program ran long enough to have used that much CPU time.
    """
    if returncode == 0:
        return
    if limits.max_memory is not None and _OUT_OF_MEMORY.search(stderr):
        raise MemoryLimitExceeded(f"{what} exceeded the memory limit of {_mebibytes(limits.max_memory)}", what=what)
    cpu = limits.max_cpu_seconds
    if cpu is None:
        return
    if returncode == -signal.SIGXCPU or (returncode == -signal.SIGKILL and elapsed >= cpu / (os.cpu_count() or 1)):
        raise ProcessTimedOut(f"{what} used more than its {cpu:g} seconds of CPU time", what=what)


@cache
def _prlimit_program(path: str) -> str | None:
    """util-linux's `prlimit` on the program's PATH, which sets the limits and execs the program: a
    millisecond, where setting them between fork and exec forces a full fork of the controller (20 ms
    at 200 MiB of memory)."""
    return shutil.which("prlimit", path=path)


def _resolve(program: str, env: Mapping[str, str], what: str) -> str:
    """The program's path, found as exec would find it (a program prlimit cannot find is not started)."""
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise ProgramNotStarted(f"{what} could not start {program}: No such file or directory", what=what)
    return found


class _ChildLimits:
    """The resource limits of a child: given to `prlimit`, or (without it) set between fork and exec."""

    def __init__(self, max_memory: int | None, max_cpu_seconds: float | None) -> None:
        self._memory = max_memory
        self._cpu = None if max_cpu_seconds is None else max(1, math.ceil(max_cpu_seconds))
        """The soft limit (SIGXCPU); the hard one (SIGKILL) is a second later."""
        self.needed = max_memory is not None or max_cpu_seconds is not None

    def prlimit_options(self) -> list[str]:
        """The same limits as `prlimit` options (each sets the soft and the hard limit)."""
        options = [] if self._memory is None else [f"--data={self._memory}"]
        return options + ([] if self._cpu is None else [f"--cpu={self._cpu}:{self._cpu + 1}"])

    def __call__(self) -> None:
        if self._memory is not None:
            resource.setrlimit(resource.RLIMIT_DATA, (self._memory, self._memory))
        if self._cpu is not None:
            resource.setrlimit(resource.RLIMIT_CPU, (self._cpu, self._cpu + 1))


async def _read_stdout(
    stream: asyncio.StreamReader, limit: int | None, consumer: OutputConsumer | None, what: str
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(_CHUNK):
        size += len(chunk)
        if limit is not None and size > limit:
            raise OutputTooLarge(f"{what} printed more than the limit of {limit} bytes", what=what)
        if consumer is not None:
            consumer(chunk)
        else:
            chunks.append(chunk)
    return b"".join(chunks)


async def _read_ends(stream: asyncio.StreamReader) -> bytes:
    """Reads a stream to its end (so the program never blocks on it), keeping its beginning and its end."""
    head = bytearray()
    tail = bytearray()
    skipped = False
    while chunk := await stream.read(_CHUNK):
        if len(head) < _STDERR_HEAD:
            taken = _STDERR_HEAD - len(head)
            head += chunk[:taken]
            chunk = chunk[taken:]
        tail += chunk
        if len(tail) > _STDERR_TAIL:
            del tail[: len(tail) - _STDERR_TAIL]
            skipped = True
    return bytes(head + (b"\n...\n" if skipped else b"") + tail)


async def _exited(process: asyncio.subprocess.Process) -> int:
    """The program's exit status once it has exited. Not `process.wait()`: unless the exit was seen first,
    that also waits until every holder of its pipes has closed them, which a daemon that escaped its
    process group may never do."""
    pause = 0.002
    while process.returncode is None:
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)
    return process.returncode


async def _drained(reader: asyncio.Future[bytes]) -> bytes:
    """The program's error output, complete once every holder of the pipe has exited: empty when, after a
    grace period, something that escaped its process group (a daemon of its own session) still holds it."""
    try:
        async with asyncio.timeout(_DRAIN_GRACE):
            return await asyncio.shield(reader)
    except TimeoutError:
        reader.cancel()
        return b""


async def _feed(process: asyncio.subprocess.Process, data: bytes) -> None:
    """Writes `data` to the program's standard input and closes it; a program that stops reading is fine."""
    assert process.stdin is not None
    with suppress(BrokenPipeError, ConnectionResetError):
        process.stdin.write(data)
        await process.stdin.drain()
        process.stdin.close()


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """Kills the program's whole process group (it may have ended, its children not), then reaps it."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    await asyncio.shield(_exited(process))


def _mebibytes(size: int) -> str:
    return f"{size / MIB:g} MiB"
