"""The one HTTP client to the Kubernetes API: TLS, auth, impersonation, errors, retries, and a count of requests.

Every request Moor sends goes through `KubeClient.request` or `KubeClient.stream`, so the request counts
by verb (used by metrics and benchmarks) are exact: each try counts. Every exception leaving this module
is a MoorError (cluster/errors.py): `_transport_errors` is the one boundary where aiohttp's and the
socket's exceptions, timeouts included, are translated.

Requests that are safe to repeat (reads, and server-side applies and their dry runs, which are
idempotent) are retried on 502-504, lost connections and timeouts, and every request on 429 (the server
refused it before doing anything), following `API_RETRY`: a few tries, short waits (a server's
Retry-After honoured up to the cap) so that a caller notices within seconds that the API server answers
again. Otherwise creates, updates, merge patches and deletes are sent once: their outcome is unknown
when the answer is lost. A 401 with a changing token (an exec plugin's, a token file's) fetches a fresh
token and tries once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from moor.cluster.config import Credentials
from moor.cluster.errors import (
    ApiError,
    ApiTimeout,
    ApiUnreachable,
    MalformedResponse,
    ServerError,
    TooManyRequests,
    Unauthorized,
)
from moor.retry import RetryPolicy
from moor.tls import client_tls_context

__all__ = [
    "API_RETRY",
    "APPLY_PATCH",
    "JSON",
    "MERGE_PATCH",
    "ApiError",
    "ApiTimeout",
    "ApiUnreachable",
    "Decode",
    "Impersonation",
    "KubeClient",
]

Decode = Callable[[bytes], Any]
"""Turns a response body (one JSON document) into Python objects."""

JSON = "application/json"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"

API_RETRY = RetryPolicy(attempts=4, first_delay=0.2, max_delay=3.0, jitter=0.5, budget=30.0)
"""At most 4 tries, waits of about 0.2, 0.4 and 0.8 s (a Retry-After up to 3 s), none begun after 30 s."""

TRANSIENT_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Impersonation:
    user: str
    groups: tuple[str, ...] = ()

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Impersonation:
        """The API server adds a ServiceAccount's groups itself, so only the user is impersonated."""
        return cls(user=f"system:serviceaccount:{namespace}:{name}")


class KubeClient:
    """Async client for one API server. `impersonating` gives a view sharing the same connections.

    Watches have a connection pool of their own, without a limit: each holds its connection for minutes,
    and with as many watched kinds as `max_connections` they would otherwise leave none for requests."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        max_connections: int = 32,
        request_timeout: float = 60.0,
        retry: RetryPolicy = API_RETRY,
        _session: aiohttp.ClientSession | None = None,
        _watch_session: aiohttp.ClientSession | None = None,
        _requests: Counter[str] | None = None,
        _impersonation: Impersonation | None = None,
    ) -> None:
        self.credentials = credentials
        self.requests: Counter[str] = _requests if _requests is not None else Counter()
        self.retry = retry
        self.request_timeout = request_timeout
        self._impersonation = _impersonation
        self._owns_session = _session is None or _watch_session is None
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        if _session is None or _watch_session is None:
            tls = _ssl_context(credentials)
            _session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=tls, limit=max_connections), json_serialize=json.dumps
            )
            _watch_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls, limit=0))
        self._session, self._watch_session = _session, _watch_session

    async def close(self) -> None:
        if self._owns_session:
            await self._session.close()
            await self._watch_session.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def impersonating(self, impersonation: Impersonation | None) -> KubeClient:
        if impersonation is None:
            return self
        return KubeClient(
            self.credentials,
            request_timeout=self.request_timeout,
            retry=self.retry,
            _session=self._session,
            _watch_session=self._watch_session,
            _requests=self.requests,
            _impersonation=impersonation,
        )

    @property
    def impersonation(self) -> Impersonation | None:
        return self._impersonation

    async def _headers(self, accept: str, content_type: str | None) -> list[tuple[str, str]]:
        headers = [("Accept", accept)]
        if content_type:
            headers.append(("Content-Type", content_type))
        token = await self.credentials.bearer_token()
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        if self._impersonation:
            headers.append(("Impersonate-User", self._impersonation.user))
            headers.extend(("Impersonate-Group", group) for group in self._impersonation.groups)
        return headers

    async def request(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = JSON,
        decode: Decode = json.loads,
    ) -> Any:
        """Sends one request, retried when safe, and returns the decoded JSON body; `verb` is counted per try."""
        data = None if body is None else json.dumps(body).encode()
        if data is not None and content_type is None:
            content_type = JSON
        repeatable = method in {"GET", "HEAD"} or content_type == APPLY_PATCH
        started = time.monotonic()
        fresh_token_tried = False
        attempt = 0
        while True:
            attempt += 1
            self.requests[verb] += 1
            try:
                return await self._send(verb, method, path, params, data, content_type, accept, decode)
            except Unauthorized:
                if fresh_token_tried or self.credentials.token_source is None:
                    raise
                self.credentials.token_source.expire()
                fresh_token_tried = True
            except (TooManyRequests, ServerError, ApiUnreachable) as error:
                if not _worth_another_try(error, repeatable):
                    raise
                retry_after = error.retry_after if isinstance(error, ApiError) else None
                wait = self.retry.next_delay(attempt, time.monotonic() - started, retry_after)
                if wait is None:
                    raise
                await asyncio.sleep(wait)

    async def _send(
        self,
        verb: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        data: bytes | None,
        content_type: str | None,
        accept: str,
        decode: Decode,
    ) -> Any:
        headers = await self._headers(accept, content_type)
        what = f"{verb} {path}"
        with self._transport_errors(what, self.request_timeout):
            async with self._session.request(
                method,
                self.credentials.server + path,
                params=params,
                data=data,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                payload = await response.read()
                status = response.status
                if status >= 400:
                    raise ApiError.from_response(status, payload, response.headers)
        if not payload:
            return None
        try:
            return decode(payload)
        except ValueError as error:
            raise MalformedResponse.of_body(status, what, error) from None

    async def stream(
        self, path: str, params: Mapping[str, str], decode: Decode = json.loads
    ) -> AsyncIterator[dict[str, Any]]:
        """Streams a watch: one decoded JSON event per line, until the server closes the stream.

        Opening it must take less than the request timeout; then the stream may stay quiet for as long as the
        server likes. Not retried here: the informer decides when, and from which resourceVersion, to watch again."""
        self.requests["watch"] += 1
        headers = await self._headers(JSON, None)
        what = f"watch {path}"
        with self._transport_errors(what, self.request_timeout):
            async with asyncio.timeout(self.request_timeout) as opening:  # lifted once the stream is open
                async with self._watch_session.get(
                    self.credentials.server + path,
                    params=params,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
                ) as response:
                    if response.status >= 400:
                        error = ApiError.from_response(response.status, await response.read(), response.headers)
                        if isinstance(error, Unauthorized) and self.credentials.token_source is not None:
                            self.credentials.token_source.expire()  # the informer's next watch gets a fresh token
                        raise error
                    opening.reschedule(None)
                    buffer = b""
                    async for chunk in response.content.iter_any():
                        buffer += chunk
                        *lines, buffer = buffer.split(b"\n")
                        for line in lines:
                            if line.strip():
                                yield _decoded(decode, line, response.status, what)

    @contextlib.contextmanager
    def _transport_errors(self, what: str, limit: float | None) -> Iterator[None]:
        """Translates every way the network can fail into ApiUnreachable (ApiTimeout when time ran out)."""
        server = self.credentials.server
        try:
            yield
        except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too (and asyncio.TimeoutError is one)
            raise ApiTimeout(f"{what}: no answer from the API server at {server} within {limit:g} s", limit) from None
        except (aiohttp.ClientError, OSError) as error:
            raise ApiUnreachable(f"{what}: cannot reach the API server at {server}: {_describe(error)}") from None


def _worth_another_try(error: Exception, repeatable: bool) -> bool:
    """Throttled: always (a 429 was refused before anything was done). A gateway or server briefly
    unavailable, or no answer: only when the request is safe to repeat."""
    if isinstance(error, TooManyRequests):
        return True
    if not repeatable:
        return False
    if isinstance(error, ApiError):
        return error.status in TRANSIENT_STATUSES
    return isinstance(error, ApiUnreachable)


def _decoded(decode: Decode, line: bytes, status: int, what: str) -> Any:
    try:
        return decode(line)
    except ValueError as error:
        raise MalformedResponse.of_body(status, what, error) from None


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _ssl_context(credentials: Credentials) -> ssl.SSLContext | bool:
    if not credentials.server.startswith("https"):
        return False
    ca_pem = None if credentials.insecure else credentials.ca_pem
    context = client_tls_context(ca_pem, credentials.client_cert_pem, credentials.client_key_pem)
    if credentials.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
