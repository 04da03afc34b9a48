"""Kubernetes Events about Moor's objects, so `kubectl describe` and `kubectl get events` tell the story."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from moor.cluster.api import KubeApi
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
MAX_MESSAGE = 1024


def event_for(subject: KubeObject, type_: str, reason: str, message: str, now: datetime) -> KubeObject:
    """The core/v1 Event recording `reason` on `subject` (pure, so it is tested without a cluster)."""
    ref = ObjectRef.of(subject)
    metadata = subject.get("metadata") or {}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{ref.name}.{secrets.token_hex(8)}", "namespace": ref.namespace or "default"},
        "involvedObject": {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "name": ref.name,
            "namespace": ref.namespace,
            "uid": metadata.get("uid", ""),
            "resourceVersion": metadata.get("resourceVersion", ""),
        },
        "type": type_,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "source": {"component": "moor"},
        "reportingComponent": "moor.dev/controller",
        "reportingInstance": "moor",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


@dataclass(frozen=True)
class RecordedEvent:
    """What happened to which object, as listeners (notifications, metrics) hear it."""

    subject: ObjectRef
    type: str
    reason: str
    message: str
    at: datetime
    revision: str = ""
    author: str = ""


Listener = Callable[[RecordedEvent], None]
"""Called on the event loop for every event: must not block (queue the work and return)."""


class EventRecorder:
    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def emit(
        self, subject: KubeObject, type_: str, reason: str, message: str, *, revision: str = "", author: str = ""
    ) -> None:
        """Records an Event and tells the listeners; a failure to record is logged, never fails a reconcile."""
        now = datetime.now(UTC)
        ref = ObjectRef.of(subject)
        try:
            await self.api.create(event_for(subject, type_, reason, message, now))
        except MoorError as error:
            log.warning("could not record event %s on %s: %s", reason, ref, error)
        event = RecordedEvent(ref, type_, reason, message, now, revision, author)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("an event listener failed on %s %s", reason, ref)
