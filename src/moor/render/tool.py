"""Runs kustomize, helm and sops: in a scratch environment, within the render budget, errors as RenderErrors.

The render budget is process-wide (`moor run --max-render-memory`, `--max-concurrent-renders`): each
renderer process may use at most `max_memory` bytes, and at most `max_concurrent` of them run at once,
so that several big renders cannot exhaust the machine together.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from moor.processes import (
    Completed,
    MemoryLimitExceeded,
    ProcessError,
    ProcessFailed,
    ProcessLimits,
    describe_exit,
    run_process,
)
from moor.render.errors import RenderError

GIB = 1024 * 1024 * 1024
DEFAULT_MAX_RENDER_MEMORY = GIB
DEFAULT_MAX_CONCURRENT_RENDERS = 2
_STDERR_SHOWN = 1000


@dataclass(frozen=True)
class RenderBudget:
    """What renderer processes may take from the machine, together."""

    max_memory: int = DEFAULT_MAX_RENDER_MEMORY
    """Bytes of memory each renderer process may use."""
    max_concurrent: int = DEFAULT_MAX_CONCURRENT_RENDERS
    """Renderer processes running at the same time."""


_budget = RenderBudget()
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def configure_render_budget(budget: RenderBudget) -> None:
    """Sets the budget every later render runs within (once, at start: `moor run`)."""
    global _budget
    if budget.max_memory < 1 or budget.max_concurrent < 1:
        raise ValueError("a render budget needs at least 1 byte of memory and 1 process at a time")
    _budget = budget
    _slots.clear()


def render_budget() -> RenderBudget:
    return _budget


@asynccontextmanager
async def render_slot() -> AsyncIterator[None]:
    """One of the `max_concurrent` places for a renderer process (one semaphore per event loop)."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(_budget.max_concurrent)
    async with slots:
        yield


@asynccontextmanager
async def scratch_directory(prefix: str) -> AsyncIterator[Path]:
    """A private temporary directory, created and removed off the event loop."""
    path = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


def tool_environment(scratch: Path, **extra: str) -> dict[str, str]:
    """A minimal environment: no kubeconfig, credentials or user configuration leak into a render."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "XDG_CACHE_HOME": str(scratch / "cache"),
        "XDG_CONFIG_HOME": str(scratch / "config"),
        "XDG_DATA_HOME": str(scratch / "data"),
    }
    env.update(extra)
    return env


async def run_renderer(
    argv: Sequence[str],
    *,
    what: str,
    cwd: Path,
    env: dict[str, str],
    time_limit: float,
    max_output: int | None,
    stdin: bytes | None = None,
) -> Completed:
    """A renderer process run to its end within the render budget; a limit it hits is a RenderError."""
    budget = _budget
    limits = ProcessLimits(
        timeout=time_limit, max_output=max_output, max_memory=budget.max_memory, max_cpu_seconds=time_limit
    )
    try:
        async with render_slot():
            return await run_process(argv, what=what, env=env, limits=limits, cwd=cwd, stdin=stdin)
    except MemoryLimitExceeded as error:
        raise RenderError(f"{error} (moor run --max-render-memory)") from None
    except ProcessError as error:
        raise RenderError(str(error)) from None


async def run_tool(
    argv: Sequence[str],
    *,
    what: str,
    cwd: Path,
    env: dict[str, str],
    time_limit: float,
    max_output: int,
    root: Path,
) -> bytes:
    """The standard output of a renderer that must succeed; `what` names the run in errors.

    The program is killed with everything it started when it runs longer than `time_limit` seconds,
    prints more than `max_output` bytes, or when the caller is cancelled. Paths under `root` in its
    error output are shown relative.
    """
    completed = await run_renderer(argv, what=what, cwd=cwd, env=env, time_limit=time_limit, max_output=max_output)
    try:
        return completed.checked()
    except ProcessFailed as failure:
        cause = _explain(failure.stderr, root) or describe_exit(failure.returncode)
        raise RenderError(f"{what} failed: {cause}") from None


def _explain(stderr: bytes, root: Path) -> str:
    """A program's error output as part of one sentence: one line, paths relative, not too long."""
    text = stderr.decode("utf-8", "replace").replace(f"{root}/", "").replace(str(root), ".")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    message = " ".join(line.removeprefix("Error: ").removeprefix("error: ") for line in lines)
    return message if len(message) <= _STDERR_SHOWN else message[: _STDERR_SHOWN - 1] + "…"
