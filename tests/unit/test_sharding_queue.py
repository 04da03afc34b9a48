"""The work queue of a member of several: only the keys of its shard, and lost keys' runs cancelled."""

from __future__ import annotations

import asyncio

from moor.controller.queue import WorkQueue


async def test_a_key_outside_the_shard_is_never_queued_and_a_lost_keys_run_is_cancelled() -> None:
    owned = {"a", "b"}
    started: list[str] = []
    cancelled: list[str] = []
    finished: list[str] = []
    events = {"a": asyncio.Event(), "b": asyncio.Event()}

    async def reconcile(key: str) -> None:
        started.append(key)
        if key == "a":
            events["a"].set()
        try:
            await asyncio.sleep(0 if key == "b" else 30)
        except asyncio.CancelledError:
            cancelled.append(key)
            raise
        finished.append(key)
        events["b"].set()

    queue: WorkQueue[str] = WorkQueue(reconcile, workers=2, accepts=owned.__contains__)
    queue.start()
    queue.add("elsewhere")
    queue.add("a")
    queue.add("b", delay=0.2)
    await asyncio.wait_for(events["a"].wait(), 5)
    owned.clear()  # the shard moved: a is running, b is due later
    await queue.drop(lambda key: key not in owned)
    await asyncio.sleep(0.4)
    assert cancelled == ["a"]
    assert started == ["a"]  # neither the key of another member nor the dropped timer ran
    owned.add("b")
    queue.add("b")  # the worker that ran a's cancelled pass still works
    await asyncio.wait_for(events["b"].wait(), 5)
    await queue.stop()
