"""`moor install`: Moor's CRDs and RBAC (and with --with-controller, its Deployment) into the cluster."""

from __future__ import annotations

import click

from moor.cli.options import Target, run_async, target_options
from moor.cluster.api import KubeApi
from moor.cluster.apply import Applier
from moor.crds import load_crds
from moor.manifests import load_manifests
from moor.objects import KubeObject, ObjectRef
from moor.plan import compare


@click.command()
@click.option("--with-controller", is_flag=True, help="Also run the controller in the cluster (a Deployment).")
@target_options
def install(target: Target, with_controller: bool) -> None:
    """Install Moor's custom resource definitions and RBAC into the current cluster."""
    raise SystemExit(run_async(_install(target, with_controller)))


async def _install(target: Target, with_controller: bool) -> int:
    async with target.connect() as api:
        objects = [*load_crds(), *load_manifests(with_controller=with_controller)]
        live = {ObjectRef.of(obj): await _live(api, ObjectRef.of(obj)) for obj in objects}
        changed = [obj for obj in objects if (current := live[ObjectRef.of(obj)]) is None or compare(obj, current)]
        existing = [ref for ref, current in live.items() if current is not None]
        outcome = await Applier(api, force=True).apply_set(changed, existing)
    for ref in outcome.created:
        click.echo(f"{ref} created")
    for ref in outcome.configured:
        click.echo(f"{ref} configured")
    for obj in objects:
        if obj not in changed:
            click.echo(f"{ObjectRef.of(obj)} unchanged")
    return 0


async def _live(api: KubeApi, ref: ObjectRef) -> KubeObject | None:
    if await api.discovery.resolve_ref(ref) is None:
        return None
    return await api.get(ref)
