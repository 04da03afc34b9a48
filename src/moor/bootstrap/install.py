"""Moor's own objects into a cluster: its CRDs, namespace, identity and RBAC (and, on request, the
controller's Deployment), written only where they differ from what is live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moor.cluster.api import KubeApi
from moor.cluster.apply import Applier
from moor.crds import load_crds
from moor.manifests import load_manifests
from moor.objects import KubeObject, ObjectRef
from moor.plan import compare


def installation_objects(*, with_controller: bool, replicas: int = 1) -> list[dict[str, Any]]:
    """The CRDs first, then the namespace, ServiceAccount, RBAC and (with_controller) the Deployment, with
    its PodDisruptionBudget when it runs several `replicas`."""
    return [*load_crds(), *load_manifests(with_controller=with_controller, replicas=replicas)]


@dataclass(frozen=True)
class Installed:
    """What installing did to each object: created, configured or unchanged, in apply order."""

    created: tuple[ObjectRef, ...]
    configured: tuple[ObjectRef, ...]
    unchanged: tuple[ObjectRef, ...]


async def install_objects(api: KubeApi, objects: list[KubeObject]) -> Installed:
    """Applies `objects` with force (Moor's field manager owns them), skipping those already as declared."""
    live = {ObjectRef.of(obj): await _live(api, ObjectRef.of(obj)) for obj in objects}
    changed = [obj for obj in objects if (current := live[ObjectRef.of(obj)]) is None or compare(obj, current)]
    existing = [ref for ref, current in live.items() if current is not None]
    outcome = await Applier(api, force=True).apply_set(changed, existing)
    unchanged = tuple(ObjectRef.of(obj) for obj in objects if obj not in changed)
    return Installed(tuple(outcome.created), tuple(outcome.configured), unchanged)


async def _live(api: KubeApi, ref: ObjectRef) -> KubeObject | None:
    if await api.discovery.resolve_ref(ref) is None:
        return None
    return await api.get(ref)
