"""`moor cluster up|down|status`: the local control plane."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click

from moor.cli.options import print_document
from moor.devcluster import cluster_status, start_cluster, stop_cluster
from moor.devcluster.cluster import DEFAULT_TIMEOUT
from moor.errors import MoorError

DEFAULT_DIR = Path(".moor") / "cluster"

dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MOOR_CLUSTER_DIR",
    default=DEFAULT_DIR,
    show_default=True,
    help="Where the cluster keeps its data, credentials, logs and kubeconfig ($MOOR_CLUSTER_DIR).",
)


def _pairs(values: tuple[str, ...], what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise click.BadParameter(f"{value!r} is not of the form COMPONENT={what}")
        pairs.append((name, rest))
    return pairs


def _exit_on_signal(signum: int, _frame: object) -> None:
    sys.exit(128 + signum)


def _fail(error: MoorError) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(1)


@click.group()
def cluster() -> None:
    """A local Kubernetes control plane on loopback (etcd, apiserver, controllers, kwok)."""


@cluster.command()
@dir_option
@click.option(
    "--arg",
    "extra_args",
    multiple=True,
    metavar="COMPONENT=FLAG",
    help="Append FLAG to a component's command line, e.g. kube-apiserver=--v=4 (repeatable).",
)
@click.option(
    "--port",
    "fixed_ports",
    multiple=True,
    metavar="NAME=PORT",
    help="Use this loopback port instead of a free one, e.g. kube-apiserver=6443 (repeatable).",
)
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True, help="Seconds.")
def up(directory: Path, extra_args: tuple[str, ...], fixed_ports: tuple[str, ...], timeout: float) -> None:
    """Start a fresh cluster in DIR and wait until it is ready (exit 0 ready, 1 failed)."""
    args: dict[str, list[str]] = {}
    for name, flag in _pairs(extra_args, "FLAG"):
        args.setdefault(name, []).append(flag)
    ports = {}
    for name, port in _pairs(fixed_ports, "PORT"):
        if not port.isdigit():
            raise click.BadParameter(f"{port!r} is not a port number", param_hint="--port")
        ports[name] = int(port)
    began = time.monotonic()
    # SIGTERM or a closed terminal end `up` like Ctrl-C does: start_cluster stops what it started.
    previous = {signum: signal.signal(signum, _exit_on_signal) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        info = start_cluster(directory, ports=ports, extra_args=args, timeout=timeout)
    except MoorError as error:
        _fail(error)
        return
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    click.echo(
        f"cluster ready in {time.monotonic() - began:.1f}s: {info.server} "
        f"({len(info.nodes)} nodes: {', '.join(info.nodes)})"
    )
    click.echo(f"export KUBECONFIG={info.kubeconfig}")


@cluster.command()
@dir_option
def down(directory: Path) -> None:
    """Stop every process of the cluster in DIR (its files stay, for the logs)."""
    try:
        stopped = stop_cluster(directory)
    except MoorError as error:
        _fail(error)
        return
    if stopped:
        click.echo(f"stopped {', '.join(stopped)}")
    else:
        click.echo(f"no cluster is running in {directory.resolve()}")


@cluster.command()
@dir_option
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", show_default=True)
def status(directory: Path, output: str) -> None:
    """Show each component, its pid and whether it runs (exit 0 when all run, 1 otherwise)."""
    state = cluster_status(directory)
    if output != "text":
        print_document(
            {
                "directory": str(state.directory),
                "server": state.server,
                "running": state.running,
                "components": [
                    {"name": c.name, "pid": c.pid, "running": c.running, "log": str(c.log)} for c in state.components
                ],
            },
            output,
        )
    elif not state.components:
        click.echo(f"no cluster in {state.directory} (start one with `moor cluster up`)")
    else:
        click.echo(f"cluster in {state.directory}: {'running' if state.running else 'NOT running'}")
        click.echo(f"API server: {state.server}")
        click.echo(f"{'COMPONENT':<26}{'PID':>8}  STATE")
        for component in state.components:
            click.echo(f"{component.name:<26}{component.pid:>8}  {'running' if component.running else 'stopped'}")
    sys.exit(0 if state.running else 1)
