"""The controller's own HTTP endpoints besides webhooks: `/healthz` and Prometheus' `/metrics`."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


async def serve(port: int, *, registry: CollectorRegistry | None = None, address: str = "0.0.0.0") -> web.AppRunner:
    """Serves `/healthz`, and `/metrics` from `registry` when one is given, on `address:port`."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics(_: web.Request) -> web.Response:
        assert registry is not None
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    if registry is not None:
        app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    return runner
