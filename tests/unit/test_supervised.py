"""Supervised background tasks: a failure is logged, counted and restarted; stop leaves nothing running."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, Counter

from moor.supervised import RECANCEL_EVERY, RestartPolicy, Supervisor, cancel_and_wait

FAST = RestartPolicy(first=0.02, cap=0.08, healthy_after=0.3)


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def restarts_counter() -> Counter:
    return Counter("restarts", "restarts", ["task"], registry=CollectorRegistry())


async def test_a_failing_task_is_restarted_counted_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 3:
            raise ValueError(f"bad record {runs}")
        await asyncio.sleep(3600)

    restarts = restarts_counter()
    supervisor = Supervisor(restarts, FAST)
    supervisor.start("delivery metrics", flaky)
    try:
        await until(lambda: runs == 4)
        assert restarts.labels("delivery metrics")._value.get() == 3
        problems = supervisor.problems()
        assert len(problems) == 1
        assert problems[0].startswith("delivery metrics: failed (3 times in a row")
        assert "bad record 3" in problems[0]
        assert caplog.text.count("Traceback") == 1  # the first failure of its kind, then one line each
        assert caplog.text.count("background task 'delivery metrics' failed: ValueError") == 3
        await until(lambda: not supervisor.problems(), within=2.0)  # healthy after running a while
        assert supervisor.running("delivery metrics")
    finally:
        await supervisor.stop()


async def test_the_pause_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy(first=1.0, cap=8.0)
    assert [policy.pause(n) for n in (1, 2, 3, 4, 5, 50)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


async def test_a_task_that_returns_is_done_and_not_restarted() -> None:
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1

    supervisor = Supervisor(policy=FAST)
    supervisor.start("once", once)
    await until(lambda: not supervisor.running("once"))
    await asyncio.sleep(0.1)
    assert runs == 1
    assert supervisor.problems() == []
    await supervisor.stop()


async def test_stop_cancels_every_task_and_waits_for_it_even_while_it_waits_to_restart() -> None:
    cleaned_up = asyncio.Event()
    failing_runs = 0

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned_up.set()

    async def failing() -> None:
        nonlocal failing_runs
        failing_runs += 1
        raise RuntimeError("down")

    supervisor = Supervisor(policy=RestartPolicy(first=3600, cap=3600))
    supervisor.start("forever", forever)
    supervisor.start("failing", failing)
    await until(lambda: failing_runs == 1)
    await asyncio.sleep(0.01)
    await supervisor.stop()
    assert cleaned_up.is_set()
    assert not supervisor.running("forever")
    assert not supervisor.running("failing")
    assert {task.get_name() for task in asyncio.all_tasks()}.isdisjoint({"forever", "failing"})


async def test_starting_a_running_task_again_does_nothing() -> None:
    runs = 0

    async def forever() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(3600)

    supervisor = Supervisor(policy=FAST)
    supervisor.start("x", forever)
    supervisor.start("x", forever)
    await asyncio.sleep(0.05)
    assert runs == 1
    await supervisor.stop()


async def test_a_task_that_ignores_its_cancel_is_cancelled_again() -> None:
    ended = asyncio.Event()

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # a dropped cancel, as asyncio.wait_for can drop one
            await asyncio.sleep(60)
        try:
            await asyncio.sleep(60)
        finally:
            ended.set()

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(RECANCEL_EVERY * 3):
        await cancel_and_wait([task])
    assert ended.is_set() and task.cancelled()


async def test_stopping_tasks_never_swallows_a_cancel_of_the_one_stopping_them() -> None:
    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.5)

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(cancel_and_wait([task]))
    await asyncio.sleep(0.05)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    await cancel_and_wait([task])
