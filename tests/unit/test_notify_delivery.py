"""Delivery against a real HTTP server on loopback: retries with backoff on 5xx and connection errors,
none on other 4xx, no redirects followed, and no secret in the error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from moor.notify.delivery import DeliveryFailed, RetryPolicy, deliver
from moor.notify.payloads import Outgoing, safe_target
from tests.support.moor_fixtures import free_port

FAST = RetryPolicy(attempts=4, first_delay=0.01, max_delay=0.05)


@dataclass
class Receiver:
    base: str
    replies: dict[str, list[int]]
    seen: list[tuple[str, bytes, str]] = field(default_factory=list)

    def outgoing(self, path: str, body: bytes = b"{}") -> Outgoing:
        url = self.base + path
        return Outgoing(url, {"Authorization": "Bearer sekrit-token-123"}, body, safe_target(url))

    def count(self, path: str) -> int:
        return sum(1 for seen_path, _, _ in self.seen if seen_path == path)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    replies: dict[str, list[int]] = {
        "/flaky": [500, 503, 200],
        "/bad": [401],
        "/down": [500] * 10,
        "/busy": [429, 204],
        "/later": [503, 200],
    }
    state = Receiver("", replies)

    async def handle(request: web.Request) -> web.Response:
        state.seen.append((request.path, await request.read(), request.headers.get("Authorization", "")))
        if request.path == "/moved":
            raise web.HTTPFound("http://127.0.0.1:9/elsewhere")
        plan = replies.get(request.path) or [200]
        status = plan.pop(0) if len(plan) > 1 else plan[0]
        text = '{"message": "Bad credentials for sekrit-token-123"}' if status == 401 else ""
        headers = {"Retry-After": "2"} if request.path in {"/busy", "/later"} else {}
        return web.Response(status=status, text=text, headers=headers)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    state.base = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


async def test_retries_after_server_errors_with_growing_delays(receiver: Receiver) -> None:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    async with aiohttp.ClientSession() as session:
        status = await deliver(session, receiver.outgoing("/flaky", b'{"n":1}'), timeout=5, policy=FAST, sleep=sleep)
    assert status == 200
    assert receiver.count("/flaky") == 3
    assert delays == [0.01, 0.02]
    assert {body for _, body, _ in receiver.seen} == {b'{"n":1}'}, "the same body every time"
    assert {auth for _, _, auth in receiver.seen} == {"Bearer sekrit-token-123"}


async def test_too_many_requests_is_retried(receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        assert await deliver(session, receiver.outgoing("/busy"), timeout=5, policy=FAST) == 204


async def test_gives_up_after_the_last_attempt(receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(DeliveryFailed) as caught:
            await deliver(session, receiver.outgoing("/down"), timeout=5, policy=FAST)
    assert receiver.count("/down") == 4
    assert caught.value.status == 500 and caught.value.attempts == 4
    assert str(caught.value) == f"{receiver.base}: HTTP 500 (4 attempts)"


async def test_a_client_error_is_not_retried_and_secrets_in_the_answer_are_hidden(receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(DeliveryFailed) as caught:
            await deliver(session, receiver.outgoing("/bad"), timeout=5, policy=FAST, secrets=["sekrit-token-123"])
    assert receiver.count("/bad") == 1
    assert "HTTP 401" in str(caught.value) and "Bad credentials" in str(caught.value)
    assert "sekrit" not in str(caught.value)


async def test_redirects_are_not_followed(receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(DeliveryFailed, match="HTTP 302"):
            await deliver(session, receiver.outgoing("/moved"), timeout=5, policy=FAST)
    assert receiver.count("/moved") == 1


async def test_connection_errors_are_retried_and_the_url_is_not_shown() -> None:
    port = free_port()  # nothing listens here
    url = f"http://127.0.0.1:{port}/services/T0/B0/secretpath"
    outgoing = Outgoing(url, {}, b"{}", safe_target(url))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(DeliveryFailed) as caught:
            await deliver(session, outgoing, timeout=5, policy=FAST)
    assert caught.value.attempts == 4
    assert "connection failed" in str(caught.value)
    assert "secretpath" not in str(caught.value)


@pytest.mark.parametrize("path", ["/busy", "/later"])
async def test_a_receivers_retry_after_is_honoured_on_429_and_503(receiver: Receiver, path: str) -> None:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    patient = RetryPolicy(attempts=3, first_delay=0.01, max_delay=5)
    async with aiohttp.ClientSession() as session:
        assert await deliver(session, receiver.outgoing(path), timeout=5, policy=patient, sleep=sleep) in {200, 204}
    assert delays == [2.0], "the receiver's Retry-After: 2, not the policy's 0.01 s"


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(attempts=10, first_delay=1, max_delay=30)
    assert [policy.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
