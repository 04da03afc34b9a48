"""A Sync's resource tree: the objects it manages, and under each what the cluster made of it.

Pure: the inventory, the live objects and the cluster's children (ReplicaSets, Pods, Jobs) in; nodes
out. Children hang under the object their ownerReferences name (by uid), to any depth
(Deployment -> ReplicaSet -> Pod, CronJob -> Job -> Pod).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moor.health import HealthState
from moor.health.cel import HealthChecks, assess_health_by
from moor.objects import Identity, KubeObject, ObjectRef
from moor.resources.sync import health_checks_of

CHILD_KINDS = (("apps", "v1", "ReplicaSet", "replicasets"), ("", "v1", "Pod", "pods"), ("batch", "v1", "Job", "jobs"))
"""What the cluster makes of managed objects, listed per namespace for the tree: (group, version, kind, plural)."""
MAX_DEPTH = 4


@dataclass(frozen=True)
class Drifted:
    paths: tuple[str, ...]
    manager: str
    at: str

    @property
    def deleted(self) -> bool:
        return self.paths == ("/",)


@dataclass(frozen=True)
class Node:
    ref: ObjectRef
    health: str
    """Healthy, Progressing, Failed, or Missing when the object does not exist."""
    message: str
    managed: bool
    """Declared in Git (a child the cluster made is not)."""
    drift: Drifted | None = None
    children: tuple[Node, ...] = ()

    def walk(self) -> Iterable[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


def drift_by_identity(status: Mapping[str, Any]) -> dict[Identity, Drifted]:
    """The Sync's reported drift (status.drift) per object."""
    found: dict[Identity, Drifted] = {}
    for entry in status.get("drift") or []:
        identity = (
            str(entry.get("group", "")),
            str(entry.get("kind")),
            str(entry.get("namespace", "")),
            str(entry.get("name")),
        )
        found[identity] = Drifted(
            tuple(entry.get("paths") or ()), str(entry.get("manager", "unknown")), str(entry.get("at", ""))
        )
    return found


def build_tree(
    sync: KubeObject, live: Callable[[ObjectRef], KubeObject | None], children: Sequence[KubeObject]
) -> tuple[Node, ...]:
    """One node per inventory entry, in inventory order, with the cluster's children under it."""
    status = sync.get("status") or {}
    drift = drift_by_identity(status)
    owned: dict[str, list[KubeObject]] = defaultdict(list)
    for child in children:
        for owner in (child.get("metadata") or {}).get("ownerReferences") or []:
            owned[str(owner.get("uid", ""))].append(child)
    checks = health_checks_of(sync)
    nodes = []
    for entry in status.get("inventory") or []:
        ref = ObjectRef.from_dict(entry)
        obj = live(ref)
        nodes.append(_node(ref, obj, True, drift.get(ref.identity), owned, 0, checks))
    return tuple(nodes)


def _node(
    ref: ObjectRef,
    obj: KubeObject | None,
    managed: bool,
    drifted: Drifted | None,
    owned: Mapping[str, list[KubeObject]],
    depth: int,
    checks: HealthChecks,
) -> Node:
    if obj is None:
        return Node(ref, "Missing", f"{ref} does not exist", managed, drifted)
    health = assess_health_by(obj, checks)
    uid = str((obj.get("metadata") or {}).get("uid", ""))
    kids = sorted(owned.get(uid, []) if uid and depth < MAX_DEPTH else [], key=lambda o: ObjectRef.of(o).sort_key())
    return Node(
        ref,
        health.state.value,
        health.message,
        managed,
        drifted,
        tuple(_node(ObjectRef.of(kid), kid, False, None, owned, depth + 1, checks) for kid in kids),
    )


def worst(nodes: Iterable[Node]) -> str:
    """The worst health among `nodes` and their children (Missing counts as Failed)."""
    order = {HealthState.HEALTHY.value: 0, HealthState.PROGRESSING.value: 1, HealthState.FAILED.value: 2, "Missing": 2}
    states = [node.health for top in nodes for node in top.walk()]
    return max(states, key=lambda state: order.get(state, 1), default=HealthState.HEALTHY.value)
