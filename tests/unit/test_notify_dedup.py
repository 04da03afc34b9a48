"""The same news to the same Provider within the window is sent once."""

from __future__ import annotations

from moor.notify.dedup import Deduplicator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_repeat_within_the_window_is_suppressed_and_let_through_after_it() -> None:
    clock = Clock()
    dedup = Deduplicator(window=300, clock=clock)
    assert dedup.first(("p", "Applied", "v1"))
    clock.now += 299
    assert not dedup.first(("p", "Applied", "v1"))
    assert dedup.first(("p", "Applied", "v2")), "other news passes"
    clock.now += 2
    assert dedup.first(("p", "Applied", "v1")), "the window counts from the first sending"


def test_a_forgotten_key_passes_again() -> None:
    dedup = Deduplicator(window=300, clock=Clock())
    assert dedup.first("k")
    dedup.forget("k")
    assert dedup.first("k")


def test_memory_is_bounded_by_the_window() -> None:
    clock = Clock()
    dedup = Deduplicator(window=10, clock=clock)
    for index in range(1000):
        dedup.first(index)
        clock.now += 1
    assert len(dedup) <= 10
