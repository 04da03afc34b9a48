"""ChartRepositoryClient against loopback HTTP servers that misbehave: a redirect to another host gets
no credentials, an https-less hop and endless redirects are refused, an oversized index is refused
without being read whole, a 304 brings no body."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from moor.source.errors import AuthenticationFailed
from moor.source.helm import ChartRepositoryClient, ChartRepositoryError, IndexTooLarge
from moor.source.oci import DigestMismatch, RegistryCredentials

CREDENTIALS = RegistryCredentials("reader", "s3cret")
INDEX = b"apiVersion: v1\nentries: {}\n"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def written(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


class Server:
    def __init__(self, host: str, handler: Handler) -> None:
        self.host = host
        self.handler = handler
        self.authorizations: list[str | None] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.authorizations.append(request.headers.get("Authorization"))
        return await self.handler(request)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[str, Handler], Awaitable[Server]]]:
    runners: list[web.AppRunner] = []

    async def start(host: str, handler: Handler) -> Server:
        server = Server(host, handler)
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", server.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        server.url = f"http://{host}:{port}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_a_redirect_to_another_host_drops_the_credentials(
    serve: Callable[[str, Handler], Awaitable[Server]],
    tmp_path: Path,
) -> None:
    async def index(request: web.Request) -> web.Response:
        return web.Response(body=INDEX, headers={"ETag": '"v1"'})

    elsewhere = await serve("localhost", index)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{elsewhere.url}/mirror/index.yaml")

    origin = await serve("127.0.0.1", redirect)
    async with ChartRepositoryClient(origin.url, CREDENTIALS) as client:
        answer = await client.index(None, tmp_path / "index.yaml", 1024)

    assert answer.etag == '"v1"' and answer.revision == f"sha256:{hashlib.sha256(INDEX).hexdigest()}"
    assert written(tmp_path / "index.yaml") == INDEX
    assert origin.authorizations == [CREDENTIALS.basic_authorization()]
    assert elsewhere.authorizations == [None]


async def test_a_304_brings_no_body_and_refused_credentials_name_the_host(
    serve: Callable[[str, Handler], Awaitable[Server]],
    tmp_path: Path,
) -> None:
    async def conditional(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != CREDENTIALS.basic_authorization():
            return web.Response(status=401)
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.Response(body=INDEX, headers={"ETag": '"v1"'})

    server = await serve("127.0.0.1", conditional)
    async with ChartRepositoryClient(server.url, CREDENTIALS) as client:
        assert (await client.index('"v1"', tmp_path / "index.yaml", 1024)).revision is None
    assert not written(tmp_path / "index.yaml"), "a 304 writes nothing"
    async with ChartRepositoryClient(server.url, RegistryCredentials("reader", "wrong")) as client:
        with pytest.raises(AuthenticationFailed, match=rf"{server.url.removeprefix('http://')}.*'reader'"):
            await client.index(None, tmp_path / "index.yaml", 1024)


async def test_an_index_over_the_cap_is_refused_and_redirect_loops_end(
    serve: Callable[[str, Handler], Awaitable[Server]],
    tmp_path: Path,
) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"#" * 1024)
        return response

    big = await serve("127.0.0.1", huge)
    async with ChartRepositoryClient(big.url, None) as client:
        with pytest.raises(IndexTooLarge, match="16 KiB"):
            await client.index(None, tmp_path / "index.yaml", 16 * 1024)

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/again")

    looping = await serve("127.0.0.1", loop)
    async with ChartRepositoryClient(looping.url, None) as client:
        with pytest.raises(ChartRepositoryError, match="redirected more than"):
            await client.index(None, tmp_path / "index.yaml", 1024)


async def test_a_download_whose_digest_differs_leaves_no_file(
    serve: Callable[[str, Handler], Awaitable[Server]], tmp_path: Path
) -> None:
    async def chart(request: web.Request) -> web.Response:
        return web.Response(body=b"some bytes")

    server = await serve("127.0.0.1", chart)
    async with ChartRepositoryClient(server.url, None) as client:
        with pytest.raises(DigestMismatch, match="thrown away"):
            await client.download(client.chart_url("web-1.0.0.tgz"), tmp_path / "web.tgz", 1024, "sha256:" + "0" * 64)
        digest = await client.download(client.chart_url("web-1.0.0.tgz"), tmp_path / "ok.tgz", 1024, None)
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == [tmp_path / "ok.tgz"]
    assert digest.startswith("sha256:")


async def test_an_index_that_arrives_in_pieces_is_read_whole(
    serve: Callable[[str, Handler], Awaitable[Server]],
    tmp_path: Path,
) -> None:
    pieces = [b"# %03d\n" % number * 100 for number in range(20)]

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(0.01)
        return response

    server = await serve("127.0.0.1", trickle)
    async with ChartRepositoryClient(server.url, None) as client:
        answer = await client.index(None, tmp_path / "index.yaml", 1024 * 1024)
    assert answer.revision is not None and written(tmp_path / "index.yaml") == b"".join(pieces)


def test_chart_urls_resolve_against_the_repository_and_never_downgrade() -> None:
    client = ChartRepositoryClient("https://charts.example.com/stable", CREDENTIALS)
    assert str(client.chart_url("web-1.0.0.tgz")) == "https://charts.example.com/stable/web-1.0.0.tgz"
    assert str(client.chart_url("https://cdn.example.net/web.tgz")) == "https://cdn.example.net/web.tgz"
    for url in ("http://cdn.example.net/web.tgz", "file:///etc/passwd"):
        with pytest.raises(ChartRepositoryError, match="not https; refused"):
            client.chart_url(url)
    with pytest.raises(ChartRepositoryError, match=r"not http\(s\)"):
        ChartRepositoryClient("http://127.0.0.1:8879", None).chart_url("file:///etc/passwd")
