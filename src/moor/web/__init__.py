"""Moor's HTTP faces besides the controller: the push webhook receiver (`moor run --webhook-port`)."""

from moor.web.push import (
    MalformedPayload,
    OtherEvent,
    PushEvent,
    Unauthorized,
    WebhookError,
    normalise_url,
    parse_push,
    select_repositories,
    sign,
    verify_signature,
)
from moor.web.receiver import (
    HOOK_PATH,
    PayloadTooLarge,
    SecretRef,
    WebhookSettings,
    create_app,
    serve_webhooks,
)

__all__ = [
    "HOOK_PATH",
    "MalformedPayload",
    "OtherEvent",
    "PayloadTooLarge",
    "PushEvent",
    "SecretRef",
    "Unauthorized",
    "WebhookError",
    "WebhookSettings",
    "create_app",
    "normalise_url",
    "parse_push",
    "select_repositories",
    "serve_webhooks",
    "sign",
    "verify_signature",
]
