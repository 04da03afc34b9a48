"""The `moor` entry point: one click group, user errors printed as one sentence, no tracebacks."""

from __future__ import annotations

import sys

import click

from moor import __version__
from moor.cli.audit import audit
from moor.cli.bootstrap import bootstrap
from moor.cli.build import build
from moor.cli.check import check
from moor.cli.cluster import cluster
from moor.cli.completion import completion
from moor.cli.convert import convert
from moor.cli.create import create
from moor.cli.diff import diff
from moor.cli.events import events
from moor.cli.export import export
from moor.cli.install import install
from moor.cli.managed import drift, tree
from moor.cli.push import push_group
from moor.cli.revisions import approve, history, rollback
from moor.cli.run import run
from moor.cli.stats import stats
from moor.cli.syncs import get, reconcile, resume, suspend
from moor.cli.trace import trace
from moor.cli.ui import ui
from moor.cli.uninstall import uninstall
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


COMMANDS = (
    *(cluster, install, bootstrap, check, uninstall, run),
    *(get, reconcile, diff, build, tree, trace, drift, events, history, rollback, approve, suspend, resume),
    *(create, export, convert, audit, stats, completion, push_group, ui),
)
for command in COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli(prog_name="moor")  # also under `python -m moor`, so completion and help name the command
