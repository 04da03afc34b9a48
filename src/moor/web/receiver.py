"""The push webhook receiver: a Git host says "I was pushed to", Moor reconciles the GitRepositories that
follow it; a registry says "an image was pushed", Moor scans the ImageRepositories of that image now.

What a delivery means is decided by `moor.web.push` and `moor.web.registry_events` (pure); this is
the HTTP side around them, the only part that reads the Secret, knows the GitRepositories and
ImageRepositories and sets `moor.dev/reconcile` on them. It knows them from watches of its own
(`KindInformer`s started with the application and stopped with its listener), never by listing them
per delivery. Until a watch has listed them, and while it fails, a push is answered 503 and the answer
says that it triggered nothing.

A request is checked in this order, and the first failure answers it: method (405), rate per
client address (429), body size (413), signature or token (401), payload (400). Git hosts and GHCR
(GitHub's `package` event) sign; the distribution registry shows the token as `Authorization: Bearer`,
Docker Hub as `?token=` in the URL.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from moor.cluster.api import KubeApi
from moor.cluster.cache import InformerNotSynced, KindInformer, LiveChange
from moor.cluster.client import ApiError
from moor.cluster.discovery import ResourceType
from moor.errors import MoorError
from moor.objects import RECONCILE_ANNOTATION, KubeObject, ObjectRef
from moor.resources import GITREPOSITORY, GROUP, IMAGEREPOSITORY, VERSION
from moor.source.urls import redact_url
from moor.web.listener import Listener, ListenerLimits, ListenerMetrics, serve_app
from moor.web.push import (
    OtherEvent,
    PushEvent,
    Unauthorized,
    WebhookError,
    parse_push,
    select_repositories,
    verify_signature,
)
from moor.web.ratelimit import RateLimiter
from moor.web.registry_events import (
    ImagePushEvent,
    parse_distribution,
    parse_docker_hub,
    parse_ghcr_package,
    registry_sender,
    select_image_repositories,
    verify_token,
)

log = logging.getLogger(__name__)

HOOK_PATH = "/hook"
MAX_BODY = 1024 * 1024
DEFAULT_SECRET_NAME = "moor-webhook"
DEFAULT_SECRET_KEY = "token"

GITREPOSITORIES = ResourceType(GROUP, VERSION, GITREPOSITORY.kind, GITREPOSITORY.plural, namespaced=True)
"""Moor's own kind, known without discovery: while its CRD is not served, the watch's list answers 404
and the watch says so (and heals once `moor install` has run)."""
IMAGEREPOSITORIES = ResourceType(GROUP, VERSION, IMAGEREPOSITORY.kind, IMAGEREPOSITORY.plural, namespaced=True)
REPOSITORIES_WAIT = 5.0
"""Seconds a push waits for the watch of GitRepositories to list them (at start, after a failure) before
it is answered 503."""


class PayloadTooLarge(WebhookError):
    status = 413


class RequestTimeout(WebhookError):
    status = 408


class ReceiverUnavailable(WebhookError):
    """The receiver cannot judge or act on requests now (no Secret, GitRepositories not known); the details
    go to the log only."""

    status = 503


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
        self.repositories = KindInformer(api, GITREPOSITORIES, _no_reaction, label_selector=None)
        self.image_repositories = KindInformer(api, IMAGEREPOSITORIES, _no_reaction, label_selector=None)
        self._clock = clock
        self._token: tuple[bytes | None, float] | None = None
        self._token_lock = asyncio.Lock()

    async def watching(self, app: web.Application) -> AsyncIterator[None]:
        """Watches GitRepositories and ImageRepositories for as long as `app` runs (an aiohttp cleanup context)."""
        self.repositories.start()
        self.image_repositories.start()
        try:
            yield
        finally:
            await self.repositories.stop()
            await self.image_repositories.stop()

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
        sender = registry_sender(request.headers, body)
        if sender is not None:
            verify_token(request.headers, request.query, secret)
            pushed = parse_distribution(body) if sender == "distribution" else parse_docker_hub(body)
            return await self._images_pushed(pushed, client)
        provider = verify_signature(request.headers, body, secret)
        event = parse_push(request.headers, body)
        if isinstance(event, OtherEvent) and provider == "github" and event.event == "package":
            package = parse_ghcr_package(body)
            if package is not None:
                return await self._images_pushed(package, client)
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
        return _triggered_response(result)

    async def _images_pushed(self, event: ImagePushEvent, client: str) -> web.Response:
        """Scans now the ImageRepositories of the pushed images."""
        if not event.images:
            return _json_response(200, {"triggered": [], "message": f"{event.sender} event without a push: ignored"})
        known = await self._known(self.image_repositories, "ImageRepositories")
        result = await self._request_all(select_image_repositories(event, known))
        log.info(
            "webhook from %s: %s push of %s; scan requested for %s",
            client,
            event.sender,
            _printable(", ".join(event.images)),
            ", ".join(result.triggered) or "no ImageRepository",
        )
        return _triggered_response(result)

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
        repositories = await self._known(self.repositories, "GitRepositories")
        return await self._request_all(select_repositories(event, repositories))

    async def _request_all(self, objects: list[KubeObject]) -> TriggerResult:
        """Sets `moor.dev/reconcile` on each object at once; which were requested, gone or failed."""
        requested_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        chosen = [ObjectRef.of(obj) for obj in objects]
        outcomes = await asyncio.gather(*(self._request_reconcile(ref, requested_at) for ref in chosen))
        result = TriggerResult(requested_at)
        for ref, outcome in zip(chosen, outcomes, strict=True):
            name = f"{ref.namespace}/{ref.name}"
            if outcome == "requested":
                result.triggered.append(name)
            elif outcome == "failed":
                result.failed.append(name)
        return result

    async def _known(self, informer: KindInformer, plural: str) -> list[KubeObject]:
        """Every object as the watch knows it; ReceiverUnavailable (the push dropped, and the answer says so)
        until the watch has listed them, or while it fails."""
        try:
            await informer.wait_synced(within=REPOSITORIES_WAIT)
        except InformerNotSynced as error:
            log.warning("webhook: a push finds no %s to match: %s", plural, error)
            if informer.state.phase == "failing":
                raise ReceiverUnavailable(
                    f"the receiver cannot read the {plural} now ({error.reason}): "
                    "this push triggered nothing; retry later"
                ) from None
            raise ReceiverUnavailable(
                f"the receiver has not read the {plural} yet: this push triggered nothing; retry later"
            ) from None
        return list(informer.objects.values())

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


def _triggered_response(result: TriggerResult) -> web.Response:
    document: dict[str, Any] = {"triggered": result.triggered}
    if result.triggered:
        document["requestedAt"] = result.requested_at
    if result.failed:
        document["error"] = f"could not request a reconcile of {', '.join(result.failed)}"
        return _json_response(502, {**document, "failed": result.failed})
    return _json_response(202 if result.triggered else 200, document)


def _no_reaction(change: LiveChange) -> None:
    """The receiver reads the watched objects when a push comes; a change alone asks nothing of it."""


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
    """The receiver as an aiohttp application: POST HOOK_PATH, every other method answered 405; its watches
    of GitRepositories and ImageRepositories start when the application does and stop with it."""
    receiver = WebhookReceiver(api, settings)
    app = web.Application(client_max_size=settings.max_body)
    app.cleanup_ctx.append(receiver.watching)
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
    stops it, and the receiver's watch, with `listener.close()`."""
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
