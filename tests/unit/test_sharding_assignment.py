"""Consistent hashing with bounded loads: spread, movement on joins and leaves, determinism."""

from __future__ import annotations

import random

from moor.controller.rendering import sync_key
from moor.sharding.assignment import BUCKETS, LOAD_FACTOR, assign, bucket_label, capacity, moved
from moor.sharding.shard import Shard, bucket_selector, shard_key, shard_key_of


def members(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"moor-{rng.randrange(16**8):08x}" for _ in range(count)]


def test_every_bucket_has_one_owner_and_no_member_holds_more_than_the_bound() -> None:
    for count in range(1, 9):
        table = assign(members(count, seed=count))
        assert sorted(table.owners) == list(range(BUCKETS))
        loads = table.loads()
        assert len(loads) == count
        assert max(loads.values()) <= capacity(count) <= LOAD_FACTOR * BUCKETS / count + 1


def test_each_member_computes_the_same_table_whatever_the_order_it_lists_members_in() -> None:
    names = members(5)
    assert assign(names).owners == assign(list(reversed(names))).owners == assign([*names, names[0]]).owners


def test_three_to_four_to_two_members_move_about_one_in_n_buckets() -> None:
    for seed in range(5):
        four = members(4, seed)
        three, two = assign(four[:3]), assign(four[:2])
        joined, left = moved(three, assign(four)), moved(assign(four), two)
        assert 0.15 * BUCKETS <= joined <= 0.40 * BUCKETS  # ideal 1/4
        assert 0.35 * BUCKETS <= left <= 0.65 * BUCKETS  # two of four leave: ideal 1/2
        # Buckets of the members that stayed stay with them, but for the overflow of the bound.
        stayed = sum(
            1 for bucket, owner in assign(four).owners.items() if owner in four[:2] and two.owner_of(bucket) != owner
        )
        assert stayed <= 0.1 * BUCKETS


def test_no_members_own_nothing() -> None:
    assert assign([]).owner_of(0) is None


def test_a_syncs_bucket_is_that_of_the_objects_it_labels() -> None:
    sync = {"kind": "Sync", "metadata": {"namespace": "team-" + "a" * 60, "name": "app"}}
    key = shard_key("Sync", sync["metadata"]["namespace"], "app")
    assert key == sync_key(sync)
    assert bucket_label(sync_key(sync)).isdigit()


def test_the_live_cache_selector_names_the_buckets_or_nothing() -> None:
    assert bucket_selector([3, 1]) == "moor.dev/sync,moor.dev/shard-bucket in (1,3)"
    assert bucket_selector([]) == "moor.dev/sync,moor.dev/shard-bucket=none"


def test_an_image_policy_lands_in_the_bucket_of_the_repository_whose_scan_it_reads() -> None:
    shard = Shard("a")
    policy = {
        "kind": "ImagePolicy",
        "metadata": {"namespace": "apps", "name": "web-policy"},
        "spec": {"imageRepositoryRef": {"name": "web"}},
    }
    repository = {"kind": "ImageRepository", "metadata": {"namespace": "apps", "name": "web"}}
    assert shard_key_of(policy) == shard_key_of(repository) == "ImageRepository/apps/web"
    assert shard.bucket_of_object(policy) == shard.bucket("ImageRepository", "apps", "web")
