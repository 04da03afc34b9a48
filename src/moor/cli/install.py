"""`moor install`: Moor's CRDs and RBAC (and with --with-controller, its Deployment) into the cluster."""

from __future__ import annotations

import click

from moor.bootstrap.install import install_objects, installation_objects
from moor.cli.options import Target, run_async, target_options


@click.command()
@click.option("--with-controller", is_flag=True, help="Also run the controller in the cluster (a Deployment).")
@click.option(
    "--replicas",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="With --with-controller: replicas sharing the work (more than 1 adds a PodDisruptionBudget).",
)
@target_options
def install(target: Target, with_controller: bool, replicas: int) -> None:
    """Install Moor's custom resource definitions and RBAC into the current cluster."""
    if replicas > 1 and not with_controller:
        raise click.BadParameter("needs --with-controller", param_hint="--replicas")
    raise SystemExit(run_async(_install(target, with_controller, replicas)))


async def _install(target: Target, with_controller: bool, replicas: int) -> int:
    objects = installation_objects(with_controller=with_controller, replicas=replicas)
    async with target.connect() as api:
        installed = await install_objects(api, objects)
    for ref in installed.created:
        click.echo(f"{ref} created")
    for ref in installed.configured:
        click.echo(f"{ref} configured")
    for ref in installed.unchanged:
        click.echo(f"{ref} unchanged")
    return 0
