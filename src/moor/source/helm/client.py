"""The HTTP(S) client to a Helm chart repository: its index.yaml (with If-None-Match) and chart tarballs.

Credentials (Basic, sent up front as helm does) go only to the repository's own origin (scheme, host
and port): redirects are followed here, not by aiohttp, and a hop to another origin goes without
`Authorization`, as does a chart URL of the index that points at another host. A redirect from https
to plain http is refused. Reads are idempotent, so each is retried whole on 429, 5xx, lost connections
and timeouts (`CHART_RETRY`). Every exception leaving this module is a SourceError:
`_transport_errors` is the one boundary where aiohttp's and the socket's exceptions become ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp
from yarl import URL

from moor.retry import RetryPolicy, parse_retry_after
from moor.source.errors import AuthenticationFailed, InvalidSourceSpec, RepositoryNotFound
from moor.source.helm.errors import ChartRepositoryError, IndexTooLarge
from moor.source.limits import ArtifactTooLarge, format_size
from moor.source.oci.credentials import RegistryCredentials
from moor.source.oci.errors import (
    ArtifactNotFound,
    CertificateRejected,
    DigestMismatch,
    RegistryTimeout,
    RegistryUnreachable,
)
from moor.tls import client_tls_context

T = TypeVar("T")

CHART_RETRY = RetryPolicy(attempts=4, first_delay=0.5, max_delay=10.0, jitter=0.5, budget=60.0)
MAX_REDIRECTS = 5
INDEX_FILE = "index.yaml"
_CHUNK = 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class IndexAnswer:
    """What asking for index.yaml gave: `revision` (`sha256:<hex>` of the file written) None when the
    server said it has not changed (304), and the ETag to send next time."""

    revision: str | None
    etag: str | None


class ChartRepositoryClient:
    """`async with ChartRepositoryClient(url, credentials) as client:` one repository, one connection pool."""

    def __init__(
        self,
        url: str,
        credentials: RegistryCredentials | None,
        *,
        ca_pem: bytes | None = None,
        cert_pem: bytes | None = None,
        key_pem: bytes | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy = CHART_RETRY,
    ) -> None:
        self.base = URL(url.rstrip("/") + "/")
        self.retry = retry
        self._credentials = credentials
        self._timeout = timeout
        self._tls: ssl.SSLContext | bool = (
            _tls_context(ca_pem, cert_pem, key_pem) if self.base.scheme == "https" else False
        )
        self._session: aiohttp.ClientSession | None = None

    @property
    def host(self) -> str:
        return str(self.base.authority)

    async def __aenter__(self) -> ChartRepositoryClient:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._tls), trust_env=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def chart_url(self, url: str) -> URL:
        """A chart URL of the index, relative ones resolved against the repository's URL; refused when it
        is not http(s), or plain http from an https repository."""
        target = self.base.join(URL(url))
        if target.scheme not in ("http", "https") or (self.base.scheme == "https" and target.scheme != "https"):
            shown = _shown(target)
            allowed = "https" if self.base.scheme == "https" else "http(s)"
            raise ChartRepositoryError(
                f"the index of {self.base} names the chart URL {shown}, which is not {allowed}; refused", url=shown
            )
        return target

    async def index(self, etag: str | None, dest: Path, max_bytes: int) -> IndexAnswer:
        """index.yaml streamed into the new file `dest`, unless its ETag is still `etag` (then nothing is
        written); IndexTooLarge over `max_bytes`, before a body whose length says so is read."""
        url = self.base.join(URL(INDEX_FILE))
        headers = {"If-None-Match": etag} if etag else {}
        return await self._retrying(lambda: self._read_index(url, headers, dest, max_bytes))

    async def download(self, url: URL, dest: Path, max_size: int, digest: str | None) -> str:
        """Streams a chart into the new file `dest` and returns its `sha256:<hex>`, verified against
        `digest` when given; on any failure no file is left."""
        return await self._retrying(lambda: self._download(url, dest, max_size, digest))

    async def _read_index(self, url: URL, headers: dict[str, str], dest: Path, max_bytes: int) -> IndexAnswer:
        what = str(url)
        async with self._exchange(url, what, headers, not_found=RepositoryNotFound) as response:
            etag = response.headers.get("ETag")
            if response.status == 304:
                return IndexAnswer(None, etag)
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise _too_large(what, max_bytes)
            revision = await self._stream_to(response, dest, max_bytes, lambda: _too_large(what, max_bytes), what)
            return IndexAnswer(revision, etag)

    async def _download(self, url: URL, dest: Path, max_size: int, digest: str | None) -> str:
        what = _shown(url)

        def too_large() -> Exception:
            return ArtifactTooLarge(
                f"{what} is over {format_size(max_size)}, the limit (moor run --max-artifact-size)", url=what
            )

        async with self._exchange(url, what, {}, not_found=ArtifactNotFound) as response:
            return await self._stream_to(response, dest, max_size, too_large, what, digest)

    async def _stream_to(
        self,
        response: aiohttp.ClientResponse,
        dest: Path,
        cap: int,
        too_large: Callable[[], Exception],
        what: str,
        digest: str | None = None,
    ) -> str:
        """Writes the body into the new file `dest` (whole or not at all) and returns its `sha256:<hex>`,
        checked against `digest` when given; `too_large()` is raised once more than `cap` bytes came."""
        algorithm = hashlib.sha256()
        partial = Path(await asyncio.to_thread(_new_partial_file, dest))
        try:
            received = 0
            file = await asyncio.to_thread(partial.open, "wb")
            try:
                while True:
                    with self._transport_errors(what):
                        chunk = await response.content.read(_CHUNK)  # at most _CHUNK: what has arrived
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > cap:
                        raise too_large()
                    algorithm.update(chunk)
                    await asyncio.to_thread(file.write, chunk)
            finally:
                await asyncio.to_thread(file.close)
            actual = f"sha256:{algorithm.hexdigest()}"
            if digest is not None and actual != digest:
                raise DigestMismatch(
                    f"{what}: the chart's digest is {actual}, not {digest} as the index says; it was thrown away",
                    url=what,
                )
            await asyncio.to_thread(os.link, partial, dest)
            return actual
        finally:
            await asyncio.to_thread(partial.unlink, missing_ok=True)

    @contextlib.asynccontextmanager
    async def _exchange(
        self, url: URL, what: str, headers: dict[str, str], *, not_found: type[Exception]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One GET with credentials for the repository's own origin and redirects; yields a 2xx or 304."""
        session = self._open_session()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout)
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            own_origin = url.origin() == self.base.origin()
            if own_origin and self._credentials is not None:
                sent["Authorization"] = self._credentials.basic_authorization()
            with self._transport_errors(what):
                response = await session.get(url, headers=sent, allow_redirects=False, timeout=timeout)
            if response.status in _REDIRECTS:
                response.release()
                url = self._redirect_target(url, response, what)
                continue
            if response.status >= 400:
                response.release()
                raise self._error(response, url, own_origin, what, not_found)
            try:
                yield response
            finally:
                response.release()
            return
        raise ChartRepositoryError(f"{what}: the chart repository redirected more than {MAX_REDIRECTS} times")

    def _redirect_target(self, url: URL, response: aiohttp.ClientResponse, what: str) -> URL:
        location = response.headers.get("Location")
        if not location:
            raise ChartRepositoryError(f"{what}: {url.host} answered {response.status} without a Location", url=what)
        target = url.join(URL(location))
        if target.scheme not in ("http", "https"):
            raise ChartRepositoryError(f"{what}: {url.host} redirected to a {target.scheme!r} URL; refused", url=what)
        if url.scheme == "https" and target.scheme != "https":
            raise ChartRepositoryError(
                f"{what}: {url.host} redirected to plain http ({target.host}); refused", url=what
            )
        return target

    def _error(
        self, response: aiohttp.ClientResponse, url: URL, own_origin: bool, what: str, not_found: type[Exception]
    ) -> Exception:
        status = response.status
        if status in (401, 403) and own_origin:
            if self._credentials is None:
                return AuthenticationFailed(f"{what}: the chart repository {self.host} needs credentials", url=what)
            return AuthenticationFailed(
                f"{what}: the chart repository {self.host} refused the credentials of user "
                f"{self._credentials.username!r}",
                url=what,
            )
        if status == 404:
            return not_found(f"{what} does not exist (404 from {url.authority})")
        return ChartRepositoryError(
            f"{what}: {url.authority} answered {status}",
            url=what,
            status=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    async def _retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await operation()
            except (ChartRepositoryError, RegistryUnreachable) as error:
                if isinstance(error, CertificateRejected) or not _transient(error):
                    raise
                retry_after = error.retry_after if isinstance(error, ChartRepositoryError) else None
                wait = self.retry.next_delay(attempt, time.monotonic() - started, retry_after)
                if wait is None:
                    raise
                await asyncio.sleep(wait)

    @contextlib.contextmanager
    def _transport_errors(self, what: str) -> Iterator[None]:
        """Translates every way the network can fail into RegistryUnreachable (or a subclass)."""
        try:
            yield
        except TimeoutError:  # aiohttp's timeouts are TimeoutErrors too
            raise RegistryTimeout(
                f"{what}: no answer from the chart repository {self.host} within {self._timeout:g} s", url=what
            ) from None
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError, ssl.SSLError) as error:
            raise CertificateRejected(f"{what}: TLS with {self.host} failed: {_describe(error)}", url=what) from None
        except (aiohttp.ClientError, OSError) as error:
            raise RegistryUnreachable(
                f"{what}: cannot reach the chart repository {self.host}: {_describe(error)}", url=what
            ) from None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("ChartRepositoryClient is used outside `async with`")
        return self._session


def _shown(url: URL) -> str:
    """A URL fit for a message: without user and password."""
    return str(url.with_user(None)) if url.host else str(url)


def _transient(error: Exception) -> bool:
    if isinstance(error, RegistryUnreachable):
        return True
    status = error.status if isinstance(error, ChartRepositoryError) else None
    return status is not None and (status == 429 or status >= 500)


def _too_large(what: str, max_bytes: int) -> IndexTooLarge:
    return IndexTooLarge(
        f"{what} is larger than {format_size(max_bytes)}, the limit for a Helm repository index", url=what
    )


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _new_partial_file(dest: Path) -> str:
    if dest.exists():
        raise FileExistsError(f"{dest} exists: a download goes into a new file")
    descriptor, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    os.close(descriptor)
    return name


def _tls_context(ca_pem: bytes | None, cert_pem: bytes | None, key_pem: bytes | None) -> ssl.SSLContext:
    try:
        return client_tls_context(ca_pem, cert_pem, key_pem)
    except ssl.SSLError as error:
        raise InvalidSourceSpec(f"the chart repository's CA or client certificate is not valid PEM: {error}") from None
