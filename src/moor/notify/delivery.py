"""Sending one request with retries: exponential backoff on 5xx, 429 and connection errors (a receiver's
Retry-After honoured on 429 and 503, up to the policy's cap), a bounded number of tries, no redirects
followed (a redirect could carry a token to another host). The policy is the project's one (moor/retry.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

import aiohttp

from moor.errors import MoorError
from moor.notify.notices import scrub
from moor.notify.payloads import Outgoing
from moor.retry import RetryPolicy, parse_retry_after

__all__ = ["DeliveryFailed", "RetryPolicy", "deliver", "retryable"]

RESPONSE_EXCERPT = 200


class DeliveryFailed(MoorError):
    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


def retryable(status: int) -> bool:
    return status >= 500 or status == 429


async def deliver(
    session: aiohttp.ClientSession,
    outgoing: Outgoing,
    *,
    timeout: float,
    policy: RetryPolicy,
    secrets: Iterable[str] = (),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> int:
    """POSTs `outgoing` until it is accepted (2xx); returns the status or raises DeliveryFailed."""
    hidden = list(secrets)
    started = time.monotonic()
    for attempt in range(1, policy.attempts + 1):
        status: int | None = None
        retry_after: float | None = None
        try:
            async with session.post(
                outgoing.url,
                data=outgoing.body,
                headers=dict(outgoing.headers),
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                status = response.status
                if status in {429, 503}:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                excerpt = (await response.content.read(RESPONSE_EXCERPT)).decode("utf-8", "replace")
            if 200 <= status < 300:
                return status
            problem = f"HTTP {status}" + (f": {scrub(' '.join(excerpt.split()), hidden)}" if excerpt.strip() else "")
            again = retryable(status)
        except (aiohttp.ClientError, TimeoutError) as error:
            # aiohttp's messages may quote the URL, which can be a secret: name the failure only.
            problem = "timed out" if isinstance(error, TimeoutError) else f"connection failed ({type(error).__name__})"
            again = True
        wait = policy.next_delay(attempt, time.monotonic() - started, retry_after) if again else None
        if wait is None:
            tries = f"{attempt} attempt" + ("s" if attempt > 1 else "")
            raise DeliveryFailed(f"{outgoing.target}: {problem} ({tries})", status=status, attempts=attempt)
        await sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")
