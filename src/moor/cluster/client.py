"""The one HTTP client to the Kubernetes API: TLS, auth, impersonation, errors, and a count of requests.

Every request Moor sends goes through `KubeClient.request`, so the request counts by verb (used by
metrics and benchmarks) are exact.
"""

from __future__ import annotations

import json
import os
import ssl
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from moor.cluster.config import Credentials
from moor.errors import MoorError

Decode = Callable[[bytes], Any]
"""Turns a response body (one JSON document) into Python objects."""

JSON = "application/json"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"


class ApiError(MoorError):
    """A request the API server answered with an error status."""

    def __init__(self, status: int, reason: str, message: str, causes: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.causes = list(causes)

    @classmethod
    def from_response(cls, status: int, body: bytes) -> ApiError:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and document.get("kind") == "Status":
            details = document.get("details") or {}
            return cls(
                status, str(document.get("reason", "")), str(document.get("message", "")), details.get("causes") or ()
            )
        text = body.decode(errors="replace").strip()[:300]
        return cls(status, "", f"the API server answered {status}: {text}")

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410


class ApiUnreachable(MoorError):
    pass


@dataclass(frozen=True)
class Impersonation:
    user: str
    groups: tuple[str, ...] = ()

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Impersonation:
        """The API server adds a ServiceAccount's groups itself, so only the user is impersonated."""
        return cls(user=f"system:serviceaccount:{namespace}:{name}")


class KubeClient:
    """Async client for one API server. `impersonating` gives a view sharing the same connections."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        max_connections: int = 32,
        request_timeout: float = 60.0,
        _session: aiohttp.ClientSession | None = None,
        _requests: Counter[str] | None = None,
        _impersonation: Impersonation | None = None,
    ) -> None:
        self.credentials = credentials
        self.requests: Counter[str] = _requests if _requests is not None else Counter()
        self._impersonation = _impersonation
        self._owns_session = _session is None
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session = _session or aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=_ssl_context(credentials), limit=max_connections),
            json_serialize=json.dumps,
        )

    async def close(self) -> None:
        if self._owns_session:
            await self._session.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def impersonating(self, impersonation: Impersonation | None) -> KubeClient:
        if impersonation is None:
            return self
        return KubeClient(
            self.credentials,
            _session=self._session,
            _requests=self.requests,
            _impersonation=impersonation,
        )

    @property
    def impersonation(self) -> Impersonation | None:
        return self._impersonation

    def _headers(self, accept: str, content_type: str | None) -> list[tuple[str, str]]:
        headers = [("Accept", accept)]
        if content_type:
            headers.append(("Content-Type", content_type))
        token = self.credentials.bearer_token()
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
        """Sends one request and returns the decoded JSON body; `verb` is the Kubernetes verb counted."""
        self.requests[verb] += 1
        data = None if body is None else json.dumps(body).encode()
        if data is not None and content_type is None:
            content_type = JSON
        try:
            async with self._session.request(
                method,
                self.credentials.server + path,
                params=params,
                data=data,
                headers=self._headers(accept, content_type),
                timeout=self._timeout,
            ) as response:
                payload = await response.read()
                if response.status >= 400:
                    raise ApiError.from_response(response.status, payload)
                return decode(payload) if payload else None
        except aiohttp.ClientError as error:
            raise ApiUnreachable(f"cannot reach the API server at {self.credentials.server}: {error}") from None

    async def stream(
        self, path: str, params: Mapping[str, str], decode: Decode = json.loads
    ) -> AsyncIterator[dict[str, Any]]:
        """Streams a watch: one decoded JSON event per line, until the server closes the stream."""
        self.requests["watch"] += 1
        try:
            async with self._session.get(
                self.credentials.server + path,
                params=params,
                headers=self._headers(JSON, None),
                timeout=aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=30),
            ) as response:
                if response.status >= 400:
                    raise ApiError.from_response(response.status, await response.read())
                buffer = b""
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield decode(line)
        except aiohttp.ClientError as error:
            raise ApiUnreachable(f"watch of {path} on {self.credentials.server} broke: {error}") from None


def _ssl_context(credentials: Credentials) -> ssl.SSLContext | bool:
    if not credentials.server.startswith("https"):
        return False
    context = ssl.create_default_context()
    if credentials.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif credentials.ca_pem:
        context.load_verify_locations(cadata=credentials.ca_pem.decode())
    if credentials.client_cert_pem and credentials.client_key_pem:
        _load_client_certificate(context, credentials.client_cert_pem, credentials.client_key_pem)
    return context


def _load_client_certificate(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """ssl only loads key pairs from files: write them to a private directory and remove it at once."""
    with tempfile.TemporaryDirectory(prefix="moor-tls-") as private:
        cert_path, key_path = Path(private) / "tls.crt", Path(private) / "tls.key"
        for path, content in ((cert_path, cert_pem), (key_path, key_pem)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(content)
        context.load_cert_chain(cert_path, key_path)
