"""Who is alive, judged by each watcher's own clock from when it last saw a Lease's renewTime change."""

from __future__ import annotations

import asyncio

import pytest

from moor.sharding.assignment import assign
from moor.sharding.fence import Fence, Fenced, reconciling
from moor.sharding.membership import MemberTable, member_identity
from moor.sharding.shard import Shard


def test_a_member_is_gone_once_its_renew_time_stays_the_same_for_a_duration() -> None:
    table = MemberTable(duration=15)
    table.observe("a", "2026-01-01T00:00:00.000000Z", now=100.0)
    table.observe("b", "1999-01-01T00:00:00.000000Z", now=100.0)  # a clock far behind does not matter
    table.observe("b", "1999-01-01T00:00:04.000000Z", now=104.0)
    table.observe("a", "2026-01-01T00:00:05.000000Z", now=110.0)
    table.observe("b", "1999-01-01T00:00:04.000000Z", now=110.0)  # seen again, unchanged
    assert table.alive(118.9) == {"a", "b"}
    assert table.alive(119.0) == {"a"}
    assert table.alive(125.0) == frozenset()


def test_a_lease_found_already_there_is_undetermined_until_it_renews_or_a_duration_passes() -> None:
    table = MemberTable(duration=15)
    table.observe("dead", "t0", now=0.0)  # a member killed a while ago left it
    table.observe("live", "t0", now=0.0)
    assert table.alive(1.0) == frozenset()
    assert table.undetermined(1.0) == {"dead", "live"}
    table.observe("live", "t1", now=5.0)
    assert table.alive(6.0) == {"live"}
    assert table.undetermined(6.0) == {"dead"}
    assert table.undetermined(15.0) == frozenset()
    assert table.alive(15.0) == {"live"}


def test_a_watcher_that_was_paused_gives_every_member_a_full_duration_again() -> None:
    table = MemberTable(duration=15)
    table.observe("a", "t0", now=0.0)
    table.observe("a", "t1", now=1.0)
    table.resume(now=60.0)
    assert table.alive(74.0) == {"a"}
    assert table.long_gone(74.0) == []
    assert table.long_gone(60.0 + 2 * 15) == ["a"]


def test_identities_fit_a_lease_name() -> None:
    assert member_identity("Moor_Pod/7:abc") == "moor-pod-7-abc"
    with pytest.raises(ValueError):
        member_identity("__")


class _Lease:
    def __init__(self) -> None:
        self.valid = True

    def own_lease_valid(self) -> bool:
        return self.valid


def test_writes_are_fenced_on_the_lease_and_on_the_object_staying_in_the_shard() -> None:
    async def scenario() -> None:
        shard = Shard("a", grace=0.05)
        shard.update(frozenset({"a"}))
        lease = _Lease()
        fence = Fence(lease, shard)
        three = assign(["a", "b", "c"])
        names = (f"app-{index}" for index in range(1000))
        moving = next(name for name in names if three.owner_of(shard.bucket("Sync", "ns", name)) != "a")
        sync = {"kind": "Sync", "metadata": {"namespace": "ns", "name": moving}}
        with reconciling(sync):
            fence.check()
            shard.update(frozenset({"a", "b", "c"}))
            with pytest.raises(Fenced, match="moved to another member"):
                fence.check()
        lease.valid = False
        with pytest.raises(Fenced):
            fence.check()

    asyncio.run(scenario())


def test_a_bucket_gained_from_a_live_member_is_taken_after_the_grace_one_from_a_gone_member_at_once() -> None:
    async def scenario() -> None:
        changes = []
        shard = Shard("b", grace=0.1)
        shard.subscribe(changes.append)
        shard.update(frozenset({"a", "b"}))  # b joins while a is alive: a hands over
        assert shard.active == frozenset()
        await asyncio.sleep(0.2)
        assert shard.active == shard.table.buckets_of("b") and shard.active
        shard.update(frozenset({"b"}))  # a is gone: its buckets come at once
        assert len(shard.active) == 128
        assert shard.leader
        shard.update(frozenset({"a", "b"}))  # a is back: b drops at once what a owns
        assert shard.active == shard.table.buckets_of("b")
        assert [len(change.lost) for change in changes][-1] == 128 - len(shard.active)

    asyncio.run(scenario())
