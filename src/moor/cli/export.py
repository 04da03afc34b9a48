"""`moor export [sources|syncs|providers|alerts|all] [NAME] [-A]`: Moor's objects as clean YAML for Git or a backup.

Only what a user declares is kept: apiVersion, kind, name, namespace, labels, annotations and spec.
Status, server fields (uid, resourceVersion, managedFields, timestamps, generation, finalizers) and
request tokens (`moor.dev/reconcile`, kubectl's last-applied configuration) are dropped, so applying
the output recreates the same objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
import yaml

from moor.cli.options import Target, run_async, target_options
from moor.cli.syncs import NotFound
from moor.objects import RECONCILE_ANNOTATION, KubeObject
from moor.resources import ALERT, API_VERSION, GITREPOSITORY, HELMREPOSITORY, OCIREPOSITORY, PROVIDER, SYNC

KINDS = {
    "sources": (GITREPOSITORY.kind, OCIREPOSITORY.kind, HELMREPOSITORY.kind),
    "syncs": (SYNC.kind,),
    "providers": (PROVIDER.kind,),
    "alerts": (ALERT.kind,),
    "all": (GITREPOSITORY.kind, OCIREPOSITORY.kind, HELMREPOSITORY.kind, SYNC.kind, PROVIDER.kind, ALERT.kind),
}
DROPPED_ANNOTATIONS = (RECONCILE_ANNOTATION, "kubectl.kubernetes.io/last-applied-configuration")


@click.command()
@click.argument("what", type=click.Choice(list(KINDS)), default="all")
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", is_flag=True, help="Export from every namespace.")
@target_options
def export(target: Target, what: str, name: str | None, all_namespaces: bool) -> None:
    """Print Moor's objects as YAML without status or server fields (sources, syncs, … or all)."""
    raise SystemExit(run_async(_export(target, what, name, all_namespaces)))


async def _export(target: Target, what: str, name: str | None, all_namespaces: bool) -> int:
    namespace = None if all_namespaces else target.resolve_namespace()
    exported: list[KubeObject] = []
    async with target.connect() as api:
        for kind in KINDS[what]:
            resource = await api.discovery.resolve(API_VERSION, kind)
            if resource is None:
                raise NotFound(f"the cluster does not serve {kind}; run `moor install` first")
            items = (await api.list(resource, namespace=namespace)).items
            exported += [clean(obj) for obj in items if name is None or obj["metadata"]["name"] == name]
    if name is not None and not exported:
        raise NotFound(f"no {what} object named {name} in namespace {namespace}")
    exported.sort(
        key=lambda obj: (KINDS["all"].index(obj["kind"]), obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
    )
    click.echo(yaml.safe_dump_all(exported, sort_keys=False, allow_unicode=True), nl=False)
    return 0


def clean(obj: Mapping[str, Any]) -> KubeObject:
    """The object as a user declares it: identity, labels, annotations and spec; nothing the server adds."""
    metadata = obj.get("metadata") or {}
    kept: dict[str, Any] = {"name": metadata["name"]}
    if metadata.get("namespace"):
        kept["namespace"] = metadata["namespace"]
    if metadata.get("labels"):
        kept["labels"] = dict(metadata["labels"])
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k not in DROPPED_ANNOTATIONS}
    if annotations:
        kept["annotations"] = annotations
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": kept, "spec": obj.get("spec") or {}}
