"""`moor run`: the controller, out of cluster (kubeconfig) or in cluster (its ServiceAccount).

With `--replicas` it is one member of several sharing the work (docs/scale-out.md): it registers a
Lease, reconciles only its shard, fences its writes, and deletes its Lease when stopped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from moor.cli.options import Target, target_options
from moor.cluster.api import KubeApi
from moor.cluster.client import KubeClient
from moor.cluster.config import load_credentials
from moor.controller.runtime import Controller, ControllerOptions
from moor.controller.sync_report import DEFAULT_CLUSTER_NAME
from moor.controller.tenancy import TenancyPolicy
from moor.render.tool import DEFAULT_MAX_CONCURRENT_RENDERS, RenderBudget, configure_render_budget
from moor.resources.fields import DNS1123_SUBDOMAIN
from moor.sharding.fence import Fence, FencedApi
from moor.sharding.membership import DEFAULT_LEASE_SECONDS, LeaseLost, LeaseMembership, member_identity
from moor.sharding.shard import Shard
from moor.source import ArtifactLimits, SourceError, parse_size
from moor.source.helm import IndexLimits
from moor.source.limits import DEFAULT_MAX_FILES
from moor.web import probes
from moor.web.listener import Listener, ListenerMetrics, raise_open_file_limit
from moor.web.receiver import DEFAULT_SECRET_NAME, SecretRef, WebhookSettings, serve_webhooks
from moor.web.ui import Served, serve_for_team

DEFAULT_NAMESPACE = "moor-system"


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
@click.option(
    "--webhook-port",
    type=click.IntRange(0, 65535),
    envvar="MOOR_WEBHOOK_PORT",
    default=0,
    help="Receive push webhooks (POST /hook) on this port (0: off).",
)
@click.option(
    "--webhook-address",
    envvar="MOOR_WEBHOOK_ADDRESS",
    default="0.0.0.0",
    show_default=True,
    help="Address the webhook receiver listens on.",
)
@click.option(
    "--webhook-secret",
    envvar="MOOR_WEBHOOK_SECRET",
    default=None,
    metavar="NAMESPACE/NAME",
    help=f"Secret whose key `token` signs webhooks (default: {DEFAULT_SECRET_NAME} in $MOOR_NAMESPACE "
    f"or {DEFAULT_NAMESPACE}).",
)
@click.option(
    "--metrics-port",
    type=int,
    envvar="MOOR_METRICS_PORT",
    default=0,
    help="Serve Prometheus metrics on GET /metrics on this port (0: off).",
)
@click.option(
    "--default-service-account",
    envvar="MOOR_DEFAULT_SERVICE_ACCOUNT",
    default=None,
    metavar="NAME",
    help="Syncs without spec.serviceAccountName act as this ServiceAccount of their own namespace.",
)
@click.option(
    "--no-cross-namespace-refs",
    is_flag=True,
    envvar="MOOR_NO_CROSS_NAMESPACE_REFS",
    help="Refuse Syncs whose sourceRef or dependsOn names another namespace.",
)
@click.option(
    "--max-artifact-size",
    envvar="MOOR_MAX_ARTIFACT_SIZE",
    default="256Mi",
    show_default=True,
    metavar="SIZE",
    help="Refuse revisions whose files (or fetched objects) take more than this (e.g. 256Mi, 1Gi).",
)
@click.option(
    "--max-artifact-files",
    type=click.IntRange(1),
    envvar="MOOR_MAX_ARTIFACT_FILES",
    default=DEFAULT_MAX_FILES,
    show_default=True,
    help="Refuse revisions holding more files than this.",
)
@click.option(
    "--max-render-memory",
    envvar="MOOR_MAX_RENDER_MEMORY",
    default="1Gi",
    show_default=True,
    metavar="SIZE",
    help="Memory each renderer process (helm, kustomize, sops) may use; a render needing more fails.",
)
@click.option(
    "--max-concurrent-renders",
    type=click.IntRange(1, 64),
    envvar="MOOR_MAX_CONCURRENT_RENDERS",
    default=DEFAULT_MAX_CONCURRENT_RENDERS,
    show_default=True,
    help="Renderer processes running at the same time.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(1, 3600),
    envvar="MOOR_REQUEST_TIMEOUT",
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="How long one request to the API server may take.",
)
@click.option(
    "--ui-port",
    type=click.IntRange(0, 65535),
    envvar="MOOR_UI_PORT",
    default=0,
    help="Serve the dashboard on this port (0: off); people log in with a token, RBAC decides what they see.",
)
@click.option(
    "--ui-address",
    envvar="MOOR_UI_ADDRESS",
    default="0.0.0.0",
    show_default=True,
    help="Address the dashboard listens on.",
)
@click.option(
    "--cluster-name",
    envvar="MOOR_CLUSTER_NAME",
    default=DEFAULT_CLUSTER_NAME,
    show_default=True,
    help="The name of this cluster in deployment notes (a Sync's spec.history.gitNotes).",
)
@click.option(
    "--replicas",
    is_flag=True,
    envvar="MOOR_REPLICAS",
    help="Run as one of several replicas: share the work by Leases and sharding (docs/scale-out.md).",
)
@click.option(
    "--identity",
    envvar="MOOR_IDENTITY",
    default=None,
    help="This replica's member identity (default: $POD_NAME, else host name and process id).",
)
@click.option(
    "--lease-namespace",
    envvar="MOOR_LEASE_NAMESPACE",
    default=None,
    help=f"Namespace of the members' Leases (default: $MOOR_NAMESPACE or {DEFAULT_NAMESPACE}).",
)
@click.option(
    "--lease-duration",
    type=click.IntRange(3, 300),
    envvar="MOOR_LEASE_DURATION",
    default=DEFAULT_LEASE_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="A replica whose Lease is not renewed for this long is gone; its objects move to the others.",
)
@click.option(
    "--max-helm-index-size",
    envvar="MOOR_MAX_HELM_INDEX_SIZE",
    default="32Mi",
    show_default=True,
    metavar="SIZE",
    help="Refuse a Helm repository's index.yaml larger than this (e.g. 64Mi), before it is parsed.",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info", show_default=True)
@target_options
def run(
    target: Target,
    artifact_dir: Path | None,
    workers: int,
    apply_concurrency: int,
    health_port: int,
    webhook_port: int,
    webhook_address: str,
    webhook_secret: str | None,
    metrics_port: int,
    default_service_account: str | None,
    no_cross_namespace_refs: bool,
    max_artifact_size: str,
    max_artifact_files: int,
    max_render_memory: str,
    max_concurrent_renders: int,
    request_timeout: float,
    ui_port: int,
    ui_address: str,
    cluster_name: str,
    replicas: bool,
    identity: str | None,
    lease_namespace: str | None,
    lease_duration: int,
    max_helm_index_size: str,
    log_level: str,
) -> None:
    """Run the controller until SIGTERM or Ctrl-C."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    webhooks = _webhook_settings(webhook_secret) if webhook_port else None
    directory = artifact_dir or Path(tempfile.mkdtemp(prefix="moor-artifacts-"))
    options = ControllerOptions(
        artifact_dir=directory,
        workers=workers,
        apply_concurrency=apply_concurrency,
        tenancy=TenancyPolicy(_service_account_name(default_service_account), no_cross_namespace_refs),
        artifact_limits=ArtifactLimits(_size(max_artifact_size, "--max-artifact-size"), max_artifact_files),
        cluster_name=cluster_name,
        watch_own_shard=replicas,
        index_limits=IndexLimits(max_bytes=_size(max_helm_index_size, "--max-helm-index-size")),
    )
    membership = (
        Membership(
            _member_identity(identity),
            lease_namespace or os.environ.get("MOOR_NAMESPACE") or DEFAULT_NAMESPACE,
            lease_duration,
        )
        if replicas
        else None
    )
    configure_render_budget(RenderBudget(_size(max_render_memory, "--max-render-memory"), max_concurrent_renders))
    raise_open_file_limit()
    ports = Ports(
        health=health_port,
        metrics=metrics_port,
        webhooks=webhook_port,
        webhook_address=webhook_address,
        ui=ui_port,
        ui_address=ui_address,
    )
    asyncio.run(_run(target, options, ports, webhooks, request_timeout, membership))


def _webhook_settings(secret: str | None) -> WebhookSettings:
    namespace = os.environ.get("MOOR_NAMESPACE") or DEFAULT_NAMESPACE
    try:
        return WebhookSettings(secret=SecretRef.parse(secret or DEFAULT_SECRET_NAME, namespace))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--webhook-secret") from None


def _member_identity(identity: str | None) -> str:
    text = identity or os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    try:
        return member_identity(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--identity") from None


def _service_account_name(name: str | None) -> str | None:
    if not name:
        return None
    if not DNS1123_SUBDOMAIN.fullmatch(name):
        raise click.BadParameter(f"{name!r} is not a valid ServiceAccount name", param_hint="--default-service-account")
    return name


def _size(text: str, flag: str) -> int:
    try:
        size = parse_size(text)
    except SourceError as error:
        raise click.BadParameter(str(error), param_hint=flag) from None
    if size < 1:
        raise click.BadParameter("must be at least 1 byte", param_hint=flag)
    return size


@dataclass(frozen=True)
class Membership:
    """How this replica takes part (`--replicas`)."""

    identity: str
    lease_namespace: str
    lease_duration: int


@dataclass(frozen=True)
class Ports:
    health: int
    metrics: int
    webhooks: int
    webhook_address: str
    ui: int = 0
    ui_address: str = "0.0.0.0"


async def _run(
    target: Target,
    options: ControllerOptions,
    ports: Ports,
    webhooks: WebhookSettings | None,
    request_timeout: float,
    membership: Membership | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    credentials = load_credentials(target.kubeconfig, target.context)
    async with KubeClient(credentials, request_timeout=request_timeout) as client:
        api = KubeApi(client)
        members: LeaseMembership | None = None
        if membership is None:
            controller = Controller(api, options)
        else:
            members = LeaseMembership(
                api, membership.identity, namespace=membership.lease_namespace, duration=membership.lease_duration
            )
            shard = Shard(membership.identity)
            members.subscribe(shard.update)
            controller = Controller(FencedApi(client, Fence(members, shard), api.discovery), options, shard)
        listeners: list[Listener] = []
        metrics = ListenerMetrics(controller.metrics.registry)
        try:
            if ports.health:
                listeners.append(await _serve(ports.health, "health checks", controller, metrics, members=members))
            if ports.metrics:
                listeners.append(await _serve(ports.metrics, "metrics", controller, metrics, publish=True))
            if webhooks is not None:
                listeners.append(await _serve_webhooks(api, webhooks, ports.webhook_address, ports.webhooks, metrics))
            dashboard = await _serve_dashboard(api, controller, ports, metrics) if ports.ui else None
            hand_over: asyncio.Task[None] | None = None
            try:
                if members is not None:
                    await _join(members)
                    hand_over = asyncio.create_task(_hand_over(stop, members), name="hand over")
                await controller.run(stop)
            finally:
                if members is not None:
                    stop.set()
                    await (hand_over if hand_over is not None else members.stop())
                if dashboard is not None:
                    await dashboard.close()
        finally:
            for listener in listeners:
                await listener.close()


async def _join(members: LeaseMembership) -> None:
    try:
        await members.start()
    except LeaseLost as error:
        raise click.ClickException(str(error)) from None


async def _hand_over(stop: asyncio.Event, members: LeaseMembership) -> None:
    """On SIGTERM the Lease goes at once (its writes fenced from then on), while the controller winds down."""
    await stop.wait()
    await members.stop()


async def _serve_dashboard(api: KubeApi, controller: Controller, ports: Ports, metrics: ListenerMetrics) -> Served:
    """The dashboard, reading the controller's live cache and informers (no watches of its own)."""
    try:
        served = await serve_for_team(
            api, controller.live, ports.ui_address, ports.ui, metrics=metrics, shared=controller
        )
    except OSError as error:
        raise click.ClickException(
            f"cannot serve the dashboard on {ports.ui_address}:{ports.ui}: {error.strerror or error}"
        ) from None
    controller.subscribe(served.view.custom_resource_changed)
    logging.getLogger(__name__).info("dashboard on %s:%d", ports.ui_address, served.listener.port)
    return served


async def _serve_webhooks(
    api: KubeApi, settings: WebhookSettings, address: str, port: int, metrics: ListenerMetrics
) -> Listener:
    try:
        return await serve_webhooks(api, settings, address, port, metrics=metrics)
    except OSError as error:
        raise click.ClickException(f"cannot receive webhooks on {address}:{port}: {error.strerror or error}") from None


async def _serve(
    port: int,
    what: str,
    controller: Controller,
    metrics: ListenerMetrics,
    *,
    publish: bool = False,
    members: LeaseMembership | None = None,
) -> Listener:
    """`/healthz` on `port`, and `/metrics` when `publish`."""
    registry = controller.metrics.registry if publish else None
    problems = controller.problems if members is None else lambda: [*controller.problems(), *members.problems()]
    try:
        return await probes.serve(port, registry=registry, problems=problems, metrics=metrics)
    except OSError as error:
        raise click.ClickException(f"cannot serve {what} on port {port}: {error.strerror or error}") from None
