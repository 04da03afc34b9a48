"""`moor bootstrap git`: a cluster set up from a path of a Git repository, Moor itself included."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from moor.bootstrap.git import BootstrapResult, bootstrap_from_git
from moor.bootstrap.manifests import BootstrapSpec
from moor.cli.options import Target, run_async, target_options
from moor.resources import DurationError, parse_duration


@click.group()
def bootstrap() -> None:
    """Set a cluster up from Git: Moor installed, and kept in sync with a path of a repository."""


@bootstrap.command("git")
@click.option("--url", required=True, help="The repository (https://, ssh://, file:// or user@host:path).")
@click.option("--branch", default="main", show_default=True, help="The branch to follow (created if missing).")
@click.option("--path", "path", required=True, help="The cluster's directory in the repository, e.g. clusters/dev.")
@click.option("--secret-ref", default=None, help="A Secret in moor-system with the repository's credentials.")
@click.option("--author", default="Moor <moor@localhost>", show_default=True, help="Author of the bootstrap commit.")
@click.option("--interval", default="1m", show_default=True, help="How often the source and the Sync are checked.")
@click.option("--timeout", "wait", default="5m", show_default=True, help="How long to wait for every Sync to be Ready.")
@click.option(
    "--with-controller/--without-controller",
    default=True,
    show_default=True,
    help="Write the controller's Deployment into the repository (without: run `moor run` elsewhere).",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="Take over objects another tool applied: the fields Moor declares move to it (nothing is re-created).",
)
@target_options
def bootstrap_git(
    target: Target,
    url: str,
    branch: str,
    path: str,
    secret_ref: str | None,
    author: str,
    interval: str,
    wait: str,
    with_controller: bool,
    adopt: bool,
) -> None:
    """Install Moor, commit its manifests under PATH, and sync PATH (exit 0: every Sync Ready, 1: not)."""
    try:
        wait_seconds = parse_duration(wait).total_seconds()
        parse_duration(interval)
    except DurationError as error:
        raise click.BadParameter(str(error)) from None
    if path.strip("/") in ("", "."):
        raise click.BadParameter("--path must name a directory of the repository, such as clusters/dev")
    spec = BootstrapSpec(url, branch, path.strip("/"), secret_ref, interval, with_controller, adopt)
    name, _, email = author.partition("<")
    identity = (name.strip() or "Moor", email.rstrip(">").strip() or "moor@localhost")
    raise SystemExit(run_async(_bootstrap(target, spec, identity, wait_seconds)))


async def _bootstrap(target: Target, spec: BootstrapSpec, author: tuple[str, str], wait_seconds: float) -> int:
    async with target.connect() as api:
        result = await bootstrap_from_git(api, spec, author=author, wait_seconds=wait_seconds, report=click.echo)
    _print(result)
    return 0 if result.ready else 1


def _print(result: BootstrapResult) -> None:
    table = Table(box=None, pad_edge=False)
    for column in ("SYNC", "READY", "REVISION", "MESSAGE"):
        table.add_column(column, no_wrap=column != "MESSAGE")
    for state in result.syncs:
        table.add_row(state.key, "True" if state.ready else "False", state.revision, state.message)
    Console().print(table if result.syncs else "No Syncs.")
    click.echo("every Sync is Ready" if result.ready else "not every Sync is Ready")
