"""The controller's own HTTP endpoints besides webhooks: `/livez`, `/healthz` and Prometheus' `/metrics`.

`/livez` only says the process answers (the liveness probe: a restart cannot mend anything else),
`/healthz` whether it can do its work (the readiness probe: a failing watch, a background task that
keeps failing)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from moor.web.listener import Listener, ListenerLimits, ListenerMetrics, serve_app

_MAX_BODY = 64 * 1024
"""Probes take no body; anything larger is refused before it is read."""


def create_app(
    *, registry: CollectorRegistry | None = None, problems: Callable[[], list[str]] | None = None
) -> web.Application:
    """`/livez`: 200 "ok"; `/healthz`: 200 "ok", or 503 with one line per problem the controller reports;
    `/metrics` when a `registry` is given."""

    async def livez(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def healthz(_: web.Request) -> web.Response:
        found = problems() if problems is not None else []
        if found:
            return web.Response(status=503, text="".join(f"{problem}\n" for problem in found))
        return web.Response(text="ok")

    async def metrics(_: web.Request) -> web.Response:
        assert registry is not None
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(client_max_size=_MAX_BODY)
    app.router.add_get("/livez", livez)
    app.router.add_get("/healthz", healthz)
    if registry is not None:
        app.router.add_get("/metrics", metrics)
    return app


async def serve(
    port: int,
    *,
    registry: CollectorRegistry | None = None,
    problems: Callable[[], list[str]] | None = None,
    address: str = "0.0.0.0",
    limits: ListenerLimits | None = None,
    metrics: ListenerMetrics | None = None,
) -> Listener:
    """Serves `/livez`, `/healthz`, and `/metrics` from `registry` when one is given, on `address:port`."""
    app = create_app(registry=registry, problems=problems)
    name = "metrics" if registry is not None else "health"
    return await serve_app(app, address, port, name=name, limits=limits, metrics=metrics)
