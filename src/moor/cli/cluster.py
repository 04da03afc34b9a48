"""`moor cluster up|down|status`: the local control plane."""

import click


@click.group()
def cluster() -> None:
    """A local Kubernetes control plane on loopback (etcd, apiserver, controllers, kwok)."""
