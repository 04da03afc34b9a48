"""The `moor` entry point: one click group, user errors printed as one sentence, no tracebacks."""

from __future__ import annotations

import sys

import click

from moor import __version__
from moor.cli.audit import audit
from moor.cli.build import build
from moor.cli.cluster import cluster
from moor.cli.diff import diff
from moor.cli.install import install
from moor.cli.revisions import approve, history, rollback
from moor.cli.run import run
from moor.cli.stats import stats
from moor.cli.syncs import drift, get, reconcile, resume, suspend, tree
from moor.errors import MoorError


class MoorGroup(click.Group):
    """Turns MoorError into one line on stderr and exit code 2 (commands choose 0/1 themselves)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MoorError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)


@click.group(cls=MoorGroup)
@click.version_option(__version__, prog_name="moor")
def cli() -> None:
    """Moor keeps a Kubernetes cluster equal to what Git declares."""


for command in (cluster, install, run, get, reconcile, diff, tree, drift, history, rollback, approve, suspend, resume):
    cli.add_command(command)
for command in (audit, stats, build):
    cli.add_command(command)


def main() -> None:
    cli()
