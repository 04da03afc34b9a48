"""What a Sync wants in the cluster at one revision: render its path, then stamp label and namespace.

Shared by the controller and by `moor diff`, so both see exactly the same objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moor import render
from moor.cluster.discovery import Discovery
from moor.controller.secrets import SecretMissing
from moor.controller.source_store import SourceStore
from moor.names import LABEL_VALUE_MAX, fit_name
from moor.objects import KubeObject, ObjectRef
from moor.plan import prepare_desired, with_arriving_kinds
from moor.resources import SyncSpec


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


async def desired_objects(
    sync: KubeObject,
    spec: SyncSpec,
    root: Path,
    discovery: Discovery,
    decryption: render.DecryptionKeys | None = None,
    *,
    keep_encrypted: bool = False,
) -> list[KubeObject]:
    """Renders `spec.path` under `root` (decrypting SOPS documents with `decryption`, or without keys and
    with `keep_encrypted` leaving them encrypted) and prepares every object for server-side apply."""
    helm = None
    if spec.helm is not None:
        helm = render.HelmOptions(
            values_files=spec.helm.values_files,
            values=spec.helm.values,
            release_name=spec.helm.release_name or ObjectRef.of(sync).name,
        )
    await discovery.ensure_loaded()
    request = render.RenderRequest(
        root=root,
        path=spec.path,
        helm=helm,
        namespace=spec.target_namespace,
        kube_version=discovery.server_version or None,
        decryption=decryption,
        keep_encrypted=keep_encrypted,
    )
    objects = await render.render(request)
    if any(discovery.known_namespaced(str(o.get("apiVersion", "")), str(o.get("kind", ""))) is None for o in objects):
        await discovery.refresh(force=False)
    scope = with_arriving_kinds(discovery.known_namespaced, objects)
    return prepare_desired(objects, sync_key(sync), spec.target_namespace, scope, ObjectRef.of(sync).namespace)
