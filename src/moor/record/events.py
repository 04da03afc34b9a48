"""Kubernetes Events about Moor's objects, so `kubectl describe` and `kubectl get events` tell the story."""

from __future__ import annotations

import logging
import secrets
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


class EventRecorder:
    def __init__(self, api: KubeApi) -> None:
        self.api = api

    async def emit(self, subject: KubeObject, type_: str, reason: str, message: str) -> None:
        """Records an Event; a failure to record is logged, never allowed to fail a reconcile."""
        try:
            await self.api.create(event_for(subject, type_, reason, message, datetime.now(UTC)))
        except MoorError as error:
            log.warning("could not record event %s on %s: %s", reason, ObjectRef.of(subject), error)
