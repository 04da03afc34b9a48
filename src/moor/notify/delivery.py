"""Sending one request with retries: exponential backoff on 5xx, 429 and connection errors, a bounded
number of tries, no redirects followed (a redirect could carry a token to another host)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import aiohttp

from moor.errors import MoorError
from moor.notify.notices import scrub
from moor.notify.payloads import Outgoing

RESPONSE_EXCERPT = 200


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`-th failed try: first_delay, doubling, capped."""
        return float(min(self.first_delay * 2 ** (attempt - 1), self.max_delay))


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
    for attempt in range(1, policy.attempts + 1):
        status: int | None = None
        try:
            async with session.post(
                outgoing.url,
                data=outgoing.body,
                headers=dict(outgoing.headers),
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                status = response.status
                excerpt = (await response.content.read(RESPONSE_EXCERPT)).decode("utf-8", "replace")
            if 200 <= status < 300:
                return status
            problem = f"HTTP {status}" + (f": {scrub(' '.join(excerpt.split()), hidden)}" if excerpt.strip() else "")
            again = retryable(status)
        except (aiohttp.ClientError, TimeoutError) as error:
            # aiohttp's messages may quote the URL, which can be a secret: name the failure only.
            problem = "timed out" if isinstance(error, TimeoutError) else f"connection failed ({type(error).__name__})"
            again = True
        if not again or attempt == policy.attempts:
            tries = f"{attempt} attempt" + ("s" if attempt > 1 else "")
            raise DeliveryFailed(f"{outgoing.target}: {problem} ({tries})", status=status, attempts=attempt)
        await sleep(policy.delay(attempt))
    raise AssertionError("unreachable: the loop returns or raises")
