"""The one HTTP client to OCI registries (the distribution spec's /v2/ API): auth, redirects, errors, retries.

Auth follows the registry's challenge: anonymous first, then Basic, or the Bearer token flow (the
`WWW-Authenticate: Bearer realm, service, scope` answer names a token service, asked with the
credentials in Basic; the token is kept per repository scope for the client's life). Credentials and
tokens are sent only to the registry's own origin (scheme, host and port) and to the token service
it names: a redirect to any other origin (a blob store, a CDN) goes without `Authorization`, and one
from https to plain http is refused (moor.source.http_transport, shared with the chart repository client).

Every registry operation is idempotent (content is addressed by digest, a tag is put whole), so each
is retried as a whole on 429, 5xx, lost connections and timeouts, following `REGISTRY_RETRY` (a
Retry-After honoured up to its cap). Every exception leaving this module is a SourceError.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from moor.retry import RetryPolicy, parse_retry_after
from moor.source.errors import AuthenticationFailed, InvalidSourceSpec, RepositoryNotFound
from moor.source.http_transport import HttpTransport
from moor.source.limits import ArtifactTooLarge, format_size
from moor.source.oci.credentials import RegistryCredentials
from moor.source.oci.errors import ArtifactNotFound, DigestMismatch, RegistryError
from moor.source.oci.headers import next_page, parse_challenge
from moor.source.oci.manifest import MANIFEST_TYPES, OCI_INDEX, referrers_tag, sha256_digest
from moor.source.oci.reference import SCHEME, check_digest
from moor.source.oci.token import IssuedToken, RegistryAuth, parse_token_answer

T = TypeVar("T")

REGISTRY_RETRY = RetryPolicy(attempts=4, first_delay=0.5, max_delay=10.0, jitter=0.5, budget=60.0)
"""At most 4 tries of an operation, waits of about 0.5, 1 and 2 s (a Retry-After up to 10 s), none begun after 60 s."""

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
"""A manifest or a page of tags is never this large (the distribution spec suggests 4 MiB for manifests)."""
MAX_TAG_PAGES = 1000
TAG_PAGE_SIZE = 1000
_ERROR_BODY_BYTES = 64 * 1024
_NO_REFERRERS_API = (400, 405, 406)
"""Besides 404: what registries that predate OCI 1.1 answer to `/v2/<name>/referrers/<digest>`."""


@dataclass(frozen=True)
class FetchedManifest:
    digest: str
    """Of the bytes received, checked against the digest asked for (when one was)."""
    media_type: str
    raw: bytes


@dataclass(frozen=True)
class TagPage:
    """One page of a repository's tags: `tags` None when the registry said it has not changed (304)."""

    url: str
    """The page as asked for (the key its ETag is remembered by)."""
    tags: list[str] | None
    etag: str | None


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: URL


class RegistryClient:
    """`async with RegistryClient("ghcr.io", credentials) as client:` one registry, one connection pool."""

    def __init__(
        self,
        registry: str,
        credentials: RegistryCredentials | None,
        *,
        ca_pem: bytes | None = None,
        cert_pem: bytes | None = None,
        key_pem: bytes | None = None,
        timeout: float = 60.0,
        insecure_http: bool = False,
        retry: RetryPolicy = REGISTRY_RETRY,
        auth: RegistryAuth | None = None,
    ) -> None:
        self.registry = registry
        self.retry = retry
        self._credentials = credentials
        self._insecure_http = insecure_http
        self._base = URL(f"{'http' if insecure_http else 'https'}://{registry}")
        self._transport = HttpTransport(
            self._base,
            "registry",
            registry,
            answered=RegistryError,
            timeout=timeout,
            ca_pem=ca_pem,
            cert_pem=cert_pem,
            key_pem=key_pem,
        )
        self._auth = auth if auth is not None else RegistryAuth()
        """Basic once the registry asked for it, tokens per scope until they expire (maybe from an earlier client)."""

    async def __aenter__(self) -> RegistryClient:
        self._transport.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._transport.close()

    async def tags(self, repository: str) -> list[str]:
        """Every tag of the repository, following the registry's `Link` pagination."""
        found: list[str] = []
        async for page in self.tag_pages(repository):
            found.extend(page.tags or ())
        return found

    async def tag_pages(
        self, repository: str, known: Mapping[str, str] | None = None, *, page_size: int = TAG_PAGE_SIZE
    ) -> AsyncIterator[TagPage]:
        """The repository's tags a page at a time (only one page's body in memory), following `Link`.

        `known` maps a page's URL to the ETag it was last answered with: that page is asked for with
        If-None-Match, and a registry that says it did not change yields it with `tags` None. A page
        must come from the registry itself: a redirect of the list to another host is refused.
        """
        what = self._name(repository)
        page: URL | None = self._url(f"/v2/{repository}/tags/list").with_query(n=str(page_size))
        for _ in range(MAX_TAG_PAGES):
            if page is None:
                return
            asked = str(page)
            etag = (known or {}).get(asked)
            conditional = {"If-None-Match": etag} if etag else None
            fetch = functools.partial(
                self._fetch, "GET", page, _pull(repository), what, accept="application/json", headers=conditional
            )
            answer = await self._retrying(fetch)
            if not self._transport.is_own_origin(answer.url):
                raise RegistryError(
                    f"{what}: the registry sent its list of tags to {answer.url.host}, another host; refused",
                    url=what,
                )
            unchanged = answer.status == 304
            yield TagPage(asked, None if unchanged else _tags_in(answer.body, what), answer.headers.get("ETag") or etag)
            link = next_page(answer.headers.get("Link"))
            page = self._base.join(URL(link)) if link else None
            if page is not None and not self._transport.is_own_origin(page):
                raise RegistryError(
                    f"{what}: the registry's next page of tags is on {page.host}, another host; refused", url=what
                )
        raise RegistryError(f"{what}: the registry's list of tags runs past {MAX_TAG_PAGES} pages")

    async def resolve(self, repository: str, tag_or_digest: str) -> FetchedManifest:
        """The manifest a tag or digest names, with its digest (verified when a digest was asked for)."""
        what = self._name(repository, tag_or_digest)
        url = self._url(f"/v2/{repository}/manifests/{tag_or_digest}")
        answer = await self._retrying(
            lambda: self._fetch("GET", url, _pull(repository), what, accept=", ".join(MANIFEST_TYPES))
        )
        expected = tag_or_digest if ":" in tag_or_digest else answer.headers.get("Docker-Content-Digest")
        digest = _verified_digest(answer.body, expected, what)
        media_type = answer.headers.get("Content-Type", "").partition(";")[0].strip()
        return FetchedManifest(digest=digest, media_type=media_type, raw=answer.body)

    async def referrers(self, repository: str, digest: str) -> FetchedManifest | None:
        """The image index of the manifests whose `subject` is `digest` (OCI 1.1), from the referrers API
        or, when the registry has no such API (it answers 404 there, as the distribution spec says, or 400,
        405 or 406 as some older registries do), from the fallback tag `<algorithm>-<hex>`; None when neither
        lists any. Only the first page of the referrers API is read."""
        what = self._name(repository, digest)
        check_digest(digest, what)
        url = self._url(f"/v2/{repository}/referrers/{digest}")
        try:
            answer = await self._retrying(lambda: self._fetch("GET", url, _pull(repository), what, accept=OCI_INDEX))
        except (ArtifactNotFound, RegistryError) as error:
            if isinstance(error, RegistryError) and error.status not in _NO_REFERRERS_API:
                raise
            try:
                return await self.resolve(repository, referrers_tag(digest))
            except ArtifactNotFound:
                return None
        media_type = answer.headers.get("Content-Type", "").partition(";")[0].strip()
        return FetchedManifest(digest=sha256_digest(answer.body), media_type=media_type, raw=answer.body)

    async def digest_of(self, repository: str, tag: str) -> str:
        """The digest of the manifest `tag` names, from a HEAD (the whole manifest when the registry does not say)."""
        what = self._name(repository, tag)
        url = self._url(f"/v2/{repository}/manifests/{tag}")
        answer = await self._retrying(
            lambda: self._fetch("HEAD", url, _pull(repository), what, accept=", ".join(MANIFEST_TYPES))
        )
        digest = answer.headers.get("Docker-Content-Digest", "")
        try:
            check_digest(digest, what)
        except InvalidSourceSpec:
            return (await self.resolve(repository, tag)).digest
        return digest

    async def blob_to(self, repository: str, digest: str, dest: Path, max_size: int) -> None:
        """Streams a blob into the new file `dest`, verifying its digest and size; on any failure no file is left."""
        what = self._name(repository, digest)
        check_digest(digest, what)
        await self._retrying(lambda: self._download(repository, digest, dest, max_size, what))

    async def push_blob(self, repository: str, data: bytes) -> str:
        """Uploads `data` (skipped when the registry has it already) and returns its digest."""
        digest = sha256_digest(data)
        what = self._name(repository, digest)
        await self._retrying(lambda: self._upload(repository, digest, data, what))
        return digest

    async def push_manifest(self, repository: str, tag: str, manifest: bytes, media_type: str) -> str:
        """Puts the manifest under `tag` and returns its digest."""
        what = self._name(repository, tag)
        url = self._url(f"/v2/{repository}/manifests/{tag}")
        await self._retrying(
            lambda: self._fetch(
                "PUT", url, _push(repository), what, data=manifest, headers={"Content-Type": media_type}
            )
        )
        return sha256_digest(manifest)

    async def _download(self, repository: str, digest: str, dest: Path, max_size: int, what: str) -> None:
        url = self._url(f"/v2/{repository}/blobs/{digest}")

        def too_large() -> Exception:
            return ArtifactTooLarge(
                f"{what} is too large: it is over {format_size(max_size)}, the limit (moor run --max-artifact-size)"
            )

        def mismatch(actual: str) -> Exception:
            return DigestMismatch(
                f"{what}: the registry sent content whose digest is {actual}, not the one asked for; it was "
                "thrown away",
                url=what,
            )

        async with self._exchange("GET", url, _pull(repository), what, streaming=True) as response:
            await self._transport.stream_to(
                response,
                dest,
                cap=max_size,
                too_large=too_large,
                expected=digest,
                mismatch=mismatch,
                what=what,
                algorithm=digest.partition(":")[0],
            )

    async def _upload(self, repository: str, digest: str, data: bytes, what: str) -> None:
        scope = _push(repository)
        try:
            await self._fetch("HEAD", self._url(f"/v2/{repository}/blobs/{digest}"), scope, what)
            return
        except ArtifactNotFound:
            pass
        started = await self._fetch("POST", self._url(f"/v2/{repository}/blobs/uploads/"), scope, what)
        location = started.headers.get("Location")
        if not location:
            raise RegistryError(f"{what}: the registry began an upload but named no Location for it")
        target = self._base.join(URL(location)).update_query(digest=digest)
        headers = {"Content-Type": "application/octet-stream"}
        await self._fetch("PUT", target, scope, what, data=data, headers=headers)

    async def _fetch(
        self,
        method: str,
        url: URL,
        scope: str,
        what: str,
        *,
        accept: str | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Answer:
        """One exchange whose answer body (at most MAX_MANIFEST_BYTES) is read whole."""
        sent = dict(headers or {})
        if accept:
            sent["Accept"] = accept
        async with self._exchange(method, url, scope, what, data=data, headers=sent) as response:
            body = await self._transport.read_capped(response, MAX_MANIFEST_BYTES, what)
            return _Answer(response.status, response.headers, body, response.url)

    @contextlib.asynccontextmanager
    async def _exchange(
        self,
        method: str,
        url: URL,
        scope: str,
        what: str,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        streaming: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request with auth and redirects; yields the final answer once it is a success."""
        for authorized in (False, True):
            challenge: str | None = None
            async with self._transport.exchange(
                method,
                url,
                what,
                authorization=self._authorization(scope),
                headers=headers,
                data=data,
                streaming=streaming,
            ) as response:
                own_origin = self._transport.is_own_origin(response.url)
                if response.status == 401 and own_origin and not authorized:
                    challenge = response.headers.get("WWW-Authenticate")
                elif response.status >= 400 and not own_origin:
                    raise RegistryError(
                        f"{what}: {response.url.host}, where the registry sent the download, answered "
                        f"{response.status}",
                        url=what,
                        status=response.status,
                    )
                elif response.status >= 400:
                    with self._transport.errors(what):
                        body = await response.content.read(_ERROR_BODY_BYTES)
                    raise self._error(response.status, body, response.headers, what)
                else:
                    yield response
                    return
            await self._authorize(scope, challenge, what)

    def _authorization(self, scope: str) -> str | None:
        return self._auth.authorization(scope)

    async def _authorize(self, scope: str, header: str | None, what: str) -> None:
        """Answers the registry's challenge: remembers Basic, or fetches a Bearer token for the scope."""
        challenge = parse_challenge(header)
        if challenge is None:
            raise AuthenticationFailed(f"{what}: the registry {self.registry} refused the request without a challenge")
        if challenge.scheme == "basic":
            if self._credentials is None:
                raise AuthenticationFailed(f"{what}: the registry {self.registry} needs credentials and none are given")
            if self._auth.basic is not None:
                raise self._refused(what)
            self._auth.basic = self._credentials.basic_authorization()
            return
        if challenge.scheme != "bearer" or not challenge.params.get("realm"):
            raise AuthenticationFailed(
                f"{what}: the registry {self.registry} asks for {challenge.scheme} authentication, "
                "which Moor does not speak"
            )
        params = challenge.params
        issued = await self._token(URL(params["realm"]), params.get("service"), params.get("scope") or scope, what)
        self._auth.remember_token(scope, issued.token, issued.expires_in)

    async def _token(self, realm: URL, service: str | None, scope: str, what: str) -> IssuedToken:
        if realm.scheme != "https" and not (realm.scheme == "http" and self._insecure_http):
            raise AuthenticationFailed(f"{what}: the registry {self.registry} names a token service that is not https")
        query = {"scope": scope, **({"service": service} if service else {})}
        headers = {"Accept": "application/json"}
        if self._credentials is not None:
            headers["Authorization"] = self._credentials.basic_authorization()
        with self._transport.errors(what):
            async with self._transport.session.get(
                realm.update_query(query),
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._transport.timeout),
            ) as response:
                body = await response.content.read(MAX_MANIFEST_BYTES)
                status = response.status
        if status in (401, 403):
            raise self._refused(what, by=f"the token service {realm.host}")
        if status >= 300:
            raise RegistryError(f"{what}: the token service {realm.host} answered {status}", url=what, status=status)
        issued = parse_token_answer(body)
        if issued is None:
            raise RegistryError(f"{what}: the token service {realm.host} answered without a token")
        return issued

    def _refused(self, what: str, by: str | None = None) -> AuthenticationFailed:
        refuser = by or f"the registry {self.registry}"
        if self._credentials is None:
            return AuthenticationFailed(f"{what}: {refuser} needs credentials and none are given", url=what)
        return AuthenticationFailed(
            f"{what}: {refuser} refused the credentials of user {self._credentials.username!r}", url=what
        )

    def _error(self, status: int, body: bytes, headers: Mapping[str, str], what: str) -> Exception:
        """The error for a failed answer, from its status and the registry's error codes."""
        codes, said = _registry_errors(body)
        quoted = f" (the registry says: {said})" if said else ""
        if status == 401:
            return self._refused(what)
        if status == 403:
            return AuthenticationFailed(f"{what}: the registry {self.registry} denies access{quoted}", url=what)
        if status == 404 and "NAME_UNKNOWN" in codes:
            return RepositoryNotFound(f"{what}: the repository does not exist{quoted}", url=what)
        if status == 404:
            return ArtifactNotFound(f"{what} does not exist{quoted}", url=what)
        return RegistryError(
            f"{what}: the registry answered {status}{quoted}",
            url=what,
            status=status,
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )

    async def _retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await self._transport.retrying(self.retry, operation)

    def _url(self, path: str) -> URL:
        return self._base.with_path(path, encoded=False)

    def _name(self, repository: str, ref: str | None = None) -> str:
        separator = "@" if ref and ":" in ref else ":"
        return f"{SCHEME}{self.registry}/{repository}" + (f"{separator}{ref}" if ref else "")


def _pull(repository: str) -> str:
    return f"repository:{repository}:pull"


def _push(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _verified_digest(raw: bytes, expected: str | None, what: str) -> str:
    """The digest of a manifest's bytes; refused when it is not the one asked for (or the registry announced)."""
    if expected and expected.partition(":")[0] == "sha512":
        actual = "sha512:" + hashlib.sha512(raw).hexdigest()
    else:
        actual = sha256_digest(raw)
    if expected and expected.partition(":")[0] in ("sha256", "sha512") and actual != expected:
        raise DigestMismatch(f"{what}: the registry sent a manifest whose digest is {actual}, not {expected}", url=what)
    return actual


def _tags_in(body: bytes, what: str) -> list[str]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(f"{what}: the list of tags is not JSON") from None
    tags = document.get("tags") if isinstance(document, dict) else None
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise RegistryError(f"{what}: the list of tags is not a list of strings")
    return tags


def _registry_errors(body: bytes) -> tuple[set[str], str]:
    """The codes and first message of the spec's error body `{"errors": [{"code", "message"}]}`."""
    try:
        document: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return set(), ""
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return set(), ""
    codes = {str(e.get("code")) for e in errors if isinstance(e, dict) and e.get("code")}
    messages = [f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict)]
    return codes, (messages[0][:200] if messages else "")
