"""`moor run`: the controller, out of cluster (kubeconfig) or in cluster (its ServiceAccount)."""

from __future__ import annotations

import asyncio
import logging
import signal
import tempfile
from pathlib import Path

import click
from aiohttp import web

from moor.cli.options import Target, target_options
from moor.cluster.api import KubeApi
from moor.cluster.client import KubeClient
from moor.cluster.config import load_credentials
from moor.controller.runtime import Controller, ControllerOptions


@click.command()
@click.option(
    "--artifact-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MOOR_ARTIFACT_DIR",
    default=None,
    help="Where fetched revisions are cached (disposable; default: a temp dir).",
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=4, show_default=True, help="Objects reconciled at the same time."
)
@click.option(
    "--apply-concurrency",
    type=click.IntRange(1, 256),
    default=16,
    show_default=True,
    help="API requests in flight per apply.",
)
@click.option(
    "--health-port", type=int, envvar="MOOR_HEALTH_PORT", default=0, help="Serve GET /healthz on this port (0: off)."
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info", show_default=True)
@target_options
def run(
    target: Target, artifact_dir: Path | None, workers: int, apply_concurrency: int, health_port: int, log_level: str
) -> None:
    """Run the controller until SIGTERM or Ctrl-C."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    directory = artifact_dir or Path(tempfile.mkdtemp(prefix="moor-artifacts-"))
    options = ControllerOptions(artifact_dir=directory, workers=workers, apply_concurrency=apply_concurrency)
    asyncio.run(_run(target, options, health_port))


async def _run(target: Target, options: ControllerOptions, health_port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    credentials = load_credentials(target.kubeconfig, target.context)
    async with KubeClient(credentials) as client:
        runner = await _serve_health(health_port) if health_port else None
        try:
            await Controller(KubeApi(client), options).run(stop)
        finally:
            if runner is not None:
                await runner.cleanup()


async def _serve_health(port: int) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner
