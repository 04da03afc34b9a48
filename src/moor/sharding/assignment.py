"""Which member owns which bucket: consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam,
"Consistent Hashing with Bounded Loads", 2018). Pure: every member computes the same table from the same
list of members.

Every object falls into one of `BUCKETS` buckets by a hash of its shard key (`bucket_of`); the buckets,
not the objects, are assigned, so a member's share is a short list of numbers that also selects the
managed objects it watches (`moor.dev/shard-bucket in (...)`). Each member stands on a ring at
`POINTS_PER_MEMBER` places; a bucket goes to the first member clockwise from its own place that holds
fewer than `capacity` buckets, capacity = ceil(LOAD_FACTOR * buckets / members). No member holds more than
that, and a member joining or leaving moves about 1/N of the buckets (a little more where a full member
passes its overflow on).
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

BUCKETS = 128
"""Fixed for the life of a cluster: the bucket label of every managed object depends on it."""
LOAD_FACTOR = 1.25
"""c of the bounded loads: no member holds more than c times the mean number of buckets."""
POINTS_PER_MEMBER = 64
"""Places of each member on the ring: more places spread the buckets more evenly before the bound."""
BUCKET_LABEL = "moor.dev/shard-bucket"
"""On every managed object: the bucket of the Sync that applies it (so a member watches only its shard's)."""


def ring_position(text: str) -> int:
    """A stable 64-bit place on the ring (the same in every process, unlike hash())."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def bucket_of(shard_key: str, buckets: int = BUCKETS) -> int:
    """The bucket of an object, from its shard key (see `moor.sharding.shard.shard_key`)."""
    return ring_position(shard_key) % buckets


def bucket_label(sync_key: str) -> str:
    """The `moor.dev/shard-bucket` value of the objects a Sync applies (from its `moor.dev/sync` value)."""
    return str(bucket_of(sync_key))


def capacity(members: int, buckets: int = BUCKETS, factor: float = LOAD_FACTOR) -> int:
    """The most buckets one member may hold."""
    return math.ceil(factor * buckets / members) if members else 0


@dataclass(frozen=True)
class Assignment:
    """The owner of every bucket; empty when there are no members."""

    owners: Mapping[int, str] = field(default_factory=dict)

    def owner_of(self, bucket: int) -> str | None:
        return self.owners.get(bucket)

    def buckets_of(self, member: str) -> frozenset[int]:
        return frozenset(bucket for bucket, owner in self.owners.items() if owner == member)

    def loads(self) -> dict[str, int]:
        """Buckets per member."""
        loads: dict[str, int] = {}
        for owner in self.owners.values():
            loads[owner] = loads.get(owner, 0) + 1
        return loads


def assign(members: Iterable[str], buckets: int = BUCKETS, factor: float = LOAD_FACTOR) -> Assignment:
    """Every bucket onto one of `members` (order and duplicates do not matter)."""
    names = sorted(set(members))
    if not names:
        return Assignment()
    ring = sorted((ring_position(f"{name}#{point}"), name) for name in names for point in range(POINTS_PER_MEMBER))
    places = [place for place, _ in ring]
    limit = capacity(len(names), buckets, factor)
    loads = dict.fromkeys(names, 0)
    owners: dict[int, str] = {}
    for bucket in range(buckets):
        index = bisect.bisect(places, ring_position(f"bucket-{bucket}")) % len(ring)
        while loads[ring[index][1]] >= limit:
            index = (index + 1) % len(ring)
        owner = ring[index][1]
        owners[bucket] = owner
        loads[owner] += 1
    return Assignment(owners)


def moved(before: Assignment, after: Assignment) -> int:
    """How many buckets changed owner between two tables."""
    return sum(1 for bucket, owner in after.owners.items() if before.owner_of(bucket) != owner)
