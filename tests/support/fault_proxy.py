"""A fault-injecting proxy in front of the real kube-apiserver, for tests of Moor's failure model.

Every answer still comes from the real API server; the proxy only stalls, refuses, resets or drops
requests on demand. It listens on plain HTTP on loopback and forwards to the cluster with the admin's
client certificate, so `proxy.kubeconfig` (no credentials of its own) can be handed to `moor run`,
the CLI or a `KubeClient` as any kubeconfig.

    proxy.stall(r"/api/v1/namespaces/[^/]+/configmaps", seconds=5)  # hold matching requests
    proxy.respond(429, r"/apis/apps/v1/", headers={"Retry-After": "2"}, times=1)
    proxy.respond(403, r"/api/v1/secrets$", method="GET")           # refuse a list (a Status body)
    proxy.reset(r"/api/v1/namespaces/.*/configmaps/app", times=1)   # close the connection, no answer
    proxy.drop_watches()                                            # end every open watch stream
    proxy.freeze(); ...; proxy.thaw()                               # hold everything, then let it through
    proxy.refuse(); ...; proxy.accept()                             # stop listening: connection refused
    proxy.clear()                                                   # no faults

A fault matches a request when its regular expression is found in the path (`re.search`), its method
(if given) is the request's, and `watch` (if given) says whether it is a watch (`?watch=true`). `times`
limits how many requests it takes (None: all). `rule.hits` counts the requests it took, and
`proxy.log` holds (method, path and query, status) for every request answered, so a test can check
what Moor sent. Faults are checked newest first; the first that matches applies.

The `fault_proxy` fixture gives a started proxy in front of the module's `private_cluster`.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from moor.cluster.config import load_kubeconfig
from moor.devcluster import ClusterInfo
from tests.support.moor_fixtures import free_port

T = TypeVar("T")

_HOP_BY_HOP = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
)
_NOT_FORWARDED_BACK = _HOP_BY_HOP | {"content-encoding"}
"""The proxy's client decompresses what the server sends, so the answer it passes on is not encoded."""


@dataclass
class Fault:
    """One fault: what it matches and what it does to the requests it takes."""

    action: str
    path: re.Pattern[str]
    method: str | None = None
    watch: bool | None = None
    times: int | None = None
    seconds: float = 0.0
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hits: int = 0

    def matches(self, request: web.Request) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and request.method != self.method.upper():
            return False
        if self.watch is not None and _is_watch(request) != self.watch:
            return False
        return self.path.search(request.path) is not None


class FaultProxy:
    """The proxy, served from a thread of its own so that tests may block while it answers."""

    def __init__(self, cluster: ClusterInfo, directory: Path) -> None:
        self.cluster = cluster
        self.directory = directory
        self.kubeconfig = directory / "proxy-kubeconfig"
        self.log: list[tuple[str, str, int]] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._session: aiohttp.ClientSession | None = None
        self._streams: dict[int, web.Request] = {}
        self._thawed: asyncio.Event | None = None
        self._refusing = False
        self._handlers: set[asyncio.Task[Any]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # Life cycle -------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: proxy\n"
            f"clusters:\n- name: proxy\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: proxy\n  user: {}\n"
            "contexts:\n- name: proxy\n  context:\n    cluster: proxy\n    user: proxy\n"
        )
        return self

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    # Faults -----------------------------------------------------------------------------------

    def stall(
        self,
        path: str,
        seconds: float,
        *,
        method: str | None = None,
        watch: bool | None = None,
        times: int | None = None,
    ) -> Fault:
        """Matching requests wait `seconds` before they are forwarded (past a client's timeout, it gives up)."""
        return self._add(Fault("stall", re.compile(path), method, watch, times, seconds=seconds))

    def respond(
        self,
        status: int,
        path: str,
        *,
        method: str | None = None,
        watch: bool | None = None,
        times: int | None = None,
        headers: dict[str, str] | None = None,
        message: str = "",
    ) -> Fault:
        """Matching requests are answered `status` with a Kubernetes Status body, without reaching the server."""
        reason = {403: "Forbidden", 404: "NotFound", 429: "TooManyRequests", 503: "ServiceUnavailable"}.get(status, "")
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message or f"injected {status} by the fault proxy",
            "reason": reason,
            "code": status,
        }
        fault = Fault("respond", re.compile(path), method, watch, times, status=status, body=json.dumps(body).encode())
        fault.headers = dict(headers or {})
        return self._add(fault)

    def reset(
        self, path: str, *, method: str | None = None, watch: bool | None = None, times: int | None = None
    ) -> Fault:
        """Matching requests have their connection closed without an answer."""
        return self._add(Fault("reset", re.compile(path), method, watch, times))

    def drop_watches(self) -> int:
        """Ends every open watch stream abruptly; returns how many there were."""
        return self._call(self._drop_watches())

    def freeze(self) -> None:
        """Holds every request that arrives from now on (and open streams' new data) until `thaw`."""
        self._call(self._freeze())

    def thaw(self) -> None:
        self._call(self._thaw())

    def refuse(self) -> None:
        """Stops listening and drops every open connection: the API server is unreachable."""
        self._call(self._refuse())

    def accept(self) -> None:
        """Listens again on the same port."""
        self._call(self._listen())

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def requests_to(self, pattern: str) -> list[tuple[str, str, int]]:
        """The logged requests whose path and query match `pattern`."""
        expression = re.compile(pattern)
        with self._lock:
            return [entry for entry in self.log if expression.search(entry[1])]

    # Inside the proxy's loop ------------------------------------------------------------------

    def _add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.insert(0, fault)
        return fault

    def _take(self, request: web.Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.hits += 1
                    return fault
        return None

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    async def _start(self) -> None:
        credentials = load_kubeconfig(self.cluster.kubeconfig)
        context = ssl.create_default_context(cadata=(credentials.ca_pem or b"").decode())
        context.load_cert_chain(self.cluster.admin_cert, self.cluster.admin_key)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=0))
        self._upstream = credentials.server
        self._thawed = asyncio.Event()
        self._thawed.set()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self.port = self.port or free_port()
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        self._refusing = False

    async def _refuse(self) -> None:
        self._refusing = True
        if self._site is not None:
            await self._site.stop()
            self._site = None
        await self._drop_watches()

    async def _stop(self) -> None:
        await self._refuse()
        for task in list(self._handlers):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _drop_watches(self) -> int:
        streams = list(self._streams.values())
        for request in streams:
            if request.transport is not None:
                request.transport.abort()
        self._streams.clear()
        return len(streams)

    async def _freeze(self) -> None:
        assert self._thawed is not None
        self._thawed.clear()

    async def _thaw(self) -> None:
        assert self._thawed is not None
        self._thawed.set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            return await self._answer(request)
        finally:
            self._handlers.discard(task)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        assert self._thawed is not None and self._session is not None
        await self._thawed.wait()
        if self._refusing:  # a kept-alive connection from before `refuse`
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        fault = self._take(request)
        if fault is not None and fault.action == "stall":
            await asyncio.sleep(fault.seconds)
        elif fault is not None and fault.action == "respond":
            self._record(request, fault.status)
            headers = {"Content-Type": "application/json", **fault.headers}
            return web.Response(status=fault.status, body=fault.body, headers=headers)
        elif fault is not None and fault.action == "reset":
            self._record(request, 0)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        return await self._forward(request)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None and self._thawed is not None
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        body = await request.read()
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=10)
        async with self._session.request(
            request.method,
            self._upstream + request.path_qs,
            headers=headers,
            data=body or None,
            timeout=timeout,
            allow_redirects=False,
        ) as upstream:
            self._record(request, upstream.status)
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in _NOT_FORWARDED_BACK:
                    response.headers.add(key, value)
            watching = _is_watch(request)
            if watching:
                self._streams[id(request)] = request
            try:
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await self._thawed.wait()
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientError):
                pass
            finally:
                self._streams.pop(id(request), None)
            return response

    def _record(self, request: web.Request, status: int) -> None:
        with self._lock:
            self.log.append((request.method, request.path_qs, status))


def _is_watch(request: web.Request) -> bool:
    return request.query.get("watch", "").lower() in {"true", "1"}


@pytest.fixture
def fault_proxy(private_cluster: ClusterInfo, tmp_path: Path) -> Iterator[FaultProxy]:
    """A fault proxy of this test's own in front of the module's private cluster."""
    proxy = FaultProxy(private_cluster, tmp_path).start()
    try:
        yield proxy
    finally:
        proxy.stop()
