"""The one process runner: a program and everything it starts end with the run, within time, output and memory."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from moor.processes import (
    MemoryLimitExceeded,
    OutputTooLarge,
    ProcessFailed,
    ProcessLimits,
    ProcessTimedOut,
    ProgramNotStarted,
    run_process,
)

MIB = 1024 * 1024


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def running(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a killed orphan may wait for its reaper a while)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """The live processes whose process group is `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


async def eventually_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[pid for pid in pids if running(pid)]}"
        await asyncio.sleep(0.05)


def words_of(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def read_pids(path: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 10
    while True:
        words = await asyncio.to_thread(words_of, path)
        if len(words) >= count:
            return [int(word) for word in words[:count]]
        assert time.monotonic() < deadline, "the program never wrote its pids"
        await asyncio.sleep(0.02)


async def test_a_program_runs_to_its_end_and_its_output_is_returned() -> None:
    completed = await run_process(python("print('hello')"), what="greeting", env={}, limits=ProcessLimits(10))
    assert (completed.returncode, completed.stdout, completed.checked()) == (0, b"hello\n", b"hello\n")


async def test_standard_input_is_fed_to_the_program() -> None:
    code = "import sys; sys.stdout.write(sys.stdin.read().upper())"
    completed = await run_process(python(code), what="shout", env={}, limits=ProcessLimits(10), stdin=b"quiet")
    assert completed.stdout == b"QUIET"


async def test_a_failure_carries_its_exit_status_and_error_output() -> None:
    code = "import sys; sys.stderr.write('it broke\\n'); sys.exit(3)"
    completed = await run_process(python(code), what="the tool", env={}, limits=ProcessLimits(10))
    with pytest.raises(ProcessFailed, match=r"^the tool failed: exit status 3$") as failure:
        completed.checked()
    assert (failure.value.returncode, failure.value.stderr) == (3, b"it broke\n")


async def test_a_timeout_kills_the_whole_process_group_grandchildren_included(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 100 & echo $$ $! > {pids}; sleep 100"
    task = asyncio.ensure_future(run_process(["sh", "-c", script], what="sleepers", env={}, limits=ProcessLimits(1)))
    shell, background = await read_pids(pids, 2)
    assert running(background)
    with pytest.raises(ProcessTimedOut, match=r"^sleepers did not finish within 1 seconds$"):
        await task
    await eventually_gone([shell, background])
    assert group_members(shell) == []


async def test_nothing_a_program_started_outlives_it(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 100 </dev/null >/dev/null 2>&1 & echo $$ $! > {pids}"
    completed = await run_process(["sh", "-c", script], what="detacher", env={}, limits=ProcessLimits(10))
    assert completed.returncode == 0
    shell, background = await read_pids(pids, 2)
    await eventually_gone([background])
    assert group_members(shell) == []


async def test_a_daemon_that_escaped_the_group_does_not_hold_the_run(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"setsid sleep 100 >/dev/null </dev/null & echo $! > {pids}; echo started"
    started = time.monotonic()
    completed = await run_process(["sh", "-c", script], what="daemoniser", env={}, limits=ProcessLimits(60))
    (daemon,) = await read_pids(pids, 1)
    os.kill(daemon, signal.SIGKILL)
    assert completed.stdout == b"started\n"
    assert time.monotonic() - started < 30, "its error output was given up on after a grace period"


async def test_a_cancelled_caller_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 100 & echo $$ $! > {pids}; sleep 100"
    task = asyncio.ensure_future(run_process(["sh", "-c", script], what="sleepers", env={}, limits=ProcessLimits(60)))
    shell, background = await read_pids(pids, 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually_gone([shell, background])


async def test_output_beyond_the_cap_stops_the_program() -> None:
    code = "import sys\nwhile True: sys.stdout.write('x' * 65536)"
    limits = ProcessLimits(30, max_output=100_000)
    with pytest.raises(OutputTooLarge, match=r"^the printer printed more than the limit of 100000 bytes$"):
        await run_process(python(code), what="the printer", env={}, limits=limits)


async def test_megabytes_of_error_output_never_block_the_program_and_its_ends_are_kept() -> None:
    code = (
        "import sys\nsys.stderr.write('first line\\n')\n"
        "for _ in range(128): sys.stderr.write('e' * 65536)\n"
        "sys.stderr.write('\\nlast line\\n'); print('done')"
    )
    completed = await run_process(python(code), what="chatty", env={}, limits=ProcessLimits(30))
    assert completed.stdout == b"done\n"
    assert completed.stderr.startswith(b"first line\n")
    assert completed.stderr.endswith(b"\nlast line\n")
    assert len(completed.stderr) < 100 * 1024


async def test_a_program_over_the_memory_limit_fails_with_a_clear_error() -> None:
    limits = ProcessLimits(60, max_memory=256 * MIB)
    code = "block = bytearray(2 * 1024 ** 3); print(len(block))"
    with pytest.raises(MemoryLimitExceeded, match=r"^the allocator exceeded the memory limit of 256 MiB$"):
        await run_process(python(code), what="the allocator", env={}, limits=limits)


async def test_the_memory_limit_holds_without_prlimit_too() -> None:
    limits = ProcessLimits(60, max_memory=256 * MIB)
    code = "block = bytearray(2 * 1024 ** 3); print(len(block))"
    with pytest.raises(MemoryLimitExceeded, match=r"^the allocator exceeded the memory limit of 256 MiB$"):
        await run_process(python(code), what="the allocator", env={"PATH": "/nonexistent"}, limits=limits)


async def test_a_program_within_the_memory_limit_is_unaffected() -> None:
    limits = ProcessLimits(60, max_memory=256 * MIB)
    code = "block = bytearray(64 * 1024 ** 2); print(len(block))"
    completed = await run_process(python(code), what="the allocator", env={}, limits=limits)
    assert completed.checked() == b"67108864\n"


async def test_go_programs_are_told_the_memory_limit() -> None:
    limits = ProcessLimits(60, max_memory=100 * MIB)
    code = "import os; print(os.environ['GOMEMLIMIT'])"
    completed = await run_process(python(code), what="env", env={}, limits=limits)
    assert int(completed.stdout) == 90 * MIB


async def test_a_program_over_its_cpu_time_is_stopped() -> None:
    limits = ProcessLimits(60, max_cpu_seconds=1)
    started = time.monotonic()
    with pytest.raises(ProcessTimedOut, match=r"^the spinner used more than its 1 seconds of CPU time$"):
        await run_process(python("while True: pass"), what="the spinner", env={}, limits=limits)
    assert time.monotonic() - started < 30


async def test_a_program_that_ignores_sigxcpu_is_killed_at_the_hard_cpu_limit() -> None:
    code = "import signal; signal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True: pass"  # as Go does
    limits = ProcessLimits(60, max_cpu_seconds=1)
    with pytest.raises(ProcessTimedOut, match=r"^the spinner used more than its 1 seconds of CPU time$"):
        await run_process(python(code), what="the spinner", env={}, limits=limits)


async def test_a_program_killed_by_a_signal_says_so() -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    completed = await run_process(python(code), what="the victim", env={}, limits=ProcessLimits(10))
    with pytest.raises(ProcessFailed, match=r"^the victim failed: killed by SIGKILL$"):
        completed.checked()


async def test_a_consumer_that_refuses_the_output_stops_the_program(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"echo $$ > {pids}; while true; do echo line; done"

    def refuse(chunk: bytes) -> None:
        raise ValueError("enough")

    with pytest.raises(ValueError, match="enough"):
        await run_process(["sh", "-c", script], what="lines", env={}, limits=ProcessLimits(30), on_output=refuse)
    (shell,) = await read_pids(pids, 1)
    await eventually_gone([shell])


async def test_a_missing_program_is_a_clear_error() -> None:
    with pytest.raises(ProgramNotStarted, match=r"^kustomize build could not start /nonexistent/kustomize: No such"):
        await run_process(["/nonexistent/kustomize"], what="kustomize build", env={}, limits=ProcessLimits(10))
