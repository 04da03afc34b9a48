"""The work queue: one reconcile per key at a time, adds deduplicated, and no key lost to a crash."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from moor.controller.queue import WorkQueue


class Recorder:
    """A handler that records every key it is called with, optionally waiting or raising."""

    def __init__(self, behaviour: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.calls: list[str] = []
        self.called = asyncio.Event()
        self._behaviour = behaviour

    async def __call__(self, key: str) -> None:
        self.calls.append(key)
        self.called.set()
        if self._behaviour is not None:
            await self._behaviour(key)


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_key_added_twice_while_waiting_is_reconciled_once() -> None:
    handler = Recorder()
    queue: WorkQueue[str] = WorkQueue(handler, workers=2)
    queue.add("a")
    queue.add("a")
    queue.add("b")
    queue.start()
    try:
        await until(lambda: len(handler.calls) >= 2)
        await asyncio.sleep(0.1)
        assert sorted(handler.calls) == ["a", "b"]
    finally:
        await queue.stop()


async def test_a_key_added_while_it_is_processed_runs_once_more_afterwards_never_concurrently() -> None:
    release = asyncio.Event()
    running = 0
    most = 0

    async def slow(key: str) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1

    handler = Recorder(slow)
    queue: WorkQueue[str] = WorkQueue(handler, workers=4)
    queue.start()
    try:
        queue.add("a")
        await handler.called.wait()
        queue.add("a")
        queue.add("a")
        await asyncio.sleep(0.05)
        assert handler.calls == ["a"]  # not concurrently
        release.set()
        await until(lambda: len(handler.calls) == 2)
        await asyncio.sleep(0.1)
        assert handler.calls == ["a", "a"]  # the two adds during the run made one more run
        assert most == 1
    finally:
        await queue.stop()


async def test_a_delayed_add_keeps_the_earliest_time_asked_for() -> None:
    handler = Recorder()
    queue: WorkQueue[str] = WorkQueue(handler)
    queue.start()
    try:
        queue.add("a", 30.0)
        queue.add("a", 0.1)
        queue.add("a", 60.0)
        scheduled = queue.scheduled_in("a")
        assert scheduled is not None and scheduled <= 0.1
        await until(lambda: handler.calls == ["a"], within=2.0)
        assert queue.scheduled_in("a") is None
    finally:
        await queue.stop()


async def test_an_immediate_add_replaces_a_scheduled_one() -> None:
    handler = Recorder()
    queue: WorkQueue[str] = WorkQueue(handler)
    queue.start()
    try:
        queue.add("a", 30.0)
        queue.add("a")
        await until(lambda: handler.calls == ["a"])
        assert queue.scheduled_in("a") is None
    finally:
        await queue.stop()


async def test_forget_drops_a_scheduled_run() -> None:
    handler = Recorder()
    queue: WorkQueue[str] = WorkQueue(handler)
    queue.start()
    try:
        queue.add("a", 0.05)
        queue.forget("a")
        await asyncio.sleep(0.2)
        assert handler.calls == []
    finally:
        await queue.stop()


async def test_a_handler_that_raises_gets_its_key_back_with_growing_backoff(caplog: pytest.LogCaptureFixture) -> None:
    async def crash(key: str) -> None:
        raise RuntimeError("boom")

    handler = Recorder(crash)
    queue: WorkQueue[str] = WorkQueue(handler, crash_backoff=0.05, crash_backoff_cap=0.2)
    queue.start()
    try:
        queue.add("a")
        await until(lambda: len(handler.calls) == 1)
        await until(lambda: queue.scheduled_in("a") is not None)
        first = queue.scheduled_in("a")
        assert first is not None and 0 < first <= 0.05
        await until(lambda: len(handler.calls) == 2)
        await until(lambda: queue.scheduled_in("a") is not None)
        second = queue.scheduled_in("a")
        assert second is not None and 0.05 < second <= 0.1  # doubled
        await until(lambda: len(handler.calls) >= 5, within=5.0)
        assert "reconcile of a raised; trying again" in caplog.text
        assert "boom" in caplog.text
    finally:
        await queue.stop()


async def test_after_a_success_the_crash_backoff_starts_again_from_the_first_delay() -> None:
    outcomes = iter([RuntimeError("one"), RuntimeError("two"), None, RuntimeError("three")])

    async def sometimes(key: str) -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    handler = Recorder(sometimes)
    queue: WorkQueue[str] = WorkQueue(handler, crash_backoff=0.05, crash_backoff_cap=10.0)
    queue.start()
    try:
        queue.add("a")
        await until(lambda: len(handler.calls) == 3, within=3.0)  # two crashes, then a success
        await asyncio.sleep(0.05)
        assert queue.scheduled_in("a") is None  # a success schedules nothing
        queue.add("a")
        await until(lambda: len(handler.calls) == 4)
        await until(lambda: queue.scheduled_in("a") is not None)
        again = queue.scheduled_in("a")
        assert again is not None and again <= 0.05
    finally:
        await queue.stop()


async def test_stop_cancels_a_running_reconcile() -> None:
    cancelled = asyncio.Event()

    async def forever(key: str) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    handler = Recorder(forever)
    queue: WorkQueue[str] = WorkQueue(handler)
    queue.start()
    queue.add("a")
    await handler.called.wait()
    await queue.stop()
    assert cancelled.is_set()
