"""What a Sync wants in the cluster at one revision: render its path, then stamp label and namespace.

Shared by the controller and by `moor diff`, so both see exactly the same objects.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from moor import render
from moor.cluster.api import KubeApi
from moor.cluster.discovery import Discovery
from moor.controller.secrets import SecretMissing
from moor.controller.source_store import SourceStore
from moor.names import LABEL_VALUE_MAX, fit_name
from moor.objects import PRUNE_ANNOTATION, PRUNE_DISABLED, SYNC_LABEL, KubeObject, ObjectRef
from moor.plan import HOOK_LABEL, PhaseError, Phases, prepare_desired, split_phases, with_arriving_kinds
from moor.render.helm import CHART_CRD_ANNOTATION
from moor.render.request import ValuesLayer
from moor.resources import SyncSpec
from moor.resources.sync import HelmSpec, ValuesKind


def sync_key(sync: Mapping[str, Any]) -> str:
    """The value of the `moor.dev/sync` label on every object this Sync applies: `<namespace>.<name>`.

    A label value holds at most 63 characters; a longer key keeps a readable prefix and a hash of the
    whole, so it stays unique.
    """
    ref = ObjectRef.of(sync)
    return fit_name(f"{ref.namespace}.{ref.name}", limit=LABEL_VALUE_MAX)


async def decryption_keys(sync: KubeObject, spec: SyncSpec, sources: SourceStore) -> render.DecryptionKeys | None:
    """The age keys of `spec.decryption`'s Secret (in the Sync's namespace); None without decryption."""
    if spec.decryption is None:
        return None
    name = spec.decryption.secret_name
    origin = f"the decryption Secret {ObjectRef.of(sync).namespace}/{name}"
    try:
        data = await sources.secret_data(sync, name)
    except SecretMissing:
        raise render.RenderError(f"{origin} does not exist") from None
    return render.decryption_keys(data, origin)


async def helm_values_from(sync: KubeObject, spec: SyncSpec, api: KubeApi) -> tuple[ValuesLayer, ...]:
    """The keys `spec.helm.valuesFrom` names, read from the Sync's namespace in order; a missing object or
    key that is not optional is a RenderError naming it (an optional one is skipped)."""
    if spec.helm is None:
        return ()
    namespace = ObjectRef.of(sync).namespace
    layers = []
    for reference in spec.helm.values_from:
        origin = f"the {reference.kind} {namespace}/{reference.name} (key {reference.key}) of spec.helm.valuesFrom"
        obj = await api.get(ObjectRef("", "v1", str(reference.kind), namespace, reference.name))
        data = None if obj is None else _data_of(obj, reference.key, secret=reference.kind is ValuesKind.SECRET)
        if data is None:
            if reference.optional:
                continue
            missing = "does not exist" if obj is None else "has no such key"
            raise render.RenderError(f"{origin} {missing}")
        layers.append(ValuesLayer(origin, data, secret=reference.kind is ValuesKind.SECRET))
    return tuple(layers)


def _data_of(obj: KubeObject, key: str, *, secret: bool) -> bytes | None:
    if secret:
        encoded = (obj.get("data") or {}).get(key)
        return None if encoded is None else base64.b64decode(encoded)
    text = (obj.get("data") or {}).get(key)
    if text is not None:
        return str(text).encode("utf-8")
    binary = (obj.get("binaryData") or {}).get(key)
    return None if binary is None else base64.b64decode(binary)


def render_fingerprint(layers: Sequence[ValuesLayer], api_versions: Sequence[str], is_upgrade: bool) -> str:
    """A digest that changes when a render's cluster-side inputs do (valuesFrom data, served API versions,
    install or upgrade), safe to keep: it reveals nothing of the values."""
    digest = hashlib.sha256(b"upgrade" if is_upgrade else b"install")
    for layer in layers:
        digest.update(hashlib.sha256(layer.origin.encode()).digest() + hashlib.sha256(layer.data).digest())
    for api_version in api_versions:
        digest.update(hashlib.sha256(api_version.encode()).digest())
    return digest.hexdigest()


def served_api_versions(discovery: Discovery) -> tuple[str, ...]:
    """Every group/version the cluster serves and every group/version/Kind, as `helm template --api-versions`
    takes them (what `helm install` would learn from discovery), sorted so that renders are deterministic."""
    types = discovery.served()
    versions = {resource.api_version for resource in types}
    kinds = {f"{resource.api_version}/{resource.kind}" for resource in types}
    return tuple(sorted(versions | kinds))


def has_installed(sync: KubeObject) -> bool:
    """The Sync applied its objects before: a chart renders as an upgrade, not an install."""
    status = sync.get("status") or {}
    return bool(status.get("lastAppliedRevision") or status.get("inventory"))


async def desired_objects(
    sync: KubeObject,
    spec: SyncSpec,
    root: Path,
    discovery: Discovery,
    decryption: render.DecryptionKeys | None = None,
    *,
    keep_encrypted: bool = False,
    values_from: tuple[ValuesLayer, ...] | None = None,
) -> list[KubeObject]:
    """The objects a Sync keeps (applied, inventoried, pruned) at one render: `phased_objects` without its hooks."""
    objects, _ = await phased_objects(
        sync, spec, root, discovery, decryption, keep_encrypted=keep_encrypted, values_from=values_from
    )
    return objects


async def phased_objects(
    sync: KubeObject,
    spec: SyncSpec,
    root: Path,
    discovery: Discovery,
    decryption: render.DecryptionKeys | None = None,
    *,
    keep_encrypted: bool = False,
    values_from: tuple[ValuesLayer, ...] | None = None,
) -> tuple[list[KubeObject], Phases]:
    """Renders `spec.path` under `root` (decrypting SOPS documents with `decryption`, or without keys and
    with `keep_encrypted` leaving them encrypted), splits the hooks from the objects the Sync keeps, and
    prepares both for the cluster (hooks labelled `moor.dev/hook-of` instead of `moor.dev/sync`).

    `values_from` holds what `helm_values_from` read for `spec.helm.valuesFrom`; a render that was given
    none while the spec names some fails, so that no render silently lacks them.
    """
    helm = None
    if spec.helm is not None or spec.chart is not None:  # a HelmRepository's chart: helm options always
        options = spec.helm or HelmSpec()
        if values_from is None and options.values_from:
            raise render.RenderError("spec.helm.valuesFrom names ConfigMaps or Secrets, and none were read")
        helm = render.HelmOptions(
            values_files=options.values_files,
            values=options.values,
            release_name=options.release_name or ObjectRef.of(sync).name,
            values_from=values_from or (),
        )
    await discovery.ensure_loaded()
    is_upgrade = has_installed(sync)
    request = render.RenderRequest(
        root=root,
        path=spec.path,
        helm=helm,
        namespace=spec.target_namespace,
        kube_version=discovery.server_version or None,
        api_versions=served_api_versions(discovery),
        is_upgrade=is_upgrade,
        decryption=decryption,
        keep_encrypted=keep_encrypted,
    )
    rendered = await render.render(request)
    if any(discovery.known_namespaced(str(o.get("apiVersion", "")), str(o.get("kind", ""))) is None for o in rendered):
        await discovery.refresh(force=False)
    prune_crds = spec.helm is not None and spec.helm.prune_crds
    objects = [_chart_crd(obj, prune=prune_crds) for obj in rendered]
    kept, phases = split_phases(objects, is_upgrade=is_upgrade)
    for obj in kept:
        if not (obj.get("metadata") or {}).get("name"):
            generated = obj["metadata"].get("generateName")
            raise PhaseError(
                f"{ObjectRef.of(obj).kind} {generated}* has only a metadata.generateName, which only hooks may have: "
                "an object Moor keeps needs a name"
            )
    scope = with_arriving_kinds(discovery.known_namespaced, objects)
    key, home = sync_key(sync), ObjectRef.of(sync).namespace

    def place_hook(hook: KubeObject) -> KubeObject:
        placed = prepare_desired([hook], key, spec.target_namespace, scope, home)[0]
        labels = dict(placed["metadata"]["labels"])
        del labels[SYNC_LABEL]
        placed["metadata"]["labels"] = {**labels, HOOK_LABEL: key}
        return placed

    return prepare_desired(kept, key, spec.target_namespace, scope, home), phases.placed(place_hook)


def _chart_crd(obj: KubeObject, *, prune: bool) -> KubeObject:
    """A CRD of a chart's crds/ carries `moor.dev/prune: disabled` (never pruned, as Helm never deletes them)
    unless the Sync sets `spec.helm.pruneCRDs`."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if CHART_CRD_ANNOTATION not in annotations:
        return obj
    kept = {key: value for key, value in annotations.items() if key != CHART_CRD_ANNOTATION}
    if not prune:
        kept[PRUNE_ANNOTATION] = PRUNE_DISABLED
    metadata = {**obj["metadata"], "annotations": kept}
    if not kept:
        del metadata["annotations"]
    return {**obj, "metadata": metadata}
