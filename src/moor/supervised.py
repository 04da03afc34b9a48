"""Background tasks that cannot die unnoticed: each runs under a supervisor that restarts it with backoff.

A supervised task is meant to run until it is stopped. When it raises, the failure is logged (with its
traceback the first time that task fails that way, in one line afterwards), counted, and the task is
started again after a pause that doubles up to a cap; a task that ran long enough before failing starts
again after the shortest pause. A task that returns has finished its work and is not restarted. While
a task is waiting to be restarted, or has not yet run a while since its last failure, `problems()`
names it (what /healthz reports). `stop()` cancels every task and waits for each to end, so a shutdown
leaves nothing running and prints nothing.

`cancel_and_wait` is how every group of tasks in Moor is stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

log = logging.getLogger(__name__)

RECANCEL_EVERY = 1.0
"""Seconds `cancel_and_wait` gives a cancelled task to end before it cancels it again."""


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancels `tasks` and returns once every one has ended. A task still running a second after its cancel
    (one can be lost: Python 3.11's `asyncio.wait_for` drops a cancel that lands as its awaitable completes)
    is cancelled again. A cancel of the caller is never swallowed, and what the tasks raised is dropped."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=RECANCEL_EVERY)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: a task that failed as it was stopped is not reported later


TaskFactory = Callable[[], Awaitable[None]]
"""Starts one run of a task (a coroutine function taking no arguments)."""


@dataclass(frozen=True)
class RestartPolicy:
    """Pauses between restarts: `first`, doubling up to `cap`; a run of `healthy_after` seconds resets them."""

    first: float = 1.0
    cap: float = 60.0
    healthy_after: float = 60.0

    def pause(self, failures_in_a_row: int) -> float:
        """The pause before the restart after the n-th failure in a row (n >= 1)."""
        return min(self.first * 2.0 ** min(max(failures_in_a_row - 1, 0), 16), self.cap)


@dataclass
class _Failure:
    error: str
    at: float
    in_a_row: int


class Supervisor:
    """A group of named background tasks, each restarted when it fails, all stopped together."""

    def __init__(self, restarts: Counter | None = None, policy: RestartPolicy | None = None) -> None:
        self.policy = policy or RestartPolicy()
        self._restarts = restarts
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, _Failure] = {}
        self._logged: set[tuple[str, type[BaseException]]] = set()

    def start(self, name: str, run: TaskFactory) -> None:
        """Runs `run()` as the task `name`, restarting it whenever it fails, until `stop()`."""
        if name in self._tasks and not self._tasks[name].done():
            return
        self._tasks[name] = asyncio.create_task(self._supervise(name, run), name=name)

    def running(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    def problems(self) -> list[str]:
        """One line per task that failed and has not run `healthy_after` seconds since: what is wrong."""
        now = time.monotonic()
        lines = []
        for name, failure in sorted(self._failures.items()):
            ago = now - failure.at
            times = f"{failure.in_a_row} times in a row, " if failure.in_a_row > 1 else ""
            lines.append(f"{name}: failed ({times}{ago:.0f}s ago): {failure.error}")
        return lines

    async def stop(self) -> None:
        """Cancels every task and waits until each has ended."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        await cancel_and_wait(tasks)

    async def _supervise(self, name: str, run: TaskFactory) -> None:
        in_a_row = 0
        while True:
            started = time.monotonic()
            recovered = asyncio.get_running_loop().call_later(self.policy.healthy_after, self._recovered, name)
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                in_a_row = 1 if time.monotonic() - started >= self.policy.healthy_after else in_a_row + 1
                pause = self.policy.pause(in_a_row)
                self._failed(name, error, in_a_row, pause)
                await asyncio.sleep(pause)
                if self._restarts is not None:
                    self._restarts.labels(name).inc()
                continue
            finally:
                recovered.cancel()
            self._failures.pop(name, None)
            return

    def _failed(self, name: str, error: Exception, in_a_row: int, pause: float) -> None:
        described = str(error) or type(error).__name__
        self._failures[name] = _Failure(described, time.monotonic(), in_a_row)
        first_of_its_kind = (name, type(error)) not in self._logged
        self._logged.add((name, type(error)))
        log.error(
            "background task %r failed: %s: %s; restarting in %.0fs",
            name,
            type(error).__name__,
            described,
            pause,
            exc_info=error if first_of_its_kind else None,
        )

    def _recovered(self, name: str) -> None:
        if self._failures.pop(name, None) is not None:
            log.info("background task %r has run for %.0fs since it was restarted", name, self.policy.healthy_after)
