"""Moor's HTTP faces besides the controller: the push webhook receiver (`moor run --webhook-port`)."""

from moor.web.webhooks import (
    HOOK_PATH,
    MalformedPayload,
    OtherEvent,
    PayloadTooLarge,
    PushEvent,
    SecretRef,
    Unauthorized,
    WebhookError,
    WebhookSettings,
    create_app,
    normalise_url,
    parse_push,
    select_repositories,
    serve_webhooks,
    sign,
    verify_signature,
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
