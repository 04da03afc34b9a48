"""Asking the controller to reconcile an object now: a new value of its `moor.dev/reconcile` annotation.

The controller handles each value once and reports it back as `status.lastHandledReconcileAt`. The CLI
and the dashboard (through `moor.operations`), the image automation and the webhook receiver all ask
this way, with this patch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from moor.objects import RECONCILE_ANNOTATION


def reconcile_token(at: datetime | None = None) -> str:
    """A new value of the reconcile annotation: the moment (now by default), to the microsecond."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reconcile_request(token: str) -> dict[str, Any]:
    """The merge patch that asks for a reconcile with `token`."""
    return {"metadata": {"annotations": {RECONCILE_ANNOTATION: token}}}
