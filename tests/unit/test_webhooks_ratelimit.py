"""The per-client token bucket that answers floods of webhook requests with 429."""

from __future__ import annotations

import pytest

from moor.web.ratelimit import Decision, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_requests_wait_for_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=20, clock=clock)
    assert all(limiter.check("10.0.0.1").allowed for _ in range(20))
    refused = limiter.check("10.0.0.1")
    assert refused == Decision(allowed=False, retry_after=pytest.approx(0.1))
    clock.now += 0.1
    assert limiter.check("10.0.0.1").allowed
    assert not limiter.check("10.0.0.1").allowed


def test_clients_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(rate=1, burst=2, clock=Clock())
    assert limiter.check("a").allowed and limiter.check("a").allowed
    assert not limiter.check("a").allowed
    assert limiter.check("b").allowed


def test_an_idle_client_gets_at_most_a_full_burst_back() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=5, clock=clock)
    for _ in range(5):
        limiter.check("a")
    clock.now += 3600
    assert sum(limiter.check("a").allowed for _ in range(50)) == 5


def test_retry_after_header_is_whole_seconds_and_never_zero() -> None:
    assert RateLimiter.retry_after_header(Decision(False, 0.05)) == "1"
    assert RateLimiter.retry_after_header(Decision(False, 2.2)) == "3"


def test_memory_stays_bounded_by_dropping_the_longest_idle_clients() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, max_keys=3, clock=clock)
    for client in ("a", "b", "c"):
        limiter.check(client)
        clock.now += 0.01
    limiter.check("a")  # "a" is now the most recent
    limiter.check("d")
    assert len(limiter) == 3
    assert not limiter.check("a").allowed, "a was kept, with its empty bucket"
    assert limiter.check("b").allowed, "b was dropped, so it starts again with a full bucket"


def test_a_clock_that_goes_back_gives_no_tokens() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    limiter.check("a")
    clock.now -= 50
    assert not limiter.check("a").allowed


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (1, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="positive rate"):
        RateLimiter(rate, burst)
