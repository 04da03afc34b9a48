"""kustomize and helm run off the event loop, bounded in time and output, and are killed when abandoned."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from moor.render import RenderError
from moor.render.tool import run_tool


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


async def run(argv: list[str], tmp_path: Path, *, time_limit: float = 10, max_output: int = 1 << 20) -> bytes:
    return await run_tool(
        argv, what="the tool", cwd=tmp_path, env={}, time_limit=time_limit, max_output=max_output, root=tmp_path
    )


async def test_the_output_of_a_successful_run_is_returned(tmp_path: Path) -> None:
    assert await run(python("print('hello')"), tmp_path) == b"hello\n"


async def test_a_failure_carries_the_tools_error_output(tmp_path: Path) -> None:
    code = f"import sys; sys.stderr.write('Error: cannot read {tmp_path}/app/x.yaml\\n'); sys.exit(3)"
    with pytest.raises(RenderError, match=r"^the tool failed: cannot read app/x.yaml$"):
        await run(python(code), tmp_path)


async def test_a_silent_failure_gives_the_exit_status(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"^the tool failed: exit status 4$"):
        await run(python("raise SystemExit(4)"), tmp_path)


async def test_a_run_past_its_time_limit_is_killed(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError, match=r"^the tool did not finish within 0.3 seconds$"):
        await run(python("import time; time.sleep(30)"), tmp_path, time_limit=0.3)
    assert time.monotonic() - started < 5


async def test_output_beyond_the_limit_is_refused(tmp_path: Path) -> None:
    code = "import sys\nwhile True: sys.stdout.write('x' * 65536)"
    with pytest.raises(RenderError, match=r"^the tool printed more than the limit of 100000 bytes$"):
        await run(python(code), tmp_path, max_output=100_000)


async def test_a_cancelled_render_kills_the_tool(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(30)"
    task = asyncio.ensure_future(run(python(code), tmp_path))
    pid = await asyncio.to_thread(wait_for_pid, pid_file)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)


def wait_for_pid(pid_file: Path) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text():
            return int(pid_file.read_text())
        time.sleep(0.02)
    raise AssertionError("the tool never started")


async def test_a_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"^the tool could not start /nonexistent/kustomize: No such file"):
        await run(["/nonexistent/kustomize"], tmp_path)
