"""The HTTP(S) client to a Helm chart repository: its index.yaml (with If-None-Match) and chart tarballs.

Credentials (Basic, sent up front as helm does) go only to the repository's own origin (scheme, host
and port): a redirect to another origin goes without `Authorization`, as does a chart URL of the index
that points at another host, and a redirect from https to plain http is refused (moor.source.http_transport,
shared with the registry client). Reads are idempotent, so each is retried whole on 429, 5xx, lost
connections and timeouts (`CHART_RETRY`). Every exception leaving this module is a SourceError.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from moor.retry import RetryPolicy, parse_retry_after
from moor.source.errors import AuthenticationFailed, RepositoryNotFound
from moor.source.helm.errors import ChartRepositoryError
from moor.source.helm.index import index_too_large
from moor.source.http_transport import HttpTransport
from moor.source.limits import ArtifactTooLarge, format_size
from moor.source.oci.credentials import RegistryCredentials
from moor.source.oci.errors import ArtifactNotFound, DigestMismatch

CHART_RETRY = RetryPolicy(attempts=4, first_delay=0.5, max_delay=10.0, jitter=0.5, budget=60.0)
INDEX_FILE = "index.yaml"


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
        self._transport = HttpTransport(
            self.base,
            "chart repository",
            self.host,
            answered=ChartRepositoryError,
            timeout=timeout,
            ca_pem=ca_pem,
            cert_pem=cert_pem,
            key_pem=key_pem,
        )

    @property
    def host(self) -> str:
        return str(self.base.authority)

    async def __aenter__(self) -> ChartRepositoryClient:
        self._transport.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._transport.close()

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
        return await self._transport.retrying(self.retry, lambda: self._read_index(url, headers, dest, max_bytes))

    async def download(self, url: URL, dest: Path, max_size: int, digest: str | None) -> str:
        """Streams a chart into the new file `dest` and returns its `sha256:<hex>`, verified against
        `digest` when given; on any failure no file is left."""
        return await self._transport.retrying(self.retry, lambda: self._download(url, dest, max_size, digest))

    async def _read_index(self, url: URL, headers: dict[str, str], dest: Path, max_bytes: int) -> IndexAnswer:
        what = str(url)
        async with self._exchange(url, what, headers, not_found=RepositoryNotFound) as response:
            etag = response.headers.get("ETag")
            if response.status == 304:
                return IndexAnswer(None, etag)
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise index_too_large(what, max_bytes)
            revision = await self._stream_to(response, dest, max_bytes, lambda: index_too_large(what, max_bytes), what)
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
        def mismatch(actual: str) -> Exception:
            return DigestMismatch(
                f"{what}: the chart's digest is {actual}, not {digest} as the index says; it was thrown away", url=what
            )

        return await self._transport.stream_to(
            response, dest, cap=cap, too_large=too_large, expected=digest, mismatch=mismatch, what=what
        )

    @contextlib.asynccontextmanager
    async def _exchange(
        self, url: URL, what: str, headers: dict[str, str], *, not_found: type[Exception]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One GET with credentials for the repository's own origin and redirects; yields a 2xx or 304."""
        authorization = self._credentials.basic_authorization() if self._credentials is not None else None
        async with self._transport.exchange(
            "GET", url, what, authorization=authorization, headers=headers, streaming=True
        ) as response:
            if response.status >= 400:
                raise self._error(response, what, not_found)
            yield response

    def _error(self, response: aiohttp.ClientResponse, what: str, not_found: type[Exception]) -> Exception:
        status, url = response.status, response.url
        if status in (401, 403) and self._transport.is_own_origin(url):
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


def _shown(url: URL) -> str:
    """A URL fit for a message: without user and password."""
    return str(url.with_user(None)) if url.host else str(url)
