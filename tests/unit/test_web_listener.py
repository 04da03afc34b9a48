"""Moor's HTTP listener: slow clients are closed, caps make room for new clients, probes tell the truth."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from moor.web import probes
from moor.web.listener import (
    Listener,
    ListenerLimits,
    ListenerMetrics,
    connection_cap,
    raise_open_file_limit,
    serve_app,
)

FAST = ListenerLimits(header_timeout=0.5, idle_timeout=0.5, request_timeout=1.0, max_connections_per_peer=4)


async def closed_by_server(reader: asyncio.StreamReader, within: float = 10.0) -> bool:
    """Whether the server closes the connection (end of stream or reset) within `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


async def get(port: int, path: str = "/healthz", *, source: str = "127.0.0.1") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: moor\r\nConnection: close\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def health(registry: CollectorRegistry) -> AsyncIterator[Listener]:
    listener = await probes.serve(0, address="127.0.0.1", limits=FAST, metrics=ListenerMetrics(registry))
    yield listener
    await listener.close()


def closed(registry: CollectorRegistry, reason: str) -> float:
    labels = {"listener": "health", "reason": reason}
    return registry.get_sample_value("moor_http_connections_closed_total", labels) or 0.0


async def test_a_connection_that_never_finishes_its_request_head_is_closed(
    health: Listener, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        slow = [await asyncio.open_connection("127.0.0.1", health.port) for _ in range(3)]
        assert registry.get_sample_value("moor_http_connections", {"listener": "health"}) == 3
        started = time.monotonic()
        for _, writer in slow:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: mo")
        assert all([await closed_by_server(reader) for reader, _ in slow])
    assert time.monotonic() - started < 5
    assert health.connections == 0
    assert closed(registry, "header-timeout") == 3
    assert registry.get_sample_value("moor_http_connections", {"listener": "health"}) == 0
    lines = [record.getMessage() for record in caplog.records if "closed a connection" in record.getMessage()]
    assert lines == [
        "health listener on 127.0.0.1:0: closed a connection because its request head did not arrive in time"
    ]


async def test_an_endless_request_head_is_refused(health: Listener) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", health.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nX-Long: " + b"x" * 100_000)
    response = await reader.read()
    assert response.split(b" ")[1] == b"400", response[:100]


async def test_a_kept_alive_connection_left_idle_is_closed(health: Listener) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", health.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: moor\r\n\r\n")
    assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
    assert await closed_by_server(reader)


async def test_a_new_connection_takes_the_place_of_the_oldest_idle_one_of_its_address(
    health: Listener, registry: CollectorRegistry
) -> None:
    slow = [await asyncio.open_connection("127.0.0.1", health.port) for _ in range(FAST.max_connections_per_peer)]
    for _, writer in slow:
        writer.write(b"GET /healthz HTTP/1.1\r\n")
    await asyncio.sleep(0.1)
    assert await get(health.port) == (200, b"ok")
    assert await closed_by_server(slow[0][0], within=0.3), "the oldest slow connection made room"
    assert health.connections <= FAST.max_connections_per_peer
    assert closed(registry, "evicted") == 1


async def test_other_addresses_keep_their_connections(health: Listener) -> None:
    theirs = [await asyncio.open_connection("127.0.0.1", health.port, local_addr=("127.0.3.1", 0)) for _ in range(2)]
    mine = [await asyncio.open_connection("127.0.0.1", health.port) for _ in range(FAST.max_connections_per_peer)]
    for _, writer in mine:
        writer.write(b"GET /healthz HTTP/1.1\r\n")
    await asyncio.sleep(0.05)
    assert await get(health.port) == (200, b"ok")
    assert not await closed_by_server(theirs[0][0], within=0.2), "another address's connection stays"
    for _, writer in theirs + mine:
        writer.close()


@pytest.fixture
async def stuck() -> AsyncIterator[tuple[Listener, asyncio.Event]]:
    release = asyncio.Event()

    async def wait(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="released")

    app = web.Application()
    app.router.add_get("/wait", wait)
    listener = await serve_app(app, "127.0.0.1", 0, name="test listener", limits=FAST)
    yield listener, release
    release.set()
    await listener.close()


async def test_when_every_connection_is_busy_a_new_one_is_refused(stuck: tuple[Listener, asyncio.Event]) -> None:
    listener, release = stuck
    busy = [asyncio.ensure_future(get(listener.port, "/wait")) for _ in range(FAST.max_connections_per_peer)]
    await asyncio.sleep(0.2)
    reader, _ = await asyncio.open_connection("127.0.0.1", listener.port)
    assert await closed_by_server(reader, within=1)
    release.set()
    assert [await answer for answer in busy] == [(200, b"released")] * FAST.max_connections_per_peer


async def test_a_request_that_takes_too_long_is_cut(stuck: tuple[Listener, asyncio.Event]) -> None:
    listener, _ = stuck
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.write(b"GET /wait HTTP/1.1\r\nHost: moor\r\n\r\n")
    started = time.monotonic()
    assert await closed_by_server(reader)
    assert 0.5 < time.monotonic() - started < 5


async def test_healthz_lists_the_controllers_problems() -> None:
    problems: list[str] = []
    listener = await probes.serve(0, address="127.0.0.1", problems=lambda: problems)
    try:
        assert await get(listener.port) == (200, b"ok")
        problems += ["watch of Syncs: connection refused (failing for 30s)", "task notifier ended"]
        assert await get(listener.port) == (
            503,
            b"watch of Syncs: connection refused (failing for 30s)\ntask notifier ended\n",
        )
        assert await get(listener.port, "/livez") == (200, b"ok"), "liveness does not restart over a failing watch"
    finally:
        await listener.close()


async def test_failed_accepts_are_one_line_without_a_traceback(
    health: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    context = {"message": "socket.accept() out of system resource", "exception": OSError(errno.EMFILE, "Too many")}
    with caplog.at_level(logging.WARNING):
        for _ in range(100):
            loop.call_exception_handler(dict(context))
    lines = [record for record in caplog.records if "accept" in record.getMessage()]
    assert len(lines) == 1
    assert lines[0].getMessage() == "cannot accept connections: EMFILE (Too many); retrying every second"
    assert lines[0].exc_info is None


@pytest.fixture
def file_limit() -> Iterator[tuple[int, int]]:
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield limits
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def test_the_open_file_limit_is_raised_to_the_hard_limit(file_limit: tuple[int, int]) -> None:
    _, hard = file_limit
    if hard == resource.RLIM_INFINITY or hard < 256:
        pytest.skip("needs a finite hard limit on open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))
    assert raise_open_file_limit() == hard
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard


def test_a_listener_holds_at_most_an_eighth_of_the_open_file_limit(file_limit: tuple[int, int]) -> None:
    _, hard = file_limit
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip("needs a hard limit on open files of at least 1024")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    assert connection_cap(ListenerLimits(max_connections=1000)) == 128 - 16, "16 may be accepted at once"
    assert connection_cap(ListenerLimits(max_connections=50)) == 50
