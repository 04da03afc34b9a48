"""The one way Moor serves HTTP (webhooks, metrics, health): slow or numerous clients cannot hurt the controller.

Every connection is bounded:
- its request head (request line and headers) must arrive within `header_timeout` seconds of the
  connection opening, and the next one within `idle_timeout` seconds of a response (slowloris);
- a request being handled (its body read, its response written) is cut after `request_timeout`;
- at most `max_connections_per_peer` connections per client address and `max_connections` in all,
  and never more than a share (1/8, the connections accepted at once included) of the process's
  open-file limit, so that the controller's own work (API connections, git, renderers) always finds
  file descriptors. A connection over a cap takes the place of the oldest connection in its scope
  that is still waiting for (the rest of) its request head, never one whose head has arrived (the
  oldest first: a client that sends its request at once is read long before a cap's worth of others
  arrive after it); when there is none, the new connection is refused;
- request heads are limited in size by aiohttp (`max_line_size`, `max_field_size`, `max_headers`)
  and bodies by the application's `client_max_size`.
Connections closed for these reasons, and failed accepts (EMFILE), are logged at most once a minute
per listener and reason, as one line with a count, never as a traceback; with `ListenerMetrics` they
are counted in `moor_http_connections_closed_total{listener, reason}` beside the gauge
`moor_http_connections{listener}`.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import math
import os
import resource
import socket
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)

_FILE_LIMIT_SHARE = 8
"""A listener may hold at most 1/8 of the process's open-file limit."""
_LOG_INTERVAL = 60.0
_BACKLOG = 16
"""The most connections asyncio accepts at once, before any of them can be refused or read: each takes a
file descriptor, so this counts in a listener's share; and a batch far smaller than the cap leaves
connections that have been read (and can make room)."""
_HEAD_HELD_BACK = 64 * 1024
"""The most of a first request head held back before aiohttp sees it (and refuses it if it goes on)."""
_QUEUE = 1024
"""Connections the kernel holds until they are accepted (no file descriptor of ours): under a flood a
client's handshake waits there instead of being dropped and tried again a second later."""
_ACCEPT_FAILED = "socket.accept() out of system resource"


CloseReason = Literal["header-timeout", "idle-timeout", "request-timeout", "evicted", "refused", "stopped"]
_WHY: dict[CloseReason, str] = {
    "header-timeout": "its request head did not arrive in time",
    "idle-timeout": "it stayed idle too long",
    "request-timeout": "its request took too long",
    "evicted": "another connection needed its place",
    "stopped": "the listener stopped",
}
"""Why a connection was closed, for the log; refusals have a line of their own."""


class ListenerMetrics:
    """What the listeners do with connections, in the controller's registry (`--metrics-port`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.closed = Counter(
            "moor_http_connections_closed",
            "Connections an HTTP listener of Moor closed before the client did, by reason.",
            ["listener", "reason"],
            registry=registry,
        )
        self.open = Gauge(
            "moor_http_connections", "Open connections of an HTTP listener of Moor.", ["listener"], registry=registry
        )


@dataclass(frozen=True)
class ListenerLimits:
    header_timeout: float = 10.0
    """Seconds from a connection's start until its first request head has arrived."""
    idle_timeout: float = 30.0
    """Seconds from the end of a response until the next request head has arrived (keep-alive)."""
    request_timeout: float = 60.0
    """Seconds a request may take from its head until its response is handed over."""
    max_connections: int = 256
    max_connections_per_peer: int = 32
    max_line_size: int = 8190
    max_field_size: int = 8190
    max_headers: int = 64


def raise_open_file_limit() -> int:
    """Raises the soft limit on open files to the hard limit (there is no reason to run below it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return soft
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        log.debug("the open-file limit stays at %d", soft)
        return soft
    return target


def connection_cap(limits: ListenerLimits) -> int:
    """The connections a listener may hold now: its limit, or its share of the open-file limit (less the
    connections accepted at once) if smaller."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections
    return max(1, min(limits.max_connections, soft // _FILE_LIMIT_SHARE - _BACKLOG))


class Listener:
    """A serving application; `close()` stops listening and closes every connection."""

    def __init__(self, name: str, runner: web.AppRunner, server: asyncio.Server, guard: _Guard) -> None:
        self.name = name
        self._runner = runner
        self._server = server
        self._guard = guard

    @property
    def port(self) -> int:
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        return len(self._guard)

    async def close(self) -> None:
        self._server.close()
        self._guard.close_all()
        await self._runner.cleanup()


async def serve_app(
    app: web.Application,
    host: str,
    port: int,
    *,
    name: str,
    limits: ListenerLimits | None = None,
    metrics: ListenerMetrics | None = None,
) -> Listener:
    """Serves `app` on host:port within `limits` (see the module docstring); OSError when it cannot listen.

    `name` (`webhooks`, `metrics`, `health`) names the listener in log lines and in the `listener` label.
    """
    limits = limits or ListenerLimits()
    guard = _Guard(name, f"{name} listener on {host}:{port}", limits, metrics)
    app.middlewares.append(guard.middleware)
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=2 * max(limits.header_timeout, limits.idle_timeout),  # a backstop: ours come first
        lingering_time=1.0,
        shutdown_timeout=2.0,
        max_line_size=limits.max_line_size,
        max_field_size=limits.max_field_size,
        max_headers=limits.max_headers,
    )
    await runner.setup()
    loop = asyncio.get_running_loop()
    _quiet_accept_failures(loop)
    assert runner.server is not None
    inner = runner.server
    try:
        server = await loop.create_server(
            lambda: _GuardedConnection(guard, inner), host, port, reuse_address=True, backlog=_BACKLOG
        )
    except OSError:
        await runner.cleanup()
        raise
    for listening in server.sockets:
        _deepen_queue(listening.fileno(), listening.family)
    return Listener(name, runner, server, guard)


def _deepen_queue(fileno: int, family: int) -> None:
    """Sets the kernel's queue of a listening socket to `_QUEUE` (asyncio sets it to its accept batch)."""
    with socket.socket(family, socket.SOCK_STREAM, fileno=os.dup(fileno)) as duplicate:
        duplicate.listen(_QUEUE)


class _Throttled:
    """One log line per interval for a recurring event, with the count of events it stands for."""

    def __init__(self, message: str, level: int = logging.WARNING) -> None:
        self._message = message
        self._level = level
        self._count = 0
        self._since = -math.inf

    def note(self, *args: object) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._since < _LOG_INTERVAL:
            return
        if self._count > 1:
            log.log(self._level, self._message + "; %d more since the last such line", *args, self._count - 1)
        else:
            log.log(self._level, self._message, *args)
        self._count = 0
        self._since = now


class _GuardedConnection(asyncio.Protocol):
    """Stands between the transport and aiohttp's handler: admits the connection, enforces its deadlines,
    and holds back its first request head until it is complete, so that a connection that never sends
    one costs a buffer, not an aiohttp handler."""

    def __init__(self, guard: _Guard, handler_factory: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._handler_factory = handler_factory
        self._handler: asyncio.Protocol | None = None
        self.transport: asyncio.BaseTransport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self.peer = ""
        self.busy = 0
        self.head_complete = False
        """Whether a whole request head has arrived since it was admitted or since its last response."""
        self._tail = b""
        self._held_back = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peername = transport.get_extra_info("peername")
        self.peer = str(peername[0]) if isinstance(peername, tuple) and peername else "unknown"
        if not self._guard.admit(self):
            transport.abort()
            return
        self._arm(self._guard.limits.header_timeout, "header-timeout")

    def data_received(self, data: bytes) -> None:
        if not self.head_complete:
            self.head_complete = b"\r\n\r\n" in self._tail + data
            self._tail = data[-3:]
        if self._handler is not None:
            self._handler.data_received(data)
            return
        self._held_back += data
        if self.head_complete or len(self._held_back) > _HEAD_HELD_BACK:  # too long: aiohttp answers 400
            assert self.transport is not None
            self._handler = self._handler_factory()
            self._handler.connection_made(self.transport)
            self._handler.data_received(bytes(self._held_back))
            self._held_back = bytearray()

    @property
    def evictable(self) -> bool:
        """Waiting for (the rest of) a request head: no request in hand, and none about to be."""
        return not self.busy and not self.head_complete

    def eof_received(self) -> bool | None:
        return self._handler.eof_received() if self._handler is not None else None

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._guard.forget(self)
        if self._handler is not None:
            self._handler.connection_lost(exc)
            self._handler = None

    def request_started(self) -> None:
        self.busy += 1
        self._arm(self._guard.limits.request_timeout, "request-timeout")

    def request_finished(self) -> None:
        self.busy -= 1
        self.head_complete = False
        self._tail = b""
        if not self.busy:
            self._arm(self._guard.limits.idle_timeout, "idle-timeout")

    def close(self, reason: CloseReason) -> None:
        transport = self.transport
        if isinstance(transport, asyncio.Transport) and not transport.is_closing():
            self._guard.closed(reason)
            transport.abort()

    def _arm(self, seconds: float, reason: CloseReason) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = asyncio.get_running_loop().call_later(seconds, self.close, reason)


class _Guard:
    """The open connections of one listener, counted in all and per client address."""

    def __init__(self, name: str, where: str, limits: ListenerLimits, metrics: ListenerMetrics | None) -> None:
        self.name = name
        self.limits = limits
        self._metrics = metrics
        self._open: dict[_GuardedConnection, None] = {}  # oldest first
        self._by_transport: dict[asyncio.BaseTransport | None, _GuardedConnection] = {}
        self._per_peer: collections.Counter[str] = collections.Counter()
        self._refused = _Throttled(
            f"{where}: refused a connection from %s: every connection is busy (limits: %d in all, %d per address)"
        )
        self._closed: dict[CloseReason, _Throttled] = {
            reason: _Throttled(f"{where}: closed a connection because {why}", logging.INFO)
            for reason, why in _WHY.items()
        }

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, connection: _GuardedConnection) -> bool:
        """Makes room for the connection (closing the oldest idle one over a cap), or refuses it."""
        cap = connection_cap(self.limits)  # the open-file limit may have changed
        per_peer_cap = max(1, min(self.limits.max_connections_per_peer, cap))
        room = self._make_room(connection.peer, per_peer_cap) and self._make_room(None, cap)
        if not room:
            self._refused.note(connection.peer, cap, per_peer_cap)
            self._count("refused")
            return False
        self._open[connection] = None
        self._by_transport[connection.transport] = connection
        self._per_peer[connection.peer] += 1
        self._gauge(+1)
        return True

    def forget(self, connection: _GuardedConnection) -> None:
        if connection not in self._open:
            return
        del self._open[connection]
        self._gauge(-1)
        self._by_transport.pop(connection.transport, None)
        self._per_peer[connection.peer] -= 1
        if not self._per_peer[connection.peer]:
            del self._per_peer[connection.peer]

    def closed(self, reason: CloseReason) -> None:
        self._closed[reason].note()
        self._count(reason)

    def close_all(self) -> None:
        for connection in list(self._open):
            connection.close("stopped")

    def _count(self, reason: CloseReason) -> None:
        if self._metrics is not None:
            self._metrics.closed.labels(self.name, reason).inc()

    def _gauge(self, change: int) -> None:
        if self._metrics is not None:
            self._metrics.open.labels(self.name).inc(change)

    def _make_room(self, peer: str | None, cap: int) -> bool:
        """Closes the oldest idle connections (of `peer`, or of anyone) until one more fits under `cap`."""
        while (self._per_peer[peer] if peer is not None else len(self)) >= cap:
            if not self._evict(peer):
                return False
        return True

    def _evict(self, peer: str | None) -> bool:
        """Closes the oldest idle connection (of `peer`, or of anyone); False when there is none."""
        for connection in self._open:
            if (peer is None or connection.peer == peer) and connection.evictable:
                self.forget(connection)
                connection.close("evicted")
                return True
        return False

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        connection = self._by_transport.get(request.transport)
        if connection is None:
            return await handler(request)
        connection.request_started()
        try:
            return await handler(request)
        finally:
            connection.request_finished()


def _quiet_accept_failures(loop: asyncio.AbstractEventLoop) -> None:
    """Failed accepts (out of file descriptors) become one log line a minute instead of a traceback each."""
    if loop in _quiet_loops:
        return
    previous = loop.get_exception_handler()
    throttled = _Throttled("cannot accept connections: %s; retrying every second")

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if context.get("message") == _ACCEPT_FAILED and isinstance(error, OSError):
            throttled.note(errno.errorcode.get(error.errno or 0, str(error)) + f" ({error.strerror})")
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
    _quiet_loops.add(loop)


_quiet_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
