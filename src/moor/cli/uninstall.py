"""`moor uninstall`: the controller, then Moor's CRDs and RBAC, out of the cluster; what Moor applied stays.

In order: the in-cluster Deployment is deleted; every Sync is suspended and loses Moor's finalizer, so
no controller (not even a `moor run` still running elsewhere) prunes or re-applies anything; with
`--delete-objects`, the objects each Sync applied are then deleted (those marked
`moor.dev/prune: disabled` excepted); then the CRDs (and with them every GitRepository, Sync, SyncRecord,
Provider and Alert) unless `--keep-crds`; then the RBAC and ServiceAccount. The namespace is kept: it
may hold the user's own objects. Each removal is printed.
"""

from __future__ import annotations

import asyncio
import time

import click

from moor.cli.options import Target, run_async, target_options
from moor.cluster.api import KubeApi
from moor.controller.rendering import sync_key
from moor.controller.sync import FINALIZER
from moor.crds import load_crds
from moor.manifests import load_manifests
from moor.objects import PRUNE_ANNOTATION, PRUNE_DISABLED, SYNC_LABEL, KubeObject, ObjectRef
from moor.resources import API_VERSION, SYNC

CRD_DELETION_WAIT = 60.0
"""Seconds `moor uninstall` waits for the CRDs (and so every object of Moor's kinds) to be gone."""


@click.command()
@click.option(
    "--keep-objects/--delete-objects",
    default=True,
    show_default=True,
    help="Keep (default) or delete the objects the Syncs applied.",
)
@click.option("--keep-crds", is_flag=True, help="Keep the CRDs and with them every GitRepository and Sync.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@target_options
def uninstall(target: Target, keep_objects: bool, keep_crds: bool, yes: bool) -> None:
    """Remove Moor's controller, CRDs and RBAC from the cluster, keeping what it applied."""
    removed = ["the controller", "its RBAC"] + ([] if keep_crds else ["its CRDs with every GitRepository and Sync"])
    kept = "the objects the Syncs applied are kept" if keep_objects else "the objects the Syncs applied are DELETED"
    if not yes:
        click.confirm(f"This removes {', '.join(removed)}; {kept}. Continue?", abort=True, err=True)
    raise SystemExit(run_async(_uninstall(target, keep_objects, keep_crds)))


async def _uninstall(target: Target, keep_objects: bool, keep_crds: bool) -> int:
    manifests = load_manifests(with_controller=True, replicas=2)  # every object any install may have made
    async with target.connect() as api:
        for obj in manifests:
            if obj["kind"] == "Deployment":
                await _delete(api, ObjectRef.of(obj))
        for sync in await _syncs(api):
            await _release(api, sync)  # first, so no controller puts back what is deleted next
            if not keep_objects:
                await _delete_applied(api, sync)
        if not keep_crds:
            crds = [ObjectRef.of(crd) for crd in load_crds()]
            for ref in crds:
                await _delete(api, ref)
            await _wait_until_gone(api, crds)
        for obj in reversed(manifests):
            if obj["kind"] not in ("Deployment", "Namespace"):
                await _delete(api, ObjectRef.of(obj))
    return 0


async def _syncs(api: KubeApi) -> list[KubeObject]:
    resource = await api.discovery.resolve(API_VERSION, SYNC.kind)
    return (await api.list(resource)).items if resource is not None else []


async def _release(api: KubeApi, sync: KubeObject) -> None:
    """Suspends the Sync and drops Moor's finalizer: deleting it now prunes nothing."""
    finalizers = [name for name in sync["metadata"].get("finalizers") or [] if name != FINALIZER]
    await api.merge_patch(ObjectRef.of(sync), {"metadata": {"finalizers": finalizers}, "spec": {"suspend": True}})
    click.echo(f"{ObjectRef.of(sync)} released: suspended, no finalizer")


async def _delete_applied(api: KubeApi, sync: KubeObject) -> None:
    """Deletes what the Sync applied and still carries its label, except objects marked prune: disabled."""
    key = sync_key(sync)
    for entry in reversed((sync.get("status") or {}).get("inventory") or []):
        ref = ObjectRef.from_dict(entry)
        live = await api.get(ref)
        if live is None:
            continue
        metadata = live.get("metadata") or {}
        if (metadata.get("labels") or {}).get(SYNC_LABEL) != key:
            click.echo(f"{ref} kept: no longer labelled for {ObjectRef.of(sync)}")
        elif (metadata.get("annotations") or {}).get(PRUNE_ANNOTATION) == PRUNE_DISABLED:
            click.echo(f"{ref} kept: {PRUNE_ANNOTATION}: {PRUNE_DISABLED}")
        else:
            await _delete(api, ref)


async def _wait_until_gone(api: KubeApi, refs: list[ObjectRef], within: float = CRD_DELETION_WAIT) -> None:
    """A CRD is deleted only once its objects are: a `moor install` right after this must not find one still
    being deleted (it would apply to the old CRD, which then goes away)."""
    deadline = time.monotonic() + within
    for ref in refs:
        while await api.get(ref) is not None:
            if time.monotonic() > deadline:
                click.echo(f"{ref} is still being deleted after {within:.0f}s")
                return
            await asyncio.sleep(0.2)


async def _delete(api: KubeApi, ref: ObjectRef) -> None:
    if await api.discovery.resolve_ref(ref) is None or not await api.delete(ref):
        click.echo(f"{ref} was not there")
    else:
        click.echo(f"{ref} deleted")
