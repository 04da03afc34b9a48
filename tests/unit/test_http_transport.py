"""HttpTransport, the plumbing both the registry and the chart repository client use, against loopback servers:
an https origin never follows a redirect to plain http (nor to another scheme), a 303 turns a PUT into a
GET without its body, a transient answer is asked again and a lasting one is not, and a body cut short or
over the cap leaves no file and only a SourceError."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from yarl import URL

from moor.devcluster import pki
from moor.retry import RetryPolicy
from moor.source.errors import RegistryUnreachable, SourceError
from moor.source.http_transport import HttpTransport
from moor.source.limits import ArtifactTooLarge
from moor.source.oci.errors import RegistryError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[Handler, ssl.SSLContext | None], Awaitable[URL]]
QUICK = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.05, jitter=0.0, budget=30.0)


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler, tls: ssl.SSLContext | None = None) -> URL:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
        runners.append(runner)
        return URL(f"{'https' if tls else 'http'}://127.0.0.1:{runner.addresses[0][1]}")

    yield start
    for runner in runners:
        await runner.cleanup()


def transport(origin: URL, ca_pem: bytes | None = None) -> HttpTransport:
    return HttpTransport(origin, "registry", origin.authority, answered=RegistryError, timeout=10, ca_pem=ca_pem)


async def fetch(client: HttpTransport, method: str, url: URL, data: bytes | None = None) -> tuple[int, bytes]:
    async with client.exchange(method, url, str(url), authorization="Basic c2VjcmV0", data=data) as response:
        return response.status, await client.read_capped(response, 1024, str(url))


async def test_an_https_origin_refuses_a_redirect_to_plain_http_or_another_scheme(serve: Serve, tmp_path: Path) -> None:
    ca = pki.create_ca("moor-test-transport-ca")
    files = pki.write_key_pair(
        pki.issue_certificate(ca, "server", server=True, ip_addresses=pki.LOOPBACK_IPS), tmp_path, "server"
    )
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(files.cert, files.key)
    reached: list[str | None] = []

    async def plain(request: web.Request) -> web.Response:
        reached.append(request.headers.get("Authorization"))
        return web.Response(body=b"downgraded")

    http = await serve(plain, None)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{http}/blob" if request.path == "/down" else "file:///etc/passwd")

    origin = await serve(redirect, tls)
    client = transport(origin, ca.certificate_pem())
    client.open()
    try:
        with pytest.raises(RegistryError, match=r"redirected to plain http \(127\.0\.0\.1\); refused"):
            await fetch(client, "GET", origin / "down")
        with pytest.raises(RegistryError, match="redirected to a 'file' URL; refused"):
            await fetch(client, "GET", origin / "elsewhere")
    finally:
        await client.close()
    assert reached == []


async def test_a_303_turns_the_request_into_a_get_without_its_body(serve: Serve) -> None:
    seen: list[tuple[str, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.method, await request.read()))
        if request.path == "/upload":
            raise web.HTTPSeeOther("/done")
        return web.Response(body=b"ok")

    origin = await serve(handler, None)
    client = transport(origin)
    client.open()
    try:
        assert await fetch(client, "PUT", origin / "upload", data=b"payload") == (200, b"ok")
    finally:
        await client.close()
    assert seen == [("PUT", b"payload"), ("GET", b"")]


async def test_a_transient_failure_is_tried_again_and_a_lasting_one_is_not(serve: Serve) -> None:
    calls: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.path)
        if request.path == "/flaky" and calls.count("/flaky") == 1:
            return web.Response(status=503, headers={"Retry-After": "0"})
        return web.Response(status=404 if request.path == "/gone" else 200, body=b"ok")

    origin = await serve(handler, None)
    client = transport(origin)

    async def answer(path: str) -> int:
        status, _ = await fetch(client, "GET", origin / path)
        if status >= 400:
            raise RegistryError(f"{path}: {status}", status=status)
        return status

    client.open()
    try:
        assert await client.retrying(QUICK, lambda: answer("flaky")) == 200
        with pytest.raises(RegistryError, match="404"):
            await client.retrying(QUICK, lambda: answer("gone"))
    finally:
        await client.close()
    assert calls == ["/flaky", "/flaky", "/gone"]


async def test_a_body_cut_short_or_over_the_cap_leaves_no_file_and_a_source_error(serve: Serve, tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100000"})
        await response.prepare(request)
        await response.write(b"x" * 4096)
        if request.path == "/cut":
            assert request.transport is not None
            request.transport.close()  # the connection drops mid-body
            return response
        await response.write(b"x" * (100000 - 4096))
        return response

    origin = await serve(handler, None)
    client = transport(origin)

    async def download(path: str, cap: int) -> str:
        async with client.exchange("GET", origin / path, path, authorization=None, streaming=True) as response:
            return await client.stream_to(
                response,
                tmp_path / "blob",
                cap=cap,
                too_large=lambda: ArtifactTooLarge(f"{path} is over the limit"),
                expected=None,
                mismatch=lambda actual: RegistryError(f"{path} is {actual}"),
                what=path,
            )

    client.open()
    try:
        with pytest.raises(RegistryUnreachable, match=r"cut: cannot reach the registry 127\.0\.0\.1"):
            await download("cut", 1024 * 1024)
        with pytest.raises(ArtifactTooLarge) as refused:
            await download("huge", 8192)
        assert isinstance(refused.value, SourceError)
    finally:
        await client.close()
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []
