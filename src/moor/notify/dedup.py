"""Saying the same thing once: identical notices to one Provider within a window are sent once."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

DEFAULT_WINDOW = 300.0


class Deduplicator:
    """Remembers what was sent for `window` seconds; memory is bounded by what a window holds."""

    def __init__(self, window: float = DEFAULT_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._sent: OrderedDict[Hashable, float] = OrderedDict()

    def first(self, key: Hashable) -> bool:
        """True when `key` was not seen within the window (and remembers it from now); False for a repeat."""
        now = self._clock()
        while self._sent:
            oldest, at = next(iter(self._sent.items()))
            if now - at < self.window:
                break
            del self._sent[oldest]
        if key in self._sent:
            return False
        self._sent[key] = now
        return True

    def forget(self, key: Hashable) -> None:
        """Lets `key` through again (its delivery failed, so nobody was told)."""
        self._sent.pop(key, None)

    def __len__(self) -> int:
        return len(self._sent)
