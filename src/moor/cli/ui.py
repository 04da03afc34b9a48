"""`moor ui`: the dashboard on this machine, with the user's own kubeconfig (every read and action is theirs)."""

from __future__ import annotations

import asyncio
import signal
import webbrowser

import click

from moor.cli.options import Target, target_options
from moor.cluster.api import KubeApi
from moor.cluster.client import KubeClient
from moor.cluster.config import load_credentials
from moor.web.ui import serve_local


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: any free one).")
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (loopback keeps other machines out; the login link keeps other local users out).",
)
@click.option("--open/--no-open", "open_browser", default=False, show_default=True, help="Open the link in a browser.")
@target_options
def ui(target: Target, port: int, address: str, open_browser: bool) -> None:
    """Serve the dashboard until Ctrl-C and print the link that logs a browser in."""
    asyncio.run(_ui(target, address, port, open_browser))


async def _ui(target: Target, address: str, port: int, open_browser: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    credentials = load_credentials(target.kubeconfig, target.context)
    async with KubeClient(credentials) as client:
        try:
            served = await serve_local(KubeApi(client), address, port)
        except OSError as error:
            raise click.ClickException(f"cannot serve on {address}:{port}: {error.strerror or error}") from None
        try:
            click.echo(f"Moor dashboard: {served.login_url}", err=False)
            click.echo("The link logs one browser in, once. Stop with Ctrl-C.", err=True)
            if open_browser:
                webbrowser.open(served.login_url)
            await stop.wait()
        finally:
            await served.close()
