"""This member's shard: the buckets it may reconcile now, kept current as members come and go.

A bucket lost is dropped at once; a bucket gained from a member that is still alive (it is handing the
bucket over because this one joined) is taken only `HANDOVER_GRACE` seconds later, long enough for the
other member to see the same change and drop it; a bucket gained from a member that is gone is taken
at once. The member that owns `SINGLETON_BUCKET` is the leader: it alone runs the singletons.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from moor.names import LABEL_VALUE_MAX, fit_name
from moor.objects import SYNC_LABEL, KubeObject
from moor.resources import IMAGEPOLICY, IMAGEREPOSITORY, SYNC
from moor.sharding.assignment import BUCKET_LABEL, BUCKETS, Assignment, assign, bucket_of

log = logging.getLogger(__name__)

OWNER_ANNOTATION = "moor.dev/shard-owner"
"""On Moor's own objects, written by the member that owns them when that changes (`moor get` shows it)."""
HANDOVER_GRACE = 2.0
SINGLETON_BUCKET = 0


def shard_key(kind: str, namespace: str, name: str) -> str:
    """What an object's bucket is hashed from: a Sync's `moor.dev/sync` label value (its managed objects
    carry it, so they fall into the same bucket), `<kind>/<namespace>/<name>` for every other kind."""
    if kind == SYNC.kind:  # the same value as controller.rendering.sync_key
        return fit_name(f"{namespace}.{name}", limit=LABEL_VALUE_MAX)
    return f"{kind}/{namespace}/{name}"


def shard_key_of(obj: KubeObject) -> str:
    """An object's shard key; an ImagePolicy takes its ImageRepository's, since it chooses from the tags
    that repository's scan keeps in the memory of the member that scanned it."""
    metadata = obj.get("metadata") or {}
    namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
    if obj.get("kind") == IMAGEPOLICY.kind:
        ref = (obj.get("spec") or {}).get("imageRepositoryRef") or {}
        if ref.get("name"):
            return shard_key(IMAGEREPOSITORY.kind, str(ref.get("namespace") or namespace), str(ref["name"]))
    return shard_key(str(obj.get("kind", "")), namespace, name)


def bucket_selector(buckets: Iterable[int]) -> str:
    """The live cache's label selector for the managed objects of `buckets`."""
    values = ",".join(str(bucket) for bucket in sorted(buckets))
    return f"{SYNC_LABEL},{BUCKET_LABEL} in ({values})" if values else f"{SYNC_LABEL},{BUCKET_LABEL}=none"


@dataclass(frozen=True)
class ShardChange:
    lost: frozenset[int]
    gained: frozenset[int]


ShardListener = Callable[[ShardChange], None]


class Shard:
    """The buckets this member owns and may act on; listeners hear what was lost and gained."""

    def __init__(self, identity: str, *, grace: float = HANDOVER_GRACE, buckets: int = BUCKETS) -> None:
        self.identity = identity
        self.grace = grace
        self.buckets = buckets
        self.table = Assignment()
        self.members: frozenset[str] = frozenset()
        self._active: set[int] = set()
        self._listeners: list[ShardListener] = []
        self._pending: asyncio.TimerHandle | None = None

    def subscribe(self, listener: ShardListener) -> None:
        self._listeners.append(listener)

    def owns_bucket(self, bucket: int) -> bool:
        return bucket in self._active

    def bucket(self, kind: str, namespace: str, name: str) -> int:
        return bucket_of(shard_key(kind, namespace, name), self.buckets)

    def owns_key(self, kind: str, namespace: str, name: str) -> bool:
        return self.owns_bucket(self.bucket(kind, namespace, name))

    def bucket_of_object(self, obj: KubeObject) -> int:
        return bucket_of(shard_key_of(obj), self.buckets)

    def owns(self, obj: KubeObject) -> bool:
        return self.owns_bucket(self.bucket_of_object(obj))

    @property
    def active(self) -> frozenset[int]:
        return frozenset(self._active)

    @property
    def leader(self) -> bool:
        return self.owns_bucket(SINGLETON_BUCKET)

    def owner_of(self, obj: KubeObject) -> str | None:
        return self.table.owner_of(self.bucket_of_object(obj))

    def update(self, members: frozenset[str]) -> None:
        """A membership listener: recomputes the table; drops lost buckets now, takes gained ones when safe."""
        before, self.table = self.table, assign(members, self.buckets)
        self.members = members
        mine = self.table.buckets_of(self.identity)
        lost = frozenset(self._active - mine)
        self._active -= lost
        without_me = assign(members - {self.identity}, self.buckets)
        now: set[int] = set()
        later: set[int] = set()
        for bucket in mine - self._active:
            previous = before.owner_of(bucket)
            if previous in (None, self.identity):
                previous = without_me.owner_of(bucket)
            (later if previous in members and previous != self.identity else now).add(bucket)
        self._active |= now
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if later:
            self._pending = asyncio.get_running_loop().call_later(self.grace, self._take, frozenset(later))
        self._tell(ShardChange(lost, frozenset(now)))

    def _take(self, buckets: frozenset[int]) -> None:
        self._pending = None
        taken = frozenset(bucket for bucket in buckets if self.table.owner_of(bucket) == self.identity)
        self._active |= taken
        self._tell(ShardChange(frozenset(), taken))

    def _tell(self, change: ShardChange) -> None:
        if not (change.lost or change.gained):
            return
        log.info(
            "shard: %d bucket(s) now (lost %d, gained %d)", len(self._active), len(change.lost), len(change.gained)
        )
        for listener in self._listeners:
            listener(change)


class ShardObjectsCollector(Collector):
    """`moor_shard_objects{member}`: Moor's objects per member by this member's table, read at each scrape."""

    def __init__(self, shard: Shard, objects: Callable[[], Iterable[KubeObject]]) -> None:
        self._shard, self._objects = shard, objects

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "moor_shard_objects",
            "Moor's own objects (sources, image automation, Syncs) owned by each member.",
            labels=["member"],
        )
        counts = dict.fromkeys(self._shard.members, 0)
        for obj in self._objects():
            owner = self._shard.owner_of(obj)
            if owner is not None:
                counts[owner] = counts.get(owner, 0) + 1
        for member, count in sorted(counts.items()):
            family.add_metric([member], count)
        yield family
