"""A work queue keyed by object: one reconcile per key at a time, delayed adds, bounded workers.

Like client-go's workqueue: a key added while it is being processed is reconciled once more after
the current run ends; adding a key that is already waiting does nothing; a delayed add keeps the
earliest time asked for. A handler is expected to deal with its own failures; one that raises anyway
is logged and its key queued again with backoff (first after `crash_backoff`, doubling up to
`crash_backoff_cap`), so no key is ever dropped, unless `accepts` refuses it: a queue of a member of
several (scale-out) takes only the keys of its shard, and `drop` cancels the runs of keys it lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

from moor.supervised import cancel_and_wait

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(
        self,
        handler: Callable[[K], Coroutine[Any, Any, None]],
        *,
        workers: int = 4,
        crash_backoff: float = 1.0,
        crash_backoff_cap: float = 30.0,
        accepts: Callable[[K], bool] | None = None,
    ) -> None:
        self._handler = handler
        self._accepts = accepts
        self._workers = workers
        self._crash_backoff = crash_backoff
        self._crash_backoff_cap = crash_backoff_cap
        self._crashes: Counter[K] = Counter()
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._waiting: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._running: dict[K, asyncio.Task[None]] = {}

    def add(self, key: K, delay: float = 0.0) -> None:
        """Queues `key` now, or after `delay` seconds (an earlier request wins); a key not accepted is ignored."""
        if self._accepts is not None and not self._accepts(key):
            return
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
        self._crashes.pop(key, None)

    async def drop(self, unwanted: Callable[[K], bool]) -> None:
        """Forgets the keys no longer accepted: their timers, their waiting turn, and their running
        handlers, cancelled (each stops at its next await) and waited for."""
        for key in [key for key in self._timers if unwanted(key)]:
            self.forget(key)
        self._dirty = {key for key in self._dirty if not unwanted(key)}
        await cancel_and_wait([task for key, task in self._running.items() if unwanted(key)])

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
        await cancel_and_wait(self._tasks)

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
            if self._accepts is not None and not self._accepts(key):
                continue  # dropped while it waited
            self._processing.add(key)
            retry_in: float | None = None
            run = self._running[key] = asyncio.create_task(self._handler(key), name=f"reconcile {key}")
            try:
                await run
                self._crashes.pop(key, None)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                # only this key's run was cancelled (`drop`): the worker goes on
            except Exception:
                retry_in = self._crashed(key)
            finally:
                self._running.pop(key, None)
                self._processing.discard(key)
                if key in self._dirty:  # it changed meanwhile: that change may be what it needed
                    self._dirty.discard(key)
                    self.add(key)
                elif retry_in is not None:
                    self.add(key, retry_in)

    def _crashed(self, key: K) -> float:
        """Logs a handler's exception and returns when to try `key` again."""
        crashes = self._crashes[key]
        self._crashes[key] += 1
        delay = min(self._crash_backoff * 2.0 ** min(crashes, 16), self._crash_backoff_cap)
        log.exception("reconcile of %s raised; trying again in %.0fs", key, delay)
        return delay
