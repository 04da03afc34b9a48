"""Desired objects made ready to plan and apply: labelled for their Sync and placed in a namespace."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from moor.errors import MoorError
from moor.objects import SYNC_LABEL, Identity, KubeObject, ObjectRef, split_api_version
from moor.sharding.assignment import BUCKET_LABEL, bucket_label

IsNamespaced = Callable[[str, str], bool | None]
"""(apiVersion, kind) -> True (namespaced), False (cluster-scoped), None (kind unknown to the cluster)."""


class MissingNamespaceError(MoorError):
    """A namespaced object declares no namespace and the Sync sets no targetNamespace."""


class DuplicateObjectError(MoorError):
    """Two desired objects name the same object."""


def prepare_desired(
    objects: Iterable[Mapping[str, Any]],
    sync_key: str,
    target_namespace: str | None,
    is_namespaced: IsNamespaced,
    default_namespace: str | None = None,
) -> list[KubeObject]:
    """Copies of `objects` carrying the `moor.dev/sync` label, the shard bucket of that Sync (a member of
    several replicas watches only its buckets' objects) and the namespace they will live in.

    Namespaced objects get `target_namespace` when it is set (it wins over a namespace in Git, as in
    Flux), else keep their own, else get `default_namespace` (the Sync's own, as Argo CD places them
    in the Application's destination); cluster-scoped objects lose any namespace; objects of a kind
    the cluster does not know are left as they are, for the API server to reject with its own reason.
    """
    prepared: list[KubeObject] = []
    bucket = bucket_label(sync_key)
    for original in objects:
        # Copies of the parts changed here; the rest is shared with `original`, and nothing changes it.
        obj: KubeObject = dict(original)
        metadata = obj["metadata"] = dict(obj.get("metadata") or {})
        metadata["labels"] = {**(metadata.get("labels") or {}), SYNC_LABEL: sync_key, BUCKET_LABEL: bucket}
        scope = is_namespaced(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if scope is True:
            if target_namespace:
                metadata["namespace"] = target_namespace
            elif not metadata.get("namespace") and default_namespace:
                metadata["namespace"] = default_namespace
            elif not metadata.get("namespace"):
                raise MissingNamespaceError(
                    f"{ObjectRef.of(obj)} declares no namespace and the Sync sets no targetNamespace."
                )
        elif scope is False:
            metadata.pop("namespace", None)
        prepared.append(obj)
    ensure_unique(prepared)
    return prepared


def with_arriving_kinds(is_namespaced: IsNamespaced, objects: Iterable[Mapping[str, Any]]) -> IsNamespaced:
    """`is_namespaced`, completed by the CustomResourceDefinitions among `objects`: custom resources whose
    CRD arrives in the same change get their scope from it, so they are placed (and dry-run) correctly
    before the cluster serves their kind."""
    arriving: dict[tuple[str, str], bool] = {}
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition" and str(obj.get("apiVersion", "")).startswith(
            "apiextensions.k8s.io/"
        ):
            spec = obj.get("spec") or {}
            kind = str((spec.get("names") or {}).get("kind", ""))
            arriving[(str(spec.get("group", "")), kind)] = spec.get("scope") == "Namespaced"

    def scope(api_version: str, kind: str) -> bool | None:
        known = is_namespaced(api_version, kind)
        if known is not None:
            return known
        return arriving.get((split_api_version(api_version)[0], kind))

    return scope


def ensure_unique(objects: Iterable[Mapping[str, Any]]) -> None:
    """Raises DuplicateObjectError when two objects name the same object (in any API version)."""
    seen: set[Identity] = set()
    for obj in objects:
        ref = ObjectRef.of(obj)
        if ref.identity in seen:
            raise DuplicateObjectError(f"{ref} is declared more than once.")
        seen.add(ref.identity)
