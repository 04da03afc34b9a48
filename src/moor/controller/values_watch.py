"""Changes to a Sync's `helm.valuesFrom` roll in at once, as in Flux (>= 2.4).

ConfigMaps and Secrets labelled `moor.dev/watch: "true"` are watched: one label-selected list and watch
per kind, cluster-wide. A change to the data of one (or its creation, deletion, or the label's removal)
wakes every Sync whose `spec.helm.valuesFrom` names it (same namespace, kind and name), through the
callback the runtime gives; the Sync's next pass reads its values again and renders when they changed.
An object without the label is still read on each pass of its Sync, so an edit to it waits for the
Sync's interval.

Memory stays small: only labelled objects are listed, and of each only its metadata (without
`managedFields`) and a digest of its data are kept; the values themselves, Secret values above all,
are dropped as each answer is decoded and never held by the watch.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from moor.cluster.api import KubeApi
from moor.cluster.cache import KindInformer, LiveChange
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef

log = logging.getLogger(__name__)

WATCH_LABEL = "moor.dev/watch"
WATCH_SELECTOR = f"{WATCH_LABEL}=true"
WATCHED_KINDS = ("ConfigMap", "Secret")
DATA_DIGEST = "moor.dev/data-digest"
"""Where a watched object keeps, in the watch's memory, the digest of the data that was dropped."""
_DATA_FIELDS = ("data", "binaryData", "stringData")


class ValuesWatch:
    """`start()` once the API server answers, `stop()` at shutdown; `wake(sync)` is called for each Sync
    whose valuesFrom names a watched object that changed."""

    def __init__(
        self, api: KubeApi, syncs: Callable[[], Iterable[KubeObject]], wake: Callable[[KubeObject], None]
    ) -> None:
        self.api = api
        self._syncs = syncs
        self._wake = wake
        self._informers: list[KindInformer] = []

    async def start(self) -> None:
        """Starts one watch per kind; it does not wait for them (a kind that may not be listed is retried,
        and said so in `problems()`)."""
        for kind in WATCHED_KINDS:
            resource = await self.api.discovery.resolve("v1", kind)
            if resource is None:
                raise MoorError(f"the cluster does not serve {kind} (v1)")
            informer = KindInformer(
                self.api, resource, self._on_change, label_selector=WATCH_SELECTOR, decode=without_data
            )
            self._informers.append(informer)
            informer.start()
        log.info("watching ConfigMaps and Secrets labelled %s for the Syncs' helm.valuesFrom", WATCH_SELECTOR)

    async def stop(self) -> None:
        for informer in self._informers:
            await informer.stop()
        self._informers = []

    def problems(self) -> list[str]:
        """One line per watch that is failing, for /healthz."""
        return [
            f"{informer.name} labelled {WATCH_SELECTOR}: {informer.state.error}"
            for informer in self._informers
            if informer.state.phase == "failing"
        ]

    def objects(self) -> list[KubeObject]:
        """What the watch holds: each labelled object's metadata and the digest of its data."""
        return [obj for informer in self._informers for obj in informer.objects.values()]

    def _on_change(self, change: LiveChange) -> None:
        if change.type == "MODIFIED" and data_digest(change.previous) == data_digest(change.object):
            return  # labels or annotations alone: the values are the same
        ref = ObjectRef.of(change.object)
        for sync in syncs_using(self._syncs(), ref.kind, ref.namespace, ref.name):
            log.info("%s %s/%s changed: waking %s", ref.kind, ref.namespace, ref.name, ObjectRef.of(sync))
            self._wake(sync)


def syncs_using(syncs: Iterable[KubeObject], kind: str, namespace: str, name: str) -> list[KubeObject]:
    """The Syncs of `namespace` whose `spec.helm.valuesFrom` names the ConfigMap or Secret `name`."""
    return [
        sync
        for sync in syncs
        if ObjectRef.of(sync).namespace == namespace
        and any(
            isinstance(entry, dict) and entry.get("kind") == kind and entry.get("name") == name
            for entry in _values_from(sync)
        )
    ]


def without_data(raw: bytes) -> Any:
    """Decodes a list or a watch event of ConfigMaps or Secrets, keeping of each object only its metadata
    (no managedFields) and, under DATA_DIGEST, a digest of its data."""
    document = json.loads(raw)
    if not isinstance(document, dict):
        return document
    items = document.get("items")
    objects = items if isinstance(items, list) else [document.get("object")]
    for obj in objects:
        if isinstance(obj, dict):
            _drop_data(obj)
    return document


def data_digest(obj: KubeObject | None) -> str | None:
    return None if obj is None else obj.get(DATA_DIGEST)


def _drop_data(obj: dict[str, Any]) -> None:
    data = {field: obj.pop(field) for field in _DATA_FIELDS if field in obj}
    obj[DATA_DIGEST] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)


def _values_from(sync: KubeObject) -> list[Any]:
    helm = (sync.get("spec") or {}).get("helm")
    entries = helm.get("valuesFrom") if isinstance(helm, dict) else None
    return entries if isinstance(entries, list) else []
