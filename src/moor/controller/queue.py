"""A work queue keyed by object: one reconcile per key at a time, delayed adds, bounded workers.

Like client-go's workqueue: a key added while it is being processed is reconciled once more after
the current run ends; adding a key that is already waiting does nothing; a delayed add keeps the
earliest time asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self, handler: Callable[[K], Awaitable[None]], *, workers: int = 4) -> None:
        self._handler = handler
        self._workers = workers
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._waiting: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, key: K, delay: float = 0.0) -> None:
        """Queues `key` now, or after `delay` seconds (an earlier request wins)."""
        if delay > 0:
            due = time.monotonic() + delay
            current = self._timers.get(key)
            if current and current[0] <= due:
                return
            if current:
                current[1].cancel()
            handle = asyncio.get_running_loop().call_later(delay, self._fire, key)
            self._timers[key] = (due, handle)
            return
        self._cancel_timer(key)
        if key in self._processing:
            self._dirty.add(key)
        elif key not in self._waiting:
            self._waiting.add(key)
            self._ready.put_nowait(key)

    def forget(self, key: K) -> None:
        """Drops any scheduled run of `key` (the object was deleted)."""
        self._cancel_timer(key)

    def scheduled_in(self, key: K) -> float | None:
        timer = self._timers.get(key)
        return None if timer is None else max(0.0, timer[0] - time.monotonic())

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work(), name=f"worker {i}") for i in range(self._workers)]

    async def stop(self) -> None:
        """Lets running reconciles finish (they are cancelled, so each stops at its next await)."""
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _cancel_timer(self, key: K) -> None:
        timer = self._timers.pop(key, None)
        if timer:
            timer[1].cancel()

    async def _work(self) -> None:
        while True:
            key = await self._ready.get()
            self._waiting.discard(key)
            self._processing.add(key)
            try:
                await self._handler(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile of %s crashed", key)
            finally:
                self._processing.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)
