"""The HTTP plumbing an OCI registry client and a Helm chart repository client share: one origin, one pool.

Guarantees, whatever the protocol above it:
- `Authorization` goes only to the peer's own origin (scheme, host and port): redirects are followed
  here, not by aiohttp, and a hop to any other origin goes without it;
- a redirect from https to plain http, or to a scheme other than http(s), is refused;
- every exception leaving it is a SourceError: `errors` is the one boundary where aiohttp's and the
  socket's exceptions become RegistryUnreachable (or its Timeout and CertificateRejected kinds);
- a body is read only up to a cap, and a download goes into a new file, whole and verified or not at all;
- an idempotent operation is retried whole on 429, 5xx, lost connections and timeouts (`retrying`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import aiohttp
from yarl import URL

from moor.retry import RetryPolicy
from moor.source.errors import (
    AnsweredWithError,
    CertificateRejected,
    InvalidSourceSpec,
    RegistryTimeout,
    RegistryUnreachable,
)
from moor.source.limits import format_size
from moor.tls import client_tls_context

T = TypeVar("T")

MAX_REDIRECTS = 5
_CHUNK = 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class HttpTransport:
    """Requests to one peer (`kind` "registry" or "chart repository", at `origin`) over one connection pool."""

    def __init__(
        self,
        origin: URL,
        kind: str,
        host: str,
        *,
        answered: type[AnsweredWithError],
        timeout: float,
        ca_pem: bytes | None = None,
        cert_pem: bytes | None = None,
        key_pem: bytes | None = None,
    ) -> None:
        self.origin = origin.origin()
        self.peer = f"the {kind} {host}"
        """For messages: `the registry ghcr.io`."""
        self.timeout = timeout
        self._kind = kind
        self._answered = answered
        """The error for what the peer answered: its status and Retry-After decide whether to try again."""
        self._tls: ssl.SSLContext | bool = (
            _tls_context(ca_pem, cert_pem, key_pem, kind) if self.origin.scheme == "https" else False
        )
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._tls), trust_env=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"the {self._kind} client is used outside `async with`")
        return self._session

    def is_own_origin(self, url: URL) -> bool:
        return url.origin() == self.origin

    @contextlib.asynccontextmanager
    async def exchange(
        self,
        method: str,
        url: URL,
        what: str,
        *,
        authorization: str | None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        streaming: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request, its redirects followed (`authorization` only to the own origin); yields the answer
        that is not a redirect, whatever its status, and releases it afterwards. `streaming` bounds each read
        instead of the whole exchange."""
        timeout = (
            aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout)
            if streaming
            else aiohttp.ClientTimeout(total=self.timeout)
        )
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers or {})
            if authorization and self.is_own_origin(url):
                sent["Authorization"] = authorization
            with self.errors(what):
                response = await self.session.request(
                    method, url, data=data, headers=sent, allow_redirects=False, timeout=timeout
                )
            if response.status in _REDIRECTS:
                response.release()
                url = self._redirect_target(url, response, what)
                if response.status == 303:
                    method, data = "GET", None
                continue
            try:
                yield response
            finally:
                response.release()
            return
        raise self._answered(f"{what}: the {self._kind} redirected more than {MAX_REDIRECTS} times", url=what)

    async def read_capped(self, response: aiohttp.ClientResponse, cap: int, what: str) -> bytes:
        """The whole body (a read returns what has arrived, so read to the end), refused past `cap`."""
        body = bytearray()
        with self.errors(what):
            while chunk := await response.content.read(cap + 1 - len(body)):
                body += chunk
                if len(body) > cap:
                    raise self._answered(
                        f"{what}: the {self._kind}'s answer is larger than {format_size(cap)}; refused", url=what
                    )
        return bytes(body)

    async def stream_to(
        self,
        response: aiohttp.ClientResponse,
        dest: Path,
        *,
        cap: int,
        too_large: Callable[[], Exception],
        expected: str | None,
        mismatch: Callable[[str], Exception],
        what: str,
        algorithm: str = "sha256",
    ) -> str:
        """Writes the body into the new file `dest`, whole or not at all, and returns its `<algorithm>:<hex>`;
        `too_large()` once more than `cap` bytes came, `mismatch(actual)` when it is not `expected`."""
        hashed = hashlib.new(algorithm)
        partial = Path(await asyncio.to_thread(_new_partial_file, dest))
        try:
            received = 0
            file = await asyncio.to_thread(partial.open, "wb")
            try:
                while True:
                    with self.errors(what):
                        chunk = await response.content.read(_CHUNK)  # at most _CHUNK: what has arrived
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > cap:
                        raise too_large()
                    hashed.update(chunk)
                    await asyncio.to_thread(file.write, chunk)
            finally:
                await asyncio.to_thread(file.close)
            actual = f"{algorithm}:{hashed.hexdigest()}"
            if expected is not None and actual != expected:
                raise mismatch(actual)
            await asyncio.to_thread(os.link, partial, dest)
            return actual
        finally:
            await asyncio.to_thread(partial.unlink, missing_ok=True)

    async def retrying(self, policy: RetryPolicy, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation` again while it fails transiently and `policy` allows (a Retry-After honoured)."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await operation()
            except (self._answered, RegistryUnreachable) as error:
                if not _transient(error):
                    raise
                retry_after = None if isinstance(error, RegistryUnreachable) else error.retry_after
                wait = policy.next_delay(attempt, time.monotonic() - started, retry_after)
                if wait is None:
                    raise
                await asyncio.sleep(wait)

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Translates every way the network can fail into RegistryUnreachable (or a subclass)."""
        try:
            yield
        except TimeoutError:  # aiohttp's timeouts are TimeoutErrors too
            raise RegistryTimeout(f"{what}: no answer from {self.peer} within {self.timeout:g} s", url=what) from None
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError, ssl.SSLError) as error:
            raise CertificateRejected(f"{what}: TLS with {self.peer} failed: {_describe(error)}", url=what) from None
        except (aiohttp.ClientError, OSError) as error:
            raise RegistryUnreachable(f"{what}: cannot reach {self.peer}: {_describe(error)}", url=what) from None

    def _redirect_target(self, url: URL, response: aiohttp.ClientResponse, what: str) -> URL:
        location = response.headers.get("Location")
        if not location:
            raise self._answered(f"{what}: {url.host} answered {response.status} without a Location", url=what)
        target = url.join(URL(location))
        if target.scheme not in ("http", "https"):
            raise self._answered(f"{what}: {url.host} redirected to a {target.scheme!r} URL; refused", url=what)
        if url.scheme == "https" and target.scheme != "https":
            raise self._answered(f"{what}: {url.host} redirected to plain http ({target.host}); refused", url=what)
        return target


def _transient(error: AnsweredWithError | RegistryUnreachable) -> bool:
    if isinstance(error, CertificateRejected):
        return False
    if isinstance(error, RegistryUnreachable):
        return True
    return error.status is not None and (error.status == 429 or error.status >= 500)


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _new_partial_file(dest: Path) -> str:
    """An empty private file beside `dest`, to download into before its content is known to be right."""
    if dest.exists():
        raise FileExistsError(f"{dest} exists: a download goes into a new file")
    descriptor, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    os.close(descriptor)
    return name


def _tls_context(ca_pem: bytes | None, cert_pem: bytes | None, key_pem: bytes | None, kind: str) -> ssl.SSLContext:
    try:
        return client_tls_context(ca_pem, cert_pem, key_pem)
    except ssl.SSLError as error:
        raise InvalidSourceSpec(f"the {kind}'s CA or client certificate is not valid PEM: {error}") from None
