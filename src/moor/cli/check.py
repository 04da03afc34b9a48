"""`moor check [--pre]`: can Moor run on this cluster, and is it running well.

`--pre` (before `moor install`): the API server answers, its Kubernetes version is supported, and who
the user is. Without it, also: Moor's CRDs are installed, Established and the same as this version of
Moor ships (`src/moor/crds`); the controller runs (the in-cluster Deployment is available, its readiness
probe being `/healthz`; for `moor run` elsewhere, `--health-url` is asked and its problems shown); and
every GitRepository is Ready. Exit 0: every check passed; 1: one failed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import click
from rich.console import Console
from rich.markup import escape

from moor.cli.options import Target, run_async, target_options
from moor.cli.syncs import ready_of
from moor.cluster.api import KubeApi
from moor.cluster.identity import whoami
from moor.crds import load_crds
from moor.errors import MoorError
from moor.manifests import load_manifests
from moor.objects import ObjectRef
from moor.plan import compare
from moor.resources import API_VERSION, GITREPOSITORY, get_condition

MINIMUM_KUBERNETES = (1, 30)
"""Aggregated discovery (apidiscovery.k8s.io/v2) is served from Kubernetes 1.30 on."""
HEALTH_TIMEOUT = 5.0
_VERSION = re.compile(r"v?(\d+)\.(\d+)")


@dataclass(frozen=True)
class Finding:
    """One check's outcome, as one line."""

    passed: bool
    text: str


@click.command()
@click.option("--pre", is_flag=True, help="Only what `moor install` needs: the cluster and its version.")
@click.option(
    "--health-url",
    default=None,
    help="The /healthz of a controller run outside the cluster (moor run --health-port), e.g. http://127.0.0.1:9440/healthz.",
)
@target_options
def check(target: Target, pre: bool, health_url: str | None) -> None:
    """Check the cluster's version, Moor's CRDs, the controller's health and the sources (exit 1 on a failure)."""
    raise SystemExit(run_async(_check(target, pre, health_url)))


async def _check(target: Target, pre: bool, health_url: str | None) -> int:
    console = Console(highlight=False, soft_wrap=True)
    failed = False

    def section(title: str, findings: Sequence[Finding]) -> None:
        nonlocal failed
        console.print(f"► {title}")
        for finding in findings:
            mark = "[green]✔[/]" if finding.passed else "[red]✗[/]"
            console.print(f"{mark} {escape(finding.text)}")
            failed = failed or not finding.passed

    async with target.connect() as api:
        cluster = await _cluster(api)
        section("checking prerequisites", cluster)
        if pre or not all(finding.passed for finding in cluster):
            return 1 if failed else 0
        section("checking CRDs", await _crds(api))
        section("checking the controller", await _controller(api, health_url))
        section("checking sources", await _sources(api))
    console.print("[red]✗ check failed[/]" if failed else "[green]✔ all checks passed[/]")
    return 1 if failed else 0


async def _cluster(api: KubeApi) -> list[Finding]:
    try:
        await api.discovery.ensure_loaded()
        user = await whoami(api)
    except MoorError as error:
        return [Finding(False, f"the API server cannot be used: {error}")]
    version = api.discovery.server_version
    found = _VERSION.match(version)
    wanted = ".".join(map(str, MINIMUM_KUBERNETES))
    supported = found is not None and (int(found[1]), int(found[2])) >= MINIMUM_KUBERNETES
    return [
        Finding(
            supported, f"Kubernetes {version or 'of unknown version'} {'>=' if supported else 'is older than'} {wanted}"
        ),
        Finding(True, f"connected as {user}"),
    ]


async def _crds(api: KubeApi) -> list[Finding]:
    findings = []
    for crd in load_crds():
        ref = ObjectRef.of(crd)
        live = await api.get(ref)
        if live is None:
            findings.append(Finding(False, f"{ref.name}: not installed (run `moor install`)"))
            continue
        established = get_condition((live.get("status") or {}).get("conditions"), "Established")
        if established is None or established.status != "True":
            findings.append(Finding(False, f"{ref.name}: not Established yet"))
        elif compare(crd, live):
            findings.append(Finding(False, f"{ref.name}: differs from this version of Moor (run `moor install`)"))
        else:
            findings.append(Finding(True, f"{ref.name}: current"))
    return findings


async def _controller(api: KubeApi, health_url: str | None) -> list[Finding]:
    findings: list[Finding] = []
    deployment = next(obj for obj in load_manifests(with_controller=True) if obj["kind"] == "Deployment")
    ref = ObjectRef.of(deployment)
    live = await api.get(ref)
    if live is not None:
        status = live.get("status") or {}
        wanted = int((live.get("spec") or {}).get("replicas", 1))
        ready = int(status.get("readyReplicas") or 0)
        findings.append(
            Finding(
                ready >= wanted > 0, f"Deployment {ref.namespace}/{ref.name}: {ready}/{wanted} ready (/healthz passes)"
            )
        )
    if health_url:
        findings += await _health(health_url)
    if not findings:
        findings.append(
            Finding(
                False,
                f"no Deployment {ref.namespace}/{ref.name} (moor install --with-controller); "
                "for `moor run` outside the cluster give --health-url",
            )
        )
    return findings


async def _health(url: str) -> list[Finding]:
    """GET the controller's /healthz: 200 "ok", or 503 with one line per problem (informers, tasks)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT)) as session,
            session.get(url) as response,
        ):
            body = (await response.text())[:4000]
            healthy = response.status == 200
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        return [Finding(False, f"{url} does not answer: {error or type(error).__name__}")]
    if healthy:
        return [Finding(True, f"{url}: healthy")]
    problems = [line.strip() for line in body.splitlines() if line.strip() and line.strip() != "ok"]
    return [Finding(False, f"{url}: {problem}") for problem in problems or [f"HTTP {response.status}"]]


async def _sources(api: KubeApi) -> list[Finding]:
    resource = await api.discovery.resolve(API_VERSION, GITREPOSITORY.kind)
    if resource is None:
        return [Finding(False, f"the cluster does not serve {GITREPOSITORY.kind}")]
    repositories = (await api.list(resource)).items
    if not repositories:
        return [Finding(True, "no sources yet")]
    findings = []
    for repository in repositories:
        ready, message = ready_of(repository)
        ref = ObjectRef.of(repository)
        findings.append(Finding(ready == "True", f"{ref.kind} {ref.namespace}/{ref.name}: {message}"))
    return findings
