"""Push webhooks: a Git host says "I was pushed to", Moor reconciles the GitRepositories that follow it.

The first half of this module is pure (headers and bytes in, values out): which host sent the
request, whether its signature is right, what was pushed, and which GitRepositories that concerns.
The second half is the aiohttp application around it, the only part that reads the Secret, lists
GitRepositories and sets `moor.dev/reconcile` on them.

A request is checked in this order, and the first failure answers it: method (405), rate per
client address (429), body size (413), signature or token (401), payload (400).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from aiohttp import web

from moor.cluster.api import KubeApi
from moor.cluster.client import ApiError
from moor.errors import MoorError
from moor.objects import RECONCILE_ANNOTATION, KubeObject, ObjectRef
from moor.resources import API_VERSION, GITREPOSITORY
from moor.source.urls import redact_url
from moor.web.listener import Listener, ListenerLimits, ListenerMetrics, serve_app
from moor.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

HOOK_PATH = "/hook"
MAX_BODY = 1024 * 1024
DEFAULT_SECRET_NAME = "moor-webhook"
DEFAULT_SECRET_KEY = "token"

GITHUB_EVENT = "X-GitHub-Event"
GITHUB_SIGNATURE = "X-Hub-Signature-256"
GITLAB_EVENT = "X-Gitlab-Event"
GITLAB_TOKEN = "X-Gitlab-Token"
MOOR_SIGNATURE = "X-Moor-Signature-256"

Provider = Literal["github", "gitlab", "generic"]

_GITHUB_URL_FIELDS = ("clone_url", "ssh_url", "html_url", "git_url", "url")
_GITLAB_PROJECT_URL_FIELDS = ("git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url")
_GITLAB_REPOSITORY_URL_FIELDS = ("git_http_url", "git_ssh_url", "homepage", "url")
_GITLAB_PUSH_EVENTS = ("push hook", "tag push hook")


# -- errors: each carries the HTTP status it is answered with -----------------------------------------


class WebhookError(MoorError):
    """A request the receiver refuses; the message is one sentence, safe to send back."""

    status = 400


class Unauthorized(WebhookError):
    status = 401


class PayloadTooLarge(WebhookError):
    status = 413


class MalformedPayload(WebhookError):
    status = 400


class RequestTimeout(WebhookError):
    status = 408


class ReceiverUnavailable(WebhookError):
    """The receiver cannot judge requests now (no Secret, no cluster); the details go to the log only."""

    status = 503


# -- values ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushEvent:
    """A push to one repository, known by every URL the host gave for it."""

    provider: Provider
    repository_urls: tuple[str, ...]
    ref: str | None
    """The pushed ref (`refs/heads/main`, `refs/tags/v1.2.0`); None when the sender named none (any ref)."""


@dataclass(frozen=True)
class OtherEvent:
    """A delivery that is not a push (GitHub's `ping`, an issue comment…): answered, never acted on."""

    provider: Provider
    event: str


@dataclass(frozen=True)
class SecretRef:
    """The Secret whose key holds the shared token (HMAC key for signatures, or GitLab's token)."""

    namespace: str
    name: str
    key: str = DEFAULT_SECRET_KEY

    @classmethod
    def parse(cls, text: str, default_namespace: str) -> SecretRef:
        """`NAMESPACE/NAME` or `NAME` (in `default_namespace`); ValueError for anything else."""
        namespace, _, name = text.strip().rpartition("/")
        namespace = namespace or default_namespace
        for part in (namespace, name):
            if not _DNS_NAME.fullmatch(part):
                raise ValueError(f"{text!r} is not NAMESPACE/NAME or NAME of a Secret")
        return cls(namespace, name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


# -- pure: which host, is it signed, what was pushed -----------------------------------------------


def detect_provider(headers: Mapping[str, str]) -> Provider:
    """GitHub and GitLab are known by their event header; everything else is the generic form."""
    lowered = _lower_keys(headers)
    if GITHUB_EVENT.lower() in lowered:
        return "github"
    if GITLAB_EVENT.lower() in lowered:
        return "gitlab"
    return "generic"


def sign(body: bytes, secret: bytes) -> str:
    """The signature header value for `body`: `sha256=<hex HMAC-SHA256>` (GitHub's and Moor's form)."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(headers: Mapping[str, str], body: bytes, secret: bytes) -> Provider:
    """Checks the sender knows `secret`: an HMAC of the raw body, or GitLab's token; raises Unauthorized.

    Comparisons take constant time. Returns the provider the headers name.
    """
    if not secret:
        raise Unauthorized("the receiver has no token to check requests against")
    lowered = _lower_keys(headers)
    provider = detect_provider(lowered)
    if provider == "gitlab":
        token = lowered.get(GITLAB_TOKEN.lower())
        if token is None:
            raise Unauthorized(f"the request carries no {GITLAB_TOKEN} header")
        if not hmac.compare_digest(_as_bytes(token.strip()), secret):
            raise Unauthorized(f"the {GITLAB_TOKEN} header does not match the receiver's token")
        return provider
    header = GITHUB_SIGNATURE if provider == "github" else MOOR_SIGNATURE
    given = lowered.get(header.lower())
    if given is None:
        raise Unauthorized(f"the request carries no {header} header")
    scheme, separator, digest = given.strip().partition("=")
    if not separator or scheme.lower() != "sha256":
        raise Unauthorized(f"the {header} header is not of the form sha256=<hex digest>")
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(_as_bytes(digest.strip().lower()), expected.encode()):
        raise Unauthorized(f"the {header} header does not match the body signed with the receiver's token")
    return provider


def parse_push(headers: Mapping[str, str], body: bytes) -> PushEvent | OtherEvent:
    """What a delivery says: a push (repository URLs and ref) or another event; raises MalformedPayload."""
    lowered = _lower_keys(headers)
    provider = detect_provider(lowered)
    if provider == "github":
        event = lowered[GITHUB_EVENT.lower()].strip().lower()
        if event != "push":
            return OtherEvent(provider, event)
        return _github_push(_github_document(lowered, body))
    if provider == "gitlab":
        event = lowered[GITLAB_EVENT.lower()].strip()
        if event.lower() not in _GITLAB_PUSH_EVENTS:
            return OtherEvent(provider, event)
        return _gitlab_push(_json_object(body))
    return _generic_push(_json_object(body))


def _github_document(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """GitHub sends JSON, or (when so configured) a form whose field `payload` holds the JSON.

    A form-typed body without that field is read as JSON: that is what `curl --data` sends.
    """
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded" and body.startswith(b"payload="):
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            raise MalformedPayload("the form body is not valid UTF-8 url-encoded text") from None
        return _json_object(form["payload"][0].encode("utf-8"))
    return _json_object(body)


def _github_push(document: Mapping[str, Any]) -> PushEvent:
    ref = _required_ref(document)
    repository = document.get("repository")
    if not isinstance(repository, Mapping):
        raise MalformedPayload("the push payload has no repository object")
    urls = _strings(repository, _GITHUB_URL_FIELDS)
    if not urls:
        raise MalformedPayload("the push payload's repository has no clone_url, ssh_url or html_url")
    return PushEvent("github", urls, ref)


def _gitlab_push(document: Mapping[str, Any]) -> PushEvent:
    ref = _required_ref(document)
    urls: tuple[str, ...] = ()
    for key, fields in (("project", _GITLAB_PROJECT_URL_FIELDS), ("repository", _GITLAB_REPOSITORY_URL_FIELDS)):
        section = document.get(key)
        if isinstance(section, Mapping):
            urls += tuple(url for url in _strings(section, fields) if url not in urls)
    if not urls:
        raise MalformedPayload("the push payload has no project.git_http_url or project.git_ssh_url")
    return PushEvent("gitlab", urls, ref)


def _generic_push(document: Mapping[str, Any]) -> PushEvent:
    repository = document.get("repository")
    if not isinstance(repository, str) or not repository.strip():
        raise MalformedPayload('the payload has no "repository" URL')
    ref = document.get("ref")
    if ref is None:
        return PushEvent("generic", (repository.strip(),), None)
    if not isinstance(ref, str) or not ref.startswith("refs/"):
        raise MalformedPayload('the payload\'s "ref" is not a full ref such as refs/heads/main')
    return PushEvent("generic", (repository.strip(),), ref)


def _required_ref(document: Mapping[str, Any]) -> str:
    ref = document.get("ref")
    if not isinstance(ref, str) or not ref:
        raise MalformedPayload("the push payload has no ref")
    return ref


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise MalformedPayload("the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedPayload("the body is not a JSON object")
    return document


def _strings(section: Mapping[str, Any], fields: Iterable[str]) -> tuple[str, ...]:
    """The non-empty string values of `fields`, in order, without repeats."""
    found: list[str] = []
    for name in fields:
        value = section.get(name)
        if isinstance(value, str) and value.strip() and value.strip() not in found:
            found.append(value.strip())
    return tuple(found)


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def _as_bytes(text: str) -> bytes:
    """Header text as bytes for a constant-time comparison (which takes non-ASCII text only as bytes)."""
    return text.encode("utf-8", "replace")


# -- pure: which GitRepositories a push concerns ----------------------------------------------------

_SCP_LIKE = re.compile(r"(?:(?P<user>[^@/:\s]+)@)?(?P<host>\[[^\]/]+\]|[^:/\s\[\]]+):(?P<path>.*)", re.DOTALL)


def normalise_url(url: str) -> str:
    """One spelling per repository, so that the URLs a host sends compare equal to a `spec.url`.

    `https://user@Host:443/org/app.git/`, `ssh://git@host:2222/org/app`, `git@host:org/app.git` and
    `http://host/org/app` all become `host/org/app`: scheme, user, password, port, query, a `.git`
    suffix and trailing slashes go, and the result is lower case (GitHub and GitLab treat paths so).
    `file:///srv/app.git` becomes `/srv/app`. Never raises: text that is no URL is just cleaned up.
    """
    text = url.strip()
    host, path = "", text
    if "://" in text:
        scheme, _, rest = text.partition("://")
        authority, slash, after = rest.partition("/")
        path = re.split(r"[?#]", slash + after, maxsplit=1)[0]
        host = "" if scheme.lower() == "file" else _host_of(authority)
    else:
        scp = _SCP_LIKE.fullmatch(text)
        if scp and (scp["user"] or len(scp["host"]) > 1):  # `C:\…` is a Windows drive, not a host
            host, path = scp["host"].strip("[]"), scp["path"]
    path = re.sub(r"/{2,}", "/", path).rstrip("/")
    if path.lower().endswith(".git"):
        path = path[: -len(".git")].rstrip("/")
    if host:
        return f"{host}/{path.lstrip('/')}".lower()
    return path.lower()


def _host_of(authority: str) -> str:
    """The host of `user:password@host:port` (brackets of an IPv6 address removed)."""
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        return hostport[1:].partition("]")[0]
    return hostport.partition(":")[0]


def ref_matches(pushed: str | None, ref: object) -> bool:
    """Whether a push of `pushed` can change the revision a GitRepository's `spec.ref` names.

    A branch matches a push of that branch; a tag a push of that tag; a semver range a push of any
    tag; a fixed commit never (its revision cannot change). A push that names no ref matches all.
    """
    if not isinstance(ref, Mapping):
        return False
    if pushed is None:
        return True
    branch, tag = ref.get("branch"), ref.get("tag")
    if isinstance(branch, str):
        return pushed in (f"refs/heads/{branch}", branch)
    if isinstance(tag, str):
        return pushed in (f"refs/tags/{tag}", tag)
    if isinstance(ref.get("semver"), str):
        return pushed.startswith("refs/tags/")
    return False


def select_repositories(event: PushEvent, repositories: Iterable[KubeObject]) -> list[KubeObject]:
    """The GitRepositories (not suspended) whose `spec.url` is the pushed repository and whose ref it moves."""
    pushed = {normalise_url(url) for url in event.repository_urls} - {""}
    chosen = []
    for repository in repositories:
        spec = repository.get("spec")
        if not isinstance(spec, Mapping) or spec.get("suspend") is True:
            continue
        url = spec.get("url")
        if isinstance(url, str) and normalise_url(url) in pushed and ref_matches(event.ref, spec.get("ref")):
            chosen.append(repository)
    return sorted(chosen, key=lambda obj: (ObjectRef.of(obj).namespace, ObjectRef.of(obj).name))


# -- the HTTP application -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookSettings:
    secret: SecretRef
    max_body: int = MAX_BODY
    rate: float = 10.0
    """Requests per second per client address (a token bucket refilled at this rate)."""
    burst: int = 20
    secret_ttl: float = 5.0
    """How long the token read from the Secret is used before it is read again (so a rotation lands)."""
    read_timeout: float = 10.0


@dataclass(frozen=True)
class TriggerResult:
    requested_at: str
    triggered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class WebhookReceiver:
    """Answers deliveries on HOOK_PATH; see the module docstring for the order of checks."""

    def __init__(self, api: KubeApi, settings: WebhookSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.settings = settings
        self.limiter = RateLimiter(settings.rate, settings.burst, clock=clock)
        self._clock = clock
        self._token: tuple[bytes | None, float] | None = None
        self._token_lock = asyncio.Lock()

    async def handle(self, request: web.Request) -> web.Response:
        client = request.remote or "unknown"
        try:
            return await self._handle(request, client)
        except WebhookError as error:
            if isinstance(error, Unauthorized):
                log.warning("webhook from %s refused: %s", client, error)
            else:
                log.info("webhook from %s refused (%d): %s", client, error.status, error)
            return _json_response(error.status, {"error": str(error)})

    async def _handle(self, request: web.Request, client: str) -> web.Response:
        if request.method != "POST":
            return _json_response(
                405, {"error": f"{request.method} is not allowed here: send POST"}, headers={"Allow": "POST"}
            )
        decision = self.limiter.check(client)
        if not decision.allowed:
            log.debug("webhook from %s rate limited", client)
            return _json_response(
                429,
                {"error": "too many requests from this address: retry later"},
                headers={"Retry-After": RateLimiter.retry_after_header(decision)},
            )
        body = await read_body(request, self.settings.max_body, self.settings.read_timeout)
        secret = await self.token()
        provider = verify_signature(request.headers, body, secret)
        event = parse_push(request.headers, body)
        if isinstance(event, OtherEvent):
            log.info("webhook from %s: %s event %s, nothing to do", client, provider, _printable(event.event))
            message = "pong" if event.event == "ping" else f"{provider} event {event.event!r} is not a push: ignored"
            return _json_response(200, {"triggered": [], "message": message})
        result = await self.trigger(event)
        log.info(
            "webhook from %s: %s push of %s to %s; reconcile requested for %s",
            client,
            provider,
            _printable(event.ref or "any ref"),
            _printable(redact_url(event.repository_urls[0])),
            ", ".join(result.triggered) or "no GitRepository",
        )
        document: dict[str, Any] = {"triggered": result.triggered}
        if result.triggered:
            document["requestedAt"] = result.requested_at
        if result.failed:
            document["error"] = f"could not request a reconcile of {', '.join(result.failed)}"
            return _json_response(502, {**document, "failed": result.failed})
        return _json_response(202 if result.triggered else 200, document)

    async def token(self) -> bytes:
        """The shared token from the Secret, read again after `secret_ttl` seconds.

        A missing Secret is remembered for as long, so a flood of requests cannot become a flood of reads.
        """
        async with self._token_lock:
            now = self._clock()
            if self._token is None or now - self._token[1] >= self.settings.secret_ttl:
                self._token = (await self._read_token(), now)
            token = self._token[0]
        if token is None:
            raise ReceiverUnavailable("the webhook receiver is not configured: see the controller's log")
        return token

    async def _read_token(self) -> bytes | None:
        """The token, or None after logging why there is none."""
        ref = self.settings.secret
        try:
            secret = await self.api.get(ObjectRef("", "v1", "Secret", ref.namespace, ref.name))
        except MoorError as error:
            log.warning("webhook Secret %s cannot be read: %s", ref, error)
            return None
        if secret is None:
            log.warning("webhook Secret %s does not exist: create it with a key %r", ref, ref.key)
            return None
        encoded = (secret.get("data") or {}).get(ref.key)
        try:
            token = base64.b64decode(encoded or "", validate=True).strip()
        except (binascii.Error, ValueError):
            token = b""
        if not token:
            log.warning("webhook Secret %s has no non-empty key %r", ref, ref.key)
            return None
        return token

    async def trigger(self, event: PushEvent) -> TriggerResult:
        """Sets `moor.dev/reconcile` on every GitRepository the push concerns, in all namespaces."""
        resource = await self.api.discovery.resolve(API_VERSION, GITREPOSITORY.kind)
        if resource is None:
            log.warning("webhook: the cluster does not serve GitRepository (%s); run `moor install`", API_VERSION)
            raise ReceiverUnavailable("the webhook receiver is not configured: see the controller's log")
        try:
            repositories = (await self.api.list(resource)).items
        except MoorError as error:
            log.warning("webhook: cannot list GitRepositories: %s", error)
            raise ReceiverUnavailable("the cluster cannot be reached now: retry later") from None
        requested_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        chosen = [ObjectRef.of(obj) for obj in select_repositories(event, repositories)]
        outcomes = await asyncio.gather(*(self._request_reconcile(ref, requested_at) for ref in chosen))
        result = TriggerResult(requested_at)
        for ref, outcome in zip(chosen, outcomes, strict=True):
            name = f"{ref.namespace}/{ref.name}"
            if outcome == "requested":
                result.triggered.append(name)
            elif outcome == "failed":
                result.failed.append(name)
        return result

    async def _request_reconcile(self, ref: ObjectRef, requested_at: str) -> Literal["requested", "gone", "failed"]:
        patch = {"metadata": {"annotations": {RECONCILE_ANNOTATION: requested_at}}}
        try:
            await self.api.merge_patch(ref, patch)
        except ApiError as error:
            if error.not_found:
                return "gone"
            log.warning("webhook: cannot request a reconcile of %s: %s", ref, error)
            return "failed"
        except MoorError as error:
            log.warning("webhook: cannot request a reconcile of %s: %s", ref, error)
            return "failed"
        return "requested"


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` (before any parsing)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is larger than {_size(limit)}")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            while chunk := await request.content.read(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise PayloadTooLarge(f"the body is larger than {_size(limit)}")
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout:.0f} seconds") from None
    return bytes(body)


def create_app(api: KubeApi, settings: WebhookSettings) -> web.Application:
    """The receiver as an aiohttp application: POST HOOK_PATH, every other method answered 405."""
    receiver = WebhookReceiver(api, settings)
    app = web.Application(client_max_size=settings.max_body)
    app.router.add_route("*", HOOK_PATH, receiver.handle)
    return app


async def serve_webhooks(
    api: KubeApi,
    settings: WebhookSettings,
    host: str,
    port: int,
    *,
    limits: ListenerLimits | None = None,
    metrics: ListenerMetrics | None = None,
) -> Listener:
    """Starts listening on host:port (slow and numerous clients bounded: `moor.web.listener`); the caller
    stops it with `listener.close()`."""
    app = create_app(api, settings)
    listener = await serve_app(app, host, port, name="webhooks", limits=limits, metrics=metrics)
    log.info("webhook receiver listening on %s:%d%s (token from Secret %s)", host, port, HOOK_PATH, settings.secret)
    return listener


def _json_response(status: int, document: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(dict(document), status=status, headers=dict(headers or {}))


def _printable(text: str, limit: int = 200) -> str:
    """Text from a request as it may enter the log: no control characters (no forged lines), bounded."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return cleaned + ("…" if len(text) > limit else "")


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"
