"""Who the members are: each `moor run --replicas` keeps a Lease of its own and watches the others'.

A member creates the Lease `moor-member-<identity>` (coordination.k8s.io/v1) and renews it every third
of its duration. A member whose Lease's `spec.renewTime` has not changed for its duration is gone:
judged on the watcher's own monotonic clock from the moment the watcher last saw renewTime change,
never by comparing the time written in the Lease with a clock, so skew between machines does not
matter. A watcher that was not watching meanwhile (its watch failing, or the process itself paused)
cannot judge: it starts every other member's clock again (`MemberTable.resume`).

A member's own Lease is valid while its last successful renewal was sent less than its duration minus
a safety margin ago: the others cannot have judged it gone before then, since they start their clock
no earlier than the renewal arrives. `stop()` deletes the Lease, so its buckets move at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from moor.cluster.api import KubeApi
from moor.cluster.cache import KindInformer, LiveChange
from moor.cluster.discovery import ResourceType
from moor.cluster.errors import ApiError
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef
from moor.supervised import cancel_and_wait

log = logging.getLogger(__name__)

LEASE_API_VERSION = "coordination.k8s.io/v1"
LEASE_PREFIX = "moor-member-"
MEMBER_LABEL = "moor.dev/member"
"""On every member Lease (value "true"): the watch of members selects by it."""
DEFAULT_LEASE_SECONDS = 15
DEFAULT_LEASE_NAMESPACE = "moor-system"
TICK_SECONDS = 0.5
"""How often expiry is judged."""
FORGET_AFTER = 2
"""A Lease gone for this many durations is deleted by whoever sees it (a member killed with -9 leaves one)."""


class LeaseLost(MoorError):
    """This member's own Lease could not be created or renewed."""


def lease_name(identity: str) -> str:
    return LEASE_PREFIX + identity


def member_identity(text: str) -> str:
    """`text` made fit for a Lease name: lowercase letters, digits, dashes and dots, at most 200 characters."""
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-.")[:200].strip("-.")
    if not cleaned:
        raise ValueError(f"{text!r} holds no letter or digit to name a member by")
    return cleaned


def safety_margin(duration: float) -> float:
    """How long before the others may judge it gone a member stops trusting its own Lease."""
    return max(1.0, duration / 5)


@dataclass
class _Seen:
    renew_time: str
    changed_at: float
    renewed: bool = False
    """Seen to change at least once: a Lease found already there may be a dead member's."""


class MemberTable:
    """Pure: the Leases as one watcher saw them, and which members are alive by its own clock."""

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self._seen: dict[str, _Seen] = {}

    def observe(self, identity: str, renew_time: str, now: float) -> None:
        """A Lease as seen at `now`; its clock starts again when renewTime differs from the last seen."""
        seen = self._seen.get(identity)
        if seen is None:
            self._seen[identity] = _Seen(renew_time, now)
        elif seen.renew_time != renew_time:
            self._seen[identity] = _Seen(renew_time, now, renewed=True)

    def remove(self, identity: str) -> None:
        self._seen.pop(identity, None)

    def resume(self, now: float) -> None:
        """The watcher was blind for a while (paused, or its watch failed): every member gets a full duration."""
        for seen in self._seen.values():
            seen.changed_at = now

    def alive(self, now: float) -> frozenset[str]:
        """Members seen to renew within the last duration."""
        return frozenset(
            identity for identity, seen in self._seen.items() if seen.renewed and now - seen.changed_at < self.duration
        )

    def undetermined(self, now: float) -> frozenset[str]:
        """Members whose Lease was found but not yet seen to renew, nor old enough to be judged gone."""
        return frozenset(
            i for i, seen in self._seen.items() if not seen.renewed and now - seen.changed_at < self.duration
        )

    def long_gone(self, now: float) -> list[str]:
        """Members unseen for FORGET_AFTER durations: their Leases may be deleted."""
        return [i for i, seen in self._seen.items() if now - seen.changed_at >= FORGET_AFTER * self.duration]


def micro_time(moment: datetime) -> str:
    """A Lease's MicroTime: RFC 3339 with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


MembersChanged = Callable[[frozenset[str]], None]


class LeaseMembership:
    """This member's Lease, renewed, and the other members, watched; `on_change` hears every new member set."""

    def __init__(
        self,
        api: KubeApi,
        identity: str,
        *,
        namespace: str = DEFAULT_LEASE_NAMESPACE,
        duration: int = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.identity = identity
        self.namespace = namespace
        self.duration = duration
        self.table = MemberTable(duration)
        self._clock = clock
        self._listeners: list[MembersChanged] = []
        self._members: frozenset[str] = frozenset()
        self._renewed_at: float | None = None
        self._judged_at = clock()
        self._stopped = False
        self._known = False
        """Whether the first list of Leases arrived: until then no member set is told (it would be partial)."""
        self._settled = False
        """Whether every Lease found at the start has renewed or expired since: until then a newcomer names
        no member set, since it cannot tell a live member's Lease from a dead one's."""
        self._resource: ResourceType | None = None
        self._informer: KindInformer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("coordination.k8s.io", "v1", "Lease", self.namespace, lease_name(self.identity))

    @property
    def members(self) -> frozenset[str]:
        """The live members, this one included only while its own Lease is valid."""
        return self._members

    def subscribe(self, listener: MembersChanged) -> None:
        self._listeners.append(listener)

    def own_lease_valid(self) -> bool:
        """True while the last successful renewal was sent less than duration minus the margin ago."""
        if self._renewed_at is None:
            return False
        return self._clock() - self._renewed_at < self.duration - safety_margin(self.duration)

    async def start(self) -> None:
        """Registers this member (its Lease created or renewed) and waits until the others are known."""
        resource = await self.api.discovery.resolve(LEASE_API_VERSION, "Lease")
        if resource is None:
            raise LeaseLost(f"the cluster does not serve Leases ({LEASE_API_VERSION})")
        self._resource = resource
        try:
            await self._renew()
        except ApiError as error:
            raise LeaseLost(f"cannot register this member's Lease {self.namespace}/{self.ref.name}: {error}") from None
        self._informer = KindInformer(
            self.api, resource, self._on_lease, label_selector=f"{MEMBER_LABEL}=true", namespace=self.namespace
        )
        self._informer.start()
        await self._informer.wait_synced()
        self._known = True
        self._judge()
        self._tasks = [
            asyncio.create_task(self._keep_renewing(), name="renew member lease"),
            asyncio.create_task(self._keep_judging(), name="judge member leases"),
        ]

    async def stop(self) -> None:
        """Hand-over: the Lease is deleted at once, so the others take this member's buckets without waiting;
        from then on this member writes nothing (its Lease is not valid). Stopping twice does nothing more."""
        if self._stopped:
            return
        self._stopped = True
        self._renewed_at = None
        self._judge()
        await cancel_and_wait(self._tasks)
        if self._informer is not None:
            await self._informer.stop()
        try:
            await self.api.delete(self.ref)
        except MoorError as error:
            log.warning("could not delete this member's Lease %s (it expires by itself): %s", self.ref.name, error)

    def problems(self) -> list[str]:
        """For /healthz: this member is not a member (its Lease lapsed)."""
        return [] if self.own_lease_valid() else [f"member Lease {self.ref.name} is not renewed"]

    async def _keep_renewing(self) -> None:
        while True:
            await asyncio.sleep(self.duration / 3)
            try:
                await self._renew()
            except MoorError as error:
                log.warning("could not renew member Lease %s: %s", self.ref.name, error)
            self._judge()

    async def _keep_judging(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            if self._informer is not None and self._informer.state.phase != "watching":
                self.table.resume(self._clock())  # blind: it cannot judge the others
            self._judge()
            await self._forget_long_gone(self._clock())

    async def _renew(self) -> None:
        """Writes a new renewTime (creating the Lease when it is missing); the validity counts from the send."""
        sent = self._clock()
        if self._renewed_at is not None and not self.own_lease_valid():
            log.warning(
                "member Lease %s lapsed (this process was paused or cut off); dropping its shard", self.ref.name
            )
            self._renewed_at = None
            self._judge()
        now = micro_time(datetime.now(UTC))
        try:
            await self.api.merge_patch(self.ref, {"spec": {"renewTime": now, "holderIdentity": self.identity}})
        except ApiError as error:
            if not error.not_found:
                raise
            await self.api.create(self._lease(now))
        self._renewed_at = sent

    def _lease(self, now: str) -> KubeObject:
        return {
            "apiVersion": LEASE_API_VERSION,
            "kind": "Lease",
            "metadata": {"name": self.ref.name, "namespace": self.namespace, "labels": {MEMBER_LABEL: "true"}},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.duration,
                "acquireTime": now,
                "renewTime": now,
            },
        }

    def _on_lease(self, change: LiveChange) -> None:
        identity = str((change.object.get("spec") or {}).get("holderIdentity") or "")
        if not identity:
            return
        if change.type == "DELETED":
            self.table.remove(identity)
        else:
            self.table.observe(identity, str((change.object.get("spec") or {}).get("renewTime") or ""), self._clock())
        self._judge()

    def _judge(self) -> None:
        """Tells the listeners when the set of live members changed; this member counts only with a valid Lease."""
        if not self._known:
            return
        now = self._clock()
        if now - self._judged_at > self.duration / 3:
            self.table.resume(now)  # this process was paused: it cannot judge the others
        self._judged_at = now
        if not self._settled:
            if self.table.undetermined(now) - {self.identity}:
                return
            self._settled = True
        alive = set(self.table.alive(now))
        alive.discard(self.identity)
        if self.own_lease_valid():
            alive.add(self.identity)
        members = frozenset(alive)
        if members == self._members:
            return
        log.info("members now: %s", ", ".join(sorted(members)) or "none (this member's Lease lapsed)")
        self._members = members
        for listener in self._listeners:
            listener(members)

    async def _forget_long_gone(self, now: float) -> None:
        for identity in self.table.long_gone(now):
            self.table.remove(identity)
            if identity == self.identity:
                continue
            gone = ObjectRef("coordination.k8s.io", "v1", "Lease", self.namespace, lease_name(identity))
            try:
                await self.api.delete(gone)
            except MoorError as error:
                log.info("could not delete the Lease of gone member %s: %s", identity, error)
