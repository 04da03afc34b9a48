"""Notifications: Providers (where to send) and Alerts (what to send), fed by the controller's events.

specs (Provider and Alert as typed values) -> notices (what an event means) -> matching (which
Providers hear of it) -> payloads (each provider's request) -> delivery (retries); dedup keeps a
Provider from hearing the same news twice; notifier wires it all to the controller. Pure modules
except delivery and notifier.
"""

from moor.notify.notices import CommitState, Happening, Notice
from moor.notify.notifier import Notifier, NotifierOptions
from moor.notify.specs import AlertSpec, ProviderSpec, ProviderType, Severity

__all__ = [
    "AlertSpec",
    "CommitState",
    "Happening",
    "Notice",
    "Notifier",
    "NotifierOptions",
    "ProviderSpec",
    "ProviderType",
    "Severity",
]
