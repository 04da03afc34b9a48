"""Keeps the delivery metrics (DORA) on `/metrics` current: recomputed from one list of every SyncRecord,
every `interval` and a few seconds after a Sync records a result (never per object, never in a reconcile).
A recomputation costs in proportion to the records (here and in the API server, which sends them all), so
while Syncs keep recording results it waits until they pause for `settle` seconds, but no longer than
`interval`: during a rollout of many Syncs the list of every record goes out once a minute, not every few
seconds (with 1,000 Syncs created at once it went out 42 times in three minutes). The pause is also at
least `PACE` times as long as the last recomputation took.

The loop runs supervised: an error of the API server is logged and tried again at the next turn; any
other error (a record it cannot read, a bug) restarts the loop with backoff, counted in
`moor_task_restarts_total{task="delivery metrics"}` and named by `problems()` meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from moor.errors import MoorError
from moor.objects import KubeObject
from moor.record.dora import DEFAULT_WINDOW, commit_times_of, delivery_figures
from moor.record.events import RecordedEvent
from moor.record.history import HistoryStore
from moor.record.metrics import Metrics
from moor.resources import SYNC
from moor.supervised import Supervisor

log = logging.getLogger(__name__)

TASK_NAME = "delivery metrics"
DEFAULT_INTERVAL = 60.0
SETTLE = 5.0
"""After a Sync's result, wait until no other result came for this long (at most `interval`) before recomputing."""
PACE = 10.0
"""...and at least this many times as long as the last recomputation took."""


class DoraMetrics:
    def __init__(
        self,
        history: HistoryStore,
        metrics: Metrics,
        repositories: Callable[[], Iterable[KubeObject]],
        *,
        interval: float = DEFAULT_INTERVAL,
        window: timedelta = DEFAULT_WINDOW,
        settle: float = SETTLE,
    ) -> None:
        self.history = history
        self.metrics = metrics
        self.repositories = repositories
        self.interval = interval
        self.window = window
        self.settle = settle
        self._soon = asyncio.Event()
        self._tasks = Supervisor(metrics.task_restarts)

    def listen(self, event: RecordedEvent) -> None:
        """An event listener: a Sync's new result makes the figures stale."""
        if event.subject.kind == SYNC.kind:
            self._soon.set()

    def start(self) -> None:
        self._tasks.start(TASK_NAME, self._run)

    async def stop(self) -> None:
        await self._tasks.stop()

    def problems(self) -> list[str]:
        """The recomputation's failure, while it is being restarted (for /healthz)."""
        return self._tasks.problems()

    async def refresh(self) -> None:
        records = await self.history.list("")
        figures = delivery_figures(
            records,
            now=datetime.now(UTC),
            window=self.window,
            commit_times=commit_times_of(self.repositories()),
        )
        self.metrics.set_delivery(figures)

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.refresh()
            except MoorError as error:
                log.warning("could not recompute the delivery metrics: %s", error)
            took = time.monotonic() - started
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._soon.wait()
            if self._soon.is_set():
                await self._settle(max(self.settle, PACE * took))

    async def _settle(self, pause: float) -> None:
        """Waits until no result arrived for `pause` seconds, or `interval` seconds have passed."""
        deadline = time.monotonic() + self.interval
        while True:
            self._soon.clear()
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            if not self._soon.is_set() or time.monotonic() >= deadline:
                self._soon.clear()
                return
