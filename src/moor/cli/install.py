"""`moor install`: Moor's CRDs and RBAC (and with --with-controller, its Deployment) into the cluster."""

from __future__ import annotations

import click

from moor.cli.options import Target, run_async, target_options
from moor.cluster.api import KubeApi
from moor.cluster.apply import Applier
from moor.crds import load_crds
from moor.manifests import load_manifests
from moor.objects import ObjectRef


@click.command()
@click.option("--with-controller", is_flag=True, help="Also run the controller in the cluster (a Deployment).")
@target_options
def install(target: Target, with_controller: bool) -> None:
    """Install Moor's custom resource definitions and RBAC into the current cluster."""
    raise SystemExit(run_async(_install(target, with_controller)))


async def _install(target: Target, with_controller: bool) -> int:
    async with target.connect() as api:
        objects = [*load_crds(), *load_manifests(with_controller=with_controller)]
        existing = [ObjectRef.of(obj) for obj in objects if await _exists(api, ObjectRef.of(obj))]
        outcome = await Applier(api, force=True).apply_set(objects, existing)
    for ref in outcome.created:
        click.echo(f"{ref} created")
    for ref in outcome.configured:
        click.echo(f"{ref} configured")
    return 0


async def _exists(api: KubeApi, ref: ObjectRef) -> bool:
    if await api.discovery.resolve_ref(ref) is None:
        return False
    return await api.get(ref) is not None
