"""The delivery-metrics loop stops when told to, whatever it is waiting for at that moment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import cast

import pytest

from moor.objects import KubeObject, ObjectRef
from moor.record.dora_metrics import DoraMetrics
from moor.record.events import RecordedEvent
from moor.record.history import HistoryStore
from moor.record.metrics import Metrics
from moor.resources import GROUP, SYNC, VERSION
from moor.supervised import RECANCEL_EVERY


class NoRecords:
    async def list(self, namespace: str) -> list[KubeObject]:
        return []


def sync_result() -> RecordedEvent:
    subject = ObjectRef(GROUP, VERSION, SYNC.kind, "shop", "app")
    return RecordedEvent(subject, "Normal", "Synced", "applied", datetime.now(UTC))


@pytest.mark.parametrize("turns", range(6))
async def test_a_result_arriving_as_the_loop_is_stopped_does_not_keep_it_running(turns: int) -> None:
    # Python 3.11's asyncio.wait_for drops a cancel that lands in the turn its awaitable completes: the loop
    # then went on forever and `moor run` never exited on SIGTERM.
    dora = DoraMetrics(cast(HistoryStore, NoRecords()), Metrics(), list, interval=60, settle=0.01)
    dora.start()
    await asyncio.sleep(0.05)  # waiting for the next result
    dora.listen(sync_result())
    for _ in range(turns):
        await asyncio.sleep(0)
    async with asyncio.timeout(RECANCEL_EVERY / 2):  # not stopped by cancelling it once more
        await dora.stop()


class SlowRecords:
    """A history whose list of every record takes `seconds` (as it does with thousands of Syncs)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lists = 0

    async def list(self, namespace: str) -> list[KubeObject]:
        self.lists += 1
        await asyncio.sleep(self.seconds)
        return []


async def test_while_results_keep_coming_a_slow_recomputation_is_not_repeated_every_settle() -> None:
    # With 3,000 Syncs recording results for minutes, the list of every SyncRecord went out every few
    # seconds and took most of the controller's time: the next recomputation waits PACE times as long
    # as the last one took.
    history = SlowRecords(0.1)
    dora = DoraMetrics(cast(HistoryStore, history), Metrics(), list, interval=60, settle=0.01)
    dora.start()
    try:
        for _ in range(40):  # a result every 25 ms for a second
            dora.listen(sync_result())
            await asyncio.sleep(0.025)
    finally:
        await dora.stop()
    # Without the pace: one list every 0.1 + 0.01 s, about 9. With it: the first, then one a second later.
    assert history.lists <= 3


class CountedRecords:
    def __init__(self) -> None:
        self.lists = 0
        self.listed: asyncio.Queue[int] = asyncio.Queue()

    async def list(self, namespace: str) -> list[KubeObject]:
        self.lists += 1
        self.listed.put_nowait(self.lists)
        return []


async def test_while_results_keep_coming_the_records_are_listed_once_an_interval() -> None:
    # 1,000 Syncs created at once record results for minutes: the list of every SyncRecord (which the
    # API server has to send whole) went out again after each `settle`, 42 times in three minutes.
    history = CountedRecords()
    dora = DoraMetrics(cast(HistoryStore, history), Metrics(), list, interval=0.5, settle=0.02)
    dora.start()
    try:
        for _ in range(100):  # a result every 10 ms for a second
            dora.listen(sync_result())
            await asyncio.sleep(0.01)
    finally:
        await dora.stop()
    # Without the debounce: one list every 20 ms, about 50. With it: the first, then one per half second.
    assert history.lists <= 5


async def test_a_single_result_is_in_the_figures_a_settle_later() -> None:
    history = CountedRecords()
    dora = DoraMetrics(cast(HistoryStore, history), Metrics(), list, interval=60, settle=0.02)
    dora.start()
    try:
        async with asyncio.timeout(5):
            await history.listed.get()  # the first recomputation, at the start
        dora.listen(sync_result())
        async with asyncio.timeout(5):  # not the minute of the interval
            await history.listed.get()
    finally:
        await dora.stop()
